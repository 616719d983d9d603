import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a build script in plain JavaScript, no types
import { keepSnowballLanguages } from '../scripts/snowball-languages.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const source = readFileSync(createRequire(import.meta.url).resolve('snowball-stemmers'), 'utf8');

type Snowball = { newStemmer: (language: string) => { stem: (word: string) => string } };
/** Runs a CommonJS source of snowball-stemmers and returns its exports. */
function load(js: string): Snowball {
  const module = { exports: {} as Snowball };
  new Function('exports', 'module', js)(module.exports, module);
  return module.exports;
}

describe('the crp-rag bundle keeps only the English and German Snowball stemmers', () => {
  it('stems every word of the corpus as the package does, and leaves the other languages out', () => {
    const full = load(source);
    const cut = (keepSnowballLanguages as (s: string) => string)(source);
    expect(cut.length).toBeLessThan(source.length / 5);
    const bundled = load(cut);
    const docs = path.resolve(here, '../../../vendor/rag-corpus/docs');
    const words = new Set<string>();
    for (const f of readdirSync(docs).filter((f) => /\.(md|txt|html)$/.test(f)))
      for (const w of readFileSync(path.join(docs, f), 'utf8')
        .toLowerCase()
        .match(/\p{L}+/gu) ?? [])
        words.add(w);
    expect(words.size).toBeGreaterThan(4000);
    for (const language of ['english', 'german']) {
      const a = full.newStemmer(language);
      const b = bundled.newStemmer(language);
      const differ = [...words].filter((w) => a.stem(w) !== b.stem(w));
      expect(differ, language).toEqual([]);
    }
    // Snowball's own examples
    expect(bundled.newStemmer('english').stem('generously')).toBe('generous');
    expect(bundled.newStemmer('german').stem('vektoren')).toBe('vektor');
    expect(() => bundled.newStemmer('french')).toThrow();
  });

  it('refuses a source laid out otherwise (a new version fails the build, not the stems)', () => {
    const f = keepSnowballLanguages as (s: string) => string;
    expect(() => f(source.replace('var germanStemmer = function', 'var germanStemmer2 = function'))).toThrow(
      /not laid out as version 0\.6\.0/,
    );
    expect(() => f('module.exports = {};')).toThrow(/found 0 stemmer classes/);
  });
});

import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStemCache, saveStemCache, stemCacheFile } from '../src/node/stem-cache.js';
import { STEMMER_ID, stem } from '../src/text/stemmer.js';
import { tempDir } from './helpers/temp-dir.js';

let root = '';
let cleanup: () => Promise<void> = async () => {};
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir());
});
afterAll(() => cleanup());

const HEADER = `crp-rag stems 1 ${STEMMER_ID}`;

describe('stems remembered on disk (crp-rag)', () => {
  it('names the installed stemmer', () => {
    const pkg = createRequire(import.meta.url)('snowball-stemmers/package.json') as { version: string };
    expect(STEMMER_ID).toBe(`snowball-stemmers@${pkg.version}`);
  });

  it('saves the stems this process computed and reads them back instead of stemming again', async () => {
    const dir = path.join(root, 'saved');
    // Snowball's own examples: "generously" -> "generous", "Vektoren" -> "vektor"
    expect(stem('generously', 'en')).toBe('generous');
    expect(stem('vektoren', 'de')).toBe('vektor');
    await saveStemCache(dir);
    const lines = (await readFile(stemCacheFile(dir), 'utf8')).split('\n');
    expect(lines[0]).toBe(HEADER);
    expect(lines).toContain('en\tgenerously\tgenerous');
    expect(lines).toContain('de\tvektoren\tvektor');
    expect(lines.at(-1)).toBe('');
    expect(await loadStemCache(dir)).toBe(lines.length - 2);
    // a remembered stem is used as it is (a made-up one shows it was not computed)
    const mine = path.join(root, 'mine');
    await saveStemCache(mine);
    await writeFile(stemCacheFile(mine), `${HEADER}\nen\tqqzzyxing\tMADE-UP\n`);
    expect(await loadStemCache(mine)).toBe(1);
    expect(stem('qqzzyxing', 'en')).toBe('MADE-UP');
  });

  it('ignores a missing, foreign or damaged file as a whole', async () => {
    const dir = path.join(root, 'bad');
    expect(await loadStemCache(dir)).toBe(0);
    await saveStemCache(dir); // creates the folder
    const file = stemCacheFile(dir);
    for (const [text, why] of [
      [`crp-rag stems 1 snowball-stemmers@0.5.0\nen\tflyings\tWRONG\n`, 'another stemmer'],
      [`${HEADER}\nen\tflyings\tWRONG\nfr\tvolant\tvol\n`, 'an unknown language'],
      [`${HEADER}\nen\tflyings\tWRONG\nen\tonly-two-fields\n`, 'a line cut short'],
      [`${HEADER}\nen\tflyings\tWRONG\nen\trunning\tru`, 'a file cut mid-line'],
      ['\u0000\u0001garbage', 'not a stem file'],
    ]) {
      await writeFile(file, text!);
      expect(await loadStemCache(dir), why).toBe(0);
    }
    // nothing of them was remembered: the word gets its own stem
    expect(stem('flyings', 'en')).toBe('fli');
  });
});

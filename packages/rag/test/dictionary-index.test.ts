import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { QueryTranslator } from '../src/index.js';
import { keyTailFiles } from '../src/node/default-translator.js';
import { buildPairIndex, PairIndex } from '../src/translate/pair-index.js';
import { tempDir } from './helpers/temp-dir.js';

const dictionaryDir = path.dirname(
  createRequire(import.meta.url).resolve('@crp/rag-dictionary-de-en/package.json'),
);
const REBUILD = 'pnpm --filter @crp/rag build && pnpm --filter @crp/rag-dictionary-de-en build-index';

/** A dictionary file as build-dictionary.mjs writes it (the pairs escaped by JSON.stringify, then a newline). */
const fileOf = (pairs: string, source = 'test') =>
  new TextEncoder().encode(`${JSON.stringify({ name: 'test', source, count: 0, pairs })}\n`);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('dictionary index (precomputed lookups in dictionary.json)', () => {
  it('translates exactly as a parse of the pairs does: shared keys, exclusions, weights, non-ASCII, broken lines', () => {
    // seeded: 2,000 lines over 150 German and 120 English keys (some with umlauts and a typographic apostrophe)
    let seed = 11;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const de = (k: number) => ['d', 'ä', 'ö', 'ß'][k % 4]! + k;
    const en = (k: number) => ['e', 'é', 'o’', 'z'][k % 4]! + k;
    const lines = Array.from(
      { length: 2000 },
      () => `${de(rand(150))}\t${en(rand(120))}\t${1 + rand(9) / 4}`,
    );
    // lines a parse skips or reads specially: no tab, an empty side, no weight, a non-numeric weight
    const pairs = `${lines.join('\n')}\nbroken line\n\tonly english\t1\nonly german\t\t1\nmulti wort\tmulti word\nd3\te7\tx\t2\n`;
    const exclude: [string, string][] = [[lines[5]!.split('\t')[0]!, lines[5]!.split('\t')[1]!]];
    const options = { exclude, maxPerTerm: 4 };
    const file = fileOf(pairs);
    const fast = QueryTranslator.fromPairIndex(file, buildPairIndex(file), options);
    const plain = QueryTranslator.fromStemPairs(pairs, { ...options, source: 'test' });
    const terms = (i: 0 | 1) => new Set(pairs.split('\n').map((l) => l.split('\t')[i] ?? ''));
    for (const term of [...terms(0), 'multi wort', 'd', 'ä1x', ''])
      expect(fast.translate(term, 'de')).toEqual(plain.translate(term, 'de'));
    for (const term of [...terms(1), 'multi word', 'e', 'é'])
      expect(fast.translate(term, 'en')).toEqual(plain.translate(term, 'en'));
    // hand-checked lines: a pair without weight weighs 1, a non-numeric weight too
    expect(fast.translate('multi wort', 'de')).toEqual([{ term: 'multi word', weight: 1 }]);
    expect(fast.translate('only german', 'de')).toEqual([]);
    expect(fast.translate('only english', 'en')).toEqual([]);
    expect(fast.size).toEqual(plain.size);
    expect(fast.fingerprint).toBe(plain.fingerprint);
    expect(fast.lexicon('de').has(de(10))).toBe(plain.lexicon('de').has(de(10)));
  });

  it('lists the one-word keys that end with a stem, from the index as from a parse', () => {
    const pairs = [
      'betreu\tcounselor\t1',
      'kinderbetreu\tchild care\t1',
      'softwarebetreu\tsoftwar maintain\t1',
      'softwarebetreu\tmaintain\t0.67',
      'datenbank betreu\tdatabas support\t1',
      'abetreu\tx\t1',
      'werkzeug\ttool\t1',
    ].join('\n');
    const file = fileOf(pairs);
    const fast = QueryTranslator.fromPairIndex(file, buildPairIndex(file));
    const plain = QueryTranslator.fromStemPairs(pairs);
    for (const tr of [fast, plain]) {
      // each key once; not the stem itself, a phrase, nor a key fewer than 3 letters longer
      expect([...tr.endingWith('betreu', 'de')].sort()).toEqual(['kinderbetreu', 'softwarebetreu']);
      expect(tr.endingWith('care', 'en')).toEqual([]);
      expect(tr.endingWith('zeug', 'de')).toEqual(['werkzeug']);
      expect(tr.endingWith('eug', 'de')).toEqual([]);
    }
  });

  it('finds every key ending with a suffix, in the keys’ byte order, as a scan of all keys does', () => {
    // seeded: keys from few endings (many share their last 4 bytes), multi-byte letters at the end, phrases
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const starts = ['kinder', 'software', 'a', 'über', 'straßen', 'x', 'daten bank'];
    const ends = ['betreu', 'werkzeug', 'größe', 'maß', 'eug', 'ßß', 'zeugen'];
    const lines = Array.from({ length: 600 }, () => {
      const key = `${starts[rand(starts.length)]}${rand(3) === 0 ? rand(40) : ''}${ends[rand(ends.length)]}`;
      return `${key}\t${ends[rand(ends.length)]}${rand(30)} e\t1`;
    });
    const pairs = [...lines, 'betreu\tcare\t1', 'größe\tsize\t1'].join('\n');
    const file = fileOf(pairs);
    const index = PairIndex.open(file, buildPairIndex(file));
    const bytes = (s: string) => [...new TextEncoder().encode(s)];
    const byteOrder = (a: string, b: string) => {
      const [x, y] = [bytes(a), bytes(b)];
      for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
      return x.length - y.length;
    };
    for (const [side, language] of [
      [0, 'de'],
      [1, 'en'],
    ] as const) {
      const keys = [...new Set(pairs.split('\n').map((l) => l.split('\t')[side]!))].sort(byteOrder);
      const suffixes = new Set(['zeug', 'ößeX', 'ße', 'tre']);
      for (const key of keys) for (let n = 2; n <= key.length; n++) suffixes.add(key.slice(-n));
      for (const suffix of suffixes) {
        const scan =
          suffix.length < 4
            ? []
            : keys.filter(
                (k) =>
                  !k.includes(' ') && bytes(k).length > 4 && k.length > suffix.length && k.endsWith(suffix),
              );
        expect(index.keysEndingWith(suffix, language), `${language} ${suffix}`).toEqual(scan);
      }
    }
  });

  it('keeps the keys filed by their ends in a store, and files them again for another dictionary or damaged bytes', () => {
    const pairs = ['betreu\tcare\t1', 'kinderbetreu\tchild care\t1', 'softwarebetreu\tmaintain\t1'].join(
      '\n',
    );
    const file = fileOf(pairs);
    const index = buildPairIndex(file);
    const kept = new Map<string, Uint8Array>();
    const writes: string[] = [];
    const store = {
      read: (language: string) => kept.get(language),
      write: (language: string, bytes: Uint8Array) => {
        writes.push(language);
        kept.set(language, bytes);
      },
    };
    const found = (dictionary: Uint8Array, i = index) =>
      PairIndex.open(dictionary, i, { keyTails: store }).keysEndingWith('betreu', 'de');
    expect(found(file)).toEqual(['kinderbetreu', 'softwarebetreu']);
    expect(writes).toEqual(['de']);
    // a second process reads the table instead of filing the keys again
    expect(found(file)).toEqual(['kinderbetreu', 'softwarebetreu']);
    expect(writes).toEqual(['de']);
    // the stored table belongs to another dictionary: not used, filed again
    const other = fileOf(`${pairs}\nvereinsbetreu\tclub support\t1`);
    expect(found(other, buildPairIndex(other))).toEqual(['kinderbetreu', 'softwarebetreu', 'vereinsbetreu']);
    expect(writes).toEqual(['de', 'de']);
    // damaged: cut short (filed again), or a line outside the pairs (skipped, never read)
    const good = kept.get('de')!;
    kept.set('de', good.subarray(0, good.byteLength - 4));
    expect(found(other, buildPairIndex(other))).toHaveLength(3);
    expect(writes).toEqual(['de', 'de', 'de']);
    const outside = Uint8Array.from(kept.get('de')!);
    const view = new DataView(outside.buffer);
    for (let at = outside.byteLength - 4 * 4; at < outside.byteLength; at += 4)
      view.setInt32(at, 1 << 30, true);
    kept.set('de', outside);
    expect(found(other, buildPairIndex(other))).toEqual([]);
  });

  it('keeps the key tables in files of a cache folder, named after the dictionary; an unwritable folder only costs time', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const files = keyTailFiles(dir, 'a'.repeat(64));
      expect(files.read('de')).toBeUndefined();
      files.write('de', new Uint8Array([1, 2, 3]));
      expect([...files.read('de')!]).toEqual([1, 2, 3]);
      expect(keyTailFiles(dir, 'b'.repeat(64)).read('de')).toBeUndefined();
      const blocked = path.join(dir, 'a-file');
      await writeFile(blocked, 'x');
      expect(() =>
        keyTailFiles(path.join(blocked, 'cache'), 'a'.repeat(64)).write('de', new Uint8Array(4)),
      ).not.toThrow();
    } finally {
      await cleanup();
    }
  });

  it('refuses an index of another dictionary file (stale) and a damaged one, naming the script that rebuilds it', () => {
    const file = fileOf('haus\thouse\t1\nregel\trule\t1');
    const index = buildPairIndex(file);
    const changed = fileOf('haus\thouse\t1\nregel\trulf\t1'); // same size, one byte differs
    expect(() => PairIndex.open(changed, index)).toThrow(/build-index/);
    expect(() => PairIndex.open(file, index.subarray(0, index.byteLength - 4))).toThrow(
      expect.objectContaining({ code: 'corrupt-file' }),
    );
    expect(() => PairIndex.open(file, new Uint8Array(16))).toThrow(
      expect.objectContaining({ code: 'corrupt-file' }),
    );
    // pairs with escapes other than \t and \n cannot be read as raw bytes
    expect(() => buildPairIndex(fileOf('say "hi"\thallo\t1'))).toThrow(/escapes/);
  });

  it('with a stored SHA-256 and a digest given, checks by the digest (stale still refused), else by the checksum', () => {
    const file = fileOf('haus\thouse\t1\nregel\trule\t1');
    const changed = fileOf('haus\thouse\t1\nregel\trulf\t1'); // same size, one byte differs
    const index = buildPairIndex(file, { sha256: sha256(file) });
    let digests = 0;
    const counted = (bytes: Uint8Array) => {
      digests++;
      return sha256(bytes);
    };
    expect(PairIndex.open(file, index, { sha256: counted }).header.sha256).toBe(sha256(file));
    expect(digests).toBe(1);
    expect(() => PairIndex.open(changed, index, { sha256: counted })).toThrow(/build-index/);
    expect(() => PairIndex.open(changed, index)).toThrow(/build-index/); // no digest: the checksum
    expect(PairIndex.open(file, index).header.pairsEnd).toBeGreaterThan(0);
    // the digest decides when both are there: an index whose stored digest is another file's is refused
    const wrong = buildPairIndex(file, { sha256: sha256(changed) });
    expect(() => PairIndex.open(file, wrong, { sha256 })).toThrow(
      expect.objectContaining({ code: 'corrupt-file' }),
    );
    // an index without a digest (built before) is checked by the checksum even when a digest is given
    expect(() => PairIndex.open(changed, buildPairIndex(file), { sha256 })).toThrow(/build-index/);
    expect(QueryTranslator.fromPairIndex(file, index, { sha256 }).translate('regel', 'de')).toEqual([
      { term: 'rule', weight: 1 },
    ]);
  });

  it('the committed dictionary.index equals a fresh build from dictionary.json', () => {
    const dictionary = new Uint8Array(readFileSync(path.join(dictionaryDir, 'dictionary.json')));
    const committed = new Uint8Array(readFileSync(path.join(dictionaryDir, 'dictionary.index')));
    const fresh = buildPairIndex(dictionary, { sha256: sha256(dictionary) });
    // compared as a whole (a per-byte diff of 2.5 MB would bury the message)
    expect(
      Buffer.from(committed).equals(Buffer.from(fresh)),
      `packages/rag-dictionary-de-en/dictionary.index is stale; rebuild it: ${REBUILD}`,
    ).toBe(true);
  }, 120_000);

  it('the real dictionary through its index translates as the parsed JSON does (every 40th pair)', async () => {
    const { loadDefaultTranslator, FALSE_FRIENDS } = await import('../src/node.js');
    const warn = vi.spyOn(process, 'emitWarning');
    const fast = await loadDefaultTranslator();
    expect(warn, 'the index is used, not the JSON fallback').not.toHaveBeenCalled();
    const json = JSON.parse(readFileSync(path.join(dictionaryDir, 'dictionary.json'), 'utf8')) as {
      pairs: string;
      source: string;
    };
    const plain = QueryTranslator.fromStemPairs(json.pairs, { source: json.source, exclude: FALSE_FRIENDS });
    expect(fast!.fingerprint).toBe(plain.fingerprint);
    const lines = json.pairs.split('\n').filter((_, i) => i % 40 === 0);
    for (const line of lines) {
      const [de, en] = line.split('\t') as [string, string];
      expect(fast!.translate(de, 'de')).toEqual(plain.translate(de, 'de'));
      expect(fast!.translate(en, 'en')).toEqual(plain.translate(en, 'en'));
    }
    expect(lines.length).toBeGreaterThan(8000);
  }, 120_000);
});

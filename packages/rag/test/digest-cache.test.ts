import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Remembered } from '../src/node/digest-cache.js';
import { tempDir } from './helpers/temp-dir.js';

let root = '';
let cleanup: () => Promise<void> = async () => {};
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir());
});
afterAll(() => cleanup());

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const MADE_UP = 'ab'.repeat(32);

describe('SHA-256 remembered per file (the dictionary check of crp-rag)', () => {
  it('hashes a file once, then uses the remembered digest while the file is unchanged', async () => {
    const cache = path.join(root, 'cache');
    const file = path.join(root, 'dictionary.json');
    await writeFile(file, 'Regel\\rule\n');
    const read = () => readFile(file);
    const first = await sha256Remembered(file, read, cache);
    expect(first.sha256).toBe(sha('Regel\\rule\n'));
    expect(new TextDecoder().decode(first.bytes)).toBe('Regel\\rule\n');
    const saved = await readFile(path.join(cache, 'sha256.txt'), 'utf8');
    expect(saved.startsWith('crp-rag sha256 1\n')).toBe(true);
    // a made-up digest in the cache is returned as it is: proof that the file was not hashed again
    await writeFile(path.join(cache, 'sha256.txt'), saved.replace(first.sha256, MADE_UP));
    expect((await sha256Remembered(file, read, cache)).sha256).toBe(MADE_UP);
    // a write changes the file's identity (size, times): hashed again, and remembered anew
    await writeFile(file, 'Regel\\rule\nWert\\value\n');
    expect((await sha256Remembered(file, read, cache)).sha256).toBe(sha('Regel\\rule\nWert\\value\n'));
    expect(await readFile(path.join(cache, 'sha256.txt'), 'utf8')).not.toContain(MADE_UP);
  });

  it('ignores a damaged or foreign cache file and a file that changes while read', async () => {
    const cache = path.join(root, 'damaged');
    const file = path.join(root, 'other.json');
    await writeFile(file, 'x');
    await sha256Remembered(file, () => readFile(file), cache);
    const good = await readFile(path.join(cache, 'sha256.txt'), 'utf8');
    const [, key] = good.split('\n')[1]!.split(/\t(.*)/);
    for (const [text, why] of [
      [`crp-rag sha256 0\n${MADE_UP}\t${key}\n`, 'another version'],
      [`crp-rag sha256 1\n${MADE_UP}\t${key}`, 'cut mid-line'],
      [`crp-rag sha256 1\n${MADE_UP}\t${key}\n${MADE_UP}\tno-file\n`, 'a damaged line'],
      [`crp-rag sha256 1\nnot-hex\t${key}\n`, 'not a digest'],
    ]) {
      await writeFile(path.join(cache, 'sha256.txt'), text!);
      expect((await sha256Remembered(file, () => readFile(file), cache)).sha256, why).toBe(sha('x'));
    }
    // the file is rewritten between the identity checks around the read: its bytes are hashed, nothing remembered
    await writeFile(path.join(cache, 'sha256.txt'), `crp-rag sha256 1\n${MADE_UP}\t${key}\n`);
    const changing = async () => {
      const bytes = await readFile(file);
      await writeFile(file, 'y!');
      return bytes;
    };
    expect((await sha256Remembered(file, changing, cache)).sha256).toBe(sha('x'));
    expect(await readFile(path.join(cache, 'sha256.txt'), 'utf8')).toContain(MADE_UP);
  });

  it('works without a writable cache folder (only costs the hash)', async () => {
    const file = path.join(root, 'plain.json');
    await writeFile(file, 'z');
    const blocked = path.join(file, 'cache'); // a folder inside a file cannot be made
    expect((await sha256Remembered(file, () => readFile(file), blocked)).sha256).toBe(sha('z'));
  });
});

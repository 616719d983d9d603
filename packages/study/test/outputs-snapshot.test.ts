/**
 * The study's outputs on the test fixture — study.json, report.html and every PNG — hashed and compared with
 * a committed snapshot (test/fixtures/outputs-snapshot.json), so that a refactoring that changes any byte of
 * them fails. The only time-dependent numbers, the seconds each part took, are set to 0 before hashing; the
 * fixture's absolute folder is written as `<fixtures>`. Fine-tuning is left out: its dropout draws unseeded
 * random numbers, so it is not reproducible to the byte (the study test checks what it does). A change of the report that is meant is committed with
 * a new snapshot (`CRP_UPDATE_SNAPSHOT=1 pnpm exec vitest run test/outputs-snapshot.test.ts`), saying why.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { IMAGENET } from '@crp/models';
import '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '@crp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { studyFiles } from '../src/node.js';

useBackend('wasm');

const FIXTURES = join(import.meta.dirname, 'fixtures');
const SNAPSHOT = join(FIXTURES, 'outputs-snapshot.json');

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .filter((f) => !f.startsWith('parts/') && !f.startsWith('parts\\'))
    .sort();
}

/** The file's bytes with the seconds of each part set to 0 and the fixture folder made relative. */
function normalised(file: string, bytes: Buffer): Buffer {
  if (file.endsWith('.png')) return bytes;
  let text = bytes.toString('utf8').split(FIXTURES).join('<fixtures>');
  if (file === 'study.json') {
    const json = JSON.parse(text) as { seconds: Record<string, number> };
    for (const k of Object.keys(json.seconds)) json.seconds[k] = 0;
    text = JSON.stringify(json, null, 2);
  } else if (file === 'report.html') {
    // "Parts and seconds: atlas 0.4 s, ..." is the report's one clock reading
    text = text.replace(/([\w-]+) \d+\.\d s\b/g, '$1 0.0 s');
  }
  return Buffer.from(text, 'utf8');
}

describe('the study on the fixture', () => {
  let out: string;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'crp-study-snapshot-'));
  });
  afterAll(async () => {
    await rm(out, { recursive: true, force: true });
  });

  /** Hashes of the normalised outputs in `dir` (parts/, the resumable store, excluded), keyed `prefix/file`. */
  async function hashesOf(dir: string, prefix: string, into: Record<string, string>): Promise<void> {
    for (const file of await filesUnder(dir)) {
      const bytes = normalised(file, await readFile(join(dir, file)));
      into[`${prefix}/${file}`] = createHash('sha256').update(bytes).digest('hex');
      // CRP_SNAPSHOT_KEEP=<dir> keeps the normalised files, to diff two versions when the hashes differ
      const keep = process.env.CRP_SNAPSHOT_KEEP;
      if (keep !== undefined) {
        await mkdir(dirname(join(keep, prefix, file)), { recursive: true });
        await writeFile(join(keep, prefix, file), bytes);
      }
    }
  }

  it('writes study.json, report.html and pictures byte-identical to the snapshot', async () => {
    const common = {
      model: join(FIXTURES, 'vgg-bn-2class.pth'),
      data: join(FIXTURES, 'patches'),
      target: 'mitosis',
      inputSize: 48,
      ...IMAGENET,
      samples: 8,
      region: { centerSquare: 16 },
    };
    const hashes: Record<string, string> = {};
    // every part computed, then every part resumed from the first run's store
    const plain = join(out, 'plain');
    await studyFiles({ ...common, out: plain });
    await hashesOf(plain, 'computed', hashes);
    await studyFiles({ ...common, out: plain });
    await hashesOf(plain, 'resumed', hashes);
    if (process.env.CRP_UPDATE_SNAPSHOT === '1') {
      await writeFile(SNAPSHOT, `${JSON.stringify(hashes, null, 2)}\n`);
    }
    const expected = JSON.parse(await readFile(SNAPSHOT, 'utf8')) as Record<string, string>;
    expect(hashes).toEqual(expected);
  });
});

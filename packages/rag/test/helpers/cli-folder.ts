import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { runCli } from '../../src/node.js';
import { writeSmallCorpus } from './corpus.js';
import { tempDir } from './temp-dir.js';

/**
 * For a test file of the command line: a temporary folder, made before its tests with the small corpus in docs/
 * and removed after them, and CRP_RAG_CACHE_DIR pointed at its cache/ meanwhile (what the commands remember,
 * stems and the dictionary's checksum, stays in this test's folder; the variable is put back after). Returns a
 * path joiner under the folder.
 */
export function useCliFolder(): (...parts: string[]) => string {
  let root = '';
  let cleanup: () => Promise<void> = async () => {};
  const cacheBefore = process.env.CRP_RAG_CACHE_DIR;
  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir());
    await writeSmallCorpus(path.join(root, 'docs'));
    process.env.CRP_RAG_CACHE_DIR = path.join(root, 'cache');
  });
  afterAll(async () => {
    if (cacheBefore === undefined) delete process.env.CRP_RAG_CACHE_DIR;
    else process.env.CRP_RAG_CACHE_DIR = cacheBefore;
    await cleanup();
  });
  return (...parts) => path.join(root, ...parts);
}

/** runCli in this process with its output captured. */
export async function runCliCaptured(args: string[]) {
  let out = '';
  let err = '';
  const r = await runCli(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { ...r, out, err };
}

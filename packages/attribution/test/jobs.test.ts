import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConceptAtlas, conceptAtlas, maximization, maximizationStrategy } from '../src/index.js';
import { runAtlasJob, runJob } from '../src/node.js';
import { setup } from './fixtures/job-setup.js';
import { expectCrpError, useWasm } from './helpers.js';

useWasm();

const setupModule = fileURLToPath(new URL('./fixtures/job-setup.ts', import.meta.url));
const cli = fileURLToPath(new URL('./fixtures/atlas-job-cli.ts', import.meta.url));
// shards of 2 samples: one line per shard, so a kill leaves a few of them on disk
const jobOptions = { target: 1, samples: 'all' as const, batchSize: 2, topK: 2, shardSize: 2 };
let dir: string;
let reference: ConceptAtlas;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crp-jobs-'));
  const ctx = await setup({ samples: 24 });
  reference = await conceptAtlas(ctx.crp, ctx.dataset, jobOptions);
  ctx.crp.dispose();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function batchLines(file: string): Promise<{ shard: number; indices: number[] }[]> {
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.length > 0);
  return lines.slice(1).map((l) => JSON.parse(l) as { shard: number; indices: number[] });
}

describe('resumable atlas jobs', () => {
  it('an uninterrupted job gives the in-memory atlas and writes one line per shard', async () => {
    const file = join(dir, 'plain.jsonl');
    const seen: number[] = [];
    const atlas = await runAtlasJob(
      { module: setupModule, args: { samples: 24 } },
      { ...jobOptions, file, onProgress: (p) => seen.push(p.done) },
    );
    expect(atlas).toEqual(reference);
    expect((await batchLines(file)).map((l) => l.shard)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(seen.at(-1)).toBe(24);
    // running again finds every batch done
    const again = await runAtlasJob({ module: setupModule, args: { samples: 24 } }, { ...jobOptions, file });
    expect(again).toEqual(reference);
    expect(await batchLines(file)).toHaveLength(12);
  });

  it('a killed process resumes without repeating or losing samples', async () => {
    const file = join(dir, 'killed.jsonl');
    const child = spawn(process.execPath, ['--import', 'tsx', cli, file, '120'], { stdio: 'ignore' });
    let exitCode: number | null | undefined; // undefined while it runs
    const exited = new Promise<number | null>((r) =>
      child.on('exit', (code) => {
        exitCode = code;
        r(code);
      }),
    );
    // kill it once a few batches are on disk; a job that ends or stalls first fails here, with the reason
    const deadline = Date.now() + 90_000;
    try {
      for (let written = 0; written < 3; ) {
        if (exitCode !== undefined) {
          throw new Error(
            `the job process exited (code ${exitCode}) after ${written} batches, before the kill`,
          );
        }
        if (Date.now() > deadline) throw new Error(`the job process wrote ${written} of 3 batches in 90 s`);
        await new Promise((r) => setTimeout(r, 50));
        written = (await batchLines(file).catch(() => [])).length;
      }
    } finally {
      child.kill('SIGKILL');
    }
    expect(await exited).toBeNull();
    const partial = await batchLines(file);
    expect(partial.length).toBeGreaterThanOrEqual(3);
    expect(partial.length).toBeLessThan(12);
    // a torn last line, as a kill during a write would leave
    await appendFile(file, '{"shard": 11, "start": 22, "cou');
    const resumed = [0];
    const atlas = await runAtlasJob(
      { module: setupModule, args: { samples: 24 } },
      { ...jobOptions, file, onProgress: (p) => resumed.splice(0, 1, p.resumed) },
    );
    expect(resumed[0]).toBe(partial.length * 2);
    expect(atlas).toEqual(reference);
    const lines = await batchLines(file);
    expect(lines.map((l) => l.shard).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(lines.flatMap((l) => l.indices).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 24 }, (_, i) => i),
    );
  });

  it('two worker threads give results identical to one', async () => {
    const file = join(dir, 'workers.jsonl');
    const atlas = await runAtlasJob(
      { module: setupModule, args: { samples: 24 } },
      { ...jobOptions, file, workers: 2 },
    );
    expect(atlas).toEqual(reference);
    expect((await batchLines(file)).map((l) => l.shard).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 12 }, (_, i) => i),
    );
  });

  it('runs any sharded kind: maximisation on two threads equals maximization()', async () => {
    const file = join(dir, 'max.jsonl');
    const options = { layers: ['c2', 'd1'], topK: 3, batchSize: 2, shardSize: 4 };
    const got = await runJob(
      maximizationStrategy,
      { module: setupModule, args: { samples: 24 } },
      { ...options, file, workers: 2 },
    );
    const ctx = await setup({ samples: 24 });
    const want = await maximization(ctx.crp, ctx.dataset, options);
    ctx.crp.dispose();
    expect(got).toEqual(want);
    expect(got.relevance.c2!.samples).toBe(24);
    expect((await batchLines(file)).map((l) => l.shard).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('refuses a file of another job and a module without setup', async () => {
    const file = join(dir, 'plain.jsonl');
    await expectCrpError(
      () => runAtlasJob({ module: setupModule, args: { samples: 24 } }, { ...jobOptions, topK: 3, file }),
      'job-mismatch',
      /another job/,
    );
    await expectCrpError(
      () =>
        runAtlasJob(
          { module: setupModule, exportName: 'nope', args: {} },
          { ...jobOptions, file: join(dir, 'x.jsonl') },
        ),
      'invalid-argument',
      /no exported function 'nope'.*setup/,
    );
  });
});

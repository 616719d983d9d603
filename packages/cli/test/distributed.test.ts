import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConceptAtlas } from '@crp/attribution';
import { selectBackend } from '@crp/backend';
import { vggFromBlocks } from '@crp/models';
import { fileSystem, mnist } from '@crp/models/node';
import { scoreChannels } from '@crp/pruning';
import { startRedis, type TestRedis } from '@crp/testing/redis';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crp, resultOf } from './run.js';

// An untrained, seeded digit model (14x14 grey, conv 4 - conv 8 - logits) on disk, and the bundled digits:
// the atlas of any weights is well defined, so no training is needed.
let dir: string;
let modelDir: string;
let redis: TestRedis;
const data = ['--data', 'mnist', '--samples', '40'];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crp-dist-'));
  await selectBackend({ threads: 1 });
  const net = vggFromBlocks([[4], [8]], {
    inputShape: [14, 14, 1],
    classes: 10,
    hidden: [],
    dropout: 0,
    seed: 3,
  });
  modelDir = join(dir, 'model');
  await net.save(fileSystem(modelDir));
  net.dispose();
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('bad shard specs are usage errors', () => {
  it.each([['3/2'], ['0/0'], ['1'], ['-1/2'], ['a/b']])(
    '--shard %s: exit 2, the message and the usage, no stack',
    async (spec) => {
      const { code, stderr } = await crp(
        'atlas',
        '--model',
        modelDir,
        ...data,
        '--target',
        '1',
        `--shard=${spec}`,
      );
      expect(code).toBe(2);
      expect(stderr).toContain(`crp atlas: --shard: a shard part is i/n with whole numbers 0 <= i < n`);
      expect(stderr).toContain(`got '${spec}'`);
      expect(stderr).toContain('crp atlas --model M'); // the usage
      expect(stderr).not.toMatch(/\n\s+at /);
    },
  );

  it('refuses --queue with --shard, an option without its value, and crp merge without files', async () => {
    const bare = await crp('atlas', '--model', modelDir, ...data, '--target', '1', '--shard', '-1/2');
    expect(bare.code).toBe(2);
    expect(bare.stderr).not.toMatch(/\n\s+at /);
    const both = await crp(
      'refs',
      '--model',
      modelDir,
      ...data,
      '--layer',
      'x',
      '--queue',
      redis.url,
      '--shard',
      '0/2',
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--queue .* or --shard i\/n .*not both/);
    const none = await crp('merge', '--out', join(dir, 'x.json'));
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('give the partial files to merge');
  });
});

describe('--shard i/n and crp merge', () => {
  it('the merged parts are the atlas of one local run, to the last bit', async () => {
    const common = ['atlas', '--model', modelDir, ...data, '--target', '1', '--shard-size', '4', '--json'];
    const local = await crp(...common, '--out', join(dir, 'local.json'));
    expect(local.code, local.stderr).toBe(0);
    const reference = resultOf<{ atlas: ConceptAtlas }>(local.stdout).atlas;
    const parts: string[] = [];
    for (const i of [0, 1, 2]) {
      const file = join(dir, `part-${i}.json`);
      const r = await crp(...common, '--shard', `${i}/3`, '--out', file);
      expect(r.code, r.stderr).toBe(0);
      expect(resultOf<{ part: string }>(r.stdout).part).toBe(`${i}/3`);
      parts.push(file);
    }
    const merged = join(dir, 'merged.json');
    // a part given twice counts once
    const m = await crp('merge', ...parts, parts[1]!, '--out', merged);
    expect(m.code, m.stderr).toBe(0);
    expect(JSON.parse(await readFile(merged, 'utf8'))).toEqual(reference);
    // a missing part is named
    const missing = await crp('merge', parts[0]!, parts[2]!, '--out', join(dir, 'bad.json'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/missing shards: /);
  });

  it('pruning criterion sums: the merged parts are the library scores', async () => {
    const common = [
      'prune',
      '--model',
      modelDir,
      '--data',
      'mnist',
      '--samples',
      '30',
      '--test',
      '10',
      '--criteria',
      'relevance',
    ];
    const parts = [0, 1].map((i) => join(dir, `prune-${i}.json`));
    for (const [i, file] of parts.entries()) {
      const r = await crp(...common, '--shard', `${i}/2`, '--out', file);
      expect(r.code, r.stderr).toBe(0);
    }
    const merged = join(dir, 'scores.json');
    expect((await crp('merge', ...parts, '--out', merged)).code).toBe(0);
    const model = await tfl.loadLayersModel(fileSystem(join(modelDir, 'model.json')));
    const { train } = mnist({ train: 30, validation: 10, seed: 0, inputSize: [14, 14], channels: 1 });
    try {
      const want = scoreChannels(model, 'relevance', { data: train });
      expect(JSON.parse(await readFile(merged, 'utf8'))).toEqual(want);
    } finally {
      model.dispose();
      train.images.dispose();
    }
    const two = await crp(...common.slice(0, -1), 'relevance,taylor', '--shard', '0/2', '--out', parts[0]!);
    expect(two.code).toBe(2);
    expect(two.stderr).toMatch(/exactly one of --criteria relevance\|activation\|taylor/);
  });
});

describe('--queue and crp worker', () => {
  it('the atlas computed by worker processes is the local atlas; the workers stop on SIGTERM', async () => {
    const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
    const worker: ChildProcess = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        bin,
        'worker',
        '--queue',
        redis.url,
        '--queue-name',
        'cli',
        '--concurrency',
        '2',
        '--threads',
        '1',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    worker.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
    });
    const exited = new Promise<number | null>((r) => worker.on('exit', (code) => r(code)));
    try {
      const common = ['atlas', '--model', modelDir, ...data, '--target', '2', '--shard-size', '4', '--json'];
      const local = await crp(...common, '--out', join(dir, 'local2.json'));
      const queued = await crp(
        ...common,
        '--queue',
        redis.url,
        '--queue-name',
        'cli',
        '--out',
        join(dir, 'queued.json'),
      );
      expect(queued.code, queued.stderr).toBe(0);
      expect(resultOf<{ atlas: ConceptAtlas }>(queued.stdout).atlas).toEqual(
        resultOf<{ atlas: ConceptAtlas }>(local.stdout).atlas,
      );
      expect(log).toMatch(/loaded the atlas job/);
      expect(log).toMatch(/shard \d+ done in/);
    } finally {
      worker.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });
});

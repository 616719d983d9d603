import { CondAttribution } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AnyShardedStrategy,
  atlasStrategy,
  conceptAtlas,
  decompositionAtlas,
  decompositionStrategy,
  fromIterator,
  fromTensors,
  type JobIdentity,
  type LabelledBatch,
  type LabelledDataset,
  maximization,
  maximizationStrategy,
  mergeShardFiles,
  parseShardPart,
  planShards,
  regionAtlas,
  regionAtlasStrategy,
  runShardPart,
  type ShardFile,
} from '../src/index.js';
import { decodeShardJson, encodeShardJson, runShard, selectSamples, shardsOfPart } from '../src/internal.js';
import { expectCrpError, mulberry32, tinyImages, tinyModel, useWasm } from './helpers.js';

useWasm();

let model: tfl.LayersModel;
let crp: CondAttribution;
let images: tf.Tensor4D;
let dataset: LabelledDataset;
const N = 41;
const labels = Array.from({ length: N }, (_, i) => (i * 5 + 1) % 3);
// shards of 8 in batches of 3: batches cut at shard boundaries ([0,3) [3,6) [6,8) [8,11) ...)
const grid = { shardSize: 8, batchSize: 3 };

beforeAll(() => {
  model = tinyModel(4);
  crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  images = tinyImages(N, 13);
  dataset = fromTensors(images, labels);
});
afterAll(() => {
  crp.dispose();
  model.dispose();
  images.dispose();
});

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const rng = mulberry32(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Every shard computed on its own (as queue workers do), each partial through JSON, merged in `order`. */
async function viaShards<R extends { batchSize: number }>(
  strategy: AnyShardedStrategy,
  options: unknown,
  order: (n: number) => number[],
): Promise<unknown> {
  const resolved = strategy.resolve({ crp }, options) as R;
  const samples = selectSamples(strategy, dataset, resolved);
  const shards = planShards(samples.size, grid.shardSize);
  const partials = new Map<number, unknown>();
  for (const s of shards) {
    const p = await runShard(strategy, { crp }, samples, resolved, s);
    partials.set(s.index, decodeShardJson(encodeShardJson(p)));
  }
  const total = strategy.empty(resolved);
  for (const i of order(shards.length)) strategy.merge(total, partials.get(i));
  return strategy.finish(total, resolved);
}

describe('shard JSON', () => {
  it('keeps non-finite values', () => {
    expect(decodeShardJson<number[]>(encodeShardJson([Number.NaN, -Infinity, 1.5]))).toEqual([
      Number.NaN,
      -Infinity,
      1.5,
    ]);
  });
});

describe('sharded strategies give the in-process result to the last bit', () => {
  const orders: [string, (n: number) => number[]][] = [
    ['in shard order', (n) => Array.from({ length: n }, (_, i) => i)],
    ['in reverse', (n) => Array.from({ length: n }, (_, i) => n - 1 - i)],
    [
      'shuffled',
      (n) =>
        shuffled(
          Array.from({ length: n }, (_, i) => i),
          11,
        ),
    ],
  ];

  it('concept atlas', async () => {
    const options = { target: 1, topK: 2, samples: 'all' as const, ...grid };
    const reference = await conceptAtlas(crp, dataset, options);
    expect(reference.samples).toBe(N);
    for (const [, order] of orders) expect(await viaShards(atlasStrategy, options, order)).toEqual(reference);
    // a stream with batches of other sizes is re-cut onto the same grid
    const stream = fromIterator(
      (function* () {
        for (const [start, n] of [
          [0, 5],
          [5, 1],
          [6, 13],
          [19, 22],
        ] as const) {
          yield {
            images: tf.slice(images, start, n),
            labels: labels.slice(start, start + n),
            transient: true,
          };
        }
      })() as Iterable<LabelledBatch>,
    );
    expect(await conceptAtlas(crp, stream, options)).toEqual(reference);
    // one tensor batch too
    expect(await conceptAtlas(crp, { images, labels }, options)).toEqual(reference);
  });

  it('region atlas (every concept of every layer through the adjoint pass)', async () => {
    const options = { target: 2, topK: 3, region: { centerSquare: 4 }, ...grid };
    const reference = await regionAtlas(crp, dataset, options);
    expect(reference.samples).toBe(labels.filter((y) => y === 2).length);
    for (const [, order] of orders)
      expect(await viaShards(regionAtlasStrategy, options, order)).toEqual(reference);
  });

  it('maximisation: identical top-k lists (score, then sample index) and samples', async () => {
    const options = { layers: ['c2', 'd1'], topK: 6, ...grid };
    const reference = await maximization(crp, dataset, options);
    expect(reference.relevance.c2!.samples).toBe(N);
    expect(reference.relevance.c2!.top[0]).toHaveLength(6);
    for (const [, order] of orders)
      expect(await viaShards(maximizationStrategy, options, order)).toEqual(reference);
  });

  it('decomposition atlas (the second phase of a two-phase job)', async () => {
    const common = { target: 0, concepts: 2, topK: 2, samples: 'all' as const, ...grid };
    const reference = await decompositionAtlas(crp, dataset, common);
    expect(reference.samples).toBe(N);
    const options = { ...common, atlas: reference.atlas, layers: ['c2', 'd1'] };
    for (const [, order] of orders) {
      expect(await viaShards(decompositionStrategy, options, order)).toEqual(reference);
    }
  });

  it('leaks no tensors', async () => {
    const before = tf.memory().numTensors;
    await conceptAtlas(crp, dataset, { target: 1, ...grid });
    await maximization(crp, { images, labels }, { layers: ['c1'], ...grid });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('--shard i/n partials', () => {
  const job = { model: 'tiny-4', data: 'tiny-13', toolkit: 'test', shardSize: 8 };
  const options = { target: 1, topK: 2, samples: 'all' as const, batchSize: 3 };

  async function parts(n: number): Promise<ShardFile[]> {
    const resolved = atlasStrategy.resolve({ crp }, options);
    const files: ShardFile[] = [];
    for (let i = 0; i < n; i++) {
      const file = await runShardPart(atlasStrategy, { crp, dataset }, resolved, job, { index: i, count: n });
      files.push(decodeShardJson(encodeShardJson(file)));
    }
    return files;
  }

  it('parses i/n and refuses 3/2, 0/0 and the like', () => {
    expect(parseShardPart('0/1')).toEqual({ index: 0, count: 1 });
    expect(parseShardPart(' 2 / 3 ')).toEqual({ index: 2, count: 3 });
    for (const bad of ['3/2', '0/0', '2/2', '-1/2', '1', 'a/b', '1/2/3', '1.5/3', '']) {
      expectCrpError(() => parseShardPart(bad), 'invalid-argument', /0 <= i < n/, bad);
    }
    // parts split the shards into contiguous runs that differ by at most one shard
    const shards = planShards(41, 8);
    const split = [0, 1, 2, 3].map((i) => shardsOfPart(shards, { index: i, count: 4 }).map((s) => s.index));
    // 41 samples in shards of 8: 6 shards; part i gets shards [floor(6i/4), floor(6(i+1)/4))
    expect(split).toEqual([[0], [1, 2], [3], [4, 5]]);
  });

  it('merge into the in-process atlas, any split, a file given twice counted once', async () => {
    const reference = await conceptAtlas(crp, dataset, { ...options, shardSize: 8 });
    const three = await parts(3);
    expect(mergeShardFiles(atlasStrategy, three)).toEqual(reference);
    expect(mergeShardFiles(atlasStrategy, [three[2]!, three[0]!, three[1]!, three[0]!])).toEqual(reference);
    const seven = await parts(7); // more parts than shards: some are empty
    expect(mergeShardFiles(atlasStrategy, seven)).toEqual(reference);
  });

  it('refuse missing shards, mixed splits and partials of another job, saying why', async () => {
    const three = await parts(3);
    expectCrpError(
      () => mergeShardFiles(atlasStrategy, three.slice(0, 2)),
      'empty-data',
      /missing shards: 4, 5/,
    );
    const two = await parts(2);
    expectCrpError(
      () => mergeShardFiles(atlasStrategy, [...three, two[0]!]),
      'job-mismatch',
      /different shard sets/,
    );
    const other: ShardFile = { ...three[1]!, job: { ...(three[1]!.job as JobIdentity), model: 'tiny-5' } };
    expectCrpError(
      () => mergeShardFiles(atlasStrategy, [three[0]!, other, three[2]!], ['a', 'b', 'c']),
      'job-mismatch',
      /b belongs to another job than a: model tiny-4 vs tiny-5/,
    );
    expectCrpError(
      () => mergeShardFiles(regionAtlasStrategy, three),
      'job-mismatch',
      /holds a atlas job, not region-atlas/,
    );
  });
});

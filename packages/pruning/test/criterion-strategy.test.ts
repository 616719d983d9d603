import { fromTensors, planShards } from '@crp/attribution';
import { decodeShardJson, encodeShardJson, runShard, selectSamples } from '@crp/attribution/internal';
import { CondAttribution } from '@crp/core';
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activationScores,
  type CriterionJobOptions,
  type CriterionPartial,
  criterionStrategy,
  relevanceScores,
  taylorScores,
} from '../src/index.js';
import { expectCrpError, tinyImages, tinyModel, useBackend } from './helpers.js';

useBackend('cpu');

const N = 29;
const labels = Array.from({ length: N }, (_, i) => (i * 2 + 1) % 3);
let model: tfl.LayersModel;
let x: tf.Tensor4D;
let crp: CondAttribution;

beforeAll(() => {
  model = tinyModel();
  x = tinyImages(N, 9);
  crp = new CondAttribution(model);
});
afterAll(() => {
  crp.dispose();
  x.dispose();
});

/** Each shard on its own, through JSON, merged in reverse order: what queue workers and a coordinator do. */
async function sharded(options: CriterionJobOptions, shardSize: number) {
  const ctx = { crp, model, dataset: fromTensors(x, labels) };
  const resolved = criterionStrategy.resolve(ctx, options);
  const samples = selectSamples(criterionStrategy, ctx.dataset, resolved);
  const partials: CriterionPartial[] = [];
  for (const s of planShards(samples.size, shardSize)) {
    const p = await runShard(criterionStrategy, ctx, samples, resolved, s);
    partials.push(decodeShardJson(encodeShardJson(p)));
  }
  const total = criterionStrategy.empty(resolved);
  for (const p of partials.reverse()) criterionStrategy.merge(total, p);
  return criterionStrategy.finish(total, resolved);
}

describe('pruning criteria as a sharded strategy', () => {
  it('relevance, activation and Taylor sums equal the in-process scores to the last bit', async () => {
    const grid = { batchSize: 3, shardSize: 8 };
    const data = { images: x, labels };
    for (const normalize of [false, true]) {
      expect(await sharded({ criterion: 'relevance', normalize, ...grid }, 8)).toEqual(
        relevanceScores(model, { data, normalize, ...grid }),
      );
      expect(await sharded({ criterion: 'activation', normalize, ...grid }, 8)).toEqual(
        activationScores(model, { data, normalize, ...grid }),
      );
      expect(await sharded({ criterion: 'taylor', normalize, objective: 'logit', ...grid }, 8)).toEqual(
        taylorScores(model, { data, normalize, objective: 'logit', ...grid }),
      );
    }
  });

  it('refuses criteria that are no sums, unknown composites, and a context without the model', async () => {
    const ctx = { crp, model };
    await expectCrpError(
      () => criterionStrategy.resolve(ctx, { criterion: 'weight' as 'relevance' }),
      'invalid-argument',
      /not a sum over samples.*weightScores/,
    );
    await expectCrpError(
      () => criterionStrategy.resolve(ctx, { criterion: 'relevance', composite: 'nope' }),
      'unknown-composite',
      /epsilon_plus_flat/,
    );
    await expectCrpError(
      () => criterionStrategy.resolve({ crp }, { criterion: 'relevance' }),
      'invalid-argument',
      /model itself/,
    );
  });
});

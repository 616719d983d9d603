import type { ShardedStrategy } from '@crp/attribution';
import { CrpError } from '@crp/common';
import { CondAttribution } from '@crp/core';
import { Attributor, compositeByName, gradient, layerMapComposite } from '@crp/lrp';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type ChannelScores, type CriterionOptions, finish, resolveLayers } from './criteria.js';
import {
  type CriterionPartial,
  criterionBatch,
  criterionValues,
  emptyCriterionPartial,
  mergeCriterionPartials,
  SUMMED_CRITERIA,
  type SummedCriterion,
} from './criterion-sums.js';

/** Options of a sharded criterion job: a summed criterion, and the relevance criterion's composite by name
 * (JSON travels to workers; a composite object does not). */
export interface CriterionJobOptions
  extends Pick<CriterionOptions, 'layers' | 'normalize' | 'batchSize' | 'objective'> {
  criterion: SummedCriterion;
  /** relevance: a built-in composite by name (default `epsilon_plus_flat`, with the batch-norm merge) */
  composite?: string;
  /** relevance with `epsilon_gamma_box`: the input range of the first layer's box rule (default 0..1) */
  box?: { low: number; high: number };
}

/** A criterion job's options checked against the model: plain JSON. */
export interface ResolvedCriterionOptions {
  criterion: SummedCriterion;
  layers: string[];
  normalize: boolean;
  batchSize: number;
  objective: 'loss' | 'logit';
  composite: string;
  box: { low: number; high: number };
}

// one engine per model and engine settings, kept as long as the model (a worker computes many shards)
const engines = new WeakMap<LayersModel, Map<string, CondAttribution | Attributor>>();

function engineFor(model: LayersModel, r: ResolvedCriterionOptions): CondAttribution | Attributor {
  const key =
    r.criterion === 'relevance' ? `relevance:${r.composite}:${r.box.low}:${r.box.high}` : 'gradient';
  let byKey = engines.get(model);
  if (byKey === undefined) {
    byKey = new Map();
    engines.set(model, byKey);
  }
  let engine = byKey.get(key);
  if (engine === undefined) {
    engine =
      r.criterion === 'relevance'
        ? new CondAttribution(model, { composite: compositeByName(r.composite, r.box) })
        : new Attributor(model, {
            composite: layerMapComposite([[() => true, gradient()]], 'Gradient'),
            canonizers: [],
          });
    byKey.set(key, engine);
  }
  return engine;
}

function modelOf(ctx: { model?: LayersModel }): LayersModel {
  if (ctx.model === undefined) {
    throw new CrpError(
      'invalid-argument',
      'pruning criteria need the model itself: give { crp, dataset, model } as the job context',
    );
  }
  return ctx.model;
}

/**
 * The summed pruning criteria (relevance, activation, Taylor: see {@link relevanceScores} and its siblings)
 * as a `ShardedStrategy` of `@crp/attribution` (kind `pruning-criterion`): every reference sample, explained
 * for its own label; partials are exact per-channel sums. The same scores as the in-process functions with
 * the same batch and shard size (and, for relevance, the composite named here).
 */
export const criterionStrategy: ShardedStrategy<
  CriterionJobOptions,
  ResolvedCriterionOptions,
  CriterionPartial,
  ChannelScores
> = {
  kind: 'pruning-criterion',
  version: 1,
  resolve: (ctx, options) => {
    const model = modelOf(ctx);
    if (!SUMMED_CRITERIA.includes(options.criterion)) {
      throw new CrpError(
        'invalid-argument',
        `criterion '${String(options.criterion)}' is not a sum over samples; sharded criteria: ${SUMMED_CRITERIA.join(', ')} (weight and random need no data: call weightScores or randomScores)`,
      );
    }
    const composite = options.composite ?? 'epsilon_plus_flat';
    const box = options.box ?? { low: 0, high: 1 };
    compositeByName(composite, box); // unknown names fail with the valid ones
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new CrpError('invalid-argument', `batchSize must be a positive integer, got ${batchSize}`);
    }
    const objective = options.objective ?? 'loss';
    if (objective !== 'loss' && objective !== 'logit') {
      throw new CrpError(
        'invalid-argument',
        `objective must be 'loss' or 'logit', got '${String(objective)}'`,
      );
    }
    return {
      criterion: options.criterion,
      layers: resolveLayers(model, options),
      normalize: options.normalize ?? true,
      batchSize,
      objective,
      composite,
      box: { low: box.low, high: box.high },
    };
  },
  select: (source) => source,
  empty: emptyCriterionPartial,
  batch: (ctx, batch, r) => {
    const model = modelOf(ctx);
    const classes = (model.outputs[0]!.shape as number[]).at(-1)!;
    const bad = batch.labels.find((y) => !Number.isInteger(y) || y < 0 || y >= classes);
    if (bad !== undefined) {
      throw new CrpError(
        'invalid-target',
        `label ${bad} is out of range: the model has ${classes} outputs (valid: 0..${classes - 1})`,
      );
    }
    return criterionBatch(
      r.criterion,
      engineFor(model, r),
      batch.images,
      batch.labels,
      r.layers,
      r.objective,
    );
  },
  merge: mergeCriterionPartials,
  finish: (partial, r) => {
    // channel counts come from the partial (the model is not at hand where partials are merged)
    const channels = (l: string) => partial.layers[l]?.length ?? 0;
    return finish(
      r.criterion,
      r.layers,
      criterionValues(partial, r.criterion, r.layers, channels),
      r.normalize,
    );
  },
};

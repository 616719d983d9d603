import { CrpError, type ProgressCallback } from '@crp/common';
import type { CondAttribution } from '@crp/core';
import { defaultConcept, disposeCondResult, HeadConcept } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import type { LabelledSource } from './dataset.js';
import { runShardedPartial, type ShardedStrategy } from './sharding.js';

/** How a channel map becomes one score: the sum over positions, or the largest value. */
export type MaxTarget = 'sum' | 'max';

export interface MaximizationOptions {
  /** Layers to rank channels of. */
  layers: readonly string[];
  /** `sum` (default) or `max` over spatial positions. */
  maxTarget?: MaxTarget;
  /** Divide each sample's channel scores by (sum of their absolute values + 1e-10). Default true, as
   * zennit-crp's FeatureVisualization. */
  absNorm?: boolean;
  /** Samples kept per channel (default 40, as zennit-crp). */
  topK?: number;
  /** Images per forward/backward batch (default 16). */
  batchSize?: number;
  /** Keep every sample's channel scores (`scores`, N x C). Default false. */
  keepScores?: boolean;
  /** Called after each batch with the samples done (`total` is undefined for a source of unknown size). */
  onProgress?: ProgressCallback;
  /** Samples per shard (default 64): batches start at each shard's first sample, as in sharded runs. */
  shardSize?: number;
}

/** One of the best samples of a channel. */
export interface RankedSample {
  /** index in the data set */
  sample: number;
  score: number;
  /** flat spatial index h * W + w of the channel map's largest value in that sample (the token for a layer of
   * tokens, 0 for dense layers) */
  argmaxPosition: number;
}

/** The ranking of one layer by relevance or by activation. JSON-serialisable except `scores`. */
export interface MaximizationTable {
  layer: string;
  kind: 'relevance' | 'activation';
  channels: number;
  /** [H, W] of the channel maps ([tokens, 1] for a layer of tokens, [1, 1] for dense layers) */
  mapSize: [number, number];
  /** per channel, the best samples, highest score first (ties: lower sample index first) */
  top: RankedSample[][];
  /** samples seen */
  samples: number;
  /** all scores, row-major [sample][channel], when `keepScores` */
  scores?: Float32Array;
}

export interface MaximizationResult {
  relevance: Record<string, MaximizationTable>;
  activation: Record<string, MaximizationTable>;
}

/** Per sample and channel: score (sum/max over positions, optionally abs-normalised) and argmax position. */
function scoreMaps(
  maps: tf.Tensor,
  maxTarget: MaxTarget,
  absNorm: boolean,
): { scores: Float32Array; argmax: Int32Array } {
  const [scores, argmax] = tf.tidy(() => {
    const b = maps.shape[0]!;
    const c = maps.shape[maps.rank - 1]!;
    const flat = tf.reshape(maps, [b, -1, c]);
    let s = maxTarget === 'sum' ? tf.sum(flat, 1) : tf.max(flat, 1);
    if (absNorm) s = tf.div(s, tf.add(tf.sum(tf.abs(s), 1, true), 1e-10));
    return [s, tf.argMax(flat, 1)];
  });
  const out = { scores: scores.dataSync() as Float32Array, argmax: argmax.dataSync() as Int32Array };
  scores.dispose();
  argmax.dispose();
  return out;
}

/**
 * Relevance and activation maximisation (zennit-crp's FeatureVisualization): over a labelled data set, each
 * sample is explained for its own label (condition `{ y: [label] }`); for every channel of the chosen
 * layers, samples are ranked by the channel's relevance (relevance maximisation) and by its activation
 * (activation maximisation). The backward pass stops at the lowest chosen layer. Runs through
 * {@link maximizationStrategy} in this process (the same top-k as sharded and distributed runs).
 */
export async function maximization(
  crp: CondAttribution,
  source: LabelledSource,
  options: MaximizationOptions,
): Promise<MaximizationResult> {
  const resolved = resolveMaximizationOptions(crp, options);
  const rows = new Map<string, Float32Array[]>();
  const keep = (key: string, scores: Float32Array) => {
    rows.set(key, [...(rows.get(key) ?? []), scores]);
  };
  // keepScores: the same batches, with their scores collected on the side
  const strategy: typeof maximizationStrategy = options.keepScores
    ? { ...maximizationStrategy, batch: (ctx, batch, r) => maximizationBatch(ctx.crp, batch, r, keep) }
    : maximizationStrategy;
  const partial = await runShardedPartial(strategy, { crp }, source, resolved, {
    ...(options.shardSize === undefined ? {} : { shardSize: options.shardSize }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
  const out = finishMaximization(partial, resolved);
  if (options.keepScores) {
    for (const table of [...Object.values(out.relevance), ...Object.values(out.activation)]) {
      const parts = rows.get(`${table.kind}:${table.layer}`) ?? [];
      const all = new Float32Array(parts.reduce((s, r) => s + r.length, 0));
      let at = 0;
      for (const r of parts) {
        all.set(r, at);
        at += r.length;
      }
      table.scores = all;
    }
  }
  return out;
}

/** Maximisation options checked against the model: plain JSON. */
export interface ResolvedMaximizationOptions {
  layers: string[];
  maxTarget: MaxTarget;
  absNorm: boolean;
  topK: number;
  batchSize: number;
}

/** The best samples of some samples, per table (`relevance:<layer>`, `activation:<layer>`): mergeable, the
 * partial of a sharded run. Merging keeps the top-k by score (ties: lower sample index), whatever the order. */
export interface MaximizationPartial {
  samples: number;
  /** samples kept per channel */
  topK: number;
  tables: Record<string, Omit<MaximizationTable, 'samples' | 'scores'>>;
}

function compareRanked(a: RankedSample, b: RankedSample): number {
  return b.score - a.score || a.sample - b.sample;
}

/** Checks layer names (unknown ones fail with the valid names) and the options. */
export function resolveMaximizationOptions(
  crp: CondAttribution,
  options: MaximizationOptions,
): ResolvedMaximizationOptions {
  const layers = [...options.layers];
  if (layers.length === 0)
    throw new CrpError('invalid-argument', 'maximization needs at least one layer in options.layers');
  for (const l of layers) crp.attributor.graph.node(l); // unknown names fail with the valid ones
  const maxTarget = options.maxTarget ?? 'sum';
  if (maxTarget !== 'sum' && maxTarget !== 'max') {
    throw new CrpError('invalid-argument', `maxTarget must be 'sum' or 'max', got '${String(maxTarget)}'`);
  }
  const topK = options.topK ?? 40;
  const batchSize = options.batchSize ?? 16;
  for (const [name, v] of [
    ['topK', topK],
    ['batchSize', batchSize],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new CrpError('invalid-argument', `${name} must be a positive integer, got ${v}`);
  }
  return { layers, maxTarget, absNorm: options.absNorm ?? true, topK, batchSize };
}

/**
 * The best samples of one batch (each explained for its own label), per channel of every layer, by relevance
 * and by activation. `onScores` (optional) gets every sample's channel scores per table.
 */
export function maximizationBatch(
  crp: CondAttribution,
  batch: { images: tf.Tensor; labels: readonly number[]; indices: readonly number[] },
  options: ResolvedMaximizationOptions,
  onScores?: (key: string, scores: Float32Array) => void,
): MaximizationPartial {
  const { layers, topK } = options;
  const partial: MaximizationPartial = { samples: batch.labels.length, topK, tables: {} };
  const conditions = batch.labels.map((label) => ({ y: [label] }));
  const result = crp.run(batch.images, conditions, {
    recordLayers: layers,
    recordActivations: layers,
    heatmap: false,
    chunkSize: options.batchSize,
  });
  try {
    for (const layer of layers) {
      const heads = defaultConcept(crp.attributor.graph, layer) instanceof HeadConcept;
      for (const kind of ['relevance', 'activation'] as const) {
        const recorded = kind === 'relevance' ? result.relevances[layer]! : result.activations[layer]!;
        // heads [b, H, T, d]: per head a map of tokens, its d features summed ([b, T, H]), so that a head's
        // score is HeadConcept's (the sum over tokens and features) and its argmax is a token
        const maps = heads ? tf.tidy(() => tf.transpose(tf.sum(recorded, -1), [0, 2, 1])) : recorded;
        const key = `${kind}:${layer}`;
        const c = maps.shape[maps.rank - 1]!;
        // tokens [b, T, C] (a ViT) are a T x 1 map: argmaxPosition is the token
        const mapSize: [number, number] =
          maps.rank === 4 ? [maps.shape[1]!, maps.shape[2]!] : maps.rank === 3 ? [maps.shape[1]!, 1] : [1, 1];
        const { scores, argmax } = scoreMaps(maps, options.maxTarget, options.absNorm);
        if (heads) maps.dispose();
        onScores?.(key, scores);
        const top: RankedSample[][] = Array.from({ length: c }, (_, ch) =>
          batch.indices
            .map((sample, i) => ({ sample, score: scores[i * c + ch]!, argmaxPosition: argmax[i * c + ch]! }))
            .sort(compareRanked)
            .slice(0, topK),
        );
        partial.tables[key] = { layer, kind, channels: c, mapSize, top };
      }
    }
  } finally {
    disposeCondResult(result);
  }
  return partial;
}

/** Adds `b` into `a` (in place): per channel the top-k of both lists. */
export function mergeMaximizationPartials(
  a: MaximizationPartial,
  b: MaximizationPartial,
): MaximizationPartial {
  const topK = a.topK;
  if (b.topK !== topK) {
    throw new CrpError('invalid-argument', `cannot merge partials of top-${b.topK} into top-${topK} lists`);
  }
  a.samples += b.samples;
  for (const [key, t] of Object.entries(b.tables)) {
    const into = a.tables[key];
    if (into === undefined) {
      a.tables[key] = {
        ...t,
        mapSize: [...t.mapSize],
        top: t.top.map((list) => list.map((r) => ({ ...r }))),
      };
      continue;
    }
    into.top = into.top.map((list, ch) => [...list, ...t.top[ch]!].sort(compareRanked).slice(0, topK));
  }
  return a;
}

/** The tables of a merged partial. */
export function finishMaximization(
  partial: MaximizationPartial,
  options: ResolvedMaximizationOptions,
): MaximizationResult {
  const out: MaximizationResult = { relevance: {}, activation: {} };
  // layer order, relevance before activation, as the batches record them
  for (const layer of options.layers) {
    for (const kind of ['relevance', 'activation'] as const) {
      const t = partial.tables[`${kind}:${layer}`];
      if (t === undefined) continue;
      out[kind][layer] = {
        layer,
        kind,
        channels: t.channels,
        mapSize: [...t.mapSize],
        top: t.top.map((list) => list.slice(0, options.topK)),
        samples: partial.samples,
      };
    }
  }
  return out;
}

/** Relevance and activation maximisation as a {@link ShardedStrategy} (kind `maximization`): every sample,
 * explained for its own label. */
export const maximizationStrategy: ShardedStrategy<
  MaximizationOptions,
  ResolvedMaximizationOptions,
  MaximizationPartial,
  MaximizationResult
> = {
  kind: 'maximization',
  version: 1,
  resolve: (ctx, options) => {
    if (options.keepScores) {
      throw new CrpError(
        'invalid-argument',
        "keepScores keeps every sample's scores: only the in-process maximization() does; a sharded run keeps the top-k",
      );
    }
    return resolveMaximizationOptions(ctx.crp, options);
  },
  select: (source) => source,
  empty: (resolved) => ({ samples: 0, topK: resolved.topK, tables: {} }),
  batch: (ctx, batch, resolved) => maximizationBatch(ctx.crp, batch, resolved),
  merge: mergeMaximizationPartials,
  finish: finishMaximization,
};

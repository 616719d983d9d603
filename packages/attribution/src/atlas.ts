import {
  addExact,
  CrpError,
  type ExactVector,
  exactVector,
  mergeVector,
  type ProgressCallback,
  vectorValues,
} from '@crp/common';
import { type CondAttribution, defaultConcept, disposeCondResult } from '@crp/core';
import type { ModelGraph } from '@crp/lrp';
import { PARAMETRIC_KINDS } from '@crp/lrp/internal';
import type * as tf from '@tensorflow/tfjs-core';
import { type LabelledDataset, type LabelledSource, subset } from './dataset.js';
import { runSharded, type ShardedStrategy } from './sharding.js';
import { transformerConceptLayers } from './transformer-concepts.js';

/** One concept of a layer in an atlas. */
export interface AtlasEntry {
  concept: number;
  /** samples that vote for the concept: it is among their top-k of the layer by evidence for the class and its
   * relevance is not 0 (see {@link votedConcepts}) */
  votes: number;
  /** mean over all samples of the concept's relevance (abs-normalised per sample when `absNorm`) */
  meanRelevance: number;
  /** votes / samples */
  shareOfSamples: number;
  /** mean over all samples of the concept's share of the layer's relevance, in percent: 100 * R_c / sum over
   * the layer's concepts of |R_c'| per sample (the seed's "x% of the layer's relevance") */
  percent: number;
}

/** `"k/n"`: a concept's votes out of the samples voted, as the seed's findings state them ("40/40"). */
export function formatVotes(entry: Pick<AtlasEntry, 'votes'>, atlas: Pick<ConceptAtlas, 'samples'>): string {
  return `${entry.votes}/${atlas.samples}`;
}

/** The ranking of one layer: every concept, most votes first (then higher mean relevance, lower index). */
export interface AtlasLayer {
  layer: string;
  concepts: number;
  ranking: AtlasEntry[];
}

/** Which concepts a class relies on, layer by layer, voted over samples. Plain JSON. */
export interface ConceptAtlas {
  /** the class explained */
  target: number;
  topK: number;
  absNorm: boolean;
  /** samples voted */
  samples: number;
  /** layer names in the order given (default: input towards output) */
  layerOrder: string[];
  layers: Record<string, AtlasLayer>;
}

/** Votes and relevance sums of some samples (mergeable; what a job writes per batch). `sums` adds the scores
 * that voted (abs-normalised when `absNorm`), `shares` each concept's share of its layer's absolute relevance
 * (for `percent`). */
export interface AtlasPartial {
  samples: number;
  layers: Record<string, { votes: number[]; sums: number[]; shares: number[] }>;
}

export interface AtlasOptions {
  /** the class explained (condition `{ y: [target] }` for every sample); required */
  target?: number;
  /** layers to vote in (default: every conv and dense layer below the output, see {@link conceptLayers}) */
  layers?: readonly string[];
  /** concepts per sample and layer that get a vote (default 5) */
  topK?: number;
  /** divide each sample's concept relevances by their absolute sum (default true) */
  absNorm?: boolean;
  /** `'class'` (default): only samples labelled `target`; `'all'`: every sample, explained for `target` */
  samples?: 'class' | 'all';
  /** images per backward pass (default 16) */
  batchSize?: number;
  /** Called after each batch with the samples done (`unit: 'samples'`). */
  onProgress?: ProgressCallback;
  /** Samples per shard (default 64, see {@link runSharded}): batches start at each shard's first sample, so the
   * atlas is bit-identical to a sharded run (worker threads, queue, `--shard` files) with the same shard size. */
  shardSize?: number;
}

/** The conv and dense layers (by node id) from the input towards the output, without the output layer
 * itself (its only relevant unit is the explained class); for a transformer, each block's heads, MLP neurons, MLP
 * output and block output ({@link transformerConceptLayers}). */
export function conceptLayers(graph: ModelGraph): string[] {
  const transformer = transformerConceptLayers(graph);
  if (transformer !== undefined) return transformer;
  return graph.nodes
    .filter((n) => PARAMETRIC_KINDS.includes(n.kind) && n.id !== graph.outputId)
    .map((n) => n.id);
}

/** Checks layer names (unknown ones fail listing the valid names) and returns node ids. */
export function resolveLayers(graph: ModelGraph, layers: readonly string[] | undefined): string[] {
  const ids = layers === undefined ? conceptLayers(graph) : layers.map((l) => graph.node(l).id);
  if (ids.length === 0) {
    throw new CrpError(
      'invalid-argument',
      `no layers to analyse; give layers, e.g. one of: ${conceptLayers(graph).join(', ') || graph.ids.join(', ')}`,
    );
  }
  return ids;
}

export function checkTopK(topK: number, name = 'topK'): void {
  if (!Number.isInteger(topK) || topK < 1) {
    throw new CrpError('invalid-argument', `${name} must be a positive integer, got ${topK}`);
  }
}

/** Indices of the k largest values (ties: lower index first). */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: values.length }, (_, i) => i)
    .sort((a, b) => values[b]! - values[a]! || a - b)
    .slice(0, k);
}

/**
 * The concepts one sample votes for: its top k by evidence for the class, i.e. relevance times the sign of the
 * sample's target logit (relevance starts as the logit, as in zennit-crp, and LRP is linear in it, so under a
 * negative logit the evidence for the class is the negative relevance; with a positive logit this is the
 * ranking by relevance), less the concepts whose relevance is exactly 0 (dead: no evidence either way), so a
 * sample may vote for fewer than k. Returns positions in `relevance`; ties: lower concept first (`concepts[i]`,
 * the concept at position i, default i).
 */
export function votedConcepts(
  relevance: ArrayLike<number>,
  k: number,
  logit: number,
  concepts?: readonly number[],
): number[] {
  const sign = logit < 0 ? -1 : 1;
  const id = (i: number) => (concepts === undefined ? i : concepts[i]!);
  return Array.from({ length: relevance.length }, (_, i) => i)
    .sort((a, b) => sign * (relevance[b]! - relevance[a]!) || id(a) - id(b))
    .slice(0, k)
    .filter((i) => relevance[i] !== 0);
}

/** Each row's logit of `target` from a prediction [rows, classes]. */
export function targetLogits(prediction: tf.Tensor, target: number): Float32Array {
  const classes = prediction.shape[prediction.rank - 1]!;
  const all = prediction.dataSync();
  return Float32Array.from({ length: all.length / classes }, (_, r) => all[r * classes + target]!);
}

export interface ResolvedAtlasOptions {
  target: number;
  layers: string[];
  topK: number;
  absNorm: boolean;
  batchSize: number;
}

export function resolveAtlasOptions(crp: CondAttribution, options: AtlasOptions): ResolvedAtlasOptions {
  const classes = crp.attributor.graph.node(crp.attributor.graph.outputId).outputShape.at(-1);
  const target = options.target;
  if (target === undefined) {
    throw new CrpError('invalid-target', 'give the class to explain as options.target');
  }
  if (!Number.isInteger(target) || target < 0 || (typeof classes === 'number' && target >= classes)) {
    throw new CrpError(
      'invalid-target',
      `target ${target} is out of range: the model has ${classes} outputs (valid: 0..${Number(classes) - 1})`,
    );
  }
  const topK = options.topK ?? 5;
  checkTopK(topK);
  const batchSize = options.batchSize ?? 16;
  checkTopK(batchSize, 'batchSize');
  if (options.samples !== undefined && options.samples !== 'class' && options.samples !== 'all') {
    throw new CrpError(
      'invalid-argument',
      `samples must be 'class' or 'all', got '${String(options.samples)}'`,
    );
  }
  return {
    target,
    layers: resolveLayers(crp.attributor.graph, options.layers),
    topK,
    absNorm: options.absNorm ?? true,
    batchSize,
  };
}

/** Adds each sample's votes ({@link votedConcepts}, by its target logit in `logits`) and its scores ([rows, C]
 * values) to a partial's layer. */
export function voteInto(
  partial: AtlasPartial,
  layer: string,
  scores: ArrayLike<number>,
  logits: ArrayLike<number>,
  topK: number,
): void {
  const rows = logits.length;
  const c = scores.length / rows;
  let entry = partial.layers[layer];
  if (entry === undefined) {
    entry = {
      votes: new Array<number>(c).fill(0),
      sums: new Array<number>(c).fill(0),
      shares: new Array<number>(c).fill(0),
    };
    partial.layers[layer] = entry;
  }
  for (let r = 0; r < rows; r++) {
    const row = Array.prototype.slice.call(scores, r * c, (r + 1) * c) as number[];
    for (const k of votedConcepts(row, topK, logits[r]!)) entry.votes[k]! += 1;
    const norm = row.reduce((s, x) => s + Math.abs(x), 0) + 1e-10;
    for (let k = 0; k < c; k++) {
      entry.sums[k]! += row[k]!;
      entry.shares[k]! += row[k]! / norm;
    }
  }
}

/**
 * Atlas votes of one batch: one forward and one backward pass for all rows (condition `{ y: [target] }`
 * per row), stopping at the lowest layer, recording every layer.
 */
export function atlasBatch(
  crp: CondAttribution,
  images: tf.Tensor,
  options: ResolvedAtlasOptions,
): AtlasPartial {
  const rows = images.shape[0]!;
  const partial: AtlasPartial = { samples: rows, layers: {} };
  const result = crp.run(
    images,
    Array.from({ length: rows }, () => ({ y: [options.target] })),
    { recordLayers: options.layers, heatmap: false, chunkSize: options.batchSize },
  );
  try {
    const logits = targetLogits(result.prediction, options.target);
    for (const layer of options.layers) {
      // channels, or the heads of an attention product (defaultConcept)
      const concept = defaultConcept(crp.attributor.graph, layer);
      const scores = concept.attribute(result.relevances[layer]!, { absNorm: options.absNorm });
      const data = scores.dataSync();
      scores.dispose();
      voteInto(partial, layer, data, logits, options.topK);
    }
  } finally {
    disposeCondResult(result);
  }
  return partial;
}

/** Adds `b` into `a` (in place) and returns `a`. Merging in a fixed order gives identical sums. */
export function mergeAtlasPartials(a: AtlasPartial, b: AtlasPartial): AtlasPartial {
  a.samples += b.samples;
  for (const [layer, e] of Object.entries(b.layers)) {
    const into = a.layers[layer];
    // partials written before `shares` existed count as zero shares
    const shares = e.shares ?? new Array<number>(e.votes.length).fill(0);
    if (into === undefined) {
      a.layers[layer] = { votes: [...e.votes], sums: [...e.sums], shares: [...shares] };
      continue;
    }
    e.votes.forEach((v, k) => {
      into.votes[k]! += v;
    });
    e.sums.forEach((v, k) => {
      into.sums[k]! += v;
    });
    shares.forEach((v, k) => {
      into.shares[k]! += v;
    });
  }
  return a;
}

/** Ranks the merged votes into an atlas. */
export function finishAtlas(partial: AtlasPartial, options: ResolvedAtlasOptions): ConceptAtlas {
  const n = partial.samples;
  const layers: Record<string, AtlasLayer> = {};
  for (const layer of options.layers) {
    const e = partial.layers[layer];
    const ranking: AtlasEntry[] =
      e === undefined
        ? []
        : e.votes.map((votes, concept) => ({
            concept,
            votes,
            meanRelevance: n === 0 ? 0 : e.sums[concept]! / n,
            shareOfSamples: n === 0 ? 0 : votes / n,
            percent: n === 0 ? 0 : (100 * e.shares[concept]!) / n,
          }));
    ranking.sort((a, b) => b.votes - a.votes || b.meanRelevance - a.meanRelevance || a.concept - b.concept);
    layers[layer] = { layer, concepts: ranking.length, ranking };
  }
  return {
    target: options.target,
    topK: options.topK,
    absNorm: options.absNorm,
    samples: n,
    layerOrder: [...options.layers],
    layers,
  };
}

/**
 * The concept atlas of a class (latent, layer-crossing): per sample the top-k concepts of each layer by
 * channel relevance (ChannelConcept.attribute, abs-normalised by default) for the class, then votes across
 * samples, per layer ranked as {concept, votes, meanRelevance, shareOfSamples}. One backward pass per batch
 * records all layers and stops at the lowest. Runs through {@link atlasStrategy} in this process: sums are
 * exact, batches start at every shard's first sample, so sharded and distributed runs give the same atlas.
 *
 * ```ts
 * const atlas = await conceptAtlas(crp, fromTensors(images, labels), { target: 3 });
 * atlas.layers.block5_conv3.ranking.slice(0, 5); // the concepts most samples of class 3 rely on
 * ```
 */
export async function conceptAtlas(
  crp: CondAttribution,
  source: LabelledSource | LabelledDataset,
  options: AtlasOptions,
): Promise<ConceptAtlas> {
  return runSharded(atlasStrategy, { crp }, source, options, {
    ...(options.shardSize === undefined ? {} : { shardSize: options.shardSize }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
}

/** Votes and exact sums (see exact-sum.ts) of some samples: the mergeable partial of a sharded atlas. Merging
 * such partials in any grouping and order gives the same atlas to the last bit. */
export interface AtlasShardPartial {
  samples: number;
  layers: Record<string, { votes: number[]; sums: ExactVector; shares: ExactVector }>;
}

/** Atlas options resolved for a sharded run: the resolved atlas options and which samples vote. */
export interface ShardedAtlasOptions extends ResolvedAtlasOptions {
  samples: 'class' | 'all';
}

/** A batch's {@link AtlasPartial} as a shard partial (each sum exact with one term). */
export function toAtlasShard(p: AtlasPartial): AtlasShardPartial {
  return {
    samples: p.samples,
    layers: Object.fromEntries(
      Object.entries(p.layers).map(([layer, e]) => [
        layer,
        {
          votes: [...e.votes],
          sums: e.sums.map((x) => addExact([], x)),
          shares: (e.shares ?? e.votes.map(() => 0)).map((x) => addExact([], x)),
        },
      ]),
    ),
  };
}

/** Adds shard partial `b` into `into` (exact) and returns `into`. */
export function mergeAtlasShards(into: AtlasShardPartial, b: AtlasShardPartial): AtlasShardPartial {
  into.samples += b.samples;
  for (const [layer, e] of Object.entries(b.layers)) {
    let t = into.layers[layer];
    if (t === undefined) {
      const c = e.votes.length;
      t = { votes: new Array<number>(c).fill(0), sums: exactVector(c), shares: exactVector(c) };
      into.layers[layer] = t;
    }
    e.votes.forEach((v, k) => {
      t.votes[k]! += v;
    });
    mergeVector(t.sums, e.sums);
    mergeVector(t.shares, e.shares);
  }
  return into;
}

/** The partial with its exact sums rounded (what {@link finishAtlas} takes). */
export function roundAtlasShard(p: AtlasShardPartial): AtlasPartial {
  return {
    samples: p.samples,
    layers: Object.fromEntries(
      Object.entries(p.layers).map(([layer, e]) => [
        layer,
        { votes: [...e.votes], sums: vectorValues(e.sums), shares: vectorValues(e.shares) },
      ]),
    ),
  };
}

/** The concept atlas as a {@link ShardedStrategy} (kind `atlas`). */
export const atlasStrategy: ShardedStrategy<
  AtlasOptions,
  ShardedAtlasOptions,
  AtlasShardPartial,
  ConceptAtlas
> = {
  kind: 'atlas',
  version: 1,
  resolve: (ctx, options) => {
    const samples = options.samples ?? 'class';
    return { ...resolveAtlasOptions(ctx.crp, options), samples };
  },
  select: (source, resolved) =>
    resolved.samples === 'all' ? source : subset(source, { classes: [resolved.target] }),
  empty: () => ({ samples: 0, layers: {} }),
  batch: (ctx, batch, resolved) => toAtlasShard(atlasBatch(ctx.crp, batch.images, resolved)),
  merge: mergeAtlasShards,
  finish: (partial, resolved) => finishAtlas(roundAtlasShard(partial), resolved),
};

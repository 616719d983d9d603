import { CrpError, type Progress } from '@crp/common';
import type { CondAttribution, Condition } from '@crp/core';
import { defaultConcept, disposeCondResult } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import {
  type AtlasPartial,
  type AtlasShardPartial,
  type ConceptAtlas,
  checkTopK,
  finishAtlas,
  mergeAtlasPartials,
  mergeAtlasShards,
  type ResolvedAtlasOptions,
  resolveAtlasOptions,
  resolveLayers,
  roundAtlasShard,
  toAtlasShard,
  votedConcepts,
} from './atlas.js';
import { type LabelledDataset, type LabelledSource, subset } from './dataset.js';
import { runSharded, type ShardedStrategy } from './sharding.js';

/** A pixel rectangle: left column `x`, top row `y`, size (the `Box` of @crp/vis). */
export interface RegionBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * An input region: a mask of H * W values (row-major; 1 inside, 0 outside; other values weight pixels), one or
 * more boxes (their union), or a centred square of a given side (e.g. 100 on a 224 image).
 */
export type Region =
  | { mask: ArrayLike<number> | tf.Tensor }
  | { boxes: readonly RegionBox[] }
  | { centerSquare: number };

/** The region as H * W weights (row-major). Refuses masks of the wrong size, non-finite weights and regions
 * that cover no pixel of the input (all weights zero, or boxes outside the image). */
export function regionMask(region: Region, height: number, width: number): Float32Array {
  const out = new Float32Array(height * width);
  if (region === null || typeof region !== 'object') {
    throw new CrpError(
      'invalid-argument',
      'a region is { centerSquare: side }, { boxes: [{ x, y, width, height }] } or { mask } (H x W weights)',
    );
  }
  if ('mask' in region) {
    const m = region.mask instanceof tf.Tensor ? region.mask.dataSync() : region.mask;
    if (m.length !== height * width) {
      throw new CrpError(
        'invalid-argument',
        `region mask has ${m.length} values; the input is ${height}x${width}, so give ${height * width} (row-major)`,
      );
    }
    for (let i = 0; i < m.length; i++) {
      if (!Number.isFinite(m[i]!))
        throw new CrpError('invalid-argument', `region mask value ${i} is not finite`);
      out[i] = m[i]!;
    }
  } else {
    let boxes: readonly RegionBox[];
    if ('centerSquare' in region) {
      const s = region.centerSquare;
      if (!Number.isInteger(s) || s < 1 || s > height || s > width) {
        throw new CrpError(
          'invalid-argument',
          `centerSquare must be an integer in 1..${Math.min(height, width)} for a ${height}x${width} input, got ${s}`,
        );
      }
      boxes = [{ x: Math.floor((width - s) / 2), y: Math.floor((height - s) / 2), width: s, height: s }];
    } else if ('boxes' in region && Array.isArray(region.boxes)) {
      boxes = region.boxes;
    } else {
      throw new CrpError(
        'invalid-argument',
        'a region is { centerSquare: side }, { boxes: [{ x, y, width, height }] } or { mask } (H x W weights)',
      );
    }
    for (const b of boxes) {
      if (![b.x, b.y, b.width, b.height].every(Number.isInteger) || b.width < 1 || b.height < 1) {
        throw new CrpError(
          'invalid-argument',
          `region box ${JSON.stringify(b)} is invalid; x, y, width, height must be integers with width, height >= 1`,
        );
      }
      for (let y = Math.max(0, b.y); y < Math.min(height, b.y + b.height); y++) {
        for (let x = Math.max(0, b.x); x < Math.min(width, b.x + b.width); x++) out[y * width + x] = 1;
      }
    }
  }
  if (!out.some((v) => v !== 0)) {
    throw new CrpError(
      'invalid-argument',
      `the region covers no pixel of the ${height}x${width} input (every weight is 0); boxes must overlap the image`,
    );
  }
  return out;
}

/** Region relevance of the concepts of one layer. */
export interface LayerRegionRelevance {
  /** the concepts evaluated */
  concepts: number[];
  /** per concept: the sum over the region of its conditional heatmap `{ y: [target], layer: [concept] }` */
  relevance: number[];
}

/** Region relevance of one image. */
export interface RegionRelevance {
  /** sum over the region of the class's heatmap `{ y: [target] }` */
  total: number;
  /** the image's logit of the target, where the relevance starts (negative: relevance for the class is negative) */
  logit: number;
  layers: Record<string, LayerRegionRelevance>;
}

/** How region relevance is computed. */
export type RegionMethod = 'adjoint' | 'per-concept';

export interface RegionRelevanceOptions {
  /** the class explained: one for all images, or one per image */
  target?: number | readonly number[];
  /** layers (default: every conv and dense layer below the output) */
  layers?: readonly string[];
  /** concepts to evaluate per layer (default: all) */
  concepts?: Readonly<Record<string, readonly number[]>>;
  /**
   * `'adjoint'` (default): one forward, one backward and one adjoint pass per batch of images give every
   * concept of every layer (see {@link regionRelevances}). `'per-concept'`: one conditional backward pass
   * per concept, as zennit-crp computes it (slow; for checking).
   */
  method?: RegionMethod;
  /** images per pass (adjoint) — default: what fits the memory budget of the model */
  batchSize?: number;
  /** condition rows per backward pass (per-concept) — default: chosen by @crp/core from the model size */
  chunkSize?: number;
}

/** Concepts of a layer: its channels, or the heads of an attention product (defaultConcept of @crp/core). */
function channelsOf(crp: CondAttribution, layer: string): number {
  const g = crp.attributor.graph;
  const shape = g.node(layer).outputShape;
  const c = shape.every((d) => typeof d === 'number')
    ? defaultConcept(g, layer).count(shape as number[])
    : null;
  if (c === null) throw new CrpError('invalid-argument', `layer '${layer}' has no fixed channel count`);
  return c;
}

function conceptList(crp: CondAttribution, layer: string, given: readonly number[] | undefined): number[] {
  const c = channelsOf(crp, layer);
  const list = given === undefined ? Array.from({ length: c }, (_, k) => k) : [...given];
  for (const k of list) {
    if (!Number.isInteger(k) || k < 0 || k >= c) {
      throw new CrpError(
        'invalid-argument',
        `concept ${k} is out of range for layer '${layer}': it has ${c} channels (valid: 0..${c - 1})`,
      );
    }
  }
  return list;
}

function targetsOf(crp: CondAttribution, options: RegionRelevanceOptions, images: number): number[] {
  const given = options.target;
  if (given === undefined) {
    throw new CrpError('invalid-target', 'give the class to explain: options.target (one, or one per image)');
  }
  const targets = typeof given === 'number' ? new Array<number>(images).fill(given) : [...given];
  if (targets.length !== images) {
    throw new CrpError(
      'invalid-target',
      `got ${targets.length} targets for ${images} images; give one per image or a single number`,
    );
  }
  // the same range check (and message) as every other strategy
  for (const t of new Set(targets)) resolveAtlasOptions(crp, { target: t });
  return targets;
}

/**
 * Concept relevance restricted to an input region for a batch of images [N, H, W, C]: per image, layer and
 * concept c, the sum over the region of the conditional heatmap `{ y: [target], layer: [c] }`, and `total`,
 * the region sum of the class heatmap `{ y: [target] }`.
 *
 * Exact at the cost of a few passes per batch (default `method: 'adjoint'`): with the forward pass fixed,
 * the heatmap of {y, L: [c]} is B_L(m_c * R_L), with R_L the relevance at L's output and B_L the backward map
 * from L to the input, so its region sum is <B_L^T(mask), m_c * R_L>: the channel-c sum of G_L * R_L, where
 * one adjoint pass gives G_L = B_L^T(mask) at every layer. One forward pass, one backward pass (R_L at every
 * layer) and one adjoint pass replace one backward pass per concept; B_L only covers what lies below L, as
 * zennit-crp's default `exclude_parallel` (on models with branches the concepts of a layer then need not add
 * up to `total`; on chains they do).
 *
 * On a ViT the region is pixels too, and a concept is what `defaultConcept` says (a head at an attention product,
 * else a channel summed over the tokens): a patch partly inside the region counts with the relevance of its pixels
 * inside, as the patch embedding's rule spreads its token's relevance over them.
 */
export function regionRelevances(
  crp: CondAttribution,
  images: tf.Tensor,
  region: Region,
  options: RegionRelevanceOptions,
): RegionRelevance[] {
  if (images.rank !== 4) {
    throw new CrpError(
      'invalid-shape',
      `region relevance explains images [N, H, W, C], got [${images.shape.join(', ')}]`,
    );
  }
  const [n, h, w] = images.shape as [number, number, number, number];
  const mask = regionMask(region, h, w);
  const targets = targetsOf(crp, options, n);
  const layers = resolveLayers(crp.attributor.graph, options.layers);
  const lists = layers.map((l) => conceptList(crp, l, options.concepts?.[l]));
  if (options.method === 'per-concept') {
    return Array.from({ length: n }, (_, i) => {
      const one = tf.slice(images, i, 1);
      try {
        return perConcept(crp, one, mask, targets[i]!, layers, lists, options.chunkSize);
      } finally {
        one.dispose();
      }
    });
  }
  if (options.method !== undefined && options.method !== 'adjoint') {
    throw new CrpError(
      'invalid-argument',
      `method must be 'adjoint' or 'per-concept', got '${String(options.method)}'`,
    );
  }
  const lrp = crp.attributor;
  const batchSize = options.batchSize ?? Math.max(1, Math.floor(lrp.rowsThatFit() / 3));
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new CrpError('invalid-argument', `batchSize must be a positive integer, got ${batchSize}`);
  }
  const out: RegionRelevance[] = [];
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const batch = count === n ? images : tf.slice(images, start, count);
    try {
      out.push(...adjointBatch(crp, batch, mask, targets.slice(start, start + count), layers, lists));
    } finally {
      if (batch !== images) batch.dispose();
    }
  }
  return out;
}

/** One batch through the adjoint: forward, backward from the output (R_L), adjoint from the input (G_L). */
function adjointBatch(
  crp: CondAttribution,
  images: tf.Tensor,
  mask: Float32Array,
  targets: readonly number[],
  layers: readonly string[],
  lists: readonly number[][],
): RegionRelevance[] {
  const lrp = crp.attributor;
  const g = lrp.graph;
  const [n, h, w, c] = images.shape as [number, number, number, number];
  const pass = lrp.forward(images);
  const owned: tf.Tensor[] = [];
  try {
    const prediction = pass.prediction;
    const classes = prediction.shape[prediction.rank - 1]!;
    const init = tf.tidy(() => tf.mul(tf.oneHot(tf.tensor1d([...targets], 'int32'), classes), prediction));
    owned.push(init);
    // the backward pass needs to reach only the lowest requested layers
    const ids = [...new Set(layers.map((l) => g.node(l).id))];
    const stops = ids.filter((id) => !ids.some((o) => o !== id && g.ancestorsOf(id).has(o)));
    const relevance = lrp.backward(pass, { from: g.outputId, relevance: init, record: ids, stopAt: stops });
    owned.push(...relevance.values());
    const values = tf.tidy(() => tf.mul(tf.ones([n, h, w, c]), tf.tensor4d(mask, [1, h, w, 1])));
    owned.push(values);
    const adjoint = lrp.adjoint(pass, { values, record: [...ids, g.outputId] });
    owned.push(...adjoint.values());
    const total = tf.tidy(() => tf.sum(tf.mul(adjoint.get(g.outputId)!, init), -1));
    owned.push(total);
    const [totals, predicted] = [total.dataSync(), prediction.dataSync()];
    const perLayer = ids.map((id) => {
      // per concept: G_L * R_L summed over what the concept spans (positions, or tokens and dimensions of a head)
      const concept = defaultConcept(g, id);
      const s = tf.tidy(() => concept.attribute(tf.mul(adjoint.get(id)!, relevance.get(id)!)));
      const data = s.dataSync();
      s.dispose();
      return data;
    });
    return Array.from({ length: n }, (_, i) => {
      const logit = predicted[i * classes + targets[i]!]!; // the relevance starts as the target's logit
      const result: RegionRelevance = { total: totals[i]! + 0, logit, layers: {} };
      layers.forEach((layer, j) => {
        const data = perLayer[ids.indexOf(g.node(layer).id)]!;
        const channels = data.length / n;
        const concepts = lists[j]!;
        result.layers[layer] = {
          concepts: [...concepts],
          // + 0: a dead channel's -0 would not survive JSON
          relevance: concepts.map((k) => data[i * channels + k]! + 0),
        };
      });
      return result;
    });
  } finally {
    tf.dispose(owned);
    pass.dispose();
  }
}

/** zennit-crp's definition: one conditional backward pass per concept (batched through `chunks`). */
function perConcept(
  crp: CondAttribution,
  image: tf.Tensor,
  mask: Float32Array,
  target: number,
  layers: readonly string[],
  lists: readonly number[][],
  chunkSize: number | undefined,
): RegionRelevance {
  const [, h, w] = image.shape as [number, number, number, number];
  const conditions: Condition[] = [{ y: [target] }];
  layers.forEach((layer, i) => {
    for (const k of lists[i]!) conditions.push({ y: [target], [layer]: [k] });
  });
  const sums = new Float64Array(conditions.length);
  let logit = 0;
  const maskT = tf.tensor3d(mask, [1, h, w]);
  try {
    for (const chunk of crp.chunks(image, conditions, chunkSize === undefined ? {} : { chunkSize })) {
      try {
        // every row is the one image: its prediction is the same
        logit = chunk.prediction.dataSync()[target]!;
        const s = tf.tidy(() => tf.sum(tf.mul(chunk.heatmap!, maskT), [1, 2]));
        const v = s.dataSync();
        s.dispose();
        chunk.rows.forEach((row, i) => {
          sums[row.condition] = v[i]!;
        });
      } finally {
        disposeCondResult(chunk);
      }
    }
  } finally {
    maskT.dispose();
  }
  const result: RegionRelevance = { total: sums[0]!, logit, layers: {} };
  let at = 1;
  layers.forEach((layer, i) => {
    const concepts = lists[i]!;
    result.layers[layer] = {
      concepts: [...concepts],
      relevance: Array.from(sums.subarray(at, at + concepts.length)),
    };
    at += concepts.length;
  });
  return result;
}

/**
 * {@link regionRelevances} of one image [1, H, W, C]: per concept, the sum of its conditional heatmap over the
 * region, and the class heatmap's region sum as `total`.
 */
export function regionRelevance(
  crp: CondAttribution,
  image: tf.Tensor,
  region: Region,
  options: RegionRelevanceOptions,
): RegionRelevance {
  if (image.rank !== 4 || image.shape[0] !== 1) {
    throw new CrpError(
      'invalid-shape',
      `regionRelevance explains one image [1, H, W, C], got [${image.shape.join(', ')}]; use regionRelevances for a batch`,
    );
  }
  return regionRelevances(crp, image, region, options)[0]!;
}

export interface RegionAtlasOptions {
  /** the class explained */
  target?: number;
  region: Region;
  layers?: readonly string[];
  /** concepts per sample and layer that get a vote (default 5) */
  topK?: number;
  /** divide each sample's region relevances of a layer by their absolute sum (default true) */
  absNorm?: boolean;
  /** Evaluate (rank and normalise) only the top-N concepts of each layer of this (global) atlas. */
  prefilter?: { atlas: ConceptAtlas; topN: number };
  /** `'class'` (default): only samples labelled `target`; `'all'`: every sample */
  samples?: 'class' | 'all';
  /** `'adjoint'` (default) or `'per-concept'` (slow; for checking), see {@link RegionRelevanceOptions} */
  method?: RegionMethod;
  /** images per pass (default 8) */
  batchSize?: number;
  onProgress?: (progress: Progress) => void;
  /** Samples per shard (default 64): as {@link AtlasOptions.shardSize}, the same atlas as sharded runs. */
  shardSize?: number;
}

/** A region atlas: a {@link ConceptAtlas} whose rankings hold the evaluated concepts only. */
export interface RegionAtlas extends ConceptAtlas {
  /** concepts evaluated per layer (all, or the prefilter's top-N) */
  evaluated: Record<string, number[]>;
}

/** Region atlas options resolved against a model: the atlas options plus the region and evaluated concepts. */
export interface ResolvedRegionAtlasOptions extends ResolvedAtlasOptions {
  region: Region;
  evaluated: Record<string, number[]>;
  method: RegionMethod;
}

/** Checks a region atlas's options against the model (layers, class, prefilter) before any work. */
export function resolveRegionAtlasOptions(
  crp: CondAttribution,
  options: RegionAtlasOptions,
): ResolvedRegionAtlasOptions {
  const target = options.target;
  if (target === undefined) {
    throw new CrpError('invalid-target', 'give the class to explain: options.target');
  }
  const resolved: ResolvedAtlasOptions = resolveAtlasOptions(crp, {
    target,
    ...(options.layers ? { layers: options.layers } : {}),
    ...(options.topK === undefined ? {} : { topK: options.topK }),
    ...(options.absNorm === undefined ? {} : { absNorm: options.absNorm }),
    batchSize: options.batchSize ?? 8,
  });
  const inputShape = crp.attributor.graph.inputShape;
  const [h, w] = [inputShape[0], inputShape[1]];
  // a fixed input size is checked now; an open one with the first image
  if (typeof h === 'number' && typeof w === 'number') regionMask(options.region, h, w);
  const evaluated: Record<string, number[]> = {};
  for (const layer of resolved.layers) {
    const c = channelsOf(crp, layer);
    if (options.prefilter === undefined) {
      evaluated[layer] = Array.from({ length: c }, (_, k) => k);
      continue;
    }
    checkTopK(options.prefilter.topN, 'prefilter.topN');
    const ranked = options.prefilter.atlas.layers[layer];
    if (ranked === undefined) {
      throw new CrpError(
        'invalid-argument',
        `the prefilter atlas has no layer '${layer}'; its layers: ${Object.keys(options.prefilter.atlas.layers).join(', ')}`,
      );
    }
    evaluated[layer] = ranked.ranking.slice(0, options.prefilter.topN).map((e) => e.concept);
  }
  const method = options.method ?? 'adjoint';
  if (method !== 'adjoint' && method !== 'per-concept') {
    throw new CrpError(
      'invalid-argument',
      `method must be 'adjoint' or 'per-concept', got '${String(method)}'`,
    );
  }
  return { ...resolved, region: options.region, evaluated, method };
}

/** Region-atlas votes of one batch of images (mergeable like {@link atlasBatch}'s). */
export function regionAtlasBatch(
  crp: CondAttribution,
  images: tf.Tensor,
  options: ResolvedRegionAtlasOptions,
): AtlasPartial {
  const n = images.shape[0]!;
  const results = regionRelevances(crp, images, options.region, {
    target: options.target,
    layers: options.layers,
    concepts: options.evaluated,
    method: options.method,
    batchSize: n,
  });
  const partial: AtlasPartial = { samples: 0, layers: {} };
  for (const r of results) {
    const one: AtlasPartial = { samples: 1, layers: {} };
    for (const layer of options.layers) {
      const { concepts, relevance } = r.layers[layer]!;
      const c = channelsOf(crp, layer);
      const norm = options.absNorm ? relevance.reduce((s, x) => s + Math.abs(x), 0) + 1e-10 : 1;
      const scores = relevance.map((x) => x / norm);
      const votes = new Array<number>(c).fill(0);
      const sums = new Array<number>(c).fill(0);
      const shares = new Array<number>(c).fill(0);
      for (const i of votedConcepts(scores, options.topK, r.logit, concepts)) votes[concepts[i]!] = 1;
      const absSum = relevance.reduce((s, x) => s + Math.abs(x), 0) + 1e-10;
      concepts.forEach((k, i) => {
        sums[k] = scores[i]!;
        shares[k] = relevance[i]! / absSum;
      });
      one.layers[layer] = { votes, sums, shares };
    }
    mergeAtlasPartials(partial, one);
  }
  return partial;
}

/** Keeps the evaluated concepts in the rankings of a finished region atlas. */
export function finishRegionAtlas(partial: AtlasPartial, options: ResolvedRegionAtlasOptions): RegionAtlas {
  const atlas = finishAtlas(partial, options);
  for (const layer of options.layers) {
    const keep = new Set(options.evaluated[layer]);
    const l = atlas.layers[layer]!;
    l.ranking = l.ranking.filter((e) => keep.has(e.concept));
  }
  return { ...atlas, evaluated: options.evaluated };
}

/**
 * The concept atlas of a class restricted to an input region: per sample and layer, the top-k concepts by
 * region relevance ({@link regionRelevances}: every concept of every layer, exact, at the cost of a few
 * passes per batch of images), voted across samples as {@link conceptAtlas} does. With `prefilter`, only the
 * global atlas's top-N concepts per layer are ranked (and normalised among themselves).
 */
export async function regionAtlas(
  crp: CondAttribution,
  source: LabelledSource | LabelledDataset,
  options: RegionAtlasOptions,
): Promise<RegionAtlas> {
  return runSharded(regionAtlasStrategy, { crp }, source, options, {
    ...(options.shardSize === undefined ? {} : { shardSize: options.shardSize }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
}

/** Region atlas options resolved for a sharded run: plain JSON (a tensor mask becomes numbers), and which
 * samples vote. */
export interface ShardedRegionAtlasOptions extends ResolvedRegionAtlasOptions {
  samples: 'class' | 'all';
}

/** The region atlas as a {@link ShardedStrategy} (kind `region-atlas`); partials are the atlas's. */
export const regionAtlasStrategy: ShardedStrategy<
  RegionAtlasOptions,
  ShardedRegionAtlasOptions,
  AtlasShardPartial,
  RegionAtlas
> = {
  kind: 'region-atlas',
  version: 1,
  resolve: (ctx, options) => {
    const resolved = resolveRegionAtlasOptions(ctx.crp, options);
    const r = resolved.region;
    const region: Region =
      'mask' in r
        ? { mask: Array.from(r.mask instanceof tf.Tensor ? r.mask.dataSync() : r.mask) }
        : structuredClone(r);
    return { ...resolved, region, samples: options.samples ?? 'class' };
  },
  select: (source, resolved) =>
    resolved.samples === 'all' ? source : subset(source, { classes: [resolved.target] }),
  empty: () => ({ samples: 0, layers: {} }),
  batch: (ctx, batch, resolved) => toAtlasShard(regionAtlasBatch(ctx.crp, batch.images, resolved)),
  merge: mergeAtlasShards,
  finish: (partial, resolved) => {
    const { samples: _s, ...options } = resolved;
    return finishRegionAtlas(roundAtlasShard(partial), options);
  },
};

/** Overlap of two atlases in one layer. */
export interface AtlasLayerComparison {
  layer: string;
  topK: number;
  /** |A ∩ B| / |A ∪ B| of the two top-k concept sets */
  jaccard: number;
  /** concepts in both top-k sets, in A's order */
  shared: number[];
  /** Spearman rank correlation of the two rankings over the concepts both rank (null for fewer than 2) */
  rankCorrelation: number | null;
}

/** Per layer present in both atlases, the overlap of their top-k sets (Jaccard) and rank correlation, e.g.
 * of a global atlas and a centre-region atlas. */
export function compareAtlases(
  a: ConceptAtlas,
  b: ConceptAtlas,
  options: { topK?: number } = {},
): AtlasLayerComparison[] {
  const topK = options.topK ?? Math.min(a.topK, b.topK);
  checkTopK(topK);
  const layers = a.layerOrder.filter((l) => b.layers[l] !== undefined);
  if (layers.length === 0) {
    throw new CrpError(
      'invalid-argument',
      `the atlases share no layer (${a.layerOrder.join(', ')} vs ${b.layerOrder.join(', ')})`,
    );
  }
  return layers.map((layer) => {
    const ra = a.layers[layer]!.ranking.map((e) => e.concept);
    const rb = b.layers[layer]!.ranking.map((e) => e.concept);
    const ta = ra.slice(0, topK);
    const tb = new Set(rb.slice(0, topK));
    const shared = ta.filter((k) => tb.has(k));
    const union = new Set([...ta, ...tb]).size;
    const inB = new Set(rb);
    const common = ra.filter((k) => inB.has(k));
    let rankCorrelation: number | null = null;
    if (common.length >= 2) {
      const inCommon = new Set(common);
      const rankB = new Map(rb.filter((k) => inCommon.has(k)).map((k, i) => [k, i]));
      const n = common.length;
      const d2 = common.reduce((s, k, i) => s + (i - rankB.get(k)!) ** 2, 0);
      rankCorrelation = 1 - (6 * d2) / (n * (n * n - 1));
    }
    return { layer, topK, jaccard: union === 0 ? 1 : shared.length / union, shared, rankCorrelation };
  });
}

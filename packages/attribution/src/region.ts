import { CrpError, progressTracker } from '@crp/common';
import type { CondAttribution, Condition } from '@crp/core';
import { disposeCondResult } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import {
  type AtlasPartial,
  type ConceptAtlas,
  checkTopK,
  finishAtlas,
  mergeAtlasPartials,
  type ResolvedAtlasOptions,
  resolveAtlasOptions,
} from './atlas.js';
import {
  batchesOf,
  type DatasetProgress,
  type LabelledDataset,
  type LabelledSource,
  sizeOf,
  subset,
} from './dataset.js';

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

/** The region as H * W weights (row-major). */
export function regionMask(region: Region, height: number, width: number): Float32Array {
  const out = new Float32Array(height * width);
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
    return out;
  }
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
  } else if ('boxes' in region) {
    boxes = region.boxes;
  } else {
    throw new CrpError('invalid-argument', 'a region is { mask }, { boxes } or { centerSquare }');
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
  return out;
}

/** Region relevance of the concepts of one layer. */
export interface LayerRegionRelevance {
  /** the concepts evaluated */
  concepts: number[];
  /** per concept: the sum over the region of its conditional heatmap `{ y: [classId], layer: [concept] }` */
  relevance: number[];
}

/** Region relevance of one image. */
export interface RegionRelevance {
  /** sum over the region of the class's heatmap `{ y: [classId] }` */
  total: number;
  layers: Record<string, LayerRegionRelevance>;
}

export interface RegionRelevanceOptions {
  classId: number;
  /** layers (default: every conv and dense layer below the output) */
  layers?: readonly string[];
  /** concepts to evaluate per layer (default: all) */
  concepts?: Readonly<Record<string, readonly number[]>>;
  /** conditions per backward pass (default: chosen by @crp/core from the model size) */
  batchSize?: number;
}

function channelsOf(crp: CondAttribution, layer: string): number {
  const c = crp.attributor.graph.node(layer).outputShape.at(-1);
  if (typeof c !== 'number')
    throw new CrpError('invalid-argument', `layer '${layer}' has no fixed channel count`);
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

/**
 * Concept relevance restricted to an input region, for one image ([1, H, W, C]): per concept, the sum of its
 * conditional heatmap over the region. Exact: one conditional backward pass per concept, batched through
 * CondAttribution.chunks (one forward pass). The relevances of all concepts of a layer add up to `total`
 * (the class heatmap's region sum): the channel masks partition the layer and the backward pass is linear.
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
      `regionRelevance explains one image [1, H, W, C], got [${image.shape.join(', ')}]`,
    );
  }
  const resolved = resolveAtlasOptions(crp, {
    classId: options.classId,
    ...(options.layers ? { layers: options.layers } : {}),
  });
  const [, h, w] = image.shape as [number, number, number, number];
  const mask = regionMask(region, h, w);
  const lists = resolved.layers.map((l) => conceptList(crp, l, options.concepts?.[l]));
  const conditions: Condition[] = [{ y: [options.classId] }];
  resolved.layers.forEach((layer, i) => {
    for (const k of lists[i]!) conditions.push({ y: [options.classId], [layer]: [k] });
  });
  const sums = new Float64Array(conditions.length);
  const maskT = tf.tensor3d(mask, [1, h, w]);
  try {
    for (const chunk of crp.chunks(
      image,
      conditions,
      options.batchSize === undefined ? {} : { batchSize: options.batchSize },
    )) {
      try {
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
  const layers: Record<string, LayerRegionRelevance> = {};
  let at = 1;
  resolved.layers.forEach((layer, i) => {
    const concepts = lists[i]!;
    layers[layer] = { concepts, relevance: Array.from(sums.subarray(at, at + concepts.length)) };
    at += concepts.length;
  });
  return { total: sums[0]!, layers };
}

export interface RegionAtlasOptions {
  classId: number;
  region: Region;
  layers?: readonly string[];
  /** concepts per sample and layer that get a vote (default 5) */
  topK?: number;
  /** divide each sample's region relevances of a layer by their absolute sum (default true) */
  absNorm?: boolean;
  /** Evaluate only the top-N concepts of each layer of this (global) atlas, bounding the cost. */
  prefilter?: { atlas: ConceptAtlas; topN: number };
  /** `'class'` (default): only samples labelled `classId`; `'all'`: every sample */
  samples?: 'class' | 'all';
  /** conditions per backward pass */
  batchSize?: number;
  onProgress?: (progress: DatasetProgress) => void;
}

/** A region atlas: a {@link ConceptAtlas} whose rankings hold the evaluated concepts only. */
export interface RegionAtlas extends ConceptAtlas {
  /** concepts evaluated per layer (all, or the prefilter's top-N) */
  evaluated: Record<string, number[]>;
}

/**
 * The concept atlas of a class restricted to an input region: per sample and layer, the top-k concepts by
 * region relevance ({@link regionRelevance}), voted across samples as {@link conceptAtlas} does. With
 * `prefilter`, only the global atlas's top-N concepts per layer are evaluated (and normalised among
 * themselves).
 */
export async function regionAtlas(
  crp: CondAttribution,
  source: LabelledSource | LabelledDataset,
  options: RegionAtlasOptions,
): Promise<RegionAtlas> {
  const resolved: ResolvedAtlasOptions = resolveAtlasOptions(crp, {
    classId: options.classId,
    ...(options.layers ? { layers: options.layers } : {}),
    ...(options.topK === undefined ? {} : { topK: options.topK }),
    ...(options.absNorm === undefined ? {} : { absNorm: options.absNorm }),
  });
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
  const chosen = options.samples === 'all' ? source : subset(source, { classes: [resolved.target] });
  const tick = progressTracker(sizeOf(chosen), options.onProgress);
  const total: AtlasPartial = { samples: 0, layers: {} };
  for await (const batch of batchesOf(chosen, 1)) {
    try {
      const r = regionRelevance(crp, batch.images, options.region, {
        classId: resolved.target,
        layers: resolved.layers,
        concepts: evaluated,
        ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
      });
      const partial: AtlasPartial = { samples: 1, layers: {} };
      for (const layer of resolved.layers) {
        const { concepts, relevance } = r.layers[layer]!;
        const c = channelsOf(crp, layer);
        const norm = resolved.absNorm ? relevance.reduce((s, x) => s + Math.abs(x), 0) + 1e-10 : 1;
        const scores = relevance.map((x) => x / norm);
        const votes = new Array<number>(c).fill(0);
        const sums = new Array<number>(c).fill(0);
        const order = scores
          .map((_, i) => i)
          .sort((a, b) => scores[b]! - scores[a]! || concepts[a]! - concepts[b]!);
        for (const i of order.slice(0, resolved.topK)) votes[concepts[i]!] = 1;
        concepts.forEach((k, i) => {
          sums[k] = scores[i]!;
        });
        partial.layers[layer] = { votes, sums };
      }
      mergeAtlasPartials(total, partial);
    } finally {
      if (batch.owned) batch.images.dispose();
    }
    tick(batch.labels.length);
  }
  const atlas = finishAtlas(total, resolved);
  for (const layer of resolved.layers) {
    const keep = new Set(evaluated[layer]);
    const l = atlas.layers[layer]!;
    l.ranking = l.ranking.filter((e) => keep.has(e.concept));
  }
  return { ...atlas, evaluated };
}

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

import {
  addExact,
  CrpError,
  type ExactSum,
  type ExactVector,
  exactValue,
  exactVector,
  listNames,
  mergeExact,
  mergeVector,
  type Progress,
  vectorValues,
} from '@crp/common';
import { type CondAttribution, defaultConcept } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import {
  type AtlasOptions,
  type ConceptAtlas,
  checkTopK,
  conceptAtlas,
  conceptLayers,
  resolveAtlasOptions,
  targetLogits,
  votedConcepts,
} from './atlas.js';
import { type LabelledDataset, type LabelledSource, subset } from './dataset.js';
import { conceptLayersBelow, conceptSums } from './decomposition.js';
import { runSharded, type ShardedStrategy } from './sharding.js';

export interface DecompositionAtlasOptions {
  /** the class explained */
  target?: number;
  /** Parent layers to decompose (default: every conv and dense layer below the output that has a layer below
   * it, `conceptLayersBelow`: a conv or dense layer, or the addition or concatenation it reads; in a ViT every concept
   * layer with a concept layer below: block output -> MLP neurons -> heads -> the block's input channels, as
   * `decompose`). A joining layer given here (an addition such as `layer2.0.add`, a concatenation) decomposes
   * into every branch, as `decompose` does. */
  layers?: readonly string[];
  /** dominant concepts per layer, taken from the atlas by votes (default 5) */
  concepts?: number;
  /** sub-concepts each sample votes for, per dominant concept (default 5) */
  topK?: number;
  /** The global atlas that names each layer's dominant concepts. Default: computed first over the same
   * samples (a second pass over the data). */
  atlas?: ConceptAtlas;
  /** `'class'` (default): only samples labelled `target`; `'all'`: every sample */
  samples?: 'class' | 'all';
  /** images per pass (default 8) */
  batchSize?: number;
  /** progress of both passes (`phase` 'atlas' then 'decomposition') */
  onProgress?: (progress: Progress) => void;
  /** Samples per shard (default 64): batches start at each shard's first sample, as in sharded runs. */
  shardSize?: number;
}

/** A sub-concept of a dominant concept, voted over samples. */
export interface SubConcept {
  /** the layer below it belongs to (one of its parent layer's `below`: at a join, the branch) */
  layer: string;
  concept: number;
  /** samples that have it among the top-k sub-concepts of the parent in its layer below */
  votes: number;
  /** votes / samples */
  shareOfSamples: number;
  /** mean over samples of its share of the parent's relevance, in percent (100 * R_child / R_parent) */
  percent: number;
  /** mean over samples of its relevance under the parent's condition */
  meanRelevance: number;
}

/** One dominant concept of a layer and what it is made of in the layer below. */
export interface DecomposedConcept {
  concept: number;
  /** its votes in the global atlas (k of `samples`) and share of the layer's relevance in percent */
  votes: number;
  percent: number;
  /** mean over samples of its relevance (the parent relevance the shares refer to) */
  meanRelevance: number;
  /** sub-concepts with at least one vote, of every layer below, most votes first (then larger share, then the
   * order of `below`, then lower concept) */
  children: SubConcept[];
}

export interface DecompositionAtlasLayer {
  layer: string;
  /** The layers whose concepts are the sub-concepts (`conceptLayersBelow`): one for a conv or dense layer (in a
   * ViT the concept layer below); one per branch for a joining layer (`layer2.0.add`: `layer2.0.conv2` and
   * `layer2.0.downsample.0`). */
  below: string[];
  concepts: DecomposedConcept[];
}

/** Each layer's dominant concepts decomposed into the concepts of the layer below, voted over samples (the
 * seed's attribution fragmentation). Plain JSON. */
export interface DecompositionAtlas {
  target: number;
  samples: number;
  topK: number;
  layerOrder: string[];
  layers: Record<string, DecompositionAtlasLayer>;
  /** the global atlas the dominant concepts came from */
  atlas: ConceptAtlas;
}

/** Sums of some samples (mergeable, exact once per sample): per layer and dominant concept, the parent's
 * relevance and, per layer below, the children's votes, shares and relevances. */
export interface DecompositionPartial {
  samples: number;
  layers: Record<
    string,
    Record<
      string,
      { parent: number; below: Record<string, { votes: number[]; shares: number[]; sums: number[] }> }
    >
  >;
}

/** Decomposition atlas options checked against the model and the atlas. */
export interface ResolvedDecompositionOptions {
  target: number;
  topK: number;
  batchSize: number;
  /** parent layer -> its layers below (several at a join) */
  below: Record<string, string[]>;
  /** parent layer -> dominant concepts */
  dominant: Record<string, number[]>;
  layers: string[];
}

/** Parent layers with their layers below (one per branch at a join): explicit ones must have one, defaults skip
 * layers without one (a first conv). */
function parentLayers(crp: CondAttribution, layers: readonly string[] | undefined): Record<string, string[]> {
  const g = crp.attributor.graph;
  const below: Record<string, string[]> = {};
  for (const name of layers ?? conceptLayers(g)) {
    const id = g.node(name).id;
    const under = conceptLayersBelow(g, id);
    if (under.length === 0) {
      if (layers !== undefined) {
        const valid = conceptLayers(g).filter((l) => conceptLayersBelow(g, l).length > 0);
        throw new CrpError(
          'invalid-argument',
          `layer '${name}' has no layer below it to decompose into (only the input); choose a higher layer, e.g. ${listNames(valid)}`,
        );
      }
      continue;
    }
    below[id] = under;
  }
  if (Object.keys(below).length === 0) {
    throw new CrpError(
      'invalid-argument',
      'no layer to decompose: no conv or dense layer of the model has a conv, dense or joining layer below it',
    );
  }
  return below;
}

/** Checks the options and picks each layer's dominant concepts from the atlas. */
export function resolveDecompositionOptions(
  crp: CondAttribution,
  options: DecompositionAtlasOptions,
  atlas: ConceptAtlas,
): ResolvedDecompositionOptions {
  const target = options.target;
  if (target === undefined) throw new CrpError('invalid-target', 'give the class to explain: options.target');
  const topK = options.topK ?? 5;
  checkTopK(topK);
  const count = options.concepts ?? 5;
  checkTopK(count, 'concepts');
  const batchSize = options.batchSize ?? 8;
  checkTopK(batchSize, 'batchSize');
  const below = parentLayers(crp, options.layers);
  const dominant: Record<string, number[]> = {};
  for (const layer of Object.keys(below)) {
    const ranked = atlas.layers[layer];
    if (ranked === undefined) {
      throw new CrpError(
        'invalid-argument',
        `the atlas has no layer '${layer}'; its layers: ${atlas.layerOrder.join(', ')}`,
      );
    }
    dominant[layer] = ranked.ranking.slice(0, count).map((e) => e.concept);
  }
  return { target, topK, batchSize, below, dominant, layers: Object.keys(below) };
}

/** Concept sums of one layer below, [n images * concepts] values. */
interface ChildRows {
  values: Float32Array;
  channels: number;
}

/**
 * Per dominant concept c and layer below: the concept sums there of the short backward pass from `layer`
 * (relevance `r` masked to concept c: a channel, or a head), as [n images * C'] values. The pass stops at every
 * layer below, so at a join each branch gets what reaches it through the join alone (as `decompose`). The mask is
 * applied by the engine's transform, so the layer's transpose runs on the few non-zero channels only; with one
 * image all concepts share one pass (one row each), with several images each concept gets one pass of one row per
 * image.
 */
function decomposeLayer(
  lrp: CondAttribution['attributor'],
  pass: ReturnType<CondAttribution['attributor']['forward']>,
  r: tf.Tensor,
  layer: string,
  below: readonly string[],
  dominant: readonly number[],
): ChildRows[][] {
  const n = r.shape[0]!;
  const g = lrp.graph;
  const concept = defaultConcept(g, layer);
  const sampleShape = r.shape.slice(1);
  const run = (relevance: tf.Tensor, mask: tf.Tensor): ChildRows[] => {
    const out = lrp.backward(pass, {
      from: layer,
      relevance,
      stopAt: [...below],
      transform: (id, x) => (id === layer ? tf.mul(x, mask) : undefined),
    });
    try {
      return below.map((b) => {
        const { values, concepts } = conceptSums(g, b, out.get(b)!);
        return { values, channels: concepts };
      });
    } finally {
      for (const t of out.values()) t.dispose();
    }
  };
  if (n === 1) {
    const k = dominant.length;
    const masks = dominant.map((c) => concept.mask([c], sampleShape));
    const size = masks[0]!.data.length;
    const data = new Float32Array(k * size);
    masks.forEach((m, j) => {
      data.set(m.data, j * size);
    });
    const mask = tf.tensor(data, [k, ...masks[0]!.shape]);
    const rows = tf.tidy(() => tf.mul(tf.ones([k, ...sampleShape.map(() => 1)]), r));
    try {
      const all = run(rows, mask);
      return dominant.map((_, j) =>
        all.map(({ values, channels }) => ({
          values: values.slice(j * channels, (j + 1) * channels),
          channels,
        })),
      );
    } finally {
      tf.dispose([mask, rows]);
    }
  }
  return dominant.map((c) => {
    const m = concept.mask([c], sampleShape);
    const mask = tf.tensor(m.data, [1, ...m.shape]);
    try {
      return run(r, mask);
    } finally {
      mask.dispose();
    }
  });
}

/**
 * Decomposition votes of one batch of images. One forward pass and one backward pass give the relevance R_L
 * at every parent layer; each dominant concept c is then decomposed by the short backward pass from L down
 * to the layers below only, starting from R_L masked to channel c. That is the relevance of the condition
 * { y, L: [c] } at the layer below under zennit-crp's exclude_parallel (the default), at a fraction of a
 * conditional backward pass per concept. At a join (L an addition or concatenation) the pass stops at every
 * branch's layer below, so each branch gets what reaches it through L alone, as in `decompose`.
 */
export function decompositionBatch(
  crp: CondAttribution,
  images: tf.Tensor,
  options: ResolvedDecompositionOptions,
): DecompositionPartial {
  const [lrp, n] = [crp.attributor, images.shape[0]!];
  const g = lrp.graph;
  const partial: DecompositionPartial = { samples: n, layers: {} };
  const pass = lrp.forward(images);
  const owned: tf.Tensor[] = [];
  try {
    const prediction = pass.prediction;
    const classes = prediction.shape[prediction.rank - 1]!;
    const init = tf.tidy(() => tf.mul(tf.oneHot(tf.fill([n], options.target, 'int32'), classes), prediction));
    owned.push(init);
    const logits = targetLogits(prediction, options.target);
    const ids = options.layers;
    const stops = ids.filter((id) => !ids.some((o) => o !== id && g.ancestorsOf(id).has(o)));
    const relevance = lrp.backward(pass, { from: g.outputId, relevance: init, record: ids, stopAt: stops });
    owned.push(...relevance.values());
    for (const layer of ids) {
      const below = options.below[layer]!;
      const r = relevance.get(layer)!;
      const { values: parentSums, concepts: channels } = conceptSums(g, layer, r);
      const byConcept: DecompositionPartial['layers'][string] = {};
      partial.layers[layer] = byConcept;
      const dominant = options.dominant[layer]!;
      // child concept sums [K concepts][layers below] of [n images * C'] values
      const childSums = decomposeLayer(lrp, pass, r, layer, below, dominant);
      dominant.forEach((c, j) => {
        const parents = Array.from({ length: n }, (_, i) => parentSums[i * channels + c]!);
        const entry: DecompositionPartial['layers'][string][string] = {
          parent: parents.reduce((a, b) => a + b, 0),
          below: {},
        };
        // each sample votes for its top-k in every layer below (at a join: top-k per branch, as decompose's width)
        below.forEach((b, bi) => {
          const { values, channels: childChannels } = childSums[j]![bi]!;
          const sums = {
            votes: new Array<number>(childChannels).fill(0),
            shares: new Array<number>(childChannels).fill(0),
            sums: new Array<number>(childChannels).fill(0),
          };
          for (let i = 0; i < n; i++) {
            const row = Array.from(values.subarray(i * childChannels, (i + 1) * childChannels));
            const parent = parents[i]!;
            for (const k of votedConcepts(row, options.topK, logits[i]!)) sums.votes[k]! += 1;
            for (let k = 0; k < childChannels; k++) {
              sums.sums[k]! += row[k]!;
              sums.shares[k]! += parent === 0 ? 0 : row[k]! / parent;
            }
          }
          entry.below[b] = sums;
        });
        byConcept[String(c)] = entry;
      });
    }
  } finally {
    tf.dispose(owned);
    pass.dispose();
  }
  return partial;
}

/** Adds `b` into `a` (in place) and returns `a`. */
export function mergeDecompositionPartials(
  a: DecompositionPartial,
  b: DecompositionPartial,
): DecompositionPartial {
  a.samples += b.samples;
  for (const [layer, concepts] of Object.entries(b.layers)) {
    const into = a.layers[layer] ?? {};
    a.layers[layer] = into;
    for (const [c, e] of Object.entries(concepts)) {
      into[c] ??= { parent: 0, below: {} };
      const t = into[c];
      t.parent += e.parent;
      for (const [b, x] of Object.entries(e.below)) {
        const y = t.below[b];
        if (y === undefined) {
          t.below[b] = { votes: [...x.votes], shares: [...x.shares], sums: [...x.sums] };
          continue;
        }
        x.votes.forEach((v, k) => {
          y.votes[k]! += v;
        });
        x.shares.forEach((v, k) => {
          y.shares[k]! += v;
        });
        x.sums.forEach((v, k) => {
          y.sums[k]! += v;
        });
      }
    }
  }
  return a;
}

/** Ranks merged votes into a {@link DecompositionAtlas}. */
export function finishDecompositionAtlas(
  partial: DecompositionPartial,
  options: ResolvedDecompositionOptions,
  atlas: ConceptAtlas,
): DecompositionAtlas {
  const n = partial.samples;
  const layers: Record<string, DecompositionAtlasLayer> = {};
  for (const layer of options.layers) {
    const ranking = atlas.layers[layer]!.ranking;
    const concepts = options.dominant[layer]!.map((c): DecomposedConcept => {
      const e = partial.layers[layer]?.[String(c)];
      const entry = ranking.find((r) => r.concept === c)!;
      const below = options.below[layer]!;
      const children: SubConcept[] = below
        .flatMap((b) => {
          const x = e?.below[b];
          if (x === undefined) return [];
          return x.votes.map((votes, k) => ({
            layer: b,
            concept: k,
            votes,
            shareOfSamples: n === 0 ? 0 : votes / n,
            percent: n === 0 ? 0 : (100 * x.shares[k]!) / n,
            meanRelevance: n === 0 ? 0 : x.sums[k]! / n,
          }));
        })
        .filter((s) => s.votes > 0)
        .sort(
          (a, b) =>
            b.votes - a.votes ||
            b.percent - a.percent ||
            below.indexOf(a.layer) - below.indexOf(b.layer) ||
            a.concept - b.concept,
        );
      return {
        concept: c,
        votes: entry.votes,
        percent: entry.percent,
        meanRelevance: e === undefined || n === 0 ? 0 : e.parent / n,
        children,
      };
    });
    layers[layer] = { layer, below: [...options.below[layer]!], concepts };
  }
  return {
    target: options.target,
    samples: n,
    topK: options.topK,
    layerOrder: [...options.layers],
    layers,
    atlas,
  };
}

/**
 * The decomposition atlas of a class: for each layer, its dominant concepts over a set of samples (the top
 * `concepts` of the global atlas by votes), each decomposed into the concepts of the layer below: which
 * sub-concepts the samples vote for (top-k per sample) and what share of the parent's relevance each carries,
 * in percent. The seed's "attribution fragmentation" as a library function.
 *
 * A joining layer (a ResNet's `layer2.0.add`, a DenseNet's concatenation) decomposes into every branch, as
 * `decompose` does: its `below` lists one layer per branch (`layersBelow`), each sub-concept names its `layer`,
 * and each sample votes for its top-k in each branch; where the rules conserve, the shares of all branches add up
 * to 100%.
 *
 * ```ts
 * const d = await decompositionAtlas(crp, data, { target: 1 });
 * d.layers['features.25'].concepts[0].children.slice(0, 3); // what the most voted concept is made of
 * const r = await decompositionAtlas(resnetCrp, data, { target: 1, layers: ['layer2.0.add'] });
 * r.layers['layer2.0.add'].below; // ['layer2.0.conv2', 'layer2.0.downsample.0']
 * ```
 */
export async function decompositionAtlas(
  crp: CondAttribution,
  source: LabelledSource | LabelledDataset,
  options: DecompositionAtlasOptions,
): Promise<DecompositionAtlas> {
  const target = options.target;
  if (target === undefined) throw new CrpError('invalid-target', 'give the class to explain: options.target');
  // validate everything before the first pass over the data
  const resolvedAtlas = resolveAtlasOptions(crp, {
    target,
    ...(options.layers === undefined ? {} : { layers: options.layers }),
  });
  const parents = parentLayers(crp, options.layers);
  let atlas = options.atlas;
  if (atlas === undefined) {
    const atlasOptions: AtlasOptions = {
      target,
      layers: resolvedAtlas.layers,
      batchSize: options.batchSize ?? 8,
      ...(options.samples === undefined ? {} : { samples: options.samples }),
      ...(options.shardSize === undefined ? {} : { shardSize: options.shardSize }),
      ...(options.onProgress === undefined
        ? {}
        : { onProgress: (p: Progress) => options.onProgress!({ ...p, phase: 'atlas' }) }),
    };
    atlas = await conceptAtlas(crp, source, atlasOptions);
  } else if (atlas.target !== target) {
    throw new CrpError(
      'invalid-argument',
      `the atlas explains class ${atlas.target}, not the target ${target}`,
    );
  }
  return runSharded(
    decompositionStrategy,
    { crp },
    source,
    { ...options, layers: Object.keys(parents), atlas },
    {
      ...(options.shardSize === undefined ? {} : { shardSize: options.shardSize }),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      phase: 'decomposition',
    },
  );
}

/** {@link DecompositionPartial} with exact sums: the mergeable partial of a sharded decomposition atlas. */
export interface DecompositionShardPartial {
  samples: number;
  layers: Record<
    string,
    Record<
      string,
      { parent: ExactSum; below: Record<string, { votes: number[]; shares: ExactVector; sums: ExactVector }> }
    >
  >;
}

/** Decomposition options resolved for a sharded run: the dominant concepts, which samples, and the atlas they
 * came from (the first phase of the two-phase job). */
export interface ShardedDecompositionOptions extends ResolvedDecompositionOptions {
  samples: 'class' | 'all';
  atlas: ConceptAtlas;
}

/** A batch's {@link DecompositionPartial} as a shard partial (each sum exact with one term). */
export function toDecompositionShard(p: DecompositionPartial): DecompositionShardPartial {
  const one = (x: number) => addExact([], x);
  const layers: DecompositionShardPartial['layers'] = {};
  for (const [layer, concepts] of Object.entries(p.layers)) {
    layers[layer] = Object.fromEntries(
      Object.entries(concepts).map(([c, e]) => [
        c,
        {
          parent: one(e.parent),
          below: Object.fromEntries(
            Object.entries(e.below).map(([b, x]) => [
              b,
              { votes: [...x.votes], shares: x.shares.map(one), sums: x.sums.map(one) },
            ]),
          ),
        },
      ]),
    );
  }
  return { samples: p.samples, layers };
}

/** Adds shard partial `b` into `into` (exact) and returns `into`. */
export function mergeDecompositionShards(
  into: DecompositionShardPartial,
  b: DecompositionShardPartial,
): DecompositionShardPartial {
  into.samples += b.samples;
  for (const [layer, concepts] of Object.entries(b.layers)) {
    const byConcept = into.layers[layer] ?? {};
    into.layers[layer] = byConcept;
    for (const [c, e] of Object.entries(concepts)) {
      byConcept[c] ??= { parent: [], below: {} };
      const t = byConcept[c];
      mergeExact(t.parent, e.parent);
      for (const [b, x] of Object.entries(e.below)) {
        const n = x.votes.length;
        t.below[b] ??= { votes: new Array<number>(n).fill(0), shares: exactVector(n), sums: exactVector(n) };
        const y = t.below[b];
        x.votes.forEach((v, k) => {
          y.votes[k]! += v;
        });
        mergeVector(y.shares, x.shares);
        mergeVector(y.sums, x.sums);
      }
    }
  }
  return into;
}

/** The partial with its sums rounded (what {@link finishDecompositionAtlas} takes). */
export function roundDecompositionShard(p: DecompositionShardPartial): DecompositionPartial {
  const layers: DecompositionPartial['layers'] = {};
  for (const [layer, concepts] of Object.entries(p.layers)) {
    layers[layer] = Object.fromEntries(
      Object.entries(concepts).map(([c, e]) => [
        c,
        {
          parent: exactValue(e.parent),
          below: Object.fromEntries(
            Object.entries(e.below).map(([b, x]) => [
              b,
              { votes: [...x.votes], shares: vectorValues(x.shares), sums: vectorValues(x.sums) },
            ]),
          ),
        },
      ]),
    );
  }
  return { samples: p.samples, layers };
}

/**
 * The decomposition atlas as a {@link ShardedStrategy} (kind `decomposition-atlas`). Its options need the
 * finished global atlas (`atlas`): a distributed run is two jobs, the atlas, then this.
 */
export const decompositionStrategy: ShardedStrategy<
  DecompositionAtlasOptions & { atlas: ConceptAtlas },
  ShardedDecompositionOptions,
  DecompositionShardPartial,
  DecompositionAtlas
> = {
  kind: 'decomposition-atlas',
  // 2: parents may be joins (several layers below), partials keep children per layer below
  version: 2,
  resolve: (ctx, options) => {
    const target = options.target;
    if (options.atlas === undefined) {
      throw new CrpError(
        'invalid-argument',
        'a sharded decomposition atlas needs the finished global atlas (options.atlas)',
      );
    }
    if (target !== undefined && options.atlas.target !== target) {
      throw new CrpError(
        'invalid-argument',
        `the atlas explains class ${options.atlas.target}, not the target ${target}`,
      );
    }
    const resolved = resolveDecompositionOptions(
      ctx.crp,
      { ...options, target: options.atlas.target },
      options.atlas,
    );
    resolveAtlasOptions(ctx.crp, { target: resolved.target }); // the class must exist in this model
    return { ...resolved, samples: options.samples ?? 'class', atlas: options.atlas };
  },
  select: (source, resolved) =>
    resolved.samples === 'all' ? source : subset(source, { classes: [resolved.target] }),
  empty: () => ({ samples: 0, layers: {} }),
  batch: (ctx, batch, resolved) => toDecompositionShard(decompositionBatch(ctx.crp, batch.images, resolved)),
  merge: mergeDecompositionShards,
  finish: (partial, resolved) => {
    const { samples: _s, atlas, ...options } = resolved;
    return finishDecompositionAtlas(roundDecompositionShard(partial), options, atlas);
  },
};

import { DEFAULT_SHARD_SIZE } from '@crp/attribution';
import { gridRanges } from '@crp/attribution/internal';
import { CrpError, listNames, mulberry32, type ProgressCallback, progressTracker } from '@crp/common';
import { CondAttribution } from '@crp/core';
import {
  Attributor,
  type AttributorOptions,
  gradient,
  graphFromLayersModel,
  layerMapComposite,
} from '@crp/lrp';
import type { Dataset } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  criterionBatch,
  criterionValues,
  emptyCriterionPartial,
  mergeCriterionPartials,
  type SummedCriterion,
} from './criterion-sums.js';
import { type HeadLayer, headLayers } from './heads.js';
import { type PrunableLayer, prunableLayers, residualSums, sumSources } from './layers.js';

/** Importance of every channel of some layers under one criterion; plain JSON. Higher means more important. */
export interface ChannelScores {
  criterion: string;
  /** Per layer name, one score per output channel (per head at an attention product, see {@link HeadLayer}). */
  layers: Record<string, number[]>;
}

export type CriterionName = 'relevance' | 'activation' | 'weight' | 'taylor' | 'random';
export const CRITERIA: readonly CriterionName[] = ['relevance', 'activation', 'weight', 'taylor', 'random'];

export interface CriterionOptions {
  /** Layers to score; default every prunable layer (Conv2D, DepthwiseConv2D, Dense) but the model output. An
   * attention product whose heads can be masked (`headLayers`, e.g. a ViT's `self_attention.context`) is scored
   * per head, a residual sum (`residualSums`, e.g. a ResNet's `layer2.0.add`) per channel of its output. */
  layers?: readonly string[];
  /** Reference samples (relevance, activation and Taylor need them). Owned by the caller. */
  data?: Dataset;
  /** Divide each layer's scores by their sum, so layers are comparable in a global ranking (Yeom et al.).
   * Default true. */
  normalize?: boolean;
  /** Images per forward/backward pass. Default 32. */
  batchSize?: number;
  /** Seed of the random criterion. Default 0. */
  seed?: number;
  /** Relevance: the LRP composite and canonizers (default EpsilonPlusFlat with the batch-norm merge). */
  attributor?: Pick<AttributorOptions, 'composite' | 'canonizers'>;
  /** Taylor: the gradient of the cross-entropy loss (default, as Molchanov et al. 2017) or of the label's
   * logit. */
  objective?: 'loss' | 'logit';
  /** Called after each batch with the reference samples done. */
  onProgress?: ProgressCallback;
  /** Samples per shard (default 64, as `@crp/attribution`'s sharded runs): batches start at each shard's first
   * sample and sums are exact, so the scores equal those of a sharded or distributed run to the last bit. */
  shardSize?: number;
}

/**
 * The default layers to score: prunable layers except the classifier, i.e. layers whose channels reach the
 * model output through element-wise layers only (their units are the classes).
 */
export function defaultScoredLayers(model: LayersModel): string[] {
  const graph = graphFromLayersModel(model);
  try {
    const isClassifier = (id: string): boolean => {
      if (id === graph.outputId) return true;
      return graph
        .consumersOf(id)
        .some((c) => ['activation', 'identity'].includes(graph.node(c).kind) && isClassifier(c));
    };
    return prunableLayers(model)
      .map((l) => l.name)
      .filter((n) => !isClassifier(graph.node(n).id));
  } finally {
    graph.dispose();
  }
}

export function resolveLayers(model: LayersModel, options: Pick<CriterionOptions, 'layers'>): string[] {
  const layers = [...(options.layers ?? defaultScoredLayers(model))];
  const prunable = [
    ...prunableLayers(model).map((l) => l.name),
    ...headsOf(model, layers).keys(),
    ...sumsOf(model, layers).keys(),
  ];
  for (const l of layers) {
    if (!prunable.includes(l)) {
      throw new CrpError(
        'unknown-layer',
        `cannot score layer '${l}': it is not a prunable layer of the model; prunable layers: ${listNames(prunable)}`,
      );
    }
  }
  if (layers.length === 0) throw new CrpError('invalid-argument', 'no layers to score');
  return layers;
}

export function requireData(
  model: LayersModel,
  options: CriterionOptions,
  criterion: string,
): { images: tf.Tensor; labels: readonly number[] } {
  if (options.data === undefined) {
    throw new CrpError(
      'invalid-argument',
      `the ${criterion} criterion needs reference samples: pass data: { images, labels } (a Dataset)`,
    );
  }
  const data = options.data;
  const n = data.images.shape[0]!;
  if (data.labels.length !== n) {
    throw new CrpError('invalid-argument', `data has ${n} images but ${data.labels.length} labels`);
  }
  const classes = (model.outputs[0]!.shape as number[])[model.outputs[0]!.shape.length - 1]!;
  const bad = data.labels.find((y) => !Number.isInteger(y) || y < 0 || y >= classes);
  if (bad !== undefined) {
    throw new CrpError(
      'invalid-target',
      `label ${bad} is out of range: the model has ${classes} outputs (valid: 0..${classes - 1})`,
    );
  }
  return data;
}

export function finish(
  criterion: string,
  layers: string[],
  sums: Map<string, Float64Array>,
  normalize: boolean,
): ChannelScores {
  const out: Record<string, number[]> = {};
  for (const l of layers) {
    const s = sums.get(l)!;
    const total = s.reduce((a, b) => a + b, 0);
    out[l] = Array.from(s, (v) => (normalize && total > 0 ? v / total : v));
  }
  return { criterion, layers: out };
}

/** The head layers of `model`, looked up only when `layers` names a layer that is not a prunable layer. */
function headsOf(model: LayersModel, layers: readonly string[]): Map<string, HeadLayer> {
  const prunable = new Set(prunableLayers(model).map((l) => l.name));
  if (layers.every((l) => prunable.has(l))) return new Map();
  return new Map(headLayers(model).map((h) => [h.name, h]));
}

/** The residual sums of `model` (`layer2.0.add`), looked up only when `layers` names a layer that is not a
 * prunable layer. */
function sumsOf(model: LayersModel, layers: readonly string[]): Map<string, PrunableLayer> {
  const prunable = new Set(prunableLayers(model).map((l) => l.name));
  if (layers.every((l) => prunable.has(l))) return new Map();
  const graph = graphFromLayersModel(model);
  try {
    return new Map(residualSums(graph).map((s) => [s.name, s]));
  } finally {
    graph.dispose();
  }
}

/** Units a criterion scores at `layer`: its output channels, its heads at an attention product, the channels
 * of a residual sum. */
export function channelsOf(model: LayersModel, layer: string): number {
  return (
    prunableLayers(model).find((l) => l.name === layer)?.channels ??
    headsOf(model, [layer]).get(layer)?.heads ??
    sumsOf(model, [layer]).get(layer)!.channels
  );
}

/**
 * LRP/CRP relevance (Yeom et al., "Pruning by Explaining", 2021): per channel, the sum of |relevance| at the
 * layer's output over all positions and reference samples, each sample explained for its label (per head at an
 * attention product: the sum over the head's tokens and features, `HeadConcept`'s relevance of @crp/core with
 * |relevance|; at a residual sum, the CRP relevance of the channel at the sum's output, which the ReLU after it
 * passes unchanged). Uses
 * `CondAttribution` (@crp/core) with `recordLayers` and `heatmap: false`, so the backward pass stops at the lowest
 * scored layer.
 */
export function relevanceScores(model: LayersModel, options: CriterionOptions = {}): ChannelScores {
  return summedScores('relevance', model, options);
}

/**
 * A summed criterion over the reference samples, on the shard grid of `@crp/attribution` (batches start at
 * every shard's first sample) with exact sums: the same scores as {@link criterionStrategy} in any sharded run.
 */
function summedScores(
  criterion: SummedCriterion,
  model: LayersModel,
  options: CriterionOptions,
): ChannelScores {
  const layers = resolveLayers(model, options);
  const data = requireData(model, options, criterion);
  const engine =
    criterion === 'relevance'
      ? new CondAttribution(model, options.attributor ?? {})
      : gradientAttributor(model);
  const n = data.images.shape[0]!;
  const tick = progressTracker(n, options.onProgress, { unit: 'samples' });
  const total = emptyCriterionPartial();
  try {
    for (const [start, size] of gridRanges(
      n,
      options.batchSize ?? 32,
      options.shardSize ?? DEFAULT_SHARD_SIZE,
    )) {
      const xb = tf.slice(data.images, start, size);
      try {
        const labels = data.labels.slice(start, start + size);
        mergeCriterionPartials(
          total,
          criterionBatch(criterion, engine, xb, labels, layers, options.objective),
        );
      } finally {
        xb.dispose();
      }
      tick(size);
    }
  } finally {
    engine.dispose();
  }
  const sums = criterionValues(total, criterion, layers, (l) => channelsOf(model, l));
  return finish(criterion, layers, sums, options.normalize ?? true);
}

/** An attributor that runs the model as it is (no canonizer) and sends plain gradients backward. */
function gradientAttributor(model: LayersModel): Attributor {
  return new Attributor(model, {
    composite: layerMapComposite([[() => true, gradient()]], 'Gradient'),
    canonizers: [],
  });
}

/** Activation magnitude: per channel, the mean |activation| of the layer's own output (after its fused
 * activation, before any following batch norm) over positions and reference samples; per head, the mean
 * |attention output| of the head over its tokens and features; at a residual sum, the mean activation after the
 * ReLU that follows it (max(0, sum): a ResNet block's output; |sum| where no ReLU follows). */
export function activationScores(model: LayersModel, options: CriterionOptions = {}): ChannelScores {
  return summedScores('activation', model, options);
}

/** Per output channel, the L1 norm of a kernel's column (a DepthwiseConv2D's in x multiplier channels). */
function weightL1(kernel: tf.Tensor, className = 'Dense'): Float64Array {
  const flat = tf.tidy(() => {
    const k =
      className === 'DepthwiseConv2D' ? tf.reshape(kernel, [kernel.shape[0]!, kernel.shape[1]!, -1]) : kernel;
    return tf.sum(
      tf.abs(k),
      k.shape.slice(0, -1).map((_, i) => i),
    );
  });
  const out = Float64Array.from(flat.dataSync());
  flat.dispose();
  return out;
}

/** Weight magnitude: per output channel, the L1 norm of its kernel column (no data needed); per head, the L1
 * norm of its value-projection kernel columns; per channel of a residual sum, the sum of the L1 norms of the
 * kernel columns of every layer writing to its stream (`sumSources`). Each is the weights its mask zeroes. As
 * for any conv, the batch norm after a kernel is not merged in. */
export function weightScores(model: LayersModel, options: CriterionOptions = {}): ChannelScores {
  const layers = resolveLayers(model, options);
  const heads = headsOf(model, layers);
  const residual = sumsOf(model, layers);
  const sums = new Map<string, Float64Array>();
  for (const l of layers) {
    if (residual.has(l)) {
      sums.set(l, writerL1(model, l));
      continue;
    }
    const head = heads.get(l);
    if (head !== undefined) {
      const columns = weightL1(model.getLayer(head.valueLayer).getWeights()[0]!);
      sums.set(
        l,
        Float64Array.from({ length: head.heads }, (_, h) =>
          columns.subarray(h * head.headDim, (h + 1) * head.headDim).reduce((a, b) => a + b, 0),
        ),
      );
      continue;
    }
    const layer = model.getLayer(l);
    sums.set(l, weightL1(layer.getWeights()[0]!, layer.getClassName()));
  }
  return finish('weight', layers, sums, options.normalize ?? true);
}

/** Per channel of the residual sum `layer`, the sum of the L1 norms of its writers' kernel columns. */
function writerL1(model: LayersModel, layer: string): Float64Array {
  const graph = graphFromLayersModel(model);
  let writers: string[];
  try {
    writers = sumSources(graph, layer);
  } finally {
    graph.dispose();
  }
  const total = new Float64Array(channelsOf(model, layer));
  for (const w of writers) {
    const l = model.getLayer(w);
    const column = weightL1(l.getWeights()[0]!, l.getClassName());
    for (let c = 0; c < total.length; c++) total[c] = total[c]! + column[c]!;
  }
  return total;
}

/**
 * Taylor (Molchanov et al. 2017): per channel, |mean over positions of activation x gradient| per sample,
 * averaged over the reference samples. Per head, the positions are the head's tokens and features (Michel et
 * al. 2019's head importance, |attention output x gradient| summed per sample, divided by tokens x features). At
 * a residual sum, the activation is the sum's output and the gradient the loss's gradient there (the same product
 * as after the ReLU: where the sum is negative the gradient is 0). The gradient (of the cross-entropy loss, or of
 * the label's logit) is
 * computed by the LRP engine with the plain-gradient rule everywhere, so it runs on every backend (wasm has
 * no Conv2DBackpropFilter kernel, which tf.grad through a model would need for weights, and needs no
 * registered gradients).
 */
export function taylorScores(model: LayersModel, options: CriterionOptions = {}): ChannelScores {
  return summedScores('taylor', model, options);
}

/** Random scores from the seeded generator of @crp/common (the baseline of every pruning study). */
export function randomScores(model: LayersModel, options: CriterionOptions = {}): ChannelScores {
  const layers = resolveLayers(model, options);
  const rng = mulberry32(options.seed ?? 0);
  const sums = new Map(layers.map((l) => [l, Float64Array.from({ length: channelsOf(model, l) }, rng)]));
  return finish('random', layers, sums, options.normalize ?? true);
}

/** Scores channels by a named criterion (see {@link relevanceScores} and its siblings). */
export function scoreChannels(
  model: LayersModel,
  criterion: CriterionName,
  options: CriterionOptions = {},
): ChannelScores {
  switch (criterion) {
    case 'relevance':
      return relevanceScores(model, options);
    case 'activation':
      return activationScores(model, options);
    case 'weight':
      return weightScores(model, options);
    case 'taylor':
      return taylorScores(model, options);
    case 'random':
      return randomScores(model, options);
    default:
      throw new CrpError(
        'invalid-argument',
        `unknown criterion '${String(criterion)}'; valid: ${CRITERIA.join(', ')}`,
      );
  }
}

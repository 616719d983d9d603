import { CrpError, listNames, mulberry32, type ProgressCallback, progressTracker } from '@crp/common';
import { CondAttribution, disposeCondResult } from '@crp/core';
import {
  Attributor,
  type AttributorOptions,
  gradient,
  graphFromLayersModel,
  layerMapComposite,
  type ModelGraph,
} from '@crp/lrp';
import type { Dataset } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { prunableLayers } from './layers.js';

/**
 * @deprecated Labelled samples are a `Dataset` of `@crp/models` (`{ images, labels }`); this older form
 * `{ x, labels }` is still accepted for one release.
 */
export interface ReferenceData {
  x: tf.Tensor;
  labels: readonly number[];
}

/** The images and labels of a `Dataset` (or of the deprecated `{ x, labels }`). */
export function samplesOf(data: Dataset | ReferenceData): { images: tf.Tensor; labels: readonly number[] } {
  return 'images' in data ? data : { images: data.x, labels: data.labels };
}

/** Importance of every channel of some layers under one criterion; plain JSON. Higher means more important. */
export interface ChannelScores {
  criterion: string;
  /** Per layer name, one score per output channel. */
  layers: Record<string, number[]>;
}

export type CriterionName = 'relevance' | 'activation' | 'weight' | 'taylor' | 'random';
export const CRITERIA: readonly CriterionName[] = ['relevance', 'activation', 'weight', 'taylor', 'random'];

export interface CriterionOptions {
  /** Layers to score; default every prunable layer (Conv2D, DepthwiseConv2D, Dense) but the model output. */
  layers?: readonly string[];
  /** Reference samples (relevance, activation and Taylor need them). Owned by the caller. */
  data?: Dataset | ReferenceData;
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

function resolveLayers(model: LayersModel, options: CriterionOptions): string[] {
  const layers = [...(options.layers ?? defaultScoredLayers(model))];
  const prunable = prunableLayers(model).map((l) => l.name);
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

function requireData(
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
  const data = samplesOf(options.data);
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

function finish(
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

/** Per channel, the sum of |t| over every axis but the last, added into `acc`. */
function accumulateAbs(acc: Float64Array, t: tf.Tensor): void {
  const s = tf.tidy(() =>
    tf.sum(
      tf.abs(t),
      t.shape.slice(0, -1).map((_, i) => i),
    ),
  );
  const v = s.dataSync();
  for (let c = 0; c < acc.length; c++) acc[c]! += v[c]!;
  s.dispose();
}

function channelsOf(model: LayersModel, layer: string): number {
  return prunableLayers(model).find((l) => l.name === layer)!.channels;
}

function* batches(n: number, size: number): Generator<[number, number]> {
  for (let start = 0; start < n; start += size) yield [start, Math.min(size, n - start)];
}

/**
 * LRP/CRP relevance (Yeom et al., "Pruning by Explaining", 2021): per channel, the sum of |relevance| at the
 * layer's output over all positions and reference samples, each sample explained for its label. Uses
 * `CondAttribution` (@crp/core) with `recordLayers` and `heatmap: false`, so the backward pass stops at the lowest
 * scored layer.
 */
export function relevanceScores(model: LayersModel, options: CriterionOptions = {}): ChannelScores {
  const layers = resolveLayers(model, options);
  const data = requireData(model, options, 'relevance');
  const sums = new Map(layers.map((l) => [l, new Float64Array(channelsOf(model, l))]));
  const crp = new CondAttribution(model, options.attributor ?? {});
  try {
    const conditions = data.labels.map((y) => ({ y: [y] }));
    const run = {
      recordLayers: layers,
      heatmap: false,
      chunkSize: options.batchSize ?? 32,
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    };
    for (const chunk of crp.chunks(data.images, conditions, run)) {
      try {
        for (const l of layers) accumulateAbs(sums.get(l)!, chunk.relevances[l]!);
      } finally {
        disposeCondResult(chunk);
      }
    }
  } finally {
    crp.dispose();
  }
  return finish('relevance', layers, sums, options.normalize ?? true);
}

/** An attributor that runs the model as it is (no canonizer) and sends plain gradients backward. */
function gradientAttributor(model: LayersModel): Attributor {
  return new Attributor(model, {
    composite: layerMapComposite([[() => true, gradient()]], 'Gradient'),
    canonizers: [],
  });
}

/** Of `layers`, those with no other of them below: where a backward pass recording all of them can stop. */
function lowest(graph: ModelGraph, layers: readonly string[]): string[] {
  const ids = layers.map((l) => graph.node(l).id);
  return ids.filter((id) => !ids.some((o) => o !== id && graph.ancestorsOf(id).has(o)));
}

/** Activation magnitude: per channel, the mean |activation| of the layer's own output (after its fused
 * activation, before any following batch norm) over positions and reference samples. */
export function activationScores(model: LayersModel, options: CriterionOptions = {}): ChannelScores {
  const layers = resolveLayers(model, options);
  const data = requireData(model, options, 'activation');
  const sums = new Map(layers.map((l) => [l, new Float64Array(channelsOf(model, l))]));
  const positions = new Map<string, number>();
  const engine = gradientAttributor(model);
  const n = data.images.shape[0]!;
  const tick = progressTracker(n, options.onProgress, { unit: 'samples' });
  try {
    for (const [start, size] of batches(n, options.batchSize ?? 32)) {
      const xb = tf.slice(data.images, start, size);
      const pass = engine.forward(xb);
      try {
        for (const l of layers) {
          const a = pass.output(l);
          positions.set(l, a.size / a.shape[0]! / a.shape[a.rank - 1]!);
          accumulateAbs(sums.get(l)!, a);
        }
      } finally {
        pass.dispose();
        xb.dispose();
      }
      tick(size);
    }
  } finally {
    engine.dispose();
  }
  for (const l of layers) {
    const s = sums.get(l)!;
    const p = positions.get(l) ?? 1;
    for (let c = 0; c < s.length; c++) s[c] = s[c]! / (n * p);
  }
  return finish('activation', layers, sums, options.normalize ?? true);
}

/** Weight magnitude: per output channel, the L1 norm of its kernel column (no data needed). */
export function weightScores(model: LayersModel, options: CriterionOptions = {}): ChannelScores {
  const layers = resolveLayers(model, options);
  const sums = new Map<string, Float64Array>();
  for (const l of layers) {
    const layer = model.getLayer(l);
    const kernel = layer.getWeights()[0]!;
    const flat = tf.tidy(() => {
      const k =
        layer.getClassName() === 'DepthwiseConv2D'
          ? tf.reshape(kernel, [kernel.shape[0]!, kernel.shape[1]!, -1])
          : kernel;
      return tf.sum(
        tf.abs(k),
        k.shape.slice(0, -1).map((_, i) => i),
      );
    });
    sums.set(l, Float64Array.from(flat.dataSync()));
    flat.dispose();
  }
  return finish('weight', layers, sums, options.normalize ?? true);
}

/**
 * Taylor (Molchanov et al. 2017): per channel, |mean over positions of activation x gradient| per sample,
 * averaged over the reference samples. The gradient (of the cross-entropy loss, or of the label's logit) is
 * computed by the LRP engine with the plain-gradient rule everywhere, so it runs on every backend (wasm has
 * no Conv2DBackpropFilter kernel, which tf.grad through a model would need for weights, and needs no
 * registered gradients).
 */
export function taylorScores(model: LayersModel, options: CriterionOptions = {}): ChannelScores {
  const layers = resolveLayers(model, options);
  const data = requireData(model, options, 'taylor');
  const sums = new Map(layers.map((l) => [l, new Float64Array(channelsOf(model, l))]));
  const engine = gradientAttributor(model);
  const stops = lowest(engine.graph, layers);
  const n = data.images.shape[0]!;
  const tick = progressTracker(n, options.onProgress, { unit: 'samples' });
  try {
    for (const [start, size] of batches(n, options.batchSize ?? 32)) {
      const xb = tf.slice(data.images, start, size);
      const pass = engine.forward(xb);
      const labels = data.labels.slice(start, start + size);
      const init = tf.tidy(() => {
        const logits = pass.prediction;
        const onehot = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), logits.shape[1]!), 'float32');
        return options.objective === 'logit' ? onehot : tf.sub(tf.softmax(logits), onehot);
      });
      let grads: Map<string, tf.Tensor> | undefined;
      try {
        grads = engine.backward(pass, {
          from: engine.graph.outputId,
          relevance: init,
          record: layers,
          stopAt: stops,
        });
        for (const l of layers) {
          const s = tf.tidy(() => {
            const ag = tf.mul(pass.output(l), grads!.get(l)!);
            const spatial = ag.shape.slice(1, -1).map((_, i) => i + 1);
            const perSample = spatial.length > 0 ? tf.mean(ag, spatial) : ag;
            return tf.sum(tf.abs(perSample), 0);
          });
          const v = s.dataSync();
          const acc = sums.get(l)!;
          for (let c = 0; c < acc.length; c++) acc[c]! += v[c]! / n;
          s.dispose();
        }
      } finally {
        for (const t of grads?.values() ?? []) t.dispose();
        init.dispose();
        pass.dispose();
        xb.dispose();
      }
      tick(size);
    }
  } finally {
    engine.dispose();
  }
  return finish('taylor', layers, sums, options.normalize ?? true);
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

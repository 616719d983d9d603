import { CrpError } from '@crp/common';
import { writeFloat32 } from '@crp/lrp/internal';
import { cloneModel } from '@crp/pruning';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { type Attributions, checkLabels, readAttributions, readSamples, type Samples } from '../data.js';
import { type CascadeSteps, type Explainer, explainAs } from '../explainer.js';
import { type ExplanationProcessing, processAttributions } from '../normalise.js';
import { pearson, ranks, spearman, ssim } from '../numeric.js';
import { seededRandom } from '../random.js';
import { type MetricResult, mean, type RunOptions } from '../types.js';

/** Similarity of two explanations in the randomisation metrics (Quantus's `similarity_func`). */
export type SimilarityName = 'spearman' | 'pearson' | 'ssim';

/** The input of the randomisation metrics: a `tf.LayersModel` (MPRT randomises its layers; the model is left
 * as it was, also on failure), inputs, labels and optionally the explanations (else the explainer computes
 * them). The caller owns the tensors. */
export interface RandomisationInput {
  model: tfl.LayersModel;
  x: tf.Tensor4D;
  labels: readonly number[];
  explanation?: tf.Tensor;
}

/** The input's explanation, or the explainer's of its labels where it has none, processed (RandomLogit and the
 * sensitivities: the explanation of the unperturbed input). */
export async function givenOrExplained(
  input: RandomisationInput,
  explainer: Explainer,
  s: Samples,
  options: ExplanationProcessing,
  defaults: { normalise: boolean; abs: boolean },
): Promise<Attributions> {
  const a =
    input.explanation === undefined
      ? await explainAs(explainer, input.model, input.x, input.labels, s, 'explanation')
      : await readAttributions(input.explanation, s);
  return processAttributions(a, options, defaults);
}

/** Values in the order Quantus flattens them: channel-first (NCHW) for a per-channel explanation, so that
 * SSIM's sliding window sees the same sequence. */
function flatChannelFirst(a: Float32Array, channels: number): Float32Array {
  if (channels === 1) return a;
  const pixels = a.length / channels;
  const out = new Float32Array(a.length);
  for (let p = 0; p < pixels; p++)
    for (let c = 0; c < channels; c++) out[c * pixels + p] = a[p * channels + c]!;
  return out;
}

function similarityOf(name: SimilarityName): (a: Float32Array, b: Float32Array) => number {
  if (name === 'spearman') return spearman;
  if (name === 'pearson') return pearson;
  if (name === 'ssim') return ssim;
  throw new CrpError(
    'invalid-argument',
    `unknown similarity '${String(name)}'; valid: spearman, pearson, ssim`,
  );
}

/** Compares explanations with `a`, which is prepared once: its values flattened and, for Spearman, ranked (MPRT
 * compares every layer's explanation with the same one). */
function comparerTo(a: Attributions, name: SimilarityName): (b: Attributions) => number[] {
  const flatA = a.values.map((v) => flatChannelFirst(v, a.channels));
  const flatB = (b: Attributions, i: number) => flatChannelFirst(b.values[i]!, b.channels);
  if (name === 'spearman') {
    // spearman(a, b) is pearson(ranks(a), ranks(b))
    const ranked = flatA.map((v) => ranks(v));
    return (b) => ranked.map((r, i) => pearson(r, ranks(flatB(b, i))));
  }
  const sim = similarityOf(name);
  return (b) => flatA.map((v, i) => sim(v, flatB(b, i)));
}

/**
 * New weights for one layer, as PyTorch's `reset_parameters()` draws them after `torch.manual_seed(seed + 1)`:
 * kernel and bias uniform in +-1/sqrt(fan_in) (Kaiming-uniform with a = sqrt(5)), batch norm back to gamma 1,
 * beta 0, mean 0, variance 1. At fan_in 0 (a kernel without elements) the bias is zeros for a `Dense` layer
 * (nn.Linear) and kept as it was for the other layers (convolutions: _ConvNd). The values come from the toolkit's
 * seeded generator (the same distribution as PyTorch's, not PyTorch's numbers); every layer restarts the
 * generator at the same seed, as Quantus re-seeds torch before each layer.
 */
export function resetParameters(layer: tfl.layers.Layer, seed: number): tf.Tensor[] {
  const weights = layer.getWeights();
  const cls = layer.getClassName();
  if (cls === 'BatchNormalization') {
    const names = layer.weights.map((w) => w.originalName ?? w.name);
    return weights.map((w, i) =>
      /gamma|moving_variance/.test(names[i]!) ? tf.onesLike(w) : tf.zerosLike(w),
    );
  }
  const kernelShape = weights[0]!.shape;
  // fan_in: every kernel axis but the output one ([kh, kw, in, out], [in, out]); depthwise: kh * kw (PyTorch's
  // Conv2d with groups = in). A separable conv is PyTorch's depthwise conv followed by a 1x1 conv: its depthwise
  // kernel draws with kh * kw, its pointwise kernel and the bias (the 1x1 conv's) with in * depth multiplier
  const pointwiseFanIn = cls === 'SeparableConv2D' ? weights[1]!.shape[2]! : undefined;
  const kernelFanIn =
    cls === 'DepthwiseConv2D' || cls === 'SeparableConv2D'
      ? kernelShape[0]! * kernelShape[1]!
      : kernelShape.slice(0, -1).reduce((a, b) => a * b, 1);
  // mulberry32(seed + 1), its state carried from one weight to the next. The draws go straight into the wasm heap:
  // a fresh array per weight and its copy into the heap cost 22 ms of CPU per MPRT on the small VGG (page faults,
  // the garbage collector), written in place 7 ms, and 2 ms with the loop in drawUniform
  let state = (seed + 1) | 0;
  return weights.map((w, i) => {
    const fanIn = i > 0 && pointwiseFanIn !== undefined ? pointwiseFanIn : kernelFanIn;
    const bound = 1 / Math.sqrt(fanIn);
    // fan_in 0: the kernel has no element, so nothing is drawn for it (kaiming_uniform_ of a zero-element tensor
    // is a no-op in PyTorch 1.13) and 1/sqrt(0) would make the bias +-Infinity. PyTorch's bias then: nn.Linear
    // draws it in +-0 (`bound = ... if fan_in > 0 else 0`: zeros, and one draw a value consumed), _ConvNd leaves it
    // as it was (`if fan_in != 0`, no draw)
    if (fanIn === 0 && i > 0 && cls !== 'Dense') return w.clone();
    return writeFloat32([...w.shape], (values) => {
      state = drawUniform(values, state, fanIn === 0 ? 0 : bound);
      // uniform in +-0 is +0 in PyTorch; (2u - 1) * 0 is -0 for u < 0.5
      if (fanIn === 0) values.fill(0);
    });
  });
}

/**
 * Fills `values` with mulberry32's uniform draws in +-bound from `state` (an int32) on, and returns the state after
 * the last. A function of its own, not a closure: V8 compiles its loop once, the state a local int32 (through a
 * closure's context every draw stored a number above the small-integer range, a heap allocation: 25 ns a value).
 * `state | 0` keeps the state's addition in 32-bit integers in every compiled form of the loop: without it, the
 * code V8 enters mid-loop (on-stack replacement, which a loop of a million draws runs in) sees the state come in as
 * any number and adds it in floating point, a float-int conversion each way on the loop's critical path (4.7 ns a
 * value against 1.5; 6 against 2 ms for the small VGG's 1.3 M weights, measured across processes). The same bits:
 * `| 0` of an int32 is the int32.
 */
function drawUniform(values: Float32Array, state: number, bound: number): number {
  for (let i = 0; i < values.length; i++) {
    state = ((state | 0) + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    values[i] = (2 * (((t ^ (t >>> 14)) >>> 0) / 4294967296) - 1) * bound;
  }
  return state;
}

/** Options of {@link mprt} (Quantus `MPRT`). */
export interface MprtOptions extends ExplanationProcessing {
  /** `top_down` (cascading from the output, default), `bottom_up` (cascading from the input) or `independent`
   * (one layer at a time, the others original). */
  layerOrder?: 'top_down' | 'bottom_up' | 'independent';
  /** Default `spearman`. */
  similarity?: SimilarityName;
  /** Seed of the randomisation; default 42. */
  seed?: number;
  /** Scores: the mean over all entries of `layers` (Quantus `return_average_correlation`). */
  returnAverageCorrelation?: boolean;
  /** Scores: the last layer's similarities (Quantus `return_last_correlation`). */
  returnLastCorrelation?: boolean;
  /** Explain only after the last randomisation (Quantus `skip_layers`). */
  skipLayers?: boolean;
  /** Explain after at most this many randomisations, evenly spaced and always after the last (not in Quantus):
   * every layer is still randomised in Quantus's order, so each similarity equals Quantus's value at that layer;
   * only the explanations in between are skipped. A ResNet-50 has 107 layers with weights, and one explanation
   * per layer makes the test the slowest part of a study. Default: after every layer. */
  explainAtMost?: number;
  /** New weights of a layer; default {@link resetParameters}. Returned tensors are disposed by the metric. */
  randomiseLayer?: (layer: tfl.layers.Layer, seed: number) => tf.Tensor[];
}

/**
 * Model parameter randomisation test (Adebayo et al. 2018): randomise the model's layers one after the other
 * (`top_down` by default; in place, batched, where the explainer's session can, else in a copy) and compare each
 * explanation with the original one; an explanation that stays similar does not depend on what the model
 * learned (Quantus `MPRT`; defaults: Spearman, seed 42, abs, normalise; lower is better). `layers` holds the similarity per layer, `original` first (the original model's
 * explanation compared with the given one). `scores` are the last layer's similarities unless
 * `returnAverageCorrelation` asks for the mean, which, as in Quantus, includes the `original` entry (Quantus
 * means to skip it but compares the key with 'orig').
 */
export async function mprt(
  input: RandomisationInput,
  explainer: Explainer,
  options: MprtOptions = {},
  run: Pick<RunOptions, 'onProgress'> = {},
): Promise<MetricResult> {
  const metric = 'MPRT';
  const order = options.layerOrder ?? 'top_down';
  if (!['top_down', 'bottom_up', 'independent'].includes(order)) {
    throw new CrpError(
      'invalid-argument',
      `${metric}: unknown layerOrder '${order}'; valid: top_down, bottom_up, independent`,
    );
  }
  if (options.returnAverageCorrelation && options.returnLastCorrelation) {
    throw new CrpError(
      'invalid-argument',
      `${metric}: returnAverageCorrelation and returnLastCorrelation exclude each other`,
    );
  }
  if (options.returnAverageCorrelation && options.skipLayers) {
    throw new CrpError(
      'invalid-argument',
      `${metric}: returnAverageCorrelation needs every layer; it excludes skipLayers`,
    );
  }
  const most = options.explainAtMost;
  if (most !== undefined && (!Number.isInteger(most) || most < 1)) {
    throw new CrpError(
      'invalid-argument',
      `${metric}: explainAtMost must be a positive integer, got ${most}`,
    );
  }
  if (most !== undefined && options.returnAverageCorrelation) {
    throw new CrpError(
      'invalid-argument',
      `${metric}: returnAverageCorrelation needs every layer; it excludes explainAtMost`,
    );
  }
  const similarity = options.similarity ?? 'spearman';
  similarityOf(similarity); // checked before any work
  const seed = options.seed ?? 42;
  const s = await readSamples(input.x);
  checkLabels(input.labels, s.n);
  const defaults = { normalise: true, abs: true };
  const given = input.explanation === undefined ? undefined : await readAttributions(input.explanation, s);
  const layersOut: Record<string, number[]> = {};
  // Quantus's order: from the output for top_down, the model's order otherwise
  const weightedOf = (model: tfl.LayersModel) => {
    const weighted = model.layers.filter((l) => l.getWeights().length > 0);
    return order === 'top_down' ? weighted.reverse() : weighted;
  };
  const randomise = options.randomiseLayer ?? resetParameters;
  const steps = weightedOf(input.model).length;
  const explained = explainedSteps(steps, options.skipLayers ? 1 : most);
  const started = performance.now();
  const progress = (done: number) => {
    const elapsedMs = performance.now() - started;
    run.onProgress?.({
      done,
      total: steps,
      elapsedMs,
      etaMs: (elapsedMs / done) * (steps - done),
      unit: 'layers',
      phase: metric,
    });
  };
  const randomiseIn = (layers: readonly tfl.layers.Layer[]) => (k: number) => {
    const fresh = randomise(layers[k]!, seed);
    layers[k]!.setWeights(fresh);
    for (const t of fresh) t.dispose();
  };
  // the similarities, in the order the explanations come: the original model's first (the reference, unless
  // an explanation is given)
  let a: Attributions | undefined;
  let compare: ((b: Attributions) => number[]) | undefined;
  const record = (name: string, b: Attributions) => {
    if (compare === undefined) {
      a = given === undefined ? b : processAttributions(given, options, defaults);
      compare = comparerTo(a, similarity);
    }
    layersOut[name] = compare(b);
  };
  const batched = cascadeInPlace(input, explainer, {
    layers: weightedOf(input.model),
    order,
    randomise: randomiseIn,
    explained: (k) => explained.has(k),
    onStep: progress,
  });
  if (batched !== undefined) {
    const read = async (t: tf.Tensor, what: string) => {
      try {
        return processAttributions(await readAttributions(t, s, what), options, defaults);
      } finally {
        t.dispose();
      }
    };
    try {
      record('original', await read(batched.explanations[0]!, 'explanation of the original model'));
      let j = 1;
      for (const [k, name] of batched.names.entries()) {
        if (!explained.has(k)) continue;
        record(name, await read(batched.explanations[j]!, `explanation after randomising ${name}`));
        j += 1;
      }
    } finally {
      for (const t of batched.explanations) if (!t.isDisposed) t.dispose();
    }
  } else {
    const explainProcessed = async (bound: Explainer, model: tfl.LayersModel, what: string) =>
      processAttributions(await explainAs(bound, model, input.x, input.labels, s, what), options, defaults);
    await stepByStep(
      input,
      explainer,
      { order, weightedOf, randomiseIn, explained, progress },
      explainProcessed,
      record,
    );
  }
  const entries = Object.values(layersOut);
  const scores = options.returnAverageCorrelation
    ? a!.values.map((_, i) => mean(entries.map((e) => e[i]!)))
    : entries[entries.length - 1]!;
  return { metric, scores, layers: layersOut, aggregate: mean(scores), higherIsBetter: false };
}

/** The steps (0-based) after which MPRT explains: all, or `most` evenly spaced ending with the last. */
function explainedSteps(layers: number, most: number | undefined): Set<number> {
  if (most === undefined || most >= layers) return new Set(Array.from({ length: layers }, (_, k) => k));
  return new Set(Array.from({ length: most }, (_, j) => Math.round(((j + 1) * layers) / most) - 1));
}

/**
 * MPRT step by step (where no session batches the cascade), in a copy of the model whose layers are randomised
 * in place; with a session, what the explainer derived from a layer is kept until that layer is randomised.
 * `record` gets each explanation, the original model's first.
 */
async function stepByStep(
  input: RandomisationInput,
  explainer: Explainer,
  steps: {
    order: 'top_down' | 'bottom_up' | 'independent';
    weightedOf: (model: tfl.LayersModel) => tfl.layers.Layer[];
    randomiseIn: (layers: readonly tfl.layers.Layer[]) => (k: number) => void;
    explained: ReadonlySet<number>;
    progress: (done: number) => void;
  },
  explain: (bound: Explainer, model: tfl.LayersModel, what: string) => Promise<Attributions>,
  record: (name: string, b: Attributions) => void,
): Promise<void> {
  const copy = await cloneModel(input.model);
  const layers = steps.weightedOf(copy);
  const randomiseAt = steps.randomiseIn(layers);
  const session = explainer.session?.(copy);
  const bound: Explainer = session === undefined ? explainer : () => session.explain(input.x, input.labels);
  // independent: each layer goes back to its original weights before the next is randomised
  const originals =
    steps.order === 'independent' ? layers.map((l) => l.getWeights().map((w) => w.clone())) : [];
  try {
    // the copy has the original weights until the first randomisation
    record('original', await explain(bound, copy, 'explanation of the original model'));
    const changed = new Set<string>();
    for (const [k, layer] of layers.entries()) {
      if (steps.order === 'independent' && k > 0) {
        layers[k - 1]!.setWeights(originals[k - 1]!);
        changed.add(layers[k - 1]!.name);
      }
      randomiseAt(k);
      changed.add(layer.name);
      if (!steps.explained.has(k)) continue;
      session?.changed([...changed]);
      changed.clear();
      record(layer.name, await explain(bound, copy, `explanation after randomising ${layer.name}`));
      steps.progress(k + 1);
    }
  } finally {
    for (const ws of originals) tf.dispose(ws);
    session?.dispose();
    copy.dispose();
  }
}

/**
 * MPRT's cascade batched by the explainer's session (see {@link ExplainerSession.cascade}), on the user's model
 * itself: its layers are randomised in place and every one gets its original weights back (the saved values,
 * bit for bit) before this returns, also on failure. The cascade runs synchronously, so no other code sees the
 * randomised weights, and no copy of the model is made. `undefined` (nothing randomised) where the explainer has
 * no session or its session cannot batch this model.
 */
function cascadeInPlace(
  input: RandomisationInput,
  explainer: Explainer,
  steps: Omit<CascadeSteps, 'layers' | 'randomise' | 'restore'> & {
    layers: readonly tfl.layers.Layer[];
    randomise: (layers: readonly tfl.layers.Layer[]) => (k: number) => void;
  },
): { names: string[]; explanations: tf.Tensor[] } | undefined {
  const session = explainer.session?.(input.model);
  if (session?.cascade === undefined) {
    session?.dispose();
    return undefined;
  }
  const layers = steps.layers;
  const originals = layers.map((l) => l.getWeights().map((w) => w.clone()));
  const restore = (k: number) => layers[k]!.setWeights(originals[k]!);
  try {
    const names = layers.map((l) => l.name);
    const explanations = session.cascade(input.x, input.labels, {
      ...steps,
      layers: names,
      randomise: steps.randomise(layers),
      restore,
    });
    return explanations === undefined ? undefined : { names, explanations };
  } finally {
    for (const k of layers.keys()) restore(k);
    for (const ws of originals) tf.dispose(ws);
    session.dispose();
  }
}

/** Options of {@link randomLogit} (Quantus `RandomLogit`). */
export interface RandomLogitOptions extends ExplanationProcessing {
  /** Number of classes of the model; default 1000. */
  numClasses?: number;
  /** Seed of the off-target draw; default 42. */
  seed?: number;
  /** Default `ssim`. */
  similarity?: SimilarityName;
}

/**
 * Random logit test (Sixt et al. 2020): compare the explanation of the target with the explanation of a random
 * other class; a class-sensitive explanation differs (Quantus `RandomLogit`; defaults: SSIM, 1000 classes, seed
 * 42, normalise, no abs; lower is better). Quantus flattens the explanations before SSIM, so the SSIM window
 * slides along the flattened rows (followed here).
 */
export async function randomLogit(
  input: RandomisationInput,
  explainer: Explainer,
  options: RandomLogitOptions = {},
  run: Pick<RunOptions, 'random'> = {},
): Promise<MetricResult> {
  const metric = 'RandomLogit';
  const s = await readSamples(input.x);
  checkLabels(input.labels, s.n);
  const numClasses = options.numClasses ?? 1000;
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new CrpError(
      'invalid-argument',
      `${metric}: numClasses is ${numClasses}; give the model's number of classes (>= 2)`,
    );
  }
  const bad = input.labels.findIndex((l) => l >= numClasses);
  if (bad >= 0) {
    throw new CrpError(
      'invalid-target',
      `${metric}: label ${input.labels[bad]} of sample ${bad} is not below numClasses ${numClasses}`,
    );
  }
  const similarity = options.similarity ?? 'ssim';
  similarityOf(similarity);
  const random = run.random ?? seededRandom(options.seed ?? 42);
  // an index among the other classes, drawn per sample (Quantus: randint(0, num_classes - 1, N))
  const offTargets = input.labels.map((y) => {
    const k = random.integer(0, numClasses - 1);
    return k < y ? k : k + 1;
  });
  const defaults = { normalise: true, abs: false };
  const a = await givenOrExplained(input, explainer, s, options, defaults);
  const b = processAttributions(
    await explainAs(explainer, input.model, input.x, offTargets, s, 'explanation of the random class'),
    options,
    defaults,
  );
  const scores = comparerTo(a, similarity)(b);
  return { metric, scores, aggregate: mean(scores), higherIsBetter: false, details: { offTargets } };
}

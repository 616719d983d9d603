import { CrpError, listNames } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

type Layer = tfl.LayersModel['layers'][number];

/**
 * Which layers {@link train} changes: `'all'` (every layer with trainable weights, the default), or names of layers
 * and of groups of them: `'classifier'` is every layer named `classifier.<something>` (PyTorch's modules:
 * `classifier.0`, `classifier.3`, `classifier.6`), `'features.25'` one layer, `'fc1'` a Keras-style name.
 */
export type TrainLayers = 'all' | readonly string[];

/** The layers of a model that training changes, and the part of the model that runs as at inference. */
export interface LayerSelection {
  /** Names of the layers whose weights are trained, in model order. */
  trained: string[];
  /**
   * How many of the model's first layers run as at inference, outside the gradient computation: the layers
   * before the first trained one, when the model is a chain (a Sequential model, or functional without branches);
   * 0 otherwise. Batch norm there uses its moving statistics and dropout is off, as Keras does with frozen layers.
   */
  frozenPrefix: number;
}

/** The model's layers without the input layer. */
function layersOf(model: tfl.LayersModel): Layer[] {
  return model.layers.filter((l) => l.getClassName() !== 'InputLayer');
}

/** Whether every layer takes exactly the previous one's output (the first: the model's input). */
function isChain(layers: Layer[]): boolean {
  return layers.every((layer, i) => {
    const nodes = layer.inboundNodes;
    if (nodes.length !== 1 || nodes[0]!.inboundLayers.length !== 1) return false;
    const from = nodes[0]!.inboundLayers[0]!;
    return i === 0 ? from.getClassName() === 'InputLayer' : from === layers[i - 1];
  });
}

const hasTrainableWeights = (layer: Layer) => layer.trainable && layer.trainableWeights.length > 0;

/**
 * Resolves {@link TrainLayers} against a model.
 *
 * @throws CrpError `unknown-layer` for a name that is no layer or group of layers with trainable weights (the
 *   message lists the valid names).
 */
export function selectTrainLayers(model: tfl.LayersModel, trainLayers: TrainLayers = 'all'): LayerSelection {
  const layers = layersOf(model);
  const withWeights = layers.filter(hasTrainableWeights);
  let trained: Layer[];
  if (trainLayers === 'all') {
    trained = withWeights;
  } else {
    if (!Array.isArray(trainLayers) || trainLayers.length === 0) {
      throw new CrpError(
        'invalid-argument',
        `trainLayers must be 'all' or a non-empty list of layer names, got ${JSON.stringify(trainLayers)}`,
      );
    }
    const chosen = new Set<Layer>();
    for (const name of trainLayers) {
      const matches = withWeights.filter((l) => l.name === name || l.name.startsWith(`${name}.`));
      if (matches.length === 0) {
        const groups = [...new Set(withWeights.map((l) => l.name.split('.')[0]!))].filter(
          (g) => !withWeights.some((l) => l.name === g),
        );
        throw new CrpError(
          'unknown-layer',
          `trainLayers names '${name}', which is no layer with trainable weights of this model; valid: ${listNames(
            [...groups, ...withWeights.map((l) => l.name)],
            40,
          )}`,
          { details: { layer: name } },
        );
      }
      for (const l of matches) chosen.add(l);
    }
    trained = withWeights.filter((l) => chosen.has(l));
  }
  if (trained.length === 0) {
    throw new CrpError('invalid-argument', 'the model has no trainable weights: nothing to train');
  }
  const first = layers.indexOf(trained[0]!);
  return { trained: trained.map((l) => l.name), frozenPrefix: isChain(layers) ? first : 0 };
}

/** Options of {@link planTrainingMemory}. */
export interface TrainingMemoryOptions {
  /** The layers to train; default `'all'`. */
  trainLayers?: TrainLayers;
  /** The backend to plan for; default the current one (`tf.getBackend()`). */
  backend?: string;
  /**
   * Bytes the backend can hold. Default: 4 GiB on `wasm` (its heap cannot grow beyond, and running out aborts the
   * whole wasm module); no limit elsewhere (then the batch size is `maxBatchSize`).
   */
  memoryLimit?: number;
  /** Share of `memoryLimit` that the plan may fill (the rest is a safety margin); default 0.85. */
  headroom?: number;
  /** The largest batch size to consider; default 32. */
  maxBatchSize?: number;
  /**
   * Where the optimiser keeps its state: `'backend'` (two moments per trained weight, as tensors), `'js'`
   * (Lamb's `moments: 'js'`: none on the backend), or `'auto'` (default): `'backend'` unless that allows a smaller
   * batch than `'js'`.
   */
  moments?: 'backend' | 'js' | 'auto';
  /**
   * Bytes held on the backend by other things than the model's weights (data sets, other models). Default:
   * measured now, `tf.memory().numBytes` minus the model's weights.
   */
  otherBytes?: number;
}

/** What {@link planTrainingMemory} expects training to need, in bytes. */
export interface TrainingMemoryPlan {
  backend: string;
  /** The largest batch size (images per step) that fits, at most `maxBatchSize`. */
  batchSize: number;
  /** Why the batch size is not larger. */
  limitedBy: 'memory' | 'maxBatchSize';
  /** Where the optimiser state is planned (`'js'`: Lamb with `moments: 'js'`). */
  moments: 'backend' | 'js';
  /** Expected peak of the backend's memory during a training step at `batchSize`. */
  peakBytes: number;
  /** The limit (undefined: none) and the part of it that the plan may fill. */
  limitBytes: number | undefined;
  budgetBytes: number | undefined;
  parameters: { total: number; trained: number };
  /** The parts of the peak: fixed ones, and per image of a batch. */
  bytes: {
    /** All weights of the model (trained or not, batch-norm statistics included). */
    weights: number;
    /**
     * Copies that the backend keeps of weights in its own layout: wasm's XNNPACK packs every Dense kernel and conv
     * filter it runs (about their size); 0 on other backends.
     */
    packedWeights: number;
    /** One gradient per trained weight. */
    gradients: number;
    /** The optimiser's state on the backend: two moments per trained weight when `moments` is `'backend'`. */
    optimizerState: number;
    /** The optimiser step's temporaries on the backend (a few copies of the largest trained variable). */
    optimizerWorkspace: number;
    /** Data sets and other tensors already on the backend. */
    other: number;
    /**
     * The allocator's fragmentation: one hole of the largest weight variable's size. Each step frees and allocates
     * that variable's weights, gradient and packed copy in turn; on wasm with vgg11_bn the heap settles about 300 MB
     * above the rest of the plan after the first steps (its largest variable: 411 MB).
     */
    fragmentation: number;
    /** Activations kept for the gradient, and the backward pass's temporaries, per image of a batch. */
    activationsPerImage: number;
  };
  /** The layers trained, and how many first layers run as at inference (see {@link LayerSelection}). */
  selection: LayerSelection;
}

/** The wasm heap's maximum (wasm32 with TF.js 4.22's build: 65536 pages of 64 KiB). */
export const WASM_MEMORY_LIMIT = 4 * 1024 ** 3;

/**
 * Bytes per element of a layer's output that a training step holds per image, over the trained part of the model:
 * the output kept for the gradient, batch norm's training-mode intermediates, the gradients flowing back and the
 * backward kernels' transposed copies. Measured on wasm with the kernels of {@link registerTrainingKernels}: a
 * vgg11_bn step at 128x128 (7.83M output elements per image, all layers but Flatten) grows the heap's high-water
 * mark from 2.23 GB at batch size 4 to 2.80 GB at 8 and 4.05 GB at 16, about 157 MB per image: 20 bytes per
 * element.
 */
export const TRAINING_BYTES_PER_OUTPUT = 20;
/**
 * The same for the frozen first layers, which run as at inference, one layer at a time: its input, its output and
 * a temporary.
 */
export const INFERENCE_BYTES_PER_OUTPUT = 12;
/** LAMB's temporaries on the backend per element of the largest trained variable (m, v, r, u, the step, w'). */
const OPTIMIZER_WORKSPACE_PER_ELEMENT = 6 * 4;

/** Layers that are views of their input (no memory of their own). */
const VIEWS = new Set(['InputLayer', 'Flatten', 'Reshape']);

function outputElements(layer: Layer): number {
  const shapes = (Array.isArray(layer.outputShape[0]) ? layer.outputShape : [layer.outputShape]) as (
    | number
    | null
  )[][];
  return shapes.reduce((sum, s) => sum + s.slice(1).reduce<number>((p, d) => p * (d ?? 1), 1), 0);
}

const sizeOf = (w: tfl.LayerVariable) => w.shape.reduce<number>((p, d) => p * (d ?? 1), 1);

/**
 * Plans the memory of training a model: weights, gradients, the optimiser's state, the backend's packed weight
 * copies and the activations of a batch, and from them the largest batch size that fits the backend's memory
 * (wasm: 4 GiB). {@link train} uses it when no `batchSize` is given, and refuses a batch size that would not fit.
 * Every part is given, so the numbers can be checked by hand:
 *
 * ```text
 * peak(B) = weights + packedWeights + gradients + optimizerState + optimizerWorkspace + other + fragmentation
 *         + B · activationsPerImage
 * fragmentation = the largest weight variable
 * activationsPerImage = 20 bytes · Σ outputs per image of the trained layers and those after them
 *                     + 12 bytes · largest output per image of the layers before (they run as at inference)
 * ```
 *
 * The model's input shape must be known (the model is built for one input size).
 *
 * @throws CrpError `unknown-layer` for an unknown name in `trainLayers`; `invalid-argument` for bad options or a
 *   model without a known input shape.
 */
export function planTrainingMemory(
  model: tfl.LayersModel,
  options: TrainingMemoryOptions = {},
): TrainingMemoryPlan {
  const backend = options.backend ?? tf.getBackend();
  const maxBatchSize = options.maxBatchSize ?? 32;
  const headroom = options.headroom ?? 0.85;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
    throw new CrpError('invalid-argument', `maxBatchSize must be a whole number >= 1, got ${maxBatchSize}`);
  }
  if (!(headroom > 0 && headroom <= 1)) {
    throw new CrpError('invalid-argument', `headroom must be in (0, 1], got ${headroom}`);
  }
  const inputShape = model.inputs[0]?.shape;
  if (inputShape === undefined || inputShape.slice(1).some((d) => d === null)) {
    throw new CrpError(
      'invalid-argument',
      `the model's input shape [${(inputShape ?? []).map((d) => d ?? 'N').join(', ')}] is not fully known; build it for one input size`,
    );
  }
  const selection = selectTrainLayers(model, options.trainLayers);
  const layers = layersOf(model);
  const trainedSet = new Set(selection.trained);
  const trainedLayers = layers.filter((l) => trainedSet.has(l.name));
  const total = model.weights.reduce((s, w) => s + sizeOf(w), 0);
  const trained = trainedLayers.reduce(
    (s, l) => s + l.trainableWeights.reduce((t, w) => t + sizeOf(w), 0),
    0,
  );
  const largestTrained = Math.max(0, ...trainedLayers.flatMap((l) => l.trainableWeights.map(sizeOf)));
  const largest = Math.max(0, ...model.weights.map(sizeOf));
  const packed =
    backend === 'wasm'
      ? layers
          .filter((l) => ['Dense', 'Conv2D'].includes(l.getClassName()))
          .reduce(
            (s, l) => s + sizeOf(l.trainableWeights.find((w) => w.name.endsWith('kernel')) ?? l.weights[0]!),
            0,
          )
      : 0;
  // the gradient tape runs from the first layer that is not frozen (all of them when the model is not a chain)
  const start = selection.frozenPrefix;
  const taped = layers.slice(start).filter((l) => !VIEWS.has(l.getClassName()));
  const prefix = layers.slice(0, start).filter((l) => !VIEWS.has(l.getClassName()));
  const activationsPerImage =
    TRAINING_BYTES_PER_OUTPUT * taped.reduce((s, l) => s + outputElements(l), 0) +
    INFERENCE_BYTES_PER_OUTPUT * Math.max(0, ...prefix.map(outputElements));
  const weightsBytes = 4 * total;
  const other = Math.max(0, options.otherBytes ?? tf.memory().numBytes - weightsBytes);
  const limitBytes = options.memoryLimit ?? (backend === 'wasm' ? WASM_MEMORY_LIMIT : undefined);
  const budgetBytes = limitBytes === undefined ? undefined : Math.floor(limitBytes * headroom);
  const fixedFor = (moments: 'backend' | 'js') =>
    weightsBytes +
    4 * packed +
    4 * trained +
    (moments === 'backend' ? 8 * trained + OPTIMIZER_WORKSPACE_PER_ELEMENT * largestTrained : 0) +
    other +
    4 * largest;
  const batchFor = (moments: 'backend' | 'js') =>
    budgetBytes === undefined
      ? maxBatchSize
      : Math.min(maxBatchSize, Math.floor((budgetBytes - fixedFor(moments)) / activationsPerImage));
  const wanted = options.moments ?? 'auto';
  const moments = wanted !== 'auto' ? wanted : batchFor('backend') >= batchFor('js') ? 'backend' : 'js';
  const batchSize = batchFor(moments);
  const fixed = fixedFor(moments);
  return {
    backend,
    batchSize: Math.max(batchSize, 0),
    limitedBy: batchSize < maxBatchSize ? 'memory' : 'maxBatchSize',
    moments,
    peakBytes: fixed + Math.max(batchSize, 1) * activationsPerImage,
    limitBytes,
    budgetBytes,
    parameters: { total, trained },
    bytes: {
      weights: weightsBytes,
      packedWeights: 4 * packed,
      gradients: 4 * trained,
      optimizerState: moments === 'backend' ? 8 * trained : 0,
      optimizerWorkspace: moments === 'backend' ? OPTIMIZER_WORKSPACE_PER_ELEMENT * largestTrained : 0,
      other,
      fragmentation: 4 * largest,
      activationsPerImage,
    },
    selection,
  };
}

/** Bytes as a short text (`1.53 GB`). */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e3).toFixed(1)} kB`;
}

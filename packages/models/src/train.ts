import { CrpError, mulberry32, type Progress, permutation } from '@crp/common';
import { readFloat32, wasmHeapBytes } from '@crp/lrp/internal';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  type CheckpointState,
  type CheckpointStore,
  captureCheckpoint,
  type EpochLog,
  loadCheckpointWeights,
  restoreCheckpoint,
} from './checkpoint.js';
import { checkDataset, type Dataset, gatherDataset, splitIndices } from './dataset.js';
import { Lamb } from './lamb.js';
import { registerTrainingKernels } from './training-kernels.js';
import {
  formatBytes,
  planTrainingMemory,
  type TrainingMemoryOptions,
  type TrainingMemoryPlan,
  type TrainLayers,
} from './training-memory.js';

/**
 * What {@link train} reports after each batch and each epoch: the toolkit's {@link Progress} over the training
 * steps (batches) of this call (`done`, `total`, `elapsedMs`, `etaMs`, `unit: 'batches'`), plus the epoch's
 * numbers. `etaMs` counts all the work left: the steps, the validation passes, and the frozen layers' features
 * while they are not cached yet, each at its own measured rate (the first step, which also prepares the backend,
 * is left out of the rates once there are others).
 */
export interface TrainProgress extends Progress {
  phase: 'batch' | 'epoch';
  /** 1-based epoch, counting resumed epochs. */
  epoch: number;
  epochs: number;
  /** 1-based batch within the epoch (the last batch at `phase: 'epoch'`). */
  batch: number;
  batches: number;
  /** Mean training loss and accuracy over the epoch so far. */
  loss: number;
  accuracy: number;
  /** Validation loss and accuracy (at `phase: 'epoch'` when there is a validation set). */
  valLoss?: number;
  valAccuracy?: number;
  /** Estimated time left (0 at the last event). */
  etaMs: number;
}

/** Early stopping (see {@link TrainOptions.earlyStopping}). */
export interface EarlyStopping {
  patience: number;
  monitor?: 'val_loss' | 'val_accuracy' | 'loss' | 'accuracy';
  minDelta?: number;
  restoreBest?: boolean;
}

/** Options of {@link train}. */
export interface TrainOptions {
  /** Epochs in total (resumed epochs count). Default 10. */
  epochs?: number;
  /**
   * Images per step. Default: planned by {@link planTrainingMemory} from the backend's memory and the model's
   * activations (at most 32, and at most the number of training images). A batch size that the plan says does
   * not fit (wasm: 4 GiB) is refused before training starts, with an `out-of-memory` error.
   */
  batchSize?: number;
  /**
   * Default: `new Lamb({ learningRate: 0.001, moments })` with the moments where the memory plan puts them (in
   * JavaScript when the model is too large for the backend to hold them). Any `tf.Optimizer` works.
   */
  optimizer?: tf.Optimizer;
  /** Data for validation accuracy, the confusion matrix, the best epoch and early stopping. */
  validation?: Dataset;
  /**
   * Hold out part of `data` for validation instead of giving `validation`: a share in (0, 1) or a number of images,
   * class proportions kept, seeded by `seed` (the result's `validationIndices` says which images).
   */
  validationSplit?: number;
  /**
   * End with the weights of the best epoch, not the last (default true when there is validation data): the best
   * validation accuracy, ties broken by the lower validation loss; with `earlyStopping`, its `monitor` and
   * `minDelta` decide. The weights of the best epoch so far are kept in JavaScript memory (not on the backend).
   */
  keepBest?: boolean;
  /**
   * Layers to train; default `'all'`. E.g. `['classifier']` for the classifier of a torchvision VGG (every
   * `classifier.N`), `['classifier.6']` for its last layer. The other layers keep their weights; the layers before
   * the first trained one run as at inference (batch norm with its moving statistics, no dropout), outside the
   * gradient computation, and their outputs are computed once and reused in later epochs (when they fit in 1 GiB of
   * JavaScript memory).
   */
  trainLayers?: TrainLayers;
  /** Memory limit, headroom and largest batch size of the memory plan (see {@link planTrainingMemory}). */
  memory?: Pick<TrainingMemoryOptions, 'memoryLimit' | 'headroom' | 'maxBatchSize'>;
  /**
   * Stop when `monitor` (default `'val_loss'`, or `'loss'` without validation) has not improved by more than
   * `minDelta` (default 0) for `patience` epochs; `restoreBest` (default true) puts the best weights back.
   */
  earlyStopping?: EarlyStopping;
  /**
   * Save a checkpoint (model, optimizer state, history) after every epoch; a later call with the same store
   * resumes from the latest one. On disk: `fileCheckpoints(dir)` of `@crp/models/node` (atomic, one folder per
   * epoch); in memory: {@link memoryCheckpoints}.
   */
  checkpoints?: CheckpointStore;
  /** Checkpoints kept; default 2 (older ones are deleted). */
  keepCheckpoints?: number;
  /** Called after each batch and each epoch. */
  onProgress?: (progress: TrainProgress) => void;
  /**
   * Seed of the shuffle of each epoch and of `validationSplit`; default 0. Weight initialisers and dropout layers
   * have their own seeds.
   */
  seed?: number;
}

/** Result of {@link train}; plain, JSON-serialisable. */
export interface TrainResult {
  /** Every epoch so far, resumed ones included. */
  history: EpochLog[];
  /** Whether early stopping ended the training. */
  stoppedEarly: boolean;
  /** The epoch whose weights the model has at the end, when they are the best epoch's (`keepBest`). */
  bestEpoch?: number;
  /** The epoch of the checkpoint that this call resumed from. */
  resumedFrom?: number;
  /** Loss, accuracy and confusion matrix of the final model (its weights at the end) on the validation set. */
  validation?: Evaluation;
  /** With `validationSplit`: the indices (into the training data) of the images held out for validation. */
  validationIndices?: number[];
  /** The latest checkpoint written (where the store says it is, e.g. its folder). */
  checkpoint?: string;
  /** Images per step. */
  batchSize: number;
  /** The memory plan the training ran with. */
  plan: TrainingMemoryPlan;
  /** wasm only: the heap's size at the end, its high-water mark (the heap never shrinks). */
  heapBytes?: number;
}

/** Loss, accuracy and confusion matrix of a model on a data set. */
export interface Evaluation {
  loss: number;
  accuracy: number;
  /** `confusionMatrix[trueClass][predictedClass]` = number of images. */
  confusionMatrix: number[][];
}

/** Whether the model ends in a softmax (then its outputs are probabilities, not logits). */
function outputsProbabilities(model: tfl.LayersModel): boolean {
  const last = model.layers[model.layers.length - 1];
  const config = last?.getConfig() as { activation?: unknown } | undefined;
  return last?.getClassName() === 'Softmax' || config?.activation === 'softmax';
}

/** Checks a data set against the model: image shape, labels below the model's outputs, class names if any. */
function checkData(model: tfl.LayersModel, data: Dataset, what: string): number {
  checkDataset(data, what);
  const inShape = model.inputs[0]!.shape;
  const shape = data.images.shape;
  if (shape.length !== inShape.length || inShape.some((d, i) => i > 0 && d !== null && d !== shape[i])) {
    throw new CrpError(
      'invalid-shape',
      `${what} images have shape [${shape.join(', ')}] but the model takes [${inShape.map((d) => d ?? 'N').join(', ')}]`,
    );
  }
  const outUnits = model.outputs[0]!.shape[model.outputs[0]!.shape.length - 1] as number;
  if (data.classes !== undefined && outUnits !== data.classes.length) {
    throw new CrpError(
      'invalid-argument',
      `${what} has ${data.classes.length} classes but the model gives ${outUnits} outputs; they must agree`,
    );
  }
  const bad = data.labels.find((y) => y >= outUnits);
  if (bad !== undefined) {
    throw new CrpError(
      'invalid-target',
      `${what} has the label ${bad} but the model gives ${outUnits} outputs (valid labels: 0..${outUnits - 1})`,
    );
  }
  return outUnits;
}

/** Mean loss of a batch: softmax cross-entropy on logits (or cross-entropy on probabilities). */
function batchLoss(
  outputs: tf.Tensor,
  labels: tf.Tensor1D,
  classes: number,
  probabilities: boolean,
): tf.Scalar {
  const oneHot = tf.oneHot(labels, classes);
  if (!probabilities) return tf.losses.softmaxCrossEntropy(oneHot, outputs) as tf.Scalar;
  const p = tf.clipByValue(outputs, 1e-7, 1);
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.log(p)), -1))) as tf.Scalar;
}

/** Runs batches through a model and sums loss, confusion and the time taken. */
async function evaluateBatches(
  n: number,
  batchSize: number,
  classes: number,
  labels: readonly number[],
  outputs: (start: number, size: number) => tf.Tensor,
  probabilities: boolean,
): Promise<Evaluation> {
  const matrix = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let lossSum = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const truth = labels.slice(start, start + size);
    const [loss, predicted] = tf.tidy(() => {
      const out = outputs(start, size);
      return [batchLoss(out, tf.tensor1d(truth, 'int32'), classes, probabilities), tf.argMax(out, -1)];
    });
    lossSum += (await loss.data())[0]! * size;
    const p = await predicted.data();
    for (let i = 0; i < size; i++) matrix[truth[i]!]![p[i]!]!++;
    tf.dispose([loss, predicted]);
  }
  const correct = matrix.reduce((s, row, i) => s + row[i]!, 0);
  return { loss: lossSum / n, accuracy: correct / n, confusionMatrix: matrix };
}

/**
 * Loss, accuracy and confusion matrix of a classifier on a labelled data set (inference mode, in batches of
 * `batchSize`, default 128; for a large model at a large input size, give a smaller one, e.g. the `batchSize` of
 * {@link planTrainingMemory}).
 */
export async function evaluate(
  model: tfl.LayersModel,
  data: Dataset,
  options: { batchSize?: number } = {},
): Promise<Evaluation> {
  const k = checkData(model, data, 'the data set');
  return evaluateBatches(
    data.images.shape[0],
    options.batchSize ?? 128,
    k,
    data.labels,
    (start, size) =>
      model.apply(tf.slice(data.images, [start, 0, 0, 0], [size, -1, -1, -1]), {
        training: false,
      }) as tf.Tensor,
    outputsProbabilities(model),
  );
}

// ---------------------------------------------------------------------------------------------------------------

/** The options of a call of {@link train}, checked, with their defaults. */
interface Plan {
  epochs: number;
  batchSize: number;
  keep: number;
  seed: number;
  classes: number;
  /** batches per epoch */
  batches: number;
  train: Dataset;
  validation: Dataset | undefined;
  validationIndices: number[] | undefined;
  /** data sets made here (from validationSplit), disposed at the end */
  owned: Dataset[];
  stopping: EarlyStopping | undefined;
  /** the best epoch: by early stopping's monitor, or val_accuracy with val_loss as tie-break */
  monitor: NonNullable<EarlyStopping['monitor']> | 'val_accuracy+loss';
  keepBest: boolean;
  memory: TrainingMemoryPlan;
}

function checkOptions(options: TrainOptions): { epochs: number; keep: number } {
  const epochs = options.epochs ?? 10;
  const keep = options.keepCheckpoints ?? 2;
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1))
      throw new CrpError('invalid-argument', `${name} must be a whole number >= 1, got ${v}`);
  };
  positive('epochs', epochs);
  positive('batchSize', options.batchSize);
  positive('keepCheckpoints', keep);
  if (options.validation !== undefined && options.validationSplit !== undefined) {
    throw new CrpError('invalid-argument', 'give validation or validationSplit, not both');
  }
  return { epochs, keep };
}

/** The memory plan, and the batch size it allows or the one asked for if it fits. */
function planMemory(
  model: tfl.LayersModel,
  options: TrainOptions,
  images: number,
): { memory: TrainingMemoryPlan; batchSize: number } {
  const asked = options.batchSize;
  const optimizer = options.optimizer;
  const moments =
    optimizer === undefined ? 'auto' : optimizer instanceof Lamb ? optimizer.momentsIn : 'backend';
  const memory = planTrainingMemory(model, {
    ...options.memory,
    ...(options.trainLayers === undefined ? {} : { trainLayers: options.trainLayers }),
    moments,
    maxBatchSize: Math.max(asked ?? 0, options.memory?.maxBatchSize ?? 32),
  });
  const fits = memory.batchSize;
  const explain = () =>
    `the plan for ${memory.backend} (limit ${formatBytes(memory.limitBytes ?? 0)}, planned up to ${formatBytes(memory.budgetBytes ?? 0)}): weights ${formatBytes(memory.bytes.weights)}, packed copies ${formatBytes(memory.bytes.packedWeights)}, gradients ${formatBytes(memory.bytes.gradients)}, optimizer ${formatBytes(memory.bytes.optimizerState + memory.bytes.optimizerWorkspace)}, other tensors ${formatBytes(memory.bytes.other)}, fragmentation ${formatBytes(memory.bytes.fragmentation)}, activations ${formatBytes(memory.bytes.activationsPerImage)} per image`;
  if (fits < 1) {
    throw new CrpError(
      'out-of-memory',
      `training this model does not fit even with batch size 1: ${explain()}; train fewer layers (trainLayers, e.g. ['classifier']), keep the optimizer's moments in JavaScript (new Lamb({ moments: 'js' })) or use a smaller input size`,
      { details: { plan: memory } },
    );
  }
  if (asked !== undefined && asked > fits) {
    throw new CrpError(
      'out-of-memory',
      `batch size ${asked} does not fit: at most ${fits} does, by ${explain()}; give batchSize ${fits} or less, or leave it out to have it planned`,
      { details: { plan: memory } },
    );
  }
  return { memory, batchSize: asked ?? Math.min(fits, Math.max(images, 1)) };
}

function planTraining(model: tfl.LayersModel, data: Dataset, options: TrainOptions): Plan {
  const { epochs, keep } = checkOptions(options);
  const seed = options.seed ?? 0;
  const classes = checkData(model, data, 'the training data');
  let train = data;
  let validation = options.validation;
  let validationIndices: number[] | undefined;
  const owned: Dataset[] = [];
  if (options.validationSplit !== undefined) {
    const n = data.images.shape[0];
    const v = options.validationSplit;
    const count = v > 0 && v < 1 ? Math.round(n * v) : v;
    if (!Number.isInteger(count) || count < 1 || count >= n) {
      throw new CrpError(
        'invalid-argument',
        `validationSplit must be a share in (0, 1) or a whole number in [1, ${n - 1}] for ${n} images, got ${v}`,
      );
    }
    const split = splitIndices(data.labels, count, seed, true);
    validationIndices = split.validation;
    train = gatherDataset(data, split.train);
    validation = gatherDataset(data, split.validation);
    owned.push(train, validation);
  }
  try {
    if (validation !== undefined) checkData(model, validation, 'the validation data');
    const stopping = options.earlyStopping;
    const monitor =
      stopping?.monitor ??
      (stopping !== undefined
        ? validation === undefined
          ? 'loss'
          : 'val_loss'
        : validation === undefined
          ? 'loss'
          : 'val_accuracy+loss');
    if (stopping !== undefined) {
      if (!Number.isInteger(stopping.patience) || stopping.patience < 0) {
        throw new CrpError(
          'invalid-argument',
          `earlyStopping.patience must be a whole number >= 0, got ${stopping.patience}`,
        );
      }
      if (monitor.startsWith('val_') && validation === undefined) {
        throw new CrpError(
          'invalid-argument',
          `earlyStopping monitors '${monitor}' but no validation set was given`,
        );
      }
    }
    const keepBest =
      options.keepBest ??
      (stopping !== undefined ? stopping.restoreBest !== false : validation !== undefined);
    const { memory, batchSize } = planMemory(model, options, train.images.shape[0]);
    return {
      epochs,
      batchSize,
      keep,
      seed,
      classes,
      batches: Math.ceil(train.images.shape[0] / batchSize),
      train,
      validation,
      validationIndices,
      owned,
      stopping,
      monitor,
      keepBest,
      memory,
    };
  } catch (err) {
    for (const d of owned) d.images.dispose();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** All weights of a model (trained or not, batch-norm statistics too) as JavaScript arrays: off the backend. */
interface WeightSnapshot {
  values: (Float32Array | Int32Array | Uint8Array)[];
}

async function snapshotWeights(model: tfl.LayersModel): Promise<WeightSnapshot> {
  const values: WeightSnapshot['values'] = [];
  for (const w of model.weights) {
    const t = w.read();
    // one copy: from the wasm heap directly (readFloat32 is a view there)
    values.push(t.dtype === 'float32' ? readFloat32(t).slice() : ((await t.data()) as Int32Array).slice());
  }
  return { values };
}

/** Puts a snapshot back, one weight at a time (the backend never holds two copies of the model). */
function restoreWeights(model: tfl.LayersModel, snapshot: WeightSnapshot): void {
  model.weights.forEach((w, i) => {
    const t = tf.tensor(snapshot.values[i]!, w.shape as number[], w.dtype);
    w.write(t);
    t.dispose();
  });
}

/** Where training stands: the history, the best epoch so far and its weights, the checkpoint. */
interface Standing {
  history: EpochLog[];
  best: CheckpointState['best'];
  bestWeights: WeightSnapshot | undefined;
  /** The validation of the epoch whose weights the model would end with. */
  bestEvaluation: Evaluation | undefined;
  lastEvaluation: Evaluation | undefined;
  resumedFrom: number | undefined;
  checkpoint: string | undefined;
}

/** Resumes from the store's latest checkpoint, if any: weights, optimizer state, history, best weights. */
async function resumeTraining(
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  store: CheckpointStore | undefined,
  plan: Plan,
): Promise<Standing> {
  const standing: Standing = {
    history: [],
    best: undefined,
    bestWeights: undefined,
    bestEvaluation: undefined,
    lastEvaluation: undefined,
    resumedFrom: undefined,
    checkpoint: undefined,
  };
  if (store === undefined) return standing;
  const epochs = await store.epochs();
  if (epochs.length === 0) return standing;
  const latest = Math.max(...epochs);
  const checkpoint = await store.read(latest);
  const where = `epoch ${latest}`;
  await restoreCheckpoint(model, optimizer, checkpoint, where);
  standing.history = checkpoint.state.history;
  standing.best = checkpoint.state.best;
  standing.resumedFrom = checkpoint.state.epoch;
  const best = standing.best;
  if (plan.keepBest && best !== undefined) {
    // the best weights are in the checkpoint of their epoch, or are the current ones
    if (best.epoch === latest) {
      standing.bestWeights = await snapshotWeights(model);
    } else {
      const current = await snapshotWeights(model);
      try {
        loadCheckpointWeights(model, await store.read(best.epoch), `epoch ${best.epoch}`);
        standing.bestWeights = await snapshotWeights(model);
      } catch {
        standing.bestWeights = undefined; // deleted by keepCheckpoints: the best so far is then unknown
      } finally {
        restoreWeights(model, current);
      }
    }
  }
  return standing;
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * How batches go through the model: the whole model under the gradient tape, or, when the first layers are frozen
 * (a chain with a frozen prefix), those layers as at inference first, their outputs cached per image.
 */
class Forward {
  private readonly prefix: tfl.LayersModel['layers'];
  private readonly suffix: tfl.LayersModel['layers'];
  /** Per data set: the prefix's outputs per image (rows of `featureSize`) and which are filled. */
  private readonly caches = new Map<Dataset, { values: Float32Array; filled: Uint8Array }>();
  private readonly featureShape: number[];
  private readonly featureSize: number;
  private readonly cacheable: boolean;
  /** Milliseconds and images of prefix computations (for the ETA). */
  prefixMs = 0;
  prefixImages = 0;

  constructor(
    private readonly model: tfl.LayersModel,
    frozenPrefix: number,
    datasets: Dataset[],
  ) {
    const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
    this.prefix = layers.slice(0, frozenPrefix);
    this.suffix = layers.slice(frozenPrefix);
    const shape = frozenPrefix > 0 ? (this.prefix[frozenPrefix - 1]!.outputShape as number[]) : [];
    this.featureShape = shape.slice(1);
    this.featureSize = this.featureShape.reduce((a, b) => a * b, 1);
    const images = datasets.reduce((s, d) => s + d.images.shape[0], 0);
    // JavaScript memory for the cache: at most 1 GiB
    this.cacheable = frozenPrefix > 0 && images * this.featureSize * 4 <= 2 ** 30;
    if (this.cacheable) {
      for (const d of datasets) {
        const n = d.images.shape[0];
        this.caches.set(d, { values: new Float32Array(n * this.featureSize), filled: new Uint8Array(n) });
      }
    }
  }

  get hasPrefix(): boolean {
    return this.prefix.length > 0;
  }

  /** Whether the frozen layers' outputs are cached (else every pass computes them again). */
  get caching(): boolean {
    return this.cacheable;
  }

  /** Images of `data` whose prefix output is not cached yet (all of them without a cache). */
  uncached(data: Dataset): number {
    if (!this.hasPrefix) return 0;
    const cache = this.caches.get(data);
    return cache === undefined
      ? data.images.shape[0]
      : cache.filled.length - cache.filled.reduce((a, b) => a + b, 0);
  }

  /** The input of the taped part for the images `idx` of `data` (the caller owns it). */
  input(data: Dataset, idx: Int32Array): tf.Tensor {
    if (!this.hasPrefix) return tf.tidy(() => tf.gather(data.images, tf.tensor1d(idx, 'int32')));
    const cache = this.caches.get(data);
    const missing =
      cache === undefined ? Array.from(idx) : Array.from(idx).filter((i) => cache.filled[i] === 0);
    let computed: tf.Tensor | undefined;
    if (missing.length > 0) {
      const started = performance.now();
      // layer by layer, each output released once the next exists: the frozen part holds one layer at a time
      let h: tf.Tensor = tf.tidy(() => tf.gather(data.images, tf.tensor1d(missing, 'int32')));
      for (const layer of this.prefix) {
        const x = h;
        h = tf.tidy(() => layer.apply(x, { training: false }) as tf.Tensor);
        if (h !== x) x.dispose();
      }
      computed = h;
      if (cache !== undefined) {
        const rows = computed.dataSync();
        missing.forEach((i, k) => {
          cache.values.set(
            rows.subarray(k * this.featureSize, (k + 1) * this.featureSize),
            i * this.featureSize,
          );
          cache.filled[i] = 1;
        });
      } else {
        computed.dataSync(); // wait for it, for the timing
      }
      this.prefixMs += performance.now() - started;
      this.prefixImages += missing.length;
    }
    if (cache === undefined) return computed!; // every image was missing
    computed?.dispose();
    const batch = new Float32Array(idx.length * this.featureSize);
    idx.forEach((i, k) => {
      batch.set(
        cache.values.subarray(i * this.featureSize, (i + 1) * this.featureSize),
        k * this.featureSize,
      );
    });
    return tf.tensor(batch, [idx.length, ...this.featureShape], 'float32');
  }

  /** The model's output for the taped part's input. */
  apply(x: tf.Tensor, training: boolean): tf.Tensor {
    if (!this.hasPrefix) return this.model.apply(x, { training }) as tf.Tensor;
    let h = x;
    for (const layer of this.suffix) h = layer.apply(h, { training }) as tf.Tensor;
    return h;
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** Milliseconds per image of one kind of work; the first measurement (the backend's warm-up) is dropped later. */
class Rate {
  private first: number | undefined;
  private ms = 0;
  private images = 0;

  add(ms: number, images: number): void {
    if (images <= 0) return;
    if (this.first === undefined) this.first = ms / images;
    else {
      this.ms += ms;
      this.images += images;
    }
  }

  /** ms per image, or undefined before any measurement. */
  get value(): number | undefined {
    return this.images > 0 ? this.ms / this.images : this.first;
  }
}

/** Counts the training steps of this call and estimates the time left from the rates of each kind of work. */
class Clock {
  private readonly started = performance.now();
  steps = 0;
  readonly step = new Rate();
  readonly validation = new Rate();
  readonly prefix = new Rate();

  constructor(
    readonly totalSteps: number,
    private readonly plan: Plan,
    private readonly forward: Forward,
  ) {}

  /** Time left after `imagesLeft` training images of this call and `validationsLeft` validation passes. */
  private etaMs(imagesLeft: number, validationsLeft: number): number {
    const step = this.step.value ?? 0;
    // before the first validation is measured, an inference pass costs about a third of a training step
    const validate = this.validation.value ?? step / 3;
    const prefix = this.prefix.value ?? 0;
    const nVal = this.plan.validation?.images.shape[0] ?? 0;
    let prefixImages = 0;
    if (this.forward.hasPrefix && !this.forward.caching) prefixImages = imagesLeft + validationsLeft * nVal;
    else if (this.forward.caching) {
      prefixImages = Math.min(imagesLeft, this.forward.uncached(this.plan.train));
      if (validationsLeft > 0 && this.plan.validation !== undefined)
        prefixImages += this.forward.uncached(this.plan.validation);
    }
    return imagesLeft * step + validationsLeft * nVal * validate + prefixImages * prefix;
  }

  progress(
    fields: Omit<TrainProgress, 'done' | 'total' | 'unit' | 'elapsedMs' | 'etaMs'>,
    left: { images: number; validations: number } | 'done',
  ): TrainProgress {
    const elapsedMs = performance.now() - this.started;
    const etaMs = left === 'done' ? 0 : this.etaMs(left.images, left.validations);
    return { done: this.steps, total: this.totalSteps, unit: 'batches', ...fields, elapsedMs, etaMs };
  }
}

/** Validation of the current weights, timed. */
async function validate(
  forward: Forward,
  plan: Plan,
  clock: Clock,
  probabilities: boolean,
): Promise<Evaluation> {
  const data = plan.validation!;
  const n = data.images.shape[0];
  const started = performance.now();
  const prefixBefore = forward.prefixMs;
  const prefixImagesBefore = forward.prefixImages;
  const evaluation = await evaluateBatches(
    n,
    plan.batchSize,
    plan.classes,
    data.labels,
    (start, size) => {
      const idx = Int32Array.from({ length: size }, (_, k) => start + k);
      return forward.apply(forward.input(data, idx), false);
    },
    probabilities,
  );
  const prefixMs = forward.prefixMs - prefixBefore;
  clock.prefix.add(prefixMs, forward.prefixImages - prefixImagesBefore);
  clock.validation.add(performance.now() - started - prefixMs, n);
  return evaluation;
}

/** One epoch over the data in a seeded order: one optimizer step per batch. Returns the epoch's log. */
async function trainEpoch(
  model: tfl.LayersModel,
  forward: Forward,
  optimizer: tf.Optimizer,
  variables: tf.Variable[],
  epoch: number,
  plan: Plan,
  clock: Clock,
  onProgress: TrainOptions['onProgress'],
  standing: Standing,
): Promise<EpochLog> {
  const epochStart = performance.now();
  const data = plan.train;
  const n = data.images.shape[0];
  const { batchSize, batches, classes } = plan;
  const probabilities = outputsProbabilities(model);
  const order = permutation(n, mulberry32((plan.seed * 100_003 + epoch) >>> 0));
  const epochsLeft = plan.epochs - epoch;
  const validations = plan.validation === undefined ? 0 : epochsLeft + 1;
  let lossSum = 0;
  let correctSum = 0;
  let seen = 0;
  for (let b = 0; b < batches; b++) {
    const started = performance.now();
    const prefixBefore = forward.prefixMs;
    const prefixImagesBefore = forward.prefixImages;
    const idx = order.subarray(b * batchSize, Math.min(n, (b + 1) * batchSize));
    const size = idx.length;
    const x = forward.input(data, idx);
    const y = tf.tensor1d(
      Array.from(idx, (i) => data.labels[i]!),
      'int32',
    );
    let correct: tf.Tensor | undefined;
    const cost = optimizer.minimize(
      () => {
        const out = forward.apply(x, true);
        correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(out, -1), y), 'float32')));
        return batchLoss(out, y, classes, probabilities);
      },
      true,
      variables,
    )!;
    const lossValue = (await cost.data())[0]!;
    const correctValue = (await correct!.data())[0]!;
    tf.dispose([x, y, cost, correct!]);
    if (!Number.isFinite(lossValue)) {
      throw new CrpError(
        'invalid-value',
        `the training loss became ${lossValue} at epoch ${epoch}, batch ${b + 1}; lower the learning rate or check the data for NaN/Inf`,
      );
    }
    const prefixMs = forward.prefixMs - prefixBefore;
    clock.prefix.add(prefixMs, forward.prefixImages - prefixImagesBefore);
    clock.step.add(performance.now() - started - prefixMs, size);
    lossSum += lossValue * size;
    correctSum += correctValue;
    seen += size;
    clock.steps++;
    onProgress?.(
      clock.progress(
        {
          phase: 'batch',
          epoch,
          epochs: plan.epochs,
          batch: b + 1,
          batches,
          loss: lossSum / seen,
          accuracy: correctSum / seen,
        },
        { images: n - seen + epochsLeft * n, validations },
      ),
    );
  }
  const log: EpochLog = { epoch, loss: lossSum / n, accuracy: correctSum / n, durationMs: 0 };
  if (plan.validation !== undefined) {
    const v = await validate(forward, plan, clock, probabilities);
    log.valLoss = v.loss;
    log.valAccuracy = v.accuracy;
    standing.lastEvaluation = v;
  }
  log.durationMs = performance.now() - epochStart;
  return log;
}

/** Tracks the best epoch after an epoch (and snapshots its weights); true when early stopping should stop. */
async function afterEpoch(
  model: tfl.LayersModel,
  log: EpochLog,
  plan: Plan,
  standing: Standing,
): Promise<boolean> {
  const { stopping, monitor } = plan;
  if (stopping === undefined && !plan.keepBest) return false;
  const best = standing.best;
  let improved: boolean;
  let value: number;
  if (monitor === 'val_accuracy+loss') {
    // accuracy first, then loss: encoded so that higher is better and ties in accuracy fall to the loss
    value = log.valAccuracy!;
    improved =
      best === undefined ||
      value > best.value ||
      (value === best.value &&
        log.valLoss! < (standing.history.find((h) => h.epoch === best.epoch)?.valLoss ?? Infinity));
  } else {
    value = { val_loss: log.valLoss, val_accuracy: log.valAccuracy, loss: log.loss, accuracy: log.accuracy }[
      monitor
    ]!;
    const minDelta = stopping?.minDelta ?? 0;
    const higherIsBetter = monitor.endsWith('accuracy');
    improved =
      best === undefined || (higherIsBetter ? value > best.value + minDelta : value < best.value - minDelta);
  }
  if (improved) {
    standing.best = { value, epoch: log.epoch, wait: 0 };
    if (plan.keepBest) {
      standing.bestWeights = await snapshotWeights(model);
      standing.bestEvaluation = standing.lastEvaluation;
    }
    return false;
  }
  standing.best = { ...best!, wait: best!.wait + 1 };
  return stopping !== undefined && standing.best.wait >= stopping.patience;
}

/**
 * Trains a classifier (logits out, or a softmax at the end) on a labelled data set with a custom loop: seeded
 * shuffles, softmax cross-entropy, progress after every batch and epoch (loss, accuracy, ETA), validation (given,
 * or split off with `validationSplit`) with the best epoch's weights kept, early stopping, layers to train, and
 * checkpoints that a later call resumes from. With the same seed, the same initial weights and the same backend,
 * two runs give the same history.
 *
 * Memory is planned before the first step ({@link planTrainingMemory}): the batch size, when not given, is the
 * largest that fits the backend (wasm: its 4 GiB heap), and LAMB keeps its moments in JavaScript when the backend
 * cannot hold them; a batch size that does not fit is refused. So a torchvision vgg11_bn (129M parameters) trains
 * on wasm:
 *
 * ```ts
 * const model = await readTorchVgg('state_dict.pth', { inputSize: 128 }); // @crp/models/node
 * const result = await train(model, data, { epochs: 2, validationSplit: 0.2, onProgress: console.log });
 * console.log(result.batchSize, result.bestEpoch, result.validation?.confusionMatrix);
 * ```
 *
 * @returns the history, the best epoch, the final validation numbers and the plan; the model is trained in place
 * @throws CrpError `invalid-shape` / `invalid-argument` for data that does not fit the model or bad options,
 *   `unknown-layer` for an unknown name in `trainLayers`, `out-of-memory` when the plan does not fit the backend.
 */
export async function train(
  model: tfl.LayersModel,
  data: Dataset,
  options: TrainOptions = {},
): Promise<TrainResult> {
  registerTrainingKernels();
  const plan = planTraining(model, data, options);
  const optimizer = options.optimizer ?? new Lamb({ learningRate: 1e-3, moments: plan.memory.moments });
  const store = options.checkpoints;
  const trained = new Set(plan.memory.selection.trained);
  const variables = model.layers
    .filter((l) => trained.has(l.name))
    .flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable));
  const datasets = plan.validation === undefined ? [plan.train] : [plan.train, plan.validation];
  const forward = new Forward(model, plan.memory.selection.frozenPrefix, datasets);
  const probabilities = outputsProbabilities(model);
  try {
    const standing = await resumeTraining(model, optimizer, store, plan);
    const { history } = standing;
    const clock = new Clock(Math.max(0, plan.epochs - history.length) * plan.batches, plan, forward);
    let stoppedEarly = false;
    for (let epoch = history.length + 1; epoch <= plan.epochs; epoch++) {
      const log = await trainEpoch(
        model,
        forward,
        optimizer,
        variables,
        epoch,
        plan,
        clock,
        options.onProgress,
        standing,
      );
      history.push(log);
      const stop = await afterEpoch(model, log, plan, standing);
      if (store !== undefined) {
        const state: CheckpointState = {
          epoch,
          history,
          ...(standing.best === undefined ? {} : { best: standing.best }),
        };
        standing.checkpoint = await store.write(await captureCheckpoint(model, optimizer, state), plan.keep);
      }
      const last = stop || epoch === plan.epochs;
      const epochsLeft = plan.epochs - epoch;
      options.onProgress?.(
        clock.progress(
          {
            phase: 'epoch',
            epoch,
            epochs: plan.epochs,
            batch: plan.batches,
            batches: plan.batches,
            loss: log.loss,
            accuracy: log.accuracy,
            ...(log.valLoss === undefined ? {} : { valLoss: log.valLoss, valAccuracy: log.valAccuracy! }),
          },
          last
            ? 'done'
            : {
                images: epochsLeft * plan.train.images.shape[0],
                validations: plan.validation === undefined ? 0 : epochsLeft,
              },
        ),
      );
      if (stop) {
        stoppedEarly = true;
        break;
      }
    }
    const result: TrainResult = { history, stoppedEarly, batchSize: plan.batchSize, plan: plan.memory };
    let evaluation = standing.lastEvaluation;
    if (plan.keepBest && standing.bestWeights !== undefined && standing.best !== undefined) {
      if (standing.best.epoch !== history.at(-1)?.epoch) {
        restoreWeights(model, standing.bestWeights);
        evaluation = standing.bestEvaluation;
      }
      result.bestEpoch = standing.best.epoch;
    }
    if (standing.resumedFrom !== undefined) result.resumedFrom = standing.resumedFrom;
    if (standing.checkpoint !== undefined) result.checkpoint = standing.checkpoint;
    if (plan.validation !== undefined) {
      result.validation = evaluation ?? (await validate(forward, plan, clock, probabilities));
    }
    if (plan.validationIndices !== undefined) result.validationIndices = plan.validationIndices;
    const heap = wasmHeapBytes();
    if (heap !== undefined) result.heapBytes = heap;
    return result;
  } finally {
    if (options.optimizer === undefined) optimizer.dispose();
    for (const d of plan.owned) d.images.dispose();
  }
}

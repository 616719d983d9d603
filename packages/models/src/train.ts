import { CrpError, mulberry32, type Progress, permutation } from '@crp/common';
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
import { checkDataset, type Dataset } from './dataset.js';
import { Lamb } from './lamb.js';
import { registerTrainingKernels } from './training-kernels.js';

/**
 * What {@link train} reports after each batch and each epoch: the toolkit's {@link Progress} over the training
 * steps (batches) of this call (`done`, `total`, `elapsedMs`, `etaMs`, `unit: 'batches'`), plus the epoch's
 * numbers.
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
  /** Estimated time left (0 when early stopping ends the training at this epoch). */
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
  /** Images per step; default 32. */
  batchSize?: number;
  /** Default: `new Lamb({ learningRate: 0.001 })`. Any `tf.Optimizer` works. */
  optimizer?: tf.Optimizer;
  /** Data for validation accuracy, the confusion matrix and early stopping. */
  validation?: Dataset;
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
  /**
   * @deprecated Checkpoints on disk are `checkpoints: fileCheckpoints(dir)` from `@crp/models/node`, so that this
   * package's root stays free of the file system; giving `checkpointDir` is an error that says so.
   */
  checkpointDir?: string;
  /** Checkpoints kept; default 2 (older ones are deleted). */
  keepCheckpoints?: number;
  /** Called after each batch and each epoch. */
  onProgress?: (progress: TrainProgress) => void;
  /** Seed of the shuffle of each epoch; default 0. Weight initialisers and dropout layers have their own seeds. */
  seed?: number;
}

/** Result of {@link train}; plain, JSON-serialisable. */
export interface TrainResult {
  /** Every epoch so far, resumed ones included. */
  history: EpochLog[];
  /** Whether early stopping ended the training. */
  stoppedEarly: boolean;
  /** The epoch whose weights the model has at the end, when early stopping restored the best one. */
  bestEpoch?: number;
  /** The epoch of the checkpoint that this call resumed from. */
  resumedFrom?: number;
  /** Loss, accuracy and confusion matrix of the final model on the validation set. */
  validation?: Evaluation;
  /** The latest checkpoint written (where the store says it is, e.g. its folder). */
  checkpoint?: string;
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

/**
 * Loss, accuracy and confusion matrix of a classifier on a labelled data set (inference mode, in batches).
 */
export async function evaluate(
  model: tfl.LayersModel,
  data: Dataset,
  options: { batchSize?: number } = {},
): Promise<Evaluation> {
  const k = checkData(model, data, 'the data set');
  const n = data.images.shape[0];
  const batchSize = options.batchSize ?? 128;
  const probabilities = outputsProbabilities(model);
  const matrix = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let lossSum = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const truth = data.labels.slice(start, start + size);
    const [loss, predicted] = tf.tidy(() => {
      const x = tf.slice(data.images, [start, 0, 0, 0], [size, -1, -1, -1]);
      const out = model.apply(x, { training: false }) as tf.Tensor;
      return [batchLoss(out, tf.tensor1d(truth, 'int32'), k, probabilities), tf.argMax(out, -1)];
    });
    lossSum += (await loss.data())[0]! * size;
    const p = await predicted.data();
    for (let i = 0; i < size; i++) matrix[truth[i]!]![p[i]!]!++;
    tf.dispose([loss, predicted]);
  }
  const correct = matrix.reduce((s, row, i) => s + row[i]!, 0);
  return { loss: lossSum / n, accuracy: correct / n, confusionMatrix: matrix };
}

/** The options of a call of {@link train}, checked, with their defaults. */
interface Plan {
  epochs: number;
  batchSize: number;
  keep: number;
  seed: number;
  classes: number;
  /** batches per epoch */
  batches: number;
  validation: Dataset | undefined;
  stopping: EarlyStopping | undefined;
  monitor: NonNullable<EarlyStopping['monitor']>;
  restoreBest: boolean;
}

function planTraining(model: tfl.LayersModel, data: Dataset, options: TrainOptions): Plan {
  if (options.checkpointDir !== undefined) {
    throw new CrpError(
      'invalid-argument',
      `checkpointDir moved to the Node entry point: give checkpoints: fileCheckpoints('${options.checkpointDir}') with fileCheckpoints from '@crp/models/node'`,
    );
  }
  const epochs = options.epochs ?? 10;
  const batchSize = options.batchSize ?? 32;
  const keep = options.keepCheckpoints ?? 2;
  const positive = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1)
      throw new CrpError('invalid-argument', `${name} must be a whole number >= 1, got ${v}`);
  };
  positive('epochs', epochs);
  positive('batchSize', batchSize);
  positive('keepCheckpoints', keep);
  const classes = checkData(model, data, 'the training data');
  const { validation, earlyStopping: stopping } = options;
  if (validation !== undefined) checkData(model, validation, 'the validation data');
  const monitor = stopping?.monitor ?? (validation === undefined ? 'loss' : 'val_loss');
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
  return {
    epochs,
    batchSize,
    keep,
    seed: options.seed ?? 0,
    classes,
    batches: Math.ceil(data.images.shape[0] / batchSize),
    validation,
    stopping,
    monitor,
    restoreBest: stopping !== undefined && stopping.restoreBest !== false,
  };
}

/** Where training stands: the history, early stopping's best so far, the best weights, the checkpoint. */
interface Standing {
  history: EpochLog[];
  best: CheckpointState['best'];
  bestWeights: tf.Tensor[] | undefined;
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
  if (plan.restoreBest && best !== undefined) {
    // the best weights are in the checkpoint of their epoch, or are the current ones
    const current = model.getWeights().map((w) => w.clone());
    try {
      if (best.epoch !== latest)
        loadCheckpointWeights(model, await store.read(best.epoch), `epoch ${best.epoch}`);
      standing.bestWeights = model.getWeights().map((w) => w.clone());
    } catch {
      standing.bestWeights = undefined; // deleted by keepCheckpoints: the best so far is then unknown
    } finally {
      model.setWeights(current);
      tf.dispose(current);
    }
  }
  return standing;
}

/** Counts the training steps of this call and reports them with the epoch's numbers. */
class StepClock {
  private readonly started = Date.now();
  steps = 0;
  constructor(readonly totalSteps: number) {}

  progress(
    fields: Omit<TrainProgress, 'done' | 'total' | 'unit' | 'elapsedMs' | 'etaMs'>,
    stopping = false,
  ): TrainProgress {
    const elapsedMs = Date.now() - this.started;
    const etaMs = stopping ? 0 : (elapsedMs / Math.max(this.steps, 1)) * (this.totalSteps - this.steps);
    return { done: this.steps, total: this.totalSteps, unit: 'batches', ...fields, elapsedMs, etaMs };
  }
}

/** One epoch over the data in a seeded order: one optimizer step per batch. Returns the epoch's log. */
async function trainEpoch(
  model: tfl.LayersModel,
  data: Dataset,
  optimizer: tf.Optimizer,
  epoch: number,
  plan: Plan,
  clock: StepClock,
  onProgress: TrainOptions['onProgress'],
): Promise<EpochLog> {
  const epochStart = Date.now();
  const n = data.images.shape[0];
  const { batchSize, batches, classes } = plan;
  const probabilities = outputsProbabilities(model);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const order = permutation(n, mulberry32((plan.seed * 100_003 + epoch) >>> 0));
  let lossSum = 0;
  let correctSum = 0;
  let seen = 0;
  for (let b = 0; b < batches; b++) {
    const idx = order.subarray(b * batchSize, Math.min(n, (b + 1) * batchSize));
    const size = idx.length;
    const [x, y] = tf.tidy(() => {
      const at = tf.tensor1d(idx, 'int32');
      const labels = Array.from(idx, (i) => data.labels[i]!);
      return [tf.gather(data.images, at), tf.tensor1d(labels, 'int32')] as const;
    });
    let correct: tf.Tensor | undefined;
    const cost = optimizer.minimize(
      () => {
        const out = model.apply(x, { training: true }) as tf.Tensor;
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
    lossSum += lossValue * size;
    correctSum += correctValue;
    seen += size;
    clock.steps++;
    onProgress?.(
      clock.progress({
        phase: 'batch',
        epoch,
        epochs: plan.epochs,
        batch: b + 1,
        batches,
        loss: lossSum / seen,
        accuracy: correctSum / seen,
      }),
    );
  }
  const log: EpochLog = { epoch, loss: lossSum / n, accuracy: correctSum / n, durationMs: 0 };
  if (plan.validation !== undefined) {
    const v = await evaluate(model, plan.validation, { batchSize: Math.max(batchSize, 128) });
    log.valLoss = v.loss;
    log.valAccuracy = v.accuracy;
  }
  log.durationMs = Date.now() - epochStart;
  return log;
}

/** Early stopping after an epoch: updates the best value (and weights); true when training should stop. */
function stopAfter(model: tfl.LayersModel, log: EpochLog, plan: Plan, standing: Standing): boolean {
  const stopping = plan.stopping;
  if (stopping === undefined) return false;
  const value = {
    val_loss: log.valLoss,
    val_accuracy: log.valAccuracy,
    loss: log.loss,
    accuracy: log.accuracy,
  }[plan.monitor]!;
  const minDelta = stopping.minDelta ?? 0;
  const best = standing.best;
  const higherIsBetter = plan.monitor.endsWith('accuracy');
  const improved =
    best === undefined || (higherIsBetter ? value > best.value + minDelta : value < best.value - minDelta);
  if (improved) {
    standing.best = { value, epoch: log.epoch, wait: 0 };
    if (plan.restoreBest) {
      tf.dispose(standing.bestWeights ?? []);
      standing.bestWeights = model.getWeights().map((w) => w.clone());
    }
    return false;
  }
  if (best === undefined) return false;
  standing.best = { ...best, wait: best.wait + 1 };
  return standing.best.wait >= stopping.patience;
}

/**
 * Trains a classifier (logits out, or a softmax at the end) on a labelled data set with a custom loop: seeded
 * shuffles, softmax cross-entropy, progress after every batch and epoch (loss, accuracy, ETA), validation loss and
 * accuracy, early stopping, and checkpoints that a later call resumes from. With the same seed, the same initial
 * weights and the same backend, two runs give the same history.
 *
 * ```ts
 * const { train: data, validation } = mnist({ train: 1000, validation: 200, seed: 1 }); // @crp/models/node
 * const model = vggFromBlocks([[8], [16]], { inputShape: [28, 28, 1], classes: 10, hidden: [], seed: 1 });
 * const result = await train(model, data, { epochs: 5, validation, optimizer: new Lamb({ learningRate: 0.01 }) });
 * console.log(result.validation?.accuracy);
 * ```
 *
 * @returns the history and the final validation numbers; the model is trained in place
 * @throws CrpError `invalid-shape` / `invalid-argument` for data that does not fit the model or bad options.
 */
export async function train(
  model: tfl.LayersModel,
  data: Dataset,
  options: TrainOptions = {},
): Promise<TrainResult> {
  registerTrainingKernels();
  const plan = planTraining(model, data, options);
  const optimizer = options.optimizer ?? new Lamb({ learningRate: 1e-3 });
  const store = options.checkpoints;
  let standing: Standing | undefined;
  try {
    standing = await resumeTraining(model, optimizer, store, plan);
    const { history } = standing;
    const clock = new StepClock((plan.epochs - history.length) * plan.batches);
    let stoppedEarly = false;
    for (let epoch = history.length + 1; epoch <= plan.epochs; epoch++) {
      const log = await trainEpoch(model, data, optimizer, epoch, plan, clock, options.onProgress);
      history.push(log);
      const stop = stopAfter(model, log, plan, standing);
      if (store !== undefined) {
        const state: CheckpointState = {
          epoch,
          history,
          ...(standing.best === undefined ? {} : { best: standing.best }),
        };
        standing.checkpoint = await store.write(await captureCheckpoint(model, optimizer, state), plan.keep);
      }
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
          stop,
        ),
      );
      if (stop) {
        stoppedEarly = true;
        break;
      }
    }
    const result: TrainResult = { history, stoppedEarly };
    if (plan.restoreBest && standing.bestWeights !== undefined && standing.best !== undefined) {
      model.setWeights(standing.bestWeights);
      result.bestEpoch = standing.best.epoch;
    }
    if (standing.resumedFrom !== undefined) result.resumedFrom = standing.resumedFrom;
    if (standing.checkpoint !== undefined) result.checkpoint = standing.checkpoint;
    if (plan.validation !== undefined) result.validation = await evaluate(model, plan.validation);
    return result;
  } finally {
    tf.dispose(standing?.bestWeights ?? []);
    if (options.optimizer === undefined) optimizer.dispose();
  }
}

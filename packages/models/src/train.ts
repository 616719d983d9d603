import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CrpError, describeError, fileErrorCode, mulberry32, type Progress, permutation } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { checkDataset, type Dataset } from './dataset.js';
import { fileSystem } from './file-system.js';
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

/** One epoch of the training history. */
export interface EpochLog {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  durationMs: number;
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
  earlyStopping?: {
    patience: number;
    monitor?: 'val_loss' | 'val_accuracy' | 'loss' | 'accuracy';
    minDelta?: number;
    restoreBest?: boolean;
  };
  /**
   * Save a checkpoint (model, optimizer state, history) after every epoch into `epoch-NNNN/` here, written
   * atomically with {@link fileSystem}; a later call with the same directory resumes from the latest one.
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
  /** The latest checkpoint written. */
  checkpoint?: string;
}

/** Loss, accuracy and confusion matrix of a model on a data set. */
export interface Evaluation {
  loss: number;
  accuracy: number;
  /** `confusionMatrix[trueClass][predictedClass]` = number of images. */
  confusionMatrix: number[][];
}

interface CheckpointState {
  epoch: number;
  history: EpochLog[];
  best?: { value: number; epoch: number; wait: number };
  optimizerSpecs: tf.io.WeightsManifestEntry[];
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

/** Optimizer weight names use the model's saved weight names, so that a rebuilt model takes them back. */
function renameOptimizerWeights(
  weights: { name: string; tensor: tf.Tensor }[],
  names: Map<string, string>,
): { name: string; tensor: tf.Tensor }[] {
  const keys = [...names.keys()].sort((a, b) => b.length - a.length);
  return weights.map(({ name, tensor }) => {
    const key = keys.find((k) => name === k || name.startsWith(`${k}/`));
    return { name: key === undefined ? name : names.get(key)! + name.slice(key.length), tensor };
  });
}

function variableNames(model: tfl.LayersModel): {
  toSaved: Map<string, string>;
  fromSaved: Map<string, string>;
} {
  const toSaved = new Map<string, string>();
  const fromSaved = new Map<string, string>();
  for (const w of model.weights) {
    const variable = w.read() as tf.Variable;
    toSaved.set(variable.name, w.originalName);
    fromSaved.set(w.originalName, variable.name);
  }
  return { toSaved, fromSaved };
}

const CHECKPOINT = /^epoch-(\d{4,})$/;

async function latestCheckpoint(dir: string): Promise<{ path: string; epoch: number } | undefined> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const epochs = names
    .map((n) => CHECKPOINT.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  for (const epoch of epochs) {
    const path = join(dir, `epoch-${String(epoch).padStart(4, '0')}`);
    const ok = await readFile(join(path, 'state.json'), 'utf8').then(
      () => true,
      () => false,
    );
    if (ok) return { path, epoch };
  }
  return undefined;
}

async function saveCheckpoint(
  dir: string,
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  state: Omit<CheckpointState, 'optimizerSpecs'>,
  keep: number,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const name = `epoch-${String(state.epoch).padStart(4, '0')}`;
  const final = join(dir, name);
  const temp = join(dir, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(temp);
    await model.save(fileSystem(join(temp, 'model')));
    const weights = renameOptimizerWeights(await optimizer.getWeights(), variableNames(model).toSaved);
    const { data, specs } = await tf.io.encodeWeights(weights);
    await writeFile(join(temp, 'optimizer.bin'), new Uint8Array(data));
    const full: CheckpointState = { ...state, optimizerSpecs: specs };
    await writeFile(join(temp, 'state.json'), `${JSON.stringify(full, null, 1)}\n`);
    await rm(final, { recursive: true, force: true });
    await rename(temp, final);
  } catch (err) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    throw new CrpError(
      fileErrorCode('write', err),
      `cannot write the checkpoint '${final}': ${describeError(err)}`,
      {
        cause: err,
        details: { path: final },
      },
    );
  }
  const old = (await readdir(dir))
    .filter((n) => CHECKPOINT.test(n))
    .sort()
    .reverse()
    .slice(keep);
  for (const n of old) await rm(join(dir, n), { recursive: true, force: true });
  return final;
}

async function loadModelWeights(model: tfl.LayersModel, path: string): Promise<void> {
  const artifacts = await fileSystem(path).load!();
  const weights = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
  try {
    model.loadWeights(weights, true);
  } catch (err) {
    throw new CrpError(
      'invalid-argument',
      `the checkpoint '${path}' does not fit this model (${describeError(err)}); use another checkpointDir or the same model`,
      { cause: err, details: { path } },
    );
  } finally {
    tf.dispose(Object.values(weights));
  }
}

async function resume(
  path: string,
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
): Promise<CheckpointState> {
  const state = JSON.parse(await readFile(join(path, 'state.json'), 'utf8')) as CheckpointState;
  await loadModelWeights(model, join(path, 'model'));
  const bytes = await readFile(join(path, 'optimizer.bin'));
  const decoded = tf.io.decodeWeights(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
    state.optimizerSpecs,
  );
  const named = state.optimizerSpecs.map((s) => ({ name: s.name, tensor: decoded[s.name]! }));
  await optimizer.setWeights(renameOptimizerWeights(named, variableNames(model).fromSaved));
  tf.dispose(Object.values(decoded));
  return state;
}

/**
 * Trains a classifier (logits out, or a softmax at the end) on a labelled data set with a custom loop: seeded
 * shuffles, softmax cross-entropy, progress after every batch and epoch (loss, accuracy, ETA), validation loss and
 * accuracy, early stopping, and checkpoints that a later call resumes from. With the same seed, the same initial
 * weights and the same backend, two runs give the same history.
 *
 * ```ts
 * const { train: data, validation } = mnist({ train: 1000, validation: 200, seed: 1 });
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
  const k = checkData(model, data, 'the training data');
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
  const optimizer = options.optimizer ?? new Lamb({ learningRate: 1e-3 });
  const ownOptimizer = options.optimizer === undefined;
  const seed = options.seed ?? 0;
  const n = data.images.shape[0];
  const batches = Math.ceil(n / batchSize);
  const probabilities = outputsProbabilities(model);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const higherIsBetter = monitor.endsWith('accuracy');
  const restoreBest = stopping !== undefined && stopping.restoreBest !== false;
  const minDelta = stopping?.minDelta ?? 0;

  let history: EpochLog[] = [];
  let best: CheckpointState['best'];
  let resumedFrom: number | undefined;
  let bestWeights: tf.Tensor[] | undefined;
  let checkpoint: string | undefined;
  if (options.checkpointDir !== undefined) {
    const latest = await latestCheckpoint(options.checkpointDir);
    if (latest !== undefined) {
      const state = await resume(latest.path, model, optimizer);
      history = state.history;
      best = state.best;
      resumedFrom = state.epoch;
      checkpoint = latest.path;
      if (restoreBest && best !== undefined) {
        // the best weights are in the checkpoint of their epoch, or are the current ones
        const bestPath = join(options.checkpointDir, `epoch-${String(best.epoch).padStart(4, '0')}`);
        const current = model.getWeights().map((w) => w.clone());
        try {
          if (best.epoch !== state.epoch) await loadModelWeights(model, join(bestPath, 'model'));
          bestWeights = model.getWeights().map((w) => w.clone());
        } catch {
          bestWeights = undefined; // deleted by keepCheckpoints: the best so far is then unknown
        } finally {
          model.setWeights(current);
          tf.dispose(current);
        }
      }
    }
  }

  const started = Date.now();
  const firstEpoch = history.length + 1;
  const totalSteps = (epochs - history.length) * batches;
  let steps = 0;
  let stoppedEarly = false;
  const improved = (value: number) =>
    best === undefined || (higherIsBetter ? value > best.value + minDelta : value < best.value - minDelta);

  try {
    for (let epoch = firstEpoch; epoch <= epochs; epoch++) {
      const epochStart = Date.now();
      const order = permutation(n, mulberry32((seed * 100_003 + epoch) >>> 0));
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
            return batchLoss(out, y, k, probabilities);
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
        steps++;
        const elapsedMs = Date.now() - started;
        options.onProgress?.({
          done: steps,
          total: totalSteps,
          unit: 'batches',
          phase: 'batch',
          epoch,
          epochs,
          batch: b + 1,
          batches,
          loss: lossSum / seen,
          accuracy: correctSum / seen,
          elapsedMs,
          etaMs: (elapsedMs / steps) * (totalSteps - steps),
        });
      }
      const log: EpochLog = { epoch, loss: lossSum / n, accuracy: correctSum / n, durationMs: 0 };
      if (validation !== undefined) {
        const v = await evaluate(model, validation, { batchSize: Math.max(batchSize, 128) });
        log.valLoss = v.loss;
        log.valAccuracy = v.accuracy;
      }
      log.durationMs = Date.now() - epochStart;
      history.push(log);

      let stop = false;
      if (stopping !== undefined) {
        const value = {
          val_loss: log.valLoss,
          val_accuracy: log.valAccuracy,
          loss: log.loss,
          accuracy: log.accuracy,
        }[monitor]!;
        if (improved(value)) {
          best = { value, epoch, wait: 0 };
          if (restoreBest) {
            tf.dispose(bestWeights ?? []);
            bestWeights = model.getWeights().map((w) => w.clone());
          }
        } else if (best !== undefined) {
          best = { ...best, wait: best.wait + 1 };
          stop = best.wait >= stopping.patience;
        }
      }
      if (options.checkpointDir !== undefined) {
        checkpoint = await saveCheckpoint(
          options.checkpointDir,
          model,
          optimizer,
          { epoch, history, ...(best === undefined ? {} : { best }) },
          keep,
        );
      }
      const elapsedMs = Date.now() - started;
      options.onProgress?.({
        done: steps,
        total: totalSteps,
        unit: 'batches',
        phase: 'epoch',
        epoch,
        epochs,
        batch: batches,
        batches,
        loss: log.loss,
        accuracy: log.accuracy,
        ...(log.valLoss === undefined ? {} : { valLoss: log.valLoss, valAccuracy: log.valAccuracy! }),
        elapsedMs,
        etaMs: stop ? 0 : (elapsedMs / Math.max(steps, 1)) * (totalSteps - steps),
      });
      if (stop) {
        stoppedEarly = true;
        break;
      }
    }
    let bestEpoch: number | undefined;
    if (restoreBest && bestWeights !== undefined && best !== undefined) {
      model.setWeights(bestWeights);
      bestEpoch = best.epoch;
    }
    const result: TrainResult = { history, stoppedEarly };
    if (bestEpoch !== undefined) result.bestEpoch = bestEpoch;
    if (resumedFrom !== undefined) result.resumedFrom = resumedFrom;
    if (checkpoint !== undefined) result.checkpoint = checkpoint;
    if (validation !== undefined) result.validation = await evaluate(model, validation);
    return result;
  } finally {
    tf.dispose(bestWeights ?? []);
    if (ownOptimizer) optimizer.dispose();
  }
}

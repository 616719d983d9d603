import { CrpError, describeError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Lamb } from './lamb.js';

/** One epoch of the training history. */
export interface EpochLog {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  durationMs: number;
}

/** The JSON part of a {@link Checkpoint}: where training stood after `epoch`. */
export interface CheckpointState {
  epoch: number;
  history: EpochLog[];
  /** Early stopping: the best monitored value so far, its epoch, and the epochs since. */
  best?: { value: number; epoch: number; wait: number };
}

/** The training state after one epoch: what `train` needs to resume exactly where it stopped. */
export interface Checkpoint {
  state: CheckpointState;
  /** The model as TF.js model artifacts (topology, weight specs, weight data), as `model.save` gives them. */
  model: tf.io.ModelArtifacts;
  /** The optimizer's variables (moments, step), encoded as TF.js weights under the model's saved names. */
  optimizer: { data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] };
}

/**
 * Where `train` keeps its checkpoints, one per epoch: `fileCheckpoints(dir)` of `@crp/models/node` on disk,
 * {@link memoryCheckpoints} in memory, or anything else (IndexedDB, a server) that implements this.
 */
export interface CheckpointStore {
  /** Epochs that have a complete checkpoint (any order). */
  epochs(): Promise<number[]>;
  /** The checkpoint of an epoch listed by {@link epochs}. */
  read(epoch: number): Promise<Checkpoint>;
  /** Stores a checkpoint completely or not at all, then keeps only the newest `keep`; returns where it is. */
  write(checkpoint: Checkpoint, keep: number): Promise<string>;
}

/** Checkpoints in memory (no file system, e.g. in a browser): resuming works within one process. */
export function memoryCheckpoints(): CheckpointStore {
  const stored = new Map<number, Checkpoint>();
  return {
    epochs: async () => [...stored.keys()],
    read: async (epoch) => {
      const found = stored.get(epoch);
      if (found === undefined) throw new CrpError('not-found', `no checkpoint of epoch ${epoch} in memory`);
      return found;
    },
    write: async (checkpoint, keep) => {
      stored.set(checkpoint.state.epoch, checkpoint);
      const old = [...stored.keys()].sort((a, b) => b - a).slice(keep);
      for (const epoch of old) stored.delete(epoch);
      return `memory:epoch-${checkpoint.state.epoch}`;
    },
  };
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

/** Variable names of this model instance and the saved (original) names, both ways. */
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

/** The model's artifacts, as `model.save` hands them to an IOHandler. */
async function modelArtifacts(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return captured!;
}

/** The rename of {@link renameOptimizerWeights} for one name. */
function renameOne(name: string, names: Map<string, string>): string {
  return renameOptimizerWeights([{ name, tensor: undefined as unknown as tf.Tensor }], names)[0]!.name;
}

/**
 * The weights of a Lamb with moments in JavaScript, encoded as tf.io.encodeWeights would encode its getWeights
 * (step count, then moments), without making tensors of them: 1 GB of moments never enters the backend.
 */
function encodeMomentArrays(
  optimizer: Lamb,
  names: Map<string, string>,
): { data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] } {
  const arrays = optimizer.momentArrays()!;
  const bytes = 4 + arrays.reduce((s, a) => s + a.values.byteLength, 0);
  const data = new ArrayBuffer(bytes);
  new Int32Array(data, 0, 1)[0] = optimizer.iterations;
  const specs: tf.io.WeightsManifestEntry[] = [{ name: 'iter', shape: [], dtype: 'int32' }];
  let offset = 4;
  for (const { name, shape, values } of arrays) {
    new Uint8Array(data, offset, values.byteLength).set(
      new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    );
    offset += values.byteLength;
    specs.push({ name: renameOne(name, names), shape, dtype: 'float32' });
  }
  return { data, specs };
}

/** Captures the model, the optimizer and the state after an epoch. */
export async function captureCheckpoint(
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  state: CheckpointState,
): Promise<Checkpoint> {
  const names = variableNames(model).toSaved;
  if (optimizer instanceof Lamb && optimizer.momentsIn === 'js') {
    return { state, model: await modelArtifacts(model), optimizer: encodeMomentArrays(optimizer, names) };
  }
  const weights = renameOptimizerWeights(await optimizer.getWeights(), names);
  const { data, specs } = await tf.io.encodeWeights(weights);
  return { state, model: await modelArtifacts(model), optimizer: { data, specs } };
}

/**
 * Puts a checkpoint's weights into the model (the model's own variables, so the optimizer keeps tracking them).
 *
 * @throws CrpError `invalid-argument` when the checkpoint belongs to another model.
 */
export function loadCheckpointWeights(model: tfl.LayersModel, checkpoint: Checkpoint, where: string): void {
  const { weightData, weightSpecs } = checkpoint.model;
  const weights = tf.io.decodeWeights(weightData!, weightSpecs!);
  try {
    model.loadWeights(weights, true);
  } catch (err) {
    throw new CrpError(
      'invalid-argument',
      `the checkpoint '${where}' does not fit this model (${describeError(err)}); use other checkpoints or the same model`,
      { cause: err },
    );
  } finally {
    tf.dispose(Object.values(weights));
  }
}

/** Restores the model's weights and the optimizer's state from a checkpoint. */
export async function restoreCheckpoint(
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  checkpoint: Checkpoint,
  where: string,
): Promise<void> {
  loadCheckpointWeights(model, checkpoint, where);
  const { data, specs } = checkpoint.optimizer;
  if (optimizer instanceof Lamb && optimizer.momentsIn === 'js' && specs[0]?.name === 'iter') {
    // straight into Float32Arrays: the moments never enter the backend
    const fromSaved = variableNames(model).fromSaved;
    const arrays: { name: string; shape: number[]; values: Float32Array }[] = [];
    let offset = 4;
    for (const spec of specs.slice(1)) {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      if (spec.dtype !== 'float32' || offset + size * 4 > data.byteLength) {
        throw new CrpError(
          'invalid-argument',
          `the optimizer state of the checkpoint '${where}' is not LAMB moments`,
        );
      }
      arrays.push({
        name: renameOne(spec.name, fromSaved),
        shape: spec.shape,
        values: new Float32Array(data.slice(offset, offset + size * 4)),
      });
      offset += size * 4;
    }
    optimizer.setMomentArrays(arrays, new Int32Array(data, 0, 1)[0]!);
    return;
  }
  const decoded = tf.io.decodeWeights(data, specs);
  const named = specs.map((s) => ({ name: s.name, tensor: decoded[s.name]! }));
  await optimizer.setWeights(renameOptimizerWeights(named, variableNames(model).fromSaved));
  tf.dispose(Object.values(decoded));
}

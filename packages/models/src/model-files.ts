import { existsSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CrpError, describeError, fileError, isCrpError } from '@crp/common';
import * as tfl from '@tensorflow/tfjs-layers';
import { fileSystem } from './file-system.js';
import { SafetensorsFile } from './safetensors.js';
import { importTorchVgg, type TorchVggOptions } from './torch-vgg.js';

/**
 * Reads and parses a safetensors file.
 *
 * @throws CrpError `not-found` / `read-failed` when it cannot be read, `corrupt-file` when it is not one.
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw fileError('read', path, err, 'safetensors file');
  }
  return SafetensorsFile.parse(bytes, `'${path}'`);
}

/** Reads a torchvision-style VGG from a safetensors file into a TF.js model (see `importTorchVgg`). */
export async function readTorchVgg(path: string, options: TorchVggOptions = {}): Promise<tfl.Sequential> {
  return importTorchVgg(await readSafetensors(path), options);
}

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /** Input [height, width, channels] of an imported torchvision VGG (default 224x224, see `TorchVggOptions`). */
  inputShape?: [number, number, number];
}

/**
 * Loads a model from disk: a TF.js `model.json` (or a directory holding one, as {@link saveModel} and
 * `model.save(fileSystem(dir))` write it), or a torchvision-style VGG in a `.safetensors` file.
 *
 * @returns a new model that the caller owns
 * @throws CrpError `not-found` for a path that does not exist or a directory without model.json, and the errors
 *   of `fileSystem` and `readTorchVgg`.
 */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<tfl.LayersModel> {
  if (!existsSync(path)) {
    throw new CrpError(
      'not-found',
      `model not found: ${path} (give a model.json, a directory with one, or a .safetensors file)`,
      { details: { path } },
    );
  }
  if (path.endsWith('.safetensors')) {
    return readTorchVgg(path, options.inputShape === undefined ? {} : { inputShape: options.inputShape });
  }
  const json = statSync(path).isDirectory() ? join(path, 'model.json') : path;
  if (!existsSync(json)) {
    throw new CrpError('not-found', `no model.json in ${path}`, { details: { path } });
  }
  return tfl.loadLayersModel(fileSystem(json));
}

/** Sizes of a saved model in bytes. */
export interface SavedModelInfo {
  dir: string;
  modelJsonBytes: number;
  weightBytes: number;
  totalBytes: number;
}

/**
 * Saves a layers model as `dir/model.json` + `dir/weights.bin` through `fileSystem` (atomic: written to a
 * temporary sibling directory that is renamed into place) and reports the file sizes.
 *
 * @throws CrpError `write-failed` (or `invalid-argument` for a target that is not a model directory) when the
 *   model cannot be written.
 */
export async function saveModel(model: tfl.LayersModel, dir: string): Promise<SavedModelInfo> {
  try {
    await model.save(fileSystem(dir));
  } catch (err) {
    // fileSystem's own errors say which kind of failure it was
    const code = isCrpError(err) ? err.code : 'write-failed';
    throw new CrpError(code, `could not save the model to ${dir}: ${describeError(err)}`, {
      cause: err,
      details: { path: dir },
    });
  }
  const modelJsonBytes = (await stat(join(dir, 'model.json'))).size;
  const weightBytes = (await stat(join(dir, 'weights.bin'))).size;
  return { dir, modelJsonBytes, weightBytes, totalBytes: modelJsonBytes + weightBytes };
}

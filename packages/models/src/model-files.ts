import { existsSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CrpError, describeError, fileError, isCrpError } from '@crp/common';
import { writeFileAtomic } from '@crp/common/node';
import * as tfl from '@tensorflow/tfjs-layers';
import { fileSystem } from './file-system.js';
import type { PthFile } from './pth.js';
import { encodeTorchStateDict, torchStateDictOf } from './pth-writer.js';
import { SafetensorsFile } from './safetensors.js';
import { parseStateDict } from './state-dict.js';
import { importTorchModel, type TorchModelOptions } from './torch-model.js';
import { importTorchResNet, type TorchResNetOptions } from './torch-resnet.js';
import { importTorchVgg, type TorchVggOptions } from './torch-vgg.js';

/** Reads a weights file in one go, with a CrpError that names it. */
async function readWeightsFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw fileError('read', path, err, what);
  }
}

/**
 * Reads and parses a safetensors file.
 *
 * @throws CrpError `not-found` / `read-failed` when it cannot be read, `corrupt-file` when it is not one.
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  return SafetensorsFile.parse(await readWeightsFile(path, 'safetensors file'), `'${path}'`);
}

/**
 * Reads a weights file (one read of the whole file): a `.pth`/`.pt` written by `torch.save` or a safetensors
 * file, told apart by its bytes (see {@link parseStateDict}).
 *
 * @throws CrpError `not-found` / `read-failed` when the file cannot be read, and the errors of
 *   {@link parseStateDict}
 */
export async function readStateDict(path: string): Promise<PthFile | SafetensorsFile> {
  return parseStateDict(await readWeightsFile(path, 'weights file'), `'${path}'`);
}

/** Reads a torchvision-style VGG from a `.pth`/`.pt` or safetensors file into a TF.js model (see
 * `importTorchVgg`). */
export async function readTorchVgg(path: string, options: TorchVggOptions = {}): Promise<tfl.Sequential> {
  return importTorchVgg(await readStateDict(path), options);
}

/** Reads a torchvision ResNet from a `.pth`/`.pt` or safetensors file into a TF.js model (see
 * `importTorchResNet`). */
export async function readTorchResNet(
  path: string,
  options: TorchResNetOptions = {},
): Promise<tfl.LayersModel> {
  return importTorchResNet(await readStateDict(path), options);
}

/** Reads a torchvision VGG or ResNet, told apart by the file's tensors (see `importTorchModel`). */
export async function readTorchModel(
  path: string,
  options: TorchModelOptions = {},
): Promise<tfl.LayersModel> {
  return importTorchModel(await readStateDict(path), options);
}

/**
 * Writes a model with PyTorch's layer names (an imported VGG or ResNet, fine-tuned or pruned by `exportPruned`)
 * as a `state_dict.pth` that `model.load_state_dict(torch.load(path))` of the same torchvision architecture
 * accepts (with the pruned channel counts where channels were removed). Atomic: a temporary file renamed.
 *
 * @throws CrpError `unsupported-model` for a layer without a PyTorch counterpart, `write-failed`
 */
export async function writeTorchStateDict(model: tfl.LayersModel, path: string): Promise<void> {
  await writeFileAtomic(path, encodeTorchStateDict(torchStateDictOf(model)));
}

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /** Input size of an imported torchvision VGG or ResNet: one side, [height, width] (default 224). */
  inputSize?: number | [number, number];
  /** Input [height, width, channels] of an imported torchvision VGG or ResNet (instead of `inputSize`). */
  inputShape?: [number, number, number];
}

/**
 * Loads a model from disk: a TF.js `model.json` (or a directory holding one, as {@link saveModel} and
 * `model.save(fileSystem(dir))` write it), or a torchvision VGG or ResNet in a `.pth`/`.pt` file of `torch.save`
 * or a `.safetensors` file (any file that is not JSON is read as weights and told apart by its bytes).
 *
 * @throws CrpError `not-found` for a missing path, and the errors of `fileSystem` and `readTorchModel`.
 */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<tfl.LayersModel> {
  if (!existsSync(path)) {
    throw new CrpError(
      'not-found',
      `model not found: ${path} (give a model.json, a directory with one, or a .pth/.pt/.safetensors file)`,
      { details: { path } },
    );
  }
  const isDir = statSync(path).isDirectory();
  if (!isDir && !path.endsWith('.json')) {
    const torch: TorchModelOptions = {};
    if (options.inputSize !== undefined) torch.inputSize = options.inputSize;
    if (options.inputShape !== undefined) torch.inputShape = options.inputShape;
    return readTorchModel(path, torch);
  }
  const json = isDir ? join(path, 'model.json') : path;
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

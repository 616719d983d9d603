import { existsSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CrpError, describeError, fileError, isCrpError } from '@crp/common';
import { writeFileAtomic } from '@crp/common/node';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { fileSystem } from './file-system.js';
import { readOnnx } from './onnx-file.js';
import type { PthFile } from './pth.js';
import { encodeTorchStateDict, torchStateDictOf } from './pth-writer.js';
import { SafetensorsFile } from './safetensors.js';
import { parseStateDict } from './state-dict.js';
import { importTorchModel, type TorchModelOptions } from './torch-model.js';
import { importTorchResNet, type TorchResNetOptions } from './torch-resnet.js';
import { importTorchVgg, type TorchVggOptions } from './torch-vgg.js';
import { importTorchVit, type TorchVitOptions } from './torch-vit.js';

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

/** Reads a torchvision ViT from a `.pth`/`.pt` or safetensors file into a TF.js model (see `importTorchVit`). */
export async function readTorchVit(path: string, options: TorchVitOptions = {}): Promise<tfl.LayersModel> {
  return importTorchVit(await readStateDict(path), options);
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
  /** Input size of an imported torchvision VGG, ResNet or ViT: one side, [height, width] (default 224); for an
   * `.onnx` model, the size of a dynamic input (`OnnxImportOptions.inputSize`). */
  inputSize?: number | [number, number];
  /** Input [height, width, channels] of an imported torchvision VGG or ResNet (instead of `inputSize`). */
  inputShape?: [number, number, number];
  /** Attention heads of an imported ViT that is none of torchvision's configurations (see `TorchVitOptions`). */
  numHeads?: number;
}

/**
 * Loads a model from disk: a TF.js `model.json` (or a directory holding one, as {@link saveModel} and
 * `model.save(fileSystem(dir))` write it), any CNN in an `.onnx` file (see `readOnnx`; `inputSize` fixes a
 * dynamic input size), or a torchvision-style VGG or ViT (told apart by its `conv_proj` patch embedding) in a
 * `.pth`/`.pt` file of `torch.save` or a `.safetensors` file (any other file that is not JSON is read as weights
 * and told apart by its bytes).
 *
 * @throws CrpError `not-found` for a missing path, and the errors of `fileSystem` and `readTorchModel`.
 */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<tfl.LayersModel> {
  if (!existsSync(path)) {
    throw new CrpError(
      'not-found',
      `model not found: ${path} (give a model.json, a directory with one, an .onnx file, or a .pth/.pt/.safetensors file)`,
      { details: { path } },
    );
  }
  const isDir = statSync(path).isDirectory();
  if (!isDir && path.toLowerCase().endsWith('.onnx')) {
    return readOnnx(path, options.inputSize === undefined ? {} : { inputSize: options.inputSize });
  }
  if (!isDir && !path.endsWith('.json')) {
    const torch: TorchModelOptions = {};
    if (options.inputSize !== undefined) torch.inputSize = options.inputSize;
    if (options.inputShape !== undefined) torch.inputShape = options.inputShape;
    if (options.numHeads !== undefined) torch.numHeads = options.numHeads;
    return readTorchModel(path, torch);
  }
  const json = isDir ? join(path, 'model.json') : path;
  if (!existsSync(json)) {
    throw new CrpError('not-found', `no model.json in ${path}`, { details: { path } });
  }
  const artifacts = await fileSystem(json).load!();
  // TF.js builds the model and loads the weights synchronously once it has the artifacts (one microtask after the
  // call), so a scope around that call holds its tensors: when it fails halfway (weights that do not fit the
  // topology), the weights it decoded and the variables it created are disposed instead of leaking, as TF.js would
  // leave them. Assumption: no other code creates tensors in that microtask window (variables are never scoped)
  const variables = new Set(Object.keys(tf.engine().registeredVariables));
  tf.engine().startScope();
  try {
    return await tfl.loadLayersModel({ load: async () => artifacts });
  } catch (err) {
    for (const [name, v] of Object.entries(tf.engine().registeredVariables))
      if (!variables.has(name)) v.dispose();
    if (isCrpError(err)) throw err;
    // TF.js's own errors (ValueError, TypeError, ...) when the topology or the weights do not make a model
    throw new CrpError(
      'corrupt-file',
      `'${json}' does not describe a model TF.js can build (${describeError(err)}); valid: the output of model.save or the TF.js converter`,
      { cause: err, details: { path: json } },
    );
  } finally {
    tf.engine().endScope();
  }
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

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileSystem, importTorchVgg } from '@crp/models';
import * as tfl from '@tensorflow/tfjs-layers';
import { UsageError } from './usage-error.js';

export interface LoadModelOptions {
  /** Input [height, width, channels] of an imported PyTorch VGG (default 224x224). */
  inputShape?: [number, number, number];
}

/**
 * Loads a model given on the command line: a TF.js `model.json` (or a directory holding one), or a
 * torchvision-style VGG in a `.safetensors` file.
 */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<tfl.LayersModel> {
  if (!existsSync(path)) {
    throw new UsageError(
      `model not found: ${path} (give a model.json, a directory with one, or a .safetensors file)`,
    );
  }
  if (path.endsWith('.safetensors')) {
    return importTorchVgg(path, options.inputShape === undefined ? {} : { inputShape: options.inputShape });
  }
  const json = statSync(path).isDirectory() ? join(path, 'model.json') : path;
  if (!existsSync(json)) throw new UsageError(`no model.json in ${path}`);
  return tfl.loadLayersModel(fileSystem(json));
}

import { isCrpError } from '@crp/common';
import { loadModel } from '@crp/models/node';
import type * as tfl from '@tensorflow/tfjs-layers';
import { UsageError } from './usage-error.js';

/**
 * Loads the model given with `--model` (`loadModel` of @crp/models/node: a model.json, a directory with one, or a
 * torchvision VGG in a .safetensors file). A path that does not exist is a usage error (exit status 2).
 */
export async function openModel(path: string): Promise<tfl.LayersModel> {
  try {
    return await loadModel(path);
  } catch (err) {
    if (isCrpError(err, 'not-found')) throw new UsageError(err.message);
    throw err;
  }
}

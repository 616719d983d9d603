import { isCrpError } from '@crp/common';
import { loadModel } from '@crp/models/node';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ModelInputOptions } from './model-data.js';
import { UsageError } from './usage-error.js';

/**
 * Loads the model given with `--model` (`loadModel` of @crp/models/node: a model.json, a directory with one, any
 * CNN in an .onnx file, or a torchvision VGG, ResNet or ViT in a .pth/.pt or .safetensors file, imported at
 * `inputSize`; a ViT of none of torchvision's configurations with `numHeads` heads, `--heads`). A path that does not exist is a usage error (exit status 2); a missing file the model refers to
 * (ONNX external data) is bad input (exit status 1).
 */
export async function openModel(
  path: string,
  input: Pick<ModelInputOptions, 'inputSize' | 'numHeads'> = {},
): Promise<tfl.LayersModel> {
  try {
    return await loadModel(path, {
      ...(input.inputSize === undefined ? {} : { inputSize: input.inputSize }),
      ...(input.numHeads === undefined ? {} : { numHeads: input.numHeads }),
    });
  } catch (err) {
    if (isCrpError(err, 'not-found') && err.details.path === path) throw new UsageError(err.message);
    throw err;
  }
}

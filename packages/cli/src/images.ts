import { preprocess } from '@crp/models';
import type { RasterImage } from '@crp/vis';
import { readImage } from '@crp/vis/node';
import type * as tf from '@tensorflow/tfjs-core';

/** The `{ mean, std }` of checked model-input options, or undefined where none was given. */
export function meanStd(input: {
  mean?: readonly number[];
  std?: readonly number[];
}): { mean: readonly number[]; std: readonly number[] } | undefined {
  return input.mean === undefined || input.std === undefined
    ? undefined
    : { mean: input.mean, std: input.std };
}

export interface ImageInput {
  path: string;
  /** the image as read (for overlays) */
  raster: RasterImage;
  /** [1, H, W, C] model input; the caller disposes it */
  tensor: tf.Tensor4D;
}

/**
 * Reads an image file and makes it the model's input with `preprocess` of @crp/models (the definition that
 * `imageFolder` and `readImages` use too): resized to the model's input size where it is fixed, with the
 * model's channels, scaled to [0, 1], then normalised.
 */
export async function readModelInput(
  path: string,
  inputShape: readonly (number | null)[],
  normalize?: { mean: readonly number[]; std: readonly number[] },
): Promise<ImageInput> {
  const raster = await readImage(path);
  const [h, w, c] = inputShape;
  const tensor = preprocess(raster, {
    ...(h !== null && h !== undefined && w !== null && w !== undefined ? { inputSize: [h, w] as const } : {}),
    channels: c === 1 ? 1 : 3,
    ...(normalize === undefined ? {} : { mean: normalize.mean, std: normalize.std }),
  });
  return { path, raster, tensor };
}

import { type RasterImage, readImage } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';

/** Named normalisations for `--normalize`. */
export const NORMALIZATIONS: Record<string, { mean: number[]; std: number[] }> = {
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
};

export interface ImageInput {
  path: string;
  /** the image as read (for overlays) */
  raster: RasterImage;
  /** [1, H, W, C] model input; the caller disposes it */
  tensor: tf.Tensor4D;
}

/** Reads an image file, scales it to [0, 1], resizes it to the model's input and normalises it. */
export async function readModelInput(
  path: string,
  inputShape: readonly (number | null)[],
  normalize?: { mean: number[]; std: number[] },
): Promise<ImageInput> {
  const raster = await readImage(path);
  const [h, w, c] = [inputShape[0] ?? raster.height, inputShape[1] ?? raster.width, inputShape[2] ?? 3];
  const tensor = tf.tidy(() => {
    let x = tf.div(
      tf.tensor3d(raster.data, [raster.height, raster.width, raster.channels], 'int32'),
      255,
    ) as tf.Tensor3D;
    if (raster.channels === 4) x = tf.slice(x, [0, 0, 0], [raster.height, raster.width, 3]);
    if (c === 3 && raster.channels === 1) x = tf.tile(x, [1, 1, 3]);
    if (c === 1 && x.shape[2] === 3) x = tf.mean(x, 2, true);
    let batch = tf.expandDims(x, 0) as tf.Tensor4D;
    if (batch.shape[1] !== h || batch.shape[2] !== w) batch = tf.image.resizeBilinear(batch, [h, w], true);
    if (normalize) batch = tf.div(tf.sub(batch, tf.tensor1d(normalize.mean)), tf.tensor1d(normalize.std));
    return batch;
  });
  return { path, raster, tensor };
}

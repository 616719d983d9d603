/**
 * Images into model input: the browser decodes the file (any format it can show), @crp/models' `preprocess`
 * scales, resizes and normalises it exactly as the toolkit does in Node.
 */
import { CrpError } from '@crp/common';
import { IMAGENET, preprocess } from '@crp/models';
import type { RasterImage } from '@crp/vis';
import type * as tf from '@tensorflow/tfjs-core';
import type { GuardedLoad } from './guarded-load.js';

/** How pixel values become model input. */
export type Scaling = 'unit' | 'imagenet' | 'bytes' | 'signed';

export const SCALINGS: Record<Scaling, { label: string; low: number; high: number }> = {
  unit: { label: 'pixels / 255 (0 to 1)', low: 0, high: 1 },
  imagenet: {
    label: 'ImageNet mean and std (torchvision)',
    low: Math.min(...IMAGENET.mean.map((m, i) => -m / IMAGENET.std[i]!)),
    high: Math.max(...IMAGENET.mean.map((m, i) => (1 - m) / IMAGENET.std[i]!)),
  },
  bytes: { label: 'pixel values (0 to 255)', low: 0, high: 255 },
  signed: { label: 'pixels / 127.5 - 1 (-1 to 1)', low: -1, high: 1 },
};

/** A decoded image. */
export interface LoadedImage {
  raster: RasterImage;
  name: string;
}

/** Decodes an image file (or fetched bytes) with the browser's decoders; a CrpError for anything else. */
export async function decodeImageBlob(blob: Blob, name: string): Promise<LoadedImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    throw new CrpError(
      'unsupported-format',
      `${name} is not an image this browser can read${blob.type ? ` (its type is ${blob.type})` : ''}; choose a PNG, JPEG, WebP, GIF or BMP file`,
    );
  }
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext('2d', { willReadFrequently: true })!;
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
  return {
    raster: {
      width: pixels.width,
      height: pixels.height,
      channels: 4,
      data: new Uint8Array(pixels.data.buffer),
    },
    name,
  };
}

/** Fetches and decodes an image; `load` stops the fetch when a newer load replaces it or the server is too slow. */
export async function fetchImage(url: string, load: GuardedLoad): Promise<LoadedImage> {
  const response = await load.fetch(url);
  if (!response.ok) throw new CrpError('not-found', `${url} could not be loaded: HTTP ${response.status}`);
  return decodeImageBlob(await load.step(response.blob()), url.split('/').pop() ?? url);
}

/** The model input of an image, and a note when it had to be resized. */
export function toModelInput(
  image: LoadedImage,
  shape: readonly [number, number, number],
  scaling: Scaling,
): { x: tf.Tensor4D; note: string | undefined } {
  const [h, w, c] = shape;
  const { width, height } = image.raster;
  const note =
    width === w && height === h
      ? undefined
      : `${image.name} is ${width}×${height} pixels; the model takes ${w}×${h}, so it was resized (bilinear${width / height !== w / h ? ', aspect ratio not kept' : ''}) and the heatmaps are ${w}×${h}.`;
  const options = {
    inputSize: [h, w] as [number, number],
    channels: c as 1 | 3,
    ...(scaling === 'imagenet' ? { mean: [...IMAGENET.mean], std: [...IMAGENET.std] } : {}),
    ...(scaling === 'bytes' ? { std: [1 / 255] } : {}),
    ...(scaling === 'signed' ? { mean: [0.5], std: [0.5] } : {}),
  };
  if (scaling === 'imagenet' && c === 1) {
    throw new CrpError(
      'invalid-argument',
      'ImageNet scaling needs a model with 3 input channels; this one has 1',
    );
  }
  return { x: preprocess(image.raster, options), note };
}

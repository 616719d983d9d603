import { CrpError } from '@crp/common';
import type { RasterImage } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';

/** Per-channel mean and standard deviation of ImageNet's training images (RGB): torchvision's normalisation. */
export const IMAGENET: {
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
} = Object.freeze({
  mean: Object.freeze([0.485, 0.456, 0.406] as const),
  std: Object.freeze([0.229, 0.224, 0.225] as const),
});

/** How decoded images become model input (see {@link preprocess}). */
export interface PreprocessOptions {
  /** [height, width] of the model input. Images of another size are resized (bilinear, half-pixel centres);
   * images of this size are not touched. Default: keep every image's own size. */
  inputSize?: readonly [number, number];
  /** Channels of the model input: 3 (RGB, default) or 1 (grey). */
  channels?: 1 | 3;
  /** Per-channel mean subtracted after scaling to [0, 1] (1 value or one per channel); default 0. */
  mean?: readonly number[];
  /** Per-channel standard deviation divided by after subtracting `mean` (1 value or one per channel, > 0);
   * default 1. `{ ...IMAGENET }` gives torchvision's ImageNet normalisation. */
  std?: readonly number[];
}

/**
 * The {@link PreprocessOptions} fields of a larger options object (a loader's), without the others.
 * @internal
 */
export function preprocessOptionsOf(options: PreprocessOptions): PreprocessOptions {
  const out: PreprocessOptions = {};
  if (options.inputSize !== undefined) out.inputSize = options.inputSize;
  if (options.channels !== undefined) out.channels = options.channels;
  if (options.mean !== undefined) out.mean = options.mean;
  if (options.std !== undefined) out.std = options.std;
  return out;
}

/** Options checked once, with defaults filled in. */
interface Resolved {
  inputSize: readonly [number, number] | undefined;
  channels: 1 | 3;
  mean: readonly number[] | undefined;
  std: readonly number[] | undefined;
}

/** Checks preprocessing options (before any file is read); @throws CrpError `invalid-argument`. @internal */
export function checkPreprocessOptions(options: PreprocessOptions): void {
  resolve(options);
}

function resolve(options: PreprocessOptions): Resolved {
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) {
    throw new CrpError('invalid-argument', `channels must be 1 or 3, got ${String(channels)}`);
  }
  const size = options.inputSize;
  if (size !== undefined && !(size.length === 2 && size.every((s) => Number.isInteger(s) && s >= 1))) {
    throw new CrpError(
      'invalid-argument',
      `inputSize must be [height, width] of positive integers, got ${JSON.stringify(size)}`,
    );
  }
  const { mean, std } = options;
  const fits = (v: readonly number[] | undefined) =>
    v === undefined || v.length === 1 || v.length === channels;
  if (
    !fits(mean) ||
    !fits(std) ||
    (std ?? []).some((s) => !(s > 0 && Number.isFinite(s))) ||
    (mean ?? []).some((m) => !Number.isFinite(m))
  ) {
    throw new CrpError(
      'invalid-argument',
      `mean and std need ${channels === 1 ? '1 value' : `1 or ${channels} values`} (std > 0, all finite), got mean ${JSON.stringify(mean)} std ${JSON.stringify(std)}`,
    );
  }
  return { inputSize: size, channels, mean, std };
}

/**
 * One decoded image as float values in [0, 1] with the wanted channels, row-major [H, W, C]: alpha is blended
 * over white, grey is repeated into R, G and B, and RGB becomes grey by luminance (ITU-R 601: 0.299 R + 0.587 G
 * + 0.114 B, as PIL's `convert('L')` but without rounding).
 */
function pixelValues(image: RasterImage, channels: 1 | 3, into: Float32Array, offset: number): void {
  const { width, height, data } = image;
  const n = width * height;
  const s = image.channels;
  for (let p = 0; p < n; p++) {
    let r: number;
    let g: number;
    let b: number;
    if (s === 1) {
      r = g = b = data[p]!;
    } else {
      const a = s === 4 ? data[p * 4 + 3]! / 255 : 1;
      r = data[p * s]! * a + 255 * (1 - a);
      g = data[p * s + 1]! * a + 255 * (1 - a);
      b = data[p * s + 2]! * a + 255 * (1 - a);
    }
    if (channels === 3) {
      into[offset + p * 3] = r / 255;
      into[offset + p * 3 + 1] = g / 255;
      into[offset + p * 3 + 2] = b / 255;
    } else {
      into[offset + p] = s === 1 ? r / 255 : (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    }
  }
}

/**
 * Resizes (when `inputSize` differs from the images' size) and normalises images that are already in [0, 1]:
 * the second half of {@link preprocess}, shared with loaders whose pixels are not encoded images (MNIST).
 * Returns a new tensor; `x` stays the caller's.
 *
 * @internal
 */
export function resizeAndNormalize(x: tf.Tensor4D, options: PreprocessOptions): tf.Tensor4D {
  const { inputSize, mean, std } = resolve({ ...options, channels: x.shape[3] === 1 ? 1 : 3 });
  return tf.tidy(() => {
    let y = x;
    if (inputSize !== undefined && (x.shape[1] !== inputSize[0] || x.shape[2] !== inputSize[1])) {
      // bilinear with half-pixel centres: source = (target + 0.5) * in / out - 0.5, clamped to the image
      y = tf.image.resizeBilinear(y, [inputSize[0], inputSize[1]], false, true);
    }
    if (mean !== undefined) y = tf.sub(y, tf.tensor1d([...mean]));
    if (std !== undefined) y = tf.div(y, tf.tensor1d([...std]));
    return y === x ? tf.clone(x) : y;
  });
}

/**
 * Turns decoded images (`RasterImage`s of `@crp/vis`: `decodeImage`, or `readImage` of `@crp/vis/node`) into
 * model input [N, H, W, C], float32. The one preprocessing definition of the toolkit: `imageFolder`,
 * `readImages` and the `crp` command all call it, so the same file gives the same
 * tensor everywhere. In this order:
 *
 * 1. **channels**: alpha is blended over white (a transparent pixel becomes white; PIL's `convert('RGB')`, which
 *    torchvision's `ImageFolder` uses, drops alpha instead: the two agree for opaque images); a grey image is
 *    repeated into 3 channels when `channels` is 3; an RGB image becomes grey by luminance (0.299 R + 0.587 G +
 *    0.114 B) when `channels` is 1;
 * 2. **scale** to [0, 1] (value / 255), like torchvision's `ToTensor`;
 * 3. **resize** to `inputSize`, only when an image has another size: bilinear with half-pixel centres and
 *    without antialiasing (as `tf.image.resizeBilinear(x, size, false, true)`, PyTorch's
 *    `interpolate(mode='bilinear', align_corners=False)`, OpenCV's `INTER_LINEAR`), on the float values (no
 *    rounding to 8 bit). PIL and torchvision's `Resize` antialias when they shrink an image, so to reproduce a
 *    PyTorch pipeline exactly, give images that already have the model's input size;
 * 4. **normalise**: `(x - mean) / std` per channel, e.g. `{ ...IMAGENET }` (torchvision's `Normalize`).
 *
 * Without `inputSize`, all images must have the same size.
 *
 * ```ts
 * const x = preprocess(decodeImage(bytes), { inputSize: [224, 224], ...IMAGENET }); // [1, 224, 224, 3]
 * ```
 *
 * @returns a new tensor that the caller owns
 * @throws CrpError `invalid-argument` for bad options, `invalid-shape` for images of different sizes without
 *   `inputSize` (or no images).
 */
export function preprocess(
  images: RasterImage | readonly RasterImage[],
  options: PreprocessOptions = {},
): tf.Tensor4D {
  const list: readonly RasterImage[] = Array.isArray(images) ? images : [images as RasterImage];
  const resolved = resolve(options);
  const { channels, inputSize } = resolved;
  const first = list[0];
  if (first === undefined) throw new CrpError('invalid-shape', 'preprocess needs at least one image');
  const sameSize = list.every((im) => im.width === first.width && im.height === first.height);
  if (!sameSize && inputSize === undefined) {
    const other = list.findIndex((im) => im.width !== first.width || im.height !== first.height);
    throw new CrpError(
      'invalid-shape',
      `image ${other} is ${list[other]!.width}x${list[other]!.height} but image 0 is ${first.width}x${first.height}; give inputSize: [height, width] to resize every image`,
    );
  }
  return tf.tidy(() => {
    let scaled: tf.Tensor4D;
    if (sameSize) {
      const size = first.width * first.height * channels;
      const values = new Float32Array(list.length * size);
      list.forEach((im, i) => {
        pixelValues(im, channels, values, i * size);
      });
      scaled = tf.tensor4d(values, [list.length, first.height, first.width, channels]);
    } else {
      // different sizes: each image is resized on its own
      const [h, w] = inputSize!;
      scaled = tf.stack(
        list.map((im) => {
          const values = new Float32Array(im.width * im.height * channels);
          pixelValues(im, channels, values, 0);
          const x = tf.tensor3d(values, [im.height, im.width, channels]);
          return im.height === h && im.width === w ? x : tf.image.resizeBilinear(x, [h, w], false, true);
        }),
      ) as tf.Tensor4D;
    }
    return resizeAndNormalize(scaled, options);
  });
}

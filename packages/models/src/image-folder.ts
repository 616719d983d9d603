import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import {
  CrpError,
  describeError,
  fileErrorCode,
  isCrpError,
  type ProgressCallback,
  progressTracker,
} from '@crp/common';
import { decodeImage, type RasterImage } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';
import { type Dataset, normalizePixels, type PixelOptions } from './dataset.js';

/** Options of {@link imageFolder}. */
export interface ImageFolderOptions extends PixelOptions {
  /** Resize every image to [height, width] (bilinear). Without it all images must have the same size. */
  size?: [number, number];
  /** 1 (grey, by luminance) or 3 (RGB; grey is replicated, alpha is composited over white). Default 3. */
  channels?: 1 | 3;
  /** The classes to read, in this order (sub-folder names). Default: every sub-folder, sorted by name. */
  classes?: readonly string[];
  /** Read at most this many images per class (the first in name order). */
  limitPerClass?: number;
  /** File extensions to read; default `.png`, `.jpg`, `.jpeg` (any case). */
  extensions?: readonly string[];
  /** Called after each image with the images read so far (`unit: 'images'`). */
  onProgress?: ProgressCallback;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function toChannels(image: RasterImage, channels: 1 | 3): Float32Array {
  const { width, height, data } = image;
  const n = width * height;
  const out = new Float32Array(n * channels);
  for (let p = 0; p < n; p++) {
    let r: number;
    let g: number;
    let b: number;
    if (image.channels === 1) {
      r = g = b = data[p]!;
    } else {
      const s = image.channels;
      const a = s === 4 ? data[p * 4 + 3]! / 255 : 1;
      r = data[p * s]! * a + 255 * (1 - a);
      g = data[p * s + 1]! * a + 255 * (1 - a);
      b = data[p * s + 2]! * a + 255 * (1 - a);
    }
    if (channels === 3) {
      out[p * 3] = r / 255;
      out[p * 3 + 1] = g / 255;
      out[p * 3 + 2] = b / 255;
    } else {
      out[p] = image.channels === 1 ? r / 255 : (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    }
  }
  return out;
}

/**
 * Reads a folder with one sub-folder per class (`root/cat/001.png`, `root/dog/a.jpg`, ...) into a labelled data
 * set. The order is deterministic: classes sorted by name (or as given), files sorted by name within a class.
 * Pixels are scaled to [0, 1], then optionally normalised. PNG and JPEG are decoded with `@crp/vis`.
 *
 * @returns tensors that the caller owns (see {@link disposeDataset}); `sources` lists the files
 * @throws CrpError `invalid-argument` for a missing folder, no class folders, an empty or unknown class, a file
 *   that is not a readable image, or images of different sizes without `size`.
 */
export async function imageFolder(root: string, options: ImageFolderOptions = {}): Promise<Dataset> {
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) {
    throw new CrpError('invalid-argument', `channels must be 1 or 3, got ${String(channels)}`);
  }
  const size = options.size;
  if (size !== undefined && !(size.length === 2 && size.every((s) => Number.isInteger(s) && s >= 1))) {
    throw new CrpError(
      'invalid-argument',
      `size must be [height, width] of positive integers, got ${JSON.stringify(size)}`,
    );
  }
  const limit = options.limitPerClass;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) {
    throw new CrpError('invalid-argument', `limitPerClass must be a positive integer, got ${limit}`);
  }
  const extensions = new Set((options.extensions ?? ['.png', '.jpg', '.jpeg']).map((e) => e.toLowerCase()));

  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (err) {
    throw new CrpError(
      fileErrorCode('read', err),
      `cannot read the image folder '${root}' (${describeError(err)}); valid: a folder with one sub-folder of images per class`,
      { cause: err, details: { path: root } },
    );
  }
  const found = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort(byName);
  if (found.length === 0) {
    throw new CrpError(
      'invalid-argument',
      `'${root}' has no class sub-folders; valid: one sub-folder of images per class (root/cat/1.png, root/dog/2.png)`,
    );
  }
  const classes = options.classes === undefined ? found : [...options.classes];
  for (const c of classes) {
    if (!found.includes(c)) {
      throw new CrpError(
        'invalid-argument',
        `class '${c}' has no sub-folder in '${root}'; valid: ${found.join(', ')}`,
      );
    }
  }

  const files: { path: string; label: number }[] = [];
  for (const [label, c] of classes.entries()) {
    const dir = join(root, c);
    let names = (await readdir(dir))
      .filter((f) => extensions.has(extname(f).toLowerCase()) && !f.startsWith('.'))
      .sort(byName);
    if (limit !== undefined) names = names.slice(0, limit);
    if (names.length === 0) {
      throw new CrpError(
        'invalid-argument',
        `class folder '${dir}' has no images with the extensions ${[...extensions].join(', ')}`,
      );
    }
    for (const f of names) {
      const path = join(dir, f);
      if ((await stat(path)).isFile()) files.push({ path, label });
    }
  }

  const tick = progressTracker(files.length, options.onProgress, { unit: 'images' });
  let height = size?.[0];
  let width = size?.[1];
  let pixels: Float32Array | undefined;
  const labels = new Int32Array(files.length);
  for (const [i, { path, label }] of files.entries()) {
    let image: RasterImage;
    try {
      image = decodeImage(await readFile(path));
    } catch (err) {
      throw new CrpError(
        isCrpError(err) ? err.code : fileErrorCode('read', err),
        `'${path}' is not a readable image: ${describeError(err)}`,
        { cause: err, details: { path } },
      );
    }
    if (height === undefined || width === undefined) {
      height = image.height;
      width = image.width;
    }
    let values = toChannels(image, channels);
    if (image.height !== height || image.width !== width) {
      if (size === undefined) {
        throw new CrpError(
          'invalid-shape',
          `'${path}' is ${image.width}x${image.height} but '${files[0]!.path}' is ${width}x${height}; give the option size: [height, width] to resize them all`,
        );
      }
      const h = height;
      const w = width;
      values = tf.tidy(
        () =>
          tf.image
            .resizeBilinear(tf.tensor3d(values, [image.height, image.width, channels]), [h, w], false, true)
            .dataSync() as Float32Array,
      );
    }
    pixels ??= new Float32Array(files.length * height * width * channels);
    pixels.set(values, i * height * width * channels);
    labels[i] = label;
    tick(1);
  }
  const images = tf.tidy(() => {
    const raw = tf.tensor4d(pixels!, [files.length, height!, width!, channels]);
    return normalizePixels(raw, options);
  });
  return { images, labels: Array.from(labels), classes, sources: files.map((f) => f.path) };
}

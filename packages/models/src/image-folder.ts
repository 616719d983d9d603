import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import {
  CrpError,
  describeError,
  fileErrorCode,
  isCrpError,
  type ProgressCallback,
  progressTracker,
} from '@crp/common';
import type { RasterImage } from '@crp/vis';
import { readImage } from '@crp/vis/node';
import type * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from './dataset.js';
import {
  checkPreprocessOptions,
  type PreprocessOptions,
  preprocess,
  preprocessOptionsOf,
} from './preprocess.js';

/** Which files of an image folder are read (see {@link listImageFolder}). */
export interface ImageFolderListOptions {
  /** The classes to read, in this order (sub-folder names). Default: every sub-folder, sorted by name. */
  classes?: readonly string[];
  /** Read at most this many images per class (the first in name order). */
  limitPerClass?: number;
  /** File extensions to read; default `.png`, `.jpg`, `.jpeg` (any case). */
  extensions?: readonly string[];
  /** Accept class folders without images (their label then has no samples), as torchvision's `allow_empty`.
   * Default false: an empty class is an error. */
  allowEmpty?: boolean;
}

/** Options of {@link imageFolder}: which files, how they become model input, and progress. */
export interface ImageFolderOptions extends ImageFolderListOptions, PreprocessOptions {
  /** Called after each image with the images read so far (`unit: 'images'`). */
  onProgress?: ProgressCallback;
  /**
   * A file that is not a readable image (corrupt, truncated, another format): `'error'` (default) stops with a
   * CrpError naming it; `'skip'` leaves it out and lists it in the result's `skipped`. Grey, grey + alpha and
   * RGBA images are not unreadable: {@link preprocess} converts them.
   */
  unreadable?: 'error' | 'skip';
}

/** The files of an image folder in label order: `files[i]` has the label `labels[i]`, an index into `classes`. */
export interface ImageFolderListing {
  classes: string[];
  files: string[];
  labels: number[];
}

const DEFAULT_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Whether a directory entry is a file (following a symbolic link). */
async function isFile(dir: string, entry: Dirent): Promise<boolean> {
  if (entry.isFile()) return true;
  if (!entry.isSymbolicLink()) return false;
  return (await stat(join(dir, entry.name)).catch(() => undefined))?.isFile() === true;
}

/**
 * Lists a folder with one sub-folder per class (`root/cat/001.png`, `root/dog/a.jpg`, ...), as torchvision's
 * `ImageFolder`: classes are the sub-folders sorted by name (or as given; label = position), files are sorted by
 * name within a class, class after class. Names starting with '.' are skipped, as are files with other
 * extensions.
 *
 * @throws CrpError `not-found` / `read-failed` for a folder that cannot be read, `empty-data` for no class
 *   folders or (without `allowEmpty`) a class without images, `invalid-argument` for an unknown class.
 */
export async function listImageFolder(
  root: string,
  options: ImageFolderListOptions = {},
): Promise<ImageFolderListing> {
  const limit = options.limitPerClass;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) {
    throw new CrpError('invalid-argument', `limitPerClass must be a positive integer, got ${limit}`);
  }
  const extensions = new Set((options.extensions ?? DEFAULT_EXTENSIONS).map((e) => e.toLowerCase()));
  let entries: Dirent[];
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
      'empty-data',
      `'${root}' has no class sub-folders; valid: one sub-folder of images per class (root/cat/1.png, root/dog/2.png)`,
      { details: { path: root } },
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
  const files: string[] = [];
  const labels: number[] = [];
  for (const [label, c] of classes.entries()) {
    const dir = join(root, c);
    const inClass: string[] = [];
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.') || !extensions.has(extname(e.name).toLowerCase())) continue;
      if (await isFile(dir, e)) inClass.push(e.name);
    }
    inClass.sort(byName);
    const kept = limit === undefined ? inClass : inClass.slice(0, limit);
    if (kept.length === 0 && options.allowEmpty !== true) {
      throw new CrpError(
        'empty-data',
        `class folder '${dir}' has no images with the extensions ${[...extensions].join(', ')} (give allowEmpty: true to accept an empty class)`,
        { details: { path: dir } },
      );
    }
    for (const f of kept) {
      files.push(join(dir, f));
      labels.push(label);
    }
  }
  return { classes, files, labels };
}

/**
 * Reads image files (PNG or JPEG, recognised by their bytes) and turns them into one batch of model input with
 * {@link preprocess}. Without `inputSize` they must all have the same size.
 *
 * @returns a new tensor [N, H, W, C] that the caller owns
 * @throws CrpError `not-found` / `read-failed` for a file that cannot be read, `corrupt-file` /
 *   `unsupported-format` for one that is not a readable image, `invalid-shape` for different sizes without
 *   `inputSize`.
 */
export async function readImages(
  paths: readonly string[],
  options: PreprocessOptions & { onProgress?: ProgressCallback } = {},
): Promise<tf.Tensor4D> {
  const { images } = await readImageFiles(paths, options, false);
  return images;
}

/** A file that was not read, and why. */
export interface SkippedImage {
  path: string;
  reason: string;
}

async function readImageFiles(
  paths: readonly string[],
  options: PreprocessOptions & { onProgress?: ProgressCallback },
  skipUnreadable: boolean,
): Promise<{ images: tf.Tensor4D; read: number[]; skipped: SkippedImage[] }> {
  checkPreprocessOptions(options);
  const tick = progressTracker(paths.length, options.onProgress, { unit: 'images' });
  const rasters: RasterImage[] = [];
  const read: number[] = [];
  const skipped: SkippedImage[] = [];
  for (const [i, path] of paths.entries()) {
    try {
      rasters.push(await readImage(path));
      read.push(i);
    } catch (err) {
      const error = new CrpError(
        isCrpError(err) ? err.code : fileErrorCode('read', err),
        `'${path}' is not a readable image: ${describeError(err)}`,
        { cause: err, details: { path } },
      );
      if (!skipUnreadable) throw error;
      skipped.push({ path, reason: describeError(err) });
    }
    tick(1);
  }
  if (rasters.length === 0) {
    throw new CrpError(
      'empty-data',
      `none of the ${paths.length} image files could be read${skipped.length > 0 ? ` (first: ${skipped[0]!.path}: ${skipped[0]!.reason})` : ''}`,
    );
  }
  if (options.inputSize === undefined) {
    const [first] = rasters;
    const other = rasters.findIndex((r) => r.width !== first!.width || r.height !== first!.height);
    if (other >= 0) {
      const r = rasters[other]!;
      throw new CrpError(
        'invalid-shape',
        `'${paths[read[other]!]}' is ${r.width}x${r.height} but '${paths[read[0]!]}' is ${first!.width}x${first!.height}; give the option inputSize: [height, width] to resize them all`,
      );
    }
  }
  return { images: preprocess(rasters, options), read, skipped };
}

/**
 * Reads a folder with one sub-folder per class (`root/cat/001.png`, `root/dog/a.jpg`, ...) into a labelled data
 * set: files as {@link listImageFolder} orders them, pixels as {@link preprocess} defines them (alpha over
 * white, grey repeated to RGB, resized to `inputSize` only where needed, scaled to [0, 1], then `(x - mean) /
 * std`). PNG and JPEG are decoded with `@crp/vis`.
 *
 * ```ts
 * const data = await imageFolder('patches/', { inputSize: [224, 224], ...IMAGENET });
 * ```
 *
 * @returns tensors that the caller owns (see `disposeDataset`); `sources` lists the files read, `skipped` the
 *   files left out (with `unreadable: 'skip'`)
 * @throws CrpError as {@link listImageFolder} and {@link readImages}; `empty-data` when no file could be read.
 */
export async function imageFolder(
  root: string,
  options: ImageFolderOptions = {},
): Promise<Dataset & { skipped: SkippedImage[] }> {
  const preprocessing = preprocessOptionsOf(options);
  checkPreprocessOptions(preprocessing);
  const { classes, files, labels } = await listImageFolder(root, options);
  const { images, read, skipped } = await readImageFiles(
    files,
    { ...preprocessing, ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }) },
    options.unreadable === 'skip',
  );
  return {
    images,
    labels: read.map((i) => labels[i]!),
    classes,
    sources: read.map((i) => files[i]!),
    skipped,
  };
}

import { existsSync } from 'node:fs';
import { type Dataset, disposeDataset, splitDataset } from '@crp/models';
import { imageFolder, mnist } from '@crp/models/node';
import { UsageError } from './usage-error.js';

/** How `--data` is read. */
export interface DataOptions {
  /** [height, width, channels] the model takes; width must equal height for `mnist`. */
  inputShape: readonly (number | null)[];
  /** mnist: images in the first part; image folder: at most this many images per class. */
  samples?: number | undefined;
  /** Images held out as a second part (mnist: a count; image folder: a count or a share in (0, 1)). */
  holdOut?: number | undefined;
  /** Seed of the mnist split / the folder split. */
  seed?: number | undefined;
  /** Per-channel normalisation of an image folder after scaling to [0, 1]. */
  mean?: readonly number[];
  std?: readonly number[];
}

/**
 * Reads `--data`: `mnist` (the digits bundled with @crp/models) or an image folder (one sub-folder per class),
 * resized to the model's input, as @crp/models data sets. The caller disposes them ({@link disposeData}).
 */
export async function loadData(
  spec: string,
  options: DataOptions,
): Promise<{ data: Dataset; holdOut: Dataset | undefined }> {
  const [h, w, c] = options.inputShape;
  const channels = c === 1 ? 1 : 3;
  if (spec === 'mnist') {
    const size = h ?? w ?? 28;
    if (w !== null && w !== undefined && w !== size) {
      throw new UsageError(`--data mnist gives square images, but the model takes ${h}x${w}`);
    }
    const { train, validation } = mnist({
      train: options.samples ?? 500,
      validation: options.holdOut ?? 0,
      seed: options.seed ?? 0,
      inputSize: [size, size],
      channels,
    });
    return { data: train, holdOut: validation };
  }
  if (!existsSync(spec)) {
    throw new UsageError(
      `--data: no such folder '${spec}' (give 'mnist' or a folder with one sub-folder per class)`,
    );
  }
  const all = await imageFolder(spec, {
    channels,
    ...(h !== null && h !== undefined && w !== null && w !== undefined
      ? { inputSize: [h, w] as [number, number] }
      : {}),
    ...(options.mean === undefined ? {} : { mean: options.mean, std: options.std ?? [1] }),
    ...(options.samples === undefined ? {} : { limitPerClass: options.samples }),
  });
  if (options.holdOut === undefined || options.holdOut === 0) return { data: all, holdOut: undefined };
  try {
    const { train, validation } = splitDataset(all, { validation: options.holdOut, seed: options.seed ?? 0 });
    return { data: train, holdOut: validation };
  } finally {
    disposeDataset(all);
  }
}

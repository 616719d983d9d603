import type { PreprocessOptions } from '@crp/models';
import { type ImageFolderListOptions, listImageFolder, readImages } from '@crp/models/node';
import { indexedDataset, type LabelledDataset, type Loader, type SubsetOptions } from './dataset.js';

/**
 * Options of {@link fromImageFolder}: which files (as `imageFolder` of `@crp/models/node` lists them), how they
 * become model input (`preprocess` of `@crp/models`: `inputSize`, `channels`, `mean`, `std`), and the batch size.
 */
export interface FromImageFolderOptions extends ImageFolderListOptions, PreprocessOptions {
  /** samples per batch (default 16) */
  batchSize?: number;
}

/** A data set read from an image folder: its class names and files, in label order. */
export interface ImageFolderDataset extends LabelledDataset {
  /** class names (sub-folder names); label i is classes[i] */
  readonly classes: readonly string[];
  /** file of each data-set index */
  readonly files: readonly string[];
  subset(options: SubsetOptions): ImageFolderDataset;
  withBatchSize(batchSize: number): ImageFolderDataset;
}

/**
 * A data set from a folder with one sub-folder per class (as torchvision's ImageFolder): the files that
 * `listImageFolder` of `@crp/models/node` lists (classes sorted by name, label = rank; files sorted by name within
 * a class), loaded batch by batch on demand, each batch made by `preprocess` of `@crp/models` (alpha over white,
 * grey repeated to RGB, resized to `inputSize` only where needed, scaled to [0, 1], then `(x - mean) / std`), so
 * the same file gives the same tensor as `imageFolder` and the `crp` command.
 */
export async function fromImageFolder(
  root: string,
  options: FromImageFolderOptions = {},
): Promise<ImageFolderDataset> {
  const inputSize = options.inputSize;
  const preprocessing: PreprocessOptions = {
    ...(inputSize === undefined ? {} : { inputSize }),
    ...(options.channels === undefined ? {} : { channels: options.channels }),
    ...(options.mean === undefined ? {} : { mean: options.mean }),
    ...(options.std === undefined ? {} : { std: options.std }),
  };
  const { classes, files, labels } = await listImageFolder(root, options);
  const load: Loader = (positions) =>
    readImages(
      positions.map((p) => files[p]!),
      preprocessing,
    );
  const base = indexedDataset(
    load,
    files.map((_, i) => i),
    labels,
    options.batchSize ?? 16,
  );
  const wrap = (d: LabelledDataset): ImageFolderDataset =>
    Object.assign(Object.create(d) as LabelledDataset, {
      classes,
      files,
      subset: (o: SubsetOptions) => wrap(d.subset(o)),
      withBatchSize: (b: number) => wrap(d.withBatchSize(b)),
    }) as ImageFolderDataset;
  return wrap(base);
}

import { CrpError } from '@crp/common';
import type { Dataset } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';

/** A batch of labelled images. `images` is NHWC; `labels[i]` is the class of row i. `indices[i]` is the
 * row's position in the whole data set (defaults to a running count). A `Dataset` of `@crp/models`
 * (`{ images, labels }`) is one. */
export interface LabelledBatch {
  images: tf.Tensor;
  labels: readonly number[];
  indices?: readonly number[];
  /** The batch was made for this consumer, who disposes `images` after use (batches of a
   * {@link LabelledDataset} are). Without it the images stay the producer's. */
  transient?: boolean;
}

/** Where samples come from: one batch, any (async) iterable of batches in a deterministic order, or a
 * {@link LabelledDataset} (random access, known size, resumable). */
export type LabelledSource = LabelledBatch | Iterable<LabelledBatch> | AsyncIterable<LabelledBatch>;

/** Which samples to keep. All given criteria must hold. */
export interface SubsetOptions {
  /** keep samples with these labels */
  classes?: readonly number[];
  /** keep samples whose data-set index lies in one of these half-open ranges [start, end) */
  ranges?: readonly (readonly [number, number])[];
  /** keep samples with these data-set indices */
  indices?: readonly number[];
}

/**
 * A data set with random access: its size and labels are known before any image is loaded, batches are
 * loaded on demand (`slice`), and iterating yields `batchSize` samples at a time in a fixed order. Batches
 * are transient: the consumer disposes their images. Long runs (`runAtlasJob` of `@crp/attribution/node`) resume through `slice`.
 */
export interface LabelledDataset extends AsyncIterable<LabelledBatch> {
  /** samples (after subsetting) */
  readonly size: number;
  /** label of each sample, in order */
  readonly labels: readonly number[];
  /** data-set index of each sample, in order (positions in the unsubsetted set) */
  readonly indices: readonly number[];
  /** samples per iterated batch */
  readonly batchSize: number;
  /** Loads samples [start, start + count) of this data set as one transient batch. */
  slice(start: number, count: number): Promise<LabelledBatch>;
  /** A view with only the samples that meet `options` (data-set indices are kept). */
  subset(options: SubsetOptions): LabelledDataset;
  /** The same samples iterated in batches of `batchSize`. */
  withBatchSize(batchSize: number): LabelledDataset;
}

export function isLabelledDataset(source: unknown): source is LabelledDataset {
  return (
    typeof source === 'object' &&
    source !== null &&
    typeof (source as LabelledDataset).slice === 'function' &&
    typeof (source as LabelledDataset).size === 'number'
  );
}

function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new CrpError('invalid-argument', `${name} must be a positive integer, got ${v}`);
  }
}

function keepFilter(options: SubsetOptions): (index: number, label: number) => boolean {
  const classes = options.classes === undefined ? undefined : new Set(options.classes);
  const indices = options.indices === undefined ? undefined : new Set(options.indices);
  const ranges = options.ranges;
  for (const r of ranges ?? []) {
    if (!Array.isArray(r) || r.length !== 2 || !(r[0] <= r[1])) {
      throw new CrpError(
        'invalid-argument',
        `subset range ${JSON.stringify(r)} is invalid; give [start, end) with start <= end`,
      );
    }
  }
  return (index, label) =>
    (classes === undefined || classes.has(label)) &&
    (indices === undefined || indices.has(index)) &&
    (ranges === undefined || ranges.some(([a, b]) => index >= a && index < b));
}

/** Loads the images of some data-set positions as one NHWC float32 tensor (caller owns it). */
/** Loads the images of the samples at `positions` as one tensor [n, H, W, C] (the caller owns it). */
export type Loader = (positions: readonly number[]) => Promise<tf.Tensor>;

class IndexedDataset implements LabelledDataset {
  constructor(
    private readonly load: Loader,
    /** positions in the loader's numbering, one per sample of this view */
    private readonly positions: readonly number[],
    private readonly allLabels: readonly number[],
    readonly batchSize: number,
  ) {
    checkPositiveInt('batchSize', batchSize);
  }

  get size(): number {
    return this.positions.length;
  }

  get labels(): readonly number[] {
    return this.positions.map((p) => this.allLabels[p]!);
  }

  get indices(): readonly number[] {
    return this.positions;
  }

  async slice(start: number, count: number): Promise<LabelledBatch> {
    if (
      !Number.isInteger(start) ||
      !Number.isInteger(count) ||
      start < 0 ||
      count < 1 ||
      start + count > this.size
    ) {
      throw new CrpError(
        'invalid-argument',
        `cannot slice samples [${start}, ${start + count}) of a data set of ${this.size} samples`,
      );
    }
    const positions = this.positions.slice(start, start + count);
    return {
      images: await this.load(positions),
      labels: positions.map((p) => this.allLabels[p]!),
      indices: positions,
      transient: true,
    };
  }

  subset(options: SubsetOptions): LabelledDataset {
    const keep = keepFilter(options);
    const kept = this.positions.filter((p) => keep(p, this.allLabels[p]!));
    return new IndexedDataset(this.load, kept, this.allLabels, this.batchSize);
  }

  withBatchSize(batchSize: number): LabelledDataset {
    return new IndexedDataset(this.load, this.positions, this.allLabels, batchSize);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<LabelledBatch> {
    for (let start = 0; start < this.size; start += this.batchSize) {
      yield await this.slice(start, Math.min(this.batchSize, this.size - start));
    }
  }
}

/** A {@link LabelledDataset} over a loader: `positions` in the loader's numbering, `labels` of every position. */
export function indexedDataset(
  load: Loader,
  positions: readonly number[],
  labels: readonly number[],
  batchSize: number,
): LabelledDataset {
  return new IndexedDataset(load, positions, labels, batchSize);
}

export interface TensorDatasetOptions {
  /** samples per batch (default 16) */
  batchSize?: number;
}

/**
 * A data set whose images are loaded on demand, batch by batch: `load(positions)` returns the images of those
 * samples ([n, H, W, C], the caller's to dispose) and `labels[i]` is sample i's label. With the image-folder
 * functions of `@crp/models/node` this is an image folder read lazily (the folder is listed once, files are read
 * per batch):
 *
 * ```ts
 * const { files, labels } = await listImageFolder('patches/');
 * const data = fromLoader((p) => readImages(p.map((i) => files[i]!), { inputSize: [224, 224] }), labels);
 * ```
 */
export function fromLoader(
  load: Loader,
  labels: readonly number[],
  options: TensorDatasetOptions = {},
): LabelledDataset {
  return indexedDataset(
    load,
    labels.map((_, i) => i),
    labels,
    options.batchSize ?? 16,
  );
}

/**
 * A data set over images already in memory: a `Dataset` of `@crp/models`, or `images` [N, H, W, C] and one
 * label per row. The tensor stays the caller's (batches are copies that the consumer disposes).
 */
export function fromTensors(data: Dataset, options?: TensorDatasetOptions): LabelledDataset;
export function fromTensors(
  images: tf.Tensor,
  labels: readonly number[],
  options?: TensorDatasetOptions,
): LabelledDataset;
export function fromTensors(
  first: tf.Tensor | Dataset,
  second?: readonly number[] | TensorDatasetOptions,
  third: TensorDatasetOptions = {},
): LabelledDataset {
  const inMemory = first instanceof tf.Tensor ? undefined : first;
  const images = inMemory?.images ?? (first as tf.Tensor);
  const labels = inMemory?.labels ?? (second as readonly number[]);
  const options = (inMemory === undefined ? third : (second as TensorDatasetOptions | undefined)) ?? {};
  const n = images.shape[0]!;
  if (images.rank < 2) {
    throw new CrpError(
      'invalid-shape',
      `images must be [N, ...] with a batch axis, got [${images.shape.join(', ')}]`,
    );
  }
  if (labels.length !== n) {
    throw new CrpError('invalid-argument', `images has ${n} rows but ${labels.length} labels were given`);
  }
  labels.forEach((y, i) => {
    if (!Number.isInteger(y) || y < 0) {
      throw new CrpError('invalid-argument', `label ${i} is ${y}; labels must be non-negative integers`);
    }
  });
  const load: Loader = async (positions) =>
    tf.tidy(() => tf.gather(images, tf.tensor1d(positions as number[], 'int32')));
  return new IndexedDataset(
    load,
    Array.from({ length: n }, (_, i) => i),
    [...labels],
    options.batchSize ?? 16,
  );
}

/** Any user iterator of batches as a source (a typed identity, for symmetry with the other sources). */
export function fromIterator(
  batches: Iterable<LabelledBatch> | AsyncIterable<LabelledBatch>,
): AsyncIterable<LabelledBatch> {
  return {
    async *[Symbol.asyncIterator]() {
      yield* batches;
    },
  };
}

/** The samples of `source` that meet `options`; data-set indices are kept. A {@link LabelledDataset} is
 * subset without loading the dropped images. */
export function subset(source: LabelledSource | LabelledDataset, options: SubsetOptions): LabelledSource {
  if (isLabelledDataset(source)) return source.subset(options);
  const keep = keepFilter(options);
  return {
    async *[Symbol.asyncIterator]() {
      let next = 0;
      for await (const batch of iterate(source)) {
        const n = batch.labels.length;
        const indices = batch.indices ?? Array.from({ length: n }, (_, i) => next + i);
        next += n;
        const rows = indices.map((_, i) => i).filter((i) => keep(indices[i]!, batch.labels[i]!));
        if (rows.length === n) {
          yield { ...batch, indices };
          continue;
        }
        if (rows.length > 0) {
          yield {
            images: tf.tidy(() => tf.gather(batch.images, tf.tensor1d(rows, 'int32'))),
            labels: rows.map((i) => batch.labels[i]!),
            indices: rows.map((i) => indices[i]!),
            transient: true,
          };
        }
        if (batch.transient) batch.images.dispose();
      }
    },
  };
}

/** Samples in a source when known without iterating it. */
export function sizeOf(source: LabelledSource | LabelledDataset): number | undefined {
  if (isLabelledDataset(source)) return source.size;
  if ('images' in (source as object)) return (source as LabelledBatch).labels.length;
  if (Array.isArray(source)) return (source as LabelledBatch[]).reduce((s, b) => s + b.labels.length, 0);
  return undefined;
}

/** The source's batches as an async iterable. */
function iterate(source: LabelledSource): AsyncIterable<LabelledBatch> {
  if ('images' in (source as object)) {
    const one = source as LabelledBatch;
    return {
      async *[Symbol.asyncIterator]() {
        yield one;
      },
    };
  }
  return source as AsyncIterable<LabelledBatch>;
}

/** A batch handed out by `batchesOf` (of the internal entry point): with indices, and `owned` when the consumer must dispose it. */
export type OwnedBatch = LabelledBatch & { indices: readonly number[]; owned: boolean };

/** Iterates a source as batches of at most `batchSize` rows (a bigger batch is split). Batches marked
 * `owned` are the consumer's to dispose; a transient batch that was split is disposed here. */
export async function* batchesOf(
  source: LabelledSource,
  batchSize: number,
  slice: (images: tf.Tensor, start: number, size: number) => tf.Tensor = (images, start, size) =>
    tf.slice(images, start, size),
): AsyncGenerator<OwnedBatch> {
  checkPositiveInt('batchSize', batchSize);
  let next = 0;
  for await (const batch of iterate(source)) {
    const n = batch.images.shape[0]!;
    if (batch.labels.length !== n) {
      if (batch.transient) batch.images.dispose();
      throw new CrpError('invalid-argument', `a batch has ${n} images but ${batch.labels.length} labels`);
    }
    const indices = batch.indices ?? Array.from({ length: n }, (_, i) => next + i);
    next += n;
    if (n <= batchSize) {
      yield { images: batch.images, labels: batch.labels, indices, owned: batch.transient === true };
      continue;
    }
    try {
      for (let start = 0; start < n; start += batchSize) {
        const size = Math.min(batchSize, n - start);
        yield {
          images: slice(batch.images, start, size),
          labels: batch.labels.slice(start, start + size),
          indices: indices.slice(start, start + size),
          owned: true,
        };
      }
    } finally {
      if (batch.transient) batch.images.dispose();
    }
  }
}

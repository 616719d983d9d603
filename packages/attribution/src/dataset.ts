import type * as tf from '@tensorflow/tfjs-core';

/** A batch of labelled images. `images` is NHWC; `labels[i]` is the class of row i. `indices[i]` is the
 * row's position in the whole data set (defaults to a running count). */
export interface LabelledBatch {
  images: tf.Tensor;
  labels: readonly number[];
  indices?: readonly number[];
}

/** Where samples come from: one batch, or any (async) iterable of batches in a deterministic order. The
 * consumer disposes nothing it did not create: batches from an iterable are disposed by the consumer after
 * use only when `ownsBatches` is set on the source. */
export type LabelledSource = LabelledBatch | Iterable<LabelledBatch> | AsyncIterable<LabelledBatch>;

/** Iterates a source as batches of at most `batchSize` rows (a single big batch is split). */
export async function* batchesOf(
  source: LabelledSource,
  batchSize: number,
  slice: (images: tf.Tensor, start: number, size: number) => tf.Tensor,
): AsyncGenerator<LabelledBatch & { indices: readonly number[]; owned: boolean }> {
  let next = 0;
  const emit = function* (batch: LabelledBatch) {
    const n = batch.images.shape[0]!;
    if (batch.labels.length !== n) {
      throw new Error(`a batch has ${n} images but ${batch.labels.length} labels`);
    }
    const indices = batch.indices ?? Array.from({ length: n }, (_, i) => next + i);
    next += n;
    if (n <= batchSize) {
      yield { images: batch.images, labels: batch.labels, indices, owned: false };
      return;
    }
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      yield {
        images: slice(batch.images, start, size),
        labels: batch.labels.slice(start, start + size),
        indices: indices.slice(start, start + size),
        owned: true,
      };
    }
  };
  if ('images' in (source as object)) {
    yield* emit(source as LabelledBatch);
    return;
  }
  for await (const batch of source as AsyncIterable<LabelledBatch>) yield* emit(batch);
}

/** Reports how many of the texts have been embedded. */
export type EmbedProgress = (done: number, total: number) => void;

/**
 * Turns texts into vectors. Implementations: {@link UseLiteEmbedding} (offline default),
 * {@link TransformersEmbedding} (local ONNX model folder), {@link OpenAICompatibleEmbedding},
 * {@link LlamaIndexEmbedding} (any llamaindex `BaseEmbedding`), {@link HashEmbedding} (lexical, for tests).
 */
export interface EmbeddingProvider {
  /** Identifies model and settings; an index remembers it and re-embeds everything when it changes. */
  readonly id: string;
  /** One unit-length vector per text, in order. */
  embed(texts: readonly string[], onProgress?: EmbedProgress): Promise<Float32Array[]>;
  /** Frees models or sessions. */
  dispose?(): Promise<void> | void;
}

/** Scales a vector to unit length in place (a zero vector stays zero) and returns it. */
export function normalizeVector(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.sqrt(s);
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] = v[i]! / n;
  return v;
}

/** Dot product of two vectors of the same length (cosine similarity for unit vectors). */
export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) s += a[i]! * b[i]!;
  return s;
}

/** Runs `fn` on consecutive batches of `items` and concatenates the results, reporting progress. */
export async function inBatches<T, R>(
  items: readonly T[],
  size: number,
  fn: (batch: T[]) => Promise<R[]>,
  onProgress?: EmbedProgress,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) {
    out.push(...(await fn(items.slice(i, i + size))));
    onProgress?.(Math.min(items.length, i + size), items.length);
  }
  return out;
}

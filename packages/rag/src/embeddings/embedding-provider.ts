import { type ProgressCallback, progressTracker } from '@crp/common';

/**
 * Turns texts into vectors. Implementations: `HashEmbedding` (lexical, any platform), and in
 * `@crp/rag/node` `UseLiteEmbedding` (offline default), `TransformersEmbedding` (a local or hub
 * transformers.js model such as paraphrase-multilingual-MiniLM-L12-v2), `OpenAICompatibleEmbedding`,
 * `LlamaIndexEmbedding` (any llamaindex `BaseEmbedding`).
 */
export interface EmbeddingProvider {
  /** Identifies model and settings; an index remembers it and re-embeds everything when it changes. */
  readonly id: string;
  /**
   * True when texts in different languages that mean the same get similar vectors (a multilingual model).
   * Otherwise similarities between an English question and German text are ignored where they would mislead.
   */
  readonly multilingual?: boolean;
  /** One unit-length vector per text, in order. Reports progress in texts (`unit: 'texts'`). */
  embed(texts: readonly string[], onProgress?: ProgressCallback): Promise<Float32Array[]>;
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

/** Runs `fn` on consecutive batches of `items` and concatenates the results, reporting progress with an ETA. */
export async function inBatches<T, R>(
  items: readonly T[],
  size: number,
  fn: (batch: T[]) => Promise<R[]>,
  onProgress?: ProgressCallback,
): Promise<R[]> {
  const out: R[] = [];
  const tick = progressTracker(items.length, onProgress, { unit: 'texts' });
  for (let i = 0; i < items.length; i += size) {
    const batch = items.slice(i, i + size);
    out.push(...(await fn(batch)));
    tick(batch.length);
  }
  return out;
}

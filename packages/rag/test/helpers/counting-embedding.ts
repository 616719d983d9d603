import type { ProgressCallback } from '@crp/common';
import { type EmbeddingProvider, HashEmbedding } from '../../src/index.js';

/** HashEmbedding that counts the texts it embedded. */
export class CountingEmbedding implements EmbeddingProvider {
  readonly id: string;
  readonly #inner: HashEmbedding;
  count = 0;
  constructor(id = 'hash-256') {
    this.#inner = new HashEmbedding({ dimensions: 256 });
    this.id = id;
  }
  async embed(texts: readonly string[], onProgress?: ProgressCallback): Promise<Float32Array[]> {
    this.count += texts.length;
    return this.#inner.embed(texts, onProgress);
  }
}

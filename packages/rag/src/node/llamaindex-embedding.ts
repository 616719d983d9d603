import { CrpError, describeError, type ProgressCallback } from '@crp/common';
import { BaseEmbedding } from '@llamaindex/core/embeddings';
import { type EmbeddingProvider, inBatches, normalizeVector } from '../embeddings/embedding-provider.js';

/** Uses any llamaindex `BaseEmbedding` (OpenAI, Ollama, ...) as an {@link EmbeddingProvider}. */
export class LlamaIndexEmbedding implements EmbeddingProvider {
  readonly id: string;
  readonly #model: BaseEmbedding;
  readonly #batchSize: number;
  constructor(model: BaseEmbedding, options: { id: string; batchSize?: number }) {
    this.#model = model;
    this.id = options.id;
    this.#batchSize = options.batchSize ?? 32;
  }
  async embed(texts: readonly string[], onProgress?: ProgressCallback): Promise<Float32Array[]> {
    try {
      return await inBatches(
        texts,
        this.#batchSize,
        async (batch) =>
          (await this.#model.getTextEmbeddings(batch)).map((v) => normalizeVector(Float32Array.from(v))),
        onProgress,
      );
    } catch (error) {
      throw new CrpError(
        'embedding-failed',
        `Embedding provider ${this.id} failed: ${describeError(error)}`,
        {
          cause: error,
        },
      );
    }
  }
}

class ProviderEmbedding extends BaseEmbedding {
  readonly #provider: EmbeddingProvider;
  constructor(provider: EmbeddingProvider) {
    super();
    this.#provider = provider;
  }
  async getTextEmbedding(text: string): Promise<number[]> {
    const [v] = await this.#provider.embed([text]);
    return Array.from(v ?? []);
  }
  override getTextEmbeddings = async (texts: string[]): Promise<number[][]> =>
    (await this.#provider.embed(texts)).map((v) => Array.from(v));
}

/** Wraps an {@link EmbeddingProvider} as a llamaindex `BaseEmbedding` (for `Settings.embedModel`, vector stores). */
export function toLlamaIndexEmbedding(provider: EmbeddingProvider): BaseEmbedding {
  return new ProviderEmbedding(provider);
}

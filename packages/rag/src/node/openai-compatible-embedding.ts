import type { ProgressCallback } from '@crp/common';
import { CrpError } from '@crp/common';
import type { EmbeddingProvider } from '../embeddings/embedding-provider.js';
import type { LlamaIndexEmbedding } from './llamaindex-embedding.js';

/** Options of {@link OpenAICompatibleEmbedding}. */
export interface OpenAICompatibleEmbeddingOptions {
  /** Base URL of the API, e.g. `https://api.openai.com/v1` or a local server's `http://127.0.0.1:8080/v1`. */
  readonly baseURL: string;
  /** Model name the server knows. */
  readonly model: string;
  /** Name of the environment variable holding the API key; default `OPENAI_API_KEY`. Keys are never taken from arguments. */
  readonly apiKeyEnv?: string;
  /** Requested vector size, for models that can shorten their output. */
  readonly dimensions?: number;
  /** Texts per request; default 32. */
  readonly batchSize?: number;
  /** Request timeout in ms; default 60,000. */
  readonly timeoutMs?: number;
  /** Retries on failure; default 2. */
  readonly maxRetries?: number;
}

/**
 * Embeddings from any server that speaks the OpenAI `/embeddings` API, through llamaindex's `OpenAIEmbedding`.
 * The key is read from the environment variable named by `apiKeyEnv` and is never logged or stored.
 */
export class OpenAICompatibleEmbedding implements EmbeddingProvider {
  readonly id: string;
  readonly #inner: () => Promise<LlamaIndexEmbedding>;
  #loaded: Promise<LlamaIndexEmbedding> | undefined;
  constructor(options: OpenAICompatibleEmbeddingOptions) {
    if (!options?.baseURL || !/^https?:\/\//.test(options.baseURL)) {
      throw new CrpError(
        'provider-config',
        `baseURL must be an http(s) URL such as http://127.0.0.1:8080/v1; got "${options?.baseURL}".`,
      );
    }
    if (!options.model)
      throw new CrpError('provider-config', 'model must name the embedding model the server serves.');
    const envName = options.apiKeyEnv ?? 'OPENAI_API_KEY';
    // Local servers often need no key; the client insists on one, so a placeholder is sent then.
    const apiKey = process.env[envName] || 'no-key';
    this.id = `openai-compatible:${options.model}${options.dimensions ? `:${options.dimensions}` : ''}@${options.baseURL}`;
    // the llamaindex client loads on first use (its import takes seconds)
    this.#inner = async () => {
      const [{ OpenAIEmbedding }, { LlamaIndexEmbedding }] = await Promise.all([
        import('@llamaindex/openai'),
        import('./llamaindex-embedding.js'),
      ]);
      const model = new OpenAIEmbedding({
        model: options.model,
        baseURL: options.baseURL,
        apiKey,
        maxRetries: options.maxRetries ?? 2,
        timeout: options.timeoutMs ?? 60_000,
        ...(options.dimensions !== undefined ? { dimensions: options.dimensions } : {}),
      });
      return new LlamaIndexEmbedding(model, { id: this.id, batchSize: options.batchSize ?? 32 });
    };
  }
  async embed(texts: readonly string[], onProgress?: ProgressCallback): Promise<Float32Array[]> {
    this.#loaded ??= this.#inner();
    return (await this.#loaded).embed(texts, onProgress);
  }
}

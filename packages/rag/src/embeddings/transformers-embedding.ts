import path from 'node:path';
import { describeError, RagError } from '../errors.js';
import {
  type EmbeddingProvider,
  type EmbedProgress,
  inBatches,
  normalizeVector,
} from './embedding-provider.js';

/** Options of {@link TransformersEmbedding}. */
export interface TransformersEmbeddingOptions {
  /**
   * A local model folder in the Hugging Face layout: `config.json`, `tokenizer.json`,
   * `tokenizer_config.json` and `onnx/model.onnx` (e.g. paraphrase-multilingual-MiniLM-L12-v2 exported to ONNX).
   */
  readonly modelDir: string;
  /** How token vectors become one vector; default `mean`. */
  readonly pooling?: 'mean' | 'cls';
  /** ONNX weights to use: `fp32` (`onnx/model.onnx`, default) or `q8` (`onnx/model_quantized.onnx`). */
  readonly dtype?: 'fp32' | 'q8';
  /** Texts per call; default 16. */
  readonly batchSize?: number;
}

type Extractor = (
  texts: string[],
  options: { pooling: 'mean' | 'cls'; normalize: boolean },
) => Promise<{ data: ArrayLike<number>; dims: number[] }>;

/**
 * Embeddings from a local transformers.js model folder (ONNX Runtime for Node). Remote model loading is
 * switched off: the folder must hold everything. Needs the optional dependency `@huggingface/transformers`.
 */
export class TransformersEmbedding implements EmbeddingProvider {
  readonly id: string;
  readonly #options: TransformersEmbeddingOptions;
  #extractor: Promise<{ run: Extractor; dispose: () => Promise<void> }> | undefined;

  constructor(options: TransformersEmbeddingOptions) {
    if (!options?.modelDir) {
      throw new RagError(
        'INVALID_ARGUMENT',
        'TransformersEmbedding needs modelDir: a local folder with config.json, tokenizer.json and onnx/model.onnx.',
      );
    }
    this.#options = options;
    this.id = `transformers:${path.basename(path.resolve(options.modelDir))}:${options.pooling ?? 'mean'}:${options.dtype ?? 'fp32'}`;
  }

  #load() {
    this.#extractor ??= (async () => {
      let mod: typeof import('@huggingface/transformers');
      try {
        mod = await import('@huggingface/transformers');
      } catch (error) {
        throw new RagError(
          'PROVIDER_CONFIG',
          'TransformersEmbedding needs the optional dependency @huggingface/transformers; install it next to @crp/rag.',
          { cause: error },
        );
      }
      const dir = path.resolve(this.#options.modelDir);
      mod.env.allowRemoteModels = false;
      mod.env.allowLocalModels = true;
      mod.env.localModelPath = `${path.dirname(dir)}${path.sep}`;
      try {
        const pipe = await mod.pipeline('feature-extraction', path.basename(dir), {
          dtype: this.#options.dtype ?? 'fp32',
          local_files_only: true,
        });
        return {
          run: pipe as unknown as Extractor,
          dispose: async () => {
            await pipe.dispose();
          },
        };
      } catch (error) {
        throw new RagError(
          'EMBEDDING_FAILED',
          `Could not load the transformers.js model in ${dir} (needs config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx): ${describeError(error)}`,
          { cause: error },
        );
      }
    })();
    return this.#extractor;
  }

  async embed(texts: readonly string[], onProgress?: EmbedProgress): Promise<Float32Array[]> {
    const { run } = await this.#load();
    const pooling = this.#options.pooling ?? 'mean';
    return inBatches(
      texts,
      this.#options.batchSize ?? 16,
      async (batch) => {
        const out = await run(batch, { pooling, normalize: true });
        const dim = out.dims[out.dims.length - 1] ?? 0;
        const data = Float32Array.from(out.data);
        return batch.map((_, i) => normalizeVector(data.slice(i * dim, (i + 1) * dim)));
      },
      onProgress,
    );
  }

  async dispose(): Promise<void> {
    const e = await this.#extractor?.catch(() => undefined);
    await e?.dispose();
    this.#extractor = undefined;
  }
}

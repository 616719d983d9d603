import path from 'node:path';
import { CrpError, describeError, type ProgressCallback } from '@crp/common';
import { type EmbeddingProvider, inBatches, normalizeVector } from '../embeddings/embedding-provider.js';

/** Options of {@link TransformersEmbedding}: a local model folder, or a model id to download (online). */
export interface TransformersEmbeddingOptions {
  /**
   * A local model folder in the Hugging Face layout: `config.json`, `tokenizer.json`,
   * `tokenizer_config.json` and `onnx/model.onnx` (e.g. paraphrase-multilingual-MiniLM-L12-v2 exported to
   * ONNX). Nothing is downloaded.
   */
  readonly modelDir?: string;
  /**
   * A model id on the Hugging Face hub, e.g. `Xenova/paraphrase-multilingual-MiniLM-L12-v2`: downloaded on
   * first use (needs network) into `cacheDir`, then read from there.
   */
  readonly model?: string;
  /** Where downloaded models are kept; default transformers.js' cache (`node_modules/@huggingface/transformers/.cache`). */
  readonly cacheDir?: string;
  /** Host to download from instead of the hub (a mirror), e.g. `http://127.0.0.1:8080/`. */
  readonly remoteHost?: string;
  /** How token vectors become one vector; default `mean`. */
  readonly pooling?: 'mean' | 'cls';
  /** ONNX weights to use: `fp32` (`onnx/model.onnx`, default) or `q8` (`onnx/model_quantized.onnx`). */
  readonly dtype?: 'fp32' | 'q8';
  /** Texts per call; default 16. */
  readonly batchSize?: number;
  /**
   * Whether the model maps texts of different languages that mean the same to close vectors; then answer
   * sentences in another language than the question are compared by meaning too. Default: true when the
   * model's name says so (multilingual, LaBSE, multilingual-e5, bge-m3).
   */
  readonly multilingual?: boolean;
}

type Extractor = (
  texts: string[],
  options: { pooling: 'mean' | 'cls'; normalize: boolean },
) => Promise<{ data: ArrayLike<number>; dims: number[] }>;

/**
 * Embeddings from a transformers.js model (ONNX Runtime for Node): bring your own multilingual model, e.g.
 * paraphrase-multilingual-MiniLM-L12-v2, from a local folder (`modelDir`, offline) or by hub id (`model`,
 * downloaded once when online). Needs the optional dependency `@huggingface/transformers`.
 */
export class TransformersEmbedding implements EmbeddingProvider {
  readonly id: string;
  readonly multilingual: boolean;
  readonly #options: TransformersEmbeddingOptions;
  #extractor: Promise<{ run: Extractor; dispose: () => Promise<void> }> | undefined;

  constructor(options: TransformersEmbeddingOptions) {
    if (!options || !options.modelDir === !options.model) {
      throw new CrpError(
        'invalid-argument',
        'TransformersEmbedding needs exactly one of modelDir (a local folder with config.json, tokenizer.json and onnx/model.onnx) or model (a hub id such as Xenova/paraphrase-multilingual-MiniLM-L12-v2).',
      );
    }
    this.#options = options;
    const name = options.modelDir ? path.basename(path.resolve(options.modelDir)) : options.model!;
    this.id = `transformers:${name}:${options.pooling ?? 'mean'}:${options.dtype ?? 'fp32'}`;
    this.multilingual = options.multilingual ?? /multilingual|labse|bge-m3/i.test(name);
  }

  #load() {
    this.#extractor ??= (async () => {
      let mod: typeof import('@huggingface/transformers');
      try {
        mod = await import('@huggingface/transformers');
      } catch (error) {
        throw new CrpError(
          'provider-config',
          'TransformersEmbedding needs the optional dependency @huggingface/transformers; install it next to @crp/rag.',
          { cause: error },
        );
      }
      const o = this.#options;
      let id: string;
      if (o.modelDir) {
        const dir = path.resolve(o.modelDir);
        mod.env.allowRemoteModels = false;
        mod.env.allowLocalModels = true;
        mod.env.localModelPath = `${path.dirname(dir)}${path.sep}`;
        id = path.basename(dir);
      } else {
        mod.env.allowRemoteModels = true;
        mod.env.allowLocalModels = false;
        if (o.remoteHost) mod.env.remoteHost = o.remoteHost.endsWith('/') ? o.remoteHost : `${o.remoteHost}/`;
        if (o.cacheDir) mod.env.cacheDir = path.resolve(o.cacheDir);
        id = o.model!;
      }
      try {
        const pipe = await mod.pipeline('feature-extraction', id, {
          dtype: o.dtype ?? 'fp32',
          local_files_only: Boolean(o.modelDir),
        });
        return {
          run: pipe as unknown as Extractor,
          dispose: async () => {
            await pipe.dispose();
          },
        };
      } catch (error) {
        throw new CrpError(
          o.modelDir ? 'embedding-failed' : 'unreachable',
          o.modelDir
            ? `Could not load the transformers.js model in ${path.resolve(o.modelDir)} (needs config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx): ${describeError(error)}`
            : `Could not download or load the model ${o.model} from ${o.remoteHost ?? 'the Hugging Face hub'} (offline? then use modelDir with a local copy): ${describeError(error)}`,
          { cause: error },
        );
      }
    })();
    this.#extractor.catch(() => {
      this.#extractor = undefined;
    });
    return this.#extractor;
  }

  async embed(texts: readonly string[], onProgress?: ProgressCallback): Promise<Float32Array[]> {
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

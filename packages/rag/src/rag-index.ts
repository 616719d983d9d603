import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { NodeRelationship, TextNode } from '@llamaindex/core/schema';
import { VectorStoreQueryMode } from '@llamaindex/core/vector-store';
import type { EmbeddingProvider } from './embeddings/embedding-provider.js';
import { UseLiteEmbedding } from './embeddings/use-lite-embedding.js';
import { describeError, RagError } from './errors.js';
import { type ChunkingOptions, chunkDocument, resolveChunking } from './ingest/chunker.js';
import { loadDocument } from './ingest/load-document.js';
import { scanFolder } from './ingest/scan-folder.js';
import { Bm25Index } from './retrieval/bm25.js';
import { DenseIndex } from './retrieval/dense-index.js';
import { fuseRankings, resolveHybrid } from './retrieval/hybrid-fusion.js';
import type { HybridOptions, SearchHit } from './retrieval/search-hit.js';
import type { ExternalVectorStore } from './store/external-vector-store.js';
import { type FileRecord, type IndexSnapshot, readIndexFile, writeIndexFile } from './store/index-file.js';
import { analyze } from './text/analyzer.js';
import { detectLanguage } from './text/language.js';
import type { Chunk, ProgressCallback } from './types.js';

/** Options of {@link RagIndex.open}. */
export interface RagIndexOptions {
  /** Folder that holds the index file (created when missing). */
  readonly dir: string;
  /** Embedding provider; default {@link UseLiteEmbedding} (offline). */
  readonly embedding?: EmbeddingProvider;
  readonly chunking?: ChunkingOptions;
  readonly hybrid?: HybridOptions;
  /** A llamaindex vector store kept in sync and used for the dense search (e.g. Chroma). */
  readonly vectorStore?: ExternalVectorStore;
}

/** A file that could not be indexed, and why. */
export interface SkippedFile {
  readonly file: string;
  readonly code: string;
  readonly message: string;
}

/** What an {@link RagIndex.update} did. */
export interface IndexReport {
  readonly added: readonly string[];
  readonly changed: readonly string[];
  readonly unchanged: readonly string[];
  readonly deleted: readonly string[];
  readonly skipped: readonly SkippedFile[];
  /** Chunks that were embedded in this update (0 when nothing changed). */
  readonly embeddedChunks: number;
  /** Chunks and pages in the index afterwards. */
  readonly chunkCount: number;
  readonly pageCount: number;
  /** Pages of the files that were (re)loaded. */
  readonly pagesLoaded: number;
  readonly seconds: number;
}

/** Options of a search. */
export interface SearchOptions {
  /** Number of hits; default 5. */
  readonly topK?: number;
  readonly hybrid?: HybridOptions;
}

/** Text a chunk is embedded and lexically indexed with: title and section give context. */
export function chunkContextText(chunk: Chunk): string {
  const m = chunk.metadata;
  return `${m.title}${m.section ? `\n${m.section}` : ''}\n${chunk.text}`;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * The searchable index: chunks, their vectors and a BM25 index, persisted atomically in one file.
 * `update` re-reads a folder incrementally: files whose content hash is unchanged are not embedded again.
 */
export class RagIndex {
  readonly dir: string;
  readonly embedding: EmbeddingProvider;
  readonly #chunking: Required<ChunkingOptions>;
  readonly #hybrid: HybridOptions;
  readonly #external: ExternalVectorStore | undefined;
  #snapshot: IndexSnapshot;
  #bm25!: Bm25Index;
  #dense!: DenseIndex;
  #terms: string[][] = [];
  #byId = new Map<string, number>();
  #version = 0;

  private constructor(options: RagIndexOptions, snapshot: IndexSnapshot) {
    this.dir = options.dir;
    this.embedding = options.embedding ?? new UseLiteEmbedding();
    this.#chunking = resolveChunking(options.chunking);
    this.#hybrid = resolveHybrid(options.hybrid);
    this.#external = options.vectorStore;
    this.#snapshot = snapshot;
    this.#rebuild();
  }

  /** Opens the index in `options.dir`, or an empty one when the folder holds none yet. */
  static async open(options: RagIndexOptions): Promise<RagIndex> {
    if (!options?.dir)
      throw new RagError(
        'INVALID_ARGUMENT',
        'RagIndex.open needs dir: the folder that holds (or will hold) the index.',
      );
    const snapshot = (await readIndexFile(options.dir)) ?? {
      embeddingId: options.embedding?.id ?? 'use-lite-512',
      dimensions: 0,
      chunking: resolveChunking(options.chunking),
      files: {},
      chunks: [],
      vectors: [],
      syncedStores: [],
      updatedAt: new Date(0).toISOString(),
    };
    return new RagIndex(options, snapshot);
  }

  #rebuild(): void {
    const s = this.#snapshot;
    this.#terms = s.chunks.map((c) => analyze(chunkContextText(c), c.metadata.language));
    this.#bm25 = new Bm25Index(this.#terms);
    this.#dense = new DenseIndex(s.vectors, s.dimensions);
    this.#byId = new Map(s.chunks.map((c, i) => [c.id, i]));
    this.#version++;
  }

  /** Increases with every change of the content (for caches). */
  get version(): number {
    return this.#version;
  }
  get chunks(): readonly Chunk[] {
    return this.#snapshot.chunks;
  }
  get vectors(): readonly Float32Array[] {
    return this.#snapshot.vectors;
  }
  get files(): Readonly<Record<string, FileRecord>> {
    return this.#snapshot.files;
  }
  get bm25(): Bm25Index {
    return this.#bm25;
  }
  get snapshot(): IndexSnapshot {
    return this.#snapshot;
  }
  /** Index terms of the chunk at a position (title, section and text, stemmed). */
  termsAt(index: number): readonly string[] {
    return this.#terms[index] ?? [];
  }
  /** Position of a chunk by id. */
  indexOf(id: string): number | undefined {
    return this.#byId.get(id);
  }
  /** Total pages of the indexed files. */
  get pageCount(): number {
    return Object.values(this.#snapshot.files).reduce((n, f) => n + f.pages, 0);
  }

  /**
   * Brings the index in line with the files under `sourceDir`: new and changed files are loaded, chunked
   * and embedded; unchanged ones (same SHA-256, same embedding and chunking) are kept as they are; files
   * that disappeared are removed. Unreadable or corrupt files are reported in `skipped` and left out.
   */
  async update(sourceDir: string, options: { onProgress?: ProgressCallback } = {}): Promise<IndexReport> {
    const t0 = performance.now();
    const onProgress = options.onProgress;
    const root = path.resolve(sourceDir);
    const files = await scanFolder(root);
    onProgress?.({ phase: 'scan', done: files.length, total: files.length });
    const old = this.#snapshot;
    const sameSettings =
      old.embeddingId === this.embedding.id &&
      old.chunking.chunkSize === this.#chunking.chunkSize &&
      old.chunking.chunkOverlap === this.#chunking.chunkOverlap;
    const oldChunks = new Map(old.chunks.map((c, i) => [c.id, i]));
    const added: string[] = [];
    const changed: string[] = [];
    const unchanged: string[] = [];
    const skipped: SkippedFile[] = [];
    const records: Record<string, FileRecord> = {};
    const perFile = new Map<string, { chunks: Chunk[]; vectors: (Float32Array | undefined)[] }>();
    let pagesLoaded = 0;
    for (const [i, file] of files.entries()) {
      onProgress?.({ phase: 'load', done: i, total: files.length, file });
      let bytes: Uint8Array;
      try {
        bytes = await readFile(path.join(root, file));
      } catch (error) {
        skipped.push({
          file,
          code: 'UNREADABLE',
          message: `${file} cannot be read: ${describeError(error)}`,
        });
        continue;
      }
      const hash = sha256(bytes);
      const prev = old.files[file];
      if (prev && prev.hash === hash && sameSettings) {
        records[file] = prev;
        perFile.set(file, {
          chunks: prev.chunkIds.map((id) => old.chunks[oldChunks.get(id)!]!),
          vectors: prev.chunkIds.map((id) => old.vectors[oldChunks.get(id)!]),
        });
        unchanged.push(file);
        continue;
      }
      try {
        const doc = await loadDocument(file, bytes);
        const chunks = chunkDocument(doc, this.#chunking);
        records[file] = {
          hash,
          title: doc.title,
          format: doc.format,
          language: doc.language,
          pages: doc.pages,
          bytes: bytes.byteLength,
          chunkIds: chunks.map((c) => c.id),
        };
        perFile.set(file, { chunks, vectors: chunks.map(() => undefined) });
        pagesLoaded += doc.pages;
        (prev ? changed : added).push(file);
      } catch (error) {
        const code = error instanceof RagError ? error.code : 'CORRUPT_FILE';
        skipped.push({ file, code, message: describeError(error) });
      }
    }
    onProgress?.({ phase: 'load', done: files.length, total: files.length });
    const deleted = Object.keys(old.files).filter((f) => !records[f]);

    const chunks: Chunk[] = [];
    const vectors: (Float32Array | undefined)[] = [];
    for (const file of Object.keys(records).sort()) {
      const e = perFile.get(file)!;
      chunks.push(...e.chunks);
      vectors.push(...e.vectors);
    }
    const todo = vectors.flatMap((v, i) => (v ? [] : [i]));
    if (todo.length > 0) {
      let embedded: Float32Array[];
      onProgress?.({ phase: 'embed', done: 0, total: todo.length });
      try {
        embedded = await this.embedding.embed(
          todo.map((i) => chunkContextText(chunks[i]!)),
          (done, total) => onProgress?.({ phase: 'embed', done, total }),
        );
      } catch (error) {
        if (error instanceof RagError) throw error;
        throw new RagError(
          'EMBEDDING_FAILED',
          `Embedding with ${this.embedding.id} failed: ${describeError(error)}`,
          { cause: error },
        );
      }
      onProgress?.({ phase: 'embed', done: todo.length, total: todo.length });
      todo.forEach((ci, k) => {
        vectors[ci] = embedded[k];
      });
    }
    const dimensions = vectors[0]?.length ?? old.dimensions;
    if (vectors.some((v) => !v || v.length !== dimensions)) {
      throw new RagError(
        'EMBEDDING_FAILED',
        `Embedding provider ${this.embedding.id} returned vectors of differing sizes; expected ${dimensions}.`,
      );
    }
    const touched = [...changed, ...deleted, ...skipped.map((s) => s.file).filter((f) => old.files[f])];
    const storeWasSynced = this.#external
      ? old.syncedStores.includes(this.#external.key) && sameSettings
      : true;
    const next: IndexSnapshot = {
      embeddingId: this.embedding.id,
      dimensions,
      chunking: this.#chunking,
      sourceDir: root,
      files: records,
      chunks,
      vectors: vectors as Float32Array[],
      syncedStores: [],
      updatedAt: new Date().toISOString(),
    };
    const nothingChanged = touched.length === 0 && added.length === 0 && sameSettings;
    if (this.#external) {
      await this.#syncExternal(
        next,
        storeWasSynced ? touched : Object.keys(old.files),
        storeWasSynced ? todo : chunks.map((_, i) => i),
      );
    }
    const synced = this.#external ? [this.#external.key] : [];
    const final = { ...next, syncedStores: synced };
    if (!nothingChanged || !storeWasSynced || old.sourceDir !== root) {
      onProgress?.({ phase: 'save', done: 0, total: 1 });
      await writeIndexFile(this.dir, final);
      onProgress?.({ phase: 'save', done: 1, total: 1 });
    }
    this.#snapshot = final;
    this.#rebuild();
    return {
      added,
      changed,
      unchanged,
      deleted,
      skipped,
      embeddedChunks: todo.length,
      chunkCount: chunks.length,
      pageCount: this.pageCount,
      pagesLoaded,
      seconds: (performance.now() - t0) / 1000,
    };
  }

  async #syncExternal(
    s: IndexSnapshot,
    removeFiles: readonly string[],
    addIndices: readonly number[],
  ): Promise<void> {
    const ext = this.#external!;
    try {
      for (const file of removeFiles) await ext.store.delete(file);
      const nodes = addIndices.map((i) => {
        const c = s.chunks[i]!;
        const metadata: Record<string, unknown> = { ...c.metadata };
        return new TextNode({
          id_: c.id,
          text: c.text,
          embedding: Array.from(s.vectors[i]!),
          metadata,
          relationships: { [NodeRelationship.SOURCE]: { nodeId: c.metadata.file, metadata: {} } },
        });
      });
      for (let i = 0; i < nodes.length; i += 500) await ext.store.add(nodes.slice(i, i + 500));
    } catch (error) {
      throw new RagError(
        'STORE_FAILED',
        `Syncing the vector store ${ext.key} failed: ${describeError(error)}`,
        { cause: error },
      );
    }
  }

  /** Embeds a question with the index's provider. */
  async embedQuery(question: string): Promise<Float32Array> {
    const [v] = await this.embedding.embed([question]);
    return v!;
  }

  #check(question: string): void {
    if (typeof question !== 'string' || !question.trim()) {
      throw new RagError('INVALID_ARGUMENT', 'The question is empty; ask a non-empty question.');
    }
    if (this.#snapshot.chunks.length === 0) {
      throw new RagError(
        'EMPTY_INDEX',
        `The index in ${this.dir} has no chunks; index a folder first (RagIndex.update or \`crp-rag index <dir>\`).`,
      );
    }
    if (this.#snapshot.embeddingId !== this.embedding.id) {
      throw new RagError(
        'EMBEDDING_MISMATCH',
        `The index was built with embedding "${this.#snapshot.embeddingId}" but "${this.embedding.id}" is in use; index again or open it with the same provider.`,
      );
    }
  }

  /** Hybrid search (dense + BM25) for a question. */
  async search(question: string, options: SearchOptions = {}): Promise<SearchHit[]> {
    this.#check(question);
    const query = await this.embedQuery(question);
    return this.searchWithVector(question, query, options);
  }

  /** Hybrid search with an already embedded question. */
  async searchWithVector(
    question: string,
    query: Float32Array,
    options: SearchOptions = {},
  ): Promise<SearchHit[]> {
    this.#check(question);
    const topK = options.topK ?? 5;
    if (!Number.isInteger(topK) || topK < 1)
      throw new RagError('INVALID_ARGUMENT', `topK must be a positive integer; got ${topK}.`);
    const hybrid = resolveHybrid({ ...this.#hybrid, ...options.hybrid });
    const pool = Math.max(hybrid.candidates, topK);
    const denseScores = this.#dense.scoreAll(query);
    let dense: { doc: number; score: number }[];
    if (this.#external) {
      const res = await this.#external.store.query({
        queryEmbedding: Array.from(query),
        similarityTopK: pool,
        mode: VectorStoreQueryMode.DEFAULT,
      });
      dense = res.ids.flatMap((id, i) => {
        const doc = this.#byId.get(id);
        return doc === undefined ? [] : [{ doc, score: res.similarities[i] ?? 0 }];
      });
    } else {
      dense = this.#dense.search(query, pool);
    }
    const terms = analyze(question, detectLanguage(question));
    const lexicalScores = this.#bm25.scoreAll(terms);
    const lexical = this.#bm25.search(terms, pool);
    const fused = fuseRankings(dense, lexical, hybrid).slice(0, topK);
    return fused.map((f) => ({
      chunk: this.#snapshot.chunks[f.doc]!,
      score: f.score,
      denseScore: denseScores[f.doc] ?? 0,
      lexicalScore: lexicalScores[f.doc] ?? 0,
      ...(f.denseRank !== undefined ? { denseRank: f.denseRank } : {}),
      ...(f.lexicalRank !== undefined ? { lexicalRank: f.lexicalRank } : {}),
    }));
  }
}

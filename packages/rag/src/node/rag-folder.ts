import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CrpError, describeError, isCrpError, type ProgressCallback, progressTracker } from '@crp/common';
import type { AnswerGenerator } from '../answer/llm-answer.js';
import type { EmbeddingProvider } from '../embeddings/embedding-provider.js';
import type { EmbeddingMapOptions } from '../explain/embedding-map.js';
import { EXTENSIONS } from '../ingest/document.js';
import { extensionOf, loadDocument } from '../ingest/load-document.js';
import { RagEngine as CoreRagEngine } from '../rag-engine.js';
import {
  RagIndex as CoreRagIndex,
  type RagIndexOptions as CoreRagIndexOptions,
  type IndexChange,
  type IndexReport,
  type SkippedFile,
  type SourceFile,
} from '../rag-index.js';
import type { ExternalVectorStore } from '../store/external-vector-store.js';
import type { FileOrigin, IndexSnapshot } from '../store/snapshot.js';
import { hyphenLexicon } from '../translate/hyphen-lexicon.js';
import type { IndexProgress } from '../types.js';
import { loadDefaultTranslator } from './default-translator.js';
import { readIndexFile, writeIndexFile } from './index-file.js';
import { defaultGenerator } from './llm-generator.js';
import { scanFolder } from './scan-folder.js';
import { UseLiteEmbedding } from './use-lite-embedding.js';

/** Options of {@link RagIndex.open}. */
export interface RagIndexOptions extends Omit<CoreRagIndexOptions, 'embedding' | 'snapshot'> {
  /** Folder that holds the index file (created on the first update). */
  readonly dir: string;
  /** Embedding provider; default {@link UseLiteEmbedding} (offline). */
  readonly embedding?: EmbeddingProvider;
  /** A llamaindex vector store kept in sync and used for the dense search (e.g. Chroma). */
  readonly vectorStore?: ExternalVectorStore;
}

/** Options of an update from a folder. */
export interface FolderUpdateOptions {
  readonly onProgress?: ProgressCallback;
  /** Where files were downloaded from (`crp-rag add`), by relative path; recorded in the index. */
  readonly origins?: Readonly<Record<string, FileOrigin>>;
}

/**
 * The index of a folder on disk: `RagIndex` of the root entry plus the index file (`<dir>/index.crprag`,
 * written atomically), folder scanning, PDF text (pdf.js), the English-German dictionary when
 * `@crp/rag-dictionary-de-en` is installed, and an optional external vector store (Chroma) kept in sync.
 */
export class RagIndex extends CoreRagIndex {
  readonly dir: string;
  readonly #external: ExternalVectorStore | undefined;

  protected constructor(options: CoreRagIndexOptions & { dir: string; vectorStore?: ExternalVectorStore }) {
    super(options);
    this.dir = options.dir;
    this.#external = options.vectorStore;
  }

  /** Opens the index in `options.dir`, or an empty one when the folder holds none yet. */
  static async open(options: RagIndexOptions): Promise<RagIndex> {
    if (!options?.dir) {
      throw new CrpError(
        'invalid-argument',
        'RagIndex.open needs dir: the folder that holds (or will hold) the index.',
      );
    }
    const embedding = options.embedding ?? new UseLiteEmbedding();
    const translator = options.translator === undefined ? await loadDefaultTranslator() : options.translator;
    const snapshot = await readIndexFile(options.dir);
    return new RagIndex({
      ...options,
      embedding,
      translator: translator ?? null,
      ...(snapshot ? { snapshot } : {}),
    });
  }

  /** The external vector store, if any. */
  get vectorStore(): ExternalVectorStore | undefined {
    return this.#external;
  }

  /**
   * Brings the index in line with the files under `sourceDir` (PDF, Markdown, HTML, text): new and changed
   * files are loaded, chunked and embedded; unchanged ones (same SHA-256) are kept; files that disappeared
   * are removed. Unreadable or corrupt files (and PDFs without a text layer) are reported in `skipped`, the
   * rest is indexed. The external vector store is synced before the index file is written; if either fails
   * the index on disk and in memory stays as it was.
   */
  async update(sourceDir: string, options: FolderUpdateOptions = {}): Promise<IndexReport> {
    const onProgress = options.onProgress as ((p: IndexProgress) => void) | undefined;
    const root = path.resolve(sourceDir);
    const names = await scanFolder(root);
    progressTracker(names.length, onProgress, { unit: 'files', phase: 'scan' })(names.length);
    const files: SourceFile[] = [];
    // compounds split at a line end keep their hyphen when the dictionary says so ("rule-based"): a PDF's text
    // depends on the dictionary, so a PDF indexed with another one (or none) is chunked again
    const lexicon = this.translator ? hyphenLexicon(this.translator) : undefined;
    const hyphens = `hyphens:${this.translator ? this.translator.fingerprint : 'none'}`;
    const unreadable: SkippedFile[] = [];
    for (const file of names) {
      try {
        const bytes = new Uint8Array(await readFile(path.join(root, file)));
        const origin = options.origins?.[file];
        files.push(origin ? { file, bytes, origin } : { file, bytes });
      } catch (error) {
        unreadable.push({
          file,
          code: 'read-failed',
          message: `${file} cannot be read: ${describeError(error)}`,
        });
      }
    }
    const report = await this.updateFiles(files, {
      sourceDir: root,
      ...(onProgress ? { onProgress } : {}),
      // pdf.js loads only when a PDF is indexed (it takes a while to import)
      load: async (file, bytes) => {
        const { extractPdfText } = await import('./pdf-loader.js');
        return loadDocument(file, bytes, {
          pdf: (data, name) => extractPdfText(data, name, lexicon ? { lexicon } : {}),
        });
      },
      loadKey: (file) => (EXTENSIONS[extensionOf(file)] === 'pdf' ? hyphens : undefined),
      commit: (next, change) => this.#commit(next, change, onProgress),
    });
    const gone = new Set(unreadable.map((u) => u.file));
    return {
      ...report,
      deleted: report.deleted.filter((f) => !gone.has(f)),
      skipped: [...report.skipped, ...unreadable].sort((a, b) => a.file.localeCompare(b.file)),
    };
  }

  async #commit(
    next: IndexSnapshot,
    change: IndexChange,
    onProgress: ((p: IndexProgress) => void) | undefined,
  ): Promise<IndexSnapshot> {
    const old = this.snapshot;
    let final = next;
    const ext = this.#external;
    let syncedNow = false;
    if (ext) {
      const wasSynced =
        old.syncedStores.includes(ext.key) &&
        old.embeddingId === next.embeddingId &&
        old.pipeline === next.pipeline &&
        old.chunking.chunkSize === next.chunking.chunkSize &&
        old.chunking.chunkOverlap === next.chunking.chunkOverlap;
      if (!wasSynced || !change.unchanged) {
        const remove = wasSynced
          ? change.removedFiles
          : [...new Set([...Object.keys(old.files), ...Object.keys(next.files)])];
        const add = wasSynced ? change.newChunks : next.chunks.map((_, i) => i);
        await syncExternal(ext, next, remove, add, onProgress);
        syncedNow = true;
      }
      final = { ...next, syncedStores: [...next.syncedStores.filter((k) => k !== ext.key), ext.key] };
    }
    if (!change.unchanged || syncedNow) {
      progressTracker(1, onProgress, { unit: 'files', phase: 'save' })(1);
      await writeIndexFile(this.dir, final);
    }
    return final;
  }

  protected override async denseScores(
    query: Float32Array,
    pool: number,
    only?: { readonly sides: ArrayLike<number>; readonly side: number },
  ): Promise<ArrayLike<number>> {
    const ext = this.#external;
    // a store returns its best `pool` of all chunks (`only` is a saving the in-memory matrix can make)
    if (!ext) return super.denseScores(query, pool, only);
    let res: Awaited<ReturnType<typeof ext.store.query>>;
    try {
      // llamaindex loads only with an external store (its import takes seconds)
      const { VectorStoreQueryMode } = await import('@llamaindex/core/vector-store');
      res = await ext.store.query({
        queryEmbedding: Array.from(query),
        similarityTopK: pool,
        mode: VectorStoreQueryMode.DEFAULT,
      });
    } catch (error) {
      if (isCrpError(error)) throw error;
      throw new CrpError(
        'store-failed',
        `Querying the vector store ${ext.key} failed: ${describeError(error)}`,
        {
          cause: error,
        },
      );
    }
    const scores = new Float64Array(this.chunks.length).fill(Number.NaN);
    res.ids.forEach((id, i) => {
      const doc = this.indexOf(id);
      if (doc !== undefined) scores[doc] = res.similarities[i] ?? Number.NaN;
    });
    return scores;
  }
}

async function syncExternal(
  ext: ExternalVectorStore,
  s: IndexSnapshot,
  removeFiles: readonly string[],
  addIndices: readonly number[],
  onProgress: ((p: IndexProgress) => void) | undefined,
): Promise<void> {
  const tick = progressTracker(removeFiles.length + addIndices.length, onProgress, {
    unit: 'items',
    phase: 'sync',
  });
  try {
    const { NodeRelationship, TextNode } = await import('@llamaindex/core/schema');
    for (const file of removeFiles) {
      await ext.store.delete(file);
      tick(1);
    }
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
    for (let i = 0; i < nodes.length; i += 500) {
      const batch = nodes.slice(i, i + 500);
      await ext.store.add(batch);
      tick(batch.length);
    }
  } catch (error) {
    if (isCrpError(error)) throw error;
    throw new CrpError(
      'store-failed',
      `Syncing the vector store ${ext.key} failed: ${describeError(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** Options of {@link RagEngine.open}. */
export interface RagEngineOptions extends RagIndexOptions {
  /**
   * Answer generator (a language model). Default: Groq when `GROQ_API_KEY` is set (as the seed app), else
   * none; `null`: always extractive (offline).
   */
  readonly generator?: AnswerGenerator | null;
  readonly embeddingMap?: EmbeddingMapOptions;
}

/**
 * The explainable RAG assistant over an index folder: `RagEngine` of the root entry plus `open` (index
 * folder on disk) and `update` (index a folder of documents incrementally).
 *
 * ```ts
 * import { RagEngine } from '@crp/rag/node';
 * const rag = await RagEngine.open({ dir: '.crp-rag' });
 * await rag.update('papers/');
 * const a = await rag.ask('What does the epsilon rule do?');
 * ```
 */
export class RagEngine extends CoreRagEngine {
  declare readonly index: RagIndex;

  static async open(options: RagEngineOptions): Promise<RagEngine> {
    const index = await RagIndex.open(options);
    const generator = options.generator === undefined ? defaultGenerator() : (options.generator ?? undefined);
    return new RagEngine(index, {
      ...(generator ? { generator } : {}),
      ...(options.embeddingMap ? { embeddingMap: options.embeddingMap } : {}),
    });
  }

  /** Incrementally (re)indexes a folder; see {@link RagIndex.update}. */
  update(sourceDir: string, options: FolderUpdateOptions = {}): Promise<IndexReport> {
    return this.index.update(sourceDir, options);
  }
}

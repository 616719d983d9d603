import { CrpError, describeError, isCrpError, type ProgressCallback, progressTracker } from '@crp/common';
import { chunkSentences } from './answer/passage-sentences.js';
import {
  asksForName,
  definesSubject,
  documentKindConcepts,
  namingConcepts,
  questionIntent,
} from './answer/question-intent.js';
import { scoreSourceSentences } from './answer/sentence-scorer.js';
import { toSources } from './answer/source.js';
import { dot, type EmbeddingProvider } from './embeddings/embedding-provider.js';
import { type ChunkingOptions, chunkDocument, resolveChunking } from './ingest/chunker.js';
import type { LoadedDocument } from './ingest/document.js';
import { loadDocument } from './ingest/load-document.js';
import { Bm25Index } from './retrieval/bm25.js';
import { DenseIndex } from './retrieval/dense-index.js';
import { type FusedResult, fuseScores, resolveHybrid } from './retrieval/hybrid-fusion.js';
import { headingCoverage, passageCoverage } from './retrieval/passage-rerank.js';
import type { HybridOptions, SearchHit } from './retrieval/search-hit.js';
import {
  emptySnapshot,
  type FileOrigin,
  type FileRecord,
  type IndexSnapshot,
  PIPELINE_VERSION,
} from './store/snapshot.js';
import { tokenize } from './text/analyzer.js';
import { LANGUAGE_NAMES, unsupportedLanguage } from './text/language.js';
import { type AnalyzedQuery, analyzeQuery, type QueryConcept } from './text/query.js';
import { glossOnly, questionGloss } from './translate/gloss.js';
import type { QueryTranslator } from './translate/query-translator.js';
import type { Chunk, IndexProgress } from './types.js';

/**
 * Version of the text analysis behind saved index terms (not of the chunks: a change re-analyses an index on
 * opening without embedding it again). 1: German inflected forms also indexed by their base form; 2: also strong
 * (ablaut) participles ("geschrieben" by "schreiben"); 3: "gekommen" by "kommen" (2 read it as "kimmen"); 4: an
 * ablaut guess only when unambiguous ("gelogen" no longer by "liegen", "gelitten" no longer by "leiten"), a listed
 * participle ending settling only the listed verb ("geglitten" still by "gleiten"); 5: stop words removed by their
 * surface form, not their stem ("Ebene", "Seite", "name" were dropped as "eben", "seit", "namely"), and the German
 * list's nouns ("Teil", "Weg") are none; 6: the German list's adjectives ("neue", "große", "möglich") are terms, in
 * every form.
 */
const ANALYSIS_VERSION = 6;

/**
 * How much the answer re-ranking's sentence score decides the order of a document's chunks: each score times
 * `1 - w + w * answerScore`. 0.8 rather than 0.5: the chunk of a document that answers went before one that only
 * shares the question's words more often (answer coverage on the evaluation corpus, tuning / held-out 3-9: 0.3
 * 135/181, 0.5 135/182, 0.65 137/183, 0.8 138/183, 1 138/183).
 */
const ANSWER_RERANK_WEIGHT = 0.8;

/**
 * A chunk opened by a heading that holds at least this share of the question's concepts (IDF-weighted, the
 * document's title and file name left out: `headingCoverage`) is lifted in the passage re-ranking by
 * `1 + HEADING_LIFT * share` (a heading field, BM25F-like: the heading's words count again, for the chunk it
 * opens). Evaluation corpus, answers tuning / held-out 3-14 (base 144/359): lift 1 from 0.5 144/360 (kept; no
 * tuning answer or passage changes), 0.5 from 0.5 144/359, 0.5 from any share 145/360 with a held-out passage fewer.
 */
const HEADING_FLOOR = 0.5;
const HEADING_LIFT = 1;

/** Options of a {@link RagIndex}. */
export interface RagIndexOptions {
  /** Embedding provider (in Node, `@crp/rag/node` defaults to `UseLiteEmbedding`). */
  readonly embedding: EmbeddingProvider;
  readonly chunking?: ChunkingOptions;
  readonly hybrid?: HybridOptions;
  /**
   * Bilingual dictionary for cross-lingual search (English <-> German), e.g. from `@crp/rag-dictionary-de-en`.
   * In Node, `@crp/rag/node` loads that package by itself when it is installed; `null` switches it off.
   */
  readonly translator?: QueryTranslator | null;
  /** Longest accepted question in characters; default 2,000. */
  readonly maxQuestionChars?: number;
  /** Content to start from (e.g. read from disk); default empty. */
  readonly snapshot?: IndexSnapshot;
}

/** A file to index: its path (relative, with `/`) and bytes. */
export interface SourceFile {
  readonly file: string;
  readonly bytes: Uint8Array;
  /** Where it was downloaded from, recorded in the index. */
  readonly origin?: FileOrigin;
}

/** A file that could not be indexed, and why. */
export interface SkippedFile {
  readonly file: string;
  /** The `CrpError` code (`corrupt-file`, `unsupported-format`, `read-failed`, ...). */
  readonly code: string;
  readonly message: string;
}

/** What an update did. */
export interface IndexReport {
  readonly added: readonly string[];
  readonly changed: readonly string[];
  readonly unchanged: readonly string[];
  readonly deleted: readonly string[];
  readonly skipped: readonly SkippedFile[];
  /** Notes on indexed files, e.g. PDF pages without a text layer. */
  readonly warnings: readonly string[];
  /** Chunks that were embedded in this update (0 when nothing changed). */
  readonly embeddedChunks: number;
  /** Chunks in the index afterwards. */
  readonly chunkCount: number;
  /** Pages in the index afterwards: a PDF's pages, and one for each Markdown, HTML or text file. */
  readonly pageCount: number;
  /** Pages of the files that were (re)loaded. */
  readonly pagesLoaded: number;
  readonly seconds: number;
}

/** What changed between two snapshots, for stores that mirror the index. */
export interface IndexChange {
  /** Files whose chunks must be removed from a mirror (changed, deleted, newly skipped). */
  readonly removedFiles: readonly string[];
  /** Positions (in the new snapshot) of chunks that are new. */
  readonly newChunks: readonly number[];
  /** True when nothing at all changed (no file, no setting). */
  readonly unchanged: boolean;
}

/** Options of {@link RagIndex.updateFiles}. */
export interface UpdateOptions {
  readonly onProgress?: ProgressCallback;
  /** Loads a file's bytes into a document; default {@link loadDocument} (no PDF outside Node). */
  readonly load?: (file: string, bytes: Uint8Array) => Promise<LoadedDocument>;
  /**
   * What `load` makes of a file besides its bytes, as a key (a PDF's hyphen lexicon: the dictionary decides which
   * compounds split at a line end keep their hyphen); undefined when nothing. A file whose saved key differs is
   * loaded and chunked again, like a changed file.
   */
  readonly loadKey?: (file: string) => string | undefined;
  /** Remove files of the index that are not among the given ones (a folder's semantics); default true. */
  readonly removeMissing?: boolean;
  /** Source folder to remember in the snapshot. */
  readonly sourceDir?: string;
  /**
   * Runs before the new content becomes the index's (persist it, mirror it into a vector store). If it throws,
   * the index stays exactly as it was. It may return the snapshot to keep (e.g. with `syncedStores` set).
   */
  readonly commit?: (next: IndexSnapshot, change: IndexChange) => Promise<IndexSnapshot | undefined>;
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

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The searchable index, in memory: chunks, their vectors, a BM25 index over their terms, and hybrid search
 * with cross-lingual query translation. `updateFiles` brings it in line with a set of files incrementally
 * (files with an unchanged SHA-256 are not embedded again). `@crp/rag/node`'s `RagIndex` adds reading and
 * writing the index folder, folder scanning, PDF and Chroma.
 */
export class RagIndex {
  readonly embedding: EmbeddingProvider;
  readonly chunking: Required<ChunkingOptions>;
  readonly hybrid: Required<HybridOptions>;
  readonly translator: QueryTranslator | undefined;
  readonly maxQuestionChars: number;
  #snapshot: IndexSnapshot;
  #bm25!: Bm25Index;
  #dense!: DenseIndex;
  /** Chunks analysed before, by id (for `updateFiles`); made from the snapshot when first needed. */
  #analysed: Map<string, { text: string; terms: readonly string[]; length: number }> | undefined;
  #byId = new Map<string, number>();
  #version = 0;
  /** Sentence vectors of the last answer re-ranking, by text: the answer scores many of the same sentences again. */
  #sentenceVectors = new Map<string, Float32Array>();
  /**
   * The index's embedding, answering texts of the last search's answer re-ranking (`HybridOptions.answerRerank`)
   * from what that embedded (copies: the same vectors, not recomputed); other texts go to `embedding`. The answer's
   * sentence scores cannot be taken over from the search (they weigh each sentence against the other candidates,
   * and the search scored other candidates without the rank prior), but the sentences' vectors can.
   */
  get sentenceEmbedding(): EmbeddingProvider {
    const memo = this.#sentenceVectors;
    return {
      id: this.embedding.id,
      ...(this.embedding.multilingual !== undefined ? { multilingual: this.embedding.multilingual } : {}),
      embed: async (texts) => {
        const missing = [...new Set(texts.filter((t) => !memo.has(t)))];
        const fresh = missing.length ? await this.embedding.embed(missing) : [];
        const got = new Map(missing.map((t, i) => [t, fresh[i]!]));
        return texts.map((t) => (got.get(t) ?? memo.get(t)!).slice());
      },
    };
  }

  constructor(options: RagIndexOptions) {
    if (!options?.embedding || typeof options.embedding.embed !== 'function') {
      throw new CrpError(
        'invalid-argument',
        'RagIndex needs an embedding provider ({ embedding }), e.g. new HashEmbedding() or, in Node, UseLiteEmbedding.',
      );
    }
    this.embedding = options.embedding;
    this.chunking = resolveChunking(options.chunking);
    this.hybrid = resolveHybrid(options.hybrid);
    this.translator = options.translator ?? undefined;
    this.maxQuestionChars = options.maxQuestionChars ?? 2000;
    if (!Number.isInteger(this.maxQuestionChars) || this.maxQuestionChars < 1) {
      throw new CrpError(
        'invalid-argument',
        `maxQuestionChars must be a positive integer; got ${this.maxQuestionChars}.`,
      );
    }
    this.#snapshot = options.snapshot ?? emptySnapshot(this.embedding.id, this.chunking);
    this.#rebuild();
  }

  /**
   * What the saved terms depend on: the pipeline and analysis versions and the German lexicon (compound
   * splitting, base forms).
   */
  #analysisKey(): string {
    return `${PIPELINE_VERSION}.${ANALYSIS_VERSION}:${this.translator ? this.translator.fingerprint : 'none'}`;
  }

  /**
   * The index terms of every chunk of a snapshot: the saved ones when they were made with the same analysis,
   * else analysed now (chunks analysed before, by id, are not analysed again).
   */
  #chunkTerms(s: IndexSnapshot): { terms: (readonly string[])[]; lengths: number[] } {
    const key = this.#analysisKey();
    const saved = s.terms;
    if (saved && saved.key === key && saved.chunks.length === s.chunks.length) {
      return {
        terms: saved.chunks.map((ids) => Array.from(ids, (id) => saved.vocabulary[id]!)),
        lengths: [...saved.lengths],
      };
    }
    const germanLexicon = this.translator?.lexicon('de');
    const terms: (readonly string[])[] = [];
    const lengths: number[] = [];
    for (const c of s.chunks) {
      const text = chunkContextText(c);
      let known = this.#analysedBefore().get(c.id);
      if (!known || known.text !== text) {
        const ts = tokenize(text, c.metadata.language, germanLexicon ? { germanLexicon } : {});
        // compound parts make German words findable by their parts without making the chunk longer
        known = { text, terms: ts.map((t) => t.term), length: ts.filter((t) => !t.extra).length };
      }
      terms.push(known.terms);
      lengths.push(known.length);
    }
    return { terms, lengths };
  }

  /** The snapshot with its chunks' index terms, to be saved with it. */
  #withTerms(s: IndexSnapshot): IndexSnapshot {
    const { terms, lengths } = this.#chunkTerms(s);
    const ids = new Map<string, number>();
    const chunks = terms.map((ts) =>
      ts.map((t) => {
        let id = ids.get(t);
        if (id === undefined) {
          id = ids.size;
          ids.set(t, id);
        }
        return id;
      }),
    );
    return { ...s, terms: { key: this.#analysisKey(), vocabulary: [...ids.keys()], chunks, lengths } };
  }

  #analysedBefore(): Map<string, { text: string; terms: readonly string[]; length: number }> {
    if (!this.#analysed) {
      const s = this.#snapshot;
      // saved terms of another analysis (dictionary, pipeline) are no cache
      const valid = s.terms?.key === this.#analysisKey() && s.terms.chunks.length === s.chunks.length;
      this.#analysed = new Map(
        (valid ? s.chunks : []).map((c, i) => [
          c.id,
          { text: chunkContextText(c), terms: this.termsAt(i), length: s.terms?.lengths[i] ?? 0 },
        ]),
      );
    }
    return this.#analysed;
  }

  #rebuild(): void {
    let s = this.#snapshot;
    // an index saved without (or with stale) terms gets them, so the next save opens fast
    if (s.terms?.key !== this.#analysisKey() && s.chunks.length > 0) {
      s = this.#withTerms(s);
      this.#snapshot = s;
    }
    this.#analysed = undefined;
    // the saved term ids feed BM25 directly (no term strings per chunk)
    this.#bm25 = s.terms ? new Bm25Index(s.terms, {}, s.terms.lengths) : new Bm25Index([], {});
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
    const t = this.#snapshot.terms;
    const ids = t?.chunks[index];
    return ids ? Array.from(ids, (id) => t.vocabulary[id]!) : [];
  }
  /** Position of a chunk by id. */
  indexOf(id: string): number | undefined {
    return this.#byId.get(id);
  }
  /** Total pages of the indexed files (a PDF's pages, one for each other file). */
  get pageCount(): number {
    return Object.values(this.#snapshot.files).reduce((n, f) => n + f.pages, 0);
  }

  /** Replaces the content (e.g. with a snapshot read from disk). */
  protected setSnapshot(snapshot: IndexSnapshot): void {
    this.#snapshot = snapshot;
    this.#rebuild();
  }

  /**
   * Brings the index in line with `files`: new and changed files are loaded, chunked and embedded; unchanged
   * ones (same SHA-256, embedding, chunking and pipeline) are kept as they are; with `removeMissing` (default)
   * files that are not given any more are removed. Files that cannot be loaded are reported in `skipped` and
   * left out; the rest is indexed. If embedding or `commit` fails, the index is unchanged.
   */
  async updateFiles(files: readonly SourceFile[], options: UpdateOptions = {}): Promise<IndexReport> {
    const t0 = performance.now();
    const onProgress = options.onProgress as ((p: IndexProgress) => void) | undefined;
    const old = this.#snapshot;
    const sameSettings =
      old.embeddingId === this.embedding.id &&
      old.chunking.chunkSize === this.chunking.chunkSize &&
      old.chunking.chunkOverlap === this.chunking.chunkOverlap &&
      old.pipeline === PIPELINE_VERSION;
    const batch = await this.#loadFiles(files, old, sameSettings, options);
    if (options.removeMissing === false) keepMissing(batch, old, new Set(files.map((f) => f.file)));
    const { records, perFile, added, changed, skipped } = batch;
    const deleted = Object.keys(old.files).filter((f) => !records[f] && !skipped.some((s) => s.file === f));
    // chunks of all files in file order, with the vectors kept from the old index
    const chunks: Chunk[] = [];
    const kept: (Float32Array | undefined)[] = [];
    for (const file of Object.keys(records).sort()) {
      const e = perFile.get(file)!;
      chunks.push(...e.chunks);
      kept.push(...e.vectors);
    }
    const { vectors, todo } = await this.#embedMissing(chunks, kept, old.dimensions, onProgress);
    const removedFiles = [...changed, ...deleted, ...skipped.map((s) => s.file).filter((f) => old.files[f])];
    const { next, change } = this.#nextSnapshot(
      old,
      { records, chunks, vectors, todo, removedFiles },
      {
        sameSettings,
        added: added.length > 0,
        sourceDir: options.sourceDir,
      },
    );
    const analysed = this.#withTerms(next);
    const final = (await options.commit?.(analysed, change)) ?? analysed;
    this.#snapshot = final;
    this.#rebuild();
    return {
      added,
      changed,
      unchanged: batch.unchanged,
      deleted,
      skipped,
      warnings: batch.warnings,
      embeddedChunks: todo.length,
      chunkCount: chunks.length,
      pageCount: this.pageCount,
      pagesLoaded: batch.pagesLoaded,
      seconds: (performance.now() - t0) / 1000,
    };
  }

  /** Step 3 of `updateFiles`: the new snapshot and what changed (for an external store's sync). */
  #nextSnapshot(
    old: IndexSnapshot,
    content: {
      records: Record<string, FileRecord>;
      chunks: Chunk[];
      vectors: Float32Array[];
      todo: number[];
      removedFiles: string[];
    },
    how: { sameSettings: boolean; added: boolean; sourceDir: string | undefined },
  ): { next: IndexSnapshot; change: IndexChange } {
    const { records, chunks, vectors, todo, removedFiles } = content;
    const next: IndexSnapshot = {
      embeddingId: this.embedding.id,
      dimensions: vectors[0]?.length ?? old.dimensions,
      chunking: this.chunking,
      pipeline: PIPELINE_VERSION,
      ...(how.sourceDir !== undefined
        ? { sourceDir: how.sourceDir }
        : old.sourceDir
          ? { sourceDir: old.sourceDir }
          : {}),
      files: records,
      chunks,
      vectors,
      syncedStores: how.sameSettings && removedFiles.length === 0 && !how.added ? old.syncedStores : [],
      updatedAt: new Date().toISOString(),
    };
    const change: IndexChange = {
      removedFiles,
      newChunks: todo,
      unchanged:
        removedFiles.length === 0 &&
        !how.added &&
        how.sameSettings &&
        old.sourceDir === next.sourceDir &&
        !Object.entries(records).some(([f, r]) => r !== old.files[f]),
    };
    return { next, change };
  }

  /**
   * Step 1 of `updateFiles`: unchanged files (same hash, settings and load key) keep their chunks and vectors; new and
   * changed ones are loaded and chunked (vectors to come); files that cannot be loaded are skipped.
   */
  async #loadFiles(
    files: readonly SourceFile[],
    old: IndexSnapshot,
    sameSettings: boolean,
    options: UpdateOptions,
  ): Promise<FileBatch> {
    const load = options.load ?? ((file: string, bytes: Uint8Array) => loadDocument(file, bytes));
    const batch: FileBatch = {
      records: {},
      perFile: new Map(),
      added: [],
      changed: [],
      unchanged: [],
      skipped: [],
      warnings: [],
      pagesLoaded: 0,
    };
    const tick = progressTracker(files.length, options.onProgress, { unit: 'files', phase: 'load' });
    for (const { file, bytes, origin } of files) {
      const hash = await sha256(bytes);
      const prev = old.files[file];
      const keepOrigin = origin ?? (prev?.origin?.sha256 === hash ? prev.origin : undefined);
      const loadKey = options.loadKey?.(file);
      if (prev && prev.hash === hash && sameSettings && prev.loadKey === loadKey) {
        batch.records[file] = keepOrigin && !prev.origin ? { ...prev, origin: keepOrigin } : prev;
        batch.perFile.set(file, keptChunks(old, prev));
        batch.unchanged.push(file);
        batch.warnings.push(...(prev.warnings ?? []));
        tick(1);
        continue;
      }
      try {
        const doc = await load(file, bytes);
        const chunks = chunkDocument(doc, this.chunking);
        if (chunks.length === 0) {
          throw new CrpError('empty-data', `${file} has no text to index.`, { details: { file } });
        }
        batch.records[file] = {
          hash,
          title: doc.title,
          format: doc.format,
          language: doc.language,
          pages: doc.pages,
          bytes: bytes.byteLength,
          chunkIds: chunks.map((c) => c.id),
          ...(keepOrigin ? { origin: keepOrigin } : {}),
          ...(doc.warnings?.length ? { warnings: doc.warnings } : {}),
          ...(loadKey !== undefined ? { loadKey } : {}),
        };
        batch.warnings.push(...(doc.warnings ?? []));
        batch.perFile.set(file, { chunks, vectors: chunks.map(() => undefined) });
        batch.pagesLoaded += doc.pages;
        (prev ? batch.changed : batch.added).push(file);
      } catch (error) {
        const code = isCrpError(error) ? error.code : 'corrupt-file';
        batch.skipped.push({ file, code, message: describeError(error) });
      }
      tick(1);
    }
    return batch;
  }

  /**
   * Step 2 of `updateFiles`: embeds the chunks without a vector; all vectors must have the same size. Returns
   * the vectors of all chunks and the positions of the newly embedded ones.
   */
  async #embedMissing(
    chunks: readonly Chunk[],
    kept: readonly (Float32Array | undefined)[],
    oldDimensions: number,
    onProgress: ((p: IndexProgress) => void) | undefined,
  ): Promise<{ vectors: Float32Array[]; todo: number[] }> {
    const vectors = [...kept];
    const todo = vectors.flatMap((v, i) => (v ? [] : [i]));
    if (todo.length > 0) {
      let embedded: Float32Array[];
      try {
        embedded = await this.embedding.embed(
          todo.map((i) => chunkContextText(chunks[i]!)),
          (p) => onProgress?.({ ...p, phase: 'embed', unit: 'chunks' }),
        );
      } catch (error) {
        if (isCrpError(error)) throw error;
        throw new CrpError(
          'embedding-failed',
          `Embedding with ${this.embedding.id} failed: ${describeError(error)}`,
          {
            cause: error,
          },
        );
      }
      todo.forEach((ci, k) => {
        vectors[ci] = embedded[k];
      });
    }
    const dimensions = vectors[0]?.length ?? oldDimensions;
    if (vectors.some((v) => !v || v.length !== dimensions)) {
      throw new CrpError(
        'embedding-failed',
        `Embedding provider ${this.embedding.id} returned vectors of differing sizes or too few; expected ${dimensions} dimensions for each of ${vectors.length} chunks.`,
      );
    }
    return { vectors: vectors as Float32Array[], todo };
  }

  /** Embeds a question with the index's provider. */
  async embedQuery(question: string): Promise<Float32Array> {
    const [v] = await this.embedding.embed([question]);
    return v!;
  }

  /** The question as the lexical search sees it: language, concepts with stems and translations. */
  analyzeQuestion(question: string): AnalyzedQuery {
    // a German compound without a translation the index holds is searched by its parts (`QueryOptions.indexed`)
    const indexed = (term: string) => this.#bm25.documentFrequency(term) > 0;
    return analyzeQuery(
      question,
      this.translator ? { translator: this.translator, indexed, separableVerbs: true } : {},
    );
  }

  /**
   * Checks a question and the index before a search; throws `invalid-argument` (empty, too long, in a language
   * the analyser does not support, or without any word to search), `empty-index` or `embedding-mismatch`.
   */
  checkQuestion(question: string): void {
    if (typeof question !== 'string' || !question.trim()) {
      throw new CrpError('invalid-argument', 'The question is empty; ask a non-empty question.');
    }
    if (question.length > this.maxQuestionChars) {
      throw new CrpError(
        'invalid-argument',
        `The question has ${question.length} characters; at most ${this.maxQuestionChars} are allowed. Ask a shorter question.`,
        { details: { length: question.length, max: this.maxQuestionChars } },
      );
    }
    if (this.#snapshot.chunks.length === 0) {
      throw new CrpError(
        'empty-index',
        'The index has no chunks; index some documents first (`crp-rag index <dir>`).',
      );
    }
    if (this.#snapshot.embeddingId !== this.embedding.id) {
      throw new CrpError(
        'embedding-mismatch',
        `The index was built with embedding "${this.#snapshot.embeddingId}" but "${this.embedding.id}" is in use; index again or open it with the same provider.`,
      );
    }
    const other = unsupportedLanguage(question);
    if (other) {
      throw new CrpError(
        'invalid-argument',
        `The question looks ${other}; questions can be asked in ${Object.values(LANGUAGE_NAMES).join(' or ')} (the documents may be in either). Ask it in one of those.`,
        { details: { language: other, supported: Object.keys(LANGUAGE_NAMES) } },
      );
    }
    if (this.analyzeQuestion(question).concepts.length === 0) {
      throw new CrpError(
        'invalid-argument',
        'The question has no words to search for (only stop words or punctuation); name what you want to know, e.g. "What does the epsilon rule do?".',
      );
    }
  }

  /** Hybrid search (dense + BM25 with cross-lingual concepts) for a question. */
  async search(question: string, options: SearchOptions = {}): Promise<SearchHit[]> {
    this.checkQuestion(question);
    const query = await this.embedQuery(question);
    return this.searchWithVector(question, query, options);
  }

  /**
   * Dense similarity of the question to every chunk (`NaN` where unknown), or with `only` to the chunks it
   * selects (the others may be `NaN`). The in-memory index computes all; an index mirrored in an external vector
   * store may ask the store for its best `pool` instead.
   */
  protected async denseScores(
    query: Float32Array,
    _pool: number,
    only?: { readonly sides: ArrayLike<number>; readonly side: number },
  ): Promise<ArrayLike<number>> {
    return this.#dense.scoreAll(query, only);
  }

  /**
   * Dense scores for a question against chunks of both languages. A monolingual embedding cannot compare a
   * question with chunks in the other language, so with a dictionary those chunks are compared with the
   * question's gloss in their language (`glossOnly`: its content words put into the other language), and each
   * chunk gets the score from the vector of its own language. `sides` marks the chunks scored through the gloss
   * (1), so the fusion takes each side's lift over its own mean. Each vector is compared only with the chunks
   * whose score it gives (one pass over the matrix, not two).
   */
  async #denseBothLanguages(
    question: string,
    analyzed: AnalyzedQuery,
    query: Float32Array,
    pool: number,
  ): Promise<{ dense: ArrayLike<number>; sides?: Uint8Array; glossVector?: Float32Array }> {
    const tr = this.translator;
    const chunks = this.#snapshot.chunks;
    if (!tr || this.embedding.multilingual === true) return { dense: await this.denseScores(query, pool) };
    const language = analyzed.language;
    const sides = Uint8Array.from(chunks, (c) => (c.metadata.language === language ? 0 : 1));
    // a German question is glossed as its search reads it (`questionGloss`); an English one word by word, as
    // before: its German gloss meets German chunks through an English encoder, where the analysed gloss lost
    // 3 held-out answers (names kept as written, cognates first) and `glossOnly` keeps them
    const gloss = !sides.includes(1)
      ? undefined
      : language === 'de'
        ? questionGloss(analyzed.concepts, language, question)
        : glossOnly(question, language, tr);
    if (!gloss) return { dense: await this.denseScores(query, pool) };
    const same = await this.denseScores(query, pool, { sides, side: 0 });
    const [glossVector] = await this.embedding.embed([gloss]);
    const across = await this.denseScores(glossVector!, pool, { sides, side: 1 });
    const dense = Float64Array.from(chunks, (_, i) => (sides[i] ? across[i]! : same[i]!));
    return { dense, sides, glossVector: glossVector! };
  }

  /**
   * BM25 scores of every chunk for the question's concepts. A document-kind noun ("the RAG lesson", "laut der
   * Dokumentation", `documentKindConcepts`) chooses the document, not the passage: every chunk of a document gets
   * that concept's best score among the document's chunks, so the chunk that says "lesson" (the lesson's
   * introduction, its assignment) does not go before the passage that answers, and the document keeps its lead.
   */
  #lexicalScores(question: string, concepts: readonly QueryConcept[]): Float64Array {
    const kind = documentKindConcepts(question, concepts);
    if (!kind.includes(true)) return this.#bm25.scoreConcepts(concepts);
    const scores = this.#bm25.scoreConcepts(concepts.filter((_, k) => !kind[k]));
    const chunks = this.#snapshot.chunks;
    for (const [k, concept] of concepts.entries()) {
      if (!kind[k]) continue;
      const own = this.#bm25.scoreConcepts([concept]);
      const best = new Map<string, number>();
      for (const [i, c] of chunks.entries())
        if (own[i]! > (best.get(c.metadata.file) ?? 0)) best.set(c.metadata.file, own[i]!);
      for (const [i, c] of chunks.entries()) scores[i] = scores[i]! + (best.get(c.metadata.file) ?? 0);
    }
    return scores;
  }

  /**
   * Passage-level re-ranking of the best `pool` fused results: each score is multiplied by
   * `0.5 + 0.5 * passageCoverage` (concepts weighted by their IDF), so a chunk whose words for the question stand
   * together in one passage goes before one that has them scattered (an introduction naming every topic). The
   * concepts with which the question names its document (`naming`: "according to the RAG lesson") weigh nothing
   * here: they chose the document, and a chunk saying "lesson" (the lesson's introduction or assignment) held them
   * in the same window as the question's topic more often than the passage that answers. A chunk opened by a
   * heading that holds at least `HEADING_FLOOR` of the question's other concepts (`headingCoverage`) is lifted
   * by `1 + HEADING_LIFT * share`: the heading names what its text says, perhaps in other words.
   */
  #rerank(
    fused: FusedResult[],
    concepts: readonly QueryConcept[],
    naming: readonly boolean[],
    pool: number,
  ): (FusedResult & { passageCoverage?: number })[] {
    if (pool === 0) return fused;
    // the words with which the question names its document say which document, not which of its passages
    const weights = concepts.map((c, k) => (naming[k] ? 0 : this.#bm25.conceptIdf(c)));
    const germanLexicon = this.translator?.lexicon('de');
    const analyzeOptions = germanLexicon ? { germanLexicon } : {};
    const head = fused.slice(0, pool).map((f) => {
      const chunk = this.#snapshot.chunks[f.doc]!;
      const coverage = passageCoverage(chunk, concepts, weights, analyzeOptions);
      const heading = headingCoverage(chunk, concepts, weights, analyzeOptions);
      const lift = heading >= HEADING_FLOOR ? 1 + HEADING_LIFT * heading : 1;
      return { ...f, score: f.score * (0.5 + 0.5 * coverage) * lift, passageCoverage: coverage };
    });
    head.sort((a, b) => b.score - a.score || a.doc - b.doc);
    return [...head, ...fused.slice(pool)];
  }

  /**
   * Second stage of the re-ranking, within each document: the best `pool` results keep the documents in their
   * places, and the places of one document go to its chunks in the order of how well their best sentence answers
   * the question, scored as the offline answer scores sentences (without the source-rank prior, since this decides
   * the order): each score times `0.2 + 0.8 * answerScore` (`ANSWER_RERANK_WEIGHT`), the best sentence's score over
   * the best of the pool.
   * A chunk that shares the question's words (the document's name, the topic of a whole section) but holds no
   * sentence that answers makes way for a lower one of the same document that does. Other documents are not
   * brought in: chosen freely among 20 chunks, the answer's own score put the passage among the sources more often
   * but the answers quoted the newcomers instead of it. Only chunks in the question's language take part; the
   * others keep their places: scored through the dictionary's gloss, reordering them cost cross-lingual answers
   * (98 -> 94 of 140 on the evaluation corpus).
   */
  async #answerRerank<T extends FusedResult & { passageCoverage?: number }>(
    fused: T[],
    question: string,
    questionVector: Float32Array,
    query: AnalyzedQuery,
    pool: number,
  ): Promise<(T & { answerScore?: number; passageScore?: number })[]> {
    const head = fused.slice(0, pool);
    const chunks = this.#snapshot.chunks;
    this.#sentenceVectors = new Map();
    const file = (f: T) => chunks[f.doc]!.metadata.file;
    const taking = head.filter((f) => chunks[f.doc]!.metadata.language === query.language);
    // no document with two places among them: nothing to reorder
    if (new Set(taking.map(file)).size === taking.length) return fused;
    const sources = toSources(
      taking.map((f) => ({ chunk: chunks[f.doc]!, score: f.score, denseScore: 0, lexicalScore: 0 })),
    );
    const scored = await scoreSourceSentences(
      question,
      questionVector,
      query,
      sources,
      this.#remembering(),
      this.#bm25,
      questionIntent(question),
      this.translator,
      { rankPrior: false },
    );
    const best = new Float64Array(taking.length);
    for (const s of scored) if (s.score > best[s.source - 1]!) best[s.source - 1] = s.score;
    const top = Math.max(...best);
    if (!(top > 0)) return fused;
    const reranked = new Map(
      taking.map((f, i) => {
        const answerScore = best[i]! / top;
        return [
          f,
          {
            ...f,
            score: f.score * (1 - ANSWER_RERANK_WEIGHT + ANSWER_RERANK_WEIGHT * answerScore),
            answerScore,
            passageScore: f.score,
          },
        ];
      }),
    );
    const byFile = new Map<string, (T & { answerScore: number; passageScore: number })[]>();
    for (const r of reranked.values()) byFile.set(file(r), [...(byFile.get(file(r)) ?? []), r]);
    for (const list of byFile.values()) list.sort((a, b) => b.score - a.score || a.doc - b.doc);
    const taken = new Map<string, number>();
    const placed = head.map((f) => {
      if (!reranked.has(f)) return { ...f, passageScore: f.score }; // in its place, with what an answer numbers by
      const k = taken.get(file(f)) ?? 0;
      taken.set(file(f), k + 1);
      return byFile.get(file(f))![k]!;
    });
    return [...placed, ...fused.slice(pool)];
  }

  /**
   * For a question that asks what a name is and little more ("What is LRP?", "Was ist LRP?": `asksForName`), when
   * none of the first `topK` results holds a sentence that defines the name (`definesSubject`, the answer's own
   * test; headings and code left out), the best of the re-ranked `pool` that holds one takes the last of the
   * `topK` places, with its own score. Without it the answer could only quote sentences that use the name: the
   * documents that define a method in a line are rarely the ones that name it most.
   */
  #definitionIntoSources<T extends FusedResult>(
    fused: T[],
    question: string,
    query: AnalyzedQuery,
    topK: number,
    pool: number,
  ): T[] {
    if (topK < 2 || fused.length <= topK) return fused;
    const intent = questionIntent(question);
    if (!asksForName(intent, query.concepts.length)) return fused;
    const chunks = this.#snapshot.chunks;
    const defines = (f: T) =>
      chunkSentences(chunks[f.doc]!).some(
        (s) => s.kind !== 'code' && s.kind !== 'heading' && definesSubject(s.text, intent),
      );
    if (fused.slice(0, topK).some(defines)) return fused;
    const at = fused.findIndex((f, i) => i >= topK && i < Math.max(topK, pool) && defines(f));
    if (at < 0) return fused;
    return [...fused.slice(0, topK - 1), fused[at]!, ...fused.slice(topK - 1, at), ...fused.slice(at + 1)];
  }

  /** The embedding, keeping what it embeds in `#sentenceVectors` (see `sentenceEmbedding`). */
  #remembering(): EmbeddingProvider {
    const memo = this.#sentenceVectors;
    return {
      id: this.embedding.id,
      ...(this.embedding.multilingual !== undefined ? { multilingual: this.embedding.multilingual } : {}),
      embed: async (texts) => {
        const vectors = await this.embedding.embed(texts);
        for (const [i, t] of texts.entries()) memo.set(t, vectors[i]!.slice());
        return vectors;
      },
    };
  }

  /** Hybrid search with an already embedded question. */
  async searchWithVector(
    question: string,
    query: Float32Array,
    options: SearchOptions = {},
  ): Promise<SearchHit[]> {
    this.checkQuestion(question);
    const topK = options.topK ?? 5;
    if (!Number.isInteger(topK) || topK < 1)
      throw new CrpError('invalid-argument', `topK must be a positive integer; got ${topK}.`);
    const hybrid = resolveHybrid({ ...this.hybrid, ...options.hybrid });
    const analyzed = this.analyzeQuestion(question);
    const { dense, sides, glossVector } = await this.#denseBothLanguages(
      question,
      analyzed,
      query,
      Math.max(hybrid.candidates, topK),
    );
    const lexical = this.#lexicalScores(question, analyzed.concepts);
    const covered = this.#rerank(
      fuseScores(dense, lexical, hybrid, Math.max(topK, hybrid.rerank), sides),
      analyzed.concepts,
      namingConcepts(question, analyzed.concepts),
      hybrid.rerank,
    );
    const fused: (FusedResult & { passageCoverage?: number; answerScore?: number; passageScore?: number })[] =
      this.#definitionIntoSources(
        hybrid.answerRerank && hybrid.rerank > 0
          ? await this.#answerRerank(covered, question, query, analyzed, hybrid.rerank)
          : covered,
        question,
        analyzed,
        topK,
        hybrid.rerank,
      ).slice(0, topK);
    return fused.map((f) => ({
      chunk: this.#snapshot.chunks[f.doc]!,
      score: f.score,
      ...(f.passageCoverage !== undefined ? { passageCoverage: f.passageCoverage } : {}),
      ...(f.answerScore !== undefined ? { answerScore: f.answerScore } : {}),
      ...(f.passageScore !== undefined ? { passageScore: f.passageScore } : {}),
      denseScore: Number.isNaN(dense[f.doc]!)
        ? dot(this.#dense.vector(f.doc), sides?.[f.doc] && glossVector ? glossVector : query)
        : dense[f.doc]!,
      lexicalScore: lexical[f.doc] ?? 0,
      ...(f.denseRank !== undefined ? { denseRank: f.denseRank } : {}),
      ...(f.lexicalRank !== undefined ? { lexicalRank: f.lexicalRank } : {}),
    }));
  }
}

/** What `updateFiles` gathers per file before embedding. */
interface FileBatch {
  readonly records: Record<string, FileRecord>;
  readonly perFile: Map<string, { chunks: Chunk[]; vectors: (Float32Array | undefined)[] }>;
  readonly added: string[];
  readonly changed: string[];
  readonly unchanged: string[];
  readonly skipped: SkippedFile[];
  readonly warnings: string[];
  pagesLoaded: number;
}

// position of each chunk id in a snapshot, made once per snapshot
const POSITIONS = new WeakMap<IndexSnapshot, Map<string, number>>();

/** The chunks and vectors a file has in an index. */
function keptChunks(
  old: IndexSnapshot,
  record: FileRecord,
): { chunks: Chunk[]; vectors: (Float32Array | undefined)[] } {
  let byId = POSITIONS.get(old);
  if (!byId) {
    byId = new Map(old.chunks.map((c, i) => [c.id, i]));
    POSITIONS.set(old, byId);
  }
  const positions = record.chunkIds.map((id) => byId.get(id)!);
  return { chunks: positions.map((i) => old.chunks[i]!), vectors: positions.map((i) => old.vectors[i]) };
}

/** `removeMissing: false`: files of the old index that were not given stay as they are. */
function keepMissing(batch: FileBatch, old: IndexSnapshot, given: ReadonlySet<string>): void {
  for (const f of Object.keys(old.files)) {
    if (given.has(f)) continue;
    const prev = old.files[f]!;
    batch.records[f] = prev;
    batch.perFile.set(f, keptChunks(old, prev));
  }
}

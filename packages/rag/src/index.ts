export { composeExtractiveAnswer, type ExtractiveOptions } from './answer/extractive-answer.js';
export {
  type GroundedSentence,
  groundSentences,
  SUPPORT_THRESHOLD,
  type Support,
  stripCitations,
} from './answer/grounding.js';
export {
  type AnswerGenerator,
  API_KEY_ENV,
  buildPrompt,
  createLlmGenerator,
  GROQ_BASE_URL,
  LlamaIndexAnswerGenerator,
  type LlmOptions,
  type LlmProviderName,
  parseGeneratedAnswer,
  redact,
} from './answer/llm-answer.js';
export { type ScoredSentence, scoreSourceSentences, termCoverage } from './answer/sentence-scorer.js';
export { citationOf, type Source, toSources } from './answer/source.js';
export { CLI_USAGE, type CliIo, embeddingFromSpec, generatorFromSpec, runCli } from './cli.js';
export {
  dot,
  type EmbeddingProvider,
  type EmbedProgress,
  normalizeVector,
} from './embeddings/embedding-provider.js';
export { HashEmbedding } from './embeddings/hash-embedding.js';
export { LlamaIndexEmbedding, toLlamaIndexEmbedding } from './embeddings/llamaindex-embedding.js';
export {
  OpenAICompatibleEmbedding,
  type OpenAICompatibleEmbeddingOptions,
} from './embeddings/openai-compatible-embedding.js';
export { ensureBackend, type TfBackendChoice } from './embeddings/tf-backend.js';
export {
  TransformersEmbedding,
  type TransformersEmbeddingOptions,
} from './embeddings/transformers-embedding.js';
export {
  defaultUseLiteModelDir,
  UseLiteEmbedding,
  type UseLiteEmbeddingOptions,
} from './embeddings/use-lite-embedding.js';
export { RagError, type RagErrorCode } from './errors.js';
export {
  aggregateMetrics,
  firstRelevantRank,
  formatSummaryLine,
  normalizeWhitespace,
  passageInTexts,
  type QuestionOutcome,
  type RetrievalMetrics,
} from './eval/metrics.js';
export {
  type EmbeddingMap,
  type EmbeddingMapOptions,
  FittedMap,
  type MapPoint,
} from './explain/embedding-map.js';
export { type KeywordOverlap, keywordOverlap, type SharedKeyword } from './explain/keyword-overlap.js';
export { seededRandom } from './explain/seeded-random.js';
export { type SentenceHeatmap, sentenceHeatmaps } from './explain/sentence-heatmap.js';
export { type ChunkingOptions, chunkDocument, DEFAULT_CHUNKING, resolveChunking } from './ingest/chunker.js';
export type { DocumentFormat, LoadedDocument, SourceUnit } from './ingest/document.js';
export { EXTENSIONS } from './ingest/document.js';
export { loadDocument } from './ingest/load-document.js';
export { type MarkdownSections, splitMarkdown } from './ingest/markdown-loader.js';
export { dehyphenate, extractPdfText, type PdfText } from './ingest/pdf-loader.js';
export { scanFolder } from './ingest/scan-folder.js';
export {
  type AskOptions,
  type RagAnswer,
  RagEngine,
  type RagEngineOptions,
  type RetrievalExplanation,
} from './rag-engine.js';
export {
  chunkContextText,
  type IndexReport,
  RagIndex,
  type RagIndexOptions,
  type SearchOptions,
  type SkippedFile,
} from './rag-index.js';
export {
  escapeXml,
  heatColor,
  renderEmbeddingMapSvg,
  renderKeywordChipsSvg,
  renderSentenceHeatmapSvg,
} from './render/svg.js';
export { type Bm25Hit, Bm25Index, type Bm25Options, topK } from './retrieval/bm25.js';
export { DenseIndex } from './retrieval/dense-index.js';
export { type FusedResult, fuseRankings, resolveHybrid } from './retrieval/hybrid-fusion.js';
export type { HybridOptions, SearchHit } from './retrieval/search-hit.js';
export { type RagServer, type RagServerOptions, startRagServer } from './server/http-server.js';
export { writeFileAtomic } from './store/atomic-write.js';
export { ChromaVectorStore, type ChromaVectorStoreOptions } from './store/chroma-vector-store.js';
export type { ExternalVectorStore } from './store/external-vector-store.js';
export {
  decodeSnapshot,
  encodeSnapshot,
  type FileRecord,
  INDEX_FILE,
  type IndexSnapshot,
  readIndexFile,
  writeIndexFile,
} from './store/index-file.js';
export { analyze, type Token, tokenize } from './text/analyzer.js';
export { detectLanguage } from './text/language.js';
export { type Sentence, splitSentences } from './text/sentences.js';
export { stem } from './text/stemmer.js';
export { isStopWord, stopWords } from './text/stop-words.js';
export type { Chunk, ChunkMetadata, Language, Progress, ProgressCallback } from './types.js';

// @crp/rag: explainable retrieval-augmented generation. This root entry point runs anywhere, a browser
// included (no Node built-ins): analysis, retrieval, answers, grounding, explanations, the in-memory index.
// File system, PDF, servers, the CLI, Chroma, model loading and downloads are in '@crp/rag/node'.
export {
  type AnswerSentence,
  answerText,
  type ComposedAnswer,
  composeExtractiveAnswer,
  type ExtractiveOptions,
} from './answer/extractive-answer.js';
export {
  type GroundedSentence,
  type GroundingLabel,
  type GroundingOptions,
  groundSentences,
  SUPPORT_THRESHOLD,
  type Support,
  stripCitations,
} from './answer/grounding.js';
export {
  type AnswerGenerator,
  buildPrompt,
  parseGeneratedAnswer,
  redact,
  SYSTEM_PROMPT,
} from './answer/llm-answer.js';
export { chunkSentences, type PassageSentence } from './answer/passage-sentences.js';
export {
  holdsRelation,
  type QuestionIntent,
  type QuestionKind,
  questionIntent,
} from './answer/question-intent.js';
export {
  asksForCode,
  conceptCoverage,
  isBoilerplate,
  type ScoredSentence,
  scoreSourceSentences,
  termCoverage,
} from './answer/sentence-scorer.js';
export { citationOf, type Source, toSources } from './answer/source.js';
export { dot, type EmbeddingProvider, inBatches, normalizeVector } from './embeddings/embedding-provider.js';
export { HashEmbedding } from './embeddings/hash-embedding.js';
export {
  ANSWER_COVERAGE_THRESHOLD,
  aggregateMetrics,
  answerCoverage,
  firstRelevantRank,
  formatSummaryLine,
  keyTermCoverage,
  normalizeWhitespace,
  passageInTexts,
  type QuestionGroup,
  type QuestionOutcome,
  questionGroup,
  type RetrievalMetrics,
} from './eval/metrics.js';
export {
  type EmbeddingMap,
  type EmbeddingMapOptions,
  FittedMap,
  type MapPoint,
} from './explain/embedding-map.js';
export { type KeywordOverlap, keywordOverlap, type SharedKeyword } from './explain/keyword-overlap.js';
export { MeaningSpace, type MeaningSpaceOptions, type MeaningText } from './explain/meaning-space.js';
export { type SentenceHeatmap, sentenceHeatmaps } from './explain/sentence-heatmap.js';
export { type Block, type BlockKind, type ChunkBlock, decodeEntities, tableRowText } from './ingest/block.js';
export {
  type ChunkingOptions,
  chunkDocument,
  DEFAULT_CHUNKING,
  estimateTokens,
  resolveChunking,
} from './ingest/chunker.js';
export {
  type DocumentFormat,
  EXTENSIONS,
  type LoadedDocument,
  type SourceUnit,
  unitText,
} from './ingest/document.js';
export { type HtmlBlocks, htmlToBlocks } from './ingest/html-to-blocks.js';
export {
  extensionOf,
  type LoadDocumentOptions,
  loadDocument,
  type PdfExtractor,
  type PdfText,
} from './ingest/load-document.js';
export { cleanInline, type MarkdownBlocks, markdownToBlocks } from './ingest/markdown-to-blocks.js';
export { textToBlocks } from './ingest/plain-text.js';
export {
  type AskOptions,
  type RagAnswer,
  RagEngine,
  type RagEngineOptions,
  type RetrievalExplanation,
} from './rag-engine.js';
export {
  chunkContextText,
  type IndexChange,
  type IndexReport,
  RagIndex,
  type RagIndexOptions,
  type SearchOptions,
  type SkippedFile,
  type SourceFile,
  type UpdateOptions,
} from './rag-index.js';
export {
  heatColor,
  type MapLabel,
  placeSourceLabels,
  renderEmbeddingMapSvg,
  renderKeywordChipsSvg,
  renderSentenceHeatmapSvg,
} from './render/svg.js';
export {
  type Bm25Hit,
  Bm25Index,
  type Bm25Options,
  type ConceptMatch,
  type TermIds,
  type TermPostings,
  topK,
} from './retrieval/bm25.js';
export { DenseIndex } from './retrieval/dense-index.js';
export { type FusedResult, fuseScores, resolveHybrid } from './retrieval/hybrid-fusion.js';
export type { HybridOptions, SearchHit } from './retrieval/search-hit.js';
export type { ExternalVectorStore } from './store/external-vector-store.js';
export {
  type ChunkTerms,
  decodeSnapshot,
  emptySnapshot,
  encodeSnapshot,
  type FileOrigin,
  type FileRecord,
  INDEX_FILE,
  type IndexSnapshot,
  PIPELINE_VERSION,
} from './store/snapshot.js';
export {
  type AnalyzeOptions,
  analyze,
  type CompoundSplit,
  type DecompoundOptions,
  decompound,
  splitCompound,
  stemOf,
  stemOfTerm,
  type Token,
  tagTerm,
  termOf,
  tokenize,
  type WordSet,
} from './text/analyzer.js';
export { detectLanguage, LANGUAGE_NAMES, unsupportedLanguage } from './text/language.js';
export {
  type AnalyzedQuery,
  analyzeQuery,
  conceptsOfTerms,
  looksLikeName,
  type QueryConcept,
  type QueryOptions,
  type WeightedTerm,
} from './text/query.js';
export { type Sentence, splitSentences } from './text/sentences.js';
export { stem } from './text/stemmer.js';
export { isStopWord, stopWords } from './text/stop-words.js';
export {
  type ConceptRoute,
  type EnglishConcepts,
  type EnglishConceptsOptions,
  englishConcepts,
} from './translate/english-concepts.js';
export { FALSE_FRIENDS, KNOWN_TRANSLATIONS } from './translate/false-friends.js';
export {
  chunkWordUsage,
  glossOnly,
  glossSentence,
  type TermUsage,
  type WordUsage,
} from './translate/gloss.js';
export type { KeyTailStore } from './translate/pair-index.js';
export {
  QueryTranslator,
  type QueryTranslatorOptions,
  type Translation,
} from './translate/query-translator.js';
export type { ByteSource } from './translate/written-forms.js';
export type {
  Chunk,
  ChunkMetadata,
  IndexPhase,
  IndexProgress,
  Language,
  Progress,
  ProgressCallback,
} from './types.js';

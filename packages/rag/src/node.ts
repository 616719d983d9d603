// @crp/rag/node: everything of the root entry point plus the Node-only parts: the index folder on disk,
// folder scanning, PDF text (pdf.js), the default embedding (USE-lite on TF.js), transformers.js and
// OpenAI-compatible embeddings, LLM generators (Groq, OpenAI, Ollama), Chroma, the HTTP server, the CLI and
// paper downloads. `RagIndex` and `RagEngine` here extend the root ones with `open` and `update`.
export * from './index.js';
export type { HyphenLexicon } from './ingest/pdf-layout.js';
export { ChromaVectorStore, type ChromaVectorStoreOptions } from './node/chroma-vector-store.js';
export { CLI_USAGE, type CliIo, embeddingFromSpec, runCli } from './node/cli.js';
export { loadDefaultTranslator } from './node/default-translator.js';
export { type RagServer, type RagServerOptions, startRagServer } from './node/http-server.js';
export { readIndexFile, writeIndexFile } from './node/index-file.js';
export { LlamaIndexEmbedding, toLlamaIndexEmbedding } from './node/llamaindex-embedding.js';
export {
  API_KEY_ENV,
  createLlmGenerator,
  DEFAULT_MODELS,
  defaultGenerator,
  GROQ_BASE_URL,
  generatorFromSpec,
  LlamaIndexAnswerGenerator,
  type LlmOptions,
  type LlmProviderName,
} from './node/llm-generator.js';
export {
  type LocalCompletionModel,
  LocalModelAnswerGenerator,
  llamaCppGenerator,
} from './node/local-model.js';
export {
  OpenAICompatibleEmbedding,
  type OpenAICompatibleEmbeddingOptions,
} from './node/openai-compatible-embedding.js';
export {
  type DownloadedPaper,
  type DownloadOptions,
  downloadPaper,
  resolvePaperSource,
} from './node/paper-download.js';
export { dehyphenate, extractPdfText, tidyLines } from './node/pdf-loader.js';
export {
  type FolderUpdateOptions,
  RagEngine,
  type RagEngineOptions,
  RagIndex,
  type RagIndexOptions,
} from './node/rag-folder.js';
export { scanFolder } from './node/scan-folder.js';
export { TransformersEmbedding, type TransformersEmbeddingOptions } from './node/transformers-embedding.js';
export {
  defaultUseLiteModelDir,
  ensureBackend,
  type TfBackendChoice,
  UseLiteEmbedding,
  type UseLiteEmbeddingOptions,
} from './node/use-lite-embedding.js';
export { hyphenLexicon } from './translate/hyphen-lexicon.js';

import type { BaseVectorStore } from '@llamaindex/core/vector-store';

/**
 * A llamaindex vector store (e.g. `ChromaVectorStore` of `@crp/rag/node`) that an index keeps in sync with its own
 * on-disk store and asks for the dense side of the hybrid search. `key` names the store and collection so
 * the index knows whether it already holds every vector.
 */
export interface ExternalVectorStore {
  readonly key: string;
  readonly store: BaseVectorStore;
}

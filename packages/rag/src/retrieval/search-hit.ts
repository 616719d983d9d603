import type { Chunk } from '../types.js';

/** A retrieved chunk with the scores that put it where it is. */
export interface SearchHit {
  readonly chunk: Chunk;
  /** Fused score used for the ranking. */
  readonly score: number;
  /** Cosine similarity of chunk and question embeddings. */
  readonly denseScore: number;
  /** BM25 score of the chunk for the question's terms (0 when no term is shared). */
  readonly lexicalScore: number;
  /** 1-based rank among dense results (undefined when outside the candidate pool). */
  readonly denseRank?: number;
  /** 1-based rank among BM25 results (undefined when outside the candidate pool). */
  readonly lexicalRank?: number;
}

/** How dense and lexical results are combined. */
export interface HybridOptions {
  /** `rrf`: reciprocal rank fusion; `weighted`: weighted sum of max-normalised scores. Default `weighted`. */
  readonly fusion?: 'rrf' | 'weighted';
  /** Weight of the dense side (0..1); the lexical side gets `1 - denseWeight`. Default 0.3 (the default English-only embedding is weaker than BM25 on German text). */
  readonly denseWeight?: number;
  /** Candidates taken from each side before fusing; default 50. */
  readonly candidates?: number;
  /** RRF constant; default 60. */
  readonly rrfK?: number;
}

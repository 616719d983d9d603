import type { Chunk } from '../types.js';

/** A retrieved chunk with the scores that put it where it is. */
export interface SearchHit {
  readonly chunk: Chunk;
  /**
   * Score used for the ranking: the fused score, times `0.5 + 0.5 * passageCoverage` when re-ranked (and times
   * `1 + share` when a heading opening the chunk holds a share of at least half of the question's concepts), and
   * with an `answerScore` also times `0.2 + 0.8 * answerScore` (which orders a document's chunks within its places).
   */
  readonly score: number;
  /** Share of the question's concepts the chunk's best passage holds (when re-ranked, see `HybridOptions.rerank`). */
  readonly passageCoverage?: number;
  /**
   * How well the chunk's best sentence answers the question (`scoreSourceSentences` without the source-rank
   * prior), divided by the best of the re-ranked chunks in the question's language (0..1; set for those when
   * re-ranked, see `HybridOptions.answerRerank`).
   */
  readonly answerScore?: number;
  /**
   * The score before the answer re-ranking (fused, times `0.5 + 0.5 * passageCoverage`): the order in which an
   * answer numbers its sources.
   */
  readonly passageScore?: number;
  /** Cosine similarity of chunk and question embeddings. */
  readonly denseScore: number;
  /**
   * BM25 score of the chunk for the question's concepts (0 when none is shared); a document-kind noun ("the
   * lesson") counts for every chunk of a document as at the document's best chunk for it.
   */
  readonly lexicalScore: number;
  /** 1-based rank among all chunks by the dense score. */
  readonly denseRank?: number;
  /** 1-based rank among all chunks by the BM25 score (undefined when no concept matched). */
  readonly lexicalRank?: number;
}

/** How dense and lexical results are combined. */
export interface HybridOptions {
  /**
   * `weighted` (default): weighted sum of the BM25 score divided by the best one and of the dense score's
   * lift over the corpus mean divided by the best lift, over every chunk. `rrf`: reciprocal rank fusion of
   * the `candidates` best of each side.
   */
  readonly fusion?: 'rrf' | 'weighted';
  /** Weight of the dense side (0..1); the lexical side gets `1 - denseWeight`. Default 0.3. */
  readonly denseWeight?: number;
  /** Candidates taken from each side for RRF and from an external vector store; default 50. */
  readonly candidates?: number;
  /** RRF constant; default 60. */
  readonly rrfK?: number;
  /**
   * The best this many fused results are re-ranked by their best passage (`passageCoverage`: how much of the
   * question two consecutive sentences hold together); default 20, 0 switches it off.
   */
  readonly rerank?: number;
  /**
   * Whether, among the re-ranked results, the places of a document go to its chunks by how well their best
   * sentence answers the question (the offline answer's own sentence score: the question's concepts, the
   * embedding, the asked-for relation, not a heading or a line that restates the question): score times
   * `0.2 + 0.8 * answerScore`. Documents keep their places, and so do chunks in the other language than the
   * question's (compared only through the dictionary's gloss). Default true.
   */
  readonly answerRerank?: boolean;
}

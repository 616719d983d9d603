import type { ScoredSentence } from '../answer/sentence-scorer.js';
import type { Source } from '../answer/source.js';
import type { BlockKind } from '../ingest/block.js';

/** One retrieved chunk, sentence by sentence, each scored against the question. */
export interface SentenceHeatmap {
  readonly source: number;
  readonly chunkId: string;
  readonly citation: string;
  readonly sentences: readonly {
    readonly text: string;
    readonly start: number;
    readonly end: number;
    readonly kind: BlockKind;
    /** 0..1, see {@link ScoredSentence.score}. */
    readonly score: number;
    readonly dense: number;
    readonly lexical: number;
    readonly novelty: number;
  }[];
}

/** Groups scored sentences by source into heatmaps. */
export function sentenceHeatmaps(
  sources: readonly Source[],
  scored: readonly ScoredSentence[],
): SentenceHeatmap[] {
  return sources.map((s) => ({
    source: s.n,
    chunkId: s.chunkId,
    citation: s.citation,
    sentences: scored
      .filter((x) => x.source === s.n)
      .map(({ text, start, end, kind, score, dense, lexical, novelty }) => ({
        text,
        start,
        end,
        kind,
        score,
        dense,
        lexical,
        novelty,
      })),
  }));
}

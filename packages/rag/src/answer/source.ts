import type { ChunkBlock } from '../ingest/block.js';
import type { SearchHit } from '../retrieval/search-hit.js';
import type { Language } from '../types.js';

/** A retrieved chunk as it is shown and cited in an answer. */
export interface Source {
  /** 1-based number of the source in the answer. */
  readonly n: number;
  readonly chunkId: string;
  readonly file: string;
  readonly title: string;
  readonly page?: number;
  readonly section?: string;
  /** Language of the chunk's text. */
  readonly language: Language;
  /** `[file, p. N]` (PDF) or `[file]`. */
  readonly citation: string;
  /**
   * The ranking score (`SearchHit.score`: fused, times the passage and answer re-ranking factors). Sources are
   * numbered by the order before the answer re-ranking, so a later source can have a higher score.
   */
  readonly score: number;
  readonly denseScore: number;
  readonly lexicalScore: number;
  /** Clean text of the chunk. */
  readonly text: string;
  /** Blocks of `text` (code, table rows, ...), when known. */
  readonly blocks?: readonly ChunkBlock[];
}

/** The citation of a chunk: `[file, p. N]` for pages, `[file]` otherwise. */
export function citationOf(file: string, page?: number): string {
  return page !== undefined ? `[${file}, p. ${page}]` : `[${file}]`;
}

/** Numbers search hits as sources 1..n. */
export function toSources(hits: readonly SearchHit[]): Source[] {
  return hits.map((h, i) => {
    const m = h.chunk.metadata;
    return {
      n: i + 1,
      chunkId: h.chunk.id,
      file: m.file,
      title: m.title,
      ...(m.page !== undefined ? { page: m.page } : {}),
      ...(m.section !== undefined ? { section: m.section } : {}),
      language: m.language,
      citation: citationOf(m.file, m.page),
      score: h.score,
      denseScore: h.denseScore,
      lexicalScore: h.lexicalScore,
      text: h.chunk.text,
      ...(h.chunk.blocks ? { blocks: h.chunk.blocks } : {}),
    };
  });
}

import type { BlockKind } from '../ingest/block.js';
import { splitSentences } from '../text/sentences.js';
import type { Chunk } from '../types.js';

/** A sentence (or a table row, list item, heading or code block, taken whole) of a chunk. */
export interface PassageSentence {
  readonly text: string;
  /** Span in the chunk text. */
  readonly start: number;
  readonly end: number;
  readonly kind: BlockKind;
  /** Index of the block in the chunk. */
  readonly block: number;
}

/**
 * The sentences of a chunk by its blocks: prose blocks split into sentences; headings, table rows and code
 * blocks whole. A chunk without block spans is read as paragraphs separated by blank lines.
 */
export function chunkSentences(chunk: Pick<Chunk, 'text' | 'blocks'>): PassageSentence[] {
  const blocks =
    chunk.blocks ??
    [...chunk.text.matchAll(/[^\n]+(?:\n(?!\s*\n)[^\n]*)*/g)].map((m) => ({
      kind: 'paragraph' as const,
      start: m.index,
      end: m.index + m[0].length,
    }));
  const out: PassageSentence[] = [];
  blocks.forEach((b, block) => {
    const text = chunk.text.slice(b.start, b.end);
    if (b.kind === 'code' || b.kind === 'heading' || b.kind === 'table-row') {
      if (text.trim()) out.push({ text: text.trim(), start: b.start, end: b.end, kind: b.kind, block });
      return;
    }
    for (const s of splitSentences(text)) {
      out.push({ text: s.text, start: b.start + s.start, end: b.start + s.end, kind: b.kind, block });
    }
  });
  return out;
}

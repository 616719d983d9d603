import { CrpError } from '@crp/common';
import { detectLanguage } from '../text/language.js';
import { splitSentences } from '../text/sentences.js';
import type { Chunk } from '../types.js';
import type { BlockKind, ChunkBlock } from './block.js';
import { type LoadedDocument, type SourceUnit, unitText } from './document.js';

/** How documents are cut into chunks (sizes in estimated tokens, see {@link estimateTokens}). */
export interface ChunkingOptions {
  /** Largest chunk in tokens; default 200. */
  readonly chunkSize?: number;
  /** Tokens of the previous chunk repeated at the start of the next one in the same section; default 40. */
  readonly chunkOverlap?: number;
}

export const DEFAULT_CHUNKING: Required<ChunkingOptions> = { chunkSize: 200, chunkOverlap: 40 };

/** Resolves and checks chunking options. */
export function resolveChunking(options: ChunkingOptions = {}): Required<ChunkingOptions> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNKING.chunkSize;
  const chunkOverlap = options.chunkOverlap ?? DEFAULT_CHUNKING.chunkOverlap;
  if (!Number.isInteger(chunkSize) || chunkSize < 16 || chunkSize > 8192) {
    throw new CrpError('invalid-argument', `chunkSize must be an integer in [16, 8192]; got ${chunkSize}.`);
  }
  if (!Number.isInteger(chunkOverlap) || chunkOverlap < 0 || chunkOverlap >= chunkSize) {
    throw new CrpError(
      'invalid-argument',
      `chunkOverlap must be an integer in [0, chunkSize) = [0, ${chunkSize}); got ${chunkOverlap}.`,
    );
  }
  return { chunkSize, chunkOverlap };
}

/** Estimated tokens of a text for sizing chunks: one per 4 characters, as for common subword vocabularies. */
export const estimateTokens = (text: string) => Math.ceil(text.length / 4);

/** A contiguous span of a unit's text that is never cut: a block, or a sentence / code lines of a long one. */
interface Piece {
  readonly start: number;
  readonly end: number;
  readonly kind: BlockKind;
  readonly block: number;
  readonly section: string;
}

function piecesOf(unit: SourceUnit, starts: readonly number[], max: number): Piece[] {
  const out: Piece[] = [];
  unit.blocks.forEach((b, i) => {
    const base = starts[i]!;
    const section = b.section ?? '';
    const piece = (s: number, e: number) =>
      out.push({ start: base + s, end: base + e, kind: b.kind, block: i, section });
    if (estimateTokens(b.text) <= max) {
      piece(0, b.text.length);
      return;
    }
    // a long block: its sentences (prose) or lines (code) are the pieces; an overlong one is cut at spaces
    const parts =
      b.kind === 'code'
        ? [...b.text.matchAll(/[^\n]*(\n|$)/g)]
            .filter((m) => m[0])
            .map((m) => ({ start: m.index, end: m.index + m[0].length }))
        : splitSentences(b.text);
    for (const p of parts) {
      if (estimateTokens(b.text.slice(p.start, p.end)) <= max) {
        piece(p.start, b.kind === 'code' ? p.end - (b.text[p.end - 1] === '\n' ? 1 : 0) : p.end);
        continue;
      }
      let a = p.start;
      while (a < p.end) {
        let z = Math.min(p.end, a + max * 4);
        if (z < p.end) {
          const space = b.text.lastIndexOf(' ', z);
          if (space > a) z = space;
        }
        piece(a, z);
        a = z;
        while (a < p.end && b.text[a] === ' ') a++;
      }
    }
  });
  return out.filter((p) => p.end > p.start);
}

/**
 * Cuts a loaded document into chunks that respect its structure: a chunk never crosses a section (heading) or
 * a page, never cuts a block unless the block alone is too long (then at sentence or line boundaries), and
 * starts with the last blocks of the previous chunk of the same section (`chunkOverlap`). A heading with no
 * text of its own goes with the section that follows it. Records file, title, page, section, offsets in
 * the unit's clean text, the language and where code and other blocks are in the chunk.
 */
export function chunkDocument(doc: LoadedDocument, options: ChunkingOptions = {}): Chunk[] {
  const { chunkSize, chunkOverlap } = resolveChunking(options);
  const chunks: Chunk[] = [];
  for (const unit of doc.units) {
    const { text, starts } = unitText(unit);
    const pieces = piecesOf(unit, starts, chunkSize);
    // runs of pieces in the same section; a run of headings only joins the next run
    const runs: { section: string; pieces: Piece[] }[] = [];
    let carry: Piece[] = [];
    for (const p of pieces) {
      const last = runs[runs.length - 1];
      if (last && last.section === p.section && carry.length === 0) last.pieces.push(p);
      else {
        runs.push({ section: p.section, pieces: [...carry, p] });
        carry = [];
      }
      const run = runs[runs.length - 1]!;
      if (run.pieces.every((x) => x.kind === 'heading') && p.kind === 'heading') {
        // keep collecting headings; they are prepended to the next run with text
        runs.pop();
        carry = run.pieces;
      }
    }
    if (carry.length) runs.push({ section: carry[carry.length - 1]!.section, pieces: carry });
    for (const run of runs) {
      let begin = 0;
      while (begin < run.pieces.length) {
        let end = begin + 1;
        while (
          end < run.pieces.length &&
          estimateTokens(text.slice(run.pieces[begin]!.start, run.pieces[end]!.end)) <= chunkSize
        )
          end++;
        chunks.push(makeChunk(doc, unit, text, run.pieces.slice(begin, end), run.section));
        if (end >= run.pieces.length) break;
        // overlap: the trailing pieces of this chunk that fit into chunkOverlap (never the whole chunk)
        let next = end;
        while (
          next - 1 > begin &&
          estimateTokens(text.slice(run.pieces[next - 1]!.start, run.pieces[end - 1]!.end)) <= chunkOverlap &&
          run.pieces[next - 1]!.kind !== 'heading'
        )
          next--;
        begin = next;
      }
    }
  }
  return chunks;
}

function makeChunk(
  doc: LoadedDocument,
  unit: SourceUnit,
  text: string,
  pieces: Piece[],
  section: string,
): Chunk {
  const start = pieces[0]!.start;
  const end = pieces[pieces.length - 1]!.end;
  const chunkText = text.slice(start, end);
  const blocks: ChunkBlock[] = [];
  for (const p of pieces) {
    const prev = blocks[blocks.length - 1];
    const ps = p.start - start;
    const pe = p.end - start;
    // sentences of one long block are one block span
    if (prev && prev.kind === p.kind && pieces[pieces.indexOf(p) - 1]?.block === p.block) {
      blocks[blocks.length - 1] = { ...prev, end: pe };
    } else blocks.push({ kind: p.kind, start: ps, end: pe });
  }
  // a footnote often cites a work in another language than the text's (an English title in a German text)
  const prose = blocks
    .filter((b) => b.kind !== 'code' && b.kind !== 'note')
    .map((b) => chunkText.slice(b.start, b.end))
    .join('\n');
  const language = prose.length > 200 ? detectLanguage(prose) : doc.language;
  return {
    id: `${doc.file}#${unit.page ?? 0}:${start}`,
    text: chunkText,
    blocks,
    metadata: {
      file: doc.file,
      title: doc.title,
      ...(unit.page !== undefined ? { page: unit.page } : {}),
      ...(section ? { section } : {}),
      startChar: start,
      endChar: end,
      language,
    },
  };
}

import { SentenceSplitter } from 'llamaindex';
import { RagError } from '../errors.js';
import { detectLanguage } from '../text/language.js';
import type { Chunk } from '../types.js';
import type { LoadedDocument } from './document.js';

/** How documents are cut into chunks (sizes in the splitter's tokens). */
export interface ChunkingOptions {
  /** Target chunk size in tokens; default 200. */
  readonly chunkSize?: number;
  /** Tokens shared by neighbouring chunks; default 40. */
  readonly chunkOverlap?: number;
}

export const DEFAULT_CHUNKING: Required<ChunkingOptions> = { chunkSize: 200, chunkOverlap: 40 };

/** Resolves and checks chunking options. */
export function resolveChunking(options: ChunkingOptions = {}): Required<ChunkingOptions> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNKING.chunkSize;
  const chunkOverlap = options.chunkOverlap ?? DEFAULT_CHUNKING.chunkOverlap;
  if (!Number.isInteger(chunkSize) || chunkSize < 16 || chunkSize > 8192) {
    throw new RagError('INVALID_ARGUMENT', `chunkSize must be an integer in [16, 8192]; got ${chunkSize}.`);
  }
  if (!Number.isInteger(chunkOverlap) || chunkOverlap < 0 || chunkOverlap >= chunkSize) {
    throw new RagError(
      'INVALID_ARGUMENT',
      `chunkOverlap must be an integer in [0, chunkSize) = [0, ${chunkSize}); got ${chunkOverlap}.`,
    );
  }
  return { chunkSize, chunkOverlap };
}

/**
 * Cuts a loaded document into chunks with llamaindex's `SentenceSplitter`, unit by unit (PDF page,
 * Markdown section), and records file, title, page, section and character offsets of every chunk.
 */
export function chunkDocument(doc: LoadedDocument, options: ChunkingOptions = {}): Chunk[] {
  const { chunkSize, chunkOverlap } = resolveChunking(options);
  const splitter = new SentenceSplitter({ chunkSize, chunkOverlap });
  const chunks: Chunk[] = [];
  for (const unit of doc.units) {
    if (!unit.text.trim()) continue;
    let cursor = 0;
    for (const piece of splitter.splitText(unit.text)) {
      const text = piece.trim();
      if (!text) continue;
      let at = unit.text.indexOf(text, cursor);
      if (at < 0) at = unit.text.indexOf(text);
      if (at < 0) at = Math.min(cursor, unit.text.length);
      const startChar = unit.offset + at;
      const endChar = Math.min(unit.offset + unit.text.length, startChar + text.length);
      cursor = at + 1;
      const id = `${doc.file}#${unit.page ?? 0}:${startChar}`;
      const language = text.length > 200 ? detectLanguage(text) : doc.language;
      chunks.push({
        id,
        text,
        metadata: {
          file: doc.file,
          title: doc.title,
          ...(unit.page !== undefined ? { page: unit.page } : {}),
          ...(unit.section !== undefined ? { section: unit.section } : {}),
          startChar,
          endChar,
          language,
        },
      });
    }
  }
  return chunks;
}

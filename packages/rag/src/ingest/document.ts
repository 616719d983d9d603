import type { Language } from '../types.js';
import type { Block } from './block.js';

/** Formats the loaders understand. */
export type DocumentFormat = 'pdf' | 'markdown' | 'html' | 'text';

/** A piece of a document that is chunked on its own: a PDF page, or the whole text of other formats. */
export interface SourceUnit {
  /** 1-based page number (PDF). */
  readonly page?: number;
  readonly blocks: readonly Block[];
}

/** A loaded document, ready to be chunked. */
export interface LoadedDocument {
  /** Relative path (with `/`) of the file in the indexed folder. */
  readonly file: string;
  readonly title: string;
  readonly format: DocumentFormat;
  readonly language: Language;
  readonly units: readonly SourceUnit[];
  /** Number of pages (PDF); 1 for other formats. */
  readonly pages: number;
  /** Things a reader should know: pages without a text layer, ... */
  readonly warnings?: readonly string[];
}

/** File extensions (lower case, with dot) and the format they are read as. */
export const EXTENSIONS: Readonly<Record<string, DocumentFormat>> = {
  '.pdf': 'pdf',
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.html': 'html',
  '.htm': 'html',
  '.txt': 'text',
  '.text': 'text',
};

/** The clean text of a unit: its blocks separated by blank lines, and where each block starts. */
export function unitText(unit: SourceUnit): { text: string; starts: number[] } {
  const starts: number[] = [];
  let text = '';
  for (const b of unit.blocks) {
    if (text) text += '\n\n';
    starts.push(text.length);
    text += b.text;
  }
  return { text, starts };
}

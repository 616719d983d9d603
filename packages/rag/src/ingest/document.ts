import type { Language } from '../types.js';

/** Formats the loaders understand. */
export type DocumentFormat = 'pdf' | 'markdown' | 'text';

/** A piece of a document that is chunked on its own: a PDF page, or a Markdown section. */
export interface SourceUnit {
  readonly text: string;
  /** Offset of `text` in the unit's frame: the file text (Markdown, text) or the page text (PDF). */
  readonly offset: number;
  /** 1-based page number (PDF). */
  readonly page?: number;
  /** Heading path of a Markdown section ("Intro > Setup"). */
  readonly section?: string;
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
}

/** File extensions (lower case, with dot) and the format they are read as. */
export const EXTENSIONS: Readonly<Record<string, DocumentFormat>> = {
  '.pdf': 'pdf',
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.txt': 'text',
  '.text': 'text',
};

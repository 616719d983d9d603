import type { Progress } from '@crp/common';
import type { ChunkBlock } from './ingest/block.js';

/** Language of a chunk, a question or an answer, as far as the lexical analysis is concerned. */
export type Language = 'en' | 'de';

/** Where a chunk came from. Offsets are in the clean text of its unit (the file's text, or the PDF page's). */
export interface ChunkMetadata {
  /** Path of the source file relative to the indexed folder, with `/` separators. */
  readonly file: string;
  /** Title of the document (front matter, first heading, PDF title, or the file name). */
  readonly title: string;
  /** 1-based page number (PDF only). */
  readonly page?: number;
  /** Heading path of the section the chunk is in ("Intro > Setup"). */
  readonly section?: string;
  /** First character of the chunk in its unit's clean text. */
  readonly startChar: number;
  /** One past the last character of the chunk in its unit's clean text. */
  readonly endChar: number;
  /** Detected language of the chunk text. */
  readonly language: Language;
}

/** A piece of a document that is embedded, indexed and retrieved as a whole. */
export interface Chunk {
  /** Stable id: file, unit and position. */
  readonly id: string;
  /** Clean text: no markup; blocks are separated by blank lines; code blocks are kept verbatim. */
  readonly text: string;
  /**
   * The blocks of `text` (headings, paragraphs, list items, table rows, code) and where they are; code is shown
   * as code and never used as answer prose. Absent for chunks made elsewhere (then all text is prose).
   */
  readonly blocks?: readonly ChunkBlock[];
  readonly metadata: ChunkMetadata;
}

/** Progress of indexing: the toolkit's {@link Progress} with `phase` one of these steps. */
export type IndexPhase = 'scan' | 'load' | 'embed' | 'save' | 'sync';

export type { Progress, ProgressCallback } from '@crp/common';

/** A {@link Progress} event of indexing; `phase` says which step. */
export type IndexProgress = Progress & { phase?: IndexPhase | string };

/** Language of a chunk or a question, as far as the lexical analysis is concerned. */
export type Language = 'en' | 'de';

/** Where a chunk came from. Offsets are in the text of its unit: the whole file, or the PDF page. */
export interface ChunkMetadata {
  /** Path of the source file relative to the indexed folder, with `/` separators. */
  readonly file: string;
  /** Title of the document (front matter, first heading, PDF title, or the file name). */
  readonly title: string;
  /** 1-based page number (PDF only). */
  readonly page?: number;
  /** Heading path of the Markdown section the chunk is in. */
  readonly section?: string;
  /** First character of the chunk in its unit's text (file text, or page text for PDFs). */
  readonly startChar: number;
  /** One past the last character of the chunk in its unit's text. */
  readonly endChar: number;
  /** Detected language of the chunk text. */
  readonly language: Language;
}

/** A piece of a document that is embedded, indexed and retrieved as a whole. */
export interface Chunk {
  /** Stable id: file, unit and position. */
  readonly id: string;
  readonly text: string;
  readonly metadata: ChunkMetadata;
}

/** Progress of long work (indexing). `done` of `total` in the named phase. */
export interface Progress {
  readonly phase: 'scan' | 'load' | 'embed' | 'save';
  readonly done: number;
  readonly total: number;
  /** File being worked on, where there is one. */
  readonly file?: string;
}

/** Callback that receives {@link Progress} reports. */
export type ProgressCallback = (progress: Progress) => void;

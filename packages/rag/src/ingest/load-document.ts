import { CrpError } from '@crp/common';
import { detectLanguage } from '../text/language.js';
import type { Block } from './block.js';
import { type DocumentFormat, EXTENSIONS, type LoadedDocument, type SourceUnit } from './document.js';
import { htmlToBlocks } from './html-to-blocks.js';
import { markdownToBlocks } from './markdown-to-blocks.js';
import { textToBlocks } from './plain-text.js';

/** Text of a PDF, one string per page (index 0 = page 1), and its title if the PDF has one. */
export interface PdfText {
  readonly title?: string;
  readonly pages: readonly string[];
  /** The pages as blocks (headings, paragraphs, list items, code) when the extractor knows the layout. */
  readonly blocks?: readonly (readonly Block[])[];
}

/** Extracts the text of a PDF; `@crp/rag/node` passes pdf.js (`extractPdfText`). */
export type PdfExtractor = (bytes: Uint8Array, name: string) => Promise<PdfText>;

/** Options of {@link loadDocument}. */
export interface LoadDocumentOptions {
  /** Needed for PDF files. */
  readonly pdf?: PdfExtractor;
}

/** Extension of a file name, lower case with the dot ("" when none). */
export function extensionOf(file: string): string {
  return /(\.[^./\\]+)$/.exec(file)?.[1]?.toLowerCase() ?? '';
}

/** A title made of a file's name: `docs/captum-faq.md` -> "captum faq". */
export function titleFromName(file: string): string {
  const base = file.split(/[\\/]/).pop() ?? file;
  return base.replace(/\.[^.]+$/, '').replace(/[-_]+/g, ' ');
}

function decodeText(bytes: Uint8Array, file: string, format: DocumentFormat): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/^\uFEFF/, '');
  } catch (error) {
    throw new CrpError('corrupt-file', `${file} is not valid UTF-8 text; ${format} files must be UTF-8.`, {
      cause: error,
      details: { file },
    });
  }
  if (text.includes('\u0000')) {
    throw new CrpError('corrupt-file', `${file} contains NUL bytes, so it is binary, not ${format}.`, {
      details: { file },
    });
  }
  return text;
}

const languageOf = (blocks: readonly Block[]) =>
  detectLanguage(
    blocks
      .filter((b) => b.kind !== 'code' && b.kind !== 'note')
      .map((b) => b.text)
      .join('\n')
      .slice(0, 8000),
  );

/**
 * Turns the bytes of a file into a {@link LoadedDocument} of clean blocks: Markdown and HTML without markup
 * (tables as rows with their header, code blocks kept as code), PDF pages (with `options.pdf`), plain
 * text. `file` is the relative path used in citations; its extension picks the format.
 *
 * @throws CrpError `unsupported-format` for unknown extensions and PDFs without a text layer,
 *   `corrupt-file` for bytes that are not what the extension promises.
 */
export async function loadDocument(
  file: string,
  bytes: Uint8Array,
  options: LoadDocumentOptions = {},
): Promise<LoadedDocument> {
  const ext = extensionOf(file);
  const format: DocumentFormat | undefined = EXTENSIONS[ext];
  if (!format) {
    throw new CrpError(
      'unsupported-format',
      `${file}: extension "${ext}" is not supported; valid: ${Object.keys(EXTENSIONS).join(', ')}.`,
      { details: { file } },
    );
  }
  if (format === 'pdf') {
    if (!options.pdf) {
      throw new CrpError(
        'unsupported-format',
        `${file}: PDF needs a PDF extractor (loadDocument(file, bytes, { pdf: extractPdfText }) from @crp/rag/node).`,
        { details: { file } },
      );
    }
    const pdf = await options.pdf(bytes, file);
    const units: SourceUnit[] = pdf.pages.map((text, i) => ({
      page: i + 1,
      blocks: pdf.blocks?.[i] ?? textToBlocks(text),
    }));
    const empty = units.filter((u) => u.blocks.length === 0).map((u) => u.page!);
    if (empty.length === units.length) {
      throw new CrpError(
        'unsupported-format',
        `${file} has no text layer on any of its ${units.length} page(s) (a scanned or image-only PDF); run OCR on it (e.g. ocrmypdf) and index the result.`,
        { details: { file, pages: units.length } },
      );
    }
    const warnings =
      empty.length > 0
        ? [
            `${file}: page(s) ${empty.join(', ')} have no text layer (images only); their content is not searchable.`,
          ]
        : [];
    return {
      file,
      title: pdf.title ?? titleFromName(file),
      format,
      language: languageOf(units.flatMap((u) => u.blocks)),
      units,
      pages: units.length,
      ...(warnings.length ? { warnings } : {}),
    };
  }
  const text = decodeText(bytes, file, format);
  if (format === 'markdown' || format === 'html') {
    const parsed = format === 'markdown' ? markdownToBlocks(text) : htmlToBlocks(text);
    return {
      file,
      title: parsed.title ?? titleFromName(file),
      format,
      language: languageOf(parsed.blocks),
      units: [{ blocks: parsed.blocks }],
      pages: 1,
    };
  }
  const blocks = textToBlocks(text);
  const firstLine =
    text
      .split('\n')
      .find((l) => l.trim())
      ?.trim() ?? '';
  const title = firstLine && firstLine.length <= 120 ? firstLine : titleFromName(file);
  return { file, title, format, language: languageOf(blocks), units: [{ blocks }], pages: 1 };
}

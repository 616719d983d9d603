import path from 'node:path';
import { RagError } from '../errors.js';
import { detectLanguage } from '../text/language.js';
import { type DocumentFormat, EXTENSIONS, type LoadedDocument, type SourceUnit } from './document.js';
import { splitMarkdown } from './markdown-loader.js';
import { extractPdfText } from './pdf-loader.js';

function titleFromName(file: string): string {
  return path.basename(file, path.extname(file)).replace(/[-_]+/g, ' ');
}

function decodeText(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/^\uFEFF/, '');
  } catch (error) {
    throw new RagError(
      'CORRUPT_FILE',
      `${file} is not valid UTF-8 text; Markdown and text files must be UTF-8.`,
      {
        cause: error,
      },
    );
  }
}

/**
 * Turns the bytes of a file into a {@link LoadedDocument}: PDF pages, Markdown sections or one text unit.
 * `file` is the relative path used in citations; its extension picks the format.
 */
export async function loadDocument(file: string, bytes: Uint8Array): Promise<LoadedDocument> {
  const ext = path.extname(file).toLowerCase();
  const format: DocumentFormat | undefined = EXTENSIONS[ext];
  if (!format) {
    throw new RagError(
      'UNSUPPORTED_FORMAT',
      `${file}: extension "${ext}" is not supported; valid: ${Object.keys(EXTENSIONS).join(', ')}.`,
    );
  }
  if (format === 'pdf') {
    const pdf = await extractPdfText(bytes, file);
    const units: SourceUnit[] = pdf.pages.map((text, i) => ({ text, offset: 0, page: i + 1 }));
    const language = detectLanguage(pdf.pages.join('\n').slice(0, 8000));
    return {
      file,
      title: pdf.title ?? titleFromName(file),
      format,
      language,
      units,
      pages: pdf.pages.length,
    };
  }
  const text = decodeText(bytes, file);
  if (text.includes('\u0000')) {
    throw new RagError('CORRUPT_FILE', `${file} contains NUL bytes, so it is binary, not ${format}.`);
  }
  const language = detectLanguage(text.slice(0, 8000));
  if (format === 'markdown') {
    const md = splitMarkdown(text);
    return { file, title: md.title ?? titleFromName(file), format, language, units: md.sections, pages: 1 };
  }
  const firstLine =
    text
      .split('\n')
      .find((l) => l.trim())
      ?.trim() ?? '';
  const title = firstLine && firstLine.length <= 120 ? firstLine : titleFromName(file);
  return { file, title, format, language, units: [{ text, offset: 0 }], pages: 1 };
}

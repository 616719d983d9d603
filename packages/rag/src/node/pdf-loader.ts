import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';
import { CrpError, describeError, isCrpError } from '@crp/common';
import type { PdfText } from '../ingest/load-document.js';

interface TextItemLike {
  readonly str?: string;
  readonly hasEOL?: boolean;
}

/**
 * Joins words that a line break split with a hyphen ("wie-\nderherstellen" -> "wiederherstellen");
 * keeps the hyphen of compounds whose second part starts upper case ("Debian-\nPaket" -> "Debian-Paket").
 */
export function dehyphenate(text: string): string {
  return text
    .replace(/(\p{Ll})-[ \t]*\n[ \t]*(\p{Ll})/gu, '$1$2')
    .replace(/(\p{L})-[ \t]*\n[ \t]*(\p{Lu})/gu, '$1-$2');
}

/** Collapses runs of spaces and trims every line; keeps line breaks. */
export function tidyLines(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/[ \t\u00a0]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/**
 * Extracts the text of every page of a PDF with pdf.js (no worker, no fonts, no network).
 * Throws a `CrpError` with code `corrupt-file` when the bytes are not a readable PDF. Pages without a text
 * layer give empty strings (`loadDocument` reports them).
 */
export async function extractPdfText(data: Uint8Array, name = 'PDF'): Promise<PdfText> {
  const head = new TextDecoder('latin1').decode(data.subarray(0, 1024));
  if (!head.includes('%PDF-')) {
    const looksHtml = /^\s*(<!doctype html|<html|<head|<body)/i.test(head);
    throw new CrpError(
      'corrupt-file',
      `${name} is not a PDF: it has no "%PDF-" header${looksHtml ? ' (it is an HTML page)' : ''}.`,
      { details: { file: name } },
    );
  }
  let doc: Awaited<ReturnType<typeof getDocument>['promise']> | undefined;
  try {
    doc = await getDocument({
      data: new Uint8Array(data),
      useSystemFonts: false,
      disableFontFace: true,
      isEvalSupported: false,
      verbosity: 0,
      stopAtErrors: true,
    }).promise;
    const pages: string[] = [];
    for (let p = 1; p <= doc.numPages; p++) {
      const page = await doc.getPage(p);
      const content = await page.getTextContent();
      let text = '';
      for (const item of content.items as TextItemLike[]) {
        if (typeof item.str !== 'string') continue;
        text += item.str;
        if (item.hasEOL) text += '\n';
      }
      pages.push(tidyLines(dehyphenate(text)));
      page.cleanup();
    }
    const meta = await doc.getMetadata().catch(() => undefined);
    const info = meta?.info as { Title?: unknown } | undefined;
    const title = typeof info?.Title === 'string' && info.Title.trim() ? info.Title.trim() : undefined;
    return title === undefined ? { pages } : { title, pages };
  } catch (error) {
    if (isCrpError(error)) throw error;
    throw new CrpError('corrupt-file', `${name} could not be read as a PDF: ${describeError(error)}`, {
      cause: error,
      details: { file: name },
    });
  } finally {
    await doc?.destroy();
  }
}

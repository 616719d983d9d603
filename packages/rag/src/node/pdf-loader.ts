import { CrpError, describeError, isCrpError } from '@crp/common';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';
import type { Block } from '../ingest/block.js';
import type { PdfText } from '../ingest/load-document.js';
import {
  dehyphenate,
  type HyphenLexicon,
  type PdfLine,
  pdfLines,
  pdfPageBlocks,
  runningLines,
} from '../ingest/pdf-layout.js';

interface TextItemLike {
  readonly str?: string;
  readonly hasEOL?: boolean;
  readonly transform?: readonly number[];
  readonly width?: number;
  readonly height?: number;
  readonly fontName?: string;
}

export { dehyphenate };

/** Collapses runs of spaces and trims every line; keeps line breaks. */
export function tidyLines(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/[ \t\u00a0]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

// pdf.js parses in a "fake worker" in this thread. On some damaged files it rejects an internal promise
// that nobody awaits, after the same failure already reached us (as a rejected getDocument/getPage, which
// becomes a corrupt-file CrpError). Node would end the process on that unhandled rejection, so it is
// contained here: pdf.js's own exceptions are ignored; anything else is thrown on as Node would, unless
// the application listens for unhandled rejections itself.
let containing = false;
function containPdfJsRejections(): void {
  if (containing) return;
  containing = true;
  process.on('unhandledRejection', (reason) => {
    if (isPdfJsInternal(reason)) return;
    if (process.listenerCount('unhandledRejection') === 1) throw reason;
  });
}

function isPdfJsInternal(reason: unknown): boolean {
  const stack =
    reason instanceof Error || (typeof reason === 'object' && reason !== null)
      ? String((reason as Error).stack ?? '')
      : '';
  return /pdfjs-dist[\\/]/.test(stack) && /pdf\.worker\.m?js/.test(stack);
}

/**
 * Extracts the text of every page of a PDF with pdf.js (no worker, no fonts, no network).
 * Throws a `CrpError` with code `corrupt-file` when the bytes are not a readable PDF. Pages without a text
 * layer give empty strings (`loadDocument` reports them). With `options.lexicon` (`hyphenLexicon` of the
 * dictionary), a compound split at a line end keeps its hyphen ("rule-based"), see `dehyphenate`.
 */
export async function extractPdfText(
  data: Uint8Array,
  name = 'PDF',
  options: { readonly lexicon?: HyphenLexicon } = {},
): Promise<PdfText> {
  const head = new TextDecoder('latin1').decode(data.subarray(0, 1024));
  if (!head.includes('%PDF-')) {
    const looksHtml = /^\s*(<!doctype html|<html|<head|<body)/i.test(head);
    throw new CrpError(
      'corrupt-file',
      `${name} is not a PDF: it has no "%PDF-" header${looksHtml ? ' (it is an HTML page)' : ''}.`,
      { details: { file: name } },
    );
  }
  containPdfJsRejections();
  let doc: Awaited<ReturnType<typeof getDocument>['promise']> | undefined;
  const task = getDocument({
    data: new Uint8Array(data),
    useSystemFonts: false,
    disableFontFace: true,
    isEvalSupported: false,
    verbosity: 0,
    stopAtErrors: true,
  });
  try {
    doc = await task.promise;
    const pageLines: PdfLine[][] = [];
    for (let p = 1; p <= doc.numPages; p++) {
      const page = await doc.getPage(p);
      const content = await page.getTextContent();
      const styles = content.styles as Record<string, { fontFamily?: string }>;
      const items = (content.items as TextItemLike[])
        .filter((it) => typeof it.str === 'string')
        .map((it) => ({
          str: it.str!,
          hasEOL: Boolean(it.hasEOL),
          x: it.transform?.[4] ?? 0,
          y: it.transform?.[5] ?? 0,
          ...(it.width === undefined ? {} : { width: it.width }),
          height: it.height ?? 0,
          mono: styles[it.fontName ?? '']?.fontFamily === 'monospace',
        }));
      pageLines.push(pdfLines(items));
      page.cleanup();
    }
    const drop = runningLines(pageLines);
    const blocks: Block[][] = pageLines.map((lines) => pdfPageBlocks(lines, drop, options.lexicon));
    const pages = blocks.map((bs) => bs.map((b) => b.text).join('\n\n'));
    const meta = await doc.getMetadata().catch(() => undefined);
    const info = meta?.info as { Title?: unknown } | undefined;
    const title = typeof info?.Title === 'string' && info.Title.trim() ? info.Title.trim() : undefined;
    return title === undefined ? { pages, blocks } : { title, pages, blocks };
  } catch (error) {
    if (isCrpError(error)) throw error;
    throw new CrpError('corrupt-file', `${name} could not be read as a PDF: ${describeError(error)}`, {
      cause: error,
      details: { file: name },
    });
  } finally {
    // a document that failed to open still has a loading task (and its worker side) to end
    await (doc ?? task).destroy().catch(() => undefined);
  }
}

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CrpError, describeError, isCrpError, type ProgressCallback, progressTracker } from '@crp/common';
import { writeFileAtomic } from '@crp/common/node';
import type { FileOrigin } from '../store/snapshot.js';
import { extractPdfText } from './pdf-loader.js';

/** Options of {@link downloadPaper}. */
export interface DownloadOptions {
  /** Folder the paper is saved in (the corpus folder that is indexed). */
  readonly corpusDir: string;
  /** File name in the folder; default from the arXiv id or the URL. */
  readonly fileName?: string;
  /** Time limit of one attempt in ms; default 60,000. */
  readonly timeoutMs?: number;
  /** Attempts after the first on network errors, timeouts, HTTP 429 and 5xx; default 2. */
  readonly retries?: number;
  /** Largest accepted download in bytes; default 50 MiB. */
  readonly maxBytes?: number;
  /** Overwrite a different file of the same name; default false. */
  readonly overwrite?: boolean;
  /** Base URL for `arxiv:ID`; default `https://arxiv.org` (or `CRP_RAG_ARXIV_BASE`). */
  readonly arxivBaseUrl?: string;
  /** Wait before retry k (0-based) in ms; default 500 * 2^k. */
  readonly backoffMs?: (attempt: number) => number;
  readonly onProgress?: ProgressCallback;
}

/** A downloaded paper. */
export interface DownloadedPaper {
  /** File name in the corpus folder. */
  readonly file: string;
  readonly path: string;
  /** Where it came from, with its SHA-256: what the index records. */
  readonly origin: FileOrigin;
  /** False when the same bytes were already there. */
  readonly written: boolean;
}

const ARXIV_ID = /^(\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?\/\d{7})(v\d+)?$/;

/** The URL and default file name of `arxiv:ID` or an http(s) URL. */
export function resolvePaperSource(spec: string, arxivBaseUrl?: string): { url: string; fileName: string } {
  const s = spec.trim();
  if (/^arxiv:/i.test(s)) {
    const id = s.slice(6).replace(/^abs\//, '');
    if (!ARXIV_ID.test(id)) {
      throw new CrpError(
        'invalid-argument',
        `"${spec}" is not an arXiv id; valid: arxiv:2101.00001, arxiv:2101.00001v2, arxiv:hep-th/9901001.`,
      );
    }
    const base = (arxivBaseUrl ?? process.env.CRP_RAG_ARXIV_BASE ?? 'https://arxiv.org').replace(/\/+$/, '');
    return { url: `${base}/pdf/${id}`, fileName: `arxiv-${id.replace('/', '_')}.pdf` };
  }
  let u: URL;
  try {
    u = new URL(s);
  } catch (error) {
    throw new CrpError(
      'invalid-argument',
      `"${spec}" is neither a URL nor arxiv:ID; e.g. https://example.org/paper.pdf or arxiv:2101.00001.`,
      {
        cause: error,
      },
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new CrpError('invalid-argument', `Only http(s) URLs can be downloaded; got ${u.protocol}//.`);
  }
  const base = decodeURIComponent(u.pathname.split('/').filter(Boolean).pop() ?? '') || u.hostname;
  const safe = base.replace(/[^\w.-]+/g, '_').replace(/^\.+/, '') || 'paper';
  return { url: u.toString(), fileName: /\.pdf$/i.test(safe) ? safe : `${safe}.pdf` };
}

const RETRY_STATUS = (status: number) => status === 408 || status === 429 || status >= 500;

async function attempt(url: string, timeoutMs: number, maxBytes: number, onProgress?: ProgressCallback) {
  const res = await fetch(url, {
    signal: AbortSignal.timeout(timeoutMs),
    headers: { accept: 'application/pdf', 'user-agent': '@crp/rag (crp-rag add)' },
    redirect: 'follow',
  });
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    return { status: res.status, statusText: res.statusText } as const;
  }
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new CrpError(
      'invalid-argument',
      `${url} is ${declared} bytes, more than the limit of ${maxBytes} bytes (--max-bytes); nothing was saved.`,
      { details: { url, bytes: declared, maxBytes } },
    );
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  const tick = progressTracker(Number.isFinite(declared) ? declared : undefined, onProgress, {
    unit: 'bytes',
    phase: 'download',
  });
  const reader = res.body?.getReader();
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new CrpError(
          'invalid-argument',
          `${url} sent more than the limit of ${maxBytes} bytes (--max-bytes); nothing was saved.`,
          { details: { url, maxBytes } },
        );
      }
      parts.push(value);
      tick(value.byteLength);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  return { bytes, contentType: res.headers.get('content-type') ?? '', finalUrl: res.url || url } as const;
}

/**
 * Downloads a paper (`https://...` or `arxiv:ID`) into the corpus folder, ready to be indexed: with a time
 * limit per attempt, retries with back-off on network errors, timeouts, 429 and 5xx, a size limit, and a
 * check that the bytes are a readable PDF (a URL that returns an HTML page is an error, not a file). The
 * file is written atomically; its SHA-256 goes into the returned origin (and the index records it).
 *
 * @throws CrpError `invalid-argument` (bad spec, over the size limit, name taken), `unreachable` (no answer
 *   after all attempts), `not-found` (HTTP 404/410), `read-failed` (other HTTP errors),
 *   `unsupported-format` (not a PDF, e.g. HTML), `corrupt-file` (a damaged PDF).
 */
export async function downloadPaper(spec: string, options: DownloadOptions): Promise<DownloadedPaper> {
  if (!options?.corpusDir)
    throw new CrpError('invalid-argument', 'downloadPaper needs corpusDir: the folder to save the paper in.');
  const { url, fileName: defaultName } = resolvePaperSource(spec, options.arxivBaseUrl);
  const fileName = options.fileName ?? defaultName;
  if (fileName !== path.basename(fileName) || fileName.startsWith('.') || !/\.pdf$/i.test(fileName)) {
    throw new CrpError(
      'invalid-argument',
      `The file name must be a plain name ending in .pdf; got "${fileName}".`,
    );
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  const retries = options.retries ?? 2;
  const maxBytes = options.maxBytes ?? 50 * 1024 * 1024;
  const backoff = options.backoffMs ?? ((k: number) => 500 * 2 ** k);
  let lastProblem = '';
  let got: { bytes: Uint8Array; contentType: string; finalUrl: string } | undefined;
  for (let k = 0; k <= retries; k++) {
    if (k > 0) await new Promise((r) => setTimeout(r, backoff(k - 1)));
    try {
      const r = await attempt(url, timeoutMs, maxBytes, options.onProgress);
      if ('status' in r) {
        lastProblem = `HTTP ${r.status} ${r.statusText}`.trim();
        if (RETRY_STATUS(r.status!)) continue;
        throw new CrpError(
          r.status === 404 || r.status === 410 ? 'not-found' : 'read-failed',
          `${url} answered ${lastProblem}; nothing was saved.`,
          { details: { url, status: r.status } },
        );
      }
      got = r;
      break;
    } catch (error) {
      if (isCrpError(error)) throw error;
      lastProblem =
        (error as Error)?.name === 'TimeoutError'
          ? `no answer within ${timeoutMs} ms`
          : describeError((error as Error)?.cause ?? error);
    }
  }
  if (!got) {
    throw new CrpError(
      'unreachable',
      `Could not download ${url} after ${retries + 1} attempt(s): ${lastProblem}; nothing was saved.`,
      { details: { url } },
    );
  }
  const { bytes, contentType } = got;
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 1024));
  if (!head.includes('%PDF-')) {
    const html = /html/i.test(contentType) || /^\s*(<!doctype html|<html|<head|<body)/i.test(head);
    throw new CrpError(
      'unsupported-format',
      html
        ? `${url} returned an HTML page (${contentType || 'text/html'}), not a PDF; give the link to the PDF itself (for arXiv: arxiv:ID). Nothing was saved.`
        : `${url} did not return a PDF (content type ${contentType || 'unknown'}, no "%PDF-" header); nothing was saved.`,
      { details: { url, contentType } },
    );
  }
  await extractPdfText(bytes, url); // a damaged PDF is an error now, not a skipped file later
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const target = path.join(path.resolve(options.corpusDir), fileName);
  const existing = await readFile(target).catch(() => undefined);
  const origin: FileOrigin = { url, sha256, bytes: bytes.byteLength, downloadedAt: new Date().toISOString() };
  if (existing) {
    const same = createHash('sha256').update(existing).digest('hex') === sha256;
    if (same) return { file: fileName, path: target, origin, written: false };
    if (!options.overwrite) {
      throw new CrpError(
        'invalid-argument',
        `${target} exists with other content; choose another name (--name) or overwrite it (--overwrite).`,
        { details: { path: target } },
      );
    }
  }
  await writeFileAtomic(target, bytes);
  return { file: fileName, path: target, origin, written: true };
}

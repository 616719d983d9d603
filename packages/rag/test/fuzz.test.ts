import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { isCrpError, mulberry32 } from '@crp/common';
import { describe, expect, it } from 'vitest';
import { type Chunk, chunkDocument, extractPdfText, type LoadedDocument, loadDocument } from '../src/node.js';
import { HTML, MARKDOWN, mutate, SEEDS } from './helpers/fuzz-inputs.js';

// Bounded, seeded fuzzing of ingestion: every mutated file must give a valid document (and chunks) or a
// CrpError with a code, within a time limit; never an uncaught exception of another kind or a hang.

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${ms} ms (a hang)`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** A loaded document and its chunks are well formed: text strings, spans inside the text, pages in range. */
function checkValid(doc: LoadedDocument, chunks: Chunk[]): void {
  expect(typeof doc.title).toBe('string');
  expect(['en', 'de']).toContain(doc.language);
  for (const u of doc.units) for (const bl of u.blocks) expect(typeof bl.text).toBe('string');
  for (const c of chunks) {
    expect(c.text.length).toBeGreaterThan(0);
    expect(c.metadata.startChar).toBeLessThanOrEqual(c.metadata.endChar);
    for (const bl of c.blocks ?? []) {
      expect(bl.start).toBeGreaterThanOrEqual(0);
      expect(bl.end).toBeLessThanOrEqual(c.text.length);
    }
    if (c.metadata.page !== undefined) expect(c.metadata.page).toBeLessThanOrEqual(doc.pages);
  }
}

async function fuzz(file: string, seed: Uint8Array, cases: number, rngSeed: number) {
  const rand = mulberry32(rngSeed);
  const outcome = { valid: 0, errors: new Map<string, number>() };
  for (let i = 0; i < cases; i++) {
    const bytes = mutate(seed, rand, SEEDS);
    try {
      const doc = await withTimeout(loadDocument(file, bytes, { pdf: extractPdfText }), 10_000);
      checkValid(doc, chunkDocument(doc, { chunkSize: 60, chunkOverlap: 10 }));
      outcome.valid++;
    } catch (error) {
      if (!isCrpError(error)) {
        throw new Error(`case ${i} of ${file} (seed ${rngSeed}): ${String(error)}`, { cause: error });
      }
      outcome.errors.set(error.code, (outcome.errors.get(error.code) ?? 0) + 1);
    }
  }
  return outcome;
}

describe('ingestion fuzzing (seeded, bounded)', () => {
  it('1,500 mutated Markdown files each load to a valid document or a CrpError', async () => {
    const o = await fuzz('notes.md', new TextEncoder().encode(MARKDOWN), 1500, 1);
    expect(o.valid + [...o.errors.values()].reduce((a, b) => a + b, 0)).toBe(1500);
    expect(o.valid).toBeGreaterThan(0);
  }, 120_000);

  it('1,500 mutated HTML files each load to a valid document or a CrpError', async () => {
    const o = await fuzz('page.html', new TextEncoder().encode(HTML), 1500, 2);
    expect(o.valid).toBeGreaterThan(0);
  }, 120_000);

  // In a child process with Node's default handling of unhandled rejections: pdf.js rejects internal
  // promises on some damaged files, which would end a CLI run; the child must finish every case.
  it('500 mutated PDFs each load to a valid document or a CrpError, and the process survives', async () => {
    const tsx = createRequire(import.meta.url).resolve('tsx');
    const child = fork(path.join(import.meta.dirname, 'helpers/fuzz-pdf-child.ts'), ['500', '3'], {
      execArgv: ['--import', tsx],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr?.on('data', (d) => (stderr += String(d)));
    const report = new Promise<{ valid: number; errors: Record<string, number>; other: string[] }>((r) =>
      child.once('message', (m) => r(m as never)),
    );
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code, stderr).toBe(0);
    const o = await report;
    expect(o.other).toEqual([]);
    expect(o.valid + Object.values(o.errors).reduce((a, b) => a + b, 0)).toBe(500);
    expect(o.valid).toBeGreaterThan(0);
    for (const c of Object.keys(o.errors)) expect(['corrupt-file', 'unsupported-format']).toContain(c);
  }, 300_000);
});

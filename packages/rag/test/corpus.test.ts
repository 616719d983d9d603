import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';
import { describe, expect, it } from 'vitest';
import { normalizeWhitespace } from '../src/index.js';

// The evaluation corpus is vendored (vendor/rag-corpus); CRP_RAG_CORPUS points at another copy.
const CORPUS =
  process.env.CRP_RAG_CORPUS ?? path.join(import.meta.dirname, '..', '..', '..', 'vendor', 'rag-corpus');

interface Manifest {
  documents: { file: string; sha256: string; license: string; license_files: string[] }[];
}
interface Qa {
  questions: { id: string; relevant_files: string[]; supporting_passage: { file: string; text: string } }[];
}

async function pdfText(file: string): Promise<string> {
  const doc = await getDocument({
    data: new Uint8Array(await readFile(file)),
    verbosity: 0,
    isEvalSupported: false,
  }).promise;
  let text = '';
  for (let p = 1; p <= doc.numPages; p++) {
    const content = await (await doc.getPage(p)).getTextContent();
    for (const item of content.items as { str?: string; hasEOL?: boolean }[])
      text += `${item.str ?? ''}${item.hasEOL ? ' ' : ''}`;
    text += ' ';
  }
  await doc.destroy();
  return text;
}

describe('the vendored RAG corpus', () => {
  it('holds every document of its manifest unchanged, with its licence files and provenance', async () => {
    expect(existsSync(path.join(CORPUS, 'PROVENANCE.md'))).toBe(true);
    const manifest = JSON.parse(await readFile(path.join(CORPUS, 'MANIFEST.json'), 'utf8')) as Manifest;
    expect(manifest.documents).toHaveLength(27);
    for (const d of manifest.documents) {
      const bytes = await readFile(path.join(CORPUS, d.file));
      expect(createHash('sha256').update(bytes).digest('hex'), d.file).toBe(d.sha256);
      for (const l of d.license_files) expect(existsSync(path.join(CORPUS, l)), l).toBe(true);
    }
  });

  it('every supporting passage of qa.json, qa-extra.json and the held-out sets 7 to 17 occurs in its document (Markdown as stored, PDF text by pdf.js)', async () => {
    const manifest = JSON.parse(await readFile(path.join(CORPUS, 'MANIFEST.json'), 'utf8')) as Manifest;
    const files = new Set(manifest.documents.map((d) => d.file));
    const texts = new Map<string, string>();
    let checked = 0;
    // (the other held-out sets were checked with pdftotext, whose text differs from pdf.js at a few line ends)
    for (const name of [
      'qa.json',
      'qa-extra.json',
      'qa-heldout-7.json',
      'qa-heldout-8.json',
      'qa-heldout-9.json',
      'qa-heldout-10.json',
      'qa-heldout-11.json',
      'qa-heldout-12.json',
      'qa-heldout-13.json',
      'qa-heldout-14.json',
      'qa-heldout-15.json',
      'qa-heldout-16.json',
      'qa-heldout-17.json',
    ]) {
      const qa = JSON.parse(await readFile(path.join(CORPUS, name), 'utf8')) as Qa;
      for (const q of qa.questions) {
        for (const f of q.relevant_files) expect(files.has(f), `${q.id}: ${f}`).toBe(true);
        const file = q.supporting_passage.file;
        if (!texts.has(file)) {
          const full = path.join(CORPUS, file);
          texts.set(
            file,
            normalizeWhitespace(file.endsWith('.pdf') ? await pdfText(full) : await readFile(full, 'utf8')),
          );
        }
        expect(
          texts.get(file)!.includes(normalizeWhitespace(q.supporting_passage.text)),
          `${q.id} in ${file}`,
        ).toBe(true);
        checked++;
      }
    }
    expect(checked).toBe(581);
  }, 120_000);
});

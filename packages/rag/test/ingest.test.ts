import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chunkDocument,
  dehyphenate,
  extractPdfText,
  loadDocument,
  RagError,
  resolveChunking,
  scanFolder,
  splitMarkdown,
} from '../src/index.js';
import { writeSmallCorpus } from './helpers/corpus.js';
import { makePdf } from './helpers/make-pdf.js';
import { tempDir } from './helpers/temp-dir.js';

let dir = '';
let cleanup: () => Promise<void> = async () => {};
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await writeSmallCorpus(dir);
});
afterAll(() => cleanup());

describe('ingestion', () => {
  it('scans supported files recursively, sorted, with / separators', async () => {
    await writeFile(path.join(dir, 'ignored.bin'), 'x');
    expect(await scanFolder(dir)).toEqual(['lrp.md', 'notes.txt', 'shards.pdf', 'sub/vektor.md']);
  });

  it('a missing folder is a NOT_FOUND error that names it', async () => {
    await expect(scanFolder(path.join(dir, 'nope'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('reads PDF text per page with page numbers and title', async () => {
    const pdf = await extractPdfText(await readFile(path.join(dir, 'shards.pdf')));
    expect(pdf.title).toBe('Converter Guide');
    expect(pdf.pages).toHaveLength(2);
    expect(pdf.pages[1]).toContain('creates shards of size 4 MB by default');
    const doc = await loadDocument('shards.pdf', await readFile(path.join(dir, 'shards.pdf')));
    const chunks = chunkDocument(doc);
    expect(chunks.map((c) => c.metadata.page)).toEqual([1, 2]);
    const c = chunks[1]!;
    expect(pdf.pages[1]!.slice(c.metadata.startChar, c.metadata.endChar)).toBe(c.text);
  });

  it('rejects corrupt PDFs with CORRUPT_FILE naming the file', async () => {
    const good = makePdf([['hello']]);
    await expect(extractPdfText(new TextEncoder().encode('not a pdf'), 'x.pdf')).rejects.toMatchObject({
      code: 'CORRUPT_FILE',
      message: expect.stringContaining('x.pdf'),
    });
    await expect(extractPdfText(good.subarray(0, 60), 'cut.pdf')).rejects.toBeInstanceOf(RagError);
  });

  it('de-hyphenates words broken at line ends, keeps compounds', () => {
    expect(dehyphenate('wie-\nderherstellen')).toBe('wiederherstellen');
    expect(dehyphenate('Debian-\nPaket')).toBe('Debian-Paket');
  });

  it('splits Markdown by headings with a heading path, ignoring code fences', () => {
    const md = '# A\nintro\n```\n# not a heading\n```\n## B\ntext b\n# C\ntext c';
    const { title, sections } = splitMarkdown(md);
    expect(title).toBe('A');
    expect(sections.map((s) => s.section)).toEqual(['A', 'A > B', 'C']);
    for (const s of sections) expect(md.slice(s.offset, s.offset + s.text.length)).toBe(s.text);
  });

  it('chunks with SentenceSplitter and records file, title, section and offsets', async () => {
    const text = await readFile(path.join(dir, 'lrp.md'), 'utf8');
    const doc = await loadDocument('lrp.md', new TextEncoder().encode(text));
    expect(doc.title).toBe('Layer-wise Relevance Propagation');
    const chunks = chunkDocument(doc, { chunkSize: 32, chunkOverlap: 4 });
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    for (const c of chunks) {
      expect(c.metadata.file).toBe('lrp.md');
      expect(text.slice(c.metadata.startChar, c.metadata.endChar)).toBe(c.text);
    }
    expect(chunks.some((c) => c.metadata.section === 'LRP > Gamma rule')).toBe(true);
  });

  it('detects the language of a German file, and uses the first line as title of text files', async () => {
    const de = await loadDocument('sub/vektor.md', await readFile(path.join(dir, 'sub/vektor.md')));
    expect(de.language).toBe('de');
    const txt = await loadDocument('notes.txt', await readFile(path.join(dir, 'notes.txt')));
    expect(txt.title).toBe('Notes on concepts');
  });

  it('rejects bad chunking options and binary text files with what is valid', async () => {
    expect(() => resolveChunking({ chunkSize: 100, chunkOverlap: 100 })).toThrow(/\[0, 100\)/);
    await expect(loadDocument('a.txt', new Uint8Array([0xff, 0xfe, 0x00]))).rejects.toMatchObject({
      code: 'CORRUPT_FILE',
    });
    await expect(loadDocument('a.doc', new Uint8Array([1]))).rejects.toMatchObject({
      code: 'UNSUPPORTED_FORMAT',
    });
  });
});

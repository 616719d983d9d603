import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RagIndex as MemoryIndex } from '../src/index.js';
import {
  type EmbeddingProvider,
  HashEmbedding,
  INDEX_FILE,
  type Progress,
  QueryTranslator,
  RagIndex,
} from '../src/node.js';
import { writeSmallCorpus } from './helpers/corpus.js';
import { CountingEmbedding } from './helpers/counting-embedding.js';
import { makeImageOnlyPdf, makePdf } from './helpers/make-pdf.js';
import { tempDir } from './helpers/temp-dir.js';

let root = '';
let cleanup: () => Promise<void> = async () => {};
let docs = '';
let store = '';
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir());
  docs = path.join(root, 'docs');
  store = path.join(root, 'index');
  await writeSmallCorpus(docs);
});
afterAll(() => cleanup());

describe('RagIndex on disk', () => {
  it('chunks PDFs again, and only them, when the dictionary that decides their hyphens comes or goes', async () => {
    const folder = path.join(root, 'hyphens');
    const dir = path.join(root, 'hyphens-index');
    await mkdir(folder, { recursive: true });
    await writeFile(
      path.join(folder, 'rules.pdf'),
      makePdf([['The relevance is computed by a rule-', 'based method for every layer of the network.']]),
    );
    await writeFile(path.join(folder, 'notes.md'), '# Notes\n\nA rule-based method, in Markdown.\n');
    // "rule" and "base" are English words of this dictionary, "rulebased" is none: the hyphen stays
    const dictionary = QueryTranslator.fromStemPairs('regel\trule\t1\nbasis\tbase\t1\n', { source: 'small' });
    const pdfText = (index: RagIndex) =>
      index.snapshot.chunks
        .filter((c) => c.metadata.file === 'rules.pdf')
        .map((c) => c.text)
        .join(' ');
    const emb = new CountingEmbedding();
    const without = await RagIndex.open({ dir, embedding: emb, translator: null });
    expect((await without.update(folder)).added).toEqual(['notes.md', 'rules.pdf']);
    expect(pdfText(without)).toContain('rulebased');
    const withDictionary = await RagIndex.open({ dir, embedding: emb, translator: dictionary });
    const installed = await withDictionary.update(folder);
    expect(installed).toMatchObject({ changed: ['rules.pdf'], unchanged: ['notes.md'], added: [] });
    expect(pdfText(withDictionary)).toContain('rule-based');
    // the same dictionary again: nothing to do
    const again = await RagIndex.open({ dir, embedding: emb, translator: dictionary });
    expect(await again.update(folder)).toMatchObject({ changed: [], unchanged: ['notes.md', 'rules.pdf'] });
    const removed = await RagIndex.open({ dir, embedding: emb, translator: null });
    expect(await removed.update(folder)).toMatchObject({ changed: ['rules.pdf'], unchanged: ['notes.md'] });
    expect(pdfText(removed)).toContain('rulebased');
  });

  it('indexes a folder, reports progress with ETA in the toolkit Progress shape, and persists', async () => {
    const emb = new CountingEmbedding();
    const index = await RagIndex.open({ dir: store, embedding: emb });
    const progress: Progress[] = [];
    const r = await index.update(docs, { onProgress: (p) => progress.push(p) });
    expect(r.added).toEqual(['lrp.md', 'notes.txt', 'shards.pdf', 'sub/vektor.md']);
    expect(r.pageCount).toBe(5);
    expect(emb.count).toBe(r.chunkCount);
    expect(new Set(progress.map((p) => p.phase))).toEqual(new Set(['scan', 'load', 'embed', 'save']));
    const embed = progress.filter((p) => p.phase === 'embed');
    expect(embed[embed.length - 1]).toMatchObject({
      done: r.chunkCount,
      total: r.chunkCount,
      unit: 'chunks',
      etaMs: 0,
    });
    for (const p of progress) expect(p.elapsedMs).toBeGreaterThanOrEqual(0);
    const again = await RagIndex.open({ dir: store, embedding: emb });
    expect(again.chunks.length).toBe(r.chunkCount);
    expect(again.files['lrp.md']!.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('re-embeds only changed files, removes deleted ones, reports corrupt and text-less files by name', async () => {
    const emb = new CountingEmbedding();
    const index = await RagIndex.open({ dir: store, embedding: emb });
    const same = await index.update(docs);
    expect(same.embeddedChunks).toBe(0);
    expect(emb.count).toBe(0);
    expect(same.unchanged).toHaveLength(4);

    await writeFile(
      path.join(docs, 'notes.txt'),
      'Notes on concepts\n\nA changed note about pruning of concepts.\n',
    );
    await rm(path.join(docs, 'sub/vektor.md'));
    await writeFile(path.join(docs, 'broken.pdf'), '%PDF-1.4\n garbage that is no pdf');
    await writeFile(path.join(docs, 'scan.pdf'), makeImageOnlyPdf(2));
    const r = await index.update(docs);
    expect(r.changed).toEqual(['notes.txt']);
    expect(r.deleted).toEqual(['sub/vektor.md']);
    expect(r.skipped.map((s) => [s.file, s.code])).toEqual([
      ['broken.pdf', 'corrupt-file'],
      ['scan.pdf', 'unsupported-format'],
    ]);
    expect(r.skipped[1]!.message).toMatch(/no text layer/);
    expect(emb.count).toBe(r.embeddedChunks);
    expect(r.embeddedChunks).toBe(1);
    expect(index.chunks.some((c) => c.metadata.file === 'sub/vektor.md')).toBe(false);
    expect(index.chunks.some((c) => c.text.includes('pruning'))).toBe(true);
    await rm(path.join(docs, 'broken.pdf'));
    await rm(path.join(docs, 'scan.pdf'));
  });

  it('re-embeds everything when the embedding provider changes', async () => {
    const emb = new CountingEmbedding('other-model');
    const index = await RagIndex.open({ dir: store, embedding: emb });
    await expect(index.search('relevance')).rejects.toMatchObject({ code: 'embedding-mismatch' });
    const r = await index.update(docs);
    expect(r.embeddedChunks).toBe(r.chunkCount);
  });

  it('leaves index file and memory untouched when embedding fails half-way', async () => {
    const dir = path.join(root, 'fail-index');
    const ok = await RagIndex.open({ dir, embedding: new CountingEmbedding() });
    await ok.update(docs);
    const before = await readFile(path.join(dir, INDEX_FILE));
    const mtime = (await stat(path.join(dir, INDEX_FILE))).mtimeMs;
    const failing: EmbeddingProvider = {
      id: 'hash-256',
      embed: async () => {
        throw new Error('GPU fell off');
      },
    };
    const index = await RagIndex.open({ dir, embedding: failing });
    const chunks = index.chunks.length;
    await writeFile(path.join(docs, 'new.md'), '# New\n\nA new file about gamma rules.\n');
    await expect(index.update(docs)).rejects.toMatchObject({
      code: 'embedding-failed',
      message: /GPU fell off/,
    });
    expect(index.chunks.length).toBe(chunks);
    expect(index.files['new.md']).toBeUndefined();
    expect(await readFile(path.join(dir, INDEX_FILE))).toEqual(before);
    expect((await stat(path.join(dir, INDEX_FILE))).mtimeMs).toBe(mtime);
    await rm(path.join(docs, 'new.md'));
  });
});

describe('search', () => {
  let index: RagIndex;
  beforeAll(async () => {
    const d = path.join(root, 'docs2');
    await writeSmallCorpus(d);
    // the real English-German dictionary (@crp/rag-dictionary-de-en) is loaded by RagIndex.open
    index = await RagIndex.open({ dir: path.join(root, 'i2'), embedding: new HashEmbedding() });
    await index.update(d);
  });

  it('an English question finds the German passage (offline, through the dictionary)', async () => {
    expect(index.translator?.source).toMatch(/Ding/);
    const hits = await index.search('Why are embeddings stored in a vector database?', { topK: 1 });
    expect(hits[0]!.chunk.metadata.file).toBe('sub/vektor.md');
    expect(hits[0]!.chunk.metadata.language).toBe('de');
  });

  it('a German question finds the English passage', async () => {
    const hits = await index.search('Welche Regel nutzt man für Faltungsschichten?', { topK: 1 });
    expect(hits[0]!.chunk.metadata).toMatchObject({
      file: 'lrp.md',
      section: 'LRP > Gamma rule',
      language: 'en',
    });
  });

  it('without the dictionary the English question does not find the German passage', async () => {
    const mono = new MemoryIndex({
      embedding: new HashEmbedding(),
      snapshot: index.snapshot,
      translator: null,
    });
    const hits = await mono.search('Why are embeddings stored in a vector database?', { topK: 5 });
    expect(hits.map((h) => h.chunk.metadata.file)).not.toContain('sub/vektor.md');
  });

  it('finds English passages by their words, from a table row and a PDF page', async () => {
    const en = await index.search('What shard size does the converter create by default?', { topK: 1 });
    expect(en[0]!.chunk.metadata).toMatchObject({ file: 'shards.pdf', page: 2 });
    expect(en[0]!.lexicalScore).toBeGreaterThan(0);
    const table = await index.search('Which methods need only forward passes?', { topK: 1 });
    expect(table[0]!.chunk.text).toContain('Method: Occlusion; Forward passes only: yes');
  });

  it('rejects empty and 10,000-character questions, empty indexes and bad topK with what is valid', async () => {
    const empty = await RagIndex.open({ dir: path.join(root, 'none'), embedding: new CountingEmbedding() });
    await expect(empty.search('x')).rejects.toMatchObject({ code: 'empty-index' });
    await expect(index.search('   ')).rejects.toMatchObject({ code: 'invalid-argument', message: /empty/ });
    await expect(index.search('why '.repeat(2500))).rejects.toMatchObject({
      code: 'invalid-argument',
      message: 'The question has 10000 characters; at most 2000 are allowed. Ask a shorter question.',
    });
    await expect(index.search('epsilon rule', { topK: 0 })).rejects.toThrow(/positive integer/);
  });
});

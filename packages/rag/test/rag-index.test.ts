import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Progress, RagIndex } from '../src/index.js';
import { writeSmallCorpus } from './helpers/corpus.js';
import { CountingEmbedding } from './helpers/counting-embedding.js';
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

describe('RagIndex', () => {
  it('indexes a folder, reports progress and persists', async () => {
    const emb = new CountingEmbedding();
    const index = await RagIndex.open({ dir: store, embedding: emb });
    const progress: Progress[] = [];
    const r = await index.update(docs, { onProgress: (p) => progress.push(p) });
    expect(r.added).toEqual(['lrp.md', 'notes.txt', 'shards.pdf', 'sub/vektor.md']);
    expect(r.pageCount).toBe(5);
    expect(emb.count).toBe(r.chunkCount);
    expect(new Set(progress.map((p) => p.phase))).toEqual(new Set(['scan', 'load', 'embed', 'save']));
    const again = await RagIndex.open({ dir: store, embedding: emb });
    expect(again.chunks.length).toBe(r.chunkCount);
  });

  it('re-embeds only changed files, removes deleted ones, skips corrupt ones by name', async () => {
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
    const r = await index.update(docs);
    expect(r.changed).toEqual(['notes.txt']);
    expect(r.deleted).toEqual(['sub/vektor.md']);
    expect(r.skipped.map((s) => s.file)).toEqual(['broken.pdf']);
    expect(r.skipped[0]!.message).toContain('broken.pdf');
    expect(emb.count).toBe(r.embeddedChunks);
    expect(r.embeddedChunks).toBe(1);
    expect(index.chunks.some((c) => c.metadata.file === 'sub/vektor.md')).toBe(false);
    expect(index.chunks.some((c) => c.text.includes('pruning'))).toBe(true);
  });

  it('re-embeds everything when the embedding provider changes', async () => {
    const emb = new CountingEmbedding('other-model');
    const index = await RagIndex.open({ dir: store, embedding: emb });
    await expect(index.search('relevance')).rejects.toMatchObject({ code: 'EMBEDDING_MISMATCH' });
    const r = await index.update(docs);
    expect(r.embeddedChunks).toBe(r.chunkCount);
  });

  it('finds German documents by their terms and English ones by meaning and words', async () => {
    const d = path.join(root, 'docs2');
    await writeSmallCorpus(d);
    const index = await RagIndex.open({ dir: path.join(root, 'i2'), embedding: new CountingEmbedding() });
    await index.update(d);
    const de = await index.search('Warum speichern wir Einbettungen in einer Vektordatenbank?', { topK: 1 });
    expect(de[0]!.chunk.metadata.file).toBe('sub/vektor.md');
    const en = await index.search('What shard size does the converter create by default?', { topK: 1 });
    expect(en[0]!.chunk.metadata).toMatchObject({ file: 'shards.pdf', page: 2 });
    expect(en[0]!.lexicalScore).toBeGreaterThan(0);
  });

  it('rejects empty questions, empty indexes and bad topK with what is valid', async () => {
    const empty = await RagIndex.open({ dir: path.join(root, 'none'), embedding: new CountingEmbedding() });
    await expect(empty.search('x')).rejects.toMatchObject({ code: 'EMPTY_INDEX' });
    const index = await RagIndex.open({ dir: path.join(root, 'i2'), embedding: new CountingEmbedding() });
    await expect(index.search('   ')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(index.search('x', { topK: 0 })).rejects.toThrow(/positive integer/);
  });
});

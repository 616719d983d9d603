import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TextNode } from '@llamaindex/core/schema';
import { VectorStoreQueryMode } from '@llamaindex/core/vector-store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChromaVectorStore, HashEmbedding, RagIndex } from '../src/index.js';
import { startChroma } from './helpers/chroma-server.js';
import { writeSmallCorpus } from './helpers/corpus.js';
import { tempDir } from './helpers/temp-dir.js';

let root = '';
let cleanup: () => Promise<void> = async () => {};
let chroma: { port: number; stop: () => Promise<void> };
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir());
  chroma = await startChroma(path.join(root, 'chroma-data'));
}, 60_000);
afterAll(async () => {
  await chroma?.stop();
  await cleanup();
});

describe('ChromaVectorStore (Chroma server on 127.0.0.1 started by the test)', () => {
  it('adds, queries and deletes nodes as a llamaindex vector store', async () => {
    const store = new ChromaVectorStore({ collectionName: 'unit-test', port: chroma.port });
    const node = (id: string, v: number[], file: string) =>
      new TextNode({
        id_: id,
        text: id,
        embedding: v,
        metadata: { file },
        relationships: { SOURCE: { nodeId: file, metadata: {} } },
      });
    await store.add([node('a', [1, 0, 0], 'f1'), node('b', [0, 1, 0], 'f1'), node('c', [0.9, 0.1, 0], 'f2')]);
    const r = await store.query({
      queryEmbedding: [1, 0, 0],
      similarityTopK: 2,
      mode: VectorStoreQueryMode.DEFAULT,
    });
    expect(r.ids).toEqual(['a', 'c']);
    expect(r.similarities[0]).toBeCloseTo(1, 4);
    await store.delete('f1');
    expect(await store.count()).toBe(1);
  });

  it('keeps a RagIndex in sync incrementally and serves its dense search', async () => {
    const docs = path.join(root, 'docs');
    await writeSmallCorpus(docs);
    const store = new ChromaVectorStore({ collectionName: 'rag-index', port: chroma.port });
    const open = () =>
      RagIndex.open({
        dir: path.join(root, 'index'),
        embedding: new HashEmbedding(),
        vectorStore: { key: store.key, store },
      });
    const index = await open();
    const r = await index.update(docs);
    expect(await store.count()).toBe(r.chunkCount);
    const hits = await index.search('What shard size does the converter create by default?', { topK: 1 });
    expect(hits[0]!.chunk.metadata).toMatchObject({ file: 'shards.pdf', page: 2 });
    expect(hits[0]!.denseRank).toBe(1);

    await rm(path.join(docs, 'notes.txt'));
    await writeFile(path.join(docs, 'lrp.md'), '# LRP\n\nOnly one short sentence about relevance now.\n');
    const again = await (await open()).update(docs);
    expect(again.deleted).toEqual(['notes.txt']);
    expect(again.changed).toEqual(['lrp.md']);
    expect(await store.count()).toBe(again.chunkCount);
  });

  it('bad collection names are rejected with the rule', () => {
    expect(() => new ChromaVectorStore({ collectionName: 'x' })).toThrow(/3-63 characters/);
  });
});

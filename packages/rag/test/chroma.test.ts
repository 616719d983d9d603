import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TextNode } from '@llamaindex/core/schema';
import { VectorStoreQueryMode } from '@llamaindex/core/vector-store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChromaVectorStore, HashEmbedding, INDEX_FILE, RagIndex, runCli } from '../src/node.js';
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

  it('bad collection names and URLs are rejected with the rule', () => {
    expect(() => new ChromaVectorStore({ collectionName: 'x' })).toThrow(/3-63 characters/);
    expect(() => ChromaVectorStore.fromUrl('chroma.local')).toThrow(/http:\/\/127\.0\.0\.1:8000/);
    expect(ChromaVectorStore.fromUrl('http://127.0.0.1:9000/papers').key).toBe(
      'chroma:http://127.0.0.1:9000/papers',
    );
    expect(ChromaVectorStore.fromUrl('http://127.0.0.1:9000').key).toBe(
      'chroma:http://127.0.0.1:9000/crp-rag',
    );
  });
});

async function run(args: string[]) {
  let out = '';
  let err = '';
  const r = await runCli(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { ...r, out, err };
}

describe('crp-rag --chroma on index, ask and serve (the same Chroma server)', () => {
  it('index fills the collection, ask and serve search it; a Chroma server that is down is a clear error, index untouched, HTTP 503', async () => {
    const docs = path.join(root, 'cli-docs');
    await writeSmallCorpus(docs);
    const index = path.join(root, 'cli-index');
    const url = `http://127.0.0.1:${chroma.port}/cli-papers`;
    const i = await run(['index', docs, '--index', index, '--embedding', 'hash', '--chroma', url]);
    expect(i.err).not.toContain('crp-rag:');
    expect(i.code).toBe(0);
    const store = ChromaVectorStore.fromUrl(url);
    const chunks = Number(/indexed (\d+) chunks/.exec(i.out)![1]);
    expect(await store.count()).toBe(chunks);

    // ask and serve remember --chroma from index (cli.json); the dense side comes from Chroma
    const a = await run([
      'ask',
      'What shard size does the converter create by default?',
      '--index',
      index,
      '--json',
      '--llm',
      'none',
    ]);
    const answer = JSON.parse(a.out) as { sources: { file: string; denseScore: number }[] };
    expect(answer.sources[0]!.file).toBe('shards.pdf');
    const s = await run(['serve', '--index', index, '--port', '0', '--llm', 'none']);
    expect(s.out).toContain(`(vectors in chroma:http://127.0.0.1:${chroma.port}/cli-papers)`);
    const base = /(http:\/\/127\.0\.0\.1:\d+)\//.exec(s.out)![1]!;
    const ask = (question: string) =>
      fetch(`${base}/api/ask`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ question }),
      });
    const ok = await ask('What shard size does the converter create by default?');
    expect(ok.status).toBe(200);

    // now the Chroma server goes down
    await chroma.stop();
    const down = await ask('What shard size does the converter create by default?');
    expect(down.status).toBe(503);
    const body = (await down.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('unreachable');
    expect(body.error.message).toContain(`The Chroma server http://127.0.0.1:${chroma.port} does not answer`);
    await s.stop!();

    const askDown = await run(['ask', 'shard size?', '--index', index, '--llm', 'none']);
    expect(askDown.code).toBe(1);
    expect(askDown.err).toContain('crp-rag: unreachable: The Chroma server');

    const before = await readFile(path.join(index, INDEX_FILE));
    const mtime = (await stat(path.join(index, INDEX_FILE))).mtimeMs;
    await writeFile(path.join(docs, 'new.md'), '# New\n\nA new note about the gamma rule.\n');
    const indexDown = await run(['index', docs, '--index', index]);
    expect(indexDown.code).toBe(1);
    expect(indexDown.err).toMatch(/crp-rag: unreachable: The Chroma server .* does not answer .*--chroma/);
    expect(await readFile(path.join(index, INDEX_FILE))).toEqual(before);
    expect((await stat(path.join(index, INDEX_FILE))).mtimeMs).toBe(mtime);
  }, 60_000);
});

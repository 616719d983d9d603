import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  dot,
  HashEmbedding,
  OpenAICompatibleEmbedding,
  TransformersEmbedding,
  toLlamaIndexEmbedding,
  UseLiteEmbedding,
} from '../src/node.js';
import { json, startFakeServer } from './helpers/fake-server.js';
import { tempDir } from './helpers/temp-dir.js';
import { writeTinyModel } from './helpers/tiny-onnx-model.js';

const here = path.dirname(fileURLToPath(import.meta.url));

let root = '';
let cleanup: () => Promise<void> = async () => {};
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir());
});
afterAll(() => cleanup());

describe('UseLiteEmbedding (offline default)', () => {
  it('loads the USE-lite weights from node_modules without any network access and embeds by meaning', async () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch').mockImplementation(() => {
      throw new Error('network access attempted');
    });
    const emb = new UseLiteEmbedding({ backend: 'wasm', mode: 'contextual' });
    try {
      const [cat, kitten, tax] = await emb.embed([
        'The cat sleeps on the sofa.',
        'A kitten is napping on the couch.',
        'Quarterly tax filings are due in April.',
      ]);
      expect(cat!.length).toBe(512);
      expect(dot(cat!, cat!)).toBeCloseTo(1, 4);
      expect(dot(cat!, kitten!)).toBeGreaterThan(dot(cat!, tax!) + 0.1);
      expect(fetchSpy).not.toHaveBeenCalled();
    } finally {
      fetchSpy.mockRestore();
      await emb.dispose();
    }
  });

  it('static mode: piece vectors computed once and cached; paraphrases close, unrelated text far', async () => {
    const cacheDir = path.join(root, 'use-cache');
    const emb = new UseLiteEmbedding({ cacheDir });
    expect(emb.id).toBe('use-lite-static-512');
    const texts = [
      'The epsilon rule stabilises the denominator.',
      'A small stabiliser is added to the denominator by the epsilon rule.',
      'Debian packages are built with dpkg-buildpackage.',
    ];
    const [a, b, c] = await emb.embed(texts);
    expect(dot(a!, a!)).toBeCloseTo(1, 5);
    expect(dot(a!, b!)).toBeGreaterThan(0.8);
    expect(dot(a!, c!)).toBeLessThan(0.5); // centred: unrelated texts are not all at ~0.95
    const { readdir } = await import('node:fs/promises');
    const cached = await readdir(cacheDir);
    expect(cached).toHaveLength(1);
    expect(cached[0]).toMatch(/^use-lite-pieces-[0-9a-f]{16}\.f32$/);
    // a second instance reads the cache and gives the same vectors
    // (it reads only the rows of these texts' pieces from the file)
    const second = new UseLiteEmbedding({ cacheDir });
    const again = await second.embed(texts);
    expect(Array.from(again[1]!)).toEqual(Array.from(b!));
    // a batch that needs many rows reads the whole table at once: the same vectors as row by row
    const corpus = readFileSync(
      path.resolve(here, '../../../vendor/rag-corpus/docs/captum-faq.md'),
      'utf8',
    ).split(/\n+/);
    const batch = await new UseLiteEmbedding({ cacheDir }).embed([...texts, ...corpus]);
    for (const k of [0, 1, 2]) expect(Array.from(batch[k]!)).toEqual(Array.from(again[k]!));
    // and the row-by-row instance, given the same batch after its first rows, agrees too
    const mixed = await second.embed([...corpus, ...texts]);
    expect(Array.from(mixed[corpus.length + 2]!)).toEqual(Array.from(c!));
    await second.dispose();
    await emb.dispose();
    // Where the time goes (house4, load 16-21): computing the 8,000-piece table in the fresh cache, 16 batches of 512
    // one-piece inputs at 250-340 ms CPU each on 2 wasm threads (BatchMatMul on XNNPACK ~40% of kernel time, TF.js's
    // SplitV ~20%: it copies its whole input out of the heap per piece; an in-place SplitV measured 283 -> 238 ms per
    // batch), plus ~0.8 s loading the model: about 5 s CPU, 14-28 s wall at load 21, so over 60 s near load 30.
  }, 60_000);

  it('says which folder is wrong when the model is missing', async () => {
    const emb = new UseLiteEmbedding({
      modelDir: path.join(root, 'missing'),
      backend: 'wasm',
      mode: 'contextual',
    });
    await expect(emb.embed(['x'])).rejects.toMatchObject({
      code: 'embedding-failed',
      message: expect.stringContaining('missing'),
    });
  });
});

describe('TransformersEmbedding (local ONNX folder)', () => {
  it('embeds with a tiny generated model and never goes remote', async () => {
    const dir = path.join(root, 'tiny-model');
    await writeTinyModel(dir, {
      cat: [1, 0, 0, 0],
      kitten: [0.9, 0.1, 0, 0],
      tax: [0, 0, 1, 0],
      april: [0, 0, 0.8, 0.2],
    });
    const emb = new TransformersEmbedding({ modelDir: dir });
    try {
      const [a, b, c] = await emb.embed(['cat', 'kitten', 'tax april']);
      expect(a!.length).toBe(4);
      expect(dot(a!, b!)).toBeGreaterThan(0.95);
      expect(dot(a!, c!)).toBeLessThan(0.1);
    } finally {
      await emb.dispose();
    }
    const missing = new TransformersEmbedding({ modelDir: path.join(root, 'no-such-model') });
    await expect(missing.embed(['x'])).rejects.toMatchObject({ code: 'embedding-failed' });
    expect(() => new TransformersEmbedding({} as never)).toThrow(/exactly one of modelDir .* or model/);
  }, 60_000);

  it('loads by model id when online (here: a local mirror on 127.0.0.1), caching the files', async () => {
    const dir = path.join(root, 'hub-model');
    await writeTinyModel(dir, { rule: [1, 0, 0], regel: [0.95, 0.05, 0], tax: [0, 0, 1] });
    const hub = await startFakeServer((req, res) => {
      // transformers.js asks for {host}/{model}/resolve/{revision}/{file}
      const m = /^\/test-org\/tiny-multilingual\/resolve\/main\/(.+)$/.exec(req.url);
      if (!m) return json(res, 404, { error: 'not found' });
      readFile(path.join(dir, m[1]!)).then(
        (bytes) => {
          res.writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': bytes.byteLength,
          });
          res.end(bytes);
        },
        () => json(res, 404, { error: 'not found' }),
      );
    });
    const emb = new TransformersEmbedding({
      model: 'test-org/tiny-multilingual',
      remoteHost: hub.url,
      cacheDir: path.join(root, 'hf-cache'),
    });
    try {
      expect(emb.id).toBe('transformers:test-org/tiny-multilingual:mean:fp32');
      expect(emb.multilingual).toBe(true);
      const [a, b, c] = await emb.embed(['rule', 'regel', 'tax']);
      expect(dot(a!, b!)).toBeGreaterThan(0.99);
      expect(dot(a!, c!)).toBeLessThan(0.01);
      expect(hub.requests.some((r) => r.url.endsWith('/onnx/model.onnx'))).toBe(true);
    } finally {
      await emb.dispose();
      await hub.close();
    }
    const offline = new TransformersEmbedding({
      model: 'test-org/absent',
      remoteHost: hub.url,
      cacheDir: path.join(root, 'hf-cache2'),
    });
    await expect(offline.embed(['x'])).rejects.toMatchObject({ code: 'unreachable', message: /modelDir/ });
  }, 60_000);
});

describe('OpenAICompatibleEmbedding', () => {
  it('calls /embeddings of a server on 127.0.0.1 with the key from the environment', async () => {
    const server = await startFakeServer((req, res) => {
      const body = req.body as { input: string[]; encoding_format?: string };
      // the OpenAI client asks for base64 float32 by default, as real servers support
      const encode = (v: number[]) =>
        body.encoding_format === 'base64' ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v;
      json(res, 200, {
        object: 'list',
        model: 'fake-embed',
        data: body.input.map((t, i) => ({
          object: 'embedding',
          index: i,
          embedding: encode([t.length, 1, 0]),
        })),
        usage: { prompt_tokens: 1, total_tokens: 1 },
      });
    });
    process.env.CRP_TEST_EMBED_KEY = 'sk-test-secret';
    try {
      const emb = new OpenAICompatibleEmbedding({
        baseURL: `${server.url}/v1`,
        model: 'fake-embed',
        apiKeyEnv: 'CRP_TEST_EMBED_KEY',
      });
      const [v] = await emb.embed(['abc']);
      expect(Array.from(v!).map((x) => Number(x.toFixed(4)))).toEqual([0.9487, 0.3162, 0]);
      expect(server.requests[0]!.url).toBe('/v1/embeddings');
      expect(server.requests[0]!.headers.authorization).toBe('Bearer sk-test-secret');
      expect(JSON.stringify(emb)).not.toContain('sk-test-secret');
      expect(emb.id).not.toContain('sk-test-secret');
    } finally {
      delete process.env.CRP_TEST_EMBED_KEY;
      await server.close();
    }
  });

  it('reports a failing server as embedding-failed and bad config as provider-config', async () => {
    const server = await startFakeServer((_req, res) => json(res, 400, { error: { message: 'bad model' } }));
    try {
      const emb = new OpenAICompatibleEmbedding({ baseURL: `${server.url}/v1`, model: 'x', maxRetries: 0 });
      await expect(emb.embed(['a'])).rejects.toMatchObject({ code: 'embedding-failed' });
    } finally {
      await server.close();
    }
    expect(() => new OpenAICompatibleEmbedding({ baseURL: 'ftp://x', model: 'm' })).toThrow(/http\(s\) URL/);
  });
});

describe('llamaindex adapter', () => {
  it('exposes a provider as a llamaindex BaseEmbedding', async () => {
    const li = toLlamaIndexEmbedding(new HashEmbedding({ dimensions: 8 }));
    const v = await li.getTextEmbedding('relevance propagation');
    expect(v).toHaveLength(8);
    expect(await li.getTextEmbeddings(['a b', 'c d'])).toHaveLength(2);
  });
});

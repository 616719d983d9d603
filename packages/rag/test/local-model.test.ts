import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isCrpError } from '@crp/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RagEngine, RagIndex } from '../src/index.js';
import type { NodeLlamaCppApi } from '../src/node/local-model.js';
import {
  createLlmGenerator,
  generatorFromSpec,
  HashEmbedding,
  type LocalCompletionModel,
  LocalModelAnswerGenerator,
  llamaCppGenerator,
  runCli,
} from '../src/node.js';
import { json, startFakeServer } from './helpers/fake-server.js';
import { tempDir } from './helpers/temp-dir.js';

let dir = '';
let cleanup: () => Promise<void> = async () => {};
let engine: RagEngine;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  const index = new RagIndex({ embedding: new HashEmbedding(), translator: null });
  await index.updateFiles([
    {
      file: 'converter.md',
      bytes: new TextEncoder().encode(
        '# Converter\n\nThe command above creates shards of size 4 MB by default. Smaller shards load faster.',
      ),
    },
  ]);
  engine = new RagEngine(index);
});
afterAll(() => cleanup());

const QUESTION = 'What shard size does the converter create by default?';
const line = (content: string, done = false) =>
  `${JSON.stringify({ model: 'llama-test', created_at: new Date(0).toISOString(), message: { role: 'assistant', content }, done, ...(done ? { done_reason: 'stop' } : {}) })}\n`;

describe('Ollama (a fake server on 127.0.0.1)', () => {
  it('streams the answer piece by piece; every generated sentence is still checked against the sources', async () => {
    const server = await startFakeServer((req, res) => {
      if (req.url !== '/api/chat') return json(res, 404, { error: 'unknown' });
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      for (const piece of ['Shards are ', '4 MB by default [1]. ', 'They are stored on the moon [1].'])
        res.write(line(piece));
      res.end(line('', true));
    });
    try {
      const generator = createLlmGenerator({ provider: 'ollama', model: 'llama-test', baseURL: server.url });
      const pieces: string[] = [];
      const a = await engine.ask(QUESTION, { generator, explain: false, onToken: (t) => pieces.push(t) });
      expect(pieces.join('')).toBe('Shards are 4 MB by default [1]. They are stored on the moon [1].');
      expect(pieces.length).toBeGreaterThanOrEqual(3);
      expect((server.requests[0]!.body as { stream: boolean }).stream).toBe(true);
      expect(a.mode).toBe('ollama:llama-test');
      expect(a.sentences.map((s) => s.label)).toEqual(['supported', 'unsupported']);
      // the prompt holds the cleaned passage
      const messages = (server.requests[0]!.body as { messages: { content: string }[] }).messages;
      expect(messages[1]!.content).toContain('The command above creates shards of size 4 MB by default.');
    } finally {
      await server.close();
    }
  });

  it('a server that answers garbage is provider-failed; one that is down is unreachable; the index is untouched', async () => {
    const before = engine.index.version;
    const garbage = await startFakeServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end('this is not json\n');
    });
    try {
      const generator = createLlmGenerator({ provider: 'ollama', model: 'x', baseURL: garbage.url });
      for (const onToken of [undefined, () => {}]) {
        const error = await engine
          .ask(QUESTION, { generator, explain: false, ...(onToken ? { onToken } : {}) })
          .catch((e: unknown) => e);
        expect(isCrpError(error, 'provider-failed'), String(error)).toBe(true);
      }
    } finally {
      await garbage.close();
    }
    const down = createLlmGenerator({ provider: 'ollama', model: 'x', baseURL: garbage.url }); // closed now
    const error = await engine
      .ask(QUESTION, { generator: down, explain: false, onToken: () => {} })
      .catch((e: unknown) => e);
    expect(isCrpError(error, 'unreachable'), String(error)).toBe(true);
    expect(engine.index.version).toBe(before);
  });
});

describe('local models in this process (node-llama-cpp behind an interface)', () => {
  const fake = (pieces: string[], fail?: Error): LocalCompletionModel => ({
    name: 'fake.gguf',
    async complete(system, user, onText) {
      expect(system).toContain('only the numbered sources');
      expect(user).toContain('shards of size 4 MB');
      for (const p of pieces) {
        await new Promise((r) => setTimeout(r, 1));
        onText?.(p);
      }
      if (fail) throw fail;
      return pieces.join('');
    },
  });

  it('streams and answers through the same grounding', async () => {
    let opened = 0;
    const generator = new LocalModelAnswerGenerator('llama-cpp:fake.gguf', async () => {
      opened++;
      return fake(['Shards are 4 MB ', 'by default [1].']);
    });
    const pieces: string[] = [];
    const a = await engine.ask(QUESTION, { generator, explain: false, onToken: (t) => pieces.push(t) });
    expect(pieces).toEqual(['Shards are 4 MB ', 'by default [1].']);
    expect(a.sentences[0]!.label).toBe('supported');
    const b = await engine.ask(QUESTION, { generator, explain: false });
    expect(b.answer).toBe(a.answer);
    expect(opened).toBe(1); // the model is opened once
  });

  it('a model that fails mid-answer is provider-failed', async () => {
    const generator = new LocalModelAnswerGenerator('llama-cpp:fake.gguf', async () =>
      fake(['Shards'], new Error('context overflow')),
    );
    const error = await engine
      .ask(QUESTION, { generator, explain: false, onToken: () => {} })
      .catch((e) => e);
    expect(isCrpError(error, 'provider-failed')).toBe(true);
    expect(String(error)).toContain('context overflow');
  });

  it('a GGUF path that does not exist, or is not GGUF, is a clear error before anything runs', async () => {
    expect(() => llamaCppGenerator(path.join(dir, 'missing.gguf'))).toThrow(/missing\.gguf does not exist/);
    expect(() => generatorFromSpec(`llama-cpp:${path.join(dir, 'missing.gguf')}`)).toThrow(
      expect.objectContaining({ code: 'not-found' }),
    );
    await writeFile(path.join(dir, 'model.bin'), 'x');
    expect(() => llamaCppGenerator(path.join(dir, 'model.bin'))).toThrow(/not a \.gguf file/);
    expect(() => generatorFromSpec('llama-cpp:')).toThrow(/needs the model file/);
    expect(generatorFromSpec('none')).toBeUndefined();
  });
});

describe('crp-rag ask with a local model', () => {
  it('streams the answer of an Ollama server (OLLAMA_HOST) as it is written; a missing GGUF file is a clear error', async () => {
    const server = await startFakeServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(line('Shards are 4 MB '));
      res.write(line('by default [1].'));
      res.end(line('', true));
    });
    const indexDir = path.join(dir, 'cli-index');
    const docs = path.join(dir, 'docs');
    await import('node:fs/promises').then((fs) => fs.mkdir(docs, { recursive: true }));
    await writeFile(
      path.join(docs, 'converter.md'),
      '# Converter\n\nThe command above creates shards of size 4 MB by default.',
    );
    const run = async (args: string[]) => {
      let out = '';
      let err = '';
      const r = await runCli(args, { out: (t) => (out += t), err: (t) => (err += t) });
      return { ...r, out, err };
    };
    const saved = process.env.OLLAMA_HOST;
    process.env.OLLAMA_HOST = server.url;
    try {
      expect((await run(['index', docs, '--index', indexDir, '--embedding', 'hash'])).code).toBe(0);
      const a = await run(['ask', QUESTION, '--index', indexDir, '--llm', 'ollama:llama-test']);
      expect(a.code, a.err).toBe(0);
      expect(a.out.startsWith('Shards are 4 MB by default [1].')).toBe(true);
      expect(a.out).toContain('With citations:\nShards are 4 MB by default [converter.md].');
      expect(a.out).toContain('(ollama:llama-test; answer in English)');
      const missing = await run([
        'ask',
        QUESTION,
        '--index',
        indexDir,
        '--llm',
        `llama-cpp:${path.join(dir, 'no.gguf')}`,
      ]);
      expect(missing.code).toBe(1);
      expect(missing.err).toMatch(/crp-rag: not-found: The GGUF model file .*no\.gguf does not exist/);
    } finally {
      if (saved === undefined) delete process.env.OLLAMA_HOST;
      else process.env.OLLAMA_HOST = saved;
      await server.close();
    }
  });
});

describe('node-llama-cpp, the real package (installed as a dev dependency; no model is loaded)', () => {
  it('exports what the adapter calls, with the types the adapter assumes', async () => {
    const real = await import('node-llama-cpp');
    // compile-time: the installed package's types fit the hand-written interface the adapter uses
    const api: NodeLlamaCppApi = real;
    expect(typeof api.getLlama).toBe('function');
    expect(typeof real.LlamaChatSession.prototype.prompt).toBe('function');
    expect(typeof real.LlamaModel.prototype.createContext).toBe('function');
    expect(typeof real.LlamaModel.prototype.dispose).toBe('function');
    expect(typeof real.LlamaContext.prototype.getSequence).toBe('function');
    expect(typeof real.LlamaContext.prototype.dispose).toBe('function');
    // `build: 'never'` is a valid option of the installed version (prebuilt binaries only, never a build)
    const options: import('node-llama-cpp').LlamaOptions = { build: 'never' };
    expect(options).toEqual({ build: 'never' });
  });

  it('a .gguf file that is no model is corrupt-file from the real package, with prebuilt binaries only', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const file = path.join(dir, 'broken.gguf');
      await writeFile(file, new Uint8Array(1024).fill(7));
      const generator = llamaCppGenerator(file);
      const error = await generator.generate('What is LRP?', []).catch((e: unknown) => e);
      expect(isCrpError(error) && error.code).toBe('corrupt-file');
      expect(String((error as Error).message)).toMatch(/could not load .*broken\.gguf as a GGUF model/);
      await generator.dispose();
    } finally {
      await cleanup();
    }
  }, 120_000);
});

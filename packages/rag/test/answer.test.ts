import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  composeExtractiveAnswer,
  createLlmGenerator,
  parseGeneratedAnswer,
  RagEngine,
  redact,
  type Source,
} from '../src/index.js';
import { writeSmallCorpus } from './helpers/corpus.js';
import { CountingEmbedding } from './helpers/counting-embedding.js';
import { json, startFakeServer } from './helpers/fake-server.js';
import { tempDir } from './helpers/temp-dir.js';

let root = '';
let cleanup: () => Promise<void> = async () => {};
let engine: RagEngine;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir());
  await writeSmallCorpus(path.join(root, 'docs'));
  engine = await RagEngine.open({ dir: path.join(root, 'index'), embedding: new CountingEmbedding() });
  await engine.update(path.join(root, 'docs'));
});
afterAll(() => cleanup());

const source = (n: number, file: string, page?: number): Source => ({
  n,
  chunkId: `${file}#${n}`,
  file,
  title: file,
  ...(page ? { page } : {}),
  citation: page ? `[${file}, p. ${page}]` : `[${file}]`,
  score: 1,
  denseScore: 1,
  lexicalScore: 1,
  text: 'x',
});

describe('extractive answers with grounding', () => {
  it('answers from the best source sentence with a [file, p. N] citation, every sentence supported', async () => {
    const a = await engine.ask('What shard size does the converter create by default?', { explain: false });
    expect(a.mode).toBe('extractive');
    expect(a.answer).toContain('creates shards of size 4 MB by default');
    expect(a.answer).toContain('[shards.pdf, p. 2]');
    expect(a.sources[0]!.citation).toBe('[shards.pdf, p. 2]');
    expect(a.sentences.length).toBeGreaterThan(0);
    for (const s of a.sentences) {
      expect(s.supported).toBe(true);
      expect(s.support!.score).toBeGreaterThan(0.9);
    }
    expect(a.grounded).toBe(true);
  });

  it('composes nothing from nothing', () => {
    expect(composeExtractiveAnswer([], [])).toEqual({ text: '', sentences: [] });
  });
});

describe('LLM answers (fake servers on 127.0.0.1)', () => {
  const reply = 'The converter writes 4 MB shards by default [1]. The moon is made of green cheese [2].';

  it('OpenAI adapter: key from the environment, [n] citations rewritten, unsupported sentence flagged', async () => {
    const server = await startFakeServer((req, res) => {
      if (req.url !== '/v1/chat/completions') return json(res, 404, { error: { message: 'unknown' } });
      json(res, 200, {
        id: 'x',
        object: 'chat.completion',
        created: 0,
        model: 'gpt-test',
        choices: [{ index: 0, message: { role: 'assistant', content: reply }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      });
    });
    process.env.OPENAI_API_KEY = 'sk-openai-secret-1';
    try {
      const generator = createLlmGenerator({
        provider: 'openai',
        model: 'gpt-test',
        baseURL: `${server.url}/v1`,
      });
      const a = await engine.ask('What shard size does the converter create by default?', {
        generator,
        explain: false,
      });
      expect(a.mode).toBe('openai:gpt-test');
      const req = server.requests[0]!;
      expect(req.headers.authorization).toBe('Bearer sk-openai-secret-1');
      const body = req.body as { model: string; messages: { role: string; content: string }[] };
      expect(body.model).toBe('gpt-test');
      expect(body.messages[1]!.content).toContain('[1] [shards.pdf, p. 2]');
      expect(a.answer).toContain(`by default ${a.sources[0]!.citation}.`);
      expect(a.sentences[0]).toMatchObject({ citations: [1], supported: true });
      expect(a.sentences[1]!.supported).toBe(false);
      expect(a.grounded).toBe(false);
      expect(JSON.stringify(a)).not.toContain('sk-openai-secret-1');
    } finally {
      delete process.env.OPENAI_API_KEY;
      await server.close();
    }
  });

  it('Groq goes through the OpenAI adapter with GROQ_API_KEY; provider errors never show the key', async () => {
    const server = await startFakeServer((req, res) =>
      json(res, 401, { error: { message: `Invalid API key ${String(req.headers.authorization)}` } }),
    );
    process.env.GROQ_API_KEY = 'gsk-groq-secret-2';
    try {
      const generator = createLlmGenerator({
        provider: 'groq',
        model: 'llama-test',
        baseURL: `${server.url}/openai/v1`,
      });
      const err = await engine.ask('shard size?', { generator, explain: false }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'PROVIDER_FAILED' });
      expect(String((err as Error).message)).not.toContain('gsk-groq-secret-2');
      expect(server.requests[0]!.url).toBe('/openai/v1/chat/completions');
      expect(server.requests[0]!.headers.authorization).toBe('Bearer gsk-groq-secret-2');
    } finally {
      delete process.env.GROQ_API_KEY;
      await server.close();
    }
  });

  it('a missing key is a PROVIDER_CONFIG error naming the variable', () => {
    delete process.env.GROQ_API_KEY;
    expect(() => createLlmGenerator({ provider: 'groq', model: 'm' })).toThrow(/GROQ_API_KEY/);
    expect(() => createLlmGenerator({ provider: 'nope' as 'groq', model: 'm' })).toThrow(
      /openai, groq, ollama/,
    );
  });

  it('Ollama adapter talks to /api/chat', async () => {
    const server = await startFakeServer((req, res) => {
      if (req.url !== '/api/chat') return json(res, 404, { error: 'unknown' });
      json(res, 200, {
        model: 'llama-test',
        created_at: new Date(0).toISOString(),
        message: { role: 'assistant', content: 'Shards are 4 MB by default [1].' },
        done: true,
        done_reason: 'stop',
      });
    });
    try {
      const generator = createLlmGenerator({ provider: 'ollama', model: 'llama-test', baseURL: server.url });
      const a = await engine.ask('What shard size does the converter create by default?', {
        generator,
        explain: false,
      });
      expect(a.mode).toBe('ollama:llama-test');
      expect(a.answer).toBe(`Shards are 4 MB by default ${a.sources[0]!.citation}.`);
      expect((server.requests[0]!.body as { model: string }).model).toBe('llama-test');
    } finally {
      await server.close();
    }
  });

  it('parses [n] marks, moves marks after the full stop, drops unknown sources; redacts secrets', () => {
    const sources = [source(1, 'a.pdf', 3), source(2, 'b.md')];
    const p = parseGeneratedAnswer('First claim. [1] Second claim [1, 2]. Third [9].', sources);
    expect(p.sentences.map((s) => s.citations)).toEqual([[1], [1, 2], []]);
    expect(p.text).toBe('First claim [a.pdf, p. 3]. Second claim [a.pdf, p. 3] [b.md]. Third.');
    expect(redact('key sk-123456 leaked', ['sk-123456'])).toBe('key *** leaked');
  });
});

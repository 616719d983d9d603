/**
 * The grounding check of generated sentences catches a wrong number on its own: a sentence whose words the
 * sources support but whose number no source contains is `unsupported`, with that one note. (The other test of
 * numbers, in answer.test.ts, uses a sentence that fails the word check too, so it cannot tell whether the
 * number check works; the mutation check found that.)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLlmGenerator, RagEngine } from '../src/node.js';
import { CountingEmbedding } from './helpers/counting-embedding.js';
import { json, startFakeServer } from './helpers/fake-server.js';
import { tempDir } from './helpers/temp-dir.js';

const FAQ = [
  '# CRP FAQ',
  '',
  '## How does CRP differ from LRP?',
  '',
  'LRP returns one heatmap per prediction for the whole model. However, CRP splits that heatmap into one heatmap per concept by masking the relevance flow of single channels.',
].join('\n');

let cleanup: () => Promise<void> = async () => {};
let engine: RagEngine;
beforeAll(async () => {
  let root: string;
  ({ dir: root, cleanup } = await tempDir());
  const docs = path.join(root, 'docs');
  await mkdir(docs, { recursive: true });
  await writeFile(path.join(docs, 'faq.md'), FAQ);
  engine = await RagEngine.open({
    dir: path.join(root, 'index'),
    embedding: new CountingEmbedding(),
    generator: null,
  });
  await engine.update(docs);
});
afterAll(() => cleanup());

const chat = (content: string) => ({
  id: 'x',
  object: 'chat.completion',
  created: 0,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});

/** Asks with a fake LLM (on 127.0.0.1) that answers `reply`. */
async function askWith(reply: string) {
  const server = await startFakeServer((req, res) =>
    req.url === '/v1/chat/completions' ? json(res, 200, chat(reply)) : json(res, 404, {}),
  );
  try {
    const generator = createLlmGenerator({
      provider: 'openai',
      model: 'gpt-test',
      baseURL: `${server.url}/v1`,
      env: { OPENAI_API_KEY: 'sk-test' },
    });
    return await engine.ask('How does CRP differ from LRP?', { generator, explain: false });
  } finally {
    await server.close();
  }
}

describe('grounding of generated sentences: numbers', () => {
  const faithful =
    'CRP splits that heatmap into one heatmap per concept by masking the relevance flow of single channels [1].';

  it('supports the faithful sentence', async () => {
    const a = await askWith(faithful);
    expect(a.sentences.map((s) => s.label)).toEqual(['supported']);
    expect(a.grounded).toBe(true);
  });

  it('flags the same sentence with a number that no source contains, and says only that', async () => {
    const a = await askWith(faithful.replace('single channels', '4711 single channels'));
    const [s] = a.sentences;
    expect(s!.support!.score).toBeGreaterThanOrEqual(0.5); // the words are supported
    expect(s!.label).toBe('unsupported');
    expect(s!.supported).toBe(false);
    expect(s!.notes).toEqual(['numbers not in any source: 4711']);
    expect(a.grounded).toBe(false);
  });
});

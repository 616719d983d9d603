import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddingFromSpec, runCli } from '../src/index.js';
import { writeSmallCorpus } from './helpers/corpus.js';
import { tempDir } from './helpers/temp-dir.js';

let root = '';
let cleanup: () => Promise<void> = async () => {};
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir());
  await writeSmallCorpus(path.join(root, 'docs'));
});
afterAll(() => cleanup());

async function run(args: string[]) {
  let out = '';
  let err = '';
  const r = await runCli(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { ...r, out, err };
}

describe('CLI', () => {
  it('index, ask (text and --json) and serve', async () => {
    const index = path.join(root, 'idx');
    const i = await run(['index', path.join(root, 'docs'), '--index', index, '--embedding', 'hash']);
    expect(i.code).toBe(0);
    expect(i.out).toMatch(/indexed \d+ chunks from 4 files \(5 pages\)/);
    expect(i.err).toContain('embed');

    const again = await run(['index', path.join(root, 'docs'), '--index', index]);
    expect(again.out).toContain('4 unchanged');
    expect(again.out).toContain('0 chunks embedded');

    const a = await run(['ask', 'What shard size does the converter create by default?', '--index', index]);
    expect(a.code).toBe(0);
    expect(a.out).toContain('[shards.pdf, p. 2]');
    expect(a.out).toContain('Sources:');

    const j = await run([
      'ask',
      'Which rule is used for convolutional layers?',
      '--index',
      index,
      '--json',
      '--top-k',
      '2',
    ]);
    const parsed = JSON.parse(j.out) as { sources: unknown[]; explanation: { embeddingMap: unknown } };
    expect(parsed.sources).toHaveLength(2);
    expect(parsed.explanation.embeddingMap).toBeDefined();

    const s = await run(['serve', '--index', index, '--port', '0']);
    expect(s.out).toMatch(/serving \d+ chunks on http:\/\/127\.0\.0\.1:\d+\//);
    const url = /(http:\/\/\S+)\//.exec(s.out)![1]!;
    expect((await fetch(`${url}/api/health`)).status).toBe(200);
    await s.stop!();
  });

  it('says what is wrong with bad input', async () => {
    expect((await run([])).code).toBe(2);
    expect((await run(['frobnicate'])).err).toContain('valid: index, ask, serve');
    expect((await run(['ask', '', '--index', path.join(root, 'none'), '--embedding', 'hash'])).err).toContain(
      'needs a question',
    );
    const empty = await run(['ask', 'hello', '--index', path.join(root, 'none'), '--embedding', 'hash']);
    expect(empty.code).toBe(1);
    expect(empty.err).toContain('EMPTY_INDEX');
    expect(() => embeddingFromSpec('bert')).toThrow(/valid: use-lite, hash/);
    expect(
      (await run(['ask', 'x', '--llm', 'claude:x', '--embedding', 'hash', '--index', path.join(root, 'idx')]))
        .err,
    ).toContain('openai:<model>, groq:<model>, ollama:<model>');
  });
});

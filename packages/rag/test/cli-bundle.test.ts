import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stemCacheFile } from '../src/node/stem-cache.js';
import { runCliCaptured, useCliFolder } from './helpers/cli-folder.js';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(
  pkg,
  (JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin[
    'crp-rag'
  ]!,
);

const inRoot = useCliFolder();

describe('the bundled crp-rag command (package bin)', () => {
  it('answers exactly as the CLI module does, in a process of its own; errors exit 2 with the same message', async () => {
    expect(existsSync(bin), `${bin} is missing: build the package (pnpm --filter @crp/rag build)`).toBe(true);
    const index = inRoot('idx');
    expect(
      (await runCliCaptured(['index', inRoot('docs'), '--index', index, '--embedding', 'hash'])).code,
    ).toBe(0);
    for (const args of [
      ['ask', 'What shard size does the converter create by default?', '--index', index, '--llm', 'none'],
      ['ask', 'Wie werden Vektoren gespeichert?', '--index', index, '--llm', 'none', '--explain'],
      [
        'ask',
        'What shard size does the converter create?',
        '--index',
        index,
        '--llm',
        'none',
        '--json',
        '--explain',
      ],
      ['ask', '?!', '--index', index, '--llm', 'none'],
      ['ask', 'x', '--index', index, '--top-k', '99'],
    ]) {
      const want = await runCliCaptured(args);
      // timings in --json differ between two runs; everything else is the same answer
      const stable = (s: string) => s.replace(/"(retrieveMs|answerMs|explainMs)": [\d.e-]+/g, '"$1": 0');
      // the same answer whatever the stem cache holds: nothing, this question's stems, or a damaged file
      for (const cache of ['as left', 'warm', 'damaged']) {
        if (cache === 'damaged')
          writeFileSync(stemCacheFile(process.env.CRP_RAG_CACHE_DIR!), 'crp-rag stems 1 \u0000');
        const got = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
        expect(stable(got.stdout), `${args.join(' ')} (${cache})`).toBe(stable(want.out));
        expect(got.status, got.stderr).toBe(want.code);
        if (want.code !== 0) expect(got.stderr).toContain(want.err.trim());
      }
    }
    // a damaged file is replaced by the next answer's stems
    const ok = spawnSync(process.execPath, [bin, 'ask', 'How are vectors stored?', '--index', index], {
      encoding: 'utf8',
    });
    expect(ok.status, ok.stderr).toBe(0);
    expect(readFileSync(stemCacheFile(process.env.CRP_RAG_CACHE_DIR!), 'utf8')).toMatch(
      /^crp-rag stems 1 snowball-stemmers@[\d.]+\n(en|de)\t/,
    );
  }, 120_000);
});

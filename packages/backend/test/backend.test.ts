import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

interface Choice {
  backend: string;
  threads: number;
  notes: string[];
  values: number[];
  product: number[];
}

/** Runs the selection in a fresh process; the process must end by itself (no worker keeps it alive). */
function choose(threads: number): Choice {
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(here, 'fixtures', 'choose.ts'), String(threads)],
    {
      cwd: join(here, '..'),
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  expect(run.error, run.stderr).toBeUndefined();
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as Choice;
}

describe('selectBackend', () => {
  it('falls back from tfjs-node (not installable here) to wasm and says why', () => {
    const single = choose(1);
    expect(single.backend).toBe('wasm');
    expect(single.threads).toBe(1);
    expect(single.notes).toContain('@tensorflow/tfjs-node is not installed');
  });

  it('runs wasm with 2 threads, gives bit-identical results, and the process exits', () => {
    const single = choose(1);
    const multi = choose(2);
    expect(multi.backend).toBe('wasm');
    expect(multi.threads).toBe(2);
    expect(multi.values).toEqual(single.values);
    expect(multi.product).toEqual(single.product);
  });
});

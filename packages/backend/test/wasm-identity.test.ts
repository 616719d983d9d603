import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

interface Case {
  got: unknown;
  want: unknown;
}

describe('the wasm Identity kernel of selectBackend', () => {
  it('shares the data and keeps it until the last tensor is disposed, for every dtype and caller', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'fixtures', 'identity-edge.ts')], {
      cwd: join(here, '..'),
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<string, unknown> & {
      originalFirst: Case & { sameData: boolean };
      callers: Case & { shapes: number[][] };
      memory: { tensors: number[]; buffers: number[] };
    };
    expect(r.backend).toBe('wasm');
    expect(r.again).toBe(true);
    expect(r.originalFirst.sameData).toBe(true);
    for (const name of ['originalFirst', 'cloneFirst', 'dtypes', 'callers', 'grad']) {
      const c = r[name] as Case;
      expect(c.got, name).toEqual(c.want);
    }
    expect(r.callers.shapes).toEqual([
      [2, 1, 3, 1],
      [2, 1, 3, 1],
    ]);
    // every tensor disposed: no tensor and no data buffer left behind
    expect(r.memory.tensors[1]).toBe(r.memory.tensors[0]);
    expect(r.memory.buffers[1]).toBe(r.memory.buffers[0]);
  });
});

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { copyBox } from '../src/copy-box.js';

const here = dirname(fileURLToPath(import.meta.url));

describe('copyBox', () => {
  it('copies a box of a [2, 3, 4] array, hand-checked', () => {
    const src = Float32Array.from({ length: 24 }, (_, i) => i);
    const out = new Float32Array(2 * 2 * 2);
    copyBox(src, [2, 3, 4], [0, 1, 2], [2, 2, 2], out);
    // rows 1-2, columns 2-3 of both planes
    expect(Array.from(out)).toEqual([6, 7, 10, 11, 18, 19, 22, 23]);
  });

  it('joins full trailing axes into one run: a crop of H in NHWC, a slice along the first axis', () => {
    const src = Float32Array.from({ length: 2 * 4 * 3 * 2 }, (_, i) => i);
    const crop = new Float32Array(2 * 2 * 3 * 2);
    copyBox(src, [2, 4, 3, 2], [0, 1, 0, 0], [2, 2, 3, 2], crop);
    expect(Array.from(crop)).toEqual([
      6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41,
    ]);
    const first = new Float32Array(24);
    copyBox(src, [2, 4, 3, 2], [1, 0, 0, 0], [1, 4, 3, 2], first);
    expect(Array.from(first)).toEqual(Array.from({ length: 24 }, (_, i) => 24 + i));
  });
});

describe('the wasm Slice and SplitV kernels of selectBackend', () => {
  it('equal the cpu backend on 300 random boxes (ranks 1-5, float32/int32/bool, -1 and empty sizes), 100 random splits (empty parts too) and after the heap grew', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'fixtures', 'slice-fuzz.ts')], {
      cwd: join(here, '..'),
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const { installed, cases, splits, grown } = JSON.parse(run.stdout.trim().split('\n').pop()!) as {
      installed: boolean;
      cases: { shape: number[]; begin: number[]; size: number[]; wasm: number[]; cpu: number[] }[];
      splits: { shape: number[]; axis: number; sizes: number[]; wasm: number[][]; cpu: number[][] }[];
      grown: { wasm: number[]; cpu: number[] };
    };
    expect(installed).toBe(true);
    expect(cases).toHaveLength(300);
    for (const c of cases) expect(c.wasm, JSON.stringify([c.shape, c.begin, c.size])).toEqual(c.cpu);
    expect(cases.some((c) => c.wasm.length === 0)).toBe(true);
    expect(splits).toHaveLength(100);
    for (const c of splits) {
      expect(c.wasm, JSON.stringify([c.shape, c.axis, c.sizes])).toEqual(c.cpu);
      expect(c.wasm.map((p) => p.length)).toEqual(
        c.sizes.map((s) => (s * c.shape.reduce((a, b) => a * b, 1)) / c.shape[c.axis]!),
      );
    }
    expect(splits.some((c) => c.sizes.includes(0) && c.sizes.length > 1)).toBe(true);
    expect(grown.wasm).toHaveLength(5 * 7 * 9);
    expect(grown.wasm).toEqual(grown.cpu);
  });
});

describe('the wasm Slice kernel on what random boxes miss', () => {
  it('slices reshape aliases, a disposed input, int32 / bool, under tidy and a gradient tape, after a second install and a cpu round trip, and into a grown heap', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'fixtures', 'slice-edge.ts')], {
      cwd: join(here, '..'),
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<string, Record<string, unknown>> & {
      backend: string;
      leak: number;
    };
    expect(r.backend).toBe('wasm');
    for (const k of ['alias', 'disposed', 'dtypes', 'grad']) expect(r[k]!.got, k).toEqual(r[k]!.want);
    expect(r.leak).toBe(0);
    // TF.js's wasm backend has no Complex kernel: complex64 never reaches Slice there
    expect(r.complex).toEqual({ error: "Kernel 'Complex' not registered for backend 'wasm'" });
    expect(r.twice).toEqual({ again: true, marked: true, onCpu: [2, 3], onWasm: [3, 4], backend: 'wasm' });
    expect(r.large).toMatchObject({ grew: true, bad: 0 });
  });
});

describe('installWasmSlice without selectBackend (what a browser page calls)', () => {
  it('registers the in-place kernels for wasm, and wasmSliceInstalled reads them from the registry', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-wasm');
    const { installWasmSlice, wasmSliceInstalled } = await import('../src/wasm-slice.js');
    expect(wasmSliceInstalled()).toBe(false); // TF.js's own kernel
    expect(await tf.setBackend('wasm')).toBe(true);
    expect(installWasmSlice()).toBe(true);
    expect(wasmSliceInstalled()).toBe(true);
    const x = tf.tensor3d(
      Array.from({ length: 24 }, (_, i) => i),
      [2, 3, 4],
    );
    const y = tf.slice(x, [0, 1, 2], [2, 2, 2]);
    expect(Array.from(y.dataSync())).toEqual([6, 7, 10, 11, 18, 19, 22, 23]);
    const [a, b] = tf.split(x, [1, 2], 1);
    expect(Array.from(a!.dataSync())).toEqual([0, 1, 2, 3, 12, 13, 14, 15]);
    expect(Array.from(b!.dataSync())).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23]);
    tf.dispose([x, y, a!, b!]);
  });
});

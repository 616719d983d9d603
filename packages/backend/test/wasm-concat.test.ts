import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCopier } from '../src/copy-box.js';

const here = dirname(fileURLToPath(import.meta.url));

describe('runCopier', () => {
  it('copies short and long runs between views of one buffer and between separate arrays, hand-checked', () => {
    const buffer = new ArrayBuffer(4 * 100);
    const src = new Float32Array(buffer, 4 * 10, 40);
    const out = new Float32Array(buffer, 4 * 60, 40);
    src.set(Array.from({ length: 40 }, (_, i) => i + 1));
    const copy = runCopier(src, out);
    copy(2, 0, 3); // short: one by one
    copy(5, 3, 20); // long: copyWithin on the whole buffer
    expect(Array.from(out.subarray(0, 23))).toEqual([
      3,
      4,
      5,
      ...Array.from({ length: 20 }, (_, i) => i + 6),
    ]);
    expect(out[23]).toBe(0);
    // nothing outside the output was written
    expect(new Float32Array(buffer, 0, 10).every((v) => v === 0)).toBe(true);
    expect(Array.from(src)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const plain = new Int32Array(30);
    const from = Int32Array.from({ length: 30 }, (_, i) => -i);
    const other = runCopier(from, plain);
    other(1, 2, 2);
    other(4, 10, 18);
    expect(Array.from(plain.subarray(0, 4))).toEqual([0, 0, -1, -2]);
    expect(Array.from(plain.subarray(10, 28))).toEqual(Array.from({ length: 18 }, (_, i) => -(i + 4)));
  });
});

describe('the wasm Concat and Pack kernels of selectBackend', () => {
  it('equal the cpu backend on 300 random concatenations and stacks (ranks 1-5, 2-4 inputs, empty inputs, negative axes, float32/int32/bool) and into a grown heap', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'fixtures', 'concat-fuzz.ts')], {
      cwd: join(here, '..'),
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout.trim().split('\n').pop()!) as {
      installed: { concat: boolean; pack: boolean };
      cases: { op: string; shapes: number[][]; axis: number; dtype: string; wasm: number[]; cpu: number[] }[];
      grown: { size: number; bad: number };
      leak: number;
    };
    expect(r.installed).toEqual({ concat: true, pack: true });
    expect(r.cases).toHaveLength(300);
    for (const c of r.cases) expect(c.wasm, JSON.stringify([c.op, c.shapes, c.axis, c.dtype])).toEqual(c.cpu);
    // the cases cover what they are meant to
    expect(r.cases.some((c) => c.op === 'concat' && c.shapes.some((s) => s.includes(0)))).toBe(true);
    expect(r.cases.some((c) => c.axis < 0)).toBe(true);
    expect(r.cases.some((c) => c.shapes[0]!.at(-1)! > 16)).toBe(true);
    expect(r.grown).toEqual({ size: 2 * 300 * 2 * 300, bad: 0 });
    expect(r.leak).toBe(0);
  });
});

describe('installWasmConcat without selectBackend (what a browser page calls)', () => {
  it('registers both kernels for wasm once, and wasmConcatInstalled reads it from the registry', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-wasm');
    const { installWasmConcat, wasmConcatInstalled } = await import('../src/wasm-concat.js');
    expect(wasmConcatInstalled()).toBe(false); // TF.js's own kernel
    expect(installWasmConcat()).toBe(true);
    expect(wasmConcatInstalled()).toBe(true);
    const pack = tf.getKernel('Pack', 'wasm')!.kernelFunc;
    expect(installWasmConcat()).toBe(true);
    expect(tf.getKernel('Pack', 'wasm')!.kernelFunc).toBe(pack);
  });
});

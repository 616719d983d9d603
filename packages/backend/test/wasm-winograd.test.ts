import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { winogradApplies } from '../src/wasm-winograd.js';

const here = dirname(fileURLToPath(import.meta.url));

describe('winogradApplies (the measured rule)', () => {
  it('takes convs with 256+ channels and products of 12 M multiply-adds, none of ResNet-50 at batch 1 or 8', () => {
    expect(winogradApplies(1, 56, 56, 256, 256)).toBe(true); // 196 tiles x 256 x 256 = 12.8 M
    expect(winogradApplies(1, 28, 28, 512, 512)).toBe(true); // 49 tiles
    expect(winogradApplies(1, 28, 28, 256, 512)).toBe(false); // 6.4 M
    // 14x14x512: 16 tiles at batch 1 (slower), 128 at batch 8 (faster)
    expect(winogradApplies(1, 14, 14, 512, 512)).toBe(false);
    expect(winogradApplies(8, 14, 14, 512, 512)).toBe(true);
    for (const batch of [1, 8])
      for (const [hw, c] of [
        [56, 64],
        [28, 128],
        [14, 256],
        [7, 512],
      ] as const)
        expect(winogradApplies(batch, hw, hw, c, c)).toBe(false);
    expect(winogradApplies(16, 224, 224, 64, 64)).toBe(false);
    expect(winogradApplies(16, 112, 112, 128, 128)).toBe(false);
  });
});

describe('the wasm Winograd F(4x4, 3x3) convolution', () => {
  it('equals the direct wasm conv to float32 rounding on 60 random cases (batch 1-3, sizes 1-13, channels 1-9, every padding, fused bias + ReLU), leaks nothing, frees its weights with the filter or on uninstall', () => {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(here, 'fixtures', 'winograd-cases.ts')],
      {
        cwd: join(here, '..'),
        encoding: 'utf8',
        timeout: 300_000,
      },
    );
    expect(run.status, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout.trim().split('\n').pop()!) as {
      cases: {
        shape: number[];
        cout: number;
        pad: string;
        fused: boolean;
        err: number;
        scale: number;
        grew: { tensors: number; data: number };
        dropped: number;
      }[];
      ruled: { size: number[]; applies: boolean; err: number; scale: number }[];
      reshaped: { rel: number[]; freed: number };
      defaultErr: number;
    };
    expect(r.cases).toHaveLength(60);
    for (const c of r.cases) {
      const label = JSON.stringify([c.shape, c.cout, c.pad, c.fused]);
      // the direct conv's own float32 error is about 1e-6 of the largest output; F(4x4, 3x3) about 1e-5
      expect(c.err / c.scale, label).toBeLessThan(2e-5);
      expect(c.scale, label).toBeGreaterThan(1);
      // one output tensor; on the backend the output, the 36 transformed weights, the input transform's filter and
      // the scalars 2, 4, 8 (each uninstall frees them, so every case makes them again)
      expect(c.grew.tensors, label).toBe(1);
      expect(c.grew.data, label).toBe(1 + 36 + 1 + 3);
      // uninstalling frees the weights of the live filter and the constants
      expect(c.dropped, label).toBe(36 + 1 + 3);
    }
    // the cases cover what they are meant to: sizes not multiples of 4, batch > 1, padding kinds, fused
    expect(r.cases.some((c) => c.shape[1]! % 4 !== 0 && c.shape[2]! % 4 !== 0)).toBe(true);
    expect(r.cases.some((c) => c.shape[0]! > 1)).toBe(true);
    expect(r.cases.some((c) => c.fused)).toBe(true);
    expect(new Set(r.cases.map((c) => c.pad)).size).toBe(7);
    // the default rule: Winograd where it applies (the results differ from direct in the last bits), direct
    // elsewhere (the same bits)
    expect(r.ruled.map((c) => c.applies)).toEqual([true, false, false]);
    expect(r.ruled[0]!.err).toBeGreaterThan(0);
    expect(r.ruled[0]!.err / r.ruled[0]!.scale).toBeLessThan(2e-5);
    expect(r.ruled[1]!.err).toBe(0);
    expect(r.ruled[2]!.err).toBe(0);
    // a reshaped filter (same data, other Cin/Cout) gets its own transformed weights; both sets freed with the data
    expect(r.reshaped.rel).toHaveLength(2);
    for (const rel of r.reshaped.rel) expect(rel).toBeLessThan(2e-5);
    expect(r.reshaped.freed).toBe(1 + 2 * 36);
    // selectBackend without { winograd: true } keeps the direct kernel even where the rule would take Winograd
    expect(r.defaultErr).toBe(0);
  });
});

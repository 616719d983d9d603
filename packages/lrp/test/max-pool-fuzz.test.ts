/**
 * Fuzz of the max-pool gradient (prepared masks, both the tiled and the per-phase path) against a float64
 * reference: random geometries (pool 1-4, strides 1-4 including stride > pool, 'same' / 'valid' / explicit
 * PyTorch padding), many ties, a relevance batch larger than the input's; plus the dot-product test of the
 * adjoint and a leak check. On the host backends overlapping or padded windows take the index path ('auto'); the
 * mask path, which GPU backends take, is run on them too ('masks').
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import type { PoolParams } from '../src/graph/types.js';
import { prepareMaxPoolGradient } from '../src/ops/max-pool-gradient.js';
import { windowPadding } from '../src/ops/strided.js';
import { mulberry32, switchBackend } from './helpers.js';
import { MAX_POOL_NAN_CASES } from './max-pool-nan-cases.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number]];

/** Float64 reference: each window's relevance to its first maximum (row-major), padding never wins. */
function reference(
  x: Float32Array,
  [B, H, W, C]: [number, number, number, number],
  r: Float32Array,
  RB: number,
  p: PoolParams,
): Float64Array {
  const [kh, kw] = p.poolSize;
  const [sh, sw] = p.strides;
  const ax = (a: 0 | 1) => (typeof p.padding === 'string' ? p.padding : p.padding[a]);
  const [pt, , ho] = windowPadding(H, kh, sh, ax(0));
  const [pl, , wo] = windowPadding(W, kw, sw, ax(1));
  const OB = Math.max(B, RB);
  const out = new Float64Array(OB * H * W * C);
  for (let ob = 0; ob < OB; ob++) {
    const xb = B === 1 ? 0 : ob;
    const rb = RB === 1 ? 0 : ob;
    for (let oh = 0; oh < ho; oh++)
      for (let ow = 0; ow < wo; ow++)
        for (let c = 0; c < C; c++) {
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++) {
              const y = oh * sh + i - pt;
              const xx = ow * sw + j - pl;
              if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
              const v = x[((xb * H + y) * W + xx) * C + c]!;
              if (v > best) {
                best = v;
                at = (y * W + xx) * C + c;
              }
            }
          if (at >= 0) out[ob * H * W * C + at]! += r[((rb * ho + oh) * wo + ow) * C + c]!;
        }
  }
  return out;
}

describe.each([
  ['cpu', 'auto'],
  ['cpu', 'masks'],
  ['wasm', 'auto'],
  ['wasm', 'masks'],
] as const)('max-pool gradient fuzz against a float64 reference (%s, first maxima %s)', (backend, method) => {
  const cases = 300;
  test(`${cases} random geometries: values, adjoint (dot-product test), no leaks`, async () => {
    await switchBackend(backend);
    const rng = mulberry32(20261205);
    const int = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
    let checked = 0;
    let byIndex = 0;
    let byMasks = 0;
    // what the geometries reached: the per-phase path (not tiles), windows apart (stride > pool), explicit
    // padding, a relevance batch larger than the input's
    const reached = { phases: 0, apart: 0, explicit: 0, widerR: 0 };
    for (let n = 0; n < cases; n++) {
      const kh = int(1, 4);
      const kw = int(1, 4);
      const sh = int(1, 4);
      const sw = int(1, 4);
      const kind = int(0, 2);
      const padding: Pad =
        kind === 0
          ? 'same'
          : kind === 1
            ? 'valid'
            : [
                [int(0, Math.floor(kh / 2)), int(0, Math.floor(kh / 2))],
                [int(0, Math.floor(kw / 2)), int(0, Math.floor(kw / 2))],
              ];
      const H = int(kh, 9);
      const W = int(kw, 9);
      const C = int(1, 3);
      const B = int(1, 2);
      const RB = B === 1 ? int(1, 4) : B;
      const p: PoolParams = { poolSize: [kh, kw], strides: [sh, sw], padding };
      const ax = (a: 0 | 1) => (typeof padding === 'string' ? padding : padding[a]);
      const ho = windowPadding(H, kh, sh, ax(0))[2];
      const wo = windowPadding(W, kw, sw, ax(1))[2];
      if (ho < 1 || wo < 1) continue;
      // ties: small integers, a quarter of the cases all equal
      const flat = int(0, 3) === 0;
      const x = Float32Array.from({ length: B * H * W * C }, () => (flat ? -1 : int(-2, 2)));
      const r = Float32Array.from({ length: RB * ho * wo * C }, () => Math.fround(rng() * 2 - 0.5));
      const OB = Math.max(B, RB);
      const v = Float32Array.from({ length: OB * H * W * C }, () => Math.fround(rng() * 2 - 1));
      const label = JSON.stringify({ B, RB, H, W, C, ...p });

      const before = tf.memory().numTensors;
      const xt = tf.tensor4d(x, [B, H, W, C]);
      const rt = tf.tensor4d(r, [RB, ho, wo, C]);
      const vt = tf.tensor4d(v, [OB, H, W, C]);
      // every other case with the pool's output, as the engine passes it (first maxima found by equality)
      const pad =
        typeof padding === 'string'
          ? padding
          : ([[0, 0], padding[0], padding[1], [0, 0]] as tf.backend_util.ExplicitPadding);
      const pooled = n % 2 === 0 ? tf.maxPool(xt, [kh, kw], [sh, sw], pad) : undefined;
      const prepared = prepareMaxPoolGradient(xt, p, pooled, method);
      if (prepared.method === 'index') byIndex++;
      else if (prepared.method === 'masks') byMasks++;
      const back = prepared.backward(rt);
      const adj = prepared.adjoint(vt);
      expect(back.shape, label).toEqual([OB, H, W, C]);
      expect(adj.shape, label).toEqual([OB, ho, wo, C]);
      const got = back.dataSync();
      const want = reference(x, [B, H, W, C], r, RB, p);
      for (let k = 0; k < want.length; k++) {
        if (Math.abs(got[k]! - want[k]!) > 1e-5) expect([k, got[k]], label).toEqual([k, want[k]]);
      }
      // <backward(r), v> == <r', adjoint(v)>, with r' the relevance broadcast to the output batch
      const a = adj.dataSync();
      let lhs = 0;
      let rhs = 0;
      for (let k = 0; k < got.length; k++) lhs += got[k]! * v[k]!;
      const per = ho * wo * C;
      for (let k = 0; k < a.length; k++) rhs += (r[RB === 1 ? k % per : k] ?? 0) * a[k]!;
      expect(Math.abs(lhs - rhs), label).toBeLessThan(1e-4 * (1 + Math.abs(lhs)));
      back.dispose();
      adj.dispose();
      prepared.dispose();
      tf.dispose([xt, rt, vt]);
      pooled?.dispose();
      expect(tf.memory().numTensors, label).toBe(before);
      checked++;
      const [pt, pb] = windowPadding(H, kh, sh, ax(0));
      const [pl, pr] = windowPadding(W, kw, sw, ax(1));
      if (!(kh === sh && kw === sw && pt + pb + pl + pr === 0)) reached.phases++;
      if (sh > kh || sw > kw) reached.apart++;
      if (typeof padding !== 'string') reached.explicit++;
      if (RB > B) reached.widerR++;
    }
    expect(checked).toBeGreaterThan(cases * 0.8);
    // every geometry that does not tile took the path asked for
    expect(method === 'auto' ? [byIndex, byMasks] : [0, byMasks], method).toEqual([
      method === 'auto' ? reached.phases : 0,
      method === 'auto' ? 0 : reached.phases,
    ]);
    for (const [what, n] of Object.entries(reached)) expect(n, what).toBeGreaterThan(20);
  });
});

describe.each(['cpu', 'wasm'] as const)(
  'max-pool gradient on tiles, first maxima read back (%s)',
  (backend) => {
    test('the same masks as the tensor form, bit for bit: ties, signed zeros, infinities, cropped edges', async () => {
      await switchBackend(backend);
      const rng = mulberry32(20261206);
      // no NaN: both follow PyTorch's rule for it (the last NaN), tested below on their own
      const pick = [-1, 0, -0, 1, 2, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5];
      let cases = 0;
      for (const [kh, kw, H, W] of [
        [2, 2, 8, 8],
        [2, 2, 9, 7],
        [3, 2, 6, 5],
        [1, 3, 4, 9],
      ] as const) {
        for (const B of [1, 3]) {
          const C = 5;
          const x = Float32Array.from(
            { length: B * H * W * C },
            () => pick[Math.floor(rng() * pick.length)]!,
          );
          const before = tf.memory().numTensors;
          const xt = tf.tensor4d(x, [B, H, W, C]);
          const pooled = tf.maxPool(xt, [kh, kw], [kh, kw], 'valid');
          const ho = pooled.shape[1];
          const wo = pooled.shape[2];
          const rt = tf.randomUniform([B, ho, wo, C], -1, 1, 'float32', 5) as tf.Tensor4D;
          const vt = tf.randomUniform([B, H, W, C], -1, 1, 'float32', 6) as tf.Tensor4D;
          const p: PoolParams = { poolSize: [kh, kw], strides: [kh, kw], padding: 'valid' };
          const label = JSON.stringify({ kh, kw, H, W, B });
          // both are 'tiles': the kernels tell the loop (no tensor op but the mask's upload) from the ops
          let byLoop: ReturnType<typeof prepareMaxPoolGradient> | undefined;
          let byOps: ReturnType<typeof prepareMaxPoolGradient> | undefined;
          const loopKernels = (
            await tf.profile(() => {
              byLoop = prepareMaxPoolGradient(xt, p, pooled, 'auto');
            })
          ).kernels.map((k) => k.name);
          const opsKernels = (
            await tf.profile(() => {
              byOps = prepareMaxPoolGradient(xt, p, pooled, 'masks');
            })
          ).kernels.map((k) => k.name);
          if (byLoop === undefined || byOps === undefined) throw new Error('not prepared');
          expect([byLoop.method, byOps.method]).toEqual(['tiles', 'tiles']);
          expect(loopKernels, label).not.toContain('Cumsum');
          expect(opsKernels, label).toContain('Cumsum');
          for (const [a, b] of [
            [byLoop.backward(rt), byOps.backward(rt)],
            [byLoop.adjoint(vt), byOps.adjoint(vt)],
          ] as const) {
            // Object.is: a signed zero or a NaN where the other has another value fails
            expect(Array.from(a.dataSync()), label).toEqual(Array.from(b.dataSync()));
            tf.dispose([a, b]);
          }
          byLoop.dispose();
          byOps.dispose();
          tf.dispose([xt, pooled, rt, vt]);
          expect(tf.memory().numTensors, label).toBe(before);
          cases++;
        }
      }
      expect(cases).toBe(8);
    });

    test('a window whose maximum is infinite sends its relevance to the first infinite element, as the index path and torch do', async () => {
      await switchBackend(backend);
      const inf = Number.POSITIVE_INFINITY;
      // two 2x2 windows: [1, inf; inf, 0] (first maximum at row 0, column 1) and all -inf (the first element)
      const x = tf.tensor4d([1, inf, -inf, -inf, inf, 0, -inf, -inf], [1, 2, 4, 1]);
      const pooled = tf.maxPool(x, 2, 2, 'valid');
      const r = tf.tensor4d([5, 7], [1, 1, 2, 1]);
      const v = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 4, 1]);
      const p: PoolParams = { poolSize: [2, 2], strides: [2, 2], padding: 'valid' };
      for (const method of ['auto', 'masks'] as const) {
        const g = prepareMaxPoolGradient(x, p, pooled, method);
        const [back, read] = [g.backward(r), g.adjoint(v)];
        expect(Array.from(back.dataSync()), method).toEqual([0, 5, 7, 0, 0, 0, 0, 0]);
        expect(Array.from(read.dataSync()), method).toEqual([2, 3]);
        tf.dispose([back, read]);
        g.dispose();
      }
      tf.dispose([x, pooled, r, v]);
    });
  },
);

/**
 * NaN in a window, on the three searches of the host walker and the tensor-op form (max-pool-nan-cases.ts, whose
 * cases also run on webgl and webgpu in @crp/conformance's max-pool-nan-gpu.test.ts): PyTorch's max_pool2d
 * propagates NaN and sends the window's gradient to its **last** NaN in row-major order; ±inf are the first
 * maximum like any value.
 */
describe.each(['cpu', 'wasm'] as const)('max-pool gradient with NaN and infinities (%s)', (backend) => {
  test.each(MAX_POOL_NAN_CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    await switchBackend(backend);
    const got = await c.run();
    expect(got).toEqual({ method: c.method.host, back: c.back, read: c.read, leaked: 0 });
  });
});

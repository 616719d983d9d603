/**
 * How the per-head products of @crp/lrp (`ops/head-matmul.ts`) take a [R, 12, 197, d] tensor apart into one
 * [R * 197, d] operand per head on wasm: its copy out of the heap view (one transpose, then a tensor per head
 * written from the heap) against `tf.slice` per head after the same transpose, with @crp/backend's in-place `Slice`
 * kernel installed (`selectBackend`). CPU time per call of the whole product (split, 2-D products, concat), the two
 * interleaved in alternating order so that load changes hit both alike; median of RUNS. Manual:
 *
 *   RUNS=15 THREADS=2 pnpm --filter @crp/bench exec tsx src/vit-head-split.ts
 */
import { selectBackend } from '@crp/backend';
import { sharedFactor } from '@crp/lrp/internal';
import * as tf from '@tensorflow/tfjs-core';

const choice = await selectBackend({ prefer: ['wasm'], threads: Number(process.env.THREADS ?? 2) });
console.log(`backend ${tf.getBackend()} x${choice.threads}`);

/** The [M, P] blocks of x [R, H, M, P] (of x [R, H, P, M] transposed when `transpose`) per head, by tf.slice. */
function sliceBlocks(x: tf.Tensor, transpose = false): tf.Tensor2D[] {
  return tf.tidy(() => {
    const [a, b] = x.shape.slice(-2) as [number, number];
    const [m, p] = transpose ? [b, a] : [a, b];
    const rows = x.shape[0]!;
    const h = x.size / (rows * m * p);
    const laid =
      rows === 1 && !transpose
        ? tf.reshape(x, [h, 1, a, b])
        : tf.transpose(tf.reshape(x, [rows, h, a, b]), [1, 0, transpose ? 3 : 2, transpose ? 2 : 3]);
    return Array.from({ length: h }, (_, k) =>
      tf.reshape(tf.slice(laid, [k, 0, 0, 0], [1, rows, m, p]), [rows * m, p]),
    ) as tf.Tensor2D[];
  });
}

/** op(x) times the heads' factors, split by {@link sliceBlocks}. */
function sliceTimes(x: tf.Tensor, heads: readonly tf.Tensor2D[], transposeX = false): tf.Tensor {
  return tf.tidy(() => {
    const m = x.shape[transposeX ? x.rank - 1 : x.rank - 2]!;
    const q = heads[0]!.shape[1];
    const rows = x.shape[0]!;
    const parts = sliceBlocks(x, transposeX).map((block, k) =>
      tf.reshape(tf.matMul(block, heads[k]!), [rows, 1, m, q]),
    );
    return tf.reshape(tf.concat(parts, 1), [...x.shape.slice(0, -2), m, q]);
  });
}

function cpuMs(fn: () => tf.Tensor): number {
  const c0 = process.cpuUsage();
  const r = fn();
  r.dataSync();
  r.dispose();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

const R = Number(process.env.ROWS ?? 8);
const [h, t, d] = [12, 197, 64];
const [k, v] = [tf.randomNormal([1, h, t, d]), tf.randomNormal([1, h, t, d])];
const attn = tf.softmax(tf.randomNormal([1, h, t, t]));
const rScores = tf.randomNormal([R, h, t, t]);
const rValues = tf.randomNormal([R, h, t, d]);
const [K, V] = [sharedFactor(k), sharedFactor(v)];
const keep = (ts: tf.Tensor2D[]) => ts.map((x) => tf.keep(x));
const [kHeads, vHeads, vHeadsT] = [keep(sliceBlocks(k)), keep(sliceBlocks(v)), keep(sliceBlocks(v, true))];
const cases: [string, () => tf.Tensor, () => tf.Tensor][] = [
  [`R k (${R} rows)`, () => K.times(rScores), () => sliceTimes(rScores, kHeads)],
  [`R v^T (${R} rows)`, () => V.timesTransposed(rValues), () => sliceTimes(rValues, vHeadsT)],
  ['A v (1 row)', () => V.times(attn), () => sliceTimes(attn, vHeads)],
];
const runs = Number(process.env.RUNS ?? 7);
const median = (x: number[]) => [...x].sort((a, b) => a - b)[x.length >> 1]!;
for (const [name, heap, slice] of cases) {
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(heap(), slice()))).dataSync()[0]!);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    // alternating which goes first
    if (i % 2 === 0) {
      a.push(cpuMs(heap));
      b.push(cpuMs(slice));
    } else {
      b.push(cpuMs(slice));
      a.push(cpuMs(heap));
    }
  }
  console.log(
    `${name.padEnd(18)} heap copy ${median(a).toFixed(1).padStart(6)} ms CPU | tf.slice ${median(b).toFixed(1).padStart(6)} ms CPU | max diff ${diff}`,
  );
}

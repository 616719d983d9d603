/**
 * The products of attention of vit_b_16 (12 heads, 197 tokens, head width 64) on wasm: TF.js's batched
 * `tf.matMul` against the per-head path of @crp/lrp (`ops/head-matmul.ts`), wall and CPU time, for one row of
 * relevance (a heatmap) or R rows (CRP conditions), with the largest difference between the two. Manual:
 *
 *   pnpm --filter @crp/bench exec tsx src/vit-products.ts [--rows R] [--threads N]
 */
import { parseArgs } from 'node:util';
import { selectBackend } from '@crp/backend';
import { sharedFactor } from '@crp/lrp/internal';
import * as tf from '@tensorflow/tfjs-core';

const { values } = parseArgs({
  options: { rows: { type: 'string', default: '8' }, threads: { type: 'string', default: '2' } },
});
const choice = await selectBackend({ prefer: ['wasm'], threads: Number(values.threads) });
console.log(`backend ${tf.getBackend()} x${choice.threads}`);

/** Wall and CPU milliseconds per call of fn (after one untimed call), over n calls. */
function timed(fn: () => tf.Tensor, n = 3): string {
  const run = () => {
    const r = fn();
    r.dataSync();
    r.dispose();
  };
  run();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) run();
  const wall = (performance.now() - t0) / n;
  const c = process.cpuUsage(c0);
  return `${wall.toFixed(1).padStart(7)} ms wall ${((c.user + c.system) / 1000 / n).toFixed(1).padStart(7)} ms CPU`;
}

const [r, h, t, d] = [Number(values.rows), 12, 197, 64];
const q = tf.randomNormal([1, h, t, d]);
const k = tf.randomNormal([1, h, t, d]);
const v = tf.randomNormal([1, h, t, d]);
const attn = tf.softmax(tf.randomNormal([1, h, t, t]));
const rScores = tf.randomNormal([r, h, t, t]);
const rValues = tf.randomNormal([r, h, t, d]);
const [Q, K, V, A] = [sharedFactor(q), sharedFactor(k), sharedFactor(v), sharedFactor(attn)];
const products: [string, () => tf.Tensor, () => tf.Tensor][] = [
  ['forward q k^T', () => tf.matMul(q, k, false, true), () => K.timesTransposed(q)],
  ['forward A v', () => tf.matMul(attn, v), () => V.times(attn)],
  [`scores rule R k (${r} rows)`, () => tf.matMul(rScores, k), () => K.times(rScores)],
  [`scores rule R^T q (${r} rows)`, () => tf.matMul(rScores, q, true, false), () => Q.times(rScores, true)],
  [
    `values rule R v^T (${r} rows)`,
    () => tf.matMul(rValues, v, false, true),
    () => V.timesTransposed(rValues),
  ],
  [
    `values rule A^T R (${r} rows)`,
    () => tf.matMul(attn, rValues, true, false),
    () => A.transposedTimes(rValues),
  ],
];
for (const [name, plain, perHead] of products) {
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(plain(), perHead()))).dataSync()[0]!);
  console.log(
    `${name.padEnd(30)} tf.matMul ${timed(plain)} | per head ${timed(perHead)} | max diff ${diff.toExponential(1)}`,
  );
}

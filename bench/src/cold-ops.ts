/**
 * What TF.js's per-op JavaScript costs between large kernels (issue 21 item 7): a group of small ops (a tidy, a
 * reshape, a multiply and an add on a 2x2x4 map, three kernels) timed hot (back to back), after a ResNet-50-sized
 * 1x1 conv (56x56x256 -> 256), after a 32 MB sweep of a JavaScript array, and after a tiny conv. The heatmap runs
 * its ~900 small steps the second way: each finds the caches emptied by the conv before it.
 *
 *   pnpm --filter @crp/bench exec tsx src/cold-ops.ts [--threads 1] [--reps 3]
 */
import { parseArgs } from 'node:util';
import { selectBackend } from '@crp/backend';
import * as tf from '@tensorflow/tfjs-core';

const { values } = parseArgs({
  options: { threads: { type: 'string', default: '1' }, reps: { type: 'string', default: '3' } },
});
await selectBackend({ prefer: ['wasm'], threads: Number(values.threads) });
const a = tf.randomNormal([1, 2, 2, 4]);
const big = tf.randomNormal([1, 56, 56, 256]) as tf.Tensor4D;
const k = tf.randomNormal([1, 1, 256, 256]) as tf.Tensor4D;
const tiny = tf.randomNormal([1, 8, 8, 16]) as tf.Tensor4D;
const tinyK = tf.randomNormal([1, 1, 16, 16]) as tf.Tensor4D;
const sweep = new Float32Array(8 << 20);
const small = () => tf.tidy(() => tf.add(tf.mul(tf.reshape(a, [4, 4]), 2), 1)).dispose();
const before: Record<string, () => void> = {
  hot: () => {},
  'after a 56x56x256 1x1 conv': () => tf.conv2d(big, k, 1, 'same').dispose(),
  'after a 32 MB JavaScript sweep': () => {
    for (let i = 0; i < sweep.length; i += 16) sweep[i]! += 1;
  },
  'after an 8x8x16 1x1 conv': () => tf.conv2d(tiny, tinyK, 1, 'same').dispose(),
};
const quantile = (xs: number[], q: number) => xs.sort((x, y) => x - y)[Math.floor(xs.length * q)]!;
for (let i = 0; i < 50; i++) {
  for (const f of Object.values(before)) {
    f();
    small();
  }
}
for (let rep = 0; rep < Number(values.reps); rep++) {
  for (const [name, f] of Object.entries(before)) {
    const us: number[] = [];
    for (let i = 0; i < 200; i++) {
      f();
      const t = performance.now();
      small();
      us.push((performance.now() - t) * 1000);
    }
    console.log(
      `${name.padEnd(32)} small op group: p10 ${quantile(us, 0.1).toFixed(1)} us, median ${quantile(us, 0.5).toFixed(1)} us`,
    );
  }
}
for (const t of [a, big, k, tiny, tinyK]) t.dispose();

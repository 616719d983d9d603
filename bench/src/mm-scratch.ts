import { selectBackend } from '@crp/backend';
import * as tf from '@tensorflow/tfjs-core';

await selectBackend({ prefer: ['wasm'], threads: 2 });
function t(name: string, f: () => tf.Tensor, n = 5) {
  f().dispose();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const y = f();
    y.dataSync();
    y.dispose();
  }
  const c = process.cpuUsage(c0);
  console.log(
    `${name}: ${((performance.now() - t0) / n).toFixed(1)} ms wall, ${((c.user + c.system) / 1000 / n).toFixed(1)} ms cpu`,
  );
}
const g8 = tf.randomNormal([8, 12, 197, 197]);
const g1 = tf.randomNormal([1, 12, 197, 197]);
const g8b = tf.randomNormal([8, 12, 197, 197]);
t('div broadcast first', () => tf.div(g8, g1));
t('sub first', () => tf.sub(g8, g8b));
t('mul broadcast [8..]x[1..]', () => tf.mul(g8, g1));
t('mul same shape', () => tf.mul(g8, g8b));
t('mul broadcast 2D [8,N]x[1,N]', () => tf.mul(tf.reshape(g8, [8, -1]), tf.reshape(g1, [1, -1])));
t('mul broadcast [8..] x [1,12,197,1]', () => tf.mul(g8, tf.sum(g1, 3, true)));
t('div broadcast', () => tf.div(g8, g1));
t('sub same', () => tf.sub(g8, g8b));
t('sum last', () => tf.sum(g8, 3, true));
t('mul again', () => tf.mul(g8, g8b));
t('mul 1 elem', () => tf.mul(g8, tf.scalar(2)));

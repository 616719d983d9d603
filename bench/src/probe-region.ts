import { regionRelevances } from '@crp/attribution';
import { enableWasmThreads } from '@crp/backend';
import { CondAttribution } from '@crp/core';
import { smallVgg, vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';

console.log("threads", await enableWasmThreads(2));
await tf.setBackend('wasm');
await tf.ready();
console.log('backend', tf.getBackend());
for (const [name, model, size, side] of [
  ['small', smallVgg({ seed: 2 }), 64, 32],
  ['vgg16', vgg('vgg16', { seed: 1 }), 224, 100],
] as const) {
  const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  const image = tf.randomUniform([1, size, size, 3], 0, 1, 'float32', 5);
  regionRelevances(crp, image, { centerSquare: side }, { target: 0 });
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const r = regionRelevances(crp, image, { centerSquare: side }, { target: 0 });
    times.push(performance.now() - t0);
    if (i === 0) console.log(name, Object.keys(r[0]!.layers).length, 'layers', Object.values(r[0]!.layers).reduce((s, l) => s + l.concepts.length, 0), 'concepts');
  }
  console.log(name, times.map((t) => t.toFixed(0)).join(' '));
  image.dispose();
  crp.dispose();
}

/**
 * The incremental forward on torchvision's VGG16 layout at 224 x 224 (seeded He weights): a few 16 x 16 patch
 * steps (a corner, an edge, the centre, a patch off the pool grid) give model.predict's logits.
 */
import { vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { IncrementalForward } from '../src/incremental.js';
import { images, useBackend } from './helpers.js';

useBackend('wasm');

describe('IncrementalForward on VGG16 at 224', () => {
  it('equals model.predict after patch steps, and recomputes a seventh of the work or less', () => {
    const model = vgg('vgg16', { seed: 1, classes: 10 });
    const x = images(1, 224, 224, 3, 5);
    const cur = Float32Array.from(x.dataSync());
    const forward = IncrementalForward.of(model, [224, 224, 3])!;
    expect(forward).toBeDefined();
    const inputs: Float32Array[] = [Float32Array.from(cur)];
    for (const [y, c] of [
      [0, 0],
      [208, 100],
      [96, 96],
      [51, 203],
    ] as const) {
      for (let r = y; r < Math.min(y + 16, 224); r++)
        cur.fill(0, (r * 224 + c) * 3, (r * 224 + Math.min(c + 16, 224)) * 3);
      inputs.push(Float32Array.from(cur));
    }
    // the work estimate of one 16 x 16 patch in the middle
    expect(forward.cost({ y0: 96, y1: 112, x0: 96, x1: 112 })).toBeLessThan(forward.fullCost / 7);
    // every step runs incrementally; model.predict checks the state after the second and the fourth patch (a
    // wrong window would stay wrong in the stored maps), so that the test makes few full passes
    const features = inputs.map((v) => forward.features(v));
    const checked = [2, 4];
    const incremental = forward.head(checked.map((i) => features[i]!));
    const flat = new Float32Array(checked.length * cur.length);
    checked.forEach((i, j) => {
      flat.set(inputs[i]!, j * cur.length);
    });
    const full = tf.tidy(() => model.predict(tf.tensor4d(flat, [checked.length, 224, 224, 3])) as tf.Tensor);
    const a = incremental.dataSync();
    const b = full.dataSync();
    const scale = Math.max(...Array.from(b, Math.abs));
    for (let i = 0; i < b.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-5 * scale);
    tf.dispose([incremental, full, x]);
    forward.dispose();
    model.dispose();
  }, 900_000);
});

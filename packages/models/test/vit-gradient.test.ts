/**
 * The plain gradient through a ViT (what gradient x input of @crp/evaluation runs through the engine): LayerNorm,
 * the products of two activations, softmax over tokens and GELU get their exact derivatives, so the engine's input
 * gradient equals TF.js's autodiff of the model's own forward pass.
 */
import { Attributor, disposeResult, gradient, layerMapComposite } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { tinyVit } from '@crp/testing/tiny-vit';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerTrainingKernels, vit } from '../src/index.js';
import { setVitWeights } from '../src/internal.js';

beforeAll(async () => {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  registerTrainingKernels(); // the autodiff reference differentiates the patch embedding's convolution
});

describe('the plain gradient through a ViT', () => {
  it('equals autodiff of the model for every input value', () => {
    const model = tinyVit({ vit, setVitWeights }, { numLayers: 2, seed: 3 });
    const x = tf.tidy(() => tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 4));
    const targets = [2, 0];
    const lrp = new Attributor(model, {
      composite: layerMapComposite([[() => true, gradient()]], 'Gradient'),
    });
    const initRelevance = (p: tf.Tensor) =>
      tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(targets, 'int32'), p.shape[1]!), 'float32'));
    disposeResult(lrp.attribute(x, { initRelevance })); // the attributor prepares its graph once
    const before = tf.memory().numTensors;
    const result = lrp.attribute(x, { initRelevance });
    const ours = result.relevance.dataSync();
    disposeResult(result);
    expect(tf.memory().numTensors).toBe(before);
    const expected = tf.tidy(() =>
      tf
        .grad((input: tf.Tensor) =>
          tf.sum(
            tf.mul(
              model.apply(input) as tf.Tensor,
              tf.cast(tf.oneHot(tf.tensor1d(targets, 'int32'), 3), 'float32'),
            ),
          ),
        )(x)
        .dataSync(),
    );
    const scale = Math.max(...Array.from(expected, Math.abs));
    expect(scale).toBeGreaterThan(1e-3);
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - expected[i]!));
    expect(worst / scale).toBeLessThan(1e-5);
    lrp.dispose();
    x.dispose();
    model.dispose();
  });
});

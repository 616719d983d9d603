/**
 * The relevance's transposed conv on WebGL, where its kernel is flipped by `tf.reverse` (@crp/lrp's flipSpatial:
 * the host backends cut the rows apart instead, so Node's tests never run the reverse): a two-conv model
 * (3x3 stride 1 'same', then 3x2 stride 2 'valid', kernels without symmetry, so a flip over the wrong axis or in
 * the wrong order changes the numbers) is explained with epsilon_plus in headless Chromium on webgl
 * (SwiftShader where there is no GPU) and on cpu in the same page; the relevances must agree and the webgl run
 * must have called Reverse (the cpu one must not).
 */
import { browserTestPlan } from '@crp/testing/chromium';
import { describe, expect, it } from 'vitest';
import { withGpuPage } from './gpu-page.js';

const browser = browserTestPlan();
if (!browser.run) console.warn(browser.reason);

/** The page: builds the model on each backend, explains one image, and reports the relevance and the kernels. */
const PAGE = `
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import * as tfl from '@tensorflow/tfjs-layers';
import { attribute } from '@crp/lrp';

// deterministic values in [-1, 1) without symmetry
const wave = (n, seed) => Array.from({ length: n }, (_, i) => Math.fround(Math.sin(seed + i * 1.7) * 0.9));

async function explain(backend) {
  if (!(await tf.setBackend(backend))) throw new Error('backend ' + backend + ' is not available');
  await tf.ready();
  const input = tfl.input({ shape: [7, 6, 3] });
  const a = tfl.layers.conv2d({ name: 'a', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input);
  const b = tfl.layers.conv2d({ name: 'b', filters: 5, kernelSize: [3, 2], strides: 2 }).apply(a);
  const model = tfl.model({ inputs: input, outputs: b });
  model.getLayer('a').setWeights([tf.tensor4d(wave(108, 1), [3, 3, 3, 4]), tf.tensor1d(wave(4, 2))]);
  model.getLayer('b').setWeights([tf.tensor4d(wave(120, 3), [3, 2, 4, 5]), tf.tensor1d(wave(5, 4))]);
  const x = tf.tensor4d(wave(126, 5), [1, 7, 6, 3]);
  let result;
  const { kernels } = await tf.profile(() => {
    result = attribute(model, x, {
      composite: 'epsilon_plus',
      canonizers: [],
      initRelevance: (prediction) => tf.tensor(wave(prediction.size, 6), prediction.shape),
    });
  });
  const relevance = Array.from(result.relevance.dataSync());
  const flags = backend === 'webgl' ? 'WEBGL_VERSION=' + tf.env().get('WEBGL_VERSION') + ', WEBGL_RENDER_FLOAT32_ENABLED=' + tf.env().get('WEBGL_RENDER_FLOAT32_ENABLED') : '';
  result.relevance.dispose();
  result.prediction.dispose();
  x.dispose();
  model.dispose();
  return { backend: tf.getBackend(), flags, relevance, kernels: kernels.map((k) => k.name) };
}

window.explainBoth = async () => [await explain('webgl'), await explain('cpu')];
`;

interface Run {
  backend: string;
  flags: string;
  relevance: number[];
  kernels: string[];
}

describe.skipIf(!browser.run)('the transposed conv on webgl (kernel flipped by tf.reverse)', () => {
  it('epsilon_plus through two convs: webgl equals cpu, and webgl ran Reverse', {
    timeout: 300_000,
  }, async () => {
    if (browser.executable === undefined) throw new Error(browser.reason);
    await withGpuPage(browser.executable, PAGE, 'explainBoth', async (page, errors) => {
      const [webgl, cpu] = await page.evaluate(() =>
        (window as unknown as { explainBoth: () => Promise<[Run, Run]> }).explainBoth(),
      );
      expect(errors).toEqual([]);
      expect([webgl.backend, cpu.backend]).toEqual(['webgl', 'cpu']);
      expect(webgl.flags).toBe('WEBGL_VERSION=2, WEBGL_RENDER_FLOAT32_ENABLED=true');
      // the flip under test: tf.reverse on webgl, row splits on cpu
      expect(webgl.kernels).toContain('Reverse');
      expect(cpu.kernels).not.toContain('Reverse');
      expect(webgl.relevance).toHaveLength(7 * 6 * 3);
      const scale = Math.max(...cpu.relevance.map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      const gap = Math.max(...webgl.relevance.map((v, i) => Math.abs(v - cpu.relevance[i]!)));
      expect(gap / scale).toBeLessThan(1e-5);
    });
  });
});

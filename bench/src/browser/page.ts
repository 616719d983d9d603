/**
 * The page of the `browser` bench suite (suites/browser.ts): LRP (epsilon_plus_flat) of VGG16 at 224x224 and of
 * the small VGG at 64x64, timed with the same `timeRuns` as the Node suites, first on WebGL, then on wasm in the
 * same page. Bundled for the browser when the suite starts; reports through the function `benchReport`.
 */
import { Attributor, disposeResult } from '@crp/lrp';
import { smallVgg, vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { timeRuns } from '../measure.js';

/** What the page sends to the suite. */
export type BenchMessage =
  | { type: 'log'; text: string }
  | { type: 'timing'; backend: string; name: string; runs: number[]; batch: number }
  | { type: 'backend'; backend: string; description: string }
  | { type: 'done' }
  | { type: 'failed'; message: string };

declare global {
  interface Window {
    benchReport?: (m: BenchMessage) => Promise<void>;
  }
}

Error.stackTraceLimit = 60;

const report = async (m: BenchMessage) => {
  await window.benchReport?.(m);
};
const log = (text: string) => report({ type: 'log', text });

/**
 * WebGL keeps a tensor that is uploaded from the CPU in an unpacked texture, at most MAX_TEXTURE_SIZE² values
 * (8192² = 67.1M on SwiftShader); VGG16's fc1 kernel has 25088 x 4096 = 102.8M, so neither building VGG16 on
 * WebGL nor uploading its weights works there. The outputs of WebGL's packed programs hold 4x as many: a
 * weight too large to upload is uploaded in blocks of rows and concatenated on the GPU, the same values.
 */
const UPLOAD_LIMIT = 2 ** 26;

function toWebgl(model: ReturnType<typeof vgg>): void {
  for (const layer of model.layers) {
    const weights = layer.getWeights();
    if (weights.length === 0) continue;
    const moved = weights.map((w) => {
      const values = w.dataSync() as Float32Array;
      if (w.size <= UPLOAD_LIMIT) return tf.tensor(values, w.shape);
      const [rows, ...rest] = w.shape as [number, ...number[]];
      const perRow = w.size / rows;
      const step = Math.floor(UPLOAD_LIMIT / perRow);
      const blocks: tf.Tensor[] = [];
      for (let r = 0; r < rows; r += step) {
        const n = Math.min(step, rows - r);
        blocks.push(tf.tensor(values.subarray(r * perRow, (r + n) * perRow), [n, ...rest]));
      }
      const whole = tf.concat(blocks, 0);
      tf.dispose(blocks);
      return whole;
    });
    layer.setWeights(moved);
    tf.dispose(moved);
  }
}

/** One backend: VGG16 (unless quick) and the small VGG at batch 1 and 16. */
async function measure(backend: 'webgl' | 'wasm', quick: boolean): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new Error(`the ${backend} backend did not start`);
  await tf.ready();
  let description: string = backend;
  if (backend === 'webgl') {
    const gl = document.createElement('canvas').getContext('webgl2')!;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    description = `webgl: ${info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER)}`;
  } else {
    description = `wasm: ${getThreadsCount()} thread(s), simd ${tf.env().getBool('WASM_HAS_SIMD_SUPPORT')}`;
  }
  await report({ type: 'backend', backend, description });

  if (!quick) {
    await log(`${backend}: building VGG16 (224x224x3, random He-normal weights)...`);
    // built on the CPU backend, then moved (see toWebgl); on wasm built in place
    if (backend === 'webgl') await tf.setBackend('cpu');
    const big = vgg('vgg16', { seed: 1 });
    if (backend === 'webgl') {
      await tf.setBackend('webgl');
      toWebgl(big);
    }
    const image = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 7);
    const lrp = new Attributor(big, { composite: 'epsilon_plus_flat' });
    const t = await timeRuns(() => {
      const r = lrp.attribute(image, { target: 0 });
      r.relevance.dataSync();
      disposeResult(r);
    });
    await report({ type: 'timing', backend, name: 'vgg16', runs: t.runs, batch: 1 });
    lrp.dispose();
    big.dispose();
    image.dispose();
  }

  await log(`${backend}: small VGG (64x64x3)...`);
  const small = smallVgg({ seed: 2 });
  const lrpSmall = new Attributor(small, { composite: 'epsilon_plus_flat' });
  for (const batch of quick ? [1] : [1, 16]) {
    const x = tf.randomUniform([batch, 64, 64, 3], 0, 1, 'float32', 11);
    const t = await timeRuns(
      () => {
        const r = lrpSmall.attribute(x, { target: 3 });
        r.relevance.dataSync();
        disposeResult(r);
      },
      { warmup: 2, minRuns: quick ? 3 : batch === 1 ? 10 : 5 },
    );
    x.dispose();
    await report({ type: 'timing', backend, name: 'small_vgg', runs: t.runs, batch });
  }
  lrpSmall.dispose();
  small.dispose();
}

async function main(): Promise<void> {
  const quick = new URLSearchParams(location.search).get('quick') === '1';
  setWasmPaths(`${location.origin}/wasm/`);
  // TF.js's wasm build caps its XNNPACK threads at half the logical cores in a page (1 on 2 cores), whatever
  // setThreadsCount asks; the figure's note records the count
  await measure('webgl', quick);
  await measure('wasm', quick);
  await report({ type: 'done' });
}

main().catch((err: unknown) =>
  report({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
);

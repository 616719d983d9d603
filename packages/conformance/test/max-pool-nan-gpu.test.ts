/**
 * The max-pool gradient's NaN and infinity cases (PyTorch's rule: a window holding a NaN to its last NaN, any
 * other to its first maximum, values below -1e20 too) on the GPU backends, in headless Chromium: the very cases
 * @crp/lrp runs on cpu and wasm (packages/lrp/test/max-pool-nan-cases.ts, bundled into the page from source), on
 * webgl (SwiftShader where there is no GPU) and webgpu, read back asynchronously. TF.js's WebGL backend runs
 * small ops on the CPU when their inputs are still there (WEBGL_CPU_FORWARD); the page turns that off, so every
 * op of a case runs as a shader. What this found, and the op now avoids: TF.js's WebGL max reduce and max pool
 * start from -1e20, so windows whose values all lay below passed no relevance; TF.js's WebGPU transpose of a
 * tensor cast from bool does not compile, which broke the tensor-op form there. NaN itself is handled right by
 * both (isNaN, select, the comparisons).
 */
import { browserTestPlan } from '@crp/testing/chromium';
import { describe, expect, it } from 'vitest';
import { withGpuPage } from './gpu-page.js';

const browser = browserTestPlan();
if (!browser.run) console.warn(browser.reason);

/** The page: runs every case on one backend and reports each outcome with the case's expected values. */
const PAGE = `
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { MAX_POOL_NAN_CASES } from '../../lrp/test/max-pool-nan-cases.ts';

window.runCases = async (backend) => {
  if (!(await tf.setBackend(backend))) throw new Error('backend ' + backend + ' is not available');
  await tf.ready();
  // every op as a shader, never on the CPU because its inputs are small and still there
  if (backend === 'webgl') tf.env().set('WEBGL_CPU_FORWARD', false);
  const flags = backend === 'webgl' ? ['WEBGL_VERSION', 'WEBGL_RENDER_FLOAT32_ENABLED', 'WEBGL_CPU_FORWARD'].map((f) => f + '=' + tf.env().get(f)).join(', ') : '';
  const outcomes = [];
  for (const c of MAX_POOL_NAN_CASES) {
    const got = await c.run();
    outcomes.push({ name: c.name, got, want: { method: c.method.other, back: c.back, read: c.read, leaked: 0 } });
  }
  return { backend: tf.getBackend(), flags, outcomes };
};
`;

interface Outcome {
  name: string;
  got: { method: string; back: number[]; read: number[]; leaked: number };
  want: Outcome['got'];
}

describe.skipIf(!browser.run)(
  'max-pool gradient with NaN and infinities on the GPU backends (headless Chromium)',
  () => {
    it('webgl and webgpu give PyTorch’s taps for every case, without leaks', {
      timeout: 300_000,
    }, async () => {
      if (browser.executable === undefined) throw new Error(browser.reason);
      await withGpuPage(browser.executable, PAGE, 'runCases', async (page, errors) => {
        for (const backend of ['webgl', 'webgpu']) {
          const run = await page.evaluate(
            (name) =>
              (
                window as unknown as {
                  runCases: (b: string) => Promise<{ backend: string; flags: string; outcomes: Outcome[] }>;
                }
              ).runCases(name),
            backend,
          );
          expect(run.backend).toBe(backend);
          if (backend === 'webgl') {
            expect(run.flags).toBe(
              'WEBGL_VERSION=2, WEBGL_RENDER_FLOAT32_ENABLED=true, WEBGL_CPU_FORWARD=false',
            );
          }
          // the cases of max-pool-nan-cases.ts: 4 forms of 4 pools, 2 global
          expect(run.outcomes).toHaveLength(18);
          for (const o of run.outcomes) expect(o.got, `${backend}: ${o.name}`).toEqual(o.want);
        }
        expect(errors).toEqual([]);
      });
    });
  },
);

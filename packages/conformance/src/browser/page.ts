/**
 * The page of `pnpm conformance --browser`: picks the TF.js backend asked for, runs the very runners of the Node
 * CLI (src/kinds/) on the reference data read over HTTP, and reports each case to the runner (run-browser.ts).
 * Bundled when the command starts, by bundlePage of @crp/testing/browser-page.
 */
import { isCrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { formatOutcome, runCases } from '../run-cases.js';
import { httpFiles } from './http-files.js';
import { type BrowserBackend, type PageMessage, type PageRequest, REPORT_FUNCTION } from './protocol.js';

declare global {
  interface Window {
    [REPORT_FUNCTION]?: (message: PageMessage) => Promise<void>;
  }
}

const log = document.getElementById('log')!;

async function report(message: PageMessage): Promise<void> {
  const line =
    message.type === 'case'
      ? formatOutcome(message.outcome)
      : message.type === 'done'
        ? `${message.passed} passed, ${message.failed} failed`
        : `${message.type}: ${'reason' in message ? message.reason : 'message' in message ? message.message : message.description}`;
  log.textContent += `${line}\n`;
  await window[REPORT_FUNCTION]?.(message);
}

/** Why `backend` cannot run in this browser, or undefined when it can be tried. */
async function unavailable(backend: BrowserBackend): Promise<string | undefined> {
  if (backend === 'webgpu') {
    const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
    if (gpu === undefined) return 'navigator.gpu is missing (WebGPU is not enabled in this browser)';
    if ((await gpu.requestAdapter()) === null) return 'navigator.gpu.requestAdapter() found no adapter';
  }
  if (backend === 'webgl') {
    if (document.createElement('canvas').getContext('webgl2') === null) return 'no WebGL2 context';
  }
  return undefined;
}

/**
 * The toolkit's API is synchronous (an attribution returns tensors, region relevance returns numbers), so it
 * reads results with `dataSync()`. TF.js's webgpu backend implements that through a canvas, which in headless
 * Chromium on SwiftShader returns zeros for most sizes; a backend that cannot read back reliably cannot run the
 * toolkit at all. Returns what went wrong, or undefined when every size reads back correctly.
 */
function syncReadbackProblem(): string | undefined {
  for (const n of [1, 10, 1000, 5000]) {
    const t = tf.tidy(() => tf.add(tf.range(0, n), 1));
    const data = t.dataSync();
    t.dispose();
    const want = [1, Math.ceil(n / 2), n];
    const got = [data[0], data[Math.ceil(n / 2) - 1], data[n - 1]];
    if (got.some((v, i) => v !== want[i])) {
      return `TF.js's synchronous read-back (dataSync) on ${tf.getBackend()} returns wrong values here: 1..${n} read as [${got.join(', ')}] at its first, middle and last element instead of [${want.join(', ')}]; the toolkit's synchronous API needs it`;
    }
  }
  return undefined;
}

function describeBackend(backend: BrowserBackend): string {
  const env = tf.env();
  if (backend === 'webgl') {
    const gl = document.createElement('canvas').getContext('webgl2')!;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
    const flags = ['WEBGL_VERSION', 'WEBGL_RENDER_FLOAT32_ENABLED', 'WEBGL_PACK', 'WEBGL_FORCE_F16_TEXTURES'];
    return `${renderer}; ${flags.map((f) => `${f}=${env.get(f)}`).join(', ')}`;
  }
  if (backend === 'wasm') return `wasm (${env.getBool('WASM_HAS_SIMD_SUPPORT') ? 'simd' : 'no simd'})`;
  return backend;
}

async function main(): Promise<void> {
  const request = JSON.parse(new URLSearchParams(location.search).get('run') ?? '{}') as PageRequest;
  const backend = request.backend;
  const why = await unavailable(backend);
  if (why !== undefined) {
    await report({ type: 'unavailable', backend, reason: why });
    return;
  }
  if (backend === 'wasm') setWasmPaths(`${location.origin}/wasm/`);
  let ready = false;
  try {
    ready = await tf.setBackend(backend);
    await tf.ready();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (backend === 'webgpu') {
      await report({ type: 'unavailable', backend, reason: `the webgpu backend did not start: ${reason}` });
      return;
    }
    throw err;
  }
  if (!ready || tf.getBackend() !== backend) {
    if (backend === 'webgpu') {
      await report({ type: 'unavailable', backend, reason: 'the webgpu backend did not start' });
      return;
    }
    throw new Error(`TF.js backend '${backend}' could not be initialised`);
  }
  const readback = syncReadbackProblem();
  if (readback !== undefined) {
    await report({ type: 'unavailable', backend, reason: readback });
    return;
  }
  await report({ type: 'backend', backend, description: describeBackend(backend) });
  // the case lines reach the runner in order, all before the summary
  let reported = Promise.resolve();
  try {
    const summary = await runCases(request.dirs, httpFiles(location.origin), {
      kinds: request.kinds,
      onCase: (outcome) => {
        reported = reported.then(() => report({ type: 'case', outcome }));
      },
    });
    await reported;
    await report({ type: 'done', passed: summary.passed, failed: summary.failed });
  } catch (err) {
    if (isCrpError(err)) {
      await report({ type: 'not-run', message: err.message });
      return;
    }
    throw err;
  }
}

main().catch(async (err: unknown) => {
  await report({ type: 'crash', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
});

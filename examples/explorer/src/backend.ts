/**
 * The page picks the TF.js backend (libraries never do): WebGL where the browser has it, else WebAssembly, else
 * plain JavaScript. The wasm binaries are assets of the build (Vite's `?url` imports give their final URLs), so
 * the page fetches them from its own origin and works offline.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';

export type BackendName = 'webgl' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['webgl', 'wasm', 'cpu'];

setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
});

/** What runs the computations, and what was tried before it. */
export interface BackendChoice {
  name: BackendName;
  /** Why a preferred backend was not used (empty when the first choice worked). */
  notes: string[];
}

/** Starts the first backend of `order` that works here. */
export async function startBackend(order: readonly BackendName[] = BACKENDS): Promise<BackendChoice> {
  const notes: string[] = [];
  for (const name of order) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return { name, notes };
      }
      notes.push(`${name} is not available in this browser`);
    } catch (err) {
      notes.push(`${name} did not start (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  throw new Error(`no TF.js backend could start: ${notes.join('; ')}`);
}

/**
 * The page picks the TF.js backend (libraries never do): WebGL where the browser has it, else WebAssembly, else
 * plain JavaScript. The wasm binaries are assets of the build (Vite's `?url` imports give their final URLs), so
 * the page fetches them from its own origin and works offline. On wasm the page installs @crp/backend's in-place
 * `Slice` kernel, as `selectBackend` does in Node: TF.js's own copies a slice's whole input out of the heap.
 */
import { installWasmSlice, wasmSliceInstalled } from '@crp/backend/wasm-slice';
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
  /** On wasm: whether the registered `Slice` kernel is @crp/backend's in-place one (read from TF.js's registry). */
  inPlaceSlice: boolean;
}

/** Starts the first backend of `order` that works here. */
export async function startBackend(order: readonly BackendName[] = BACKENDS): Promise<BackendChoice> {
  const notes: string[] = [];
  for (const name of order) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        if (name === 'wasm') installWasmSlice();
        return { name, notes, inPlaceSlice: name === 'wasm' && wasmSliceInstalled() };
      }
      notes.push(`${name} is not available in this browser`);
    } catch (err) {
      notes.push(`${name} did not start (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  throw new Error(`no TF.js backend could start: ${notes.join('; ')}`);
}

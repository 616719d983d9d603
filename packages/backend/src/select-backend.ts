import { availableParallelism } from 'node:os';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { installWasmConcat } from './wasm-concat.js';
import { installWasmIdentity } from './wasm-identity.js';
import { installWasmSlice } from './wasm-slice.js';
import { enableWasmThreads } from './wasm-threads.js';
import { installWasmWinograd, uninstallWasmWinograd } from './wasm-winograd.js';

/** What {@link selectBackend} chose. */
export interface BackendChoice {
  /** The TF.js backend name: `tensorflow` (tfjs-node / tfjs-node-gpu), `wasm` or `cpu`. */
  backend: string;
  /** Threads of the wasm backend (1 when single-threaded; 0 for other backends). */
  threads: number;
  /** Why the better backends were not taken. */
  notes: string[];
}

export interface SelectBackendOptions {
  /** Backends to try, best first. Default: tfjs-node-gpu, tfjs-node, wasm, cpu. */
  prefer?: readonly ('tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu')[];
  /** wasm threads: a number, or 'auto' (default: one per core, at most 8). 1 disables threading. */
  threads?: number | 'auto';
  /**
   * wasm: run 3x3 stride-1 convolutions as Winograd F(4x4, 3x3) on the sizes where it measured faster
   * (`winogradApplies`; VGG16's convs with 256 and 512 channels). Default false: XNNPACK's direct convolution
   * everywhere, so relevances match zennit's to the golden cases' tolerances; Winograd's float32 error is about
   * 10x the direct one's (1e-5 of the largest output) and alpha-beta rules amplify it.
   */
  winograd?: boolean;
}

async function tryImport(name: string): Promise<boolean> {
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Picks and initialises the best TF.js backend available to a Node application (the CLI and the examples
 * use it; libraries never pick a backend). tfjs-node-gpu and tfjs-node are used when the application has
 * installed them (they download libtensorflow at install time, so they are optional); otherwise the wasm
 * backend, multi-threaded when the machine has several cores; cpu last.
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<BackendChoice> {
  const prefer = options.prefer ?? ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'];
  const notes: string[] = [];
  for (const candidate of prefer) {
    if (candidate === 'tfjs-node-gpu' || candidate === 'tfjs-node') {
      const pkg = `@tensorflow/${candidate}`;
      if ((await tryImport(pkg)) && (await tf.setBackend('tensorflow'))) {
        await tf.ready();
        return { backend: 'tensorflow', threads: 0, notes };
      }
      notes.push(`${pkg} is not installed`);
      continue;
    }
    if (candidate === 'wasm') {
      const wanted =
        options.threads === undefined || options.threads === 'auto'
          ? Math.min(availableParallelism(), 8)
          : options.threads;
      if (wanted >= 2 && !(await enableWasmThreads(wanted)))
        notes.push('wasm threads unavailable; single-threaded');
      if (await tf.setBackend('wasm')) {
        await tf.ready();
        installWasmSlice();
        installWasmConcat();
        installWasmIdentity();
        if (options.winograd ?? false) installWasmWinograd();
        else uninstallWasmWinograd();
        return { backend: 'wasm', threads: getThreadsCount(), notes };
      }
      notes.push('the wasm backend failed to initialise');
      continue;
    }
    if (await tf.setBackend('cpu')) {
      await tf.ready();
      return { backend: 'cpu', threads: 0, notes };
    }
  }
  throw new Error(`no TF.js backend could be initialised (tried ${prefer.join(', ')}): ${notes.join('; ')}`);
}

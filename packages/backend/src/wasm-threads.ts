// biome-ignore-all lint/suspicious/noExplicitAny: the shim reaches into untyped internals of the wasm backend
/**
 * enableWasmThreads(n): run @tensorflow/tfjs-backend-wasm@4.22.x's threaded
 * SIMD build in Node (>= 18) with n XNNPACK threads, without editing
 * node_modules. Call it *after* '@tensorflow/tfjs-backend-wasm' has been
 * loaded and *before* tf.setBackend('wasm') / tf.ready().
 *
 *   import '@tensorflow/tfjs-backend-wasm';
 *   import * as tf from '@tensorflow/tfjs-core';
 *   await enableWasmThreads(2);
 *   await tf.setBackend('wasm');
 *
 * Resolves to false, with nothing changed, when it cannot work: not Node, a
 * bundled or missing backend, no shared memory, no SIMD, backend already
 * initialised, unexpected package layout, tmpdir not writable, and so on.
 * It works from both ESM and CJS: the tfjs packages are found in Node's
 * CommonJS module cache (ESM imports of them go through that cache too),
 * so this file has no static import of tfjs.
 *
 * Why each step is needed (tf-backend-wasm.node.js, 4.22.0):
 *  1. The flag WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false when
 *     IS_NODE is true (see tfjs#3830), so we set it to true.
 *  2. locateFile('*.worker.js') returns URL.createObjectURL(new Blob([src])).
 *     Node's worker_threads.Worker does not accept a "blob:nodedata:" string
 *     and throws ERR_WORKER_PATH. We wrap URL.createObjectURL so that *that* blob
 *     becomes the path of a temp .cjs file with the same source. The blob is
 *     recognised by type and exact byte size.
 *  3. The backend also sets mainScriptUrlOrBlob = Blob("var
 *     WasmBackendModuleThreadedSimd = " + factory.toString()). Each pthread
 *     worker gets that Blob and importScripts() it through
 *     fs.readFileSync(blobURL), which cannot work in Node. Even its content
 *     would fail there, because the rollup-bundled factory refers to bundle
 *     locals (require$$0, commonjsGlobal, __values, ...). The temp worker
 *     file therefore wraps onmessage so that a Blob urlOrBlob is replaced by
 *     the path of the package's untouched emscripten glue,
 *     wasm-out/tfjs-backend-wasm-threaded-simd.js. That file comes from the
 *     same build as the glue in the bundle, so its wasm imports match.
 *  4. The C++ side caps the pool at emscripten_num_logical_cores()/2, and in
 *     Node that is os.cpus().length / 2. So on a 2-vCPU machine you get 1
 *     thread whatever setThreadsCount() says. While the backend factory runs
 *     (the global ctor reads the value once), os.cpus() reports at least
 *     2*n entries. The real function is put back right after.
 *  5. Emscripten ref()s every worker that runs a pthread. XNNPACK's pool
 *     threads never exit, so the process would never end. After the backend
 *     is created we unref() those workers and make ref() a no-op for them.
 *     The main thread blocks synchronously while they compute, so nothing
 *     needs them to keep the event loop alive.
 */

import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

const STATE_KEY = Symbol.for('tfjs-wasm-threads.state');
const MAX_THREADS = 8; // emscripten PTHREAD_POOL_SIZE and C++ max_num_threads

// The same wasm "threads" feature test tfjs uses in browsers (atomic load).
const THREADS_TEST = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254,
  16, 2, 0, 26, 11,
]);

// Minimal structural types, so that no tfjs typings are needed.
interface NodeWorkerLike {
  unref(): void;
  ref(): void;
}
interface PThreadLike {
  runningWorkers: NodeWorkerLike[];
  unusedWorkers: NodeWorkerLike[];
}
interface TfCoreLike {
  env(): { set(k: string, v: unknown): void; getAsync(k: string): Promise<unknown> };
  engine(): { registryFactory?: Record<string, { priority: number }> };
  findBackendFactory(name: string): (() => unknown) | null;
  removeBackend(name: string): void;
  registerBackend(name: string, f: () => unknown, priority?: number): boolean;
}
interface WasmBackendModuleLike {
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
}
interface State {
  threads: number;
}

function findLoadedModule(cache: Record<string, any>, re: RegExp): string | undefined {
  return Object.keys(cache).find((k) => re.test(k.replace(/\\/g, '/')));
}

export async function enableWasmThreads(threads: number): Promise<boolean> {
  try {
    // Node only. In browsers the backend already detects threads itself.
    if (typeof process !== 'object' || !process.versions?.node) return fail('not Node');
    if (!Number.isInteger(threads) || threads < 2) return fail('threads must be an integer >= 2');
    const n = Math.min(threads, MAX_THREADS);

    const g = globalThis as any;
    // Called again (maybe from a second ESM/CJS copy of this file): only the
    // thread count needs updating.
    if (g[STATE_KEY]) {
      const st = g[STATE_KEY] as State & { backend: WasmBackendModuleLike };
      if (!notInitialized(st.backend)) return fail('wasm backend already initialised');
      st.threads = n;
      st.backend.setThreadsCount(n);
      return true;
    }

    // Shared memory, Blob URLs and wasm threads must all be there.
    if (typeof SharedArrayBuffer !== 'function' || typeof Atomics !== 'object')
      return fail('no SharedArrayBuffer/Atomics');
    if (typeof URL?.createObjectURL !== 'function' || typeof Blob !== 'function')
      return fail('no Blob/URL.createObjectURL');
    if (!WebAssembly.validate(THREADS_TEST)) return fail('no wasm threads support');

    // Find the backend copy that is actually loaded. Node's CJS cache is shared
    // by ESM imports of CJS packages. A bundled backend is not in it, so we
    // give up.
    const cjsCache = createRequire(path.join(process.cwd(), 'noop.js')).cache as Record<string, any>;
    const distFile = findLoadedModule(
      cjsCache,
      /\/@tensorflow\/tfjs-backend-wasm\/dist\/tf-backend-wasm\.node\.js$/,
    );
    if (!distFile) return fail('tf-backend-wasm.node.js not loaded through require (bundled?)');
    const backend = cjsCache[distFile].exports as WasmBackendModuleLike;
    if (typeof backend?.setThreadsCount !== 'function') return fail('unexpected backend exports');
    if (!notInitialized(backend)) return fail('wasm backend already initialised'); // flags are read at init

    // Use the exact tfjs-core and os module objects the backend uses.
    const req = createRequire(distFile);
    const tf = req('@tensorflow/tfjs-core') as TfCoreLike;
    const nodeOs = req('os') as typeof os; // mutable CJS object (the ESM namespace is frozen)
    const wasmFactory = tf.findBackendFactory('wasm');
    if (typeof wasmFactory !== 'function') return fail("no 'wasm' backend registered");
    // The threaded binary is SIMD-only.
    if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) return fail('no wasm SIMD support');

    // Check that the package looks like the one this shim was written for.
    const pkgDir = path.resolve(path.dirname(distFile), '..');
    const workerModule = path.join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js');
    const mainGlue = path.join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
    const wasmBin = path.join(pkgDir, 'dist', 'tfjs-backend-wasm-threaded-simd.wasm');
    if (![workerModule, mainGlue, wasmBin].every((f) => fs.existsSync(f)))
      return fail('wasm-out files missing');
    const distSrc = fs.readFileSync(distFile, 'utf8');
    if (!distSrc.includes('mainScriptUrlOrBlob') || !distSrc.includes('URL.createObjectURL(blob)'))
      return fail('unexpected backend bundle');

    // Permission model (--experimental-permission without --allow-worker)
    // makes `new Worker` throw. Without this check the backend init would
    // fail half-way.
    const perm = (process as any).permission;
    if (perm && typeof perm.has === 'function' && !perm.has('worker'))
      return fail('worker_threads not permitted');

    // The worker source, escaped the way the backend escapes it before making
    // the Blob. That gives the byte size we use to recognise that Blob.
    const raw = req(workerModule)?.wasmWorkerContents;
    if (typeof raw !== 'string') return fail('wasmWorkerContents not found');
    const workerSrc = raw.replace(/\n/g, '\\n');
    const workerBlobSize = Buffer.byteLength(workerSrc);

    // Step 2+3: write the pthread worker as .cjs, so it stays CommonJS even if
    // tmpdir sits under a "type": "module" package. It ends with a hook that
    // swaps the unusable Blob main script for the untouched emscripten glue.
    // (The worker's parentPort listener calls the global `onmessage` by name,
    // so reassigning self.onmessage is enough.)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-wasm-threads-'));
    const workerFile = path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.cjs');
    fs.writeFileSync(
      workerFile,
      workerSrc +
        '\n;(function(){var orig=self.onmessage;self.onmessage=function(e){' +
        'if(e&&e.data&&e.data.cmd==="load"&&typeof e.data.urlOrBlob!=="string")' +
        `e.data.urlOrBlob=${JSON.stringify(mainGlue)};return orig.call(this,e)}})();\n`,
    );
    process.once('exit', () => {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        /* ignore */
      }
    });

    // ---- From here on, global state changes. ----
    const state = { threads: n, backend };
    g[STATE_KEY] = state;

    // Step 2: send the worker Blob to the temp file; pass everything else through.
    const origCreateObjectURL = URL.createObjectURL;
    URL.createObjectURL = (obj: Blob | MediaSource): string => {
      if (obj instanceof Blob && obj.size === workerBlobSize && obj.type === 'application/javascript') {
        return workerFile;
      }
      return origCreateObjectURL.call(URL, obj);
    };

    // Step 1: set the thread count and the flag that Node hard-wires off.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    backend.setThreadsCount(n);

    // Steps 4+5: wrap the registered 'wasm' backend factory, keeping its priority.
    const priority = tf.engine().registryFactory?.wasm?.priority ?? 2;
    tf.removeBackend('wasm');
    tf.registerBackend(
      'wasm',
      async () => {
        const origCpus = nodeOs.cpus;
        const cpus = origCpus.call(nodeOs);
        const want = 2 * state.threads;
        if (cpus.length < want) {
          // (os.cpus() can be empty in some containers.)
          const base = cpus.length
            ? cpus
            : [{ model: 'unknown', speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } }];
          nodeOs.cpus = () => Array.from({ length: want }, (_, i) => base[i % base.length]!);
        }
        let instance: any;
        try {
          instance = await wasmFactory();
        } finally {
          nodeOs.cpus = origCpus;
        }
        const pthread: PThreadLike | undefined = instance?.wasm?.PThread;
        if (pthread) {
          for (const w of [...pthread.runningWorkers, ...pthread.unusedWorkers]) {
            w.unref();
            w.ref = () => {}; // pool threads must never keep the process alive
          }
        }
        return instance;
      },
      priority,
    );
    return true;
  } catch (e) {
    return fail(`unexpected error: ${e}`);
  }
}

// Logs why we return false when TFJS_WASM_THREADS_DEBUG is set.
function fail(reason: string): false {
  if (process.env.TFJS_WASM_THREADS_DEBUG) console.warn(`enableWasmThreads: ${reason}`);
  return false;
}

function notInitialized(backend: WasmBackendModuleLike): boolean {
  try {
    backend.getThreadsCount();
    return false;
  } catch {
    return true;
  }
}

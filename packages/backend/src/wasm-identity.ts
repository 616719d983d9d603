import { getKernel, Identity, type TensorInfo } from '@tensorflow/tfjs-core';
import { wasmKernelReplacer } from './wasm-kernel.js';

/** What the identity needs of TF.js's wasm backend (public methods of `BackendWasm`). */
interface RefCountingBackend {
  incRef(dataId: object): void;
}

/** The kernel installed here carries this mark, so that installing twice keeps one. */
const kernels = wasmKernelReplacer('@crp/backend/wasm-identity');

/**
 * Replaces the wasm backend's `Identity` kernel with one that shares its input's data, as the cpu backend's does
 * and as the wasm `Reshape` already does (one more reference; the data is freed with the last tensor). TF.js
 * 4.22's copies the whole tensor, and `tf.clone` runs it. A `Transpose` that only moves axes of size 1 and a
 * one-input `Concat` copy too, but they call the wasm module's own identity function, not the registered kernel,
 * so they still copy (as the README says; @crp/lrp reshapes a 1x1 window's patches instead). Tensors are
 * immutable, so no kernel can tell the two apart.
 * Strings are left to the original. Returns false when the wasm backend's kernel is not registered.
 */
export function installWasmIdentity(): boolean {
  const original = getKernel(Identity, 'wasm');
  if (original === undefined) return false;
  if (kernels.installed(Identity)) return true;
  kernels.replace(original, (args) => {
    const x = args.inputs.x as TensorInfo;
    if (x.dtype === 'string') return original.kernelFunc(args);
    (args.backend as unknown as RefCountingBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
  return true;
}

/**
 * What this package's wasm kernels share: the part of TF.js's wasm backend they use, and how a module of them
 * replaces the backend's kernels so that installing twice keeps one.
 */
import {
  type DataType,
  getKernel,
  type KernelConfig,
  type KernelFunc,
  registerKernel,
  type TensorInfo,
  type TypedArray,
  unregisterKernel,
} from '@tensorflow/tfjs-core';

/** What the kernels need of TF.js's wasm backend (public methods of `BackendWasm`). */
export interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): TypedArray;
}

/** Replaces wasm kernels and recognises its own: {@link wasmKernelReplacer}. */
export interface WasmKernelReplacer {
  /** Registers `kernelFunc` for wasm in place of `original` (its other fields kept), marked as installed here. */
  replace(original: KernelConfig, kernelFunc: KernelFunc): void;
  /** Whether the kernel registered for wasm under `kernelName` is one this replacer installed (false when wasm
   * has none). */
  installed(kernelName: string): boolean;
}

/**
 * The replacer of one module of kernels: its kernel functions carry the mark `Symbol.for(key)` (a global symbol,
 * so two copies of this package in one page recognise each other's kernels).
 */
export function wasmKernelReplacer(key: string): WasmKernelReplacer {
  const mark = Symbol.for(key);
  type Marked = KernelFunc & { [mark]?: boolean };
  return {
    replace(original, kernelFunc) {
      (kernelFunc as Marked)[mark] = true;
      unregisterKernel(original.kernelName, 'wasm');
      registerKernel({ ...original, kernelFunc });
    },
    installed(kernelName) {
      const kernel = getKernel(kernelName, 'wasm');
      return kernel !== undefined && (kernel.kernelFunc as Marked)[mark] === true;
    },
  };
}

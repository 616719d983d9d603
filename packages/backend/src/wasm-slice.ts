/**
 * The in-place wasm `Slice` kernel (entry point `@crp/backend/wasm-slice`): browser-safe, so that a page on TF.js's
 * wasm backend installs it as `selectBackend` does in Node.
 */
import {
  type DataType,
  getKernel,
  type KernelFunc,
  registerKernel,
  Slice,
  type SliceAttrs,
  slice_util,
  type TensorInfo,
  type TypedArray,
  unregisterKernel,
  util,
} from '@tensorflow/tfjs-core';
import { copyBox } from './copy-box.js';

/** What the slice needs of TF.js's wasm backend (public methods of `BackendWasm`). */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): TypedArray;
}

/** Marks the kernel function installed here, so that installing twice keeps one. */
const MARK = Symbol.for('@crp/backend/wasm-slice');

/**
 * Replaces the wasm backend's `Slice` kernel with one that reads the input in place. TF.js 4.22's copies the
 * whole input out of the wasm heap first (`readSync`) and then copies the box row by row of the last axis, so
 * a slice costs the size of its input, not of its output: in a ResNet-50 heatmap the slices of packed phase
 * kernels and of padded maps took 18% of the time. Same values, every dtype but string (left to the original).
 * Returns false when the wasm backend's kernel is not registered.
 */
export function installWasmSlice(): boolean {
  const original = getKernel(Slice, 'wasm');
  if (original === undefined) return false;
  if ((original.kernelFunc as { [MARK]?: boolean })[MARK] === true) return true;
  const kernelFunc = ((args) => {
    const x = args.inputs.x as TensorInfo;
    if (x.dtype === 'string') return original.kernelFunc(args);
    const { begin, size } = args.attrs as unknown as SliceAttrs;
    const backend = args.backend as unknown as WasmHeapBackend;
    const [from, extent] = slice_util.parseSliceParams(x, begin, size) as [number[], number[]];
    const out = backend.makeOutput(extent, x.dtype);
    if (util.sizeFromShape(extent) === 0) return out;
    // views taken after makeOutput, which may grow (and so move) the heap
    copyBox(backend.typedArrayFromHeap(x), x.shape, from, extent, backend.typedArrayFromHeap(out));
    return out;
  }) as KernelFunc & { [MARK]?: boolean };
  kernelFunc[MARK] = true;
  unregisterKernel(Slice, 'wasm');
  registerKernel({ ...original, kernelFunc });
  return true;
}

/** Whether the `Slice` kernel registered for wasm is {@link installWasmSlice}'s (false when wasm is not registered). */
export function wasmSliceInstalled(): boolean {
  const kernel = getKernel(Slice, 'wasm');
  return kernel !== undefined && (kernel.kernelFunc as { [MARK]?: boolean })[MARK] === true;
}

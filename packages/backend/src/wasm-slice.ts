/**
 * The in-place wasm `Slice` and `SplitV` kernels (entry point `@crp/backend/wasm-slice`): browser-safe, so that a
 * page on TF.js's wasm backend installs them as `selectBackend` does in Node.
 */
import {
  backend_util,
  getKernel,
  Slice,
  type SliceAttrs,
  SplitV,
  type SplitVAttrs,
  slice_util,
  type TensorInfo,
  util,
} from '@tensorflow/tfjs-core';
import { copyBox } from './copy-box.js';
import { type WasmHeapBackend, wasmKernelReplacer } from './wasm-kernel.js';

/** The kernels installed here carry this mark, so that installing twice keeps one. */
const kernels = wasmKernelReplacer('@crp/backend/wasm-slice');

/**
 * Replaces the wasm backend's `Slice` kernel with one that reads the input in place. TF.js 4.22's copies the
 * whole input out of the wasm heap first (`readSync`) and then copies the box row by row of the last axis, so
 * a slice costs the size of its input, not of its output: in a ResNet-50 heatmap the slices of packed phase
 * kernels and of padded maps took 18% of the time. Same values, every dtype but string (left to the original).
 * Its `SplitV` (`tf.split`) slices the same way, once per part, so a split in k parts copied its whole input k
 * times: it is replaced too, each part one box copy. Returns false when the wasm backend's kernels are not
 * registered.
 */
export function installWasmSlice(): boolean {
  const original = getKernel(Slice, 'wasm');
  const originalSplit = getKernel(SplitV, 'wasm');
  if (original === undefined || originalSplit === undefined) return false;
  if (!kernels.installed(Slice)) {
    kernels.replace(original, (args) => {
      const x = args.inputs.x as TensorInfo;
      if (x.dtype === 'string') return original.kernelFunc(args);
      const { begin, size } = args.attrs as unknown as SliceAttrs;
      const backend = args.backend as unknown as WasmHeapBackend;
      const [from, extent] = slice_util.parseSliceParams(x, begin, size) as [number[], number[]];
      return sliceBox(backend, x, from, extent);
    });
  }
  if (!kernels.installed(SplitV)) {
    kernels.replace(originalSplit, (args) => {
      const x = args.inputs.x as TensorInfo;
      if (x.dtype === 'string') return originalSplit.kernelFunc(args);
      const { numOrSizeSplits, axis } = args.attrs as unknown as SplitVAttrs;
      const backend = args.backend as unknown as WasmHeapBackend;
      const at = util.parseAxisParam(axis, x.shape)[0]!;
      const sizes = backend_util.prepareSplitSize(x, numOrSizeSplits, at);
      const from = x.shape.map(() => 0);
      return sizes.map((s) => {
        const extent = x.shape.slice();
        extent[at] = s;
        const part = sliceBox(backend, x, from, extent);
        from[at] = from[at]! + s;
        return part;
      });
    });
  }
  return true;
}

/** A new tensor holding the box `from`/`extent` of `x`, copied from the wasm heap in place. */
function sliceBox(backend: WasmHeapBackend, x: TensorInfo, from: number[], extent: number[]): TensorInfo {
  const out = backend.makeOutput(extent, x.dtype);
  if (util.sizeFromShape(extent) === 0) return out;
  // views taken after makeOutput, which may grow (and so move) the heap
  copyBox(backend.typedArrayFromHeap(x), x.shape, from, extent, backend.typedArrayFromHeap(out));
  return out;
}

/** Whether the `Slice` and `SplitV` kernels registered for wasm are {@link installWasmSlice}'s (false when wasm is
 * not registered). */
export function wasmSliceInstalled(): boolean {
  return kernels.installed(Slice) && kernels.installed(SplitV);
}

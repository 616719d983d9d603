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

/** What the slice needs of TF.js's wasm backend (public methods of `BackendWasm`). */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): TypedArray;
}

/** Marks the kernel function installed here, so that installing twice keeps one. */
const MARK = Symbol.for('@crp/backend/wasm-slice');

/**
 * Copies the box `begin`/`size` of a row-major array of `shape` into `out`, in runs as long as the box allows:
 * the trailing axes the box spans completely join the innermost run, so a crop of H and W in NHWC copies rows
 * of W·C values, and a slice along the first axis is one copy.
 */
export function copyBox(
  src: TypedArray,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
  out: TypedArray,
): void {
  const rank = shape.length;
  if (rank === 0) {
    out[0] = src[0]!;
    return;
  }
  const strides = util.computeStrides(shape as number[]);
  const stride = (k: number) => (k === rank - 1 ? 1 : strides[k]!);
  // the run: axis `inner` and every full axis after it
  let inner = rank - 1;
  while (inner > 0 && size[inner] === shape[inner]) inner--;
  const run = size[inner]! * stride(inner);
  const outer = size.slice(0, inner);
  const count = outer.reduce((a, b) => a * b, 1);
  const index = new Array<number>(inner).fill(0);
  let base = begin[inner]! * stride(inner);
  for (let k = 0; k < inner; k++) base += begin[k]! * stride(k);
  let from = base;
  for (let n = 0, to = 0; n < count; n++, to += run) {
    out.set(src.subarray(from, from + run), to);
    // next outer index (odometer, last outer axis fastest)
    for (let k = inner - 1; k >= 0; k--) {
      index[k]!++;
      from += stride(k);
      if (index[k]! < outer[k]!) break;
      from -= index[k]! * stride(k);
      index[k] = 0;
    }
  }
}

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

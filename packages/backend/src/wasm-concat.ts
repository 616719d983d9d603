/**
 * Wasm `Concat` and `Pack` (`tf.concat`, `tf.stack`) kernels that copy without a typed-array view per run (entry
 * point `@crp/backend/wasm-concat`): browser-safe, so that a page on TF.js's wasm backend installs them as
 * `selectBackend` does in Node.
 */
import { backend_util, Concat, getKernel, Pack, type TensorInfo, util } from '@tensorflow/tfjs-core';
import { runCopier } from './copy-box.js';
import { type WasmHeapBackend, wasmKernelReplacer } from './wasm-kernel.js';

/** The kernels installed here carry this mark, so that installing twice keeps one. */
const kernels = wasmKernelReplacer('@crp/backend/wasm-concat');

/**
 * Writes the inputs side by side along an axis: with `outer` the product of the axes before it, row b of the
 * output is row b of every input in turn, input i's rows `inner[i]` long.
 */
function joinRows(
  backend: WasmHeapBackend,
  inputs: readonly TensorInfo[],
  inner: readonly number[],
  outer: number,
  outShape: number[],
): TensorInfo {
  const out = backend.makeOutput(outShape, inputs[0]!.dtype);
  if (util.sizeFromShape(outShape) === 0) return out;
  // views taken after makeOutput, which may grow (and so move) the heap
  const outView = backend.typedArrayFromHeap(out);
  const rowSize = inner.reduce((a, b) => a + b, 0);
  inputs.forEach((input, i) => {
    const n = inner[i]!;
    if (n === 0) return;
    const copy = runCopier(backend.typedArrayFromHeap(input), outView);
    const offset = inner.slice(0, i).reduce((a, b) => a + b, 0);
    for (let b = 0; b < outer; b++) copy(b * n, b * rowSize + offset, n);
  });
  return out;
}

const sameDtype = (inputs: readonly TensorInfo[]) =>
  inputs[0]!.dtype !== 'string' && inputs.every((t) => t.dtype === inputs[0]!.dtype);

/**
 * Replaces the wasm backend's `Concat` and `Pack` kernels with ones that copy each run of an input into the output
 * by `copyWithin` on the heap (runs of up to 16 elements one by one). TF.js 4.22's make a typed-array view of
 * every run of every input (`subarray`, then `set`): stacking the sub-pixel phases of a strided conv's transpose,
 * runs of C floats per pixel, cost more than the conv, and a one-channel map (runs of one float) 6 ms for
 * 113x113. Same values, every dtype but string (left to the original, as are inputs of mixed dtypes and what the
 * original refuses). Returns false when the wasm backend's kernels are not registered.
 */
export function installWasmConcat(): boolean {
  const concat = getKernel(Concat, 'wasm');
  const pack = getKernel(Pack, 'wasm');
  if (concat === undefined || pack === undefined) return false;
  if (!wasmConcatInstalled()) {
    kernels.replace(concat, (args) => {
      const inputs = args.inputs as unknown as TensorInfo[];
      if (inputs.length < 2 || !sameDtype(inputs)) return concat.kernelFunc(args);
      const shapes = inputs.map((t) => t.shape);
      const axis = util.parseAxisParam((args.attrs as { axis: number | number[] }).axis, shapes[0]!)[0]!;
      backend_util.assertParamsConsistent(shapes, axis);
      const outShape = backend_util.computeOutShape(shapes, axis);
      const outer = util.sizeFromShape(shapes[0]!.slice(0, axis));
      const inner = shapes.map((s) => util.sizeFromShape(s.slice(axis)));
      return joinRows(args.backend as unknown as WasmHeapBackend, inputs, inner, outer, outShape);
    });
  }
  if (!wasmPackInstalled()) {
    kernels.replace(pack, (args) => {
      const inputs = args.inputs as unknown as TensorInfo[];
      const shape = inputs[0]?.shape ?? [];
      const rank = shape.length;
      let axis = (args.attrs as { axis: number }).axis;
      if (axis < 0) axis += rank + 1;
      const consistent =
        inputs.length >= 2 &&
        sameDtype(inputs) &&
        axis >= 0 &&
        axis <= rank &&
        inputs.every((t) => util.arraysEqual(t.shape, shape));
      if (!consistent) return pack.kernelFunc(args);
      // stacking along `axis` is concatenating rows of everything from `axis` on
      const outShape = [...shape.slice(0, axis), inputs.length, ...shape.slice(axis)];
      const outer = util.sizeFromShape(shape.slice(0, axis));
      const inner = inputs.map(() => util.sizeFromShape(shape.slice(axis)));
      return joinRows(args.backend as unknown as WasmHeapBackend, inputs, inner, outer, outShape);
    });
  }
  return true;
}

/** Whether the `Concat` kernel registered for wasm is {@link installWasmConcat}'s (false when wasm is not
 * registered). */
export function wasmConcatInstalled(): boolean {
  return kernels.installed(Concat);
}

/** Whether the `Pack` kernel registered for wasm is {@link installWasmConcat}'s. */
function wasmPackInstalled(): boolean {
  return kernels.installed(Pack);
}

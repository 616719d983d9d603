import * as tf from '@tensorflow/tfjs-core';

type Backend = tf.KernelBackend & {
  makeTensorInfo?: (shape: number[], dtype: tf.DataType, values: Float32Array) => tf.TensorInfo;
  makeOutput?: (
    shape: number[],
    dtype: tf.DataType,
    memoryOffset?: number,
    values?: Float32Array,
  ) => tf.TensorInfo;
};

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

interface Conv2DBackpropFilterAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

interface Conv2DBackpropInputAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

/** The convolution geometry of a `Conv2DBackpropFilter` call (NHWC only, as TF.js layers use). */
function filterGradientInfo(
  x: tf.TensorInfo,
  args: KernelArgs,
): { info: tf.backend_util.Conv2DInfo; filterShape: [number, number, number, number] } {
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
    args.attrs as unknown as Conv2DBackpropFilterAttrs;
  if (dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter (@crp/models): only NHWC is supported');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  return { info, filterShape };
}

/**
 * The gradient of a 2-D convolution with respect to its filter (the `Conv2DBackpropFilter` kernel), in plain
 * JavaScript over flat arrays (NHWC, any stride and padding, dilation 1):
 * `dW[fh, fw, ci, co] = Σ x[b, y·s + fh - top, x·s + fw - left, ci] · dy[b, y, x, co]`.
 */
function conv2dBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const backend = args.backend as Backend;
  const { info, filterShape } = filterGradientInfo(x, args);
  const xs = backend.readSync(x.dataId) as Float32Array;
  const dys = backend.readSync(dy.dataId) as Float32Array;
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const dw = new Float32Array(filterHeight * filterWidth * inChannels * outChannels);
  for (let b = 0; b < batchSize; b++) {
    for (let yr = 0; yr < outHeight; yr++) {
      for (let yc = 0; yc < outWidth; yc++) {
        const dyOff = ((b * outHeight + yr) * outWidth + yc) * outChannels;
        for (let fh = 0; fh < filterHeight; fh++) {
          const xr = yr * strideHeight + fh - top;
          if (xr < 0 || xr >= inHeight) continue;
          for (let fw = 0; fw < filterWidth; fw++) {
            const xc = yc * strideWidth + fw - left;
            if (xc < 0 || xc >= inWidth) continue;
            const xOff = ((b * inHeight + xr) * inWidth + xc) * inChannels;
            const wOff = (fh * filterWidth + fw) * inChannels * outChannels;
            for (let ci = 0; ci < inChannels; ci++) {
              const xv = xs[xOff + ci]!;
              if (xv === 0) continue; // inputs after a ReLU are often 0
              const base = wOff + ci * outChannels;
              for (let co = 0; co < outChannels; co++) dw[base + co]! += xv * dys[dyOff + co]!;
            }
          }
        }
      }
    }
  }
  if (backend.makeTensorInfo !== undefined) return backend.makeTensorInfo(filterShape, 'float32', dw);
  if (backend.makeOutput !== undefined) return backend.makeOutput(filterShape, 'float32', undefined, dw);
  throw new Error(
    'Conv2DBackpropFilter (@crp/models): this backend cannot take kernel outputs from JavaScript',
  );
}

// ---------------------------------------------------------------------------------------------------------------
// wasm: the backward kernels of TF.js 4.22's wasm backend are naive loops (Conv2DBackpropInput, the transposed
// cases of BatchMatMul) or missing (Conv2DBackpropFilter), 20-60 times slower than the forward pass, and its
// Identity copies every tensor that the gradient tape saves (the 411 MB first Linear layer of a torchvision VGG
// twice per step). The kernels below rewrite each of them as the backend's own fast kernels (XNNPACK's
// convolution and matrix product, its transpose), composed as TF.js backends compose kernels: kernel functions
// called with TensorInfos, intermediates released with disposeData.

type WasmBackend = tf.KernelBackend & {
  incRef(dataId: tf.DataId): void;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
};

/** The wasm kernels this file's kernels are made of (captured before any of them is replaced). */
const wasmOriginals = new Map<string, tf.KernelFunc>();

function wasmKernel(name: string): tf.KernelFunc {
  const found = wasmOriginals.get(name) ?? tf.getKernel(name, 'wasm')?.kernelFunc;
  if (found === undefined) throw new Error(`the wasm backend has no ${name} kernel (@crp/models)`);
  return found;
}

function run(name: string, backend: WasmBackend, inputs: tf.NamedTensorInfoMap, attrs: object = {}) {
  return wasmKernel(name)({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
}

/** The same data under another shape (no copy; the caller releases it). */
function view(backend: WasmBackend, x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

function release(backend: WasmBackend, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/**
 * Identity without a copy (as the cpu backend does): tensors are immutable, so the clone that the gradient tape
 * keeps of every saved input can share its data. wasm's own Identity copies, which doubles the memory of a step.
 */
function wasmIdentity(args: KernelArgs): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') return wasmKernel('Identity')(args as never) as tf.TensorInfo;
  return view(args.backend as WasmBackend, x, x.shape);
}

/**
 * The filter gradient as one XNNPACK convolution: with x' = x transposed to [ci, H, W, batch] and
 * d = dy transposed to [oh, ow, batch, co], `dW[fh, fw, ci, co] = Σ_{b,y,x} x'[ci, y·s + fh - top, x·s + fw - left, b]
 * d[y, x, b, co]`, which is conv2d(x', d) with the layer's padding, stride 1 and dilation s.
 */
function wasmConv2dBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { info, filterShape } = filterGradientInfo(x, args);
  const { top, bottom, left, right } = info.padInfo;
  const [kh, kw, ci, co] = filterShape;
  const xT = run('Transpose', backend, { x }, { perm: [3, 1, 2, 0] });
  const dyT = run('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] });
  const conv = run(
    'Conv2D',
    backend,
    { x: xT, filter: dyT },
    {
      strides: [1, 1],
      pad: [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      dilations: [info.strideHeight, info.strideWidth],
      dataFormat: 'NHWC',
    },
  );
  release(backend, xT, dyT);
  let cut = conv;
  // padding that no output position uses makes the result larger than the filter: its first kh x kw rows count
  if (conv.shape[1] !== kh || conv.shape[2] !== kw) {
    cut = run('Slice', backend, { x: conv }, { begin: [0, 0, 0, 0], size: [ci, kh, kw, co] });
    release(backend, conv);
  }
  const out = run('Transpose', backend, { x: cut }, { perm: [1, 2, 0, 3] });
  release(backend, cut);
  return out;
}

/**
 * The input gradient of a stride-1 convolution as a convolution of dy with the flipped filter, channels swapped,
 * and padding `k - 1 - pad` (XNNPACK instead of wasm's naive loop). Strided convolutions use the original kernel.
 */
function wasmConv2dBackpropInput(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } =
    args.attrs as unknown as Conv2DBackpropInputAttrs;
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const [kh, kw] = filter.shape as [number, number, number, number];
  const { top, bottom, left, right } = info.padInfo;
  const pads = [kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right];
  if (dataFormat === 'NCHW' || info.strideHeight !== 1 || info.strideWidth !== 1 || pads.some((p) => p < 0)) {
    return wasmKernel('Conv2DBackpropInput')(args as never) as tf.TensorInfo;
  }
  const flipped = run('Reverse', backend, { x: filter }, { dims: [0, 1] });
  const back = run('Transpose', backend, { x: flipped }, { perm: [0, 1, 3, 2] });
  release(backend, flipped);
  const out = run(
    'Conv2D',
    backend,
    { x: dy, filter: back },
    {
      strides: [1, 1],
      pad: [
        [0, 0],
        [pads[0], pads[1]],
        [pads[2], pads[3]],
        [0, 0],
      ],
      dilations: [1, 1],
      dataFormat: 'NHWC',
    },
  );
  release(backend, back);
  return out;
}

/**
 * Tile that repeats a whole tensor (leading axes of size 1 repeated, trailing axes not): the batch-norm gradient
 * tiles each per-channel vector to the size of the layer's output, which wasm's generic Tile does element by
 * element; here it is one copy and doublings. Other tilings use the original kernel.
 */
function wasmTile(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const reps = (args.attrs as unknown as { reps: number[] }).reps;
  // axes [0, repeated) are repeated, the rest not
  const first = reps.findIndex((_, i) => reps.slice(i).every((v) => v === 1));
  const repeated = first < 0 ? reps.length : first;
  const wholeRepeat =
    x.dtype !== 'string' &&
    x.dtype !== 'complex64' &&
    x.shape.slice(0, repeated).every((d) => d === 1) &&
    typeof backend.typedArrayFromHeap === 'function';
  if (!wholeRepeat) return wasmKernel('Tile')(args as never) as tf.TensorInfo;
  const out = backend.makeOutput(
    x.shape.map((d, i) => d * reps[i]!),
    x.dtype,
  );
  // views after the allocation (it may grow the heap)
  const source = backend.typedArrayFromHeap(x);
  const target = backend.typedArrayFromHeap(out);
  const block = source.length;
  if (block === 0) return out;
  target.set(source);
  for (let filled = block; filled < target.length; filled *= 2) {
    target.copyWithin(filled, 0, Math.min(filled, target.length - filled));
  }
  return out;
}

/** Products smaller than this many multiply-adds keep wasm's own kernel (the rewrite's copies cost more). */
const REWRITE_MIN_MACS = 1 << 20;

/**
 * Matrix products with a transposed operand through XNNPACK's matrix product, which wasm uses only when neither
 * operand is transposed. Of `op(A)·op(B)` and `(op(B)ᵀ·op(A)ᵀ)ᵀ`, the one that copies fewer elements is taken: the
 * input gradient of a Dense layer, dy·Wᵀ, becomes (W·dyᵀ)ᵀ, which never copies W. Batched products (batch > 1)
 * use the original kernel.
 */
function wasmBatchMatMul(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
  const original = () => wasmKernel('BatchMatMul')(args as never) as tf.TensorInfo;
  if ((!transposeA && !transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') return original();
  const batch = (s: readonly number[]) => s.slice(0, -2).reduce((p, d) => p * d, 1);
  if (batch(a.shape) !== 1 || batch(b.shape) !== 1) return original();
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const m = transposeA ? ac : ar;
  const k = transposeA ? ar : ac;
  const n = transposeB ? br : bc;
  if ((transposeB ? bc : br) !== k || m * n * k < REWRITE_MIN_MACS) return original();
  const outShape = [...(a.shape.length >= b.shape.length ? a.shape : b.shape).slice(0, -2), m, n];
  // elements copied: materialised transposes, plus the packing of the right operand, plus the final transpose
  const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0) + k * n;
  const swapped = (transposeB ? 0 : k * n) + (transposeA ? 0 : m * k) + m * k + m * n;
  const matrix = (x: tf.TensorInfo, rows: number, cols: number, transpose: boolean): tf.TensorInfo => {
    const flat = view(backend, x, [rows, cols]);
    if (!transpose) {
      const shaped = view(backend, flat, [1, rows, cols]);
      release(backend, flat);
      return shaped;
    }
    const t = run('Transpose', backend, { x: flat }, { perm: [1, 0] });
    release(backend, flat);
    const shaped = view(backend, t, [1, cols, rows]);
    release(backend, t);
    return shaped;
  };
  const product = (left: tf.TensorInfo, right: tf.TensorInfo) =>
    run('BatchMatMul', backend, { a: left, b: right }, { transposeA: false, transposeB: false });
  if (direct <= swapped) {
    const left = matrix(a, ar, ac, transposeA); // [1, m, k]
    const right = matrix(b, br, bc, transposeB); // [1, k, n]
    const out = product(left, right);
    release(backend, left, right);
    const shaped = view(backend, out, outShape);
    release(backend, out);
    return shaped;
  }
  // Cᵀ = op(B)ᵀ · op(A)ᵀ: op(B)ᵀ is B as stored when B is transposed, op(A)ᵀ is A as stored when A is
  const left = matrix(b, br, bc, !transposeB); // [1, n, k]
  const right = matrix(a, ar, ac, !transposeA); // [1, k, m]
  const outT = product(left, right); // [1, n, m]
  release(backend, left, right);
  const flat = view(backend, outT, [n, m]);
  release(backend, outT);
  const out = run('Transpose', backend, { x: flat }, { perm: [1, 0] });
  release(backend, flat);
  const shaped = view(backend, out, outShape);
  release(backend, out);
  return shaped;
}

/** Options of {@link registerTrainingKernels}. */
export interface TrainingKernelOptions {
  /**
   * Also replace the `cpu` backend's own `Conv2DBackpropFilter` (correct but about 50 times slower in TF.js 4.22).
   * Default false.
   */
  replaceCpu?: boolean;
}

const WASM_KERNELS: Record<string, tf.KernelFunc> = {
  Identity: wasmIdentity as tf.KernelFunc,
  Conv2DBackpropFilter: wasmConv2dBackpropFilter as tf.KernelFunc,
  Conv2DBackpropInput: wasmConv2dBackpropInput as tf.KernelFunc,
  BatchMatMul: wasmBatchMatMul as tf.KernelFunc,
  Tile: wasmTile as tf.KernelFunc,
};

function replaceKernel(kernelName: string, backendName: string, kernelFunc: tf.KernelFunc): void {
  const existing = tf.getKernel(kernelName, backendName);
  if (existing?.kernelFunc === kernelFunc) return;
  if (existing !== undefined) {
    if (backendName === 'wasm' && !wasmOriginals.has(kernelName))
      wasmOriginals.set(kernelName, existing.kernelFunc);
    tf.unregisterKernel(kernelName, backendName);
  }
  tf.registerKernel({ ...existing, kernelName, backendName, kernelFunc });
}

/**
 * Makes convolutional networks trainable, and fast to train, on TF.js' wasm backend: registers for `wasm` a
 * `Conv2DBackpropFilter` (the filter gradient of `conv2d`, which wasm lacks), a `Conv2DBackpropInput` for stride-1
 * convolutions and a `BatchMatMul` for transposed operands that run on the backend's XNNPACK convolution and matrix
 * product (wasm's own are naive loops, 20-60 times slower), and an `Identity` that shares data instead of copying
 * it (the gradient tape clones every tensor it saves). Results equal the originals up to float rounding (sums in
 * another order). {@link train} calls it; call it yourself to use `model.fit` or `optimizer.minimize` on wasm.
 * Calling it again does nothing.
 */
export function registerTrainingKernels(options: TrainingKernelOptions = {}): void {
  // only where the wasm backend is loaded (its kernels are what these are made of)
  if (tf.getKernel('Conv2D', 'wasm') !== undefined) {
    for (const [name, kernel] of Object.entries(WASM_KERNELS)) {
      // the originals stay available for the cases the rewrites leave to them
      if (name !== 'Conv2DBackpropFilter' && tf.getKernel(name, 'wasm') === undefined) continue;
      replaceKernel(name, 'wasm', kernel);
    }
  }
  if (options.replaceCpu === true)
    replaceKernel('Conv2DBackpropFilter', 'cpu', conv2dBackpropFilter as tf.KernelFunc);
}

/**
 * Winograd F(4x4, 3x3) for the wasm backend's `Conv2D` and `FusedConv2D` kernels, on the shapes where it measured
 * faster than XNNPACK's direct convolution (`bench/src/winograd-probe.ts`): 36 products [tiles, Cin] x [Cin, Cout]
 * instead of 9 per output pixel over 16 pixels, i.e. 4x fewer multiply-adds, at the price of the transforms.
 */
import {
  Add,
  BatchMatMul,
  backend_util,
  Conv2D,
  type Conv2DAttrs,
  DepthwiseConv2dNative,
  FusedConv2D,
  type FusedConv2DAttrs,
  findBackend,
  getKernel,
  type KernelConfig,
  type KernelFunc,
  Multiply,
  Pack,
  Relu,
  registerKernel,
  Slice,
  SplitV,
  Sub,
  type TensorInfo,
  Transpose,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import { type WasmHeapBackend, wasmKernelReplacer } from './wasm-kernel.js';

/** The kernels installed here carry this mark, so that installing twice keeps one. */
const kernels = wasmKernelReplacer('@crp/backend/wasm-winograd');

interface WinogradBackend extends WasmHeapBackend {
  disposeData(dataId: object, force?: boolean): boolean;
}

/** Which 3x3 stride-1 convolutions run as Winograd, by batch, output size and channels. */
export type WinogradRule = (
  batch: number,
  outHeight: number,
  outWidth: number,
  inChannels: number,
  outChannels: number,
) => boolean;

/**
 * Whether a 3x3 stride-1 convolution of this size runs as Winograd F(4x4, 3x3): at least 256 input and output
 * channels, and each of the 36 products [tiles, Cin] x [Cin, Cout] at least 12 M multiply-adds (tiles: 4x4 outputs
 * in the batch). Measured on wasm with 2 threads (`bench/src/winograd-probe.ts`, CPU time against tf.conv2d,
 * 2026-12-06, load 20-28). Faster: 56x56x256 (12.8 M a product) 1.36x at batch 1 and 1.98x at batch 8, 28x28x512
 * (12.8 M) 1.50x at batch 1, 14x14x512 at batch 8 (33.5 M) 1.78x. Slower: 14x14x256 at batch 8 (8.4 M) 0.88x,
 * 14x14x512 at batch 1 (4.2 M) 0.65x, every ResNet-50 3x3 conv at batch 1 (0.27-0.42x) and 8 (0.61-0.88x): with
 * few channels or tiles the transforms and 36 calls cost more than the products save; 112x112x128 0.97x at batch 1
 * (1.20x at batch 8) and 224x224x64 0.7-0.8x (the input transform's 36 values per tile and channel are
 * memory-bound).
 */
export const winogradApplies: WinogradRule = (batch, outHeight, outWidth, inChannels, outChannels) =>
  inChannels >= 256 &&
  outChannels >= 256 &&
  batch * Math.ceil(outHeight / 4) * Math.ceil(outWidth / 4) * inChannels * outChannels >= 12e6;

// F(4x4, 3x3) with the points 0, +-1, +-2 (Lavin & Gray 2016): Y = A^T [(G g G^T) . (B^T d B)] A
/** The input transform B^T [6, 6] and filter transform G [6, 3] of F(4x4, 3x3); bench's winograd probe reads
 * them too (through @crp/backend/internal). */
export const WINOGRAD_F4: { readonly BT: readonly number[][]; readonly G: readonly number[][] } = {
  BT: [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
  ],
  G: [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
  ],
};
const { BT, G } = WINOGRAD_F4;
const ALPHA = 6;
const M = 4;
const A2 = ALPHA * ALPHA;

let rule: WinogradRule = winogradApplies;

/** The kernels replaced, to put back. */
const originals = new Map<string, KernelConfig>();

/** Per backend: the constant tensors (input transform filters per channel count, scalars) and the transformed
 * weights per filter's data and input channel count (a reshape shares the data: [3, 3, 4, 2] and [3, 3, 2, 4]
 * are two filters on one dataId), freed with the filter's data or by {@link uninstallWasmWinograd}. */
interface State {
  inputFilters: Map<number, TensorInfo>;
  scalars: Map<number, TensorInfo>;
  weights: Map<object, Map<number, TensorInfo[]>>;
}
const states = new WeakMap<object, State>();

function float32(backend: WinogradBackend, shape: number[], fill: (out: Float32Array) => void): TensorInfo {
  const t = backend.makeOutput(shape, 'float32');
  // the view after makeOutput, which may grow (and so move) the heap
  fill(backend.typedArrayFromHeap(t) as Float32Array);
  return t;
}

function stateOf(backend: WinogradBackend): State {
  let s = states.get(backend);
  if (s === undefined) {
    s = { inputFilters: new Map(), scalars: new Map(), weights: new Map() };
    states.set(backend, s);
    // the transformed weights live as long as the filter's data
    const dispose = backend.disposeData.bind(backend);
    const weights = s.weights;
    backend.disposeData = (dataId, force) => {
      const freed = dispose(dataId, force);
      const byCin = freed ? weights.get(dataId) : undefined;
      if (byCin !== undefined) {
        weights.delete(dataId);
        for (const u of byCin.values()) for (const t of u) dispose(t.dataId, true);
      }
      return freed;
    };
  }
  return s;
}

/** The depthwise filter of B^T d B: [6, 6, cin, 36], entry (i, j, c, k = 6p + q) = BT[p][i] BT[q][j]. */
function inputFilter(backend: WinogradBackend, s: State, cin: number): TensorInfo {
  let f = s.inputFilters.get(cin);
  if (f === undefined) {
    f = float32(backend, [ALPHA, ALPHA, cin, A2], (out) => {
      for (let i = 0; i < ALPHA; i++)
        for (let j = 0; j < ALPHA; j++)
          for (let c = 0; c < cin; c++)
            for (let p = 0; p < ALPHA; p++)
              for (let q = 0; q < ALPHA; q++)
                out[((i * ALPHA + j) * cin + c) * A2 + p * ALPHA + q] = BT[p]![i]! * BT[q]![j]!;
    });
    s.inputFilters.set(cin, f);
  }
  return f;
}

function scalar(backend: WinogradBackend, s: State, v: number): TensorInfo {
  let t = s.scalars.get(v);
  if (t === undefined) {
    t = float32(backend, [], (out) => {
      out[0] = v;
    });
    s.scalars.set(v, t);
  }
  return t;
}

/** U_k = (G g G^T)_k for k = 6p + q: 36 tensors [1, cin, cout], summed in float64 from the [3, 3, cin, cout]
 * filter. Cached per filter's data and shape. */
function weightsOf(backend: WinogradBackend, s: State, filter: TensorInfo): TensorInfo[] {
  const [, , cin, cout] = filter.shape as [number, number, number, number];
  let byCin = s.weights.get(filter.dataId);
  if (byCin === undefined) {
    byCin = new Map();
    s.weights.set(filter.dataId, byCin);
  }
  let u = byCin.get(cin);
  if (u === undefined) {
    const size = cin * cout;
    const acc = new Float64Array(size);
    u = [];
    for (let p = 0; p < ALPHA; p++)
      for (let q = 0; q < ALPHA; q++) {
        acc.fill(0);
        const g = backend.typedArrayFromHeap(filter) as Float32Array;
        for (let i = 0; i < 3; i++)
          for (let j = 0; j < 3; j++) {
            const coef = G[p]![i]! * G[q]![j]!;
            if (coef === 0) continue;
            const at = (i * 3 + j) * size;
            for (let e = 0; e < size; e++) acc[e]! += coef * g[at + e]!;
          }
        u.push(float32(backend, [1, cin, cout], (out) => out.set(acc)));
      }
    byCin.set(cin, u);
  }
  return u;
}

/**
 * The convolution of `x` [n, h, w, cin] with the 3x3 `filter` at stride 1, padded by `top`/`left` and cropped to
 * [n, outHeight, outWidth, cout], as Winograd F(4x4, 3x3) from other wasm kernels; every intermediate freed.
 */
function winogradConv(
  backend: WinogradBackend,
  x: TensorInfo,
  filter: TensorInfo,
  convInfo: backend_util.Conv2DInfo,
): TensorInfo {
  const s = stateOf(backend);
  const [n, h, w, cin] = x.shape as [number, number, number, number];
  const cout = filter.shape[3]!;
  const { outHeight: ho, outWidth: wo } = convInfo;
  const { top, left } = convInfo.padInfo;
  const th = Math.ceil(ho / M);
  const tw = Math.ceil(wo / M);
  const t = n * th * tw;
  const temps: TensorInfo[] = [];
  const run = (name: string, inputs: unknown, attrs: object = {}): TensorInfo => {
    const out = getKernel(name, 'wasm')!.kernelFunc({
      inputs: inputs as never,
      attrs: attrs as never,
      backend: backend as never,
    }) as TensorInfo;
    temps.push(out);
    return out;
  };
  // a view of the same data (no copy, no reference: disposed through the tensor it views)
  const view = (a: TensorInfo, shape: number[]): TensorInfo => ({ dataId: a.dataId, shape, dtype: a.dtype });
  try {
    const u = weightsOf(backend, s, filter);
    // input transform: one depthwise conv gives the 36 values of every tile and channel, (c, k) last
    const d = run(
      DepthwiseConv2dNative,
      { x, filter: inputFilter(backend, s, cin) },
      {
        strides: [M, M],
        dilations: [1, 1],
        pad: [
          [0, 0],
          [top, th * M + 2 - h - top],
          [left, tw * M + 2 - w - left],
          [0, 0],
        ],
      },
    );
    const vt = run(Transpose, { x: view(d, [t, cin, A2]) }, { perm: [2, 0, 1] });
    const v = getKernel(SplitV, 'wasm')!.kernelFunc({
      inputs: { x: vt } as never,
      attrs: { numOrSizeSplits: A2, axis: 0 } as never,
      backend: backend as never,
    }) as TensorInfo[];
    temps.push(...v);
    // the products, one 2-D matMul each (XNNPACK: batch 1, no transpose)
    const mk = v.map((vk, k) =>
      run(BatchMatMul, { a: vk, b: u[k]! }, { transposeA: false, transposeB: false }),
    );
    // output transform A^T m A by adds, shared terms once: rows, then columns
    const two = scalar(backend, s, 2);
    const four = scalar(backend, s, 4);
    const eight = scalar(backend, s, 8);
    const add = (a: TensorInfo, b: TensorInfo) => run(Add, { a, b });
    const sub = (a: TensorInfo, b: TensorInfo) => run(Sub, { a, b });
    const mul = (a: TensorInfo, b: TensorInfo) => run(Multiply, { a, b });
    const outputRow = (r: TensorInfo[]): TensorInfo[] => {
      const [m0, m1, m2, m3, m4, m5] = r as [
        TensorInfo,
        TensorInfo,
        TensorInfo,
        TensorInfo,
        TensorInfo,
        TensorInfo,
      ];
      const s12 = add(m1, m2);
      const d12 = sub(m1, m2);
      const s34 = add(m3, m4);
      const d34 = sub(m3, m4);
      return [
        add(add(m0, s12), s34),
        add(d12, mul(d34, two)),
        add(s12, mul(s34, four)),
        add(add(d12, mul(d34, eight)), m5),
      ];
    };
    const cols = Array.from({ length: ALPHA }, (_, q) =>
      outputRow(Array.from({ length: ALPHA }, (_, p) => mk[ALPHA * p + q]!)),
    );
    const y = Array.from({ length: M }, (_, a) => outputRow(cols.map((c) => c[a]!)));
    // y[a][b] is output pixel (M ty + a, M tx + b) of every tile: two stacks interleave them
    const rows = y.map((ya) =>
      view(
        run(
          Pack,
          ya.map((yab) => view(yab, [t, cout])),
          { axis: 1 },
        ),
        [n, th, M * tw, cout],
      ),
    );
    const full = run(Pack, rows, { axis: 2 });
    temps.pop();
    if (th * M === ho && tw * M === wo) return view(full, [n, ho, wo, cout]);
    temps.push(full);
    const out = run(
      Slice,
      { x: view(full, [n, th * M, tw * M, cout]) },
      { begin: [0, 0, 0, 0], size: [n, ho, wo, cout] },
    );
    temps.pop();
    return out;
  } finally {
    for (const temp of temps) backend.disposeData(temp.dataId);
  }
}

/** The conv's geometry when Winograd takes it (3x3, stride 1, no dilation, NHWC, a measured size), else null. */
function winogradInfo(
  x: TensorInfo,
  filter: TensorInfo,
  attrs: Conv2DAttrs,
  applies: WinogradRule,
): backend_util.Conv2DInfo | null {
  const [kh, kw] = filter.shape;
  if (kh !== 3 || kw !== 3 || x.dtype !== 'float32' || (attrs.dataFormat ?? 'NHWC') !== 'NHWC') return null;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  if (
    info.strideHeight !== 1 ||
    info.strideWidth !== 1 ||
    info.dilationHeight !== 1 ||
    info.dilationWidth !== 1
  )
    return null;
  return applies(info.batchSize, info.outHeight, info.outWidth, info.inChannels, info.outChannels)
    ? info
    : null;
}

/**
 * Replaces the wasm backend's `Conv2D` and `FusedConv2D` kernels with ones that run Winograd F(4x4, 3x3) where
 * {@link winogradApplies} (a fused conv only with a linear or ReLU activation) and the original kernels
 * elsewhere. Winograd's float32 results differ from the direct convolution's in the last bits (largest error
 * about 1.5e-5 of the largest output, direct about 1e-6). A non-finite input spreads further than in the direct
 * convolution: the transforms multiply it by 0 and mix it into every value of its 6x6 input tiles, so an Inf or
 * NaN makes NaN in every output of the (up to 4) 4x4 output tiles it feeds, where direct gives Inf or NaN only in
 * its 3x3 neighbourhood. Returns false when the wasm backend's kernels are not
 * registered. {@link uninstallWasmWinograd} puts the originals back.
 */
export function installWasmWinograd(options: { applies?: WinogradRule } = {}): boolean {
  // the rule of the latest install, also when the kernels were installed before
  rule = options.applies ?? winogradApplies;
  const conv = getKernel(Conv2D, 'wasm');
  const fused = getKernel(FusedConv2D, 'wasm');
  if (conv === undefined || fused === undefined) return false;
  if (!kernels.installed(Conv2D)) {
    originals.set(Conv2D, conv);
    kernels.replace(conv, (args) => {
      const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
      const info = winogradInfo(x, filter, args.attrs as unknown as Conv2DAttrs, rule);
      if (info === null) return conv.kernelFunc(args);
      return winogradConv(args.backend as unknown as WinogradBackend, x, filter, info);
    });
  }
  if (!kernels.installed(FusedConv2D)) {
    originals.set(FusedConv2D, fused);
    const fusedFunc: KernelFunc = (args) => {
      const { x, filter, bias, preluActivationWeights } = args.inputs as Record<
        string,
        TensorInfo | undefined
      >;
      const attrs = args.attrs as unknown as FusedConv2DAttrs;
      const activation = attrs.activation ?? 'linear';
      const info =
        preluActivationWeights == null && (activation === 'linear' || activation === 'relu')
          ? winogradInfo(x!, filter!, attrs, rule)
          : null;
      if (info === null) return fused.kernelFunc(args);
      const backend = args.backend as unknown as WinogradBackend;
      let y = winogradConv(backend, x!, filter!, info);
      const step = (name: string, inputs: object) => {
        const next = getKernel(name, 'wasm')!.kernelFunc({
          inputs: inputs as never,
          attrs: {} as never,
          backend: backend as never,
        }) as TensorInfo;
        backend.disposeData(y.dataId);
        y = next;
      };
      if (bias != null) step(Add, { a: y, b: bias });
      if (activation === 'relu') step(Relu, { x: y });
      return y;
    };
    kernels.replace(fused, fusedFunc);
  }
  return true;
}

/** Puts back the wasm kernels {@link installWasmWinograd} replaced (the direct convolution everywhere) and frees
 * what they keep: the transformed weights (36/9 = 4x the size of each filter they ran: VGG16's 94 MB at batch 1,
 * 227 MB where all its 256- and 512-channel convs take Winograd), which would otherwise stay until their filters are disposed, and the constants. */
export function uninstallWasmWinograd(): void {
  for (const [name, original] of originals) {
    if (!kernels.installed(name)) continue;
    unregisterKernel(name, 'wasm');
    registerKernel(original);
  }
  const backend = findBackend('wasm') as unknown as WinogradBackend | null;
  const s = backend === null ? undefined : states.get(backend);
  if (backend === null || s === undefined) return;
  const kept = [...s.inputFilters.values(), ...s.scalars.values()];
  for (const byCin of s.weights.values()) for (const u of byCin.values()) kept.push(...u);
  s.inputFilters.clear();
  s.scalars.clear();
  s.weights.clear();
  for (const t of kept) backend.disposeData(t.dataId, true);
}

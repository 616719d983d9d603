import { CrpError } from '@crp/common';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { OnnxGraph, OnnxNode, OnnxTensor } from '../onnx-proto.js';
import { setVitWeights, type VitConfig, vit, vitBlockPrefix } from '../vit.js';
import { attrFloat, attrInt, attrInts, type ConstValue, refuse } from './context.js';
import { GraphReader, ONNX_FOLDED_OPS, resolveReshape, sliceSpec } from './graph-values.js';

/** The operators of the patterns {@link vitFromOnnxGraph} recognises (the shape computations torch writes, such
 * as Shape/Gather/Unsqueeze/Concat, are folded to constants and listed in {@link ONNX_FOLDED_OPS}). */
export const ONNX_VIT_OPS: readonly string[] = [
  'Conv',
  'Reshape',
  'Transpose',
  'Concat',
  'Add',
  'LayerNormalization',
  'ReduceMean',
  'Sub',
  'Pow',
  'Sqrt',
  'Div',
  'Mul',
  'MatMul',
  'Gemm',
  'Slice',
  'Split',
  'Squeeze',
  'Softmax',
  'Erf',
  'Gelu',
  'Gather',
];

/** What the recogniser reads, for the messages. */
export const ONNX_VIT_SUPPORTED = `torchvision's VisionTransformer as torch.onnx.export writes it (opsets 11-20): Conv patch embedding -> Reshape -> Transpose, Concat of the class token, Add of the position embedding; per block LayerNormalization (or ReduceMean/Sub/Pow/Add/Sqrt/Div/Mul/Add), multi-head self-attention (MatMul by the packed in_proj + Add, Slice or Split into q/k/v, Reshape/Transpose into heads, q / sqrt(d), MatMul q k^T, Softmax over the keys, MatMul by v, Transpose/Reshape, out_proj), or timm's layout (one qkv MatMul + Add on [batch, tokens, features], Reshape [batch, tokens, 3, heads, d], Transpose (2, 0, 3, 1, 4), Split + Squeeze or Gather into q/k/v, q * scale, MatMul by k transposed, Softmax, MatMul by v, Transpose, Reshape, proj), residual Add, LayerNorm, MLP (MatMul + Add, exact GELU as Div/Erf/Add/Mul/Mul or Gelu with approximate 'none', MatMul + Add), residual Add; the final LayerNorm, Gather of the class token, the head (Gemm or MatMul + Add). Operators: ${ONNX_VIT_OPS.join(', ')}; folded shape computations: ${ONNX_FOLDED_OPS.join(', ')}`;

/** Whether the graph holds a product of two activations (attention): then it is read as a transformer. */
export function isTransformerGraph(g: OnnxGraph, constOf: (t: OnnxTensor) => ConstValue): boolean {
  const r = new GraphReader(g, constOf);
  return g.nodes.some(
    (n) => n.opType === 'MatMul' && n.inputs.length === 2 && n.inputs.every((i) => !r.isConstant(i)),
  );
}

const same = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((v, i) => v === b[i]);
const f32near = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.abs(b);

/** A recogniser's walk along the activations of one graph, collecting torchvision's parameters. */
class VitWalk {
  readonly weights = new Map<string, Float32Array>();
  epsilon: number | undefined;
  constructor(
    readonly r: GraphReader,
    readonly batch: number,
    /** The default domain's opset: Softmax's semantics changed at 13. */
    readonly opset: number,
  ) {}

  /** The one node that computes with activation `x` (a residual branch point has two: use {@link consumers}). */
  next(x: string, ops: readonly string[], what: string, at: OnnxNode): OnnxNode {
    const list = this.r.consumers(x).filter((n) => !this.r.used.has(n));
    const n = list[0];
    if (list.length !== 1 || n === undefined)
      refuse(
        at,
        `its output '${x}' goes to ${list.length === 0 ? 'no node' : list.map((c) => `'${c.name}' (${c.opType})`).join(', ')}; expected one ${ops.join(' or ')} (${what}). Supported: ${ONNX_VIT_SUPPORTED}`,
      );
    this.expect(n, ops, what);
    return n;
  }
  expect(n: OnnxNode, ops: readonly string[], what: string): void {
    if (!ops.includes(n.opType))
      refuse(
        n,
        `expected ${ops.join(' or ')} (${what}) here, found ${n.opType}. Supported: ${ONNX_VIT_SUPPORTED}`,
      );
    this.r.used.add(n);
  }
  /** The constant operand of a binary node whose other operand is `x`. */
  other(n: OnnxNode, x: string): ConstValue {
    const k = n.inputs.indexOf(x);
    if (k < 0 || n.inputs.length !== 2) refuse(n, `expected a binary operator reading '${x}'`);
    return this.r.constant(n.inputs[1 - k]!, n);
  }
  scalar(n: OnnxNode, x: string, want: number, what: string): void {
    const c = this.other(n, x);
    if (c.data.length !== 1 || !f32near(c.data[0]!, want))
      refuse(n, `${what}: the constant is ${Array.from(c.data.slice(0, 4)).join(', ')}, expected ${want}`);
  }
  /** Output `k` of `n`, whose shape is `shape`. */
  out(n: OnnxNode, shape: number[], k = 0): string {
    this.r.setAct(n.outputs[k]!, shape);
    return n.outputs[k]!;
  }
  set(key: string, values: ArrayLike<number>): void {
    this.weights.set(key, new Float32Array(values));
  }

  /** Reshape of `x` whose target must come out as `want` (the target is folded: shapes of activations known). */
  reshape(x: string, want: number[], what: string, at: OnnxNode): string {
    const n = this.next(x, ['Reshape'], what, at);
    const got = resolveReshape(n, this.r.shape(x, n), Array.from(this.r.constant(n.inputs[1]!, n).data));
    if (!same(got, want))
      refuse(n, `${what}: reshapes to [${got.join(', ')}], expected [${want.join(', ')}]`);
    return this.out(n, got);
  }
  transpose(x: string, perm: number[], what: string, at: OnnxNode): string {
    const n = this.next(x, ['Transpose'], what, at);
    const got = attrInts(n, 'perm') ?? [];
    if (!same(got, perm)) refuse(n, `${what}: perm [${got.join(', ')}], expected [${perm.join(', ')}]`);
    const s = this.r.shape(x, n);
    return this.out(
      n,
      perm.map((p) => s[p]!),
    );
  }

  /** A Linear: MatMul by a constant [in, out] + Add of a constant [out], or Gemm (transB 1: [out, in]). Sets
   * `<key>.weight` ([in, out], TF.js's Dense layout) and `<key>.bias`. */
  linear(x: string, key: string, at: OnnxNode): string {
    const n = this.next(x, ['MatMul', 'Gemm'], `${key}`, at);
    const s = this.r.shape(x, n);
    const w = this.r.constant(n.inputs[1]!, n);
    if (n.inputs[0] !== x || w.dims.length !== 2) refuse(n, `${key}: expected x times a constant matrix`);
    let kernel = w.data;
    let [inF, outF] = w.dims as [number, number];
    if (n.opType === 'Gemm') {
      if (attrFloat(n, 'alpha', 1) !== 1 || attrFloat(n, 'beta', 1) !== 1 || attrInt(n, 'transA', 0) !== 0)
        refuse(n, `${key}: Gemm with alpha, beta != 1 or transA is not supported`);
      if (attrInt(n, 'transB', 0) === 1) {
        [outF, inF] = [inF, outF];
        kernel = transposed(w.data, outF, inF);
      }
    }
    if (s[s.length - 1] !== inF) refuse(n, `${key}: ${inF} inputs, the activation has ${s[s.length - 1]}`);
    this.set(`${key}.weight`, kernel);
    const shape = [...s.slice(0, -1), outF];
    if (n.opType === 'Gemm') {
      const b = n.inputs[2] === undefined ? undefined : this.r.constant(n.inputs[2], n);
      if (b === undefined || b.data.length !== outF) refuse(n, `${key}: a bias of ${outF} values is needed`);
      this.set(`${key}.bias`, b.data);
      return this.out(n, shape);
    }
    const y = this.out(n, shape);
    const add = this.next(y, ['Add'], `${key} bias`, n);
    const b = this.other(add, y);
    if (b.data.length !== outF) refuse(add, `${key} bias: ${b.data.length} values, expected ${outF}`);
    this.set(`${key}.bias`, b.data);
    return this.out(add, shape);
  }
}

/** Rows of a [rows, cols] row-major matrix, transposed to [cols, rows]. */
function transposed(v: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = v[r * cols + c]!;
  return out;
}

type AxisCheck = (n: OnnxNode, axes: number[] | undefined) => void;

/** torch's LayerNorm below opset 17, from its first ReduceMean: (x - mean) / sqrt(mean((x - mean)^2) + eps) * w + b. */
function decomposedLayerNorm(
  w: VitWalk,
  first: OnnxNode,
  x: string,
  key: string,
  lastAxis: AxisCheck,
): { y: string; eps: number } {
  const s = w.r.shape(x, first);
  const reduced = [...s.slice(0, -1), 1];
  const axesOf = (n: OnnxNode) =>
    attrInts(n, 'axes') ?? (n.inputs[1] ? Array.from(w.r.constant(n.inputs[1], n).data) : undefined);
  w.expect(first, ['ReduceMean'], `${key} mean`);
  lastAxis(first, axesOf(first));
  const mean = w.out(first, reduced);
  const sub = w.next(mean, ['Sub'], `${key}: x - mean`, first);
  if (sub.inputs[0] !== x) refuse(sub, `${key}: expected x - mean`);
  const centred = w.out(sub, s);
  const pow = w.r.consumers(centred).find((n) => n.opType === 'Pow');
  if (pow === undefined) refuse(sub, `${key}: expected (x - mean) ^ 2`);
  w.expect(pow, ['Pow'], `${key} square`);
  w.scalar(pow, centred, 2, `${key} square`);
  const variance = w.next(w.out(pow, s), ['ReduceMean'], `${key} variance`, pow);
  lastAxis(variance, axesOf(variance));
  const v = w.out(variance, reduced);
  const addEps = w.next(v, ['Add'], `${key} + epsilon`, variance);
  const eps = w.other(addEps, v).data;
  if (eps.length !== 1) refuse(addEps, `${key}: the epsilon must be one number`);
  const sqrt = w.next(w.out(addEps, reduced), ['Sqrt'], `${key} sqrt`, addEps);
  const div = w.next(w.out(sqrt, reduced), ['Div'], `${key} division`, sqrt);
  if (div.inputs[0] !== centred) refuse(div, `${key}: expected (x - mean) / sqrt(variance + epsilon)`);
  const mul = w.next(w.out(div, s), ['Mul'], `${key} weight`, div);
  w.set(`${key}.weight`, w.other(mul, div.outputs[0]!).data);
  const add = w.next(w.out(mul, s), ['Add'], `${key} bias`, mul);
  w.set(`${key}.bias`, w.other(add, mul.outputs[0]!).data);
  return { y: w.out(add, s), eps: eps[0]! };
}

/** LayerNormalization over the last axis (the operator, or torch's decomposition below opset 17). */
function layerNorm(w: VitWalk, x: string, key: string, at: OnnxNode): string {
  const s = w.r.shape(x, at);
  const lastAxis: AxisCheck = (n, axes) => {
    if (axes === undefined || axes.length !== 1 || (axes[0] !== -1 && axes[0] !== s.length - 1))
      refuse(n, `${key}: a normalisation over axes [${axes?.join(', ') ?? 'all'}]; supported: the last axis`);
  };
  const starts = w.r
    .consumers(x)
    .filter((n) => n.opType === 'LayerNormalization' || n.opType === 'ReduceMean');
  const first = starts[0];
  if (starts.length !== 1 || first === undefined)
    refuse(
      at,
      `${key}: expected one LayerNormalization (or ReduceMean) reading '${x}'. Supported: ${ONNX_VIT_SUPPORTED}`,
    );
  let eps: number;
  let y: string;
  if (first.opType === 'LayerNormalization') {
    w.expect(first, ['LayerNormalization'], key);
    lastAxis(first, [attrInt(first, 'axis', -1)]);
    eps = attrFloat(first, 'epsilon', 1e-5);
    w.set(`${key}.weight`, w.r.constant(first.inputs[1]!, first).data);
    const bias = first.inputs[2];
    const d = s[s.length - 1]!;
    w.set(`${key}.bias`, bias ? w.r.constant(bias, first).data : new Float64Array(d));
    y = w.out(first, s);
  } else ({ y, eps } = decomposedLayerNorm(w, first, x, key, lastAxis));
  if (w.epsilon !== undefined && Math.fround(eps) !== Math.fround(w.epsilon))
    refuse(
      first,
      `${key}: LayerNorm epsilon ${eps} differs from the other LayerNorms' ${w.epsilon}; supported: one epsilon`,
    );
  w.epsilon = eps;
  return y;
}

/** GELU, exact: the `Gelu` operator (opset 20) with approximate 'none', or x * (erf(x / sqrt 2) + 1) * 0.5 as torch
 * writes it (Div, Erf, Add, Mul, Mul). */
function gelu(w: VitWalk, x: string, key: string, at: OnnxNode): string {
  const s = w.r.shape(x, at);
  const op = w.r.consumers(x).find((n) => n.opType === 'Gelu');
  if (op !== undefined) {
    w.next(x, ['Gelu'], `${key} GELU`, at);
    const approximate = op.attributes.get('approximate')?.s ?? 'none';
    // the engine's GELU is the exact one, and LXT's identity rule passes relevance through it unchanged: the
    // tanh form would give other activations, so it is refused rather than approximated
    if (approximate !== 'none')
      refuse(
        op,
        `${key}: Gelu with approximate '${approximate}' (0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))) is not supported; supported: the exact GELU, approximate 'none' (0.5 x (1 + erf(x / sqrt 2)))`,
      );
    return w.out(op, s);
  }
  const div = w.r
    .consumers(x)
    .find(
      (n) => (n.opType === 'Div' || n.opType === 'Mul') && w.r.isConstant(n.inputs[1 - n.inputs.indexOf(x)]!),
    );
  if (div === undefined)
    refuse(
      at,
      `${key}: expected GELU (x / sqrt(2) -> Erf -> + 1 -> * x -> * 0.5). Supported: ${ONNX_VIT_SUPPORTED}`,
    );
  w.expect(div, ['Div', 'Mul'], `${key} x / sqrt(2)`);
  w.scalar(div, x, div.opType === 'Div' ? Math.SQRT2 : Math.SQRT1_2, `${key} GELU's x / sqrt(2)`);
  const erf = w.next(w.out(div, s), ['Erf'], `${key} GELU's erf`, div);
  const add = w.next(w.out(erf, s), ['Add'], `${key} GELU's erf + 1`, erf);
  w.scalar(add, erf.outputs[0]!, 1, `${key} GELU's erf + 1`);
  const mul = w.next(w.out(add, s), ['Mul'], `${key} GELU's x * (erf + 1)`, add);
  if (!mul.inputs.includes(x)) refuse(mul, `${key}: GELU's product must read x`);
  const half = w.next(w.out(mul, s), ['Mul'], `${key} GELU's * 0.5`, mul);
  w.scalar(half, mul.outputs[0]!, 0.5, `${key} GELU's * 0.5`);
  return w.out(half, s);
}

/** The q, k, v parts of the packed in-projection: Slice x3 (torch's chunk) or one Split, on the last axis. */
function splitQkv(w: VitWalk, x: string, d: number, at: OnnxNode): [string, string, string] {
  const s = w.r.shape(x, at);
  const parts = w.r.consumers(x);
  const part = [...s.slice(0, -1), d];
  if (parts.length === 1 && parts[0]!.opType === 'Split') {
    const n = parts[0]!;
    w.expect(n, ['Split'], 'q, k, v');
    const sizes = n.inputs[1] ? Array.from(w.r.constant(n.inputs[1], n).data) : attrInts(n, 'split');
    const axis = attrInt(n, 'axis', 0);
    if (
      (axis !== -1 && axis !== s.length - 1) ||
      n.outputs.length !== 3 ||
      (sizes !== undefined && !same(sizes, [d, d, d]))
    )
      refuse(n, `expected a Split of the in-projection into q, k, v of ${d} features each on the last axis`);
    return [w.out(n, part, 0), w.out(n, part, 1), w.out(n, part, 2)];
  }
  const found: string[] = [];
  for (const n of parts) {
    w.expect(n, ['Slice'], 'q, k or v of the in-projection');
    const [spec, more] = sliceSpec(n, w.r, s);
    if (
      spec === undefined ||
      more !== undefined ||
      spec.axis !== s.length - 1 ||
      spec.step !== 1 ||
      spec.end - spec.start !== d ||
      spec.start % d !== 0
    )
      refuse(n, `expected a Slice of ${d} features (q, k or v) on the last axis of the in-projection`);
    found[spec.start / d] = w.out(n, part);
  }
  if (parts.length !== 3 || found.filter((f) => f !== undefined).length !== 3)
    refuse(
      at,
      `the in-projection '${x}' must be split into q, k and v (three Slices or a Split); found ${parts.map((p) => p.opType).join(', ')}`,
    );
  return found as [string, string, string];
}

/** The packed in-projection (MatMul + Add, [D, 3D]), its weight split into the q, k, v Dense layers. */
function inProjection(w: VitWalk, seq: string, a: string, D: number, at: OnnxNode): string {
  const packed = w.linear(seq, `${a}in_proj`, at);
  const inW = w.weights.get(`${a}in_proj.weight`)!; // [D, 3D]: columns are q, k, v outputs
  const inB = w.weights.get(`${a}in_proj.bias`)!;
  w.weights.delete(`${a}in_proj.weight`);
  w.weights.delete(`${a}in_proj.bias`);
  ['q', 'k', 'v'].forEach((p, i) => {
    const kernel = new Float32Array(D * D);
    for (let r = 0; r < D; r++) for (let c = 0; c < D; c++) kernel[r * D + c] = inW[r * 3 * D + i * D + c]!;
    w.set(`${a}${p}_proj.weight`, kernel);
    w.set(`${a}${p}_proj.bias`, inB.subarray(i * D, (i + 1) * D));
  });
  return packed;
}

/** The number of heads, from the reshape of the queries [T, B, D] into [T, B * heads, D / heads]. */
function headsOf(w: VitWalk, q: string, [T, B, D]: [number, number, number], at: OnnxNode): number {
  const qr = w.r.consumers(q)[0];
  if (qr === undefined || qr.opType !== 'Reshape')
    refuse(at, `expected the queries '${q}' reshaped into heads`);
  const target = resolveReshape(qr, [T, B, D], Array.from(w.r.constant(qr.inputs[1]!, qr).data));
  const heads = target[1]! / B;
  if (target.length !== 3 || !Number.isInteger(heads) || target[2]! * heads !== D)
    refuse(
      qr,
      `the queries are reshaped to [${target.join(', ')}]; expected [tokens, batch * heads, ${D} / heads]`,
    );
  return heads;
}

/** torchvision's MultiheadAttention (batch_first, packed in_proj, no mask) of a [B, T, D] activation. Returns
 * the [B, T, D] output and the number of heads. */
function attention(w: VitWalk, y: string, b: string, at: OnnxNode): { out: string; heads: number } {
  const [B, T, D] = w.r.shape(y, at) as [number, number, number];
  const a = `${b}self_attention.`;
  const seq = w.transpose(y, [1, 0, 2], 'attention input to [tokens, batch, features]', at);
  const [q, k, v] = splitQkv(w, inProjection(w, seq, a, D, at), D, at);
  const heads = headsOf(w, q, [T, B, D], at);
  const dh = D / heads;
  const split = [T, B * heads, dh];
  const qh = w.transpose(
    w.reshape(q, split, 'queries into heads', at),
    [1, 0, 2],
    'queries [batch*heads, tokens, d]',
    at,
  );
  const kh = w.transpose(
    w.reshape(k, split, 'keys into heads', at),
    [1, 2, 0],
    'keys [batch*heads, d, tokens]',
    at,
  );
  const vh = w.transpose(
    w.reshape(v, split, 'values into heads', at),
    [1, 0, 2],
    'values [batch*heads, tokens, d]',
    at,
  );
  const scale = w.next(qh, ['Div', 'Mul'], 'q / sqrt(d)', at);
  w.scalar(scale, qh, scale.opType === 'Div' ? Math.sqrt(dh) : 1 / Math.sqrt(dh), `q / sqrt(${dh})`);
  const qs = w.out(scale, [B * heads, T, dh]);
  const scores = w.next(qs, ['MatMul'], 'q k^T', scale);
  if (scores.inputs[0] !== qs || scores.inputs[1] !== kh)
    refuse(scores, 'expected the scores MatMul(q / sqrt(d), k^T)');
  const sm = w.next(
    w.out(scores, [B * heads, T, T]),
    ['Softmax'],
    'softmax of the scores q k^T / sqrt(d) (an attention variant that adds a bias or a mask to the scores is not supported)',
    scores,
  );
  softmaxOverKeys(sm, w.opset);
  const ctx = w.next(w.out(sm, [B * heads, T, T]), ['MatMul'], 'attention times values', sm);
  if (ctx.inputs[0] !== sm.outputs[0] || ctx.inputs[1] !== vh) refuse(ctx, 'expected MatMul(softmax, v)');
  const merged = w.reshape(
    w.transpose(w.out(ctx, [B * heads, T, dh]), [1, 0, 2], 'context [tokens, batch*heads, d]', ctx),
    [T * B, D],
    'heads merged',
    ctx,
  );
  const projected = w.linear(merged, `${a}out_proj`, ctx);
  const back = w.reshape(projected, [T, B, D], 'out_proj to [tokens, batch, features]', ctx);
  return { out: w.transpose(back, [1, 0, 2], 'attention output to [batch, tokens, features]', ctx), heads };
}

/**
 * Checks that a Softmax of the scores (rank 3, [batch * heads, queries, keys], torchvision; rank 4, [batch, heads,
 * queries, keys], timm) normalises over the keys alone. From opset 13 `axis` (default -1) is that one axis; before,
 * the input is coerced to 2-D at `axis` (default 1) and normalised over all axes from `axis` on, which is the keys
 * alone only for the last axis (or -1).
 */
function softmaxOverKeys(sm: OnnxNode, opset: number, rank = 3): void {
  const raw = attrInt(sm, 'axis', opset >= 13 ? -1 : 1);
  const axis = raw < 0 ? raw + rank : raw;
  const last = rank - 1;
  if (axis === last) return;
  refuse(
    sm,
    opset >= 13
      ? `softmax over axis ${raw} of the scores; supported: the keys (axis ${last} or -1)`
      : `softmax with axis ${raw}${sm.attributes.has('axis') ? '' : ' (the default before opset 13)'} at opset ${opset} normalises over axes ${axis} to ${last} of the scores jointly (its input coerced to 2-D); supported: the keys alone (axis ${last} or -1)`,
  );
}

/** timm's `qkv.unbind(0)` of [3, B, H, T, d]: Split on axis 0 into three and a Squeeze of axis 0 each, or three
 * Gathers of index 0, 1, 2 on axis 0 (`qkv[0]`). Returns q, k, v, each [B, H, T, d]. */
function unbindQkv(w: VitWalk, qkv: string, part: number[], at: OnnxNode): [string, string, string] {
  const parts = w.r.consumers(qkv);
  const found: string[] = [];
  const split = parts.length === 1 && parts[0]!.opType === 'Split' ? parts[0] : undefined;
  if (split !== undefined) {
    w.expect(split, ['Split'], 'q, k, v');
    const sizes = split.inputs[1]
      ? Array.from(w.r.constant(split.inputs[1], split).data)
      : attrInts(split, 'split');
    if (
      attrInt(split, 'axis', 0) !== 0 ||
      split.outputs.length !== 3 ||
      (sizes !== undefined && !same(sizes, [1, 1, 1]))
    )
      refuse(split, 'expected a Split of [3, batch, heads, tokens, d] into q, k, v on axis 0');
    split.outputs.forEach((o, i) => {
      w.r.setAct(o, [1, ...part]);
      const sq = w.next(o, ['Squeeze'], `${'qkv'[i]} without its axis 0`, split);
      const axes = sq.inputs[1] ? Array.from(w.r.constant(sq.inputs[1], sq).data) : attrInts(sq, 'axes');
      if (axes !== undefined && !same(axes, [0])) refuse(sq, 'expected a Squeeze of axis 0');
      found[i] = w.out(sq, part);
    });
    return found as [string, string, string];
  }
  for (const g of parts) {
    w.expect(g, ['Gather'], 'q, k or v (qkv[i])');
    const index = w.r.constant(g.inputs[1]!, g);
    if (attrInt(g, 'axis', 0) !== 0 || index.dims.length !== 0 || ![0, 1, 2].includes(index.data[0]!))
      refuse(g, 'expected a Gather of one index 0, 1 or 2 on axis 0 (q, k or v)');
    found[index.data[0]!] = w.out(g, part);
  }
  if (parts.length !== 3 || found.filter((f) => f !== undefined).length !== 3)
    refuse(at, `'${qkv}' must be unbound into q, k and v (a Split and Squeezes, or three Gathers)`);
  return found as [string, string, string];
}

/** timm's Attention of a [B, T, D] activation: the qkv Linear, Reshape [B, T, 3, heads, d], Transpose (2, 0, 3, 1,
 * 4), unbind, q * scale, MatMul(q, k^T), Softmax, MatMul by v, Transpose (0, 2, 1, 3), Reshape [B, T, D], proj.
 * The qkv columns are ordered (q|k|v, heads, d) like torchvision's packed in_proj, so the same q/k/v layers. */
function timmAttention(w: VitWalk, y: string, b: string, at: OnnxNode): { out: string; heads: number } {
  const [B, T, D] = w.r.shape(y, at) as [number, number, number];
  const a = `${b}self_attention.`;
  const packed = inProjection(w, y, a, D, at);
  const rn = w.next(packed, ['Reshape'], 'qkv to [batch, tokens, 3, heads, d]', at);
  const target = resolveReshape(rn, [B, T, 3 * D], Array.from(w.r.constant(rn.inputs[1]!, rn).data));
  const [, , three, heads, dh] = target as [number, number, number, number, number];
  if (target.length !== 5 || target[0] !== B || target[1] !== T || three !== 3 || heads * dh !== D)
    refuse(rn, `qkv is reshaped to [${target.join(', ')}]; expected [${B}, ${T}, 3, heads, ${D} / heads]`);
  const perm = w.transpose(w.out(rn, target), [2, 0, 3, 1, 4], 'qkv to [3, batch, heads, tokens, d]', rn);
  const [q, k, v] = unbindQkv(w, perm, [B, heads, T, dh], rn);
  const scale = w.next(q, ['Mul', 'Div'], 'q * scale', rn);
  w.scalar(scale, q, scale.opType === 'Div' ? Math.sqrt(dh) : 1 / Math.sqrt(dh), `q / sqrt(${dh})`);
  const qs = w.out(scale, [B, heads, T, dh]);
  const kt = w.transpose(k, [0, 1, 3, 2], 'keys [batch, heads, d, tokens]', rn);
  const scores = w.next(qs, ['MatMul'], 'q k^T', scale);
  if (scores.inputs[0] !== qs || scores.inputs[1] !== kt)
    refuse(scores, 'expected the scores MatMul(q * scale, k^T)');
  const sm = w.next(
    w.out(scores, [B, heads, T, T]),
    ['Softmax'],
    'softmax of the scores q k^T / sqrt(d) (an attention variant that adds a bias or a mask to the scores is not supported)',
    scores,
  );
  softmaxOverKeys(sm, w.opset, 4);
  const ctx = w.next(w.out(sm, [B, heads, T, T]), ['MatMul'], 'attention times values', sm);
  if (ctx.inputs[0] !== sm.outputs[0] || ctx.inputs[1] !== v) refuse(ctx, 'expected MatMul(softmax, v)');
  const merged = w.reshape(
    w.transpose(w.out(ctx, [B, heads, T, dh]), [0, 2, 1, 3], 'context [batch, tokens, heads, d]', ctx),
    [B, T, D],
    'heads merged',
    ctx,
  );
  return { out: w.linear(merged, `${a}out_proj`, ctx), heads };
}

/** Multi-head self-attention of the LayerNorm output `y`: torchvision's (a Transpose to [tokens, batch, features]
 * first) or timm's (the qkv Linear on [batch, tokens, features]). */
function selfAttention(w: VitWalk, y: string, b: string, at: OnnxNode): { out: string; heads: number } {
  const first = w.r.consumers(y);
  return first.length === 1 && first[0]!.opType === 'MatMul'
    ? timmAttention(w, y, b, at)
    : attention(w, y, b, at);
}

/** The residual addition of `branch` and `x`. */
function residual(w: VitWalk, branch: string, x: string, what: string, at: OnnxNode): string {
  const add = w.next(branch, ['Add'], what, at);
  if (!add.inputs.includes(x)) refuse(add, `${what}: expected the block input '${x}' added`);
  return w.out(add, w.r.shape(x, add));
}

/** conv_proj: a square patch x patch Conv with stride patch, its kernel in TF.js's layout. */
function patchConv(w: VitWalk, input: string, inputNode: OnnxNode): { conv: OnnxNode; D: number; p: number } {
  const conv = w.next(input, ['Conv'], 'conv_proj (the patch embedding)', inputNode);
  const weight = w.r.constant(conv.inputs[1]!, conv);
  const [D, C, p, pw] = weight.dims as [number, number, number, number];
  const strides = attrInts(conv, 'strides') ?? [1, 1];
  const pads = attrInts(conv, 'pads') ?? [0, 0, 0, 0];
  if (
    p !== pw ||
    !same(strides, [p, p]) ||
    pads.some((v) => v !== 0) ||
    attrInt(conv, 'group', 1) !== 1 ||
    !same(attrInts(conv, 'dilations') ?? [1, 1], [1, 1])
  )
    refuse(
      conv,
      `conv_proj must be a square patch x patch convolution with stride patch, no padding, one group; kernel ${p}x${pw}, strides [${strides.join(', ')}]`,
    );
  // [D, C, p, p] -> [p, p, C, D]
  const k = new Float32Array(weight.data.length);
  for (let o = 0; o < D; o++)
    for (let i = 0; i < C; i++)
      for (let y = 0; y < p; y++)
        for (let x = 0; x < p; x++)
          k[((y * p + x) * C + i) * D + o] = weight.data[((o * C + i) * p + y) * p + x]!;
  w.weights.set('conv_proj.weight', k);
  w.set('conv_proj.bias', conv.inputs[2] ? w.r.constant(conv.inputs[2], conv).data : new Float64Array(D));
  return { conv, D, p };
}

/** Conv (patch x patch, stride patch) -> Reshape [B, D, T] -> Transpose [B, T, D]; Concat of the class token;
 * Add of the position embedding, whose token count must be the image's patches plus one. */
function embedding(
  w: VitWalk,
  input: string,
  size: [number, number],
  inputNode: OnnxNode,
): { x: string; patch: number } {
  const { conv, D, p } = patchConv(w, input, inputNode);
  if (size[0] % p !== 0 || size[1] % p !== 0)
    throw new CrpError(
      'invalid-shape',
      `image size ${size[0]}x${size[1]} is not a multiple of the ONNX ViT's patch size ${p}; valid: multiples of ${p}`,
    );
  const [gh, gw] = [size[0] / p, size[1] / p];
  const B = w.batch;
  const flat = w.reshape(w.out(conv, [B, D, gh, gw]), [B, D, gh * gw], 'patches to tokens', conv);
  const tokens = w.transpose(flat, [0, 2, 1], 'tokens [batch, patches, features]', conv);
  const cat = w.next(tokens, ['Concat'], 'the class token before the patches', conv);
  const cls = w.r.constant(cat.inputs[0]!, cat);
  if (
    cat.inputs.length !== 2 ||
    cat.inputs[1] !== tokens ||
    ![1, -2].includes(attrInt(cat, 'axis', 0)) ||
    !same(cls.dims, [B, 1, D])
  )
    refuse(cat, `expected Concat([class token [batch, 1, ${D}], patches], axis 1)`);
  w.set('class_token', cls.data.subarray(0, D));
  const withCls = w.out(cat, [B, gh * gw + 1, D]);
  const add = w.next(withCls, ['Add'], 'the position embedding', cat);
  const pos = w.other(add, withCls);
  const t = pos.dims[1] ?? 0;
  if (pos.dims.length !== 3 || pos.dims[0] !== 1 || pos.dims[2] !== D)
    refuse(add, `the position embedding is [${pos.dims.join(', ')}]; expected [1, tokens, ${D}]`);
  if (t !== gh * gw + 1) {
    const side = Math.round(Math.sqrt(t - 1));
    throw new CrpError(
      'invalid-shape',
      `the ONNX ViT's position embedding ('${add.name}') holds ${t} tokens: ${t - 1} patches of ${p}x${p} pixels and the class token${side * side === t - 1 ? ` (${side * p}x${side * p} images)` : ''}; the input ${size[0]}x${size[1]} gives ${gh * gw} patches. Position embeddings are not interpolated; use an image size with ${t - 1} patches${side * side === t - 1 ? `, e.g. ${side * p} (inputSize)` : ''}`,
      { details: { node: add.name, tokens: t, patches: gh * gw } },
    );
  }
  w.set('encoder.pos_embedding', pos.data);
  return { x: w.out(add, [B, t, D]), patch: p };
}

/** Whether `x` is the input of another encoder block (a LayerNorm and a residual Add read it) rather than of the
 * final LayerNorm. */
function startsBlock(w: VitWalk, x: string): boolean {
  return w.r.consumers(x).some((n) => n.opType === 'Add');
}

/** One encoder block: ln_1, self_attention, residual, ln_2, mlp.0, GELU, mlp.3, residual. */
function encoderBlock(
  w: VitWalk,
  x: string,
  i: number,
  at: OnnxNode,
): { x: string; heads: number; mlp: number } {
  const b = vitBlockPrefix(i);
  const { out, heads } = selfAttention(w, layerNorm(w, x, `${b}ln_1`, at), b, at);
  const mid = residual(w, out, x, `${b}add_1`, at);
  const h = w.linear(layerNorm(w, mid, `${b}ln_2`, at), `${b}mlp.0`, at);
  const y = w.linear(gelu(w, h, `${b}mlp.1`, at), `${b}mlp.3`, at);
  const s = w.r.shape(h, at);
  return { x: residual(w, y, mid, `${b}add_2`, at), heads, mlp: s[s.length - 1]! };
}

/** Gather of the class token (token 0 of axis 1), then the head, whose output must be the graph's. Returns the
 * width D. */
function classTokenHead(w: VitWalk, x: string, g: OnnxGraph, at: OnnxNode): number {
  const gather = w.next(x, ['Gather'], 'the class token (Gather index 0 of axis 1)', at);
  const index = w.r.constant(gather.inputs[1]!, gather);
  if (attrInt(gather, 'axis', 0) !== 1 || index.data.length !== 1 || index.data[0] !== 0)
    refuse(gather, 'expected Gather of token 0 (the class token) on axis 1');
  const [B, , D] = w.r.shape(x, gather) as [number, number, number];
  const logits = w.linear(w.out(gather, [B, D]), 'heads.head', gather);
  if (g.outputs[0]?.name !== logits)
    refuse(gather, `the head's output '${logits}' is not the graph's output`);
  return D;
}

/**
 * Reads a torchvision ViT from its ONNX graph (see {@link ONNX_VIT_SUPPORTED}) and builds the same model as
 * `importTorchVit` does from the `.pth`: layers named as torchvision's modules (`encoder.layers.encoder_layer_3.mlp.0`),
 * the transformer nodes of @crp/lrp, so AttnLRP/CP-LRP apply. Every node of the graph must belong to a recognised
 * pattern or a shape computation; anything else is refused by name.
 */
export function vitFromOnnxGraph(
  g: OnnxGraph,
  constOf: (t: OnnxTensor) => ConstValue,
  input: { name: string; batch: number; channels: number; size: [number, number] },
  name: string,
  opset: number,
): tfl.LayersModel {
  const r = new GraphReader(g, constOf);
  const w = new VitWalk(r, input.batch, opset);
  const inputNode: OnnxNode = {
    name: input.name,
    opType: 'input',
    domain: '',
    inputs: [],
    outputs: [input.name],
    attributes: new Map(),
  };
  r.setAct(input.name, [input.batch, input.channels, ...input.size]);
  let { x, patch } = embedding(w, input.name, input.size, inputNode);
  const heads = new Set<number>();
  const mlp = new Set<number>();
  let layers = 0;
  for (; startsBlock(w, x); layers++) {
    const block = encoderBlock(w, x, layers, inputNode);
    x = block.x;
    heads.add(block.heads);
    mlp.add(block.mlp);
  }
  const D = classTokenHead(w, layerNorm(w, x, 'encoder.ln', inputNode), g, inputNode);
  if (heads.size > 1 || mlp.size > 1)
    refuse(
      inputNode,
      `blocks with different head counts (${[...heads]}) or MLP widths (${[...mlp]}) are not supported`,
    );
  const unread = g.nodes.find((n) => !r.used.has(n) && n.opType !== 'Constant');
  if (unread !== undefined) {
    const known = ONNX_VIT_OPS.includes(unread.opType) || ONNX_FOLDED_OPS.includes(unread.opType);
    refuse(
      unread,
      `${known ? 'is not part of a torchvision ViT' : `operator ${unread.opType} is not supported in a Vision Transformer`}. Supported: ${ONNX_VIT_SUPPORTED}`,
      { supported: [...ONNX_VIT_OPS] },
    );
  }
  const config: VitConfig = {
    imageSize: input.size,
    patchSize: patch,
    numLayers: layers,
    numHeads: [...heads][0] ?? 1,
    hiddenDim: D,
    mlpDim: [...mlp][0] ?? 0,
    numClasses: w.weights.get('heads.head.bias')!.length,
    channels: input.channels,
    layerNormEpsilon: w.epsilon ?? 1e-6,
    name,
  };
  const model = vit(config);
  try {
    setVitWeights(model, config, (key) => w.weights.get(key)!);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

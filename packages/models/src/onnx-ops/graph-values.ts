import { ONNX_DATA_TYPES, type OnnxGraph, type OnnxNode, type OnnxTensor } from '../onnx-proto.js';
import { attrInt, attrInts, type ConstValue, refuse } from './context.js';

/**
 * What a graph reader knows about an ONNX value: a constant (a weight, or a shape computed from constants and
 * the static shapes of activations: torch.onnx writes a ViT's reshape targets as Shape -> Gather -> Unsqueeze ->
 * Concat), or an activation computed from the model input, of which only the shape is known.
 */
export type GraphValue =
  | { kind: 'const'; dims: number[]; data: Float64Array; int: boolean }
  | { kind: 'act'; shape: number[] };
type Const = Extract<GraphValue, { kind: 'const' }>;

/** How a {@link GraphReader} built with `dynamicBatch` writes the batch size of a dynamic batch axis in a shape
 * computation (`Shape(x)[0]`): NaN, which only the operators of {@link CARRIES_BATCH} may move around; any
 * other use of it (arithmetic, an index, a count) is refused, so it never stands for anything but the batch. */
export const DYNAMIC_BATCH = Number.NaN;

/** The operators that move a shape's elements without computing with them, and the inputs they move (the
 * others, indices and axes, must be known). */
const CARRIES_BATCH: Record<string, 'all' | 'first'> = {
  Concat: 'all',
  Identity: 'first',
  Cast: 'first',
  Gather: 'first',
  Unsqueeze: 'first',
  Squeeze: 'first',
  Slice: 'first',
  Reshape: 'first',
  Transpose: 'first',
};

const INT_TYPES = new Set<number>([2, 3, 4, 5, 6, 7, 9, 12, 13]);
const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
const strides = (dims: readonly number[]) => {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1]! * dims[i + 1]!;
  return s;
};

/** numpy broadcasting of several constants: the output dims and, per operand, the source index of each output
 * element. */
function broadcast(
  node: OnnxNode,
  ops: readonly Const[],
): { dims: number[]; index: (k: number, i: number) => number } {
  const rank = Math.max(...ops.map((o) => o.dims.length));
  const padded = ops.map((o) => [...new Array<number>(rank - o.dims.length).fill(1), ...o.dims]);
  const dims = Array.from({ length: rank }, (_, a) => {
    const sizes = new Set(padded.map((p) => p[a]!).filter((d) => d !== 1));
    if (sizes.size > 1)
      refuse(
        node,
        `operands of shapes ${ops.map((o) => `[${o.dims.join(', ')}]`).join(', ')} do not broadcast`,
      );
    return sizes.size === 0 ? 1 : [...sizes][0]!;
  });
  const out = strides(dims);
  const own = padded.map((p) => strides(p));
  return {
    dims,
    index: (k, i) => {
      let src = 0;
      for (let a = 0; a < rank; a++) {
        const c = Math.floor(i / out[a]!) % dims[a]!;
        if (padded[k]![a] !== 1) src += c * own[k]![a]!;
      }
      return src;
    },
  };
}

function elementwise(node: OnnxNode, ops: Const[], f: (...v: number[]) => number, int: boolean): Const {
  const { dims, index } = broadcast(node, ops);
  const data = new Float64Array(size(dims));
  for (let i = 0; i < data.length; i++) data[i] = f(...ops.map((o, k) => o.data[index(k, i)]!));
  return { kind: 'const', dims, data, int };
}

const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** Elements of `data` (dims `dims`) taken along `axis` at `picks` (each a source index on that axis). */
function take(c: Const, axis: number, picks: readonly number[], pickDims: readonly number[]): Const {
  const outer = size(c.dims.slice(0, axis));
  const inner = size(c.dims.slice(axis + 1));
  const n = c.dims[axis]!;
  const data = new Float64Array(outer * picks.length * inner);
  let o = 0;
  for (let a = 0; a < outer; a++)
    for (const p of picks) for (let b = 0; b < inner; b++) data[o++] = c.data[(a * n + p) * inner + b]!;
  return {
    kind: 'const',
    dims: [...c.dims.slice(0, axis), ...pickDims, ...c.dims.slice(axis + 1)],
    data,
    int: c.int,
  };
}

/** The constant-folding rule of each operator that may compute a weight or a shape. */
const FOLD: Record<string, (node: OnnxNode, r: GraphReader) => Const> = {
  Constant: (node, r) => {
    const a = node.attributes;
    const t = a.get('value')?.t;
    if (t !== undefined) return r.tensor(t);
    const f = a.get('value_float')?.f;
    if (f !== undefined) return { kind: 'const', dims: [], data: Float64Array.of(f), int: false };
    const i = a.get('value_int')?.i;
    if (i !== undefined) return { kind: 'const', dims: [], data: Float64Array.of(i), int: true };
    const ints = a.get('value_ints')?.ints;
    if (ints !== undefined)
      return { kind: 'const', dims: [ints.length], data: Float64Array.from(ints), int: true };
    return refuse(node, 'a Constant without value, value_float, value_int or value_ints is not supported');
  },
  Identity: (node, r) => r.constant(node.inputs[0]!, node),
  Cast: (node, r) => {
    const c = r.constant(node.inputs[0]!, node);
    const int = INT_TYPES.has(attrInt(node, 'to', ONNX_DATA_TYPES.FLOAT));
    return { ...c, data: int ? c.data.map(Math.trunc) : c.data, int };
  },
  Shape: (node, r) => {
    const v = r.value(node.inputs[0]!, node);
    const dims = v.kind === 'act' ? v.shape : v.dims;
    const start = normAxis(attrInt(node, 'start', 0), dims.length);
    const end = normAxis(attrInt(node, 'end', dims.length), dims.length);
    const part = dims.slice(start, end);
    return { kind: 'const', dims: [part.length], data: Float64Array.from(part), int: true };
  },
  Gather: (node, r) => {
    const c = r.constant(node.inputs[0]!, node);
    const idx = r.constant(node.inputs[1]!, node);
    const axis = normAxis(attrInt(node, 'axis', 0), c.dims.length);
    const n = c.dims[axis]!;
    return take(
      c,
      axis,
      Array.from(idx.data, (i) => (i < 0 ? i + n : i)),
      idx.dims,
    );
  },
  Unsqueeze: (node, r) => {
    const c = r.constant(node.inputs[0]!, node);
    const raw =
      node.inputs[1] !== undefined
        ? Array.from(r.constant(node.inputs[1], node).data)
        : (attrInts(node, 'axes') ?? []);
    const rank = c.dims.length + raw.length;
    const axes = raw.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
    const dims = [...c.dims];
    for (const a of axes) dims.splice(a, 0, 1);
    return { ...c, dims };
  },
  Squeeze: (node, r) => {
    const c = r.constant(node.inputs[0]!, node);
    const raw =
      node.inputs[1] !== undefined
        ? Array.from(r.constant(node.inputs[1], node).data)
        : attrInts(node, 'axes');
    const axes = raw?.map((a) => normAxis(a, c.dims.length));
    return { ...c, dims: c.dims.filter((d, a) => (axes === undefined ? d !== 1 : !axes.includes(a))) };
  },
  Concat: (node, r) => {
    const parts = node.inputs.map((i) => r.constant(i, node));
    const axis = normAxis(attrInt(node, 'axis', 0), parts[0]!.dims.length);
    const outer = size(parts[0]!.dims.slice(0, axis));
    const data: number[] = [];
    for (let a = 0; a < outer; a++)
      for (const p of parts) {
        const chunk = size(p.dims.slice(axis));
        for (let k = 0; k < chunk; k++) data.push(p.data[a * chunk + k]!);
      }
    const dims = [...parts[0]!.dims];
    dims[axis] = parts.reduce((s, p) => s + p.dims[axis]!, 0);
    return { kind: 'const', dims, data: Float64Array.from(data), int: parts.every((p) => p.int) };
  },
  Add: (node, r) => arith(node, r, (a, b) => a + b),
  Sub: (node, r) => arith(node, r, (a, b) => a - b),
  Mul: (node, r) => arith(node, r, (a, b) => a * b),
  Div: (node, r) => {
    const [a, b] = [r.constant(node.inputs[0]!, node), r.constant(node.inputs[1]!, node)];
    const int = a.int && b.int;
    return elementwise(node, [a, b], (x, y) => (int ? Math.trunc(x / y) : x / y), int);
  },
  Pow: (node, r) => arith(node, r, (a, b) => a ** b),
  Sqrt: (node, r) => {
    const c = r.constant(node.inputs[0]!, node);
    return { ...c, data: c.data.map(Math.sqrt) };
  },
  Equal: (node, r) => ({ ...arith(node, r, (a, b) => (a === b ? 1 : 0)), int: true }),
  Where: (node, r) => {
    const ops = node.inputs.map((i) => r.constant(i, node));
    return elementwise(node, ops, (c, a, b) => (c !== 0 ? a! : b!), ops[1]!.int && ops[2]!.int);
  },
  ConstantOfShape: (node, r) => {
    const shape = Array.from(r.constant(node.inputs[0]!, node).data);
    const t = node.attributes.get('value')?.t;
    const fill = t === undefined ? { data: Float64Array.of(0), int: false } : r.tensor(t);
    return {
      kind: 'const',
      dims: shape,
      data: new Float64Array(size(shape)).fill(fill.data[0]!),
      int: fill.int,
    };
  },
  Expand: (node, r) => {
    const c = r.constant(node.inputs[0]!, node);
    const shape = Array.from(r.constant(node.inputs[1]!, node).data);
    const ones: Const = { kind: 'const', dims: shape, data: new Float64Array(size(shape)), int: c.int };
    return elementwise(node, [c, ones], (a) => a, c.int);
  },
  Reshape: (node, r) => {
    const c = r.constant(node.inputs[0]!, node);
    const dims = resolveReshape(node, c.dims, Array.from(r.constant(node.inputs[1]!, node).data));
    return { ...c, dims };
  },
  Transpose: (node, r) => {
    const c = r.constant(node.inputs[0]!, node);
    const rank = c.dims.length;
    const perm = attrInts(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    const dims = perm.map((p) => c.dims[p]!);
    if (rank === 2 && perm[0] === 1) {
      // a Linear's weight [out, in] -> [in, out]: the common case, tens of millions of values in a ViT-B
      const [rows, cols] = c.dims as [number, number];
      const data = new Float64Array(c.data.length);
      for (let r = 0; r < rows; r++)
        for (let k = 0; k < cols; k++) data[k * rows + r] = c.data[r * cols + k]!;
      return { ...c, dims, data };
    }
    const src = strides(c.dims);
    const out = strides(dims);
    const data = new Float64Array(c.data.length);
    for (let i = 0; i < data.length; i++) {
      let s = 0;
      for (let a = 0; a < rank; a++) s += (Math.floor(i / out[a]!) % dims[a]!) * src[perm[a]!]!;
      data[i] = c.data[s]!;
    }
    return { ...c, dims, data };
  },
  Slice: (node, r) => {
    let c = r.constant(node.inputs[0]!, node);
    for (const s of sliceSpec(node, r, c.dims)) {
      const picks: number[] = [];
      for (let i = s.start; s.step > 0 ? i < s.end : i > s.end; i += s.step) picks.push(i);
      c = take(c, s.axis, picks, [picks.length]);
    }
    return c;
  },
};

/** The operators a graph reader folds to constants (weights and shape computations). */
export const ONNX_FOLDED_OPS: readonly string[] = Object.keys(FOLD);

function arith(node: OnnxNode, r: GraphReader, f: (a: number, b: number) => number): Const {
  const [a, b] = [r.constant(node.inputs[0]!, node), r.constant(node.inputs[1]!, node)];
  return elementwise(node, [a, b], f, a.int && b.int);
}

/** The ranges of a Slice (opset >= 10: starts, ends, axes, steps as inputs), clamped as ONNX defines. */
export function sliceSpec(
  node: OnnxNode,
  r: GraphReader,
  dims: readonly number[],
): { axis: number; start: number; end: number; step: number }[] {
  const ints = (k: number) =>
    node.inputs[k] === undefined || node.inputs[k] === ''
      ? undefined
      : Array.from(r.constant(node.inputs[k], node).data);
  const starts = ints(1);
  const ends = ints(2);
  if (starts === undefined || ends === undefined)
    refuse(node, 'a Slice without starts and ends inputs (opset < 10) is not supported');
  const axes = ints(3) ?? starts.map((_, i) => i);
  const steps = ints(4) ?? starts.map(() => 1);
  return axes.map((a, i) => {
    const axis = normAxis(a, dims.length);
    const n = dims[axis]!;
    const step = steps[i]!;
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + n : v, lo), hi);
    const start = step > 0 ? clamp(starts[i]!, 0, n) : clamp(starts[i]!, -1, n - 1);
    const end = step > 0 ? clamp(ends[i]!, 0, n) : clamp(ends[i]!, -1, n - 1);
    return { axis, start, end, step };
  });
}

/** A Reshape's output dims: 0 copies the input's dimension (allowzero 0), -1 is inferred. */
export function resolveReshape(node: OnnxNode, dims: readonly number[], target: readonly number[]): number[] {
  const zeroCopies = attrInt(node, 'allowzero', 0) === 0;
  const out = target.map((d, i) => (d === 0 && zeroCopies ? dims[i]! : d));
  const known = size(out.filter((d) => d !== -1));
  const inferred = out.map((d) => (d === -1 ? size(dims) / known : d));
  if (size(inferred) !== size(dims) || inferred.some((d) => !Number.isInteger(d) || d < 0))
    refuse(node, `cannot reshape [${dims.join(', ')}] to [${target.join(', ')}]`);
  return inferred;
}

/**
 * Reads an ONNX graph the way a pattern recogniser needs it: who produces and who consumes each value, the shape
 * of each activation (set by the recogniser as it goes), and any constant folded on demand from initializers,
 * `Constant` nodes and `Shape`s of activations. Every node read is recorded, so the recogniser can refuse a graph
 * with a node it did not account for.
 */
export class GraphReader {
  readonly producer = new Map<string, OnnxNode>();
  private readonly consumerList = new Map<string, OnnxNode[]>();
  private readonly known = new Map<string, GraphValue>();
  /** Initializers, decoded when first read (a ViT-B's weights are 86M values). */
  private readonly initializers = new Map<string, OnnxTensor>();
  private readonly constness = new Map<string, boolean>();
  /** The nodes read (folded or matched). */
  readonly used = new Set<OnnxNode>();

  /**
   * @param dynamicBatch the activations' batch axis is dynamic: {@link setAct} shapes have
   *   {@link DYNAMIC_BATCH} first, and a fold that would compute with it is refused, naming the node
   */
  constructor(
    readonly graph: OnnxGraph,
    private readonly constOf: (t: OnnxTensor) => ConstValue,
    private readonly dynamicBatch = false,
  ) {
    for (const t of graph.initializers) this.initializers.set(t.name, t);
    for (const n of graph.nodes) {
      for (const o of n.outputs) this.producer.set(o, n);
      for (const i of n.inputs) this.consumerList.set(i, [...(this.consumerList.get(i) ?? []), n]);
    }
  }

  tensor(t: OnnxTensor): Const {
    const c = this.constOf(t);
    return { kind: 'const', dims: c.dims, data: c.data, int: INT_TYPES.has(t.dataType) };
  }

  /** Records an activation's shape. */
  setAct(name: string, shape: number[]): void {
    this.known.set(name, { kind: 'act', shape });
  }
  /** The shape of an activation the recogniser has reached. */
  shape(name: string, at: OnnxNode): number[] {
    const v = this.value(name, at);
    if (v.kind !== 'act') refuse(at, `input '${name}' is a constant; expected an activation`);
    return v.shape;
  }

  /** The value named `name`, folded from its producer when it is a constant. */
  value(name: string, at: OnnxNode): GraphValue {
    const v = this.known.get(name);
    if (v !== undefined) return v;
    const t = this.initializers.get(name);
    if (t !== undefined) {
      const c = this.tensor(t);
      this.known.set(name, c);
      return c;
    }
    const p = this.producer.get(name);
    if (p === undefined) refuse(at, `input '${name}' is not produced by any node`);
    const fold = p.domain === '' || p.domain === 'ai.onnx' ? FOLD[p.opType] : undefined;
    if (fold === undefined)
      refuse(
        at,
        `input '${name}' must be a constant (a weight, or a shape computed from constants); it is computed by '${p.name}' (${p.opType}), which is not part of the pattern here`,
      );
    if (this.dynamicBatch) this.checkBatchUse(p, at);
    const c = fold(p, this);
    this.used.add(p);
    this.known.set(name, c);
    return c;
  }
  /** Refuses a node that would compute with the dynamic batch size (see {@link DYNAMIC_BATCH}). */
  private checkBatchUse(p: OnnxNode, at: OnnxNode): void {
    if (p.opType === 'Shape') return;
    const carries = CARRIES_BATCH[p.opType];
    p.inputs.forEach((i, k) => {
      if (i === '' || carries === 'all' || (carries === 'first' && k === 0)) return;
      const v = this.value(i, at);
      if (v.kind === 'const' && v.data.some(Number.isNaN))
        refuse(
          p,
          `computes with the batch size (input '${i}'), which is dynamic; supported: a shape computation that only moves the batch size into a Reshape's target (Shape -> Gather -> Unsqueeze -> Concat), or an input with a fixed batch size`,
        );
    });
  }

  constant(name: string, at: OnnxNode): Const {
    const v = this.value(name, at);
    if (v.kind !== 'const')
      refuse(
        at,
        `input '${name}' is computed from the model input; expected a constant (a weight or a shape)`,
      );
    return v;
  }
  /** Whether a value is a constant (folding it if needed); false for activations and what depends on them. */
  isConstant(name: string): boolean {
    const v = this.known.get(name);
    if (v !== undefined) return v.kind === 'const';
    if (this.initializers.has(name)) return true;
    // memoised: without it, the residual branches make the walk back to the input exponential in the depth
    const seen = this.constness.get(name);
    if (seen !== undefined) return seen;
    const p = this.producer.get(name);
    const constant =
      p !== undefined &&
      FOLD[p.opType] !== undefined &&
      (p.opType === 'Shape' || p.inputs.filter((i) => i !== '').every((i) => this.isConstant(i)));
    this.constness.set(name, constant);
    return constant;
  }

  /** The nodes that read `name` and compute with its values (not `Shape`, which reads only its shape). */
  consumers(name: string): OnnxNode[] {
    return (this.consumerList.get(name) ?? []).filter((n) => n.opType !== 'Shape');
  }
}

import { CrpError, listNames } from '@crp/common';
import type * as tfl from '@tensorflow/tfjs-layers';
import { importOnnx, importOnnxLinked, type OnnxImportLinks, type OnnxImportOptions } from './onnx-import.js';
import {
  externalBytes,
  nodeLabel,
  type OnnxValueLink,
  type OnnxWeightLink,
  onnxShapeOf,
} from './onnx-ops/context.js';
import { isTransformerGraph } from './onnx-ops/vit.js';
import {
  ONNX_DATA_TYPES,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  onnxTensorValues,
  parseOnnxModel,
  Reader,
} from './onnx-proto.js';

// Writes a model back as the `.onnx` it was imported from: the source file's bytes, field by field, with the
// initializers of its weight layers replaced by the model's weights (a fine-tuned or pruned model), the shape
// constants of Reshapes and the shapes in `value_info` and the graph's inputs and outputs rewritten where pruning
// changed a count they name. Everything else (nodes and their names, graph input and output names, opsets,
// producer, metadata) is copied byte for byte, so the written file is the user's graph. Field numbers from
// onnx/onnx.proto (the IR spec only ever adds fields).

const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const GRAPH_VALUE_INFO = 13;
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const NODE_ATTRIBUTE = 5;
const ATTRIBUTE_NAME = 1;
const ATTRIBUTE_TENSOR = 5;
const VALUE_INFO_NAME = 1;
const VALUE_INFO_TYPE = 2;
const TYPE_TENSOR = 1;
const TYPE_TENSOR_SHAPE = 2;
const SHAPE_DIM = 1;
const DIM_VALUE = 1;
const DIM_DENOTATION = 3;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_NAME = 8;
const TENSOR_RAW_DATA = 9;
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;
const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/** A tensor to write: ONNX dims and float32 values in ONNX's (row-major NCHW) order, or integers of a shape
 * (int64; int32 for a part of a shape computed in int32, as tf2onnx writes one). */
interface FloatTensor {
  dims: number[];
  data: Float32Array;
}
interface IntTensor {
  dims: number[];
  ints: number[];
  type: 'int64' | 'int32';
}
type NewTensor = FloatTensor | IntTensor;

class Writer {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  bytes(b: Uint8Array): this {
    this.chunks.push(b);
    this.size += b.length;
    return this;
  }
  varint(v: number): this {
    const out: number[] = [];
    let n = v;
    // ONNX writes non-negative sizes and ids here; numbers up to 2^53 are exact
    while (n >= 0x80) {
      out.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    out.push(n);
    return this.bytes(Uint8Array.from(out));
  }
  key(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }
  lengthDelimited(field: number, b: Uint8Array): this {
    return this.key(field, WIRE_LEN).varint(b.length).bytes(b);
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** The fields of a message: number, wire type, the whole field's bytes and, for a length-delimited one, its
 * payload. */
function fieldsOf(
  bytes: Uint8Array,
): { field: number; wire: number; raw: Uint8Array; payload?: Uint8Array }[] {
  const r = new Reader(bytes, 0, bytes.length);
  const out: { field: number; wire: number; raw: Uint8Array; payload?: Uint8Array }[] = [];
  while (!r.done()) {
    const start = r.pos;
    const [field, wire] = r.key();
    if (wire === WIRE_LEN) {
      const payload = r.bytesField();
      out.push({ field, wire, raw: bytes.subarray(start, r.pos), payload });
    } else {
      r.skip(wire);
      out.push({ field, wire, raw: bytes.subarray(start, r.pos) });
    }
  }
  return out;
}

/** The `name` (field 1 of ValueInfoProto, field 8 of TensorProto) of a message. */
function nameOf(message: Uint8Array, field: number): string {
  const f = fieldsOf(message).find((x) => x.field === field && x.wire === WIRE_LEN);
  return f === undefined ? '' : new TextDecoder().decode(f.payload);
}

function encodeTensor(name: string, t: NewTensor): Uint8Array {
  const w = new Writer();
  for (const d of t.dims) w.key(TENSOR_DIMS, WIRE_VARINT).varint(d);
  const type = 'ints' in t ? t.type : 'float';
  w.key(TENSOR_DATA_TYPE, WIRE_VARINT).varint(
    type === 'int64'
      ? ONNX_DATA_TYPES.INT64
      : type === 'int32'
        ? ONNX_DATA_TYPES.INT32
        : ONNX_DATA_TYPES.FLOAT,
  );
  w.lengthDelimited(TENSOR_NAME, new TextEncoder().encode(name));
  const values = 'ints' in t ? t.ints : t.data;
  const raw = new Uint8Array(values.length * (type === 'int64' ? 8 : 4));
  const view = new DataView(raw.buffer);
  for (let i = 0; i < values.length; i++) {
    if (type === 'int64') view.setBigInt64(i * 8, BigInt(values[i]!), true);
    else if (type === 'int32') view.setInt32(i * 4, values[i]!, true);
    else view.setFloat32(i * 4, values[i]!, true);
  }
  return w.lengthDelimited(TENSOR_RAW_DATA, raw).finish();
}

/** An external-data tensor made self-contained: its fields with `external_data` and `data_location` dropped and
 * its bytes as `raw_data`. */
function inlineTensor(message: Uint8Array, data: Uint8Array): Uint8Array {
  const w = new Writer();
  for (const f of fieldsOf(message))
    if (f.field !== TENSOR_EXTERNAL_DATA && f.field !== TENSOR_DATA_LOCATION) w.bytes(f.raw);
  return w.lengthDelimited(TENSOR_RAW_DATA, data).finish();
}

/** A message with the payload of every length-delimited field `field` passed through `f` (undefined: dropped). */
function mapField(
  message: Uint8Array,
  field: number,
  f: (payload: Uint8Array) => Uint8Array | undefined,
): Uint8Array {
  const w = new Writer();
  for (const x of fieldsOf(message)) {
    if (x.field !== field || x.payload === undefined) w.bytes(x.raw);
    else {
      const next = f(x.payload);
      if (next !== undefined) w.lengthDelimited(field, next);
    }
  }
  return w.finish();
}

/** A ValueInfoProto with the `dim_value` of the dimensions in `dims` replaced (others, and `dim_param`s, kept). */
function withDims(valueInfo: Uint8Array, dims: Map<number, number>): Uint8Array {
  const shape = (s: Uint8Array) => {
    let k = 0;
    return mapField(s, SHAPE_DIM, (dim) => {
      const next = dims.get(k++);
      const fields = fieldsOf(dim);
      if (next === undefined || !fields.some((f) => f.field === DIM_VALUE)) return dim;
      const w = new Writer().key(DIM_VALUE, WIRE_VARINT).varint(next);
      for (const f of fields) if (f.field === DIM_DENOTATION) w.bytes(f.raw);
      return w.finish();
    });
  };
  return mapField(valueInfo, VALUE_INFO_TYPE, (type) =>
    mapField(type, TYPE_TENSOR, (tensor) => mapField(tensor, TYPE_TENSOR_SHAPE, shape)),
  );
}

/** The number of dimensions of a ValueInfoProto's tensor shape (undefined without a shape). */
function rankOf(valueInfo: Uint8Array): number | undefined {
  const sub = (m: Uint8Array | undefined, field: number) =>
    m === undefined ? undefined : fieldsOf(m).find((f) => f.field === field)?.payload;
  const shape = sub(sub(sub(valueInfo, VALUE_INFO_TYPE), TYPE_TENSOR), TYPE_TENSOR_SHAPE);
  return shape === undefined ? undefined : fieldsOf(shape).filter((f) => f.field === SHAPE_DIM).length;
}

/** TF [kh, kw, in, out] -> ONNX [out, in, kh, kw] (a conv's or grouped conv's kernel). */
function convWeight(k: Float32Array, [kh, kw, inC, out]: number[]): FloatTensor {
  const data = new Float32Array(k.length);
  for (let o = 0; o < out!; o++)
    for (let i = 0; i < inC!; i++)
      for (let y = 0; y < kh!; y++)
        for (let x = 0; x < kw!; x++)
          data[((o * inC! + i) * kh! + y) * kw! + x] = k[((y * kw! + x) * inC! + i) * out! + o]!;
  return { dims: [out!, inC!, kh!, kw!], data };
}

/** TF [kh, kw, cin, m] -> ONNX [cin * m, 1, kh, kw] (a depthwise kernel; output c * m + j reads channel c). */
function depthwiseWeight(k: Float32Array, [kh, kw, cin, m]: number[]): FloatTensor {
  const data = new Float32Array(k.length);
  for (let c = 0; c < cin!; c++)
    for (let j = 0; j < m!; j++)
      for (let p = 0; p < kh! * kw!; p++) data[(c * m! + j) * kh! * kw! + p] = k[(p * cin! + c) * m! + j]!;
  return { dims: [cin! * m!, 1, kh!, kw!], data };
}

/** TF's dense kernel [in, units] -> the Gemm/MatMul matrix: rows back from (h, w, c) to (c, h, w) after a flatten,
 * divided by alpha, transposed for transB. */
function denseWeight(
  k: Float32Array,
  [inF, units]: number[],
  link: OnnxWeightLink & { kind: 'dense' },
): FloatTensor {
  const rowOf = (i: number): number => {
    if (link.flat === undefined) return i;
    const [, h, wd] = link.flat;
    const c = inF! / (h * wd); // the channels left after pruning
    const ch = Math.floor(i / (h * wd));
    return (i % (h * wd)) * c + ch;
  };
  const data = new Float32Array(k.length);
  for (let i = 0; i < inF!; i++) {
    const row = rowOf(i);
    for (let u = 0; u < units!; u++)
      data[link.transB ? u * inF! + i : i * units! + u] = k[row * units! + u]! / link.alpha;
  }
  return { dims: link.transB ? [units!, inF!] : [inF!, units!], data };
}

/** A Gemm's (or MatMul's Add's) bias in the dims the source stored it: [units], [1, units], or one value broadcast
 * to every unit while all units still share it ([1], a scalar); the unit count is the model's (pruned). */
function biasLike(v: FloatTensor, source: number[] | undefined): FloatTensor {
  if (source === undefined) return v;
  const size = source.reduce((a, b) => a * b, 1);
  if (size === 1 && v.data.every((x) => x === v.data[0]))
    return { dims: source, data: v.data.subarray(0, 1) };
  if (source.length > 0 && source.slice(0, -1).every((d) => d === 1))
    return { dims: [...source.slice(0, -1), v.data.length], data: v.data };
  return v;
}

/** The ONNX initializers of one weight layer of `model`, by initializer name; `biasDims` are a Gemm bias's dims in
 * the source. */
function initializersOf(
  layer: tfl.layers.Layer,
  link: OnnxWeightLink,
  biasDims?: number[],
): Map<string, FloatTensor> {
  const weights = layer.getWeights();
  const values = weights.map((w) => ({ shape: w.shape, data: w.dataSync() as Float32Array }));
  const out = new Map<string, FloatTensor>();
  const vector = (v: { data: Float32Array }, scale = 1) => ({
    dims: [v.data.length],
    data: scale === 1 ? Float32Array.from(v.data) : v.data.map((x) => x / scale),
  });
  switch (link.kind) {
    case 'conv':
    case 'depthwise': {
      const [k, b] = values;
      out.set(link.weight, (link.kind === 'conv' ? convWeight : depthwiseWeight)(k!.data, k!.shape));
      if (link.bias !== undefined) out.set(link.bias, vector(b!));
      break;
    }
    case 'dense': {
      const [k, b] = values;
      // alpha or beta 0 switches A*B or C off: the importer made zeros of them, and the source's values stay
      // (dividing by 0 would write NaN); a model that no longer has zeros there has no such file
      const scaled = (name: string, v: { data: Float32Array }, factor: number, what: string) => {
        if (factor !== 0) return true;
        if (v.data.every((x) => x === 0)) return false;
        throw new CrpError(
          'unsupported-model',
          `the ${what} of '${layer.name}' is no longer zero, but the Gemm '${link.node}' has ${what === 'bias' ? 'beta' : 'alpha'} 0, which ignores its ${name}; export the model again from PyTorch`,
          { details: { layer: layer.name, node: link.node } },
        );
      };
      if (scaled(link.weight, k!, link.alpha, 'kernel'))
        out.set(link.weight, denseWeight(k!.data, k!.shape, link));
      if (link.bias !== undefined && scaled(link.bias, b!, link.beta, 'bias'))
        out.set(link.bias, biasLike(vector(b!, link.beta), biasDims));
      break;
    }
    case 'batchNorm': {
      const [gamma, beta, mean, variance] = values;
      out.set(link.scale, vector(gamma!));
      out.set(link.bias, vector(beta!));
      out.set(link.mean, vector(mean!));
      out.set(link.variance, vector(variance!));
      break;
    }
  }
  return out;
}

function sameTensor(a: NewTensor, b: NewTensor): boolean {
  const [x, y] = ['data' in a ? a.data : a.ints, 'data' in b ? b.data : b.ints];
  return a.dims.join() === b.dims.join() && x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Whether two layers hold the same weights (shapes and values). */
function sameWeights(a: tfl.layers.Layer, b: tfl.layers.Layer): boolean {
  const [wa, wb] = [a.getWeights(), b.getWeights()];
  if (wa.length !== wb.length) return false;
  return wa.every((t, i) => {
    const u = wb[i]!;
    if (t.shape.join() !== u.shape.join()) return false;
    const [x, y] = [t.dataSync(), u.dataSync()];
    return x.every((v, j) => v === y[j]);
  });
}

/** The replacement initializers: every weight layer's weights from `model`. A layer the source has and `model`
 * lacks, or a layer whose weights changed and that has no initializers to hold them (an affine map the importer
 * fused from constants), is refused: the file would not be the model. */
function weightReplacements(
  parsed: OnnxModel,
  reference: tfl.LayersModel,
  links: OnnxWeightLink[],
  model: tfl.LayersModel,
): Map<string, NewTensor> {
  const names = new Set(model.layers.map((l) => l.name));
  const missing = reference.layers.map((l) => l.name).filter((n) => !names.has(n));
  if (missing.length > 0)
    throw new CrpError(
      'invalid-argument',
      `the model is not the one imported from this .onnx: it lacks the layers ${listNames(missing)}; write a model imported from the same file (fine-tuned or pruned)`,
      { details: { missing } },
    );
  const linked = new Set(links.map((l) => l.layer));
  const unwritable = reference.layers
    .filter(
      (l) => !linked.has(l.name) && l.getWeights().length > 0 && !sameWeights(l, model.getLayer(l.name)),
    )
    .map((l) => l.name);
  if (unwritable.length > 0)
    throw new CrpError(
      'unsupported-model',
      `the weights of ${listNames(unwritable.map((n) => `'${n}'`))} changed, and the .onnx holds them as constants of element-wise operators, not as a layer's initializers; the writer puts back Conv, Gemm/MatMul and BatchNormalization weights only`,
      { details: { layers: unwritable } },
    );
  const dims = new Map(parsed.graph.initializers.map((t) => [t.name, t.dims]));
  const out = new Map<string, NewTensor>();
  // an initializer that two nodes read (tied weights) became a layer each: the file holds one tensor for both
  const writer = new Map<string, OnnxWeightLink>();
  for (const link of links) {
    const biasDims = link.kind === 'dense' && link.bias !== undefined ? dims.get(link.bias) : undefined;
    for (const [name, t] of initializersOf(model.getLayer(link.layer), link, biasDims)) {
      const before = out.get(name);
      const first = writer.get(name);
      if (before !== undefined && first !== undefined && !sameTensor(before, t))
        throw new CrpError(
          'unsupported-model',
          `the nodes '${first.node}' and '${link.node}' share the initializer '${name}', and their layers '${first.layer}' and '${link.layer}' now hold different weights (fine-tuned or pruned apart), which one tensor cannot hold; keep their weights equal, or export the model with a weight per node`,
          { details: { initializer: name, nodes: [first.node, link.node] } },
        );
      out.set(name, t);
      writer.set(name, link);
    }
  }
  return out;
}

/** The ONNX shape of a value in `model` (undefined when `model` has no such layer). */
function valueShape(model: tfl.LayersModel, v: OnnxValueLink): number[] | undefined {
  const layer = model.layers.find((l) => l.name === v.layer);
  if (layer === undefined) return undefined;
  const shape = layer.outputShape;
  return onnxShapeOf((Array.isArray(shape[0]) ? shape[0] : shape) as (number | null)[], v);
}

/** What the shapes of a pruned model change in the graph: constants rewritten in place (initializers and
 * Constant nodes, by name), new int64 initializers, and node inputs pointed at them (input index -> name). */
interface ShapeEdits {
  replace: Map<string, NewTensor>;
  added: Map<string, NewTensor>;
  rewired: Map<OnnxNode, Map<number, string>>;
}

/** The shape constants of the Reshapes whose counts pruning changed, rewritten (through Identity nodes, at the
 * initializer or Constant behind them) as {@link prunedTarget} says; a target computed by a Concat (a dynamic
 * batch's `x.view(x.size(0), 96)`), or by a Cast to int64 of such a Concat ({@link castConcat}), at the constant
 * parts the new counts fall in ({@link concatEdits}). Refused,
 * naming the node: a constant that two Reshapes need with different values (a folded Reshape of a constant needs
 * its own as it is), one that another operator reads too, one that is computed otherwise (not an initializer, a
 * Constant node or a Concat with constant parts where the counts change), and what prunedTarget refuses. */
function shapeReplacements(
  parsed: OnnxModel,
  reference: tfl.LayersModel,
  model: tfl.LayersModel,
  { shapes, values }: OnnxImportLinks,
): ShapeEdits {
  // the tensor that holds a target: the initializer or Constant behind any Identity nodes
  const producers = new Map(parsed.graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const stored = (name: string): string => {
    const p = producers.get(name);
    return p?.opType === 'Identity' ? stored(p.inputs[0]!) : name;
  };
  const wanted = new Map<string, { node: string; target: number[]; source: number[]; constant: boolean }[]>();
  for (const link of shapes) {
    const shapeIn = (m: tfl.LayersModel, name: string) => {
      const v = values.get(name);
      return v === undefined ? undefined : valueShape(m, v);
    };
    const [before, input, output] = [
      shapeIn(reference, link.output),
      shapeIn(model, link.input),
      shapeIn(model, link.output),
    ];
    // a Reshape whose output kept its shape needs its target as it is (one that shares it may not), and so does
    // the Reshape of a constant the importer folded (no constant changes shape)
    const unchanged =
      link.constant === true ||
      before === undefined ||
      input === undefined ||
      output === undefined ||
      before.join() === output.join();
    const target = unchanged
      ? link.target
      : prunedTarget(link.node, link.target, input, output, link.allowzero === true);
    const key = stored(link.shape);
    wanted.set(key, [
      ...(wanted.get(key) ?? []),
      { node: link.node, target, source: link.target, constant: link.constant === true },
    ]);
  }
  const out = new Map<string, NewTensor>();
  const edits: PartEdit[] = [];
  const initializers = new Set(parsed.graph.initializers.map((t) => t.name));
  for (const [shape, uses] of wanted) {
    const changed = uses.filter((u) => u.target.join() !== u.source.join());
    if (changed.length === 0) continue;
    const first = changed[0]!;
    const other = uses.find((u) => u.target.join() !== first.target.join());
    if (other?.constant === true)
      refuse(
        first.node,
        `its target shape '${shape}' is shared with the Reshape '${other.node}' of a constant, which needs it as it is ([${other.target.join(', ')}]), while the pruning needs [${first.target.join(', ')}] here; export the model with a shape constant per Reshape (or with torch.onnx.export's do_constant_folding=True, which folds the constant's Reshape)`,
      );
    if (other !== undefined)
      refuse(
        first.node,
        `its target shape '${shape}' is shared with the Reshape '${other.node}', and the pruning needs [${first.target.join(', ')}] for one and [${other.target.join(', ')}] for the other; export the model with a shape constant per Reshape`,
      );
    // the names it goes by (Identity outputs), and who reads them
    const names = new Set([shape]);
    for (const n of parsed.graph.nodes)
      if (n.opType === 'Identity' && names.has(n.inputs[0]!)) names.add(n.outputs[0]!);
    // a Reshape reads it as its target (input 1); as its data (a folded Reshape of the constant) it is a reader
    const readers = parsed.graph.nodes.filter(
      (n) =>
        n.opType !== 'Identity' &&
        n.inputs.some((i, k) => names.has(i) && !(n.opType === 'Reshape' && k === 1)),
    );
    if (readers.length > 0)
      refuse(
        first.node,
        `its target shape '${shape}' is also read by ${listNames(readers.map(nodeLabel))}, whose input the writer cannot rewrite; export the model with a shape constant of its own for the Reshape`,
      );
    const producer = producers.get(shape);
    const concat = castConcat(first.node, shape, producer, parsed, producers, stored);
    if (concat !== undefined) edits.push(...concatEdits(first, concat, parsed, producers, stored));
    else if (initializers.has(shape) || producer?.opType === 'Constant')
      out.set(shape, { dims: [first.target.length], ints: first.target, type: 'int64' });
    else if (producer?.opType === 'Concat')
      edits.push(...concatEdits(first, producer, parsed, producers, stored));
    else
      refuse(
        first.node,
        `its target shape '${shape}' is computed${producer === undefined ? '' : ` by ${nodeLabel(producer)}`}, not an initializer, a Constant node or a Concat of them, so the writer cannot rewrite it`,
      );
  }
  const added = new Map<string, NewTensor>();
  const rewired = new Map<OnnxNode, Map<number, string>>();
  placePartEdits(edits, parsed, stored, out, added, rewired);
  return { replace: out, added, rewired };
}

/**
 * The Concat behind a target that a Cast to int64 makes of it: tf2onnx computes a TensorFlow shape in int32 and
 * casts it before the Reshape (Concat(int32 parts) -> Cast(to int64) -> Reshape); undefined for any other target.
 * Refused, naming the Reshape: a Concat whose output another node reads too (its parts are rewritten).
 */
function castConcat(
  reshape: string,
  target: string,
  cast: OnnxNode | undefined,
  parsed: OnnxModel,
  producers: Map<string, OnnxNode>,
  stored: (name: string) => string,
): OnnxNode | undefined {
  if (cast?.opType !== 'Cast' || cast.attributes.get('to')?.i !== ONNX_DATA_TYPES.INT64) return undefined;
  const concat = producers.get(stored(cast.inputs[0]!));
  if (concat?.opType !== 'Concat') return undefined;
  const names = new Set([concat.outputs[0]!]);
  for (const n of parsed.graph.nodes)
    if (n.opType === 'Identity' && names.has(n.inputs[0]!)) names.add(n.outputs[0]!);
  const others = parsed.graph.nodes.filter(
    (n) => n !== cast && n.opType !== 'Identity' && n.inputs.some((i) => names.has(i)),
  );
  if (others.length > 0)
    refuse(
      reshape,
      `its target shape '${target}' is ${nodeLabel(cast)} of ${nodeLabel(concat)}, which ${listNames(others.map(nodeLabel))} also read${others.length > 1 ? '' : 's'}, and the pruning changes its parts; export the model with a shape computation of its own for the Reshape`,
    );
  return concat;
}

/** A constant input of a Concat that a Reshape's target is made of, and the values the pruning needs there. */
interface PartEdit {
  concat: OnnxNode;
  input: number;
  /** the initializer or Constant behind it (through Identity nodes) */
  stored: string;
  /** its data type: int64, or int32 in a shape computed in int32 (tf2onnx) */
  type: IntTensor['type'];
  values: number[];
}

/** A 1-D integer constant (an initializer, or a Constant node with a tensor `value`): its length and type, or
 * undefined when the value is not one the writer can rewrite. */
function intConstant(
  name: string,
  parsed: OnnxModel,
  producer: OnnxNode | undefined,
): { length: number; type: IntTensor['type'] } | undefined {
  const t =
    parsed.graph.initializers.find((i) => i.name === name) ??
    (producer?.opType === 'Constant' ? producer.attributes.get('value')?.t : undefined);
  if (t === undefined || t.dims.length !== 1) return undefined;
  const type =
    t.dataType === ONNX_DATA_TYPES.INT64
      ? 'int64'
      : t.dataType === ONNX_DATA_TYPES.INT32
        ? 'int32'
        : undefined;
  return type === undefined ? undefined : { length: t.dims[0]!, type };
}

/**
 * A target computed by a Concat of 1-D parts (torch's `x.view(x.size(0), 96)` with a dynamic batch: the batch size
 * from Shape -> Gather -> Unsqueeze, then a Constant [96]): the parts whose entries the pruning changes, each of
 * which must be a constant. Refused, naming the Reshape: a change in a computed part, or parts whose lengths
 * cannot be told (more than one computed part, or a Concat not over axis 0 of 1-D parts).
 */
function concatEdits(
  use: { node: string; source: number[]; target: number[] },
  concat: OnnxNode,
  parsed: OnnxModel,
  producers: Map<string, OnnxNode>,
  stored: (name: string) => string,
): PartEdit[] {
  const parts = concat.inputs.map((i) => intConstant(stored(i), parsed, producers.get(stored(i))));
  const lengths = parts.map((p) => p?.length);
  const computed = lengths.flatMap((l, k) => (l === undefined ? [k] : []));
  const rest = use.source.length - lengths.reduce<number>((a, l) => a + (l ?? 0), 0);
  const axis = concat.attributes.get('axis')?.i ?? 0;
  if ((axis !== 0 && axis !== -1) || computed.length > 1 || rest < 0 || (computed.length === 0 && rest !== 0))
    refuse(
      use.node,
      `its target shape [${use.source.join(', ')}] is the Concat ${nodeLabel(concat)} of ${concat.inputs.length} parts, ${computed.length} of them computed, which the writer cannot tell apart; supported: a Concat over axis 0 of 1-D constants and at most one computed part (torch's x.view(x.size(0), count))`,
    );
  if (computed.length === 1) lengths[computed[0]!] = rest;
  const edits: PartEdit[] = [];
  let at = 0;
  concat.inputs.forEach((name, k) => {
    const n = lengths[k]!;
    const [before, after] = [use.source.slice(at, at + n), use.target.slice(at, at + n)];
    at += n;
    if (before.join() === after.join()) return;
    if (computed.includes(k)) {
      const p = producers.get(stored(name));
      refuse(
        use.node,
        `its target shape [${use.source.join(', ')}] is the Concat ${nodeLabel(concat)}, and the pruning needs [${use.target.join(', ')}], which changes its input '${name}', computed${p === undefined ? '' : ` by ${nodeLabel(p)}`}, not a constant the writer can rewrite`,
      );
    }
    edits.push({ concat, input: k, stored: stored(name), type: parts[k]!.type, values: after });
  });
  return edits;
}

/**
 * Where each changed Concat part goes: rewritten in place when every node that reads its constant is a Concat
 * that needs the same new values there; otherwise (a Concat that needs the old values, another operator, a
 * graph output) a new initializer per edit (of the constant's type), its Concat's input pointed at it, the old
 * constant kept.
 */
function placePartEdits(
  edits: PartEdit[],
  parsed: OnnxModel,
  stored: (name: string) => string,
  replace: Map<string, NewTensor>,
  added: Map<string, NewTensor>,
  rewired: Map<OnnxNode, Map<number, string>>,
): void {
  const taken = new Set([
    ...parsed.graph.initializers.map((t) => t.name),
    ...parsed.graph.inputs.map((v) => v.name),
    ...parsed.graph.nodes.flatMap((n) => n.outputs),
  ]);
  const byConstant = new Map<string, PartEdit[]>();
  for (const e of edits) byConstant.set(e.stored, [...(byConstant.get(e.stored) ?? []), e]);
  for (const [constant, group] of byConstant) {
    const reads = parsed.graph.nodes.flatMap((n) =>
      n.opType === 'Identity'
        ? []
        : n.inputs.flatMap((i, k) => (i !== '' && stored(i) === constant ? [{ n, k }] : [])),
    );
    const edited = (r: { n: OnnxNode; k: number }) => group.some((e) => e.concat === r.n && e.input === r.k);
    const output = parsed.graph.outputs.some((o) => stored(o.name) === constant);
    if (!output && reads.every(edited) && group.every((e) => e.values.join() === group[0]!.values.join())) {
      replace.set(constant, {
        dims: [group[0]!.values.length],
        ints: group[0]!.values,
        type: group[0]!.type,
      });
      continue;
    }
    for (const e of group) {
      let name = `${constant}_pruned`;
      for (let i = 1; taken.has(name); i++) name = `${constant}_pruned_${i}`;
      taken.add(name);
      added.set(name, { dims: [e.values.length], ints: e.values, type: e.type });
      rewired.set(e.concat, new Map([...(rewired.get(e.concat) ?? []), [e.input, name]]));
    }
  }
}

/** The target shape a Reshape needs in the pruned model, from its source target and its pruned input and output
 * (ONNX shapes, -1 where the model leaves a dimension open; the importer made sure the batch axis is kept), under
 * ONNX's rules: a count must be the output's, a 0 copies the input's dimension (unless `allowzero`), one -1 is
 * inferred from the rest. Each dimension keeps its source entry where that is still right (the batch axis's too:
 * its -1, 0 or fixed batch size; a 0 that copies the output's count), else becomes the output's count; a dimension
 * the pruned output leaves open (a 0 there would copy a fixed count) takes the one -1, and the batch axis's -1 then
 * becomes 0, which copies the batch. Refused, naming the node and the dimensions: two or more open dimensions (the
 * output is ambiguous: ONNX infers one -1 only). */
export function prunedTarget(
  node: string,
  target: readonly number[],
  input: readonly number[],
  output: readonly number[],
  allowzero = false,
): number[] {
  // a 0 at dimension i gives the input's count there: right when it is the output's (the batch is the batch)
  const copies = (i: number) =>
    !allowzero && i < input.length && (i === 0 || (input[i]! > 0 && input[i] === output[i]));
  // the entry that fixes dimension i without a -1, or undefined when none does
  const pinned = target.map((d, i): number | undefined => {
    if (i === 0) return d >= 0 ? d : copies(0) ? 0 : undefined;
    if (d === 0 && copies(i)) return 0;
    // (an open output dimension has no 0 that copies it: copies() needs the input's count to be the output's)
    return output[i]! > 0 ? output[i]! : undefined;
  });
  const open = pinned.flatMap((p, i) => (p === undefined ? [i] : []));
  if (open.length > 1)
    refuse(
      node,
      `its target shape [${target.join(', ')}] would need a -1 at dimensions ${open.join(' and ')}, which the pruned output [${output.join(', ')}] leaves open${allowzero ? ' (allowzero 1: a 0 cannot copy the batch)' : ''} and no 0 can copy from the input [${input.join(', ')}]; ONNX infers one -1 only, so the pruned output is ambiguous there`,
    );
  // with every other dimension fixed, the -1 (the open one, else the source's own) is inferred right
  const inferred = open[0] ?? target.indexOf(-1);
  return pinned.map((p, i) => (i === inferred ? -1 : p!));
}

function refuse(node: string, why: string): never {
  throw new CrpError(
    'unsupported-model',
    `the ONNX writer cannot put the pruned model into the Reshape '${node}': ${why}`,
    {
      details: { node },
    },
  );
}

/** The dims to set in each ValueInfoProto of the graph (`value_info`, inputs, outputs) by value name, or null to
 * drop it: a value of the model whose pruned shape differs gets the pruned counts; a replaced initializer listed
 * as an input gets its new dims; a value the importer folded into a layer (a MatMul before its bias Add) cannot
 * be checked and is dropped from `value_info` when any shape changed (a stale shape would be wrong, a missing one
 * is only a missing hint). */
function shapeUpdates(
  reference: tfl.LayersModel,
  model: tfl.LayersModel,
  values: Map<string, OnnxValueLink>,
  replaced: Map<string, NewTensor>,
  sourceDims: Map<string, number[]>,
): { dims: Map<string, { rank: number; set: Map<number, number> }>; unknownStale: boolean } {
  const dims = new Map<string, { rank: number; set: Map<number, number> }>();
  let changed = false;
  for (const [name, v] of values) {
    const [before, after] = [valueShape(reference, v), valueShape(model, v)];
    if (before === undefined || after === undefined) continue;
    const update = new Map<number, number>();
    after.forEach((d, i) => {
      if (d !== before[i] && d >= 0) update.set(i, d);
    });
    if (update.size > 0) {
      dims.set(name, { rank: after.length, set: update });
      changed = true;
    }
  }
  for (const [name, t] of replaced) {
    const before = sourceDims.get(name) ?? [];
    if (before.join() === t.dims.join()) continue;
    dims.set(name, { rank: t.dims.length, set: new Map(t.dims.map((d, i) => [i, d])) });
    changed = true;
  }
  return { dims, unknownStale: changed };
}

/** The graph with the initializers (and Constant nodes) named in `replace` re-encoded in place, external-data
 * tensors inlined, and the shapes of `value_info`, inputs and outputs updated as {@link shapeUpdates} says. */
function rewriteGraph(
  graph: Uint8Array,
  replace: Map<string, NewTensor>,
  external: Map<string, Uint8Array>,
  shapes: ReturnType<typeof shapeUpdates>,
  known: Set<string>,
  { added, rewired }: Pick<ShapeEdits, 'added' | 'rewired'>,
  nodes: readonly OnnxNode[],
): Uint8Array {
  const w = new Writer();
  let nodeIndex = 0;
  for (const f of fieldsOf(graph)) {
    const payload = f.payload;
    if (payload === undefined) {
      w.bytes(f.raw);
      continue;
    }
    if (f.field === GRAPH_INITIALIZER) {
      const name = nameOf(payload, TENSOR_NAME);
      const t = replace.get(name);
      const data = external.get(name);
      if (t !== undefined) w.lengthDelimited(GRAPH_INITIALIZER, encodeTensor(name, t));
      else if (data !== undefined) w.lengthDelimited(GRAPH_INITIALIZER, inlineTensor(payload, data));
      else w.bytes(f.raw);
    } else if (f.field === GRAPH_NODE) {
      const inputs = rewired.get(nodes[nodeIndex++]!);
      const node = inputs === undefined ? payload : rewireInputs(payload, inputs);
      w.lengthDelimited(GRAPH_NODE, rewriteConstant(node, replace));
    } else if (f.field === GRAPH_INPUT || f.field === GRAPH_OUTPUT || f.field === GRAPH_VALUE_INFO) {
      const name = nameOf(payload, VALUE_INFO_NAME);
      const dims = shapes.dims.get(name);
      if (dims === undefined) {
        // a value_info of a value the importer does not see as one (folded into a layer) may be stale
        if (f.field === GRAPH_VALUE_INFO && shapes.unknownStale && !known.has(name)) continue;
        w.bytes(f.raw);
      } else if (rankOf(payload) === undefined) w.bytes(f.raw);
      else if (rankOf(payload) !== dims.rank) {
        // a shape of another rank than the model's: no hint rather than a wrong one (an input or output stays)
        if (f.field === GRAPH_VALUE_INFO) continue;
        w.bytes(f.raw);
      } else w.lengthDelimited(f.field, withDims(payload, dims.set));
    } else w.bytes(f.raw);
  }
  // new shape constants after the source's fields (the order of a graph's initializers is free)
  for (const [name, t] of added) w.lengthDelimited(GRAPH_INITIALIZER, encodeTensor(name, t));
  return w.finish();
}

/** A NodeProto with the inputs at the indices of `inputs` renamed. */
function rewireInputs(node: Uint8Array, inputs: Map<number, string>): Uint8Array {
  const w = new Writer();
  let k = 0;
  for (const f of fieldsOf(node)) {
    const name = f.field === NODE_INPUT && f.wire === WIRE_LEN ? inputs.get(k++) : undefined;
    if (name === undefined) w.bytes(f.raw);
    else w.lengthDelimited(NODE_INPUT, new TextEncoder().encode(name));
  }
  return w.finish();
}

/** A NodeProto: a Constant whose output is in `replace` gets the new tensor as its `value`; any other as it is. */
function rewriteConstant(node: Uint8Array, replace: Map<string, NewTensor>): Uint8Array {
  const output = fieldsOf(node).find((f) => f.field === NODE_OUTPUT)?.payload;
  const name = output === undefined ? '' : new TextDecoder().decode(output);
  const t = replace.get(name);
  if (t === undefined) return node;
  return mapField(node, NODE_ATTRIBUTE, (attribute) =>
    nameOf(attribute, ATTRIBUTE_NAME) === 'value'
      ? mapField(attribute, ATTRIBUTE_TENSOR, () => encodeTensor(name, t))
      : attribute,
  );
}

/** The external-data tensors of the source, read through `options.externalData`: refused up front, with the
 * writer's own message, when a file is not given. */
function externalTensors(parsed: OnnxModel, options: OnnxImportOptions): Map<string, Uint8Array> {
  const tensors = parsed.graph.initializers.filter((t) => t.external !== undefined);
  const missing = tensors.filter((t) => options.externalData?.(t.external!.location ?? '') === undefined);
  if (missing.length > 0) {
    const files = [...new Set(missing.map((t) => `'${t.external!.location ?? ''}'`))];
    throw new CrpError(
      'not-found',
      `the ONNX writer writes a self-contained .onnx, and the tensors ${listNames(missing.map((t) => t.name))} keep their data in the external file${files.length > 1 ? 's' : ''} ${files.join(', ')}, which ${options.externalData === undefined ? 'were not given' : 'were not found'}: writeOnnx reads them beside the source .onnx; encodeOnnx takes them as options.externalData`,
      { details: { tensors: missing.map((t) => t.name), files } },
    );
  }
  return new Map(tensors.map((t) => [t.name, externalBytes(t, options.externalData)]));
}

/**
 * The `.onnx` a model was imported from, with the model's weights: `source` (the original file's bytes) copied
 * field by field, the initializers of every Conv, Gemm/MatMul (+ Add) and BatchNormalization replaced by the
 * weights of the layer {@link importOnnx} made of it (a fine-tuned model, or a pruned one with fewer channels:
 * the initializers get the new shapes, a Gemm bias keeps its source's form, [units] or [1, units]).
 *
 * Where pruning changed a count the graph names elsewhere, that is rewritten too: a Reshape's target shape (an
 * initializer or a Constant node; -1, 0 and the batch axis kept, e.g. [-1, 128] becomes [-1, 112] when a channel
 * of a 4 x 4 map goes; a target a dynamic batch computes, Concat([N], [128]), at its constant part, rewritten in
 * place when only that Concat reads it, else as a new initializer the Concat reads; the same behind a Cast to
 * int64, tf2onnx's int32 shape computation, whose int32 constant stays int32), and the dims of `value_info`, graph inputs and outputs (the others, and symbolic ones,
 * kept). A `value_info` of a value the importer folded into a layer (a MatMul before its bias Add) is dropped when
 * any shape changed, as it cannot be checked. Tensors in external data files are written into the `.onnx`, so the
 * result is self-contained. Node names, graph input and output names, opsets and metadata stay as they are. The
 * result is imported again before it is returned, so a graph the importer would not read back is refused instead
 * of written.
 *
 * @example
 * ```ts
 * const model = importOnnx(bytes); // ... fine-tune, or exportPruned(model, mask) of @crp/pruning
 * const written = encodeOnnx(bytes, model);
 * ```
 *
 * @throws CrpError `not-found` for an external data file `options.externalData` does not give; `invalid-argument`
 *   when `model` lacks layers of the imported source; `unsupported-model` for a ViT, a changed weight the file
 *   holds as an element-wise constant, a non-zero bias (kernel) of a Gemm with beta (alpha) 0, an initializer
 *   two nodes share whose layers now hold different weights, a source whose
 *   weights are not float32 initializers, a Reshape's target shape that cannot be rewritten (shared by Reshapes
 *   that need different values, a folded Reshape of a constant among them, read by another operator, computed
 *   other than by a Concat with constant parts where the counts change, or needing two -1 where the pruned output
 *   leaves two dimensions open), or a written graph the importer refuses;
 *   and the errors of {@link importOnnx} for `source`
 */
export function encodeOnnx(
  source: Uint8Array,
  model: tfl.LayersModel,
  options: OnnxImportOptions = {},
): Uint8Array {
  // the cheap checks first, on the one parse of the source, so a refusal is the writer's own
  const parsed = parseOnnxModel(source);
  const external = externalTensors(parsed, options);
  const constOf = (t: OnnxTensor) => ({
    kind: 'const' as const,
    dims: t.dims,
    data: onnxTensorValues(t, external.get(t.name)),
    int: false,
  });
  if (isTransformerGraph(parsed.graph, constOf))
    throw new CrpError(
      'unsupported-model',
      'the ONNX writer writes CNNs; this model is a Vision Transformer (a product of two activations), whose weights it cannot put back',
    );
  const imported = importOnnxLinked(parsed, options);
  const reference = imported.model;
  let replace: Map<string, NewTensor>;
  let shapes: ReturnType<typeof shapeUpdates>;
  let shapeEdits: ShapeEdits;
  try {
    replace = weightReplacements(parsed, reference, imported.links, model);
    const byName = new Map(parsed.graph.initializers.map((t) => [t.name, t]));
    const notFloat = [...replace.keys()].filter((n) => byName.get(n)?.dataType !== ONNX_DATA_TYPES.FLOAT);
    if (notFloat.length > 0)
      throw new CrpError(
        'unsupported-model',
        `the weights ${listNames(notFloat.map((n) => `'${n}'`))} of ${listNames(parsed.graph.nodes.filter((n) => n.inputs.some((i) => notFloat.includes(i))).map(nodeLabel))} are not float32 initializers of the graph (a Constant node or another type); the writer replaces float32 initializers only`,
        { details: { tensors: notFloat } },
      );
    const sourceDims = new Map(parsed.graph.initializers.map((t) => [t.name, t.dims]));
    shapes = shapeUpdates(reference, model, imported.values, replace, sourceDims);
    shapeEdits = shapeReplacements(parsed, reference, model, imported);
    for (const [name, t] of shapeEdits.replace) replace.set(name, t);
  } finally {
    reference.dispose();
  }
  const known = new Set([...imported.values.keys(), ...parsed.graph.initializers.map((t) => t.name)]);
  for (const n of parsed.graph.nodes) if (n.opType === 'Constant') for (const o of n.outputs) known.add(o);
  const w = new Writer();
  for (const f of fieldsOf(source)) {
    if (f.field === MODEL_GRAPH && f.payload !== undefined)
      w.lengthDelimited(
        MODEL_GRAPH,
        rewriteGraph(f.payload, replace, external, shapes, known, shapeEdits, parsed.graph.nodes),
      );
    else w.bytes(f.raw);
  }
  const written = w.finish();
  // the written graph must be one the importer reads (shapes of the other constants consistent)
  try {
    importOnnx(written, options).dispose();
  } catch (err) {
    throw new CrpError(
      'unsupported-model',
      `the .onnx with the model's weights does not read back: ${(err as Error).message}; a constant of the graph may name a channel count the pruning changed`,
      { cause: err },
    );
  }
  return written;
}

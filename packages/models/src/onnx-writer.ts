import { CrpError, listNames } from '@crp/common';
import type * as tfl from '@tensorflow/tfjs-layers';
import { importOnnx, importOnnxLinked, type OnnxImportOptions } from './onnx-import.js';
import type { OnnxWeightLink } from './onnx-ops/context.js';
import { ONNX_DATA_TYPES, parseOnnxModel, Reader } from './onnx-proto.js';

// Writes a model back as the `.onnx` it was imported from: the source file's bytes, field by field, with the
// initializers of its weight layers replaced by the model's weights (a fine-tuned or pruned model). Everything
// else (nodes and their names, graph input and output names, opsets, producer, metadata) is copied byte for byte,
// so the written file is the user's graph. Field numbers from onnx/onnx.proto (the IR spec only ever adds fields).

const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const GRAPH_VALUE_INFO = 13;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_NAME = 8;
const TENSOR_RAW_DATA = 9;
const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/** A tensor to write: ONNX dims and float32 values in ONNX's (row-major NCHW) order. */
interface FloatTensor {
  dims: number[];
  data: Float32Array;
}

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

function encodeTensor(name: string, t: FloatTensor): Uint8Array {
  const w = new Writer();
  for (const d of t.dims) w.key(TENSOR_DIMS, WIRE_VARINT).varint(d);
  w.key(TENSOR_DATA_TYPE, WIRE_VARINT).varint(ONNX_DATA_TYPES.FLOAT);
  w.lengthDelimited(TENSOR_NAME, new TextEncoder().encode(name));
  const raw = new Uint8Array(t.data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < t.data.length; i++) view.setFloat32(i * 4, t.data[i]!, true);
  return w.lengthDelimited(TENSOR_RAW_DATA, raw).finish();
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

/** The ONNX initializers of one weight layer of `model`, by initializer name. */
function initializersOf(layer: tfl.layers.Layer, link: OnnxWeightLink): Map<string, FloatTensor> {
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
        out.set(link.bias, vector(b!, link.beta));
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
function replacements(source: Uint8Array, model: tfl.LayersModel, options: OnnxImportOptions) {
  const { model: reference, links } = importOnnxLinked(source, options);
  try {
    if (links.length === 0)
      throw new CrpError(
        'unsupported-model',
        'the ONNX writer writes CNNs; this model was read as a Vision Transformer, whose weights it cannot put back',
      );
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
        `the weights of ${listNames(unwritable)} changed, and the .onnx holds them as constants of element-wise operators, not as a layer's initializers; the writer puts back Conv, Gemm/MatMul and BatchNormalization weights only`,
        { details: { layers: unwritable } },
      );
    const out = new Map<string, FloatTensor>();
    for (const link of links) {
      for (const [name, t] of initializersOf(model.getLayer(link.layer), link)) out.set(name, t);
    }
    return out;
  } finally {
    reference.dispose();
  }
}

/** The graph with the initializers named in `replace` re-encoded in place, the graph inputs that list them
 * dropped (their shapes may have changed; an initializer needs no input from IR 4 on) and `value_info` dropped
 * (shape hints of intermediate values, stale after pruning; a reader infers them). */
function rewriteGraph(graph: Uint8Array, replace: Map<string, FloatTensor>): Uint8Array {
  const w = new Writer();
  for (const f of fieldsOf(graph)) {
    if (f.field === GRAPH_INITIALIZER && f.payload !== undefined) {
      const name = nameOf(f.payload, TENSOR_NAME);
      const t = replace.get(name);
      if (t !== undefined) {
        w.lengthDelimited(GRAPH_INITIALIZER, encodeTensor(name, t));
        continue;
      }
    }
    if (f.field === GRAPH_INPUT && f.payload !== undefined && replace.has(nameOf(f.payload, 1))) continue;
    if (f.field === GRAPH_VALUE_INFO) continue;
    w.bytes(f.raw);
  }
  return w.finish();
}

/**
 * The `.onnx` a model was imported from, with the model's weights: `source` (the original file's bytes) copied
 * field by field, the initializers of every Conv, Gemm/MatMul (+ Add) and BatchNormalization replaced by the
 * weights of the layer {@link importOnnx} made of it (a fine-tuned model, or a pruned one with fewer channels:
 * the initializers get the new shapes). Node names, graph input and output names, opsets and metadata stay as they
 * are; `value_info` (optional shape hints) is dropped. The result is imported again before it is returned, so a
 * graph whose other constants no longer fit the new channel counts (a Reshape to a fixed channel count) is refused
 * instead of written.
 *
 * @example
 * ```ts
 * const model = importOnnx(bytes); // ... fine-tune, or exportPruned(model, mask) of @crp/pruning
 * const written = encodeOnnx(bytes, model);
 * ```
 *
 * @throws CrpError `invalid-argument` when `model` lacks layers of the imported source; `unsupported-model` for
 *   a ViT, a changed weight the file holds as an element-wise constant, a non-zero bias (kernel) of a Gemm with
 *   beta (alpha) 0, a source whose weights are not float32 initializers, or a written graph the importer refuses; and the errors of {@link importOnnx} for `source`
 */
export function encodeOnnx(
  source: Uint8Array,
  model: tfl.LayersModel,
  options: OnnxImportOptions = {},
): Uint8Array {
  const replace = replacements(source, model, options);
  const parsed = parseOnnxModel(source);
  const byName = new Map(parsed.graph.initializers.map((t) => [t.name, t]));
  const notFloat = [...replace.keys()].filter((n) => byName.get(n)?.dataType !== ONNX_DATA_TYPES.FLOAT);
  if (notFloat.length > 0)
    throw new CrpError(
      'unsupported-model',
      `the weights ${listNames(notFloat)} are not float32 initializers of the graph (a Constant node or another type); the writer replaces float32 initializers only`,
      { details: { tensors: notFloat } },
    );
  const external = parsed.graph.initializers.filter((t) => t.external !== undefined && !replace.has(t.name));
  if (external.length > 0)
    throw new CrpError(
      'unsupported-model',
      `the tensors ${listNames(external.map((t) => t.name))} are kept in external data files; the writer writes self-contained files of models whose constants are in the .onnx`,
    );
  if (parsed.irVersion < 4 && parsed.graph.inputs.some((i) => replace.has(i.name)))
    throw new CrpError(
      'unsupported-model',
      `ONNX IR version ${parsed.irVersion} lists initializers as graph inputs; the writer needs IR 4 or later (torch.onnx.export of torch >= 1.3)`,
    );
  const w = new Writer();
  for (const f of fieldsOf(source)) {
    if (f.field === MODEL_GRAPH && f.payload !== undefined)
      w.lengthDelimited(MODEL_GRAPH, rewriteGraph(f.payload, replace));
    else w.bytes(f.raw);
  }
  const written = w.finish();
  // the written graph must be one the importer reads (shapes of the other constants consistent)
  try {
    importOnnx(written, options).dispose();
  } catch (err) {
    throw new CrpError(
      'unsupported-model',
      `the .onnx with the model's weights does not read back: ${(err as Error).message}; a constant of the graph (a Reshape's shape) may name a channel count the pruning changed`,
      { cause: err },
    );
  }
  return written;
}

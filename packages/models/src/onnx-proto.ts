import { CrpError } from '@crp/common';

// A protobuf wire-format reader for the few ONNX messages an importer needs (onnx/onnx.proto, field numbers
// from the ONNX IR spec, which only ever adds fields). Hand-written instead of protobufjs with a vendored
// onnx.proto: ~250 lines, no dependency and no generated code, browser-safe, and a truncated or damaged file
// is reported with the byte offset where it stops making sense. Unknown fields are skipped, as protobuf does.

/** ONNX TensorProto.DataType values read by the importer. */
export const ONNX_DATA_TYPES = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  DOUBLE: 11,
} as const;

/** An initializer or constant tensor. Data stays undecoded until `onnxTensorValues` (of `@crp/models/internal`) reads it. */
export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  rawData?: Uint8Array;
  floatData: number[];
  int32Data: number[];
  int64Data: number[];
  doubleData: number[];
  /** `data_location == EXTERNAL`: the data lives in another file (`location`, `offset`, `length`). */
  external?: Record<string, string>;
}

/** A node attribute (AttributeProto): the one field its `type` uses is set. */
export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: string;
  t?: OnnxTensor;
  floats: number[];
  ints: number[];
}

/** One operator call (NodeProto): inputs and outputs by value name, attributes by name. */
export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
}

/** A dimension: a number, a symbolic name (`dim_param`, e.g. `batch`), or null when neither is set. */
export type OnnxDim = number | string | null;

/** A graph input or output (ValueInfoProto): element type and shape. */
export interface OnnxValueInfo {
  name: string;
  elemType: number;
  /** undefined when the value has no shape information at all */
  shape?: OnnxDim[];
}

/** The computation (GraphProto): nodes in topological order, initializers (weights), inputs and outputs. */
export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  valueInfo: OnnxValueInfo[];
}

/** A decoded `.onnx` file (ModelProto), as {@link parseOnnxModel} returns it. */
export interface OnnxModel {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  /** opset version by domain ('' = the default ONNX domain) */
  opsets: Map<string, number>;
  graph: OnnxGraph;
}

const WIRE_VARINT = 0;
const WIRE_64 = 1;
const WIRE_LEN = 2;
const WIRE_32 = 5;

const utf8 = new TextDecoder();

export class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  fail(what: string): never {
    throw new CrpError(
      'corrupt-file',
      `not a valid ONNX model: ${what} at byte ${this.pos} of ${this.bytes.length} (the file may be truncated or not an .onnx file)`,
      { details: { offset: this.pos, bytes: this.bytes.length } },
    );
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint as a JavaScript number; int64 values (two's complement over 10 bytes) come out negative. */
  varint(): number {
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('a number runs past the end of its message');
      const b = this.bytes[this.pos++]!;
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (shift - 32);
      shift += 7;
      if ((b & 0x80) === 0) return (hi | 0) * 4294967296 + (lo >>> 0);
    }
    return this.fail('a number longer than 10 bytes');
  }

  key(): [number, number] {
    const k = this.varint();
    return [Math.floor(k / 8), k & 7];
  }

  length(): number {
    const n = this.varint();
    if (n < 0 || this.pos + n > this.end) this.fail(`a field of ${n} bytes runs past the end of its message`);
    return n;
  }

  sub(): Reader {
    const n = this.length();
    const r = new Reader(this.bytes, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  bytesField(): Uint8Array {
    const n = this.length();
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(): string {
    return utf8.decode(this.bytesField());
  }

  float32(): number {
    if (this.pos + 4 > this.end) this.fail('a float runs past the end of its message');
    const v = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  float64(): number {
    if (this.pos + 8 > this.end) this.fail('a double runs past the end of its message');
    const v = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return v;
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_64) this.pos += 8;
    else if (wire === WIRE_LEN) this.pos += this.length();
    else if (wire === WIRE_32) this.pos += 4;
    else this.fail(`an unknown wire type ${wire}`);
    if (this.pos > this.end) this.fail('a field runs past the end of its message');
  }

  /** A repeated scalar field: packed (one length-delimited run) or one value per key. */
  repeated(wire: number, out: number[], read: (r: Reader) => number): void {
    if (wire === WIRE_LEN) {
      const r = this.sub();
      while (!r.done()) out.push(read(r));
    } else out.push(read(this));
  }
}

function readTensor(r: Reader): OnnxTensor {
  const t: OnnxTensor = {
    name: '',
    dims: [],
    dataType: 0,
    floatData: [],
    int32Data: [],
    int64Data: [],
    doubleData: [],
  };
  let external = false;
  const entries: Record<string, string> = {};
  while (!r.done()) {
    const [field, wire] = r.key();
    switch (field) {
      case 1:
        r.repeated(wire, t.dims, (s) => s.varint());
        break;
      case 2:
        t.dataType = r.varint();
        break;
      case 4:
        r.repeated(wire, t.floatData, (s) => s.float32());
        break;
      case 5:
        r.repeated(wire, t.int32Data, (s) => s.varint());
        break;
      case 7:
        r.repeated(wire, t.int64Data, (s) => s.varint());
        break;
      case 8:
        t.name = r.string();
        break;
      case 9:
        t.rawData = r.bytesField();
        break;
      case 10:
        r.repeated(wire, t.doubleData, (s) => s.float64());
        break;
      case 13: {
        const e = r.sub();
        let key = '';
        let value = '';
        while (!e.done()) {
          const [f, w] = e.key();
          if (f === 1) key = e.string();
          else if (f === 2) value = e.string();
          else e.skip(w);
        }
        entries[key] = value;
        break;
      }
      case 14:
        external = r.varint() === 1;
        break;
      default:
        r.skip(wire);
    }
  }
  if (external) t.external = entries;
  return t;
}

function readAttribute(r: Reader): OnnxAttribute {
  const a: OnnxAttribute = { name: '', type: 0, floats: [], ints: [] };
  while (!r.done()) {
    const [field, wire] = r.key();
    switch (field) {
      case 1:
        a.name = r.string();
        break;
      case 2:
        a.f = r.float32();
        break;
      case 3:
        a.i = r.varint();
        break;
      case 4:
        a.s = r.string();
        break;
      case 5:
        a.t = readTensor(r.sub());
        break;
      case 7:
        r.repeated(wire, a.floats, (s) => s.float32());
        break;
      case 8:
        r.repeated(wire, a.ints, (s) => s.varint());
        break;
      case 20:
        a.type = r.varint();
        break;
      default:
        r.skip(wire);
    }
  }
  return a;
}

function readNode(r: Reader): OnnxNode {
  const n: OnnxNode = { name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: new Map() };
  while (!r.done()) {
    const [field, wire] = r.key();
    switch (field) {
      case 1:
        n.inputs.push(r.string());
        break;
      case 2:
        n.outputs.push(r.string());
        break;
      case 3:
        n.name = r.string();
        break;
      case 4:
        n.opType = r.string();
        break;
      case 5: {
        const a = readAttribute(r.sub());
        n.attributes.set(a.name, a);
        break;
      }
      case 7:
        n.domain = r.string();
        break;
      default:
        r.skip(wire);
    }
  }
  return n;
}

function readShape(r: Reader): OnnxDim[] {
  const dims: OnnxDim[] = [];
  while (!r.done()) {
    const [field, wire] = r.key();
    if (field !== 1) {
      r.skip(wire);
      continue;
    }
    const d = r.sub();
    let dim: OnnxDim = null;
    while (!d.done()) {
      const [f, w] = d.key();
      if (f === 1) dim = d.varint();
      else if (f === 2) dim = d.string();
      else d.skip(w);
    }
    dims.push(dim);
  }
  return dims;
}

function readValueInfo(r: Reader): OnnxValueInfo {
  const v: OnnxValueInfo = { name: '', elemType: 0 };
  while (!r.done()) {
    const [field, wire] = r.key();
    if (field === 1) v.name = r.string();
    else if (field === 2) {
      // TypeProto: tensor_type (1) -> elem_type (1), shape (2)
      const type = r.sub();
      while (!type.done()) {
        const [f, w] = type.key();
        if (f !== 1) {
          type.skip(w);
          continue;
        }
        const tt = type.sub();
        while (!tt.done()) {
          const [g, x] = tt.key();
          if (g === 1) v.elemType = tt.varint();
          else if (g === 2) v.shape = readShape(tt.sub());
          else tt.skip(x);
        }
      }
    } else r.skip(wire);
  }
  return v;
}

function readGraph(r: Reader): OnnxGraph {
  const g: OnnxGraph = { name: '', nodes: [], initializers: [], inputs: [], outputs: [], valueInfo: [] };
  while (!r.done()) {
    const [field, wire] = r.key();
    switch (field) {
      case 1:
        g.nodes.push(readNode(r.sub()));
        break;
      case 2:
        g.name = r.string();
        break;
      case 5:
        g.initializers.push(readTensor(r.sub()));
        break;
      case 11:
        g.inputs.push(readValueInfo(r.sub()));
        break;
      case 12:
        g.outputs.push(readValueInfo(r.sub()));
        break;
      case 13:
        g.valueInfo.push(readValueInfo(r.sub()));
        break;
      default:
        r.skip(wire);
    }
  }
  return g;
}

/** Decodes the bytes of an `.onnx` file (a serialised ModelProto). Throws `corrupt-file` for bytes that are not
 * one (truncated, damaged, another format). */
export function parseOnnxModel(bytes: Uint8Array): OnnxModel {
  const r = new Reader(bytes, 0, bytes.length);
  const model: OnnxModel = {
    irVersion: 0,
    producerName: '',
    producerVersion: '',
    opsets: new Map(),
    graph: undefined!,
  };
  let graph: OnnxGraph | undefined;
  while (!r.done()) {
    const [field, wire] = r.key();
    switch (field) {
      case 1:
        model.irVersion = r.varint();
        break;
      case 2:
        model.producerName = r.string();
        break;
      case 3:
        model.producerVersion = r.string();
        break;
      case 7:
        graph = readGraph(r.sub());
        break;
      case 8: {
        const o = r.sub();
        let domain = '';
        let version = 0;
        while (!o.done()) {
          const [f, w] = o.key();
          if (f === 1) domain = o.string();
          else if (f === 2) version = o.varint();
          else o.skip(w);
        }
        model.opsets.set(domain === 'ai.onnx' ? '' : domain, version);
        break;
      }
      default:
        if (field === 0) r.fail('a field number 0');
        r.skip(wire);
    }
  }
  if (graph === undefined || model.irVersion === 0 || model.opsets.size === 0) {
    throw new CrpError(
      'corrupt-file',
      `not a valid ONNX model: ${graph === undefined ? 'no graph' : model.irVersion === 0 ? 'no IR version' : 'no opset'} in ${bytes.length} bytes (the file may be truncated or not an .onnx file)`,
      { details: { bytes: bytes.length } },
    );
  }
  model.graph = graph;
  return model;
}

/** The values of a tensor as float64 numbers (floats, ints, int64s alike), from whichever field holds them.
 * `external` gives the bytes of a tensor stored outside the model file. */
export function onnxTensorValues(t: OnnxTensor, external?: Uint8Array): Float64Array {
  const count = t.dims.reduce((a, b) => a * b, 1);
  const raw = external ?? t.rawData;
  if (raw !== undefined && raw.length > 0) {
    const size = { 1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 11: 8 }[t.dataType];
    if (size === undefined) {
      throw new CrpError(
        'unsupported-format',
        `ONNX tensor '${t.name}' has data type ${t.dataType}; supported: float32, float64, int8, uint8, int32, int64`,
      );
    }
    if (raw.length !== count * size) {
      throw new CrpError(
        'corrupt-file',
        `ONNX tensor '${t.name}' of shape [${t.dims.join(', ')}] needs ${count * size} bytes, has ${raw.length}`,
      );
    }
    const view = new DataView(raw.buffer, raw.byteOffset, raw.length);
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      switch (t.dataType) {
        case 1:
          out[i] = view.getFloat32(4 * i, true);
          break;
        case 2:
          out[i] = view.getUint8(i);
          break;
        case 3:
          out[i] = view.getInt8(i);
          break;
        case 6:
          out[i] = view.getInt32(4 * i, true);
          break;
        case 7:
          out[i] = Number(view.getBigInt64(8 * i, true));
          break;
        default:
          out[i] = view.getFloat64(8 * i, true);
      }
    }
    return out;
  }
  const source =
    t.dataType === ONNX_DATA_TYPES.FLOAT
      ? t.floatData
      : t.dataType === ONNX_DATA_TYPES.INT64
        ? t.int64Data
        : t.dataType === ONNX_DATA_TYPES.DOUBLE
          ? t.doubleData
          : t.int32Data;
  if (source.length !== count) {
    throw new CrpError(
      'corrupt-file',
      `ONNX tensor '${t.name}' of shape [${t.dims.join(', ')}] holds ${source.length} values instead of ${count}`,
    );
  }
  return Float64Array.from(source);
}

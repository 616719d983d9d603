import { CrpError } from '@crp/common';
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { reverseAxes } from './torch-vgg.js';
import { crc32 } from './zip-archive.js';

/** One tensor of a state dict to write: float32 values, or int64 (a batch norm's `num_batches_tracked`). */
export interface TorchTensor {
  shape: readonly number[];
  data: Float32Array | BigInt64Array;
}

/** Pickle protocol 2, only the opcodes a state dict needs (what torch.save writes, without the memo). */
class PickleWriter {
  private readonly parts: number[] = [];
  private readonly text = new TextEncoder();
  op(code: number): this {
    this.parts.push(code);
    return this;
  }
  global(module: string, name: string): this {
    this.op(0x63); // GLOBAL
    for (const b of this.text.encode(`${module}\n${name}\n`)) this.parts.push(b);
    return this;
  }
  string(s: string): this {
    const bytes = this.text.encode(s);
    this.op(0x58); // BINUNICODE
    this.uint32(bytes.length);
    for (const b of bytes) this.parts.push(b);
    return this;
  }
  int(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new Error(`cannot pickle ${n}`);
    if (n < 256) return this.op(0x4b).op(n); // BININT1
    this.op(0x4a); // BININT
    return this.uint32(n);
  }
  tuple(values: readonly number[]): this {
    this.op(0x28); // MARK
    for (const v of values) this.int(v);
    return this.op(0x74); // TUPLE
  }
  private uint32(n: number): this {
    this.parts.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
    return this;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** Row-major strides of a shape. */
function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

/** The pickled `OrderedDict` of `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`
 * calls, storage `k` being the persistent id ('storage', FloatStorage | LongStorage, 'k', 'cpu', numel). */
function pickleStateDict(names: readonly string[], tensors: readonly TorchTensor[]): Uint8Array {
  const p = new PickleWriter();
  p.op(0x80).op(2); // PROTO 2
  p.global('collections', 'OrderedDict').op(0x29).op(0x52); // OrderedDict()
  p.op(0x28); // MARK
  tensors.forEach((t, k) => {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    p.string(names[k]!);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.op(0x28); // MARK: the arguments
    p.op(0x28).string('storage');
    p.global('torch', t.data instanceof BigInt64Array ? 'LongStorage' : 'FloatStorage');
    p.string(String(k)).string('cpu').int(numel).op(0x74); // TUPLE
    p.op(0x51); // BINPERSID
    p.int(0).tuple(t.shape).tuple(stridesOf(t.shape)).op(0x89); // offset, size, stride, NEWFALSE
    p.global('collections', 'OrderedDict').op(0x29).op(0x52); // backward hooks: OrderedDict()
    p.op(0x74).op(0x52); // TUPLE, REDUCE
  });
  p.op(0x75); // SETITEMS
  p.op(0x2e); // STOP
  return p.bytes();
}

/** A zip archive of stored entries whose data start at multiples of 64 bytes, as torch.save aligns them. */
function zipStored(files: readonly { name: string; data: Uint8Array }[]): Uint8Array {
  const text = new TextEncoder();
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const f of files) {
    const name = text.encode(f.name);
    const crc = crc32(f.data);
    // pad with an extra field ('FB', torch's own id) so that the data begin on a 64-byte boundary
    const pad = (64 - ((offset + 30 + name.length + 4) % 64)) % 64;
    const extraLength = pad + 4;
    const local = new Uint8Array(30 + name.length + extraLength);
    const v = new DataView(local.buffer);
    v.setUint32(0, 0x04034b50, true);
    v.setUint16(4, 20, true);
    v.setUint16(8, 0, true); // stored
    v.setUint32(14, crc, true);
    v.setUint32(18, f.data.length, true);
    v.setUint32(22, f.data.length, true);
    v.setUint16(26, name.length, true);
    v.setUint16(28, extraLength, true);
    local.set(name, 30);
    v.setUint16(30 + name.length, 0x4246, true);
    v.setUint16(32 + name.length, pad, true);
    const entry = new Uint8Array(46 + name.length);
    const c = new DataView(entry.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 20, true);
    c.setUint16(6, 20, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, f.data.length, true);
    c.setUint32(24, f.data.length, true);
    c.setUint16(28, name.length, true);
    c.setUint32(42, offset, true);
    entry.set(name, 46);
    central.push(entry);
    chunks.push(local, f.data);
    offset += local.length + f.data.length;
  }
  const cdSize = central.reduce((a, e) => a + e.length, 0);
  const end = new Uint8Array(22);
  const e = new DataView(end.buffer);
  e.setUint32(0, 0x06054b50, true);
  e.setUint16(8, files.length, true);
  e.setUint16(10, files.length, true);
  e.setUint32(12, cdSize, true);
  e.setUint32(16, offset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let at = 0;
  for (const part of [...chunks, ...central, end]) {
    out.set(part, at);
    at += part.length;
  }
  if (out.length > 0xffffffff) {
    throw new CrpError(
      'invalid-argument',
      'the state dict is larger than 4 GB, which needs zip64; not supported',
    );
  }
  return out;
}

/**
 * Encodes named tensors as the bytes of a `.pth` file that `torch.load` reads into an `OrderedDict` of tensors
 * (a `state_dict`): PyTorch's zip format (`archive/data.pkl`, `archive/data/<k>`, `archive/version`), float32 and
 * int64 storages, little-endian, written deterministically (the same tensors give the same bytes).
 */
export function encodeTorchStateDict(tensors: ReadonlyMap<string, TorchTensor>): Uint8Array {
  const names = [...tensors.keys()];
  const list = [...tensors.values()];
  for (const [name, t] of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) {
      throw new CrpError(
        'invalid-argument',
        `tensor '${name}' has shape [${t.shape.join(', ')}] (${numel} values) but ${t.data.length} values`,
      );
    }
  }
  const files = [
    { name: 'archive/data.pkl', data: pickleStateDict(names, list) },
    { name: 'archive/byteorder', data: new TextEncoder().encode('little') },
    ...list.map((t, k) => ({
      name: `archive/data/${k}`,
      data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    })),
    { name: 'archive/version', data: new TextEncoder().encode('3\n') },
  ];
  return zipStored(files);
}

/** The input shape of a layer's (first) inbound call, without the batch axis. */
function inputShapeOf(layer: tfl.layers.Layer): number[] {
  const input = layer.input as tfl.SymbolicTensor | tfl.SymbolicTensor[];
  const s = Array.isArray(input) ? input[0]!.shape : input.shape;
  return s.slice(1).map((d) => d ?? -1);
}

/**
 * The `state_dict` of a model whose layer names are PyTorch's (as the VGG and ResNet importers of this package
 * give them, after fine-tuning or `exportPruned`): per Conv2D `<name>.weight` [out, in, kh, kw] (and `.bias`; a
 * GroupedConv2D's is [out, in / groups, kh, kw], as torch's `Conv2d(groups)`),
 * per Dense `<name>.weight` [out, in] (rows of a Dense after a Flatten back in torch's (c, h, w) order) and
 * `.bias`, per BatchNormalization `weight`, `bias`, `running_mean`, `running_var` and `num_batches_tracked` (0).
 * Layers without weights (activations, pools, padding, Add) have no tensors, as in PyTorch.
 *
 * @throws CrpError `unsupported-model` for a layer with weights of another kind (named, with the supported kinds)
 */
export function torchStateDictOf(model: tfl.LayersModel): Map<string, TorchTensor> {
  const out = new Map<string, TorchTensor>();
  const values = (t: tf.Tensor) => t.dataSync() as Float32Array;
  for (const layer of model.layers) {
    const weights = layer.getWeights();
    if (weights.length === 0) continue;
    const name = layer.name;
    const cls = layer.getClassName();
    const config = layer.getConfig();
    // a GroupedConv2D kernel [kh, kw, in / groups, out] is torch's Conv2d(groups) weight [out, in / groups, kh, kw]
    if (cls === 'Conv2D' || cls === 'GroupedConv2D') {
      const [kh, kw, cin, cout] = weights[0]!.shape as [number, number, number, number];
      out.set(`${name}.weight`, {
        shape: [cout, cin, kh, kw],
        data: reverseAxes(values(weights[0]!), kh * kw, cin, cout),
      });
      if (config.useBias !== false && weights[1] !== undefined) {
        out.set(`${name}.bias`, { shape: [cout], data: Float32Array.from(values(weights[1])) });
      }
    } else if (cls === 'Dense') {
      const [nin, nout] = weights[0]!.shape as [number, number];
      const before = (layer.inboundNodes[0]?.inboundLayers ?? [])[0];
      const flat = before?.getClassName() === 'Flatten' ? inputShapeOf(before) : undefined;
      const data =
        flat !== undefined && flat.length === 3
          ? reverseAxes(values(weights[0]!), flat[0]! * flat[1]!, flat[2]!, nout)
          : reverseAxes(values(weights[0]!), nin, 1, nout);
      out.set(`${name}.weight`, { shape: [nout, nin], data });
      if (config.useBias !== false && weights[1] !== undefined) {
        out.set(`${name}.bias`, { shape: [nout], data: Float32Array.from(values(weights[1])) });
      }
    } else if (cls === 'BatchNormalization') {
      let i = 0;
      const c = weights[weights.length - 1]!.shape[0]!;
      const gamma = config.scale !== false ? values(weights[i++]!) : new Float32Array(c).fill(1);
      const beta = config.center !== false ? values(weights[i++]!) : new Float32Array(c);
      out.set(`${name}.weight`, { shape: [c], data: Float32Array.from(gamma) });
      out.set(`${name}.bias`, { shape: [c], data: Float32Array.from(beta) });
      out.set(`${name}.running_mean`, { shape: [c], data: Float32Array.from(values(weights[i++]!)) });
      out.set(`${name}.running_var`, { shape: [c], data: Float32Array.from(values(weights[i++]!)) });
      out.set(`${name}.num_batches_tracked`, { shape: [], data: new BigInt64Array(1) });
    } else {
      throw new CrpError(
        'unsupported-model',
        `layer '${name}' (${cls}) has weights that have no PyTorch counterpart here; writable: Conv2D, GroupedConv2D, Dense, BatchNormalization`,
      );
    }
  }
  return out;
}

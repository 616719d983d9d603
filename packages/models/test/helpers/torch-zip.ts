/**
 * Hand-made `.pth` files for the fuzz test: a small zip writer (stored or deflated entries, declared sizes that
 * may lie, zip64 sizes), a pickle of one tensor as torch.save writes it, and mutations that know the grammar of
 * both (zip header fields, pickle opcodes and their arguments). A mutated pickle is put back into a zip with
 * correct CRCs, so the reader gets past the archive and runs the pickle.
 */
import * as zlib from 'node:zlib';
import { concat, INTERESTING_U32, type Mutator, pick, randomInt, writeU32 } from '@crp/testing/fuzz';
import { ZipArchive } from '../../src/zip-archive.js';

/** CRC-32 (IEEE) from node:zlib, not from the reader under test. */
export function crc32(bytes: Uint8Array): number {
  return zlib.crc32(bytes) >>> 0;
}

/** One entry of {@link writeZip}. */
export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** 8 deflates `data`; default 0 (stored, as torch.save writes). */
  method?: 0 | 8;
  /** The uncompressed size the headers declare (default: the true one); above 2^32 - 1 it goes to zip64. */
  declaredSize?: number;
}

function u16(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff];
}
function u32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}
function u64(v: number): number[] {
  return [...u32(v % 2 ** 32), ...u32(Math.floor(v / 2 ** 32))];
}

/** A single-disk zip archive of the entries, laid out as torch.save lays it out. */
export function writeZip(entries: readonly ZipInput[]): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.name);
    const method = e.method ?? 0;
    const body = method === 8 ? new Uint8Array(zlib.deflateRawSync(e.data)) : e.data;
    const size = e.declaredSize ?? e.data.length;
    const zip64 = size > 0xffffffff;
    const extra = zip64 ? [...u16(1), ...u16(8), ...u64(size)] : [];
    const fields = [...u16(method), 0, 0, 0, 0, ...u32(crc32(e.data)), ...u32(body.length)];
    const sizeField = u32(zip64 ? 0xffffffff : size);
    const local = new Uint8Array([
      ...u32(0x04034b50),
      ...u16(20),
      ...u16(0),
      ...fields,
      ...sizeField,
      ...u16(name.length),
      ...u16(0),
      ...name,
    ]);
    const central = new Uint8Array([
      ...u32(0x02014b50),
      ...u16(45),
      ...u16(zip64 ? 45 : 20),
      ...u16(0),
      ...fields,
      ...sizeField,
      ...u16(name.length),
      ...u16(extra.length),
      ...u16(0),
      ...u16(0),
      ...u16(0),
      ...u32(0),
      ...u32(offset),
      ...name,
      ...extra,
    ]);
    locals.push(local, body);
    centrals.push(central);
    offset += local.length + body.length;
  }
  const cd = concat(...centrals);
  const end = new Uint8Array([
    ...u32(0x06054b50),
    ...u16(0),
    ...u16(0),
    ...u16(entries.length),
    ...u16(entries.length),
    ...u32(cd.length),
    ...u32(offset),
    ...u16(0),
  ]);
  return concat(...locals, cd, end);
}

/** Pickle opcodes with a fixed-size argument, by opcode: the argument's bytes. */
const FIXED: Record<number, number> = {
  128: 1, // PROTO
  149: 8, // FRAME
  74: 4, // BININT
  75: 1, // BININT1
  77: 2, // BININT2
  71: 8, // BINFLOAT
  113: 1, // BINPUT
  114: 4, // LONG_BINPUT
  104: 1, // BINGET
  106: 4, // LONG_BINGET
};
/** Opcodes followed by a length and that many bytes: the length field's size. */
const COUNTED: Record<number, number> = {
  140: 1, // SHORT_BINUNICODE
  88: 4, // BINUNICODE
  141: 8, // BINUNICODE8
  67: 1, // SHORT_BINBYTES
  66: 4, // BINBYTES
  142: 8, // BINBYTES8
  85: 1, // SHORT_BINSTRING
  84: 4, // BINSTRING
  138: 1, // LONG1
  139: 4, // LONG4
};
/** Opcodes followed by newline-terminated text: how many lines. */
const LINES: Record<number, number> = {
  99: 2,
  105: 2,
  73: 1,
  76: 1,
  70: 1,
  83: 1,
  86: 1,
  112: 1,
  103: 1,
  80: 1,
};

/** The three tables by opcode, as arrays (the walk runs on every mutation). */
const byOpcode = (table: Record<number, number>) => {
  const out = new Uint8Array(256);
  for (const [code, v] of Object.entries(table)) out[Number(code)] = v;
  return out;
};
const FIXED_SIZE = byOpcode(FIXED);
const COUNTED_SIZE = byOpcode(COUNTED);
const LINES_COUNT = byOpcode(LINES);

/** Every opcode the reader knows, to swap one for another. */
const OPCODES = [
  0x28, 0x2e, 0x30, 0x31, 0x32, 0x46, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55,
  0x56, 0x58, 0x61, 0x62, 0x63, 0x64, 0x7d, 0x65, 0x67, 0x68, 0x69, 0x6a, 0x6c, 0x5d, 0x6f, 0x70, 0x71, 0x72,
  0x73, 0x74, 0x29, 0x75, 0x47, 0x80, 0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x42, 0x43, 0x8c, 0x8d,
  0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96,
];

/** One opcode of a pickle: where it starts, where its argument starts, where it ends. */
interface Op {
  at: number;
  arg: number;
  end: number;
  code: number;
}

/** The opcodes of a pickle, as far as they can be walked (a damaged pickle gives a prefix). */
export function pickleOps(p: Uint8Array): Op[] {
  const ops: Op[] = [];
  let at = 0;
  while (at < p.length) {
    const code = p[at]!;
    let end = at + 1;
    if (FIXED_SIZE[code]! > 0) end += FIXED_SIZE[code]!;
    else if (COUNTED_SIZE[code]! > 0) {
      const k = COUNTED_SIZE[code]!;
      let len = 0;
      for (let i = k - 1; i >= 0; i--) len = len * 256 + (p[end + i] ?? 0);
      end += k + len;
    } else if (LINES_COUNT[code]! > 0) {
      for (let l = 0; l < LINES_COUNT[code]!; l++) {
        const nl = p.indexOf(0x0a, end);
        end = nl < 0 ? p.length : nl + 1;
      }
    }
    if (end > p.length) break;
    ops.push({ at, arg: at + 1, end, code });
    if (code === 0x2e) break;
    at = end;
  }
  return ops;
}

/** Mutations of a pickle that keep it walkable: swap, drop or duplicate an opcode, or break its argument. */
export const pickleMutators: Readonly<Record<string, Mutator>> = {
  swapOpcode: (p, rng) => {
    const ops = pickleOps(p);
    if (ops.length > 0) p[pick(rng, ops).at] = pick(rng, OPCODES);
    return p;
  },
  dropOpcode: (p, rng) => {
    const ops = pickleOps(p);
    if (ops.length === 0) return p;
    const op = pick(rng, ops);
    return concat(p.subarray(0, op.at), p.subarray(op.end));
  },
  duplicateOpcode: (p, rng) => {
    const ops = pickleOps(p);
    if (ops.length === 0) return p;
    const op = pick(rng, ops);
    return concat(p.subarray(0, op.end), p.subarray(op.at, op.end), p.subarray(op.end));
  },
  /** A length, index, size, stride, offset or numel gone wrong. */
  breakArgument: (p, rng) => {
    const ops = pickleOps(p).filter((o) => o.code in FIXED || o.code in COUNTED);
    if (ops.length === 0) return p;
    const op = pick(rng, ops);
    const width = FIXED[op.code] ?? COUNTED[op.code]!;
    const value = pick(rng, INTERESTING_U32);
    if (width === 1) p[op.arg] = value & 0xff;
    else if (width === 2) {
      p[op.arg] = value & 0xff;
      p[op.arg + 1] = (value >>> 8) & 0xff;
    } else writeU32(p, op.arg, value);
    return p;
  },
};

/** The entries of a zip, or undefined when it is not readable. */
function entriesOf(bytes: Uint8Array): ZipInput[] | undefined {
  try {
    const zip = ZipArchive.parse(bytes);
    return zip.names.map((name) => ({ name, data: zip.read(name).slice() }));
  } catch {
    return undefined;
  }
}

/** Mutates the pickle of a torch.save zip and writes the zip again with correct CRCs. */
function inPickle(mutate: Mutator): Mutator {
  return (bytes, rng) => {
    const entries = entriesOf(bytes);
    const pkl = entries?.find((e) => e.name.endsWith('data.pkl'));
    if (entries === undefined || pkl === undefined) return bytes;
    pkl.data = mutate(pkl.data, rng);
    return writeZip(entries);
  };
}

/** Header fields of zip records that hold sizes, counts, lengths and offsets: signature -> field offsets. */
const ZIP_FIELDS: [number[], number[]][] = [
  [
    [0x50, 0x4b, 0x03, 0x04],
    [18, 22, 26, 28],
  ], // local: compressed size, size, name and extra length
  [
    [0x50, 0x4b, 0x01, 0x02],
    [10, 20, 24, 28, 30, 32, 42],
  ], // central: method, sizes, lengths, local offset
  [
    [0x50, 0x4b, 0x05, 0x06],
    [4, 8, 10, 12, 16, 20],
  ], // end of central directory
  [
    [0x50, 0x4b, 0x06, 0x06],
    [24, 32, 40, 48],
  ], // zip64 end: counts, size, offset
  [[0x50, 0x4b, 0x06, 0x07], [8]], // zip64 locator: where the zip64 end is
];

function findAllIn(bytes: Uint8Array, sig: number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= bytes.length; i++) {
    if (bytes[i] === sig[0] && bytes[i + 1] === sig[1] && bytes[i + 2] === sig[2] && bytes[i + 3] === sig[3])
      out.push(i);
  }
  return out;
}

/** Mutations of a `.pth` file: zip header fields, and the pickle inside (re-zipped). */
export const pthMutators: Readonly<Record<string, Mutator>> = {
  zipField: (b, rng) => {
    const [sig, fields] = pick(rng, ZIP_FIELDS);
    const at = findAllIn(b, sig);
    if (at.length > 0) writeU32(b, pick(rng, at) + pick(rng, fields), pick(rng, INTERESTING_U32));
    return b;
  },
  zipField16: (b, rng) => {
    const [sig, fields] = pick(rng, ZIP_FIELDS);
    const at = findAllIn(b, sig);
    if (at.length > 0) {
      const p = pick(rng, at) + pick(rng, fields);
      const v = pick(rng, INTERESTING_U32);
      if (p + 1 < b.length) {
        b[p] = v & 0xff;
        b[p + 1] = (v >>> 8) & 0xff;
      }
    }
    return b;
  },
  ...Object.fromEntries(Object.entries(pickleMutators).map(([k, m]) => [`pickle.${k}`, inPickle(m)])),
  /** Drops one entry (a storage, the byteorder record, the pickle itself). */
  dropEntry: (b, rng) => {
    const entries = entriesOf(b);
    if (entries === undefined || entries.length === 0) return b;
    entries.splice(randomInt(rng, entries.length), 1);
    return writeZip(entries);
  },
};

/** Builds protocol-2 pickles by hand. */
export class PickleWriter {
  private readonly parts: number[] = [0x80, 2];
  private readonly enc = new TextEncoder();
  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...this.enc.encode(`${module}\n${name}\n`));
  }
  str(s: string): this {
    const b = this.enc.encode(s);
    return this.op(0x58, ...u32(b.length), ...b);
  }
  /** Any non-negative integer: BININT below 2^31, LONG1 above. */
  int(v: number): this {
    if (v < 2 ** 31) return this.op(0x4a, ...u32(v));
    let big = BigInt(v);
    const bytes: number[] = [];
    while (big > 0n || (bytes.length > 0 && bytes[bytes.length - 1]! & 0x80)) {
      bytes.push(Number(big & 0xffn));
      big >>= 8n;
    }
    return this.op(0x8a, bytes.length, ...bytes);
  }
  tuple(values: readonly number[]): this {
    this.op(0x28);
    for (const v of values) this.int(v);
    return this.op(0x74);
  }
  bytes(): Uint8Array {
    return new Uint8Array([...this.parts, 0x2e]);
  }
}

/** What {@link tensorPth} puts in its one tensor. */
export interface TensorSpec {
  /** Elements the storage claims (the persistent id's numel). */
  numel: number;
  shape: readonly number[];
  strides: readonly number[];
  offset?: number;
  /** The bytes of `archive/data/0` (default: numel float32 zeros, when small). */
  data?: Uint8Array;
  /** Overrides of the data entry (method, declared size). */
  entry?: Partial<ZipInput>;
}

/** The pickle of `{'w': tensor}` as torch.save writes it (an OrderedDict of one _rebuild_tensor_v2). */
export function tensorPickle(spec: TensorSpec): Uint8Array {
  const w = new PickleWriter();
  w.global('collections', 'OrderedDict').op(0x29, 0x52); // OrderedDict()
  w.str('w').global('torch._utils', '_rebuild_tensor_v2').op(0x28); // key, fn, MARK (args)
  w.op(0x28)
    .str('storage')
    .global('torch', 'FloatStorage')
    .str('0')
    .str('cpu')
    .int(spec.numel)
    .op(0x74, 0x51);
  w.int(spec.offset ?? 0)
    .tuple(spec.shape)
    .tuple(spec.strides);
  w.op(0x89).global('collections', 'OrderedDict').op(0x29, 0x52); // requires_grad, backward hooks
  w.op(0x74, 0x52, 0x73); // TUPLE, REDUCE, SETITEM
  return w.bytes();
}

/** A torch.save zip of {@link tensorPickle}. */
export function tensorPth(spec: TensorSpec): Uint8Array {
  const data = spec.data ?? new Uint8Array(spec.numel * 4);
  return writeZip([
    { name: 'archive/data.pkl', data: tensorPickle(spec) },
    { name: 'archive/data/0', data, ...spec.entry },
    { name: 'archive/version', data: new TextEncoder().encode('3\n') },
  ]);
}

/** A torch.save zip around any pickle (no storages). */
export function picklePth(pickle: Uint8Array): Uint8Array {
  return writeZip([{ name: 'archive/data.pkl', data: pickle }]);
}

import { CrpError } from '@crp/common';

/** Element types of the safetensors format that {@link SafetensorsFile.float32} can convert. */
export const SAFETENSORS_DTYPES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
} as const;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

/** Where one tensor lies in a safetensors file. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Offset of the first byte in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** IEEE 754 half precision to a JS number. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/**
 * A parsed safetensors file (the format of Hugging Face's `safetensors`, written by `torch`'s
 * `save_file`): an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
 * byte range, then the raw little-endian data. Tensors are decoded on demand.
 */
export class SafetensorsFile {
  /** The free-form string map `__metadata__` of the header (empty if absent). */
  readonly metadata: Readonly<Record<string, string>>;
  private readonly entries: Map<string, SafetensorsEntry>;

  private constructor(
    private readonly bytes: Uint8Array,
    metadata: Record<string, string>,
    entries: Map<string, SafetensorsEntry>,
  ) {
    this.metadata = metadata;
    this.entries = entries;
  }

  /**
   * Parses the bytes of a safetensors file (they are kept, not copied).
   *
   * @throws CrpError `corrupt-file` for a truncated file, a header that is not JSON, an unknown dtype, a
   *   `__metadata__` that is not a map of strings, or a tensor whose byte range does not match its shape or lies
   *   outside the file.
   */
  static parse(bytes: Uint8Array, source = 'safetensors data'): SafetensorsFile {
    const fail = (what: string): never => {
      throw new CrpError('corrupt-file', `${source} is not a valid safetensors file: ${what}`);
    };
    if (bytes.byteLength < 8) fail(`it has ${bytes.byteLength} bytes, fewer than the 8-byte header length`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const headerLength = Number(view.getBigUint64(0, true));
    if (headerLength > bytes.byteLength - 8) {
      fail(`the header length says ${headerLength} bytes but only ${bytes.byteLength - 8} follow`);
    }
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
    } catch (err) {
      fail(`its header is not JSON (${err instanceof Error ? err.message : String(err)})`);
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header))
      fail('its header is not an object');
    const dataStart = 8 + headerLength;
    const dataLength = bytes.byteLength - dataStart;
    const entries = new Map<string, SafetensorsEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        // the format's free-form map of strings (null or absent: none)
        const ok =
          raw === null ||
          (typeof raw === 'object' &&
            !Array.isArray(raw) &&
            Object.values(raw).every((v) => typeof v === 'string'));
        if (!ok) fail(`its __metadata__ is ${JSON.stringify(raw).slice(0, 80)}; a map of strings is needed`);
        metadata = (raw ?? {}) as Record<string, string>;
        continue;
      }
      const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const dtype = info?.dtype as SafetensorsDtype;
      if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPES)) {
        fail(
          `tensor '${name}' has dtype ${JSON.stringify(info?.dtype)}; valid: ${Object.keys(SAFETENSORS_DTYPES).join(', ')}`,
        );
      }
      const shape = info.shape;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
        fail(
          `tensor '${name}' has the shape ${JSON.stringify(shape)}; a list of non-negative integers is needed`,
        );
      }
      const offsets = info.data_offsets;
      if (
        !Array.isArray(offsets) ||
        offsets.length !== 2 ||
        !offsets.every((o) => Number.isInteger(o)) ||
        offsets[0] < 0 ||
        offsets[1] < offsets[0] ||
        offsets[1] > dataLength
      ) {
        fail(
          `tensor '${name}' has data_offsets ${JSON.stringify(offsets)} outside the ${dataLength} data bytes`,
        );
      }
      const [begin, end] = offsets as [number, number];
      const count = (shape as number[]).reduce((a, b) => a * b, 1);
      if (end - begin !== count * SAFETENSORS_DTYPES[dtype]) {
        fail(
          `tensor '${name}' (${dtype}, shape [${(shape as number[]).join(', ')}]) needs ${count * SAFETENSORS_DTYPES[dtype]} bytes but has ${end - begin}`,
        );
      }
      entries.set(name, {
        name,
        dtype,
        shape: shape as number[],
        byteOffset: dataStart + begin,
        byteLength: end - begin,
      });
    }
    return new SafetensorsFile(bytes, metadata, entries);
  }

  /** Tensor names in file order. */
  get names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /**
   * Dtype, shape and byte range of a tensor.
   *
   * @throws CrpError `invalid-argument` for an unknown name (the message lists the names).
   */
  entry(name: string): SafetensorsEntry {
    const entry = this.entries.get(name);
    if (entry === undefined) {
      const names = this.names;
      const shown =
        names.length > 30
          ? `${names.slice(0, 30).join(', ')}, ... (${names.length - 30} more)`
          : names.join(', ');
      throw new CrpError('invalid-argument', `no tensor '${name}' in the safetensors file; it has: ${shown}`);
    }
    return entry;
  }

  /** The raw bytes of a tensor (a view into the file, not a copy). */
  raw(name: string): Uint8Array {
    const e = this.entry(name);
    return this.bytes.subarray(e.byteOffset, e.byteOffset + e.byteLength);
  }

  /**
   * A tensor's values as a new float32 array in the file's (row-major) order: F32 as is, F16 and BF16 widened
   * exactly, F64 and integers rounded to the nearest float32. With `{ copy: false }` an aligned F32 tensor is a
   * view into the file's bytes instead (read it, do not change it).
   */
  float32(name: string, options: { copy?: boolean } = {}): Float32Array {
    const e = this.entry(name);
    const raw = this.raw(name);
    const n = e.byteLength / SAFETENSORS_DTYPES[e.dtype];
    if (e.dtype === 'F32' && little && options.copy === false && raw.byteOffset % 4 === 0) {
      return new Float32Array(raw.buffer, raw.byteOffset, n);
    }
    if (e.dtype === 'F32' && little) {
      // a copy (ArrayBuffer.slice), also when the bytes are a Node Buffer whose slice() would be a view
      return new Float32Array(
        raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer,
      );
    }
    const out = new Float32Array(n);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    switch (e.dtype) {
      case 'F32':
        for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
        break;
      case 'F16':
        for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
        break;
      case 'BF16': {
        const bits = new Uint32Array(out.buffer);
        for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
        break;
      }
      case 'F64':
        for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
        break;
      case 'I64':
        for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(8 * i, true));
        break;
      case 'I32':
        for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
        break;
      case 'I16':
        for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true);
        break;
      case 'I8':
        for (let i = 0; i < n; i++) out[i] = view.getInt8(i);
        break;
      case 'U8':
      case 'BOOL':
        for (let i = 0; i < n; i++) out[i] = view.getUint8(i);
        break;
    }
    return out;
  }
}

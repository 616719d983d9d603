import { CrpError } from '@crp/common';

/** One file of a {@link ZipArchive}, as its central directory describes it. */
export interface ZipEntry {
  readonly name: string;
  /** 0 = stored (what torch.save writes), 8 = deflated. */
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  readonly localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX32 = 0xffffffff;

/** Native zlib functions, given by `@crp/models/node` (node:zlib); in a browser the JavaScript fallbacks. */
interface NativeZip {
  crc32?: (bytes: Uint8Array) => number;
  /** Inflates, refusing (throwing) output beyond `maxOutputLength` bytes. */
  inflateRawSync?: (bytes: Uint8Array, options: { maxOutputLength: number }) => Uint8Array;
}

/** Deflate expands at most 1032:1 (258 bytes per 2-bit match code), plus a little for tiny streams. */
const MAX_DEFLATE_RATIO = 1032;

/**
 * Refuses an entry whose sizes the file cannot back: data beyond the end, a stored entry whose two sizes differ,
 * a deflated one that declares more than deflate can expand to. So no read allocates more than the file allows.
 */
function checkSizes(
  name: string,
  method: number,
  compressedSize: number,
  size: number,
  localHeaderOffset: number,
  n: number,
  fail: (what: string) => never,
): void {
  if (localHeaderOffset + 30 + compressedSize > n) {
    fail(
      `entry '${name}' declares ${compressedSize} bytes of data at byte ${localHeaderOffset}, beyond the end (${n} bytes): the file is truncated`,
    );
  }
  if (method === 0 && size !== compressedSize) {
    fail(`entry '${name}' is stored (not compressed) but declares ${size} bytes in ${compressedSize}`);
  }
  if (method === 8 && size > MAX_DEFLATE_RATIO * compressedSize + MAX_DEFLATE_RATIO) {
    fail(
      `entry '${name}' declares ${size} bytes from ${compressedSize} deflated bytes; deflate expands at most ${MAX_DEFLATE_RATIO}:1`,
    );
  }
}
const native: NativeZip = {};

/** Lets the zip reader use node:zlib (native CRC-32, inflate of deflated entries). Called by the node entry. */
export function useNativeZip(zlib: NativeZip): void {
  if (typeof zlib.crc32 === 'function') native.crc32 = zlib.crc32;
  if (typeof zlib.inflateRawSync === 'function') native.inflateRawSync = zlib.inflateRawSync;
}

/** Tables of CRC-32 slicing-by-8: CRC_TABLES[0] is the byte-at-a-time table, CRC_TABLES[k][n] the CRC of byte n
 * followed by k zero bytes, so that 8 bytes are folded in per step. */
const CRC_TABLES = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const t0 = tables[0]!;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  for (let k = 1; k < 8; k++) {
    const prev = tables[k - 1]!;
    const t = tables[k]!;
    for (let n = 0; n < 256; n++) t[n] = (prev[n]! >>> 8) ^ t0[prev[n]! & 0xff]!;
  }
  return tables;
})();

/**
 * CRC-32 (IEEE) without node:zlib (browsers): slicing-by-8, several times faster than a byte-at-a-time loop,
 * which took ~2 s of resnet50's 94 MB .pth load.
 */
export function crc32Portable(bytes: Uint8Array): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC_TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let c = MAX32;
  const n = bytes.length;
  const end8 = n - (n % 8);
  let i = 0;
  for (; i < end8; i += 8) {
    c ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    c =
      t7[c & 0xff]! ^
      t6[(c >>> 8) & 0xff]! ^
      t5[(c >>> 16) & 0xff]! ^
      t4[c >>> 24]! ^
      t3[bytes[i + 4]!]! ^
      t2[bytes[i + 5]!]! ^
      t1[bytes[i + 6]!]! ^
      t0[bytes[i + 7]!]!;
  }
  for (; i < n; i++) c = t0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ MAX32) >>> 0;
}

/** CRC-32 (IEEE) of `bytes`: node:zlib's native one where there is one (Node >= 20.15), else {@link crc32Portable}. */
export function crc32(bytes: Uint8Array): number {
  if (native.crc32 !== undefined) return native.crc32(bytes) >>> 0;
  return crc32Portable(bytes);
}

/**
 * A zip archive held in memory, read through its central directory (zip64 included, as torch.save writes it).
 * Entries are stored (returned as views into the bytes, no copy) or deflated (inflated with node:zlib, in Node); every
 * entry's CRC-32 is checked when it is read. Encrypted entries and multi-disk archives are refused.
 */
export class ZipArchive {
  private readonly byName: Map<string, ZipEntry>;

  private constructor(
    private readonly bytes: Uint8Array,
    private readonly source: string,
    entries: ZipEntry[],
  ) {
    this.byName = new Map(entries.map((e) => [e.name, e]));
  }

  /**
   * Reads the central directory of the zip in `bytes` (kept, not copied).
   *
   * @param source names the file in error messages
   * @throws CrpError `corrupt-file` for a truncated or damaged archive, `unsupported-format` for encryption or
   *   several disks
   */
  static parse(bytes: Uint8Array, source = 'the zip archive'): ZipArchive {
    const fail = (what: string): never => {
      throw new CrpError('corrupt-file', `${source} is not a readable zip archive: ${what}`, {
        details: { source },
      });
    };
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = bytes.byteLength;
    // the end-of-central-directory record: 22 bytes plus a comment of up to 65535 bytes at the very end
    let eocd = -1;
    for (let at = n - 22; at >= Math.max(0, n - 22 - 0xffff); at--) {
      if (view.getUint32(at, true) === EOCD && at + 22 + view.getUint16(at + 20, true) === n) {
        eocd = at;
        break;
      }
    }
    if (eocd < 0) {
      fail(
        `no end-of-central-directory record in its last ${Math.min(n, 22 + 0xffff)} bytes (${n} bytes in all): the file is truncated or not a zip`,
      );
    }
    if (view.getUint16(eocd + 4, true) !== 0 || view.getUint16(eocd + 6, true) !== 0) {
      throw new CrpError(
        'unsupported-format',
        `${source} is a multi-disk zip archive; only single files are read`,
      );
    }
    let count = view.getUint16(eocd + 10, true);
    let cdSize = view.getUint32(eocd + 12, true);
    let cdOffset = view.getUint32(eocd + 16, true);
    const locator = eocd - 20;
    if (locator >= 0 && view.getUint32(locator, true) === ZIP64_LOCATOR) {
      const at = Number(view.getBigUint64(locator + 8, true));
      if (at + 56 > n || view.getUint32(at, true) !== ZIP64_EOCD)
        fail(`its zip64 end record at byte ${at} is missing`);
      count = Number(view.getBigUint64(at + 32, true));
      cdSize = Number(view.getBigUint64(at + 40, true));
      cdOffset = Number(view.getBigUint64(at + 48, true));
    }
    if (cdOffset + cdSize > n) {
      fail(
        `its central directory (bytes ${cdOffset}..${cdOffset + cdSize}) lies beyond the end (${n} bytes)`,
      );
    }
    const entries: ZipEntry[] = [];
    const decoder = new TextDecoder();
    let at = cdOffset;
    for (let i = 0; i < count; i++) {
      if (at + 46 > n || view.getUint32(at, true) !== CENTRAL)
        fail(`central directory entry ${i} is damaged`);
      const flags = view.getUint16(at + 8, true);
      const method = view.getUint16(at + 10, true);
      const crc = view.getUint32(at + 16, true);
      let compressedSize = view.getUint32(at + 20, true);
      let size = view.getUint32(at + 24, true);
      const nameLength = view.getUint16(at + 28, true);
      const extraLength = view.getUint16(at + 30, true);
      const commentLength = view.getUint16(at + 32, true);
      let localHeaderOffset = view.getUint32(at + 42, true);
      let extra = at + 46 + nameLength;
      const extraEnd = extra + extraLength;
      if (extraEnd + commentLength > n) fail(`central directory entry ${i} runs past the end of the file`);
      const name = decoder.decode(bytes.subarray(at + 46, at + 46 + nameLength));
      // zip64: the 0xffffffff fields are in the extra field 0x0001, in this order
      while (extra + 4 <= extraEnd) {
        const id = view.getUint16(extra, true);
        const length = view.getUint16(extra + 2, true);
        const fieldEnd = Math.min(extra + 4 + length, extraEnd);
        if (id === 0x0001) {
          let p = extra + 4;
          const next = () => {
            if (p + 8 > fieldEnd) fail(`the zip64 sizes of entry '${name}' end early`);
            const v = Number(view.getBigUint64(p, true));
            p += 8;
            return v;
          };
          if (size === MAX32) size = next();
          if (compressedSize === MAX32) compressedSize = next();
          if (localHeaderOffset === MAX32) localHeaderOffset = next();
        }
        extra += 4 + length;
      }
      if (flags & 1) {
        throw new CrpError('unsupported-format', `${source}: entry '${name}' is encrypted; not supported`);
      }
      if (method !== 0 && method !== 8) {
        throw new CrpError(
          'unsupported-format',
          `${source}: entry '${name}' uses compression method ${method}; supported: 0 (stored, as torch.save writes) and 8 (deflate)`,
        );
      }
      checkSizes(name, method, compressedSize, size, localHeaderOffset, n, fail);
      entries.push({ name, method, compressedSize, size, crc32: crc, localHeaderOffset });
      at = extraEnd + commentLength;
    }
    return new ZipArchive(bytes, source, entries);
  }

  /** The size of the whole archive in bytes. */
  get byteLength(): number {
    return this.bytes.byteLength;
  }

  /** Entry names in central-directory order. */
  get names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The central-directory record of an entry, or undefined. */
  entry(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /**
   * The bytes of an entry: a view into the archive for stored entries (do not modify it), a new array for
   * deflated ones. The CRC-32 is checked.
   *
   * @throws CrpError `not-found` for an unknown name; `corrupt-file` when the entry lies outside the file, does
   *   not inflate, or fails its CRC check
   */
  read(name: string): Uint8Array {
    const e = this.byName.get(name);
    if (e === undefined) {
      throw new CrpError('not-found', `${this.source} has no entry '${name}'`, {
        details: { source: this.source },
      });
    }
    const fail = (what: string): never => {
      throw new CrpError('corrupt-file', `${this.source}: entry '${name}' ${what}`, {
        details: { source: this.source, entry: name },
      });
    };
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    const at = e.localHeaderOffset;
    if (at + 30 > this.bytes.byteLength || view.getUint32(at, true) !== LOCAL) {
      fail(`has no local header at byte ${at}`);
    }
    const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
    const end = start + e.compressedSize;
    if (end > this.bytes.byteLength) {
      fail(`needs bytes ${start}..${end} but the file ends at ${this.bytes.byteLength} (truncated)`);
    }
    let data = this.bytes.subarray(start, end);
    if (e.method === 8) {
      const inflate = native.inflateRawSync;
      if (inflate === undefined) {
        throw new CrpError(
          'unsupported-format',
          `${this.source}: entry '${name}' is deflated; torch.save writes stored entries, deflated ones are read in Node only (@crp/models/node)`,
          { details: { source: this.source, entry: name } },
        );
      }
      try {
        // never more than the directory declares: a zip bomb stops here, not at the end of memory
        data = inflate(data, { maxOutputLength: Math.max(e.size, 1) });
      } catch (err) {
        const tooLarge = (err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE';
        const what = tooLarge
          ? `inflates to more than the ${e.size} bytes its directory declares`
          : 'does not inflate';
        throw new CrpError('corrupt-file', `${this.source}: entry '${name}' ${what}`, {
          cause: err,
          details: { source: this.source, entry: name },
        });
      }
    }
    if (data.byteLength !== e.size) fail(`has ${data.byteLength} bytes, its directory says ${e.size}`);
    const crc = crc32(data);
    if (crc !== e.crc32) {
      fail(`fails its CRC-32 check (computed ${hex(crc)}, recorded ${hex(e.crc32)}): the file is damaged`);
    }
    return data;
  }
}

function hex(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}

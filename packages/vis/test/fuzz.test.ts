/**
 * Hostile images: thousands of seeded mutations of small PNG and JPEG files (bit flips, truncations, inserted and
 * duplicated bytes, and mutations that know the formats: PNG chunks with their CRC written again, JPEG marker
 * segments and frame sizes) must each decode or be refused with a CrpError; and hand-made files that declare an
 * image far larger than their data could hold are refused before the decoder allocates it.
 */
import { deflateSync } from 'node:zlib';
import { expectCrpError, mulberry32 } from '@crp/testing';
import {
  checkAllocation,
  describeFindings,
  fuzz,
  INTERESTING_U32,
  type Mutator,
  pick,
  randomInt,
  summarize,
} from '@crp/testing/fuzz';
import { encode as fastPngEncode } from 'fast-png';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { decodeImage, decodeJpeg, decodePng } from '../src/index.js';

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG file of the chunks given (type and data), with their lengths and CRCs. */
function pngOf(chunks: readonly { type: string; data: Uint8Array }[]): Uint8Array {
  const parts: number[] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  for (const { type, data } of chunks) {
    const body = new Uint8Array([...new TextEncoder().encode(type), ...data]);
    const be = (v: number) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
    parts.push(...be(data.length), ...body, ...be(crc32(body)));
  }
  return new Uint8Array(parts);
}

/** The chunks of a PNG, as far as they can be walked. */
function chunksOf(png: Uint8Array): { type: string; data: Uint8Array }[] {
  const out: { type: string; data: Uint8Array }[] = [];
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let at = 8; at + 12 <= png.length; ) {
    const length = view.getUint32(at);
    if (at + 12 + length > png.length) break;
    out.push({
      type: new TextDecoder('latin1').decode(png.subarray(at + 4, at + 8)),
      data: png.slice(at + 8, at + 8 + length),
    });
    at += 12 + length;
  }
  return out;
}

/** Mutates one chunk's data (or its header fields, for IHDR) and writes the PNG again with correct CRCs. */
const pngChunk: Mutator = (bytes, rng) => {
  const chunks = chunksOf(bytes);
  if (chunks.length === 0) return bytes;
  const chunk = pick(rng, chunks);
  const { data } = chunk;
  if (chunk.type === 'IHDR' && data.length >= 13) {
    // width, height (4 bytes each), then depth, colour type, compression, filter, interlace (1 byte each)
    const field = randomInt(rng, 7);
    const v = pick(rng, INTERESTING_U32);
    if (field < 2) new DataView(data.buffer).setUint32(4 * field, v);
    else data[6 + field] = v & 0xff;
  } else if (data.length > 0) {
    data[randomInt(rng, data.length)]! ^= 1 << randomInt(rng, 8);
  }
  const r = randomInt(rng, 4);
  if (r === 0)
    chunks.splice(randomInt(rng, chunks.length), 1); // a missing chunk
  else if (r === 1) chunks.splice(randomInt(rng, chunks.length), 0, pick(rng, chunks)); // a repeated one
  return pngOf(chunks);
};

/** Offsets of the marker segments of a JPEG (FF xx with a 16-bit length). */
function segmentsOf(jpg: Uint8Array): number[] {
  const out: number[] = [];
  for (let at = 2; at + 4 <= jpg.length && jpg[at] === 0xff; ) {
    const marker = jpg[at + 1]!;
    if (marker === 0xda) break; // the scan: entropy-coded data follows
    out.push(at);
    at += 2 + ((jpg[at + 2]! << 8) | jpg[at + 3]!);
  }
  return out;
}

/** Breaks a field of a marker segment: its length, or a byte of its body (frame sizes, tables, counts). */
const jpegSegment: Mutator = (bytes, rng) => {
  const segments = segmentsOf(bytes);
  if (segments.length === 0) return bytes;
  const at = pick(rng, segments);
  const v = pick(rng, INTERESTING_U32);
  const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
  const p = randomInt(rng, 3) === 0 ? at + 2 : at + 4 + randomInt(rng, Math.max(1, length - 2));
  if (p + 1 < bytes.length) {
    bytes[p] = (v >>> 8) & 0xff;
    bytes[p + 1] = v & 0xff;
  }
  return bytes;
};

function pixels(n: number, seed: number): Uint8Array {
  const rng = mulberry32(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(rng() * 256));
}

describe('fuzzing the PNG and JPEG decoders', () => {
  it('decodes or refuses with a CrpError each of 3000 mutated images', async () => {
    const [w, h] = [7, 5];
    const seeds: Record<string, Uint8Array> = {
      rgb: fastPngEncode({ width: w, height: h, data: pixels(w * h * 3, 1), depth: 8, channels: 3 }),
      rgba16: fastPngEncode({
        width: w,
        height: h,
        data: new Uint16Array(pixels(w * h * 4, 2)),
        depth: 16,
        channels: 4,
      }),
      grey1: fastPngEncode({ width: w, height: h, data: pixels(h, 3), depth: 1, channels: 1 }),
      palette: fastPngEncode({
        width: w,
        height: h,
        data: Uint8Array.from({ length: w * h }, (_, i) => i % 3),
        depth: 8,
        channels: 1,
        palette: [
          [255, 0, 0, 0],
          [0, 128, 255, 255],
          [7, 7, 7, 255],
        ],
      }),
      interlaced: fastPngEncode(
        { width: w, height: h, data: pixels(w * h * 3, 4), depth: 8, channels: 3 },
        { interlace: 'Adam7' },
      ),
      jpeg: new Uint8Array(jpeg.encode({ width: 16, height: 8, data: pixels(16 * 8 * 4, 5) }, 80).data),
    };
    const report = await fuzz({
      seeds,
      // a PNG's pixels are at most what deflate makes of it (1032:1), times 32 for 1-bit grey widened to RGBA; a
      // JPEG's at most 512 a byte, 3 bytes each
      target: (bytes) =>
        checkAllocation('the image', decodeImage(bytes).data.byteLength, 32 * 1032 * bytes.length),
      runs: 3000,
      seed: 20,
      codes: ['corrupt-file', 'unsupported-format'],
      grammar: { pngChunk, jpegSegment },
    });
    expect(describeFindings(report)).toBe('');
    console.log(summarize('PNG and JPEG', report));
    expect(report.accepted).toBeGreaterThan(100);
  });
});

describe('images that declare more than their data holds', () => {
  it('refuses a PNG of 30000 x 30000 pixels in a few hundred bytes, before inflating it', () => {
    const ihdr = new Uint8Array(13);
    const view = new DataView(ihdr.buffer);
    view.setUint32(0, 30000);
    view.setUint32(4, 30000);
    ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA: 3.6 GB of pixels
    const png = pngOf([
      { type: 'IHDR', data: ihdr },
      { type: 'IDAT', data: new Uint8Array(deflateSync(new Uint8Array(120_001))) },
      { type: 'IEND', data: new Uint8Array(0) },
    ]);
    expectCrpError(() => decodePng(png), 'corrupt-file', '30000 x 30000', 'deflate');
  });

  it('refuses a JPEG whose frame claims 20000 x 20000 pixels in under a kilobyte', () => {
    const jpg = new Uint8Array(jpeg.encode({ width: 8, height: 8, data: pixels(8 * 8 * 4, 6) }, 80).data);
    const sof = jpg.findIndex((b, i) => b === 0xff && jpg[i + 1] === 0xc0);
    new DataView(jpg.buffer).setUint16(sof + 5, 20000); // height
    new DataView(jpg.buffer).setUint16(sof + 7, 20000); // width
    expectCrpError(() => decodeJpeg(jpg), 'corrupt-file', '20000 x 20000', `${jpg.length} bytes`);
    // fill bytes (0xff) before the markers do not hide the frame
    const filled = new Uint8Array([0xff, 0xd8, 0xff, 0xff, 0xff, ...jpg.subarray(2)]);
    expectCrpError(() => decodeJpeg(filled), 'corrupt-file', '20000 x 20000');
  });

  it('still decodes a large blank image whose data is legitimately tiny', () => {
    const blank = { width: 600, height: 400, data: new Uint8Array(600 * 400 * 4).fill(255) };
    const jpg = new Uint8Array(jpeg.encode(blank, 50).data);
    expect(decodeJpeg(jpg)).toMatchObject({ width: 600, height: 400 });
    const png = fastPngEncode({
      width: 600,
      height: 400,
      data: new Uint8Array(600 * 400 * 3),
      depth: 8,
      channels: 3,
    });
    expect(decodePng(png)).toMatchObject({ width: 600, height: 400, channels: 3 });
  });
});

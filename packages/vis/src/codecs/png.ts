import { CrpError } from '@crp/common';
import { decode, encode } from 'fast-png';
import { assertRasterImage, type RasterImage } from '../raster/raster.js';
import { base64 } from './base64.js';

/**
 * Encodes an image as PNG (8 bit; grey, RGB or RGBA as the image has 1, 3 or 4 channels). Pure JavaScript
 * (fast-png, fflate): the same bytes in Node and in a browser.
 *
 * @returns the PNG file's bytes
 */
export function encodePng(image: RasterImage): Uint8Array {
  assertRasterImage(image);
  return encode(
    { width: image.width, height: image.height, data: image.data, depth: 8, channels: image.channels },
    { zlib: { level: 6 } },
  );
}

/** Maps samples of `depth` bits (packed big-endian in rows for depth < 8, or 16-bit values) to 0..255. */
function toBytes(
  data: ArrayLike<number>,
  depth: number,
  width: number,
  height: number,
  samplesPerPixel: number,
  scale: boolean,
): Uint8Array {
  const count = width * height * samplesPerPixel;
  if (depth === 8) return data instanceof Uint8Array ? data : Uint8Array.from(data);
  const out = new Uint8Array(count);
  if (depth === 16) {
    // 16-bit samples: the nearest 8-bit value (v / 257), exact for samples that were widened from 8 bit
    for (let i = 0; i < count; i++) out[i] = Math.round(data[i]! / 257);
    return out;
  }
  // 1, 2 or 4 bits: rows start on a byte boundary
  const rowBytes = Math.ceil((width * samplesPerPixel * depth) / 8);
  const max = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width * samplesPerPixel; x++) {
      const bit = x * depth;
      const byte = data[y * rowBytes + (bit >> 3)]!;
      const v = (byte >> (8 - depth - (bit & 7))) & max;
      out[y * width * samplesPerPixel + x] = scale ? Math.round((v * 255) / max) : v;
    }
  }
  return out;
}

/** Samples per pixel of each PNG colour type (grey, RGB, palette index, grey + alpha, RGBA). */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Deflate expands at most 1032:1, so the image data cannot be larger than that times the IDAT bytes. */
const MAX_DEFLATE_RATIO = 1032;

/**
 * Refuses a PNG whose header declares more pixel data than its IDAT chunks could inflate to, before the decoder
 * allocates the image (a few hundred bytes must not make it allocate gigabytes). Leaves every other check to the
 * decoder.
 */
function checkDeclaredSize(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 33 || view.getUint32(12) !== 0x49484452 /* IHDR */) return;
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const samples = SAMPLES[bytes[25]!] ?? 4;
  const depth = bytes[24]!;
  // each row: a filter byte and the packed samples (an interlaced image has a few more filter bytes)
  const raw = height * (1 + Math.ceil((width * samples * depth) / 8));
  let idat = 0;
  // chunks are at least 12 bytes, so this walk is bounded by the file's size
  for (let at = 8; at + 12 <= bytes.length; at += 12 + view.getUint32(at)) {
    if (view.getUint32(at + 4) === 0x49444154 /* IDAT */) idat += view.getUint32(at);
  }
  if (raw > MAX_DEFLATE_RATIO * idat + MAX_DEFLATE_RATIO) {
    throw new CrpError(
      'corrupt-file',
      `not a readable PNG: it declares ${width} x ${height} pixels (${raw} bytes of image data) but has ${idat} bytes of IDAT data, which deflate cannot expand to more than ${MAX_DEFLATE_RATIO} times`,
      { details: { width, height, idatBytes: idat } },
    );
  }
}

/**
 * Decodes PNG bytes: any bit depth (16 bit is scaled to 8, 1/2/4-bit grey to 0..255), any colour type, palettes,
 * transparency (tRNS) and interlacing. Grey images come back with 1 channel, colour images with 3, images with
 * transparency with 4 (grey with alpha becomes RGBA).
 *
 * @throws CrpError `corrupt-file` for bytes that are not a valid PNG.
 */
export function decodePng(bytes: Uint8Array): RasterImage {
  checkDeclaredSize(bytes);
  let png: ReturnType<typeof decode>;
  try {
    png = decode(bytes, { checkCrc: true });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CrpError('corrupt-file', `not a readable PNG (${reason})`, { cause: err });
  }
  const { width, height, depth } = png;
  const n = width * height;
  if (png.palette !== undefined) {
    const index = toBytes(png.data, depth, width, height, 1, false);
    const alpha = png.palette.some((c) => c.length === 4 && c[3] !== 255);
    const channels = alpha ? 4 : 3;
    const out = new Uint8Array(n * channels);
    for (let p = 0; p < n; p++) {
      const c = png.palette[index[p]!];
      if (c === undefined) {
        throw new CrpError('corrupt-file', `not a readable PNG (palette index ${index[p]} out of range)`);
      }
      for (let k = 0; k < channels; k++) out[p * channels + k] = k < 3 ? c[k]! : (c[3] ?? 255);
    }
    return { width, height, channels, data: out };
  }
  const samples = png.channels;
  const values = toBytes(png.data, depth, width, height, samples, true);
  const colour = samples >= 3;
  // tRNS of a grey or RGB image: one colour (in the file's bit depth) that is fully transparent
  const key = png.transparency;
  const hasAlpha = samples === 2 || samples === 4 || key !== undefined;
  const channels: 1 | 3 | 4 = hasAlpha ? 4 : colour ? 3 : 1;
  if (channels === samples) return { width, height, channels, data: values };
  const raw = key === undefined ? undefined : toBytes(png.data, depth, width, height, samples, false);
  const out = new Uint8Array(n * channels);
  for (let p = 0; p < n; p++) {
    const o = p * channels;
    const i = p * samples;
    if (colour) {
      out[o] = values[i]!;
      out[o + 1] = values[i + 1]!;
      out[o + 2] = values[i + 2]!;
    } else {
      out[o] = out[o + 1] = out[o + 2] = values[i]!;
    }
    if (samples === 2 || samples === 4) out[o + 3] = values[i + samples - 1]!;
    else {
      const same =
        depth === 16
          ? colour
            ? png.data[i] === key![0] && png.data[i + 1] === key![1] && png.data[i + 2] === key![2]
            : png.data[i] === key![0]
          : colour
            ? raw![i] === key![0] && raw![i + 1] === key![1] && raw![i + 2] === key![2]
            : raw![i] === key![0];
      out[o + 3] = same ? 0 : 255;
    }
  }
  return { width, height, channels, data: out };
}

/** The image as a `data:image/png;base64,...` URI, for inlining into HTML. */
export function pngDataUri(image: RasterImage): string {
  return `data:image/png;base64,${base64(encodePng(image))}`;
}

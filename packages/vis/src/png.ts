import { readFile } from 'node:fs/promises';
import { CrpError, fileError } from '@crp/common';
import { PNG } from 'pngjs';
import { writeFileAtomic } from './atomic-write.js';
import { assertRasterImage, type RasterImage } from './raster.js';

/** PNG colour type per channel count (grey, RGB, RGBA). */
const COLOR_TYPE = { 1: 0, 3: 2, 4: 6 } as const;

/**
 * Encodes an image as PNG (8 bit; grey, RGB or RGBA as the image has 1, 3 or 4 channels).
 *
 * @returns the PNG file's bytes
 */
export function encodePng(image: RasterImage): Uint8Array {
  assertRasterImage(image);
  const png = new PNG({ width: image.width, height: image.height });
  png.data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  const colorType = COLOR_TYPE[image.channels];
  const buffer = PNG.sync.write(png, {
    colorType,
    inputColorType: colorType,
    inputHasAlpha: image.channels === 4,
  });
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/**
 * Decodes PNG bytes (any bit depth and colour type; 16 bit is scaled to 8). Grey images come back with 1
 * channel, colour images with 3, images with transparency with 4.
 *
 * @throws CrpError `corrupt-file` for bytes that are not a valid PNG.
 */
export function decodePng(bytes: Uint8Array): RasterImage {
  let png: ReturnType<typeof PNG.sync.read>;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CrpError('corrupt-file', `not a readable PNG (${reason})`, { cause: err });
  }
  const { width, height, data } = png;
  const channels: 1 | 3 | 4 = png.alpha ? 4 : png.color || png.palette ? 3 : 1;
  const out = new Uint8Array(width * height * channels);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < channels; c++) out[p * channels + c] = data[p * 4 + (channels === 1 ? 0 : c)]!;
  }
  return { width, height, channels, data: out };
}

/** Reads and decodes a PNG file. @throws CrpError `not-found`, `read-failed`, `corrupt-file`. */
export async function readPng(path: string): Promise<RasterImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw fileError('read', path, err, 'PNG file');
  }
  return decodePng(bytes);
}

/** Encodes an image as PNG and writes it atomically (temporary file, then rename). @throws CrpError `write-failed`. */
export async function writePng(path: string, image: RasterImage): Promise<void> {
  await writeFileAtomic(path, encodePng(image));
}

/** The image as a `data:image/png;base64,...` URI, for inlining into HTML. */
export function pngDataUri(image: RasterImage): string {
  return `data:image/png;base64,${Buffer.from(encodePng(image)).toString('base64')}`;
}

import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { CrpError, fileError } from '@crp/common';
import { decodeJpeg } from './jpeg.js';
import { decodePng, writePng } from './png.js';
import type { RasterImage } from './raster.js';

/** The format of encoded image bytes, found from their signature, or undefined. */
export function sniffImageFormat(bytes: Uint8Array): 'png' | 'jpeg' | undefined {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
    return 'png';
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

/**
 * Decodes PNG or JPEG bytes, recognised by their signature (not by a file name).
 *
 * @throws CrpError `unsupported-format` for other bytes, `corrupt-file` for broken files.
 */
export function decodeImage(bytes: Uint8Array): RasterImage {
  const format = sniffImageFormat(bytes);
  if (format === 'png') return decodePng(bytes);
  if (format === 'jpeg') return decodeJpeg(bytes);
  const head = [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new CrpError(
    'unsupported-format',
    `image bytes start with ${head || 'nothing'}; only PNG (89 50 4e 47) and JPEG (ff d8 ff) can be read`,
  );
}

/** Reads a PNG or JPEG file (see {@link decodeImage}). @throws CrpError `not-found`, `read-failed`, `corrupt-file`,
 * `unsupported-format`. */
export async function readImage(path: string): Promise<RasterImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw fileError('read', path, err, 'image');
  }
  try {
    return decodeImage(bytes);
  } catch (err) {
    if (err instanceof CrpError)
      throw new CrpError(err.code, `${path}: ${err.message}`, { cause: err, details: { path } });
    throw err;
  }
}

/**
 * Writes an image atomically; the format follows the extension, and only `.png` is written.
 *
 * @throws CrpError `unsupported-format` for other extensions, `write-failed`.
 */
export async function writeImage(path: string, image: RasterImage): Promise<void> {
  const ext = extname(path).toLowerCase();
  if (ext !== '.png') {
    throw new CrpError(
      'unsupported-format',
      `cannot write '${ext || 'no extension'}' images (${path}); valid: .png`,
    );
  }
  await writePng(path, image);
}

import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { CrpError, fileError } from '@crp/common';
import { writeFileAtomic } from '@crp/common/node';
import { decodeImage } from '../codecs/image.js';
import { decodePng, encodePng } from '../codecs/png.js';
import type { RasterImage } from '../raster/raster.js';

async function readBytes(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw fileError('read', path, err, what);
  }
}

/** Adds the path to a decoding error's message (same code, the error as cause). */
function withPath(path: string, err: unknown): unknown {
  if (!(err instanceof CrpError)) return err;
  return new CrpError(err.code, `${path}: ${err.message}`, { cause: err, details: { ...err.details, path } });
}

/**
 * Reads a PNG or JPEG file (recognised by its bytes, see `decodeImage`).
 *
 * @throws CrpError `not-found`, `read-failed`, `corrupt-file`, `unsupported-format`.
 */
export async function readImage(path: string): Promise<RasterImage> {
  const bytes = await readBytes(path, 'image');
  try {
    return decodeImage(bytes);
  } catch (err) {
    throw withPath(path, err);
  }
}

/** Reads and decodes a PNG file. @throws CrpError `not-found`, `read-failed`, `corrupt-file`. */
export async function readPng(path: string): Promise<RasterImage> {
  const bytes = await readBytes(path, 'PNG file');
  try {
    return decodePng(bytes);
  } catch (err) {
    throw withPath(path, err);
  }
}

/** Encodes an image as PNG and writes it atomically (temporary file, then rename). @throws CrpError `write-failed`. */
export async function writePng(path: string, image: RasterImage): Promise<void> {
  await writeFileAtomic(path, encodePng(image));
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

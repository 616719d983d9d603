import { CrpError } from '@crp/common';
import type { RasterImage } from '../raster/raster.js';
import { decodeJpeg } from './jpeg.js';
import { decodePng } from './png.js';

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

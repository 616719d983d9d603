import { CrpError } from '@crp/common';
import jpeg from 'jpeg-js';
import type { RasterImage } from '../raster/raster.js';

/** Limits that protect against hostile JPEG files. */
export interface JpegDecodeOptions {
  /** Largest accepted image in megapixels; default 100. */
  maxResolutionInMP?: number;
  /** Largest memory the decoder may use in MB; default 512. */
  maxMemoryUsageInMB?: number;
}

/**
 * Decodes baseline or progressive JPEG bytes into an RGB image (pure JavaScript, via `jpeg-js`).
 *
 * @throws CrpError `corrupt-file` for bytes that are not a readable JPEG.
 */
export function decodeJpeg(bytes: Uint8Array, options: JpegDecodeOptions = {}): RasterImage {
  try {
    const decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: options.maxResolutionInMP ?? 100,
      maxMemoryUsageInMB: options.maxMemoryUsageInMB ?? 512,
    });
    const { width, height } = decoded;
    return {
      width,
      height,
      channels: 3,
      data: new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, width * height * 3),
    };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CrpError('corrupt-file', `not a readable JPEG (${reason})`, { cause: err });
  }
}

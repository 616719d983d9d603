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
 * Every 8 x 8 block of a JPEG costs at least one bit of entropy-coded data (its DC coefficient's Huffman code, in
 * baseline and progressive files alike), so a file of n bytes holds at most 512 n pixels.
 */
const MAX_PIXELS_PER_BYTE = 512;

/**
 * Refuses a JPEG whose frame header (SOF) declares more pixels than its bytes could code, before `jpeg-js`
 * allocates its component buffers for them. The marker walk is bounded by the file's size; a file without a
 * readable frame header is left to the decoder.
 */
function checkFrameSize(bytes: Uint8Array): void {
  for (let at = 2; at + 9 <= bytes.length && bytes[at] === 0xff; ) {
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at++; // a fill byte before a marker
      continue;
    }
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    // SOF0..SOF15, except DHT (c4), JPG (c8) and DAC (cc)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const height = (bytes[at + 5]! << 8) | bytes[at + 6]!;
      const width = (bytes[at + 7]! << 8) | bytes[at + 8]!;
      if (width * height > MAX_PIXELS_PER_BYTE * bytes.length) {
        throw new CrpError(
          'corrupt-file',
          `not a readable JPEG: its frame declares ${width} x ${height} pixels, more than its ${bytes.length} bytes can code (at most ${MAX_PIXELS_PER_BYTE} pixels a byte)`,
          { details: { width, height, bytes: bytes.length } },
        );
      }
      return;
    }
    if (marker === 0xda || length < 2) return; // the scan starts (or the file is broken): the decoder decides
    at += 2 + length;
  }
}

/**
 * Decodes baseline or progressive JPEG bytes into an RGB image (pure JavaScript, via `jpeg-js`).
 *
 * @throws CrpError `corrupt-file` for bytes that are not a readable JPEG.
 */
export function decodeJpeg(bytes: Uint8Array, options: JpegDecodeOptions = {}): RasterImage {
  checkFrameSize(bytes);
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

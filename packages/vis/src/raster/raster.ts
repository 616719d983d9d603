import { CrpError } from '@crp/common';

/**
 * An 8-bit raster image: `height` rows of `width` pixels of `channels` bytes each (1 = grey, 3 = RGB,
 * 4 = RGBA, not premultiplied), row-major. Every image function of `@crp/vis` returns a new `RasterImage`
 * that the caller owns; none modifies its input.
 */
export interface RasterImage {
  /** Pixels per row. */
  readonly width: number;
  /** Rows. */
  readonly height: number;
  /** 1 = grey, 3 = RGB, 4 = RGBA. */
  readonly channels: 1 | 3 | 4;
  /** `height * width * channels` bytes, row-major, channels interleaved. */
  readonly data: Uint8Array;
}

/** An RGB colour as `[r, g, b]` bytes, or a CSS-style hex string (`'#fff'`, `'#ffffff'`). */
export type Color = readonly [number, number, number] | string;

/** True if `value` looks like a {@link RasterImage} (width, height, channels and a byte array of the right size). */
export function isRasterImage(value: unknown): value is RasterImage {
  const v = value as RasterImage;
  return (
    typeof v === 'object' &&
    v !== null &&
    Number.isInteger(v.width) &&
    Number.isInteger(v.height) &&
    (v.channels === 1 || v.channels === 3 || v.channels === 4) &&
    v.data instanceof Uint8Array &&
    v.data.length === v.width * v.height * v.channels
  );
}

/** Throws `invalid-shape` unless `image` is a well-formed {@link RasterImage}. */
export function assertRasterImage(image: unknown, what = 'image'): asserts image is RasterImage {
  if (!isRasterImage(image)) {
    const v = image as Partial<RasterImage> | null;
    const got =
      v === null || typeof v !== 'object'
        ? String(v)
        : `width ${v.width}, height ${v.height}, channels ${v.channels}, ${v.data?.length ?? 'no'} bytes`;
    throw new CrpError(
      'invalid-shape',
      `${what} is not a valid raster image (${got}); expected { width, height, channels: 1 | 3 | 4, data: Uint8Array of width * height * channels bytes }`,
    );
  }
}

/** Parses a {@link Color} into `[r, g, b]` bytes; throws `invalid-argument` for anything else. */
export function parseColor(color: Color, what = 'colour'): [number, number, number] {
  if (typeof color === 'string') {
    const m = /^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.exec(color.trim());
    if (m !== null) {
      const hex = m[1]!.length === 3 ? [...m[1]!].map((c) => c + c).join('') : m[1]!;
      return [0, 2, 4].map((k) => Number.parseInt(hex.slice(k, k + 2), 16)) as [number, number, number];
    }
  } else if (
    Array.isArray(color) &&
    color.length === 3 &&
    color.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)
  ) {
    return [color[0]!, color[1]!, color[2]!];
  }
  throw new CrpError(
    'invalid-argument',
    `${what} ${JSON.stringify(color)} is not a colour; use [r, g, b] with integers 0..255 or a hex string like '#ffffff'`,
  );
}

/**
 * A new image of the given size filled with one value per channel.
 *
 * @param fill - a byte for every channel, or one byte per channel; default 0
 */
export function createRaster(
  width: number,
  height: number,
  channels: 1 | 3 | 4,
  fill: number | readonly number[] = 0,
): RasterImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
    throw new CrpError(
      'invalid-shape',
      `image size ${width}x${height} is invalid; width and height must be integers >= 0`,
    );
  }
  const values = typeof fill === 'number' ? new Array<number>(channels).fill(fill) : [...fill];
  if (values.length !== channels || values.some((v) => !Number.isInteger(v) || v < 0 || v > 255)) {
    throw new CrpError(
      'invalid-argument',
      `fill ${JSON.stringify(fill)} does not fit ${channels} channel(s); use a byte 0..255 or ${channels} bytes`,
    );
  }
  const data = new Uint8Array(width * height * channels);
  if (values.some((v) => v !== 0)) {
    for (let i = 0; i < data.length; i += channels)
      for (let c = 0; c < channels; c++) data[i + c] = values[c]!;
  }
  return { width, height, channels, data };
}

/**
 * The image as RGB: grey is replicated, RGBA is composited over `background` (default white) using its alpha.
 */
export function toRgb(image: RasterImage, background: Color = [255, 255, 255]): RasterImage {
  assertRasterImage(image);
  const { width, height, channels, data } = image;
  if (channels === 3) return { width, height, channels: 3, data: data.slice() };
  const out = new Uint8Array(width * height * 3);
  const bg = parseColor(background, 'background');
  for (let p = 0; p < width * height; p++) {
    if (channels === 1) {
      out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = data[p]!;
    } else {
      const a = data[p * 4 + 3]! / 255;
      for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round(data[p * 4 + c]! * a + bg[c]! * (1 - a));
    }
  }
  return { width, height, channels: 3, data: out };
}

/** The image as RGBA: grey is replicated, RGB gets alpha 255. */
export function toRgba(image: RasterImage): RasterImage {
  assertRasterImage(image);
  const { width, height, channels, data } = image;
  if (channels === 4) return { width, height, channels: 4, data: data.slice() };
  const out = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) out[p * 4 + c] = data[channels === 1 ? p : p * 3 + c]!;
    out[p * 4 + 3] = 255;
  }
  return { width, height, channels: 4, data: out };
}

import { CrpError } from '@crp/common';
import { type ArrayInput, assertFinite, type DenseArray, toDenseArray } from '../raster/array.js';
import { assertRasterImage, isRasterImage, type RasterImage } from '../raster/raster.js';
import { type ColorMap, getColorMap } from './colormap.js';

/** Options of {@link imgify}; the keyword arguments of `zennit.image.imgify`. */
export interface ImgifyOptions {
  /** Colour map for single-channel input: built-in name, colour-map source or {@link ColorMap}. Default `'bwr'`. */
  cmap?: string | ColorMap;
  /** Palette level (see {@link ColorMap.paletteValues}). Default 1. */
  level?: number;
  /**
   * Normalise symmetrically: vmin = -max|a|, vmax = +max|a|, so that 0 maps to the middle of the colour map.
   * Default false: vmin / vmax are the minimum / maximum.
   */
  symmetric?: boolean;
  /** Explicit lower bound, overriding the computed one. */
  vmin?: number;
  /** Explicit upper bound, overriding the computed one. */
  vmax?: number;
  /**
   * Treat the first axis as a batch and lay the images out in a grid: `true` = floor(sqrt(N)) columns and
   * ceil(N / columns) rows, `[rows, cols]` = that grid (images beyond rows * cols are dropped). Each image is
   * normalised on its own. Default false.
   */
  grid?: boolean | readonly [number, number];
  /**
   * Byte value of empty grid cells (a palette index for single-channel input), one for all channels or one per
   * channel. Default: the minimum byte value of the batch, per channel.
   */
  gridfill?: number | readonly number[];
}

/** The result of {@link normalizeToBytes}: bytes before colouring and gridding, channels last. */
export interface NormalizedBytes {
  /** `[H, W, C]`, or `[N, H, W, C]` with `grid`; C is 1 or 3. */
  readonly shape: readonly number[];
  /** The bytes: `uint8(clip(scaled, 0, 255))`. */
  readonly bytes: Uint8Array;
  /**
   * The values before truncation to bytes (`(a - vmin) / (vmax - vmin) * 255`, in the input's float precision),
   * or undefined for uint8 input, which is taken as is.
   */
  readonly scaled: Float64Array | undefined;
}

const f32 = Math.fround;

function shapeError(shape: readonly number[], expected: string): CrpError {
  return new CrpError('invalid-shape', `imgify input has shape [${shape.join(', ')}]; expected ${expected}`);
}

/** Moves a channel-first axis (size 1 or 3) to the end, as zennit does. */
function channelsLast(array: DenseArray, batch: boolean): { data: ArrayLike<number>; shape: number[] } {
  const shape = [...array.shape];
  const ndim = shape.length;
  const lead = batch ? 1 : 0;
  if (ndim !== lead + 3 || shape[lead + 2] === 1 || shape[lead + 2] === 3) return { data: array.data, shape };
  if (shape[lead] !== 1 && shape[lead] !== 3) {
    throw shapeError(
      shape,
      batch
        ? '[N, H, W], [N, H, W, C] or [N, C, H, W] with C = 1 or 3'
        : '[H, W], [H, W, C] or [C, H, W] with C = 1 or 3',
    );
  }
  const n = batch ? shape[0]! : 1;
  const [c, h, w] = shape.slice(lead) as [number, number, number];
  const out = new (array.data instanceof Float32Array ? Float32Array : Float64Array)(array.data.length);
  for (let b = 0; b < n; b++) {
    const base = b * c * h * w;
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < h * w; p++) out[base + p * c + ch] = array.data[base + ch * h * w + p]!;
    }
  }
  return {
    data: array.data instanceof Uint8Array ? Uint8Array.from(out) : out,
    shape: [...shape.slice(0, lead), h, w, c],
  };
}

/**
 * Normalises an array to bytes as `zennit.image.imgify` does, without colouring or gridding:
 * float input becomes `uint8(clip((a - vmin) / (vmax - vmin) * 255, 0, 255))` (truncation; float32 input is
 * computed in float32, float64 input in float64), uint8 input is taken as is. With `grid` the bounds are per
 * image. A constant image (vmax = vmin) maps to 0, or to the middle (127) when `symmetric`.
 *
 * Accepted shapes: `[H, W]`, `[H, W, C]`, `[C, H, W]` (C = 1 or 3); with `grid` the same with a leading batch
 * axis.
 *
 * @throws CrpError `invalid-shape`, `invalid-value` (NaN / Inf), `invalid-argument`.
 */
export function normalizeToBytes(
  input: ArrayInput,
  options: Pick<ImgifyOptions, 'symmetric' | 'vmin' | 'vmax' | 'grid'> = {},
): NormalizedBytes {
  const { symmetric = false, vmin, vmax, grid = false } = options;
  const batch = grid !== false;
  const dense = toDenseArray(input, 'imgify input');
  const ndim = dense.shape.length;
  if (batch ? ndim !== 3 && ndim !== 4 : ndim !== 2 && ndim !== 3) {
    throw shapeError(
      dense.shape,
      batch
        ? '3 or 4 axes with grid: [N, H, W] or [N, H, W, C] (C = 1 or 3)'
        : '2 or 3 axes: [H, W] or [H, W, C] (C = 1 or 3)',
    );
  }
  const { data, shape } = channelsLast(dense, batch);
  if (shape.length === (batch ? 3 : 2)) shape.push(1);
  for (const [name, v] of [
    ['vmin', vmin],
    ['vmax', vmax],
  ] as const) {
    if (v !== undefined && !Number.isFinite(v)) {
      throw new CrpError('invalid-argument', `imgify ${name} must be a finite number; got ${v}`);
    }
  }
  if (vmin !== undefined && vmax !== undefined && !(vmax > vmin)) {
    throw new CrpError('invalid-argument', `imgify needs vmax > vmin; got vmin ${vmin}, vmax ${vmax}`);
  }
  if (dense.dtype === 'uint8') {
    return { shape, bytes: Uint8Array.from(data), scaled: undefined };
  }
  assertFinite(data, 'imgify input');
  const single = dense.dtype === 'float32';
  const n = batch ? shape[0]! : 1;
  const per = data.length / Math.max(n, 1);
  const bytes = new Uint8Array(data.length);
  const scaled = new Float64Array(data.length);
  for (let b = 0; b < n; b++) {
    const start = b * per;
    const end = start + per;
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    if (vmin === undefined || vmax === undefined) {
      for (let i = start; i < end; i++) {
        const a = data[i]!;
        if (symmetric) {
          const m = Math.abs(a);
          if (m > hi) hi = m;
        } else {
          if (a < lo) lo = a;
          if (a > hi) hi = a;
        }
      }
      if (symmetric) lo = -hi;
    }
    const low = vmin ?? lo;
    const high = vmax ?? hi;
    let offset: number;
    let range: number;
    if (single) {
      offset = f32(low);
      // numpy: two explicit bounds are subtracted as float64 scalars, otherwise in float32
      range = vmin !== undefined && vmax !== undefined ? f32(high - low) : f32(f32(high) - offset);
    } else {
      offset = low;
      range = high - low;
    }
    for (let i = start; i < end; i++) {
      let s: number;
      if (range === 0) s = symmetric ? 127.5 : 0;
      else if (single) s = f32(f32(f32(data[i]! - offset) / range) * 255);
      else s = ((data[i]! - offset) / range) * 255;
      scaled[i] = s;
      bytes[i] = s <= 0 ? 0 : s >= 255 ? 255 : Math.trunc(s);
    }
  }
  return { shape, bytes, scaled };
}

/** Lays a `[N, H, W, C]` byte batch out in a grid, as `zennit.image.gridify` does. Returns `[H', W', C]`. */
function gridify(
  bytes: Uint8Array,
  shape: readonly number[],
  grid: true | readonly [number, number],
  fill: number | readonly number[] | undefined,
): { bytes: Uint8Array; shape: [number, number, number] } {
  const [n, h, w, c] = shape as [number, number, number, number];
  let rows: number;
  let cols: number;
  if (grid === true) {
    cols = Math.floor(Math.sqrt(n));
    rows = cols === 0 ? 0 : Math.ceil(n / cols);
  } else {
    if (!Array.isArray(grid) || grid.length !== 2 || !grid.every((v) => Number.isInteger(v) && v > 0)) {
      throw new CrpError(
        'invalid-argument',
        `imgify grid ${JSON.stringify(grid)} is invalid; use true or [rows, cols] with positive integers`,
      );
    }
    [rows, cols] = grid as [number, number];
  }
  let fillValues: number[];
  if (fill === undefined) {
    fillValues = new Array<number>(c).fill(255);
    for (let i = 0; i < bytes.length; i++) {
      const ch = i % c;
      if (bytes[i]! < fillValues[ch]!) fillValues[ch] = bytes[i]!;
    }
  } else {
    const values = typeof fill === 'number' ? new Array<number>(c).fill(fill) : [...fill];
    if (values.length !== c || values.some((v) => !Number.isFinite(v) || v < 0 || v >= 256)) {
      throw new CrpError(
        'invalid-argument',
        `imgify gridfill ${JSON.stringify(fill)} is invalid; use a byte value 0..255 (a palette index for single-channel input) or ${c} of them`,
      );
    }
    fillValues = values.map((v) => Math.trunc(v));
  }
  const height = rows * h;
  const width = cols * w;
  const out = new Uint8Array(height * width * c);
  const per = h * w * c;
  for (let cell = 0; cell < rows * cols; cell++) {
    const r = Math.floor(cell / cols);
    const q = cell % cols;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const dst = ((r * h + y) * width + q * w + x) * c;
        for (let ch = 0; ch < c; ch++) {
          out[dst + ch] = cell < n ? bytes[cell * per + (y * w + x) * c + ch]! : fillValues[ch]!;
        }
      }
    }
  }
  return { bytes: out, shape: [height, width, c] };
}

/**
 * Turns a heatmap (or a batch of heatmaps, or an image) into an RGB image, byte-identical to
 * `zennit.image.imgify`: normalise (see {@link normalizeToBytes}), lay out a grid if asked, and colour
 * single-channel data through the palette of `cmap` at `level`.
 *
 * @param input - `[H, W]` heatmap, `[H, W, 3]` image, or with `grid` a batch `[N, H, W]` / `[N, H, W, C]`; a
 *   `tf.Tensor`, an ndarray or `{ data, shape }`
 * @returns a new RGB {@link RasterImage} owned by the caller
 *
 * @example
 * ```ts
 * const rgb = imgify({ data: heat, shape: [224, 224] }, { cmap: 'bwr', symmetric: true });
 * await writePng('heatmap.png', rgb);
 * ```
 */
export function imgify(input: ArrayInput, options: ImgifyOptions = {}): RasterImage {
  const { cmap = 'bwr', level = 1, grid = false, gridfill } = options;
  const colormap = getColorMap(cmap);
  const normalized = normalizeToBytes(input, options);
  let { bytes } = normalized;
  let [height, width, channels] = normalized.shape as [number, number, number];
  if (grid !== false) {
    const gridded = gridify(bytes, normalized.shape, grid, gridfill);
    bytes = gridded.bytes;
    [height, width, channels] = gridded.shape;
  }
  if (channels === 3) return { width, height, channels: 3, data: bytes };
  const pal = colormap.palette(level);
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < bytes.length; p++) {
    const k = bytes[p]! * 3;
    out[p * 3] = pal[k]!;
    out[p * 3 + 1] = pal[k + 1]!;
    out[p * 3 + 2] = pal[k + 2]!;
  }
  return { width, height, channels: 3, data: out };
}

/** Options of {@link toRasterImage}. */
export interface ToRasterImageOptions {
  /** Lower bound of float input (default: its minimum). */
  vmin?: number;
  /** Upper bound of float input (default: its maximum). */
  vmax?: number;
}

/**
 * Reads an image given as a {@link RasterImage} (returned as is) or as an array: `[H, W]`, `[H, W, C]` or
 * `[1, H, W, C]` with C = 1, 3 or 4 (4 only for uint8). uint8 data is taken as pixel values; float data is
 * min-max normalised over the whole image (or with `vmin` / `vmax`), as zennit's `imgify` does for images.
 *
 * @throws CrpError `invalid-shape` for other shapes, `invalid-value` for NaN / Inf.
 */
export function toRasterImage(
  input: RasterImage | ArrayInput,
  options: ToRasterImageOptions = {},
): RasterImage {
  if (isRasterImage(input)) return input;
  if (
    (input as Partial<RasterImage>).width !== undefined &&
    (input as Partial<RasterImage>).channels !== undefined
  ) {
    assertRasterImage(input);
  }
  const dense = toDenseArray(input as ArrayInput, 'image');
  let shape = [...dense.shape];
  if (shape.length === 4 && shape[0] === 1) shape = shape.slice(1);
  if (shape.length === 2) shape.push(1);
  const [h, w, c] = shape as [number, number, number];
  const channelsOk = dense.dtype === 'uint8' ? c === 1 || c === 3 || c === 4 : c === 1 || c === 3;
  if (shape.length !== 3 || !channelsOk) {
    throw new CrpError(
      'invalid-shape',
      `image has shape [${dense.shape.join(', ')}]; expected [H, W], [H, W, C] or [1, H, W, C] with C = 1 or 3 (or 4 for uint8 data)`,
    );
  }
  if (dense.dtype === 'uint8') {
    return { width: w, height: h, channels: c as 1 | 3 | 4, data: Uint8Array.from(dense.data) };
  }
  const { bytes } = normalizeToBytes(
    { data: dense.data, shape: [h, w, c] },
    {
      ...(options.vmin === undefined ? {} : { vmin: options.vmin }),
      ...(options.vmax === undefined ? {} : { vmax: options.vmax }),
    },
  );
  return { width: w, height: h, channels: c as 1 | 3, data: bytes };
}

/**
 * Deterministic synthetic inputs for the gallery and the tests: a small painted scene (sky, sun, hills, a
 * house) and relevance maps that point at its parts, so that every view can be checked by eye without a
 * model or a data set.
 */
import type { RasterImage } from '../src/index.js';

/** A `size` x `size` RGB scene. */
export function syntheticScene(size = 128): RasterImage {
  const data = new Uint8Array(size * size * 3);
  const s = size / 128;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const t = y / size;
      // sky: blue to pale
      let rgb: [number, number, number] = [120 + 100 * t, 170 + 70 * t, 235 + 15 * t];
      // sun
      const dx = x - 98 * s;
      const dy = y - 28 * s;
      if (dx * dx + dy * dy < (13 * s) ** 2) rgb = [252, 211, 77];
      // hills
      const hill = 82 * s + 10 * s * Math.sin(x / (14 * s));
      if (y > hill) rgb = [74 + 20 * Math.sin(y / (5 * s)), 140 + 25 * t, 70];
      // house body and roof
      if (x > 26 * s && x < 62 * s && y > 64 * s && y < 98 * s) rgb = [190, 70, 55];
      if (y <= 64 * s && y > 44 * s && Math.abs(x - 44 * s) < (y - 44 * s) * 1.0) rgb = [110, 60, 50];
      // door
      if (x > 39 * s && x < 49 * s && y > 80 * s && y < 98 * s) rgb = [80, 50, 35];
      const p = (y * size + x) * 3;
      data[p] = Math.round(rgb[0]);
      data[p + 1] = Math.round(rgb[1]);
      data[p + 2] = Math.round(rgb[2]);
    }
  }
  return { width: size, height: size, channels: 3, data };
}

/** Gaussian blobs `[cx, cy, sigma, amplitude]` in units of a 128 px image. */
export type Blob = readonly [number, number, number, number];

/** The default relevance: positive on the house and the sun, negative on the hills. */
export const SCENE_BLOBS: readonly Blob[] = [
  [44, 72, 12, 1],
  [98, 28, 8, 0.6],
  [100, 104, 14, -0.55],
];

/** A float32 `[size, size]` relevance map made of Gaussian blobs (see {@link SCENE_BLOBS}). */
export function syntheticHeatmap(size = 128, blobs: readonly Blob[] = SCENE_BLOBS): Float32Array {
  const out = new Float32Array(size * size);
  const s = size / 128;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let v = 0;
      for (const [cx, cy, sigma, amp] of blobs) {
        const d2 = (x - cx * s) ** 2 + (y - cy * s) ** 2;
        v += amp * Math.exp(-d2 / (2 * (sigma * s) ** 2));
      }
      out[y * size + x] = v;
    }
  }
  return out;
}

/** A deterministic pseudo-random generator for test data: the toolkit's mulberry32. */
export { mulberry32 as seededRandom } from '@crp/common';

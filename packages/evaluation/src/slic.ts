import { CrpError } from '@crp/common';

/** Options of {@link slic}: scikit-image's `slic` parameters (its defaults; `startLabel` defaults to 0 as Quantus
 * calls it). */
export interface SlicOptions {
  /** Approximate number of superpixels (skimage `n_segments`); default 100. */
  nSegments?: number;
  /** Weight of space against colour (skimage `compactness`); higher gives squarer superpixels. Default 10. */
  compactness?: number;
  /** k-means iterations at most (skimage `max_num_iter`); default 10. */
  maxNumIter?: number;
  /** Convert a three-channel image from RGB to CIE-Lab first (skimage `convert2lab`); default: when it has three
   * channels. */
  convert2lab?: boolean;
  /** Merge superpixels smaller than `minSizeFactor` of the average into a neighbour (skimage
   * `enforce_connectivity`); default true. */
  enforceConnectivity?: boolean;
  /** skimage `min_size_factor`; default 0.5. */
  minSizeFactor?: number;
  /** skimage `max_size_factor`; default 3. */
  maxSizeFactor?: number;
  /** The first label, 0 or 1 (skimage `start_label`); default 0, as Quantus calls it. */
  startLabel?: 0 | 1;
}

/** One image for {@link slic}: HWC values (any range; SLIC rescales them to [0, 1]). */
export interface SlicImage {
  data: ArrayLike<number>;
  height: number;
  width: number;
  channels: number;
}

/**
 * SLIC superpixels (Achanta et al. 2012) as scikit-image 0.19's `segmentation.slic` computes them without a mask
 * and with `sigma` 0 (how Quantus's IROF calls it): the image rescaled to [0, 1], RGB converted to CIE-Lab, seeds
 * on skimage's regular grid with colour 0, k-means with the distance `spatial / step^2 + colour^2 /
 * compactness^2` inside a window of two grid steps, then connected components, where those smaller than half a
 * superpixel join the neighbour met last. Returns the label of each pixel (H * W, row-major). Follows skimage's
 * code step by step, so that the labels are skimage's, not just an equivalent segmentation.
 */
export function slic(image: SlicImage, options: SlicOptions = {}): Int32Array {
  const { height: h, width: w, channels: ch } = image;
  const nSegments = options.nSegments ?? 100;
  const compactness = options.compactness ?? 10;
  const maxNumIter = options.maxNumIter ?? 10;
  const startLabel = options.startLabel ?? 0;
  if (!(h >= 1 && w >= 1 && ch >= 1) || image.data.length !== h * w * ch) {
    throw new CrpError(
      'invalid-shape',
      `slic: image of ${image.data.length} values is not ${h} x ${w} x ${ch} (height x width x channels)`,
    );
  }
  if (!(Number.isInteger(nSegments) && nSegments >= 1)) {
    throw new CrpError('invalid-value', `slic: nSegments must be an integer >= 1; got ${nSegments}`);
  }
  if (!(compactness > 0)) {
    throw new CrpError('invalid-value', `slic: compactness must be > 0; got ${compactness}`);
  }
  if (startLabel !== 0 && startLabel !== 1) {
    throw new CrpError('invalid-value', `slic: startLabel must be 0 or 1; got ${String(startLabel)}`);
  }
  const convert = options.convert2lab ?? ch === 3;
  if (convert && ch !== 3) {
    throw new CrpError('invalid-value', `slic: convert2lab needs an RGB image (3 channels); got ${ch}`);
  }
  const img = features(image, convert, 1 / compactness);
  const grid = regularGrid([1, h, w], nSegments);
  const centroids: [number, number][] = [];
  for (let y = grid[1]!.start; y < h; y += grid[1]!.step) {
    for (let x = grid[2]!.start; x < w; x += grid[2]!.step) centroids.push([y, x]);
  }
  // skimage: step = max of the grid's steps, passed to Cython as a C float
  const step = Math.fround(Math.max(grid[0]!.stepOrOne, grid[1]!.stepOrOne, grid[2]!.stepOrOne));
  const labels = kmeans(img, h, w, ch, centroids, step, maxNumIter, startLabel);
  if (options.enforceConnectivity === false) return labels;
  const segmentSize = (h * w) / centroids.length;
  const minSize = Math.trunc((options.minSizeFactor ?? 0.5) * segmentSize);
  const maxSize = Math.trunc((options.maxSizeFactor ?? 3) * segmentSize);
  return enforceConnectivity(labels, h, w, minSize, maxSize, startLabel);
}

/** skimage's preprocessing: rescale to [0, 1] over all values, RGB -> Lab if asked, times 1 / compactness. */
function features(image: SlicImage, lab: boolean, ratio: number): Float64Array {
  const img = Float64Array.from(image.data);
  let min = Number.POSITIVE_INFINITY;
  for (const v of img) if (v < min) min = v;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < img.length; i++) {
    img[i] = img[i]! - min;
    if (img[i]! > max) max = img[i]!;
  }
  if (max !== 0) for (let i = 0; i < img.length; i++) img[i] = img[i]! / max;
  if (lab) for (let p = 0; p < img.length; p += 3) rgbToLab(img, p);
  for (let i = 0; i < img.length; i++) img[i] = img[i]! * ratio;
  return img;
}

// skimage.color: sRGB (D65) -> XYZ -> CIE-Lab with the 2-degree observer
const XYZ_FROM_RGB = [
  [0.412453, 0.35758, 0.180423],
  [0.212671, 0.71516, 0.072169],
  [0.019334, 0.119193, 0.950227],
] as const;
const WHITE_D65 = [0.95047, 1, 1.08883] as const;

function rgbToLab(img: Float64Array, p: number): void {
  const lin = [0, 1, 2].map((c) => {
    const v = img[p + c]!;
    return v > 0.04045 ? ((v + 0.055) / 1.055) ** 2.4 : v / 12.92;
  });
  const f = XYZ_FROM_RGB.map((row, j) => {
    const t = (row[0] * lin[0]! + row[1] * lin[1]! + row[2] * lin[2]!) / WHITE_D65[j]!;
    return t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116;
  });
  img[p] = 116 * f[1]! - 16;
  img[p + 1] = 500 * (f[0]! - f[1]!);
  img[p + 2] = 200 * (f[1]! - f[2]!);
}

interface GridAxis {
  start: number;
  step: number;
  /** skimage's `float(s.step) if s.step is not None else 1.0`. */
  stepOrOne: number;
}

/** numpy's round (half to even). */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** skimage.util.regular_grid: about `nPoints` points spaced evenly over an array of shape `shape`. */
function regularGrid(shape: number[], nPoints: number): GridAxis[] {
  const ndim = shape.length;
  const spaceSize = shape.reduce((a, b) => a * b, 1);
  if (spaceSize <= nPoints) return shape.map(() => ({ start: 0, step: 1, stepOrOne: 1 }));
  const order = shape.map((_, i) => i).sort((a, b) => shape[a]! - shape[b]! || a - b);
  const sorted = order.map((i) => shape[i]!);
  const steps = new Array<number>(ndim).fill((spaceSize / nPoints) ** (1 / ndim));
  if (sorted.some((d, i) => d < steps[i]!)) {
    for (let dim = 0; dim < ndim; dim++) {
      steps[dim] = sorted[dim]!;
      const rest = sorted.slice(dim + 1).reduce((a, b) => a * b, 1);
      for (let j = dim + 1; j < ndim; j++) steps[j] = (rest / nPoints) ** (1 / (ndim - dim - 1));
      if (sorted.every((d, i) => d >= steps[i]!)) break;
    }
  }
  const out = new Array<GridAxis>(ndim);
  order.forEach((axis, k) => {
    const step = roundHalfEven(steps[k]!);
    out[axis] = { start: Math.trunc(Math.floor(steps[k]! / 2)), step, stepOrOne: step };
  });
  return out;
}

/** skimage's `_slic_cython` (no mask, not SLIC-zero) on one 2-D image of `ch` features per pixel. */
function kmeans(
  img: Float64Array,
  h: number,
  w: number,
  ch: number,
  centroids: [number, number][],
  step: number,
  maxNumIter: number,
  startLabel: number,
): Int32Array {
  const n = centroids.length;
  const nf = 2 + ch;
  // [y, x, colour...] per segment; the colour starts at 0, as in skimage
  const seg = new Float64Array(n * nf);
  centroids.forEach(([y, x], k) => {
    seg[k * nf] = y;
    seg[k * nf + 1] = x;
  });
  // the Cython recomputes the grid steps from the number of centroids
  const g = regularGrid([1, h, w], n);
  const stepY = g[1]!.step;
  const stepX = g[2]!.step;
  const spatialWeight = 1 / (step * step);
  const nearest = new Int32Array(h * w).fill(startLabel - 1);
  const distance = new Float64Array(h * w);
  const count = new Float64Array(n);
  for (let it = 0; it < maxNumIter; it++) {
    let change = false;
    distance.fill(Number.MAX_VALUE);
    for (let k = 0; k < n; k++) {
      const cy = seg[k * nf]!;
      const cx = seg[k * nf + 1]!;
      // a segment that lost all its pixels has NaN centre (0 / 0 in skimage); it takes no pixels
      if (Number.isNaN(cy)) continue;
      const yMin = Math.trunc(Math.max(cy - 2 * stepY, 0));
      const yMax = Math.trunc(Math.min(cy + 2 * stepY + 1, h));
      const xMin = Math.trunc(Math.max(cx - 2 * stepX, 0));
      const xMax = Math.trunc(Math.min(cx + 2 * stepX + 1, w));
      for (let y = yMin; y < yMax; y++) {
        const dy = (cy - y) * (cy - y);
        for (let x = xMin; x < xMax; x++) {
          const dx = (cx - x) * (cx - x);
          // skimage adds dz (0 here) first: (dz + dy + dx)
          let d = (0 + dy + dx) * spatialWeight;
          let colour = 0;
          const p = (y * w + x) * ch;
          for (let c = 0; c < ch; c++) {
            const t = img[p + c]! - seg[k * nf + 2 + c]!;
            colour += t * t;
          }
          d += colour;
          const q = y * w + x;
          if (distance[q]! > d) {
            nearest[q] = k + startLabel;
            distance[q] = d;
            change = true;
          }
        }
      }
    }
    if (!change) break;
    count.fill(0);
    seg.fill(0);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const k = nearest[y * w + x]! - startLabel;
        count[k] = count[k]! + 1;
        seg[k * nf] = seg[k * nf]! + y;
        seg[k * nf + 1] = seg[k * nf + 1]! + x;
        const p = (y * w + x) * ch;
        for (let c = 0; c < ch; c++) seg[k * nf + 2 + c] = seg[k * nf + 2 + c]! + img[p + c]!;
      }
    }
    for (let k = 0; k < n; k++) for (let f = 0; f < nf; f++) seg[k * nf + f] = seg[k * nf + f]! / count[k]!;
  }
  return nearest;
}

/** skimage's `_enforce_label_connectivity_cython` in 2-D: relabel connected components in scan order; a
 * component smaller than `minSize` takes the label of the labelled neighbour its breadth-first search met last. */
function enforceConnectivity(
  labels: Int32Array,
  h: number,
  w: number,
  minSize: number,
  maxSize: number,
  startLabel: number,
): Int32Array {
  const maskLabel = startLabel - 1;
  const out = new Int32Array(h * w).fill(maskLabel);
  const list = new Int32Array(Math.max(maxSize, 1));
  // skimage's neighbour order: x+1, x-1, y+1, y-1 (z does not exist in 2-D)
  const ddx = [1, -1, 0, 0];
  const ddy = [0, 0, 1, -1];
  let next = startLabel;
  for (let q0 = 0; q0 < h * w; q0++) {
    if (labels[q0] === maskLabel || out[q0]! > maskLabel) continue;
    let adjacent = next;
    const label = labels[q0]!;
    out[q0] = next;
    let size = 1;
    let visited = 0;
    list[0] = q0;
    while (visited < size && size < maxSize) {
      const y = Math.trunc(list[visited]! / w);
      const x = list[visited]! % w;
      for (let i = 0; i < 4; i++) {
        const yy = y + ddy[i]!;
        const xx = x + ddx[i]!;
        if (xx < 0 || xx >= w || yy < 0 || yy >= h) continue;
        const q = yy * w + xx;
        if (labels[q] === label && out[q] === maskLabel) {
          out[q] = next;
          list[size++] = q;
          if (size >= maxSize) break;
        } else if (out[q]! > maskLabel && out[q] !== next) {
          adjacent = out[q]!;
        }
      }
      visited++;
    }
    if (size < minSize) {
      for (let i = 0; i < size; i++) out[list[i]!] = adjacent;
    } else {
      next++;
    }
  }
  return out;
}

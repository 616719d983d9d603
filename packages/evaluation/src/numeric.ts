/**
 * The numerical kernels the metrics share, each written after the numpy/scipy/scikit-image function Quantus
 * calls, in float64 (as those functions compute).
 */

/**
 * Indices that sort `values` descending (`descending`) or ascending. Ties keep index order (a stable sort);
 * numpy's default argsort is not stable, so where an explanation has ties (a heatmap broadcast over the colour
 * channels) Quantus may order them differently. Both orders are valid; the perturbed sets differ only at steps
 * that split a group of equal values.
 */
export function argsort(values: ArrayLike<number>, descending: boolean): Int32Array {
  const order = Int32Array.from({ length: values.length }, (_, i) => i);
  const sign = descending ? -1 : 1;
  return order.sort((a, b) => sign * (values[a]! - values[b]!) || a - b);
}

/** Area under a curve by the trapezoidal rule with unit spacing (numpy's `trapz(y, dx=1)`, Quantus's
 * `calculate_auc`). */
export function auc(curve: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 1; i < curve.length; i++) sum += (curve[i - 1]! + curve[i]!) / 2;
  return sum;
}

/** Pearson's r (scipy's `pearsonr`): NaN when either side is constant. */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= n;
  mb /= n;
  let saa = 0;
  let sbb = 0;
  let sab = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma;
    const db = b[i]! - mb;
    saa += da * da;
    sbb += db * db;
    sab += da * db;
  }
  if (saa === 0 || sbb === 0) return Number.NaN;
  const r = sab / Math.sqrt(saa) / Math.sqrt(sbb);
  return Math.max(-1, Math.min(1, r));
}

/** Ranks 1..n with ties given their average rank (scipy's `rankdata(method='average')`). */
export function ranks(values: ArrayLike<number>): Float64Array {
  const order = values instanceof Float32Array ? float32Order(values) : undefined;
  return averageRanks(values, order ?? argsort(values, false));
}

/** The ranks of `values` visited in ascending `order`: a run of equal values shares its average rank. */
function averageRanks(values: ArrayLike<number>, order: Int32Array): Float64Array {
  const out = new Float64Array(values.length);
  let i = 0;
  while (i < order.length) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]!] === values[order[i]!]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) out[order[k]!] = rank;
    i = j + 1;
  }
  return out;
}

/** Bits of the key a pass of {@link float32Order}'s radix sort places by (3 passes over 32 bits). */
const RADIX_BITS = 11;

/**
 * An ascending order of float32 values without a comparator: each value's bits become an unsigned key in the
 * values' order, sorted by a stable least-significant-digit radix sort (3 counting passes), so equal keys keep
 * their index order: the order of a sort by (key, index). It differs from {@link argsort}'s only inside a run of
 * equal values (-0 before 0), which share their average rank anyway. 0.1 ms for a 64x64 heatmap, against
 * 0.4-0.6 ms for one native sort of the keys packed with their indices into doubles (MPRT ranks one per
 * layer). `undefined` where the values hold a NaN (then the comparator sort).
 */
function float32Order(values: Float32Array): Int32Array | undefined {
  const n = values.length;
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  let keys = new Uint32Array(n);
  let order = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(values[i]!)) return undefined;
    const b = bits[i]!;
    // negative: all bits flipped (larger magnitude first); non-negative: above every negative
    keys[i] = b >= 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
    order[i] = i;
  }
  let nextKeys = new Uint32Array(n);
  let nextOrder = new Int32Array(n);
  const mask = (1 << RADIX_BITS) - 1;
  const counts = new Int32Array(1 << RADIX_BITS);
  for (let shift = 0; shift < 32; shift += RADIX_BITS) {
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[(keys[i]! >>> shift) & mask]!++;
    // counts become each digit's first place
    let sum = 0;
    for (let d = 0; d < counts.length; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const at = counts[(keys[i]! >>> shift) & mask]!++;
      nextKeys[at] = keys[i]!;
      nextOrder[at] = order[i]!;
    }
    [keys, nextKeys] = [nextKeys, keys];
    [order, nextOrder] = [nextOrder, order];
  }
  return order;
}

/** Spearman's rho (scipy's `spearmanr`): Pearson's r of the average ranks. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return pearson(ranks(a), ranks(b));
}

/** scipy.ndimage's uniform_filter1d (mode `reflect`) as its C code computes it: a running mean in double,
 * updated sample by sample, each output rounded to the input's float32. */
function uniformFilter32(line: Float32Array, size: number): Float32Array {
  const n = line.length;
  const before = size >> 1;
  // reflect: d c b a | a b c d | d c b a
  const at = (i: number): number => {
    let j = i;
    while (j < 0 || j >= n) j = j < 0 ? -j - 1 : 2 * n - j - 1;
    return line[j]!;
  };
  const out = new Float32Array(n);
  let tmp = 0;
  for (let k = -before; k < size - before; k++) tmp += at(k);
  tmp /= size;
  out[0] = tmp;
  for (let i = 1; i < n; i++) {
    tmp += (at(i + size - before - 1) - at(i - before - 1)) / size;
    out[i] = tmp;
  }
  return out;
}

/**
 * Structural similarity of two 1-D signals as scikit-image 0.19's `structural_similarity` computes it with
 * Quantus's arguments: a 7-sample uniform window, sample covariance (7/6), K1 = 0.01, K2 = 0.03, the mean over
 * the positions at least 3 samples from either end, and `dataRange` = max - min over both signals (Quantus).
 * scikit-image keeps float32 input in float32, so every step is rounded to float32 here too (the variances are
 * differences of close numbers: float64 would give visibly different values). Quantus flattens explanations
 * before it calls SSIM, so the window slides along the flattened rows: this is the SSIM of the flattened maps,
 * not of the images (a Quantus property that is followed here).
 */
export function ssim(a: ArrayLike<number>, b: ArrayLike<number>, winSize = 7): number {
  const f = Math.fround;
  const n = a.length;
  if (n < winSize) return Number.NaN;
  const x = Float32Array.from(a);
  const y = Float32Array.from(b);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    lo = Math.min(lo, x[i]!, y[i]!);
    hi = Math.max(hi, x[i]!, y[i]!);
  }
  const range = Math.abs(f(hi - lo));
  const c1 = (0.01 * range) ** 2;
  const c2 = (0.03 * range) ** 2;
  const covNorm = winSize / (winSize - 1);
  const ux = uniformFilter32(x, winSize);
  const uy = uniformFilter32(y, winSize);
  const uxx = uniformFilter32(
    x.map((v) => v * v),
    winSize,
  );
  const uyy = uniformFilter32(
    y.map((v) => v * v),
    winSize,
  );
  const uxy = uniformFilter32(
    x.map((v, i) => v * y[i]!),
    winSize,
  );
  const pad = (winSize - 1) >> 1;
  let sum = 0;
  for (let i = pad; i < n - pad; i++) {
    const mx = ux[i]!;
    const my = uy[i]!;
    const vx = f(covNorm * f(uxx[i]! - f(mx * mx)));
    const vy = f(covNorm * f(uyy[i]! - f(my * my)));
    const vxy = f(covNorm * f(uxy[i]! - f(mx * my)));
    const a1 = f(f(f(2 * mx) * my) + c1);
    const a2 = f(f(2 * vxy) + c2);
    const b1 = f(f(f(mx * mx) + f(my * my)) + c1);
    const b2 = f(f(vx + vy) + c2);
    sum += f(f(a1 * a2) / f(b1 * b2));
  }
  return sum / (n - 2 * pad);
}

/** Euclidean norm. */
export function norm2(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]! * values[i]!;
  return Math.sqrt(s);
}

/** Mean of the values that are not NaN (numpy's `nanmean`); NaN when all are. */
export function nanMean(values: readonly number[]): number {
  const kept = values.filter((v) => !Number.isNaN(v));
  return kept.length === 0 ? Number.NaN : kept.reduce((s, v) => s + v, 0) / kept.length;
}

/**
 * Exact sums of doubles. A sum is kept as a short list of doubles (Shewchuk's non-overlapping expansion, as in
 * Python's `math.fsum`) whose exact total is the exact total of every number added; {@link exactValue} rounds
 * it once, correctly. Addition of real numbers is associative, so any split of the same numbers into partial
 * sums and any order of merging them give the same double: a data set summed in one process, on worker
 * threads, on queue workers or in `--shard i/n` files agrees to the last bit.
 *
 * Plain JSON (arrays of numbers); typically one to three doubles per sum.
 */
export type ExactSum = number[];

/** One exact sum per channel (or concept). */
export type ExactVector = ExactSum[];

/** Adds `value` into `sum` exactly (in place) and returns `sum`. Non-finite values make the sum that value (as
 * a plain sum would: NaN absorbs, +Inf + -Inf is NaN). */
export function addExact(sum: ExactSum, value: number): ExactSum {
  const last = sum[sum.length - 1];
  if (!Number.isFinite(value) || (last !== undefined && !Number.isFinite(last))) {
    const plain = (last !== undefined && !Number.isFinite(last) ? last : 0) + value;
    sum.length = 0;
    sum.push(plain);
    return sum;
  }
  let x = value;
  let kept = 0;
  for (let j = 0; j < sum.length; j++) {
    let y = sum[j]!;
    if (Math.abs(x) < Math.abs(y)) {
      const t = x;
      x = y;
      y = t;
    }
    const hi = x + y;
    const lo = y - (hi - x);
    if (lo !== 0) sum[kept++] = lo;
    x = hi;
  }
  sum.length = kept;
  sum.push(x);
  return sum;
}

/** Adds every part of `other` into `sum` (exact) and returns `sum`. */
export function mergeExact(sum: ExactSum, other: readonly number[]): ExactSum {
  for (const v of other) addExact(sum, v);
  return sum;
}

/** The correctly rounded value of an exact sum (CPython's fsum rounding, half-way cases to even). */
export function exactValue(sum: readonly number[]): number {
  let n = sum.length;
  if (n === 0) return 0;
  let hi = sum[--n]!;
  if (!Number.isFinite(hi)) return hi;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = sum[--n]!;
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  // the rest would round hi the wrong way only when it pushes a half-way lo past the half
  if (n > 0 && ((lo < 0 && sum[n - 1]! < 0) || (lo > 0 && sum[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  // + 0: -0 would not survive JSON, and a plain sum from 0 never gives it
  return hi + 0;
}

/** `n` empty exact sums. */
export function exactVector(n: number): ExactVector {
  return Array.from({ length: n }, () => []);
}

/** Adds `values[k]` into `into[k]` for every k (exact). */
export function addVector(into: ExactVector, values: ArrayLike<number>): ExactVector {
  for (let k = 0; k < values.length; k++) addExact(into[k]!, values[k]!);
  return into;
}

/** Adds every sum of `other` into `into` (exact). */
export function mergeVector(into: ExactVector, other: readonly (readonly number[])[]): ExactVector {
  other.forEach((s, k) => {
    mergeExact(into[k]!, s);
  });
  return into;
}

/** The rounded value of each sum. */
export function vectorValues(v: readonly (readonly number[])[]): number[] {
  return v.map(exactValue);
}

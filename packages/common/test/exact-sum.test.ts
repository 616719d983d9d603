import { describe, expect, it } from 'vitest';
import { addExact, exactValue, mergeExact, mulberry32, permutation } from '../src/index.js';

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  return Array.from(permutation(xs.length, mulberry32(seed)), (i) => xs[i]!);
}

describe('exact sums', () => {
  it('give the correctly rounded sum, whatever the grouping', () => {
    expect(exactValue(mergeExact([], [1e16, 1, -1e16]))).toBe(1);
    const tenth = new Array<number>(10).fill(0.1);
    expect(tenth.reduce((a, b) => a + b, 0)).not.toBe(1); // a plain sum drifts
    expect(exactValue(mergeExact([], tenth))).toBe(1);
    // the same numbers summed in one go, in reverse and as merged groups: the same double
    const rng = mulberry32(7);
    const xs = Array.from({ length: 500 }, () => (rng() - 0.5) * 10 ** Math.floor(rng() * 12 - 6));
    const one = exactValue(mergeExact([], xs));
    expect(exactValue(mergeExact([], [...xs].reverse()))).toBe(one);
    const groups = [xs.slice(0, 123), xs.slice(123, 300), xs.slice(300)].map((g) => mergeExact([], g));
    const merged: number[] = [];
    for (const g of shuffled(groups, 3)) mergeExact(merged, g);
    expect(exactValue(merged)).toBe(one);
    // and the value is the exact sum: the sorted-by-magnitude pairwise check against a 2-term residual
    const back = mergeExact([], xs);
    addExact(back, -one);
    expect(Math.abs(exactValue(back))).toBeLessThanOrEqual(Math.abs(one) * Number.EPSILON);
  });

  it('follow IEEE arithmetic for non-finite values and never give -0', () => {
    expect(exactValue(mergeExact([], [1, Number.POSITIVE_INFINITY, 2]))).toBe(Number.POSITIVE_INFINITY);
    expect(exactValue(mergeExact([], [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]))).toBeNaN();
    expect(Object.is(exactValue(mergeExact([], [-0, -0])), 0)).toBe(true);
  });
});

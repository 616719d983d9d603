/**
 * The similarity kernels' fast paths give what their definitions give: float32 ranks from a radix sort of their bits equal
 * the average ranks counted by hand (ties, -0 and 0, infinities, denormals, a view into a larger buffer), and a
 * NaN takes the comparator path unchanged.
 */
import { describe, expect, it } from 'vitest';
import { ranks, spearman } from '../src/index.js';
import { mulberry32 } from './helpers.js';

/** scipy's average rank by its definition: 1 + (number below) + (number equal - 1) / 2. */
function ranksByCounting(values: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) {
    let below = 0;
    let equal = 0;
    for (let j = 0; j < values.length; j++) {
      if (values[j]! < values[i]!) below++;
      else if (values[j] === values[i]) equal++;
    }
    out.push(1 + below + (equal - 1) / 2);
  }
  return out;
}

describe('ranks of float32 values (radix sort of their bits)', () => {
  it('equal the counted average ranks, with ties, signed zeros, infinities and denormals', () => {
    const next = mulberry32(21);
    const special = [0, -0, 1e-45, -1e-45, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 3.5, -3.5];
    // values on a coarse grid: many ties, as in a heatmap broadcast over channels or clipped at zero
    const values = Float32Array.from({ length: 1500 }, (_, i) =>
      i % 50 === 0 ? special[(i / 50) % special.length]! : Math.round((next() - 0.5) * 40) / 8,
    );
    expect(Array.from(ranks(values))).toEqual(ranksByCounting(values));
    // the same through the comparator path (a plain array)
    expect(Array.from(ranks(Array.from(values)))).toEqual(ranksByCounting(values));
  });

  it('read a view at an offset of a larger buffer', () => {
    const buffer = Float32Array.from([9, 9, 9, 2, -1, 2, 7, 9]);
    const view = buffer.subarray(3, 7);
    expect(Array.from(ranks(view))).toEqual([2.5, 1, 2.5, 4]);
  });

  it('with a NaN, follow the comparator sort as before', () => {
    const values = Float32Array.from([3, Number.NaN, 1, 2]);
    expect(Array.from(ranks(values))).toEqual(Array.from(ranks(Array.from(values))));
  });

  it("Spearman's rho on float32 maps equals Pearson's r of the counted ranks", () => {
    const next = mulberry32(5);
    const a = Float32Array.from({ length: 400 }, () => Math.round(next() * 30) / 3);
    const b = Float32Array.from({ length: 400 }, (_, i) => a[i]! + Math.round(next() * 10));
    const ra = ranksByCounting(a);
    const rb = ranksByCounting(b);
    const m = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
    const [ma, mb] = [m(ra), m(rb)];
    let sab = 0;
    let saa = 0;
    let sbb = 0;
    for (let i = 0; i < ra.length; i++) {
      sab += (ra[i]! - ma) * (rb[i]! - mb);
      saa += (ra[i]! - ma) ** 2;
      sbb += (rb[i]! - mb) ** 2;
    }
    expect(spearman(a, b)).toBeCloseTo(sab / Math.sqrt(saa * sbb), 12);
    expect(spearman(a, b)).toBeGreaterThan(0.5);
  });
});

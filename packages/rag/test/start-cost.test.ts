import { mulberry32 } from '@crp/common';
import { describe, expect, it } from 'vitest';
import { DenseIndex, fuseScores, normalizeVector, resolveHybrid } from '../src/index.js';
import { dictionaryChecksum } from '../src/translate/pair-index.js';

// What `crp-rag ask` was made cheaper in (branch ragstart), held to what it computed before.

/** The fusion's result as it was computed before: full sorts of every score (the specification). */
function fuseBySorting(
  dense: number[],
  lexical: number[],
  denseWeight: number,
  topK: number,
  sides?: number[],
) {
  const n = lexical.length;
  const g = (i: number) => sides?.[i] ?? 0;
  const mean = [0, 1].map((s) => {
    const xs = dense.filter((d, i) => g(i) === s && !Number.isNaN(d));
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
  });
  const spread = [0, 1].map((s) => {
    const xs = dense.filter((d, i) => g(i) === s && !Number.isNaN(d));
    const sq = xs.reduce((a, d) => a + (d - mean[s]!) ** 2, 0);
    return xs.length && sq > 0 ? Math.sqrt(sq / xs.length) : 1;
  });
  const lift = dense.map((d, i) => (Number.isNaN(d) ? 0 : Math.max(0, (d - mean[g(i)]!) / spread[g(i)]!)));
  const rank = (xs: number[]) => {
    const order = xs
      .map((_, i) => i)
      .filter((i) => xs[i]! > 0)
      .sort((a, b) => xs[b]! - xs[a]! || a - b);
    const r = new Array<number>(n).fill(0);
    order.forEach((doc, k) => {
      r[doc] = k + 1;
    });
    return r;
  };
  const maxLift = Math.max(0, ...lift);
  const maxLex = Math.max(0, ...lexical);
  const fused = lift.map(
    (l, i) =>
      (maxLift > 0 ? (denseWeight * l) / maxLift : 0) +
      (maxLex > 0 ? ((1 - denseWeight) * lexical[i]!) / maxLex : 0),
  );
  const dr = rank(lift);
  const lr = rank(lexical);
  return rank(fused)
    .map((r, doc) => ({ r, doc }))
    .filter((x) => x.r > 0)
    .sort((a, b) => a.r - b.r)
    .slice(0, topK)
    .map(({ doc }) => ({
      doc,
      score: fused[doc]!,
      ...(dr[doc]! > 0 ? { denseRank: dr[doc]! } : {}),
      ...(lr[doc]! > 0 ? { lexicalRank: lr[doc]! } : {}),
    }));
}

describe('start cost of crp-rag ask: the same results, computed with less', () => {
  it('weighted fusion ranks only its results, as full sorts do (ties by document number, NaN dense, both sides)', () => {
    const rand = mulberry32(7);
    const options = resolveHybrid({});
    for (let trial = 0; trial < 40; trial++) {
      const n = 1 + Math.floor(rand() * 300);
      // coarse values make ties common; some documents have no lexical score or no dense score
      const lexical = Array.from({ length: n }, () => (rand() < 0.4 ? 0 : Math.round(rand() * 8) / 2));
      const dense = Array.from({ length: n }, () =>
        rand() < 0.05 ? Number.NaN : Math.round(rand() * 10) / 10,
      );
      const sides = trial % 2 ? Array.from({ length: n }, () => (rand() < 0.3 ? 1 : 0)) : undefined;
      const topK = 1 + Math.floor(rand() * 25);
      const got = fuseScores(dense, lexical, options, topK, sides);
      expect(got).toEqual(fuseBySorting(dense, lexical, options.denseWeight, topK, sides));
      expect(got.length).toBeGreaterThan(0);
    }
  });

  it('dense scores of one side only: the same values for its rows, NaN for the others', () => {
    const rand = mulberry32(3);
    const vectors = Array.from({ length: 50 }, () =>
      normalizeVector(Float32Array.from({ length: 16 }, () => rand() * 2 - 1)),
    );
    const index = new DenseIndex(vectors, 16);
    const query = normalizeVector(Float32Array.from({ length: 16 }, () => rand() * 2 - 1));
    const sides = Uint8Array.from(vectors, (_, i) => (i % 3 === 0 ? 1 : 0));
    const all = index.scoreAll(query);
    for (const side of [0, 1]) {
      const some = index.scoreAll(query, { sides, side });
      sides.forEach((s, i) => {
        if (s === side) expect(some[i]).toBe(all[i]);
        else expect(some[i]).toBeNaN();
      });
    }
    // a hand-checked row: the cosine of unit vectors is their dot product
    let dot0 = 0;
    for (let j = 0; j < 16; j++) dot0 += vectors[0]![j]! * query[j]!;
    expect(all[0]).toBeCloseTo(dot0, 6);
  });

  it('the dictionary checksum is FNV-1a over little-endian words, then the tail bytes', () => {
    // by hand: h = 0x811c9dc5; h = (h ^ 0x04030201) * 0x01000193; h = (h ^ 5) * 0x01000193 (mod 2^32)
    expect(dictionaryChecksum(Uint8Array.of(1, 2, 3, 4, 5))).toBe(10742443);
    const rand = mulberry32(11);
    const bytes = Uint8Array.from({ length: 1027 }, () => Math.floor(rand() * 256));
    // the same bytes at an unaligned offset, and one changed byte (a stale dictionary.index is refused by this)
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(dictionaryChecksum(shifted.subarray(1))).toBe(dictionaryChecksum(bytes));
    const changed = bytes.slice();
    changed[500] = changed[500]! ^ 1;
    expect(dictionaryChecksum(changed)).not.toBe(dictionaryChecksum(bytes));
  });
});

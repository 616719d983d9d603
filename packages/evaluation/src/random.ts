import { mulberry32, permutation } from '@crp/common';

/**
 * Where a randomised metric gets its random draws. Each metric draws in Quantus's order (samples in lockstep,
 * as Quantus's batched loops do), so a source that replays Quantus's recorded draws reproduces Quantus's numbers
 * exactly; the default, {@link seededRandom}, draws from the toolkit's seeded generator.
 */
export interface RandomSource {
  /** `count` values uniform in [low, high) (a perturbation's noise, a `uniform` baseline per sample). */
  uniform(count: number, low: number, high: number): Float64Array;
  /** `count` standard normal values (numpy's `randn`: ROAD's imputation noise). */
  normal(count: number): Float64Array;
  /** `k` distinct indices of 0..n-1 (numpy's `choice(n, k, replace=False)`). */
  subset(n: number, k: number): Int32Array;
  /** A permutation of 0..n-1 (numpy's `permutation(n)`). */
  permutation(n: number): Int32Array;
  /** An integer in [low, high) (numpy's `randint(low, high)`). */
  integer(low: number, high: number): number;
}

/** A {@link RandomSource} from the toolkit's one seeded generator (`mulberry32` of @crp/common). */
export function seededRandom(seed: number): RandomSource {
  const next = mulberry32(seed);
  return {
    uniform(count, low, high) {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = low + (high - low) * next();
      return out;
    },
    normal(count) {
      // Box-Muller from two uniform draws per value
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const u = 1 - next();
        out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
      }
      return out;
    },
    subset(n, k) {
      // the first k of a seeded permutation: k distinct indices, each subset equally likely
      return permutation(n, next).slice(0, k);
    },
    permutation(n) {
      return permutation(n, next);
    },
    integer(low, high) {
      return low + Math.floor(next() * (high - low));
    },
  };
}

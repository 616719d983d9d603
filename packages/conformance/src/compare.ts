import type { CaseOutcome } from './types.js';
/** Golden tensors as written by the reference generator: row-major `data` in `layout`, or `sameAs` another
 * entry of the same map whose data is identical. */
export interface GoldenTensor {
  layout?: string;
  shape: number[];
  data?: number[];
  sameAs?: string;
}

/** Resolves a golden tensor (following `sameAs` inside `all`) to float32 data. */
export function goldenData(entry: GoldenTensor, all?: Record<string, GoldenTensor>): Float32Array {
  let current = entry;
  const seen = new Set<string>();
  while (current.data === undefined) {
    if (current.sameAs === undefined || all === undefined) {
      throw new Error('golden tensor has neither data nor a resolvable sameAs');
    }
    if (seen.has(current.sameAs)) throw new Error(`sameAs cycle at ${current.sameAs}`);
    seen.add(current.sameAs);
    const next = all[current.sameAs];
    if (next === undefined) throw new Error(`sameAs names a missing entry: ${current.sameAs}`);
    current = next;
  }
  return Float32Array.from(current.data);
}

export interface Deviation {
  /** max |ours - golden| */
  maxAbsDiff: number;
  /** max |golden| */
  maxAbsGolden: number;
  /** the allowed max |ours - golden| */
  tolerance: number;
  /** maxAbsDiff / tolerance: <= 1 passes */
  ratio: number;
}

/** Relative tolerance of the reference README: per tensor, max |ours - golden| <= 1e-4 * max |golden|,
 * with an absolute floor of 1e-7 (all-zero tensors). */
export const RELATIVE_TOLERANCE = 1e-4;
export const ABSOLUTE_FLOOR = 1e-7;

export function deviation(
  ours: ArrayLike<number>,
  golden: ArrayLike<number>,
  relative = RELATIVE_TOLERANCE,
): Deviation {
  if (ours.length !== golden.length) {
    throw new Error(`size mismatch: ours has ${ours.length} values, golden ${golden.length}`);
  }
  let maxAbsDiff = 0;
  let maxAbsGolden = 0;
  for (let i = 0; i < golden.length; i++) {
    const g = golden[i]!;
    const o = ours[i]!;
    const d = Math.abs(o - g);
    // NaN must fail, not vanish in a comparison
    if (!(d <= maxAbsDiff)) maxAbsDiff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    const a = Math.abs(g);
    if (a > maxAbsGolden) maxAbsGolden = a;
  }
  const tolerance = Math.max(relative * maxAbsGolden, ABSOLUTE_FLOOR);
  return { maxAbsDiff, maxAbsGolden, tolerance, ratio: maxAbsDiff / tolerance };
}

/**
 * The relative L2 error ||ours - golden|| / ||golden|| against an allowed `relative` value, as a {@link Deviation}
 * whose `maxAbsDiff` is ||ours - golden||, `maxAbsGolden` ||golden|| and `tolerance` relative * ||golden||. For
 * references whose float32 reproduction is ill-conditioned at a few elements (vendor/reference/vit-b-16), where
 * a max-abs check would measure only the worst element.
 */
export function relativeL2Deviation(
  ours: ArrayLike<number>,
  golden: ArrayLike<number>,
  relative: number,
): Deviation {
  if (ours.length !== golden.length) {
    throw new Error(`size mismatch: ours has ${ours.length} values, golden ${golden.length}`);
  }
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < golden.length; i++) {
    const d = ours[i]! - golden[i]!;
    diff += d * d;
    norm += golden[i]! * golden[i]!;
  }
  const maxAbsDiff = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : Math.sqrt(diff);
  const tolerance = Math.max(relative * Math.sqrt(norm), ABSOLUTE_FLOOR);
  return { maxAbsDiff, maxAbsGolden: Math.sqrt(norm), tolerance, ratio: maxAbsDiff / tolerance };
}

/** Collects per-tensor deviations of one case and reports the worst. */
export class DeviationLog {
  private worstRatio = 0;
  private worstName = '';
  private worstDev: Deviation | undefined;
  readonly failures: string[] = [];

  add(name: string, dev: Deviation): void {
    if (dev.ratio > 1) {
      this.failures.push(
        `${name}: max|diff| ${dev.maxAbsDiff.toExponential(3)} > tol ${dev.tolerance.toExponential(3)}`,
      );
    }
    if (dev.ratio >= this.worstRatio || this.worstDev === undefined) {
      this.worstRatio = dev.ratio;
      this.worstName = name;
      this.worstDev = dev;
    }
  }

  /** Records a check that is not a tensor comparison (e.g. a ranking); a failure makes the case fail. */
  fail(message: string): void {
    this.failures.push(message);
  }

  get worst(): number {
    return this.failures.length > 0 && this.worstRatio <= 1 ? Number.POSITIVE_INFINITY : this.worstRatio;
  }

  /** The case's outcome: it passes when every comparison is within tolerance and no check failed. */
  outcome(id: string, kind: string): CaseOutcome {
    return { id, kind, passed: this.worst <= 1, worst: this.worst, detail: this.summary() };
  }

  summary(): string {
    if (this.failures.length > 0) return this.failures.slice(0, 3).join('; ');
    if (this.worstDev === undefined) return 'nothing compared';
    const d = this.worstDev;
    return `worst at ${this.worstName}: max|diff| ${d.maxAbsDiff.toExponential(2)} (rel ${(d.maxAbsDiff / Math.max(d.maxAbsGolden, 1e-30)).toExponential(2)})`;
  }
}

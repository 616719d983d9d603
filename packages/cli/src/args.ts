import { IMAGENET } from '@crp/models';
import { UsageError } from './usage-error.js';

/** A whole number from the command line (`--name`), with an optional lower bound. */
export function intArg(name: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`--${name} must be a whole number >= ${min}, got '${value}'`);
  return n;
}

/** A number from the command line. */
export function numberArg(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n))
    throw new UsageError(`--${name} must be a number, got '${value}'`);
  return n;
}

/** A comma-separated list (`a,b,c`); empty items are dropped. */
export function listArg(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** A comma-separated list of numbers. */
export function numberListArg(
  name: string,
  value: string | undefined,
  integer = false,
): number[] | undefined {
  return listArg(value)?.map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new UsageError(
        `--${name} must be a comma-separated list of ${integer ? 'whole numbers' : 'numbers'}, got '${value}'`,
      );
    }
    return n;
  });
}

/** A required option. */
export function required<T>(name: string, value: T | undefined): T {
  if (value === undefined) throw new UsageError(`--${name} is required`);
  return value;
}

/** `--input-size 128` or `--input-size 128x160`: the input size of an imported PyTorch model. */
export function inputSizeArg(value: string | undefined): number | [number, number] | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)(?:x(\d+))?$/.exec(value.trim());
  const h = m === null ? Number.NaN : Number(m[1]);
  const w = m?.[2] === undefined ? h : Number(m[2]);
  if (!(Number.isInteger(h) && h >= 1 && Number.isInteger(w) && w >= 1)) {
    throw new UsageError(`--input-size must be N or HxW with positive whole numbers, got '${value}'`);
  }
  return m![2] === undefined ? h : [h, w];
}

/** Per-channel normalisation after scaling to [0, 1]: `--normalize imagenet`, or `--mean a,b,c --std a,b,c`. */
export function normalizationArgs(values: {
  normalize?: string | undefined;
  mean?: string | undefined;
  std?: string | undefined;
}): { mean?: number[]; std?: number[] } {
  let mean = numberListArg('mean', values.mean);
  let std = numberListArg('std', values.std);
  if (values.normalize !== undefined) {
    if (values.normalize.toLowerCase() !== 'imagenet') {
      throw new UsageError(
        `--normalize knows 'imagenet', got '${values.normalize}' (or give --mean and --std)`,
      );
    }
    if (mean !== undefined || std !== undefined)
      throw new UsageError('give --normalize or --mean/--std, not both');
    mean = [...IMAGENET.mean];
    std = [...IMAGENET.std];
  }
  if ((mean === undefined) !== (std === undefined)) throw new UsageError('--mean and --std go together');
  if (mean === undefined || std === undefined) return {};
  if (mean.length !== std.length || ![1, 3].includes(mean.length)) {
    throw new UsageError(
      '--mean and --std need 1 or 3 values each, e.g. --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225',
    );
  }
  if (std.some((s) => !(s > 0))) throw new UsageError('--std values must be positive');
  return { mean, std };
}

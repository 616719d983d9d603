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

/**
 * Assertions on the toolkit's one error type, `CrpError` from @crp/common: the class, the code (type-checked
 * against CRP_ERROR_CODES) and the message.
 */
import { CrpError, type CrpErrorCode } from '@crp/common';
import { expect } from 'vitest';

function check(caught: unknown, code: CrpErrorCode, patterns: readonly (string | RegExp)[]): CrpError {
  expect(caught, 'expected a CrpError').toBeInstanceOf(CrpError);
  const err = caught as CrpError;
  expect(err.code, err.message).toBe(code);
  for (const p of patterns) {
    if (typeof p === 'string') expect(err.message).toContain(p);
    else expect(err.message).toMatch(p);
  }
  return err;
}

/** Runs `fn` and checks it throws a CrpError with `code` whose message matches every pattern. */
export function expectCrpError(
  fn: () => unknown,
  code: CrpErrorCode,
  ...patterns: (string | RegExp)[]
): CrpError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  return check(caught, code, patterns);
}

/** The same for a function that may return a promise: awaits it before checking. */
export async function expectCrpErrorAsync(
  fn: () => unknown,
  code: CrpErrorCode,
  ...patterns: (string | RegExp)[]
): Promise<CrpError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  return check(caught, code, patterns);
}

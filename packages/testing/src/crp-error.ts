/**
 * Assertions on the toolkit's typed errors. The error class is passed in (the suites' own `CrpError` from
 * @crp/lrp), so that this package stays below every package it tests.
 */
import { expect } from 'vitest';

interface CodedError extends Error {
  code: string;
}

type ErrorClass<E extends CodedError> = abstract new (...args: never[]) => E;

export interface CrpErrorAssertions<E extends CodedError> {
  /** Runs `fn` and checks it throws an `E` with `code` whose message matches every pattern. */
  expectCrpError(fn: () => unknown, code: string, ...patterns: (string | RegExp)[]): E;
  /** The same for a function that may return a promise: awaits it before checking. */
  expectCrpErrorAsync(fn: () => unknown, code: string, ...patterns: (string | RegExp)[]): Promise<E>;
}

export function crpErrorAssertions<E extends CodedError>(errorClass: ErrorClass<E>): CrpErrorAssertions<E> {
  const check = (caught: unknown, code: string, patterns: readonly (string | RegExp)[]): E => {
    expect(caught, `expected a ${errorClass.name}`).toBeInstanceOf(errorClass);
    const err = caught as E;
    expect(err.code, err.message).toBe(code);
    for (const p of patterns) {
      if (typeof p === 'string') expect(err.message).toContain(p);
      else expect(err.message).toMatch(p);
    }
    return err;
  };
  return {
    expectCrpError(fn, code, ...patterns) {
      let caught: unknown;
      try {
        fn();
      } catch (err) {
        caught = err;
      }
      return check(caught, code, patterns);
    },
    async expectCrpErrorAsync(fn, code, ...patterns) {
      let caught: unknown;
      try {
        await fn();
      } catch (err) {
        caught = err;
      }
      return check(caught, code, patterns);
    },
  };
}

/** Machine-readable reason of a {@link CrpError}. */
export type CrpErrorCode =
  | 'unsupported-layer'
  | 'unsupported-model'
  | 'unsupported-activation'
  | 'input-shape'
  | 'non-finite-input'
  | 'unknown-composite'
  | 'unknown-layer'
  | 'invalid-target'
  | 'invalid-argument'
  | 'invalid-rule'
  | 'no-adjoint'
  | 'disposed';

/**
 * The one error type of the toolkit. `code` says what kind of problem it is; the message says what was wrong
 * and what would be valid.
 */
export class CrpError extends Error {
  readonly code: CrpErrorCode;
  constructor(code: CrpErrorCode, message: string) {
    super(message);
    this.name = 'CrpError';
    this.code = code;
  }
}

/** Lists at most `max` names for an error message. */
export function listNames(names: readonly string[], max = 40): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max).join(', ')}, ... (${names.length - max} more)`;
}

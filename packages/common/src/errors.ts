/**
 * Every machine-readable reason a {@link CrpError} can have, in one set for the whole toolkit. A code names
 * the kind of problem; the message says what was wrong and what would be valid.
 *
 * Arguments and shapes:
 * - `invalid-argument`: an option or argument outside its valid range or of the wrong type;
 * - `invalid-shape`: a tensor or array whose shape does not fit (the message gives the expected shape);
 * - `invalid-value`: NaN or infinite values where finite numbers are needed;
 * - `invalid-target`: a class index that the model does not have, or no class where one is needed;
 * - `invalid-colormap`: a colour-map source that does not parse or is not usable (`details.index` points at
 *   the offending character where there is one);
 * - `unknown-layer`, `unknown-composite`, `unknown-metric`: a name that does not exist (the message lists the valid
 *   ones, nearest first where it can);
 *
 * Models and rules:
 * - `unsupported-layer`, `unsupported-activation`, `unsupported-model`: something the engine cannot explain or
 *   import (the message says what is supported and how to extend it);
 * - `unsupported-composite`: a composite named for a model it does not fit (a CNN composite on a transformer; the
 *   message lists the composites that fit);
 * - `invalid-rule`: a rule applied where it cannot work, or built wrongly;
 * - `no-adjoint`: a rule that cannot provide the transposed (adjoint) relevance map;
 * - `disposed`: an object used after `dispose()`;
 * - `out-of-memory`: work planned to need more memory than the backend has (e.g. a training batch beyond wasm's
 *   4 GiB heap); refused before it starts, the message gives the plan and what would fit;
 *
 * Files and data:
 * - `not-found`: a file, folder or entry that does not exist;
 * - `read-failed`, `write-failed`: the operating system refused (nothing is left half-written);
 * - `corrupt-file`: bytes that are not what their format promises (truncated, damaged);
 * - `unsupported-format`: a format or format version that is not read or written;
 * - `unsafe-content`: a file that would need code execution to load (e.g. a pickle global outside the
 *   allowed set); it is never executed;
 * - `empty-data`: a data set, folder or class with no samples where some are needed;
 * - `render-failed`: a plot or image could not be rendered;
 *
 * Services:
 * - `provider-config`, `provider-failed`: a model or LLM provider that is misconfigured or failed;
 * - `embedding-failed`, `embedding-mismatch`, `empty-index`, `store-failed`: retrieval (@crp/rag);
 * - `unreachable`: a server (Redis, Chroma, HTTP) that does not answer in time;
 * - `job-mismatch`, `job-failed`: a distributed job that belongs to another model or version, or failed.
 */
export const CRP_ERROR_CODES = [
  'invalid-argument',
  'invalid-shape',
  'invalid-value',
  'invalid-target',
  'invalid-colormap',
  'unknown-layer',
  'unknown-composite',
  'unsupported-composite',
  'unknown-metric',
  'unsupported-layer',
  'unsupported-activation',
  'unsupported-model',
  'invalid-rule',
  'no-adjoint',
  'disposed',
  'out-of-memory',
  'not-found',
  'read-failed',
  'write-failed',
  'corrupt-file',
  'unsupported-format',
  'unsafe-content',
  'empty-data',
  'render-failed',
  'provider-config',
  'provider-failed',
  'embedding-failed',
  'embedding-mismatch',
  'empty-index',
  'store-failed',
  'unreachable',
  'job-mismatch',
  'job-failed',
] as const;

/** Machine-readable reason of a {@link CrpError}; see {@link CRP_ERROR_CODES}. */
export type CrpErrorCode = (typeof CRP_ERROR_CODES)[number];

/** Optional facts attached to a {@link CrpError}. */
export interface CrpErrorOptions {
  /** The underlying error (an I/O error, a parse error), kept as the standard `cause`. */
  cause?: unknown;
  /** Structured facts for programs (a file path, a character index, a layer name). */
  details?: Readonly<Record<string, unknown>>;
}

/**
 * The error type of the whole toolkit: every package throws it for bad input and failed I/O. `code` says what
 * kind of problem it is (one of {@link CRP_ERROR_CODES}); the message says what was wrong and what is valid;
 * `cause` holds the underlying error where there is one.
 *
 * ```ts
 * try { ... } catch (e) { if (isCrpError(e, 'unknown-layer')) console.error(e.message); }
 * ```
 */
export class CrpError extends Error {
  readonly code: CrpErrorCode;
  /** Structured facts (e.g. `{ path }`, `{ index }`); empty when none were given. */
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: CrpErrorCode, message: string, options: CrpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CrpError';
    this.code = code;
    this.details = options.details ?? {};
  }
}

/**
 * True for a {@link CrpError} (with `code`, if given). Also recognises errors from another copy of this
 * package (two versions installed side by side) by their name and code.
 */
export function isCrpError(error: unknown, code?: CrpErrorCode): error is CrpError {
  if (error instanceof CrpError) return code === undefined || error.code === code;
  const e = error as { name?: unknown; code?: unknown } | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    e.name === 'CrpError' &&
    typeof e.code === 'string' &&
    (code === undefined || e.code === code)
  );
}

/** Operating-system error codes that mean "there is no such file or folder". */
const MISSING = new Set(['ENOENT', 'ENOTDIR']);

/**
 * The code for a failed file operation: a read is `not-found` when the operating system's error says the path
 * does not exist, else `read-failed`; a write is always `write-failed` (its target need not exist).
 */
export function fileErrorCode(operation: 'read' | 'write', cause: unknown): CrpErrorCode {
  if (operation === 'write') return 'write-failed';
  const osCode = (cause as { code?: unknown } | null)?.code;
  return typeof osCode === 'string' && MISSING.has(osCode) ? 'not-found' : 'read-failed';
}

/**
 * The {@link CrpError} for a failed file operation (code from {@link fileErrorCode}), with the operating
 * system's error as `cause` and `details.path`. `what` names the thing for the message (`'image folder'`,
 * `'safetensors file'`).
 */
export function fileError(
  operation: 'read' | 'write',
  path: string,
  cause: unknown,
  what = 'file',
): CrpError {
  const code = fileErrorCode(operation, cause);
  const why = code === 'not-found' ? 'it does not exist' : describeError(cause);
  const message = `cannot ${operation} the ${what} '${path}': ${why}`;
  return new CrpError(code, message, { cause, details: { path } });
}

/** The message of an unknown thrown value, for reports and wrapped errors. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Lists at most `max` names for an error message. */
export function listNames(names: readonly string[], max = 40): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max).join(', ')}, ... (${names.length - max} more)`;
}

/** Levenshtein distance of two strings (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The `count` names closest to `name` by edit distance (ties in the given order), for "did you mean" messages:
 * `nearestNames('layer3.1.conv4', layers)` -> `['layer3.1.conv1', 'layer3.1.conv2', ...]`. */
export function nearestNames(name: string, names: readonly string[], count = 5): string[] {
  return names
    .map((n, i) => ({ n, i, d: editDistance(name, n) }))
    .sort((x, y) => x.d - y.d || x.i - y.i)
    .slice(0, count)
    .map((x) => x.n);
}

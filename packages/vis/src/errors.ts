/**
 * What went wrong, as a stable machine-readable code:
 *
 * - `CMAP_SYNTAX`: colour-map source that does not parse (the message points at the character);
 * - `CMAP_TOO_FEW_COLORS`: a colour map needs at least two colours;
 * - `CMAP_UNORDERED`: explicit colour-map indices must rise from left to right;
 * - `INVALID_SHAPE`: an array whose shape does not fit the call (the message says which shapes do);
 * - `INVALID_VALUE`: NaN or infinite values where finite numbers are needed;
 * - `INVALID_OPTION`: an option outside its valid range;
 * - `SIZE_MISMATCH`: two images (or an image and a heatmap) that must have the same size do not;
 * - `DECODE_FAILED`: bytes that are not a readable PNG or JPEG;
 * - `UNSUPPORTED_FORMAT`: a file format this package does not read or write;
 * - `RENDER_FAILED`: a plot could not be rendered;
 * - `WRITE_FAILED`: a file could not be written (nothing is left half-written).
 */
export type VisErrorCode =
  | 'CMAP_SYNTAX'
  | 'CMAP_TOO_FEW_COLORS'
  | 'CMAP_UNORDERED'
  | 'INVALID_SHAPE'
  | 'INVALID_VALUE'
  | 'INVALID_OPTION'
  | 'SIZE_MISMATCH'
  | 'DECODE_FAILED'
  | 'UNSUPPORTED_FORMAT'
  | 'RENDER_FAILED'
  | 'WRITE_FAILED';

/** Extra facts attached to a {@link CrpError}. */
export interface CrpErrorDetails {
  /** The underlying error, if any. */
  cause?: unknown;
  /** For `CMAP_SYNTAX`: the index of the offending character in the colour-map source. */
  index?: number;
}

/**
 * The error type of `@crp/vis`: every error thrown for bad input is a `CrpError` whose `code` says what kind of
 * problem it is and whose message says what was wrong and what would be valid.
 *
 * (`@crp/vis` imports no other `@crp` package, so it defines its own `CrpError` with the same shape as the one
 * of the other packages: `name === 'CrpError'` and a string `code`.)
 */
export class CrpError extends Error {
  /** Machine-readable kind of the problem. */
  readonly code: VisErrorCode;
  /** For colour-map syntax errors: index of the offending character in the source. */
  readonly index: number | undefined;

  /**
   * @param code - the kind of problem
   * @param message - what was wrong and what is valid
   * @param details - optional cause and character index
   */
  constructor(code: VisErrorCode, message: string, details: CrpErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'CrpError';
    this.code = code;
    this.index = details.index;
  }
}

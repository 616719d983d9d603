/** Machine-readable reason of a {@link RagError}. */
export type RagErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'UNSUPPORTED_FORMAT'
  | 'CORRUPT_FILE'
  | 'CORRUPT_INDEX'
  | 'EMBEDDING_FAILED'
  | 'EMBEDDING_MISMATCH'
  | 'EMPTY_INDEX'
  | 'PROVIDER_CONFIG'
  | 'PROVIDER_FAILED'
  | 'STORE_FAILED';

/**
 * The one error class of `@crp/rag`. `code` says what kind of problem it is; the message says what was
 * wrong and what would be valid.
 */
export class RagError extends Error {
  override readonly name = 'RagError';
  readonly code: RagErrorCode;
  constructor(code: RagErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Short text of an unknown thrown value, for reports. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

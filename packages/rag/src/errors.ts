import { CrpError, type CrpErrorCode } from '@crp/common';

/**
 * @deprecated use CrpError from @crp/common. `@crp/rag` throws `CrpError` (kebab-case codes:
 * `invalid-argument`, `corrupt-file`, `empty-index`, `unreachable`, ...); this alias keeps
 * `instanceof RagError` working for one release.
 */
export const RagError = CrpError;
/** @deprecated use CrpError from @crp/common */
export type RagError = CrpError;
/** @deprecated use CrpErrorCode from @crp/common */
export type RagErrorCode = CrpErrorCode;

// The toolkit's one error class lives in @crp/common; the engine's modules import it through this file, and
// the package re-exports it so that `import { CrpError } from '@crp/lrp'` keeps working.
export { CrpError, type CrpErrorCode, isCrpError, listNames, nearestNames } from '@crp/common';

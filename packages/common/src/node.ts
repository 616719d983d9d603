// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
/**
 * The Node-only part of `@crp/common` (`import ... from '@crp/common/node'`): file writes that never leave a
 * half-written file, and the identity of files (distributed jobs). Browser bundles import the root entry point
 * only.
 */
export { type WriteFileAtomicOptions, writeFileAtomic, writeJsonAtomic } from './atomic-write.js';
export { type FileIdentityOptions, fileIdentity } from './file-identity.js';

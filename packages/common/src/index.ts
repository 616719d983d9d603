// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
export {
  CRP_ERROR_CODES,
  CrpError,
  type CrpErrorCode,
  type CrpErrorOptions,
  describeError,
  fileError,
  fileErrorCode,
  isCrpError,
  listNames,
  nearestNames,
} from './errors.js';
export { escapeHtml, escapeXml } from './escape.js';
// exact sums of doubles: the same double whatever the grouping and order (merging shards, workers, files)
export {
  addExact,
  addVector,
  type ExactSum,
  type ExactVector,
  exactValue,
  exactVector,
  mergeExact,
  mergeVector,
  vectorValues,
} from './exact-sum.js';
export {
  type Progress,
  type ProgressCallback,
  type ProgressTrackerOptions,
  progressTracker,
} from './progress.js';
export { mulberry32, permutation } from './random.js';

// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/attribution/internal: plumbing shared by the toolkit's own packages (@crp/pruning, @crp/queue, @crp/cli).
// Unstable: not part of the public API, may change in any release.

// sample sources, batch by batch
export { batchesOf, isLabelledDataset } from './dataset.js';

// running one shard, selecting its samples, cutting a data set into the shards' batches
export {
  checkShardSize,
  gridBatches,
  gridRanges,
  runShard,
  runShardedPartial,
  selectSamples,
  shardsOfPart,
} from './sharding.js';

// the identity of a job and its partials as JSON (non-finite numbers kept), compared across processes
export {
  canonicalJson,
  decodeShardJson,
  encodeShardJson,
  jobMismatch,
} from './sharding.js';

// the table of sharded strategies by kind, for merging shard files and queue workers
export { SHARDED_STRATEGIES, strategyOf } from './strategies.js';

// the pieces of the maximisation and decomposition strategies
export {
  finishMaximization,
  maximizationBatch,
  mergeMaximizationPartials,
  resolveMaximizationOptions,
} from './maximization.js';
export { toDecompositionShard } from './decomposition-atlas.js';

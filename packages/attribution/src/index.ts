export { type LabelledBatch, type LabelledSource, batchesOf } from './dataset.js';
export {
  maximization,
  type MaxTarget,
  type MaximizationOptions,
  type MaximizationResult,
  type MaximizationTable,
  type RankedSample,
} from './maximization.js';

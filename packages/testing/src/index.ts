/** Test helpers shared by the toolkit's test suites (private; tests import this TypeScript source directly). */
export { switchBackend, useBackend } from './backend.js';
export { expectCrpError, expectCrpErrorAsync } from './crp-error.js';
export {
  byteMutators,
  checkAllocation,
  concat,
  describeFindings,
  type FuzzFinding,
  type FuzzOptions,
  type FuzzReport,
  findAll,
  fuzz,
  INTERESTING_U32,
  type Mutator,
  mutateJson,
  pick,
  type Rng,
  randomInt,
  writeU32,
} from './fuzz.js';
export { mulberry32, seedWeights, uniform, uniformTensor } from './seeded.js';

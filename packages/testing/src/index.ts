/** Test helpers shared by the toolkit's test suites (private; tests import this TypeScript source directly). */
export { switchBackend, useBackend } from './backend.js';
export { expectCrpError, expectCrpErrorAsync } from './crp-error.js';
export { mulberry32, seedWeights, uniform } from './seeded.js';

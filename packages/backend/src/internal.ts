// @crp/backend/internal: plumbing shared with the toolkit's own bench. Unstable: not part of the public API,
// may change in any release.
export { WINOGRAD_F4 } from './wasm-winograd.js';

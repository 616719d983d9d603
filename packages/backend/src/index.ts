export { type BackendChoice, type SelectBackendOptions, selectBackend } from './select-backend.js';
export { enableWasmThreads } from './wasm-threads.js';

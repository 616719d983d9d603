// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
export { type BackendChoice, type SelectBackendOptions, selectBackend } from './select-backend.js';
export { enableWasmThreads } from './wasm-threads.js';
export {
  installWasmWinograd,
  uninstallWasmWinograd,
  type WinogradRule,
  winogradApplies,
} from './wasm-winograd.js';

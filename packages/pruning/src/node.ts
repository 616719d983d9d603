// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/pruning/node: the Node-only part of @crp/pruning (files). Browser bundles import '@crp/pruning' only.

// pruning curves as JSON, Markdown and SVG files
export { writeCurves } from './curves-file.js';

/** @deprecated Models on disk are `saveModel` / `loadModel` of `@crp/models/node` (these re-exports go next release). */
export { loadModel, type SavedModelInfo, saveModel } from '@crp/models/node';

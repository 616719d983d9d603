// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/pruning/node: the Node-only part of @crp/pruning (files). Browser bundles import '@crp/pruning' only.

// pruning curves as JSON, Markdown and SVG files
export { writeCurves } from './curves-file.js';

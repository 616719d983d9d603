export { type ExplainedImage, explain } from './commands/explain.js';
export { type LayerRow, layers } from './commands/layers.js';
export { type LoadModelOptions, loadModel } from './load-model.js';
export { main } from './main.js';
export { ProgressBar } from './progress.js';
export { UsageError } from './usage-error.js';

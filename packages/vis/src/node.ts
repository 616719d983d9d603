// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/vis/node: the Node-only part of @crp/vis, everything that touches the file system or a native renderer.
// Browser bundles import '@crp/vis' only.

// image files: PNG or JPEG in, PNG out, written atomically
export { readImage, readPng, writeImage, writePng } from './node/files.js';

// plots as PNG (resvg, native) and plots and reports as files
export { type PngRenderOptions, renderPng, svgToPng, writePlot } from './node/plots.js';
export { writeReport } from './node/report.js';

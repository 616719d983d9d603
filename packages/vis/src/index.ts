// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/vis: pictures of relevance and reports, in Node and in browsers. File output (PNG files, plots as files,
// report files, PNG rendering of SVG) is in '@crp/vis/node'.

// raster images and array input: the RasterImage type, conversions, crop, resize, grids, ndarray views
export type { Color, RasterImage } from './raster/raster.js';
export {
  assertRasterImage,
  createRaster,
  isRasterImage,
  parseColor,
  toRgb,
  toRgba,
} from './raster/raster.js';
export type {
  ArrayInput,
  DenseArray,
  DenseDtype,
  NdArrayLike,
  ShapedArray,
  TensorLike,
} from './raster/array.js';
export { assertFinite, shapeSize, toDenseArray } from './raster/array.js';
export type { Box, CropOptions } from './raster/crop.js';
export { cropBox, relevanceBox } from './raster/crop.js';
export type { ImageGridOptions } from './raster/grid.js';
export { imageGrid } from './raster/grid.js';
export type { ResizeOptions } from './raster/resize.js';
export { resize } from './raster/resize.js';
export { drawPatchGrid, type PatchGridOptions } from './raster/patch-grid.js';
export { rasterToNdarray } from './raster/ndarray.js';

// colour: zennit's colour maps, heatmaps as images, overlays and relevance-weighted opacity
export type { BuiltinColorMapName, ColorNode } from './colour/colormap.js';
export {
  BUILTIN_COLOR_MAPS,
  builtinColorMapNames,
  ColorMap,
  getColorMap,
  palette,
} from './colour/colormap.js';
export type { Heatmap } from './colour/heatmap.js';
export { toHeatmap } from './colour/heatmap.js';
export type { ImgifyOptions, NormalizedBytes, ToRasterImageOptions } from './colour/imgify.js';
export { imgify, normalizeToBytes, toRasterImage } from './colour/imgify.js';
export type { OverlayOptions } from './colour/overlay.js';
export { overlayHeatmap } from './colour/overlay.js';
export type { OpacityOptions } from './colour/opacity.js';
export { blurHeatmap, opacityView, relevanceOpacity } from './colour/opacity.js';

// codecs: PNG and JPEG bytes to images and back, data URIs (pure JavaScript: the same in Node and browsers)
export { decodeImage, sniffImageFormat } from './codecs/image.js';
export { decodePng, encodePng, pngDataUri } from './codecs/png.js';
export type { JpegDecodeOptions } from './codecs/jpeg.js';
export { decodeJpeg } from './codecs/jpeg.js';

// plots: vega-lite charts of concept relevance, pruning curves and scatter plots, rendered to SVG
export type {
  ConceptRelevance,
  ConceptRelevanceChartOptions,
  PruningCurve,
  PruningCurveChartOptions,
  ScatterChartOptions,
  ScatterPoint,
  VegaLiteSpec,
  XyChartOptions,
} from './plots/charts.js';
export {
  conceptRelevanceChart,
  PLOT_CONFIG,
  PLOT_FONT,
  pruningCurveChart,
  RELEVANCE_COLORS,
  scatterChart,
} from './plots/charts.js';
export type { PlotSpec } from './plots/render.js';
export { renderSvg, svgDataUri } from './plots/render.js';

// report: a self-contained HTML page of text, images, tables and plots
export type {
  BarCell,
  ConceptRow,
  ImagesSection,
  PlotSection,
  ReportCell,
  ReportColumn,
  ReportFigure,
  ReportOptions,
  ReportSection,
  TableSection,
  TextSection,
} from './report/report.js';
export { conceptTable, renderReport } from './report/report.js';
export { markdownToHtml } from './report/markdown.js';

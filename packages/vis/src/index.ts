/** @deprecated The toolkit's one error class: import it from `@crp/common` (this re-export goes in the next release). */
export { CrpError } from '@crp/common';
export type { ArrayInput, DenseArray, DenseDtype, NdArrayLike, ShapedArray, TensorLike } from './array.js';
export { assertFinite, shapeSize, toDenseArray } from './array.js';
export { writeFileAtomic } from './atomic-write.js';
export type { BuiltinColorMapName, ColorNode } from './colormap.js';
export { BUILTIN_COLOR_MAPS, builtinColorMapNames, ColorMap, getColorMap, palette } from './colormap.js';
export type { Box, CropOptions } from './crop.js';
export { cropBox, relevanceBox } from './crop.js';
export type { ImageGridOptions } from './grid.js';
export { imageGrid } from './grid.js';
export type { Heatmap } from './heatmap.js';
export { toHeatmap } from './heatmap.js';
export { decodeImage, readImage, sniffImageFormat, writeImage } from './image-file.js';
export type { ImgifyOptions, NormalizedBytes, ToRasterImageOptions } from './imgify.js';
export { imgify, normalizeToBytes, toRasterImage } from './imgify.js';
export type { JpegDecodeOptions } from './jpeg.js';
export { decodeJpeg } from './jpeg.js';
export { escapeHtml, markdownToHtml } from './markdown.js';
export { rasterToNdarray } from './ndarray.js';
export type { OpacityOptions } from './opacity.js';
export { blurHeatmap, opacityView, relevanceOpacity } from './opacity.js';
export type { OverlayOptions } from './overlay.js';
export { overlayHeatmap } from './overlay.js';
export type { PlotSpec, PngRenderOptions } from './plot-render.js';
export { renderPng, renderSvg, svgDataUri, svgToPng, writePlot } from './plot-render.js';
export type {
  ConceptRelevance,
  ConceptRelevanceChartOptions,
  PruningCurve,
  PruningCurveChartOptions,
  ScatterChartOptions,
  ScatterPoint,
  VegaLiteSpec,
} from './plots.js';
export {
  conceptRelevanceChart,
  PLOT_CONFIG,
  PLOT_FONT,
  pruningCurveChart,
  RELEVANCE_COLORS,
  scatterChart,
} from './plots.js';
export { decodePng, encodePng, pngDataUri, readPng, writePng } from './png.js';
export type { Color, RasterImage } from './raster.js';
export { assertRasterImage, createRaster, isRasterImage, parseColor, toRgb, toRgba } from './raster.js';
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
} from './report.js';
export { conceptTable, renderReport, writeReport } from './report.js';
export type { ResizeOptions } from './resize.js';
export { resize } from './resize.js';

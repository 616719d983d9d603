export {
  type AtlasEntry,
  type AtlasLayer,
  type AtlasOptions,
  type AtlasPartial,
  atlasBatch,
  type ConceptAtlas,
  conceptAtlas,
  conceptLayers,
  finishAtlas,
  mergeAtlasPartials,
  type ResolvedAtlasOptions,
  resolveAtlasOptions,
} from './atlas.js';
export {
  type AttributionGraph,
  type AttributionGraphEdge,
  type AttributionGraphNode,
  type SvgOptions,
  toMermaid,
  toSvg,
} from './attribution-graph.js';
export {
  batchesOf,
  type DatasetProgress,
  fromImageFolder,
  fromIterator,
  fromTensors,
  type ImageFolderDataset,
  type ImageFolderOptions,
  isLabelledDataset,
  type LabelledBatch,
  type LabelledDataset,
  type LabelledSource,
  type OwnedBatch,
  type SubsetOptions,
  sizeOf,
  subset,
  type TensorDatasetOptions,
} from './dataset.js';
export { type DecomposeOptions, decompose, layerBelow } from './decomposition.js';
export {
  type AtlasJobOptions,
  type AtlasJobProgress,
  type JobContext,
  type JobSetup,
  runAtlasJob,
} from './jobs.js';
export {
  type MaximizationOptions,
  type MaximizationResult,
  type MaximizationTable,
  type MaxTarget,
  maximization,
  type RankedSample,
} from './maximization.js';
export {
  type PixelBox,
  type ReceptiveFieldGeometry,
  receptiveFieldBox,
  receptiveFieldGeometry,
} from './receptive-field.js';
export {
  type ReferenceGridOptions,
  type ReferenceImageOptions,
  type ReferenceImages,
  type ReferenceSample,
  referenceGrid,
  referenceImages,
  writeReferenceGrid,
} from './reference-images.js';
export {
  type AtlasLayerComparison,
  compareAtlases,
  type LayerRegionRelevance,
  type Region,
  type RegionAtlas,
  type RegionAtlasOptions,
  type RegionBox,
  type RegionRelevance,
  type RegionRelevanceOptions,
  regionAtlas,
  regionMask,
  regionRelevance,
} from './region.js';

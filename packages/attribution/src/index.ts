// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/attribution: concept analysis over data sets, in Node and in browsers. Image folders, resumable jobs with
// worker threads and reference grids written as files are in '@crp/attribution/node'; the plumbing that other
// packages of the toolkit share (shard JSON, sample selection, the strategy table) is in
// '@crp/attribution/internal' (unstable).

// where samples come from: tensors or a Dataset of @crp/models, a loader (an image folder read lazily), any
// (async) iterator, subsets of them
export {
  fromIterator,
  fromLoader,
  fromTensors,
  type LabelledBatch,
  type LabelledDataset,
  type LabelledSource,
  type Loader,
  type OwnedBatch,
  type SubsetOptions,
  sizeOf,
  subset,
  type TensorDatasetOptions,
} from './dataset.js';

// the concept atlas of a class: which concepts its samples rely on, layer by layer
export {
  type AtlasEntry,
  type AtlasLayer,
  type AtlasOptions,
  type ConceptAtlas,
  conceptAtlas,
  conceptLayers,
  formatVotes,
  votedConcepts,
} from './atlas.js';
// transformers (ViTs): each block's concept layers (heads, MLP neurons, MLP output, block output)
export {
  type PatchEmbedding,
  patchEmbedding,
  type TransformerBlockLayers,
  transformerBlocks,
  transformerConceptLayers,
} from './transformer-concepts.js';
export {
  type AttributionGraph,
  type AttributionGraphEdge,
  type AttributionGraphNode,
  type SvgOptions,
  toMermaid,
  toSvg,
} from './attribution-graph.js';

// region-restricted attribution: concept relevance inside a region of the input, region atlases
export {
  type AtlasLayerComparison,
  compareAtlases,
  type LayerRegionRelevance,
  type Region,
  type RegionAtlas,
  type RegionAtlasOptions,
  type RegionBox,
  type RegionMethod,
  type RegionRelevance,
  type RegionRelevanceOptions,
  regionAtlas,
  regionMask,
  regionRelevance,
  regionRelevances,
} from './region.js';

// decomposition of a concept into sub-concepts, as attribution graphs (JSON, Mermaid, SVG)
export {
  type ConceptStep,
  conceptLayerBelow,
  conceptLayersBelow,
  type DecomposeOptions,
  decompose,
  layerBelow,
  layersBelow,
  pathRelevance,
} from './decomposition.js';
// each layer's dominant concepts decomposed into the layer below, voted over samples
export {
  type DecomposedConcept,
  type DecompositionAtlas,
  type DecompositionAtlasLayer,
  type DecompositionAtlasOptions,
  decompositionAtlas,
  type SubConcept,
} from './decomposition-atlas.js';

// what a concept looks like: relevance and activation maximisation, receptive fields, reference images
export {
  type MaximizationOptions,
  type MaximizationPartial,
  type MaximizationResult,
  type MaximizationTable,
  type MaxTarget,
  type ResolvedMaximizationOptions,
  maximization,
  maximizationStrategy,
  type RankedSample,
} from './maximization.js';
export {
  type PixelBox,
  type ReceptiveFieldGeometry,
  receptiveFieldBox,
  receptiveFieldGeometry,
} from './receptive-field.js';
export {
  type ReferenceCrop,
  type ReferenceGridOptions,
  type ReferenceImageOptions,
  type ReferenceImages,
  type ReferenceLocalization,
  type ReferenceSample,
  referenceGrid,
  referenceImages,
} from './reference-images.js';

// sharded strategies: every data-set strategy as shards of sample indices in, exactly mergeable partials out,
// the same for one process, worker threads, queue workers (@crp/queue) and `--shard i/n` files
export {
  type AnyShardedStrategy,
  type BatchContext,
  DEFAULT_SHARD_SIZE,
  mergeShardFiles,
  parseShardPart,
  planShards,
  runSharded,
  runShardPart,
  type Shard,
  type JobIdentity,
  type ShardContext,
  type ShardedRunOptions,
  type ShardedStrategy,
  type ShardFile,
  type ShardPart,
} from './sharding.js';
export { type AtlasShardPartial, atlasStrategy, type ShardedAtlasOptions } from './atlas.js';
export { regionAtlasStrategy, type ShardedRegionAtlasOptions } from './region.js';
export {
  type DecompositionPartial,
  type DecompositionShardPartial,
  decompositionStrategy,
  type ShardedDecompositionOptions,
} from './decomposition-atlas.js';

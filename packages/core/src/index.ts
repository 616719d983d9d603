// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/core: Concept Relevance Propagation for TensorFlow.js (zennit-crp's CondAttribution), in Node and in
// browsers.

// conditional attribution: relevance for concepts in any layers, many conditions per backward pass
export {
  CondAttribution,
  type CondAttributionChunk,
  type CondAttributionResult,
  type CondRunOptions,
  disposeCondResult,
} from './cond-attribution.js';

// conditions, as zennit-crp writes them: { y: [class], layer: [concepts] }, and the rows a run returns
export { type Condition, OUTPUT_KEY, type PlannedRow } from './conditions.js';

// concepts: what a condition's indices mean at a layer (channels by default, heads of attention products)
export { ChannelConcept, NeuronConcept } from './concepts/channel-concept.js';
export { defaultConcept } from './concepts/default-concept.js';
export { HeadConcept } from './concepts/head-concept.js';
export type { Concept, ConceptAttributeOptions, ConceptMask } from './concepts/concept.js';

export { ChannelConcept } from './concepts/channel-concept.js';
export type { Concept, ConceptAttributeOptions, ConceptMask } from './concepts/concept.js';
export {
  CondAttribution,
  type CondAttributionChunk,
  type CondAttributionResult,
  type CondRunOptions,
  disposeCondResult,
} from './cond-attribution.js';
export {
  type Condition,
  type ConditionGroup,
  checkConditionList,
  groupConditions,
  OUTPUT_KEY,
  type PlannedRow,
  planGroupRows,
} from './conditions.js';

export {
  CondAttribution,
  disposeCondResult,
  type CondRunOptions,
  type CondAttributionResult,
  type CondAttributionChunk,
  type Progress,
} from './cond-attribution.js';
export {
  type Condition,
  type ConditionGroup,
  type PlannedRow,
  OUTPUT_KEY,
  groupConditions,
  planGroupRows,
  checkConditionList,
} from './conditions.js';
export type { Concept, ConceptMask, AttributeOptions } from './concepts/concept.js';
export { ChannelConcept } from './concepts/channel-concept.js';

// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/study: the concept study of a trained classifier in one call (in Node and in browsers). On files — a
// model file and an image folder in, report.html and study.json out — it is `studyFiles` of '@crp/study/node'.

// the study: fine-tuning, evaluation, three attribution strategies, reference images, concept pruning
export type {
  StudyData,
  StudyEnvironment,
  StudyEvaluation,
  StudyFineTune,
  StudyPruning,
  StudyReference,
  StudyReferenceLayer,
  StudyResult,
} from './result.js';
export { runStudy } from './study.js';
export {
  type ResolvedStudyOptions,
  resolveStudyOptions,
  resolveTarget,
  type StudyOptions,
} from './options.js';

// how faithful its explanations are (the report's section of that name)
export {
  FAITHFULNESS_SAMPLES,
  faithfulnessSections,
  type StudyFaithfulness,
  studyFaithfulness,
} from './faithfulness.js';

// where its parts are kept (resumable), and the report of it
export { memoryStudyStore, type StudyStore } from './store.js';
export { studyReport } from './report.js';

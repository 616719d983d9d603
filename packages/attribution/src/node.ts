// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/attribution/node: the Node-only part of @crp/attribution (file system, worker threads). Browser bundles
// import '@crp/attribution' only.

// any sharded strategy (the concept atlas, ...) as a resumable job (a JSON-lines file), optionally on worker threads
export {
  type AtlasJobOptions,
  type AtlasJobProgress,
  type JobContext,
  type JobOptions,
  type JobSetup,
  runAtlasJob,
  runJob,
} from './jobs.js';

// reference images as a PNG grid on disk
export { writeReferenceGrid } from './reference-grid-file.js';

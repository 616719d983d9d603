// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// The `crp` command as a library: each command runs in-process with the arguments it would get on the
// command line and returns what `--json` prints. The libraries underneath (@crp/models, @crp/attribution, ...)
// are the API for programs; these are for embedding or testing the command itself.

// the commands, one per sub-command of `crp`
export { type AtlasOutput, atlas as atlasCommand } from './commands/atlas.js';
export { type DecomposeOutput, decompose as decomposeCommand } from './commands/decompose.js';
export { type ExplainedImage, explain as explainCommand } from './commands/explain.js';
export { type LayerRow, layers as layersCommand } from './commands/layers.js';
export { type MergeOutput, merge as mergeCommand } from './commands/merge.js';
export { type PrunedExport, type PruneOutput, prune as pruneCommand } from './commands/prune.js';
export { type RefSample, type RefsOutput, refs as refsCommand } from './commands/refs.js';
export { type ReportOutput, report as reportCommand } from './commands/report.js';
export { parseStudyArgs, type StudyOutput, study as studyCommand } from './commands/study.js';
export { type TrainSummary, train as trainCommand } from './commands/train.js';
export { type WorkerSummary, worker as workerCommand } from './commands/worker.js';
// what --shard i/n writes
export type { ShardOutput } from './distributed.js';
// the entry point: parses the global options and runs one command
export { main } from './main.js';

// what the commands share: the progress bar on stderr and the error for bad command lines (exit status 2)
export { ProgressBar } from './progress.js';
export { UsageError } from './usage-error.js';

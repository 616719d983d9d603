import { nodeFiles } from './reference-files-node.js';
import { type RunOptions, type RunSummary, runCases } from './run-cases.js';

export { formatOutcome, knownKinds, type RunOptions, type RunSummary, runCases } from './run-cases.js';

/** {@link runCases} on reference directories of the local file system. */
export function runConformance(dirs: string[], options: RunOptions = {}): Promise<RunSummary> {
  return runCases(dirs, nodeFiles, options);
}

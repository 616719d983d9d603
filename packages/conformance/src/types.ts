import type { ReferenceFiles } from './reference-files.js';

/** One runnable golden case, found by a kind's `discover`. */
export interface CaseRef {
  id: string;
  kind: string;
  /** The file the case came from (for messages). */
  file: string;
  /** The reference directory the case belongs to (its models are in `dir/models/`). */
  dir: string;
  /** How the directory's files are read (the file system in Node, HTTP in a page). */
  files: ReferenceFiles;
  /** Loads the case's JSON (lazily: the files are large). */
  load(): Promise<unknown>;
}

/** The outcome of one case. `worst` is the largest deviation seen, as a multiple of the allowed tolerance
 * (so <= 1 passes); `detail` names the tensor where it occurred, or the reason the case failed. */
export interface CaseOutcome {
  id: string;
  kind: string;
  passed: boolean;
  worst: number;
  detail: string;
}

/** A kind of golden case (e.g. `lrp`, `vis`): how to find its cases in a reference directory and how to run
 * one. Every package that owns a kind contributes a runner in `src/kinds/` (registered in kinds/index.ts).
 * `discover` returns [] when the directory has no case of the kind and throws when its data cannot be read. */
export interface KindRunner {
  kind: string;
  discover(dir: string, files: ReferenceFiles): Promise<CaseRef[]>;
  run(ref: CaseRef): Promise<CaseOutcome>;
}

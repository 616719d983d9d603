import { runners } from './kinds/index.js';
import type { CaseOutcome, KindRunner } from './types.js';

export interface RunOptions {
  /** Kinds to run; default all known kinds. */
  kinds?: string[];
  /** Called after every case (the CLI prints a line). */
  onCase?: (outcome: CaseOutcome) => void;
}

export interface RunSummary {
  outcomes: CaseOutcome[];
  passed: number;
  failed: number;
}

export function knownKinds(): string[] {
  return runners.map((r) => r.kind);
}

function selectRunners(kinds: string[] | undefined): KindRunner[] {
  if (kinds === undefined || kinds.length === 0) return runners;
  return kinds.map((k) => {
    const runner = runners.find((r) => r.kind === k);
    if (runner === undefined) {
      throw new Error(`unknown kind '${k}'; valid kinds: ${knownKinds().join(', ')}`);
    }
    return runner;
  });
}

/** Runs every case of the selected kinds found in the given reference directories. A case that throws
 * (including one the code cannot run yet) counts as failed, never as skipped. */
export async function runConformance(dirs: string[], options: RunOptions = {}): Promise<RunSummary> {
  const outcomes: CaseOutcome[] = [];
  for (const dir of dirs) {
    for (const runner of selectRunners(options.kinds)) {
      for (const ref of await runner.discover(dir)) {
        let outcome: CaseOutcome;
        try {
          outcome = await runner.run(ref);
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          outcome = {
            id: ref.id,
            kind: ref.kind,
            passed: false,
            worst: Number.POSITIVE_INFINITY,
            detail: message,
          };
        }
        outcomes.push(outcome);
        options.onCase?.(outcome);
      }
    }
  }
  const passed = outcomes.filter((o) => o.passed).length;
  return { outcomes, passed, failed: outcomes.length - passed };
}

import { CrpError, listNames } from '@crp/common';
import { readCaseIndex } from './discover.js';
import { runners } from './kinds/index.js';
import type { ReferenceFiles } from './reference-files.js';
import type { CaseOutcome, CaseRef, KindRunner } from './types.js';

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

/** The kinds of golden case there are runners for (src/kinds/index.ts), in registration order. */
export function knownKinds(): string[] {
  return runners.map((r) => r.kind);
}

function selectRunners(kinds: string[] | undefined): KindRunner[] {
  if (kinds === undefined || kinds.length === 0) return runners;
  return kinds.map((k) => {
    const runner = runners.find((r) => r.kind === k);
    if (runner === undefined) {
      throw new CrpError('invalid-argument', `unknown kind '${k}'; valid kinds: ${knownKinds().join(', ')}`);
    }
    return runner;
  });
}

/** index.json may only list kinds some runner runs: a case of another kind would be silently ignored. */
async function checkIndexKinds(dir: string, files: ReferenceFiles): Promise<void> {
  const known = new Set(knownKinds());
  const foreign = ((await readCaseIndex(dir, files)) ?? []).filter((e) => !known.has(e.kind));
  if (foreign.length > 0) {
    const kinds = [...new Set(foreign.map((e) => e.kind))];
    throw new CrpError(
      'unsupported-format',
      `${dir}/index.json lists ${foreign.length} case(s) of kind ${listNames(kinds.map((k) => `'${k}'`))} that no runner knows (e.g. '${foreign[0]!.id}'); known kinds: ${knownKinds().join(', ')}`,
      { details: { path: dir, kinds } },
    );
  }
}

/**
 * Runs every case of the selected kinds found in the given reference directories, read through `files` (the
 * file system in Node: `runConformance` of run.ts; HTTP in the page of `--browser`). All cases are found before
 * any runs, and the run refuses to start (a {@link CrpError}) when the reference data are unreadable or
 * inconsistent (see `readCaseIndex`) or when a selected kind has no case in any directory: a check that
 * found nothing to check must not pass. A case that throws (including one the code cannot run yet) counts as
 * failed, never as skipped.
 */
export async function runCases(
  dirs: string[],
  files: ReferenceFiles,
  options: RunOptions = {},
): Promise<RunSummary> {
  const selected = selectRunners(options.kinds);
  const planned: { runner: KindRunner; ref: CaseRef }[] = [];
  for (const dir of dirs) {
    await checkIndexKinds(dir, files);
    for (const runner of selected) {
      for (const ref of await runner.discover(dir, files)) planned.push({ runner, ref });
    }
  }
  const empty = selected.filter((r) => !planned.some((p) => p.runner === r)).map((r) => r.kind);
  if (empty.length > 0) {
    throw new CrpError(
      'empty-data',
      `no case of kind ${listNames(empty.map((k) => `'${k}'`))} found in ${dirs.join(', ')}; select the kinds a directory has with --kind (known: ${knownKinds().join(', ')})`,
      { details: { kinds: empty, dirs } },
    );
  }
  const outcomes: CaseOutcome[] = [];
  for (const { runner, ref } of planned) {
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
  const passed = outcomes.filter((o) => o.passed).length;
  return { outcomes, passed, failed: outcomes.length - passed };
}

/** The line the CLI prints for a case (the same in Node and in the browser run). */
export function formatOutcome(o: CaseOutcome): string {
  const worst = Number.isFinite(o.worst) ? o.worst.toFixed(4) : 'inf';
  return `${o.passed ? 'PASS' : 'FAIL'} ${o.kind.padEnd(6)} ${o.id.padEnd(52)} worst/tol=${worst}  ${o.detail}`;
}

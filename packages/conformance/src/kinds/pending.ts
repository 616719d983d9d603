import { discoverCaseFiles } from '../discover.js';
import type { KindRunner } from '../types.js';

/** A kind whose package does not exist yet: its cases are found and every one fails with the reason, so
 * nothing is silently skipped. */
export function pendingKind(kind: string, reason: string): KindRunner {
  return {
    kind,
    discover: (dir) => discoverCaseFiles(dir, kind),
    run: async (ref) => ({ id: ref.id, kind, passed: false, worst: Number.POSITIVE_INFINITY, detail: reason }),
  };
}

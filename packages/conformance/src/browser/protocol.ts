import type { CaseOutcome } from '../types.js';

/** Backends the page can run the cases on. */
export const BROWSER_BACKENDS = ['webgl', 'webgpu', 'wasm', 'cpu'] as const;
export type BrowserBackend = (typeof BROWSER_BACKENDS)[number];

/** What the runner asks the page to do (JSON in the page's URL, `?run=`). */
export interface PageRequest {
  dirs: string[];
  kinds: string[];
  backend: BrowserBackend;
}

/** What the page reports back, message by message, through the function `crpReport` that the runner exposes. */
export type PageMessage =
  | { type: 'backend'; backend: string; description: string }
  | { type: 'unavailable'; backend: string; reason: string }
  | { type: 'case'; outcome: CaseOutcome }
  /** The reference data could not be checked (a CrpError of the run: unreadable, inconsistent, no case). */
  | { type: 'not-run'; message: string }
  | { type: 'done'; passed: number; failed: number }
  | { type: 'crash'; message: string };

/** Name of the function the runner exposes to the page. */
export const REPORT_FUNCTION = 'crpReport';

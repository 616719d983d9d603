/**
 * Progress of long work (a pass over a data set, training, indexing), the one event type of the toolkit. Every
 * long-running function takes `onProgress?: (progress: Progress) => void`.
 */
export interface Progress {
  /** Units done so far (samples, rows, chunks, epochs: see `unit`). */
  done: number;
  /** Units in total; undefined when not known in advance (an iterator of unknown length). */
  total: number | undefined;
  /** Milliseconds since the work started. */
  elapsedMs: number;
  /** Estimated milliseconds to completion; undefined while `total` is unknown or nothing is done yet. */
  etaMs: number | undefined;
  /** What `done` counts, e.g. `'samples'`, `'rows'`, `'chunks'` (for display). */
  unit?: string;
  /** The step of a multi-step job this event belongs to, e.g. `'atlas'` (for display). */
  phase?: string;
}

/** A callback that receives {@link Progress} events. */
export type ProgressCallback = (progress: Progress) => void;

/** Options of {@link progressTracker}. */
export interface ProgressTrackerOptions {
  unit?: string;
  phase?: string;
  /** Units already done when the tracker starts (resumed work); they do not count towards the rate. */
  alreadyDone?: number;
  /** Clock in milliseconds (tests); default `performance.now`. */
  now?: () => number;
}

/**
 * Counts units of work and reports {@link Progress} with an ETA from the rate so far. Returns a function to
 * call with the number of units just finished.
 */
export function progressTracker(
  total: number | undefined,
  onProgress: ProgressCallback | undefined,
  options: ProgressTrackerOptions = {},
): (units: number) => void {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const resumed = options.alreadyDone ?? 0;
  let done = resumed;
  return (units) => {
    done += units;
    if (onProgress === undefined) return;
    const elapsedMs = now() - started;
    const fresh = done - resumed;
    const progress: Progress = {
      done,
      total,
      elapsedMs,
      etaMs: total === undefined || fresh <= 0 ? undefined : (elapsedMs / fresh) * Math.max(total - done, 0),
    };
    if (options.unit !== undefined) progress.unit = options.unit;
    if (options.phase !== undefined) progress.phase = options.phase;
    onProgress(progress);
  };
}

import type { Progress, ProgressCallback } from '@crp/common';
import { progressTracker } from '@crp/common';
import type { RasterImage } from '@crp/vis';
import type { ResolvedStudyOptions } from './options.js';
import type { StudyEnvironment } from './result.js';
import type { StudyStore } from './store.js';

/**
 * What every step of a study shares: the resolved options, the store its parts are kept in (with the seconds
 * each took and which were resumed), the pictures made so far, and progress and log reporting.
 */
export interface StudyRun {
  readonly env: StudyEnvironment;
  readonly opts: ResolvedStudyOptions;
  /** the report's pictures by name */
  readonly images: Map<string, RasterImage>;
  readonly seconds: Record<string, number>;
  readonly resumed: string[];
  log(line: string): void;
  /** The key a part is stored under: the model and data's identity, the composite and what it `depends` on. */
  keyOf(depends: unknown): string;
  /** Runs `compute` unless the store holds part `name` with the same key; stores what it computed. */
  part<T>(name: string, depends: unknown, compute: () => Promise<T>): Promise<T>;
  /** Progress of one step: the environment's callback with `phase` set. */
  progress(phase: string): ProgressCallback;
  /** Reports 0 of `total` at once, so a progress bar shows from the first sample. */
  start(phase: string, total: number, unit?: string): void;
  /** Reports a step as finished (`total` of `total`): for steps whose library call reports no progress. */
  finish(phase: string, total: number): void;
}

/** A {@link StudyRun} over `env`'s store for the study `opts`. */
export function studyRun(env: StudyEnvironment, opts: ResolvedStudyOptions): StudyRun {
  const log = env.log ?? (() => {});
  const seconds: Record<string, number> = {};
  const resumed: string[] = [];
  const base = JSON.stringify({ identity: env.identity, composite: opts.composite });
  const keyOf = (depends: unknown) => JSON.stringify([base, depends]);
  const progress =
    (phase: string): ProgressCallback =>
    (p: Progress) =>
      env.onProgress?.({ ...p, phase });
  return {
    env,
    opts,
    images: new Map(),
    seconds,
    resumed,
    log,
    keyOf,
    part: (name, depends, compute) =>
      runPart(env.store, { name, key: keyOf(depends), seconds, resumed, log }, compute),
    progress,
    start: (phase, total, unit = 'samples') => {
      progressTracker(total, env.onProgress === undefined ? undefined : progress(phase), { unit })(0);
    },
    finish: (phase, total) => {
      env.onProgress?.({ done: total, total, elapsedMs: 0, etaMs: 0, phase });
    },
  };
}

/** One resumable part: taken from the store when its key matches, else computed, timed and stored. */
async function runPart<T>(
  store: StudyStore,
  part: {
    name: string;
    key: string;
    seconds: Record<string, number>;
    resumed: string[];
    log: (line: string) => void;
  },
  compute: () => Promise<T>,
): Promise<T> {
  const { name, key, seconds } = part;
  const stored = await store.readPart(name);
  if (stored !== undefined && stored.key === key) {
    const v = stored.value as { value: T; seconds: number };
    part.resumed.push(name);
    seconds[name] = v.seconds;
    part.log(`${name}: resumed from an earlier run`);
    return v.value;
  }
  part.log(`${name}...`);
  const t0 = performance.now();
  const value = await compute();
  seconds[name] = (performance.now() - t0) / 1000;
  await store.writePart(name, { key, value: { value, seconds: seconds[name] } });
  return value;
}

/** A stored picture into `images` (after a resumed part, its pictures come from the store). */
export async function keepImage(
  store: StudyStore,
  images: Map<string, RasterImage>,
  name: string,
): Promise<void> {
  if (images.has(name)) return;
  const image = await store.readImage(name);
  if (image !== undefined) images.set(name, image);
}

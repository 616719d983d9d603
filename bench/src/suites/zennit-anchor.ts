/**
 * What the suites that time zennit / zennit-crp beside themselves share (`resnet`, `lrp`, `crp`): finding the
 * sources, running an anchor script of bench/anchors first with our thread count, and reading its figures and
 * heatmaps.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { type BenchResult, median, result } from '../measure.js';

const anchors = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'anchors');

/** One timed workload of an anchor script (its `timed`). */
export interface AnchorFigure {
  median: number;
  runs: number[];
  /** CPU time of each run (all threads) */
  cpuMs: number[];
}

/** What every anchor script prints beside its figures. */
export interface AnchorRun {
  torch: string;
  threads: number;
  loadAverage: { start: number[]; end: number[] };
  /** OMP_WAIT_POLICY of torch's OpenMP threads, when the script says (PASSIVE unless the caller set another). */
  ompWaitPolicy?: string;
}

/** A heatmap an anchor wrote (raw little-endian float32) for the suite to compare with its own. */
export interface AnchorHeatmap {
  file: string;
  shape: number[];
  /** `NCHW` (an input relevance) or `NHW` (summed over the channels, zennit-crp's heatmap). */
  layout: 'NCHW' | 'NHW';
}

/** The zennit and zennit-crp source trees: CRP_ZENNIT_SRC / CRP_ZENNIT_CRP_SRC, else /tmp/zennit/src and
 * /tmp/zennit-crp (bench/README.md). Undefined, with the reason, when either is not there. */
function anchorSources(): { zennit: string; crp: string } | { missing: string } {
  const zennit = process.env.CRP_ZENNIT_SRC ?? '/tmp/zennit/src';
  const crp = process.env.CRP_ZENNIT_CRP_SRC ?? '/tmp/zennit-crp';
  const missing = [
    [zennit, 'zennit', 'CRP_ZENNIT_SRC'],
    [crp, 'crp', 'CRP_ZENNIT_CRP_SRC'],
  ].filter(([dir, pkg]) => !existsSync(join(dir!, pkg!, '__init__.py')));
  if (missing.length > 0) {
    return {
      missing: missing.map(([dir, pkg, env]) => `no ${pkg}/__init__.py under ${dir} (set ${env})`).join('; '),
    };
  }
  return { zennit, crp };
}

/**
 * Runs `bench/anchors/<script>` (zennit / zennit-crp on Debian's PyTorch, `CRP_PYTHON`) with the sources and
 * `args`, and returns the JSON object it prints last; a reason instead (also logged) when it cannot run.
 */
/**
 * The VGG anchor of the `lrp` and `crp` suites (`zennit_vgg.py --suite <suite>`), writing its heatmaps into `dir`:
 * its figures, or none and why (sources absent, script failed).
 */
export function runVggAnchor<T extends AnchorRun>(
  log: (s: string) => void,
  suite: 'lrp' | 'crp',
  { threads, quick, dir }: { threads: number; quick: boolean; dir: string },
): { zennit: T | undefined; why: string } {
  const ran = runZennitAnchor<T>(log, 'zennit_vgg.py', [
    '--suite',
    suite,
    '--threads',
    String(threads),
    '--heatmaps',
    dir,
    ...(quick ? ['--quick'] : []),
  ]);
  return typeof ran === 'string' ? { zennit: undefined, why: ran } : { zennit: ran, why: '' };
}

export function runZennitAnchor<T extends AnchorRun>(
  log: (s: string) => void,
  script: string,
  args: readonly string[],
): T | string {
  const sources = anchorSources();
  if ('missing' in sources) {
    log(`anchor not run: zennit / zennit-crp sources absent: ${sources.missing}`);
    return `zennit sources absent: ${sources.missing}`;
  }
  const python = process.env.CRP_PYTHON ?? '/usr/bin/python3';
  const path = join(anchors, script);
  log(`anchor: ${script}, zennit / zennit-crp on PyTorch CPU (${args.join(' ')})...`);
  const run = spawnSync(python, [path, '--zennit', sources.zennit, '--crp', sources.crp, ...args], {
    encoding: 'utf8',
  });
  if (run.status !== 0) {
    const why = `${python} ${path} failed (exit ${run.status ?? run.signal}): ${(run.stderr ?? String(run.error)).slice(-500)}`;
    log(`anchor not run: ${why}`);
    return why;
  }
  const figures = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as T;
  log(
    `anchor: torch ${figures.torch}, load average ${figures.loadAverage.start.join('/')} -> ${figures.loadAverage.end.join('/')}`,
  );
  return figures;
}

/** Ours beside the anchor's figure: wall and CPU times and their ratios. */
export function ratio(
  ours: { median: number; cpu: number },
  theirs: AnchorFigure | undefined,
  name: string,
  why: string,
): string {
  const cpu = `CPU ${ours.cpu.toFixed(0)} ms`;
  if (theirs === undefined) return `${cpu}; ${name}: not run (${why})`;
  const theirCpu = median(theirs.cpuMs);
  return (
    `${cpu}; ${name} ${theirs.median.toFixed(0)} ms (CPU ${theirCpu.toFixed(0)} ms) in this run; ` +
    `ours/${name} wall ${(ours.median / theirs.median).toFixed(2)}, CPU ${(ours.cpu / theirCpu).toFixed(2)}`
  );
}

/** An anchor's figure as a result of its own (its runs kept beside ours in results.json); `convert` as in
 * {@link result} (e.g. per sample). */
export function anchorResult(
  name: string,
  figure: AnchorFigure,
  a: AnchorRun,
  what: string,
  convert: (ms: number) => number = (ms) => ms,
): BenchResult {
  return result(
    name,
    'ms',
    figure.runs,
    `${what}, torch ${a.torch} CPU, ${a.threads} threads${a.ompWaitPolicy === undefined ? '' : ` (OMP_WAIT_POLICY ${a.ompWaitPolicy})`}, CPU ${convert(median(figure.cpuMs)).toFixed(0)} ms, load average ${a.loadAverage.start.join('/')} -> ${a.loadAverage.end.join('/')}`,
    convert,
  );
}

/** The relative L2 distance above which {@link heatmapAgreement} says the heatmaps disagree. */
export const HEATMAP_AGREEMENT = 1e-3;

/**
 * How far our heatmap is from the anchor's of the same workload: the largest absolute difference, also relative
 * to the largest |value| of the anchor's, and the relative L2 distance. `ours` is NHWC (an input relevance, compared
 * as NCHW) or NHW; the caller keeps it.
 */
export function heatmapAgreement(
  ours: tf.Tensor,
  theirs: AnchorHeatmap | undefined,
  peer = 'zennit',
): string {
  if (theirs === undefined) return 'heatmap not compared (the anchor wrote none)';
  const bytes = readFileSync(theirs.file);
  const ref = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const nchw = theirs.layout === 'NCHW' ? tf.transpose(ours, [0, 3, 1, 2]) : ours;
  const shape = nchw.shape;
  const mine = nchw.dataSync();
  if (nchw !== ours) nchw.dispose();
  if (shape.join() !== theirs.shape.join() || mine.length !== ref.length) {
    return `heatmap not compared: ours [${shape.join(', ')}], the anchor's [${theirs.shape.join(', ')}]`;
  }
  let maxDiff = 0;
  let maxRef = 0;
  let diff2 = 0;
  let ref2 = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(mine[i]! - ref[i]!);
    maxDiff = Math.max(maxDiff, d);
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
    diff2 += d * d;
    ref2 += ref[i]! * ref[i]!;
  }
  // an all-zero anchor heatmap agrees only with an all-zero one
  const relL2 = ref2 > 0 ? Math.sqrt(diff2 / ref2) : diff2 === 0 ? 0 : Number.POSITIVE_INFINITY;
  return (
    `heatmap vs ${peer}: max |diff| ${maxDiff.toExponential(2)} (${(maxDiff / maxRef).toExponential(2)} of max |R|), ` +
    `rel. L2 ${relL2.toExponential(2)}` +
    // float32 noise is 1e-7..1e-4 here (oneDNN against XNNPACK); more means other weights, images or rules. Not
    // "> limit": a NaN on either side (a NaN distance) disagrees too
    (!(relL2 <= HEATMAP_AGREEMENT)
      ? `: DISAGREES (over ${HEATMAP_AGREEMENT}), the two sides do not do the same work`
      : '')
  );
}

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CondAttribution, type Condition, disposeCondResult } from '@crp/core';
import { Attributor, disposeResult } from '@crp/lrp';
import { torchVitFromStateDict, type VitConfig } from '@crp/models';
import { vitFormulaImage, vitFormulaStateDict } from '@crp/testing/vit-formula';
import { type BenchResult, median, result, type SuiteContext, timeRunsCpu } from '../measure.js';
import { vitB16Config } from '../torch-fixtures.js';

const here = dirname(fileURLToPath(import.meta.url));

/** LXT's figures of the same workloads (bench/anchors/lxt_vit.py), measured in this run when CRP_LXT_SRC names
 * LXT's source tree; undefined (and said so in the notes) otherwise. */
interface LxtFigures {
  heatmapMs: number;
  crp1Ms: number;
  crp8BatchedMs: number;
  /** CPU time of each timed run (all threads of the process) */
  heatmapCpuMs: number[];
  crp1CpuMs: number[];
  crp8BatchedCpuMs: number[];
  peakRssMiB: number;
  threads: number;
  torch: string;
}

function anchor(
  log: (s: string) => void,
  quick: boolean,
  threads: number,
  runs: number,
): LxtFigures | undefined {
  const lxt = process.env.CRP_LXT_SRC;
  if (lxt === undefined) return undefined;
  log(`anchor: LXT on PyTorch, ${threads} threads...`);
  const script = join(here, '..', '..', 'anchors', 'lxt_vit.py');
  const args = [
    script,
    '--lxt',
    lxt,
    '--threads',
    String(threads),
    '--runs',
    String(runs),
    ...(runs === 1 ? ['--warmup', '0'] : []),
    ...(quick ? ['--quick'] : []),
  ];
  // Debian's python3 (with python3-torch): the python3 on PATH may be another one without torch
  const run = spawnSync(process.env.CRP_PYTHON ?? '/usr/bin/python3', args, { encoding: 'utf8' });
  if (run.status !== 0) {
    log(`anchor failed: ${run.stderr.slice(-500)}`);
    return undefined;
  }
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as LxtFigures;
}

/** Ours beside the anchor's figure, wall and CPU (on a loaded machine the wall time is mostly waiting for a core). */
function ratio(
  ours: { median: number; cpu: number },
  theirs: { wall: number; cpu: number } | undefined,
  name: string,
): string {
  // CPU / wall: how many of the threads were busy on average (2 at most with 2 threads; on a loaded machine less,
  // since wall time then includes waiting for a core)
  const cpu = `CPU ${ours.cpu.toFixed(0)} ms, CPU/wall ${(ours.cpu / ours.median).toFixed(2)}`;
  return theirs === undefined
    ? `${cpu}; ${name}: anchor not run (set CRP_LXT_SRC to LXT's source tree)`
    : `${cpu}; ${name} ${theirs.wall.toFixed(0)} ms (CPU ${theirs.cpu.toFixed(0)} ms, CPU/wall ${(theirs.cpu / theirs.wall).toFixed(2)}) this run; ours/${name} wall ${(ours.median / theirs.wall).toFixed(2)}, CPU ${(ours.cpu / theirs.cpu).toFixed(2)}`;
}

/** vit_b_16 (torchvision, weights of the seeded formula of scripts/golden/lxt_vit.py) with AttnLRP: one heatmap,
 * and CRP on 8 MLP neurons of the last block in one batch vs one condition at a time; LXT on PyTorch CPU beside
 * (bench/anchors/lxt_vit.py, in the same run). Peak memory is the suite process's (results.json). */
export async function vitSuite({ log, quick, threads }: SuiteContext): Promise<BenchResult[]> {
  const config: VitConfig = vitB16Config({ numLayers: quick ? 2 : 12 });
  // a vit_b_16 attribution takes a minute on two loaded cores: CRP_BENCH_VIT_RUNS=1 drops the warm-up of the
  // heatmap (the first call's overhead is small next to a minute) and gives LXT single runs; ours are still the
  // median of timeRuns' minimum of 3
  const runs = quick ? 1 : Number(process.env.CRP_BENCH_VIT_RUNS ?? 3);
  const lxt = anchor(log, quick, threads, runs);
  const model = torchVitFromStateDict(vitFormulaStateDict(config), { numHeads: config.numHeads });
  const image = vitFormulaImage(config);
  const results: BenchResult[] = [];
  const timing = { warmup: runs === 1 ? 0 : 1, minRuns: runs };

  log(`vit_b_16 224px${quick ? ' (2 blocks)' : ''}: AttnLRP heatmap...`);
  const lrp = new Attributor(model, { composite: 'attn_lrp', canonizers: [] });
  const heatmap = await timeRunsCpu(() => {
    const r = lrp.attribute(image, { target: 0 });
    r.relevance.dataSync();
    disposeResult(r);
  }, timing);
  lrp.dispose();
  results.push(
    result(
      'vit.vit_b_16_224.attn_lrp.latency_ms',
      'ms',
      heatmap.runs,
      ratio(heatmap, lxt && { wall: lxt.heatmapMs, cpu: median(lxt.heatmapCpuMs) }, 'LXT'),
    ),
  );

  const last = `encoder.layers.encoder_layer_${config.numLayers - 1}.mlp.1`;
  const conditions: Condition[] = Array.from({ length: 8 }, (_, k) => ({ y: [0], [last]: [k * 7] }));
  const crp = new CondAttribution(model, { composite: 'attn_lrp', canonizers: [] });
  log(`vit_b_16 224px: CRP, one condition on ${last}...`);
  // always one untimed run first: the attributor derives its weights once (W^T of every layer), which would
  // otherwise count against the single-condition run and flatter the ratio
  const one = await timeRunsCpu(
    () => {
      const r = crp.run(image, conditions.slice(0, 1));
      r.heatmap!.dataSync();
      disposeCondResult(r);
    },
    { ...timing, warmup: 1 },
  );
  log(`vit_b_16 224px: CRP, 8 conditions on ${last} in one batch...`);
  const batched = await timeRunsCpu(() => {
    const r = crp.run(image, conditions);
    r.heatmap!.dataSync();
    disposeCondResult(r);
  }, timing);
  crp.dispose();
  // 8 conditions one at a time cost 8 single-condition runs (each its own forward and backward pass)
  const speedup = (8 * one.median) / batched.median;
  const speedupCpu = (8 * one.cpu) / batched.cpu;
  const lxtOne = lxt && { wall: lxt.crp1Ms, cpu: median(lxt.crp1CpuMs) };
  results.push(
    result('vit.vit_b_16_224.crp1.latency_ms', 'ms', one.runs, ratio(one, lxtOne, 'LXT')),
    result(
      'vit.vit_b_16_224.crp8_batched.latency_ms',
      'ms',
      batched.runs,
      `8 conditions on one MLP layer in one batch: ${speedup.toFixed(2)}x faster than 8 single-condition runs in wall time, ${speedupCpu.toFixed(2)}x in CPU time (goal >= 2x); ${ratio(batched, lxtOne && { wall: 8 * lxtOne.wall, cpu: 8 * lxtOne.cpu }, 'LXT 8 single-condition runs')}`,
    ),
  );
  if (lxt !== undefined) {
    log(
      `LXT (torch ${lxt.torch}, ${lxt.threads} threads): heatmap ${lxt.heatmapMs.toFixed(0)} ms (CPU ${median(lxt.heatmapCpuMs).toFixed(0)}), CRP one condition ${lxt.crp1Ms.toFixed(0)} ms (CPU ${median(lxt.crp1CpuMs).toFixed(0)}), 8 batched ${lxt.crp8BatchedMs.toFixed(0)} ms (CPU ${median(lxt.crp8BatchedCpuMs).toFixed(0)}), peak ${lxt.peakRssMiB.toFixed(0)} MiB`,
    );
  }
  image.dispose();
  model.dispose();
  return results;
}

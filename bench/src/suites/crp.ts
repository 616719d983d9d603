import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CondAttribution, disposeCondResult } from '@crp/core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type BenchResult, result, type SuiteContext, timeRunsCpu } from '../measure.js';
import { type BENCH_VGGS, benchVgg, benchVggImage } from '../torch-fixtures.js';
import {
  type AnchorFigure,
  type AnchorHeatmap,
  type AnchorRun,
  anchorResult,
  heatmapAgreement,
  ratio,
  runVggAnchor,
} from './zennit-anchor.js';

/** Image seed of the workloads: zennit_vgg.py's CRP_IMAGE_SEED. */
const IMAGE_SEED = 5;

/** What bench/anchors/zennit_vgg.py --suite crp prints. */
interface Anchor extends AnchorRun {
  figures: Partial<Record<string, AnchorFigure>>;
  heatmaps: Partial<Record<string, AnchorHeatmap>>;
}

function convLayers(model: LayersModel): string[] {
  return model.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => l.name);
}

/** 8 conditions {y: [k % 3], <last conv>: [7k]}, k = 0..7, on one image, the relevance of every conv recorded
 * (zennit-crp's record_layer); timed after one warm-up run, then one more run whose heatmaps are compared with
 * the anchor's. */
async function eightConditions(name: keyof typeof BENCH_VGGS, minRuns: number, theirs: Anchor | undefined) {
  const model = benchVgg(name);
  const convs = convLayers(model);
  const last = convs[convs.length - 1]!;
  const conditions = Array.from({ length: 8 }, (_, k) => ({ y: [k % 3], [last]: [k * 7] }));
  const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  const image = benchVggImage(name, 1, IMAGE_SEED);
  const t = await timeRunsCpu(
    () => {
      const r = crp.run(image, conditions, { recordLayers: convs });
      r.heatmap!.dataSync();
      disposeCondResult(r);
    },
    { minRuns },
  );
  const r = crp.run(image, conditions, { recordLayers: convs });
  // without the anchor, ratio() already says why in the note
  const agreement =
    theirs === undefined
      ? ''
      : `; ${heatmapAgreement(r.heatmap!, theirs.heatmaps[`${name}.crp8`], 'zennit-crp')}`;
  disposeCondResult(r);
  image.dispose();
  crp.dispose();
  model.dispose();
  return { ...t, agreement, convs: convs.length };
}

/**
 * CRP, 8 conditions recording every conv, on the small VGG (64 px) and VGG16 (224 px); zennit-crp's figures of the
 * same workloads (same weights and image) measured first in the same run by bench/anchors/zennit_vgg.py, and our
 * conditional heatmaps compared with zennit-crp's.
 */
export async function crpSuite({ log, quick, threads }: SuiteContext): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'crp-bench-crp-'));
  try {
    const { zennit, why } = runVggAnchor<Anchor>(log, 'crp', { threads, quick, dir });
    const workloads: [keyof typeof BENCH_VGGS, number][] = [['small_vgg_64', 30]];
    if (!quick) workloads.push(['vgg16_224', 3]);
    for (const [name, minRuns] of workloads) {
      log(`CRP ${name}, 8 conditions, recording every conv layer...`);
      const t = await eightConditions(name, minRuns, zennit);
      if (zennit !== undefined) log(`${name}: ${t.agreement.slice(2)}`);
      results.push(
        result(
          `crp.${name}.8conditions_record_all_conv.ms`,
          'ms',
          t.runs,
          `${t.convs} convs recorded; ${ratio(t, zennit?.figures[`${name}.crp8`], 'zennit-crp', why)}${t.agreement}`,
        ),
      );
      const figure = zennit?.figures[`${name}.crp8`];
      if (zennit !== undefined && figure !== undefined) {
        results.push(
          anchorResult(`crp.${name}.zennit_crp.8conditions_record_all_conv.ms`, figure, zennit, 'zennit-crp'),
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

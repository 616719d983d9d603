import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Attributor, disposeResult } from '@crp/lrp';
import type * as tf from '@tensorflow/tfjs-core';
import { type BenchResult, result, type SuiteContext, timeRunsCpu } from '../measure.js';
import { benchVgg, benchVggImage } from '../torch-fixtures.js';
import {
  type AnchorFigure,
  type AnchorHeatmap,
  type AnchorRun,
  anchorResult,
  heatmapAgreement,
  ratio,
  runVggAnchor,
} from './zennit-anchor.js';

/** Image seeds of the workloads: zennit_vgg.py's LRP_IMAGE_SEED and SMALL_IMAGE_SEED. */
const VGG16_IMAGE_SEED = 7;
const SMALL_IMAGE_SEED = 11;

/** What bench/anchors/zennit_vgg.py --suite lrp prints. */
interface Anchor extends AnchorRun {
  figures: Partial<Record<string, AnchorFigure>>;
  heatmaps: Partial<Record<string, AnchorHeatmap>>;
}

/** An anchor figure per sample of a batch. */
function perSample(figure: AnchorFigure | undefined, batch: number): AnchorFigure | undefined {
  if (figure === undefined) return undefined;
  return { median: figure.median / batch, runs: figure.runs, cpuMs: figure.cpuMs.map((ms) => ms / batch) };
}

/**
 * LRP heatmaps (EpsilonPlusFlat) of VGG16 at 224 px and of the small VGG at 64 px, per sample at batch 1 and 16;
 * zennit's figures of the same workloads (same weights, images and output relevance: the target's logit) measured
 * first in the same run by bench/anchors/zennit_vgg.py, and our heatmaps compared with zennit's.
 */
export async function lrpSuite({ log, quick, threads }: SuiteContext): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'crp-bench-lrp-'));
  try {
    const { zennit, why } = runVggAnchor<Anchor>(log, 'lrp', { threads, quick, dir });
    /** Times `attribute` and compares one more heatmap with zennit's. */
    const heatmapOf = async (
      lrp: Attributor,
      x: tf.Tensor,
      target: number,
      key: string,
      timing: { warmup: number; minRuns: number },
    ) => {
      const timed = await timeRunsCpu(() => {
        const r = lrp.attribute(x, { target });
        r.relevance.dataSync();
        disposeResult(r);
      }, timing);
      const r = lrp.attribute(x, { target });
      // without the anchor, ratio() already says why in the note
      const agreement =
        zennit === undefined ? '' : `; ${heatmapAgreement(r.relevance, zennit.heatmaps[key])}`;
      disposeResult(r);
      if (zennit !== undefined) log(`${key}: ${agreement.slice(2)}`);
      return { ...timed, agreement };
    };

    if (!quick) {
      log('VGG16 (224x224x3, formula weights)...');
      const big = benchVgg('vgg16_224');
      const image = benchVggImage('vgg16_224', 1, VGG16_IMAGE_SEED);
      const lrp = new Attributor(big, { composite: 'epsilon_plus_flat' });
      const forward = await timeRunsCpu(() => {
        const pass = lrp.forward(image);
        pass.prediction.dataSync();
        pass.dispose();
      });
      const heatmap = await heatmapOf(lrp, image, 0, 'vgg16_224.heatmap', { warmup: 1, minRuns: 3 });
      lrp.dispose();
      big.dispose();
      image.dispose();
      results.push(
        result(
          'lrp.vgg16_224.forward_ms',
          'ms',
          forward.runs,
          `our LRP forward pass (keeps what the rules need); ${ratio(forward, zennit?.figures['vgg16_224.forward'], 'PyTorch no_grad forward', why)}`,
        ),
        result(
          'lrp.vgg16_224.epsilon_plus_flat.latency_ms',
          'ms',
          heatmap.runs,
          `${ratio(heatmap, zennit?.figures['vgg16_224.heatmap'], 'zennit', why)}${heatmap.agreement}`,
        ),
      );
    }

    log('small VGG (64x64x3, formula weights)...');
    const small = benchVgg('small_vgg_64');
    const lrpSmall = new Attributor(small, { composite: 'epsilon_plus_flat' });
    for (const batch of [1, 16]) {
      const x = benchVggImage('small_vgg_64', batch, SMALL_IMAGE_SEED);
      const key = `small_vgg_64.heatmap.batch${batch}`;
      const t = await heatmapOf(lrpSmall, x, 3, key, { warmup: 2, minRuns: batch === 1 ? 20 : 5 });
      x.dispose();
      const ours = { median: t.median / batch, cpu: t.cpu / batch };
      results.push(
        result(
          `lrp.small_vgg_64.per_sample_ms.batch${batch}`,
          'ms',
          t.runs,
          `${ratio(ours, perSample(zennit?.figures[key], batch), 'zennit', why)}${t.agreement}`,
          (ms) => ms / batch,
        ),
      );
    }
    lrpSmall.dispose();
    small.dispose();

    if (zennit !== undefined) {
      const anchorFigure = (name: string, key: string, what: string, batch = 1) => {
        const figure = zennit.figures[key];
        if (figure !== undefined) results.push(anchorResult(name, figure, zennit, what, (ms) => ms / batch));
      };
      anchorFigure('lrp.vgg16_224.torch.forward_ms', 'vgg16_224.forward', 'PyTorch forward (no_grad)');
      anchorFigure('lrp.vgg16_224.zennit.epsilon_plus_flat.latency_ms', 'vgg16_224.heatmap', 'zennit 0.5.1');
      for (const batch of [1, 16]) {
        anchorFigure(
          `lrp.small_vgg_64.zennit.per_sample_ms.batch${batch}`,
          `small_vgg_64.heatmap.batch${batch}`,
          'zennit 0.5.1, per sample',
          batch,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

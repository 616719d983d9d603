import { CondAttribution, type Condition, disposeCondResult } from '@crp/core';
import * as lrp from '@crp/lrp';
import { importOnnx } from '@crp/models';
import { DeviationLog, deviation, type GoldenTensor, goldenData } from '../compare.js';
import { discoverCaseFiles } from '../discover.js';
import { joinPath } from '../reference-files.js';
import type { CaseOutcome, CaseRef, KindRunner } from '../types.js';
import { builtInComposite, tensorOf } from './lrp.js';

/**
 * A CRP case on a model given as ONNX (`onnx/` of the reference: the DenseNet-like and the squeeze-excitation
 * model exported by torch.onnx, conditional relevances by zennit-crp's CondAttribution on the torch model; made by
 * scripts/golden/onnx/make_onnx_golden.py). `relevances` holds the full relevance at each recorded layer, NHWC,
 * one row per condition.
 */
interface OnnxCrpCase {
  id: string;
  model: string;
  compositePython: string;
  input: GoldenTensor;
  conditions: Condition[];
  recordLayer: string[];
  excludeParallel: boolean;
  heatmap: GoldenTensor;
  prediction: GoldenTensor;
  relevances: Record<string, GoldenTensor>;
}

async function runOnnxCrpCase(ref: CaseRef): Promise<CaseOutcome> {
  const c = (await ref.load()) as OnnxCrpCase;
  const file = joinPath(ref.dir, `models/${c.model}.onnx`);
  const bytes = await ref.files.readBytes(file);
  if (bytes === undefined) throw new Error(`${file} does not exist`);
  const composite = builtInComposite(c.compositePython);
  if (composite === undefined) throw new Error(`no built-in composite for ${c.compositePython}`);
  const model = importOnnx(bytes);
  // as the onnx-lrp cases: the exporter folded the batch norms after convs; the ones left (before a conv) get Pass
  const crp = new CondAttribution(model, { composite, canonizers: [lrp.mergeBatchNorm()] });
  const input = tensorOf(c.input);
  const log = new DeviationLog();
  // zennit-crp (torch 1.13) records a conditioned layer before its own mask: there only the condition's channels
  // are comparable (as the torch-crp cases)
  const masked = new Set(c.conditions.flatMap((cond) => Object.keys(cond).filter((k) => k !== 'y')));
  try {
    const result = crp.run(input, c.conditions, {
      recordLayers: c.recordLayer,
      excludeParallel: c.excludeParallel,
    });
    try {
      log.add('heatmap', deviation(await result.heatmap!.data(), goldenData(c.heatmap)));
      log.add('prediction', deviation(await result.prediction.data(), goldenData(c.prediction)));
      for (const layer of c.recordLayer) {
        const ours = result.relevances[layer]!;
        const golden = goldenData(c.relevances[layer]!, c.relevances);
        const data = await ours.data();
        if (!masked.has(layer)) {
          log.add(`relevances.${layer}`, deviation(data, golden));
          continue;
        }
        // NHWC rows: channel = last axis, row = condition
        const channels = ours.shape[ours.rank - 1]!;
        const perRow = golden.length / c.conditions.length;
        const keep = (i: number) =>
          (c.conditions[Math.floor(i / perRow)]![layer] as number[] | undefined)?.includes(i % channels) ===
          true;
        const pick = (a: ArrayLike<number>) => Array.from(a).filter((_, i) => keep(i));
        log.add(`relevances.${layer}[condition channels]`, deviation(pick(data), pick(golden)));
      }
    } finally {
      disposeCondResult(result);
    }
  } finally {
    input.dispose();
    crp.dispose();
    model.dispose();
  }
  return { id: c.id, kind: 'onnx-crp', passed: log.worst <= 1, worst: log.worst, detail: log.summary() };
}

/** zennit-crp conditions on the ONNX DenseNet-like (inside the dense block, with and without `exclude_parallel`)
 * and the squeeze-excitation model (the conv before the gated product), both branches recorded. */
export const onnxCrpRunner: KindRunner = {
  kind: 'onnx-crp',
  discover: (dir, files) => discoverCaseFiles(joinPath(dir, 'onnx'), files, 'onnx-crp'),
  run: runOnnxCrpCase,
};

import { CondAttribution, type Condition, disposeCondResult } from '@crp/core';
import * as lrp from '@crp/lrp';
import { importOnnx } from '@crp/models';
import { DeviationLog, deviation, type GoldenTensor, goldenData } from '../compare.js';
import { discoverCaseFiles } from '../discover.js';
import { joinPath } from '../reference-files.js';
import type { CaseOutcome, CaseRef, KindRunner } from '../types.js';
import { compositeOf, logConditionedRelevance, readModelBytes } from './case-helpers.js';
import { tensorOf } from './lrp.js';

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
  const composite = compositeOf(c.compositePython);
  const model = importOnnx(await readModelBytes(ref, c.model));
  // as the onnx-lrp cases: batch norms and the importer's ZeroPadding2D folded into the convs
  const crp = new CondAttribution(model, {
    composite,
    canonizers: [lrp.mergeBatchNorm(), lrp.mergeZeroPadding()],
  });
  const input = tensorOf(c.input);
  const log = new DeviationLog();
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
        logConditionedRelevance(
          log,
          `relevances.${layer}`,
          layer,
          c.conditions,
          ours.shape[ours.rank - 1]!,
          await ours.data(),
          goldenData(c.relevances[layer]!, c.relevances),
        );
      }
    } finally {
      disposeCondResult(result);
    }
  } finally {
    input.dispose();
    crp.dispose();
    model.dispose();
  }
  return log.outcome(c.id, 'onnx-crp');
}

/** zennit-crp conditions on the ONNX DenseNet-like (inside the dense block, with and without `exclude_parallel`)
 * and the squeeze-excitation model (the conv before the gated product), both branches recorded. */
export const onnxCrpRunner: KindRunner = {
  kind: 'onnx-crp',
  discover: (dir, files) => discoverCaseFiles(joinPath(dir, 'onnx'), files, 'onnx-crp'),
  run: runOnnxCrpCase,
};

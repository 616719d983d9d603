import * as lrp from '@crp/lrp';
import { importOnnx } from '@crp/models';
import type * as tf from '@tensorflow/tfjs-core';
import { DeviationLog, deviation, type GoldenTensor, goldenData } from '../compare.js';
import { discoverCaseFiles } from '../discover.js';
import { joinPath } from '../reference-files.js';
import type { CaseOutcome, CaseRef, KindRunner } from '../types.js';
import { compositeOf, readModelBytes } from './case-helpers.js';
import { compareRelevances, tensorOf } from './lrp.js';

/** An LRP case on a model given as ONNX (`onnx/` of the reference: models exported by torch.onnx, relevances
 * by zennit; format of the `lrp` cases, the model in `models/<model>.onnx`). */
interface OnnxLrpCase {
  id: string;
  model: string;
  compositePython: string;
  input: GoldenTensor;
  targets: number[];
  logits: GoldenTensor;
  logitsDuringAttribution: GoldenTensor;
  relevance: Record<string, GoldenTensor>;
}

async function runOnnxLrpCase(ref: CaseRef): Promise<CaseOutcome> {
  const c = (await ref.load()) as OnnxLrpCase;
  const composite = compositeOf(c.compositePython);
  const model = importOnnx(await readModelBytes(ref, c.model));
  const log = new DeviationLog();
  // the exporter folded the batch norms after convs exactly; the ones left (before a conv) get Pass. An ONNX Conv
  // pads inside the layer, as PyTorch's: the ZeroPadding2D the importer writes for pads TF's 'same' cannot express
  // goes back into the conv, so Flat and ZBox see zeros there as zennit does (the engine's default canonizers)
  const attributor = new lrp.Attributor(model, {
    composite,
    canonizers: [lrp.mergeBatchNorm(), lrp.mergeZeroPadding()],
  });
  const input = tensorOf(c.input);
  try {
    const plain = model.predict(input) as tf.Tensor;
    log.add('logits (plain model)', deviation(await plain.data(), goldenData(c.logits)));
    plain.dispose();
    await compareRelevances(attributor, input, c, log);
  } finally {
    input.dispose();
    attributor.dispose();
    model.dispose();
  }
  return log.outcome(c.id, 'onnx-lrp');
}

export const onnxLrpRunner: KindRunner = {
  kind: 'onnx-lrp',
  discover: (dir, files) => discoverCaseFiles(joinPath(dir, 'onnx'), files, 'onnx-lrp'),
  run: runOnnxLrpCase,
};

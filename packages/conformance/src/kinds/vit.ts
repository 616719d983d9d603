import { CondAttribution, type Condition, disposeCondResult, HeadConcept } from '@crp/core';
import * as lrp from '@crp/lrp';
import { importOnnx, parseOnnxModel, torchVitFromStateDict, type VitConfig, vit } from '@crp/models';
import { setVitWeights } from '@crp/models/internal';
import { vitFormulaImage, vitFormulaStateDict } from '@crp/testing/vit-formula';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  type Deviation,
  DeviationLog,
  deviation,
  type GoldenTensor,
  goldenData,
  relativeL2Deviation,
} from '../compare.js';
import { discoverCaseFiles, readJson } from '../discover.js';
import { joinPath } from '../reference-files.js';
import type { CaseOutcome, CaseRef, KindRunner } from '../types.js';
import { fillInitializers } from './case-helpers.js';
import { tensorOf } from './lrp.js';

/** A case of `vit/` (format vit-golden/1): AttnLRP / CP-LRP on a small ViT, from LXT's explicit rules. */
interface VitCase {
  format: string;
  id: string;
  model: string;
  composite: 'attn_lrp' | 'cp_lrp';
  /** The image (NHWC); absent for models from a formula, whose image is the formula's. */
  input?: GoldenTensor;
  targets: number[];
  logits: GoldenTensor;
  /** Relevance at layer outputs (the small model). */
  relevance?: Record<string, GoldenTensor>;
  /** Relevance per token ([batch, tokens], summed over features) at layer outputs (the large model). */
  tokenRelevance?: Record<string, GoldenTensor>;
  heatmap: GoldenTensor;
  /** A CRP condition: the relevance at `layer` masked to `index` along `axis` (-1: channels, 1: heads). */
  condition?: { layer: string; axis: number; index: number };
  /** vit_b_16 only: PyTorch float32's own error on this case and the tolerance derived from it, per compared tensor
   * ('logits', 'heatmap', '<layer> per token'); see scripts/golden/lxt_vit.py, vit_b_16_cases. */
  float32?: { tolerance: Record<string, { metric: 'maxRelative' | 'relativeL2'; value: number }> };
}

interface VitModelFile {
  format: string;
  config: VitConfig;
  /** Weights in TF.js layouts (the small model), or none: the seeded formula (vit_b_16). */
  weights?: Record<string, GoldenTensor>;
  formula?: { name: string; input: { name: string; scale: number } };
}

const FORMAT = 'vit-golden/1';
/** The folder of the ViT cases inside a reference directory. */
const VIT_DIR = 'vit';

async function readVit(ref: CaseRef, name: string): Promise<{ model: tfl.LayersModel; file: VitModelFile }> {
  const file = joinPath(ref.dir, `${name}.json`);
  const m = (await readJson(ref.files, file, false)) as VitModelFile;
  if (m.format !== FORMAT) throw new Error(`${file}: format '${m.format}', expected '${FORMAT}'`);
  if (m.formula !== undefined)
    return { model: torchVitFromStateDict(vitFormulaStateDict(m.config)), file: m };
  const weights = m.weights;
  if (weights === undefined) throw new Error(`${file} has neither weights nor a formula`);
  const model = vit(m.config);
  setVitWeights(model, m.config, (key) => {
    const w = weights[key];
    if (w === undefined) throw new Error(`${file} has no weight '${key}'`);
    return goldenData(w);
  });
  return { model, file: m };
}

/** Relevance summed over the features of each token: [rows, tokens]. */
async function perToken(t: tf.Tensor): Promise<Float32Array> {
  const s = tf.sum(t, -1);
  const data = (await s.data()) as Float32Array;
  s.dispose();
  return data;
}

/** The ONNX exports of a model, by suffix (scripts/golden/onnx/export_vit_onnx.py): opset 17 (LayerNormalization),
 * opset 14 (LayerNorm decomposed), torch.onnx.export's defaults (constants folded, batch fixed at 1), opsets 11-13
 * (attributes for axes and split sizes, Softmax's pre-13 semantics), and the `Gelu` operator (opset 20). */
const ONNX_SUFFIXES = [
  '.onnx',
  '.opset14.onnx',
  '.folded.onnx',
  '.opset11.onnx',
  '.opset12.onnx',
  '.opset13.onnx',
  '.gelu.onnx',
];

/**
 * The ONNX exports of a case's model ({@link ONNX_SUFFIXES}), where they exist, built one at a time. A stripped export (no
 * initializer data: vit_b_16's 330 MB) is filled from the seeded formula by the initializers' names, the state-dict
 * keys. The caller disposes each model.
 */
async function* onnxBuilds(
  ref: CaseRef,
  name: string,
  file: VitModelFile,
): AsyncGenerator<{ label: string; model: tfl.LayersModel }> {
  for (const suffix of ONNX_SUFFIXES) {
    const path = joinPath(ref.dir, `${name}${suffix}`);
    const bytes = await ref.files.readBytes(path);
    if (bytes === undefined) continue;
    const onnx = parseOnnxModel(bytes);
    if (file.formula !== undefined) fillInitializers(onnx, vitFormulaStateDict(file.config), path);
    yield { label: `onnx${suffix.slice(0, -'.onnx'.length).replace('.', ' ')}: `, model: importOnnx(onnx) };
  }
}

type Check = (name: string, ours: ArrayLike<number>, golden: ArrayLike<number>) => Deviation;

/** The reference's tolerance (1e-4 of the largest value), or the case's own where it states one (vit_b_16). */
function toleranceCheck(c: VitCase): Check {
  return (name, ours, golden) => {
    const t = c.float32?.tolerance[name];
    if (t === undefined) return deviation(ours, golden);
    return t.metric === 'relativeL2'
      ? relativeL2Deviation(ours, golden, t.value)
      : deviation(ours, golden, t.value);
  };
}

/** The relevance compared at layers: whole tensors (small model) or per token (vit_b_16). */
async function compareVitLayers(
  c: VitCase,
  relevances: Record<string, tf.Tensor>,
  log: DeviationLog,
  prefix: string,
  check: Check,
): Promise<void> {
  for (const layer of Object.keys(c.relevance ?? {}).filter((k) => k !== 'input'))
    log.add(
      `${prefix}${layer}`,
      deviation(await relevances[layer]!.data(), goldenData(c.relevance![layer]!)),
    );
  for (const [layer, golden] of Object.entries(c.tokenRelevance ?? {}))
    log.add(
      `${prefix}${layer} per token`,
      check(`${layer} per token`, await perToken(relevances[layer]!), goldenData(golden)),
    );
}

/** One case on one build of its model; every compared tensor goes into `log` under `prefix`. */
async function checkVitCase(
  c: VitCase,
  model: tfl.LayersModel,
  input: tf.Tensor,
  log: DeviationLog,
  prefix: string,
): Promise<void> {
  const check = toleranceCheck(c);
  const options = { composite: c.composite, canonizers: [] };
  const compareLayers = (relevances: Record<string, tf.Tensor>) =>
    compareVitLayers(c, relevances, log, prefix, check);
  const recorded = [
    ...Object.keys(c.relevance ?? {}).filter((k) => k !== 'input'),
    ...Object.keys(c.tokenRelevance ?? {}),
  ];
  if (c.condition === undefined) {
    const attributor = new lrp.Attributor(model, options);
    try {
      const result = attributor.attribute(input, { target: c.targets, recordLayers: recorded });
      try {
        log.add(`${prefix}logits`, check('logits', await result.prediction.data(), goldenData(c.logits)));
        if (c.relevance?.input !== undefined) {
          log.add(`${prefix}input`, deviation(await result.relevance.data(), goldenData(c.relevance.input)));
        }
        const heatmap = tf.sum(result.relevance, -1);
        log.add(`${prefix}heatmap`, check('heatmap', await heatmap.data(), goldenData(c.heatmap)));
        heatmap.dispose();
        await compareLayers(result.relevances);
      } finally {
        lrp.disposeResult(result);
      }
    } finally {
      attributor.dispose();
    }
    return;
  }
  // one condition per image (paired), as zennit-crp runs a batch of conditions on a batch of images
  const { layer, axis, index } = c.condition;
  const conditions: Condition[] = c.targets.map((y) => ({ y: [y], [layer]: [index] }));
  const crp = new CondAttribution(model, options);
  try {
    const maskMap = axis === 1 ? { [layer]: new HeadConcept() } : {};
    const result = crp.run(input, conditions, { recordLayers: recorded, maskMap });
    try {
      log.add(`${prefix}prediction`, check('logits', await result.prediction.data(), goldenData(c.logits)));
      log.add(`${prefix}heatmap`, check('heatmap', await result.heatmap!.data(), goldenData(c.heatmap)));
      await compareLayers(result.relevances);
    } finally {
      disposeCondResult(result);
    }
  } finally {
    crp.dispose();
  }
}

async function runVitCase(ref: CaseRef): Promise<CaseOutcome> {
  const c = (await ref.load()) as VitCase;
  if (c.format !== FORMAT) throw new Error(`case format '${c.format}', expected '${FORMAT}'`);
  const { model, file } = await readVit(ref, c.model);
  const input = c.input === undefined ? vitFormulaImage(file.config) : tensorOf(c.input);
  const log = new DeviationLog();
  try {
    try {
      await checkVitCase(c, model, input, log, '');
    } finally {
      model.dispose();
    }
    // the same case through the model's ONNX exports, with the same expected values, one model alive at a time.
    // vit_b_16's (a minute per case) runs in the AttnLRP case alone, in full: logits, heatmap and relevance per
    // token after every block
    const once = file.formula === undefined || (c.condition === undefined && c.composite === 'attn_lrp');
    if (once)
      for await (const build of onnxBuilds(ref, c.model, file)) {
        try {
          await checkVitCase(c, build.model, input, log, build.label);
        } finally {
          build.model.dispose();
        }
      }
  } finally {
    input.dispose();
  }
  return log.outcome(c.id, 'vit');
}

/** AttnLRP, CP-LRP and CRP (an MLP neuron, an attention head) on a small ViT, against LXT (vit/index.json). */
export const vitRunner: KindRunner = {
  kind: 'vit',
  discover: (dir, files) => discoverCaseFiles(joinPath(dir, VIT_DIR), files, 'vit'),
  run: runVitCase,
};

import { ChannelConcept, CondAttribution, type Condition, disposeCondResult } from '@crp/core';
import * as lrp from '@crp/lrp';
import { importOnnx, type StateDict, torchResNetFromStateDict, torchResNetShapes } from '@crp/models';
import { formulaInput, formulaStateDict } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { DeviationLog, deviation, type GoldenTensor, goldenData } from '../compare.js';
import { discoverCaseFiles } from '../discover.js';
import { joinPath } from '../reference-files.js';
import type { CaseOutcome, CaseRef, KindRunner } from '../types.js';
import { logConditionedRelevance, parseWithFormula, readModelBytes } from './case-helpers.js';

/**
 * Golden cases of torchvision ResNets (vendor/reference/resnet, made by scripts/golden/make_resnet_golden.py with
 * torchvision's resnet18/resnet50/resnext50_32x4d constructors, zennit and zennit-crp). Weights and inputs are not stored: both
 * sides compute them from the seeded formula of @crp/testing/torch-weights; the model goes through the .pth
 * importer's `torchResNetFromStateDict`, so the cases check the import and the engine together, and every case
 * runs a second time through the ONNX importer (`models/<name>.onnx`, see {@link goldenResNetFromOnnx}).
 */

/** The folder of the cases inside a reference directory. */
const SUBDIR = 'resnet';
const CLASSES = 10;
const MODELS: Record<string, { spec: Parameters<typeof torchResNetShapes>[0]; seed: number }> = {
  resnet18: { spec: { block: 'basic', layers: [2, 2, 2, 2], classes: CLASSES }, seed: 18 },
  resnet50: { spec: { block: 'bottleneck', layers: [3, 4, 6, 3], classes: CLASSES }, seed: 50 },
  // grouped 3x3 convolutions (32 groups of 4 channels in layer1): the GroupedConv2D layer of @crp/lrp
  resnext50_32x4d: {
    spec: { block: 'bottleneck', layers: [3, 4, 6, 3], classes: CLASSES, groups: 32, widthPerGroup: 4 },
    seed: 32,
  },
};

/** The case's model as the importer builds it from the formula's state dict (the caller disposes it). */
export function goldenResNet(name: string, inputSize: number): tfl.LayersModel {
  const m = MODELS[name];
  if (m === undefined) throw new Error(`unknown model '${name}'; known: ${Object.keys(MODELS).join(', ')}`);
  const sd = formulaStateDict(torchResNetShapes(m.spec), m.seed) as StateDict;
  return torchResNetFromStateDict(sd, { inputSize });
}

/**
 * The case's model through the ONNX importer: `resnet/models/<name>.onnx` is torch.onnx.export's graph of the same
 * torchvision model with its initializers stripped (scripts/golden/onnx/export_resnet_onnx.py; resnet50's weights
 * are ~94 MB), which this fills from the same formula by their names, the state-dict keys. So the same case files
 * check the .onnx path too. The caller disposes the model.
 */
export async function goldenResNetFromOnnx(
  ref: CaseRef,
  name: string,
  inputSize: number,
): Promise<tfl.LayersModel> {
  const m = MODELS[name];
  if (m === undefined) throw new Error(`unknown model '${name}'; known: ${Object.keys(MODELS).join(', ')}`);
  const sd = formulaStateDict(torchResNetShapes(m.spec), m.seed);
  const onnx = parseWithFormula(await readModelBytes(ref, name), sd, `${SUBDIR}/models/${name}.onnx`);
  return importOnnx(onnx, { inputSize });
}

/** How a case's model is built: from the .pth state dict, or from the .onnx of the same model. */
interface Build {
  prefix: string;
  model: (ref: CaseRef, name: string, inputSize: number) => Promise<tfl.LayersModel>;
  /** the layer of a PyTorch module name (a block's output is its last ReLU) */
  layer: (module: string, model: string) => string;
}
const BUILDS: Build[] = [
  { prefix: '', model: async (_ref, name, size) => goldenResNet(name, size), layer: (n) => layerOf(n) },
  {
    // torch.onnx names a module's second and third call by scope: a block's ReLU after the addition is relu_1
    // (BasicBlock) or relu_2 (Bottleneck: resnet50 and resnext50)
    prefix: 'onnx: ',
    model: goldenResNetFromOnnx,
    layer: (n, model) =>
      /^layer\d+\.\d+$/.test(n) ? `${n}.relu_${MODELS[model]?.spec.block === 'bottleneck' ? 2 : 1}` : n,
  },
];

/** The golden input image: the formula's NCHW values as NHWC. */
export function goldenInput(size: number): tf.Tensor4D {
  return tf.tidy(() =>
    tf.transpose(tf.tensor4d(formulaInput([1, 3, size, size], size), [1, 3, size, size]), [0, 2, 3, 1]),
  );
}

/** zennit's composite (with `ResNetCanonizer`, i.e. zennit 0.5.1's batch-norm merge, which keeps epsilon). */
function attributorOptions(composite: string): lrp.AttributorOptions {
  const canonizers = [lrp.resnetCanonizer({ keepEpsilon: true })];
  switch (composite) {
    case 'EpsilonPlusFlat':
      return { composite: lrp.epsilonPlusFlat(), canonizers };
    case 'EpsilonAlpha2Beta1':
      return { composite: lrp.epsilonAlpha2Beta1(), canonizers };
    case 'EpsilonGammaBox':
      return { composite: lrp.epsilonGammaBox({ low: -2, high: 2 }), canonizers };
    default:
      throw new Error(`composite '${composite}' has no counterpart`);
  }
}

/** Sums an NHWC relevance over space: [rows, channels] (a dense layer's [rows, units] stays). */
function channelSums(t: tf.Tensor): tf.Tensor {
  return t.rank === 4 ? tf.sum(t, [1, 2]) : t.clone();
}

/** PyTorch module names that are not one of our layers: a block's output is its last ReLU. */
function layerOf(name: string): string {
  return /^layer\d+\.\d+$/.test(name) ? `${name}.relu` : name;
}

interface LogitsCase {
  id: string;
  model: string;
  logits: Record<string, GoldenTensor>;
}

async function runLogitsCase(ref: CaseRef): Promise<CaseOutcome> {
  const c = (await ref.load()) as LogitsCase;
  const log = new DeviationLog();
  for (const build of BUILDS)
    for (const [size, golden] of Object.entries(c.logits)) {
      const model = await build.model(ref, c.model, Number(size));
      const x = goldenInput(Number(size));
      try {
        const y = model.predict(x) as tf.Tensor;
        log.add(`${build.prefix}logits.${size}`, deviation(await y.data(), goldenData(golden)));
        y.dispose();
      } finally {
        x.dispose();
        model.dispose();
      }
    }
  return log.outcome(c.id, 'torch-logits');
}

interface LrpCase {
  id: string;
  model: string;
  inputSize: number;
  composite: string;
  target: number;
  logits: GoldenTensor;
  logitsDuringAttribution: GoldenTensor;
  heatmap: GoldenTensor;
  channelRelevance: Record<string, GoldenTensor>;
}

async function runLrpCase(ref: CaseRef): Promise<CaseOutcome> {
  const c = (await ref.load()) as LrpCase;
  const log = new DeviationLog();
  for (const build of BUILDS) await lrpWith(build, ref, c, log);
  return log.outcome(c.id, 'torch-lrp');
}

async function lrpWith(build: Build, ref: CaseRef, c: LrpCase, log: DeviationLog): Promise<void> {
  const layerOf = (n: string) => build.layer(n, c.model);
  const model = await build.model(ref, c.model, c.inputSize);
  const attributor = new lrp.Attributor(model, attributorOptions(c.composite));
  const x = goldenInput(c.inputSize);
  try {
    const layers = Object.keys(c.channelRelevance);
    const result = attributor.attribute(x, { target: c.target, recordLayers: layers.map(layerOf) });
    try {
      log.add(
        `${build.prefix}logitsDuringAttribution`,
        deviation(await result.prediction.data(), goldenData(c.logitsDuringAttribution)),
      );
      const heatmap = tf.sum(result.relevance, 3);
      log.add(`${build.prefix}heatmap`, deviation(await heatmap.data(), goldenData(c.heatmap)));
      heatmap.dispose();
      for (const layer of layers) {
        const sums = channelSums(result.relevances[layerOf(layer)]!);
        log.add(
          `${build.prefix}channelRelevance.${layer}`,
          deviation(await sums.data(), goldenData(c.channelRelevance[layer]!)),
        );
        sums.dispose();
      }
    } finally {
      lrp.disposeResult(result);
    }
  } finally {
    x.dispose();
    attributor.dispose();
    model.dispose();
  }
}

interface CrpCase {
  id: string;
  model: string;
  inputSize: number;
  conditions: Condition[];
  recordLayer: string[];
  excludeParallel: boolean;
  heatmap: GoldenTensor;
  prediction: GoldenTensor;
  channelRelevance: Record<string, GoldenTensor>;
}

async function runCrpCase(ref: CaseRef): Promise<CaseOutcome> {
  const c = (await ref.load()) as CrpCase;
  const log = new DeviationLog();
  for (const build of BUILDS) await crpWith(build, ref, c, log);
  return log.outcome(c.id, 'torch-crp');
}

async function crpWith(build: Build, ref: CaseRef, c: CrpCase, log: DeviationLog): Promise<void> {
  const layerOf = (n: string) => build.layer(n, c.model);
  const model = await build.model(ref, c.model, c.inputSize);
  const crp = new CondAttribution(model, attributorOptions('EpsilonPlusFlat'));
  const x = goldenInput(c.inputSize);
  const concept = new ChannelConcept();
  try {
    const result = crp.run(x, c.conditions, {
      recordLayers: c.recordLayer.map(layerOf),
      excludeParallel: c.excludeParallel,
    });
    try {
      log.add(`${build.prefix}heatmap`, deviation(await result.heatmap!.data(), goldenData(c.heatmap)));
      log.add(
        `${build.prefix}prediction`,
        deviation(await result.prediction.data(), goldenData(c.prediction)),
      );
      for (const layer of c.recordLayer) {
        const scores = concept.attribute(result.relevances[layerOf(layer)]!, { absNorm: false });
        const ours = await scores.data();
        scores.dispose();
        const golden = goldenData(c.channelRelevance[layer]!);
        logConditionedRelevance(
          log,
          `${build.prefix}channelRelevance.${layer}`,
          layer,
          c.conditions,
          golden.length / c.conditions.length,
          ours,
          golden,
        );
      }
    } finally {
      disposeCondResult(result);
    }
  } finally {
    x.dispose();
    crp.dispose();
    model.dispose();
  }
}

function runner(kind: string, run: (ref: CaseRef) => Promise<CaseOutcome>): KindRunner {
  return { kind, discover: (dir, files) => discoverCaseFiles(joinPath(dir, SUBDIR), files, kind), run };
}

/** Logits of the imported ResNets against PyTorch's at 64, 128 and 224 pixels. */
export const torchLogitsRunner = runner('torch-logits', runLogitsCase);
/** zennit's EpsilonPlusFlat, EpsilonAlpha2Beta1 and EpsilonGammaBox with `ResNetCanonizer` on ResNets. */
export const torchLrpRunner = runner('torch-lrp', runLrpCase);
/** zennit-crp conditions on `layer3.1.conv2` and `layer4.0.downsample.0`, both branches recorded. */
export const torchCrpRunner = runner('torch-crp', runCrpCase);

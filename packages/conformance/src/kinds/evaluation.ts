import {
  type Explainer,
  irof,
  lrpExplainer,
  type MetricResult,
  type MetricSpec,
  mprt,
  noisyLinearImputation,
  type RandomSource,
  road,
  runMetric,
  slic,
} from '@crp/evaluation';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { DeviationLog, deviation, type GoldenTensor, goldenData } from '../compare.js';
import { readJson } from '../discover.js';
import { joinPath } from '../reference-files.js';
import { buildReferenceModel, readReferenceModel } from '../reference-model.js';
import type { CaseOutcome, CaseRef, KindRunner } from '../types.js';
import { tensorOf } from './lrp.js';

/** The bundle `evaluation/evaluation_golden.json` (format crp-golden-evaluation/1): shared data, then cases. */
interface EvaluationBundle {
  format: string;
  model: string;
  input: GoldenTensor;
  greyInput: GoldenTensor;
  labels: number[];
  relevance: GoldenTensor;
  heatmap: GoldenTensor;
  mask: GoldenTensor;
  randomisedLayers: Record<string, { kernel: GoldenTensor; bias: GoldenTensor }>;
  cases: EvaluationCase[];
}

type Values = (number | null)[] | (number | null)[][] | Record<string, (number | null)[]>;

interface EvaluationCase {
  id: string;
  metric: string;
  options: Record<string, unknown>;
  quantus: string;
  explanation: 'heatmap' | 'relevance' | 'explainer: heatmap' | 'none';
  expected: Values;
  expectedAuc?: number[];
  input?: 'greyInput';
  /** The case's own labels (ROAD: the grey-input model's predictions) instead of the bundle's. */
  labels?: number[];
  segments?: GoldenTensor;
  /** ROAD: Quantus's accuracy per percentage (the mean of the per-sample curves). */
  expectedAccuracy?: number[];
  /** SLIC: the image (HWC) and the label map's shape. */
  image?: GoldenTensor;
  labelShape?: number[];
  /** ROAD: Quantus's first imputations (in call order: percentages, then samples) and the noise they drew. */
  imputed?: { indices: number[]; normal: number[]; image: GoldenTensor }[];
  noiseScale?: number;
  random?: {
    normal?: number[][];
    subsets?: number[][][];
    permutations?: number[][];
    uniform?: number[][];
    noise?: GoldenTensor[];
    offTargets?: number[];
    layers?: string[];
  };
}

const FORMAT = 'crp-golden-evaluation/1';
const BUNDLE = 'evaluation/evaluation_golden.json';

/** A {@link RandomSource} that hands out Quantus's recorded draws in the order Quantus made them. */
function replay(c: EvaluationCase, labels: readonly number[]): RandomSource {
  const r = c.random ?? {};
  const subsets = (r.subsets ?? []).flat();
  const permutations = [...(r.permutations ?? [])];
  const uniforms: number[][] = [
    ...(r.uniform ?? []),
    ...(r.noise ?? []).map((t) => Array.from(goldenData(t))),
  ];
  // RandomLogit records the off-target class; the metric draws its index among the other classes
  const offIndices = (r.offTargets ?? []).map((off, i) => (off < labels[i]! ? off : off - 1));
  const normals = [...(r.normal ?? [])];
  const take = <T>(queue: T[], what: string): T => {
    const v = queue.shift();
    if (v === undefined) throw new Error(`the metric drew more ${what} than Quantus recorded`);
    return v;
  };
  return {
    uniform: (count) => {
      const v = take(uniforms, 'uniform values');
      if (v.length !== count) throw new Error(`uniform draw of ${count}, Quantus recorded ${v.length}`);
      return Float64Array.from(v);
    },
    normal: (count) => {
      const v = take(normals, 'normal values');
      if (v.length !== count) throw new Error(`normal draw of ${count}, Quantus recorded ${v.length}`);
      return Float64Array.from(v);
    },
    subset: () => Int32Array.from(take(subsets, 'subsets')),
    permutation: () => Int32Array.from(take(permutations, 'permutations')),
    integer: () => take(offIndices, 'integers'),
  };
}

/** Compares values that may be NaN (JSON null): NaN must meet NaN, numbers within the tolerance. */
function compareValues(
  log: DeviationLog,
  name: string,
  ours: readonly number[],
  golden: readonly (number | null)[],
): void {
  if (ours.length !== golden.length) {
    log.fail(`${name}: ${ours.length} values, Quantus ${golden.length}`);
    return;
  }
  const finite: number[] = [];
  const goldenFinite: number[] = [];
  golden.forEach((g, i) => {
    if (g === null) {
      if (!Number.isNaN(ours[i]!)) log.fail(`${name}[${i}]: ${ours[i]}, Quantus NaN`);
    } else {
      finite.push(ours[i]!);
      goldenFinite.push(g);
    }
  });
  if (finite.length > 0) log.add(name, deviation(finite, goldenFinite));
}

/** A SLIC case: skimage's label map, equal label for label (no relabelling: the toolkit follows skimage's scan
 * order, so the labels are skimage's own). */
function runSlicCase(c: EvaluationCase): CaseOutcome {
  const [height, width, channels] = c.image!.shape as [number, number, number];
  const labels = slic({ data: goldenData(c.image!), height, width, channels }, c.options);
  const expected = c.expected as number[];
  let differ = 0;
  for (let q = 0; q < expected.length; q++) if (labels[q] !== expected[q]) differ++;
  const passed = differ === 0 && labels.length === expected.length;
  const detail = `${differ} of ${expected.length} labels differ from skimage's (${new Set(expected).size} superpixels)`;
  return { id: c.id, kind: 'evaluation', passed, worst: passed ? 0 : Number.POSITIVE_INFINITY, detail };
}

async function runEvaluationCase(ref: CaseRef): Promise<CaseOutcome> {
  const { bundle, c } = (await ref.load()) as { bundle: EvaluationBundle; c: EvaluationCase };
  if (bundle.format !== FORMAT) throw new Error(`case format '${bundle.format}', expected '${FORMAT}'`);
  if (c.metric === 'SLIC') return runSlicCase(c);
  const model = buildReferenceModel(await readReferenceModel(ref.files, ref.dir, bundle.model));
  const grey = c.input === 'greyInput';
  const x = tensorOf(grey ? bundle.greyInput : bundle.input) as tf.Tensor4D;
  const explanation = c.explanation === 'relevance' ? tensorOf(bundle.relevance) : tensorOf(bundle.heatmap);
  const mask = tensorOf(bundle.mask);
  const log = new DeviationLog();
  try {
    const explainer: Explainer = lrpExplainer('epsilon_plus_flat');
    const random = replay(c, bundle.labels);
    const options: Record<string, unknown> = { ...c.options };
    let result: MetricResult;
    // Quantus ran IROF and ROAD on the first colour channel, the model fed that channel three times
    const classifier = (t: tf.Tensor4D) => model.predict(tf.tile(t, [1, 1, 1, 3])) as tf.Tensor;
    if (c.metric === 'IROF') {
      // with the recorded segments, or (segmentation 'slic') with the toolkit's own SLIC
      const { segmentation, ...rest } = options;
      const segments = segmentation === 'slic' ? {} : { segments: splitSegments(c.segments!) };
      result = await irof(
        { model: classifier, x, labels: bundle.labels, explanation },
        { ...rest, ...segments },
        { random },
      );
    } else if (c.metric === 'ROAD') {
      result = await road({ model: classifier, x, labels: c.labels!, explanation }, options, { random });
      const curves = result.curves!;
      const accuracy = curves[0]!.map((_, t) => curves.reduce((s, cur) => s + cur[t]!, 0) / curves.length);
      compareValues(log, 'accuracy', accuracy, c.expectedAccuracy!);
      // the imputation itself: the 0/1 curves alone would hide a slightly wrong one
      const [n, h, w, ch] = x.shape;
      const xs = await x.data<'float32'>();
      for (const [e, im] of (c.imputed ?? []).entries()) {
        const i = e % n;
        const sample = xs.subarray(i * h * w * ch, (i + 1) * h * w * ch);
        const ours = noisyLinearImputation(
          sample,
          h,
          w,
          ch,
          im.indices,
          c.noiseScale!,
          Float64Array.from(im.normal),
        );
        compareValues(log, `imputed[${e}]`, Array.from(ours), Array.from(goldenData(im.image)));
      }
    } else if (c.metric === 'MPRT') {
      // Quantus computed the explanations itself (a_batch=None) and randomised with torch: its weights replayed
      const randomiseLayer = (layer: tfl.layers.Layer) => {
        const w = bundle.randomisedLayers[layer.name];
        if (w === undefined) throw new Error(`Quantus randomised no layer '${layer.name}'`);
        return [tensorOf(w.kernel), tensorOf(w.bias)];
      };
      result = await mprt({ model, x, labels: bundle.labels }, explainer, { ...options, randomiseLayer });
    } else {
      const input = { model, x, labels: bundle.labels, explanation, mask };
      result = await runMetric({ name: c.metric, options } as MetricSpec, input, explainer, { random });
    }
    const expected = c.expected;
    if (Array.isArray(expected) && Array.isArray(expected[0])) {
      const curves = result.curves ?? [];
      for (const [i, g] of (expected as (number | null)[][]).entries()) {
        compareValues(log, `curve[${i}]`, curves[i] ?? [], g);
      }
      if (c.expectedAuc !== undefined) compareValues(log, 'auc', result.scores, c.expectedAuc);
    } else if (Array.isArray(expected)) {
      compareValues(log, 'scores', result.scores, expected as (number | null)[]);
    } else {
      for (const [layer, g] of Object.entries(expected))
        compareValues(log, `layers.${layer}`, result.layers?.[layer] ?? [], g);
      if (Object.keys(result.layers ?? {}).join() !== Object.keys(expected).join()) {
        log.fail(
          `layers ${Object.keys(result.layers ?? {}).join(', ')}; Quantus ${Object.keys(expected).join(', ')}`,
        );
      }
    }
  } finally {
    x.dispose();
    explanation.dispose();
    mask.dispose();
    model.dispose();
  }
  return log.outcome(c.id, 'evaluation');
}

function splitSegments(t: GoldenTensor): Int32Array[] {
  const [n, h, w] = t.shape as [number, number, number];
  const data = goldenData(t);
  return Array.from({ length: n }, (_, i) => Int32Array.from(data.subarray(i * h * w, (i + 1) * h * w)));
}

/** Quantus's metric values on tiny_vgg (crp-golden-evaluation/1), with every random draw replayed. */
export const evaluationRunner: KindRunner = {
  kind: 'evaluation',
  async discover(dir, files) {
    const file = joinPath(dir, BUNDLE);
    const bundle = (await readJson(files, file, true)) as EvaluationBundle | undefined;
    if (bundle === undefined) return [];
    return bundle.cases.map((c) => ({
      id: c.id,
      kind: 'evaluation',
      file,
      dir,
      files,
      load: async () => ({ bundle, c }),
    }));
  },
  run: runEvaluationCase,
};

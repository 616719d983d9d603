import { CrpError, type Progress, progressTracker } from '@crp/common';
import { CondAttribution, defaultConcept, disposeCondResult } from '@crp/core';
import type { AttributorOptions } from '@crp/lrp';
import type { Dataset } from '@crp/models';
import { pruningCurveChart, type VegaLiteSpec } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ChannelMask } from './channel-mask.js';
import {
  type ChannelScores,
  type CriterionName,
  type CriterionOptions,
  defaultScoredLayers,
  scoreChannels,
} from './criteria.js';
import { MaskedModel } from './masked-model.js';
import { type RankingScope, selectLowest, topChannels } from './ranking.js';
import { modelCost } from './sparsity.js';

/** Accuracy and mean target logit over a set of samples. */
export interface SampleStats {
  samples: number;
  /** Fraction of samples whose arg-max output is their label (NaN for no samples). */
  accuracy: number;
  /** Mean over the samples of the model output at their label (the logit, for a model without softmax). */
  meanTargetLogit: number;
}

/** Accuracy and mean target logit of a classifier, overall and per class (see {@link evaluateClasses}). */
export interface ClassEvaluation extends SampleStats {
  /** Per class index (0..classes-1). */
  perClass: SampleStats[];
}

/** The model's outputs for a data set, in batches, as [samples][classes] numbers. */
export function predictAll(model: LayersModel, x: tf.Tensor, batchSize = 64): number[][] {
  const n = x.shape[0]!;
  const rows: number[][] = [];
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const out = tf.tidy(() => model.predict(tf.slice(x, start, size)) as tf.Tensor);
    const v = out.dataSync();
    const classes = out.shape[out.rank - 1]!;
    out.dispose();
    for (let r = 0; r < size; r++) rows.push(Array.from(v.subarray(r * classes, (r + 1) * classes)));
  }
  return rows;
}

function argMax(row: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** Accuracy and mean target logit of the samples `which` selects. */
export function statsOf(
  outputs: readonly (readonly number[])[],
  labels: readonly number[],
  which: (label: number, index: number) => boolean = () => true,
): SampleStats {
  let samples = 0;
  let correct = 0;
  let logit = 0;
  outputs.forEach((row, i) => {
    const y = labels[i]!;
    if (!which(y, i)) return;
    samples++;
    if (argMax(row) === y) correct++;
    logit += row[y]!;
  });
  return {
    samples,
    accuracy: samples === 0 ? Number.NaN : correct / samples,
    meanTargetLogit: samples === 0 ? Number.NaN : logit / samples,
  };
}

/**
 * Accuracy and mean target logit of a model on labelled data, overall and per class (what pruning experiments
 * compare; `evaluate` of `@crp/models` gives loss, accuracy and the confusion matrix instead).
 */
export function evaluateClasses(model: LayersModel, samples: Dataset, batchSize = 64): ClassEvaluation {
  const data = samples;
  const outputs = predictAll(model, data.images, batchSize);
  const classes = outputs[0]?.length ?? 0;
  return {
    ...statsOf(outputs, data.labels),
    perClass: Array.from({ length: classes }, (_, c) => statsOf(outputs, data.labels, (y) => y === c)),
  };
}

/** One measurement of a pruning curve. */
export interface CurvePoint {
  /** The fraction asked for. */
  requested: number;
  /** The fraction of the scored channels actually pruned (layers keep at least one channel). */
  fraction: number;
  /** Channels pruned. */
  pruned: number;
  accuracy: number;
  /** Parameters and multiply-adds of the physically pruned model (absent when it cannot be exported). */
  params?: number;
  flops?: number;
  /** Accuracy after the `fineTune` step, when one was given. */
  fineTunedAccuracy?: number;
}

export interface PruningCurvesResult {
  layers: string[];
  /** Channels of the scored layers. */
  channels: number;
  scope: RankingScope;
  /** Accuracy of the unpruned model on the test data. */
  baseline: number;
  /** 1 / classes. */
  chance: number;
  /** Parameters and multiply-adds of the unpruned model. */
  params: number;
  flops: number;
  curves: { criterion: string; points: CurvePoint[] }[];
}

export interface PruningCurveOptions {
  /** Criteria by name (scored on `reference`) or precomputed scores. */
  criteria: readonly (CriterionName | ChannelScores)[];
  /** Samples the data-driven criteria score on. */
  reference: Dataset;
  /** Held-out samples the accuracy is measured on. */
  test: Dataset;
  /** Fractions of channels to prune; default 0, 0.1, ..., 0.9. */
  fractions?: readonly number[];
  /** Per layer (default) or global ranking (scores normalised per layer, as Yeom et al.). */
  scope?: RankingScope;
  /** Layers to prune; default every prunable layer but the output. */
  layers?: readonly string[];
  /** Options of the criteria (seed, composite, batch size, Taylor objective). */
  criterionOptions?: Omit<CriterionOptions, 'layers' | 'data'>;
  /**
   * Optional recovery step: called with a fresh masked copy (`MaskedModel`) of each pruned model; it may train
   * `masked.model` (and must keep the masked channels at zero, e.g. by calling `masked.reapply()`); the curve
   * then also records the accuracy after it.
   */
  fineTune?: (masked: MaskedModel) => Promise<void>;
  /** Called after each measured point (`done`/`total` count the points of all criteria, `unit: 'points'`). */
  onProgress?: (progress: CurveProgress) => void;
}

/** Progress of {@link pruningCurves}: the shared {@link Progress} over the curve points, plus the point measured. */
export interface CurveProgress extends Progress {
  criterion: string;
  /** the fraction of the scored channels pruned */
  fraction: number;
  accuracy: number;
}

const DEFAULT_FRACTIONS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

function costOf(model: LayersModel, mask: ChannelMask): { params?: number; flops?: number } {
  try {
    const c = modelCost(model, mask);
    return { params: c.params, flops: c.flops };
  } catch (err) {
    if (err instanceof CrpError) return {};
    throw err;
  }
}

/**
 * Accuracy against the fraction of channels pruned, for several criteria (the experiment of Yeom et al.):
 * score the channels of `layers` on `reference`, prune the lowest-scoring fraction (per layer or globally) in a
 * masked copy, measure accuracy on `test`. The user's model is not changed.
 */
export async function pruningCurves(
  model: LayersModel,
  options: PruningCurveOptions,
): Promise<PruningCurvesResult> {
  const layers = [...(options.layers ?? defaultScoredLayers(model))];
  const fractions = [...(options.fractions ?? DEFAULT_FRACTIONS)];
  const scope = options.scope ?? 'layer';
  const masked = await MaskedModel.create(model);
  try {
    const base = evaluateClasses(masked.model, options.test);
    const baseCost = costOf(model, ChannelMask.empty());
    const result: PruningCurvesResult = {
      layers,
      channels: 0,
      scope,
      baseline: base.accuracy,
      chance: 1 / base.perClass.length,
      params: baseCost.params ?? model.countParams(),
      flops: baseCost.flops ?? 0,
      curves: [],
    };
    const onProgress = options.onProgress;
    let measured: { criterion: string; fraction: number; accuracy: number } | undefined;
    const tick = progressTracker(
      options.criteria.length * fractions.length,
      onProgress === undefined ? undefined : (p) => onProgress({ ...p, ...measured! }),
      { unit: 'points' },
    );
    for (const c of options.criteria) {
      const scores =
        typeof c === 'string'
          ? scoreChannels(model, c, { ...options.criterionOptions, layers, data: options.reference })
          : c;
      const channels = Object.values(scores.layers).reduce((a, s) => a + s.length, 0);
      result.channels = channels;
      const points: CurvePoint[] = [];
      for (const requested of fractions) {
        const mask = selectLowest(scores, requested, { scope });
        masked.setMask(mask);
        const accuracy = evaluateClasses(masked.model, options.test).accuracy;
        const point: CurvePoint = {
          requested,
          fraction: mask.size / channels,
          pruned: mask.size,
          accuracy,
          ...costOf(model, mask),
        };
        if (options.fineTune !== undefined) {
          const tuned = await MaskedModel.create(model, mask);
          try {
            await options.fineTune(tuned);
            point.fineTunedAccuracy = evaluateClasses(tuned.model, options.test).accuracy;
          } finally {
            tuned.dispose();
          }
        }
        points.push(point);
        measured = { criterion: scores.criterion, fraction: point.fraction, accuracy };
        tick(1);
      }
      result.curves.push({ criterion: scores.criterion, points });
    }
    return result;
  } finally {
    masked.dispose();
  }
}

function pct(v: number | undefined): string {
  return v === undefined || Number.isNaN(v) ? '-' : `${(100 * v).toFixed(1)}%`;
}

/** The curves as a Markdown table: one row per requested fraction, one column per criterion (accuracy, and
 * accuracy after fine-tuning when measured). */
export function curvesTable(result: PruningCurvesResult): string {
  const tuned = result.curves.some((c) => c.points.some((p) => p.fineTunedAccuracy !== undefined));
  const head = [
    'pruned',
    ...result.curves.flatMap((c) => (tuned ? [c.criterion, `${c.criterion} (tuned)`] : [c.criterion])),
  ];
  const first = result.curves[0]?.points ?? [];
  const lines = [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...first.map((p, i) => {
      const cells = result.curves.flatMap((c) => {
        const q = c.points[i]!;
        return tuned ? [pct(q.accuracy), pct(q.fineTunedAccuracy)] : [pct(q.accuracy)];
      });
      return `| ${pct(p.fraction)} | ${cells.join(' | ')} |`;
    }),
  ];
  return `${lines.join('\n')}\n\nBaseline accuracy ${pct(result.baseline)}, chance ${pct(result.chance)}; ${result.channels} channels of ${result.layers.join(', ')}, ${result.scope} ranking.\n`;
}

/** The curves as a vega-lite line chart (@crp/vis pruningCurveChart), baseline and chance drawn. */
export function curvesChart(
  result: PruningCurvesResult,
  title = 'Accuracy vs. channels pruned',
): VegaLiteSpec {
  return pruningCurveChart(
    result.curves.map((c) => ({
      criterion: c.criterion,
      points: c.points.map((p) => ({ fraction: p.fraction, accuracy: p.accuracy })),
    })),
    {
      title,
      subtitle: `${result.scope} ranking over ${result.layers.join(', ')}`,
      baseline: result.baseline,
      chance: result.chance,
    },
  );
}

/**
 * Concept-atlas ranking of one class: relevance of each channel of `layers` for class `cls`, summed over the
 * samples of that class (each sample's channel relevances normalised by their absolute sum, as zennit-crp's
 * ChannelConcept.attribute with abs_norm). At an attention product the concepts are heads (`HeadConcept` of
 * @crp/core, the layer's `defaultConcept`). Returns per layer the summed scores (highest = most relevant).
 */
export function classConceptScores(
  crp: CondAttribution,
  samples: Dataset,
  cls: number,
  layers: readonly string[],
  batchSize = 32,
): ChannelScores {
  const data = samples;
  const idx = data.labels.flatMap((y, i) => (y === cls ? [i] : []));
  if (idx.length === 0) {
    throw new CrpError('invalid-argument', `no reference samples of class ${cls} to rank its concepts`);
  }
  const x = tf.tidy(() => tf.gather(data.images, tf.tensor1d(idx, 'int32')));
  // a layer's concepts as everywhere else: channels, or the heads of an attention product (HeadConcept)
  const concepts = new Map(layers.map((l) => [l, defaultConcept(crp.attributor.graph, l)]));
  const sums = new Map<string, Float64Array>();
  try {
    const conditions = idx.map(() => ({ y: [cls] }));
    for (const chunk of crp.chunks(x, conditions, {
      recordLayers: layers,
      heatmap: false,
      chunkSize: batchSize,
    })) {
      try {
        for (const l of layers) {
          const s = tf.tidy(() =>
            tf.sum(concepts.get(l)!.attribute(chunk.relevances[l]!, { absNorm: true }), 0),
          );
          const v = s.dataSync();
          const acc = sums.get(l) ?? new Float64Array(v.length);
          for (let c = 0; c < v.length; c++) acc[c]! += v[c]!;
          sums.set(l, acc);
          s.dispose();
        }
      } finally {
        disposeCondResult(chunk);
      }
    }
  } finally {
    x.dispose();
  }
  return {
    criterion: `atlas(class ${cls})`,
    layers: Object.fromEntries(layers.map((l) => [l, Array.from(sums.get(l)!)])),
  };
}

export interface ConceptPruningOptions {
  /** Layers to prune in, one at a time (e.g. a low and a high one); a ViT's attention product
   * (`self_attention.context`) prunes heads. */
  layers: readonly string[];
  /** Concepts pruned per class and layer (at most all but one of the layer's). */
  k: number;
  /** Samples the class atlases are computed on (the samples of each class). */
  reference: Dataset;
  /** Held-out samples the effect is measured on. */
  test: Dataset;
  /** Classes to study; default every class of the model. */
  classes?: readonly number[];
  /** LRP composite and canonizers (default EpsilonPlusFlat with the batch-norm merge). */
  attributor?: Pick<AttributorOptions, 'composite' | 'canonizers'>;
  batchSize?: number;
}

export interface ConceptPruningRow {
  layer: string;
  class: number;
  /** The pruned channels: the class's top-k concepts in the layer. */
  concepts: number[];
  before: { target: SampleStats; others: SampleStats };
  after: { target: SampleStats; others: SampleStats };
}

export interface ConceptPruningSummary {
  layer: string;
  /** Mean over classes of the accuracy lost on the class whose concepts were pruned. */
  targetAccuracyDrop: number;
  /** Mean over classes of the accuracy lost on all other classes. */
  otherAccuracyDrop: number;
  targetLogitDrop: number;
  otherLogitDrop: number;
  /** targetAccuracyDrop - otherAccuracyDrop: high when pruning hits the class only. */
  specificity: number;
}

export interface ConceptPruningResult {
  k: number;
  rows: ConceptPruningRow[];
  summary: ConceptPruningSummary[];
}

/**
 * The concept-level experiment: for each layer and class, prune the class's top-k concepts (by its concept
 * atlas, {@link classConceptScores}) in that layer only and measure accuracy and mean target logit on the
 * class's test samples and on the other classes' samples. Tests whether pruning in lower layers hurts many
 * classes while pruning in higher layers is class-specific.
 */
export async function conceptPruning(
  model: LayersModel,
  options: ConceptPruningOptions,
): Promise<ConceptPruningResult> {
  if (!Number.isInteger(options.k) || options.k < 1) {
    throw new CrpError('invalid-argument', `k must be a positive integer, got ${options.k}`);
  }
  const masked = await MaskedModel.create(model);
  const crp = new CondAttribution(model, options.attributor ?? {});
  try {
    const baseOut = predictAll(masked.model, options.test.images);
    const classCount = baseOut[0]?.length ?? 0;
    const classes = [...(options.classes ?? Array.from({ length: classCount }, (_, c) => c))];
    const labels = options.test.labels;
    const split = (out: number[][], cls: number) => ({
      target: statsOf(out, labels, (y) => y === cls),
      others: statsOf(out, labels, (y) => y !== cls),
    });
    const rows: ConceptPruningRow[] = [];
    for (const cls of classes) {
      const scores = classConceptScores(crp, options.reference, cls, options.layers, options.batchSize);
      for (const layer of options.layers) {
        // at most all but one concept of the layer (a mask may not empty it): a ViT block has few heads
        const concepts = topChannels(scores, layer, Math.min(options.k, scores.layers[layer]!.length - 1));
        masked.setMask(ChannelMask.of({ [layer]: concepts }));
        const out = predictAll(masked.model, options.test.images);
        rows.push({ layer, class: cls, concepts, before: split(baseOut, cls), after: split(out, cls) });
      }
    }
    masked.restore();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const summary = options.layers.map((layer) => {
      const rs = rows.filter((r) => r.layer === layer);
      const drop = (f: (s: { target: SampleStats; others: SampleStats }) => number) =>
        mean(rs.map((r) => f(r.before) - f(r.after)));
      const targetAccuracyDrop = drop((s) => s.target.accuracy);
      const otherAccuracyDrop = drop((s) => s.others.accuracy);
      return {
        layer,
        targetAccuracyDrop,
        otherAccuracyDrop,
        targetLogitDrop: drop((s) => s.target.meanTargetLogit),
        otherLogitDrop: drop((s) => s.others.meanTargetLogit),
        specificity: targetAccuracyDrop - otherAccuracyDrop,
      };
    });
    return { k: options.k, rows, summary };
  } finally {
    crp.dispose();
    masked.dispose();
  }
}

/** The concept experiment as a Markdown table (one row per layer and class, then the per-layer summary). */
export function conceptPruningTable(result: ConceptPruningResult): string {
  const f = (v: number) => v.toFixed(2);
  const lines = [
    `| layer | class | pruned concepts | class acc before → after | others acc before → after | class logit before → after | others logit before → after |`,
    '|---|---|---|---|---|---|---|',
    ...result.rows.map(
      (r) =>
        `| ${r.layer} | ${r.class} | ${r.concepts.join(', ')} | ${pct(r.before.target.accuracy)} → ${pct(r.after.target.accuracy)} | ${pct(r.before.others.accuracy)} → ${pct(r.after.others.accuracy)} | ${f(r.before.target.meanTargetLogit)} → ${f(r.after.target.meanTargetLogit)} | ${f(r.before.others.meanTargetLogit)} → ${f(r.after.others.meanTargetLogit)} |`,
    ),
    '',
    `| layer | class acc drop | others acc drop | class logit drop | others logit drop | specificity |`,
    '|---|---|---|---|---|---|',
    ...result.summary.map(
      (s) =>
        `| ${s.layer} | ${pct(s.targetAccuracyDrop)} | ${pct(s.otherAccuracyDrop)} | ${f(s.targetLogitDrop)} | ${f(s.otherLogitDrop)} | ${pct(s.specificity)} |`,
    ),
  ];
  return `${lines.join('\n')}\n\nTop-${result.k} concepts of each class pruned in one layer at a time.\n`;
}

import { type ConceptAtlas, type Region, regionMask } from '@crp/attribution';
import type { ProgressCallback } from '@crp/common';
import {
  type ConceptDeletionResult,
  conceptDeletion,
  type Explainer,
  evaluate,
  gradientXInput,
  lrpExplainer,
  randomExplainer,
} from '@crp/evaluation';
import type { Composite } from '@crp/lrp';
import { pruningCurveChart, type ReportSection } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';

/** Explanations MPRT computes per method at most (evenly spaced over the cascade; see `explainAtMost`). */
const MPRT_EXPLANATIONS = 12;

/** Samples the faithfulness part evaluates (the first of the study's): MPRT explains them once per layer and
 * method, so the part's cost grows with them; a handful shows the curves' shape. */
export const FAITHFULNESS_SAMPLES = 4;

/** The study's section "How faithful are these explanations" as data (part of study.json). */
export interface StudyFaithfulness {
  /** Samples evaluated (the first {@link FAITHFULNESS_SAMPLES} of the study's samples of the class). */
  samples: number;
  /** The study's composite, gradient x input and a random map. */
  methods: string[];
  /** Pixel flipping (most relevant first, black baseline, softmax): the mean curve over the samples. */
  pixelFlipping: { method: string; featuresInStep: number; curve: number[]; auc: number }[];
  /** MPRT cascading from the output: mean Spearman similarity to the original explanation after each explained
   * layer, and the share of the model's weighted layers randomised by then (0 for the original). */
  mprt: { method: string; layers: string[]; randomised: number[]; similarity: number[] }[];
  /** Relevance mass inside the study's region, mean over the samples. */
  regionMass: { method: string; value: number }[];
  /** Deleting the atlas's top concepts of one layer: the class logit falls faster in relevance order? */
  conceptDeletion: ConceptDeletionResult | undefined;
  /** The same for the concepts the region atlas picked (ordered by their relevance inside the region): does the
   * model depend on what the region shows? */
  regionConceptDeletion?: ConceptDeletionResult | undefined;
}

/** The smallest divisor of H * W that gives at most `steps` pixel-flipping steps. */
function stepFor(h: number, w: number, c: number, steps: number): number {
  for (let k = 1; k <= h * w; k++) if ((h * w) % k === 0 && Math.ceil((h * w * c) / k) <= steps) return k;
  return h * w;
}

/**
 * Evaluates the study's explanations on the first {@link FAITHFULNESS_SAMPLES} of its samples of the target class
 * (@crp/evaluation): pixel flipping of the composite beside gradient x input and a random map, the MPRT sanity
 * check, the relevance mass inside the study's region, and concept deletion curves for the atlas's top concepts
 * of `layer`.
 */
export async function studyFaithfulness(
  model: LayersModel,
  images: tf.Tensor4D,
  target: number,
  options: {
    compositeName: string;
    composite: Composite;
    region: Region;
    atlas: ConceptAtlas;
    /** The region atlas: its top concepts of `layer` get their own deletion curves. */
    regionAtlas?: ConceptAtlas;
    layer: string | undefined;
    topK: number;
    batchSize: number;
    onProgress?: ProgressCallback;
    /** Progress of the concept deletion curves (a forward pass of the samples per deleted concept and order). */
    onDeletionProgress?: ProgressCallback;
  },
): Promise<StudyFaithfulness> {
  const x = tf.slice(images, 0, Math.min(FAITHFULNESS_SAMPLES, images.shape[0])) as tf.Tensor4D;
  const [n, h, w, c] = x.shape;
  const explainers: Record<string, Explainer> = {
    [options.compositeName]: lrpExplainer(options.composite),
    'gradient x input': gradientXInput(),
    'random map': randomExplainer(0),
  };
  const mask = tf.tidy(() => tf.tile(tf.tensor3d(regionMask(options.region, h, w), [1, h, w]), [n, 1, 1]));
  const labels = Array.from({ length: n }, () => target);
  // MPRT's order (top-down over the layers with weights), for the share randomised at each explanation
  const topDown = model.layers
    .filter((l) => l.getWeights().length > 0)
    .map((l) => l.name)
    .reverse();
  const k = stepFor(h, w, c, 24);
  try {
    const e = await evaluate(
      { model, x, labels, explainers, mask },
      [
        { name: 'PixelFlipping', options: { featuresInStep: k } },
        // every layer randomised, explained at most 12 times: one explanation per layer made MPRT the slowest
        // part of a study on a ResNet-50 (107 layers with weights)
        { name: 'MPRT', options: { explainAtMost: MPRT_EXPLANATIONS } },
        'RelevanceMassAccuracy',
      ],
      { batchSize: options.batchSize, ...(options.onProgress ? { onProgress: options.onProgress } : {}) },
    );
    const mean = (v: readonly number[]) => v.reduce((s, a) => s + a, 0) / v.length;
    const deletionOf = (atlas: ConceptAtlas | undefined) =>
      atlasDeletion(
        model,
        { x, labels },
        atlas,
        options.layer,
        target,
        options.topK,
        options.batchSize,
        options.onDeletionProgress,
      );
    const deletion = await deletionOf(options.atlas);
    const regionDeletion = await deletionOf(options.regionAtlas);
    return {
      samples: n,
      methods: e.methods,
      pixelFlipping: e.methods.map((m) => {
        const r = e.results[m]!.PixelFlipping!;
        const curve = r.curves![0]!.map((_, j) => mean(r.curves!.map((cv) => cv[j]!)));
        return { method: m, featuresInStep: k, curve, auc: r.aggregate };
      }),
      mprt: e.methods.map((m) => {
        const layers = e.results[m]!.MPRT!.layers!;
        const names = Object.keys(layers);
        const randomised = names.map((name) =>
          name === 'original' ? 0 : (topDown.indexOf(name) + 1) / topDown.length,
        );
        return { method: m, layers: names, randomised, similarity: Object.values(layers).map(mean) };
      }),
      regionMass: e.methods.map((m) => ({
        method: m,
        value: e.results[m]!.RelevanceMassAccuracy!.aggregate,
      })),
      conceptDeletion: deletion,
      ...(options.regionAtlas === undefined ? {} : { regionConceptDeletion: regionDeletion }),
    };
  } finally {
    mask.dispose();
    x.dispose();
  }
}

/** Concept deletion of an atlas's top-`topK` concepts of `layer`, in the order of the atlas's mean relevance (for
 * a region atlas: the relevance inside the region); undefined without a layer or with fewer than 2 concepts. */
async function atlasDeletion(
  model: LayersModel,
  data: { x: tf.Tensor4D; labels: number[] },
  atlas: ConceptAtlas | undefined,
  layer: string | undefined,
  target: number,
  topK: number,
  batchSize: number,
  onProgress?: ProgressCallback,
): Promise<ConceptDeletionResult | undefined> {
  const ranking = layer === undefined ? [] : (atlas?.layers[layer]?.ranking ?? []);
  if (layer === undefined || ranking.length < 2) return undefined;
  const top = ranking.slice(0, topK);
  const channels = model.getLayer(layer).getWeights()[0]!.shape.at(-1)!;
  const relevance = new Float64Array(channels);
  for (const entry of top) relevance[entry.concept] = entry.meanRelevance;
  return conceptDeletion(model, data, {
    layer,
    target,
    relevance,
    concepts: top.map((t) => t.concept),
    randomOrders: 3,
    batchSize,
    ...(onProgress ? { onProgress } : {}),
  });
}

const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '–');

type Series = { criterion: string; points: { fraction: number; accuracy: number }[] };

/** The plottable part of each curve: a value can be undefined (NaN), e.g. the rank correlation of a constant
 * explanation in MPRT; such points are left out, and a curve without any point with them. */
function finiteSeries(series: Series[]): Series[] {
  return series
    .map((s) => ({ ...s, points: s.points.filter((p) => Number.isFinite(p.accuracy)) }))
    .filter((s) => s.points.length > 0);
}

/** The report's section "How faithful are these explanations", one sentence per plot saying what it means;
 * undefined values (NaN) are left out of the plots and named in the text. */
export function faithfulnessSections(f: StudyFaithfulness, regionText: string): ReportSection[] {
  const sections: ReportSection[] = [];
  const [method] = f.methods;
  const byAuc = [...f.pixelFlipping].sort((a, b) => a.auc - b.auc);
  sections.push({
    kind: 'plot',
    title: 'How faithful are these explanations: pixel flipping',
    description: `On the first ${f.samples} samples of the class, the pixels each method calls most relevant are removed first (set to the image's minimum, ${f.pixelFlipping[0]?.featuresInStep ?? 0} values a step) and the model's probability for the class is recorded. **The faster the curve falls, the more the model depends on what the explanation shows**; a method no better than the random map explains nothing. Here the curve falls fastest for ${byAuc[0]?.method} (area ${byAuc.map((p) => `${p.method} ${p.auc.toFixed(2)}`).join(', ')}; lower is better). Removing pixels makes images the model never saw, so part of any drop is that.`,
    plot: pruningCurveChart(
      finiteSeries(
        f.pixelFlipping.map((p) => ({
          criterion: p.method,
          points: p.curve.map((v, j) => ({ fraction: (j + 1) / p.curve.length, accuracy: v })),
        })),
      ),
      { xTitle: 'Share of the input removed, most relevant first', yTitle: 'Probability of the class' },
    ),
  });
  sections.push({
    kind: 'plot',
    title: 'Sanity check: model parameter randomisation (MPRT)',
    description: `The model's layers are replaced by random weights one after another, from the output down, and each explanation is compared with the original one (Spearman rank correlation). **An explanation that stays similar does not depend on what the model learned**: it should fall towards 0, as it does not for the random map (which ignores the model and stays at 1). ${mprtEnd(f, method)}`,
    plot: pruningCurveChart(
      finiteSeries(
        f.mprt.map((m) => ({
          criterion: m.method,
          points: m.similarity.map((v, j) => ({
            fraction: m.randomised[j]!,
            accuracy: v,
          })),
        })),
      ),
      {
        xTitle: 'Share of the layers randomised (from the output)',
        yTitle: 'Similarity to the original explanation',
        // a rank correlation, not a share: it can fall below 0
        yFormat: '.1f',
      },
    ),
  });
  sections.push({
    kind: 'table',
    title: `Relevance inside ${regionText}`,
    description:
      "**method**: the study's composite, gradient x input, or the random map; **relevance inside the region**: the share of the method's relevance that falls inside the study's region (Quantus's relevance mass accuracy: the signed sum inside over the signed sum of the whole map, so a map with negative parts can exceed 100%), mean over the samples. **A method that explains what the region shows puts more of its relevance there than the random map does**; it says where the evidence is, not that it is the right evidence.",
    columns: ['method', 'relevance inside the region'],
    rows: f.regionMass.map((r) => [r.method, pct(r.value)]),
  });
  const d = f.conceptDeletion;
  if (d !== undefined) {
    sections.push({
      kind: 'plot',
      title: `Concept deletion: the atlas's top concepts of ${d.layer}`,
      description: `The atlas's top concepts of ${d.layer} are deleted one after another (their channels set to zero) in the order of their CRP relevance, in the reverse order, and in random orders, and the mean logit of the class is recorded. **If the model depends on the concepts CRP calls relevant, the logit falls faster when they go first**: area between the curves ${d.abpc.toFixed(3)} (least minus most relevant first; above 0 is the expected sign)${d.abpcRandom === undefined ? '' : `, ${d.abpcRandom.toFixed(3)} against the random orders`}.`,
      plot: pruningCurveChart(
        finiteSeries(
          d.curves.map((cv) => ({
            criterion: cv.order,
            // relative to the intact model's logit, so the axis reads as a share
            points: cv.logit.map((v, j) => ({
              fraction: j / Math.max(cv.logit.length - 1, 1),
              accuracy: v / cv.logit[0]!,
            })),
          })),
        ),
        {
          xTitle: 'Share of the top concepts deleted',
          yTitle: "Mean class logit (share of the intact model's)",
        },
      ),
    });
  }
  sections.push(...regionDeletionSections(f, regionText));
  return sections;
}

/** The region atlas's concept deletion beside the global atlas's: both most-relevant-first curves and their
 * least-relevant-first counterparts, relative to the intact model's logit. */
function regionDeletionSections(f: StudyFaithfulness, regionText: string): ReportSection[] {
  const g = f.conceptDeletion;
  const r = f.regionConceptDeletion;
  if (r === undefined) return [];
  const pick = (d: ConceptDeletionResult, atlas: string) =>
    d.curves
      .filter((cv) => cv.order === 'most-relevant-first' || cv.order === 'least-relevant-first')
      .map((cv) => ({
        criterion: `${atlas}: ${cv.order.replaceAll('-', ' ')}`,
        points: cv.logit.map((v, j) => ({
          fraction: j / Math.max(cv.logit.length - 1, 1),
          accuracy: v / cv.logit[0]!,
        })),
      }));
  const series = [...(g === undefined ? [] : pick(g, 'global atlas')), ...pick(r, 'region atlas')];
  const versus = g === undefined ? '' : `; for the global atlas's top concepts ${g.abpc.toFixed(3)}`;
  return [
    {
      kind: 'plot',
      title: `Concept deletion: what ${regionText} shows (${r.layer})`,
      description: `The concepts the region atlas picked for ${regionText} (ranked by their relevance inside the region) are deleted in that order and in the reverse order, beside the global atlas's top concepts, and the mean class logit is recorded. **If the model depends on what the region shows, deleting the region's concepts first makes the logit fall about as fast as deleting the global top concepts first, and faster than deleting them last**: area between the region atlas's curves ${r.abpc.toFixed(3)} (least minus most relevant first)${versus}.`,
      plot: pruningCurveChart(finiteSeries(series), {
        xTitle: 'Share of the atlas top concepts deleted',
        yTitle: "Mean class logit (share of the intact model's)",
      }),
    },
  ];
}

/** The MPRT sentence on the study's method: where its similarity ends, or why it is undefined. */
function mprtEnd(f: StudyFaithfulness, method: string | undefined): string {
  const undefinedFor = f.mprt.filter((m) => !m.similarity.some(Number.isFinite)).map((m) => m.method);
  const last = f.mprt[0]?.similarity.at(-1) ?? Number.NaN;
  const end = Number.isFinite(last)
    ? `${method} ends at ${last.toFixed(2)} after the last layer.`
    : `${method}'s similarity is undefined after the last layer.`;
  return undefinedFor.length === 0
    ? end
    : `${end} Undefined for ${undefinedFor.join(', ')}: the rank correlation of an explanation that is constant (e.g. zero everywhere) has no value, so those curves are not drawn.`;
}

import { CrpError } from '@crp/common';
import { CondAttribution } from '@crp/core';
import { Attributor } from '@crp/lrp';
import { type Dataset, disposeDataset, gatherDataset, selectTrainLayers } from '@crp/models';
import { type RasterImage, toRasterImage } from '@crp/vis';
import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  type ResolvedStudyOptions,
  resolveStudyOptions,
  type StudyOptions,
  type TransformerConceptKind,
  transformerConceptKinds,
} from './options.js';
import type { StudyData, StudyEnvironment, StudyResult } from './result.js';
import {
  compositeFor,
  conceptSteps,
  evaluationStep,
  faithfulnessStep,
  fineTuneStep,
  firstOfClass,
  heatmapsStep,
  pruningStep,
  referencesStep,
  type Tuned,
  targetLogits,
} from './steps.js';
import { type StudyRun, studyRun } from './study-run.js';

const defaultToImage = (im: tf.Tensor3D): RasterImage =>
  toRasterImage({ shape: im.shape, data: im.dataSync() as Float32Array });

/**
 * The concept study of a trained classifier, the seed's study in one call:
 *
 * 1. optional LAMB fine-tuning with a validation split, keeping the best epoch (not the last);
 * 2. evaluation: accuracy and confusion matrix (rows = true class, columns = predicted);
 * 3. the global concept atlas of every conv and hidden dense layer over `samples` images of the target class
 *    (top-k per layer by voting, as votes/samples and percent of the layer's relevance);
 * 4. the same restricted to an input region (every concept through the adjoint pass);
 * 5. the decomposition atlas: each layer's dominant concepts into the concepts of the layer below;
 * 6. reference images of the top concepts of some layers (relevance maximisation, opaque views);
 * 7. concept pruning in a low and a high layer: the effect on the class whose concepts are pruned and on the
 *    others, and the share of the model removed;
 * 8. how faithful the explanations are (@crp/evaluation): pixel flipping, MPRT, relevance in the region, concept
 *    deletion;
 *
 * each stored in `env.store` as soon as it is done, so a study run again resumes. `model` may be replaced by
 * the fine-tuned one: use the returned `model` afterwards (the caller owns both). `data` stays the caller's.
 */
export async function runStudy(
  input: LayersModel,
  data: Dataset & { skipped?: { path: string; reason: string }[] },
  options: StudyOptions,
  env: StudyEnvironment,
): Promise<{ result: StudyResult; model: LayersModel; images: Map<string, RasterImage> }> {
  const classes = classNamesOf(data);
  const opts = checkOptions(input, options, classes);
  const counts = classes.map((_, c) => data.labels.filter((l) => l === c).length);
  checkTargetHasSamples(opts, classes, counts);
  const run = studyRun(env, opts);
  const tuned = await fineTuneStep(run, input, data);
  const { model } = tuned;
  const evalData = tuned.held?.validation ?? data;
  try {
    const crp = new CondAttribution(model, { composite: compositeFor(opts.composite, data) });
    let crpAlive = true;
    const indices = firstOfClass(data.labels, opts.target, opts.samples);
    const samples = gatherDataset(data, indices);
    const toImage = env.toImage ?? defaultToImage;
    try {
      const inputShape = [...crp.attributor.graph.inputShape];
      const conceptKinds = transformerConceptKinds(crp.attributor.graph, opts.layers);
      const on = tuned.held === undefined ? ('all' as const) : ('validation' as const);
      const evaluation = await evaluationStep(run, model, evalData, on);
      const logits = targetLogits(model, samples, opts.target, opts.batchSize);
      const concepts = await conceptSteps(run, crp, samples, indices);
      const studied = { indices, samples, sources: data.sources };
      const references = await referencesStep(run, crp, studied, concepts.atlas, toImage);
      const heatmaps = await heatmapsStep(run, crp, data, indices, toImage);
      // the attributor's derived weights (e.g. the first Linear's transpose, 411 MB on a vgg11) are not needed
      // by pruning, which makes its own: free them first (wasm's heap stops at 4 GiB)
      crp.dispose();
      crpAlive = false;
      const pruning = await pruningStep(run, model, data, evalData, counts);
      const faithfulness = await faithfulnessStep(
        run,
        model,
        data,
        samples,
        indices,
        concepts.atlas,
        concepts.regionAtlas,
      );
      const parts = { evaluation, ...concepts, references, pruning, faithfulness, heatmaps };
      return {
        result: studyResult(
          run,
          { model, inputShape, conceptKinds, data, classes, counts, tuned, indices, logits },
          parts,
        ),
        model,
        images: run.images,
      };
    } finally {
      disposeDataset(samples);
      if (crpAlive) crp.dispose();
    }
  } finally {
    if (tuned.held !== undefined) {
      disposeDataset(tuned.held.train);
      disposeDataset(tuned.held.validation);
    }
  }
}

/** The data set's class names; the study needs them to name the target. */
function classNamesOf(data: Dataset): string[] {
  if (data.classes === undefined) {
    throw new CrpError('invalid-argument', 'the data set needs class names (data.classes) for the study');
  }
  return [...data.classes];
}

/** The options checked against the model (and the layers to fine-tune named) before any work. */
function checkOptions(input: LayersModel, options: StudyOptions, classes: string[]): ResolvedStudyOptions {
  const probe = new Attributor(input, { canonizers: [] });
  try {
    const opts = resolveStudyOptions(options, probe.graph, classes);
    if (opts.fineTune > 0) selectTrainLayers(input, opts.trainLayers);
    return opts;
  } finally {
    probe.dispose();
  }
}

function checkTargetHasSamples(opts: ResolvedStudyOptions, classes: string[], counts: number[]): void {
  if (counts[opts.target] === 0) {
    throw new CrpError(
      'empty-data',
      `the target class '${opts.targetName}' has no samples in the data; classes with samples: ${classes.filter((_, c) => counts[c]! > 0).join(', ')}`,
    );
  }
}

/** The parts of the study, in the order of study.json. */
type StudyParts = Pick<
  StudyResult,
  | 'evaluation'
  | 'atlas'
  | 'regionAtlas'
  | 'comparison'
  | 'decomposition'
  | 'references'
  | 'pruning'
  | 'faithfulness'
  | 'heatmaps'
>;

/** Everything the study found, as study.json holds it. */
function studyResult(
  run: StudyRun,
  ran: {
    model: LayersModel;
    inputShape: (number | null)[];
    conceptKinds: Record<string, TransformerConceptKind> | undefined;
    data: Dataset & { skipped?: StudyData['skipped'] };
    classes: string[];
    counts: number[];
    tuned: Tuned;
    indices: number[];
    logits: number[];
  },
  parts: StudyParts,
): StudyResult {
  const { opts, env } = run;
  const { model, data, indices, tuned } = ran;
  return {
    format: 'crp-study/1',
    target: { index: opts.target, name: opts.targetName },
    options: opts,
    model: {
      name: env.modelName ?? model.name,
      parameters: model.countParams(),
      inputShape: ran.inputShape,
      layers: opts.layers,
      ...(ran.conceptKinds === undefined ? {} : { concepts: ran.conceptKinds }),
    },
    data: {
      classes: ran.classes,
      counts: ran.counts,
      ...(data.sources === undefined ? {} : { sources: [...data.sources] }),
      skipped: data.skipped ?? [],
    },
    ...(tuned.fineTune === undefined ? {} : { fineTune: tuned.fineTune }),
    evaluation: parts.evaluation,
    samples: {
      indices,
      ...(data.sources === undefined ? {} : { sources: indices.map((i) => data.sources![i]!) }),
      targetLogits: ran.logits,
    },
    atlas: parts.atlas,
    regionAtlas: parts.regionAtlas,
    comparison: parts.comparison,
    decomposition: parts.decomposition,
    references: parts.references,
    pruning: parts.pruning,
    ...(parts.faithfulness === undefined ? {} : { faithfulness: parts.faithfulness }),
    heatmaps: parts.heatmaps,
    seconds: run.seconds,
    resumed: run.resumed,
  };
}

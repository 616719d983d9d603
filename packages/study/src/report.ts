import { type ConceptAtlas, formatVotes } from '@crp/attribution';
import {
  conceptRelevanceChart,
  PLOT_CONFIG,
  type RasterImage,
  type ReportCell,
  type ReportOptions,
  type ReportSection,
  type VegaLiteSpec,
} from '@crp/vis';
import { faithfulnessSections } from './faithfulness.js';
import type { StudyResult } from './study.js';

const pct = (v: number | null | undefined, digits = 1) =>
  v === null || v === undefined || Number.isNaN(v) ? '–' : `${(v * 100).toFixed(digits)}%`;
const num = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '–');
const regionText = (r: StudyResult['options']['region']): string =>
  'centerSquare' in r
    ? `the ${r.centerSquare}x${r.centerSquare} centre`
    : 'boxes' in r
      ? `${r.boxes.length} box(es): ${r.boxes.map((b) => `${b.width}x${b.height} at (${b.x}, ${b.y})`).join(', ')}`
      : 'a weighted mask';

/** "370 (40/40, 12.3%)": a concept with its votes out of the samples and its share of the layer's relevance. */
function conceptCell(atlas: ConceptAtlas, layer: string, topK: number): string {
  return (atlas.layers[layer]?.ranking ?? [])
    .slice(0, topK)
    .map((e) => `${e.concept} (${formatVotes(e, atlas)}, ${e.percent.toFixed(1)}%)`)
    .join(', ');
}

function atlasTable(atlas: ConceptAtlas, topK: number): ReportCell[][] {
  return atlas.layerOrder.map((layer) => [layer, conceptCell(atlas, layer, topK)]);
}

function trainingChart(result: StudyResult): VegaLiteSpec | undefined {
  const history = result.fineTune?.history ?? [];
  if (history.length === 0) return undefined;
  const values = history.flatMap((e) => [
    { epoch: e.epoch, series: 'training loss', value: e.loss },
    ...(e.valLoss === undefined ? [] : [{ epoch: e.epoch, series: 'validation loss', value: e.valLoss }]),
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    width: 420,
    height: 180,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'ordinal', title: 'epoch' },
      y: { field: 'value', type: 'quantitative', title: 'loss' },
      color: { field: 'series', type: 'nominal', title: null },
    },
    config: PLOT_CONFIG,
  } as VegaLiteSpec;
}

/**
 * The study as a report (for `writeReport` of `@crp/vis/node`, which makes one self-contained HTML file):
 * what was studied, the model's accuracy, where it looks, the concepts of the class globally, in the region and
 * by decomposition, what they look like, and what pruning them does. `images` holds the pictures by name.
 */
export function studyReport(result: StudyResult, images: ReadonlyMap<string, RasterImage>): ReportOptions {
  const { options: o, atlas, regionAtlas: region, decomposition: dec } = result;
  const n = atlas.samples;
  const image = (name: string): RasterImage | undefined => images.get(name);
  const sections: ReportSection[] = [];

  // the findings first, in the seed's words
  const findings = atlas.layerOrder.map((layer) => {
    const top = atlas.layers[layer]?.ranking[0];
    return top === undefined
      ? `- ${layer}: no concept`
      : `- **concept ${top.concept} in ${layer}**: in the top-${o.topK} of ${formatVotes(top, atlas)} samples, ${top.percent.toFixed(1)}% of the layer's relevance`;
  });
  const skipped = result.data.skipped;
  sections.push({
    kind: 'text',
    title: 'What was studied',
    markdown: [
      `Model **${result.model.name}** (${result.model.parameters.toLocaleString('en')} parameters, input ${result.model.inputShape.join('x')}), composite \`${o.composite}\`.`,
      `Data: ${result.data.classes.map((c, i) => `**${c}** ${result.data.counts[i]} images`).join(', ')}.${skipped.length > 0 ? ` ${skipped.length} file(s) could not be read and were skipped: ${skipped.map((s) => `\`${s.path}\` (${s.reason})`).join('; ')}.` : ''}`,
      `The study follows the class **${result.target.name}** (index ${result.target.index}) through ${n} of its samples, in ${o.layers.length} layers. A concept is a channel (conv) or unit (dense); "k/${n}" counts the samples that have it among their top-${o.topK}, the percent is its mean share of the layer's relevance.`,
      '**Most voted concept per layer:**',
      findings.join('\n'),
    ].join('\n\n'),
  });

  if (result.fineTune !== undefined) {
    const f = result.fineTune;
    const chart = trainingChart(result);
    sections.push({
      kind: 'plot',
      title: 'Fine-tuning',
      description: `LAMB, learning rate ${f.learningRate}, ${f.epochs} epoch(s) on ${f.trainSamples} images${f.batchSize === undefined ? '' : ` (batch size ${f.batchSize})`}, ${f.trainLayers === undefined || f.trainLayers === 'all' ? 'every layer trained' : `trained: ${f.trainLayers.join(', ')}`}; ${f.validationSamples} held out for validation. The weights of epoch **${f.bestEpoch ?? f.history.at(-1)?.epoch}** (lowest validation loss) were kept, not necessarily the last.`,
      plot: chart ?? { svg: '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>' },
    });
  }

  const e = result.evaluation;
  sections.push({
    kind: 'table',
    title: 'Evaluation',
    description: `Accuracy **${pct(e.accuracy)}** on ${e.samples} ${e.on === 'validation' ? 'held-out validation images' : 'images (all of the data: no fine-tuning, so no held-out split)'}. Confusion matrix: rows are the true class, columns the predicted class.`,
    columns: [
      'true \\ predicted',
      ...result.data.classes.map((c) => ({ title: c, align: 'right' as const, digits: 0 })),
      { title: 'accuracy', align: 'right' },
    ],
    rows: e.confusionMatrix.map((row, i) => [result.data.classes[i]!, ...row, pct(e.perClass[i])]),
  });

  const heat = result.heatmaps.flatMap((h) => {
    const im = image(h.image);
    return im === undefined ? [] : [{ image: im, caption: h.caption }];
  });
  if (heat.length > 0) {
    sections.push({
      kind: 'images',
      title: 'Where the model looks',
      description: `LRP heatmaps for class **${result.target.name}** over the first samples (red: evidence for the class, blue: against it).`,
      items: heat,
    });
  }

  sections.push({
    kind: 'table',
    title: 'Global concept atlas',
    description: `Per layer, the top-${o.topK} concepts of ${n} samples by voting: concept (samples that vote for it / samples, share of the layer's relevance).`,
    columns: ['layer', `top-${o.topK} concepts`],
    rows: atlasTable(atlas, o.topK),
  });
  const chartEntries = atlas.layerOrder
    .slice(-3)
    .flatMap((layer) =>
      (atlas.layers[layer]?.ranking ?? [])
        .slice(0, o.topK)
        .map((r) => ({ layer, concept: r.concept, relevance: r.percent })),
    );
  if (chartEntries.length > 0) {
    sections.push({
      kind: 'plot',
      title: 'Share of the relevance, highest layers',
      plot: conceptRelevanceChart(chartEntries, { top: o.topK, xTitle: "% of the layer's relevance" }),
    });
  }

  const cmp = new Map(result.comparison.map((c) => [c.layer, c]));
  sections.push({
    kind: 'table',
    title: `Region atlas: ${regionText(o.region)}`,
    description: `The same voting on the relevance inside ${regionText(o.region)} of the input (every concept computed exactly, through the adjoint pass). Overlap with the global atlas: Jaccard index of the two top-${o.topK} sets.`,
    columns: [
      'layer',
      `top-${o.topK} concepts in the region`,
      { title: 'overlap with global', align: 'right' },
    ],
    rows: region.layerOrder.map((layer) => [
      layer,
      conceptCell(region, layer, o.topK),
      cmp.get(layer) === undefined ? '–' : pct(cmp.get(layer)!.jaccard, 0),
    ]),
  });

  sections.push({
    kind: 'table',
    title: 'Decomposition atlas',
    description: `Each layer's ${o.topK} dominant concepts (global atlas) decomposed into the layer below: sub-concept (samples that have it among the parent's top-${o.topK} / ${dec.samples}, mean share of the parent's relevance).`,
    columns: ['layer', 'concept', 'layer below', 'sub-concepts'],
    rows: dec.layerOrder.flatMap((layer) =>
      dec.layers[layer]!.concepts.map((c) => [
        layer,
        `${c.concept} (${c.votes}/${dec.samples})`,
        dec.layers[layer]!.below,
        c.children
          .slice(0, o.topK)
          .map((s) => `${s.concept} (${s.votes}/${dec.samples}, ${s.percent.toFixed(1)}%)`)
          .join(', '),
      ]),
    ),
  });

  for (const ref of result.references) {
    const im = image(ref.image);
    if (im === undefined) continue;
    sections.push({
      kind: 'images',
      title: `Reference images: ${ref.layer}`,
      description: `One row per top concept of ${ref.layer} (${ref.concepts.map((c) => c.concept).join(', ')}): its most relevant samples of class ${result.target.name}, cut to where the concept is relevant and shown opaque there (zennit-crp's reference view), each followed by its heatmap.`,
      items: [{ image: im, caption: ref.concepts.map((c) => `concept ${c.concept}`).join(' / ') }],
      columns: 1,
    });
  }

  const p = result.pruning;
  sections.push({
    kind: 'table',
    title: 'Concept pruning',
    description: `The top-${p.k} concepts of each class pruned in one layer at a time; accuracy and mean logit of the true class on the ${e.on === 'validation' ? 'validation ' : ''}samples of that class and of the other classes, before → after. A specific concept hurts its class and spares the others.`,
    columns: [
      'layer',
      'class',
      'pruned concepts',
      'class accuracy',
      'others accuracy',
      'class logit',
      'others logit',
    ],
    rows: p.rows.map((r) => [
      r.layer,
      result.data.classes[r.class] ?? String(r.class),
      r.concepts.join(', '),
      `${pct(r.before.target.accuracy)} → ${pct(r.after.target.accuracy)}`,
      `${pct(r.before.others.accuracy)} → ${pct(r.after.others.accuracy)}`,
      `${num(r.before.target.meanTargetLogit)} → ${num(r.after.target.meanTargetLogit)}`,
      `${num(r.before.others.meanTargetLogit)} → ${num(r.after.others.meanTargetLogit)}`,
    ]),
  });
  sections.push({
    kind: 'table',
    title: 'Pruning: effect and sparsity per layer',
    description:
      "Mean over classes of the accuracy lost; the share of the layer's channels and of the model's weights one class's pruning removes.",
    columns: [
      'layer',
      'class acc. drop',
      'others acc. drop',
      'specificity',
      'channels pruned',
      'weights pruned',
    ],
    rows: p.summary.map((s) => {
      const sp = p.sparsity.find((x) => x.layer === s.layer);
      return [
        s.layer,
        pct(s.targetAccuracyDrop),
        pct(s.otherAccuracyDrop),
        pct(s.specificity),
        sp === undefined ? '–' : `${sp.pruned}/${sp.channels}`,
        sp === undefined ? '–' : pct(sp.weightShare, 3),
      ];
    }),
  });

  if (result.faithfulness !== undefined)
    sections.push(...faithfulnessSections(result.faithfulness, regionText(o.region)));

  sections.push({
    kind: 'text',
    title: 'How this was computed',
    markdown: [
      `Parts and seconds: ${Object.entries(result.seconds)
        .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
        .join(
          ', ',
        )}.${result.resumed.length > 0 ? ` Taken from an earlier run: ${result.resumed.join(', ')}.` : ''}`,
      'Everything in this report is in `study.json` as data.',
    ].join('\n\n'),
  });

  return {
    title: `Concept study: ${result.target.name}`,
    subtitle: `What ${result.model.name} has learned for the class ${result.target.name}`,
    meta: {
      model: result.model.name,
      class: result.target.name,
      samples: n,
      accuracy: pct(e.accuracy),
      layers: o.layers.length,
    },
    sections,
    footer: 'Made with @crp/study',
  };
}

import { formatVotes } from '@crp/attribution';
import {
  conceptRelevanceChart,
  PLOT_CONFIG,
  type RasterImage,
  type ReportOptions,
  type ReportSection,
  type VegaLiteSpec,
} from '@crp/vis';
import { faithfulnessSections } from './faithfulness.js';
import {
  atlasRows,
  type BlockGroup,
  blockGroups,
  blockRange,
  cautions,
  conceptNote,
  isDead,
  num,
  outlineRegion,
  pct,
  signedShare,
} from './report-format.js';
import type { StudyResult } from './result.js';

const regionText = (r: StudyResult['options']['region']): string =>
  'centerSquare' in r
    ? `the ${r.centerSquare}x${r.centerSquare} centre`
    : 'boxes' in r
      ? `${r.boxes.length} box(es): ${r.boxes.map((b) => `${b.width}x${b.height} at (${b.x}, ${b.y})`).join(', ')}`
      : 'a weighted mask';

/** What "share" means wherever the report shows one. */
const SHARE_DEFINITION =
  "**share**: the concept's relevance divided by the sum of the absolute relevances of all concepts of the layer, per sample (zennit-crp's `abs_norm`), averaged over the samples; positive (red) is evidence for the class, negative (blue) against it, and per sample the shares' absolute values add up to 100%; relevance starts as the class's logit (zennit-crp), so on a sample whose logit is negative the signs are reversed";

/** What a vote ranks by wherever the report counts votes. */
const EVIDENCE_DEFINITION =
  "evidence for the class (the concept's relevance times the sign of the sample's logit of the class, which is the ranking by relevance wherever the logit is positive; a concept whose relevance is exactly 0 never gets a vote, so a sample may vote for fewer)";

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

/** One part of the report: the sections it adds (none when the study has nothing to show for it). */
type SectionBuilder = (result: StudyResult, images: ReadonlyMap<string, RasterImage>) => ReportSection[];

/** What was studied, with the findings first, in the seed's words. */
function studiedSection(result: StudyResult): ReportSection[] {
  const { options: o, atlas } = result;
  const n = atlas.samples;
  const findings =
    result.model.concepts === undefined
      ? atlas.layerOrder.map((layer) => {
          const ranking = atlas.layers[layer]?.ranking ?? [];
          const top = ranking[0];
          if (top === undefined) return `- ${layer}: no concept`;
          const line = `- **concept ${top.concept} in ${layer}**: in the top-${o.topK} of ${formatVotes(top, atlas)} samples, share ${signedShare(top.percent)} of the layer's relevance`;
          if (!isDead(top)) return line;
          const alive = ranking.find((e) => !isDead(e));
          return `${line} — ⚠ dead (no relevance in any sample)${alive === undefined ? '' : `; the most voted concept with relevance is ${alive.concept} (${formatVotes(alive, atlas)}, ${signedShare(alive.percent)})`}`;
        })
      : findingsByBlock(result);
  const skipped = result.data.skipped;
  const logits = result.samples.targetLogits;
  const meanLogit = logits.reduce((a, b) => a + b, 0) / Math.max(1, logits.length);
  return [
    {
      kind: 'text',
      title: 'What was studied',
      markdown: [
        `Model **${result.model.name}** (${result.model.parameters.toLocaleString('en')} parameters, input ${result.model.inputShape.join('x')}), composite \`${o.composite}\`.`,
        `Data: ${result.data.classes.map((c, i) => `**${c}** ${result.data.counts[i]} images`).join(', ')}.${skipped.length > 0 ? ` ${skipped.length} file(s) could not be read and were skipped: ${skipped.map((s) => `\`${s.path}\` (${s.reason})`).join('; ')}.` : ''}`,
        `The study follows the class **${result.target.name}** (index ${result.target.index}) through ${n} of its samples (its logit on them: mean ${num(meanLogit)}, lowest ${num(Math.min(...logits))}), in ${o.layers.length} layers. ${conceptSentence(result)}; "k/${n}" counts the samples that vote for it: it is among their top-${o.topK} by ${EVIDENCE_DEFINITION}; ${SHARE_DEFINITION}.`,
        result.model.concepts === undefined
          ? '**Most voted concept per layer:**'
          : `**Most voted concept per layer**, block by block: the concept, in how many samples' top-${o.topK} it is, and its share of the layer's relevance:`,
        findings.join('\n'),
      ].join('\n\n'),
    },
  ];
}

/** The warnings (negative logit of the target, dead concepts), when there are any. */
function cautionSection(result: StudyResult): ReportSection[] {
  const lines = cautions(result);
  return lines.length === 0 ? [] : [{ kind: 'text', title: 'Read with care', markdown: lines.join('\n\n') }];
}

function fineTuneSection(result: StudyResult): ReportSection[] {
  const f = result.fineTune;
  if (f === undefined) return [];
  const chart = trainingChart(result);
  return [
    {
      kind: 'plot',
      title: 'Fine-tuning',
      description: `LAMB, learning rate ${f.learningRate}, ${f.epochs} epoch(s) on ${f.trainSamples} images${f.batchSize === undefined ? '' : ` (batch size ${f.batchSize})`}, ${f.trainLayers === undefined || f.trainLayers === 'all' ? 'every layer trained' : `trained: ${f.trainLayers.join(', ')}`}; ${f.validationSamples} held out for validation. The weights of epoch **${f.bestEpoch ?? f.history.at(-1)?.epoch}** (lowest validation loss) were kept, not necessarily the last.`,
      plot: chart ?? { svg: '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>' },
    },
  ];
}

function evaluationSection(result: StudyResult): ReportSection[] {
  const e = result.evaluation;
  return [
    {
      kind: 'table',
      title: 'Evaluation',
      description: `Accuracy **${pct(e.accuracy)}** on ${e.samples} ${e.on === 'validation' ? 'held-out validation images' : 'images (all of the data: no fine-tuning, so no held-out split)'}. Confusion matrix: rows are the true class, columns the predicted class; **accuracy**: the share of the class's images predicted as that class.`,
      columns: [
        'true \\ predicted',
        ...result.data.classes.map((c) => ({ title: c, align: 'right' as const, digits: 0 })),
        { title: 'accuracy', align: 'right' },
      ],
      rows: e.confusionMatrix.map((row, i) => [result.data.classes[i]!, ...row, pct(e.perClass[i])]),
    },
  ];
}

function heatmapSection(result: StudyResult, images: ReadonlyMap<string, RasterImage>): ReportSection[] {
  const heat = result.heatmaps.flatMap((h) => {
    const im = images.get(h.image);
    return im === undefined ? [] : [{ image: im, caption: h.caption }];
  });
  if (heat.length === 0) return [];
  return [
    {
      kind: 'images',
      title: 'Where the model looks',
      description: `LRP heatmaps for class **${result.target.name}** over the first samples (red: evidence for the class, blue: against it).`,
      items: heat,
    },
  ];
}

/** The global atlas as a table, and the relevance shares of the highest layers as a chart. */
function globalAtlasSections(result: StudyResult): ReportSection[] {
  const { options: o, atlas } = result;
  const sections: ReportSection[] = [
    {
      kind: 'table',
      title: 'Global concept atlas',
      description: `Per layer, the top-${o.topK} concepts of ${atlas.samples} samples by voting. **votes**: samples that have the concept among their top-${o.topK} by ${EVIDENCE_DEFINITION} / samples; ${SHARE_DEFINITION}; **note**: *dead* when its relevance is 0 in every sample, *against the class* when its share is negative.`,
      columns: [
        'layer',
        { title: 'concept', align: 'right', digits: 0 },
        { title: 'votes', align: 'right' },
        'share',
        'note',
      ],
      rows: atlasRows(atlas, o.topK),
    },
  ];
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
      description: `The shares of the global atlas's top-${o.topK} concepts in the three highest layers (${SHARE_DEFINITION}).`,
      plot: conceptRelevanceChart(chartEntries, {
        top: o.topK,
        xTitle: "share of the layer's |relevance| (%)",
      }),
    });
  }
  return sections;
}

/** What a concept is for the model at hand: a channel or unit of a CNN; per layer of a transformer a head, an MLP
 * neuron or a d_model channel (summed over the tokens). */
function conceptSentence(result: StudyResult): string {
  const kinds = result.model.concepts;
  if (kinds === undefined) return 'A concept is a channel (conv) or unit (dense)';
  const article = (kind: string) => (/^[aeiouAEIOUM]/.test(kind) ? 'an' : 'a');
  const parts = blockGroups(Object.keys(kinds), (l) => kinds[l]!).map((g) => {
    const byKind = new Map<string, string[]>();
    for (const name of g.names) {
      const kind = kinds[layerIn(g, g.blocks[0], name)]!;
      byKind.set(kind, [...(byKind.get(kind) ?? []), name]);
    }
    const what = [...byKind]
      .map(([kind, names]) => `${article(kind)} ${kind} at ${names.map((l) => `\`${l}\``).join(' and ')}`)
      .join(', ');
    return g.blocks.length === 0 ? what : `${what} in ${blockRange(g.blocks)} (\`${blockPrefix(g)}\`)`;
  });
  return `A concept is ${parts.join('; ')}; neurons and channels are summed over the tokens`;
}

/** A layer's full name from its block group: `prefix<block>.name`, or the name of a layer outside the blocks. */
function layerIn(g: BlockGroup, block: number | undefined, name: string): string {
  return block === undefined ? name : `${g.prefix}${block}.${name}`;
}

/** The prefix of a group's layers: block i's own for one block, `prefix<i>.` for several. */
function blockPrefix(g: BlockGroup): string {
  return `${g.prefix}${g.blocks.length === 1 ? g.blocks[0] : '<i>'}.`;
}

/** A transformer's most voted concept per layer, one line per block (its layers by their names in the block). */
function findingsByBlock(result: StudyResult): string[] {
  const { atlas } = result;
  const finding = (layer: string): string => {
    const ranking = atlas.layers[layer]?.ranking ?? [];
    const top = ranking[0];
    if (top === undefined) return 'no concept';
    const line = `**${top.concept}** (${formatVotes(top, atlas)}, ${signedShare(top.percent)})`;
    if (!isDead(top)) return line;
    const alive = ranking.find((e) => !isDead(e));
    return `${line} ⚠ dead (no relevance in any sample)${alive === undefined ? '' : `, the most voted with relevance is **${alive.concept}** (${formatVotes(alive, atlas)}, ${signedShare(alive.percent)})`}`;
  };
  return blockGroups(atlas.layerOrder).flatMap((g) =>
    g.blocks.length === 0
      ? [`- \`${g.names[0]}\`: ${finding(g.names[0]!)}`]
      : g.blocks.map(
          (b) =>
            `- **block ${b}**: ${g.names.map((n) => `\`${n}\` ${finding(layerIn(g, b, n))}`).join(' · ')}`,
        ),
  );
}

/** Where the region is (drawn on the first samples' heatmaps), then the region atlas. */
function regionAtlasSection(result: StudyResult, images: ReadonlyMap<string, RasterImage>): ReportSection[] {
  const { options: o, regionAtlas: region, atlas } = result;
  const cmp = new Map(result.comparison.map((c) => [c.layer, c]));
  const sections: ReportSection[] = [];
  const shown = result.heatmaps.slice(0, 3).flatMap((h) => {
    const im = images.get(h.image);
    return im === undefined ? [] : [{ image: outlineRegion(im, o.region), caption: h.caption }];
  });
  if (shown.length > 0) {
    sections.push({
      kind: 'images',
      title: 'The region',
      description: `${regionText(o.region)[0]!.toUpperCase()}${regionText(o.region).slice(1)} of the input, outlined in green on the heatmaps of the first samples.`,
      items: shown,
    });
  }
  const inGlobal = (layer: string, concept: number) =>
    (atlas.layers[layer]?.ranking ?? []).slice(0, o.topK).some((e) => e.concept === concept) ? 'yes' : '';
  sections.push({
    kind: 'table',
    title: `Region atlas: ${regionText(o.region)}`,
    description: `The same voting on the relevance inside ${regionText(o.region)} of the input (every concept computed exactly, through the adjoint pass). **votes**: samples that have the concept among their top-${o.topK} by ${EVIDENCE_DEFINITION}, of the relevance inside the region / samples; **share in the region**: as the global atlas's share, of the relevance inside the region; **in global top-${o.topK}**: the concept is also among the global atlas's top-${o.topK}. Overlap of the two top-${o.topK} sets (Jaccard index) per layer: ${region.layerOrder.map((l) => `${l} ${cmp.get(l) === undefined ? '–' : pct(cmp.get(l)!.jaccard, 0)}`).join(', ')}.`,
    columns: [
      'layer',
      { title: 'concept', align: 'right', digits: 0 },
      { title: 'votes', align: 'right' },
      'share in the region',
      `in global top-${o.topK}`,
      'note',
    ],
    rows: atlasRows(region, o.topK, (layer, e) => [inGlobal(layer, e.concept)]),
  });
  return sections;
}

function decompositionSection(result: StudyResult): ReportSection[] {
  const { options: o, decomposition: dec, atlas } = result;
  // a share outside [0, 100] is offset by sub-concepts of the other sign: marked, and explained below
  const mark = (p: number) => (p > 100 || p < 0 ? ' †' : '');
  const joins = dec.layerOrder.some((l) => dec.layers[l]!.below.length > 1)
    ? ` An addition or concatenation has one layer below per branch: its sub-concepts are named layer:channel, each sample votes for its top-${o.topK} in each branch, the top ${o.topK} of each branch are listed, and the shares of all branches together add up to about 100%.`
    : '';
  return [
    {
      kind: 'table',
      title: 'Decomposition atlas',
      description: `Each layer's ${o.topK} dominant concepts (global atlas) decomposed into the layer below. **concept**: votes / samples and share of the layer (as in the global atlas); **mean relevance**: the concept's own relevance, mean over the samples, with its sign; **sub-concepts**: concept (samples that have it among the parent's top-${o.topK} / ${dec.samples}, mean share of the parent's relevance, signed). In each sample the sub-concepts' relevances add up to the parent's (less what the layer's bias takes), so the shares of all sub-concepts add up to about 100%; a share above 100% or below 0 (†) is offset by sub-concepts of the other sign. A sample in which the parent has no relevance counts as 0% for every sub-concept. Only sub-concepts some sample votes for are listed.${joins}`,
      columns: [
        'layer',
        'concept',
        { title: 'mean relevance', align: 'right' },
        'layer below',
        'sub-concepts',
      ],
      rows: dec.layerOrder.flatMap((layer) =>
        dec.layers[layer]!.concepts.map((c) => {
          const entry = atlas.layers[layer]?.ranking.find((e) => e.concept === c.concept);
          return [
            layer,
            `${c.concept} (${c.votes}/${dec.samples}, ${signedShare(c.percent)})${entry !== undefined && isDead(entry) ? ` ${conceptNote(entry)}` : ''}`,
            c.meanRelevance.toPrecision(3),
            dec.layers[layer]!.below.join(', '),
            // one layer below: its top k; at a join (several branches): the top k of each branch, named layer:channel
            dec.layers[layer]!.below.flatMap((b, _, all) =>
              c.children
                .filter((s) => s.layer === b)
                .slice(0, o.topK)
                .map(
                  (s) =>
                    `${all.length > 1 ? `${b}:` : ''}${s.concept} (${s.votes}/${dec.samples}, ${signedShare(s.percent)}${mark(s.percent)})`,
                ),
            ).join(', '),
          ];
        }),
      ),
    },
  ];
}

/** Per reference layer: one labelled row per concept (its samples' opaque views, then their heatmaps). */
function referenceSections(result: StudyResult, images: ReadonlyMap<string, RasterImage>): ReportSection[] {
  const { atlas } = result;
  return result.references.flatMap((ref): ReportSection[] => {
    const items = ref.concepts.flatMap((c) => {
      const im = c.image === undefined ? undefined : images.get(c.image);
      if (im === undefined) return [];
      const e = atlas.layers[ref.layer]?.ranking.find((x) => x.concept === c.concept);
      const note = e === undefined ? '' : conceptNote(e);
      const votes =
        e === undefined
          ? ''
          : `, ${formatVotes(e, atlas)} votes, share ${signedShare(e.percent)}${note === '' ? '' : ` (${note})`}`;
      const names = c.samples.map((s) => (s.source ?? `sample ${s.sample}`).split(/[\\/]/).pop()).join(', ');
      return [{ image: im, caption: `concept ${c.concept}${votes} — samples: ${names}` }];
    });
    if (items.length === 0) return [];
    return [
      {
        kind: 'images',
        title: `Reference images: ${ref.layer}`,
        description: `One row per top concept of ${ref.layer}: its most relevant samples of class ${result.target.name} (relevance maximisation), cut to where the concept is relevant and shown opaque there (zennit-crp's reference view), each followed by that sample's heatmap of the concept. The caption names the concept, its votes and share in the global atlas, and the samples.`,
        items,
        columns: 1,
      },
    ];
  });
}

/** Per experiment: accuracy and logit of the pruned class and of the others, before and after. */
function pruningSection(result: StudyResult): ReportSection[] {
  const p = result.pruning;
  const e = result.evaluation;
  return [
    {
      kind: 'table',
      title: 'Concept pruning',
      description: `The top-${p.k} concepts of each class (by that class's own atlas) pruned in one layer at a time, measured on the ${e.on === 'validation' ? 'validation ' : ''}images, before → after. **class accuracy**: accuracy on the images of the class whose concepts were pruned; **others accuracy**: on the images of every other class; **class logit** / **others logit**: the mean logit of each image's true class on the same two groups. A specific concept hurts its class and spares the others.`,
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
    },
  ];
}

/** Per layer: the mean accuracy lost and how much of the layer and of the model one class's pruning removes. */
function pruningSummarySection(result: StudyResult): ReportSection[] {
  const p = result.pruning;
  return [
    {
      kind: 'table',
      title: 'Pruning: effect and sparsity per layer',
      description: `**class acc. drop**: mean over the classes of the accuracy lost on the class whose concepts were pruned; **others acc. drop**: mean of the accuracy lost on the other classes; **specificity** = class acc. drop − others acc. drop (high when pruning a class's concepts hurts that class only, negative when it hurts the others more); **channels pruned**: the channels one class's pruning removes, of the layer's channels; **weights pruned**: their share of the model's parameters (kernel slices and biases).${p.sparsity.some((x) => x.unit === 'head') ? " At an attention product the concepts are heads: a pruned head's values are zeroed (its columns of `v_proj`, the weights counted), so its attention output is 0; at most all but one head of a block is pruned." : ''}`,
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
          sp === undefined ? '–' : `${sp.pruned}/${sp.channels}${sp.unit === 'head' ? ' heads' : ''}`,
          sp === undefined ? '–' : pct(sp.weightShare, 3),
        ];
      }),
    },
  ];
}

function computedSection(result: StudyResult): ReportSection[] {
  return [
    {
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
    },
  ];
}

/** How faithful the explanations are (@crp/evaluation), when the study computed it. */
function faithfulnessSection(result: StudyResult): ReportSection[] {
  if (result.faithfulness === undefined) return [];
  return faithfulnessSections(result.faithfulness, regionText(result.options.region));
}

/** The report's sections in order: a new part of the study adds its builder here. */
const SECTIONS: readonly SectionBuilder[] = [
  studiedSection,
  cautionSection,
  fineTuneSection,
  evaluationSection,
  heatmapSection,
  globalAtlasSections,
  regionAtlasSection,
  decompositionSection,
  referenceSections,
  pruningSection,
  pruningSummarySection,
  faithfulnessSection,
  computedSection,
];

/**
 * The study as a report (for `writeReport` of `@crp/vis/node`, which makes one self-contained HTML file):
 * what was studied, the model's accuracy, where it looks, the concepts of the class globally, in the region and
 * by decomposition, what they look like, and what pruning them does. `images` holds the pictures by name.
 */
export function studyReport(result: StudyResult, images: ReadonlyMap<string, RasterImage>): ReportOptions {
  return {
    title: `Concept study: ${result.target.name}`,
    subtitle: `What ${result.model.name} has learned for the class ${result.target.name}`,
    meta: {
      model: result.model.name,
      class: result.target.name,
      samples: result.atlas.samples,
      accuracy: pct(result.evaluation.accuracy),
      layers: result.options.layers.length,
    },
    sections: SECTIONS.flatMap((section) => section(result, images)),
    footer: 'Made with @crp/study',
  };
}

import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { type AttributionGraph, type ConceptAtlas, toSvg } from '@crp/attribution';
import { CrpError } from '@crp/common';
import { curvesChart, type PruningCurvesResult } from '@crp/pruning';
import { conceptTable, type ReportFigure, type ReportSection } from '@crp/vis';
import { readPng, writeReport } from '@crp/vis/node';
import { required } from '../args.js';
import type { RefsOutput } from './refs.js';
import type { TrainSummary } from './train.js';

export const reportUsage = `crp report --from DIR --out report.html

Gathers what the other commands wrote into DIR (any depth) into one HTML page (@crp/vis writeReport), with a
section only for what is there: training (train.json), concept atlases (atlas JSON), attribution graphs
(decompose JSON), reference images (refs-*.json + PNG), pruning curves (curves.json) and heatmaps
(*.heatmap.png / *.overlay.png of crp explain).

  --from DIR          folder with the outputs (required)
  --out FILE          the HTML file (default DIR/report.html)
  --title TEXT        page title (default 'CRP report')`;

export interface ReportOutput {
  file: string;
  sections: { title: string; source: string }[];
}

async function filesUnder(dir: string, depth = 4): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory() && depth > 0 && !e.name.startsWith('.'))
      out.push(...(await filesUnder(path, depth - 1)));
    else if (e.isFile()) out.push(path);
  }
  return out.sort();
}

const has = (v: unknown, ...keys: string[]): boolean =>
  typeof v === 'object' && v !== null && keys.every((k) => k in v);

/** Which command wrote a JSON document (by its fields). */
function kindOf(doc: unknown): string | undefined {
  if (has(doc, 'history', 'classes', 'arch')) return 'train';
  if (has(doc, 'layerOrder', 'layers', 'target')) return 'atlas';
  if (has(doc, 'nodes', 'edges', 'root')) return 'graph';
  if (has(doc, 'layer', 'kind', 'grid', 'channels')) return 'refs';
  if (has(doc, 'curves', 'baseline', 'chance')) return 'curves';
  return undefined;
}

/** A path written by a command: as written, or next to the JSON that names it. */
function locate(path: string, jsonFile: string): string | undefined {
  if (existsSync(path)) return path;
  const near = join(dirname(jsonFile), basename(path));
  return existsSync(near) ? near : undefined;
}

interface ReportArgs {
  from: string;
  out: string;
  title: string;
}

function parseReportArgs(argv: string[]): ReportArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      from: { type: 'string' },
      out: { type: 'string' },
      title: { type: 'string', default: 'CRP report' },
    },
  });
  const from = required('from', values.from);
  if (!existsSync(from))
    throw new CrpError('not-found', `--from: no such folder '${from}'`, { details: { path: from } });
  return { from, out: values.out ?? join(from, 'report.html'), title: values.title! };
}

/** A training summary: its text, and the confusion matrix when it was validated. */
function trainSections(t: TrainSummary, name: string): ReportSection[] {
  const sections: ReportSection[] = [
    {
      kind: 'text',
      title: `Training (${name})`,
      markdown: `${t.arch} on ${t.trainImages} images, input ${t.inputShape.join('x')}, ${t.epochs} epochs; final loss ${t.history.at(-1)?.loss.toFixed(4) ?? '-'}.${t.validation === undefined ? '' : ` Validation accuracy **${t.validation.accuracy.toFixed(4)}** on ${t.validationImages} images.`}`,
    },
  ];
  if (t.validation !== undefined) {
    sections.push({
      kind: 'table',
      title: `Confusion matrix (${name})`,
      description: 'Rows: true class; columns: predicted class.',
      columns: ['', ...t.classes.map((c) => ({ title: c, align: 'right' as const }))],
      rows: t.validation.confusionMatrix.map((row, i) => [t.classes[i]!, ...row]),
    });
  }
  return sections;
}

function atlasSection(a: ConceptAtlas & { evaluated?: unknown }, name: string): ReportSection {
  const rows = a.layerOrder.flatMap((layer) =>
    a.layers[layer]!.ranking.slice(0, a.topK).map((e) => ({
      layer,
      concept: e.concept,
      relevance: e.meanRelevance,
      label: `${e.votes} votes (${(e.shareOfSamples * 100).toFixed(0)}% of samples)`,
    })),
  );
  return conceptTable(rows, {
    title: `${a.evaluated === undefined ? 'Concept atlas' : 'Region concept atlas'}, class ${a.target} (${name})`,
    description: `Top ${a.topK} concepts per layer over ${a.samples} samples, by votes; the bar is the mean relevance.`,
  });
}

function graphSection(g: AttributionGraph, name: string): ReportSection {
  const root = g.nodes.find((n) => n.id === g.root);
  return {
    kind: 'plot',
    title: `Attribution graph of ${root === undefined ? g.root : `${root.layer}:${root.concept}`}, class ${g.target} (${name})`,
    plot: { svg: toSvg(g) },
  };
}

/** The reference grid of a refs document; none when its PNG is nowhere to be found. */
async function refsSections(r: RefsOutput, name: string, file: string): Promise<ReportSection[]> {
  const grid = locate(r.grid, file);
  if (grid === undefined) return [];
  return [
    {
      kind: 'images',
      title: `Reference images of ${r.layer} (${name})`,
      description: `${r.kind} maximisation; rows: channels ${Object.keys(r.channels).join(', ')}.`,
      items: [{ image: await readPng(grid), caption: basename(grid) }],
      columns: 1,
    },
  ];
}

function curvesSection(c: PruningCurvesResult, name: string): ReportSection {
  return {
    kind: 'plot',
    title: `Pruning curves (${name})`,
    description: `Baseline accuracy ${c.baseline.toFixed(4)}, chance ${c.chance.toFixed(3)}; ${c.scope} ranking over ${c.layers.join(', ')}.`,
    plot: curvesChart(c),
  };
}

/** The sections of one JSON document, by the command that wrote it (none for an unknown one). */
async function sectionsOf(doc: unknown, name: string, file: string): Promise<ReportSection[]> {
  switch (kindOf(doc)) {
    case 'train':
      return trainSections(doc as TrainSummary, name);
    case 'atlas':
      return [atlasSection(doc as ConceptAtlas & { evaluated?: unknown }, name)];
    case 'graph':
      return [graphSection(doc as AttributionGraph, name)];
    case 'refs':
      return refsSections(doc as RefsOutput, name, file);
    case 'curves':
      return [curvesSection(doc as PruningCurvesResult, name)];
    default:
      return [];
  }
}

interface FoundSection {
  rank: number;
  section: ReportSection;
  source: string;
}

/** The sections of every JSON document under --from that a command wrote, ranked by kind. */
async function documentSections(from: string, files: string[]): Promise<FoundSection[]> {
  const found: FoundSection[] = [];
  for (const file of files.filter((f) => f.endsWith('.json') && !f.endsWith('model.json'))) {
    let doc: unknown;
    try {
      doc = JSON.parse(await readFile(file, 'utf8'));
    } catch {
      continue;
    }
    const rank = ['train', 'atlas', 'graph', 'refs', 'curves'].indexOf(kindOf(doc) ?? '');
    for (const section of await sectionsOf(doc, relative(from, file), file)) {
      found.push({ rank, section, source: relative(from, file) });
    }
  }
  return found;
}

/** One section with every heatmap and overlay of crp explain, ranked right after training. */
async function heatmapSection(from: string, files: string[]): Promise<FoundSection[]> {
  const heatmaps = files.filter((f) => /\.(heatmap|overlay)\.png$/.test(f));
  if (heatmaps.length === 0) return [];
  const items: ReportFigure[] = [];
  for (const f of heatmaps) items.push({ image: await readPng(f), caption: relative(from, f) });
  return [
    {
      rank: 0.5,
      section: { kind: 'images', title: 'Heatmaps', items },
      source: relative(from, heatmaps[0]!),
    },
  ];
}

/** `crp report`: find what the commands wrote, make a section of each, write them as one page. */
export async function report(argv: string[], json: boolean): Promise<ReportOutput> {
  const { from, out, title } = parseReportArgs(argv);
  const files = await filesUnder(from);
  const found = [...(await documentSections(from, files)), ...(await heatmapSection(from, files))];
  // training, heatmaps, atlases, graphs, reference images, pruning
  found.sort((a, b) => a.rank - b.rank);
  const sections = found.map((f) => f.section);
  const listed = found.map((f) => ({ title: f.section.title ?? '', source: f.source }));
  if (sections.length === 0) {
    throw new CrpError(
      'empty-data',
      `nothing to report in '${from}': run train, explain, atlas, decompose, refs or prune with their output inside it first`,
    );
  }
  await writeReport(out, { title, meta: { source: from, sections: sections.length }, sections });
  if (!json) console.log(`report with ${sections.length} sections -> ${out}`);
  return { file: out, sections: listed };
}

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Region, regionMask } from '@crp/attribution';
import { CrpError, isCrpError, type ProgressCallback } from '@crp/common';
import { writeFileAtomic, writeJsonAtomic } from '@crp/common/node';
import {
  type Evaluation,
  type Explainer,
  evaluate as evaluateMethods,
  gradientXInput,
  LOCALISATION_METRICS,
  lrpExplainer,
  METRIC_NAMES,
  type MetricSpec,
  metricByName,
  randomExplainer,
} from '@crp/evaluation';
import { COMPOSITE_NAMES, TRANSFORMER_COMPOSITES } from '@crp/lrp';
import { disposeDataset } from '@crp/models';
import { pruningCurveChart, renderSvg, type VegaLiteSpec } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { intArg, listArg } from '../args.js';
import { checkRegion, declaredInputSize, targetArg } from '../checks.js';
import { checkWritable } from '../files.js';
import {
  HELP,
  inputRange,
  type ModelInputOptions,
  modelComposite,
  modelDataOptions,
  modelInputArgs,
  openModelAndData,
} from '../model-data.js';
import { ProgressBar } from '../progress.js';
import { UsageError } from '../usage-error.js';
import { parseRegion } from './atlas.js';

/** Names joined by ', ' in lines of at most `width` characters, each indented by `indent` spaces. */
function wrapList(names: readonly string[], indent: number, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const [i, name] of names.entries()) {
    const item = i < names.length - 1 ? `${name},` : name;
    if (line !== '' && indent + line.length + 1 + item.length > width) {
      lines.push(line);
      line = item;
    } else line = line === '' ? item : `${line} ${item}`;
  }
  lines.push(line);
  return lines.map((l) => ' '.repeat(indent) + l).join('\n');
}

export const evaluateUsage = `crp evaluate --model M --data DIR|mnist --target CLASS --out DIR [options]

How faithful are the explanations? Evaluates LRP composites beside gradient x input and a random map on the
images of the --target class with Quantus's metrics (@crp/evaluation) and writes evaluation.json and plots.

${[HELP.model, HELP.inputSize, HELP.heads, HELP.normalize, HELP.data, HELP.samples, HELP.seed].join('\n')}
${HELP.target}
  --composites LIST   LRP composites to compare, comma-separated (default epsilon_plus_flat,epsilon_alpha2_beta1;
                      a ViT: attn_lrp,cp_lrp, and only those)
  --metrics LIST      metrics, comma-separated (default PixelFlipping,MPRT,Sparseness; with --region also
                      RelevanceMassAccuracy); valid:
${wrapList(METRIC_NAMES, 22, 114)}
  --region SPEC       center:SIZE or box:X,Y,W,H: the region of the localisation metrics:
${wrapList(LOCALISATION_METRICS, 22, 114)}
  --steps N           pixel-flipping steps (default 32; the step is rounded to a divisor of H * W)
  --batch-size N      perturbed inputs per forward pass (default 32)
  --out DIR           output directory (default out/evaluate); checked before any work, written only at the end
  --json              print the summary as JSON on stdout`;

/** What `crp evaluate` returns (and writes, with the per-sample results, to evaluation.json). */
export interface EvaluateOutput {
  file: string;
  plots: string[];
  samples: number;
  /** Per method and metric, the mean score (NaN as null in JSON). */
  summary: Record<string, Record<string, number>>;
}

/** The smallest divisor of H * W that gives at most `steps` pixel-flipping steps (Quantus requires a divisor). */
export function featuresInStep(height: number, width: number, channels: number, steps: number): number {
  const pixels = height * width;
  for (let k = 1; k <= pixels; k++) {
    if (pixels % k === 0 && Math.ceil((pixels * channels) / k) <= steps) return k;
  }
  return pixels;
}

function progressByPhase(quiet: boolean): ProgressCallback {
  let bar: ProgressBar | undefined;
  let phase: string | undefined;
  return (p) => {
    if (p.phase !== phase || bar === undefined) {
      phase = p.phase;
      bar = new ProgressBar(p.phase ?? 'evaluate', p.total ?? 0, process.stderr, quiet);
    }
    bar.update(p.done, '', p.etaMs);
  };
}

/** The command line of `crp evaluate`, checked. */
interface EvaluateArgs {
  modelPath: string;
  dataSpec: string;
  /** --target as given: a class name or index, resolved against the model and the data */
  targetSpec: string;
  /** --composites as given; undefined: the model's default pair */
  composites: string[] | undefined;
  /** --region as given (it names the region in messages) and parsed */
  regionSpec: string | undefined;
  region: Region | undefined;
  metrics: string[];
  steps: number;
  batchSize: number;
  input: ModelInputOptions;
  samples: number | undefined;
  seed: number | undefined;
  out: string;
}

/** --metrics (default: pixel flipping, MPRT and sparseness, and relevance mass accuracy with a region). */
function metricNames(spec: string | undefined, region: Region | undefined): string[] {
  let names: string[];
  try {
    names = (
      listArg(spec) ?? ['PixelFlipping', 'MPRT', 'Sparseness', ...(region ? ['RelevanceMassAccuracy'] : [])]
    ).map(metricByName);
  } catch (err) {
    // a misspelt metric is a mistake of the command line: usage error, with the nearest names
    if (isCrpError(err, 'unknown-metric')) throw new UsageError(err.message);
    throw err;
  }
  if (names.length === 0)
    throw new UsageError(`--metrics names no metric; valid: ${METRIC_NAMES.join(', ')}`);
  const needRegion = names.filter((n) => (LOCALISATION_METRICS as readonly string[]).includes(n));
  if (region === undefined && needRegion.length > 0) {
    throw new UsageError(
      `--metrics: ${needRegion.join(', ')} needs --region (the localisation metrics score the relevance inside a region): give --region center:SIZE or box:X,Y,W,H`,
    );
  }
  return names;
}

/** Parses and checks every argument that needs neither the model nor the data. */
function parseEvaluateArgs(argv: string[]): EvaluateArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...modelDataOptions,
      target: { type: 'string' },
      // no default here: it depends on the model (explainersOf)
      composites: { type: 'string' },
      metrics: { type: 'string' },
      region: { type: 'string' },
      steps: { type: 'string', default: '32' },
      'batch-size': { type: 'string', default: '32' },
      out: { type: 'string', default: join('out', 'evaluate') },
    },
  });
  if (values.model === undefined) throw new UsageError('--model is required');
  if (values.composite !== undefined) {
    // evaluate compares composites; silently evaluating the defaults instead would answer another question
    throw new UsageError(
      `crp evaluate takes --composites LIST (comma-separated), not --composite; e.g. --composites ${values.composite}`,
    );
  }
  if (values.data === undefined) throw new UsageError('--data is required');
  if (values.target === undefined) throw new UsageError('--target is required (a class name or index)');
  const composites = listArg(values.composites);
  for (const c of composites ?? []) {
    if (!(COMPOSITE_NAMES as readonly string[]).includes(c)) {
      throw new UsageError(`unknown composite '${c}' in --composites; valid: ${COMPOSITE_NAMES.join(', ')}`);
    }
  }
  const region = values.region === undefined ? undefined : parseRegion(values.region);
  const input = modelInputArgs(values);
  if (region !== undefined) {
    // a region outside the input is a mistake of the command line, said before the model is loaded
    const size = declaredInputSize(values.model, input.inputSize);
    if (size !== undefined) checkRegion(values.region!, region, size);
  }
  const metrics = metricNames(values.metrics, region);
  return {
    modelPath: values.model,
    dataSpec: values.data,
    targetSpec: values.target,
    composites,
    regionSpec: values.region,
    region,
    metrics,
    steps: intArg('steps', values.steps, 2)!,
    batchSize: intArg('batch-size', values['batch-size'], 1)!,
    input,
    samples: intArg('samples', values.samples, 1),
    seed: intArg('seed', values.seed, 0),
    out: values.out!,
  };
}

/** The model, the class of --target and its images (`picked`: their indices in the data). A class the model does not
 * have or a region outside its input is a usage error, said before any work. */
async function loadClassImages(args: EvaluateArgs) {
  const { model, crp, data } = await openModelAndData(args.modelPath, args.dataSpec, {
    composite: undefined,
    samples: args.samples,
    seed: args.seed,
    input: args.input,
  });
  let target: number;
  try {
    target = targetArg(args.targetSpec, crp.attributor.graph, data.classes);
    const [, h, w] = data.images.shape;
    if (args.region !== undefined) checkRegion(args.regionSpec!, args.region, [h!, w!]);
  } catch (err) {
    disposeDataset(data);
    model.dispose();
    throw err;
  } finally {
    crp.dispose();
  }
  const picked = data.labels.flatMap((l, i) => (l === target ? [i] : []));
  const x = tf.tidy(() => tf.gather(data.images, picked)) as tf.Tensor4D;
  disposeDataset(data);
  return { model, target, x, picked };
}

/** The LRP composites of --composites (each checked against the model; by default a transformer's two, AttnLRP and
 * CP-LRP, or two of zennit's for a CNN), gradient x input and a random map (the baseline). */
function explainersOf(args: EvaluateArgs, model: tfl.LayersModel): Record<string, Explainer> {
  const bounds = inputRange(args.input);
  const byDefault = modelComposite(model, { name: undefined, bounds }).name;
  const names =
    args.composites ??
    ((TRANSFORMER_COMPOSITES as readonly string[]).includes(byDefault)
      ? [...TRANSFORMER_COMPOSITES]
      : ['epsilon_plus_flat', 'epsilon_alpha2_beta1']);
  const explainers: Record<string, Explainer> = {};
  for (const name of names)
    explainers[name] = lrpExplainer(modelComposite(model, { name, bounds }).composite);
  explainers.gradient_x_input = gradientXInput();
  explainers.random = randomExplainer(0);
  return explainers;
}

/** The metrics with the options that depend on the images (pixel-flipping step) or the model (classes). */
function metricSpecs(names: string[], k: number, model: tfl.LayersModel): MetricSpec[] {
  return names.map((name): MetricSpec => {
    if (name === 'PixelFlipping') return { name, options: { featuresInStep: k } };
    if (name === 'RandomLogit')
      return { name, options: { numClasses: model.outputs[0]!.shape[1] as number } };
    return name as MetricSpec;
  });
}

/** Per method and metric, the mean score. */
function summarize(result: Evaluation): EvaluateOutput['summary'] {
  return Object.fromEntries(
    result.methods.map((m) => [
      m,
      Object.fromEntries(result.metrics.map((q) => [q, result.results[m]![q]!.aggregate])),
    ]),
  );
}

function printSummary(summary: EvaluateOutput['summary'], file: string, plots: string[]): void {
  for (const [m, s] of Object.entries(summary)) {
    console.log(
      `${m}: ${Object.entries(s)
        .map(([q, v]) => `${q} ${v.toFixed(4)}`)
        .join(', ')}`,
    );
  }
  console.log(`-> ${file}${plots.length ? `, ${plots.join(', ')}` : ''}`);
}

/** `crp evaluate`: check everything, load the class's images, evaluate every method, write JSON and plots. */
export async function evaluate(argv: string[], json: boolean): Promise<EvaluateOutput> {
  const args = parseEvaluateArgs(argv);
  await checkWritable('--out', args.out, 'folder');
  const { model, target, x, picked } = await loadClassImages(args);
  let mask: tf.Tensor | undefined;
  try {
    if (picked.length === 0) {
      throw new CrpError(
        'empty-data',
        `no images of class ${target} in ${args.dataSpec}; give a class that has images`,
      );
    }
    const [n, h, w, c] = x.shape;
    if (args.region !== undefined) {
      const m = regionMask(args.region, h, w);
      mask = tf.tidy(() => tf.tile(tf.tensor3d(m, [1, h, w]), [n, 1, 1]));
    }
    const explainers = explainersOf(args, model);
    const k = featuresInStep(h, w, c, args.steps);
    const result = await evaluateMethods(
      { model, x, labels: picked.map(() => target), explainers, ...(mask ? { mask } : {}) },
      metricSpecs(args.metrics, k, model),
      { batchSize: args.batchSize, onProgress: progressByPhase(json) },
    );
    // every plot is drawn before anything is written: a failure leaves --out as it was
    const drawn = await Promise.all(
      evaluationPlots(result).map(async (p) => ({
        file: join(args.out, p.file),
        svg: await renderSvg(p.spec),
      })),
    );
    const file = join(args.out, 'evaluation.json');
    // what was evaluated, so that the file can be read (and the run repeated) without its command line
    const given = {
      model: args.modelPath,
      data: args.dataSpec,
      ...(args.regionSpec ? { region: args.regionSpec } : {}),
    };
    await writeJsonAtomic(file, { ...given, target, samples: n, featuresInStep: k, ...result });
    for (const p of drawn) await writeFileAtomic(p.file, p.svg);
    const plots = drawn.map((p) => p.file);
    const summary = summarize(result);
    if (!json) printSummary(summary, file, plots);
    return { file, plots, samples: n, summary };
  } finally {
    x.dispose();
    mask?.dispose();
    model.dispose();
  }
}

/** The mean of the finite values (a sample whose similarity is NaN, e.g. a constant map's Spearman, is left out). */
function finiteMean(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite);
  return finite.length === 0 ? Number.NaN : finite.reduce((s, v) => s + v, 0) / finite.length;
}

/** The plots of an evaluation: the mean curve of each method (pixel flipping) and the mean similarity per
 * randomised layer (MPRT); points with no finite value are left out rather than failing the plot. */
export function evaluationPlots(result: Evaluation): { file: string; spec: VegaLiteSpec }[] {
  const plots: { file: string; spec: VegaLiteSpec }[] = [];
  const curveOf = (criterion: string, points: { fraction: number; accuracy: number }[]) => ({
    criterion,
    points: points.filter((p) => Number.isFinite(p.accuracy)),
  });
  const drawable = (curves: { points: unknown[] }[]) => curves.some((c) => c.points.length > 0);
  if (result.metrics.includes('PixelFlipping')) {
    const curves = result.methods.map((m) => {
      const rows = result.results[m]!.PixelFlipping!.curves!;
      const len = rows[0]!.length;
      return curveOf(
        m,
        rows[0]!.map((_, j) => ({ fraction: (j + 1) / len, accuracy: finiteMean(rows.map((r) => r[j]!)) })),
      );
    });
    if (drawable(curves))
      plots.push({
        file: 'pixel-flipping.svg',
        spec: pruningCurveChart(curves, {
          title: 'Pixel flipping',
          subtitle:
            'the faster the probability falls when the most relevant pixels go first, the more faithful the explanation',
          xTitle: 'Share of the input removed, most relevant first',
          yTitle: 'Probability of the class',
        }),
      });
  }
  if (result.metrics.includes('MPRT')) {
    const curves = result.methods.map((m) => {
      const layers = Object.values(result.results[m]!.MPRT!.layers!);
      return curveOf(
        m,
        layers.map((sims, j) => ({ fraction: j / (layers.length - 1), accuracy: finiteMean(sims) })),
      );
    });
    if (drawable(curves))
      plots.push({
        file: 'mprt.svg',
        spec: pruningCurveChart(curves, {
          title: 'Model parameter randomisation (MPRT)',
          subtitle:
            'layers randomised from the output down; an explanation that stays similar ignores what the model learned',
          xTitle: 'Share of the layers randomised',
          yTitle: 'Similarity to the original explanation (Spearman)',
          // a correlation, not a share: it may go below 0
          yFormat: '.1f',
        }),
      });
  }
  return plots;
}

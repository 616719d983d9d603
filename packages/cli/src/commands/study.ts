import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isCrpError, type Progress } from '@crp/common';
import { COMPOSITE_NAMES } from '@crp/lrp';
import type { StudyResult } from '@crp/study';
import { type StudyFilesOptions, studyFiles } from '@crp/study/node';
import { inputSizeArg, intArg, listArg, normalizationArgs, numberArg, required } from '../args.js';
import { workStarts } from '../banner.js';
import { checkRegion, declaredInputSize } from '../checks.js';
import { checkWritable } from '../files.js';
import { HELP } from '../model-data.js';
import { ProgressBar } from '../progress.js';
import { UsageError } from '../usage-error.js';
import { parseRegion } from './atlas.js';

export const studyUsage = `crp study --model FILE --data DIR --target CLASS [options]

The concept study of a trained classifier in one command: optional LAMB fine-tuning (best epoch kept),
evaluation (accuracy, confusion matrix), the global concept atlas of every conv and hidden dense layer,
the same restricted to an input region, the decomposition atlas, reference images, and concept pruning in a
low and a high layer. Writes DIR/report.html (self-contained), DIR/study.json and the pictures; run it again
and the finished parts are taken from DIR/parts/.

${HELP.model}
  --data DIR            a folder with one sub-folder of images per class (class names sorted, as
                        torchvision's ImageFolder); unreadable files are skipped and reported, grey and
                        RGBA images converted to RGB (alpha over white)
${HELP.target}
${HELP.inputSize}
${HELP.heads}
${HELP.normalize}
  --samples N           images of the target class the strategies look at (default 40)
  --region SPEC         center:SIZE or box:X,Y,W,H (default: the centre square of a third of the input)
  --layers a,b          layers to study (default: every conv and dense layer below the output and, with
                        branches, each stage's output: its last addition, e.g. layer4.1.add)
  --top-k N             concepts per layer and sample (default 5)
  --fine-tune EPOCHS    fine-tune with LAMB first (default 0: no fine-tuning)
  --learning-rate LR    LAMB learning rate (default 1e-4)
  --validation SHARE    share held out for validation when fine-tuning (default 0.2)
  --batch-size N        images per training step (default: planned from the memory)
  --train-layers a,b    layers to fine-tune: all (default) or names and groups, e.g. classifier
  --prune-layers a,b    layers for concept pruning (default: the first and the last conv layer)
  --prune-k N           concepts of each class pruned per layer (default 3)
  --reference-layers a,b  layers with reference images (default: the last conv and the first hidden dense)
  --composite NAME      LRP composite (default epsilon_plus_flat, attn_lrp for a ViT;
                        ${COMPOSITE_NAMES.join(', ')})
  --limit-per-class N   read at most N images per class
  --seed N              seed of the validation split and the training (default 0)
  --restart             forget the parts of an earlier run in DIR
  --out DIR             output folder (default out/study)`;

const studyOptions = {
  model: { type: 'string' },
  data: { type: 'string' },
  target: { type: 'string' },
  'input-size': { type: 'string' },
  heads: { type: 'string' },
  normalize: { type: 'string' },
  mean: { type: 'string' },
  std: { type: 'string' },
  samples: { type: 'string' },
  region: { type: 'string' },
  layers: { type: 'string' },
  'top-k': { type: 'string' },
  'fine-tune': { type: 'string' },
  'learning-rate': { type: 'string' },
  validation: { type: 'string' },
  'batch-size': { type: 'string' },
  'train-layers': { type: 'string' },
  'prune-layers': { type: 'string' },
  'prune-k': { type: 'string' },
  'reference-layers': { type: 'string' },
  composite: { type: 'string' },
  'limit-per-class': { type: 'string' },
  seed: { type: 'string' },
  restart: { type: 'boolean', default: false },
  out: { type: 'string', default: join('out', 'study') },
} as const;

type StudyValues = ReturnType<typeof parseArgs<{ args: string[]; options: typeof studyOptions }>>['values'];

/** --model, --data and --target: given, the model and the data folder there. */
function checkModelDataTarget(values: StudyValues): { model: string; data: string; target: string } {
  const model = required('model', values.model);
  const data = required('data', values.data);
  const target = required('target', values.target);
  if (target.trim() === '') throw new UsageError('--target must name a class or give its index');
  if (/^-/.test(target))
    throw new UsageError(`--target must be a class name or an index >= 0, got '${target}'`);
  if (!existsSync(model)) throw new UsageError(`--model: '${model}' does not exist`);
  if (!existsSync(data) || !statSync(data).isDirectory()) {
    throw new UsageError(`--data: '${data}' is not a folder (give one sub-folder of images per class)`);
  }
  return { model, data, target };
}

/** The options given beyond the required ones, each checked, in the order the study lists them. */
function setOptional(
  options: StudyFilesOptions,
  values: StudyValues,
  checked: {
    mean: StudyFilesOptions['mean'] | undefined;
    std: StudyFilesOptions['std'] | undefined;
    validation: number | undefined;
    learningRate: number | undefined;
  },
): void {
  const set = <K extends keyof StudyFilesOptions>(key: K, value: StudyFilesOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  const inputSize = inputSizeArg(values['input-size']);
  set('inputSize', inputSize);
  set('numHeads', intArg('heads', values.heads, 1));
  set('mean', checked.mean);
  set('std', checked.std);
  set('samples', intArg('samples', values.samples, 1));
  if (values.region !== undefined) {
    // the region must fit the input before the study fine-tunes and evaluates
    const region = parseRegion(values.region);
    const size = declaredInputSize(options.model, inputSize);
    if (size !== undefined) checkRegion(values.region, region, size);
    set('region', region);
  }
  set('layers', listArg(values.layers));
  set('topK', intArg('top-k', values['top-k'], 1));
  set('fineTune', intArg('fine-tune', values['fine-tune'], 0));
  set('learningRate', checked.learningRate);
  set('validation', checked.validation);
  set('trainBatchSize', intArg('batch-size', values['batch-size'], 1));
  const trainLayers = listArg(values['train-layers']);
  set('trainLayers', trainLayers?.length === 1 && trainLayers[0] === 'all' ? 'all' : trainLayers);
  set('pruneLayers', listArg(values['prune-layers']));
  set('pruneConcepts', intArg('prune-k', values['prune-k'], 1));
  set('referenceLayers', listArg(values['reference-layers']));
  set('limitPerClass', intArg('limit-per-class', values['limit-per-class'], 1));
  set('seed', intArg('seed', values.seed, 0));
}

/** Parses and checks the command line completely: nothing is loaded before it is valid. */
export function parseStudyArgs(argv: string[]): StudyFilesOptions {
  const { values } = parseArgs({ args: argv, options: studyOptions });
  const { model, data, target } = checkModelDataTarget(values);
  const { mean, std } = normalizationArgs(values);
  // none given: the study picks by model (attn_lrp for a transformer, epsilon_plus_flat otherwise)
  const composite = values.composite;
  if (composite !== undefined && !(COMPOSITE_NAMES as readonly string[]).includes(composite)) {
    throw new UsageError(`--composite must be one of ${COMPOSITE_NAMES.join(', ')}, got '${composite}'`);
  }
  const validation = numberArg('validation', values.validation);
  if (validation !== undefined && !(validation > 0 && validation < 1)) {
    throw new UsageError(`--validation must be a share between 0 and 1, got '${values.validation}'`);
  }
  const learningRate = numberArg('learning-rate', values['learning-rate']);
  if (learningRate !== undefined && !(learningRate > 0)) {
    throw new UsageError(`--learning-rate must be positive, got '${values['learning-rate']}'`);
  }
  const options: StudyFilesOptions = {
    model,
    data,
    target,
    out: values.out!,
    ...(composite === undefined ? {} : { composite }),
    restart: values.restart === true,
  };
  setOptional(options, values, { mean, std, validation, learningRate });
  return options;
}

export interface StudyOutput {
  report: string;
  json: string;
  result: StudyResult;
}

/** One progress bar per step of the study, each with its ETA. */
function studyProgress(quiet: boolean): (p: Progress) => void {
  const bars = new Map<string, ProgressBar>();
  return (p) => {
    const phase = p.phase ?? 'study';
    // training reports batches and epochs; the bar counts samples
    let bar = bars.get(phase);
    if (bar === undefined) {
      bar = new ProgressBar(phase.padEnd(14), p.total ?? 0, process.stderr, quiet);
      bars.set(phase, bar);
    }
    bar.update(p.done, '', p.etaMs);
  };
}

export async function study(argv: string[], json: boolean): Promise<StudyOutput> {
  const options = parseStudyArgs(argv);
  await checkWritable('--out', options.out, 'folder');
  // the study checks the target and the layers against the data and the model before it works; the backend
  // line comes with its first message
  const log = (line: string) => {
    workStarts();
    if (!json) process.stderr.write(`${line}\n`);
  };
  const bars = studyProgress(json);
  const onProgress = (p: Progress) => {
    workStarts();
    bars(p);
  };
  const {
    result,
    report,
    json: file,
  } = await studyFiles({ ...options, onProgress, log }).catch((err: unknown) => {
    // a class or layer that the data or the model does not have: a mistake of the command line
    if (isCrpError(err, 'invalid-target') || isCrpError(err, 'unknown-layer')) {
      throw new UsageError(err.message);
    }
    if (isCrpError(err, 'unsupported-composite')) throw new UsageError(`--composite: ${err.message}`);
    throw err;
  });
  if (!json) {
    const e = result.evaluation;
    console.log(`concept study of '${result.target.name}' -> ${report}`);
    console.log(
      `  accuracy ${(e.accuracy * 100).toFixed(1)}% on ${e.samples} ${e.on === 'validation' ? 'validation ' : ''}images`,
    );
    for (const layer of result.atlas.layerOrder.slice(-4)) {
      const top = result.atlas.layers[layer]!.ranking[0];
      if (top !== undefined) {
        console.log(
          `  ${layer}: concept ${top.concept} in ${top.votes}/${result.atlas.samples} samples, ${top.percent.toFixed(1)}% of the layer's relevance`,
        );
      }
    }
    console.log(`  data: ${file}`);
  }
  return { report, json: file, result };
}

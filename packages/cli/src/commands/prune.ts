import { statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { fromTensors, transformerBlocks } from '@crp/attribution';
import { CrpError, listNames } from '@crp/common';
import { writeFileAtomic } from '@crp/common/node';
import { CondAttribution } from '@crp/core';
import { compositeByName, graphFromLayersModel } from '@crp/lrp';
import { type Dataset, disposeDataset, encodeTorchStateDict, torchStateDictOf } from '@crp/models';
import { encodeOnnxFile, saveModel } from '@crp/models/node';
import {
  type ChannelScores,
  CRITERIA,
  type CriterionName,
  compareCost,
  criterionStrategy,
  evaluateClasses,
  exportPruned,
  type PruningCurvesResult,
  pruningCurves,
  removableLayers,
  SUMMED_CRITERIA,
  type SummedCriterion,
  scoreChannels,
  selectLowest,
} from '@crp/pruning';
import { writeCurves } from '@crp/pruning/node';
import type * as tfl from '@tensorflow/tfjs-layers';
import { intArg, listArg, numberArg, numberListArg, required } from '../args.js';
import { workStarts } from '../banner.js';
import { checkLayers } from '../checks.js';
import { loadData } from '../data.js';
import { reportShard, runBeyond, type ShardOutput } from '../distributed.js';
import { checkWritable } from '../files.js';
import { cliJobSpec } from '../job-loader.js';
import { openModel } from '../load-model.js';
import {
  compositeArg,
  HELP,
  inputRange,
  type ModelInputOptions,
  modelComposite,
  modelHelp,
  modelInputArgs,
  modelOptions,
} from '../model-data.js';
import { ProgressBar } from '../progress.js';
import {
  type Distribution,
  distributionHelp,
  distributionOptions,
  parseDistribution,
} from '../queue-options.js';
import { UsageError } from '../usage-error.js';

export const pruneUsage = `crp prune --model M --data DIR|mnist --criteria relevance,weight,random [options]

Pruning curves (@crp/pruning pruningCurves): accuracy on held-out images against the fraction of channels
pruned, per criterion, written as curves.json / .md / .svg; with --export, the model with the lowest-scoring
fraction of channels removed physically (exportPruned) and saved.

${modelHelp}
${HELP.data}
  --samples N         reference images the criteria score on (mnist: count, default 200; folder: per class)
  --test N            held-out images for accuracy (mnist: count, default 200; folder: count or share, default 0.5)
  --seed N            seed of the data split and the random criterion (default 0)
  --criteria a,b      ${CRITERIA.join(', ')}
  --fractions x,y     fractions to prune (default 0,0.1,...,0.9)
  --scope S           layer (default: the fraction of every layer) or global
  --layers a,b        layers to prune (default: every conv/dense layer but the output); a ViT's attention
                      product (encoder.layers.encoder_layer_N.self_attention.context) prunes its heads
  --out DIR           where curves.json, curves.md and curves.svg go (default out/prune)
  --export DIR        save the pruned model there (with --fraction and --criterion; a model read from an .onnx
                      also as DIR/model.onnx: its graph, node and input/output names and opset, with the pruned
                      weights; a CNN's only, a ViT's .onnx is refused; a torchvision VGG or ResNet read
                      from a .pth/.pt/.safetensors also as DIR/state_dict.pth, which torch.load +
                      load_state_dict of the same architecture with the pruned channel counts accept); only layers whose channels
                      can be removed physically are pruned for it: in a ResNet the inner convs and, when named
                      in --layers, the additions (layer2.1.add: a channel of the stage's residual stream, removed
                      from every conv writing or reading it); not a block's last conv, its downsample or the
                      stem alone, whose channels are added to the stream
  --fraction X        fraction to prune for --export (default 0.3)
  --criterion NAME    criterion for --export (default relevance)
${distributionHelp}
                      (--queue scores relevance, activation and Taylor on the workers, the curves are measured
                      here; --shard needs exactly one of them in --criteria and writes its partial sums to --out)`;

export interface PrunedExport {
  dir: string;
  criterion: string;
  fraction: number;
  pruned: number;
  accuracy: number;
  baseline: number;
  params: { before: number; after: number };
  flops: { before: number; after: number };
  totalBytes: number;
  /** The pruned model as `.onnx` (the source graph, pruned initializers), for a model read from one. */
  onnx?: string;
  /** The pruned model as a PyTorch `state_dict.pth`, for a torchvision VGG or ResNet read from a `.pth`,
   * `.pt` or `.safetensors` file. */
  stateDict?: string;
}

export interface PruneOutput {
  files: string[];
  curves?: PruningCurvesResult;
  export?: PrunedExport;
}

const isOnnxPath = (path: string) => path.toLowerCase().endsWith('.onnx');

/** Whether `loadModel` reads this path as a PyTorch file (`.pth`, `.pt`, `.safetensors`): a file that is neither
 * an `.onnx` nor a TF.js `model.json`. */
function isTorchPath(path: string): boolean {
  if (isOnnxPath(path) || path.toLowerCase().endsWith('.json')) return false;
  return statSync(path, { throwIfNoEntry: false })?.isFile() === true;
}

function criterionName(name: string): CriterionName {
  if (!(CRITERIA as readonly string[]).includes(name)) {
    throw new UsageError(`unknown criterion '${name}'; valid: ${CRITERIA.join(', ')}`);
  }
  return name as CriterionName;
}

/** The command line of `crp prune`, checked. */
interface PruneArgs {
  modelPath: string;
  dataSpec: string;
  criteria: CriterionName[] | undefined;
  /** the criteria that are sums over the reference samples (the ones that run beyond this process) */
  summed: SummedCriterion[];
  fractions: number[] | undefined;
  scope: 'layer' | 'global';
  layers: string[] | undefined;
  seed: number;
  samples: number | undefined;
  test: number;
  input: ModelInputOptions;
  /** --composite as given, then (prune) the name decided for the loaded model */
  compositeName: string | undefined;
  out: string;
  exportDir: string | undefined;
  fraction: number;
  exportCriterion: CriterionName;
  dist: Distribution;
}

/** The arguments once the model is loaded: the composite decided for it. */
type LoadedPruneArgs = PruneArgs & { compositeName: string };

/** Parses and checks every argument that needs neither the model nor the data. */
function parsePruneArgs(argv: string[]): PruneArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...modelOptions,
      ...distributionOptions,
      data: { type: 'string' },
      samples: { type: 'string' },
      test: { type: 'string' },
      seed: { type: 'string', default: '0' },
      criteria: { type: 'string' },
      fractions: { type: 'string' },
      scope: { type: 'string', default: 'layer' },
      layers: { type: 'string' },
      out: { type: 'string', default: join('out', 'prune') },
      export: { type: 'string' },
      fraction: { type: 'string', default: '0.3' },
      criterion: { type: 'string', default: 'relevance' },
    },
  });
  const dataSpec = required('data', values.data);
  const criteria = listArg(values.criteria)?.map(criterionName);
  if ((criteria === undefined || criteria.length === 0) && values.export === undefined) {
    throw new UsageError('give --criteria (pruning curves) and/or --export DIR (a pruned model)');
  }
  const scope = values.scope;
  if (scope !== 'layer' && scope !== 'global')
    throw new UsageError(`--scope must be layer or global, got '${scope}'`);
  const dist = parseDistribution(values);
  const summed = (criteria ?? []).filter((c): c is SummedCriterion =>
    (SUMMED_CRITERIA as readonly string[]).includes(c),
  );
  if (
    dist.mode === 'shard' &&
    (criteria?.length !== 1 || summed.length !== 1 || values.export !== undefined)
  ) {
    throw new UsageError(
      `--shard computes one criterion over the reference samples: give exactly one of --criteria ${SUMMED_CRITERIA.join('|')} (and no --export)`,
    );
  }
  const mnistData = dataSpec === 'mnist';
  const input = modelInputArgs(values);
  compositeArg(values.composite, inputRange(input)); // an unknown name is refused here
  return {
    modelPath: required('model', values.model),
    dataSpec,
    criteria,
    summed,
    fractions: numberListArg('fractions', values.fractions),
    scope,
    layers: listArg(values.layers),
    seed: intArg('seed', values.seed)!,
    samples: intArg('samples', values.samples, 1) ?? (mnistData ? 200 : undefined),
    test: numberArg('test', values.test) ?? (mnistData ? 200 : 0.5),
    input,
    compositeName: values.composite,
    out: values.out!,
    exportDir: values.export,
    fraction: numberArg('fraction', values.fraction)!,
    exportCriterion: criterionName(values.criterion!),
    dist,
  };
}

/** The reference samples (scored by the criteria) and the held-out test samples (accuracy). */
async function loadPruneData(args: PruneArgs, model: tfl.LayersModel) {
  const data = await loadData(args.dataSpec, {
    inputShape: model.inputs[0]!.shape.slice(1),
    samples: args.samples,
    holdOut: args.test,
    seed: args.seed,
    ...(args.input.mean === undefined ? {} : { mean: args.input.mean, std: args.input.std! }),
  });
  if (data.holdOut === undefined) {
    disposeDataset(data.data);
    throw new UsageError('--test must be above 0: accuracy needs held-out images');
  }
  return { reference: data.data, test: data.holdOut };
}

/** Options of every criterion: the seed, the LRP composite and the shard size. */
function criterionOptionsOf(args: LoadedPruneArgs) {
  return {
    seed: args.seed,
    attributor: { composite: compositeByName(args.compositeName, inputRange(args.input)) },
    ...(args.dist.shardSize === undefined ? {} : { shardSize: args.dist.shardSize }),
  };
}

/**
 * The summed criteria computed beyond this process (queue workers or one `--shard` part): their channel
 * scores, or the shard's output when this process computed one part only.
 */
async function scoreBeyond(
  args: LoadedPruneArgs,
  model: tfl.LayersModel,
  reference: Dataset,
  json: boolean,
): Promise<Map<string, ChannelScores> | ShardOutput> {
  const precomputed = new Map<string, ChannelScores>();
  if (args.dist.mode === 'local' || args.summed.length === 0) return precomputed;
  const spec = cliJobSpec(args.modelPath, args.dataSpec, {
    input: args.input,
    composite: args.compositeName,
    seed: args.seed,
    holdOut: args.test,
    ...(args.samples === undefined ? {} : { samples: args.samples }),
  });
  const crp = new CondAttribution(model, { composite: criterionOptionsOf(args).attributor.composite });
  try {
    const ctx = { crp, model, dataset: fromTensors(reference) };
    for (const criterion of args.summed) {
      const options = {
        criterion,
        composite: args.compositeName,
        ...(args.layers === undefined ? {} : { layers: args.layers }),
      };
      const beyond = await runBeyond(
        criterionStrategy,
        options,
        args.dist,
        spec,
        ctx,
        args.out,
        criterion,
        json,
      );
      if (!('result' in beyond)) return beyond;
      precomputed.set(criterion, beyond.result);
    }
    return precomputed;
  } finally {
    crp.dispose();
  }
}

/** Pruning curves of the criteria on the test samples, written as curves.json / .md / .svg. */
async function measureCurves(
  args: LoadedPruneArgs,
  model: tfl.LayersModel,
  samples: { reference: Dataset; test: Dataset },
  precomputed: Map<string, ChannelScores>,
  json: boolean,
): Promise<{ curves: PruningCurvesResult; files: string[] }> {
  const criteria = args.criteria!;
  const progress = new ProgressBar(
    'prune',
    criteria.length * (args.fractions?.length ?? 10),
    process.stderr,
    json,
  );
  const curves = await pruningCurves(model, {
    criteria: criteria.map((c) => precomputed.get(c) ?? c),
    reference: samples.reference,
    test: samples.test,
    scope: args.scope,
    criterionOptions: criterionOptionsOf(args),
    ...(args.fractions === undefined ? {} : { fractions: args.fractions }),
    ...(args.layers === undefined ? {} : { layers: args.layers }),
    onProgress: (p) =>
      progress.update(p.done, `${p.criterion} ${p.fraction}: ${p.accuracy.toFixed(3)}`, p.etaMs),
  });
  await mkdir(args.out, { recursive: true });
  const files = await writeCurves(curves, join(args.out, 'curves'));
  if (!json) {
    console.log(
      `baseline accuracy ${curves.baseline.toFixed(4)} on ${samples.test.labels.length} images (chance ${curves.chance.toFixed(3)})`,
    );
    for (const c of curves.curves) {
      console.log(
        `  ${c.criterion.padEnd(10)} ${c.points.map((p) => `${p.fraction.toFixed(2)}:${p.accuracy.toFixed(3)}`).join('  ')}`,
      );
    }
    console.log(`-> ${files.join(', ')}`);
  }
  return { curves, files };
}

/** Whether a model is a Vision Transformer (its layers have no PyTorch state dict writer). */
function isTransformer(model: tfl.LayersModel): boolean {
  const graph = graphFromLayersModel(model);
  try {
    return transformerBlocks(graph).length > 0;
  } finally {
    graph.dispose();
  }
}

/** For `--export`: the named layers (or, by default, some layer) can lose channels physically. */
function checkRemovable(model: tfl.LayersModel, layers: readonly string[] | undefined): void {
  const removable = removableLayers(model);
  const bad = (layers ?? []).filter((l) => !removable.includes(l));
  if (removable.length === 0 || bad.length > 0) {
    const which = bad.length > 0 ? bad.map((l) => `'${l}'`).join(', ') : 'no layer of this model';
    // the additions the refused layers write to, where their stream can be pruned as a whole
    const sums = additionsReached(model, bad).filter((sum) => removable.includes(sum));
    const instead = sums.length > 0 ? sums.join(', ') : 'e.g. layer2.1.add';
    throw new UsageError(
      `--export removes channels physically, and ${which} cannot lose channels that way: they reach an addition (a residual block's shortcut: prune the residual stream through its addition, ${instead}, instead), a concatenation or the output; the curves mask them instead. Removable layers: ${removable.length === 0 ? 'none' : listNames(removable)}`,
    );
  }
}

/** The additions that each of `layers` writes to through channel-wise layers (batch norm, activation, ...), in
 * the order of `layers`: where a block's last conv or downsample meets the shortcut. */
function additionsReached(model: tfl.LayersModel, layers: readonly string[]): string[] {
  const graph = graphFromLayersModel(model);
  try {
    const found: string[] = [];
    for (const layer of layers) {
      if (!graph.has(layer)) continue;
      let id = graph.node(layer).id;
      // follow the single reader through layers that keep the channels until something else reads them
      for (;;) {
        const readers = graph.consumersOf(id);
        if (readers.length !== 1) break;
        const next = graph.node(readers[0]!);
        if (next.kind === 'add') {
          if (!found.includes(next.layerName)) found.push(next.layerName);
          break;
        }
        if (next.inputs.length !== 1 || !CHANNEL_WISE.has(next.kind)) break;
        id = next.id;
      }
    }
    return found;
  } finally {
    graph.dispose();
  }
}

/** Layer kinds that keep a tensor's channels apart (what lies between a conv and the addition it writes to). */
const CHANNEL_WISE = new Set(['batchNorm', 'activation', 'identity']);

/** The model with the lowest-scoring fraction of channels removed physically, saved with its mask. */
async function exportModel(
  args: LoadedPruneArgs,
  model: tfl.LayersModel,
  samples: { reference: Dataset; test: Dataset },
  precomputed: Map<string, ChannelScores>,
  baseline: number | undefined,
): Promise<PrunedExport> {
  const dir = args.exportDir!;
  const scores =
    precomputed.get(args.exportCriterion) ??
    scoreChannels(model, args.exportCriterion, {
      ...criterionOptionsOf(args),
      data: samples.reference,
      ...(args.layers === undefined ? {} : { layers: args.layers }),
    });
  // the export removes channels physically: only layers where that keeps the model's function (checked before
  // any work for named --layers; by default the others are left out here, while the curves mask them all)
  const removable = new Set(removableLayers(model));
  const exportable = {
    ...scores,
    layers: Object.fromEntries(Object.entries(scores.layers).filter(([name]) => removable.has(name))),
  };
  const mask = selectLowest(exportable, args.fraction, { scope: args.scope });
  const small = await exportPruned(model, mask);
  try {
    // back to the user's format: a model read from an .onnx is also written as one (the same graph, the pruned
    // initializers), as a folded-BN ResNet cannot become a torchvision state dict. Encoded first, so a graph that
    // cannot hold the pruned model is refused before anything is in DIR (writeOnnx's steps, split)
    const onnx = isOnnxPath(args.modelPath) ? join(dir, 'model.onnx') : undefined;
    const onnxBytes =
      onnx === undefined
        ? undefined
        : await encodeOnnxFile(
            small,
            args.modelPath,
            args.input.inputSize === undefined ? {} : { inputSize: args.input.inputSize },
          );
    // a torchvision VGG or ResNet goes back to PyTorch as a state dict (a ViT's has no writer: TF.js only)
    const stateDict =
      isTorchPath(args.modelPath) && !isTransformer(small) ? join(dir, 'state_dict.pth') : undefined;
    const stateDictBytes =
      stateDict === undefined ? undefined : encodeTorchStateDict(torchStateDictOf(small));
    const saved = await saveModel(small, dir);
    if (onnx !== undefined && onnxBytes !== undefined) await writeFileAtomic(onnx, onnxBytes);
    if (stateDict !== undefined && stateDictBytes !== undefined)
      await writeFileAtomic(stateDict, stateDictBytes);
    await writeFileAtomic(join(dir, 'mask.json'), `${JSON.stringify(mask, null, 2)}\n`);
    const cost = compareCost(model, mask);
    return {
      dir,
      criterion: args.exportCriterion,
      fraction: args.fraction,
      pruned: mask.size,
      accuracy: evaluateClasses(small, samples.test).accuracy,
      baseline: baseline ?? evaluateClasses(model, samples.test).accuracy,
      params: { before: cost.before.params, after: cost.after.params },
      flops: { before: cost.before.flops, after: cost.after.flops },
      totalBytes: saved.totalBytes,
      ...(onnx === undefined ? {} : { onnx }),
      ...(stateDict === undefined ? {} : { stateDict }),
    };
  } finally {
    small.dispose();
  }
}

/** `crp prune`: check everything, load, score beyond this process if asked, measure the curves, export. */
export async function prune(argv: string[], json: boolean): Promise<PruneOutput | ShardOutput> {
  const given = parsePruneArgs(argv);
  await checkWritable('--out', given.out, 'folder');
  if (given.exportDir !== undefined) await checkWritable('--export', given.exportDir, 'folder');
  const model = await openModel(given.modelPath, given.input);
  let samples: { reference: Dataset; test: Dataset } | undefined;
  try {
    // the criteria and the job specs carry the composite decided for this model
    const choice = compositeArg(given.compositeName, inputRange(given.input));
    const args: LoadedPruneArgs = { ...given, compositeName: modelComposite(model, choice).name };
    const graph = graphFromLayersModel(model);
    try {
      checkLayers('layers', args.layers, graph);
      // the ONNX writer puts back CNNs only: said before any work, not after the scores
      if (args.exportDir !== undefined && isOnnxPath(args.modelPath) && transformerBlocks(graph).length > 0)
        throw new CrpError(
          'unsupported-model',
          `--export writes a pruned .onnx for CNNs only, and '${args.modelPath}' is a Vision Transformer, whose weights the ONNX writer cannot put back; leave out --export for its pruning curves (channels masked, not removed), or prune the same ViT read from its torchvision .pth, whose --export writes the pruned TF.js model`,
        );
    } finally {
      graph.dispose();
    }
    if (args.exportDir !== undefined) checkRemovable(model, args.layers);
    samples = await loadPruneData(args, model);
    workStarts();
    const precomputed = await scoreBeyond(args, model, samples.reference, json);
    if (!(precomputed instanceof Map)) {
      reportShard(precomputed, json);
      return precomputed;
    }
    const output: PruneOutput = { files: [] };
    if (args.criteria !== undefined && args.criteria.length > 0) {
      const { curves, files } = await measureCurves(args, model, samples, precomputed, json);
      output.files.push(...files);
      output.curves = curves;
    }
    if (args.exportDir !== undefined) {
      const e = await exportModel(args, model, samples, precomputed, output.curves?.baseline);
      output.export = e;
      output.files.push(
        join(e.dir, 'model.json'),
        ...(e.onnx === undefined ? [] : [e.onnx]),
        ...(e.stateDict === undefined ? [] : [e.stateDict]),
        join(e.dir, 'mask.json'),
      );
      if (!json) {
        console.log(
          `pruned ${e.pruned} channels by ${e.criterion} (${e.fraction}): accuracy ${e.baseline.toFixed(4)} -> ${e.accuracy.toFixed(4)}, params ${e.params.before} -> ${e.params.after} -> ${e.dir} (${[
            'model.json',
            e.onnx,
            e.stateDict,
            'mask.json',
          ]
            .filter((f) => f !== undefined)
            .map((f) => basename(f))
            .join(', ')})`,
        );
      }
    }
    return output;
  } finally {
    model.dispose();
    disposeDataset(samples?.reference);
    disposeDataset(samples?.test);
  }
}

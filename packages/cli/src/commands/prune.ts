import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fromTensors } from '@crp/attribution';
import { writeFileAtomic } from '@crp/common/node';
import { CondAttribution } from '@crp/core';
import { compositeByName } from '@crp/lrp';
import { disposeDataset } from '@crp/models';
import { saveModel } from '@crp/models/node';
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
  SUMMED_CRITERIA,
  type SummedCriterion,
  scoreChannels,
  selectLowest,
} from '@crp/pruning';
import { writeCurves } from '@crp/pruning/node';
import { intArg, listArg, numberArg, numberListArg, required } from '../args.js';
import { loadData } from '../data.js';
import { reportShard, runBeyond, type ShardOutput } from '../distributed.js';
import { cliJobSpec } from '../job-loader.js';
import { openModel } from '../load-model.js';
import { inputRange, modelInputArgs } from '../model-data.js';
import { ProgressBar } from '../progress.js';
import { distributionHelp, distributionOptions, parseDistribution } from '../queue-options.js';
import { UsageError } from '../usage-error.js';

export const pruneUsage = `crp prune --model M --data DIR|mnist --criteria relevance,weight,random [options]

Pruning curves (@crp/pruning pruningCurves): accuracy on held-out images against the fraction of channels
pruned, per criterion, written as curves.json / .md / .svg; with --export, the model with the lowest-scoring
fraction of channels removed physically (exportPruned) and saved.

  --model PATH        TF.js model (model.json or its directory) or a torchvision VGG or ResNet (.pth/.safetensors)
  --data SPEC         'mnist' (bundled digits) or a folder with one sub-folder per class
  --samples N         reference images the criteria score on (mnist: count, default 200; folder: per class)
  --test N            held-out images for accuracy (mnist: count, default 200; folder: count or share, default 0.5)
  --seed N            seed of the data split and the random criterion (default 0)
  --criteria a,b      ${CRITERIA.join(', ')}
  --fractions x,y     fractions to prune (default 0,0.1,...,0.9)
  --scope S           layer (default: the fraction of every layer) or global
  --layers a,b        layers to prune (default: every conv/dense layer but the output)
  --composite NAME    LRP composite of the relevance criterion (default epsilon_plus_flat)
  --out DIR           where curves.json, curves.md and curves.svg go (default out/prune)
  --export DIR        save the pruned model there (with --fraction and --criterion)
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
}

export interface PruneOutput {
  files: string[];
  curves?: PruningCurvesResult;
  export?: PrunedExport;
}

function criterionName(name: string): CriterionName {
  if (!(CRITERIA as readonly string[]).includes(name)) {
    throw new UsageError(`unknown criterion '${name}'; valid: ${CRITERIA.join(', ')}`);
  }
  return name as CriterionName;
}

export async function prune(argv: string[], json: boolean): Promise<PruneOutput | ShardOutput> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...distributionOptions,
      model: { type: 'string' },
      data: { type: 'string' },
      samples: { type: 'string' },
      test: { type: 'string' },
      seed: { type: 'string', default: '0' },
      criteria: { type: 'string' },
      fractions: { type: 'string' },
      scope: { type: 'string', default: 'layer' },
      layers: { type: 'string' },
      composite: { type: 'string', default: 'epsilon_plus_flat' },
      'input-size': { type: 'string' },
      normalize: { type: 'string' },
      mean: { type: 'string' },
      std: { type: 'string' },
      out: { type: 'string', default: join('out', 'prune') },
      export: { type: 'string' },
      fraction: { type: 'string', default: '0.3' },
      criterion: { type: 'string', default: 'relevance' },
    },
  });
  const modelPath = required('model', values.model);
  const dataSpec = required('data', values.data);
  const criteria = listArg(values.criteria)?.map(criterionName);
  if ((criteria === undefined || criteria.length === 0) && values.export === undefined) {
    throw new UsageError('give --criteria (pruning curves) and/or --export DIR (a pruned model)');
  }
  const fractions = numberListArg('fractions', values.fractions);
  const scope = values.scope;
  if (scope !== 'layer' && scope !== 'global')
    throw new UsageError(`--scope must be layer or global, got '${scope}'`);
  const layers = listArg(values.layers);
  const seed = intArg('seed', values.seed)!;
  const fraction = numberArg('fraction', values.fraction)!;
  const exportCriterion = criterionName(values.criterion!);
  const input = modelInputArgs(values);
  const composite = compositeByName(values.composite!, inputRange(input));
  const mnistData = dataSpec === 'mnist';
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

  const model = await openModel(modelPath, input.inputSize);
  let data: Awaited<ReturnType<typeof loadData>> | undefined;
  try {
    data = await loadData(dataSpec, {
      inputShape: model.inputs[0]!.shape.slice(1),
      samples: intArg('samples', values.samples, 1) ?? (mnistData ? 200 : undefined),
      holdOut: numberArg('test', values.test) ?? (mnistData ? 200 : 0.5),
      seed,
      ...(input.mean === undefined ? {} : { mean: input.mean, std: input.std! }),
    });
    if (data.holdOut === undefined)
      throw new UsageError('--test must be above 0: accuracy needs held-out images');
    const reference = data.data;
    const test = data.holdOut;
    const output: PruneOutput = { files: [] };
    const criterionOptions = {
      seed,
      attributor: { composite },
      ...(dist.shardSize === undefined ? {} : { shardSize: dist.shardSize }),
    };
    // beyond this process: the criteria that are sums over the reference samples
    const precomputed = new Map<string, ChannelScores>();
    if (dist.mode !== 'local' && summed.length > 0) {
      const samples = intArg('samples', values.samples, 1) ?? (mnistData ? 200 : undefined);
      const spec = cliJobSpec(modelPath, dataSpec, {
        input,
        composite: values.composite!,
        seed,
        holdOut: numberArg('test', values.test) ?? (mnistData ? 200 : 0.5),
        ...(samples === undefined ? {} : { samples }),
      });
      const crp = new CondAttribution(model, { composite });
      try {
        const ctx = { crp, model, dataset: fromTensors(reference) };
        for (const criterion of summed) {
          const options = {
            criterion,
            composite: values.composite!,
            ...(layers === undefined ? {} : { layers }),
          };
          const beyond = await runBeyond(
            criterionStrategy,
            options,
            dist,
            spec,
            ctx,
            values.out!,
            criterion,
            json,
          );
          if (!('result' in beyond)) {
            reportShard(beyond, json);
            return beyond;
          }
          precomputed.set(criterion, beyond.result);
        }
      } finally {
        crp.dispose();
      }
    }

    if (criteria !== undefined && criteria.length > 0) {
      const points = criteria.length * (fractions?.length ?? 10);
      const progress = new ProgressBar('prune', points, process.stderr, json);
      const curves = await pruningCurves(model, {
        criteria: criteria.map((c) => precomputed.get(c) ?? c),
        reference,
        test,
        scope,
        criterionOptions,
        ...(fractions === undefined ? {} : { fractions }),
        ...(layers === undefined ? {} : { layers }),
        onProgress: (p) =>
          progress.update(p.done, `${p.criterion} ${p.fraction}: ${p.accuracy.toFixed(3)}`, p.etaMs),
      });
      await mkdir(values.out!, { recursive: true });
      output.files.push(...(await writeCurves(curves, join(values.out!, 'curves'))));
      output.curves = curves;
      if (!json) {
        console.log(
          `baseline accuracy ${curves.baseline.toFixed(4)} on ${test.labels.length} images (chance ${curves.chance.toFixed(3)})`,
        );
        for (const c of curves.curves) {
          console.log(
            `  ${c.criterion.padEnd(10)} ${c.points.map((p) => `${p.fraction.toFixed(2)}:${p.accuracy.toFixed(3)}`).join('  ')}`,
          );
        }
        console.log(`-> ${output.files.join(', ')}`);
      }
    }

    if (values.export !== undefined) {
      const scores =
        precomputed.get(exportCriterion) ??
        scoreChannels(model, exportCriterion, {
          ...criterionOptions,
          data: reference,
          ...(layers === undefined ? {} : { layers }),
        });
      const mask = selectLowest(scores, fraction, { scope });
      const small = await exportPruned(model, mask);
      try {
        const saved = await saveModel(small, values.export);
        await writeFileAtomic(join(values.export, 'mask.json'), `${JSON.stringify(mask, null, 2)}\n`);
        const cost = compareCost(model, mask);
        output.export = {
          dir: values.export,
          criterion: exportCriterion,
          fraction,
          pruned: mask.size,
          accuracy: evaluateClasses(small, test).accuracy,
          baseline: output.curves?.baseline ?? evaluateClasses(model, test).accuracy,
          params: { before: cost.before.params, after: cost.after.params },
          flops: { before: cost.before.flops, after: cost.after.flops },
          totalBytes: saved.totalBytes,
        };
        output.files.push(join(values.export, 'model.json'), join(values.export, 'mask.json'));
      } finally {
        small.dispose();
      }
      if (!json) {
        const e = output.export;
        console.log(
          `pruned ${e.pruned} channels by ${e.criterion} (${e.fraction}): accuracy ${e.baseline.toFixed(4)} -> ${e.accuracy.toFixed(4)}, params ${e.params.before} -> ${e.params.after} -> ${e.dir}`,
        );
      }
    }
    return output;
  } finally {
    model.dispose();
    disposeDataset(data?.data);
    disposeDataset(data?.holdOut);
  }
}

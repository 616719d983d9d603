import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  atlasStrategy,
  type ConceptAtlas,
  conceptAtlas,
  formatVotes,
  fromTensors,
  type Region,
  type RegionAtlas,
  regionAtlas,
  regionAtlasStrategy,
  type ShardContext,
} from '@crp/attribution';
import { writeJsonAtomic } from '@crp/common/node';
import type { ModelGraph } from '@crp/lrp';
import type { Dataset } from '@crp/models';
import { intArg, listArg, numberListArg, required } from '../args.js';
import { workStarts } from '../banner.js';
import { checkLayers, checkRegion, graphInputSize, targetArg } from '../checks.js';
import { reportShard, runBeyond, type ShardOutput } from '../distributed.js';
import { checkWritable } from '../files.js';
import { type DatasetRunArgs, datasetJobSpec, datasetRunArgs, withDatasetRun } from '../job-loader.js';
import { HELP, modelDataHelp, modelDataOptions, targetOption } from '../model-data.js';
import { progressCallback } from '../progress.js';
import { distributionHelp, distributionOptions } from '../queue-options.js';
import { UsageError } from '../usage-error.js';

export const atlasUsage = `crp atlas --model M --data DIR|mnist --target CLASS [--region center:SIZE] [options]

The concept atlas of a class (@crp/attribution conceptAtlas): per layer, the concepts (channels) that the
samples of the class rely on, ranked by votes; with --region, the atlas of that input region (regionAtlas).

${modelDataHelp}
${HELP.target} (required)
  --region SPEC       center:SIZE (a centred SIZExSIZE square) or box:X,Y,W,H
  --layers a,b        layers (default: every conv and dense layer below the output)
  --top-k N           concepts each sample votes for (default 5)
  --out FILE          the atlas as JSON (default out/atlas.json; with --shard, the part's partial)
${distributionHelp}`;

/** `center:SIZE` or `box:X,Y,W,H` as a region of @crp/attribution. */
export function parseRegion(value: string): Region {
  const [kind, rest = ''] = value.split(':');
  if (kind === 'center') {
    const size = Number(rest);
    if (Number.isInteger(size) && size >= 1) return { centerSquare: size };
  } else if (kind === 'box') {
    const n = numberListArg('region', rest, true)!;
    if (n.length === 4) return { boxes: [{ x: n[0]!, y: n[1]!, width: n[2]!, height: n[3]! }] };
  }
  throw new UsageError(`--region must be center:SIZE or box:X,Y,W,H, got '${value}'`);
}

export interface AtlasOutput {
  file: string;
  atlas: ConceptAtlas | RegionAtlas;
}

/** The command line of `crp atlas`, checked. */
interface AtlasArgs extends DatasetRunArgs {
  modelPath: string;
  dataSpec: string;
  targetSpec: string;
  /** --region as given (it names the region in messages) and parsed */
  regionSpec: string | undefined;
  region: Region | undefined;
  layers: string[] | undefined;
  topK: number;
  out: string;
}

/** Parses and checks every argument that needs neither the model nor the data. */
function parseAtlasArgs(argv: string[]): AtlasArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...modelDataOptions,
      ...distributionOptions,
      ...targetOption,
      region: { type: 'string' },
      layers: { type: 'string' },
      'top-k': { type: 'string', default: '5' },
      out: { type: 'string', default: join('out', 'atlas.json') },
    },
  });
  const modelPath = required('model', values.model);
  const dataSpec = required('data', values.data);
  const targetSpec = required('target', values.target);
  const region = values.region === undefined ? undefined : parseRegion(values.region);
  const layers = listArg(values.layers);
  const topK = intArg('top-k', values['top-k'], 1)!;
  return {
    modelPath,
    dataSpec,
    targetSpec,
    regionSpec: values.region,
    region,
    layers,
    topK,
    ...datasetRunArgs(values),
    out: values.out!,
  };
}

/** The class of --target, after checking --layers and --region against the model. */
function checkAgainstModel(args: AtlasArgs, graph: ModelGraph, classes: Dataset['classes']): number {
  const target = targetArg(args.targetSpec, graph, classes);
  checkLayers('layers', args.layers, graph);
  const size = graphInputSize(graph);
  if (args.region !== undefined && size !== undefined) checkRegion(args.regionSpec!, args.region, size);
  return target;
}

/** The (region) atlas, here or beyond this process; the shard's output when it computed one part. */
async function computeAtlas(
  args: AtlasArgs & { compositeName: string },
  ctx: ShardContext,
  target: number,
  json: boolean,
): Promise<ConceptAtlas | RegionAtlas | ShardOutput> {
  const { region, dist } = args;
  const label = region === undefined ? 'atlas' : 'region atlas';
  const onProgress = progressCallback(label, json);
  const common = {
    topK: args.topK,
    onProgress,
    ...(args.layers === undefined ? {} : { layers: args.layers }),
  };
  if (dist.mode === 'local') {
    const shards = dist.shardSize === undefined ? {} : { shardSize: dist.shardSize };
    return region === undefined
      ? conceptAtlas(ctx.crp, ctx.dataset, { ...common, ...shards, target })
      : regionAtlas(ctx.crp, ctx.dataset, { ...common, ...shards, target, region });
  }
  // beyond this process: the same analysis as a sharded strategy (queue workers or one part of n)
  const spec = datasetJobSpec(args);
  const { onProgress: _p, ...plain } = common;
  const beyond =
    region === undefined
      ? await runBeyond(atlasStrategy, { ...plain, target }, dist, spec, ctx, args.out, label, json)
      : await runBeyond(
          regionAtlasStrategy,
          { ...plain, target, region },
          dist,
          spec,
          ctx,
          args.out,
          label,
          json,
        );
  return 'result' in beyond ? beyond.result : beyond;
}

function printAtlas(args: AtlasArgs, target: number, result: ConceptAtlas | RegionAtlas): void {
  console.log(
    `concept atlas of class ${target}${args.regionSpec ? ` in ${args.regionSpec}` : ''} over ${result.samples} samples -> ${args.out}`,
  );
  for (const layer of result.layerOrder) {
    const top = result.layers[layer]!.ranking.slice(0, args.topK);
    console.log(
      `  ${layer}: ${top.map((e) => `${e.concept} (${formatVotes(e, result)} samples, ${e.percent.toFixed(1)}%)`).join(', ')}`,
    );
  }
}

/** `crp atlas`: check everything, load, compute the atlas (here or beyond), write it as JSON. */
export async function atlas(argv: string[], json: boolean): Promise<AtlasOutput | ShardOutput> {
  const given = parseAtlasArgs(argv);
  await checkWritable('--out', given.out, 'file');
  return withDatasetRun(given, async (args, { model, crp, data }) => {
    const target = checkAgainstModel(args, crp.attributor.graph, data.classes);
    workStarts();
    const result = await computeAtlas(args, { crp, model, dataset: fromTensors(data) }, target, json);
    if ('partial' in result) {
      reportShard(result, json);
      return result;
    }
    await mkdir(dirname(args.out), { recursive: true });
    await writeJsonAtomic(args.out, result);
    if (!json) printAtlas(args, target, result);
    return { file: args.out, atlas: result };
  });
}

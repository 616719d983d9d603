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
} from '@crp/attribution';
import { writeJsonAtomic } from '@crp/common/node';
import { disposeDataset } from '@crp/models';
import { intArg, listArg, numberListArg, required } from '../args.js';
import { workStarts } from '../banner.js';
import { checkLayers, checkRegion, graphInputSize, targetArg } from '../checks.js';
import { reportShard, runBeyond, type ShardOutput } from '../distributed.js';
import { checkWritable } from '../files.js';
import { cliJobSpec } from '../job-loader.js';
import {
  HELP,
  modelDataHelp,
  modelDataOptions,
  modelInputArgs,
  openModelAndData,
  targetOption,
} from '../model-data.js';
import { progressCallback } from '../progress.js';
import { distributionHelp, distributionOptions, parseDistribution } from '../queue-options.js';
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

export async function atlas(argv: string[], json: boolean): Promise<AtlasOutput | ShardOutput> {
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
  const dist = parseDistribution(values);
  const input = modelInputArgs(values);
  const samples = intArg('samples', values.samples, 1);
  const seed = intArg('seed', values.seed)!;
  await checkWritable('--out', values.out!, 'file');
  const { model, crp, data } = await openModelAndData(modelPath, dataSpec, {
    input,
    composite: values.composite!,
    samples,
    seed,
  });
  try {
    const graph = crp.attributor.graph;
    const target = targetArg(targetSpec, graph, data.classes);
    checkLayers('layers', layers, graph);
    const size = graphInputSize(graph);
    if (region !== undefined && size !== undefined) checkRegion(values.region!, region, size);
    workStarts();
    const source = fromTensors(data);
    const onProgress = progressCallback(region === undefined ? 'atlas' : 'region atlas', json);
    const common = { topK, onProgress, ...(layers === undefined ? {} : { layers }) };
    let result: ConceptAtlas | RegionAtlas;
    if (dist.mode === 'local') {
      const shards = dist.shardSize === undefined ? {} : { shardSize: dist.shardSize };
      result =
        region === undefined
          ? await conceptAtlas(crp, source, { ...common, ...shards, target })
          : await regionAtlas(crp, source, { ...common, ...shards, target, region });
    } else {
      // beyond this process: the same analysis as a sharded strategy (queue workers or one part of n)
      const spec = cliJobSpec(modelPath, dataSpec, {
        input,
        composite: values.composite!,
        ...(samples === undefined ? {} : { samples }),
        seed,
      });
      const { onProgress: _p, ...plain } = common;
      const ctx = { crp, model, dataset: source };
      const label = region === undefined ? 'atlas' : 'region atlas';
      const beyond =
        region === undefined
          ? await runBeyond(atlasStrategy, { ...plain, target }, dist, spec, ctx, values.out!, label, json)
          : await runBeyond(
              regionAtlasStrategy,
              { ...plain, target, region },
              dist,
              spec,
              ctx,
              values.out!,
              label,
              json,
            );
      if (!('result' in beyond)) {
        reportShard(beyond, json);
        return beyond;
      }
      result = beyond.result;
    }
    await mkdir(dirname(values.out!), { recursive: true });
    await writeJsonAtomic(values.out!, result);
    if (!json) {
      console.log(
        `concept atlas of class ${target}${values.region ? ` in ${values.region}` : ''} over ${result.samples} samples -> ${values.out}`,
      );
      for (const layer of result.layerOrder) {
        const top = result.layers[layer]!.ranking.slice(0, topK);
        console.log(
          `  ${layer}: ${top.map((e) => `${e.concept} (${formatVotes(e, result)} samples, ${e.percent.toFixed(1)}%)`).join(', ')}`,
        );
      }
    }
    return { file: values.out!, atlas: result };
  } finally {
    crp.dispose();
    model.dispose();
    disposeDataset(data);
  }
}

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  fromTensors,
  type MaximizationResult,
  maximization,
  maximizationStrategy,
  type PixelBox,
  type ReferenceImages,
  referenceImages,
  type ShardContext,
} from '@crp/attribution';
import { writeReferenceGrid } from '@crp/attribution/node';
import { writeJsonAtomic } from '@crp/common/node';
import type { ModelGraph } from '@crp/lrp';
import { intArg, numberListArg, required } from '../args.js';
import { workStarts } from '../banner.js';
import { checkLayers } from '../checks.js';
import { reportShard, runBeyond, type ShardOutput } from '../distributed.js';
import { checkWritable } from '../files.js';
import { type DatasetRunArgs, datasetJobSpec, datasetRunArgs, withDatasetRun } from '../job-loader.js';
import { modelDataHelp, modelDataOptions } from '../model-data.js';
import { progressCallback } from '../progress.js';
import { distributionHelp, distributionOptions } from '../queue-options.js';
import { UsageError } from '../usage-error.js';

export const refsUsage = `crp refs --model M --data DIR|mnist --layer L --out DIR [options]

Reference images of the channels of a layer (@crp/attribution maximization + referenceImages): for the top
samples of each channel, the receptive-field crop of the input and of its conditional heatmap, as a PNG grid.

${modelDataHelp}
  --layer L           layer (see crp layers)
  --channels 1,2      channels to show (default: every channel of the layer)
  --top-k N           top samples per channel (default 6)
  --kind K            relevance (default) or activation maximisation
  --out DIR           where <layer>.png and refs-<layer>.json go (default out/refs); with --shard, the file of
                      the part's partial maximisation (crp merge gives the maximisation tables as JSON)
${distributionHelp}`;

export interface RefSample {
  sample: number;
  label: number;
  score: number;
  box: PixelBox;
  heatmapShareInBox: number;
}

export interface RefsOutput {
  layer: string;
  kind: 'relevance' | 'activation';
  grid: string;
  file: string;
  channels: Record<number, RefSample[]>;
}

/** The command line of `crp refs`, checked. */
interface RefsArgs extends DatasetRunArgs {
  modelPath: string;
  dataSpec: string;
  layer: string;
  channels: number[] | undefined;
  topK: number;
  kind: 'relevance' | 'activation';
  out: string;
}

/** Parses and checks every argument that needs neither the model nor the data. */
function parseRefsArgs(argv: string[]): RefsArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...modelDataOptions,
      ...distributionOptions,
      layer: { type: 'string' },
      channels: { type: 'string' },
      'top-k': { type: 'string', default: '6' },
      kind: { type: 'string', default: 'relevance' },
      out: { type: 'string', default: join('out', 'refs') },
    },
  });
  const modelPath = required('model', values.model);
  const dataSpec = required('data', values.data);
  const layer = required('layer', values.layer);
  const channels = numberListArg('channels', values.channels, true);
  const topK = intArg('top-k', values['top-k'], 1)!;
  const kind = values.kind;
  if (kind !== 'relevance' && kind !== 'activation') {
    throw new UsageError(`--kind must be relevance or activation, got '${kind}'`);
  }
  return {
    modelPath,
    dataSpec,
    layer,
    channels,
    topK,
    kind,
    ...datasetRunArgs(values),
    out: values.out!,
  };
}

/** --layer must be a layer of the model and --channels channels of it. */
function checkLayerChannels(args: RefsArgs, graph: ModelGraph): void {
  checkLayers('layer', [args.layer], graph);
  const count = graph.node(args.layer).outputShape.at(-1);
  const outside = args.channels?.find((c) => typeof count === 'number' && c >= count);
  if (outside !== undefined) {
    throw new UsageError(
      `--channels ${outside}: layer ${args.layer} has ${count} channels (0 to ${Number(count) - 1})`,
    );
  }
}

/** The maximisation of the layer, here or beyond this process; the shard's output when it computed one part. */
async function maximize(
  args: RefsArgs & { compositeName: string },
  ctx: ShardContext,
  json: boolean,
): Promise<MaximizationResult | ShardOutput> {
  const { dist, layer, topK } = args;
  if (dist.mode === 'local') {
    return maximization(ctx.crp, ctx.dataset, {
      layers: [layer],
      topK,
      onProgress: progressCallback('maximization', json),
      ...(dist.shardSize === undefined ? {} : { shardSize: dist.shardSize }),
    });
  }
  const spec = datasetJobSpec(args);
  const beyond = await runBeyond(
    maximizationStrategy,
    { layers: [layer], topK },
    dist,
    spec,
    ctx,
    args.out,
    'maximization',
    json,
  );
  return 'result' in beyond ? beyond.result : beyond;
}

/** The reference grid as <layer>.png and the samples behind it as refs-<layer>.json. */
async function writeRefs(args: RefsArgs, images: ReferenceImages): Promise<RefsOutput> {
  await mkdir(args.out, { recursive: true });
  const safe = args.layer.replace(/[^\w.-]+/g, '_');
  const grid = join(args.out, `${safe}.png`);
  await writeReferenceGrid(grid, images);
  const result: RefsOutput = {
    layer: images.layer,
    kind: images.kind,
    grid,
    file: join(args.out, `refs-${safe}.json`),
    channels: Object.fromEntries(
      Object.entries(images.channels).map(([c, samples]) => [
        c,
        samples.map((s) => ({
          sample: s.sample,
          label: s.label,
          score: s.score,
          box: s.box,
          heatmapShareInBox: s.heatmapShareInBox,
        })),
      ]),
    ),
  };
  await writeJsonAtomic(result.file, result);
  return result;
}

/** `crp refs`: check everything, load, maximise (here or beyond), crop the reference images, write them. */
export async function refs(argv: string[], json: boolean): Promise<RefsOutput | ShardOutput> {
  const given = parseRefsArgs(argv);
  await checkWritable('--out', given.out, 'folder');
  return withDatasetRun(given, async (args, { model, crp, data }) => {
    checkLayerChannels(args, crp.attributor.graph);
    workStarts();
    const source = fromTensors(data);
    const max = await maximize(args, { crp, model, dataset: source }, json);
    if ('partial' in max) {
      reportShard(max, json);
      return max;
    }
    const images = await referenceImages(crp, source, max, {
      layer: args.layer,
      topK: args.topK,
      kind: args.kind,
      ...(args.channels === undefined ? {} : { channels: args.channels }),
    });
    const result = await writeRefs(args, images);
    if (!json) {
      console.log(`reference images of ${args.layer} (${args.kind}) -> ${result.grid}`);
      for (const [c, samples] of Object.entries(result.channels)) {
        console.log(`  channel ${c}: samples ${samples.map((s) => s.sample).join(', ')}`);
      }
    }
    return result;
  });
}

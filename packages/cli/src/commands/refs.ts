import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  fromTensors,
  type MaximizationResult,
  maximization,
  maximizationStrategy,
  type PixelBox,
  referenceImages,
} from '@crp/attribution';
import { writeReferenceGrid } from '@crp/attribution/node';
import { writeJsonAtomic } from '@crp/common/node';
import { disposeDataset } from '@crp/models';
import { intArg, numberListArg, required } from '../args.js';
import { workStarts } from '../banner.js';
import { checkLayers } from '../checks.js';
import { reportShard, runBeyond, type ShardOutput } from '../distributed.js';
import { checkWritable } from '../files.js';
import { cliJobSpec } from '../job-loader.js';
import { modelDataHelp, modelDataOptions, modelInputArgs, openModelAndData } from '../model-data.js';
import { progressCallback } from '../progress.js';
import { distributionHelp, distributionOptions, parseDistribution } from '../queue-options.js';
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

export async function refs(argv: string[], json: boolean): Promise<RefsOutput | ShardOutput> {
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
  const dist = parseDistribution(values);
  const input = modelInputArgs(values);
  const samples = intArg('samples', values.samples, 1);
  const seed = intArg('seed', values.seed)!;
  await checkWritable('--out', values.out!, 'folder');
  const { model, crp, data } = await openModelAndData(modelPath, dataSpec, {
    input,
    composite: values.composite!,
    samples,
    seed,
  });
  try {
    const graph = crp.attributor.graph;
    checkLayers('layer', [layer], graph);
    const count = graph.node(layer).outputShape.at(-1);
    const outside = channels?.find((c) => typeof count === 'number' && c >= count);
    if (outside !== undefined) {
      throw new UsageError(
        `--channels ${outside}: layer ${layer} has ${count} channels (0 to ${Number(count) - 1})`,
      );
    }
    workStarts();
    const source = fromTensors(data);
    let max: MaximizationResult;
    if (dist.mode === 'local') {
      max = await maximization(crp, source, {
        layers: [layer],
        topK,
        onProgress: progressCallback('maximization', json),
        ...(dist.shardSize === undefined ? {} : { shardSize: dist.shardSize }),
      });
    } else {
      const spec = cliJobSpec(modelPath, dataSpec, {
        input,
        composite: values.composite!,
        ...(samples === undefined ? {} : { samples }),
        seed,
      });
      const ctx = { crp, model, dataset: source };
      const beyond = await runBeyond(
        maximizationStrategy,
        { layers: [layer], topK },
        dist,
        spec,
        ctx,
        values.out!,
        'maximization',
        json,
      );
      if (!('result' in beyond)) {
        reportShard(beyond, json);
        return beyond;
      }
      max = beyond.result;
    }
    const images = await referenceImages(crp, source, max, {
      layer,
      topK,
      kind,
      ...(channels === undefined ? {} : { channels }),
    });
    const out = values.out!;
    await mkdir(out, { recursive: true });
    const safe = layer.replace(/[^\w.-]+/g, '_');
    const grid = join(out, `${safe}.png`);
    await writeReferenceGrid(grid, images);
    const result: RefsOutput = {
      layer: images.layer,
      kind: images.kind,
      grid,
      file: join(out, `refs-${safe}.json`),
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
    if (!json) {
      console.log(`reference images of ${layer} (${kind}) -> ${grid}`);
      for (const [c, samples] of Object.entries(result.channels)) {
        console.log(`  channel ${c}: samples ${samples.map((s) => s.sample).join(', ')}`);
      }
    }
    return result;
  } finally {
    crp.dispose();
    model.dispose();
    disposeDataset(data);
  }
}

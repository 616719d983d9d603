import { fromTensors, regionAtlas } from '@crp/attribution';
import { CondAttribution, disposeCondResult } from '@crp/core';
import { disposeResult, resnetCanonizer } from '@crp/lrp';
import { importTorchResNet } from '@crp/models';
// as a Node user reads a file: node:zlib's native CRC-32 for the zip entries
import '@crp/models/node';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type BenchResult, result, type SuiteContext, timeRunsCpu } from '../measure.js';
import { BENCH_RESNETS, benchResNetHeatmap, benchResNetStateDict, pthBytes } from '../torch-fixtures.js';
import { type AnchorFigure, type AnchorRun, anchorResult, ratio, runZennitAnchor } from './zennit-anchor.js';

/** What bench/anchors/zennit_resnet.py prints. */
interface Anchor extends AnchorRun {
  heatmapMs: AnchorFigure;
  crp8RecordAllConvsMs: AnchorFigure;
  pthLoadMs: AnchorFigure;
}

/** zennit's and zennit-crp's figures of the same workloads, measured now (before ours) by
 * bench/anchors/zennit_resnet.py on Debian's PyTorch with our thread count; a reason instead when it cannot run. */
function anchor(log: (s: string) => void, model: string, size: number, threads: number): Anchor | string {
  return runZennitAnchor<Anchor>(log, 'zennit_resnet.py', [
    '--model',
    model,
    '--size',
    String(size),
    '--threads',
    String(threads),
  ]);
}

function convLayers(model: LayersModel): string[] {
  return model.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => l.name);
}

/**
 * torchvision ResNets from .pth (issue 21, deliverable 7): load time, LRP heatmap, CRP with 8 conditions recording
 * every conv, and the region atlas of one image over every channel of every conv; zennit's and zennit-crp's
 * figures of the same workloads measured in the same run (bench/anchors/zennit_resnet.py). Weights of the seeded
 * formula (@crp/testing/torch-weights), 10 classes.
 */
export async function resnetSuite({ log, quick, threads }: SuiteContext): Promise<BenchResult[]> {
  const name = quick ? 'resnet18' : 'resnet50';
  const size = quick ? 64 : 224;
  const spec = BENCH_RESNETS[name];
  const results: BenchResult[] = [];
  const ran = anchor(log, name, size, threads);
  const zennit = typeof ran === 'string' ? undefined : ran;
  const why = typeof ran === 'string' ? ran : '';
  const key = `resnet.${name}_${size}`;

  log(`${name}: .pth bytes...`);
  const bytes = pthBytes(benchResNetStateDict(spec));
  const load = await timeRunsCpu(async () => {
    (await importTorchResNet(bytes, { inputSize: size })).dispose();
  });
  results.push(
    result(
      `resnet.${name}.pth_load_ms`,
      'ms',
      load.runs,
      `${(bytes.length / 2 ** 20).toFixed(0)} MiB in memory, parse + build the model (goal < 1 s); ${ratio(load, zennit?.pthLoadMs, 'torch.load', why)}`,
    ),
  );

  // the attributor goes after the heatmaps; model and image serve CRP and the region atlas too
  const { model, image, lrp } = await benchResNetHeatmap(spec, size, bytes);
  log(`${name} ${size}px: LRP heatmap (EpsilonPlusFlat, ResNet canonizer)...`);
  const heatmap = await timeRunsCpu(() => {
    const r = lrp.attribute(image, { target: 0 });
    r.relevance.dataSync();
    disposeResult(r);
  });
  lrp.dispose();
  results.push(
    result(
      `${key}.epsilon_plus_flat.latency_ms`,
      'ms',
      heatmap.runs,
      `one image; ${ratio(heatmap, zennit?.heatmapMs, 'zennit', why)} (goal <= 1)`,
    ),
  );

  log(`${name} ${size}px: CRP, 8 conditions, relevance of every conv recorded...`);
  const convs = convLayers(model);
  const last = convs[convs.length - 1]!;
  const conditions = Array.from({ length: 8 }, (_, k) => ({ y: [k % 3], [last]: [k * 7] }));
  const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat', canonizers: [resnetCanonizer()] });
  const crp8 = await timeRunsCpu(() => {
    const r = crp.run(image, conditions, { recordLayers: convs });
    r.heatmap!.dataSync();
    disposeCondResult(r);
  });
  results.push(
    result(
      `${key}.crp_8_conditions_record_all_convs_ms`,
      'ms',
      crp8.runs,
      `${convs.length} convs recorded, conditions on ${last}; ${ratio(crp8, zennit?.crp8RecordAllConvsMs, 'zennit-crp', why)} (goal <= 0.5)`,
    ),
  );

  // zennit-crp's region relevance of a concept is one conditional backward pass per channel; ours gives every
  // channel of every layer from one forward, one backward and one adjoint pass
  const channels = convs.reduce((n, l) => n + (model.getLayer(l).outputShape.at(-1) as number), 0);
  log(
    `${name} ${size}px: region atlas of one image, every channel of all ${convs.length} convs (${channels})...`,
  );
  const data = fromTensors(image, [0]);
  const region = { centerSquare: Math.round(size / 2) };
  const atlas = await timeRunsCpu(async () => {
    await regionAtlas(crp, data, { target: 0, region, layers: convs, batchSize: 1 });
  });
  crp.dispose();
  const perCondition = zennit === undefined ? undefined : zennit.crp8RecordAllConvsMs.median / 8;
  results.push(
    result(
      `${key}.region_atlas_all_conv_channels_ms`,
      'ms',
      atlas.runs,
      `one image, centre ${region.centerSquare}x${region.centerSquare}, ${channels} channels of ${convs.length} convs (goal < 5,000), CPU ${atlas.cpu.toFixed(0)} ms` +
        (perCondition === undefined
          ? ''
          : `; zennit-crp one backward pass per channel: ~${Math.round((perCondition * channels) / 1000)} s extrapolated`),
    ),
  );
  if (zennit !== undefined) {
    results.push(
      anchorResult(`${key}.zennit.epsilon_plus_flat.latency_ms`, zennit.heatmapMs, zennit, 'zennit 0.5.1'),
      anchorResult(
        `${key}.zennit_crp.crp_8_conditions_record_all_convs_ms`,
        zennit.crp8RecordAllConvsMs,
        zennit,
        'zennit-crp',
      ),
      anchorResult(`resnet.${name}.torch_load_ms`, zennit.pthLoadMs, zennit, 'torch.load of the same bytes'),
    );
  }
  image.dispose();
  model.dispose();
  return results;
}

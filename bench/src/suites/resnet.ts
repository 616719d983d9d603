import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CondAttribution, disposeCondResult } from '@crp/core';
import { Attributor, disposeResult, resnetCanonizer } from '@crp/lrp';
import {
  encodeTorchStateDict,
  importTorchResNet,
  type StateDict,
  type TorchResNetSpec,
  type TorchTensor,
  torchResNetShapes,
} from '@crp/models';
import { formulaInput, formulaStateDict } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type BenchResult, result, type SuiteContext, timeRuns } from '../measure.js';

const here = dirname(fileURLToPath(import.meta.url));

/** zennit's figures of the same workloads, measured now by bench/anchor/zennit_resnet.py when CRP_ZENNIT_SRC and
 * CRP_ZENNIT_CRP_SRC name the reference sources; undefined (and said so in the notes) otherwise. */
function anchor(
  log: (s: string) => void,
  model: string,
  size: number,
): { heatmapMs: number; crp8RecordAllConvsMs: number; pthLoadMs: number } | undefined {
  const zennit = process.env.CRP_ZENNIT_SRC;
  const crp = process.env.CRP_ZENNIT_CRP_SRC;
  if (zennit === undefined || crp === undefined) return undefined;
  log(`anchor: zennit on PyTorch (${model}, ${size}px)...`);
  const script = join(here, '..', '..', 'anchor', 'zennit_resnet.py');
  const run = spawnSync(
    'python3',
    [script, '--zennit', zennit, '--crp', crp, '--model', model, '--size', String(size)],
    { encoding: 'utf8' },
  );
  if (run.status !== 0) {
    log(`anchor failed: ${run.stderr.slice(-500)}`);
    return undefined;
  }
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!);
}

function ratio(ours: number, theirs: number | undefined, name: string): string {
  return theirs === undefined
    ? `${name}: anchor not run (set CRP_ZENNIT_SRC and CRP_ZENNIT_CRP_SRC)`
    : `${name} ${theirs.toFixed(0)} ms this run; ratio ours/zennit ${(ours / theirs).toFixed(2)}`;
}

/** The state dict as .pth bytes (what torch.save writes for it). */
function pthBytes(sd: StateDict): Uint8Array {
  const tensors = new Map<string, TorchTensor>();
  for (const name of sd.names) {
    const shape = sd.entry(name).shape;
    tensors.set(
      name,
      name.endsWith('num_batches_tracked')
        ? { shape, data: new BigInt64Array(1) }
        : { shape, data: sd.float32(name) },
    );
  }
  return encodeTorchStateDict(tensors);
}

function convLayers(model: LayersModel): string[] {
  return model.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => l.name);
}

/** torchvision ResNets from .pth: load time, LRP heatmap, CRP with 8 conditions recording every conv. Weights of the
 * seeded formula (@crp/testing/torch-weights), 10 classes. */
export async function resnetSuite({ log, quick }: SuiteContext): Promise<BenchResult[]> {
  const name = quick ? 'resnet18' : 'resnet50';
  const size = quick ? 64 : 224;
  const spec: TorchResNetSpec = quick
    ? { block: 'basic', layers: [2, 2, 2, 2], classes: 10 }
    : { block: 'bottleneck', layers: [3, 4, 6, 3], classes: 10 };
  const results: BenchResult[] = [];
  const zennit = anchor(log, name, size);

  log(`${name}: .pth bytes...`);
  const bytes = pthBytes(formulaStateDict(torchResNetShapes(spec), 50) as StateDict);
  const load = await timeRuns(async () => {
    (await importTorchResNet(bytes, { inputSize: size })).dispose();
  });
  results.push(
    result(
      `resnet.${name}.pth_load_ms`,
      'ms',
      load.runs,
      `${(bytes.length / 2 ** 20).toFixed(0)} MiB in memory, parse + build (goal < 1 s); ${ratio(load.median, zennit?.pthLoadMs, 'torch.load')}`,
    ),
  );

  const model = await importTorchResNet(bytes, { inputSize: size });
  const image = tf.tidy(() =>
    tf.transpose(tf.tensor4d(formulaInput([1, 3, size, size], size), [1, 3, size, size]), [0, 2, 3, 1]),
  );
  log(`${name} ${size}px: LRP heatmap (EpsilonPlusFlat, ResNet canonizer)...`);
  const lrp = new Attributor(model, { composite: 'epsilon_plus_flat', canonizers: [resnetCanonizer()] });
  const heatmap = await timeRuns(() => {
    const r = lrp.attribute(image, { target: 0 });
    r.relevance.dataSync();
    disposeResult(r);
  });
  lrp.dispose();
  results.push(
    result(
      `resnet.${name}_${size}.epsilon_plus_flat.latency_ms`,
      'ms',
      heatmap.runs,
      ratio(heatmap.median, zennit?.heatmapMs, 'zennit'),
    ),
  );

  log(`${name} ${size}px: CRP, 8 conditions, relevance of every conv recorded...`);
  const convs = convLayers(model);
  const last = convs[convs.length - 1]!;
  const conditions = Array.from({ length: 8 }, (_, k) => ({ y: [k % 3], [last]: [k * 7] }));
  const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat', canonizers: [resnetCanonizer()] });
  const crp8 = await timeRuns(() => {
    const r = crp.run(image, conditions, { recordLayers: convs });
    r.heatmap!.dataSync();
    disposeCondResult(r);
  });
  crp.dispose();
  results.push(
    result(
      `resnet.${name}_${size}.crp_8_conditions_record_all_convs_ms`,
      'ms',
      crp8.runs,
      `${convs.length} convs recorded; ${ratio(crp8.median, zennit?.crp8RecordAllConvsMs, 'zennit-crp')} (goal >= 2x faster)`,
    ),
  );
  image.dispose();
  model.dispose();
  return results;
}

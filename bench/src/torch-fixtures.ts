/**
 * What the bench scripts share to build torchvision models from seeded formulas (@crp/testing) and to run the
 * study on them: vit_b_16's shape, the bench VGGs and ResNets, a state dict as the bytes torch.save writes, and a
 * timed `crp study` process.
 */
import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { Attributor, resnetCanonizer } from '@crp/lrp';
import {
  encodeTorchStateDict,
  importTorchResNet,
  type TorchResNetSpec,
  type TorchTensor,
  torchResNetShapes,
  torchVggFromStateDict,
  VIT_CONFIGS,
  type VitConfig,
} from '@crp/models';
import { formulaImage, formulaStateDict } from '@crp/testing/torch-weights';
import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, Sequential } from '@tensorflow/tfjs-layers';

/** torchvision's vit_b_16 at 224 px with 1000 classes (LayerNorm epsilon 1e-6), with `overrides`. */
export function vitB16Config(overrides: Partial<VitConfig> = {}): VitConfig {
  return { ...VIT_CONFIGS.vit_b_16, imageSize: 224, numClasses: 1000, layerNormEpsilon: 1e-6, ...overrides };
}

/** A state dict (names, shapes, float32 values; BN's `num_batches_tracked` as int64) as .pth bytes. */
export function pthBytes(sd: {
  names: readonly string[];
  entry(name: string): { shape: readonly number[] };
  float32(name: string): Float32Array;
}): Uint8Array {
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

/** Writes {@link pthBytes} of the state dict to `path`. */
export async function writePth(path: string, sd: Parameters<typeof pthBytes>[0]): Promise<void> {
  await writeFile(path, pthBytes(sd));
}

/** The VGGs of the `lrp` and `crp` suites and of their anchor, bench/anchors/zennit_vgg.py (which builds the same
 * in PyTorch: keep the two in step): torchvision's vgg16 at 224 px, 1000 classes, and the small VGG of @crp/models
 * (`smallVgg`) at 64 px, 10 classes, with their weight seeds. */
export const BENCH_VGGS = {
  vgg16_224: {
    cfg: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
    size: 224,
    hidden: [4096, 4096],
    classes: 1000,
    dropout: true,
    seed: 1,
  },
  small_vgg_64: {
    cfg: [32, 32, 'M', 64, 64, 'M', 128, 'M'],
    size: 64,
    hidden: [128],
    classes: 10,
    dropout: false,
    seed: 2,
  },
} as const satisfies Record<string, BenchVgg>;

interface BenchVgg {
  cfg: readonly (number | 'M')[];
  size: number;
  /** Widths of the hidden Linear layers of `classifier`. */
  hidden: readonly number[];
  classes: number;
  /** Dropout after each hidden Linear's ReLU (torchvision's classifier): shifts the Linear layers' indices. */
  dropout: boolean;
  seed: number;
}

/** The state-dict names and shapes of a torchvision-style VGG (`features.N`, `classifier.N`; 3x3 convs, 3 input
 * channels, no adaptive pool needed: the last feature map is what `classifier.0` takes). */
function torchVggShapes(vgg: BenchVgg): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  let channels = 3;
  let side = vgg.size;
  let index = 0;
  for (const v of vgg.cfg) {
    if (v === 'M') {
      side /= 2;
      index += 1;
      continue;
    }
    shapes.set(`features.${index}.weight`, [v, channels, 3, 3]);
    shapes.set(`features.${index}.bias`, [v]);
    channels = v;
    index += 2; // the conv and its ReLU
  }
  let units = channels * side * side;
  index = 0;
  for (const out of [...vgg.hidden, vgg.classes]) {
    shapes.set(`classifier.${index}.weight`, [out, units]);
    shapes.set(`classifier.${index}.bias`, [out]);
    units = out;
    index += vgg.dropout ? 3 : 2; // Linear, ReLU[, Dropout]
  }
  return shapes;
}

/** One of {@link BENCH_VGGS} with the weights of the seeded formula of @crp/testing/torch-weights (the values
 * zennit_vgg.py's `fill` gives the PyTorch model), with names in the style of `vgg()` (`block5_conv3`, `fc1`,
 * `predictions`). The caller owns the model. */
export function benchVgg(name: keyof typeof BENCH_VGGS): Sequential {
  const vgg = BENCH_VGGS[name];
  return torchVggFromStateDict(formulaStateDict(torchVggShapes(vgg), vgg.seed), {
    inputSize: vgg.size,
    layerNames: 'keras',
  });
}

/** The image of a bench VGG's workload: zennit_vgg.py's formula_input((n, 3, size, size), seed), as NHWC. */
export function benchVggImage(name: keyof typeof BENCH_VGGS, n: number, seed: number): tf.Tensor4D {
  return formulaImage(n, BENCH_VGGS[name].size, seed);
}

/** The ResNets of the bench's ResNet workloads (the `resnet` suite, resnet-kernels, resnet-js-profile; resnet-study
 * with 2 classes) and of their anchor, bench/anchors/zennit_resnet.py: torchvision's layouts, 10 classes. */
export const BENCH_RESNETS = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2], classes: 10 },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3], classes: 10 },
} as const satisfies Record<string, TorchResNetSpec>;

/** A ResNet's state dict with the weights of the seeded formula of @crp/testing/torch-weights (seed 50, the values
 * zennit_resnet.py gives the PyTorch model). */
export function benchResNetStateDict(spec: TorchResNetSpec): ReturnType<typeof formulaStateDict> {
  return formulaStateDict(torchResNetShapes(spec), 50);
}

/** The LRP heatmap workload of a bench ResNet: the model read from its .pth bytes, the formula image and the
 * attributor; `dispose` frees all three. */
export interface BenchResNetHeatmap {
  model: LayersModel;
  /** formula_input((1, 3, size, size)) as NHWC. */
  image: tf.Tensor4D;
  /** EpsilonPlusFlat under the ResNet canonizer. */
  lrp: Attributor;
  dispose(): void;
}

/** {@link BenchResNetHeatmap} of `spec` at `size` px, read from `bytes` (default: the .pth bytes of
 * {@link benchResNetStateDict}). */
export async function benchResNetHeatmap(
  spec: TorchResNetSpec,
  size: number,
  bytes: Uint8Array = pthBytes(benchResNetStateDict(spec)),
): Promise<BenchResNetHeatmap> {
  const model = await importTorchResNet(bytes, { inputSize: size });
  const image = formulaImage(1, size, size);
  const lrp = new Attributor(model, { composite: 'epsilon_plus_flat', canonizers: [resnetCanonizer()] });
  return {
    model,
    image,
    lrp,
    dispose() {
      lrp.dispose();
      image.dispose();
      model.dispose();
    },
  };
}

const loadAverage = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join('/');

/**
 * Runs `node <args>` (the CLI's bin and its arguments), prints the load average before and after and the wall
 * time under `label`, removes `dir` unless `keep`, and exits with the process's code.
 */
export async function timeStudy(label: string, args: string[], dir: string, keep: boolean): Promise<never> {
  console.log(`load average ${loadAverage()}; crp ${args.slice(1).join(' ')}`);
  const t0 = performance.now();
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('close', (c) => resolve(c ?? 1));
  });
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `${label} study: exit ${code}, ${seconds.toFixed(1)} s wall; load average ${loadAverage()}${keep ? `; outputs in ${dir}` : ''}`,
  );
  if (!keep) await rm(dir, { recursive: true, force: true });
  process.exit(code);
}

import { CrpError } from '@crp/common';
import * as tfl from '@tensorflow/tfjs-layers';

/** Convolution widths per block of the VGG configurations (Simonyan & Zisserman 2015; torchvision's A/B/D/E). */
export const VGG_CONFIGS = {
  vgg11: [[64], [128], [256, 256], [512, 512], [512, 512]],
  vgg13: [
    [64, 64],
    [128, 128],
    [256, 256],
    [512, 512],
    [512, 512],
  ],
  vgg16: [
    [64, 64],
    [128, 128],
    [256, 256, 256],
    [512, 512, 512],
    [512, 512, 512],
  ],
  vgg19: [
    [64, 64],
    [128, 128],
    [256, 256, 256, 256],
    [512, 512, 512, 512],
    [512, 512, 512, 512],
  ],
} as const;

export type VggName = keyof typeof VGG_CONFIGS;

export interface VggOptions {
  /** Input [height, width, channels]; default [224, 224, 3]. */
  inputShape?: [number, number, number];
  /** Number of classes; default 1000. */
  classes?: number;
  /** BatchNormalization after every conv (the `_bn` variants). Default false. */
  batchNorm?: boolean;
  /** Widths of the two hidden dense layers; default [4096, 4096]. */
  hidden?: number[];
  /** Dropout rate of the classifier (inactive at inference). Default 0.5. */
  dropout?: number;
  /** Seed of the weight initialisers (He-normal kernels, zero biases). Default 0. */
  seed?: number;
}

/**
 * A VGG network as a TF.js Sequential model, with names that read well: `block{b}_conv{i}`,
 * `block{b}_bn{i}`, `block{b}_relu{i}`, `block{b}_pool`, `flatten`, `fc1`, `fc1_relu`, `fc2`, `fc2_relu`,
 * `predictions` (logits; no softmax, so LRP explains the logits). ReLUs are separate layers, as in
 * torchvision, so every layer output can be recorded.
 */
export function vgg(name: VggName, options: VggOptions = {}): tfl.Sequential {
  const config = VGG_CONFIGS[name];
  if (config === undefined) {
    throw new CrpError(
      'invalid-argument',
      `unknown VGG '${String(name)}'; valid: ${Object.keys(VGG_CONFIGS).join(', ')}`,
    );
  }
  return vggFromBlocks(
    config.map((b) => [...b]),
    { hidden: [4096, 4096], classes: 1000, ...options },
    name,
  );
}

/** A VGG-style network from explicit conv widths per block (each block ends in a 2x2 max pool). */
export function vggFromBlocks(
  blocks: number[][],
  options: VggOptions = {},
  modelName = 'vgg',
): tfl.Sequential {
  const inputShape = options.inputShape ?? [224, 224, 3];
  const seed = options.seed ?? 0;
  let layerSeed = seed * 1000;
  const he = () => tfl.initializers.heNormal({ seed: layerSeed++ });
  const model = tfl.sequential({ name: modelName });
  let first = true;
  blocks.forEach((widths, bi) => {
    widths.forEach((filters, ci) => {
      const b = bi + 1;
      const i = ci + 1;
      model.add(
        tfl.layers.conv2d({
          ...(first ? { inputShape } : {}),
          name: `block${b}_conv${i}`,
          filters,
          kernelSize: 3,
          padding: 'same',
          kernelInitializer: he(),
        }),
      );
      first = false;
      if (options.batchNorm) model.add(tfl.layers.batchNormalization({ name: `block${b}_bn${i}` }));
      model.add(tfl.layers.reLU({ name: `block${b}_relu${i}` }));
    });
    model.add(tfl.layers.maxPooling2d({ name: `block${bi + 1}_pool`, poolSize: 2, strides: 2 }));
  });
  model.add(tfl.layers.flatten({ name: 'flatten' }));
  const hidden = options.hidden ?? [4096, 4096];
  hidden.forEach((units, k) => {
    model.add(tfl.layers.dense({ name: `fc${k + 1}`, units, kernelInitializer: he() }));
    model.add(tfl.layers.reLU({ name: `fc${k + 1}_relu` }));
    if ((options.dropout ?? 0.5) > 0)
      model.add(tfl.layers.dropout({ name: `fc${k + 1}_dropout`, rate: options.dropout ?? 0.5 }));
  });
  model.add(
    tfl.layers.dense({ name: 'predictions', units: options.classes ?? 1000, kernelInitializer: he() }),
  );
  return model;
}

/**
 * The small VGG of the benchmarks: conv 32-32-M-64-64-M-128-M, Dense 8192->128->10 on 64x64x3 input
 * (any input size and class count can be given).
 */
export function smallVgg(options: VggOptions = {}): tfl.Sequential {
  return vggFromBlocks(
    [[32, 32], [64, 64], [128]],
    {
      inputShape: [64, 64, 3],
      classes: 10,
      hidden: [128],
      dropout: 0,
      ...options,
    },
    'small_vgg',
  );
}

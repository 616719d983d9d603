import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { SafetensorsFile } from './safetensors.js';

/** Options of {@link importTorchVgg}. */
export interface TorchVggOptions {
  /**
   * Input [height, width, channels] of the TF.js model. Default: 224x224 with the channels of `features.0`.
   * The feature map after the last pool must equal the size that `classifier.0` expects (then PyTorch's
   * `AdaptiveAvgPool2d` is an identity and is left out) or be a whole multiple of it (then it becomes an
   * `AveragePooling2D` named `avgpool`).
   */
  inputShape?: [number, number, number];
  /**
   * `'keras'` (default): names that read well, as {@link vgg} gives them (`block1_conv1`, `block1_bn1`,
   * `block1_relu1`, `block1_pool`, `avgpool`, `flatten`, `fc1`, `fc1_relu`, `fc1_dropout`, ..., `predictions`).
   * `'torch'`: the module names of the PyTorch model (`features.0`, `features.1`, ..., `avgpool`, `flatten`,
   * `classifier.0`, ...), handy to compare layer by layer with zennit.
   */
  layerNames?: 'keras' | 'torch';
  /**
   * The torchvision configuration (`[64, 'M', 128, 'M', ...]`). By default it is read from the tensor names,
   * assuming one max pool at the end of `features`, as in every torchvision VGG; give it when the model
   * differs. Batch norm is always read from the tensors.
   */
  cfg?: readonly (number | 'M')[];
  /** Dropout rate of the classifier's Dropout layers (inactive at inference; not stored in the file). Default 0.5. */
  dropout?: number;
  /** Epsilon of the batch norms; default 1e-5 (torch's). */
  batchNormEpsilon?: number;
  /** Name of the TF.js model; default `'vgg'`. */
  name?: string;
}

type Feature =
  | { kind: 'conv'; index: number; out: number; in: number; kh: number; kw: number; bn: number | undefined }
  | { kind: 'pool'; index: number };

function fail(message: string): never {
  throw new CrpError('unsupported-model', message);
}

/** Finds the prefix before `features.` (`''`, `'model.'`, `'module.'`, ...). */
function findPrefix(file: SafetensorsFile): string {
  const key = file.names.find((n) => /(^|\.)features\.\d+\.weight$/.test(n));
  if (key === undefined) {
    const shown = file.names.slice(0, 12).join(', ');
    fail(
      `no torchvision VGG in the safetensors file: no 'features.N.weight' tensor (it has: ${shown}${file.names.length > 12 ? ', ...' : ''}); valid: a state_dict of torchvision.models.vgg*`,
    );
  }
  return key.slice(0, key.lastIndexOf('features.'));
}

function indices(
  file: SafetensorsFile,
  prefix: string,
  part: 'features' | 'classifier',
): Map<number, Set<string>> {
  const found = new Map<number, Set<string>>();
  const re = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${part}\\.(\\d+)\\.(\\w+)$`);
  for (const name of file.names) {
    const m = re.exec(name);
    if (m === null) continue;
    const i = Number(m[1]);
    if (!found.has(i)) found.set(i, new Set());
    found.get(i)!.add(m[2]!);
  }
  return found;
}

/** Reads the structure of `features` from the tensor names and shapes. */
function readFeatures(
  file: SafetensorsFile,
  prefix: string,
  cfg: readonly (number | 'M')[] | undefined,
): Feature[] {
  const params = indices(file, prefix, 'features');
  const order = [...params.keys()].sort((a, b) => a - b);
  const features: Feature[] = [];
  let next = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    const names = params.get(i)!;
    if (names.has('running_mean')) {
      // a BatchNorm2d belongs to the conv just before it (consumed below)
      if (!params.has(i - 1) || params.get(i - 1)!.has('running_mean')) {
        fail(
          `features.${i} is a BatchNorm2d that does not follow a Conv2d; valid: Conv2d, BatchNorm2d, ReLU`,
        );
      }
      continue;
    }
    const shape = file.entry(`${prefix}features.${i}.weight`).shape;
    if (shape.length !== 4)
      fail(
        `features.${i}.weight has shape [${shape.join(', ')}]; a Conv2d weight [out, in, kh, kw] is needed`,
      );
    for (; next < i; next++) features.push({ kind: 'pool', index: next });
    const hasBn = params.get(i + 1)?.has('running_mean') === true;
    const [out, inC, kh, kw] = shape as [number, number, number, number];
    if (kh % 2 === 0 || kw % 2 === 0) {
      fail(
        `features.${i} has a ${kh}x${kw} kernel; only odd kernels (padded to keep the size, as in VGG) are supported`,
      );
    }
    features.push({ kind: 'conv', index: i, out, in: inC, kh, kw, bn: hasBn ? i + 1 : undefined });
    next = i + (hasBn ? 3 : 2); // conv, [bn], relu
  }
  if (features.length === 0) fail(`no Conv2d in features (tensors: ${file.names.slice(0, 12).join(', ')})`);
  if (cfg === undefined) {
    features.push({ kind: 'pool', index: next }); // torchvision's features end with 'M'
    return features;
  }
  // an explicit cfg: check it against the tensors and take its pools
  const convs = features.filter((f) => f.kind === 'conv');
  const widths = cfg.filter((v): v is number => v !== 'M');
  if (widths.length !== convs.length || widths.some((w, j) => w !== convs[j]!.out)) {
    fail(
      `cfg [${cfg.join(', ')}] does not match the file, whose convolutions have ${convs.map((c) => c.out).join(', ')} filters`,
    );
  }
  const result: Feature[] = [];
  let c = 0;
  let index = 0;
  for (const v of cfg) {
    if (v === 'M') {
      result.push({ kind: 'pool', index });
      index++;
    } else {
      const conv = convs[c++]!;
      if (conv.index !== index) {
        fail(
          `cfg [${cfg.join(', ')}] puts conv ${c} at features.${index}, but the file has it at features.${conv.index}`,
        );
      }
      result.push(conv);
      index += conv.bn === undefined ? 2 : 3;
    }
  }
  return result;
}

interface Linear {
  index: number;
  out: number;
  in: number;
}

function readClassifier(file: SafetensorsFile, prefix: string): Linear[] {
  const params = indices(file, prefix, 'classifier');
  const order = [...params.keys()].sort((a, b) => a - b);
  if (order.length === 0)
    fail(
      `no 'classifier.N.weight' tensors; a torchvision VGG classifier (Linear, ReLU, Dropout, ...) is needed`,
    );
  return order.map((i) => {
    const shape = file.entry(`${prefix}classifier.${i}.weight`).shape;
    if (shape.length !== 2)
      fail(`classifier.${i}.weight has shape [${shape.join(', ')}]; a Linear weight [out, in] is needed`);
    return { index: i, out: shape[0]!, in: shape[1]! };
  });
}

/** Keras-like or torch names for each layer. */
class Namer {
  private block = 1;
  private conv = 0;
  private fc = 0;
  constructor(private readonly torch: boolean) {}
  conv2d(f: { index: number }): string {
    this.conv++;
    return this.torch ? `features.${f.index}` : `block${this.block}_conv${this.conv}`;
  }
  bn(index: number): string {
    return this.torch ? `features.${index}` : `block${this.block}_bn${this.conv}`;
  }
  convRelu(index: number): string {
    return this.torch ? `features.${index}` : `block${this.block}_relu${this.conv}`;
  }
  pool(index: number): string {
    const name = this.torch ? `features.${index}` : `block${this.block}_pool`;
    this.block++;
    this.conv = 0;
    return name;
  }
  dense(index: number, last: boolean): string {
    this.fc++;
    if (this.torch) return `classifier.${index}`;
    return last ? 'predictions' : `fc${this.fc}`;
  }
  denseRelu(index: number): string {
    return this.torch ? `classifier.${index}` : `fc${this.fc}_relu`;
  }
  dropout(index: number, k: number): string {
    return this.torch ? `classifier.${index}` : `fc${this.fc}_dropout${k > 0 ? k + 1 : ''}`;
  }
}

/**
 * Builds a TF.js model from the state_dict of a torchvision-style VGG (`features.N.*`, `classifier.N.*`, with or
 * without batch norm; a prefix such as `module.` is found and ignored):
 * Conv2d(+BatchNorm2d)+ReLU ... MaxPool2d, AdaptiveAvgPool2d, flatten, Linear/ReLU/Dropout. Conv kernels go from
 * PyTorch's [out, in, kh, kw] to TF.js' [kh, kw, in, out]; the rows of the first Linear are permuted because torch
 * flattens (c, h, w) and TF.js (h, w, c); the other Linear weights are transposed. The result takes NHWC input
 * with the same preprocessing as the PyTorch model, and gives the same logits (no softmax).
 *
 * @returns a new model that the caller owns (`dispose()` it)
 * @throws CrpError `unsupported-model` for tensors that do not form such a VGG, `invalid-shape` for an input size
 *   whose feature map cannot be pooled to what the classifier expects (the message says which sizes work).
 */
export function torchVggFromSafetensors(
  file: SafetensorsFile,
  options: TorchVggOptions = {},
): tfl.Sequential {
  const prefix = findPrefix(file);
  const features = readFeatures(file, prefix, options.cfg);
  const linears = readClassifier(file, prefix);
  const convs = features.filter((f) => f.kind === 'conv');
  const inChannels = convs[0]!.in;
  const [height, width, channels] = options.inputShape ?? [224, 224, inChannels];
  if (channels !== inChannels) {
    throw new CrpError(
      'invalid-shape',
      `inputShape has ${channels} channels but features.${convs[0]!.index} takes ${inChannels}; valid: [h, w, ${inChannels}]`,
    );
  }
  let c = inChannels;
  for (const conv of convs) {
    if (conv.in !== c)
      fail(`features.${conv.index} takes ${conv.in} channels but the layer before gives ${c}`);
    c = conv.out;
  }
  const pools = features.filter((f) => f.kind === 'pool').length;
  let fh = height;
  let fw = width;
  for (let p = 0; p < pools; p++) {
    fh = Math.floor(fh / 2);
    fw = Math.floor(fw / 2);
  }
  const first = linears[0]!;
  const side = Math.round(Math.sqrt(first.in / c));
  if (side * side * c !== first.in) {
    fail(
      `classifier.${first.index} takes ${first.in} features, which is not ${c} channels times a square pool size`,
    );
  }
  if (fh < side || fw < side || fh % side !== 0 || fw % side !== 0) {
    const unit = side * 2 ** pools;
    throw new CrpError(
      'invalid-shape',
      `an input of ${height}x${width} gives a ${fh}x${fw} feature map, which PyTorch's AdaptiveAvgPool2d would pool to ${side}x${side} with uneven windows (not supported here); valid: inputShape sides that are multiples of ${unit} (${side}x${side} feature map${unit === 224 ? ', e.g. 224x224' : ''}, or a whole multiple of it)`,
    );
  }

  const torchNames = options.layerNames === 'torch';
  if (options.layerNames !== undefined && options.layerNames !== 'keras' && !torchNames) {
    throw new CrpError(
      'invalid-argument',
      `layerNames '${String(options.layerNames)}' is unknown; valid: keras, torch`,
    );
  }
  const namer = new Namer(torchNames);
  const epsilon = options.batchNormEpsilon ?? 1e-5;
  const model = tfl.sequential({ name: options.name ?? 'vgg' });
  const weights: { layer: string; values: () => tf.Tensor[] }[] = [];
  const t = (name: string, shape: number[]) => tf.tensor(file.float32(`${prefix}${name}`), shape, 'float32');
  let firstLayer = true;
  const input = () => {
    const extra = firstLayer ? { inputShape: [height, width, channels] } : {};
    firstLayer = false;
    return extra;
  };
  for (const f of features) {
    if (f.kind === 'pool') {
      model.add(tfl.layers.maxPooling2d({ ...input(), name: namer.pool(f.index), poolSize: 2, strides: 2 }));
      continue;
    }
    const name = namer.conv2d(f);
    model.add(
      tfl.layers.conv2d({ ...input(), name, filters: f.out, kernelSize: [f.kh, f.kw], padding: 'same' }),
    );
    weights.push({
      layer: name,
      values: () => [
        tf.transpose(t(`features.${f.index}.weight`, [f.out, f.in, f.kh, f.kw]), [2, 3, 1, 0]),
        file.has(`${prefix}features.${f.index}.bias`)
          ? t(`features.${f.index}.bias`, [f.out])
          : tf.zeros([f.out]),
      ],
    });
    if (f.bn !== undefined) {
      const bnIndex = f.bn;
      const bnName = namer.bn(bnIndex);
      model.add(tfl.layers.batchNormalization({ name: bnName, epsilon, momentum: 0.9 }));
      for (const part of ['weight', 'bias', 'running_mean', 'running_var']) {
        const shape = file.entry(`${prefix}features.${bnIndex}.${part}`).shape;
        if (shape.length !== 1 || shape[0] !== f.out) {
          fail(
            `features.${bnIndex}.${part} has shape [${shape.join(', ')}]; [${f.out}] is needed after features.${f.index}`,
          );
        }
      }
      weights.push({
        layer: bnName,
        values: () =>
          ['weight', 'bias', 'running_mean', 'running_var'].map((p) =>
            t(`features.${bnIndex}.${p}`, [f.out]),
          ),
      });
    }
    model.add(tfl.layers.reLU({ name: namer.convRelu(f.index + (f.bn === undefined ? 1 : 2)) }));
  }
  if (fh !== side || fw !== side) {
    const pool: [number, number] = [fh / side, fw / side];
    model.add(tfl.layers.averagePooling2d({ name: 'avgpool', poolSize: pool, strides: pool }));
  }
  model.add(tfl.layers.flatten({ name: 'flatten' }));
  let units = first.in;
  linears.forEach((lin, k) => {
    if (lin.in !== units)
      fail(`classifier.${lin.index} takes ${lin.in} features but the layer before gives ${units}`);
    const last = k === linears.length - 1;
    const name = namer.dense(lin.index, last);
    model.add(tfl.layers.dense({ name, units: lin.out }));
    const bias = `classifier.${lin.index}.bias`;
    weights.push({
      layer: name,
      values: () => {
        const w = t(`classifier.${lin.index}.weight`, [lin.out, lin.in]);
        const kernel =
          k === 0
            ? tf.reshape(tf.transpose(tf.reshape(w, [lin.out, c, side, side]), [2, 3, 1, 0]), [
                lin.in,
                lin.out,
              ])
            : tf.transpose(w);
        return [kernel, file.has(`${prefix}${bias}`) ? t(bias, [lin.out]) : tf.zeros([lin.out])];
      },
    });
    units = lin.out;
    if (!last) {
      // torchvision: Linear, ReLU, Dropout, Linear, ...; the modules between two Linear layers have no tensors
      const between = linears[k + 1]!.index - lin.index - 1;
      for (let j = 0; j < between; j++) {
        const index = lin.index + 1 + j;
        model.add(
          j === 0
            ? tfl.layers.reLU({ name: namer.denseRelu(index) })
            : tfl.layers.dropout({ name: namer.dropout(index, j - 1), rate: options.dropout ?? 0.5 }),
        );
      }
    }
  });
  for (const { layer, values } of weights) {
    tf.tidy(() => model.getLayer(layer).setWeights(values()));
  }
  return model;
}

/**
 * Builds a torchvision-style VGG from the bytes of a safetensors file (or a parsed one) as a TF.js model; see
 * {@link torchVggFromSafetensors}. From a path: `readTorchVgg` of `@crp/models/node`. To make such a file in
 * Python:
 * `safetensors.torch.save_file(torchvision.models.vgg16(weights=...).state_dict(), 'vgg16.safetensors')`.
 *
 * @returns a new model that the caller owns
 */
export async function importTorchVgg(
  source: Uint8Array | SafetensorsFile,
  options: TorchVggOptions = {},
): Promise<tfl.Sequential> {
  const file = source instanceof SafetensorsFile ? source : SafetensorsFile.parse(source);
  return torchVggFromSafetensors(file, options);
}

import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { adaptiveAveragePooling2d } from './adaptive-average-pooling-2d.js';
import { preset } from './preset-initializer.js';
import { parseStateDict, type StateDict } from './state-dict.js';
import { VGG_CONFIGS } from './vgg.js';

/** Options of {@link importTorchVgg}. */
export interface TorchVggOptions {
  /**
   * Input height and width in pixels (a number: square). Default 224. Any size works: PyTorch's
   * `AdaptiveAvgPool2d` is reproduced exactly (see {@link AdaptiveAveragePooling2D}); the input only has to
   * survive the max pools (at least 2^pools pixels per side, 32 for the torchvision VGGs).
   */
  inputSize?: number | [number, number];
  /** Input [height, width, channels]: the same as `inputSize`, with the channels spelt out (they must equal
   * those of `features.0`). */
  inputShape?: [number, number, number];
  /**
   * `'torch'` (default): the PyTorch module names, so that layers, conditions and reports read as in PyTorch
   * and zennit: `features.0`, `features.1` (the ReLU), `features.2` (the max pool), ..., `avgpool`, `flatten`,
   * `classifier.0`, `classifier.1`, ..., `classifier.6`.
   * `'keras'`: names in the style of {@link vgg} (`block1_conv1`, `block1_bn1`, `block1_relu1`, `block1_pool`,
   * `avgpool`, `flatten`, `fc1`, `fc1_relu`, `fc1_dropout`, ..., `predictions`).
   */
  layerNames?: 'torch' | 'keras';
  /**
   * The torchvision configuration (`[64, 'M', 128, 'M', ...]`). By default it is read from the tensor names,
   * assuming one max pool at the end of `features`, as in every torchvision VGG; give it when the model differs.
   * Batch norm is always read from the tensors.
   */
  cfg?: readonly (number | 'M')[];
  /** Dropout rate of the classifier's Dropout layers (inactive at inference; not stored in the file). Default 0.5. */
  dropout?: number;
  /** Epsilon of the batch norms; default 1e-5 (torch's). */
  batchNormEpsilon?: number;
  /** Name of the TF.js model; default the torchvision name when the layout is one (`'vgg11_bn'`), else `'vgg'`. */
  name?: string;
}

/** One module of `features` in a {@link TorchVggLayout}. */
export type TorchVggFeature =
  | {
      kind: 'conv';
      /** Index in `features` (the PyTorch name is `features.<index>`). */
      index: number;
      out: number;
      in: number;
      kh: number;
      kw: number;
      /** Index of the BatchNorm2d after it, if any (its ReLU follows at `bn + 1`, else at `index + 1`). */
      bn: number | undefined;
    }
  | { kind: 'pool'; index: number };

/** The structure of a torchvision-style VGG as read from its state dict by {@link torchVggLayout}. */
export interface TorchVggLayout {
  /** The key prefix before `features.` (`''`, `'module.'`, `'model.'`, ...). */
  prefix: string;
  /** torchvision's configuration list: conv widths and `'M'` for max pools. */
  cfg: (number | 'M')[];
  batchNorm: boolean;
  /** `'vgg11'` ... `'vgg19_bn'` when the features are those of a torchvision VGG. */
  torchvision: string | undefined;
  features: TorchVggFeature[];
  /** The Linear layers of `classifier` (ReLU and Dropout modules sit between them). */
  classifier: { index: number; in: number; out: number }[];
  /** Channels of the input (those of `features.0`). */
  inChannels: number;
  /** Channels of the last feature map. */
  channels: number;
  /** Side of the square output of `avgpool` (7 in torchvision), from `classifier.0`'s input size. */
  poolSize: number;
  /** Output units of the last Linear layer. */
  classes: number;
}

const SUPPORTED =
  "valid: a state dict of a torchvision VGG (vgg11/13/16/19, with or without batch norm, any class count): 'features.N.weight/bias' and 'classifier.N.weight/bias' tensors, optionally under a prefix such as 'module.' or 'model.'; for other architectures export the model to ONNX";

function unsupported(message: string): never {
  throw new CrpError('unsupported-model', message);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Says what a state dict holds: its tensor count, its top-level modules and a few tensors with their shapes
 * (for the errors of the torchvision importers, which name what was found). */
export function describeStateDict(sd: StateDict): string {
  const modules: string[] = [];
  for (const n of sd.names) {
    const top = n.split('.')[0]!;
    if (!modules.includes(top)) modules.push(top);
  }
  const examples = sd.names
    .slice(0, 4)
    .map((n) => `${n} [${sd.entry(n).shape.join(', ')}]`)
    .join(', ');
  return `it has ${sd.names.length} tensors in the modules ${modules.slice(0, 12).join(', ')}${modules.length > 12 ? ', ...' : ''}, e.g. ${examples}`;
}

/** Says what a state dict that is no VGG holds, and which other architecture it looks like. */
export function whatIsIn(sd: StateDict): string {
  const resnet = sd.names.some((n) => /(^|\.)layer\d+\.\d+\.conv\d\.weight$/.test(n));
  const densenet = sd.names.some((n) => /(^|\.)denseblock\d+\./.test(n));
  const kind = resnet ? ' (this looks like a ResNet)' : densenet ? ' (this looks like a DenseNet)' : '';
  return `${describeStateDict(sd)}${kind}`;
}

/** The prefix before `features.` (`''`, `'model.'`, `'module.'`, ...) of a VGG-shaped state dict (`features.N`
 * weights and `classifier.*` tensors under one prefix), or undefined when there is none. */
function vggPrefix(sd: StateDict): string | undefined {
  for (const key of sd.names) {
    const m = /^(.*?)features\.\d+\.weight$/.exec(key);
    if (m === null) continue;
    const prefix = m[1]!;
    if (prefix !== '' && !prefix.endsWith('.')) continue;
    if (sd.names.some((n) => n.startsWith(`${prefix}classifier.`))) return prefix;
  }
  return undefined;
}

/** Whether a state dict has a VGG's `features.N` and `classifier` modules (the dispatch of importTorchModel). */
export function looksLikeTorchVgg(sd: StateDict): boolean {
  return vggPrefix(sd) !== undefined;
}

/** Finds the prefix before `features.`, or refuses a state dict that has none. */
function findPrefix(sd: StateDict): string {
  const prefix = vggPrefix(sd);
  if (prefix !== undefined) return prefix;
  return unsupported(
    `no torchvision VGG: no 'features.N.weight' and 'classifier.N.weight' tensors; ${whatIsIn(sd)}. ${SUPPORTED}`,
  );
}

function indices(sd: StateDict, prefix: string, part: 'features' | 'classifier'): Map<number, Set<string>> {
  const found = new Map<number, Set<string>>();
  const re = new RegExp(`^${escapeRegExp(prefix)}${part}\\.(\\d+)\\.(\\w+)$`);
  for (const name of sd.names) {
    const m = re.exec(name);
    if (m === null) continue;
    const i = Number(m[1]);
    if (!found.has(i)) found.set(i, new Set());
    found.get(i)!.add(m[2]!);
  }
  return found;
}

function shapeOf(sd: StateDict, name: string): readonly number[] {
  return sd.entry(name).shape;
}

/** Reads the structure of `features` from the tensor names and shapes. */
function readFeatures(
  sd: StateDict,
  prefix: string,
  cfg: readonly (number | 'M')[] | undefined,
): TorchVggFeature[] {
  const params = indices(sd, prefix, 'features');
  const order = [...params.keys()].sort((a, b) => a - b);
  const features: TorchVggFeature[] = [];
  let next = 0;
  for (const i of order) {
    const names = params.get(i)!;
    if (names.has('running_mean')) {
      // a BatchNorm2d belongs to the conv just before it (consumed below)
      if (!params.has(i - 1) || params.get(i - 1)!.has('running_mean')) {
        unsupported(
          `features.${i} is a BatchNorm2d that does not follow a Conv2d; valid: Conv2d, BatchNorm2d, ReLU, MaxPool2d`,
        );
      }
      continue;
    }
    if (!names.has('weight')) unsupported(`features.${i} has tensors ${[...names].join(', ')} but no weight`);
    const shape = shapeOf(sd, `${prefix}features.${i}.weight`);
    if (shape.length !== 4) {
      unsupported(
        `features.${i}.weight has shape [${shape.join(', ')}]; a Conv2d weight [out, in, kh, kw] is needed. ${SUPPORTED}`,
      );
    }
    for (; next < i; next++) features.push({ kind: 'pool', index: next });
    const hasBn = params.get(i + 1)?.has('running_mean') === true;
    const [out, inC, kh, kw] = shape as [number, number, number, number];
    if (kh % 2 === 0 || kw % 2 === 0) {
      unsupported(
        `features.${i} has a ${kh}x${kw} kernel; only odd kernels (padded to keep the size, as in VGG) are supported`,
      );
    }
    features.push({ kind: 'conv', index: i, out, in: inC, kh, kw, bn: hasBn ? i + 1 : undefined });
    next = i + (hasBn ? 3 : 2); // conv, [bn], relu
  }
  if (features.length === 0) unsupported(`no Conv2d in features; ${whatIsIn(sd)}. ${SUPPORTED}`);
  if (cfg === undefined) {
    features.push({ kind: 'pool', index: next }); // torchvision's features end with 'M'
    return features;
  }
  // an explicit cfg: check it against the tensors and take its pools
  const convs = features.filter((f) => f.kind === 'conv');
  const widths = cfg.filter((v): v is number => v !== 'M');
  if (widths.length !== convs.length || widths.some((w, j) => w !== convs[j]!.out)) {
    unsupported(
      `cfg [${cfg.join(', ')}] does not match the file, whose convolutions have ${convs.map((c) => c.out).join(', ')} filters`,
    );
  }
  const result: TorchVggFeature[] = [];
  let c = 0;
  let index = 0;
  for (const v of cfg) {
    if (v === 'M') {
      result.push({ kind: 'pool', index });
      index++;
    } else {
      const conv = convs[c++]!;
      if (conv.index !== index) {
        unsupported(
          `cfg [${cfg.join(', ')}] puts conv ${c} at features.${index}, but the file has it at features.${conv.index}`,
        );
      }
      result.push(conv);
      index += conv.bn === undefined ? 2 : 3;
    }
  }
  return result;
}

/** torchvision's name of a configuration, if it is one of vgg11/13/16/19. */
function torchvisionName(cfg: readonly (number | 'M')[], batchNorm: boolean): string | undefined {
  const text = cfg.join(',');
  for (const [name, blocks] of Object.entries(VGG_CONFIGS)) {
    const known = blocks.flatMap((b) => [...b, 'M']).join(',');
    if (known === text) return batchNorm ? `${name}_bn` : name;
  }
  return undefined;
}

/**
 * Infers the layout of a torchvision-style VGG from the names and shapes of its state dict: the key prefix, the
 * convolutions (kernel sizes, widths, batch norms) and max pools of `features`, the Linear layers of
 * `classifier`, the pool size that `classifier.0` expects, the class count. Nothing is converted.
 *
 * @throws CrpError `unsupported-model` for a state dict of another architecture (the message says what it holds
 *   and what is supported) or an inconsistent one
 */
export function torchVggLayout(
  sd: StateDict,
  options: { cfg?: readonly (number | 'M')[] } = {},
): TorchVggLayout {
  const prefix = findPrefix(sd);
  const features = readFeatures(sd, prefix, options.cfg);
  const params = indices(sd, prefix, 'classifier');
  const order = [...params.keys()].sort((a, b) => a - b);
  const classifier = order.map((i) => {
    const shape = shapeOf(sd, `${prefix}classifier.${i}.weight`);
    if (shape.length !== 2) {
      unsupported(
        `classifier.${i}.weight has shape [${shape.join(', ')}]; a Linear weight [out, in] is needed`,
      );
    }
    return { index: i, out: shape[0]!, in: shape[1]! };
  });
  const convs = features.filter((f) => f.kind === 'conv');
  let c = convs[0]!.in;
  for (const conv of convs) {
    if (conv.in !== c)
      unsupported(`features.${conv.index} takes ${conv.in} channels but the layer before gives ${c}`);
    c = conv.out;
  }
  const first = classifier[0]!;
  const poolSize = Math.round(Math.sqrt(first.in / c));
  if (poolSize < 1 || poolSize * poolSize * c !== first.in) {
    unsupported(
      `classifier.${first.index} takes ${first.in} features, which is not ${c} channels (of features.${convs.at(-1)!.index}) times a square pool size`,
    );
  }
  let units = first.in;
  for (const lin of classifier) {
    if (lin.in !== units)
      unsupported(`classifier.${lin.index} takes ${lin.in} features but the layer before gives ${units}`);
    units = lin.out;
  }
  const cfg: (number | 'M')[] = features.map((f) => (f.kind === 'pool' ? 'M' : f.out));
  const batchNorm = convs.some((f) => f.bn !== undefined);
  return {
    prefix,
    cfg,
    batchNorm,
    torchvision: torchvisionName(cfg, batchNorm),
    features,
    classifier,
    inChannels: convs[0]!.in,
    channels: c,
    poolSize,
    classes: units,
  };
}

/** Keras-like or torch names for each layer. */
class Namer {
  private block = 1;
  private conv = 0;
  private fc = 0;
  constructor(private readonly torch: boolean) {}
  conv2d(index: number): string {
    this.conv++;
    return this.torch ? `features.${index}` : `block${this.block}_conv${this.conv}`;
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
 * dst[c][b][a] = src[a][b][c] for src of shape [A, B, C]: torch's [out, in, kh*kw] conv weights to TF.js'
 * [kh*kw, in, out], the first Linear's [out, channels, h*w] to [h*w, channels, out] (torch flattens (c, h, w),
 * TF.js (h, w, c)), and [out, 1, in] Linear weights to [in, 1, out]. Tiled over (a, b) with the innermost loop
 * writing 64 consecutive floats: measured 2.5-3x faster than tiles that write with a stride (vgg11's first
 * Linear, 103M weights: ~0.35 s instead of ~1 s).
 */
export function reverseAxes(src: Float32Array, A: number, B: number, C: number): Float32Array {
  const dst = new Float32Array(A * B * C);
  const TA = 64;
  const TB = 8;
  const stride = B * C;
  for (let b0 = 0; b0 < B; b0 += TB) {
    const b1 = Math.min(B, b0 + TB);
    for (let a0 = 0; a0 < A; a0 += TA) {
      const a1 = Math.min(A, a0 + TA);
      for (let b = b0; b < b1; b++) {
        for (let c = 0; c < C; c++) {
          let to = (c * B + b) * A + a0;
          let from = (a0 * B + b) * C + c;
          for (let a = a0; a < a1; a++) {
            dst[to++] = src[from]!;
            from += stride;
          }
        }
      }
    }
  }
  return dst;
}

/** The [height, width] of an imported torchvision model's input: `inputShape` (its channels must be those of
 * `firstLayer`, the layer that reads the input), else `inputSize`, else 224. */
export function inputSizeOf(
  options: Pick<TorchVggOptions, 'inputSize' | 'inputShape'>,
  inChannels: number,
  firstLayer: string,
): [number, number] {
  if (options.inputShape !== undefined && options.inputSize !== undefined) {
    throw new CrpError('invalid-argument', 'give inputSize or inputShape, not both');
  }
  if (options.inputShape !== undefined) {
    const [h, w, c] = options.inputShape;
    if (c !== inChannels) {
      throw new CrpError(
        'invalid-shape',
        `inputShape has ${c} channels but ${firstLayer} takes ${inChannels}; valid: [h, w, ${inChannels}]`,
      );
    }
    return [h, w];
  }
  const size = options.inputSize ?? 224;
  return typeof size === 'number' ? [size, size] : [size[0], size[1]];
}

/**
 * Builds a TF.js model from the state dict of a torchvision-style VGG (see {@link torchVggLayout}):
 * Conv2d(+BatchNorm2d)+ReLU ... MaxPool2d, AdaptiveAvgPool2d, flatten, Linear/ReLU/Dropout. Conv kernels go from
 * PyTorch's [out, in, kh, kw] to TF.js' [kh, kw, in, out]; the rows of the first Linear are permuted because torch
 * flattens (c, h, w) and TF.js (h, w, c); the other Linear weights are transposed. The adaptive pool is left out
 * where it is an identity (the feature map already has the classifier's size, e.g. 7x7 at 224x224), an
 * `AveragePooling2D` where the map is a whole multiple of it, and PyTorch's exact {@link AdaptiveAveragePooling2D}
 * otherwise; either way it is named `avgpool`. The result takes NHWC input with the same preprocessing as the
 * PyTorch model and gives the same logits (no softmax).
 *
 * @returns a new model that the caller owns (`dispose()` it)
 * @throws CrpError `unsupported-model` for tensors that do not form such a VGG, `invalid-shape` for an input too
 *   small for the max pools or with the wrong channels, `invalid-argument` for bad options,
 *   `unsupported-format` for weights of a dtype other than float32/float16/bfloat16
 */
export function torchVggFromStateDict(sd: StateDict, options: TorchVggOptions = {}): tfl.Sequential {
  if (options.layerNames !== undefined && options.layerNames !== 'keras' && options.layerNames !== 'torch') {
    throw new CrpError(
      'invalid-argument',
      `layerNames '${String(options.layerNames)}' is unknown; valid: torch, keras`,
    );
  }
  const layout = torchVggLayout(sd, options.cfg === undefined ? {} : { cfg: options.cfg });
  const { prefix, features, classifier, channels: c, poolSize: side } = layout;
  const convs = features.filter((f) => f.kind === 'conv');
  const [height, width] = inputSizeOf(options, layout.inChannels, `features.${convs[0]!.index}`);
  if (![height, width].every((v) => Number.isInteger(v) && v >= 1)) {
    throw new CrpError('invalid-argument', `inputSize ${height}x${width}; positive integers are needed`);
  }
  const pools = features.filter((f) => f.kind === 'pool').length;
  const fh = Math.floor(height / 2 ** pools);
  const fw = Math.floor(width / 2 ** pools);
  if (fh < 1 || fw < 1) {
    throw new CrpError(
      'invalid-shape',
      `an input of ${height}x${width} is too small for this VGG: its ${pools} max pools halve it to nothing; valid: inputSize >= ${2 ** pools}`,
    );
  }

  const namer = new Namer(options.layerNames !== 'keras');
  const epsilon = options.batchNormEpsilon ?? 1e-5;
  const model = tfl.sequential({ name: options.name ?? layout.torchvision ?? 'vgg' });
  const vector = (name: string) => () => tf.tensor1d(sd.float32(`${prefix}${name}`));
  const biasOf = (name: string, n: number) =>
    sd.has(`${prefix}${name}`) ? vector(name) : () => tf.zeros([n]);
  let inputShape: [number, number, number] | undefined = [height, width, layout.inChannels];
  const first = () => {
    const extra = inputShape === undefined ? {} : { inputShape };
    inputShape = undefined;
    return extra;
  };
  try {
    for (const f of features) {
      if (f.kind === 'pool') {
        model.add(
          tfl.layers.maxPooling2d({ ...first(), name: namer.pool(f.index), poolSize: 2, strides: 2 }),
        );
        continue;
      }
      const kernel = () =>
        tf.tensor4d(
          reverseAxes(
            sd.float32(`${prefix}features.${f.index}.weight`, { copy: false }),
            f.out,
            f.in,
            f.kh * f.kw,
          ),
          [f.kh, f.kw, f.in, f.out],
        );
      model.add(
        tfl.layers.conv2d({
          ...first(),
          name: namer.conv2d(f.index),
          filters: f.out,
          kernelSize: [f.kh, f.kw],
          padding: 'same',
          kernelInitializer: preset(kernel, 'glorotUniform'),
          biasInitializer: preset(biasOf(`features.${f.index}.bias`, f.out), 'zeros'),
        }),
      );
      if (f.bn !== undefined) {
        const bn = f.bn;
        for (const part of ['weight', 'bias', 'running_mean', 'running_var']) {
          const shape = shapeOf(sd, `${prefix}features.${bn}.${part}`);
          if (shape.length !== 1 || shape[0] !== f.out) {
            unsupported(
              `features.${bn}.${part} has shape [${shape.join(', ')}]; [${f.out}] is needed after features.${f.index}`,
            );
          }
        }
        model.add(
          tfl.layers.batchNormalization({
            name: namer.bn(bn),
            epsilon,
            momentum: 0.9,
            gammaInitializer: preset(vector(`features.${bn}.weight`), 'ones'),
            betaInitializer: preset(vector(`features.${bn}.bias`), 'zeros'),
            movingMeanInitializer: preset(vector(`features.${bn}.running_mean`), 'zeros'),
            movingVarianceInitializer: preset(vector(`features.${bn}.running_var`), 'ones'),
          }),
        );
      }
      model.add(tfl.layers.reLU({ name: namer.convRelu(f.index + (f.bn === undefined ? 1 : 2)) }));
    }
    if (fh !== side || fw !== side) {
      if (fh % side === 0 && fw % side === 0) {
        // equal windows: PyTorch's adaptive pool is a plain average pool here
        const pool: [number, number] = [fh / side, fw / side];
        model.add(tfl.layers.averagePooling2d({ name: 'avgpool', poolSize: pool, strides: pool }));
      } else {
        model.add(adaptiveAveragePooling2d({ name: 'avgpool', outputSize: [side, side] }));
      }
    }
    model.add(tfl.layers.flatten({ name: 'flatten' }));
    classifier.forEach((lin, k) => {
      const last = k === classifier.length - 1;
      const kernel = () => {
        const w = sd.float32(`${prefix}classifier.${lin.index}.weight`, { copy: false });
        const t = k === 0 ? reverseAxes(w, lin.out, c, side * side) : reverseAxes(w, lin.out, 1, lin.in);
        return tf.tensor2d(t, [lin.in, lin.out]);
      };
      model.add(
        tfl.layers.dense({
          name: namer.dense(lin.index, last),
          units: lin.out,
          kernelInitializer: preset(kernel, 'glorotUniform'),
          biasInitializer: preset(biasOf(`classifier.${lin.index}.bias`, lin.out), 'zeros'),
        }),
      );
      if (!last) {
        // torchvision: Linear, ReLU, Dropout, Linear, ...; the modules between two Linear layers have no tensors
        const between = classifier[k + 1]!.index - lin.index - 1;
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
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/**
 * Reads a torchvision-style VGG into a TF.js model: from the bytes of a `.pth`/`.pt` file written by
 * `torch.save` (a `state_dict`, a whole pickled model or a checkpoint dict holding one) or of a safetensors file,
 * or from an already parsed {@link StateDict}. The format is told from the bytes, not the file name. From a path:
 * `readTorchVgg` of `@crp/models/node`. See {@link torchVggFromStateDict} for the model and
 * {@link torchVggLayout} for what is inferred.
 *
 * ```ts
 * // Python: torch.save(model.state_dict(), 'state_dict.pth')  (a torchvision.models.vgg11_bn, 2 classes)
 * const model = await importTorchVgg(bytesOfTheFile, { inputSize: 128 });
 * model.getLayer('features.25'); // PyTorch's module names
 * ```
 *
 * @returns a new model that the caller owns
 * @throws CrpError `unsupported-format`, `unsafe-content`, `corrupt-file` from the readers; and the errors of
 *   {@link torchVggFromStateDict}
 */
export async function importTorchVgg(
  source: Uint8Array | StateDict,
  options: TorchVggOptions = {},
): Promise<tfl.Sequential> {
  const sd = source instanceof Uint8Array ? parseStateDict(source) : source;
  return torchVggFromStateDict(sd, options);
}

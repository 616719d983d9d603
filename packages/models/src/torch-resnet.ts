import { CrpError } from '@crp/common';
import { GroupedConv2D } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { preset } from './preset-initializer.js';
import { parseStateDict, type StateDict } from './state-dict.js';
import { describeStateDict, inputSizeOf, reverseAxes } from './torch-vgg.js';

/** Options of {@link importTorchResNet}. */
export interface TorchResNetOptions {
  /** Input height and width in pixels (a number: square). Default 224. Any size works, as in PyTorch (every
   * strided layer pads enough to leave at least one pixel). */
  inputSize?: number | [number, number];
  /** Input [height, width, channels]: as `inputSize`, with the channels spelt out (they must equal `conv1`'s). */
  inputShape?: [number, number, number];
  /** Epsilon of the batch norms; default 1e-5 (torch's). */
  batchNormEpsilon?: number;
  /** Name of the TF.js model; default the torchvision name when the layout is one (`'resnet50'`), else `'resnet'`. */
  name?: string;
}

/** One residual block of a {@link TorchResNetLayout}. */
export interface TorchResNetBlock {
  /** PyTorch name of the block: `layer2.0`. */
  name: string;
  inChannels: number;
  /** Filters of conv1 (torchvision: the width of the inner convolutions). */
  width: number;
  /** Filters of a bottleneck's conv2 (torchvision: equal to `width`; a channel-pruned model may differ); a basic
   * block's: `width`. */
  midWidth: number;
  outChannels: number;
  /** Stride of the block (torchvision: 2 in the first block of layer2-4, on conv2 of a bottleneck, conv1 of a
   * basic block and on the downsample). */
  stride: number;
  /** Groups of conv2 (ResNeXt: 32 or 64; else 1), read from its weight's shape. */
  groups: number;
  /** Whether the block has `downsample.0` (1x1 conv) and `downsample.1` (batch norm). */
  downsample: boolean;
}

/** The structure of a torchvision ResNet as read from its state dict by {@link torchResNetLayout}. */
export interface TorchResNetLayout {
  /** The key prefix before `conv1.` (`''`, `'module.'`, `'model.'`, ...). */
  prefix: string;
  /** `'basic'` (resnet18/34) or `'bottleneck'` (resnet50 and larger, wide_resnet, resnext). */
  block: 'basic' | 'bottleneck';
  /** Blocks per stage (`[3, 4, 6, 3]` for resnet50). */
  layers: number[];
  /** `'resnet50'`, `'wide_resnet50_2'`, `'resnext50_32x4d'`, ... when the layout is a torchvision one. */
  torchvision: string | undefined;
  blocks: TorchResNetBlock[];
  /** Channels of the input (those of `conv1`). */
  inChannels: number;
  /** Filters of the stem (`conv1`; 64 in torchvision, fewer in a slimmed ResNet). */
  stemChannels: number;
  /** Channels of the last feature map (fc's input). */
  channels: number;
  /** Output units of `fc`. */
  classes: number;
}

const SUPPORTED =
  "valid: a state dict of a torchvision ResNet (resnet18/34/50/101/152, wide_resnet50_2/101_2, resnext50_32x4d/101_32x8d/101_64x4d, any class count, or torchvision's ResNet class with other widths, as a slimmed or channel-pruned ResNet has): 'conv1.weight', 'bn1.*', 'layerS.B.convK.weight', 'layerS.B.bnK.*', 'layerS.B.downsample.0/1.*', 'fc.weight/bias', optionally under a prefix such as 'module.' or 'model.'; for other architectures export the model to ONNX";

function unsupported(message: string, details?: Record<string, unknown>): never {
  throw new CrpError('unsupported-model', message, details === undefined ? {} : { details });
}

const BN_PARTS = ['weight', 'bias', 'running_mean', 'running_var'] as const;

/** torchvision's constructors: block kind, blocks per stage, groups, width per group. */
const TORCHVISION: readonly [string, 'basic' | 'bottleneck', number[], number, number][] = [
  ['resnet18', 'basic', [2, 2, 2, 2], 1, 64],
  ['resnet34', 'basic', [3, 4, 6, 3], 1, 64],
  ['resnet50', 'bottleneck', [3, 4, 6, 3], 1, 64],
  ['resnet101', 'bottleneck', [3, 4, 23, 3], 1, 64],
  ['resnet152', 'bottleneck', [3, 8, 36, 3], 1, 64],
  ['wide_resnet50_2', 'bottleneck', [3, 4, 6, 3], 1, 128],
  ['wide_resnet101_2', 'bottleneck', [3, 4, 23, 3], 1, 128],
  ['resnext50_32x4d', 'bottleneck', [3, 4, 6, 3], 32, 4],
  ['resnext101_32x8d', 'bottleneck', [3, 4, 23, 3], 32, 8],
  ['resnext101_64x4d', 'bottleneck', [3, 4, 23, 3], 64, 4],
];

/** A ResNet described by torchvision's constructor arguments, for {@link torchResNetShapes}; `stemChannels`,
 * `stageWidths` and `stageChannels` describe a slimmed ResNet (torchvision's class with other widths). */
export interface TorchResNetSpec {
  block: 'basic' | 'bottleneck';
  layers: readonly number[];
  classes: number;
  /** Groups of the 3x3 convolutions (default 1). */
  groups?: number;
  /** torchvision's `width_per_group` (default 64). */
  widthPerGroup?: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /** Filters of `conv1` (default torchvision's 64). */
  stemChannels?: number;
  /** Per stage, the filters of the inner convolutions (default torchvision's: a basic block's `planes`, a
   * bottleneck's `planes * width_per_group / 64 * groups`). */
  stageWidths?: readonly number[];
  /** Per stage, the output channels of its blocks (default torchvision's `planes * expansion`). */
  stageChannels?: readonly number[];
}

/** The state dict's names and shapes for a stem, blocks and fc, in torchvision's order (`num_batches_tracked`
 * included, shape []). The one place that knows which tensors a torchvision ResNet has. */
function shapesOfBlocks(
  kind: 'basic' | 'bottleneck',
  inChannels: number,
  stem: number,
  blocks: readonly TorchResNetBlock[],
  classes: number,
): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const bn = (name: string, c: number) => {
    for (const part of BN_PARTS) shapes.set(`${name}.${part}`, [c]);
    shapes.set(`${name}.num_batches_tracked`, []);
  };
  shapes.set('conv1.weight', [stem, inChannels, 7, 7]);
  bn('bn1', stem);
  for (const b of blocks) {
    const n = b.name;
    shapes.set(`${n}.conv1.weight`, [
      b.width,
      b.inChannels,
      kind === 'basic' ? 3 : 1,
      kind === 'basic' ? 3 : 1,
    ]);
    bn(`${n}.bn1`, b.width);
    if (kind === 'basic') {
      shapes.set(`${n}.conv2.weight`, [b.outChannels, b.width, 3, 3]);
      bn(`${n}.bn2`, b.outChannels);
    } else {
      shapes.set(`${n}.conv2.weight`, [b.midWidth, b.width / b.groups, 3, 3]);
      bn(`${n}.bn2`, b.midWidth);
      shapes.set(`${n}.conv3.weight`, [b.outChannels, b.midWidth, 1, 1]);
      bn(`${n}.bn3`, b.outChannels);
    }
    if (b.downsample) {
      shapes.set(`${n}.downsample.0.weight`, [b.outChannels, b.inChannels, 1, 1]);
      bn(`${n}.downsample.1`, b.outChannels);
    }
  }
  const last = blocks[blocks.length - 1]?.outChannels ?? stem;
  shapes.set('fc.weight', [classes, last]);
  shapes.set('fc.bias', [classes]);
  return shapes;
}

/** torchvision's rule: a block has a downsample branch when its stride or its width changes the residual. */
const needsDownsample = (stride: number, inChannels: number, outChannels: number) =>
  stride !== 1 || inChannels !== outChannels;

/**
 * The names and shapes of the state dict of `torchvision.models.resnet.ResNet(block, layers, num_classes, groups,
 * width_per_group)`, or of that class with the widths of a slimmed spec, in torchvision's order (the order of
 * `model.state_dict()`), `num_batches_tracked` included (shape []). The importer checks a file against this
 * list; tests and benches fill it with weights.
 */
export function torchResNetShapes(spec: TorchResNetSpec): Map<string, number[]> {
  const groups = spec.groups ?? 1;
  const widthPerGroup = spec.widthPerGroup ?? 64;
  const expansion = spec.block === 'basic' ? 1 : 4;
  const stem = spec.stemChannels ?? 64;
  const blocks: TorchResNetBlock[] = [];
  let inplanes = stem;
  spec.layers.forEach((count, s) => {
    const planes = 64 * 2 ** s;
    const width =
      spec.stageWidths?.[s] ??
      (spec.block === 'basic' ? planes : Math.floor(planes * (widthPerGroup / 64)) * groups);
    const out = spec.stageChannels?.[s] ?? (spec.block === 'basic' ? width : planes * expansion);
    for (let b = 0; b < count; b++) {
      const stride = b === 0 && s > 0 ? 2 : 1;
      blocks.push({
        name: `layer${s + 1}.${b}`,
        inChannels: inplanes,
        width,
        midWidth: width,
        outChannels: out,
        stride,
        groups: spec.block === 'basic' ? 1 : groups,
        downsample: needsDownsample(stride, inplanes, out),
      });
      inplanes = out;
    }
  });
  return shapesOfBlocks(spec.block, spec.inChannels ?? 3, stem, blocks, spec.classes);
}

/** Whether a state dict has the tensors of a torchvision ResNet (`layerS.B.convK.weight` beside `conv1` and `fc`). */
export function looksLikeTorchResNet(sd: StateDict): boolean {
  return sd.names.some((n) => /(^|\.)layer1\.0\.conv1\.weight$/.test(n));
}

function findPrefix(sd: StateDict): string {
  for (const key of sd.names) {
    const m = /^(.*?)layer1\.0\.conv1\.weight$/.exec(key);
    if (m === null) continue;
    const prefix = m[1]!;
    if (prefix !== '' && !prefix.endsWith('.')) continue;
    if (sd.has(`${prefix}conv1.weight`) && sd.has(`${prefix}fc.weight`)) return prefix;
  }
  return unsupported(
    `no torchvision ResNet: no 'conv1.weight', 'layer1.0.conv1.weight' and 'fc.weight' tensors; ${describeStateDict(sd)}. ${SUPPORTED}`,
  );
}

function shape4(sd: StateDict, key: string): [number, number, number, number] {
  const s = sd.entry(key).shape;
  if (s.length !== 4)
    unsupported(
      `${key} has shape [${s.join(', ')}]; a Conv2d weight [out, in, kh, kw] is needed (the file has the keys of a torchvision ResNet, not its tensors). ${SUPPORTED}`,
    );
  return s as [number, number, number, number];
}

/** The filters of a conv of the file, or 0 when the key is missing (reported with the other keys later). */
function filtersOf(sd: StateDict, key: string): number {
  return sd.has(key) ? shape4(sd, key)[0] : 0;
}

/**
 * Infers the layout of a torchvision ResNet from the names and shapes of its state dict: key prefix, block kind
 * (a `conv3` makes a bottleneck), blocks per stage, and every width from the weights' shapes: the stem's filters,
 * each block's inner widths and output channels, the groups of a bottleneck's conv2 (in = width / groups), the
 * class count. Widths need not be torchvision's: a slimmed or channel-pruned ResNet (torchvision's class with
 * narrower convolutions, each block's input the previous block's output) reads as well. Then checks the file
 * against the state dict that layout has: a missing or an extra tensor, or a shape that does not fit, is named.
 * Strides and downsample branches are torchvision's (stride 2 in the first block of layer2-4; a downsample where
 * the stride or the width changes).
 *
 * @throws CrpError `unsupported-model` for a state dict of another architecture (the message says what it holds
 *   and suggests ONNX), a missing or extra key (named) or a shape that does not fit
 */
export function torchResNetLayout(sd: StateDict): TorchResNetLayout {
  const prefix = findPrefix(sd);
  const key = (name: string) => `${prefix}${name}`;
  const bottleneck = sd.has(key('layer1.0.conv3.weight'));
  const kind = bottleneck ? 'bottleneck' : 'basic';
  const layers: number[] = [];
  for (let s = 1; sd.has(key(`layer${s}.0.conv1.weight`)); s++) {
    let b = 0;
    while (sd.has(key(`layer${s}.${b}.conv1.weight`))) b++;
    layers.push(b);
  }
  const [stem, inChannels] = shape4(sd, key('conv1.weight'));
  const fc = sd.entry(key('fc.weight')).shape;
  if (fc.length !== 2)
    unsupported(`fc.weight has shape [${fc.join(', ')}]; a Linear weight [out, in] is needed`);
  const blocks: TorchResNetBlock[] = [];
  let channels = stem;
  layers.forEach((count, s) => {
    for (let b = 0; b < count; b++) {
      const name = `layer${s + 1}.${b}`;
      const stride = b === 0 && s > 0 ? 2 : 1;
      const width = filtersOf(sd, key(`${name}.conv1.weight`));
      let midWidth = width;
      let groups = 1;
      if (bottleneck && sd.has(key(`${name}.conv2.weight`))) {
        const conv2 = shape4(sd, key(`${name}.conv2.weight`));
        midWidth = conv2[0];
        groups = width / conv2[1];
        if (!Number.isInteger(groups) || groups < 1 || midWidth % groups !== 0) {
          unsupported(
            `${key(`${name}.conv2.weight`)} has shape [${conv2.join(', ')}] after conv1's ${width} filters: its channels do not divide into groups`,
          );
        }
      }
      const out = filtersOf(sd, key(`${name}.${bottleneck ? 'conv3' : 'conv2'}.weight`));
      blocks.push({
        name,
        inChannels: channels,
        width,
        midWidth,
        outChannels: out,
        stride,
        groups,
        downsample: needsDownsample(stride, channels, out),
      });
      channels = out;
    }
  });
  const expected = shapesOfBlocks(kind, inChannels, stem, blocks, fc[0]!);
  const missing = [...expected.keys()].filter((n) => !n.endsWith('num_batches_tracked') && !sd.has(key(n)));
  const extra = sd.names.filter((n) => !n.startsWith(prefix) || !expected.has(n.slice(prefix.length)));
  if (missing.length > 0 || extra.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0)
      parts.push(
        `missing ${missing
          .slice(0, 8)
          .map((n) => `'${key(n)}'`)
          .join(', ')}${missing.length > 8 ? ` and ${missing.length - 8} more` : ''}`,
      );
    if (extra.length > 0)
      parts.push(
        `unexpected ${extra
          .slice(0, 8)
          .map((n) => `'${n}'`)
          .join(', ')}${extra.length > 8 ? ` and ${extra.length - 8} more` : ''}`,
      );
    unsupported(
      `the state dict is not that of a torchvision ResNet (${kind} blocks ${layers.join('-')}): ${parts.join('; ')}. ${SUPPORTED}`,
      { missing, extra },
    );
  }
  for (const [name, shape] of expected) {
    if (name.endsWith('num_batches_tracked')) continue;
    const found = sd.entry(key(name)).shape;
    if (found.length !== shape.length || found.some((d, i) => d !== shape[i])) {
      unsupported(
        `${key(name)} has shape [${found.join(', ')}]; the ${kind} ResNet ${layers.join('-')} read from the other tensors needs [${shape.join(', ')}] (each block reads the previous block's output channels)`,
      );
    }
  }
  // the torchvision constructor whose state dict has exactly these shapes, if any
  const torchvision =
    inChannels === 3
      ? TORCHVISION.find(([, k, counts, g, w]) => {
          if (k !== kind || counts.join() !== layers.join()) return false;
          const tv = torchResNetShapes({
            block: k,
            layers: counts,
            classes: fc[0]!,
            groups: g,
            widthPerGroup: w,
          });
          return [...tv].every(([n, s]) => s.join() === expected.get(n)?.join());
        })?.[0]
      : undefined;
  return {
    prefix,
    block: kind,
    layers,
    torchvision,
    blocks,
    inChannels,
    stemChannels: stem,
    channels,
    classes: fc[0]!,
  };
}

/**
 * Builds a functional TF.js model from the state dict of a torchvision ResNet (see {@link torchResNetLayout}) with
 * PyTorch's exact semantics and names: `conv1` (7x7, stride 2, padding 3), `bn1`, `relu`, `maxpool` (3x3,
 * stride 2, padding 1), the blocks `layerS.B` (`.conv1`, `.bn1`, `.relu1`, `.conv2`, `.bn2`, [`.relu2`, `.conv3`,
 * `.bn3`], `.downsample.0`, `.downsample.1`, the addition `.add` and the ReLU after it, `.relu`), `avgpool`
 * (PyTorch's adaptive pool to 1x1, a global average) and `fc`. PyTorch's symmetric padding of a strided
 * convolution or pool is a `ZeroPadding2D` (`conv1.pad`, `maxpool.pad`, `layer2.0.conv2.pad`) before a 'valid'
 * layer (TF's 'same' pads asymmetrically there); stride-1 3x3 convolutions use 'same', which equals padding 1.
 * Zero padding before the max pool equals PyTorch's -inf padding because its input has passed a ReLU. The
 * result takes NHWC input with the PyTorch model's preprocessing and gives its logits.
 *
 * @returns a new model that the caller owns (`dispose()` it)
 * ResNeXt's grouped `conv2` (torchvision's `groups`, `width_per_group`) is a `GroupedConv2D` layer of @crp/lrp.
 *
 * @throws CrpError `unsupported-model` (see {@link torchResNetLayout}), `invalid-shape` for an input with the
 *   wrong channels,
 *   `invalid-argument` for bad options
 */
export function torchResNetFromStateDict(sd: StateDict, options: TorchResNetOptions = {}): tfl.LayersModel {
  const layout = torchResNetLayout(sd);
  const { prefix } = layout;
  const [height, width] = inputSizeOf(options, layout.inChannels, 'conv1');
  if (![height, width].every((v) => Number.isInteger(v) && v >= 1)) {
    throw new CrpError('invalid-argument', `inputSize ${height}x${width}; positive integers are needed`);
  }
  const epsilon = options.batchNormEpsilon ?? 1e-5;
  const vector = (name: string) => () => tf.tensor1d(sd.float32(`${prefix}${name}`));
  const kernelOf = (name: string) => () => {
    const [out, cin, kh, kw] = sd.entry(`${prefix}${name}.weight`).shape as [number, number, number, number];
    const w = sd.float32(`${prefix}${name}.weight`, { copy: false });
    return tf.tensor4d(reverseAxes(w, out, cin, kh * kw), [kh, kw, cin, out]);
  };
  type T = tfl.SymbolicTensor;
  const conv = (x: T, name: string, stride: number, pad: number, groups = 1): T => {
    const [filters, , kh, kw] = sd.entry(`${prefix}${name}.weight`).shape as number[];
    // stride 1 with padding (k-1)/2 is TF's 'same'; otherwise pad symmetrically, as PyTorch, then 'valid'
    const same = stride === 1 && pad > 0 && kh === 2 * pad + 1 && kw === 2 * pad + 1;
    let input = x;
    if (pad > 0 && !same) {
      input = tfl.layers.zeroPadding2d({ name: `${name}.pad`, padding: pad }).apply(x) as T;
    }
    const args = {
      name,
      filters: filters!,
      kernelSize: [kh!, kw!] as [number, number],
      strides: stride,
      padding: same ? ('same' as const) : ('valid' as const),
      useBias: false,
      kernelInitializer: preset(kernelOf(name), 'glorotUniform'),
    };
    // ResNeXt's conv2: PyTorch's Conv2d(groups), kernel [kh, kw, width / groups, width]
    const layer = groups > 1 ? new GroupedConv2D({ ...args, groups }) : tfl.layers.conv2d(args);
    return layer.apply(input) as T;
  };
  const bn = (x: T, name: string): T =>
    tfl.layers
      .batchNormalization({
        name,
        epsilon,
        momentum: 0.9,
        gammaInitializer: preset(vector(`${name}.weight`), 'ones'),
        betaInitializer: preset(vector(`${name}.bias`), 'zeros'),
        movingMeanInitializer: preset(vector(`${name}.running_mean`), 'zeros'),
        movingVarianceInitializer: preset(vector(`${name}.running_var`), 'ones'),
      })
      .apply(x) as T;
  const relu = (x: T, name: string): T => tfl.layers.reLU({ name }).apply(x) as T;

  const input = tfl.input({ shape: [height, width, layout.inChannels], name: 'input' });
  let x = relu(bn(conv(input, 'conv1', 2, 3), 'bn1'), 'relu');
  x = tfl.layers.zeroPadding2d({ name: 'maxpool.pad', padding: 1 }).apply(x) as T;
  x = tfl.layers.maxPooling2d({ name: 'maxpool', poolSize: 3, strides: 2, padding: 'valid' }).apply(x) as T;
  for (const block of layout.blocks) {
    const n = block.name;
    let out: T;
    if (layout.block === 'basic') {
      out = relu(bn(conv(x, `${n}.conv1`, block.stride, 1), `${n}.bn1`), `${n}.relu1`);
      out = bn(conv(out, `${n}.conv2`, 1, 1), `${n}.bn2`);
    } else {
      out = relu(bn(conv(x, `${n}.conv1`, 1, 0), `${n}.bn1`), `${n}.relu1`);
      out = relu(bn(conv(out, `${n}.conv2`, block.stride, 1, block.groups), `${n}.bn2`), `${n}.relu2`);
      out = bn(conv(out, `${n}.conv3`, 1, 0), `${n}.bn3`);
    }
    const identity = block.downsample
      ? bn(conv(x, `${n}.downsample.0`, block.stride, 0), `${n}.downsample.1`)
      : x;
    // zennit's ResNet canonizer sums [identity, out]: the addition is its own layer
    const sum = tfl.layers.add({ name: `${n}.add` }).apply([identity, out]) as T;
    x = relu(sum, `${n}.relu`);
  }
  x = tfl.layers.globalAveragePooling2d({ name: 'avgpool' }).apply(x) as T;
  const logits = tfl.layers
    .dense({
      name: 'fc',
      units: layout.classes,
      kernelInitializer: preset(() => {
        const w = sd.float32(`${prefix}fc.weight`, { copy: false });
        return tf.tensor2d(reverseAxes(w, layout.classes, 1, layout.channels), [
          layout.channels,
          layout.classes,
        ]);
      }, 'glorotUniform'),
      biasInitializer: preset(vector('fc.bias'), 'zeros'),
    })
    .apply(x) as T;
  return tfl.model({ inputs: input, outputs: logits, name: options.name ?? layout.torchvision ?? 'resnet' });
}

/**
 * Reads a torchvision ResNet into a TF.js model: from the bytes of a `.pth`/`.pt` file written by `torch.save`
 * (a `state_dict`, a whole pickled model or a checkpoint dict holding one) or of a safetensors file, or from an
 * already parsed {@link StateDict}. See {@link torchResNetFromStateDict} for the model and
 * {@link torchResNetLayout} for what is inferred.
 *
 * ```ts
 * // Python: torch.save(torchvision.models.resnet50(num_classes=2).state_dict(), 'resnet50.pth')
 * const model = await importTorchResNet(bytesOfTheFile, { inputSize: 224 });
 * model.getLayer('layer4.2.conv3'); // PyTorch's module names
 * ```
 *
 * @returns a new model that the caller owns
 * @throws CrpError `unsupported-format`, `unsafe-content`, `corrupt-file` from the readers; and the errors of
 *   {@link torchResNetFromStateDict}
 */
export async function importTorchResNet(
  source: Uint8Array | StateDict,
  options: TorchResNetOptions = {},
): Promise<tfl.LayersModel> {
  const sd = source instanceof Uint8Array ? parseStateDict(source) : source;
  return torchResNetFromStateDict(sd, options);
}

/**
 * PyTorch's `Conv2d(groups=g)` as a TF.js layer (tfjs-layers' Conv2D has no groups): serialisable (registered
 * with tf.serialization), and its `call` is the engine's forward of a grouped `conv2d` node, so a model built
 * from it (ResNeXt) runs, saves and loads as model.json and is explained exactly as it computes.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { CrpError } from '../errors.js';
import { checkGroups, groupedConv2d } from '../ops/grouped-conv.js';
import { dilateKernel } from '../ops/linear.js';

/** Arguments of {@link GroupedConv2D}, named as tfjs-layers' `conv2d` arguments. */
export interface GroupedConv2DArgs {
  filters: number;
  kernelSize: number | [number, number];
  /** The input and output channels fall into this many consecutive groups (both must divide by it). */
  groups: number;
  strides?: number | [number, number];
  /** Distance between the kernel's taps (PyTorch's and ONNX's dilation); default 1. With strides 1 the conv runs on
   * TF.js's own dilations (whose gradient TF.js does not have, as for Keras's Conv2D), else on the kernel spread
   * out by zeros. */
  dilationRate?: number | [number, number];
  /** TF's 'same' or 'valid' (PyTorch's symmetric padding: a ZeroPadding2D before a 'valid' layer). */
  padding?: 'same' | 'valid';
  useBias?: boolean;
  /** Default glorotUniform, as Conv2D. Not serialised: a saved model carries its weights. */
  kernelInitializer?: Initializer;
  /** Default zeros. */
  biasInitializer?: Initializer;
  name?: string;
  trainable?: boolean;
}

type Initializer = ReturnType<typeof tfl.initializers.zeros>;

const pairOf = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

/** A 2-D convolution over `groups` channel groups (NHWC): kernel [kh, kw, in / groups, filters], bias [filters]. */
export class GroupedConv2D extends tfl.layers.Layer {
  static className = 'GroupedConv2D';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly groups: number;
  readonly strides: [number, number];
  readonly dilationRate: [number, number];
  readonly padding: 'same' | 'valid';
  readonly useBias: boolean;
  private readonly kernelInit: Initializer;
  private readonly biasInit: Initializer;
  private kernel: tfl.LayerVariable | undefined;
  private bias: tfl.LayerVariable | undefined;

  constructor(args: GroupedConv2DArgs) {
    super(args);
    this.filters = args.filters;
    this.kernelSize = pairOf(args.kernelSize);
    this.groups = args.groups;
    this.strides = pairOf(args.strides ?? 1);
    this.dilationRate = pairOf(args.dilationRate ?? 1);
    this.padding = args.padding ?? 'valid';
    this.useBias = args.useBias ?? true;
    if (!Number.isInteger(this.groups) || this.groups < 1 || this.filters % this.groups !== 0) {
      throw new CrpError(
        'invalid-argument',
        `GroupedConv2D '${this.name}': groups must be a positive integer dividing filters (${this.filters}), got ${args.groups}`,
      );
    }
    if (this.padding !== 'same' && this.padding !== 'valid') {
      throw new CrpError(
        'invalid-argument',
        `GroupedConv2D padding '${String(this.padding)}'; valid: 'same', 'valid'`,
      );
    }
    this.kernelInit = args.kernelInitializer ?? tfl.initializers.glorotUniform({});
    this.biasInit = args.biasInitializer ?? tfl.initializers.zeros();
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as (number | null)[];
    const cin = s[s.length - 1];
    if (cin === null || cin === undefined || cin % this.groups !== 0) {
      throw new CrpError(
        'invalid-shape',
        `GroupedConv2D '${this.name}': ${cin} input channels do not divide into ${this.groups} groups`,
      );
    }
    const [kh, kw] = this.kernelSize;
    this.kernel = this.addWeight(
      'kernel',
      [kh, kw, cin / this.groups, this.filters],
      'float32',
      this.kernelInit,
    );
    if (this.useBias) this.bias = this.addWeight('bias', [this.filters], 'float32', this.biasInit);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as (number | null)[];
    const out = (size: number | null, k: number, st: number, d: number) =>
      size === null
        ? null
        : this.padding === 'same'
          ? Math.ceil(size / st)
          : Math.ceil((size - (k - 1) * d) / st);
    return [
      s[0]!,
      out(s[1]!, this.kernelSize[0], this.strides[0], this.dilationRate[0]),
      out(s[2]!, this.kernelSize[1], this.strides[1], this.dilationRate[1]),
      this.filters,
    ];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D;
      const kernel = this.kernel!.read() as tf.Tensor4D;
      checkGroups(`GroupedConv2D '${this.name}'`, x.shape[3], kernel.shape, this.groups);
      const [dh, dw] = this.dilationRate;
      const [sh, sw] = this.strides;
      // TF.js's conv2d takes dilations only with strides 1 (as the engine's linear map, ops/linear.ts)
      const native = sh === 1 && sw === 1;
      const y = native
        ? groupedConv2d(x, kernel, this.strides, this.padding, this.groups, undefined, [dh, dw])
        : groupedConv2d(x, dilateKernel(kernel, [dh, dw]), this.strides, this.padding, this.groups);
      return this.bias === undefined ? y : tf.add(y, this.bias.read());
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      groups: this.groups,
      strides: this.strides,
      ...(this.dilationRate[0] !== 1 || this.dilationRate[1] !== 1
        ? { dilationRate: this.dilationRate }
        : {}),
      padding: this.padding,
      useBias: this.useBias,
    };
  }
}

tf.serialization.registerClass(GroupedConv2D);

import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** Options of {@link paddedMaxPooling2d}. */
export interface PaddedMaxPooling2DArgs extends LayerArgs {
  /** Window [height, width] (a number: square). */
  poolSize: number | [number, number];
  /** Default: `poolSize`. */
  strides?: number | [number, number];
  /** [[top, bottom], [left, right]] (a number: the same on every side), as PyTorch's `MaxPool2d(padding)`. */
  padding: number | [[number, number], [number, number]];
}

function pairOf(v: number | [number, number], what: string): [number, number] {
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((x) => Number.isInteger(x) && x >= 1)) {
    throw new CrpError(
      'invalid-argument',
      `PaddedMaxPooling2D ${what} ${JSON.stringify(v)}; valid: a positive integer or a pair of them`,
    );
  }
  return [p[0]!, p[1]!];
}

/**
 * Max pooling with explicit padding that never wins a window (NHWC), as PyTorch's `MaxPool2d(k, s, padding)`
 * pads with -inf: TF's `MaxPooling2D` has only 'same' and 'valid', and zero padding would change both the
 * output of negative windows and the first-maximum tie-break of the gradient that LRP uses. Registered with
 * `tf.serialization`, so a saved model that has it loads again once `@crp/models` is imported; `@crp/lrp` reads
 * it as a max pool with explicit padding (plain gradient to each window's first maximum, as zennit).
 */
export class PaddedMaxPooling2D extends tfl.layers.Layer {
  static className = 'PaddedMaxPooling2D';
  readonly poolSize: [number, number];
  readonly strides: [number, number];
  /** [[top, bottom], [left, right]] */
  readonly padding: [[number, number], [number, number]];

  constructor(args: PaddedMaxPooling2DArgs) {
    super(args);
    this.poolSize = pairOf(args.poolSize, 'poolSize');
    this.strides = pairOf(args.strides ?? this.poolSize, 'strides');
    const p =
      typeof args.padding === 'number'
        ? [
            [args.padding, args.padding],
            [args.padding, args.padding],
          ]
        : args.padding;
    const flat = Array.isArray(p) && p.length === 2 ? p.flat() : [];
    if (flat.length !== 4 || !flat.every((x) => Number.isInteger(x) && x >= 0)) {
      throw new CrpError(
        'invalid-argument',
        `PaddedMaxPooling2D padding ${JSON.stringify(args.padding)}; valid: a non-negative integer or [[top, bottom], [left, right]]`,
      );
    }
    this.padding = [
      [flat[0]!, flat[1]!],
      [flat[2]!, flat[3]!],
    ];
    this.inputSpec = [{ ndim: 4 }];
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const out = (n: number | null, k: number, st: number, [a, b]: [number, number]) =>
      n === null ? null : Math.floor((n + a + b - k) / st) + 1;
    return [
      s[0]!,
      out(s[1]!, this.poolSize[0], this.strides[0], this.padding[0]),
      out(s[2]!, this.poolSize[1], this.strides[1], this.padding[1]),
      s[3]!,
    ];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D;
    // tf.maxPool leaves explicit pads out of every window
    return tf.maxPool(x, this.poolSize, this.strides, [[0, 0], this.padding[0], this.padding[1], [0, 0]]);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      poolSize: [...this.poolSize],
      strides: [...this.strides],
      padding: this.padding.map((p) => [...p]),
    };
  }
}
tf.serialization.registerClass(PaddedMaxPooling2D);

/** A new {@link PaddedMaxPooling2D} layer, e.g. `paddedMaxPooling2d({ poolSize: 3, strides: 2, padding: 1 })`. */
export function paddedMaxPooling2d(args: PaddedMaxPooling2DArgs): PaddedMaxPooling2D {
  return new PaddedMaxPooling2D(args);
}

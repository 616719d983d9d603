import { CrpError } from '@crp/common';
import { adaptiveAvgPool2d } from '@crp/lrp/internal';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** Options of {@link adaptiveAveragePooling2d}. */
export interface AdaptiveAveragePooling2DArgs extends LayerArgs {
  /** Output [height, width] (a number: square), as PyTorch's `AdaptiveAvgPool2d(output_size)`. */
  outputSize: number | [number, number];
}

/**
 * PyTorch's `AdaptiveAvgPool2d` as a TF.js layer (NHWC): output (i, j) averages the input rows
 * [floor(i*H/oh), ceil((i+1)*H/oh)) and columns [floor(j*W/ow), ceil((j+1)*W/ow)), for any input size (windows
 * overlap where H is not a multiple of oh, and repeat inputs where H < oh). Registered with
 * `tf.serialization`, so a saved model that has it loads again once `@crp/models` is imported; `@crp/lrp`
 * explains it with the Norm rule, as zennit does for average pools.
 */
export class AdaptiveAveragePooling2D extends tfl.layers.Layer {
  static className = 'AdaptiveAveragePooling2D';
  /** Output [height, width]. */
  readonly outputSize: [number, number];

  constructor(args: AdaptiveAveragePooling2DArgs) {
    super(args);
    const size = typeof args.outputSize === 'number' ? [args.outputSize, args.outputSize] : args.outputSize;
    if (!Array.isArray(size) || size.length !== 2 || !size.every((v) => Number.isInteger(v) && v >= 1)) {
      throw new CrpError(
        'invalid-argument',
        `AdaptiveAveragePooling2D outputSize ${JSON.stringify(args.outputSize)}; valid: a positive integer or [height, width] of them`,
      );
    }
    this.outputSize = [size[0]!, size[1]!];
    this.inputSpec = [{ ndim: 4 }];
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [s[0]!, this.outputSize[0], this.outputSize[1], s[3]!];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => adaptiveAvgPool2d(Array.isArray(inputs) ? inputs[0]! : inputs, this.outputSize));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), outputSize: [...this.outputSize] };
  }
}
tf.serialization.registerClass(AdaptiveAveragePooling2D);

/** A new {@link AdaptiveAveragePooling2D} layer, e.g. `adaptiveAveragePooling2d({ outputSize: 7, name: 'avgpool' })`. */
export function adaptiveAveragePooling2d(args: AdaptiveAveragePooling2DArgs): AdaptiveAveragePooling2D {
  return new AdaptiveAveragePooling2D(args);
}

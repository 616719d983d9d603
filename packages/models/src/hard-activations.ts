import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** Options of {@link HardSigmoid}: y = max(0, min(1, alpha * x + beta)). */
export interface HardSigmoidArgs extends LayerArgs {
  /** Default 1/6, PyTorch's `nn.Hardsigmoid` (ONNX's `HardSigmoid` defaults to 0.2, Keras's `hard_sigmoid`). */
  alpha?: number;
  /** Default 0.5. */
  beta?: number;
}

/**
 * ONNX's `HardSigmoid` and PyTorch's `nn.Hardsigmoid`: max(0, min(1, alpha * x + beta)), element-wise. TF.js's
 * 'hardSigmoid' activation has the slope 0.2 fixed, PyTorch's is 1/6. Registered with `tf.serialization`;
 * `@crp/lrp` reads it as an activation (Pass in the built-in composites, as zennit's `Activation`).
 */
export class HardSigmoid extends tfl.layers.Layer {
  static className = 'HardSigmoid';
  readonly alpha: number;
  readonly beta: number;

  constructor(args: HardSigmoidArgs = {}) {
    super(args);
    this.alpha = args.alpha ?? 1 / 6;
    this.beta = args.beta ?? 0.5;
    if (!Number.isFinite(this.alpha) || !Number.isFinite(this.beta)) {
      throw new CrpError(
        'invalid-argument',
        `HardSigmoid alpha ${this.alpha} and beta ${this.beta}; valid: finite numbers`,
      );
    }
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    return tf.tidy(() => tf.clipByValue(tf.add(tf.mul(x, this.alpha), this.beta), 0, 1));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), alpha: this.alpha, beta: this.beta };
  }
}
tf.serialization.registerClass(HardSigmoid);

/**
 * ONNX's `HardSwish` and PyTorch's `nn.Hardswish` (MobileNetV3): x * max(0, min(1, x / 6 + 1 / 2)), element-wise.
 * Registered with `tf.serialization`; `@crp/lrp` reads it as an activation (Pass in the built-in composites, as
 * zennit's `Activation`).
 */
export class HardSwish extends tfl.layers.Layer {
  static className = 'HardSwish';

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    return tf.tidy(() => tf.mul(x, tf.clipByValue(tf.add(tf.div(x, 6), 0.5), 0, 1)));
  }
}
tf.serialization.registerClass(HardSwish);

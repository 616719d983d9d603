import * as tf from '@tensorflow/tfjs-core';
import type { ActivationName } from '../graph/types.js';

/** Runs an element-wise activation forward (`alpha`: the slope of leakyRelu and hardSigmoid, `beta`: the offset
 * of hardSigmoid). */
export function applyActivation(
  name: ActivationName,
  x: tf.Tensor,
  alpha?: number,
  beta?: number,
): tf.Tensor {
  switch (name) {
    case 'linear':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'relu6':
      return tf.relu6(x);
    case 'softmax':
      return tf.softmax(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
    case 'elu':
      return tf.elu(x);
    case 'selu':
      return tf.selu(x);
    case 'softplus':
      return tf.softplus(x);
    case 'softsign':
      return tf.div(x, tf.add(tf.abs(x), 1));
    case 'swish':
      return tf.mul(x, tf.sigmoid(x));
    case 'leakyRelu':
      return tf.leakyRelu(x, alpha ?? 0.3);
    case 'hardSigmoid':
      // ONNX's HardSigmoid, PyTorch's nn.Hardsigmoid with alpha 1/6 and beta 1/2
      return tf.clipByValue(tf.add(tf.mul(x, alpha ?? 1 / 6), beta ?? 0.5), 0, 1);
    case 'hardSwish':
      return tf.mul(x, tf.clipByValue(tf.add(tf.div(x, 6), 0.5), 0, 1));
    case 'gelu':
      // the exact (erf) GELU, as TF.js's 'gelu' activation and PyTorch's nn.GELU()
      return tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.div(x, Math.SQRT2)))));
  }
}

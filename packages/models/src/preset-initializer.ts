import { CrpError } from '@crp/common';
import type * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type Initializer = ReturnType<typeof tfl.initializers.zeros>;
type InitializerClass = abstract new () => Initializer;

/** tfjs-layers' Initializer base class (not exported by name; Zeros extends it). */
const InitializerBase = Object.getPrototypeOf(tfl.initializers.zeros().constructor) as InitializerClass;

const STANDARD = {
  glorotUniform: () => tfl.initializers.glorotUniform({}),
  zeros: () => tfl.initializers.zeros(),
  ones: () => tfl.initializers.ones(),
} as const;

/**
 * An initializer that hands prepared values to a layer when it is built: the layer's variable takes the tensor
 * over (no second copy, no random or zero initialisation of weights that would be overwritten at once, which for
 * a 129M-parameter VGG costs seconds and a second copy in memory). It serialises as `like`, the initializer the
 * layer has by default, so a saved model's config is that of an ordinary layer.
 */
export function preset(make: () => tf.Tensor, like: keyof typeof STANDARD): Initializer {
  const standard = STANDARD[like]();
  class Preset extends InitializerBase {
    override apply(shape: number[]): tf.Tensor {
      const t = make();
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        t.dispose();
        throw new CrpError(
          'unsupported-model',
          `prepared weights of shape [${t.shape.join(', ')}] for a layer weight of shape [${shape.join(', ')}]`,
        );
      }
      return t;
    }
    override getClassName(): string {
      return standard.getClassName();
    }
    override getConfig(): tf.serialization.ConfigDict {
      return standard.getConfig();
    }
  }
  return new Preset();
}

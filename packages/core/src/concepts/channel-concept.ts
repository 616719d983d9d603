import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import type { Concept, ConceptAttributeOptions, ConceptMask } from './concept.js';

function normalizeRows(scores: tf.Tensor2D): tf.Tensor2D {
  return tf.div(scores, tf.add(tf.sum(tf.abs(scores), 1, true), 1e-10));
}

/**
 * Concepts are the channels (last axis) of a layer: the filters of a conv layer, the units of a dense
 * layer. As zennit-crp's ChannelConcept.
 */
export class ChannelConcept implements Concept {
  readonly name: string = 'ChannelConcept';

  count(shape: readonly number[]): number {
    return shape[shape.length - 1]!;
  }

  validate(indices: readonly number[], shape: readonly number[], layer: string): void {
    const channels = this.count(shape);
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= channels) {
        throw new CrpError(
          'invalid-argument',
          `channel ${i} is out of range for layer '${layer}': it has ${channels} channels (valid: 0..${channels - 1})`,
        );
      }
    }
  }

  mask(indices: readonly number[], shape: readonly number[]): ConceptMask {
    const channels = this.count(shape);
    const data = new Float32Array(channels);
    for (const i of indices) data[i] = 1;
    return { data, shape: [...shape.slice(0, -1).map(() => 1), channels] };
  }

  /** Per row, the sum over all positions of each channel: [rows, ...spatial, C] -> [rows, C]. */
  attribute(relevance: tf.Tensor, options: ConceptAttributeOptions = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const axes = relevance.shape.slice(1, -1).map((_, i) => i + 1);
      // a [rows, C] input is its own score: clone it, as the caller owns (and disposes) the result
      const scores = (axes.length > 0 ? tf.sum(relevance, axes) : tf.clone(relevance)) as tf.Tensor2D;
      return options.absNorm ? normalizeRows(scores) : scores;
    });
  }

  /**
   * A concept for the receptive field of one position of one channel: its mask keeps only `channel` at
   * spatial position `position` ([h, w], or the flat index h * W + w). Use it in `maskMap` for a layer; the
   * condition's indices at that layer are then ignored except for validation of the channel.
   */
  static receptiveField(channel: number, position: number | readonly [number, number]): Concept {
    return new PositionConcept(channel, position);
  }
}

class PositionConcept extends ChannelConcept {
  override readonly name = 'ChannelPositionConcept';
  constructor(
    private readonly channel: number,
    private readonly position: number | readonly [number, number],
  ) {
    super();
  }

  private flatPosition(shape: readonly number[]): number {
    if (shape.length !== 3) {
      throw new CrpError(
        'invalid-argument',
        `a receptive-field mask needs a [H, W, C] layer output, got [${shape.join(', ')}]`,
      );
    }
    const [h, w] = shape as [number, number, number];
    const flat = typeof this.position === 'number' ? this.position : this.position[0] * w + this.position[1];
    if (!Number.isInteger(flat) || flat < 0 || flat >= h * w) {
      throw new CrpError(
        'invalid-argument',
        `position ${JSON.stringify(this.position)} is outside the ${h}x${w} map`,
      );
    }
    return flat;
  }

  override validate(indices: readonly number[], shape: readonly number[], layer: string): void {
    super.validate([...indices, this.channel], shape, layer);
    this.flatPosition(shape);
  }

  override mask(_indices: readonly number[], shape: readonly number[]): ConceptMask {
    const [h, w, c] = shape as [number, number, number];
    const data = new Float32Array(h * w * c);
    data[this.flatPosition(shape) * c + this.channel] = 1;
    return { data, shape: [h, w, c] };
  }
}

/**
 * Single neurons as concepts (zennit-crp's `ChannelConcept.mask_rf`): an index is the flat position of one value
 * of the layer's per-sample output, row-major NHWC (`(y * W + x) * C + channel`, see {@link NeuronConcept.index});
 * a condition's mask keeps those values. Many neurons, one per condition row, share one backward pass, e.g. the
 * strongest position of a channel in each reference sample.
 */
export class NeuronConcept implements Concept {
  readonly name = 'NeuronConcept';

  /** The flat index of `channel` at `position` ([y, x], or nothing for a dense layer) in an output of `shape`. */
  static index(
    channel: number,
    position: readonly [number, number] | undefined,
    shape: readonly number[],
  ): number {
    const c = shape[shape.length - 1]!;
    if (position === undefined || shape.length === 1) return channel;
    const w = shape[1]!;
    return (position[0] * w + position[1]) * c + channel;
  }

  count(shape: readonly number[]): number {
    return shape.reduce((a, b) => a * b, 1);
  }

  validate(indices: readonly number[], shape: readonly number[], layer: string): void {
    const n = this.count(shape);
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= n) {
        throw new CrpError(
          'invalid-argument',
          `neuron ${i} is out of range for layer '${layer}': its output [${shape.join(', ')}] has ${n} values (valid: 0..${n - 1})`,
        );
      }
    }
  }

  mask(indices: readonly number[], shape: readonly number[]): ConceptMask {
    const data = new Float32Array(this.count(shape));
    for (const i of indices) data[i] = 1;
    return { data, shape: [...shape] };
  }

  /** Per row, every value of the relevance as its own concept: [rows, ...shape] -> [rows, count]. */
  attribute(relevance: tf.Tensor, options: ConceptAttributeOptions = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const flat = tf.reshape(relevance, [relevance.shape[0]!, -1]) as tf.Tensor2D;
      if (options.absNorm !== true) return flat;
      return tf.div(flat, tf.add(tf.sum(tf.abs(flat), 1, true), 1e-10)) as tf.Tensor2D;
    });
  }
}

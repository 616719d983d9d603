import * as tf from '@tensorflow/tfjs-core';
import type { LinearParams } from '../ops/linear.js';

/**
 * How a rule branch changes the layer input. The named forms let the engine skip work: the negative part of
 * a non-negative input (after a ReLU) is zero, so its branch contributes nothing to `x * gradient` terms.
 */
export type InputModifier =
  | 'identity'
  | 'positive'
  | 'negative'
  | 'ones'
  | { fill: number | tf.Tensor }
  | ((x: tf.Tensor) => tf.Tensor);

/** How a rule branch changes the layer's weight and bias. `key` identifies the result in the engine's
 * cache: two modifiers with the same key must compute the same parameters. */
export interface ParamModifier {
  readonly key: string;
  modify(p: LinearParams): LinearParams;
  /** True when the modified bias is always null (e.g. W- without bias): a branch whose input is zero by
   * construction then has a zero output without the parameters being made. */
  readonly dropsBias?: boolean;
}

const mapBoth = (
  key: string,
  weight: (w: tf.Tensor) => tf.Tensor,
  bias: ((b: tf.Tensor) => tf.Tensor) | null,
): ParamModifier => ({
  key,
  dropsBias: bias === null,
  modify: (p) => ({
    weight: p.weight === null ? null : weight(p.weight),
    bias: p.bias === null || bias === null ? null : bias(p.bias),
  }),
});

let customCount = 0;

/** Parameter modifiers of the built-in rules, and a factory for new ones. */
export const paramModifiers = {
  identity: { key: 'identity', modify: (p: LinearParams) => p } as ParamModifier,
  /** W+ and b+ (`withBias: false` drops the bias). */
  positive: (withBias = true) =>
    mapBoth(`positive${withBias ? '' : ':nobias'}`, (w) => tf.relu(w), withBias ? (b) => tf.relu(b) : null),
  /** W- and b-. */
  negative: (withBias = true) =>
    mapBoth(
      `negative${withBias ? '' : ':nobias'}`,
      (w) => tf.minimum(w, 0),
      withBias ? (b) => tf.minimum(b, 0) : null,
    ),
  /** W + gamma W+ (sign 'positive') or W + gamma W- (sign 'negative'), likewise the bias. */
  gamma: (gamma: number, sign: 'positive' | 'negative', withBias = true) => {
    const part = (t: tf.Tensor) => (sign === 'positive' ? tf.relu(t) : tf.minimum(t, 0));
    const f = (t: tf.Tensor) => tf.tidy(() => tf.add(t, tf.mul(part(t), gamma)));
    return mapBoth(`gamma(${gamma}):${sign}${withBias ? '' : ':nobias'}`, f, withBias ? f : null);
  },
  /** All-ones weight, no bias (Flat). */
  ones: mapBoth('ones', (w) => tf.onesLike(w), null),
  /** W^2 and b^2 (WSquare: the squared bias stays in the denominator). */
  square: mapBoth(
    'square',
    (w) => tf.square(w),
    (b) => tf.square(b),
  ),
  /** A user-defined modifier; give a key when several rules share it, so its result is cached once. */
  custom: (modify: (p: LinearParams) => LinearParams, key?: string): ParamModifier => ({
    key: key ?? `custom#${customCount++}`,
    modify,
  }),
};

import * as tf from '@tensorflow/tfjs-core';
import { CrpError } from '../errors.js';
import { addOutputs, basicRule } from './basic-rule.js';
import { paramModifiers as P } from './modifiers.js';
import type { Rule } from './rule.js';
import { stabilize, stabilizeNonNegative } from './stabilizer.js';

/** Default stabiliser of every rule except Epsilon (zennit's 1e-6). */
export const DEFAULT_STABILIZER = 1e-6;

function positive(name: string, value: number): void {
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new CrpError('invalid-argument', `${name} must be a finite number >= 0, got ${value}`);
  }
}

/** Epsilon: R_in = x * back(W, R / stab(z)), z = f(x; W, b). */
export function epsilon(eps = 1e-6): Rule {
  positive('epsilon', eps);
  return basicRule({
    name: 'Epsilon',
    params: { epsilon: eps },
    branches: [{ input: 'identity', params: P.identity }],
    gradientMapper: (r, [z]) => [tf.div(r, stabilize(z!, eps))],
    reducer: [{ branch: 0 }],
  });
}

/** ZPlus: positive contributions only (x+ W+ and x- W-); the positive bias stays in the denominator. */
export function zPlus(stabilizer = DEFAULT_STABILIZER): Rule {
  positive('stabilizer', stabilizer);
  return basicRule({
    name: 'ZPlus',
    params: { stabilizer },
    branches: [
      { input: 'positive', params: P.positive(true) },
      { input: 'negative', params: P.negative(false) },
    ],
    // x+ W+ + b+ and x- W- are sums of non-negative products
    gradientMapper: (r, [a, b]) => {
      const s = tf.div(r, stabilizeNonNegative(addOutputs(a!, b!), stabilizer));
      return [s, s];
    },
    reducer: [{ branch: 0 }, { branch: 1 }],
  });
}

/** AlphaBeta: alpha times the positive minus beta times the negative contributions. */
export function alphaBeta(alpha = 2, beta = 1, stabilizer = DEFAULT_STABILIZER): Rule {
  positive('alpha', alpha);
  positive('beta', beta);
  positive('stabilizer', stabilizer);
  return basicRule({
    name: 'AlphaBeta',
    params: { alpha, beta, stabilizer },
    branches: [
      { input: 'positive', params: P.positive(true) },
      { input: 'negative', params: P.negative(false) },
      { input: 'positive', params: P.negative(true) },
      { input: 'negative', params: P.positive(false) },
    ],
    gradientMapper: (r, [a, b, c, d]) => {
      // the positive part cannot be negative; the negative part can be +0, which sign0 counts as positive
      const sp = tf.div(r, stabilizeNonNegative(addOutputs(a!, b!), stabilizer));
      const sn = tf.div(r, stabilize(addOutputs(c!, d!), stabilizer));
      return [sp, sp, sn, sn];
    },
    reducer: [
      { branch: 0, coefficient: alpha },
      { branch: 1, coefficient: alpha },
      { branch: 2, coefficient: -beta },
      { branch: 3, coefficient: -beta },
    ],
  });
}

/** Gamma, zennit's generalised four-term form: positive outputs are explained with W + gamma W+ on x+ and
 * W + gamma W- on x-, negative outputs the other way round; outputs with z = 0 pass nothing. */
export function gamma(g = 0.25, stabilizer = DEFAULT_STABILIZER): Rule {
  positive('gamma', g);
  positive('stabilizer', stabilizer);
  return basicRule({
    name: 'Gamma',
    params: { gamma: g, stabilizer },
    branches: [
      { input: 'positive', params: P.gamma(g, 'positive', true) },
      { input: 'negative', params: P.gamma(g, 'negative', false) },
      { input: 'positive', params: P.gamma(g, 'negative', true) },
      { input: 'negative', params: P.gamma(g, 'positive', false) },
      { input: 'identity', params: P.identity },
    ],
    gradientMapper: (r, [pp, nn, pn, np, z]) => {
      const gp = tf.div(
        tf.mul(r, tf.cast(tf.greater(z!, 0), 'float32')),
        stabilize(addOutputs(pp!, nn!), stabilizer),
      );
      const gn = tf.div(
        tf.mul(r, tf.cast(tf.less(z!, 0), 'float32')),
        stabilize(addOutputs(pn!, np!), stabilizer),
      );
      return [gp, gp, gn, gn, null];
    },
    reducer: [{ branch: 0 }, { branch: 1 }, { branch: 2 }, { branch: 3 }],
  });
}

/** Flat: relevance spread uniformly over each output's receptive field (all-ones input and weights). */
export function flat(stabilizer = DEFAULT_STABILIZER): Rule {
  positive('stabilizer', stabilizer);
  return basicRule({
    name: 'Flat',
    params: { stabilizer },
    branches: [{ input: 'ones', params: P.ones }],
    gradientMapper: (r, [o]) => [tf.div(r, stabilizeNonNegative(o!, stabilizer))],
    reducer: [{ branch: 0, timesInput: false }],
  });
}

/** WSquare: relevance spread in proportion to the squared weights (the squared bias stays in the
 * denominator, as in zennit). */
export function wSquare(stabilizer = DEFAULT_STABILIZER): Rule {
  positive('stabilizer', stabilizer);
  return basicRule({
    name: 'WSquare',
    params: { stabilizer },
    branches: [{ input: 'ones', params: P.square }],
    gradientMapper: (r, [o]) => [tf.div(r, stabilizeNonNegative(o!, stabilizer))],
    reducer: [{ branch: 0, timesInput: false }],
  });
}

/** ZBox (the z^B rule) for the first layer of a network whose inputs lie in [low, high]; the bounds are
 * numbers or tensors broadcastable to the input (e.g. per-channel bounds of normalised images). */
export function zBox(
  low: number | tf.Tensor,
  high: number | tf.Tensor,
  stabilizer = DEFAULT_STABILIZER,
): Rule {
  positive('stabilizer', stabilizer);
  const report: Record<string, number> = { stabilizer };
  if (typeof low === 'number') report.low = low;
  if (typeof high === 'number') report.high = high;
  return basicRule({
    name: 'ZBox',
    params: report,
    branches: [
      { input: 'identity', params: P.identity },
      { input: { fill: low }, params: P.positive(true) },
      { input: { fill: high }, params: P.negative(true) },
    ],
    gradientMapper: (r, [z, l, h]) => {
      const s = tf.div(r, stabilize(tf.sub(tf.sub(z!, l!), h!), stabilizer));
      return [s, s, s];
    },
    reducer: [{ branch: 0 }, { branch: 1, coefficient: -1 }, { branch: 2, coefficient: -1 }],
  });
}

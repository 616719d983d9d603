import * as tf from '@tensorflow/tfjs-core';
import { CrpError } from '../errors.js';
import type { ConvParams, GraphNode } from '../graph/types.js';
import { linearMapOf } from '../ops/linear.js';
import { tidyKeep } from '../ops/tidy.js';
import { addOutputs, basicRule } from './basic-rule.js';
import { paramModifiers as P } from './modifiers.js';
import type { PreparedRule, Rule, RuleContext } from './rule.js';
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
  const general = basicRule({
    name: 'Flat',
    params: { stabilizer },
    branches: [{ input: 'ones', params: P.ones }],
    gradientMapper: (r, [o]) => [tf.div(r, stabilizeNonNegative(o!, stabilizer))],
    reducer: [{ branch: 0, timesInput: false }],
  });
  return {
    name: 'Flat',
    params: { stabilizer },
    prepare: (ctx) => {
      const p = ctx.node.params;
      return p.kind === 'conv2d' && (p.groups ?? 1) === 1 && ctx.inputs.length === 1
        ? prepareFlatConv(ctx, stabilizer)
        : general.prepare(ctx);
    },
  };
}

/**
 * Flat on a conv without groups, on one channel. With all-ones inputs and weights every output channel holds the
 * same sum, cin times the number of taps of the window inside the input (an integer: the values of the full conv of
 * ones), and back(ones, g) gives every input channel the same value, the one-channel transpose of g summed over
 * the output channels (the same sum in another order). So a first layer's Flat costs a few one-channel maps
 * instead of two convs of its full size (ResNet's 7x7 stem: 2 x 118 M multiply-adds, and its transpose's four
 * phase convs with 3 output channels, which XNNPACK runs at a fraction of its speed).
 */
function prepareFlatConv(ctx: RuleContext, stabilizer: number): PreparedRule {
  const x = ctx.inputs[0]!;
  const p = ctx.node.params as ConvParams;
  const [kh, kw, cin, cout] = p.kernel.shape as [number, number, number, number];
  const [h, w] = [x.shape[1]!, x.shape[2]!];
  const ones = tf.ones([kh, kw, 1, 1]);
  // the node with a one-channel kernel: same window, strides, padding and dilations
  const single: GraphNode = {
    ...ctx.node,
    params: { ...p, kind: 'conv2d', kernel: ones, bias: null, groups: 1 },
  };
  const map = linearMapOf(single, [1, h, w, 1])!;
  const back = tidyKeep(
    () => map.backWeight(ones),
    (b) => [b],
  );
  // [1, Ho, Wo, 1]: cin * taps + eps, the stabilised output of every channel
  const denominator = tf.tidy(() =>
    stabilizeNonNegative(
      tf.mul(map.forward(tf.ones([1, h, w, 1]), { weight: ones, bias: null }), cin),
      stabilizer,
    ),
  );
  // one channel to all: times a row of ones (a broadcast multiply; wasm's Tile, which broadcastTo runs, is a
  // per-element loop: 8 ms for the 224x224 input)
  const spread = (t: tf.Tensor, channels: number) => tf.mul(t, tf.ones([1, 1, 1, channels]));
  return {
    backward: (r) => {
      const g = tf.sum(tf.div(r, denominator), 3, true);
      return [spread(map.transpose(g, back), cin)];
    },
    // backward is back(ones, R / stab(z)): its transpose is f(v; ones) / stab(z), with f summing v over the
    // input channels first
    adjoint: ([v]) => {
      if (!v) return tf.zeros([x.shape[0]!, ...ctx.output.shape.slice(1)]);
      const f = map.forward(tf.sum(v, 3, true), { weight: ones, bias: null });
      return spread(tf.div(f, denominator), cout);
    },
    dispose: () => tf.dispose([ones, back!, denominator]),
  };
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

import * as tf from '@tensorflow/tfjs-core';
import { CrpError } from '../errors.js';
import type { GraphNode } from '../graph/types.js';
import { linearMapOf } from '../ops/linear.js';
import { globalMaxPoolGradient, prepareMaxPoolGradient } from '../ops/max-pool-gradient.js';
import { tidyKeep } from '../ops/tidy.js';
import { basicRule } from './basic-rule.js';
import { DEFAULT_STABILIZER } from './lrp-rules.js';
import { paramModifiers } from './modifiers.js';
import type { PreparedRule, Rule, RuleContext } from './rule.js';
import { stabilize } from './stabilizer.js';

const noDispose = () => {};

/** Relevance with the batch of `r` and the per-sample shape of `x`. */
function batchShape(r: tf.Tensor, x: tf.Tensor): number[] {
  return [r.shape[0]!, ...x.shape.slice(1)];
}

/** The kinds whose backward pass is fixed by their structure (no rule applies). */
export const STRUCTURAL_KINDS = [
  'input',
  'flatten',
  'reshape',
  'identity',
  'zeroPadding2d',
  'concatenate',
] as const;

export function isStructural(node: GraphNode): boolean {
  return (STRUCTURAL_KINDS as readonly string[]).includes(node.kind);
}

/** Exact backward of reshapes, paddings, concatenations and identities. */
export function structuralBackward(node: GraphNode, inputs: readonly tf.Tensor[], r: tf.Tensor): tf.Tensor[] {
  const p = node.params;
  switch (p.kind) {
    case 'identity':
      return [r];
    case 'flatten':
    case 'reshape':
      return [tf.reshape(r, batchShape(r, inputs[0]!))];
    case 'zeroPadding2d': {
      const x = inputs[0]!;
      const [[top], [left]] = p.padding;
      return [tf.slice(r, [0, top, left, 0], batchShape(r, x))];
    }
    case 'concatenate':
      return tf.split(
        r,
        inputs.map((x) => x.shape[p.axis]!),
        p.axis,
      );
    default:
      throw new Error(`no structural backward for ${node.kind}`);
  }
}

/** Pass: relevance goes through unchanged (zennit's rule for activations and batch norm). */
export function pass(): Rule {
  return {
    name: 'Pass',
    params: {},
    prepare(ctx: RuleContext): PreparedRule {
      const x = ctx.inputs[0]!;
      if (ctx.inputs.length !== 1 || !x.shape.slice(1).every((d, i) => d === ctx.output.shape[i + 1])) {
        throw new CrpError(
          'invalid-rule',
          `Pass needs a single-input layer whose output has its input's shape; '${ctx.node.id}' (${ctx.node.className}) does not`,
        );
      }
      return { backward: (r) => [r], dispose: noDispose };
    },
  };
}

/**
 * Norm: R_in = x * back(R / stab(z)) for parameter-free linear layers (average pooling), and for Add the
 * proportional split R_i = x_i * R / stab(x_1 + ... + x_n).
 */
export function norm(stabilizer = DEFAULT_STABILIZER): Rule {
  const single = basicRule({
    name: 'Norm',
    params: { stabilizer },
    branches: [{ input: 'identity', params: paramModifiers.identity }],
    gradientMapper: (r, [z]) => [tf.div(r, stabilize(z!, stabilizer))],
    reducer: [{ branch: 0 }],
  });
  return {
    name: 'Norm',
    params: { stabilizer },
    prepare(ctx: RuleContext): PreparedRule {
      if (ctx.node.kind !== 'add') return single.prepare(ctx);
      const denominator = tf.tidy(() => stabilize(ctx.linearOutput, stabilizer));
      return {
        backward: (r) => {
          const s = tf.div(r, denominator);
          return ctx.inputs.map((x) => tf.mul(x, s));
        },
        dispose: () => denominator.dispose(),
      };
    },
  };
}

/** The plain gradient, as zennit leaves layers without a rule: max pooling sends each window's relevance to
 * its first maximum; linear layers apply their transpose; ReLU masks by x > 0. */
export function gradient(): Rule {
  return {
    name: 'gradient',
    params: {},
    prepare(ctx: RuleContext): PreparedRule {
      const { node } = ctx;
      const x = ctx.inputs[0]!;
      const p = node.params;
      if (p.kind === 'maxPool2d') {
        const prepared = prepareMaxPoolGradient(x as tf.Tensor4D, p);
        return { backward: (r) => [prepared.backward(r as tf.Tensor4D)], dispose: () => prepared.dispose() };
      }
      if (p.kind === 'globalMaxPool2d') {
        return {
          backward: (r) => [globalMaxPoolGradient(x as tf.Tensor4D, r as tf.Tensor2D)],
          dispose: noDispose,
        };
      }
      if (p.kind === 'add') return { backward: (r) => ctx.inputs.map(() => r), dispose: noDispose };
      if (isStructural(node))
        return { backward: (r) => structuralBackward(node, ctx.inputs, r), dispose: noDispose };
      if (p.kind === 'batchNorm') {
        const scale = tf.tidy(() => {
          const inv = tf.rsqrt(tf.add(p.movingVariance, p.epsilon));
          return p.gamma === null ? inv : tf.mul(inv, p.gamma);
        });
        return { backward: (r) => [tf.mul(r, scale)], dispose: () => scale.dispose() };
      }
      // the activation's derivative (fused activations of linear layers included)
      const act = node.activation;
      const derivative = tidyKeep(
        (): tf.Tensor | null => {
          const z = ctx.linearOutput;
          if (act === 'linear') return null;
          if (act === 'relu') return tf.cast(tf.greater(z, 0), 'float32');
          if (act === 'relu6') return tf.cast(tf.logicalAnd(tf.greater(z, 0), tf.less(z, 6)), 'float32');
          throw new CrpError(
            'invalid-rule',
            `no plain gradient for activation '${act}' of '${node.id}'; map activations to rules.pass() in the composite`,
          );
        },
        (d) => [d],
      );
      const map = linearMapOf(node, x.shape);
      const back = map === undefined ? null : ctx.params('identity', (q) => q).back;
      return {
        backward: (r) => {
          const g = derivative === null ? r : tf.mul(r, derivative);
          if (map === undefined) return [g];
          return [map.transpose(g, back)];
        },
        dispose: () => derivative?.dispose(),
      };
    },
  };
}

import * as tf from '@tensorflow/tfjs-core';
import { CrpError } from '../errors.js';
import { forwardNode } from '../forward.js';
import {
  TRANSFORMER_STRUCTURAL_KINDS,
  transformerStructuralAdjoint,
  transformerStructuralBackward,
} from '../graph/transformer-layers.js';
import type { GraphNode } from '../graph/types.js';
import { linearMapOf } from '../ops/linear.js';
import {
  globalMaxPoolGradient,
  globalMaxPoolGradientAdjoint,
  prepareMaxPoolGradient,
} from '../ops/max-pool-gradient.js';
import { padOrCrop } from '../ops/strided.js';
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
  return (
    (STRUCTURAL_KINDS as readonly string[]).includes(node.kind) ||
    TRANSFORMER_STRUCTURAL_KINDS.includes(node.kind)
  );
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
      return transformerStructuralBackward(node, inputs, r);
  }
}

/** The transpose of {@link structuralBackward}: from values at the node's inputs to the value at its output
 * (reshape back, pad what the padding's backward cropped, concatenate what it split). */
export function structuralAdjoint(
  node: GraphNode,
  inputs: readonly tf.Tensor[],
  output: tf.Tensor,
  values: readonly (tf.Tensor | null)[],
): tf.Tensor {
  const p = node.params;
  const rows = values.find((v) => v !== null)?.shape[0] ?? output.shape[0]!;
  const filled = values.map((v, i) => v ?? tf.zeros([rows, ...inputs[i]!.shape.slice(1)]));
  switch (p.kind) {
    case 'identity':
      return filled[0]!;
    case 'flatten':
    case 'reshape':
      return tf.reshape(filled[0]!, [rows, ...output.shape.slice(1)]);
    case 'zeroPadding2d': {
      const [[top, bottom], [left, right]] = p.padding;
      return padOrCrop(filled[0]! as tf.Tensor4D, top, bottom, left, right);
    }
    case 'concatenate':
      return tf.concat(filled, p.axis);
    default:
      return transformerStructuralAdjoint(node, filled[0]!);
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
      return { backward: (r) => [r], adjoint: ([v]) => v ?? tf.zerosLike(ctx.output), dispose: noDispose };
    },
  };
}

/**
 * Pass to the feature branch: the relevance of a gated product y = x * g (squeeze-excitation: a feature map x
 * times a gate g broadcast over height and width, a `multiply` node with the feature map as first input) goes to
 * x unchanged, and the gate gets none. The gate is read as a per-channel weight that the input chose, not as a
 * source of evidence (the convention of LRP for gated units, e.g. LSTM gates, Arras et al. 2017). zennit 0.5.1
 * has no rule for a product of two tensors: a product written in a model's `forward` is differentiated by
 * autograd (R_x = g * R, R_g = x * R; {@link gradient} does the same here), so the reference cases of gated
 * models compute this rule in the generator with a custom autograd function.
 */
export function passToFeature(): Rule {
  return {
    name: 'PassToFeature',
    params: {},
    prepare(ctx: RuleContext): PreparedRule {
      const [x, g] = ctx.inputs;
      if (ctx.inputs.length !== 2 || !x!.shape.every((d, i) => d === ctx.output.shape[i])) {
        throw new CrpError(
          'invalid-rule',
          `PassToFeature needs a product of a feature map (first input, of the output's shape) and a gate; '${ctx.node.id}' (${ctx.node.className}) is not one`,
        );
      }
      return {
        backward: (r) => [r, tf.zeros([r.shape[0]!, ...g!.shape.slice(1)])],
        adjoint: ([v]) => v ?? tf.zerosLike(ctx.output),
        dispose: noDispose,
      };
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
        // R_i = x_i * R / stab(z), so B^T(v) = sum_i x_i * v_i / stab(z)
        adjoint: (values) => {
          let sum: tf.Tensor | undefined;
          values.forEach((v, i) => {
            if (v === null) return;
            const term = tf.mul(ctx.inputs[i]!, v);
            sum = sum === undefined ? term : tf.add(sum, term);
          });
          return sum === undefined ? tf.zerosLike(ctx.output) : tf.div(sum, denominator);
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
      const zeroOut = () => tf.zerosLike(ctx.output);
      if (p.kind === 'maxPool2d') {
        const prepared = prepareMaxPoolGradient(x as tf.Tensor4D, p, ctx.output as tf.Tensor4D);
        return {
          backward: (r) => [prepared.backward(r as tf.Tensor4D)],
          adjoint: ([v]) => (v ? prepared.adjoint(v as tf.Tensor4D) : zeroOut()),
          dispose: () => prepared.dispose(),
        };
      }
      if (p.kind === 'globalMaxPool2d') {
        return {
          backward: (r) => [globalMaxPoolGradient(x as tf.Tensor4D, r as tf.Tensor2D)],
          adjoint: ([v]) =>
            v ? globalMaxPoolGradientAdjoint(x as tf.Tensor4D, v as tf.Tensor4D) : zeroOut(),
          dispose: noDispose,
        };
      }
      if (p.kind === 'add') {
        return {
          // one tensor per input: the engine accumulates and frees each input's relevance on its own
          backward: (r) => ctx.inputs.map(() => tf.clone(r)),
          adjoint: (values) => {
            const given = values.filter((v): v is tf.Tensor => v !== null);
            return given.length === 0 ? zeroOut() : given.length === 1 ? given[0]! : tf.addN(given);
          },
          dispose: noDispose,
        };
      }
      if (p.kind === 'multiply') {
        // y = x * g with g broadcast: dy/dx = g, dy/dg = x summed over the axes g is broadcast along
        const [a, b] = ctx.inputs as [tf.Tensor, tf.Tensor];
        const axesOf = (t: tf.Tensor) =>
          t.shape.map((d, i) => (i > 0 && d === 1 && ctx.output.shape[i]! > 1 ? i : -1)).filter((i) => i > 0);
        const reduce = (t: tf.Tensor, like: tf.Tensor) => {
          const axes = axesOf(like);
          return axes.length === 0 ? t : tf.sum(t, axes, true);
        };
        return {
          backward: (r) => [reduce(tf.mul(r, b), a), reduce(tf.mul(r, a), b)],
          adjoint: ([va, vb]) => {
            const terms: tf.Tensor[] = [];
            if (va) terms.push(tf.mul(va, b));
            if (vb) terms.push(tf.mul(vb, a));
            return terms.length === 0
              ? zeroOut()
              : terms.length === 1
                ? terms[0]!
                : tf.add(terms[0]!, terms[1]!);
          },
          dispose: noDispose,
        };
      }
      if (isStructural(node))
        return {
          backward: (r) => structuralBackward(node, ctx.inputs, r),
          adjoint: (values) => structuralAdjoint(node, ctx.inputs, ctx.output, values),
          dispose: noDispose,
        };
      if (p.kind === 'batchNorm') {
        const scale = tf.tidy(() => {
          const inv = tf.rsqrt(tf.add(p.movingVariance, p.epsilon));
          return p.gamma === null ? inv : tf.mul(inv, p.gamma);
        });
        return {
          backward: (r) => [tf.mul(r, scale)],
          adjoint: ([v]) => (v ? tf.mul(v, scale) : zeroOut()),
          dispose: () => scale.dispose(),
        };
      }
      // the transformer kinds whose gradient is not an element-wise factor or one linear map (LayerNorm's division
      // by the deviation, a product of two activations, softmax over tokens): autodiff of the node's own forward
      if (
        p.kind === 'layerNorm' ||
        p.kind === 'matMul' ||
        (p.kind === 'activation' && node.activation === 'softmax')
      ) {
        const f = (...xs: tf.Tensor[]) => forwardNode(node, xs).output;
        return {
          backward: (r) => {
            // one forward pass serves several rows of relevance (conditions): repeat a batch of 1 to the rows
            const xs = ctx.inputs.map((t) =>
              t.shape[0] === r.shape[0] ? t : tf.tile(t, [r.shape[0]!, ...t.shape.slice(1).map(() => 1)]),
            );
            return tf.grads(f)(xs, r);
          },
          adjoint: () => {
            throw new CrpError(
              'invalid-rule',
              `the plain gradient of '${node.id}' (${node.className}) has no adjoint; region relevance needs an LRP composite (attn_lrp for transformers)`,
            );
          },
          dispose: noDispose,
        };
      }
      // the activation's derivative (fused activations of linear layers included)
      const act = node.activation;
      const derivative = tidyKeep(
        (): tf.Tensor | null => {
          const z = ctx.linearOutput;
          if (act === 'linear') return null;
          if (act === 'relu') return tf.cast(tf.greater(z, 0), 'float32');
          if (act === 'relu6') return tf.cast(tf.logicalAnd(tf.greater(z, 0), tf.less(z, 6)), 'float32');
          if (act === 'gelu') {
            // d/dz z Phi(z) = Phi(z) + z phi(z), the exact (erf) GELU of applyActivation
            const cdf = tf.mul(0.5, tf.add(1, tf.erf(tf.div(z, Math.SQRT2))));
            const pdf = tf.mul(1 / Math.sqrt(2 * Math.PI), tf.exp(tf.mul(-0.5, tf.square(z))));
            return tf.add(cdf, tf.mul(z, pdf));
          }
          throw new CrpError(
            'invalid-rule',
            `no plain gradient for activation '${act}' of '${node.id}'; map activations to rules.pass() in the composite`,
          );
        },
        (d) => [d],
      );
      const map = linearMapOf(node, x.shape);
      const back = map === undefined ? null : ctx.params('identity', (q) => q).back;
      const weight = map === undefined ? null : ctx.params('identity', (q) => q).weight;
      return {
        backward: (r) => {
          const g = derivative === null ? r : tf.mul(r, derivative);
          if (map === undefined) return [g];
          return [map.transpose(g, back)];
        },
        // backward is back(d * R): its transpose is d * f(v) with the layer's linear map without bias
        adjoint: ([v]) => {
          if (!v) return zeroOut();
          const f = map === undefined ? v : map.forward(v, { weight, bias: null });
          return derivative === null ? f : tf.mul(f, derivative);
        },
        dispose: () => derivative?.dispose(),
      };
    },
  };
}

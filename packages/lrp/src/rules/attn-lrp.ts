/**
 * The AttnLRP rules (Achtibat et al., ICML 2024) as LXT's explicit functions compute them
 * (`lxt.explicit.functional`: linear_epsilon, layer_norm, softmax, matmul, add2; the identity rule on element-wise
 * non-linearities), and the CP-LRP rule for the attention-weighted values (`lxt.explicit.special`). LXT's
 * stabiliser is `z + eps` (no sign), which these rules keep, so their numbers are LXT's to the last digit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CrpError } from '../errors.js';
import type { GraphNode } from '../graph/types.js';
import { sharedFactor } from '../ops/head-matmul.js';
import { basicRule } from './basic-rule.js';
import { paramModifiers } from './modifiers.js';
import type { PreparedRule, Rule, RuleContext } from './rule.js';

/** LXT's `_stabilize`: z + eps, without zennit's sign (LXT's epsilons are tiny and only guard exact zeros). */
function lxtStabilize(z: tf.Tensor, eps: number): tf.Tensor {
  return tf.add(z, eps);
}

function nonNegative(name: string, value: number): void {
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new CrpError('invalid-argument', `${name} must be a finite number >= 0, got ${value}`);
  }
}

function requireKind(ctx: RuleContext, rule: string, ok: (n: GraphNode) => boolean, what: string): void {
  if (!ok(ctx.node)) {
    throw new CrpError(
      'invalid-rule',
      `rule ${rule} applies to ${what}; '${ctx.node.id}' is ${ctx.node.className} (kind ${ctx.node.kind})`,
    );
  }
}

/** Sum over the last axis, kept. */
function sumLast(t: tf.Tensor): tf.Tensor {
  return tf.sum(t, t.rank - 1, true);
}

function meanLast(t: tf.Tensor): tf.Tensor {
  return tf.mean(t, t.rank - 1, true);
}

/** LXT's `linear_epsilon` (AttnLRP Eq. 8) for Dense and Conv2D: R_in = x * back(W, R / (z + eps)), z = f(x; W, b). */
export function linearEpsilon(eps = 1e-6): Rule {
  nonNegative('epsilon', eps);
  return basicRule({
    name: 'LinearEpsilon',
    params: { epsilon: eps },
    branches: [{ input: 'identity', params: paramModifiers.identity }],
    gradientMapper: (r, [z]) => [tf.div(r, lxtStabilize(z!, eps))],
    reducer: [{ branch: 0 }],
  });
}

/**
 * LXT's `layer_norm`: the epsilon rule on the centring x - mean(x) and the identity rule on the division by the
 * standard deviation (treated as a constant) and on the element-wise scale: with g = R / (y + eps) * gamma / std,
 * R_in = x * (g - mean(g)) over the features.
 */
export function layerNormEpsilon(eps = 1e-6): Rule {
  nonNegative('epsilon', eps);
  return {
    name: 'LayerNormEpsilon',
    params: { epsilon: eps },
    prepare(ctx): PreparedRule {
      requireKind(ctx, 'LayerNormEpsilon', (n) => n.kind === 'layerNorm', 'LayerNormalization');
      const p = ctx.node.params;
      if (p.kind !== 'layerNorm') throw new Error('unreachable');
      const x = ctx.inputs[0]!;
      // factor = gamma / std / (y + eps), shaped like the output
      const factor = tf.tidy(() => {
        const centered = tf.sub(x, meanLast(x));
        const inv = tf.rsqrt(tf.add(meanLast(tf.square(centered)), p.epsilon));
        const scaled = p.gamma === null ? inv : tf.mul(inv, p.gamma);
        return tf.div(scaled, lxtStabilize(ctx.output, eps));
      });
      return {
        backward: (r) => {
          const g = tf.mul(r, factor);
          return [tf.mul(x, tf.sub(g, meanLast(g)))];
        },
        // B(R) = x * C(factor * R) with the centring C symmetric, so B^T(v) = factor * C(x * v)
        adjoint: ([v]) => {
          if (!v) return tf.zeros([1, ...ctx.output.shape.slice(1)]);
          const xv = tf.mul(x, v);
          return tf.mul(factor, tf.sub(xv, meanLast(xv)));
        },
        dispose: () => factor.dispose(),
      };
    },
  };
}

/**
 * LXT's `softmax` rule (AttnLRP Proposition 3.1, deep Taylor decomposition at x with bias), over the last axis:
 * R_in = x * (R - s * sum(R)), with x the softmax input and s its output. Not conservative by design: the
 * remainder is the decomposition's bias term.
 */
export function softmaxDT(): Rule {
  return {
    name: 'SoftmaxDT',
    params: {},
    prepare(ctx): PreparedRule {
      requireKind(
        ctx,
        'SoftmaxDT',
        (n) => n.kind === 'activation' && n.activation === 'softmax',
        'a softmax (Softmax layer or activation)',
      );
      const x = ctx.linearOutput;
      const s = ctx.output;
      return {
        backward: (r) => [tf.mul(x, tf.sub(r, tf.mul(s, sumLast(r))))],
        // R_in_i = x_i R_i - x_i s_i sum_j R_j, so B^T(v)_j = x_j v_j - sum_i x_i s_i v_i
        adjoint: ([v]) => {
          if (!v) return tf.zerosLike(s);
          const xv = tf.mul(x, v);
          return tf.sub(xv, sumLast(tf.mul(xv, s)));
        },
        dispose: () => {},
      };
    },
  };
}

/**
 * The inputs of a matMul node and the products its rules take: a op(b) (op: transpose when `transposeB`) and the
 * gradients of <g, a op(b)> in a and in b, for g of any batch. The forward activations a and b are one image's,
 * shared by every row of g: on wasm they run per head on XNNPACK (`ops/head-matmul.ts`).
 */
function matMulParts(ctx: RuleContext) {
  const p = ctx.node.params;
  if (p.kind !== 'matMul') throw new Error('unreachable');
  const [a, b] = [ctx.inputs[0]!, ctx.inputs[1]!];
  const t = p.transposeB;
  const [sharedA, sharedB] = [sharedFactor(a), sharedFactor(b)];
  return {
    a,
    b,
    scale: p.scale,
    /** a op(b) */
    product: () => (t ? sharedB.timesTransposed(a) : sharedB.times(a)),
    /** alpha op(beta) */
    timesB: (alpha: tf.Tensor, beta: tf.Tensor) => tf.matMul(alpha, beta, false, t),
    /** the gradient of <g, alpha op(b)> in alpha: g op(b)^T */
    backA: (g: tf.Tensor) => (t ? sharedB.times(g) : sharedB.timesTransposed(g)),
    /** the gradient of <g, a op(beta)> in beta: a^T g, or g^T a when transposed */
    backB: (g: tf.Tensor) => (t ? sharedA.times(g, true) : sharedA.transposedTimes(g)),
    dispose: () => {
      sharedA.dispose();
      sharedB.dispose();
    },
  };
}

/**
 * LXT's `matmul` rule for the product of two activations (AttnLRP Proposition 3.3): the epsilon rule, then the
 * uniform rule, so each factor gets half: with Rn = R / (2 z + eps) and z = a op(b) (before the node's scale,
 * which passes relevance unchanged as LXT's `mul2` by a constant), R_a = a * (Rn op(b)^T), R_b = b * (grad in b).
 */
export function uniformMatmul(eps = 1e-8): Rule {
  nonNegative('epsilon', eps);
  return {
    name: 'UniformMatmul',
    params: { epsilon: eps },
    prepare(ctx): PreparedRule {
      requireKind(
        ctx,
        'UniformMatmul',
        (n) => n.kind === 'matMul',
        'the product of two activations (MatMul)',
      );
      const m = matMulParts(ctx);
      // without a scale the node's output is the product itself (attention x values): not computed again
      const denominator = tf.tidy(() =>
        lxtStabilize(tf.mul(m.scale === 1 ? ctx.output : m.product(), 2), eps),
      );
      return {
        backward: (r) => {
          const rn = tf.div(r, denominator);
          return [tf.mul(m.a, m.backA(rn)), tf.mul(m.b, m.backB(rn))];
        },
        adjoint: ([va, vb]) => {
          const terms: tf.Tensor[] = [];
          if (va) terms.push(m.timesB(tf.mul(va, m.a), m.b));
          if (vb) terms.push(m.timesB(m.a, tf.mul(vb, m.b)));
          if (terms.length === 0) return tf.zerosLike(ctx.output);
          return tf.div(terms.length === 1 ? terms[0]! : tf.add(terms[0]!, terms[1]!), denominator);
        },
        dispose: () => {
          denominator.dispose();
          m.dispose();
        },
      };
    },
  };
}

/**
 * CP-LRP for the attention-weighted values (LXT's `multi_head_attention_cp`): the attention weights are held
 * constant, so no relevance reaches them (nor the queries and keys); the values get the epsilon rule of the
 * linear map v -> scale * A v: R_v = v * grad_v(R / (z + eps)), z the node's output.
 */
export function cpMatmul(eps = 1e-6): Rule {
  nonNegative('epsilon', eps);
  return {
    name: 'CPMatmul',
    params: { epsilon: eps },
    prepare(ctx): PreparedRule {
      requireKind(ctx, 'CPMatmul', (n) => n.kind === 'matMul', 'the product of two activations (MatMul)');
      const m = matMulParts(ctx);
      const factor = tf.tidy(() => tf.div(m.scale, lxtStabilize(ctx.output, eps)));
      return {
        backward: (r) => {
          const rn = tf.mul(r, factor);
          return [tf.zeros([r.shape[0]!, ...m.a.shape.slice(1)]), tf.mul(m.b, m.backB(rn))];
        },
        adjoint: ([, vb]) => (vb ? tf.mul(factor, m.timesB(m.a, tf.mul(vb, m.b))) : tf.zerosLike(ctx.output)),
        dispose: () => {
          factor.dispose();
          m.dispose();
        },
      };
    },
  };
}

/**
 * LXT's `add2` (AttnLRP Eq. 8 for a sum): relevance split in proportion to the summands, R_i = x_i R / (z + eps).
 * On a position embedding the learned summand keeps its share, as a bias does.
 */
export function add2(eps = 1e-8): Rule {
  nonNegative('epsilon', eps);
  return {
    name: 'Add2',
    params: { epsilon: eps },
    prepare(ctx): PreparedRule {
      requireKind(
        ctx,
        'Add2',
        (n) => n.kind === 'add' || n.kind === 'positionEmbedding',
        'Add and PositionEmbedding layers',
      );
      const inverse = tf.tidy(() => tf.reciprocal(lxtStabilize(ctx.output, eps)));
      return {
        backward: (r) => {
          const s = tf.mul(r, inverse);
          return ctx.inputs.map((x) => tf.mul(x, s));
        },
        adjoint: (values) => {
          const terms = values.flatMap((v, i) => (v ? [tf.mul(ctx.inputs[i]!, v)] : []));
          if (terms.length === 0) return tf.zerosLike(ctx.output);
          return tf.mul(terms.length === 1 ? terms[0]! : tf.addN(terms), inverse);
        },
        dispose: () => inverse.dispose(),
      };
    },
  };
}

import * as tf from '@tensorflow/tfjs-core';
import { CrpError } from '../errors.js';
import { type LinearMap, linearMapOf } from '../ops/linear.js';
import type { InputModifier, ParamModifier } from './modifiers.js';
import type { BackwardHint, CachedParams, PreparedRule, Rule, RuleContext } from './rule.js';

/** One term of zennit's `input * gradient` pass: branch k's input modifier, parameter modifier and an
 * optional output modifier. */
export interface RuleBranch {
  input: InputModifier;
  params: ParamModifier;
  output?: (z: tf.Tensor) => tf.Tensor;
}

/** One summand of a reducer: coefficient * (input_k if `timesInput`, else 1) * gradient_k. */
export interface ReducerTerm {
  branch: number;
  coefficient?: number;
  /** default true; false for rules whose result does not scale with the input (Flat, WSquare) */
  timesInput?: boolean;
}

/**
 * The zennit decomposition of a rule (its `BasicHook`): for each branch k, out_k = output_k(f(input_k(x);
 * params_k(W, b))); the gradient mapper turns the relevance R and all out_k into output gradients g_k; each
 * g_k is sent back through the transpose of the branch's linear map; the reducer combines inputs and
 * gradients into the input relevance.
 */
export interface BasicRuleSpec {
  name: string;
  params?: Record<string, number>;
  branches: RuleBranch[];
  /**
   * g_k from R and the branch outputs (a branch whose output is zero by construction, a zero input through
   * parameters without bias, gets a zero scalar); null for a branch whose gradient is not needed. It must be linear in R
   * and element-wise, g_k = R * a_k with a_k depending on the outputs only (every zennit rule's is: R divided
   * by a stabilised output, maybe gated by a sign): the adjoint pass reads a_k by passing R = 1.
   */
  gradientMapper: (relevance: tf.Tensor, outputs: readonly tf.Tensor[]) => (tf.Tensor | null)[];
  /** A sum of terms (lets the engine skip branches with zero input, and gives the rule its adjoint), or any
   * function of inputs/gradients (such a rule has no adjoint: the adjoint pass refuses it). */
  reducer:
    | ReducerTerm[]
    | ((inputs: readonly tf.Tensor[], gradients: readonly (tf.Tensor | null)[]) => tf.Tensor);
}

const ZERO = Symbol('zero input');

/** Branch outputs that are zero by construction: a zero input (the negative part of a non-negative input) through
 * parameters without bias. Such an output is a zero scalar, which broadcasts against the other outputs and the
 * relevance as the zero map would. */
const zeroOutputs = new WeakSet<tf.Tensor>();

/**
 * a + b for a gradient mapper's branch outputs, without the addition when one of them is zero by construction
 * (ZPlus and AlphaBeta on a layer after a ReLU: x- W- is all zero). The values are those of `tf.add`, up to the
 * sign of a zero sum (-0 + 0 is +0), which no stabiliser tells apart: `-0 >= 0` holds.
 */
export function addOutputs(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (zeroOutputs.has(b)) return a;
  if (zeroOutputs.has(a)) return b;
  return tf.add(a, b);
}

/** The channels (last axis) of `r` that are not all zero, when they are at most half of them. */
function nonzeroChannels(r: tf.Tensor): tf.Tensor1D | undefined {
  const c = r.shape[r.rank - 1]!;
  const axes = r.shape.slice(0, -1).map((_, i) => i);
  const used = tf.tidy(() => tf.max(tf.abs(r), axes)).dataSync();
  const list: number[] = [];
  for (let i = 0; i < c; i++) if (used[i]! > 0) list.push(i);
  // (no channel at all: the plain transpose gives the zeros)
  return list.length > 0 && list.length * 2 <= c ? tf.tensor1d(list, 'int32') : undefined;
}

function modifyInput(mod: InputModifier, x: tf.Tensor, nonNegative: () => boolean): tf.Tensor | typeof ZERO {
  if (mod === 'identity') return x;
  if (mod === 'positive') return nonNegative() ? x : tf.relu(x);
  if (mod === 'negative') return nonNegative() ? ZERO : tf.minimum(x, 0);
  if (mod === 'ones') return tf.onesLike(x);
  if (typeof mod === 'function') return mod(x);
  return typeof mod.fill === 'number' ? tf.fill(x.shape, mod.fill) : tf.add(tf.zerosLike(x), mod.fill);
}

class PreparedBasicRule implements PreparedRule {
  /** a_k of g_k = R * a_k per branch (null: no gradient), made on the first adjoint call */
  private factors: (tf.Tensor | null)[] | undefined;

  constructor(
    private readonly spec: BasicRuleSpec,
    private readonly map: LinearMap,
    private readonly inputs: (tf.Tensor | typeof ZERO)[],
    private readonly outputs: tf.Tensor[],
    /** undefined for a branch never transposed (see {@link BasicRule.prepare}) */
    private readonly params: (CachedParams | undefined)[],
    private readonly owned: tf.Tensor[],
    /** the layer's input (its shape: an input that is zero by construction is not kept) */
    private readonly layerInput: tf.Tensor,
    private readonly where: string,
    /** the layer's output shape (a branch output that is zero by construction is a scalar) */
    private readonly outputShape: readonly number[],
  ) {}

  backward(relevance: tf.Tensor, hint?: BackwardHint): tf.Tensor[] {
    const grads = this.spec.gradientMapper(relevance, this.outputs);
    // masked relevance (CRP) often lives on a few channels: the gradients share its zero channels, so the
    // transposes can run on those channels alone
    const channels =
      hint?.channelSparse && this.map.transposeChannels ? nonzeroChannels(relevance) : undefined;
    const back = (k: number) =>
      channels === undefined
        ? this.map.transpose(grads[k]!, this.params[k]!.back)
        : this.map.transposeChannels!(grads[k]!, this.params[k]!.back, channels);
    const reducer = this.spec.reducer;
    if (typeof reducer === 'function') {
      // an input that is zero by construction was never made: the function gets its zeros
      const inputs = this.inputs.map((x) => (x === ZERO ? tf.zerosLike(this.layerInput) : x));
      const gradients = grads.map((g, k) => (g === null ? null : back(k)));
      return [reducer(inputs, gradients)];
    }
    let sum: tf.Tensor | undefined;
    for (const term of reducer) {
      const k = term.branch;
      const input = this.inputs[k];
      const timesInput = term.timesInput !== false;
      if (grads[k] === null || grads[k] === undefined || (timesInput && input === ZERO)) continue;
      let value = back(k);
      if (timesInput) value = tf.mul(input as tf.Tensor, value);
      if (term.coefficient !== undefined && term.coefficient !== 1) value = tf.mul(value, term.coefficient);
      sum = sum === undefined ? value : tf.add(sum, value);
    }
    // every term vanished (e.g. only negative-input branches on a ReLU output)
    return [sum ?? tf.zeros([relevance.shape[0]!, ...this.layerInput.shape.slice(1)])];
  }

  /**
   * B^T(v) = sum over terms of c_k * a_k * f_k(x_k * v), where f_k is the branch's linear map without bias
   * (the transpose of its `back`), x_k its modified input (1 for terms without input) and a_k the gradient
   * mapper's factor: the reverse of backward's c_k * x_k * back_k(a_k * R), term by term.
   */
  adjoint(values: readonly (tf.Tensor | null)[]): tf.Tensor {
    const reducer = this.spec.reducer;
    if (typeof reducer === 'function') {
      throw new CrpError(
        'no-adjoint',
        `rule ${this.spec.name} at '${this.where}' has a reducer function, so its transpose is unknown; give the rule a reducer of terms ({ branch, coefficient, timesInput }) or a PreparedRule with adjoint()`,
      );
    }
    const v = values[0];
    const outShape = [v?.shape[0] ?? this.layerInput.shape[0]!, ...this.outputShape.slice(1)];
    if (v === null || v === undefined) return tf.zeros(outShape);
    const factors = this.adjointFactors();
    let sum: tf.Tensor | undefined;
    for (const term of reducer) {
      const k = term.branch;
      const input = this.inputs[k];
      const a = factors[k];
      const timesInput = term.timesInput !== false;
      if (a === null || a === undefined || (timesInput && input === ZERO)) continue;
      const weighted = timesInput ? tf.mul(input as tf.Tensor, v) : v;
      let value = tf.mul(a, this.map.forward(weighted, { weight: this.params[k]!.weight, bias: null }));
      if (term.coefficient !== undefined && term.coefficient !== 1) value = tf.mul(value, term.coefficient);
      sum = sum === undefined ? value : tf.add(sum, value);
    }
    return sum ?? tf.zeros(outShape);
  }

  private adjointFactors(): (tf.Tensor | null)[] {
    if (this.factors === undefined) {
      let made: (tf.Tensor | null)[] = [];
      tf.tidy(() => {
        const ones = tf.ones(this.outputShape as number[]);
        made = this.spec.gradientMapper(ones, this.outputs).map((a) => (a === null ? null : tf.keep(a)));
      });
      // a mapper may hand out the same tensor for several branches: own each once
      for (const a of new Set(made)) if (a !== null) this.owned.push(a);
      this.factors = made;
    }
    return this.factors;
  }

  dispose(): void {
    for (const t of this.owned) t.dispose();
  }
}

class BasicRule implements Rule {
  readonly name: string;
  readonly params: Readonly<Record<string, number>>;
  constructor(private readonly spec: BasicRuleSpec) {
    this.name = spec.name;
    this.params = spec.params ?? {};
    if (spec.branches.length === 0) throw new CrpError('invalid-rule', `rule ${spec.name} has no branches`);
  }

  prepare(ctx: RuleContext): PreparedRule {
    const { node } = ctx;
    if (ctx.inputs.length !== 1) {
      throw new CrpError(
        'invalid-rule',
        `rule ${this.name} applies to single-input layers; '${node.id}' has ${ctx.inputs.length} inputs`,
      );
    }
    const x = ctx.inputs[0]!;
    const map = linearMapOf(node, x.shape);
    if (map === undefined) {
      throw new CrpError(
        'invalid-rule',
        `rule ${this.name} needs a linear layer (Conv2D, DepthwiseConv2D, Dense, pooling); '${node.id}' is ${node.className}`,
      );
    }
    const owned: tf.Tensor[] = [];
    const keep = <T extends tf.Tensor>(t: T): T => {
      if (!ctx.inputs.includes(t) && t !== ctx.linearOutput && t !== ctx.output) owned.push(tf.keep(t));
      return t;
    };
    const nonNegative = () => ctx.isNonNegative(0);
    const reducer = this.spec.reducer;
    // a branch whose input is zero by construction (see modifyInput), whose terms all multiply by that input and
    // whose parameters have no bias never needs its parameters: its output is zero, backward and adjoint skip
    // it (ZPlus and AlphaBeta after a ReLU: W- is not made, 1 ms of CPU per 3x3x64x128 kernel on wasm)
    const params = this.spec.branches.map((b, k) =>
      b.input === 'negative' &&
      b.params.dropsBias === true &&
      Array.isArray(reducer) &&
      reducer.every((t) => t.branch !== k || t.timesInput !== false) &&
      nonNegative()
        ? undefined
        : ctx.params(b.params.key, (p) => b.params.modify(p)),
    );
    let inputs: (tf.Tensor | typeof ZERO)[] = [];
    let outputs: tf.Tensor[] = [];
    tf.tidy(() => {
      const ins = this.spec.branches.map((b) => modifyInput(b.input, x, nonNegative));
      const outs = this.spec.branches.map((b, k) => {
        const input = ins[k]!;
        let z: tf.Tensor;
        if (input === x && b.params.key === 'identity') z = ctx.linearOutput;
        else if (input === ZERO) {
          // without bias, a zero scalar: it broadcasts as the zero map would, and no map is allocated and filled
          // (ZPlus after a ReLU: one per conv and pass, about 5 ms of a ResNet-50 heatmap)
          if (params[k] === undefined || params[k].bias === null) {
            z = tf.zeros([]);
            zeroOutputs.add(z);
          } else z = tf.add(tf.zerosLike(ctx.linearOutput), params[k]!.bias!);
        } else z = map.forward(input, params[k]!);
        return b.output ? b.output(z) : z;
      });
      inputs = ins.map((t) => (t === ZERO ? ZERO : keep(t)));
      outputs = outs.map((t) => keep(t));
    });
    return new PreparedBasicRule(
      this.spec,
      map,
      inputs,
      outputs,
      params,
      owned,
      x,
      node.id,
      ctx.linearOutput.shape,
    );
  }
}

/** Builds a rule from zennit's parts; see {@link BasicRuleSpec}. This is how every built-in LRP rule is
 * made, and how a user writes a new one in a few lines. */
export function basicRule(spec: BasicRuleSpec): Rule {
  return new BasicRule(spec);
}

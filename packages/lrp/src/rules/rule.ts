import type * as tf from '@tensorflow/tfjs-core';
import type { GraphNode } from '../graph/types.js';
import type { LinearParams } from '../ops/linear.js';

/** Parameters derived from a layer's weights once and kept for the attributor's lifetime. */
export interface CachedParams extends LinearParams {
  /** What the layer's transpose needs from `weight` (e.g. the flipped kernel). */
  back: tf.Tensor | null;
}

/** What a rule sees of one node in one forward pass. Tensors here are owned by the engine. */
export interface RuleContext {
  readonly node: GraphNode;
  /** The node's forward inputs. */
  readonly inputs: readonly tf.Tensor[];
  /** The node's forward output (after its activation). */
  readonly output: tf.Tensor;
  /** The output of the node's linear part before a fused activation, f(x; W, b). */
  readonly linearOutput: tf.Tensor;
  /** True when every element of input `i` is >= 0 (checked once per pass, lazily). */
  isNonNegative(i: number): boolean;
  /** Parameters modified by `key`'s modifier, computed once per node and cached by the engine. */
  params(key: string, modify: (p: LinearParams) => LinearParams): CachedParams;
}

/** What the engine knows about the relevance it hands to a rule. */
export interface BackwardHint {
  /** The relevance was masked on its way (a CRP condition): many of its channels may be all zero, so a
   * rule may skip them. */
  channelSparse?: boolean;
}

/** A rule prepared for one node of one forward pass: maps relevance at the node's output to relevance at
 * each of its inputs. `backward` runs inside the engine's `tf.tidy`; `dispose` frees what `prepare` kept. */
export interface PreparedRule {
  backward(relevance: tf.Tensor, hint?: BackwardHint): tf.Tensor[];
  /**
   * The transpose (adjoint) of `backward`. With the forward pass fixed, `backward` is a linear map B from the
   * relevance at the node's output to the relevance at each input; `adjoint` maps values v_i at the inputs
   * (node input order; null for an input that carries none) to B^T(v) at the output, so that
   * sum_i <v_i, B(r)_i> = <B^T(v), r> for every r. Runs inside the engine's `tf.tidy`.
   *
   * Rules built with {@link basicRule} and every built-in rule have it. A custom rule without it cannot take
   * part in an adjoint pass (`Attributor.adjoint` throws `no-adjoint`).
   */
  adjoint?(values: readonly (tf.Tensor | null)[]): tf.Tensor;
  dispose(): void;
}

/**
 * An LRP rule: how relevance passes through one layer. Rules are data, not layer subclasses: most are a
 * {@link basicRule} composed of input/parameter/output modifiers, a gradient mapper and a reducer.
 */
export interface Rule {
  /** The rule's name as zennit spells it (`Epsilon`, `ZPlus`, ...). */
  readonly name: string;
  /** Its parameters, for reports (`{ epsilon: 1e-6 }`). */
  readonly params: Readonly<Record<string, number>>;
  prepare(ctx: RuleContext): PreparedRule;
}

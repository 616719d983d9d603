import * as tf from '@tensorflow/tfjs-core';
import { CrpError } from './errors.js';
import type { ModelGraph } from './graph/model-graph.js';
import { forwardTransformer } from './graph/transformer-layers.js';
import type { GraphNode } from './graph/types.js';
import { applyActivation } from './ops/activation.js';
import { adaptiveAvgPool2d } from './ops/adaptive-avg-pool.js';
import { linearMapOf, linearParamsOf } from './ops/linear.js';
import type { PreparedRule } from './rules/rule.js';

/** Runs one node forward: returns its output and, for layers with a fused activation, the output of the
 * linear part before it. */
export function forwardNode(node: GraphNode, inputs: tf.Tensor[]): { output: tf.Tensor; linear?: tf.Tensor } {
  const x = inputs[0]!;
  const p = node.params;
  const [alpha, beta] = p.kind === 'activation' ? [p.alpha, p.beta] : [];
  switch (p.kind) {
    case 'input':
      return { output: x };
    case 'conv2d':
    case 'depthwiseConv2d':
    case 'dense': {
      const linear = linearMapOf(node, x.shape)!.forward(x, linearParamsOf(node));
      if (node.activation === 'linear') return { output: linear };
      return { output: applyActivation(node.activation, linear), linear };
    }
    case 'activation':
      return { output: applyActivation(node.activation, x, alpha, beta) };
    case 'maxPool2d': {
      // explicit pads never win a window (tf.maxPool skips them), as PyTorch's -inf padding
      const pad =
        typeof p.padding === 'string'
          ? p.padding
          : ([[0, 0], p.padding[0], p.padding[1], [0, 0]] as tf.backend_util.ExplicitPadding);
      return { output: tf.maxPool(x as tf.Tensor4D, p.poolSize, p.strides, pad) };
    }
    case 'avgPool2d':
      return { output: linearMapOf(node, x.shape)!.forward(x, { weight: null, bias: null }) };
    case 'adaptiveAvgPool2d':
      return { output: adaptiveAvgPool2d(x, p.outputSize) };
    case 'globalAvgPool2d':
      return { output: tf.mean(x, [1, 2]) };
    case 'globalMaxPool2d':
      return { output: tf.max(x, [1, 2]) };
    case 'flatten':
      return { output: tf.reshape(x, [x.shape[0]!, -1]) };
    case 'reshape':
      return { output: tf.reshape(x, [x.shape[0]!, ...p.targetShape]) };
    case 'identity':
      return { output: x };
    case 'batchNorm': {
      let y = tf.mul(tf.sub(x, p.movingMean), tf.rsqrt(tf.add(p.movingVariance, p.epsilon)));
      if (p.gamma !== null) y = tf.mul(y, p.gamma);
      if (p.beta !== null) y = tf.add(y, p.beta);
      return { output: y };
    }
    case 'zeroPadding2d':
      return { output: tf.pad(x, [[0, 0], p.padding[0], p.padding[1], [0, 0]]) };
    case 'add':
      // two inputs (a residual block's): XNNPACK's addition, not wasm's AddN loop (about 1.4x its CPU). The same
      // sums, up to the sign of a zero sum of two -0 (AddN starts at +0): equal values, and the stabiliser's sign0
      // is +1 for both zeros
      return { output: inputs.length === 2 ? tf.add(inputs[0]!, inputs[1]!) : tf.addN(inputs) };
    case 'concatenate':
      return { output: tf.concat(inputs, p.axis) };
    case 'multiply':
      return { output: tf.mul(inputs[0]!, inputs[1]!) };
    case 'custom':
      return { output: p.forward(inputs) };
    default:
      return { output: forwardTransformer(node.id, p, inputs) };
  }
}

/**
 * The activations of one forward pass, kept for the backward passes that explain it (several backward
 * passes, e.g. chunks of CRP conditions, can share one forward pass). Owns its tensors: call `dispose()`.
 */
export class ForwardPass {
  /** Each computed node's output (after its activation), by node id. */
  readonly outputs = new Map<string, tf.Tensor>();
  /** Output of the linear part of nodes with a fused activation. */
  readonly linearOutputs = new Map<string, tf.Tensor>();
  /** Rules prepared against this pass's own activations, by node id (created by the attributor on first use;
   * a rule of a borrowed node is kept by the pass that owns it, see {@link ForwardPass.preparedRule}). */
  readonly prepared = new Map<string, PreparedRule>();
  private readonly nonNegative = new Map<string, boolean>();
  /** The pass that owns each borrowed node's output, linear output and prepared rule (see {@link runForward}). */
  private readonly owners = new Map<string, ForwardPass>();
  /** The distinct passes of `owners`, checked by {@link ForwardPass.assertLive}. */
  private readonly lenders = new Set<ForwardPass>();
  private disposed = false;

  constructor(
    readonly graph: ModelGraph,
    readonly input: tf.Tensor,
    /** The node whose output is the pass's prediction (the model output unless stopped early). */
    readonly top: string,
  ) {}

  get batchSize(): number {
    return this.input.shape[0]!;
  }

  /** The output of the top node: the logits by default. Owned by the pass. */
  get prediction(): tf.Tensor {
    return this.output(this.top);
  }

  output(id: string): tf.Tensor {
    this.assertLive();
    const t = this.outputs.get(this.graph.node(id).id);
    if (t === undefined) {
      throw new CrpError(
        'invalid-argument',
        `layer '${id}' was not computed in this forward pass (it is above '${this.top}')`,
      );
    }
    return t;
  }

  /** Whether every element of node `id`'s output is >= 0; computed once. */
  isNonNegative(id: string): boolean {
    const owner = this.owners.get(id);
    if (owner !== undefined) return owner.isNonNegative(id);
    let v = this.nonNegative.get(id);
    if (v === undefined) {
      const node = this.graph.node(id);
      if (node.activation === 'relu' || node.activation === 'relu6') {
        // by construction: no reduction over the map, no read back (a ResNet asks this of 50 maps a pass)
        v = true;
      } else if (
        (node.kind === 'maxPool2d' || node.kind === 'identity' || node.kind === 'zeroPadding2d') &&
        this.isNonNegative(node.inputs[0]!)
      ) {
        // the input's values (and zeros): ResNet's padding before its max pool and strided convs
        v = true;
      } else {
        const m = tf.tidy(() => tf.min(this.output(id)));
        v = m.dataSync()[0]! >= 0;
        m.dispose();
      }
      this.nonNegative.set(id, v);
    }
    return v;
  }

  /** The rule prepared at node `id` against this pass's activations, if any (a borrowed node's is its owner's). */
  preparedRule(id: string): PreparedRule | undefined {
    return (this.owners.get(id) ?? this).prepared.get(id);
  }

  /** Keeps a rule prepared at node `id` with the pass that owns the node's activations: it is built on them, so
   * it lives and is freed with them, also when a borrowing pass prepared it. */
  keepPrepared(id: string, rule: PreparedRule): void {
    (this.owners.get(id) ?? this).prepared.set(id, rule);
  }

  /** Takes node `id`'s output and linear output from `from`, or from the pass `from` took them from; that pass
   * keeps owning them, and the rule prepared at `id`. */
  borrow(id: string, from: ForwardPass): void {
    const owner = from.owners.get(id) ?? from;
    this.outputs.set(id, owner.output(id));
    const linear = owner.linearOutputs.get(id);
    if (linear !== undefined) this.linearOutputs.set(id, linear);
    this.owners.set(id, owner);
    this.lenders.add(owner);
  }

  /** Throws 'disposed' when this pass, or a pass it borrowed layers from, was disposed. */
  assertLive(): void {
    if (this.disposed) throw new CrpError('disposed', 'this forward pass was disposed');
    for (const owner of this.lenders) {
      if (owner.disposed) {
        const layers = [...this.owners].filter(([, o]) => o === owner).map(([id]) => `'${id}'`);
        throw new CrpError(
          'disposed',
          `the forward pass this one borrowed ${layers.join(', ')} from was disposed; dispose a pass made with reuse before the pass it reuses`,
        );
      }
    }
  }

  /** Frees what this pass computed and the rules prepared on it; borrowed layers stay their owner's. Also safe
   * after the owner was disposed. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.prepared.values()) p.dispose();
    this.prepared.clear();
    // each tensor once (an identity node's output is its input's), and never a borrowed one (the lender's), also
    // where an own node passed a borrowed input through
    const seen = new Set<tf.Tensor>();
    for (const id of this.owners.keys()) {
      for (const m of [this.outputs, this.linearOutputs]) {
        const t = m.get(id);
        if (t !== undefined) seen.add(t);
      }
    }
    const own = (m: Map<string, tf.Tensor>) =>
      [...m].filter(([id]) => !this.owners.has(id)).map(([, t]) => t);
    for (const t of [...own(this.outputs), ...own(this.linearOutputs)]) {
      // the input node's output is the caller's input tensor
      if (t !== this.input && !seen.has(t)) {
        seen.add(t);
        t.dispose();
      }
    }
    this.outputs.clear();
    this.linearOutputs.clear();
  }
}

/**
 * Runs the graph forward on `input` up to node `top` (inclusive). With `reuse`, a pass on the same input whose
 * nodes have since changed only in `reuse.changed` (and what depends on them): every other node's output and
 * prepared rule is borrowed from that pass instead of computed again (MPRT randomising a model from the top
 * recomputes only the layers above the one it changed). The borrowed tensors stay owned by `reuse.pass`, which
 * must outlive this pass.
 */
export function runForward(
  graph: ModelGraph,
  input: tf.Tensor,
  top: string,
  reuse?: { pass: ForwardPass; changed: readonly string[] },
): ForwardPass {
  const pass = new ForwardPass(graph, input, top);
  const needed = graph.ancestorsOf(top);
  const stale = new Set<string>();
  for (const id of reuse?.changed ?? []) for (const d of graph.descendantsOf(id)) stale.add(d);
  try {
    for (const node of graph.nodes) {
      if (!needed.has(node.id)) continue;
      if (reuse !== undefined && !stale.has(node.id) && reuse.pass.outputs.has(node.id)) {
        pass.borrow(node.id, reuse.pass);
        continue;
      }
      const inputs = node.kind === 'input' ? [input] : node.inputs.map((i) => pass.outputs.get(i)!);
      // an identity node (a batch norm the canonizer merged) returns its input tensor: the pass holds it under both
      // ids and frees it once (dispose). A clone cost a dispatch per node between the convs, about 50 in a
      // ResNet-50 heatmap, where such small steps run with the caches cold (bench/src/resnet-js-profile.ts)
      const { output, linear } = tf.tidy(() => forwardNode(node, inputs));
      pass.outputs.set(node.id, output);
      if (linear !== undefined) pass.linearOutputs.set(node.id, linear);
    }
  } catch (err) {
    pass.dispose();
    throw err;
  }
  return pass;
}

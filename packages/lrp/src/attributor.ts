import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type Canonizer, mergeBatchNorm, mergeZeroPadding } from './canonizers.js';
import { type Composite, compositeByName, compositeNameFor, defaultRuleFor } from './composites.js';
import { CrpError, listNames } from './errors.js';
import { type ForwardPass, runForward } from './forward.js';
import { type GraphOptions, graphFromLayersModel } from './graph/from-layers-model.js';
import type { ModelGraph } from './graph/model-graph.js';
import type { GraphNode } from './graph/types.js';
import { type LinearParams, linearMapOf, linearParamsOf, releaseTransposedWeight } from './ops/linear.js';
import { releasePhaseKernels, retainPhaseKernels } from './ops/strided.js';
import { tidyKeep } from './ops/tidy.js';
import type { CachedParams, Rule, RuleContext } from './rules/rule.js';
import { gradient, isStructural, pass, structuralAdjoint, structuralBackward } from './rules/structural.js';

export interface AttributorOptions extends GraphOptions {
  /** A composite or the name of a built-in one. Default: the model's ({@link compositeNameFor}:
   * `'attn_lrp'` for a transformer, `'epsilon_plus_flat'` otherwise); a CNN composite named for a transformer is
   * refused. */
  composite?: Composite | string;
  /** Graph rewrites applied before attribution. Default `[mergeBatchNorm(), mergeZeroPadding()]` (both exact:
   * batch norms folded into the conv before them, as zennit-crp's README does; a ZeroPadding2D folded into the
   * 'valid' conv after it, as PyTorch pads inside `Conv2d`, which is zennit's `ResNetCanonizer` for ResNets
   * imported from PyTorch). Pass `[]` to attribute the layers as they are. */
  canonizers?: readonly Canonizer[];
}

export interface BackwardOptions {
  /** Node (layer name) whose output receives `relevance`. */
  from: string;
  /** Relevance at `from`'s output, batch K (any K when the pass has batch 1, else the pass's batch).
   * Owned by the caller; not disposed. */
  relevance: tf.Tensor;
  /** Layers where the backward pass stops (their output relevance is returned). Default: the input. */
  stopAt?: readonly string[];
  /** Layers whose output relevance is returned as well. */
  record?: readonly string[];
  /**
   * Called with the complete relevance at each node's output before the node's rule runs (after recording).
   * Return a replacement (e.g. a masked copy; the engine then owns it) or undefined to keep it. The tensor
   * passed in is owned by the engine.
   */
  transform?: (nodeId: string, relevance: tf.Tensor) => tf.Tensor | undefined;
}

export interface AdjointOptions {
  /** Node (layer name) whose output receives `values`. Default: the model input. */
  from?: string;
  /** Values at `from`'s output, batch K (any K when the pass has batch 1, else the pass's batch); e.g. a
   * region mask over the input. Owned by the caller; not disposed. */
  values: tf.Tensor;
  /** Layers whose adjoint values are returned (they must lie above `from`). */
  record: readonly string[];
}

export interface AttributeOptions {
  /** Class index to explain, one per batch row or one for all rows. */
  target?: number | readonly number[];
  /** Instead of `target`: the relevance at the output, or a function of the prediction giving it (zennit-crp's
   * `init_rel`). */
  initRelevance?: tf.Tensor | ((prediction: tf.Tensor) => tf.Tensor);
  /** Layers whose output relevance to return (`result.relevances`). */
  recordLayers?: readonly string[];
  /** Images per forward/backward pass; a larger input is split and the results joined (wasm's heap stops
   * at 4 GiB). Default {@link Attributor.rowsThatFit}. */
  batchSize?: number;
}

/** Result of {@link Attributor.attribute}. **The caller owns every tensor** (dispose them, or use
 * {@link disposeResult}). */
export interface AttributionResult {
  /** Relevance of the input, same shape as the input (NHWC). */
  relevance: tf.Tensor;
  /** The model output during attribution: logits (a final softmax is dropped unless `keepSoftmax`). */
  prediction: tf.Tensor;
  /** Relevance at the output of each recorded layer, keyed by the names given in `recordLayers`. */
  relevances: Record<string, tf.Tensor>;
}

/** Disposes every tensor of an {@link AttributionResult}. */
export function disposeResult(result: AttributionResult): void {
  result.relevance.dispose();
  result.prediction.dispose();
  for (const t of Object.values(result.relevances)) t.dispose();
}

function validateInput(graph: ModelGraph, input: tf.Tensor): void {
  const expected = graph.inputShape;
  const got = input.shape.slice(1);
  const ok = input.rank === expected.length + 1 && expected.every((d, i) => d === null || d === got[i]);
  if (!ok) {
    const shown = `[batch, ${expected.map((d) => d ?? 'any').join(', ')}]`;
    throw new CrpError(
      'invalid-shape',
      `input has shape [${input.shape.join(', ')}], the model expects ${shown}`,
    );
  }
  if (input.dtype !== 'float32') {
    throw new CrpError('invalid-shape', `input must be float32, got ${input.dtype}`);
  }
  // one value read back, not the whole input: on GPU backends a full read is a slow synchronous download (and
  // on TF.js's webgpu backend, whose synchronous read goes through a canvas, unreliable for large tensors)
  const finite = tf.tidy(() => tf.all(tf.isFinite(input)));
  const allFinite = finite.dataSync()[0] === 1;
  finite.dispose();
  if (allFinite) return;
  const data = input.dataSync();
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new CrpError(
        'invalid-value',
        `input contains ${Number.isNaN(data[i]!) ? 'NaN' : 'Infinity'} at flat index ${i}; relevance needs finite inputs`,
      );
    }
  }
}

/**
 * LRP over one TF.js model: builds the graph once (canonized, with the composite's rules resolved) and
 * explains any number of inputs. Holds derived weights (merged batch norms, modified parameters): call
 * `dispose()` when done. The user's model is never changed.
 *
 * ```ts
 * const lrp = new Attributor(model, { composite: 'epsilon_plus_flat' });
 * const { relevance, prediction } = lrp.attribute(images, { target: 3 });
 * ```
 */
export class Attributor {
  readonly graph: ModelGraph;
  readonly composite: Composite;
  private readonly rules = new Map<string, Rule>();
  private readonly paramCache = new Map<
    string,
    CachedParams & { backMade(): tf.Tensor | null | undefined }
  >();
  private readonly ownedParams: tf.Tensor[] = [];
  private disposed = false;

  constructor(model: LayersModel, options: AttributorOptions = {}) {
    let graph = graphFromLayersModel(model, options);
    for (const c of options.canonizers ?? [mergeBatchNorm(), mergeZeroPadding()]) graph = c.apply(graph);
    this.graph = graph;
    const composite = options.composite;
    this.composite =
      typeof composite === 'object' ? composite : compositeByName(compositeNameFor(graph, composite));
  }

  /** The rule applied at a layer (by layer name or node id). */
  ruleOf(layer: string): Rule {
    const node = this.graph.node(layer);
    let rule = this.rules.get(node.id);
    if (rule === undefined) {
      rule = isStructural(node)
        ? node.kind === 'identity'
          ? pass()
          : gradient()
        : (this.composite.ruleFor(node, this.graph) ?? defaultRuleFor(node, this.graph));
      this.rules.set(node.id, rule);
    }
    return rule;
  }

  /** Layer names of the graph in topological order. */
  get layerNames(): string[] {
    return this.graph.nodes.map((n) => n.id);
  }

  /** Runs the model forward (up to `upTo`, default the output) and keeps the activations for backward
   * passes. The caller owns the returned pass (dispose it); `input` stays the caller's.
   *
   * `reuse`: a pass of this attributor on the same input tensor, after which the weights of the layers
   * `changed` changed (and were refreshed with {@link Attributor.refreshLayers}); the layers that depend on none
   * of them are taken from that pass, activations and prepared rules, instead of computed again. That pass keeps
   * owning them: dispose it after this one. */
  forward(
    input: tf.Tensor,
    options: { upTo?: string; reuse?: { pass: ForwardPass; changed: readonly string[] } } = {},
  ): ForwardPass {
    this.assertLive();
    const top = options.upTo === undefined ? this.graph.outputId : this.graph.node(options.upTo).id;
    const reuse = options.reuse;
    if (reuse === undefined) {
      validateInput(this.graph, input);
      return runForward(this.graph, input, top);
    }
    reuse.pass.assertLive();
    if (reuse.pass.graph !== this.graph || reuse.pass.input !== input) {
      throw new CrpError(
        'invalid-argument',
        'forward: reuse needs a pass of this attributor on the same input tensor',
      );
    }
    const changed = reuse.changed.map((name) => this.graph.node(name).id);
    return runForward(this.graph, input, top, { pass: reuse.pass, changed });
  }

  private cachedParams(
    node: GraphNode,
    key: string,
    modify: (p: LinearParams) => LinearParams,
    inputShape: number[],
  ): CachedParams {
    const cacheKey = `${node.id}|${key}`;
    let cached = this.paramCache.get(cacheKey);
    if (cached === undefined) {
      const base = linearParamsOf(node);
      const map = linearMapOf(node, inputShape)!;
      const own = (t: tf.Tensor | null) => {
        if (t !== null && t !== base.weight && t !== base.bias && !this.ownedParams.includes(t))
          this.ownedParams.push(t);
      };
      const p = tidyKeep(
        () => modify(base),
        (m) => [m.weight, m.bias],
      );
      own(p.weight);
      own(p.bias);
      // the transpose's weight (a flipped, transposed kernel; W^T) is made on first use: a branch whose input
      // is zero never transposes (z+'s negative weights after a ReLU), and MPRT refreshes every layer it
      // randomises
      let back: tf.Tensor | null | undefined;
      const made: CachedParams & { backMade(): tf.Tensor | null | undefined } = {
        weight: p.weight,
        bias: p.bias,
        get back() {
          if (back === undefined) {
            back = tidyKeep(
              () => map.backWeight(p.weight),
              (b) => [b],
            );
            own(back);
            // a strided conv's phase kernels, cut once (a transpose that cuts them costs wasm a new operator)
            if (back !== null) retainPhaseKernels(back);
          }
          return back;
        },
        backMade: () => back,
      };
      cached = made;
      this.paramCache.set(cacheKey, cached);
    }
    return cached;
  }

  private prepared(pass: ForwardPass, node: GraphNode) {
    let prepared = pass.preparedRule(node.id);
    if (prepared === undefined) {
      const inputs = node.inputs.map((i) => pass.output(i));
      const output = pass.output(node.id);
      const ctx: RuleContext = {
        node,
        inputs,
        output,
        linearOutput: pass.linearOutputs.get(node.id) ?? (node.kind === 'activation' ? inputs[0]! : output),
        isNonNegative: (i) => pass.isNonNegative(node.inputs[i]!),
        params: (key, modify) => this.cachedParams(node, key, modify, inputs[0]!.shape),
      };
      prepared = isStructural(node)
        ? {
            backward: (r: tf.Tensor) => structuralBackward(node, inputs, r),
            adjoint: (values: readonly (tf.Tensor | null)[]) =>
              structuralAdjoint(node, inputs, output, values),
            dispose: () => {},
          }
        : this.ruleOf(node.id).prepare(ctx);
      pass.keepPrepared(node.id, prepared);
    }
    return prepared;
  }

  /**
   * The layers a backward pass from `options.from` to its stop layers walks through, with every option checked
   * against the graph and the forward pass (stop layers below the start, recorded layers on the way, the
   * relevance shaped like the start layer's output).
   */
  private backwardPlan(
    pass: ForwardPass,
    options: BackwardOptions,
  ): { start: string; stops: Set<string>; record: Set<string>; active: Set<string> } {
    const g = this.graph;
    const start = g.node(options.from).id;
    const stops = new Set((options.stopAt ?? [g.inputId]).map((s) => g.node(s).id));
    const record = new Set((options.record ?? []).map((s) => g.node(s).id));
    const below = new Set<string>();
    for (const s of stops) for (const d of g.descendantsOf(s)) below.add(d);
    const above = g.ancestorsOf(start);
    const active = new Set([...above].filter((id) => below.has(id)));
    if (!active.has(start)) {
      throw new CrpError(
        'invalid-argument',
        `the backward pass from '${options.from}' cannot reach ${[...stops].map((s) => `'${s}'`).join(', ')}: stop layers must lie below the start layer`,
      );
    }
    for (const s of stops) {
      if (!above.has(s))
        throw new CrpError('invalid-argument', `stop layer '${s}' is not below '${options.from}'`);
    }
    for (const r of record) {
      if (!active.has(r)) {
        throw new CrpError(
          'invalid-argument',
          `cannot record '${r}': relevance from '${options.from}' down to the stop layers does not pass it; layers on the way: ${listNames([...active])}`,
        );
      }
    }
    const r0 = options.relevance;
    if (pass.batchSize !== 1 && r0.shape[0] !== pass.batchSize) {
      throw new CrpError(
        'invalid-argument',
        `relevance has batch ${r0.shape[0]} but the forward pass has batch ${pass.batchSize}; use equal batches or a forward pass of batch 1`,
      );
    }
    const startShape = pass.output(start).shape.slice(1);
    if (r0.shape.slice(1).join() !== startShape.join()) {
      throw new CrpError(
        'invalid-argument',
        `relevance at '${options.from}' must have shape [batch, ${startShape.join(', ')}], got [${r0.shape.join(', ')}]`,
      );
    }
    return { start, stops, record, active };
  }

  /**
   * Sends relevance from one layer's output down to `stopAt` (default: the input), processing only the
   * layers in between. Returns the relevance at the output of every `stopAt` and `record` layer, keyed by
   * the names as given; **the caller owns them**.
   */
  backward(pass: ForwardPass, options: BackwardOptions): Map<string, tf.Tensor> {
    this.assertLive();
    pass.assertLive();
    const g = this.graph;
    const { start, stops, record, active } = this.backwardPlan(pass, options);
    const stopNames = options.stopAt ?? [g.inputId];
    const recordNames = options.record ?? [];
    const r0 = options.relevance;

    const acc = new Map<string, tf.Tensor>([[start, r0]]);
    // tensors that must survive the pass: the caller's relevance and everything returned
    const kept = new Set<tf.Tensor>([r0]);
    const recorded = new Map<string, tf.Tensor>();
    const stopped = new Map<string, tf.Tensor>();
    // relevance that a transform masked (Pass rules hand the same tensor on, and the hint with it)
    const masked = new Set<tf.Tensor>();
    const release = (t: tf.Tensor) => {
      if (!kept.has(t)) t.dispose();
    };
    const order = g.nodes.filter((n) => active.has(n.id)).reverse();
    try {
      for (const node of order) {
        let r = acc.get(node.id);
        acc.delete(node.id);
        if (r === undefined) continue;
        if (record.has(node.id)) {
          recorded.set(node.id, r);
          kept.add(r);
        }
        const replaced = options.transform?.(node.id, r);
        if (replaced !== undefined && replaced !== r) {
          release(r);
          r = replaced;
          masked.add(r);
        }
        if (stops.has(node.id)) {
          stopped.set(node.id, r);
          kept.add(r);
          continue;
        }
        const current = r;
        let ins: tf.Tensor[];
        try {
          const prepared = this.prepared(pass, node);
          const hint = masked.has(current) ? { channelSparse: true } : undefined;
          ins = tf.tidy(() => prepared.backward(current, hint));
        } catch (err) {
          if (err instanceof CrpError) throw err;
          const why = err instanceof Error ? err.message : String(err);
          throw new Error(
            `relevance through '${node.id}' (${node.className}, rule ${this.ruleOf(node.id).name}) failed: ${why}`,
            { cause: err },
          );
        }
        // rules like Pass hand the same tensor on: then it moves down instead of being freed
        if (!ins.includes(r)) release(r);
        node.inputs.forEach((inputId, i) => {
          const contribution = ins[i]!;
          if (!active.has(inputId)) {
            contribution.dispose();
            return;
          }
          const prev = acc.get(inputId);
          if (prev === undefined) acc.set(inputId, contribution);
          else {
            acc.set(inputId, tf.add(prev, contribution));
            release(prev);
            contribution.dispose();
          }
        });
      }
    } catch (err) {
      for (const t of acc.values()) release(t);
      for (const t of [...recorded.values(), ...stopped.values()]) if (t !== r0) t.dispose();
      throw err;
    }
    for (const t of acc.values()) release(t);
    return handOutByName(g, r0, recordNames, recorded, stopNames, stopped);
  }

  /**
   * The adjoint (transposed) relevance pass: with the forward pass fixed, the backward pass from a layer L
   * down to `from` is a linear map B_L (R_from = B_L(R_L)); this pass computes B_L^T(values) for every
   * recorded layer L at once, walking from `from` towards the output and applying each rule's
   * {@link PreparedRule.adjoint}. Returned per recorded layer, shaped like that layer's output with K rows.
   *
   * Why: for any R_L, <values, B_L(R_L)> = <B_L^T(values), R_L>. With `values` a region mask over the input,
   * the region relevance of every channel c of L under the condition {y, L: [c]} is the sum over channel c of
   * B_L^T(mask) * R_L, so one backward pass (R_L) and one adjoint pass give all concepts of all layers,
   * instead of one backward pass per concept. B_L covers only what lies below L (zennit-crp's
   * exclude_parallel: relevance does not bypass L through a parallel branch).
   *
   * **The caller owns the returned tensors.**
   */
  adjoint(pass: ForwardPass, options: AdjointOptions): Map<string, tf.Tensor> {
    this.assertLive();
    pass.assertLive();
    const g = this.graph;
    const from = g.node(options.from ?? g.inputId).id;
    const recordIds = options.record.map((r) => g.node(r).id);
    const above = g.descendantsOf(from);
    const needed = new Set<string>();
    for (const [i, id] of recordIds.entries()) {
      if (!above.has(id)) {
        throw new CrpError(
          'invalid-argument',
          `cannot return the adjoint at '${options.record[i]}': it does not lie above '${from}'`,
        );
      }
      if (!pass.outputs.has(id)) {
        throw new CrpError(
          'invalid-argument',
          `layer '${options.record[i]}' was not computed in this forward pass (it is above '${pass.top}')`,
        );
      }
      for (const a of g.ancestorsOf(id)) if (above.has(a)) needed.add(a);
    }
    const v0 = options.values;
    const fromShape = pass.output(from).shape.slice(1);
    if (v0.shape.slice(1).join() !== fromShape.join()) {
      throw new CrpError(
        'invalid-argument',
        `adjoint values at '${from}' must have shape [batch, ${fromShape.join(', ')}], got [${v0.shape.join(', ')}]`,
      );
    }
    if (pass.batchSize !== 1 && v0.shape[0] !== pass.batchSize) {
      throw new CrpError(
        'invalid-argument',
        `adjoint values have batch ${v0.shape[0]} but the forward pass has batch ${pass.batchSize}; use equal batches or a forward pass of batch 1`,
      );
    }
    const order = g.nodes.filter((n) => needed.has(n.id));
    // a value can be freed once every needed consumer has read it (and it is not returned)
    const readers = new Map<string, number>();
    for (const n of order) for (const i of new Set(n.inputs)) readers.set(i, (readers.get(i) ?? 0) + 1);
    const recorded = new Set(recordIds);
    const values = new Map<string, tf.Tensor>([[from, v0]]);
    const free = (id: string) => {
      const left = (readers.get(id) ?? 0) - 1;
      readers.set(id, left);
      const t = values.get(id);
      if (left <= 0 && t !== undefined && !recorded.has(id) && t !== v0) {
        t.dispose();
        values.delete(id);
      }
    };
    const out = new Map<string, tf.Tensor>();
    try {
      for (const node of order) {
        if (node.id === from) continue;
        const inputs = node.inputs.map((i) => values.get(i) ?? null);
        const prepared = this.prepared(pass, node);
        if (prepared.adjoint === undefined) {
          throw new CrpError(
            'no-adjoint',
            `rule ${this.ruleOf(node.id).name} at '${node.id}' (${node.className}) has no adjoint; give its PreparedRule an adjoint(values) method, or build the rule with basicRule()`,
          );
        }
        const adjoint = prepared.adjoint.bind(prepared);
        let v: tf.Tensor;
        try {
          v = tf.tidy(() => adjoint(inputs));
        } catch (err) {
          if (err instanceof CrpError) throw err;
          const why = err instanceof Error ? err.message : String(err);
          throw new Error(
            `adjoint through '${node.id}' (${node.className}, rule ${this.ruleOf(node.id).name}) failed: ${why}`,
            { cause: err },
          );
        }
        // rules like Pass hand the same tensor on
        values.set(node.id, inputs.includes(v) ? tf.clone(v) : v);
        for (const i of new Set(node.inputs)) free(i);
      }
      for (const [i, name] of options.record.entries()) {
        if (out.has(name)) continue;
        const id = recordIds[i]!;
        const t = values.get(id)!;
        out.set(name, t === v0 || [...out.values()].includes(t) ? tf.clone(t) : t);
      }
    } catch (err) {
      for (const t of values.values()) if (t !== v0) t.dispose();
      throw err;
    }
    const handedOut = new Set(out.values());
    for (const t of values.values()) if (t !== v0 && !handedOut.has(t)) t.dispose();
    return out;
  }

  /**
   * Rows of relevance per backward pass such that about 12 tensors of the largest layer output fit in
   * `budgetBytes` (default 1.5 GiB, leaving room for weights inside wasm's 4 GiB heap). Larger chunks are
   * faster per row, so callers batch up to this.
   */
  rowsThatFit(budgetBytes = 1.5 * 2 ** 30, nodes: Iterable<string> = this.graph.ids): number {
    let largest = 1;
    for (const id of nodes) {
      // open spatial dimensions: assume ImageNet size
      const size = this.graph.node(id).outputShape.reduce<number>((a, d) => a * (d ?? 224), 1);
      largest = Math.max(largest, size);
    }
    return Math.max(1, Math.min(64, Math.floor(budgetBytes / (largest * 4 * 12))));
  }

  /** One-shot LRP: relevance of the input (and of recorded layers) for the target classes. Inputs larger
   * than `batchSize` are processed in chunks. **The caller owns the result.** */
  attribute(input: tf.Tensor, options: AttributeOptions): AttributionResult {
    const n = input.shape[0]!;
    const batchSize = options.batchSize ?? this.rowsThatFit();
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new CrpError('invalid-argument', `batchSize must be a positive integer, got ${batchSize}`);
    }
    const init = options.initRelevance;
    const target = options.target;
    if (Array.isArray(target) && target.length !== n) {
      throw new CrpError(
        'invalid-target',
        `got ${target.length} targets for a batch of ${n}; give one per row or a single number`,
      );
    }
    if (n <= batchSize) return this.attributeBatch(input, options);
    const parts: AttributionResult[] = [];
    try {
      for (let start = 0; start < n; start += batchSize) {
        const size = Math.min(batchSize, n - start);
        const part = tf.slice(input, start, size);
        const initPart =
          init !== undefined && typeof init !== 'function' ? tf.slice(init, start, size) : undefined;
        try {
          const chunk: AttributeOptions = { ...options };
          if (init !== undefined) chunk.initRelevance = initPart ?? init;
          if (Array.isArray(target)) chunk.target = target.slice(start, start + size);
          parts.push(this.attributeBatch(part, chunk));
        } finally {
          part.dispose();
          initPart?.dispose();
        }
      }
      const cat = (ts: tf.Tensor[]) => tf.concat(ts, 0);
      return {
        relevance: cat(parts.map((p) => p.relevance)),
        prediction: cat(parts.map((p) => p.prediction)),
        relevances: Object.fromEntries(
          Object.keys(parts[0]!.relevances).map((k) => [k, cat(parts.map((p) => p.relevances[k]!))]),
        ),
      };
    } finally {
      for (const p of parts) disposeResult(p);
    }
  }

  private attributeBatch(input: tf.Tensor, options: AttributeOptions): AttributionResult {
    const pass = this.forward(input);
    let init: tf.Tensor | undefined;
    try {
      const prediction = pass.prediction;
      init = this.initRelevanceOf(prediction, options);
      const record = options.recordLayers ?? [];
      const out = this.backward(pass, {
        from: this.graph.outputId,
        relevance: init,
        record,
        stopAt: [this.graph.inputId],
      });
      const relevance = out.get(this.graph.inputId)!;
      const relevances: Record<string, tf.Tensor> = {};
      for (const name of record) {
        const t = out.get(name)!;
        relevances[name] = t === relevance ? tf.clone(t) : t;
      }
      return { relevance, prediction: tf.clone(prediction), relevances };
    } finally {
      if (init !== undefined && init !== options.initRelevance) init.dispose();
      pass.dispose();
    }
  }

  private initRelevanceOf(prediction: tf.Tensor, options: AttributeOptions): tf.Tensor {
    const init = options.initRelevance;
    if (init !== undefined) {
      const r = typeof init === 'function' ? init(prediction) : init;
      if (r.shape.join() !== prediction.shape.join()) {
        // a tensor made by the caller's function is the engine's (disposed after use), also when refused
        if (r !== init && r !== prediction) r.dispose();
        throw new CrpError(
          'invalid-argument',
          `initRelevance must have the prediction's shape [${prediction.shape.join(', ')}], got [${r.shape.join(', ')}]`,
        );
      }
      return r;
    }
    const target = options.target;
    if (target === undefined) {
      throw new CrpError('invalid-target', 'give a target class (options.target) or options.initRelevance');
    }
    const batch = prediction.shape[0]!;
    const classes = prediction.shape[prediction.rank - 1]!;
    const targets = typeof target === 'number' ? new Array<number>(batch).fill(target) : [...target];
    if (targets.length !== batch) {
      throw new CrpError(
        'invalid-target',
        `got ${targets.length} targets for a batch of ${batch}; give one per row or a single number`,
      );
    }
    for (const t of targets) {
      if (!Number.isInteger(t) || t < 0 || t >= classes) {
        throw new CrpError(
          'invalid-target',
          `target ${t} is not a class index; valid: integers 0..${classes - 1}`,
        );
      }
    }
    if (prediction.rank !== 2) {
      throw new CrpError(
        'invalid-target',
        `target needs a [batch, classes] prediction; use initRelevance for shape [${prediction.shape.join(', ')}]`,
      );
    }
    return tf.tidy(() => tf.mul(tf.oneHot(tf.tensor1d(targets, 'int32'), classes), prediction));
  }

  /**
   * After the weights of `layers` of `model` (the model this attributor was built on) changed in place, e.g. by
   * `layer.setWeights`: drops the parameters the rules derived from them, so that the next pass uses the new
   * weights while keeping what was derived from the other layers (MPRT randomises one layer at a time). Returns
   * false and changes nothing when a layer's node does not read the layer's own weights (a canonizer merged them,
   * e.g. a batch norm into a convolution, or the layer is not a conv or dense layer): build a new attributor then.
   */
  refreshLayers(model: LayersModel, layers: readonly string[]): boolean {
    this.assertLive();
    const nodes: GraphNode[] = [];
    for (const name of layers) {
      if (!this.graph.has(name)) return false;
      const node = this.graph.node(name);
      const p = node.params;
      const live = model.getLayer(name).getWeights();
      // tfjs-layers hands out the layer's variables themselves, which setWeights assigns in place
      if (p.kind !== 'conv2d' && p.kind !== 'dense') return false;
      if (p.kernel !== live[0] || (p.bias ?? undefined) !== live[1]) return false;
      nodes.push(node);
    }
    for (const node of nodes) {
      for (const [key, cached] of [...this.paramCache]) {
        if (!key.startsWith(`${node.id}|`)) continue;
        this.paramCache.delete(key);
        // a transpose weight not made yet is not made now
        for (const t of [cached.weight, cached.bias, cached.backMade() ?? null]) {
          const at = t === null ? -1 : this.ownedParams.indexOf(t);
          if (at >= 0) {
            this.ownedParams.splice(at, 1);
            releasePhaseKernels(t!);
            releaseTransposedWeight(t!);
            t!.dispose();
          }
        }
      }
    }
    return true;
  }

  private assertLive(): void {
    if (this.disposed) throw new CrpError('disposed', 'this Attributor was disposed');
  }

  /** Frees the derived parameters and canonized weights. The model is untouched. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.ownedParams) {
      releasePhaseKernels(t);
      releaseTransposedWeight(t);
      t.dispose();
    }
    this.paramCache.clear();
    this.graph.dispose();
  }
}

/**
 * One-shot LRP on a model: builds an {@link Attributor}, explains `input`, and frees everything but the
 * result. **The caller owns the returned tensors.** For many inputs, keep an `Attributor` instead.
 */
export function attribute(
  model: LayersModel,
  input: tf.Tensor,
  options: AttributeOptions & AttributorOptions,
): AttributionResult {
  const attributor = new Attributor(model, options);
  try {
    return attributor.attribute(input, options);
  } finally {
    attributor.dispose();
  }
}

/**
 * The relevance a backward pass returns, keyed by the names the caller used (recorded layers first, then stop
 * layers): every returned tensor is distinct and none is the caller's own `r0`. A layer that is both recorded and
 * a stop, whose relevance `transform` replaced, holds two tensors under one name: the recorded one is handed out,
 * the replaced one is freed.
 */
function handOutByName(
  g: ModelGraph,
  r0: tf.Tensor,
  recordNames: readonly string[],
  recorded: Map<string, tf.Tensor>,
  stopNames: readonly string[],
  stopped: Map<string, tf.Tensor>,
): Map<string, tf.Tensor> {
  const named = new Map<string, tf.Tensor>();
  const handedOut = new Set<tf.Tensor>();
  const handOut = (name: string, t: tf.Tensor | undefined) => {
    if (t === undefined || named.has(name)) return;
    const own = t === r0 || handedOut.has(t) ? tf.clone(t) : t;
    handedOut.add(own);
    named.set(name, own);
  };
  for (const name of recordNames) handOut(name, recorded.get(g.node(name).id));
  for (const name of stopNames) handOut(name, stopped.get(g.node(name).id));
  for (const t of stopped.values()) if (t !== r0 && !handedOut.has(t)) t.dispose();
  return named;
}

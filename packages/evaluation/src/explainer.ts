import { CrpError } from '@crp/common';
import {
  Attributor,
  type Composite,
  compositeByName,
  ForwardPass,
  type GraphNode,
  gradient,
  layerMapComposite,
} from '@crp/lrp';
import { forwardNode } from '@crp/lrp/internal';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { type Attributions, readAttributions, type Samples } from './data.js';
import { seededRandom } from './random.js';

/**
 * Explains a batch for given classes (Quantus's `explain_func`): returns an explanation of `x` ([N, H, W]
 * heatmap, [N, H, W, 1] or [N, H, W, C]) that the caller then owns. The randomisation and robustness metrics call
 * it on changed models or inputs; it must build what it needs from `model` each time (a randomised model has
 * new weights). It may offer a `session` (see {@link ExplainerSession}), which MPRT uses to keep what it derived
 * from the layers it has not randomised yet.
 */
export type Explainer = ((
  model: tfl.LayersModel,
  x: tf.Tensor4D,
  targets: readonly number[],
) => tf.Tensor | Promise<tf.Tensor>) & {
  session?: (model: tfl.LayersModel) => ExplainerSession;
};

/** An explainer bound to one model whose layers' weights change in place between calls (MPRT's copy): after
 * `changed(layers)` it explains with the new weights, keeping what it derived from the other layers. The same
 * explanations as the explainer itself on the changed model. */
export interface ExplainerSession {
  explain(x: tf.Tensor4D, targets: readonly number[]): tf.Tensor;
  changed(layers: readonly string[]): void;
  dispose(): void;
  /** MPRT's cascade with the steps' explanations batched (see {@link CascadeSteps}); `undefined`, before
   * anything is randomised, where the model is not a chain of layers whose weights can be refreshed. */
  cascade?(x: tf.Tensor4D, targets: readonly number[], steps: CascadeSteps): tf.Tensor[] | undefined;
}

/** The steps of an MPRT cascade: `layers[k]` is randomised in place by `randomise(k)` (Quantus's order: from
 * the output for `top_down`, from the input for `bottom_up`, the model's order for `independent`), and the model
 * is explained after step k where `explained(k)`. `independent` puts each layer back with `restore(k)` before
 * the next is randomised; the session may take the steps in another order then (each step's values do not
 * depend on it). Given `restore`, `top_down` may randomise every layer first and put them all back before the
 * original model's part of the backward pass. `onStep(done)` reports progress: how many steps were taken. */
export interface CascadeSteps {
  layers: readonly string[];
  /** Default `top_down`. */
  order?: 'top_down' | 'bottom_up' | 'independent';
  randomise(k: number): void;
  /** Give `layers[k]` its original weights back (`independent`; `top_down` batches its randomised tops with it). */
  restore?(k: number): void;
  explained(k: number): boolean;
  onStep?(done: number): void;
}

/** The one-hot output relevance of `targets` (zennit's `Gradient` attributor as Quantus calls it). */
function oneHotOf(targets: readonly number[]) {
  return (prediction: tf.Tensor) =>
    tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d([...targets], 'int32'), prediction.shape[1]!), 'float32'));
}

/**
 * The order in which MPRT's cascade can batch its steps on this attributor (indices into `steps.layers`), or
 * `undefined`: the graph must be a chain (each node has one input and one consumer, so the relevance at a
 * boundary is all that flows further down), and every randomised layer a conv or dense node of its own whose
 * kernel is the model's variable (refreshed in place; a batch norm merged into its conv is not). The cascading
 * orders must randomise in depth order; `independent` is taken from the top.
 */
function cascadeOrder(lrp: Attributor, model: tfl.LayersModel, steps: CascadeSteps): number[] | undefined {
  const g = lrp.graph;
  if (g.nodes.some((n) => n.inputs.length > 1 || g.consumersOf(n.id).length > 1)) return undefined;
  const depth: number[] = [];
  for (const name of steps.layers) {
    if (!g.has(name)) return undefined;
    const node = g.node(name);
    const p = node.params;
    if (node.layerName !== name || (p.kind !== 'conv2d' && p.kind !== 'dense')) return undefined;
    if (p.kernel !== model.getLayer(name).getWeights()[0]) return undefined;
    depth.push(g.nodes.indexOf(node));
  }
  const ks = steps.layers.map((_, k) => k);
  const order = steps.order ?? 'top_down';
  if (order === 'independent') {
    if (steps.restore === undefined) return undefined;
    ks.sort((a, b) => depth[b]! - depth[a]!);
  }
  const up = order === 'bottom_up';
  for (let j = 1; j < ks.length; j++) {
    const [a, b] = [depth[ks[j - 1]!]!, depth[ks[j]!]!];
    if (up ? b <= a : b >= a) return undefined;
  }
  return ks;
}

/** Relevance rows of one sample on its own forward pass of batch 1, going down a chain: rows added at a node
 * join those that already reached it; `flush` sends them to the input and finishes them. */
class SampleRows {
  private rows: tf.Tensor | undefined;
  private at: string;
  private ids: number[] = [];
  readonly done: { ids: number[]; explanation: tf.Tensor }[] = [];

  constructor(
    private readonly lrp: Attributor,
    public pass: ForwardPass,
    private readonly x: tf.Tensor4D,
    private readonly rowCap: number,
    private readonly finish: (relevance: tf.Tensor, x: tf.Tensor4D) => tf.Tensor,
  ) {
    this.at = lrp.graph.outputId;
  }

  down(to: string): void {
    if (this.rows === undefined || this.at === to) return;
    const out = this.lrp.backward(this.pass, { from: this.at, relevance: this.rows, stopAt: [to] });
    const next = out.get(to)!;
    if (next !== this.rows) this.rows.dispose();
    this.rows = next;
    this.at = to;
  }

  /** Takes `r` (one row, owned) at the output of `where`, which the rows so far have reached. */
  add(r: tf.Tensor, where: string, id: number): void {
    if (this.rows === undefined) {
      this.rows = r;
      this.at = where;
    } else {
      const both = tf.concat([this.rows, r]);
      tf.dispose([this.rows, r]);
      this.rows = both;
    }
    this.ids.push(id);
    if (this.rows.shape[0]! >= this.rowCap) this.flush();
  }

  flush(): void {
    if (this.rows === undefined) return;
    this.down(this.lrp.graph.inputId);
    const rows = this.rows;
    this.rows = undefined;
    this.done.push({ ids: this.ids, explanation: this.finish(rows, this.x) });
    this.ids = [];
  }

  dispose(): void {
    this.rows?.dispose();
    this.rows = undefined;
    for (const d of this.done) d.explanation.dispose();
    this.done.length = 0;
  }
}

/**
 * MPRT's cascades with their explanations batched (the same operations as step by step, in batches).
 *
 * `top_down`: step k's model has the layers above its boundary (the input of `layers[k]`) randomised and those
 * below original, so below the boundary its backward pass is the original model's, on the original forward
 * pass: a linear map of the relevance at the boundary that all steps share. Each step runs only its randomised
 * top (forward from the reused original pass, backward down to its boundary) and adds its relevance there as a
 * row; the rows go down together through the original layers, each layer just before it is randomised (where
 * the tops' rows do not fit {@link cascadeTopDown}'s memory bound or `restore` is missing). `independent` is the same taken from the top layer down, each layer put back before the next is randomised.
 * `bottom_up` is the mirror image: below a step's boundary (the output of `layers[k]`) the model is as it will
 * be at the end, all randomised layers included, so the rows are kept at their boundaries and go down together
 * on the final forward pass; each step's forward pass starts from the one before.
 *
 * Several samples: the tops run on the whole batch, the rows of each sample go down on that sample's own
 * forward pass of batch 1 (the engine sends any number of rows through a pass of batch 1).
 *
 * Returns the original model's explanation, then one per explained step in the order of `steps.layers`
 * ([N, ...] each; the caller owns them).
 */
function cascadeRows(
  lrp: Attributor,
  model: tfl.LayersModel,
  x: tf.Tensor4D,
  targets: readonly number[],
  steps: CascadeSteps,
  ks: readonly number[],
  finish: (relevance: tf.Tensor, x: tf.Tensor4D) => tf.Tensor,
): tf.Tensor[] {
  const g = lrp.graph;
  const n = x.shape[0];
  const order = steps.order ?? 'top_down';
  const oneHot = oneHotOf(targets);
  const oneHotSample = targets.map((t) => oneHotOf([t]));
  // memory bound: the rows of all samples are relevances of the largest layer below the top
  const rowCap = Math.max(1, Math.floor(lrp.rowsThatFit() / n));
  const xs = n === 1 ? [x] : (tf.split(x, n) as tf.Tensor4D[]);
  const passes: ForwardPass[] = [];
  const samples: SampleRows[] = [];
  const pending: { k: number; at: string; rows: (tf.Tensor | undefined)[] }[] = [];
  const track = (pass: ForwardPass) => {
    passes.push(pass);
    return pass;
  };
  // step k's relevance at `boundary`, one row per sample (owned)
  const top = (pass: ForwardPass, boundary: string): tf.Tensor[] => {
    let r = oneHot(pass.prediction);
    if (boundary !== g.outputId) {
      const init = r;
      try {
        r = lrp.backward(pass, { from: g.outputId, relevance: init, stopAt: [boundary] }).get(boundary)!;
      } finally {
        if (r !== init) init.dispose();
      }
    }
    if (n === 1) return [r];
    const rows = tf.split(r, n);
    r.dispose();
    return rows;
  };
  try {
    const base = track(lrp.forward(x));
    const start = n === 1 ? [base] : xs.map((xi) => track(lrp.forward(xi)));
    for (const [i, pass] of start.entries()) {
      samples.push(new SampleRows(lrp, pass, xs[i]!, rowCap, finish));
      samples[i]!.add(oneHotSample[i]!(pass.prediction), g.outputId, -1);
    }
    // bottom_up: the original explanation goes down the original model now
    if (order === 'bottom_up') for (const s of samples) s.flush();
    let reference = base;
    let since: string[] = [];
    const randomised: string[] = [];
    let previous: number | undefined;
    for (const [done, k] of ks.entries()) {
      const name = steps.layers[k]!;
      const node = g.node(name);
      const boundary = order === 'bottom_up' ? node.id : node.inputs[0]!;
      // top_down, independent: the rows so far pass this layer while it has its original weights
      if (order !== 'bottom_up') for (const s of samples) s.down(boundary);
      const refreshed = [name];
      if (order === 'independent' && previous !== undefined) {
        steps.restore!(previous);
        refreshed.push(steps.layers[previous]!);
      }
      steps.randomise(k);
      randomised.push(name);
      if (!lrp.refreshLayers(model, refreshed)) {
        throw new CrpError(
          'invalid-argument',
          `MPRT cascade: layer '${name}' could not be refreshed in place`,
        );
      }
      previous = k;
      // the layers changed since `reference`: all randomised so far (top_down), this one (independent: the
      // one before is back to its weights and lies above), those since the last pass (bottom_up)
      since = order === 'independent' ? [name] : [...since, name];
      if (steps.explained(k)) {
        const pass = lrp.forward(x, { reuse: { pass: reference, changed: since } });
        let rows: tf.Tensor[];
        try {
          rows = top(pass, boundary);
        } finally {
          if (order === 'bottom_up') track(pass);
          else pass.dispose();
        }
        if (order === 'bottom_up') {
          pending.push({ k, at: boundary, rows });
          reference = pass;
          since = [];
        } else {
          for (const [i, s] of samples.entries()) s.add(rows[i]!, boundary, k);
        }
      }
      steps.onStep?.(done + 1);
    }
    if (order === 'bottom_up') {
      // the model as the last step left it, reusing what is unchanged: one sample, the last step's pass (only the
      // layers randomised after it are computed again); several, each sample's own pass of the original model
      // (the layers below the first randomised one are kept)
      for (const [i, s] of samples.entries()) {
        const reuse = n === 1 ? { pass: reference, changed: since } : { pass: s.pass, changed: randomised };
        s.pass = track(lrp.forward(xs[i]!, { reuse }));
      }
      // the highest boundary first; an entry stays in `pending` (freed on failure) until its rows are handed on
      while (pending.length > 0) {
        const p = pending[pending.length - 1]!;
        for (const [i, s] of samples.entries()) {
          s.down(p.at);
          const r = p.rows[i]!;
          p.rows[i] = undefined;
          s.add(r, p.at, p.k);
        }
        pending.pop();
      }
    }
    for (const s of samples) s.flush();
    const wanted = [-1, ...steps.layers.map((_, k) => k).filter((k) => steps.explained(k))];
    return collect(samples, wanted);
  } finally {
    for (const s of samples) s.dispose();
    for (const p of pending) for (const r of p.rows) r?.dispose();
    for (const p of passes.reverse()) p.dispose();
    if (n > 1) tf.dispose(xs);
  }
}

/** The nodes of a chain above `from` up to `top` (inclusive), in order. */
function chainAbove(g: Attributor['graph'], from: string, top: string): GraphNode[] {
  const nodes = g.nodes;
  return nodes.slice(nodes.indexOf(g.node(from)) + 1, nodes.indexOf(g.node(top)) + 1);
}

/** A forward pass of a chain from `from`, whose output is `input` (its rows), up to `top`: the engine's pass
 * (the backward pass takes it as any other), started part-way. `input` stays the caller's. */
function forwardFrom(g: Attributor['graph'], from: string, input: tf.Tensor, top: string): ForwardPass {
  const pass = new ForwardPass(g, input, top);
  pass.outputs.set(from, input);
  try {
    let x = input;
    for (const node of chainAbove(g, from, top)) {
      // an identity node returns its input: the pass holds it under both ids and frees it once, as the engine's
      // forward pass does
      const { output, linear } = tf.tidy(() => forwardNode(node, [x]));
      pass.outputs.set(node.id, output);
      if (linear !== undefined) pass.linearOutputs.set(node.id, linear);
      x = output;
    }
  } catch (err) {
    pass.dispose();
    throw err;
  }
  return pass;
}

/**
 * The randomised tops of MPRT's `top_down` cascade, all in one pass whose rows join part-way (the model fully
 * randomised, its derived weights refreshed). Step k's model is the fully randomised one above its boundary
 * (the input of `layers[k]`): the cascade randomises from the output, and a layer keeps its new weights in every
 * later step. So one forward pass runs them all: it starts at the deepest explained step's boundary with the
 * original model's activation there (`base`), and at each higher explained step's boundary that step's original
 * activation joins as n more rows; on the way back from the output the rows leave at their boundaries in the
 * opposite order. Each row computes the numbers of its step alone.
 *
 * Returns each explained step's relevance at its boundary ([n, ...], owned), by step.
 */
function randomisedTops(
  lrp: Attributor,
  base: ForwardPass,
  targets: readonly number[],
  steps: CascadeSteps,
  explained: readonly number[],
): Map<number, tf.Tensor> {
  const g = lrp.graph;
  const n = targets.length;
  const boundary = (k: number) => g.node(steps.layers[k]!).inputs[0]!;
  // from the deepest explained step up: segment j runs from step j's boundary to the next one up (the output)
  const up = [...explained].reverse();
  const segments: { pass: ForwardPass; from: string; top: string; k: number }[] = [];
  const joined: tf.Tensor[] = [];
  const out = new Map<number, tf.Tensor>();
  let r: tf.Tensor | undefined;
  try {
    let below: tf.Tensor | undefined;
    for (const [j, k] of up.entries()) {
      const from = boundary(k);
      const top = j + 1 < up.length ? boundary(up[j + 1]!) : g.outputId;
      const own = base.output(from);
      let input = own;
      if (below !== undefined) {
        input = tf.concat([below, own]);
        joined.push(input);
      }
      const pass = forwardFrom(g, from, input, top);
      segments.push({ pass, from, top, k });
      below = pass.output(top);
    }
    // every row starts from 1 at its sample's target
    const oneHot = oneHotOf(targets)(base.prediction);
    r = up.length === 1 ? oneHot : tf.tile(oneHot, [up.length, 1]);
    if (r !== oneHot) oneHot.dispose();
    for (let j = segments.length - 1; j >= 0; j--) {
      const { pass, from, top, k } = segments[j]!;
      const relevance: tf.Tensor = r!;
      r = undefined;
      let at: tf.Tensor;
      try {
        at = lrp.backward(pass, { from: top, relevance, stopAt: [from] }).get(from)!;
      } finally {
        relevance.dispose();
      }
      // the step that joined last leaves: its rows are the last n
      const rows = at.shape[0]!;
      if (rows === n) out.set(k, at);
      else {
        const [rest, mine] = tf.split(at, [rows - n, n]);
        at.dispose();
        out.set(k, mine!);
        r = rest;
      }
    }
    return out;
  } catch (err) {
    for (const t of out.values()) t.dispose();
    throw err;
  } finally {
    r?.dispose();
    for (const s of segments.reverse()) s.pass.dispose();
    tf.dispose(joined);
  }
}

/**
 * MPRT's `top_down` cascade with the randomised tops batched as well: every layer is randomised first (Quantus's
 * order and draws), {@link randomisedTops} gives each explained step's relevance at its boundary, then the
 * original weights are put back (`steps.restore`) and the steps' rows join the original model's backward pass
 * at their boundaries, as in {@link cascadeRows}. `undefined`, before anything is randomised, where the tops'
 * rows would not fit the memory bound (then {@link cascadeRows} takes the steps one by one).
 */
function cascadeTopDown(
  lrp: Attributor,
  model: tfl.LayersModel,
  x: tf.Tensor4D,
  targets: readonly number[],
  steps: CascadeSteps,
  ks: readonly number[],
  finish: (relevance: tf.Tensor, x: tf.Tensor4D) => tf.Tensor,
): tf.Tensor[] | undefined {
  const g = lrp.graph;
  const n = x.shape[0];
  const explained = ks.filter((k) => steps.explained(k));
  const deepest = g.node(steps.layers[explained[explained.length - 1]!]!).inputs[0]!;
  const above = chainAbove(g, deepest, g.outputId).map((node) => node.id);
  // rowsThatFit counts about 12 tensors of the largest layer a row; the tops keep about 3 a layer above the
  // deepest boundary (output, linear output, the rule's denominator)
  const fit = Math.floor(lrp.rowsThatFit(undefined, above) / Math.ceil((3 * above.length) / 12));
  if (steps.restore === undefined || explained.length * n > fit) return undefined;
  const rowCap = Math.max(1, Math.floor(lrp.rowsThatFit() / n));
  const xs = n === 1 ? [x] : (tf.split(x, n) as tf.Tensor4D[]);
  const passes: ForwardPass[] = [];
  const samples: SampleRows[] = [];
  let tops = new Map<number, tf.Tensor>();
  const refresh = () => {
    if (!lrp.refreshLayers(model, steps.layers)) {
      throw new CrpError('invalid-argument', 'MPRT cascade: the layers could not be refreshed in place');
    }
  };
  try {
    const base = lrp.forward(x);
    passes.push(base);
    const start = n === 1 ? [base] : xs.map((xi) => lrp.forward(xi));
    if (n > 1) passes.push(...start);
    for (const k of ks) steps.randomise(k);
    refresh();
    tops = randomisedTops(lrp, base, targets, steps, explained);
    for (const k of ks) steps.restore(k);
    refresh();
    const oneHotSample = targets.map((t) => oneHotOf([t]));
    for (const [i, pass] of start.entries()) {
      samples.push(new SampleRows(lrp, pass, xs[i]!, rowCap, finish));
      samples[i]!.add(oneHotSample[i]!(pass.prediction), g.outputId, -1);
    }
    for (const [done, k] of ks.entries()) {
      const r = tops.get(k);
      if (r !== undefined) {
        const at = g.node(steps.layers[k]!).inputs[0]!;
        tops.delete(k);
        const rows = n === 1 ? [r] : tf.split(r, n);
        if (n > 1) r.dispose();
        for (const [i, s] of samples.entries()) {
          s.down(at);
          s.add(rows[i]!, at, k);
        }
      }
      steps.onStep?.(done + 1);
    }
    for (const s of samples) s.flush();
    return collect(samples, [-1, ...explained]);
  } finally {
    for (const s of samples) s.dispose();
    tf.dispose([...tops.values()]);
    for (const p of passes.reverse()) p.dispose();
    if (n > 1) tf.dispose(xs);
  }
}

/** The finished explanations of every sample, one tensor per entry of `wanted` (a step, -1 the original
 * model) with the samples as its batch. */
function collect(samples: readonly SampleRows[], wanted: readonly number[]): tf.Tensor[] {
  return tf.tidy(() => {
    const perSample = samples.map((s) => {
      const ids = s.done.flatMap((d) => d.ids);
      const all = tf.concat(s.done.map((d) => d.explanation));
      return tf.gather(
        all,
        wanted.map((id) => ids.indexOf(id)),
      );
    });
    if (perSample.length === 1) return tf.split(perSample[0]!, wanted.length);
    // [steps, samples, ...]
    return tf.unstack(tf.stack(perSample, 1));
  });
}

/**
 * An {@link Explainer} on an {@link Attributor} that `build` makes for a model: the input relevance of a one-hot
 * output relevance at each sample's target, turned into the explanation by `finish` (which owns the relevance).
 * Its `session` keeps one attributor and the first explained forward pass: after `changed(layers)` it refreshes
 * only the derived parameters of those layers, and later passes on the same input recompute only the layers that
 * depend on a changed one (MPRT from the top: the layers above the randomised one).
 */
function attributorExplainer(
  build: (model: tfl.LayersModel) => Attributor,
  finish: (relevance: tf.Tensor, x: tf.Tensor4D) => tf.Tensor,
): Explainer {
  const explain = (lrp: Attributor, x: tf.Tensor4D, targets: readonly number[]) => {
    const result = lrp.attribute(x, { initRelevance: oneHotOf(targets) });
    result.prediction.dispose();
    for (const r of Object.values(result.relevances)) r.dispose();
    return finish(result.relevance, x);
  };
  // attribute's one chunk, on a forward pass the session keeps or derives
  const explainPass = (lrp: Attributor, pass: ForwardPass, targets: readonly number[]) => {
    const init = oneHotOf(targets)(pass.prediction);
    try {
      const { graph } = lrp;
      const out = lrp.backward(pass, { from: graph.outputId, relevance: init, stopAt: [graph.inputId] });
      return finish(out.get(graph.inputId)!, pass.input as tf.Tensor4D);
    } finally {
      init.dispose();
    }
  };
  const explainer: Explainer = (model, x, targets) => {
    const lrp = build(model);
    try {
      return explain(lrp, x, targets);
    } finally {
      lrp.dispose();
    }
  };
  explainer.session = (model) => {
    let lrp = build(model);
    let base: ForwardPass | undefined;
    // the layers changed since `base` was run
    const since = new Set<string>();
    const drop = () => {
      base?.dispose();
      base = undefined;
    };
    return {
      explain: (x, targets) => {
        if (base !== undefined && base.input !== x) drop();
        // an input larger than one chunk goes through attribute's chunks, without reuse
        if (x.shape[0] > lrp.rowsThatFit()) return explain(lrp, x, targets);
        if (base === undefined) {
          base = lrp.forward(x);
          since.clear();
          return explainPass(lrp, base, targets);
        }
        const pass = lrp.forward(x, { reuse: { pass: base, changed: [...since] } });
        try {
          return explainPass(lrp, pass, targets);
        } finally {
          pass.dispose();
        }
      },
      changed: (layers) => {
        for (const name of layers) since.add(name);
        // a layer merged by a canonizer (e.g. a batch norm) cannot be refreshed: build everything again
        if (!lrp.refreshLayers(model, layers)) {
          drop();
          lrp.dispose();
          lrp = build(model);
        }
      },
      cascade: (x, targets, steps) => {
        // a batch larger than one chunk goes step by step (through attribute's chunks)
        const ks = x.shape[0] > lrp.rowsThatFit() ? undefined : cascadeOrder(lrp, model, steps);
        if (ks === undefined) return undefined;
        drop();
        since.clear();
        const order = steps.order ?? 'top_down';
        const batched =
          order === 'top_down' ? cascadeTopDown(lrp, model, x, targets, steps, ks, finish) : undefined;
        return batched ?? cascadeRows(lrp, model, x, targets, steps, ks, finish);
      },
      dispose: () => {
        drop();
        lrp.dispose();
      },
    };
  };
  return explainer;
}

/**
 * An {@link Explainer} from the LRP engine: the relevance of the input for each sample's target under a
 * composite (a built-in name such as `'epsilon_plus_flat'`, or a `Composite`), summed over the colour channels
 * (a heatmap) unless `heatmap` is false. The backward pass starts from 1 at the target (a one-hot output
 * relevance, as zennit's `Gradient` attributor is called with Quantus), not from the target's logit, so the
 * explanations of different samples are on the same scale (Quantus normalises over the batch). Its `session`
 * (MPRT) keeps what it derived from the layers that did not change.
 */
export function lrpExplainer(composite: Composite | string, options: { heatmap?: boolean } = {}): Explainer {
  const rules = typeof composite === 'string' ? compositeByName(composite) : composite;
  return attributorExplainer(
    (model) => new Attributor(model, { composite: rules }),
    (relevance) => {
      if (options.heatmap === false) return relevance;
      const heatmap = tf.sum(relevance, 3);
      relevance.dispose();
      return heatmap;
    },
  );
}

/**
 * Gradient x input (summed over the colour channels unless `heatmap` is false), as an {@link Explainer}: the
 * gradient of the target's output comes from the LRP engine with the plain-gradient rule on every layer, so it
 * runs on every backend (TF.js's wasm backend has no kernel for the filter gradient that `tf.grad` would need).
 * Its `session` (MPRT) keeps what it derived from the layers that did not change.
 */
export function gradientXInput(options: { heatmap?: boolean } = {}): Explainer {
  const rules = layerMapComposite([[() => true, gradient()]], 'Gradient');
  return attributorExplainer(
    (model) => new Attributor(model, { composite: rules, canonizers: [] }),
    (relevance, x) => {
      const gx = tf.tidy(() => {
        const product = tf.mul(relevance, x);
        return options.heatmap === false ? product : tf.sum(product, 3);
      });
      relevance.dispose();
      return gx;
    },
  );
}

/** Calls an explainer and reads its explanation of `s` (checked like any explanation). */
export async function explainAs(
  explainer: Explainer,
  model: tfl.LayersModel,
  x: tf.Tensor4D,
  targets: readonly number[],
  s: Samples,
  what: string,
): Promise<Attributions> {
  const a = await explainer(model, x, targets);
  try {
    return await readAttributions(a, s, what);
  } finally {
    a.dispose();
  }
}

/**
 * A random map (the control every evaluation needs): a heatmap of seeded uniform values in [-1, 1), the same for
 * every call whatever the model and the class. It should score worst on the faithfulness metrics and fail the
 * randomisation tests (its MPRT similarity stays 1).
 */
export function randomExplainer(seed = 0): Explainer {
  return (_model, x) => {
    const [n, h, w] = x.shape;
    const random = seededRandom(seed);
    return tf.tensor3d(Float32Array.from(random.uniform(n * h * w, -1, 1)), [n, h, w]);
  };
}

import { CrpError } from '@crp/common';
import {
  Attributor,
  type Composite,
  compositeByName,
  type ForwardPass,
  gradient,
  layerMapComposite,
} from '@crp/lrp';
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
  /** MPRT's top-down cascade with the steps' explanations batched (see {@link CascadeSteps}); `undefined`,
   * before anything is randomised, where the model is not a chain of layers whose weights can be refreshed. */
  cascade?(x: tf.Tensor4D, targets: readonly number[], steps: CascadeSteps): tf.Tensor[] | undefined;
}

/** The steps of a top-down cascade: `layers[k]` is randomised in place by `randomise(k)`, in this order (each
 * below the one before), and the model is explained after step k where `explained(k)`. `onStep(k)` reports
 * progress. */
export interface CascadeSteps {
  layers: readonly string[];
  randomise(k: number): void;
  explained(k: number): boolean;
  onStep?(k: number): void;
}

/** The one-hot output relevance of `targets` (zennit's `Gradient` attributor as Quantus calls it). */
function oneHotOf(targets: readonly number[]) {
  return (prediction: tf.Tensor) =>
    tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d([...targets], 'int32'), prediction.shape[1]!), 'float32'));
}

/**
 * Whether MPRT's cascade can batch its steps on this attributor: the graph is a chain (each node has one input
 * and one consumer, so the relevance at a randomised layer's input is all that flows further down), and every
 * randomised layer is a conv or dense node of its own, in order from the top, whose kernel is the model's
 * variable (refreshed in place; a batch norm merged into its conv is not).
 */
function cascades(lrp: Attributor, model: tfl.LayersModel, layers: readonly string[]): boolean {
  const g = lrp.graph;
  if (g.nodes.some((n) => n.inputs.length > 1 || g.consumersOf(n.id).length > 1)) return false;
  let below = g.nodes.length;
  for (const name of layers) {
    if (!g.has(name)) return false;
    const node = g.node(name);
    const p = node.params;
    if (node.layerName !== name || (p.kind !== 'conv2d' && p.kind !== 'dense')) return false;
    if (p.kernel !== model.getLayer(name).getWeights()[0]) return false;
    const at = g.nodes.indexOf(node);
    if (at >= below) return false;
    below = at;
  }
  return true;
}

/**
 * MPRT's top-down cascade on one sample, its explanations batched. Step k's model has the layers above its
 * boundary (the input of `layers[k]`) randomised and those below original, so below the boundary its backward
 * pass is the original model's, on the original forward pass: a linear map of the relevance at the boundary
 * that all steps share. Each step runs only its randomised top (forward from the reused original pass, backward
 * down to its boundary) and adds its relevance there as a row; the rows go down together through the original
 * layers, each layer just before it is randomised. The same operations as step by step, in batches. Returns the
 * original model's explanation, then one per explained step ([1, ...] each; the caller owns them).
 */
function cascadeOne(
  lrp: Attributor,
  model: tfl.LayersModel,
  x: tf.Tensor4D,
  targets: readonly number[],
  steps: CascadeSteps,
  finish: (relevance: tf.Tensor, x: tf.Tensor4D) => tf.Tensor,
): tf.Tensor[] {
  const g = lrp.graph;
  const oneHot = oneHotOf(targets);
  // memory bound: the rows are relevances of the largest layer below the top
  const rowCap = lrp.rowsThatFit();
  const base = lrp.forward(x);
  const done: tf.Tensor[] = [];
  // relevance of the explained steps not yet finished, at the output of `at`
  let rows: tf.Tensor | undefined;
  let at = g.outputId;
  const down = (to: string) => {
    if (rows === undefined || at === to) return;
    const out = lrp.backward(base, { from: at, relevance: rows, stopAt: [to] });
    const next = out.get(to)!;
    if (next !== rows) rows.dispose();
    rows = next;
    at = to;
  };
  const flush = () => {
    down(g.inputId);
    if (rows !== undefined) done.push(finish(rows, x));
    rows = undefined;
  };
  const add = (r: tf.Tensor, where: string) => {
    if (rows === undefined) {
      rows = r;
      at = where;
    } else {
      const both = tf.concat([rows, r]);
      tf.dispose([rows, r]);
      rows = both;
    }
    if (rows.shape[0] >= rowCap) flush();
  };
  try {
    add(oneHot(base.prediction), g.outputId);
    const randomised: string[] = [];
    for (const [k, name] of steps.layers.entries()) {
      const boundary = g.node(name).inputs[0]!;
      // the rows so far pass this layer while it has its original weights
      down(boundary);
      steps.randomise(k);
      randomised.push(name);
      if (!lrp.refreshLayers(model, [name])) {
        throw new CrpError(
          'invalid-argument',
          `MPRT cascade: layer '${name}' could not be refreshed in place`,
        );
      }
      if (steps.explained(k)) {
        const pass = lrp.forward(x, { reuse: { pass: base, changed: randomised } });
        try {
          const init = oneHot(pass.prediction);
          try {
            add(
              lrp.backward(pass, { from: g.outputId, relevance: init, stopAt: [boundary] }).get(boundary)!,
              boundary,
            );
          } finally {
            init.dispose();
          }
        } finally {
          pass.dispose();
        }
      }
      steps.onStep?.(k);
    }
    flush();
    const all = done.length === 1 ? done[0]! : tf.concat(done);
    if (done.length > 1) tf.dispose(done);
    done.length = 0;
    const out = tf.split(all, all.shape[0]);
    all.dispose();
    return out;
  } finally {
    if (rows !== undefined) rows.dispose();
    tf.dispose(done);
    base.dispose();
  }
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
        // one sample: the steps' rows share its forward pass of batch 1 (the engine sends any number of rows
        // through a pass of batch 1, but for a larger batch only as many rows as it has)
        if (x.shape[0] !== 1 || !cascades(lrp, model, steps.layers)) return undefined;
        drop();
        since.clear();
        return cascadeOne(lrp, model, x, targets, steps, finish);
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

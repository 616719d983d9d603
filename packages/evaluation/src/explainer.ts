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
}

/** The one-hot output relevance of `targets` (zennit's `Gradient` attributor as Quantus calls it). */
function oneHotOf(targets: readonly number[]) {
  return (prediction: tf.Tensor) =>
    tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d([...targets], 'int32'), prediction.shape[1]!), 'float32'));
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

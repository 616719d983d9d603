import { addExact, CrpError, type ExactVector, exactVector, mergeVector, vectorValues } from '@crp/common';
import { CondAttribution, defaultConcept, disposeCondResult, HeadConcept } from '@crp/core';
import type { Attributor, ModelGraph } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';

/** The criteria that are sums over reference samples (and so split into shards): relevance, activation,
 * Taylor. `weight` and `random` need no data. */
export type SummedCriterion = 'relevance' | 'activation' | 'taylor';
export const SUMMED_CRITERIA: readonly SummedCriterion[] = ['relevance', 'activation', 'taylor'];

/**
 * Per layer and channel, the exact sum (see `addExact` of @crp/attribution) of a criterion's per-batch values
 * over some samples: mergeable in any grouping and order to the same bits. `positions` is the number of
 * spatial positions of each layer's maps (activation scores are means over them).
 */
export interface CriterionPartial {
  samples: number;
  layers: Record<string, ExactVector>;
  positions: Record<string, number>;
}

export function emptyCriterionPartial(): CriterionPartial {
  return { samples: 0, layers: {}, positions: {} };
}

/** Adds `b` into `a` (in place, exact) and returns `a`. */
export function mergeCriterionPartials(a: CriterionPartial, b: CriterionPartial): CriterionPartial {
  a.samples += b.samples;
  for (const [layer, sums] of Object.entries(b.layers)) {
    a.layers[layer] ??= exactVector(sums.length);
    mergeVector(a.layers[layer], sums);
  }
  Object.assign(a.positions, b.positions);
  return a;
}

/**
 * The axis of a layer's output [rows, ...] whose indices are the units a criterion scores: axis 1 of an attention
 * product whose concepts are heads ([rows, heads, tokens, d], `HeadConcept` of @crp/core, the concept the rest of
 * the toolkit gives that layer), else the last axis (channels, units, MLP neurons).
 */
export function unitAxis(graph: ModelGraph, layer: string, rank: number): number {
  return defaultConcept(graph, layer) instanceof HeadConcept ? 1 : rank - 1;
}

/** Every axis of a rank-`rank` tensor but `keep`. */
function allBut(rank: number, keep: number): number[] {
  return Array.from({ length: rank }, (_, i) => i).filter((i) => i !== keep);
}

/** Per unit (the indices of `axis`): sum of |t| over every other axis, as one exact term each. */
function sumAbs(t: tf.Tensor, axis: number): ExactVector {
  const s = tf.tidy(() => tf.sum(tf.abs(t), allBut(t.rank, axis)));
  const v = s.dataSync();
  s.dispose();
  return Array.from(v, (x) => addExact([], x));
}

/** Whether `layer` is a sum read only through a ReLU (a ResNet block's `add` and `relu`). */
function reluFollows(graph: ModelGraph, layer: string): boolean {
  const node = graph.node(layer);
  const readers = graph.consumersOf(node.id).map((c) => graph.node(c));
  return (
    node.kind === 'add' &&
    readers.length > 0 &&
    readers.every((r) => r.kind === 'activation' && r.activation === 'relu')
  );
}

/** Of `layers`, those with no other of them below: where a backward pass recording all of them can stop. */
function lowest(graph: ModelGraph, layers: readonly string[]): string[] {
  const ids = layers.map((l) => graph.node(l).id);
  return ids.filter((id) => !ids.some((o) => o !== id && graph.ancestorsOf(id).has(o)));
}

/**
 * The criterion's sums over one batch. `engine` is a `CondAttribution` for `relevance` (|relevance| at each
 * layer's output, each sample explained for its label) and a plain-gradient `Attributor` for `activation`
 * (|activation|; max(0, sum) at a residual sum that a ReLU follows) and `taylor` (per sample |mean over positions of activation x gradient| of the loss or the
 * label's logit).
 */
export function criterionBatch(
  criterion: SummedCriterion,
  engine: CondAttribution | Attributor,
  images: tf.Tensor,
  labels: readonly number[],
  layers: readonly string[],
  objective: 'loss' | 'logit' = 'loss',
): CriterionPartial {
  const rows = images.shape[0]!;
  const partial: CriterionPartial = { samples: rows, layers: {}, positions: {} };
  const graph = engine instanceof CondAttribution ? engine.attributor.graph : engine.graph;
  const axisOf = (l: string, t: tf.Tensor) => unitAxis(graph, l, t.rank);
  if (criterion === 'relevance') {
    const crp = engine as CondAttribution;
    const result = crp.run(
      images,
      labels.map((y) => ({ y: [y] })),
      { recordLayers: layers, heatmap: false, chunkSize: rows },
    );
    try {
      for (const l of layers) {
        const r = result.relevances[l]!;
        partial.layers[l] = sumAbs(r, axisOf(l, r));
      }
    } finally {
      disposeCondResult(result);
    }
    return partial;
  }
  const lrp = engine as Attributor;
  const pass = lrp.forward(images);
  try {
    if (criterion === 'activation') {
      for (const l of layers) {
        const a = pass.output(l);
        const axis = axisOf(l, a);
        partial.positions[l] = a.size / a.shape[0]! / a.shape[axis]!;
        if (reluFollows(graph, l)) {
          // a residual sum with a ReLU after it: the activation after the ReLU (the block's output)
          const post = tf.relu(a);
          partial.layers[l] = sumAbs(post, axis);
          post.dispose();
        } else {
          partial.layers[l] = sumAbs(a, axis);
        }
      }
      return partial;
    }
    if (criterion !== 'taylor') {
      throw new CrpError(
        'invalid-argument',
        `'${String(criterion)}' is not a summed criterion; valid: ${SUMMED_CRITERIA.join(', ')}`,
      );
    }
    const init = tf.tidy(() => {
      const logits = pass.prediction;
      const onehot = tf.cast(tf.oneHot(tf.tensor1d([...labels], 'int32'), logits.shape[1]!), 'float32');
      return objective === 'logit' ? onehot : tf.sub(tf.softmax(logits), onehot);
    });
    let grads: Map<string, tf.Tensor> | undefined;
    try {
      grads = lrp.backward(pass, {
        from: lrp.graph.outputId,
        relevance: init,
        record: [...layers],
        stopAt: lowest(lrp.graph, layers),
      });
      for (const l of layers) {
        const s = tf.tidy(() => {
          const ag = tf.mul(pass.output(l), grads!.get(l)!);
          // positions: every axis but the samples and the units (a head's tokens x features)
          const spatial = allBut(ag.rank, axisOf(l, ag)).slice(1);
          const perSample = spatial.length > 0 ? tf.mean(ag, spatial) : ag;
          return tf.sum(tf.abs(perSample), 0);
        });
        partial.layers[l] = Array.from(s.dataSync(), (x) => addExact([], x));
        s.dispose();
      }
    } finally {
      for (const t of grads?.values() ?? []) t.dispose();
      init.dispose();
    }
    return partial;
  } finally {
    pass.dispose();
  }
}

/** The merged sums as the criterion's per-channel values: relevance sums, activation means over samples and
 * positions, Taylor means over samples. */
export function criterionValues(
  partial: CriterionPartial,
  criterion: SummedCriterion,
  layers: readonly string[],
  channels: (layer: string) => number,
): Map<string, Float64Array> {
  const n = partial.samples;
  const out = new Map<string, Float64Array>();
  for (const l of layers) {
    const sums = partial.layers[l];
    const v = Float64Array.from(
      sums === undefined ? new Array<number>(channels(l)).fill(0) : vectorValues(sums),
    );
    const divisor =
      criterion === 'activation' ? n * (partial.positions[l] ?? 1) : criterion === 'taylor' ? n : 1;
    if (divisor > 0 && divisor !== 1) for (let c = 0; c < v.length; c++) v[c] = v[c]! / divisor;
    out.set(l, v);
  }
  return out;
}

/**
 * Everything the page computes, on one model: prediction, LRP heatmap, the concepts of a layer with their
 * conditional heatmaps, a concept's decomposition into the layer below and region relevance under a box. Plain
 * numbers and arrays come out; every tensor made here is disposed here.
 */
import {
  type ConceptStep,
  conceptLayers,
  conceptLayersBelow,
  decompose,
  type PatchEmbedding,
  patchEmbedding,
  pathRelevance,
  type RegionBox,
  type RegionRelevance,
  regionRelevance,
  transformerConceptLayers,
} from '@crp/attribution';
import { CrpError } from '@crp/common';
import { CondAttribution, type Condition, defaultConcept, disposeCondResult } from '@crp/core';
import { type CompositeName, compositeByName, compositeNameFor, graphFromLayersModel } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** A layer whose channels are concepts (conv and dense layers below the output; in a CNN with branches also the
 * layers that join them: a ResNet block's addition, a DenseNet's concatenation). */
export interface ConceptLayer {
  name: string;
  /** Kind of layer, as the graph names it (conv2d, dense, ...). */
  kind: string;
  channels: number;
}

/** One image's prediction. */
export interface Prediction {
  logits: number[];
  probabilities: number[];
  /** Index of the largest logit. */
  predicted: number;
}

/** A heatmap: H * W values, row-major. */
export interface Heatmap {
  data: Float32Array;
  height: number;
  width: number;
}

/** A concept's share of the relevance of its layer. */
export interface ConceptScore {
  channel: number;
  /** Its relevance (sum over the channel). */
  relevance: number;
  /** Relevance over the sum of |relevance| of the layer (zennit-crp's `abs_norm`), in [-1, 1]. */
  share: number;
}

/** A conditional heatmap, and for a ViT its relevance per token at patch resolution. */
export interface ConditionalHeatmap {
  heatmap: Heatmap;
  tokens?: Heatmap;
}

/** The class explanation: the LRP heatmap, and the concepts of one layer ranked. */
export interface ClassExplanation {
  heatmap: Heatmap;
  /** For a ViT, relevance per token at patch resolution (the patch embedding's output summed over its
   * features): `height` x `width` is the patch grid. */
  tokens?: Heatmap;
  /** Sum of the heatmap (the relevance that reached the input). */
  total: number;
  /** Every channel of the layer, largest relevance first. */
  concepts: ConceptScore[];
}

/** What the explorer needs to know about a model before explaining it. */
export interface ModelSummary {
  inputShape: [number, number, number];
  classes: number;
  layers: ConceptLayer[];
  /** Layers of the model, for the summary line. */
  layerCount: number;
}

/** The image shape [H, W, C] the model takes, or a CrpError saying why the explorer cannot feed it images. */
export function imageInputShape(model: tfl.LayersModel): [number, number, number] {
  const shape = model.inputs[0]?.shape ?? [];
  const [, h, w, c] = shape;
  if (
    model.inputs.length !== 1 ||
    shape.length !== 4 ||
    typeof h !== 'number' ||
    typeof w !== 'number' ||
    (c !== 1 && c !== 3)
  ) {
    throw new CrpError(
      'unsupported-model',
      `this model takes input [${shape.map((d) => d ?? 'any').join(', ')}]${model.inputs.length > 1 ? ` (and ${model.inputs.length - 1} more inputs)` : ''}; the explorer explains image classifiers with one input [batch, height, width, 1 or 3 channels] of a fixed size`,
    );
  }
  return [h, w, c];
}

/** The number of classes, or a CrpError when the model's output is not [batch, classes]. */
function classCount(model: tfl.LayersModel): number {
  const shape = model.outputs[0]?.shape ?? [];
  const classes = shape[1];
  if (model.outputs.length !== 1 || shape.length !== 2 || typeof classes !== 'number' || classes < 1) {
    throw new CrpError(
      'unsupported-model',
      `this model's output is [${shape.map((d) => d ?? 'any').join(', ')}]${model.outputs.length > 1 ? ` (one of ${model.outputs.length} outputs)` : ''}; the explorer explains classifiers with one output [batch, classes]`,
    );
  }
  return classes;
}

/** Whether the model's last layer applies softmax, so that its outputs are probabilities already. */
function endsInSoftmax(model: tfl.LayersModel): boolean {
  const last = model.layers.at(-1);
  if (last === undefined) return false;
  return last.getClassName() === 'Softmax' || last.getConfig().activation === 'softmax';
}

/** The model's prediction for one image: outputs, class probabilities and the predicted class. */
export function predict(model: tfl.LayersModel, x: tf.Tensor): Prediction {
  const softmaxAtTop = endsInSoftmax(model);
  const [out, probabilities] = tf.tidy(() => {
    const y = model.predict(x) as tf.Tensor;
    return [y, softmaxAtTop ? tf.clone(y) : tf.softmax(y)] as const;
  });
  const logits = Array.from(out.dataSync());
  const p = Array.from(probabilities.dataSync());
  tf.dispose([out, probabilities]);
  return {
    logits,
    probabilities: p,
    predicted: p.reduce((best, v, i, all) => (v > all[best]! ? i : best), 0),
  };
}

/** `wanted` if it fits the model, else the model's own (attn_lrp for a ViT: the CNN composites do not fit it). */
export function fittingComposite(model: tfl.LayersModel, wanted: CompositeName): CompositeName {
  let graph: ReturnType<typeof graphFromLayersModel>;
  try {
    graph = graphFromLayersModel(model);
  } catch {
    return wanted; // a layer LRP has no rule for: the Explainer says so, with the prediction still shown
  }
  try {
    return compositeNameFor(graph, wanted);
  } catch {
    return compositeNameFor(graph);
  } finally {
    graph.dispose();
  }
}

/** A sub-concept of a concept, with its relevance under the concept and its share of the concept's relevance. */
export interface SubConceptShare {
  layer: string;
  concept: number;
  relevance: number;
  share: number;
}

/** Graph kinds that join branches and are concept layers of the page (a gated product is not: its gate is no
 * concept of the feature map). */
const JOIN_KINDS: readonly string[] = ['add', 'concatenate'];

/** Explains one model under one composite. Holds derived weights: `dispose()` when done. */
export class Explainer {
  readonly crp: CondAttribution;
  readonly summary: ModelSummary;
  /** A ViT's patch embedding (undefined for a CNN). */
  readonly embedding: PatchEmbedding | undefined;

  /**
   * @param range - the value range of the model's input after preprocessing (for the z-box rule of
   *   `epsilon_gamma_box`, which needs the lowest and highest possible input)
   * @throws CrpError when the model is not an image classifier or has a layer LRP has no rule for
   */
  constructor(
    readonly model: tfl.LayersModel,
    readonly composite: CompositeName,
    range: { low: number; high: number },
  ) {
    const inputShape = imageInputShape(model);
    const classes = classCount(model);
    this.crp = new CondAttribution(model, {
      composite: compositeByName(composite, { low: range.low, high: range.high }),
    });
    const graph = this.crp.attributor.graph;
    try {
      compositeNameFor(graph, composite); // a CNN composite on a ViT: refused with the ones that fit
    } catch (err) {
      this.crp.dispose();
      throw err;
    }
    this.embedding = patchEmbedding(graph);
    // a concept is a channel, or an attention head at a ViT's attention product (defaultConcept); a CNN's joins
    // (additions, concatenations) are concept layers too: a residual block's output, decomposed into both branches
    const convs = new Set(conceptLayers(graph));
    const ids =
      transformerConceptLayers(graph) !== undefined
        ? [...convs]
        : graph.nodes.filter((n) => convs.has(n.id) || JOIN_KINDS.includes(n.kind)).map((n) => n.id);
    const layers = ids.map((id) => {
      const node = graph.node(id);
      const channels = defaultConcept(graph, id).count(node.outputShape.map(Number));
      return { name: id, kind: node.kind, channels };
    });
    this.summary = { inputShape, classes, layers, layerCount: model.layers.length };
  }

  /**
   * The concept layer named `name`, or a CrpError that says why it is none (no such layer; a layer without
   * channels of its own such as a pooling or flatten layer) and which layers are.
   */
  conceptLayer(name: string): ConceptLayer {
    const found = this.summary.layers.find((l) => l.name === name);
    if (found !== undefined) return found;
    const valid =
      this.summary.layers.map((l) => l.name).join(', ') || 'none: this model has no conv or dense layer';
    const graph = this.crp.attributor.graph;
    if (!graph.has(name)) {
      throw new CrpError(
        'unknown-layer',
        `there is no layer '${name}' in this model; concept layers: ${valid}`,
      );
    }
    const node = graph.node(name);
    const why =
      node.id === graph.outputId
        ? 'is the output layer, whose units are the classes themselves'
        : `(${node.kind}) has no channels of its own: concepts are the channels of conv and dense layers`;
    throw new CrpError('invalid-argument', `layer '${name}' ${why}; choose one of: ${valid}`);
  }

  /** The LRP heatmap of class `target` and the ranked concepts of `layer` (one forward, one backward pass). */
  explainClass(x: tf.Tensor, target: number, layer: string | undefined): ClassExplanation {
    const embedding = this.embedding?.layer;
    const recordLayers = [
      ...(layer === undefined ? [] : [layer]),
      ...(embedding === undefined ? [] : [embedding]),
    ];
    const result = this.crp.run(x, [{ y: [target] }], { recordLayers });
    try {
      const heatmap = heatmapOf(result.heatmap!, 0);
      let concepts: ConceptScore[] = [];
      if (layer !== undefined) {
        const relevance = result.relevances[layer]!;
        const concept = defaultConcept(this.crp.attributor.graph, layer);
        const [raw, shares] = tf.tidy(() => [
          concept.attribute(relevance, { absNorm: false }),
          concept.attribute(relevance, { absNorm: true }),
        ]);
        const r = raw.dataSync();
        const s = shares.dataSync();
        tf.dispose([raw, shares]);
        concepts = Array.from(r, (relevance, channel) => ({ channel, relevance, share: s[channel]! })).sort(
          (a, b) => b.relevance - a.relevance || a.channel - b.channel,
        );
      }
      const total = heatmap.data.reduce((a, b) => a + b, 0);
      if (embedding === undefined) return { heatmap, total, concepts };
      // [1, rows, cols, D] summed over the features: one value per patch
      const perPatch = tf.tidy(() => tf.sum(result.relevances[embedding]!, -1) as tf.Tensor3D);
      const tokens = heatmapOf(perPatch, 0);
      perPatch.dispose();
      return { heatmap, tokens, total, concepts };
    } finally {
      disposeCondResult(result);
    }
  }

  /** Conditional heatmaps: one per condition (e.g. `{ y: [7], conv: [12] }`), in order; for a ViT with the
   * relevance per token as well (`tokens`, as {@link ClassExplanation.tokens}). */
  conditionalHeatmaps(x: tf.Tensor, conditions: Condition[]): ConditionalHeatmap[] {
    const embedding = this.embedding?.layer;
    const result = this.crp.run(x, conditions, embedding === undefined ? {} : { recordLayers: [embedding] });
    try {
      const perPatch =
        embedding === undefined
          ? undefined
          : tf.tidy(() => tf.sum(result.relevances[embedding]!, -1) as tf.Tensor3D);
      const maps = conditions.map((_, i) => ({
        heatmap: heatmapOf(result.heatmap!, i),
        ...(perPatch === undefined ? {} : { tokens: heatmapOf(perPatch, i) }),
      }));
      perPatch?.dispose();
      return maps;
    } finally {
      disposeCondResult(result);
    }
  }

  /** The layers whose concepts a concept of `layer` decomposes into (a ViT: block output -> MLP neurons -> heads ->
   * the block's input; else the conv/dense layer below, or the addition or concatenation the layer reads, e.g. a
   * ResNet block's `layer1.1.add`; an addition or concatenation has one per branch), none when only the input lies
   * below. */
  conceptLayersBelow(layer: string): string[] {
    return conceptLayersBelow(this.crp.attributor.graph, layer);
  }

  /**
   * The heatmap of the last concept of `path` (a concept of the page's layer, then the sub-concepts clicked through,
   * {@link ConceptStep}): the relevance that reaches it through the concepts before it, taken on to the input. For a
   * concept alone it is its conditional heatmap `{ y, layer: [concept] }`.
   */
  pathHeatmap(x: tf.Tensor, target: number, path: readonly ConceptStep[]): ConditionalHeatmap {
    if (path.length === 1) {
      const [{ layer, concept }] = path as [ConceptStep];
      return this.conditionalHeatmaps(x, [{ y: [target], [layer]: [concept] }])[0]!;
    }
    const lrp = this.crp.attributor;
    const start = pathRelevance(this.crp, x, { target, path });
    const pass = lrp.forward(x);
    let input: Map<string, tf.Tensor> | undefined;
    try {
      input = lrp.backward(pass, { from: path.at(-1)!.layer, relevance: start });
      const heat = tf.tidy(() => tf.sum(input!.get(lrp.graph.inputId)!, -1) as tf.Tensor3D);
      const map = heatmapOf(heat, 0);
      heat.dispose();
      return { heatmap: map };
    } finally {
      if (input !== undefined) tf.dispose([...input.values()]);
      start.dispose();
      pass.dispose();
    }
  }

  /**
   * The heatmap of each sub-concept (`layer`, `concept`) of the last concept of `path`: the relevance that reaches it
   * through that concept, taken on to the input. For a concept of the page's layer with one layer below it is the
   * chain condition `{ y, layer: [channel], below: [k] }`. Deeper, or below a join, the chain would also count what
   * reaches the sub-concept around the path (an identity shortcut's source feeds the block's convs as well), so, as
   * `decompose` does for its node relevances, the concept's relevance is carried down the path (`pathRelevance`),
   * taken by a short pass to the layers below, masked to each sub-concept and taken to the input.
   */
  subConceptHeatmaps(
    x: tf.Tensor,
    target: number,
    path: readonly ConceptStep[],
    subs: readonly ConceptStep[],
  ): ConditionalHeatmap[] {
    const { layer, concept } = path.at(-1)!;
    const below = this.conceptLayersBelow(layer);
    if (path.length === 1 && below.length <= 1) {
      return this.conditionalHeatmaps(
        x,
        subs.map((s) => ({ y: [target], [layer]: [concept], [s.layer]: [s.concept] })),
      );
    }
    const lrp = this.crp.attributor;
    const g = lrp.graph;
    const masked = (l: string, t: tf.Tensor, k: number) => {
      const m = defaultConcept(g, l).mask([k], t.shape.slice(1));
      return tf.tidy(() => tf.mul(t, tf.tensor(m.data, [1, ...m.shape])));
    };
    const start = pathRelevance(this.crp, x, { target, path });
    const pass = lrp.forward(x);
    const owned: tf.Tensor[] = [start];
    try {
      const parts = lrp.backward(pass, { from: layer, relevance: start, stopAt: below });
      owned.push(...parts.values());
      const maps = new Array<ConditionalHeatmap>(subs.length);
      for (const b of below) {
        const rows = subs.flatMap((s, i) => (s.layer === b ? [i] : []));
        if (rows.length === 0) continue;
        const starts = rows.map((i) => masked(b, parts.get(b)!, subs[i]!.concept));
        owned.push(...starts);
        const relevance = tf.concat(starts, 0);
        owned.push(relevance);
        const input = lrp.backward(pass, { from: b, relevance });
        owned.push(...input.values());
        const heat = tf.tidy(() => tf.sum(input.get(g.inputId)!, -1) as tf.Tensor3D);
        owned.push(heat);
        rows.forEach((i, j) => {
          maps[i] = { heatmap: heatmapOf(heat, j) };
        });
      }
      return maps;
    } finally {
      tf.dispose(owned);
      pass.dispose();
    }
  }

  /**
   * The sub-concepts the last concept of `path` draws relevance from: per layer below (per branch at a join), its
   * `width` largest shares of the concept's relevance with any relevance, largest first (as a node of the attribution
   * graph of `path[0]`: its relevance is what reaches it through the path, `decompose`'s `path`). Ranked by share,
   * not by relevance: a concept whose relevance is negative (it speaks against the class) draws it from its most
   * negative sub-concepts. At an addition only the concept's own channel of each branch has relevance; a branch that
   * works against the sum (a negative share) is shown as well.
   */
  subConcepts(x: tf.Tensor, target: number, path: readonly ConceptStep[], width: number): SubConceptShare[] {
    const { layer, concept } = path.at(-1)!;
    const below = this.conceptLayersBelow(layer);
    // every sub-concept: decompose ranks by relevance, the page by share
    const all = Math.max(
      width,
      ...below.map((b) => this.summary.layers.find((l) => l.name === b)?.channels ?? width),
    );
    const graph = decompose(this.crp, x, { target, layer, concept, width: all, path: path.slice(0, -1) });
    const children = graph.edges.flatMap((edge) => {
      const node = graph.nodes.find((n) => n.id === edge.to)!;
      if (edge.from !== graph.root || edge.relevance === 0) return [];
      return [{ layer: node.layer, concept: node.concept, relevance: edge.relevance, share: edge.share }];
    });
    return below.flatMap((b) =>
      children
        .filter((c) => c.layer === b)
        .sort((p, q) => q.share - p.share || p.concept - q.concept)
        .slice(0, width),
    );
  }

  /** Relevance of every concept of `layer` inside `box`, computed through the adjoint pass. */
  region(x: tf.Tensor, target: number, layer: string, box: RegionBox): RegionRelevance {
    return regionRelevance(this.crp, x, { boxes: [box] }, { target, layers: [layer] });
  }

  dispose(): void {
    this.crp.dispose();
  }
}

function heatmapOf(heatmaps: tf.Tensor3D, row: number): Heatmap {
  const [, height, width] = heatmaps.shape;
  const one = tf.tidy(() => tf.slice(heatmaps, [row, 0, 0], [1, height, width]));
  const data = one.dataSync() as Float32Array;
  one.dispose();
  return { data: Float32Array.from(data), height, width };
}

import { CrpError } from '@crp/common';
import { type CondAttribution, type Condition, defaultConcept, disposeCondResult } from '@crp/core';
import type { ModelGraph } from '@crp/lrp';
import { PARAMETRIC_KINDS } from '@crp/lrp/internal';
import * as tf from '@tensorflow/tfjs-core';
import type { AttributionGraph, AttributionGraphEdge, AttributionGraphNode } from './attribution-graph.js';
import { transformerConceptBelow } from './transformer-concepts.js';

/**
 * The layers directly below `layer`, one per input branch: following each input down through layers of one input
 * (activations, pooling, padding, batch norm, flatten, ...) to the nearest conv/dense layer or the nearest layer
 * that joins branches (an addition, a concatenation, a gated product). A joining layer is a layer below in its own
 * right: its channels (a ResNet's residual stream after `layer2.0.add`, a DenseNet's concatenated features) are the
 * sub-concepts of a conv that reads it. So a conv or dense layer has exactly one layer below (or none: only the
 * input), and a joining layer one per branch (`layer2.0.add`: `layer2.0.conv2` and `layer2.0.downsample.0`; an
 * identity shortcut: the previous block's addition).
 *
 * zennit-crp's `ModelGraph.find_input_layers` gives the same when the joining layers are among its `layer_names`
 * (the `canonizer_sum` modules that zennit's ResNet canonizer adds); with convs and linears only, it passes
 * through the sums and returns every conv behind them (for `layer2.0.conv1` of a resnet18: `layer1.1.conv2`,
 * `layer1.0.conv2` and `conv1`, back along the identity shortcuts).
 */
export function layersBelow(graph: ModelGraph, layer: string): string[] {
  const found: string[] = [];
  for (const input of graph.node(layer).inputs) {
    let node = graph.node(input);
    while (!PARAMETRIC_KINDS.includes(node.kind) && node.inputs.length === 1)
      node = graph.node(node.inputs[0]!);
    if (node.inputs.length > 0 && !found.includes(node.id)) found.push(node.id);
  }
  return found;
}

/**
 * The one layer directly below `layer` ({@link layersBelow}): for a conv or dense layer the nearest conv/dense
 * layer or joining layer (addition, concatenation) below it, or undefined when only the input lies below.
 *
 * @throws CrpError `invalid-argument` for a joining layer with several branches below (name them)
 */
export function layerBelow(graph: ModelGraph, layer: string): string | undefined {
  const found = layersBelow(graph, layer);
  if (found.length > 1) {
    throw new CrpError(
      'invalid-argument',
      `layer '${graph.node(layer).id}' joins several branches, each with its own layer below (${found.join(', ')}); decompose a layer of one branch, or use decompose(), which follows every branch`,
    );
  }
  return found[0];
}

export interface DecomposeOptions {
  /** the class explained; required */
  target?: number;
  /** the layer of the concept */
  layer: string;
  /** the concept: a channel, or a head at an attention product (the layer's default concept) */
  concept: number;
  /** levels of sub-concepts (default 1: only the layer below) */
  depth?: number;
  /** sub-concepts kept per node (default 3), or one width per level */
  width?: number | readonly number[];
  /** condition rows per backward pass (`chunkSize` of @crp/core; default: chosen from the model size) */
  chunkSize?: number;
  /** The concept's ancestors in an attribution graph, from its root down (each step's layer one of the layers
   * below the step before it, {@link conceptLayersBelow}; the concept's `layer` one below the last): the concept is
   * decomposed as the node it is there, its relevance what reaches it through them ({@link pathRelevance}). Default
   * none: the concept is the root, its relevance its own under `{ y }`. */
  path?: readonly ConceptStep[];
  /** Run the conditional backward passes to the input (as CRP without early stopping does). Default false: each
   * pass stops at the layer below (the short passes below a join always do). Same numbers; for comparisons only. */
  fullPass?: boolean;
}

/** A concept of a layer: one step of a path down an attribution graph. */
export interface ConceptStep {
  layer: string;
  /** the concept: a channel, or a head at an attention product (the layer's default concept) */
  concept: number;
}

/**
 * Where the sub-concepts of a concept of `layer` are: in a transformer the concept layer below
 * (`transformerConceptBelow`: block output -> MLP neurons -> heads -> the block's input), else the conv/dense
 * layer below ({@link layerBelow}).
 */
export function conceptLayerBelow(graph: ModelGraph, layer: string): string | undefined {
  return transformerConceptBelow(graph, layer) ?? layerBelow(graph, layer);
}

/** Per row, the concept sums of a relevance at `layer` ([rows, concepts] values): channels summed over positions
 * (tokens), or heads summed over tokens and features (the layer's default concept, as `decompose` and the
 * decomposition atlas read it). */
export function conceptSums(
  graph: ModelGraph,
  layer: string,
  t: tf.Tensor,
): { values: Float32Array; concepts: number } {
  const s = defaultConcept(graph, layer).attribute(t);
  const values = s.dataSync() as Float32Array;
  const concepts = s.shape[1];
  s.dispose();
  return { values, concepts };
}

/** The part of a conditional attribution result that the decomposition reads. */
type CondResultLike = { relevances: Record<string, tf.Tensor> };
/** Per frontier row: each layer below -> its concept sums. */
type RowSums = Map<string, number[]>[];
/** A node of the attribution graph still to decompose, with the chain of conditions that leads to it. */
interface Frontier {
  node: AttributionGraphNode;
  condition: Condition;
  /** Below a join: the node's relevance at its layer's output, masked to its concept ([1, ...]), which its
   * subtree splits. Owned by the frontier. */
  carried?: tf.Tensor | undefined;
}
/** One level's concept sums and, for the rows below a join, each layer below's relevance tensor ([1, ...] per row,
 * when the next level needs it). */
interface Level {
  sums: RowSums;
  below: (Map<string, tf.Tensor> | undefined)[];
}
/** How each pass runs: which layers it records, whether it goes on to the input, rows per pass. */
type RunOptions = (record: string[]) => { recordLayers: string[]; heatmap: boolean; chunkSize?: number };

/** The layers below a node: in a ViT the concept layer below, else one per input branch (an addition's concept
 * decomposes into both addends' layers, as zennit-crp's AttributionGraph follows every input layer). */
export function conceptLayersBelow(graph: ModelGraph, layer: string): string[] {
  const t = transformerConceptBelow(graph, layer);
  return t === undefined ? layersBelow(graph, layer) : [t];
}

/** Per row of a result, each layer's concept sums. */
function rowSums(graph: ModelGraph, r: CondResultLike, layers: readonly string[], rows: number): RowSums {
  const out = Array.from({ length: rows }, () => new Map<string, number[]>());
  for (const l of layers) {
    const { values, concepts: c } = conceptSums(graph, l, r.relevances[l]!);
    for (let row = 0; row < rows; row++)
      out[row]!.set(l, Array.from(values.subarray(row * c, (row + 1) * c)));
  }
  return out;
}

/** `t` ([K, ...]) with every concept of `layer` but `concept` zeroed. */
function maskTo(graph: ModelGraph, layer: string, t: tf.Tensor, concept: number): tf.Tensor {
  const m = defaultConcept(graph, layer).mask([concept], t.shape.slice(1));
  return tf.tidy(() => tf.mul(t, tf.tensor(m.data, [1, ...m.shape])));
}

/**
 * A join reached by a pure chain: its relevance under the chain above it (recorded before its own mask), masked to
 * its concept. Its subtree then carries this tensor down (see {@link carriedSums}): the recorded relevance of a
 * branch's layer would not do, since an identity shortcut's source (the previous block's addition) also feeds the
 * other branch, so its recorded relevance holds what came down through that branch as well.
 */
function joinRelevance(
  crp: CondAttribution,
  image: tf.Tensor,
  f: Frontier,
  runOptions: RunOptions,
): tf.Tensor {
  const layer = f.node.layer;
  const r = crp.run(image, [f.condition], runOptions([layer]));
  try {
    return maskTo(crp.attributor.graph, layer, r.relevances[layer]!, f.node.concept);
  } finally {
    disposeCondResult(r);
  }
}

/**
 * The relevance of the last concept of `path` as a node of the attribution graph of the first ({@link decompose}):
 * what reaches it through the concepts before it, at its layer's output, masked to it ([1, ...]; **the caller owns
 * it**). The first concept's relevance is its own under `{ y: [target] }`; from there each step's relevance is taken
 * by the engine's short pass that stops at the layers below the step (all of them, so at a join each branch gets
 * its own part only: an identity shortcut's source does not also collect what comes down the block's convs) and
 * masked to the next concept. On a chain this is zennit-crp's chain condition `{ y, L0: [c0], L1: [c1], ... }`
 * under `exclude_parallel` (each segment restarts from the masked relevance); `decompose` gives a node the same.
 *
 * @throws CrpError `invalid-argument` for an empty path, a step whose layer is not below the one before (naming
 * the layers below), or a concept out of range; `unknown-layer` for a layer the model does not have
 */
export function pathRelevance(
  crp: CondAttribution,
  image: tf.Tensor,
  options: { target: number; path: readonly ConceptStep[] },
): tf.Tensor {
  const g = crp.attributor.graph;
  const { path, target } = options;
  if (path.length === 0) throw new CrpError('invalid-argument', 'path: give at least one concept');
  const ids = path.map((s) => g.node(s.layer).id);
  for (let k = 1; k < path.length; k++) {
    const below = conceptLayersBelow(g, ids[k - 1]!);
    if (!below.includes(ids[k]!)) {
      throw new CrpError(
        'invalid-argument',
        `path: '${path[k]!.layer}' is not a layer below '${path[k - 1]!.layer}'; the layers below it: ${below.join(', ') || 'none (only the input)'}`,
      );
    }
  }
  const r = crp.run(image, [{ y: [target] }], { recordLayers: [ids[0]!], heatmap: false });
  const step = (k: number, t: tf.Tensor) => {
    defaultConcept(g, ids[k]!).validate([path[k]!.concept], t.shape.slice(1), path[k]!.layer);
    return maskTo(g, ids[k]!, t, path[k]!.concept);
  };
  let current: tf.Tensor;
  try {
    current = step(0, r.relevances[ids[0]!]!);
  } finally {
    disposeCondResult(r);
  }
  if (path.length === 1) return current;
  const pass = crp.attributor.forward(image);
  try {
    for (let k = 1; k < path.length; k++) {
      const out = crp.attributor.backward(pass, {
        from: ids[k - 1]!,
        relevance: current,
        stopAt: conceptLayersBelow(g, ids[k - 1]!),
      });
      try {
        const next = step(k, out.get(ids[k]!)!);
        current.dispose();
        current = next;
      } finally {
        for (const t of out.values()) t.dispose();
      }
    }
    return current;
  } catch (err) {
    current.dispose();
    throw err;
  } finally {
    pass.dispose();
  }
}

/**
 * The rows below a join (and the joins): each node's own relevance tensor taken down by the engine's short pass
 * that stops at its layers below, so its children split exactly what reached it. One backward per layer (the
 * rows of a layer batched), on one forward pass.
 */
function carriedSums(
  crp: CondAttribution,
  image: tf.Tensor,
  frontier: readonly Frontier[],
  rows: readonly number[],
  belowRows: readonly string[][],
  runOptions: RunOptions,
  keep: boolean,
  level: Level,
): void {
  const g = crp.attributor.graph;
  const fresh = new Map<number, tf.Tensor>();
  let pass: ReturnType<typeof crp.attributor.forward> | undefined;
  try {
    for (const row of rows) {
      if (frontier[row]!.carried === undefined)
        fresh.set(row, joinRelevance(crp, image, frontier[row]!, runOptions));
    }
    pass = crp.attributor.forward(image);
    const layers = [...new Set(rows.map((row) => frontier[row]!.node.layer))];
    for (const layer of layers) {
      const group = rows.filter((row) => frontier[row]!.node.layer === layer);
      const below = belowRows[group[0]!]!;
      const starts = group.map((row) => frontier[row]!.carried ?? fresh.get(row)!);
      const relevance = starts.length === 1 ? starts[0]! : tf.concat(starts, 0);
      let out: Map<string, tf.Tensor> | undefined;
      try {
        out = crp.attributor.backward(pass, { from: layer, relevance, stopAt: below });
        const sums = rowSums(g, { relevances: Object.fromEntries(out) }, below, group.length);
        group.forEach((row, j) => {
          level.sums[row] = sums[j]!;
          if (keep) {
            level.below[row] = new Map(
              below.map((b) => [b, tf.slice(out!.get(b)!, [j], [1])] as [string, tf.Tensor]),
            );
          }
        });
      } finally {
        if (relevance !== starts[0]) relevance.dispose();
        if (out !== undefined) for (const t of out.values()) t.dispose();
      }
    }
  } finally {
    pass?.dispose();
    for (const t of fresh.values()) t.dispose();
  }
}

/** The concept sums of one level: rows of a pure chain (one layer below, no join above) share one conditional
 * pass; joins and every row below a join carry their relevance tensor down ({@link carriedSums}). `keep`: return
 * the layers-below tensors of those rows for the next level. */
function levelSums(
  crp: CondAttribution,
  image: tf.Tensor,
  frontier: readonly Frontier[],
  belowRows: readonly string[][],
  runOptions: RunOptions,
  keep: boolean,
): Level {
  const level: Level = { sums: frontier.map(() => new Map()), below: frontier.map(() => undefined) };
  const isChain = (row: number) => belowRows[row]!.length === 1 && frontier[row]!.carried === undefined;
  const chain = frontier.map((_, row) => row).filter(isChain);
  if (chain.length > 0) {
    const record = [...new Set(chain.map((row) => belowRows[row]![0]!))];
    const r = crp.run(
      image,
      chain.map((row) => frontier[row]!.condition),
      runOptions(record),
    );
    try {
      // rows of a single image come in condition order
      rowSums(crp.attributor.graph, r, record, chain.length).forEach((m, j) => {
        level.sums[chain[j]!] = m;
      });
    } finally {
      disposeCondResult(r);
    }
  }
  const carried = frontier.map((_, row) => row).filter((row) => belowRows[row]!.length > 0 && !isChain(row));
  try {
    if (carried.length > 0) carriedSums(crp, image, frontier, carried, belowRows, runOptions, keep, level);
  } catch (err) {
    disposeLevel(level);
    throw err;
  }
  return level;
}

function disposeFrontier(frontier: readonly Frontier[]): void {
  for (const f of frontier) {
    f.carried?.dispose();
    f.carried = undefined;
  }
}

function disposeLevel(level: Level): void {
  for (const m of level.below) if (m !== undefined) for (const t of m.values()) t.dispose();
}

/** Checks decompose's options against the model: the root layer's id, the class, the width of each level. */
function checkDecompose(
  crp: CondAttribution,
  image: tf.Tensor,
  options: DecomposeOptions,
): { rootLayer: string; y: number; widths: number[] } {
  const g = crp.attributor.graph;
  if (image.rank < 2 || image.shape[0] !== 1) {
    throw new CrpError(
      'invalid-shape',
      `decompose explains one image [1, ...], got [${image.shape.join(', ')}]`,
    );
  }
  const depth = options.depth ?? 1;
  if (!Number.isInteger(depth) || depth < 1) {
    throw new CrpError('invalid-argument', `depth must be a positive integer, got ${depth}`);
  }
  const widths = Array.from({ length: depth }, (_, d) => {
    const w = options.width ?? 3;
    return typeof w === 'number' ? w : (w[d] ?? w[w.length - 1] ?? 3);
  });
  for (const w of widths) {
    if (!Number.isInteger(w) || w < 1)
      throw new CrpError('invalid-argument', `width must be a positive integer, got ${w}`);
  }
  const rootLayer = g.node(options.layer).id;
  const classes = g.node(g.outputId).outputShape.at(-1);
  const y = options.target;
  if (y === undefined) throw new CrpError('invalid-target', 'give the class to explain as options.target');
  if (!Number.isInteger(y) || y < 0 || (typeof classes === 'number' && y >= classes)) {
    throw new CrpError(
      'invalid-target',
      `target ${y} is out of range: the model has ${classes} outputs (valid: 0..${Number(classes) - 1})`,
    );
  }
  if (rootLayer === g.outputId) {
    throw new CrpError(
      'invalid-argument',
      `decompose a concept of a layer below the output, not the output '${rootLayer}'`,
    );
  }
  const rootShape = g.node(rootLayer).outputShape;
  const rootChannels = rootShape.every((d) => typeof d === 'number')
    ? defaultConcept(g, rootLayer).count(rootShape as number[])
    : rootShape.at(-1);
  const unit = defaultConcept(g, rootLayer).name === 'HeadConcept' ? 'heads' : 'channels';
  if (
    !Number.isInteger(options.concept) ||
    options.concept < 0 ||
    (typeof rootChannels === 'number' && options.concept >= rootChannels)
  ) {
    throw new CrpError(
      'invalid-argument',
      `concept ${options.concept} is out of range for layer '${rootLayer}': it has ${rootChannels} ${unit} (valid: 0..${Number(rootChannels) - 1})`,
    );
  }
  return { rootLayer, y, widths };
}

/**
 * Decomposition (attribution fragmentation) of concept `concept` of `layer` for class `target` in one image:
 * the backward pass restarts from that concept (condition `{ y: [target], layer: [concept] }`) and stops at
 * the layers below ({@link layersBelow}; in a ViT a head's sub-concepts are the d_model channels of its block's
 * input, a block output's are its MLP neurons), whose concepts are the sub-concepts, each with its share of the
 * concept's relevance. A conv has one layer below (a conv, or the addition or concatenation it reads); an
 * addition's concept decomposes into both branches, `width` sub-concepts in each (zennit-crp's AttributionGraph
 * does the same for every input layer). Recursively, each kept sub-concept is decomposed, to `depth` levels and
 * `width` sub-concepts per node and layer below: on a chain with the whole chain as condition (all such nodes of
 * one level share one forward and one backward pass); below a join by carrying its own relevance tensor down.
 *
 * Node relevance is the concept's relevance under its ancestors' chain (the root: under `{ y }`; with `path`, the
 * root is a node of a deeper graph and its relevance what reaches it through the path, {@link pathRelevance}). Below a join it
 * is the part that reaches the node through its parent alone (a shortcut's source also feeds the block's convs,
 * whose relevance is not its parent's), and its children split exactly that: where the rules conserve (z+ without
 * bias, zennit's Sum), each node's children in a layer below add up to it at every depth. An edge's share is the
 * child's relevance over the parent's.
 */
export function decompose(
  crp: CondAttribution,
  image: tf.Tensor,
  options: DecomposeOptions,
): AttributionGraph {
  const g = crp.attributor.graph;
  const { rootLayer, y, widths } = checkDecompose(crp, image, options);
  const depth = widths.length;
  const nodes: AttributionGraphNode[] = [];
  const edges: AttributionGraphEdge[] = [];
  const runOptions: RunOptions = (record) => ({
    recordLayers: record,
    heatmap: options.fullPass === true,
    ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
  });
  const below0 = conceptLayersBelow(g, rootLayer);
  const rootJoins = below0.length > 1;
  const rootCondition: Condition = { y: [y], [rootLayer]: [options.concept] };
  const rootNode = (relevance: number): AttributionGraphNode => {
    const root = { id: 'n0', layer: rootLayer, concept: options.concept, relevance, depth: 0 };
    nodes.push(root);
    return root;
  };
  let frontier: Frontier[];
  let pending: RowSums | undefined;
  if (options.path !== undefined && options.path.length > 0) {
    // a node of a deeper graph: its relevance is what reaches it through the path, carried down from there
    const carried = pathRelevance(crp, image, {
      target: y,
      path: [...options.path, { layer: rootLayer, concept: options.concept }],
    });
    const root = rootNode(conceptSums(g, rootLayer, carried).values[options.concept]!);
    frontier = [{ node: root, condition: rootCondition, carried }];
  } else {
    // level 0: the root's relevance (recorded before its mask) and, in the same pass, its sub-concepts
    const first = crp.run(
      image,
      [rootCondition],
      runOptions(rootJoins ? [rootLayer] : [rootLayer, ...below0]),
    );
    try {
      const rootSums = conceptSums(g, rootLayer, first.relevances[rootLayer]!);
      const root = rootNode(rootSums.values[options.concept]!);
      frontier = [{ node: root, condition: rootCondition }];
      if (!rootJoins) pending = rowSums(g, first, below0, 1);
    } finally {
      disposeCondResult(first);
    }
  }
  try {
    for (let d = 0; d < depth; d++) {
      const belowRows = frontier.map((f) => conceptLayersBelow(g, f.node.layer));
      if (belowRows.every((b) => b.length === 0)) break;
      // the last level's children are not decomposed: no tensors to carry for them
      const level: Level = pending
        ? { sums: pending, below: [] }
        : levelSums(crp, image, frontier, belowRows, runOptions, d + 1 < depth);
      pending = undefined;
      const next: Frontier[] = [];
      try {
        frontier.forEach((f, row) => {
          for (const below of belowRows[row]!) {
            const values = level.sums[row]!.get(below)!;
            const order = values
              .map((_, k) => k)
              .sort((a, b) => values[b]! - values[a]! || a - b)
              .slice(0, widths[d]!);
            const tensor = level.below[row]?.get(below);
            for (const k of order) {
              const child: AttributionGraphNode = {
                id: `n${nodes.length}`,
                layer: below,
                concept: k,
                relevance: values[k]!,
                depth: d + 1,
              };
              nodes.push(child);
              edges.push({
                from: f.node.id,
                to: child.id,
                relevance: values[k]!,
                share: f.node.relevance === 0 ? 0 : values[k]! / f.node.relevance,
              });
              next.push({
                node: child,
                condition: { ...f.condition, [below]: [k] },
                ...(tensor === undefined ? {} : { carried: maskTo(g, below, tensor, k) }),
              });
            }
          }
        });
      } catch (err) {
        disposeFrontier(next);
        throw err;
      } finally {
        disposeLevel(level);
        disposeFrontier(frontier);
      }
      frontier = next;
    }
  } finally {
    disposeFrontier(frontier);
  }
  return { target: y, root: 'n0', nodes, edges };
}

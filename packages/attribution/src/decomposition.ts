import { CrpError } from '@crp/common';
import { type CondAttribution, type Condition, defaultConcept, disposeCondResult } from '@crp/core';
import type { ModelGraph } from '@crp/lrp';
import { PARAMETRIC_KINDS } from '@crp/lrp/internal';
import type * as tf from '@tensorflow/tfjs-core';
import type { AttributionGraph, AttributionGraphEdge, AttributionGraphNode } from './attribution-graph.js';
import { transformerConceptBelow } from './transformer-concepts.js';

/**
 * The conv/dense layer directly below `layer`: the nearest parametric node reached through the layer's inputs
 * (passing activations, pooling, flatten, ...), or undefined when only the input lies below.
 */
export function layerBelow(graph: ModelGraph, layer: string): string | undefined {
  const start = graph.node(layer);
  const found = new Set<string>();
  const seen = new Set<string>();
  const stack = [...start.inputs];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const node = graph.node(id);
    if (PARAMETRIC_KINDS.includes(node.kind)) found.add(id);
    else stack.push(...node.inputs);
  }
  if (found.size > 1) {
    throw new CrpError(
      'invalid-argument',
      `layer '${start.id}' has several conv/dense layers directly below it (${[...found].join(', ')}); decompose within a chain of layers`,
    );
  }
  return found.values().next().value;
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
  /** Run every backward pass to the input (as CRP without early stopping does). Default false: each pass
   * stops at the layer below. Same numbers; for comparisons only. */
  fullPass?: boolean;
}

/**
 * Where the sub-concepts of a concept of `layer` are: in a transformer the concept layer below
 * (`transformerConceptBelow`: block output -> MLP neurons -> heads -> the block's input), else the conv/dense
 * layer below ({@link layerBelow}).
 */
export function conceptLayerBelow(graph: ModelGraph, layer: string): string | undefined {
  return transformerConceptBelow(graph, layer) ?? layerBelow(graph, layer);
}

/** Per row, the concept sums of a recorded relevance ([rows, concepts] values): channels summed over positions
 * (tokens), or heads summed over tokens and features (the layer's default concept). */
function conceptSums(graph: ModelGraph, layer: string, t: tf.Tensor): { values: Float32Array; c: number } {
  const s = defaultConcept(graph, layer).attribute(t);
  const values = s.dataSync() as Float32Array;
  const c = s.shape[1];
  s.dispose();
  return { values, c };
}

/**
 * Decomposition (attribution fragmentation) of concept `concept` of `layer` for class `target` in one image:
 * the backward pass restarts from that concept (condition `{ y: [target], layer: [concept] }`) and stops at
 * the layer below ({@link conceptLayerBelow}; in a ViT a head's sub-concepts are the d_model channels of its
 * block's input, a block output's are its MLP neurons), whose concepts are the sub-concepts, each with its share of the concept's
 * relevance. Recursively, each kept sub-concept is decomposed with the whole chain as condition, to `depth`
 * levels and `width` sub-concepts per node. All nodes of one level share one forward and one backward pass.
 *
 * Node relevance is the concept's relevance under its ancestors' chain (the root: under `{ y }`); an edge's
 * share is the child's relevance over the parent's.
 */
export function decompose(
  crp: CondAttribution,
  image: tf.Tensor,
  options: DecomposeOptions,
): AttributionGraph {
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
  const nodes: AttributionGraphNode[] = [];
  const edges: AttributionGraphEdge[] = [];
  const runOptions = (record: string[]) => ({
    recordLayers: record,
    heatmap: options.fullPass === true,
    ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
  });

  interface Frontier {
    node: AttributionGraphNode;
    condition: Condition;
  }
  const below0 = conceptLayerBelow(g, rootLayer);
  // level 0: the root's relevance (recorded before its mask) and, in the same pass, its sub-concepts
  const rootCondition: Condition = { y: [y], [rootLayer]: [options.concept] };
  const first = crp.run(
    image,
    [rootCondition],
    runOptions(below0 === undefined ? [rootLayer] : [rootLayer, below0]),
  );
  let frontier: Frontier[];
  let pending: { sums: Float32Array; c: number } | undefined;
  try {
    const rootSums = conceptSums(g, rootLayer, first.relevances[rootLayer]!);
    const root: AttributionGraphNode = {
      id: 'n0',
      layer: rootLayer,
      concept: options.concept,
      relevance: rootSums.values[options.concept]!,
      depth: 0,
    };
    nodes.push(root);
    frontier = [{ node: root, condition: rootCondition }];
    if (below0 !== undefined) {
      const s = conceptSums(g, below0, first.relevances[below0]!);
      pending = { sums: s.values, c: s.c };
    }
  } finally {
    disposeCondResult(first);
  }
  let layer = rootLayer;
  for (let d = 0; d < depth; d++) {
    const below = conceptLayerBelow(g, layer);
    if (below === undefined) break;
    let sums: Float32Array;
    let c: number;
    if (pending !== undefined) {
      ({ sums, c } = pending);
      pending = undefined;
    } else {
      const r = crp.run(
        image,
        frontier.map((f) => f.condition),
        runOptions([below]),
      );
      try {
        // rows of a single image come in condition order
        const s = conceptSums(g, below, r.relevances[below]!);
        sums = s.values;
        c = s.c;
      } finally {
        disposeCondResult(r);
      }
    }
    const next: Frontier[] = [];
    frontier.forEach((f, row) => {
      const values = Array.from(sums.subarray(row * c, (row + 1) * c));
      const order = values
        .map((_, k) => k)
        .sort((a, b) => values[b]! - values[a]! || a - b)
        .slice(0, widths[d]!);
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
        next.push({ node: child, condition: { ...f.condition, [below]: [k] } });
      }
    });
    frontier = next;
    layer = below;
  }
  return { target: y, root: 'n0', nodes, edges };
}

import { graphFromLayersModel, type ModelGraph } from '@crp/lrp';
import type { LayersModel } from '@tensorflow/tfjs-layers';

/**
 * An attention product whose concepts are heads: the attention weights times the values, output
 * [heads, tokens, d] (`self_attention.context` of the ViTs of @crp/models; `HeadConcept` of @crp/core). Head h is
 * masked by zeroing the value projection's output columns h * d .. (h + 1) * d - 1 (kernel columns and bias): its
 * values are then 0, so its attention output (softmax times 0) and its slice of the merged heads before out_proj
 * are exactly 0, whatever the attention weights are.
 */
export interface HeadLayer {
  /** the attention product's layer name (the mask's key) */
  name: string;
  heads: number;
  /** features per head */
  headDim: number;
  /** the Dense layer whose output, split into heads, is the values (`self_attention.v_proj`) */
  valueLayer: string;
}

/**
 * The value projection behind an attention product: a Dense whose output is reshaped to [tokens, heads, d] and
 * permuted to [heads, tokens, d], the layout in which output column c belongs to head floor(c / d). Undefined
 * when the values come another way (then its heads cannot be masked through the weights).
 */
function valueProjection(graph: ModelGraph, id: string): string | undefined {
  const node = graph.node(id);
  const [heads, tokens, d] = node.outputShape as number[];
  const permute = graph.node(node.inputs[1]!);
  if (permute.params.kind !== 'permute' || permute.params.perm.join() !== '0,2,1,3') return undefined;
  const reshape = graph.node(permute.inputs[0]!);
  if (reshape.params.kind !== 'reshape' || reshape.params.targetShape.join() !== [tokens, heads, d].join()) {
    return undefined;
  }
  const dense = graph.node(reshape.inputs[0]!);
  if (dense.kind !== 'dense' || dense.outputShape.at(-1) !== heads! * d!) return undefined;
  // the values must be the Dense's output as it is (no activation between, which could map 0 elsewhere)
  if (dense.activation !== 'linear') return undefined;
  return dense.layerName;
}

/** Attention products of a graph (the second factor not transposed, [heads, tokens, d]): where heads are. */
function attentionProducts(graph: ModelGraph): string[] {
  return graph.nodes
    .filter(
      (n) =>
        n.kind === 'matMul' &&
        n.params.kind === 'matMul' &&
        !n.params.transposeB &&
        n.outputShape.length === 3 &&
        n.inputs.length === 2,
    )
    .map((n) => n.id);
}

/** The head layers of a model graph whose heads can be masked (see {@link HeadLayer}), in model order; the
 * attention products whose values come another way are in `unmaskable`. */
export function headLayersOfGraph(graph: ModelGraph): { layers: HeadLayer[]; unmaskable: string[] } {
  const layers: HeadLayer[] = [];
  const unmaskable: string[] = [];
  for (const id of attentionProducts(graph)) {
    const node = graph.node(id);
    const valueLayer = valueProjection(graph, id);
    if (valueLayer === undefined) {
      unmaskable.push(node.layerName);
      continue;
    }
    const [heads, , headDim] = node.outputShape as number[];
    layers.push({ name: node.layerName, heads: heads!, headDim: headDim!, valueLayer });
  }
  return { layers, unmaskable };
}

/**
 * The attention head layers of `model` whose heads a {@link ChannelMask} can prune (`{ [name]: [h, ...] }`):
 * empty for a model without attention. See {@link HeadLayer} for what masking a head does.
 */
export function headLayers(model: LayersModel): HeadLayer[] {
  if (!model.layers.some((l) => l.getClassName() === 'MatMul')) return [];
  const graph = graphFromLayersModel(model);
  try {
    return headLayersOfGraph(graph).layers;
  } finally {
    graph.dispose();
  }
}

import type { GraphNode, ModelGraph } from '@crp/lrp';

/** The concept layers of one transformer block (node ids), found by structure, not by name. */
export interface TransformerBlockLayers {
  /** the attention-weighted values [heads, tokens, d] (`self_attention.context`): concepts are heads */
  heads: string;
  /** the MLP's first dense layer [tokens, mlpDim] (`mlp.0`): concepts are MLP neurons, summed over tokens */
  mlpNeurons?: string;
  /** the MLP's second dense layer [tokens, D] (`mlp.3`): d_model dimensions of the MLP's output, whose
   * sub-concepts (decomposition) are the MLP neurons */
  mlpOutput?: string;
  /** the residual addition after the MLP [tokens, D] (`add_2`): the block's output, d_model dimensions */
  output?: string;
}

function consumersOf(graph: ModelGraph): Map<string, GraphNode[]> {
  const out = new Map<string, GraphNode[]>();
  for (const n of graph.nodes) {
    for (const i of n.inputs) out.set(i, [...(out.get(i) ?? []), n]);
  }
  return out;
}

const isGeluDense = (n: GraphNode, consumers: Map<string, GraphNode[]>): boolean =>
  n.kind === 'dense' &&
  (n.activation === 'gelu' ||
    (consumers.get(n.id) ?? []).some((c) => c.kind === 'activation' && c.activation === 'gelu'));

/**
 * The blocks of a transformer (a model with products of two activations, as the ViTs of @crp/models), input
 * towards output: per block the attention product that carries the heads (a MatMul without transposed second
 * factor: attention times values), and after it, before the next block's, the MLP's dense layer followed by GELU,
 * the dense layer after that, and the residual addition that takes it. Empty for a model without attention.
 */
export function transformerBlocks(graph: ModelGraph): TransformerBlockLayers[] {
  const consumers = consumersOf(graph);
  const blocks: TransformerBlockLayers[] = [];
  for (const n of graph.nodes) {
    if (
      n.kind === 'matMul' &&
      n.params.kind === 'matMul' &&
      !n.params.transposeB &&
      n.outputShape.length === 3
    ) {
      blocks.push({ heads: n.id });
      continue;
    }
    const block = blocks.at(-1);
    if (block === undefined) continue;
    if (block.mlpNeurons === undefined && isGeluDense(n, consumers)) block.mlpNeurons = n.id;
    else if (block.mlpNeurons !== undefined && block.mlpOutput === undefined && n.kind === 'dense') {
      block.mlpOutput = n.id;
    } else if (block.mlpOutput !== undefined && block.output === undefined && n.kind === 'add') {
      if (n.inputs.includes(block.mlpOutput)) block.output = n.id;
    }
  }
  return blocks;
}

/**
 * The concept layers of a transformer, input towards output: per block its heads, MLP neurons, MLP output and
 * block output (see {@link TransformerBlockLayers}); undefined for a model without attention (a CNN).
 */
export function transformerConceptLayers(graph: ModelGraph): string[] | undefined {
  const blocks = transformerBlocks(graph);
  if (blocks.length === 0) return undefined;
  return blocks.flatMap((b) =>
    [b.heads, b.mlpNeurons, b.mlpOutput, b.output].filter((x): x is string => x !== undefined),
  );
}

/** Where a ViT turns pixels into tokens: its patch embedding layer and the patch grid. */
export interface PatchEmbedding {
  /** the convolution with kernel = stride (`conv_proj`), whose output [rows, cols, D] is one token per patch */
  layer: string;
  /** patches: [rows, columns] */
  grid: [number, number];
  /** pixels per patch: [height, width] */
  patch: [number, number];
}

/**
 * The patch embedding of a transformer ({@link transformerBlocks} not empty): its first convolution whose kernel
 * equals its stride, so that each output position is one patch. Its output relevance, summed over the features, is
 * the token heatmap at patch resolution (one value per patch; what reaches the class token and the position
 * embeddings, learned parameters rather than patches, is not in it). Undefined for a CNN.
 */
export function patchEmbedding(graph: ModelGraph): PatchEmbedding | undefined {
  if (transformerBlocks(graph).length === 0) return undefined;
  for (const n of graph.nodes) {
    const p = n.params;
    if (p.kind !== 'conv2d') continue;
    const [kh, kw] = p.kernel.shape as [number, number];
    const [rows, cols] = n.outputShape as [number, number];
    if (kh === p.strides[0] && kw === p.strides[1] && typeof rows === 'number' && typeof cols === 'number') {
      return { layer: n.id, grid: [rows, cols], patch: [kh, kw] };
    }
  }
  return undefined;
}

/** The input of the block whose heads are `heads`: what its value projection reads, before the block's LayerNorm
 * (the previous block's output, or the embedded tokens for the first block). */
function blockInput(graph: ModelGraph, heads: string): string | undefined {
  let id = graph.node(heads).inputs[1];
  while (id !== undefined) {
    const node = graph.node(id);
    if (node.kind === 'dense') break;
    if (node.kind !== 'permute' && node.kind !== 'reshape') return undefined;
    id = node.inputs[0];
  }
  if (id === undefined) return undefined;
  const normed = graph.node(graph.node(id).inputs[0]!);
  return normed.kind === 'layerNorm' ? normed.inputs[0] : normed.id;
}

/**
 * The concept layer below a transformer concept layer, where its decomposition's sub-concepts are: a block's
 * output (`add_2`, d_model channels) into its MLP neurons (`mlp.0`), the MLP neurons into the block's heads, the
 * heads into the d_model channels of the block's input (the previous block's output, or the embedded tokens of
 * the first block), the MLP output (`mlp.3`) into the MLP neurons. Undefined for a layer that is none of these (or
 * a CNN): there the conv/dense layer below applies (`layerBelow`).
 */
export function transformerConceptBelow(graph: ModelGraph, layer: string): string | undefined {
  const id = graph.node(layer).id;
  for (const b of transformerBlocks(graph)) {
    if (id === b.output || id === b.mlpOutput) return b.mlpNeurons;
    if (id === b.mlpNeurons) return b.heads;
    if (id === b.heads) return blockInput(graph, b.heads);
  }
  return undefined;
}

import type { ModelGraph } from '@crp/lrp';
import { ChannelConcept } from './channel-concept.js';
import type { Concept } from './concept.js';
import { HeadConcept } from './head-concept.js';

const channelConcept = new ChannelConcept();
const headConcept = new HeadConcept();

/**
 * The concept of a layer when the caller names none: the heads of a product of two activations that keeps a head
 * axis ([heads, tokens, d] or [heads, tokens, tokens]: `self_attention.context` and `self_attention.scores` of a
 * ViT) are {@link HeadConcept}s; every other layer's concepts are its channels ({@link ChannelConcept}: the last
 * axis, summed over every other axis, so a ViT block's MLP neurons (`mlp.0`) and d_model dimensions (`add_2`) are
 * channels whose relevance is summed over the tokens).
 */
export function defaultConcept(graph: ModelGraph, layer: string): Concept {
  const node = graph.node(layer);
  return node.kind === 'matMul' && node.outputShape.length === 3 ? headConcept : channelConcept;
}

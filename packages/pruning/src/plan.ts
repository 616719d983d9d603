import { CrpError } from '@crp/common';
import type { GraphNode, ModelGraph } from '@crp/lrp';
import type { ChannelMask } from './channel-mask.js';
import { headLayersOfGraph } from './heads.js';
import { type ChannelFlow, channelFlow, keepsZero, streamSums, sumSources } from './layers.js';

/** Which indices survive when the masked channels are removed physically. Keys are graph node ids. */
export interface PrunePlan {
  /** Kept output channels of each pruned Conv2D/Dense. */
  keepOut: Map<string, number[]>;
  /** Kept inputs of each layer that reads pruned channels: input channels of a Conv2D, kernel rows of a Dense
   * (after a Flatten of [H, W, C]: row (h * W + w) * C + c). */
  keepIn: Map<string, number[]>;
  /** Kept channels of each BatchNormalization the pruned channels pass. */
  keepChannels: Map<string, number[]>;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Records in `plan` what the channels `kept` (of `channels`) mean for the layers `flow` reaches: the batch
 * norms keep them, the readers keep the matching inputs (rows of a Dense after a Flatten, (h, w, c) order). */
function planReaders(
  graph: ModelGraph,
  plan: PrunePlan,
  flow: ChannelFlow,
  kept: number[],
  channels: number,
) {
  for (const n of flow.channelwise) if (n.kind === 'batchNorm') plan.keepChannels.set(n.id, kept);
  for (const { node: reader, flatten } of flow.readers) {
    if (flatten === undefined) {
      plan.keepIn.set(reader.id, kept);
      continue;
    }
    const shape = graph.node(flatten.inputs[0]!).outputShape;
    if (shape.some((d) => d === null)) {
      throw new CrpError(
        'unsupported-model',
        `cannot remove rows of '${reader.id}': the input of '${flatten.id}' has an open shape [${shape.join(', ')}]`,
      );
    }
    const positions = (shape as number[]).slice(0, -1).reduce((a, b) => a * b, 1);
    const rows: number[] = [];
    for (let q = 0; q < positions; q++) for (const c of kept) rows.push(q * channels + c);
    plan.keepIn.set(reader.id, rows);
  }
}

/** Refuses a layer whose output channels cannot be removed as such (a grouped conv, an activation with
 * f(0) != 0). */
function checkLinear(node: GraphNode, layer: string): void {
  if (node.params.kind === 'conv2d' && (node.params.groups ?? 1) > 1) {
    throw new CrpError(
      'unsupported-layer',
      `cannot remove channels of '${layer}' physically: it is a grouped convolution (${node.params.groups} groups), whose groups would no longer have equal widths; use the masked model for it`,
    );
  }
  if (!keepsZero(node.activation)) {
    throw new CrpError(
      'unsupported-model',
      `cannot remove channels of '${layer}' physically: its activation '${node.activation}' does not map 0 to 0, so a masked channel still outputs a constant`,
    );
  }
}

/** Output channels of a Conv2D/Dense node (its kernel's last axis). */
function outChannels(node: GraphNode): number {
  const p = node.params as { kernel: { shape: number[] } };
  return p.kernel.shape[p.kernel.shape.length - 1]!;
}

/**
 * Plans the physical removal of the masked channels: the pruned layers lose output channels, the layers that
 * read them (through activations, pooling, padding, batch norm, dropout and a flatten) lose the matching
 * inputs. A masked channel of a residual sum is a channel of its residual stream (see `sumSources`): every
 * layer writing to the stream (each block's last conv, the downsample or stem conv where it starts) loses it as
 * an output with its batch norm, every layer reading the stream (the blocks' first convs, the next stage's conv1
 * and downsample, the classifier after the pool) as an input. Masks on several sums of one stream are joined.
 * Throws a CrpError where removal would change what the model computes (see `channelFlow`).
 */
export function planPruning(graph: ModelGraph, mask: ChannelMask): PrunePlan {
  const plan: PrunePlan = { keepOut: new Map(), keepIn: new Map(), keepChannels: new Map() };
  const heads = new Map(headLayersOfGraph(graph).layers.map((h) => [h.name, h]));
  // residual streams, by their first sum: the sums masked in them and the channels, joined
  const streams = new Map<string, { sum: string; channels: Set<number> }>();
  for (const layer of mask.layers) {
    const node = graph.node(layer);
    const head = heads.get(layer);
    if (head !== undefined) {
      throw new CrpError(
        'unsupported-model',
        `cannot remove heads of '${layer}' physically: the query, key and value projections are split into ${head.heads} heads of ${head.headDim} features by fixed reshapes, and out_proj reads all of them; use the masked model (MaskedModel), which zeroes a head's values so its slice of the attention output is exactly 0`,
      );
    }
    if (node.kind === 'add') {
      const key = streamSums(graph, node.id)[0]!;
      const stream = streams.get(key) ?? { sum: node.id, channels: new Set<number>() };
      for (const c of mask.channels(layer)) stream.channels.add(c);
      streams.set(key, stream);
      continue;
    }
    if (node.kind !== 'conv2d' && node.kind !== 'dense') {
      throw new CrpError(
        'unsupported-layer',
        `cannot remove channels of '${layer}' (${node.className}) physically; export supports Conv2D and Dense layers and residual sums (Add), use the masked model for others`,
      );
    }
    checkLinear(node, layer);
    const channels = outChannels(node);
    const masked = new Set(mask.channels(layer));
    const kept = range(channels).filter((c) => !masked.has(c));
    plan.keepOut.set(node.id, kept);
    planReaders(graph, plan, channelFlow(graph, node.id, true), kept, channels);
  }
  for (const { sum, channels: masked } of streams.values()) {
    const channels = graph.node(sum).outputShape.at(-1) as number;
    const kept = range(channels).filter((c) => !masked.has(c));
    for (const writer of sumSources(graph, sum)) {
      const node = graph.node(writer);
      // (a writer masked by itself was refused above: its channels reach the sum)
      checkLinear(node, writer);
      plan.keepOut.set(node.id, kept);
      planReaders(graph, plan, channelFlow(graph, node.id, true, true), kept, channels);
    }
  }
  return plan;
}

import { CrpError } from '@crp/common';
import type { ModelGraph } from '@crp/lrp';
import type { ChannelMask } from './channel-mask.js';
import { headLayersOfGraph } from './heads.js';
import { channelFlow, keepsZero } from './layers.js';

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

/**
 * Plans the physical removal of the masked channels: the pruned layers lose output channels, the layers that
 * read them (through activations, pooling, padding, batch norm, dropout and a flatten) lose the matching
 * inputs. Throws a CrpError where removal would change what the model computes (see `channelFlow`).
 */
export function planPruning(graph: ModelGraph, mask: ChannelMask): PrunePlan {
  const plan: PrunePlan = { keepOut: new Map(), keepIn: new Map(), keepChannels: new Map() };
  const heads = new Map(headLayersOfGraph(graph).layers.map((h) => [h.name, h]));
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
      throw new CrpError(
        'unsupported-model',
        `cannot remove channels of '${layer}' physically: they are channels of the residual stream, which the shortcut carries through the following blocks and each of them adds to; use the masked model (MaskedModel), which zeroes the channel in every layer that makes the sum`,
      );
    }
    if (node.kind !== 'conv2d' && node.kind !== 'dense') {
      throw new CrpError(
        'unsupported-layer',
        `cannot remove channels of '${layer}' (${node.className}) physically; export supports Conv2D and Dense layers, use the masked model for others`,
      );
    }
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
    const p = node.params as { kernel: { shape: number[] } };
    const channels = p.kernel.shape[p.kernel.shape.length - 1]!;
    const masked = new Set(mask.channels(layer));
    const kept = range(channels).filter((c) => !masked.has(c));
    plan.keepOut.set(node.id, kept);
    const flow = channelFlow(graph, node.id, true);
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
  return plan;
}

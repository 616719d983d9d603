import { headLayers, prunableLayers } from '@crp/pruning';
import type * as tfl from '@tensorflow/tfjs-layers';

/** A layer whose concepts {@link conceptDeletion} can delete, with what a concept is there. */
export interface DeletableLayer {
  name: string;
  /** Concepts of the layer: output channels, or heads. */
  concepts: number;
  /** `channel` (a conv filter, a dense unit, a ViT's MLP neuron) or `head` (an attention product's head). */
  unit: 'channel' | 'head';
}

/**
 * The layers whose concepts a mask of @crp/pruning can delete: its prunable layers (channels) and the attention
 * products whose heads it masks through the value projection (`headLayers`, a ViT's `self_attention.context`).
 */
export function deletableLayers(model: tfl.LayersModel): DeletableLayer[] {
  return [
    ...prunableLayers(model).map((l) => ({ name: l.name, concepts: l.channels, unit: 'channel' as const })),
    ...headLayers(model).map((h) => ({ name: h.name, concepts: h.heads, unit: 'head' as const })),
  ];
}

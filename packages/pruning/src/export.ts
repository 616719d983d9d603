import { graphFromLayersModel } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ChannelMask } from './channel-mask.js';
import { type CheckMaskOptions, checkMask } from './layers.js';
import { planPruning } from './plan.js';

interface LayerJson {
  class_name: string;
  config: Record<string, unknown>;
}

function layerConfigs(topology: Record<string, unknown>): LayerJson[] {
  const config = topology.config as { layers?: LayerJson[] } | LayerJson[];
  // Sequential in old Keras files: config is the list of layers
  return Array.isArray(config) ? config : (config.layers ?? []);
}

function gather(t: tf.Tensor, indices: readonly number[], axis: number): tf.Tensor {
  return tf.gather(t, tf.tensor1d(indices as number[], 'int32'), axis);
}

/** A fresh copy of `t`'s values. The wasm backend (4.22) keeps the internal rank-4 shape of a Gather output,
 * which its FusedConv2D then rejects as a bias ("only supports rank-1 bias"); a new tensor has clean data. */
function fresh(t: tf.Tensor): tf.Tensor {
  return tf.tensor(t.dataSync(), t.shape, t.dtype);
}

/**
 * Builds the physically pruned model: the masked filters/units are removed from their Conv2D/Dense layers, the
 * matching input channels from the next Conv2D (through activations, pooling, padding, batch norm and dropout),
 * the matching rows from the first Dense after a Flatten ((h, w, c) order), and the matching entries from any
 * BatchNormalization on the way. A masked channel of a residual sum is removed from its whole residual stream:
 * from every layer writing to it and every layer reading it (see `planPruning`). The result computes what the
 * masked model computes (see
 * {@link MaskedModel}), with fewer parameters and multiply-adds ({@link modelCost}). A new model owned by the
 * caller; `model` is not changed.
 *
 * @throws CrpError where removing channels would change the model (an Add after a pruned conv or dense layer,
 *   Concatenate, Reshape, a depthwise conv, an activation with f(0) != 0, the model output; use the masked model
 *   there), or for an invalid mask.
 */
export async function exportPruned(
  model: tfl.LayersModel,
  mask: ChannelMask,
  options: CheckMaskOptions = {},
): Promise<tfl.LayersModel> {
  checkMask(model, mask, options);
  const graph = graphFromLayersModel(model);
  try {
    const plan = planPruning(graph, mask);
    const topology = model.toJSON(null, false) as unknown as Record<string, unknown>;
    const byName = new Map(graph.nodes.map((n) => [n.layerName, n]));
    for (const layer of layerConfigs(topology)) {
      const node = byName.get(String(layer.config.name));
      if (node === undefined) continue;
      const kept = plan.keepOut.get(node.id);
      if (kept === undefined) continue;
      if (layer.class_name === 'Conv2D') layer.config.filters = kept.length;
      else if (layer.class_name === 'Dense') layer.config.units = kept.length;
    }
    const pruned = await tfl.models.modelFromJSON({
      modelTopology: topology,
    } as unknown as tf.io.ModelJSON);
    for (const layer of model.layers) {
      const ws = layer.getWeights();
      if (ws.length === 0) continue;
      const node = byName.get(layer.name);
      const id = node?.id ?? layer.name;
      const keepOut = plan.keepOut.get(id);
      const keepIn = plan.keepIn.get(id);
      const keepChannels = plan.keepChannels.get(id);
      const made = tf.tidy(() =>
        ws.map((w, i) => {
          if (keepChannels !== undefined) return gather(w, keepChannels, 0);
          let t: tf.Tensor = w;
          if (keepOut !== undefined) t = gather(t, keepOut, w.rank - 1);
          // kernels only: [kh, kw, in, out] or [in, out]
          if (keepIn !== undefined && i === 0) t = gather(t, keepIn, w.rank - 2);
          return fresh(t);
        }),
      );
      pruned.getLayer(layer.name).setWeights(made);
      for (const t of made) t.dispose();
    }
    return pruned;
  } finally {
    graph.dispose();
  }
}

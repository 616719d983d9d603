import { graphFromLayersModel } from '@crp/lrp';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ChannelMask } from './channel-mask.js';
import { planPruning } from './plan.js';

/** Zero weights of one layer. */
export interface LayerSparsity {
  layer: string;
  /** All weights of the layer (kernels, biases, batch-norm parameters). */
  weights: number;
  zeros: number;
  /** zeros / weights */
  fraction: number;
}

export interface SparsityReport {
  /** Every layer that has weights, in model order. */
  layers: LayerSparsity[];
  total: { weights: number; zeros: number; fraction: number };
}

/**
 * The fraction of weights that are exactly zero, per layer and for the whole model. On a
 * {@link MaskedModel}'s `model` this measures the masked (and any otherwise zero) weights.
 */
export function sparsity(model: LayersModel): SparsityReport {
  const layers: LayerSparsity[] = [];
  let weights = 0;
  let zeros = 0;
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    let n = 0;
    let z = 0;
    for (const w of ws) {
      const v = w.dataSync();
      n += v.length;
      for (let i = 0; i < v.length; i++) if (v[i] === 0) z++;
    }
    layers.push({ layer: layer.name, weights: n, zeros: z, fraction: z / n });
    weights += n;
    zeros += z;
  }
  return { layers, total: { weights, zeros, fraction: weights === 0 ? 0 : zeros / weights } };
}

/** Parameters and multiply-adds of one layer. */
export interface LayerCost {
  layer: string;
  className: string;
  /** Weights of the layer (kernel, bias, batch-norm gamma/beta/mean/variance). */
  params: number;
  /** Multiply-adds of one image through the layer: H_out x W_out x kh x kw x C_in x C_out for a Conv2D,
   * (x multiplier, C_in only) for a DepthwiseConv2D, in x out for a Dense; 0 for other layers. */
  flops: number;
}

export interface CostReport {
  layers: LayerCost[];
  params: number;
  flops: number;
}

/**
 * Parameters and multiply-adds (per image) of the model, or, with a mask, of the physically pruned model that
 * {@link exportPruned} builds (pruned filters/units removed, and the matching inputs of the next layers). Throws
 * where the channels cannot be removed physically (see planPruning).
 */
export function modelCost(model: LayersModel, mask: ChannelMask = ChannelMask.empty()): CostReport {
  const graph = graphFromLayersModel(model);
  try {
    const plan = planPruning(graph, mask);
    const layers: LayerCost[] = [];
    for (const node of graph.nodes) {
      const p = node.params;
      let params = 0;
      let flops = 0;
      const spatial = node.outputShape.slice(0, -1).reduce<number>((a, d) => a * (d ?? 1), 1);
      if (p.kind === 'conv2d' || p.kind === 'depthwiseConv2d' || p.kind === 'dense') {
        const s = p.kernel.shape;
        const taps = s.slice(0, -2).reduce((a, b) => a * b, 1);
        const inputs = plan.keepIn.get(node.id)?.length ?? s[s.length - 2]!;
        const outputs = plan.keepOut.get(node.id)?.length ?? s[s.length - 1]!;
        const macs = taps * inputs * outputs;
        const biases = p.bias === null ? 0 : p.kind === 'depthwiseConv2d' ? inputs * outputs : outputs;
        params = macs + biases;
        flops = macs * spatial;
      } else if (p.kind === 'batchNorm') {
        const c = plan.keepChannels.get(node.id)?.length ?? p.movingMean.size;
        params = c * (2 + (p.gamma === null ? 0 : 1) + (p.beta === null ? 0 : 1));
      } else {
        continue;
      }
      layers.push({ layer: node.layerName, className: node.className, params, flops });
    }
    return {
      layers,
      params: layers.reduce((a, l) => a + l.params, 0),
      flops: layers.reduce((a, l) => a + l.flops, 0),
    };
  } finally {
    graph.dispose();
  }
}

/** Cost of the model before and after removing the masked channels. */
export interface CostComparison {
  before: CostReport;
  after: CostReport;
  /** after.params / before.params */
  paramsRatio: number;
  /** after.flops / before.flops */
  flopsRatio: number;
}

export function compareCost(model: LayersModel, mask: ChannelMask): CostComparison {
  const before = modelCost(model);
  const after = modelCost(model, mask);
  return {
    before,
    after,
    paramsRatio: after.params / before.params,
    flopsRatio: before.flops === 0 ? 1 : after.flops / before.flops,
  };
}

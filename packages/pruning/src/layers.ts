import { CrpError, listNames } from '@crp/common';
import { type ActivationName, type GraphNode, graphFromLayersModel, type ModelGraph } from '@crp/lrp';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { ChannelMask } from './channel-mask.js';
import { type HeadLayer, headLayers } from './heads.js';

/** A layer whose output channels can be pruned. */
export interface PrunableLayer {
  name: string;
  className: string;
  /** Output channels (filters of a Conv2D, units of a Dense, in x multiplier of a DepthwiseConv2D). */
  channels: number;
}

/** The layer classes whose output channels can be pruned (the Keras classes of @crp/lrp's PARAMETRIC_KINDS, and
 * its `GroupedConv2D`, kernel [kh, kw, in / groups, out]). */
const PRUNABLE = ['Conv2D', 'Dense', 'DepthwiseConv2D', 'GroupedConv2D'];

/**
 * Output channels of a prunable layer from its class and kernel shape: filters of a Conv2D (kernel
 * [kh, kw, in, out]), units of a Dense ([in, out]), in x multiplier of a DepthwiseConv2D ([kh, kw, in, m]);
 * undefined for other layers. The one place that knows this (masks, scores and export use it).
 */
export function outputChannels(className: string, kernelShape: readonly number[]): number | undefined {
  if (!PRUNABLE.includes(className)) return undefined;
  const s = kernelShape;
  return className === 'DepthwiseConv2D' ? s[2]! * s[3]! : s[s.length - 1]!;
}

/** The layers of `model` whose output channels (filters, units) can be masked, in model order. */
export function prunableLayers(model: LayersModel): PrunableLayer[] {
  const out: PrunableLayer[] = [];
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const kernel = layer.getWeights()[0];
    if (kernel === undefined) continue;
    const channels = outputChannels(cls, kernel.shape);
    if (channels !== undefined) out.push({ name: layer.name, className: cls, channels });
  }
  return out;
}

export interface CheckMaskOptions {
  /** Allow masking every channel of a layer (which cuts the model's signal there). Default false. */
  force?: boolean;
}

/**
 * Checks a mask against a model: every layer exists and is prunable, every channel is in range, and no layer
 * loses all its channels unless `force`. Throws a {@link CrpError} that says what would be valid.
 */
export function checkMask(model: LayersModel, mask: ChannelMask, options: CheckMaskOptions = {}): void {
  const prunable = new Map(prunableLayers(model).map((l) => [l.name, l]));
  const other = mask.layers.some((l) => !prunable.has(l));
  // attention heads: a mask's index at an attention product is a head (HeadLayer)
  const heads = other ? new Map(headLayers(model).map((h) => [h.name, h])) : new Map<string, HeadLayer>();
  // a residual block's addition: a mask's index is a channel of its output (see sumSources)
  const sums = new Map<string, PrunableLayer>();
  // the channels masked in each residual stream, joined over its sums (by the stream's first sum)
  const streams = new Map<string, Set<number>>();
  if (mask.layers.some((l) => !prunable.has(l) && !heads.has(l))) {
    const graph = graphFromLayersModel(model);
    try {
      for (const s of residualSums(graph)) sums.set(s.name, s);
      for (const name of mask.layers) {
        if (!sums.has(name)) continue;
        sumSources(graph, graph.node(name).id);
        const key = streamSums(graph, name)[0]!;
        streams.set(key, new Set([...(streams.get(key) ?? []), ...mask.channels(name)]));
      }
    } finally {
      graph.dispose();
    }
  }
  const valid = [...prunable.keys(), ...heads.keys(), ...sums.keys()];
  for (const name of mask.layers) {
    const head = heads.get(name);
    const info = prunable.get(name) ?? sums.get(name) ?? (head && { channels: head.heads });
    const unit = head === undefined ? 'channel' : 'head';
    if (info === undefined) {
      const exists = model.layers.some((l) => l.name === name);
      throw new CrpError(
        'unknown-layer',
        exists
          ? `layer '${name}' has no prunable channels (only Conv2D, DepthwiseConv2D and Dense layers do, residual sums (Add) and the heads of an attention product whose values come from a Dense split into heads); prunable layers: ${listNames(valid)}`
          : `unknown layer '${name}'; prunable layers of the model: ${listNames(valid)}`,
      );
    }
    const channels = mask.channels(name);
    const bad = channels.find((c) => c >= info.channels);
    if (bad !== undefined) {
      throw new CrpError(
        'invalid-argument',
        `${unit} ${bad} is out of range for layer '${name}': it has ${info.channels} ${unit}s (valid: 0..${info.channels - 1})`,
      );
    }
    if (channels.length === info.channels && options.force !== true) {
      throw new CrpError(
        'invalid-argument',
        `the mask prunes all ${info.channels} ${unit}s of layer '${name}', which cuts the model there; keep at least one or pass { force: true }`,
      );
    }
  }
  for (const [first, channels] of streams) {
    const count = sums.get(first)!.channels;
    if (channels.size === count && options.force !== true) {
      throw new CrpError(
        'invalid-argument',
        `the mask prunes all ${count} channels of the residual stream of '${first}' (its sums' masks together), which cuts the model there; keep at least one or pass { force: true }`,
      );
    }
  }
}

/** Activations with f(0) = 0: a zeroed channel stays zero after them. */
const ZERO_PRESERVING: readonly ActivationName[] = [
  'linear',
  'gelu', // x * Phi(x): 0 at 0 (a ViT's MLP)
  'relu',
  'relu6',
  'tanh',
  'elu',
  'selu',
  'softsign',
  'swish',
  'leakyRelu',
];

export function keepsZero(activation: ActivationName): boolean {
  return ZERO_PRESERVING.includes(activation);
}

/** Kinds that act on each channel separately and keep the channel axis. */
const CHANNELWISE = [
  'activation',
  'identity',
  'maxPool2d',
  'avgPool2d',
  'adaptiveAvgPool2d',
  'zeroPadding2d',
  'batchNorm',
  'globalAvgPool2d',
  'globalMaxPool2d',
];

/** Where the channels of a pruned layer go: the channel-wise nodes on the way, an optional flatten, and the
 * conv/dense layers that read them. */
export interface ChannelFlow {
  /** Channel-wise nodes reached (activations, pools, paddings, batch norms, identities; additions with
   * `throughSums`). */
  channelwise: GraphNode[];
  /** Flatten nodes reached (after them each channel is spread over the positions, h-w-c order). */
  flattens: GraphNode[];
  /** Conv2D / Dense nodes whose inputs are the pruned channels (directly or through the nodes above), with the
   * Flatten on the way if any. */
  readers: { node: GraphNode; flatten: GraphNode | undefined }[];
}

/**
 * Follows the output of node `id` through channel-wise nodes and flattens to the linear layers that consume
 * it. With `strict`, anything else on the way (Add, Concatenate, Reshape, a depthwise conv, an activation with
 * f(0) != 0, the model output) is a CrpError, because removing the channels physically would change the model
 * there; without, the walk stops at such nodes. With `throughSums`, additions are followed too (for a residual
 * stream's channel, which every addend loses: see {@link sumSources}).
 */
export function channelFlow(
  graph: ModelGraph,
  id: string,
  strict: boolean,
  throughSums = false,
): ChannelFlow {
  const flow: ChannelFlow = { channelwise: [], flattens: [], readers: [] };
  const refuse = (node: GraphNode, why: string) => {
    if (strict) {
      throw new CrpError(
        'unsupported-model',
        `cannot remove channels of '${id}' physically: they reach '${node.id}' (${node.className}), ${why}. Export supports chains of Conv2D/Dense through activations with f(0) = 0, pooling, padding, BatchNormalization, Dropout and Flatten; use the masked model instead`,
      );
    }
  };
  const visit = (nodeId: string, flatten: GraphNode | undefined) => {
    const flattened = flatten !== undefined;
    const node = graph.node(nodeId);
    if (nodeId === graph.outputId) {
      refuse(node, 'the model output (the output shape would change)');
      return;
    }
    for (const c of graph.consumersOf(nodeId)) {
      const next = graph.node(c);
      if (next.kind === 'conv2d' || next.kind === 'dense') {
        if (next.kind === 'conv2d' && flattened) refuse(next, 'a convolution after a Flatten');
        if (next.params.kind === 'conv2d' && (next.params.groups ?? 1) > 1)
          refuse(
            next,
            `a grouped convolution (${next.params.groups} groups would no longer have equal widths)`,
          );
        if (!flow.readers.some((r) => r.node === next)) flow.readers.push({ node: next, flatten });
      } else if (
        (CHANNELWISE.includes(next.kind) && !flattened) ||
        (flattened && (next.kind === 'activation' || next.kind === 'identity'))
      ) {
        if (next.kind === 'activation' && !keepsZero(next.activation)) {
          refuse(next, `whose activation '${next.activation}' does not map 0 to 0`);
          continue;
        }
        if (!flow.channelwise.includes(next)) flow.channelwise.push(next);
        visit(c, flatten);
      } else if (next.kind === 'add' && throughSums && !flattened) {
        // a residual stream's channel, removed from every addend (see sumSources): the sum carries it on
        if (!flow.channelwise.includes(next)) flow.channelwise.push(next);
        visit(c, flatten);
      } else if (next.kind === 'flatten' && !flattened) {
        flow.flattens.push(next);
        visit(c, next);
      } else {
        refuse(next, 'which mixes or reshapes channels');
      }
    }
  };
  visit(id, undefined);
  return flow;
}

/** Kinds that map a zero channel to a zero channel on the way back from a residual sum to the layers that make
 * it (batch norms are zeroed with their conv by `MaskedModel`). */
const ZERO_CARRYING = ['identity', 'maxPool2d', 'avgPool2d', 'zeroPadding2d', 'batchNorm'];

/** The additions of a model whose output channels can be masked (a ResNet block's `layerS.B.add`), with their
 * channels. */
export function residualSums(graph: ModelGraph): PrunableLayer[] {
  return graph.nodes
    .filter((n) => n.kind === 'add' && typeof n.outputShape[n.outputShape.length - 1] === 'number')
    .map((n) => ({
      name: n.layerName,
      className: n.className,
      channels: n.outputShape[n.outputShape.length - 1] as number,
    }));
}

/** Follows the output of node `id` forward through the nodes that carry a channel unchanged in place (ReLUs,
 * identities): the additions reached are later blocks adding to the same residual stream (identity shortcuts). */
function nextSums(graph: ModelGraph, id: string): string[] {
  const out: string[] = [];
  for (const c of graph.consumersOf(id)) {
    const next = graph.node(c);
    if (next.kind === 'add') out.push(c);
    else if (next.kind === 'identity' || (next.kind === 'activation' && keepsZero(next.activation)))
      out.push(...nextSums(graph, c));
  }
  return out;
}

/**
 * The additions (layer names, in model order) of the residual stream that the addition `id` belongs to: those
 * linked to it by identity shortcuts, from where the stream starts (a downsample or the stem's conv makes its
 * first addend) to where a downsample or a conv re-projects it (the next stage, the classifier). In a ResNet, one
 * stage's blocks.
 */
export function streamSums(graph: ModelGraph, id: string): string[] {
  const sums = new Set<string>();
  const seen = new Set<string>();
  const back = (nodeId: string) => {
    if (seen.has(nodeId)) return;
    seen.add(nodeId);
    const node = graph.node(nodeId);
    if (node.kind === 'add') {
      sums.add(nodeId);
      for (const next of nextSums(graph, nodeId)) back(next);
    }
    if (node.kind === 'add' || ZERO_CARRYING.includes(node.kind) || node.kind === 'activation') {
      for (const input of node.inputs) back(input);
    }
  };
  back(graph.node(id).id);
  return graph.nodes.filter((n) => sums.has(n.id)).map((n) => n.layerName);
}

/**
 * The layers whose channel c must be zeroed for channel c of the addition `id` to be exactly zero, and to stay
 * zero in the whole residual stream the addition belongs to ({@link streamSums}): from each addend of each of
 * the stream's additions back through batch norms, ReLUs, pools and paddings to the conv or dense layer that makes
 * it. In a ResNet: the last conv of every block of the stage, and its first block's downsample (or, in the first
 * stage, the stem's `conv1`). So a mask on `layer2.1.add` removes the channel from the stream of `layer2`: zero
 * after every block of the stage, and the stream's readers (the blocks' first convs, the next stage's conv1 and
 * downsample, or the classifier after the pool) read zero there, which is what lets `exportPruned` remove it.
 *
 * @throws CrpError `unsupported-model` where an addend comes from something else (the model input, a
 *   concatenation, an activation with f(0) != 0)
 */
export function sumSources(graph: ModelGraph, id: string): string[] {
  const sources: string[] = [];
  const seen = new Set<string>();
  const visit = (nodeId: string) => {
    if (seen.has(nodeId)) return;
    seen.add(nodeId);
    const node = graph.node(nodeId);
    const linear = node.kind === 'conv2d' || node.kind === 'dense';
    if (linear && keepsZero(node.activation)) {
      sources.push(node.layerName);
      return;
    }
    const passes =
      node.kind === 'add' ||
      ZERO_CARRYING.includes(node.kind) ||
      (node.kind === 'activation' && keepsZero(node.activation));
    if (!passes || node.inputs.length === 0) {
      throw new CrpError(
        'unsupported-model',
        `cannot mask channels of '${id}': they come from '${node.id}' (${node.className}), which masking weights cannot zero; a residual sum's channels can be masked where every addend comes from a Conv2D or Dense through batch norms, activations with f(0) = 0, pools, paddings or earlier residual sums`,
      );
    }
    for (const input of node.inputs) visit(input);
  };
  for (const sum of streamSums(graph, id)) visit(graph.node(sum).id);
  return sources;
}

/** Whether the output channels of the Conv2D/Dense `node` can be removed as such, and the layers they reach
 * allow it (with `throughSums`, through the additions of a residual stream). */
function removable(graph: ModelGraph, node: GraphNode, throughSums: boolean): boolean {
  if (node.kind !== 'conv2d' && node.kind !== 'dense') return false;
  if (node.params.kind === 'conv2d' && (node.params.groups ?? 1) > 1) return false;
  if (!keepsZero(node.activation)) return false;
  try {
    channelFlow(graph, node.id, true, throughSums);
    return true;
  } catch {
    return false;
  }
}

/**
 * The layers whose channels `exportPruned` can remove physically, in model order: prunable layers whose channels
 * reach only channel-wise layers and the layers that read them (in a ResNet: the inner convs of a block, not its
 * last conv, its downsample or the stem, whose channels are added to a shortcut), and that are not grouped
 * convolutions; and the residual sums (`layer2.0.add`) whose stream can lose a channel in every layer that writes
 * it and every layer that reads it (see {@link sumSources}).
 */
export function removableLayers(model: LayersModel): string[] {
  const graph = graphFromLayersModel(model);
  try {
    const names = new Set(
      prunableLayers(model)
        .map((l) => l.name)
        .filter((name) => removable(graph, graph.node(name), false)),
    );
    for (const sum of residualSums(graph)) {
      try {
        const writers = sumSources(graph, graph.node(sum.name).id);
        if (writers.every((w) => removable(graph, graph.node(w), true))) names.add(sum.name);
      } catch {
        // an addend that masking cannot zero: not even maskable
      }
    }
    return model.layers.map((l) => l.name).filter((name) => names.has(name));
  } finally {
    graph.dispose();
  }
}

import { CrpError } from '@crp/common';
import { graphFromLayersModel, type ModelGraph } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ChannelMask } from './channel-mask.js';
import { type HeadLayer, headLayersOfGraph } from './heads.js';
import { type CheckMaskOptions, channelFlow, checkMask, outputChannels, sumSources } from './layers.js';

/** Every Keras `*_initializer` entry of a topology set to Zeros: the weights are overwritten right after, and
 * drawing them (VGG's truncated normals run in JavaScript) took most of a clone's time. */
function zeroInitializers(config: unknown): unknown {
  if (Array.isArray(config)) return config.map(zeroInitializers);
  if (config === null || typeof config !== 'object') return config;
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) =>
      key.endsWith('_initializer') && value !== null && typeof value === 'object'
        ? [key, { class_name: 'Zeros', config: {} }]
        : [key, zeroInitializers(value)],
    ),
  );
}

/** A new model with the topology of `model` (through its JSON) and copies of its weights. The caller owns
 * it (`dispose()`); `model` is not changed. */
export async function cloneModel(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  const topology = zeroInitializers(model.toJSON(null, false)) as tf.io.ModelJSON['modelTopology'];
  const clone = await tfl.models.modelFromJSON({ modelTopology: topology } as tf.io.ModelJSON);
  const weights = model.getWeights();
  clone.setWeights(weights);
  return clone;
}

/** 1 for kept, 0 for masked channels. */
function keepVector(count: number, masked: readonly number[]): tf.Tensor1D {
  const v = new Float32Array(count).fill(1);
  for (const c of masked) v[c] = 0;
  return tf.tensor1d(v);
}

/** The layer's weights with the masked output channels zeroed: kernel columns (last axis; for a depthwise
 * kernel [kh, kw, in, m] the entry [in, m] of channel in * m + m), bias entries. */
function maskedLinearWeights(cls: string, weights: tf.Tensor[], masked: readonly number[]): tf.Tensor[] {
  return tf.tidy(() => {
    const kernel = weights[0]!;
    const s = kernel.shape;
    const channels = outputChannels(cls, s)!;
    const keep = keepVector(channels, masked);
    const kernelKeep = cls === 'DepthwiseConv2D' ? tf.reshape(keep, [s[2]!, s[3]!]) : keep;
    return weights.map((w, i) => (i === 0 ? tf.mul(w, kernelKeep) : tf.mul(w, keep)));
  });
}

/** BatchNormalization weights ([gamma], [beta], movingMean, movingVariance) with gamma, beta and the mean of
 * masked channels zeroed, so that a zero channel stays exactly zero through the layer. */
function maskedBatchNormWeights(
  config: Record<string, unknown>,
  weights: tf.Tensor[],
  masked: readonly number[],
): tf.Tensor[] {
  return tf.tidy(() => {
    const count = weights[weights.length - 1]!.shape[0]!;
    const keep = keepVector(count, masked);
    const hasGamma = config.scale !== false;
    const hasBeta = config.center !== false;
    const zeroed = (hasGamma ? 1 : 0) + (hasBeta ? 1 : 0) + 1; // gamma?, beta?, movingMean
    return weights.map((w, i) => (i < zeroed ? tf.mul(w, keep) : tf.clone(w)));
  });
}

/**
 * A masked copy of a model: the user's model stays as it is; {@link model} is a separate `tf.LayersModel`
 * (same topology and layer names, built from the model's JSON) whose weights are copies with the masked
 * output channels zeroed: kernel columns and bias entries of the masked Conv2D/Dense/DepthwiseConv2D layer,
 * and gamma, beta and moving mean of any BatchNormalization the channel reaches through channel-wise layers,
 * so that a masked channel outputs exactly act(0) = 0 (for ReLU-like and linear activations).
 *
 * Masks are reversible: the copy keeps the original weights of every layer it ever masked, so
 * {@link setMask} can switch to any other mask (a pruning curve re-masks one copy many times) and
 * {@link restore} returns to the original weights.
 *
 * ```ts
 * const masked = await MaskedModel.create(model, ChannelMask.of({ block1_conv1: [0, 5] }));
 * const logits = masked.model.predict(images);
 * masked.setMask(masked.mask.union(ChannelMask.of({ fc1: [3] })));
 * masked.dispose();
 * ```
 */
export class MaskedModel {
  /** The masked copy. Owned by this object (freed by {@link dispose}); use it like any LayersModel. */
  readonly model: tfl.LayersModel;
  private readonly graph: ModelGraph;
  private readonly originals = new Map<string, tf.Tensor[]>();
  private current: ChannelMask = ChannelMask.empty();
  private disposed = false;

  private constructor(model: tfl.LayersModel) {
    this.model = model;
    this.graph = graphFromLayersModel(model);
  }

  /** Copies `model` and applies `mask` (validated: see {@link checkMask}). */
  static async create(
    model: tfl.LayersModel,
    mask: ChannelMask = ChannelMask.empty(),
    options: CheckMaskOptions = {},
  ): Promise<MaskedModel> {
    checkMask(model, mask, options);
    const masked = new MaskedModel(await cloneModel(model));
    masked.setMask(mask, options);
    return masked;
  }

  /** The mask in force. */
  get mask(): ChannelMask {
    return this.current;
  }

  /** Replaces the mask in force by `mask` (not added to it: use `masked.mask.union(more)` for that). Weights
   * are re-derived from the originals, so a change of mask undoes any training of the copy. */
  setMask(mask: ChannelMask, options: CheckMaskOptions = {}): void {
    this.assertLive();
    checkMask(this.model, mask, options);
    const zero = this.zeroMap(mask);
    // layers to touch: everything zeroed now or before
    const touched = new Set([...zero.keys(), ...this.originals.keys()]);
    for (const name of touched) {
      const layer = this.model.getLayer(name);
      let original = this.originals.get(name);
      if (original === undefined) {
        original = layer.getWeights().map((w) => tf.clone(w));
        this.originals.set(name, original);
      }
      this.zeroLayer(name, original, [...(zero.get(name) ?? [])]);
    }
    this.current = mask;
  }

  /**
   * Zeroes the masked channels again in the copy's current weights: call it after each training step of a
   * fine-tuning loop, so pruned channels stay pruned while the rest learns.
   */
  reapply(): void {
    this.assertLive();
    for (const [name, channels] of this.zeroMap(this.current)) {
      this.zeroLayer(name, this.model.getLayer(name).getWeights(), [...channels]);
    }
  }

  /** Per layer, the channels to zero: the masked layers themselves and the batch norms their channels reach; for
   * masked heads, their columns of the value projection (see {@link HeadLayer}); for a masked residual sum, the
   * layers that make its addends (see {@link sumSources}). */
  private zeroMap(mask: ChannelMask): Map<string, Set<number>> {
    const zero = new Map<string, Set<number>>();
    const heads = new Map(headLayersOfGraph(this.graph).layers.map((h) => [h.name, h]));
    for (const name of mask.layers) {
      const head = heads.get(name);
      const channels =
        head === undefined
          ? mask.channels(name)
          : mask
              .channels(name)
              .flatMap((h) => Array.from({ length: head.headDim }, (_, j) => h * head.headDim + j));
      const add = (layer: string) => {
        const set = zero.get(layer) ?? new Set<number>();
        for (const c of channels) set.add(c);
        zero.set(layer, set);
      };
      if (head !== undefined) {
        add(head.valueLayer);
        continue;
      }
      // a residual sum's channel: zeroed in every layer that makes its addends (sumSources)
      const node = this.graph.node(name);
      const linear = node.kind === 'add' ? sumSources(this.graph, node.id) : [name];
      for (const layer of linear) {
        add(layer);
        for (const n of channelFlow(this.graph, this.graph.node(layer).id, false).channelwise) {
          if (n.kind === 'batchNorm') add(n.layerName);
        }
      }
    }
    return zero;
  }

  private zeroLayer(name: string, from: tf.Tensor[], channels: number[]): void {
    const layer = this.model.getLayer(name);
    if (channels.length === 0) {
      layer.setWeights(from);
      return;
    }
    const made =
      layer.getClassName() === 'BatchNormalization'
        ? maskedBatchNormWeights(layer.getConfig(), from, channels)
        : maskedLinearWeights(layer.getClassName(), from, channels);
    layer.setWeights(made);
    for (const t of made) t.dispose();
  }

  private assertLive(): void {
    if (this.disposed) throw new CrpError('disposed', 'this MaskedModel was disposed');
  }

  /** Back to the original weights (the empty mask). */
  restore(): void {
    this.setMask(ChannelMask.empty());
  }

  /** Frees the copy and the saved originals. The user's model is untouched. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const ws of this.originals.values()) for (const w of ws) w.dispose();
    this.originals.clear();
    this.graph.dispose();
    this.model.dispose();
  }
}

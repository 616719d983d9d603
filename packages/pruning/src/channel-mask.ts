/** The JSON form of a {@link ChannelMask} (`JSON.stringify(mask)` writes it, {@link ChannelMask.fromJSON} reads it). */
export interface ChannelMaskJSON {
  format: 'crp-channel-mask';
  version: 1;
  /** Masked channels (conv filters, dense units; heads at an attention product) per layer name, ascending. */
  layers: Record<string, number[]>;
}

function checkChannels(layer: string, channels: readonly unknown[]): number[] {
  for (const c of channels) {
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0) {
      throw new CrpError(
        'invalid-argument',
        `layer '${layer}': channel ${JSON.stringify(c)} is not a channel index (a non-negative integer)`,
      );
    }
  }
  return [...new Set(channels as number[])].sort((a, b) => a - b);
}

/**
 * Which output channels (conv filters) or units (dense) of which layers are pruned. An immutable value:
 * {@link union} and {@link without} return new masks, {@link toJSON}/{@link fromJSON} round-trip it. A mask
 * knows nothing of a model; {@link MaskedModel} checks it against one (layer names, channel ranges).
 *
 * ```ts
 * const a = ChannelMask.of({ conv1: [0, 3] });
 * const b = a.union(ChannelMask.of({ conv1: [5], dense1: [2] })); // conv1: 0, 3, 5; dense1: 2
 * const restored = ChannelMask.fromJSON(JSON.parse(JSON.stringify(b)));
 * ```
 */
export class ChannelMask {
  private readonly map: ReadonlyMap<string, readonly number[]>;

  private constructor(map: Map<string, readonly number[]>) {
    this.map = map;
  }

  /** The mask that prunes nothing. */
  static empty(): ChannelMask {
    return new ChannelMask(new Map());
  }

  /** A mask from channel lists per layer name (duplicates are merged, order does not matter). */
  static of(spec: Readonly<Record<string, readonly number[]>>): ChannelMask {
    const map = new Map<string, readonly number[]>();
    for (const [layer, channels] of Object.entries(spec)) {
      if (!Array.isArray(channels)) {
        throw new CrpError(
          'invalid-argument',
          `layer '${layer}': expected an array of channel indices, got ${JSON.stringify(channels)}`,
        );
      }
      const list = checkChannels(layer, channels);
      if (list.length > 0) map.set(layer, list);
    }
    return new ChannelMask(map);
  }

  /** Reads the JSON form written by {@link toJSON}; throws a CrpError naming what is malformed. */
  static fromJSON(json: unknown): ChannelMask {
    const o = json as Partial<ChannelMaskJSON> | null;
    if (o === null || typeof o !== 'object' || o.format !== 'crp-channel-mask' || o.version !== 1) {
      throw new CrpError(
        'invalid-argument',
        'not a channel mask: expected { format: "crp-channel-mask", version: 1, layers: { name: [channels] } }',
      );
    }
    if (o.layers === null || typeof o.layers !== 'object') {
      throw new CrpError(
        'invalid-argument',
        'channel mask JSON: `layers` must be an object of channel lists',
      );
    }
    return ChannelMask.of(o.layers);
  }

  /** Names of the layers with at least one masked channel, in insertion order. */
  get layers(): string[] {
    return [...this.map.keys()];
  }

  /** The masked channels of `layer`, ascending (empty when the layer is not masked). */
  channels(layer: string): readonly number[] {
    return this.map.get(layer) ?? [];
  }

  has(layer: string, channel: number): boolean {
    return this.channels(layer).includes(channel);
  }

  /** Total number of masked channels over all layers. */
  get size(): number {
    let n = 0;
    for (const c of this.map.values()) n += c.length;
    return n;
  }

  get isEmpty(): boolean {
    return this.map.size === 0;
  }

  /** The channels masked by this mask or any of `others`. */
  union(...others: readonly ChannelMask[]): ChannelMask {
    const spec: Record<string, number[]> = {};
    for (const m of [this, ...others]) {
      for (const [layer, channels] of m.map) spec[layer] = [...(spec[layer] ?? []), ...channels];
    }
    return ChannelMask.of(spec);
  }

  /** The channels of this mask that `other` does not mask (undoes part of a union). */
  without(other: ChannelMask): ChannelMask {
    const spec: Record<string, number[]> = {};
    for (const [layer, channels] of this.map) spec[layer] = channels.filter((c) => !other.has(layer, c));
    return ChannelMask.of(spec);
  }

  equals(other: ChannelMask): boolean {
    if (this.map.size !== other.map.size) return false;
    for (const [layer, channels] of this.map) {
      const o = other.channels(layer);
      if (o.length !== channels.length || o.some((c, i) => c !== channels[i])) return false;
    }
    return true;
  }

  toJSON(): ChannelMaskJSON {
    return {
      format: 'crp-channel-mask',
      version: 1,
      layers: Object.fromEntries([...this.map].map(([k, v]) => [k, [...v]])),
    };
  }
}

import { CrpError } from '@crp/common';

import { CrpError } from '@crp/common';
import { ChannelMask } from './channel-mask.js';
import type { ChannelScores } from './criteria.js';

/** One channel in a ranking. */
export interface RankedChannel {
  layer: string;
  channel: number;
  score: number;
}

/** Whether channels compete within each layer or across all scored layers. */
export type RankingScope = 'layer' | 'global';

/**
 * The channels of `scores` from least to most important (ascending score). Ties keep layer order, then channel
 * order, so rankings are deterministic. With scope 'layer' each layer is ranked on its own (layer after layer).
 */
export function rankChannels(scores: ChannelScores, scope: RankingScope = 'global'): RankedChannel[] {
  const perLayer = Object.entries(scores.layers).map(([layer, s]) =>
    s.map((score, channel) => ({ layer, channel, score })),
  );
  const byScore = (a: RankedChannel, b: RankedChannel) => a.score - b.score;
  if (scope === 'layer') return perLayer.flatMap((l) => [...l].sort(byScore));
  // Array.prototype.sort is stable: equal scores keep layer-then-channel order
  return perLayer.flat().sort(byScore);
}

export interface SelectOptions {
  /** 'layer': prune the fraction in every layer; 'global': the lowest-scoring fraction of all channels.
   * Default 'layer'. */
  scope?: RankingScope;
  /** Channels every layer keeps at least. Default 1. */
  minKeep?: number;
}

/**
 * The mask that prunes the least important `fraction` of the scored channels. Per layer: round(fraction x
 * channels) of each layer; global: round(fraction x all channels) by the global ranking. No layer loses more
 * than `channels - minKeep` channels, so the actual fraction can be lower than asked (read `mask.size`).
 */
export function selectLowest(
  scores: ChannelScores,
  fraction: number,
  options: SelectOptions = {},
): ChannelMask {
  if (!(fraction >= 0 && fraction <= 1)) {
    throw new CrpError('invalid-argument', `fraction must be in [0, 1], got ${fraction}`);
  }
  const minKeep = options.minKeep ?? 1;
  if (!Number.isInteger(minKeep) || minKeep < 0) {
    throw new CrpError('invalid-argument', `minKeep must be a non-negative integer, got ${minKeep}`);
  }
  const cap = (layer: string) => Math.max(0, scores.layers[layer]!.length - minKeep);
  const spec: Record<string, number[]> = {};
  if ((options.scope ?? 'layer') === 'layer') {
    for (const [layer, s] of Object.entries(scores.layers)) {
      const k = Math.min(Math.round(fraction * s.length), cap(layer));
      spec[layer] = rankChannels({ criterion: scores.criterion, layers: { [layer]: s } })
        .slice(0, k)
        .map((r) => r.channel);
    }
  } else {
    const total = Object.values(scores.layers).reduce((a, s) => a + s.length, 0);
    let left = Math.round(fraction * total);
    for (const r of rankChannels(scores, 'global')) {
      if (left === 0) break;
      const list = spec[r.layer] ?? [];
      if (list.length >= cap(r.layer)) continue;
      list.push(r.channel);
      spec[r.layer] = list;
      left--;
    }
  }
  return ChannelMask.of(spec);
}

/** The `k` most important channels of one layer (descending score). */
export function topChannels(scores: ChannelScores, layer: string, k: number): number[] {
  const s = scores.layers[layer];
  if (s === undefined) {
    throw new CrpError(
      'unknown-layer',
      `no scores for layer '${layer}'; scored layers: ${Object.keys(scores.layers).join(', ')}`,
    );
  }
  return s
    .map((score, channel) => ({ score, channel }))
    .sort((a, b) => b.score - a.score || a.channel - b.channel)
    .slice(0, k)
    .map((r) => r.channel);
}

import { type AtlasEntry, type ConceptAtlas, formatVotes, regionMask } from '@crp/attribution';
import type { BarCell, RasterImage, ReportCell } from '@crp/vis';
import type { StudyResult } from './result.js';

/** How the report writes its numbers, and what it warns about. */

export const pct = (v: number | null | undefined, digits = 1) =>
  v === null || v === undefined || Number.isNaN(v) ? '–' : `${(v * 100).toFixed(digits)}%`;
export const num = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '–');

/**
 * A share in percent with its sign, never rounded to a signed zero: "+12.3%", "−0.04%", "+<0.01%"; exactly 0
 * is "0%".
 */
export function signedShare(percent: number): string {
  if (percent === 0) return '0%';
  const sign = percent > 0 ? '+' : '−';
  const a = Math.abs(percent);
  if (a < 0.01) return `${sign}<0.01%`;
  return `${sign}${a.toFixed(a >= 1 ? 1 : a >= 0.1 ? 2 : 3)}%`;
}

/** The share as a bar (red for, blue against the class) with its text. */
export const shareBar = (percent: number): BarCell => ({ bar: percent, text: signedShare(percent) });

/** A concept without relevance: its relevance is 0 in every sample (a channel that does not fire on them, or
 * one the explained output does not use). Its sums are exactly 0, which mixed signs never give in practice. */
export const isDead = (e: Pick<AtlasEntry, 'meanRelevance' | 'percent'>): boolean =>
  e.meanRelevance === 0 && e.percent === 0;

export function conceptNote(e: Pick<AtlasEntry, 'meanRelevance' | 'percent'>): string {
  if (isDead(e)) return '⚠ dead: no relevance in any sample';
  if (e.percent < 0) return 'against the class';
  return '';
}

/** One row per reported concept: layer (on its first row), concept, votes, share, note, and `extra` cells. */
export function atlasRows(
  atlas: ConceptAtlas,
  topK: number,
  extra: (layer: string, e: AtlasEntry) => ReportCell[] = () => [],
): ReportCell[][] {
  return atlas.layerOrder.flatMap((layer) =>
    (atlas.layers[layer]?.ranking ?? [])
      .slice(0, topK)
      .map((e, i) => [
        i === 0 ? layer : '',
        e.concept,
        formatVotes(e, atlas),
        shareBar(e.percent),
        ...extra(layer, e),
        conceptNote(e),
      ]),
  );
}

/** The warnings of a study: a negative logit of the target on studied samples, dead concepts among those
 * reported. Empty when there is nothing to warn about. */
export function cautions(result: StudyResult): string[] {
  const out: string[] = [];
  const name = result.target.name;
  const logits = result.samples.targetLogits;
  const negative = logits.filter((v) => v < 0);
  if (negative.length > 0) {
    out.push(
      `⚠ The logit of **${name}** is negative on **${negative.length} of ${logits.length}** studied samples (lowest ${num(Math.min(...negative))}). There the relevance starts negative (it starts as the logit) and the signs of the shares are reversed: such a sample votes for the concepts with the most negative relevance, its evidence for ${name}, so a voted concept can show a negative share.`,
    );
  }
  const dead: string[] = [];
  for (const [what, atlas] of [
    ['global', result.atlas],
    ['region', result.regionAtlas],
  ] as const) {
    for (const layer of atlas.layerOrder) {
      for (const e of (atlas.layers[layer]?.ranking ?? []).slice(0, result.options.topK)) {
        if (isDead(e)) dead.push(`${e.concept} in ${layer} (${what}, ${formatVotes(e, atlas)})`);
      }
    }
  }
  if (dead.length > 0) {
    out.push(
      `⚠ ${dead.length} of the concepts listed are **dead** on these samples (relevance 0 in every one, shown as 0%): ${dead.join(', ')}. A concept whose relevance is exactly 0 never gets a vote: it is listed only because fewer than ${result.options.topK} concepts of its layer got votes.`,
    );
  }
  return out;
}

/** `image` with the outline of `region` drawn in green (2 px on images of 100 px and more). */
export function outlineRegion(image: RasterImage, region: StudyResult['options']['region']): RasterImage {
  const { width, height, channels } = image;
  const mask = regionMask(region, height, width);
  const inside = (x: number, y: number) =>
    x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x]! > 0;
  const t = Math.max(1, Math.round(Math.min(width, height) / 100));
  const data = Uint8Array.from(image.data);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!inside(x, y)) continue;
      // an inside pixel within t of an outside one (or of the image's edge) is on the outline
      let edge = false;
      for (let d = 1; d <= t && !edge; d++) {
        edge = !inside(x - d, y) || !inside(x + d, y) || !inside(x, y - d) || !inside(x, y + d);
      }
      if (!edge) continue;
      const o = (y * width + x) * channels;
      data[o] = 0;
      if (channels >= 3) {
        data[o + 1] = 200;
        data[o + 2] = 0;
      }
    }
  }
  return { ...image, data };
}

/**
 * A transformer's layers by block, in their order: a layer `prefix<i>.name` is `name` in block i (torchvision's
 * `encoder.layers.encoder_layer_<i>.`), and blocks with the same prefix and the same layer names and kinds join
 * one group, so twelve blocks of four concept layers read as one line instead of 48 names. A layer without a
 * block number stays a group of its own (`blocks` empty, `names` its full name).
 */
export interface BlockGroup {
  prefix: string;
  blocks: number[];
  /** The layer names after the block's prefix, in the model's order. */
  names: string[];
}

/** Block i's prefix and the layer's name in it, or undefined for a layer outside the numbered blocks. */
export function splitBlock(layer: string): { prefix: string; block: number; name: string } | undefined {
  const m = /^(.*?)(\d+)\.(.+)$/.exec(layer);
  return m === null ? undefined : { prefix: m[1]!, block: Number(m[2]), name: m[3]! };
}

/** {@link BlockGroup}s of `layers`; `kind` tells layers apart that share a name (two blocks group only when the
 * same names have the same kinds). */
export function blockGroups(
  layers: readonly string[],
  kind: (layer: string) => string = () => '',
): BlockGroup[] {
  const perBlock = new Map<string, { prefix: string; block: number; names: string[] }>();
  const order: ({ prefix: string; block: number } | string)[] = [];
  for (const layer of layers) {
    const s = splitBlock(layer);
    if (s === undefined) {
      order.push(layer);
      continue;
    }
    const key = `${s.prefix}\u0000${s.block}`;
    let entry = perBlock.get(key);
    if (entry === undefined) {
      entry = { prefix: s.prefix, block: s.block, names: [] };
      perBlock.set(key, entry);
      order.push(entry);
    }
    entry.names.push(s.name);
  }
  const groups: BlockGroup[] = [];
  const bySignature = new Map<string, BlockGroup>();
  for (const item of order) {
    if (typeof item === 'string') {
      groups.push({ prefix: '', blocks: [], names: [item] });
      continue;
    }
    const { prefix, block, names } = perBlock.get(`${item.prefix}\u0000${item.block}`)!;
    const signature = `${prefix}\u0000${names.map((n) => `${n}\u0001${kind(`${prefix}${block}.${n}`)}`).join('\u0000')}`;
    const group = bySignature.get(signature);
    if (group === undefined) {
      const made = { prefix, blocks: [block], names };
      bySignature.set(signature, made);
      groups.push(made);
    } else group.blocks.push(block);
  }
  return groups;
}

/** Block numbers as runs: "block 3", "blocks 0–11", "blocks 0–3, 7, 10–11". */
export function blockRange(blocks: readonly number[]): string {
  const sorted = [...blocks].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    runs.push(
      j === i ? String(sorted[i]) : j === i + 1 ? `${sorted[i]}, ${sorted[j]}` : `${sorted[i]}–${sorted[j]}`,
    );
    i = j + 1;
  }
  return `${sorted.length === 1 ? 'block' : 'blocks'} ${runs.join(', ')}`;
}

import { CrpError } from '@crp/common';
import type { CondAttribution } from '@crp/core';
import { disposeCondResult } from '@crp/core';
import { cropBox, imageGrid, imgify, type RasterImage, resize, toRasterImage } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';
import { checkTopK } from './atlas.js';
import { batchesOf, type LabelledDataset, type LabelledSource } from './dataset.js';
import type { MaximizationResult } from './maximization.js';
import { type PixelBox, receptiveFieldBox, receptiveFieldGeometry } from './receptive-field.js';

export interface ReferenceImageOptions {
  /** the layer of the channels (a layer of the maximisation result) */
  layer: string;
  /** channels to show (default: every channel of the table) */
  channels?: readonly number[];
  /** top samples per channel (default 6, at most those in the table) */
  topK?: number;
  /** relevance maximisation (default) or activation maximisation samples */
  kind?: 'relevance' | 'activation';
  /** condition rows per backward pass for the conditional heatmaps (`chunkSize` of @crp/core) */
  chunkSize?: number;
  /** Turns one input image [H, W, C] (float) into pixels; default min-max normalisation per image. */
  toImage?: (image: tf.Tensor3D) => RasterImage;
}

/** One reference sample of a channel. `crop` and `heatmap` are the receptive field of the position. */
export interface ReferenceSample {
  channel: number;
  sample: number;
  label: number;
  score: number;
  /** [h, w] of the strongest position in the channel's map */
  position: [number, number];
  /** the input pixels that position sees (the whole image for dense layers) */
  box: PixelBox;
  /** the input image cropped to `box` */
  crop: RasterImage;
  /** the conditional heatmap `{ y: [label], layer: [channel] }` coloured (bwr, symmetric), cropped to `box` */
  heatmap: RasterImage;
  /** the heatmap's relevance inside the box over its total relevance */
  heatmapShareInBox: number;
}

/** The reference samples of each chosen channel, best first. */
export interface ReferenceImages {
  layer: string;
  kind: 'relevance' | 'activation';
  channels: Record<number, ReferenceSample[]>;
}

/**
 * Reference images (feature visualisation) for the top samples of {@link maximization}: for each channel and
 * top sample, the receptive field of the strongest position (from the layer geometry) cut out of the input
 * and out of the sample's conditional heatmap `{ y: [label], layer: [channel] }`. The source must give the
 * same samples (data-set indices) as the one maximised.
 */
export async function referenceImages(
  crp: CondAttribution,
  source: LabelledSource | LabelledDataset,
  maxResult: MaximizationResult,
  options: ReferenceImageOptions,
): Promise<ReferenceImages> {
  const kind = options.kind ?? 'relevance';
  const layer = crp.attributor.graph.node(options.layer).id;
  const table = maxResult[kind][options.layer] ?? maxResult[kind][layer];
  if (table === undefined) {
    throw new CrpError(
      'invalid-argument',
      `the maximisation result has no ${kind} table for '${options.layer}'; it has: ${Object.keys(maxResult[kind]).join(', ')}`,
    );
  }
  const topK = options.topK ?? 6;
  checkTopK(topK);
  const channels = options.channels ?? Array.from({ length: table.channels }, (_, k) => k);
  for (const c of channels) {
    if (!Number.isInteger(c) || c < 0 || c >= table.channels) {
      throw new CrpError(
        'invalid-argument',
        `channel ${c} is out of range for layer '${layer}': it has ${table.channels} channels (valid: 0..${table.channels - 1})`,
      );
    }
  }
  const geometry = receptiveFieldGeometry(crp.attributor.graph, layer);
  const wanted = new Map<number, number[]>(); // sample -> channels
  for (const c of channels) {
    for (const t of table.top[c]!.slice(0, topK)) wanted.set(t.sample, [...(wanted.get(t.sample) ?? []), c]);
  }
  // one pass over the source: keep the wanted samples
  const kept = new Map<number, { image: tf.Tensor; label: number }>();
  try {
    for await (const batch of batchesOf(source, 64)) {
      try {
        batch.indices.forEach((index, i) => {
          if (wanted.has(index) && !kept.has(index)) {
            kept.set(index, { image: tf.slice(batch.images, i, 1), label: batch.labels[i]! });
          }
        });
      } finally {
        if (batch.owned) batch.images.dispose();
      }
    }
    const missing = [...wanted.keys()].filter((s) => !kept.has(s));
    if (missing.length > 0) {
      throw new CrpError(
        'invalid-argument',
        `samples ${missing.slice(0, 10).join(', ')} of the maximisation result are not in the source; give the data set that was maximised`,
      );
    }
    const toImage =
      options.toImage ??
      ((im: tf.Tensor3D) => toRasterImage({ shape: im.shape, data: im.dataSync() as Float32Array }));
    const bySampleChannel = new Map<string, { heatmap: Float32Array; h: number; w: number }>();
    for (const [sample, chs] of wanted) {
      const { image, label } = kept.get(sample)!;
      const r = crp.run(
        image,
        chs.map((c) => ({ y: [label], [layer]: [c] })),
        options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize },
      );
      try {
        const [, h, w] = r.heatmap!.shape;
        const data = r.heatmap!.dataSync() as Float32Array;
        chs.forEach((c, i) => {
          bySampleChannel.set(`${sample}:${c}`, { heatmap: data.slice(i * h * w, (i + 1) * h * w), h, w });
        });
      } finally {
        disposeCondResult(r);
      }
    }
    const out: ReferenceImages = { layer, kind, channels: {} };
    for (const c of channels) {
      out.channels[c] = table.top[c]!.slice(0, topK).map((t) => {
        const { image, label } = kept.get(t.sample)!;
        const { heatmap, h, w } = bySampleChannel.get(`${t.sample}:${c}`)!;
        const [mh, mw] = table.mapSize;
        const position: [number, number] = [Math.floor(t.argmaxPosition / mw), t.argmaxPosition % mw];
        if (position[0] >= mh)
          throw new CrpError('invalid-argument', `position ${t.argmaxPosition} is outside ${mh}x${mw}`);
        const box = receptiveFieldBox(geometry, position);
        const pixels = tf.tidy(() => tf.squeeze(image, [0]) as tf.Tensor3D);
        const picture = toImage(pixels);
        pixels.dispose();
        let inBox = 0;
        let all = 0;
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const v = Math.abs(heatmap[y * w + x]!);
            all += v;
            if (y >= box.y && y < box.y + box.height && x >= box.x && x < box.x + box.width) inBox += v;
          }
        }
        return {
          channel: c,
          sample: t.sample,
          label,
          score: t.score,
          position,
          box,
          crop: cropBox(picture, box),
          heatmap: cropBox(imgify({ data: heatmap, shape: [h, w] }, { cmap: 'bwr', symmetric: true }), box),
          heatmapShareInBox: all === 0 ? 0 : inBox / all,
        };
      });
    }
    return out;
  } finally {
    for (const { image } of kept.values()) image.dispose();
  }
}

export interface ReferenceGridOptions {
  /** side of each cell in pixels (crops are resized to it; default 64) */
  cellSize?: number;
  /** show the heatmap crop next to each image crop (default true) */
  heatmaps?: boolean;
  spacing?: number;
}

/** A grid with one row per channel: for each top sample its crop, then (by default) its heatmap crop. */
export function referenceGrid(refs: ReferenceImages, options: ReferenceGridOptions = {}): RasterImage {
  const cell = options.cellSize ?? 64;
  checkTopK(cell, 'cellSize');
  const withHeatmaps = options.heatmaps ?? true;
  const rows = Object.values(refs.channels);
  if (rows.length === 0) throw new CrpError('invalid-argument', 'no channels to draw');
  const perRow = Math.max(...rows.map((r) => r.length)) * (withHeatmaps ? 2 : 1);
  const blank: RasterImage = {
    width: cell,
    height: cell,
    channels: 3,
    data: new Uint8Array(cell * cell * 3).fill(255),
  };
  const cells: RasterImage[] = [];
  for (const row of rows) {
    const parts: RasterImage[] = [];
    for (const s of row) {
      parts.push(resize(s.crop, { width: cell, height: cell, method: 'bilinear' }));
      if (withHeatmaps) parts.push(resize(s.heatmap, { width: cell, height: cell, method: 'nearest' }));
    }
    while (parts.length < perRow) parts.push(blank);
    cells.push(...parts);
  }
  return imageGrid(cells, { columns: perRow, spacing: options.spacing ?? 2 });
}

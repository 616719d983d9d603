import { CrpError } from '@crp/common';
import {
  type CondAttribution,
  type CondAttributionResult,
  defaultConcept,
  disposeCondResult,
  NeuronConcept,
} from '@crp/core';
import {
  blurHeatmap,
  cropBox,
  imageGrid,
  imgify,
  opacityView,
  type RasterImage,
  relevanceBox,
  resize,
  toRasterImage,
} from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';
import { checkTopK } from './atlas.js';
import { batchesOf, type LabelledDataset, type LabelledSource } from './dataset.js';
import type { MaximizationResult } from './maximization.js';
import { type PixelBox, receptiveFieldBox, receptiveFieldGeometry } from './receptive-field.js';

/**
 * Which heatmap localises a concept in a reference sample:
 * - `'neuron'` (default, zennit-crp's `rf=True` references): the backward pass starts at the layer from the
 *   single most active neuron of the channel (its strongest position) and runs to the input, so the heatmap
 *   lies inside that neuron's receptive field;
 * - `'channel'` (zennit-crp's `rf=False`): starts at the layer from the whole channel;
 * - `'conditional'`: the full conditional backward pass from the output, `{ y: [label], layer: [channel] }`
 *   (what the concept contributed to the sample's own class; zennit-crp's open issue 11).
 */
export type ReferenceLocalization = 'neuron' | 'channel' | 'conditional';

/** How much of the input a reference shows. */
export type ReferenceCrop = 'relevant-area' | 'receptive-field' | 'none';

export interface ReferenceImageOptions {
  /** the layer of the channels (a layer of the maximisation result) */
  layer: string;
  /** channels to show (default: every channel of the table) */
  channels?: readonly number[];
  /** top samples per channel (default 6, at most those in the table) */
  topK?: number;
  /** relevance maximisation (default) or activation maximisation samples */
  kind?: 'relevance' | 'activation';
  /** the heatmap that localises the concept (default `'neuron'`) */
  localization?: ReferenceLocalization;
  /**
   * The part of the input shown (default `'relevant-area'`: where the blurred positive heatmap exceeds
   * `opacity.cropThreshold` of its maximum, as zennit-crp's vis_opaque_img crops; the receptive field when
   * nothing is relevant). `'receptive-field'`: the receptive field of the strongest position.
   */
  crop?: ReferenceCrop;
  /**
   * The opaque view (zennit-crp's vis_opaque_img): the input shown at full opacity where the blurred,
   * max-normalised positive heatmap exceeds `threshold` (default 0.2) and at `minOpacity` (default 0.3,
   * zennit-crp's alpha) elsewhere, over black. `blur` is the Gaussian's sigma in pixels (default zennit-crp's
   * kernel 19 at 224 pixels: sigma 3.2, scaled with the image size).
   */
  opacity?: { blur?: number; threshold?: number; minOpacity?: number; cropThreshold?: number };
  /** condition rows per backward pass for the conditional heatmaps */
  chunkSize?: number;
  /** Turns one input image [H, W, C] (float) into pixels; default min-max normalisation per image. */
  toImage?: (image: tf.Tensor3D) => RasterImage;
}

/** One reference sample of a channel. `crop`, `heatmap` and `opaque` show the same `box` of the input. */
export interface ReferenceSample {
  channel: number;
  sample: number;
  label: number;
  score: number;
  /** [h, w] of the strongest position in the channel's map */
  position: [number, number];
  /** the part of the input shown (see {@link ReferenceImageOptions.crop}) */
  box: PixelBox;
  /** the input image cropped to `box` */
  crop: RasterImage;
  /** the localising heatmap coloured (bwr, symmetric over the whole image), cropped to `box` */
  heatmap: RasterImage;
  /** the input cropped to `box` with the heatmap as opacity mask (what zennit-crp shows as reference) */
  opaque: RasterImage;
  /** the heatmap's absolute relevance inside the box over its total */
  heatmapShareInBox: number;
}

/** The reference samples of each chosen channel, best first. */
export interface ReferenceImages {
  layer: string;
  kind: 'relevance' | 'activation';
  localization: ReferenceLocalization;
  channels: Record<number, ReferenceSample[]>;
}

interface Wanted {
  channel: number;
  position: [number, number];
}

function checkUnit(name: string, v: number, closed: boolean): void {
  if (!(v >= 0 && (closed ? v <= 1 : v < 1))) {
    throw new CrpError('invalid-argument', `${name} must be in [0, ${closed ? '1]' : '1)'}, got ${v}`);
  }
}

/** The options checked against the model and the maximisation result, with every default filled in. */
interface ResolvedReferenceOptions {
  kind: 'relevance' | 'activation';
  /** the layer's node id */
  layer: string;
  table: MaximizationResult['relevance'][string];
  localization: ReferenceLocalization;
  crop: ReferenceCrop;
  threshold: number;
  minOpacity: number;
  cropThreshold: number;
  blur: number | undefined;
  topK: number;
  channels: readonly number[];
  chunkSize: number | undefined;
  geometry: ReturnType<typeof receptiveFieldGeometry>;
  toImage: (image: tf.Tensor3D) => RasterImage;
}

function oneOf<T extends string>(name: string, value: T, valid: readonly T[]): T {
  if (!valid.includes(value)) {
    throw new CrpError(
      'invalid-argument',
      `${name} must be ${valid
        .slice(0, -1)
        .map((v) => `'${v}'`)
        .join(', ')} or '${valid.at(-1)}', got '${String(value)}'`,
    );
  }
  return value;
}

function resolveReferenceOptions(
  crp: CondAttribution,
  maxResult: MaximizationResult,
  options: ReferenceImageOptions,
): ResolvedReferenceOptions {
  const kind = options.kind ?? 'relevance';
  const layer = crp.attributor.graph.node(options.layer).id;
  const table = maxResult[kind][options.layer] ?? maxResult[kind][layer];
  if (table === undefined) {
    throw new CrpError(
      'invalid-argument',
      `the maximisation result has no ${kind} table for '${options.layer}'; it has: ${Object.keys(maxResult[kind]).join(', ')}`,
    );
  }
  const localization = oneOf('localization', options.localization ?? 'neuron', [
    'neuron',
    'channel',
    'conditional',
  ]);
  const crop = oneOf('crop', options.crop ?? 'relevant-area', ['relevant-area', 'receptive-field', 'none']);
  const threshold = options.opacity?.threshold ?? 0.2;
  const minOpacity = options.opacity?.minOpacity ?? 0.3;
  const cropThreshold = options.opacity?.cropThreshold ?? 0.1;
  checkUnit('opacity.threshold', threshold, false);
  checkUnit('opacity.minOpacity', minOpacity, true);
  checkUnit('opacity.cropThreshold', cropThreshold, false);
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
  const toImage =
    options.toImage ??
    ((im: tf.Tensor3D) => toRasterImage({ shape: im.shape, data: im.dataSync() as Float32Array }));
  return {
    kind,
    layer,
    table,
    localization,
    crop,
    threshold,
    minOpacity,
    cropThreshold,
    blur: options.opacity?.blur,
    topK,
    channels,
    chunkSize: options.chunkSize,
    geometry: receptiveFieldGeometry(crp.attributor.graph, layer),
    toImage,
  };
}

/** [h, w] of a flat position in the layer's map. */
function positionIn(table: ResolvedReferenceOptions['table'], flat: number): [number, number] {
  const [mh, mw] = table.mapSize;
  const position: [number, number] = [Math.floor(flat / mw), flat % mw];
  if (position[0] >= mh) throw new CrpError('invalid-argument', `position ${flat} is outside ${mh}x${mw}`);
  return position;
}

/** Per sample, the channels (with their strongest positions) it is a top sample of. */
function wantedSamples(o: ResolvedReferenceOptions): Map<number, Wanted[]> {
  const wanted = new Map<number, Wanted[]>();
  for (const c of o.channels) {
    for (const t of o.table.top[c]!.slice(0, o.topK)) {
      wanted.set(t.sample, [
        ...(wanted.get(t.sample) ?? []),
        { channel: c, position: positionIn(o.table, t.argmaxPosition) },
      ]);
    }
  }
  return wanted;
}

/** One pass over the source, keeping the wanted samples' images (the caller disposes them). */
async function keepWanted(
  source: LabelledSource | LabelledDataset,
  wanted: ReadonlyMap<number, Wanted[]>,
  kept: Map<number, { image: tf.Tensor; label: number }>,
): Promise<void> {
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
}

type Heatmaps = Map<string, { heatmap: Float32Array; h: number; w: number }>;

/** The localising heatmap of each wanted (sample, channel), keyed `sample:channel`: one pass per sample. */
function localizingHeatmaps(
  crp: CondAttribution,
  o: ResolvedReferenceOptions,
  wanted: ReadonlyMap<number, Wanted[]>,
  kept: ReadonlyMap<number, { image: tf.Tensor; label: number }>,
): Heatmaps {
  const heatmaps: Heatmaps = new Map();
  const take = (r: CondAttributionResult, keys: string[]) => {
    try {
      const [, h, w] = r.heatmap!.shape;
      const data = r.heatmap!.dataSync() as Float32Array;
      keys.forEach((key, i) => {
        heatmaps.set(key, { heatmap: data.slice(i * h * w, (i + 1) * h * w), h, w });
      });
    } finally {
      disposeCondResult(r);
    }
  };
  for (const [sample, list] of wanted) {
    const { image, label } = kept.get(sample)!;
    take(
      localizingRun(crp, o, image, label, list),
      list.map((x) => `${sample}:${x.channel}`),
    );
  }
  return heatmaps;
}

/** The conditional pass that localises the channels `list` in one sample (see {@link ReferenceLocalization}). */
function localizingRun(
  crp: CondAttribution,
  o: ResolvedReferenceOptions,
  image: tf.Tensor,
  label: number,
  list: readonly Wanted[],
): CondAttributionResult {
  const { layer, geometry } = o;
  const chunk = o.chunkSize === undefined ? {} : { chunkSize: o.chunkSize };
  if (o.localization === 'conditional') {
    return crp.run(
      image,
      list.map((x) => ({ y: [label], [layer]: [x.channel] })),
      chunk,
    );
  }
  if (o.localization === 'channel') {
    const conditions = list.map((x) => ({ [layer]: [x.channel] }));
    return crp.run(image, conditions, { ...chunk, startLayer: layer, excludeParallel: false });
  }
  // one neuron per condition row (its strongest position differs per channel): one pass per sample
  const shape = crp.attributor.graph.node(layer).outputShape as number[];
  const neurons = list.map((x) =>
    geometry.spatial ? NeuronConcept.index(x.channel, x.position, shape) : x.channel,
  );
  return crp.run(
    image,
    neurons.map((n) => ({ [layer]: [n] })),
    {
      ...chunk,
      startLayer: layer,
      excludeParallel: false,
      // without positions the neuron is the whole concept: a channel, or a head at an attention product
      maskMap: {
        [layer]: geometry.spatial ? new NeuronConcept() : defaultConcept(crp.attributor.graph, layer),
      },
    },
  );
}

/** The part of the input a reference shows (see {@link ReferenceImageOptions.crop}). */
function referenceBox(
  o: ResolvedReferenceOptions,
  heatmap: Float32Array,
  size: { h: number; w: number; blur: number },
  position: [number, number],
): PixelBox {
  const { h, w, blur } = size;
  const receptive = receptiveFieldBox(o.geometry, position);
  if (o.crop === 'none') return { x: 0, y: 0, width: w, height: h };
  if (o.crop === 'receptive-field') return receptive;
  const blurred = blurHeatmap(
    { width: w, height: h, data: Float64Array.from(heatmap, (v) => Math.max(v, 0)) },
    blur,
  );
  return relevanceBox({ data: blurred.data, shape: [h, w] }, o.cropThreshold) ?? receptive;
}

/** The heatmap's absolute relevance inside `box` over its total (0 for an empty heatmap). */
function shareInBox(heatmap: Float32Array, h: number, w: number, box: PixelBox): number {
  let inBox = 0;
  let all = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = Math.abs(heatmap[y * w + x]!);
      all += v;
      if (y >= box.y && y < box.y + box.height && x >= box.x && x < box.x + box.width) inBox += v;
    }
  }
  return all === 0 ? 0 : inBox / all;
}

/** One reference sample of channel `c`: its crop, heatmap and opaque view of the same box. */
function referenceSample(
  o: ResolvedReferenceOptions,
  c: number,
  top: { sample: number; score: number; argmaxPosition: number },
  kept: { image: tf.Tensor; label: number },
  localizing: { heatmap: Float32Array; h: number; w: number },
): ReferenceSample {
  const { heatmap, h, w } = localizing;
  const position = positionIn(o.table, top.argmaxPosition);
  const pixels = tf.tidy(() => tf.squeeze(kept.image, [0]) as tf.Tensor3D);
  const picture = o.toImage(pixels);
  pixels.dispose();
  const blur = o.blur ?? Math.max(0.5, (3.2 * Math.min(h, w)) / 224);
  const heat = { data: heatmap, shape: [h, w] };
  const box = referenceBox(o, heatmap, { h, w, blur }, position);
  const opaque = opacityView(picture, heat, {
    blur,
    threshold: o.threshold,
    minOpacity: o.minOpacity,
    background: [0, 0, 0],
  });
  return {
    channel: c,
    sample: top.sample,
    label: kept.label,
    score: top.score,
    position,
    box,
    crop: cropBox(picture, box),
    heatmap: cropBox(imgify(heat, { cmap: 'bwr', symmetric: true }), box),
    opaque: cropBox(opaque, box),
    heatmapShareInBox: shareInBox(heatmap, h, w, box),
  };
}

/**
 * Reference images (feature visualisation) for the top samples of {@link maximization}: for each channel and
 * top sample, the input cut out around the concept (its relevant area or receptive field), the localising
 * heatmap (see {@link ReferenceLocalization}) and the opaque view in which only what the concept responds to
 * stands out. The source must give the same samples (data-set indices) as the one maximised.
 */
export async function referenceImages(
  crp: CondAttribution,
  source: LabelledSource | LabelledDataset,
  maxResult: MaximizationResult,
  options: ReferenceImageOptions,
): Promise<ReferenceImages> {
  const o = resolveReferenceOptions(crp, maxResult, options);
  const wanted = wantedSamples(o);
  const kept = new Map<number, { image: tf.Tensor; label: number }>();
  try {
    await keepWanted(source, wanted, kept);
    const heatmaps = localizingHeatmaps(crp, o, wanted, kept);
    const out: ReferenceImages = { layer: o.layer, kind: o.kind, localization: o.localization, channels: {} };
    for (const c of o.channels) {
      out.channels[c] = o.table.top[c]!.slice(0, o.topK).map((t) =>
        referenceSample(o, c, t, kept.get(t.sample)!, heatmaps.get(`${t.sample}:${c}`)!),
      );
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
  /** the image of each sample: the opaque view (default) or the plain crop */
  view?: 'opaque' | 'crop';
  spacing?: number;
}

/** A grid with one row per channel: for each top sample its opaque view (or plain crop), then (by default)
 * its heatmap crop. */
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
      const picture = options.view === 'crop' ? s.crop : s.opaque;
      parts.push(resize(picture, { width: cell, height: cell, method: 'bilinear' }));
      if (withHeatmaps) parts.push(resize(s.heatmap, { width: cell, height: cell, method: 'nearest' }));
    }
    while (parts.length < perRow) parts.push(blank);
    cells.push(...parts);
  }
  return imageGrid(cells, { columns: perRow, spacing: options.spacing ?? 2 });
}

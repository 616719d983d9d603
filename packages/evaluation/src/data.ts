import { CrpError } from '@crp/common';
import type * as tf from '@tensorflow/tfjs-core';

/** Inputs as the metrics read them: one Float32Array per sample in NHWC order (feature f = (y * W + x) * C + c). */
export interface Samples {
  n: number;
  height: number;
  width: number;
  channels: number;
  /** Values per sample: height * width * channels. */
  features: number;
  x: Float32Array[];
}

/** An explanation as the metrics read it: per sample, `channels` (1 or the input's) values per pixel. */
export interface Attributions {
  channels: number;
  values: Float32Array[];
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Refuses inputs of another rank than NHWC or an empty batch; returns [N, H, W, C]. */
export function checkSamplesShape(x: tf.Tensor, what = 'inputs'): [number, number, number, number] {
  if (x.rank !== 4) {
    throw new CrpError(
      'invalid-shape',
      `${what} have shape ${shapeText(x.shape)}; expected [N, H, W, C] (NHWC)`,
      {
        details: { shape: x.shape },
      },
    );
  }
  const shape = x.shape as [number, number, number, number];
  if (shape[0] === 0)
    throw new CrpError('empty-data', `${what} are an empty batch; give at least one sample`);
  return shape;
}

/** Reads the NHWC inputs; refuses another rank, an empty batch or non-finite values. */
export async function readSamples(x: tf.Tensor, what = 'inputs'): Promise<Samples> {
  const [n, height, width, channels] = checkSamplesShape(x, what);
  const data = await x.data<'float32'>();
  const features = height * width * channels;
  const samples: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const s = Float32Array.from(data.subarray(i * features, (i + 1) * features));
    const bad = s.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new CrpError(
        'invalid-value',
        `${what}: sample ${i} has a non-finite value (${s[bad]}) at feature ${bad}`,
        {
          details: { sample: i, feature: bad },
        },
      );
    }
    samples.push(s);
  }
  return { n, height, width, channels, features, x: samples };
}

/** Checks the labels: one integer class per sample. */
export function checkLabels(labels: readonly number[], n: number): void {
  if (labels.length !== n) {
    throw new CrpError(
      'invalid-argument',
      `${labels.length} labels for ${n} samples; give one class per sample`,
      {
        details: { labels: labels.length, samples: n },
      },
    );
  }
  const bad = labels.findIndex((l) => !Number.isInteger(l) || l < 0);
  if (bad >= 0) {
    throw new CrpError('invalid-target', `label ${bad} is ${labels[bad]}; a class index is an integer >= 0`);
  }
}

/** Refuses an explanation whose shape is none of [N, H, W], [N, H, W, 1], [N, H, W, C] of the inputs' shape. */
export function checkAttributionShape(
  a: tf.Tensor,
  inputShape: readonly [number, number, number, number],
  what = 'explanation',
): void {
  const [n, height, width, channels] = inputShape;
  const ok =
    a.shape[0] === n &&
    a.shape[1] === height &&
    a.shape[2] === width &&
    (a.rank === 3 || (a.rank === 4 && (a.shape[3] === 1 || a.shape[3] === channels)));
  if (!ok) {
    throw new CrpError(
      'invalid-shape',
      `${what} has shape ${shapeText(a.shape)}; for inputs of shape ${shapeText(inputShape)} ` +
        `it must be [${n}, ${height}, ${width}] (a heatmap), [${n}, ${height}, ${width}, 1] or ` +
        `[${n}, ${height}, ${width}, ${channels}]`,
      { details: { shape: a.shape, inputShape: [...inputShape] } },
    );
  }
}

/**
 * Reads an explanation of the inputs: [N, H, W] (a heatmap), [N, H, W, 1] or [N, H, W, C] (per channel). A
 * one-channel explanation stands for every colour channel of its pixel (Quantus broadcasts it the same way).
 */
export async function readAttributions(
  a: tf.Tensor,
  s: Samples,
  what = 'explanation',
): Promise<Attributions> {
  const { n, height, width, channels } = s;
  checkAttributionShape(a, [n, height, width, channels], what);
  const perPixel = a.rank === 3 ? 1 : a.shape[3]!;
  const data = await a.data<'float32'>();
  const size = height * width * perPixel;
  const values: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const v = Float32Array.from(data.subarray(i * size, (i + 1) * size));
    const bad = v.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      throw new CrpError(
        'invalid-value',
        `${what}: sample ${i} has a non-finite value (${v[bad]}) at ${bad}`,
        {
          details: { sample: i, index: bad },
        },
      );
    }
    values.push(v);
  }
  return { channels: perPixel, values };
}

/** Refuses a region mask of another shape than [N, H, W] or [N, H, W, 1] of the inputs. */
export function checkMaskShape(
  mask: tf.Tensor,
  size: readonly [number, number, number],
  what = 'mask',
): void {
  const [n, height, width] = size;
  const ok =
    mask.shape[0] === n &&
    mask.shape[1] === height &&
    mask.shape[2] === width &&
    (mask.rank === 3 || (mask.rank === 4 && mask.shape[3] === 1));
  if (!ok) {
    throw new CrpError(
      'invalid-shape',
      `${what} has shape ${shapeText(mask.shape)}; it must be [${n}, ${height}, ${width}] (one mask per input)`,
      { details: { shape: mask.shape } },
    );
  }
}

/** Reads a region mask: [N, H, W] or [N, H, W, 1]; non-zero is inside. */
export async function readMasks(mask: tf.Tensor, s: Samples, what = 'mask'): Promise<Uint8Array[]> {
  const { n, height, width } = s;
  checkMaskShape(mask, [n, height, width], what);
  const data = await mask.data();
  const size = height * width;
  return Array.from({ length: n }, (_, i) => {
    const m = new Uint8Array(size);
    for (let p = 0; p < size; p++) m[p] = data[i * size + p] !== 0 ? 1 : 0;
    return m;
  });
}

/** The explanation's value of every input feature (a one-channel explanation repeated over the channels). */
export function perFeature(
  a: Float32Array,
  attributionChannels: number,
  inputChannels: number,
): Float32Array {
  if (attributionChannels === inputChannels) return a;
  const out = new Float32Array(a.length * inputChannels);
  for (let p = 0; p < a.length; p++) out.fill(a[p]!, p * inputChannels, (p + 1) * inputChannels);
  return out;
}

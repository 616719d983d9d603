/**
 * How faithful is the heatmap of the current image? Pixel flipping (@crp/evaluation, Quantus's `PixelFlipping`)
 * of the composite's heatmap beside a random map, computed in the browser on the loaded model, drawn with the
 * toolkit's curve chart. Every tensor made here is disposed here.
 */
import { pixelFlipping, randomExplainer } from '@crp/evaluation';
import { pruningCurveChart, renderSvg } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Heatmap } from './explainer.js';

/** One method's pixel-flipping curve: the class probability after each step, and the area under it. */
export interface FlippingCurve {
  method: string;
  curve: number[];
  auc: number;
}

/** The smallest divisor k of H * W with at most `steps` steps of k pixels (Quantus needs a divisor). */
export function pixelsPerStep(h: number, w: number, steps: number): number {
  for (let k = 1; k <= h * w; k++) if ((h * w) % k === 0 && (h * w) / k <= steps) return k;
  return h * w;
}

/** The random map's curve of an image and class: it depends on neither the composite nor the layer, so
 * explaining the same image again reuses it. */
const randomCurves = new WeakMap<tf.Tensor, Map<string, FlippingCurve>>();

/** Options of {@link pixelFlippingCurves}. */
export interface FlippingOptions {
  /** At most this many steps (default 16). */
  steps?: number;
  /** Called after each batch of inputs scored (16 at most), with the method whose curve it is: `done` of `total`
   * inputs. A throw stops
   * the computation there (the page stops when a newer image or model began); every tensor made is disposed. */
  onStep?(method: string, done: number, total: number): void;
}

/**
 * Pixel flipping of one image for class `target`: the pixels the heatmap calls most relevant are set to the
 * image's minimum first (every channel of a pixel at once), `pixelsPerStep` pixels a step, and the probability of
 * the class is read after each step; the same for a seeded random map. The faster the curve falls, the more the
 * model depends on what the map shows.
 */
export async function pixelFlippingCurves(
  model: tfl.LayersModel,
  x: tf.Tensor,
  target: number,
  heatmap: Heatmap,
  composite: string,
  options: FlippingOptions = {},
): Promise<FlippingCurve[]> {
  const [, h, w, c] = x.shape as [number, number, number, number];
  const k = pixelsPerStep(h, w, options.steps ?? 16) * c;
  const input = x as tf.Tensor4D;
  const curveOf = async (method: string, explanation: tf.Tensor): Promise<FlippingCurve> => {
    try {
      const r = await pixelFlipping(
        { model, x: input, labels: [target], explanation },
        { featuresInStep: k },
        {
          batchSize: 16,
          ...(options.onStep && { onProgress: (p) => options.onStep!(method, p.done, p.total ?? p.done) }),
        },
      );
      return { method, curve: r.curves![0]!, auc: r.scores[0]! / r.curves![0]!.length };
    } finally {
      explanation.dispose();
    }
  };
  const ours = await curveOf(composite, tf.tensor3d(heatmap.data, [1, heatmap.height, heatmap.width]));
  const cache = randomCurves.get(x) ?? new Map<string, FlippingCurve>();
  randomCurves.set(x, cache);
  const key = `${target}|${k}`;
  let random = cache.get(key);
  if (random === undefined) {
    random = await curveOf('random map', await randomExplainer(0)(model, input, [target]));
    cache.set(key, random);
  }
  return [ours, random];
}

/** The curves as an SVG chart (the toolkit's curve chart, as in the study's report), the plot `width` pixels wide
 * (the axes and the legend add about 80). */
export function flippingChart(curves: readonly FlippingCurve[], width = 360): Promise<string> {
  return renderSvg(
    pruningCurveChart(
      curves.map((cv) => ({
        criterion: `${cv.method} (area ${cv.auc.toFixed(3)})`,
        points: cv.curve.map((v, j) => ({ fraction: (j + 1) / cv.curve.length, accuracy: v })),
      })),
      {
        width,
        height: 200,
        xTitle: 'Share of the pixels removed, most relevant first',
        yTitle: 'Probability of the class',
      },
    ),
  );
}

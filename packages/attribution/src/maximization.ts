import { CrpError, type ProgressCallback, progressTracker } from '@crp/common';
import type { CondAttribution } from '@crp/core';
import { disposeCondResult } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import { batchesOf, type LabelledSource, sizeOf } from './dataset.js';

/** How a channel map becomes one score: the sum over positions, or the largest value. */
export type MaxTarget = 'sum' | 'max';

export interface MaximizationOptions {
  /** Layers to rank channels of. */
  layers: readonly string[];
  /** `sum` (default) or `max` over spatial positions. */
  maxTarget?: MaxTarget;
  /** Divide each sample's channel scores by (sum of their absolute values + 1e-10). Default true, as
   * zennit-crp's FeatureVisualization. */
  absNorm?: boolean;
  /** Samples kept per channel (default 40, as zennit-crp). */
  topK?: number;
  /** Images per forward/backward batch (default 16). */
  batchSize?: number;
  /** Keep every sample's channel scores (`scores`, N x C). Default false. */
  keepScores?: boolean;
  /** Called after each batch with the samples done (`total` is undefined for a source of unknown size). */
  onProgress?: ProgressCallback;
}

/** One of the best samples of a channel. */
export interface RankedSample {
  /** index in the data set */
  sample: number;
  score: number;
  /** flat spatial index h * W + w of the channel map's largest value in that sample (0 for dense layers) */
  argmaxPosition: number;
}

/** The ranking of one layer by relevance or by activation. JSON-serialisable except `scores`. */
export interface MaximizationTable {
  layer: string;
  kind: 'relevance' | 'activation';
  channels: number;
  /** [H, W] of the channel maps ([1, 1] for dense layers) */
  mapSize: [number, number];
  /** per channel, the best samples, highest score first (ties: lower sample index first) */
  top: RankedSample[][];
  /** samples seen */
  samples: number;
  /** all scores, row-major [sample][channel], when `keepScores` */
  scores?: Float32Array;
}

export interface MaximizationResult {
  relevance: Record<string, MaximizationTable>;
  activation: Record<string, MaximizationTable>;
}

interface Accumulator {
  table: MaximizationTable;
  candidates: RankedSample[][];
  scoreRows: Float32Array[];
}

function compareRanked(a: RankedSample, b: RankedSample): number {
  return b.score - a.score || a.sample - b.sample;
}

/** Per sample and channel: score (sum/max over positions, optionally abs-normalised) and argmax position. */
function scoreMaps(
  maps: tf.Tensor,
  maxTarget: MaxTarget,
  absNorm: boolean,
): { scores: Float32Array; argmax: Int32Array } {
  const [scores, argmax] = tf.tidy(() => {
    const b = maps.shape[0]!;
    const c = maps.shape[maps.rank - 1]!;
    const flat = tf.reshape(maps, [b, -1, c]);
    let s = maxTarget === 'sum' ? tf.sum(flat, 1) : tf.max(flat, 1);
    if (absNorm) s = tf.div(s, tf.add(tf.sum(tf.abs(s), 1, true), 1e-10));
    return [s, tf.argMax(flat, 1)];
  });
  const out = { scores: scores.dataSync() as Float32Array, argmax: argmax.dataSync() as Int32Array };
  scores.dispose();
  argmax.dispose();
  return out;
}

/**
 * Relevance and activation maximisation (zennit-crp's FeatureVisualization): over a labelled data set, each
 * sample is explained for its own label (condition `{ y: [label] }`); for every channel of the chosen
 * layers, samples are ranked by the channel's relevance (relevance maximisation) and by its activation
 * (activation maximisation). The backward pass stops at the lowest chosen layer.
 */
export async function maximization(
  crp: CondAttribution,
  source: LabelledSource,
  options: MaximizationOptions,
): Promise<MaximizationResult> {
  const layers = [...options.layers];
  if (layers.length === 0)
    throw new CrpError('invalid-argument', 'maximization needs at least one layer in options.layers');
  for (const l of layers) crp.attributor.graph.node(l); // unknown names fail with the valid ones
  const maxTarget = options.maxTarget ?? 'sum';
  if (maxTarget !== 'sum' && maxTarget !== 'max') {
    throw new CrpError('invalid-argument', `maxTarget must be 'sum' or 'max', got '${String(maxTarget)}'`);
  }
  const absNorm = options.absNorm ?? true;
  const topK = options.topK ?? 40;
  const batchSize = options.batchSize ?? 16;
  const acc = new Map<string, Accumulator>();
  const tick = progressTracker(sizeOf(source), options.onProgress, { unit: 'samples' });
  const slice = (images: tf.Tensor, start: number, size: number) => tf.slice(images, start, size);
  for await (const batch of batchesOf(source, batchSize, slice)) {
    try {
      const conditions = batch.labels.map((label) => ({ y: [label] }));
      const result = crp.run(batch.images, conditions, {
        recordLayers: layers,
        recordActivations: layers,
        heatmap: false,
        chunkSize: batchSize,
      });
      try {
        for (const layer of layers) {
          for (const kind of ['relevance', 'activation'] as const) {
            const maps = kind === 'relevance' ? result.relevances[layer]! : result.activations[layer]!;
            const key = `${kind}:${layer}`;
            const c = maps.shape[maps.rank - 1]!;
            let a = acc.get(key);
            if (a === undefined) {
              const mapSize: [number, number] = maps.rank === 4 ? [maps.shape[1]!, maps.shape[2]!] : [1, 1];
              a = {
                table: { layer, kind, channels: c, mapSize, top: [], samples: 0 },
                candidates: Array.from({ length: c }, () => []),
                scoreRows: [],
              };
              acc.set(key, a);
            }
            const { scores, argmax } = scoreMaps(maps, maxTarget, absNorm);
            if (options.keepScores) a.scoreRows.push(scores);
            batch.indices.forEach((sample, i) => {
              for (let ch = 0; ch < c; ch++) {
                a!.candidates[ch]!.push({
                  sample,
                  score: scores[i * c + ch]!,
                  argmaxPosition: argmax[i * c + ch]!,
                });
              }
            });
            for (let ch = 0; ch < c; ch++) {
              const list = a.candidates[ch]!;
              if (list.length > topK) {
                list.sort(compareRanked);
                list.length = topK;
              }
            }
            a.table.samples += batch.labels.length;
          }
        }
      } finally {
        disposeCondResult(result);
      }
    } finally {
      if (batch.owned) batch.images.dispose();
    }
    tick(batch.labels.length);
  }
  const out: MaximizationResult = { relevance: {}, activation: {} };
  for (const a of acc.values()) {
    a.table.top = a.candidates.map((list) => list.sort(compareRanked).slice(0, topK));
    if (options.keepScores) {
      const all = new Float32Array(a.scoreRows.reduce((s, r) => s + r.length, 0));
      let at = 0;
      for (const r of a.scoreRows) {
        all.set(r, at);
        at += r.length;
      }
      a.table.scores = all;
    }
    out[a.table.kind][a.table.layer] = a.table;
  }
  return out;
}

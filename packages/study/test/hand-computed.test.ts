/**
 * The study checked against values worked out by hand on a model small enough to do so: 4x4 RGB images (blue
 * always 0), two 1x1 conv layers with hand-set weights, global average pooling and a dense output layer.
 *
 *   c1 = relu(W1 x) per pixel        W1: in0 -> c1_0 (1), in1 -> c1_1 (2)
 *   c2 = relu(W2 c1) per pixel       c2_0 = c1_0 + 0.25 c1_1, c2_1 = c1_1, c2_2 = 0.5 c1_0 + 0.5 c1_1
 *   g  = mean over pixels of c2      logits: a = g0 + g2, b = 2 g1 - g2
 *
 * With 1x1 kernels every rule of EpsilonPlusFlat works pixel by pixel, so the relevances have closed forms
 * (written out below in plain arithmetic, not through the toolkit): the output starts with its logit z;
 * Epsilon at the dense layer gives channel j of c2 the relevance g_j W3[j,t] z / (z + eps); the average pool
 * (Norm) spreads it over the pixels in proportion to c2; ZPlus at c2 (all weights and activations >= 0) splits
 * each pixel's relevance over c1 in proportion to c1_i W2[i,j]; Flat at c1 passes each pixel's relevance to
 * that pixel. From these follow the atlas votes and shares, the region relevance of the centre 2x2, the
 * decomposition shares, and which channel pruning removes with which effect on the logits.
 */
import { isCrpError } from '@crp/common';
import type { Dataset } from '@crp/models';
import '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '@crp/testing';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStudyStore, runStudy, type StudyResult } from '../src/index.js';
import { ALL, CENTRE, EPS, handModel, SAMPLES, W1, W2, W3 } from './hand-model.js';

useBackend('wasm');

const stab = (z: number) => z + EPS * (z >= 0 ? 1 : -1);
const relu = (v: number) => Math.max(v, 0);

/** The forward pass by hand; `pruned` zeroes channels of c1 or c2 after their ReLU. */
function forward(x: [number[], number[]], pruned: { c1?: number[]; c2?: number[] } = {}) {
  const c1 = ALL.map((p) =>
    [0, 1].map((i) => (pruned.c1?.includes(i) ? 0 : relu(x[0][p]! * W1[0]![i]! + x[1][p]! * W1[1]![i]!))),
  );
  const c2 = ALL.map((p) =>
    [0, 1, 2].map((j) =>
      pruned.c2?.includes(j) ? 0 : relu(c1[p]![0]! * W2[0]![j]! + c1[p]![1]! * W2[1]![j]!),
    ),
  );
  const g = [0, 1, 2].map((j) => c2.reduce((s, row) => s + row[j]!, 0) / 16);
  const logits = [0, 1].map((t) => g.reduce((s, gj, j) => s + gj * W3[j]![t]!, 0));
  return { c1, c2, g, logits };
}

/**
 * Relevance by hand for class `t`: per pixel and channel of c2 and c1, for the whole output or (with `only`)
 * conditioned on one channel of c2 (the decomposition's parent).
 */
function relevance(x: [number[], number[]], t: number, only?: number) {
  const { c1, c2, g, logits } = forward(x);
  const z = logits[t]!;
  const channel = [0, 1, 2].map((j) =>
    only !== undefined && j !== only ? 0 : (g[j]! * W3[j]![t]! * z) / stab(z),
  );
  const r2 = ALL.map((p) => [0, 1, 2].map((j) => ((c2[p]![j]! / 16) * channel[j]!) / stab(g[j]!)));
  const r1 = ALL.map((p) =>
    [0, 1].map((i) =>
      [0, 1, 2].reduce((s, j) => {
        const zp = c1[p]![0]! * W2[0]![j]! + c1[p]![1]! * W2[1]![j]!;
        return s + (c1[p]![i]! * W2[i]![j]! * r2[p]![j]!) / stab(zp);
      }, 0),
    ),
  );
  return { c1: r1, c2: r2 };
}

const sumOver = (rows: number[][], pixels: number[], k: number) =>
  pixels.reduce((s, p) => s + rows[p]![k]!, 0);

/** Indices of the k largest values, ties to the lower index (the atlas's order). */
const topK = (values: number[], k: number) =>
  values
    .map((_, i) => i)
    .sort((a, b) => values[b]! - values[a]! || a - b)
    .slice(0, k);

/** Votes and mean shares (percent of the layer's absolute relevance) of `samples`, by hand. */
function votesAndShares(per: number[][], k: number) {
  const votes = new Array<number>(per[0]!.length).fill(0);
  const percent = new Array<number>(per[0]!.length).fill(0);
  for (const r of per) {
    const abs = r.reduce((s, v) => s + Math.abs(v), 0) + 1e-10;
    for (const i of topK(r, k)) votes[i]! += 1;
    r.forEach((v, i) => {
      percent[i]! += (100 * v) / abs / per.length;
    });
  }
  return { votes, percent };
}

let model: tfl.LayersModel;
let data: Dataset & { classes: string[] };

beforeAll(() => {
  ({ model, data } = handModel());
});
afterAll(() => {
  data.images.dispose();
  model.dispose();
});

describe('the study on a model computed by hand', () => {
  let result: StudyResult;
  const A = SAMPLES.filter((s) => s.label === 0);

  beforeAll(async () => {
    const before = tf.memory().numTensors;
    ({ result } = await runStudy(
      model,
      data,
      {
        target: 'a',
        samples: 4,
        topK: 1,
        region: { centerSquare: 2 },
        pruneLayers: ['c1', 'c2'],
        pruneConcepts: 1,
      },
      { store: memoryStudyStore(), identity: 'hand' },
    ));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('evaluates every image: the confusion matrix of the hand-computed logits', () => {
    const matrix = [
      [0, 0],
      [0, 0],
    ];
    for (const s of SAMPLES) {
      const l = forward(s.x).logits;
      matrix[s.label]![l[1]! > l[0]! ? 1 : 0]! += 1;
    }
    expect(matrix).toEqual([
      [3, 1],
      [2, 2],
    ]);
    expect(result.evaluation.confusionMatrix).toEqual(matrix);
    expect(result.evaluation.accuracy).toBe(5 / 8);
  });

  it('votes in the global atlas as the hand-computed channel relevances say', () => {
    for (const layer of ['c1', 'c2'] as const) {
      const channels = layer === 'c1' ? 2 : 3;
      const per = A.map((s) => {
        const r = relevance(s.x, 0)[layer];
        return Array.from({ length: channels }, (_, k) => sumOver(r, ALL, k));
      });
      const { votes, percent } = votesAndShares(per, 1);
      const ranking = result.atlas.layers[layer]!.ranking;
      for (let k = 0; k < channels; k++) {
        const entry = ranking.find((e) => e.concept === k)!;
        expect(entry.votes, `${layer} concept ${k}`).toBe(votes[k]);
        expect(entry.percent).toBeCloseTo(percent[k]!, 4);
      }
    }
    // by hand: with m0, m1 the means of the input channels, R(c2) is proportional to [g0, 0, g2] =
    // [m0 + m1 / 2, 0, m0 / 2 + m1]: concept 0 wins where m0 > m1 (three samples), concept 2 in the third
    expect(result.atlas.layers.c2!.ranking.map((e) => [e.concept, e.votes])).toEqual([
      [0, 3],
      [2, 1],
      [1, 0],
    ]);
  });

  it('votes in the region atlas by the relevance inside the centre 2x2', () => {
    for (const layer of ['c1', 'c2'] as const) {
      const channels = layer === 'c1' ? 2 : 3;
      const per = A.map((s) => {
        const r = relevance(s.x, 0)[layer];
        return Array.from({ length: channels }, (_, k) => sumOver(r, CENTRE, k));
      });
      const { votes, percent } = votesAndShares(per, 1);
      for (let k = 0; k < channels; k++) {
        const entry = result.regionAtlas.layers[layer]!.ranking.find((e) => e.concept === k)!;
        expect(entry.votes, `${layer} concept ${k}`).toBe(votes[k]);
        expect(entry.percent).toBeCloseTo(percent[k]!, 4);
      }
    }
    // by hand: inside the centre, c2's concept 2 wins in the two images whose channel-1 blob is central (in
    // the second, 3/16 against 1.5/16 for concept 0), so the region votes 2:2 where the global atlas votes 3:1
    const votes = Object.fromEntries(result.regionAtlas.layers.c2!.ranking.map((e) => [e.concept, e.votes]));
    expect(votes).toEqual({ 0: 2, 1: 0, 2: 2 });
  });

  it("decomposes c2's top concept into c1 with the hand-computed shares of its relevance", () => {
    const dec = result.decomposition.layers.c2!;
    expect(dec.below).toEqual(['c1']);
    expect(dec.concepts.map((c) => c.concept)).toEqual([0]);
    const shares = [0, 0];
    const votes = [0, 0];
    for (const s of A) {
      const parent = sumOver(relevance(s.x, 0).c2, ALL, 0);
      const children = [0, 1].map((i) => sumOver(relevance(s.x, 0, 0).c1, ALL, i));
      for (const i of topK(children, 1)) votes[i]! += 1;
      children.forEach((v, i) => {
        shares[i]! += parent === 0 ? 0 : (100 * v) / parent / A.length;
      });
    }
    for (const child of dec.concepts[0]!.children) {
      expect(child.votes).toBe(votes[child.concept]);
      expect(child.percent).toBeCloseTo(shares[child.concept]!, 4);
    }
    expect(dec.concepts[0]!.children.map((c) => c.concept).sort()).toEqual(
      [0, 1].filter((i) => votes[i]! > 0),
    );
  });

  it('prunes the channel each class relies on most, with the hand-computed effect on the logits', () => {
    for (const layer of ['c1', 'c2'] as const) {
      const channels = layer === 'c1' ? 2 : 3;
      for (const cls of [0, 1]) {
        // the class's concepts by the summed abs-normalised relevance of its first 4 samples
        const scores = new Array<number>(channels).fill(0);
        for (const s of SAMPLES.filter((x) => x.label === cls)) {
          const r = relevance(s.x, cls)[layer];
          const per = Array.from({ length: channels }, (_, k) => sumOver(r, ALL, k));
          const abs = per.reduce((a, v) => a + Math.abs(v), 0) + 1e-10;
          per.forEach((v, k) => {
            scores[k]! += v / abs;
          });
        }
        const pruned = topK(scores, 1);
        const row = result.pruning.rows.find((r) => r.layer === layer && r.class === cls)!;
        expect(row.concepts, `${layer} class ${cls}`).toEqual(pruned);
        const stats = (which: (label: number) => boolean, prune: boolean) => {
          const chosen = SAMPLES.filter((s) => which(s.label));
          const outs = chosen.map((s) => forward(s.x, prune ? { [layer]: pruned } : {}).logits);
          return {
            accuracy:
              outs.filter((o, i) => (o[1]! > o[0]! ? 1 : 0) === chosen[i]!.label).length / chosen.length,
            meanTargetLogit: outs.reduce((a, o, i) => a + o[chosen[i]!.label]!, 0) / chosen.length,
          };
        };
        for (const [when, prune] of [
          ['before', false],
          ['after', true],
        ] as const) {
          const target = stats((y) => y === cls, prune);
          const others = stats((y) => y !== cls, prune);
          expect(row[when].target.accuracy).toBe(target.accuracy);
          expect(row[when].others.accuracy).toBe(others.accuracy);
          expect(row[when].target.meanTargetLogit).toBeCloseTo(target.meanTargetLogit, 5);
          expect(row[when].others.meanTargetLogit).toBeCloseTo(others.meanTargetLogit, 5);
        }
      }
    }
    // by hand: class a relies most on c2's channel 0; without it, logit a = m0 / 2 + m1 and b = 3 m1 - m0 / 2,
    // so only the images with m0 > 2 m1 (the first and the last of class a) stay a
    const a = result.pruning.rows.find((r) => r.layer === 'c2' && r.class === 0)!;
    expect(a.concepts).toEqual([0]);
    expect(a.before.target.accuracy).toBe(0.75);
    expect(a.after.target.accuracy).toBe(0.5);
  });

  it('refuses an unknown prune layer, naming the valid ones', async () => {
    await expect(
      runStudy(
        model,
        data,
        { target: 'a', pruneLayers: ['c3'] },
        { store: memoryStudyStore(), identity: 'x' },
      ),
    ).rejects.toSatisfy((e) => isCrpError(e, 'unknown-layer') && /valid: c1, c2/.test((e as Error).message));
  });
});

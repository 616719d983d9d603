/**
 * The pruning criteria over attention heads, on the tiny ViT of heads.test.ts (8x8 images in 2x2 patches, 1 block,
 * 2 heads of 4 features over 5 tokens, MLP 12, 3 classes, seeded weights), summed by hand in float64 from the
 * layer's output [samples, heads, tokens, d]: relevance (sum of |R| over a head's tokens and features and the
 * samples, R from lrp's Attributor with the model's composite, attn_lrp), activation (mean |attention output|),
 * Taylor (|mean over a head's tokens and features of a x dL/da| per sample, the gradient by tf.grad through lrp's
 * forwardNode), weight (L1 of the head's v_proj columns). Then: heads and MLP neurons scored in one call, batches
 * and shards give the same bits, the lowest head is masked through selectLowest, pruning curves over heads, no
 * tensor left.
 */

import { CondAttribution } from '@crp/core';
import { Attributor, graphFromLayersModel } from '@crp/lrp';
import { vit } from '@crp/models';
import { setVitWeights } from '@crp/models/internal';
import { tinyVit, tinyVitImages } from '@crp/testing/tiny-vit';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activationScores,
  ChannelMask,
  CRITERIA,
  classConceptScores,
  conceptPruning,
  MaskedModel,
  pruningCurves,
  relevanceScores,
  scoreChannels,
  selectLowest,
  taylorScores,
  weightScores,
} from '../src/index.js';
import { expectClose, expectCrpError, objectiveAt, predictValues, useBackend, values } from './helpers.js';

useBackend('cpu');

const B = 'encoder.layers.encoder_layer_0.';
const HEADS = `${B}self_attention.context`;
const N = 5;
const H = 2;
const PER_HEAD = 5 * 4; // tokens x features of one head
const labels = [0, 2, 1, 2, 1];

let model: tfl.LayersModel;
let images: tf.Tensor4D;

function seeded(): tfl.LayersModel {
  return tinyVit({ vit, setVitWeights });
}

/** Per head h of a flat [samples, heads, tokens, d] array: f over sample s's block of head h. */
function perHead(v: ArrayLike<number>, f: (s: number, h: number, block: number[]) => number): number[] {
  const out = new Array<number>(H).fill(0);
  for (let s = 0; s < N; s++) {
    for (let h = 0; h < H; h++) {
      const start = (s * H + h) * PER_HEAD;
      out[h]! += f(
        s,
        h,
        Array.from({ length: PER_HEAD }, (_, i) => v[start + i]!),
      );
    }
  }
  return out;
}

const sumAbs = (_: number, __: number, block: number[]) => block.reduce((a, b) => a + Math.abs(b), 0);

/** The attention output [N, heads, tokens, d] of the model for the images. */
function context(): Float64Array {
  const probe = tfl.model({
    inputs: model.inputs,
    outputs: model.getLayer(HEADS).output as tfl.SymbolicTensor,
  });
  const out = probe.predict(images) as tf.Tensor;
  const v = values(out);
  out.dispose();
  return v;
}

beforeAll(() => {
  model = seeded();
  images = tinyVitImages(N);
});
afterAll(() => {
  model.dispose();
  images.dispose();
});

describe('criteria over attention heads, summed by hand', () => {
  const data = () => ({ images, labels });

  it("relevance: sum of |R| over each head's tokens, features and the samples (attn_lrp)", () => {
    const scores = relevanceScores(model, { data: data(), layers: [HEADS], normalize: false, batchSize: 2 });
    const lrp = new Attributor(model);
    expect(lrp.composite.name).toBe('AttnLRP');
    const r = lrp.attribute(images, { target: labels, recordLayers: [HEADS] });
    const R = values(r.relevances[HEADS]!);
    expect(r.relevances[HEADS]!.shape).toEqual([N, H, 5, 4]);
    const expected = perHead(R, sumAbs);
    expect(Math.min(...expected)).toBeGreaterThan(1e-3);
    expectClose(scores.layers[HEADS]!, expected, 1e-5);
    for (const t of [r.relevance, r.prediction, ...Object.values(r.relevances)]) t.dispose();
    lrp.dispose();
    // normalised per layer by default: the two heads' shares
    const normed = relevanceScores(model, { data: data(), layers: [HEADS] }).layers[HEADS]!;
    const total = expected[0]! + expected[1]!;
    expectClose(normed, [expected[0]! / total, expected[1]! / total], 1e-5);
  });

  it("activation: mean |attention output| over each head's tokens, features and the samples", () => {
    const scores = activationScores(model, { data: data(), layers: [HEADS], normalize: false, batchSize: 3 });
    const expected = perHead(context(), sumAbs).map((v) => v / (N * PER_HEAD));
    expectClose(scores.layers[HEADS]!, expected, 1e-5);
  });

  it("taylor: |mean over a head's tokens and features of a x dL/da| per sample, averaged (tf.grad)", () => {
    const graph = graphFromLayersModel(model);
    const a0 = tf.tensor(Float32Array.from(context()), [N, H, 5, 4]);
    for (const objective of ['loss', 'logit'] as const) {
      const scores = taylorScores(model, {
        data: data(),
        layers: [HEADS],
        normalize: false,
        objective,
        batchSize: 2,
      });
      // the objective as a function of the attention output, every other node run by lrp's forwardNode
      const g = tf.grad(objectiveAt(graph, HEADS, images, labels, objective))(a0);
      const ag = tf.mul(a0, g);
      const expected = perHead(
        values(ag),
        (_, __, block) => Math.abs(block.reduce((a, b) => a + b, 0) / PER_HEAD) / N,
      );
      expect(Math.min(...expected)).toBeGreaterThan(1e-6);
      expectClose(scores.layers[HEADS]!, expected, 1e-4);
      g.dispose();
      ag.dispose();
    }
    a0.dispose();
    graph.dispose();
  });

  it("weight: L1 norm of each head's value-projection columns", () => {
    const scores = weightScores(model, { layers: [HEADS], normalize: false });
    const k = values(model.getLayer(`${B}self_attention.v_proj`).getWeights()[0]!); // [8, 8]
    const expected = [0, 0];
    for (let i = 0; i < 8; i++)
      for (let c = 0; c < 8; c++) expected[Math.floor(c / 4)]! += Math.abs(k[i * 8 + c]!);
    expectClose(scores.layers[HEADS]!, expected, 1e-6);
  });

  it('scores heads and MLP neurons in one call, each as when scored alone; batches and shards change no bit', () => {
    for (const c of ['relevance', 'activation', 'taylor'] as const) {
      const both = scoreChannels(model, c, { data: data(), layers: [HEADS, `${B}mlp.0`], normalize: false });
      expect(both.layers[HEADS]!.length).toBe(H);
      expect(both.layers[`${B}mlp.0`]!.length).toBe(12);
      const alone = scoreChannels(model, c, { data: data(), layers: [HEADS], normalize: false });
      expectClose(both.layers[HEADS]!, alone.layers[HEADS]!, 1e-6);
      const split = scoreChannels(model, c, {
        data: data(),
        layers: [HEADS],
        normalize: false,
        batchSize: 1,
        shardSize: 2,
      });
      const whole = scoreChannels(model, c, {
        data: data(),
        layers: [HEADS],
        normalize: false,
        batchSize: 1,
        shardSize: 5,
      });
      expect(split.layers[HEADS]).toEqual(whole.layers[HEADS]);
    }
    const random = scoreChannels(model, 'random', { layers: [HEADS], seed: 2 });
    expect(random.layers[HEADS]!.length).toBe(H);
  });

  it('the lowest-scoring head is the one selectLowest masks', () => {
    const scores = relevanceScores(model, { data: data(), layers: [HEADS] });
    const s = scores.layers[HEADS]!;
    const mask = selectLowest(scores, 0.5);
    expect(mask.channels(HEADS)).toEqual([s[0]! <= s[1]! ? 0 : 1]);
  });

  it('pruning curves over heads: each point masks that many heads, accuracy from the masked copy', async () => {
    const curves = await pruningCurves(model, {
      criteria: ['relevance', 'random'],
      layers: [HEADS],
      reference: { images, labels },
      test: { images, labels },
      fractions: [0, 0.5],
    });
    expect(curves.channels).toBe(H);
    for (const c of curves.curves) {
      expect(c.points.map((p) => p.pruned)).toEqual([0, 1]);
      expect(c.points[0]!.accuracy).toBe(curves.baseline);
    }
  });

  it("concept pruning over heads: each class's top head by its atlas (abs-normalised head relevance), then the masked model", async () => {
    // the class atlas by hand: per sample of the class, each head's relevance over its tokens and features,
    // divided by the sum of both heads' |relevance|, summed over the samples
    const lrp = new Attributor(model);
    const r = lrp.attribute(images, { target: labels, recordLayers: [HEADS] });
    const R = values(r.relevances[HEADS]!);
    for (const t of [r.relevance, r.prediction, ...Object.values(r.relevances)]) t.dispose();
    lrp.dispose();
    const crp = new CondAttribution(model);
    const top: number[] = [];
    for (const cls of [0, 1, 2]) {
      const expected = [0, 0];
      for (let s = 0; s < N; s++) {
        if (labels[s] !== cls) continue;
        const head = [0, 1].map((h) =>
          R.subarray((s * H + h) * PER_HEAD, (s * H + h + 1) * PER_HEAD).reduce((a, b) => a + b, 0),
        );
        const norm = Math.abs(head[0]!) + Math.abs(head[1]!) + 1e-10;
        for (const h of [0, 1]) expected[h]! += head[h]! / norm;
      }
      const scores = classConceptScores(crp, { images, labels }, cls, [HEADS]).layers[HEADS]!;
      expectClose(scores, expected, 1e-5);
      top.push(expected[0]! >= expected[1]! ? 0 : 1);
    }
    crp.dispose();
    // k = 3 asks for more heads than the block may lose: one head (the top one) is pruned per class
    const test = { images, labels };
    const result = await conceptPruning(model, { layers: [HEADS], k: 3, reference: test, test });
    expect(result.rows.map((row) => row.concepts)).toEqual(top.map((h) => [h]));
    for (const row of result.rows) {
      const masked = await MaskedModel.create(model, ChannelMask.of({ [HEADS]: row.concepts }));
      const logits = predictValues(masked.model, images);
      masked.dispose();
      const mine = labels.flatMap((y, s) => (y === row.class ? [logits[s * 3 + y]!] : []));
      expect(row.after.target.meanTargetLogit).toBeCloseTo(mine.reduce((a, b) => a + b, 0) / mine.length, 5);
    }
  });

  it('errors name the head layers; no tensor is left', async () => {
    await expectCrpError(
      () => relevanceScores(model, { data: data(), layers: [`${B}self_attention.scores`] }),
      'unknown-layer',
      'not a prunable layer',
      HEADS,
    );
    const start = tf.memory().numTensors;
    for (const c of CRITERIA)
      scoreChannels(model, c, { data: data(), layers: [HEADS, `${B}mlp.0`], batchSize: 2 });
    expect(tf.memory().numTensors).toBe(start);
  });
});

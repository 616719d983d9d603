/**
 * Every criterion scores the channels of an addition (a residual sum, a ResNet's `layer2.0.add`): checked by hand
 * on a two-branch graph small enough to write out, and on a torchvision ResNet against the block's output.
 */
import { fromTensors, planShards } from '@crp/attribution';
import { decodeShardJson, encodeShardJson, runShard, selectSamples } from '@crp/attribution/internal';
import { CondAttribution, disposeCondResult } from '@crp/core';
import { Attributor, gradient, layerMapComposite } from '@crp/lrp';
import { formulaImage } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criterionBatch } from '../src/criterion-sums.js';
import {
  activationScores,
  ChannelMask,
  type CriterionPartial,
  criterionStrategy,
  exportPruned,
  MaskedModel,
  pruningCurves,
  randomScores,
  relevanceScores,
  scoreChannels,
  taylorScores,
  weightScores,
} from '../src/index.js';
import {
  expectClose,
  expectCrpError,
  formulaResNet,
  mulberry32,
  uniform,
  useBackend,
  values,
} from './helpers.js';

useBackend('wasm');

// image [2, 2, 2] -> convA, convB (1x1, 2 -> 3, no bias) -> add -> relu -> flat (12) -> logits (12 -> 2, no bias)
const P = 4; // positions
const C = 3; // channels of the sum
const N = 5;
const LABELS = [0, 1, 1, 0, 1];

describe('criteria at an addition, by hand', () => {
  let model: tfl.LayersModel;
  let x: tf.Tensor4D;
  const rng = mulberry32(21);
  const KA = uniform(rng, 2 * C, -1, 1); // [in, out]
  const KB = uniform(rng, 2 * C, -1, 1);
  const W = uniform(rng, P * C * 2, -1, 1); // [(p, c), k]
  const X = uniform(rng, N * P * 2, -1, 1); // [n, p, in]
  beforeAll(() => {
    const input = tfl.input({ shape: [2, 2, 2], name: 'image' });
    const conv = (name: string) =>
      tfl.layers
        .conv2d({ filters: C, kernelSize: 1, useBias: false, name })
        .apply(input) as tfl.SymbolicTensor;
    const sum = tfl.layers.add({ name: 'add' }).apply([conv('convA'), conv('convB')]);
    const relu = tfl.layers.reLU({ name: 'relu' }).apply(sum);
    const flat = tfl.layers.flatten({ name: 'flat' }).apply(relu);
    const out = tfl.layers
      .dense({ units: 2, useBias: false, name: 'logits' })
      .apply(flat) as tfl.SymbolicTensor;
    model = tfl.model({ inputs: input, outputs: out });
    model.getLayer('convA').setWeights([tf.tensor4d(KA, [1, 1, 2, C])]);
    model.getLayer('convB').setWeights([tf.tensor4d(KB, [1, 1, 2, C])]);
    model.getLayer('logits').setWeights([tf.tensor2d(W, [P * C, 2])]);
    x = tf.tensor4d(X, [N, 2, 2, 2]);
  });
  afterAll(() => {
    model.dispose();
    x.dispose();
  });

  /** Per sample: s[p][c] the sum, z[k] the logits. */
  function forward(n: number) {
    const s = Array.from({ length: P }, (_, p) =>
      Array.from({ length: C }, (_, c) => {
        let v = 0;
        for (let i = 0; i < 2; i++) v += X[(n * P + p) * 2 + i]! * (KA[i * C + c]! + KB[i * C + c]!);
        return v;
      }),
    );
    const z = [0, 1].map((k) => {
      let v = 0;
      for (let p = 0; p < P; p++)
        for (let c = 0; c < C; c++) v += Math.max(0, s[p]![c]!) * W[(p * C + c) * 2 + k]!;
      return v;
    });
    return { s, z };
  }

  const data = () => ({ images: x, labels: LABELS });
  const scoresAt = (f: typeof activationScores) =>
    f(model, { data: data(), layers: ['add'], normalize: false });

  it('activation: the mean of max(0, sum) over positions and samples', () => {
    const want = new Array<number>(C).fill(0);
    for (let n = 0; n < N; n++) {
      const { s } = forward(n);
      for (let p = 0; p < P; p++) for (let c = 0; c < C; c++) want[c]! += Math.max(0, s[p]![c]!) / (N * P);
    }
    expectClose(scoresAt(activationScores).layers.add!, want);
  });

  it('Taylor: |mean over positions of sum x dLoss/dsum| per sample, averaged', () => {
    const want = new Array<number>(C).fill(0);
    for (let n = 0; n < N; n++) {
      const { s, z } = forward(n);
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const gz = e.map((v, k) => v / (e[0]! + e[1]!) - (k === LABELS[n] ? 1 : 0));
      for (let c = 0; c < C; c++) {
        let t = 0;
        for (let p = 0; p < P; p++) {
          const g = s[p]![c]! > 0 ? W[(p * C + c) * 2]! * gz[0]! + W[(p * C + c) * 2 + 1]! * gz[1]! : 0;
          t += (s[p]![c]! * g) / P;
        }
        want[c]! += Math.abs(t) / N;
      }
    }
    expectClose(scoresAt(taylorScores).layers.add!, want);
  });

  it('relevance: the CRP relevance of the channel at the sum’s output (Epsilon at the logits, the ReLU passes it)', () => {
    const want = new Array<number>(C).fill(0);
    for (let n = 0; n < N; n++) {
      const { s, z } = forward(n);
      const y = LABELS[n]!;
      const zy = z[y]!;
      // the explained logit zy, distributed by the Epsilon rule: x_k w_ky zy / (zy + eps sign0(zy))
      const ratio = zy / (zy >= 0 ? zy + 1e-6 : zy - 1e-6);
      for (let p = 0; p < P; p++) {
        for (let c = 0; c < C; c++)
          want[c]! += Math.abs(Math.max(0, s[p]![c]!) * W[(p * C + c) * 2 + y]! * ratio);
      }
    }
    expectClose(scoresAt(relevanceScores).layers.add!, want);
  });

  it('weight: the L1 norms of the kernel columns of every addend’s layer, summed; random: one per channel', () => {
    const want = Array.from({ length: C }, (_, c) => {
      let v = 0;
      for (let i = 0; i < 2; i++) v += Math.abs(KA[i * C + c]!) + Math.abs(KB[i * C + c]!);
      return v;
    });
    expectClose(weightScores(model, { layers: ['add'], normalize: false }).layers.add!, want);
    const random = randomScores(model, { layers: ['add', 'convA'], seed: 3 });
    expect(random.layers.add).toHaveLength(C);
    expect(random.layers.convA).toHaveLength(C);
  });

  it('masks and exports the sum’s channel (both addends and the logits’ rows lose it)', async () => {
    const mask = ChannelMask.of({ add: [1] });
    const masked = await MaskedModel.create(model, mask);
    const pruned = await exportPruned(model, mask);
    expect(pruned.getLayer('convB').getWeights()[0]!.shape).toEqual([1, 1, 2, 2]);
    expect(pruned.getLayer('logits').getWeights()[0]!.shape).toEqual([8, 2]);
    const [a, b] = [masked.model.predict(x) as tf.Tensor, pruned.predict(x) as tf.Tensor];
    expectClose(values(b), values(a));
    tf.dispose([a, b]);
    pruned.dispose();
    masked.dispose();
  });

  it('refuses a layer that is neither prunable nor a sum, naming the sums among the valid ones', async () => {
    await expectCrpError(
      async () => scoreChannels(model, 'weight', { layers: ['relu'] }),
      'unknown-layer',
      "cannot score layer 'relu': it is not a prunable layer of the model; prunable layers: convA, convB, logits, add",
    );
  });
});

describe('criteria at the additions of a torchvision ResNet', () => {
  let model: tfl.LayersModel;
  let x: tf.Tensor4D;
  const labels = [0, 2, 1, 1, 0];
  const layers = ['layer1.0.add', 'layer2.0.conv1', 'layer2.0.add'];
  beforeAll(() => {
    model = formulaResNet({ block: 'basic', layers: [1, 1], classes: 3 }, 7);
    x = formulaImage(5, 32, 8);
  });
  afterAll(() => {
    model.dispose();
    x.dispose();
  });

  it('every criterion scores every channel of a sum, with progress', () => {
    const data = { images: x, labels };
    for (const criterion of ['relevance', 'activation', 'taylor', 'weight', 'random'] as const) {
      const done: number[] = [];
      const scores = scoreChannels(model, criterion, {
        data,
        layers,
        batchSize: 2,
        onProgress: (p) => done.push(p.done),
      });
      expect(Object.keys(scores.layers)).toEqual(layers);
      expect(scores.layers['layer1.0.add']).toHaveLength(64);
      expect(scores.layers['layer2.0.add']).toHaveLength(128);
      for (const l of layers) {
        const v = scores.layers[l]!;
        expect(v.every((s) => Number.isFinite(s) && s >= 0)).toBe(true);
        expect(v.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10); // normalised per layer
      }
      if (['relevance', 'activation', 'taylor'].includes(criterion)) expect(done).toEqual([2, 4, 5]);
    }
  });

  it('activation and relevance at layer2.0.add are those of the block’s output (layer2.0.relu)', () => {
    const data = { images: x, labels };
    const probe = tfl.model({
      inputs: model.inputs,
      outputs: model.getLayer('layer2.0.relu').output as tfl.SymbolicTensor,
    });
    const out = probe.predict(x) as tf.Tensor;
    const mean = tf.tidy(() => tf.mean(out, [0, 1, 2]));
    expectClose(
      activationScores(model, { data, layers: ['layer2.0.add'], normalize: false }).layers['layer2.0.add']!,
      values(mean),
    );
    tf.dispose([out, mean]);
    // relevance recorded after the ReLU (its rule passes relevance on unchanged)
    const crp = new CondAttribution(model);
    const result = crp.run(
      x,
      labels.map((y) => ({ y: [y] })),
      { recordLayers: ['layer2.0.relu'], heatmap: false },
    );
    const sums = tf.tidy(() => tf.sum(tf.abs(result.relevances['layer2.0.relu']!), [0, 1, 2]));
    expectClose(
      relevanceScores(model, { data, layers: ['layer2.0.add'], normalize: false }).layers['layer2.0.add']!,
      values(sums),
    );
    tf.dispose(sums);
    disposeCondResult(result);
    crp.dispose();
  });

  it('Taylor at layer2.0.add equals |a x gradient| after the ReLU', () => {
    const grad = new Attributor(model, {
      composite: layerMapComposite([[() => true, gradient()]], 'Gradient'),
      canonizers: [],
    });
    const after = criterionBatch('taylor', grad, x, labels, ['layer2.0.relu']);
    grad.dispose();
    const perSample = Float64Array.from(
      after.layers['layer2.0.relu']!,
      (e) => e.reduce((a, b) => a + b, 0) / 5,
    );
    expectClose(
      taylorScores(model, { data: { images: x, labels }, layers: ['layer2.0.add'], normalize: false }).layers[
        'layer2.0.add'
      ]!,
      perSample,
    );
  });

  it('pruning curves over a sum: the stream loses its channels, with the exported model’s parameters', async () => {
    const data = { images: x, labels };
    const curves = await pruningCurves(model, {
      criteria: ['weight'],
      layers: ['layer2.0.add'],
      reference: data,
      test: data,
      fractions: [0, 0.5],
    });
    const [none, half] = curves.curves[0]!.points;
    expect(half!.pruned).toBe(64);
    // 64 of layer2's 128 stream channels: conv2 3*3*128*64 + bn2 4*64, downsample 64*64 + 4*64, fc 64*3 rows
    expect(none!.params! - half!.params!).toBe(3 * 3 * 128 * 64 + 4 * 64 + 64 * 64 + 4 * 64 + 64 * 3);
  });

  it('scores a sum without leaking tensors', () => {
    const data = { images: x, labels };
    const before = tf.memory().numTensors;
    for (const criterion of ['relevance', 'activation', 'taylor', 'weight', 'random'] as const) {
      scoreChannels(model, criterion, { data, layers: ['layer2.0.add'], batchSize: 2 });
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('sharded runs give the in-process scores of a sum to the last bit', async () => {
    const crp = new CondAttribution(model);
    const ctx = { crp, model, dataset: fromTensors(x, labels) };
    for (const criterion of ['relevance', 'activation', 'taylor'] as const) {
      const options = { criterion, layers: ['layer2.0.add'], batchSize: 2, shardSize: 2 };
      const resolved = criterionStrategy.resolve(ctx, options);
      const samples = selectSamples(criterionStrategy, ctx.dataset, resolved);
      const total = criterionStrategy.empty(resolved);
      const partials: CriterionPartial[] = [];
      for (const s of planShards(samples.size, 2)) {
        partials.push(
          decodeShardJson(encodeShardJson(await runShard(criterionStrategy, ctx, samples, resolved, s))),
        );
      }
      for (const p of partials.reverse()) criterionStrategy.merge(total, p);
      expect(criterionStrategy.finish(total, resolved)).toEqual(
        scoreChannels(model, criterion, { data: { images: x, labels }, ...options }),
      );
    }
    crp.dispose();
  });
});

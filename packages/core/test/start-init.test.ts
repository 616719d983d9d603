/**
 * `startLayer` (backward from a layer's activation, `y` ignored) and `initRelevance` (number, function,
 * tensor of batch 1 or one row per image), and several `y` indices keeping each logit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { type Condition, type CondRunOptions, disposeCondResult } from '../src/index.js';
import {
  activationOf,
  CLASSES,
  channelMask,
  expectClose,
  expectIdentical,
  expectNonZero,
  H,
  handChain,
  heatmapRows,
  keepLogits,
  logitsOf,
  maxAbs,
  row,
  useCondSetup,
  useWasm,
  W,
} from './helpers.js';

useWasm();

// image 0 has a negative logit at class 0 (so |logit| differs from the logit)
const setup = useCondSetup(11);

function run(input: tf.Tensor, conditions: readonly Condition[], options: CondRunOptions = {}) {
  const result = setup.crp.run(input, conditions, options);
  try {
    return {
      heatmaps: heatmapRows(result),
      prediction: result.prediction.shape,
      predictionRows: Array.from({ length: result.rows.length }, (_, r) => row(result.prediction, r)),
      relevances: Object.fromEntries(
        Object.entries(result.relevances).map(([k, t]) => [
          k,
          Array.from({ length: t.shape[0]! }, (_, r) => row(t, r)),
        ]),
      ),
      rows: result.rows,
    };
  } finally {
    disposeCondResult(result);
  }
}

const maskOf = (keep: number[]) => (s: readonly number[]) => channelMask(s, keep);

describe('startLayer', () => {
  test('starts at the layer with its activation, ignores y, and predicts the activation', () => {
    const got = run(setup.x0, [{ y: [0] }, { y: [2] }, { y: [0, 1, 2] }], { startLayer: 'conv2' });
    expect(got.prediction).toEqual([3, H, W, 4]);
    const activation = activationOf(setup.model, 'conv2', setup.x0);
    expectNonZero(activation);
    for (const p of got.predictionRows) expectClose(p, activation, 1e-6);
    const hand = handChain(setup.crp.attributor, setup.x0, (a) => tf.clone(a), [], 'conv2');
    expectNonZero(hand.heatmap);
    for (const h of got.heatmaps) expectClose(h, hand.heatmap, 1e-5);
    // and it is not the heatmap from the output
    const fromOutput = handChain(setup.crp.attributor, setup.x0, keepLogits([0]), []);
    expect(maxAbs(hand.heatmap.map((v, i) => v - fromOutput.heatmap[i]!))).toBeGreaterThan(1e-6);
  });

  test('conditions on layers below the start layer and on the start layer itself mask the flow', () => {
    const cases: { start: string; condition: Condition; steps: [string, number[]][] }[] = [
      { start: 'pool', condition: { conv1: [2] }, steps: [['conv1', [2]]] },
      { start: 'pool', condition: { pool: [1, 3] }, steps: [['pool', [1, 3]]] },
      { start: 'dense1', condition: { y: [1], conv2: [0] }, steps: [['conv2', [0]]] },
      {
        start: 'dense1',
        condition: { dense1: [0, 2], conv1: [1] },
        steps: [
          ['dense1', [0, 2]],
          ['conv1', [1]],
        ],
      },
    ];
    for (const { start, condition, steps } of cases) {
      const got = run(setup.x1, [condition], { startLayer: start });
      const hand = handChain(
        setup.crp.attributor,
        setup.x1,
        (a) => tf.clone(a),
        steps.map(([layer, keep]) => ({ layer, mask: maskOf(keep) })),
        start,
      );
      expectNonZero(hand.heatmap, `hand heatmap for ${start} ${JSON.stringify(condition)}`);
      expectClose(got.heatmaps[0]!, hand.heatmap, 1e-5);
      expectClose(got.predictionRows[0]!, activationOf(setup.model, start, setup.x1), 1e-6);
    }
  });

  test('pairs and broadcasts images as without a start layer', () => {
    const conditions: Condition[] = [{ conv1: [0] }, { conv1: [3] }];
    const got = run(setup.x, conditions, { startLayer: 'conv2' });
    expect(got.rows).toEqual([
      { image: 0, condition: 0 },
      { image: 1, condition: 1 },
    ]);
    [setup.x0, setup.x1].forEach((image, i) => {
      const hand = handChain(
        setup.crp.attributor,
        image,
        (a) => tf.clone(a),
        [{ layer: 'conv1', mask: maskOf([i === 0 ? 0 : 3]) }],
        'conv2',
      );
      expectClose(got.heatmaps[i]!, hand.heatmap, 1e-5);
      expectClose(got.predictionRows[i]!, activationOf(setup.model, 'conv2', image), 1e-6);
    });
  });
  test('one image under several conditions, in chunks of one forward pass: each chunk starts from the activation', () => {
    // the rows share one starting relevance (batch 1, the pass's own activation): a chunk must not free it, as
    // the next chunk of the same pass starts from it again
    const keeps = [[0], [3], [1, 2]];
    const conditions: Condition[] = keeps.map((k) => ({ conv1: k }));
    for (const chunkSize of [1, 2, 3]) {
      const got = run(setup.x0, conditions, { startLayer: 'conv2', chunkSize });
      keeps.forEach((keep, i) => {
        const hand = handChain(
          setup.crp.attributor,
          setup.x0,
          (a) => tf.clone(a),
          [{ layer: 'conv1', mask: maskOf(keep) }],
          'conv2',
        );
        expectNonZero(hand.heatmap);
        expectClose(got.heatmaps[i]!, hand.heatmap, 1e-5);
        expectClose(got.predictionRows[i]!, activationOf(setup.model, 'conv2', setup.x0), 1e-6);
      });
    }
  });
});

describe('initial relevance', () => {
  test('by default is the logit at each y index (recorded at the output layer)', () => {
    const logits = logitsOf(setup.model, setup.x0);
    const got = run(setup.x0, [{ y: [0, 2] }, { y: [1] }], { recordLayers: ['dense2'] });
    expect(logits[0]! * logits[1]! * logits[2]!).not.toBe(0);
    expectClose(got.relevances.dense2![0]!, [logits[0]!, 0, logits[2]!], 1e-6);
    expectClose(got.relevances.dense2![1]!, [0, logits[1]!, 0], 1e-6);
    // the other entries are exactly zero (+0 or -0)
    expect(
      [got.relevances.dense2![0]![1], got.relevances.dense2![1]![0], got.relevances.dense2![1]![2]].every(
        (v) => v === 0,
      ),
    ).toBe(true);
  });

  test('a number fills the output, then y keeps its entries', () => {
    const got = run(setup.x0, [{ y: [1] }, { y: [0, 2] }], { initRelevance: 1, recordLayers: ['dense2'] });
    expect(Array.from(got.relevances.dense2![0]!)).toEqual([0, 1, 0]);
    expect(Array.from(got.relevances.dense2![1]!)).toEqual([1, 0, 1]);
    const hand1 = handChain(setup.crp.attributor, setup.x0, () => tf.tensor2d([[0, 1, 0]]), []);
    const hand2 = handChain(setup.crp.attributor, setup.x0, () => tf.tensor2d([[1, 0, 1]]), []);
    expectClose(got.heatmaps[0]!, hand1.heatmap, 1e-5);
    expectClose(got.heatmaps[1]!, hand2.heatmap, 1e-5);
    // at a start layer: the activation's shape filled with the number
    const start = run(setup.x0, [{ conv1: [1] }], { startLayer: 'conv2', initRelevance: 2 });
    const hand3 = handChain(
      setup.crp.attributor,
      setup.x0,
      (a) => tf.fill(a.shape, 2),
      [{ layer: 'conv1', mask: maskOf([1]) }],
      'conv2',
    );
    expectNonZero(hand3.heatmap);
    expectClose(start.heatmaps[0]!, hand3.heatmap, 1e-5);
  });

  test('a function is applied to the prediction (tf.abs gives |logit|)', () => {
    const logits = logitsOf(setup.model, setup.x0);
    expect(logits[0]).toBeLessThan(0);
    const got = run(setup.x0, [{ y: [0, 1] }, { y: [0], conv2: [2] }], {
      initRelevance: tf.abs,
      recordLayers: ['dense2'],
    });
    expectClose(got.relevances.dense2![0]!, [Math.abs(logits[0]!), Math.abs(logits[1]!), 0], 1e-6);
    const abs = (ys: number[]) => (p: tf.Tensor) => tf.tidy(() => keepLogits(ys)(tf.abs(p)));
    const hand1 = handChain(setup.crp.attributor, setup.x0, abs([0, 1]), []);
    const hand2 = handChain(setup.crp.attributor, setup.x0, abs([0]), [
      { layer: 'conv2', mask: maskOf([2]) },
    ]);
    expectNonZero(hand2.heatmap);
    expectClose(got.heatmaps[0]!, hand1.heatmap, 1e-5);
    expectClose(got.heatmaps[1]!, hand2.heatmap, 1e-5);
    // |logit| at a negative logit flips the sign of the heatmap
    const plain = handChain(setup.crp.attributor, setup.x0, keepLogits([0]), [
      { layer: 'conv2', mask: maskOf([2]) },
    ]);
    expectClose(
      hand2.heatmap,
      plain.heatmap.map((v) => -v),
      1e-5,
    );
  });

  test('a tensor of batch 1 applies to every row; one row per image follows the rows', () => {
    const one = tf.tensor2d([[0.5, -2, 3]]);
    const perImage = tf.tensor2d([
      [1, 2, 3],
      [-4, 5, -6],
    ]);
    try {
      // broadcast group (N = 2, K = 3) and paired group (N = K = 2)
      const conditions: Condition[] = [
        { y: [1, 2] },
        { y: [0] },
        { y: [2] },
        { y: [0], conv1: [1] },
        { y: [2], conv1: [0] },
      ];
      for (const [given, rowOf] of [
        [one, () => [0.5, -2, 3]],
        [perImage, (image: number) => (image === 0 ? [1, 2, 3] : [-4, 5, -6])],
      ] as const) {
        const got = run(setup.x, conditions, { initRelevance: given, recordLayers: ['dense2'] });
        expect(got.rows.length).toBe(8);
        got.rows.forEach(({ image, condition }, r) => {
          const c = conditions[condition]!;
          const init = rowOf(image).map((v, k) => (c.y!.includes(k) ? v : 0));
          expectClose(got.relevances.dense2![r]!, init, 0, 0);
          const steps = c.conv1 === undefined ? [] : [{ layer: 'conv1', mask: maskOf([...c.conv1]) }];
          const hand = handChain(
            setup.crp.attributor,
            image === 0 ? setup.x0 : setup.x1,
            () => tf.tensor2d([init]),
            steps,
          );
          expectNonZero(hand.heatmap);
          expectClose(got.heatmaps[r]!, hand.heatmap, 1e-5);
        });
      }
      // the caller's tensors are left alone
      expect(one.isDisposed).toBe(false);
      expect(perImage.isDisposed).toBe(false);
    } finally {
      one.dispose();
      perImage.dispose();
    }
  });

  test('a tensor at a start layer, of batch 1 or per image, with paired and broadcast rows', () => {
    const shape = [H, W, 4];
    const size = H * W * 4;
    const a = tf.tensor(
      Array.from({ length: size }, (_, i) => ((i * 7) % 11) / 10 - 0.3),
      [1, ...shape],
    );
    const b = tf.tensor(
      Array.from({ length: 2 * size }, (_, i) => ((i * 5) % 13) / 10 - 0.5),
      [2, ...shape],
    );
    try {
      for (const given of [a, b]) {
        for (const conditions of [[{ conv1: [0] }, { conv1: [2] }], [{ conv1: [1] }]] as Condition[][]) {
          const got = run(setup.x, conditions, { startLayer: 'conv2', initRelevance: given });
          got.rows.forEach(({ image, condition }, r) => {
            const init = () => tf.slice(given, [given.shape[0] === 1 ? 0 : image], [1]);
            const hand = handChain(
              setup.crp.attributor,
              image === 0 ? setup.x0 : setup.x1,
              init,
              [{ layer: 'conv1', mask: maskOf([...conditions[condition]!.conv1!]) }],
              'conv2',
            );
            expectNonZero(hand.heatmap);
            expectClose(got.heatmaps[r]!, hand.heatmap, 1e-5);
          });
        }
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  test('several y indices keep each logit, with or without masks', () => {
    const got = run(setup.x1, [
      { y: [0, 1, 2], dense1: [0] },
      { y: [0], dense1: [0] },
      { y: [1], dense1: [0] },
      { y: [2], dense1: [0] },
    ]);
    const sum = got.heatmaps[1]!.map((v, i) => v + got.heatmaps[2]![i]! + got.heatmaps[3]![i]!);
    expectNonZero(sum);
    expectClose(got.heatmaps[0]!, sum, 1e-5);
    expect(CLASSES).toBe(3);
    expectIdentical(got.predictionRows[0]!, got.predictionRows[1]!);
  });
});

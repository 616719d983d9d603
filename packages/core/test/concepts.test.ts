/**
 * ChannelConcept: per-row channel relevance (absNorm true/false), masks, the receptive-field mask of one
 * position of one channel, and other concept kinds plugged in through `maskMap`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import {
  ChannelConcept,
  type Concept,
  type ConceptMask,
  CondAttribution,
  type Condition,
  type CondRunOptions,
  disposeCondResult,
  NeuronConcept,
} from '../src/index.js';
import {
  buildModel,
  CONV_CHANNELS,
  channelMask,
  expectClose,
  expectCrpError,
  expectIdentical,
  expectNonZero,
  H,
  handChain,
  images,
  keepLogits,
  row,
  useCondSetup,
  useWasm,
  values,
  W,
} from './helpers.js';

useWasm();

const setup = useCondSetup(3);
const concept = new ChannelConcept();

/** Per row and channel, the sum over all other axes, by hand. */
function channelSums(t: tf.Tensor): number[][] {
  const v = values(t);
  const rows = t.shape[0]!;
  const c = t.shape[t.rank - 1]!;
  const per = v.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    const s = new Array<number>(c).fill(0);
    for (let i = 0; i < per; i++) s[i % c]! += v[r * per + i]!;
    return s;
  });
}

function absNormalise(rows: number[][]): number[][] {
  return rows.map((r) => {
    const total = r.reduce((a, v) => a + Math.abs(v), 0);
    return r.map((v) => v / (total + 1e-10));
  });
}

function run(input: tf.Tensor, conditions: readonly Condition[], options: CondRunOptions = {}) {
  const result = setup.crp.run(input, conditions, options);
  try {
    return {
      heatmap: row(result.heatmap!, 0),
      heatmaps: Array.from({ length: result.rows.length }, (_, r) => row(result.heatmap!, r)),
      relevances: Object.fromEntries(Object.entries(result.relevances).map(([k, t]) => [k, values(t)])),
    };
  } finally {
    disposeCondResult(result);
  }
}

describe('ChannelConcept.attribute', () => {
  test('on a hand-made tensor: per-row channel sums, and with absNorm divided by the sum of |.| + 1e-10', () => {
    // [2 rows, 2, 2, 3 channels]; channel sums of row 0: 1 + 3 - 4 + 0.5, -2 + 0 + 2 + 1, 0.5 - 1 + 0.25 + 0.25;
    // row 1 is all zero (absNorm must give zeros, not NaN)
    const data = [1, -2, 0.5, 3, 0, -1, -4, 2, 0.25, 0.5, 1, 0.25, ...new Array<number>(12).fill(0)];
    const t = tf.tensor4d(data, [2, 2, 2, 3]);
    const plain = concept.attribute(t);
    const off = concept.attribute(t, { absNorm: false });
    const norm = concept.attribute(t, { absNorm: true });
    try {
      expect(plain.shape).toEqual([2, 3]);
      expectClose(plain, [0.5, 1, 0, 0, 0, 0], 1e-7);
      expectIdentical(off, plain);
      expectClose(norm, [0.5 / 1.5, 1 / 1.5, 0, 0, 0, 0], 1e-6);
      // the input is left alone
      expect(t.isDisposed).toBe(false);
      // a [rows, C] (dense) relevance: the values themselves; the result is the caller's own tensor
      const dense = tf.tensor2d([
        [2, -1, 1],
        [0, 0, 0],
      ]);
      for (const absNorm of [false, true]) {
        const s = concept.attribute(dense, { absNorm });
        expect(s).not.toBe(dense);
        expectClose(s, absNorm ? [0.5, -0.25, 0.25, 0, 0, 0] : [2, -1, 1, 0, 0, 0], 1e-6);
        s.dispose();
      }
      expect(dense.isDisposed).toBe(false);
      dense.dispose();
    } finally {
      for (const u of [t, plain, off, norm]) u.dispose();
    }
  });

  test('on recorded conv and dense relevances of a batched run', () => {
    const result = setup.crp.run(setup.x, [{ y: [0] }, { y: [2], conv2: [1] }, { y: [1], dense1: [0, 2] }], {
      recordLayers: ['conv2', 'conv1', 'dense1'],
    });
    try {
      for (const layer of ['conv2', 'conv1', 'dense1']) {
        const rel = result.relevances[layer]!;
        const hand = channelSums(rel);
        expectNonZero(hand.flat(), `channel relevance at ${layer}`);
        for (const absNorm of [false, true]) {
          const got = concept.attribute(rel, { absNorm });
          try {
            expect(got.shape).toEqual([result.rows.length, rel.shape[rel.rank - 1]!]);
            const want = absNorm ? absNormalise(hand) : hand;
            want.forEach((w, r) => {
              expectClose(row(got, r), w, 1e-5);
            });
            if (absNorm) {
              for (let r = 0; r < result.rows.length; r++) {
                const s = row(got, r).reduce((a, v) => a + Math.abs(v), 0);
                expect(s).toBeCloseTo(1, 5);
              }
            }
          } finally {
            got.dispose();
          }
        }
      }
    } finally {
      disposeCondResult(result);
    }
  });

  test('mask and count: ones at the listed channels, broadcasting over positions', () => {
    expect(concept.count([H, W, CONV_CHANNELS])).toBe(CONV_CHANNELS);
    const m = concept.mask([0, 3], [H, W, 4]);
    expect(m.shape).toEqual([1, 1, 4]);
    expect(Array.from(m.data)).toEqual([1, 0, 0, 1]);
    const d = concept.mask([], [5]);
    expect(d.shape).toEqual([5]);
    expect(Array.from(d.data)).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('ChannelConcept.receptiveField', () => {
  test('its mask keeps exactly one position of one channel', () => {
    const rf = ChannelConcept.receptiveField(2, [3, 4]);
    const m = rf.mask([2], [H, W, CONV_CHANNELS]);
    expect(m.shape).toEqual([H, W, CONV_CHANNELS]);
    const ones = Array.from(m.data.keys()).filter((i) => m.data[i] !== 0);
    expect(ones).toEqual([(3 * W + 4) * CONV_CHANNELS + 2]);
    expect(m.data[ones[0]!]).toBe(1);
    // the flat index h * W + w names the same position
    expect(
      Array.from(ChannelConcept.receptiveField(2, 3 * W + 4).mask([], [H, W, CONV_CHANNELS]).data),
    ).toEqual(Array.from(m.data));
    expect(rf.count([H, W, CONV_CHANNELS])).toBe(CONV_CHANNELS);
  });

  test('rejects positions outside the map and channels out of range', () => {
    expectCrpError(
      () => ChannelConcept.receptiveField(0, [H, 0]).validate([0], [H, W, 4], 'conv2'),
      'invalid-argument',
      'outside',
    );
    expectCrpError(
      () => ChannelConcept.receptiveField(0, H * W).validate([0], [H, W, 4], 'conv2'),
      'invalid-argument',
      'outside',
    );
    expectCrpError(
      () => ChannelConcept.receptiveField(4, [0, 0]).validate([0], [H, W, 4], 'conv2'),
      'invalid-argument',
      '0..3',
    );
    expectCrpError(
      () => ChannelConcept.receptiveField(0, [0, 0]).validate([0], [5], 'dense1'),
      'invalid-argument',
      '[H, W, C]',
    );
    // and through the engine, before any tensor is left behind
    const before = tf.memory().numTensors;
    expectCrpError(
      () =>
        setup.crp.run(setup.x0, [{ y: [0], conv2: [1] }], {
          maskMap: { conv2: ChannelConcept.receptiveField(1, [H, 2]) },
        }),
      'invalid-argument',
      'outside',
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  test('the heatmap of one position of one channel equals the manual computation and stays in its receptive field', () => {
    const c = 1;
    // the position of conv2 with the largest relevance, so that the test is not vacuous
    const yOnly = run(setup.x0, [{ y: [c] }], { recordLayers: ['conv2'] });
    const conv2 = yOnly.relevances.conv2!;
    let best = 0;
    for (let i = 1; i < conv2.length; i++) if (Math.abs(conv2[i]!) > Math.abs(conv2[best]!)) best = i;
    const channel = best % CONV_CHANNELS;
    const flat = Math.floor(best / CONV_CHANNELS);
    const [h, w] = [Math.floor(flat / W), flat % W];
    const rf = ChannelConcept.receptiveField(channel, [h, w]);
    for (const maskMap of [{ conv2: rf }, (layer: string) => (layer === 'conv2' ? rf : concept)]) {
      const got = run(setup.x0, [{ y: [c], conv2: [channel] }], {
        maskMap,
        recordLayers: ['conv2', 'conv1'],
      });
      const hand = handChain(setup.crp.attributor, setup.x0, keepLogits([c]), [
        {
          layer: 'conv2',
          mask: (s) => {
            const m = new Float32Array(s.reduce((a, d) => a * d, 1));
            m[(h * W + w) * CONV_CHANNELS + channel] = 1;
            return tf.tensor(m, [1, ...s]);
          },
        },
      ]);
      expectNonZero(hand.heatmap);
      expectClose(got.heatmap, hand.heatmap, 1e-5);
      // recorded at conv2: before the mask (all positions)
      expectIdentical(got.relevances.conv2!, conv2);
      // two 3x3 convolutions: the input relevance lies within 2 pixels of (h, w)
      got.heatmap.forEach((v, i) => {
        const [py, px] = [Math.floor(i / W), i % W];
        if (Math.abs(py - h) > 2 || Math.abs(px - w) > 2) expect(v).toBe(0);
      });
      // conv1 relevance lies within 1 pixel of (h, w)
      got.relevances.conv1!.forEach((v, i) => {
        const p = Math.floor(i / CONV_CHANNELS);
        const [py, px] = [Math.floor(p / W), p % W];
        if (Math.abs(py - h) > 1 || Math.abs(px - w) > 1) expect(v).toBe(0);
      });
    }
  });
});

describe('other concept kinds', () => {
  /** Concept g = channels 2g and 2g + 1. */
  class ChannelPairs implements Concept {
    readonly name = 'ChannelPairs';
    count(shape: readonly number[]): number {
      return Math.floor(shape[shape.length - 1]! / 2);
    }
    validate(indices: readonly number[], shape: readonly number[], layer: string): void {
      concept.validate(
        indices.flatMap((g) => [2 * g, 2 * g + 1]),
        shape,
        layer,
      );
    }
    mask(indices: readonly number[], shape: readonly number[]): ConceptMask {
      return concept.mask(
        indices.flatMap((g) => [2 * g, 2 * g + 1]),
        shape,
      );
    }
    attribute(relevance: tf.Tensor): tf.Tensor2D {
      return tf.tidy(() => {
        const s = concept.attribute(relevance);
        const c = s.shape[1];
        return tf.sum(tf.reshape(s, [s.shape[0], c / 2, 2]), 2) as tf.Tensor2D;
      });
    }
  }

  test('plug in through maskMap without touching the engine', () => {
    const pairs = new ChannelPairs();
    const got = run(
      setup.x0,
      [
        { y: [2], conv2: [1] },
        { y: [2], conv2: [0, 1] },
      ],
      { maskMap: { conv2: pairs } },
    );
    const same = run(setup.x0, [
      { y: [2], conv2: [2, 3] },
      { y: [2], conv2: [0, 1, 2, 3] },
    ]);
    expectNonZero(got.heatmaps[0]!);
    expectIdentical(got.heatmaps[0]!, same.heatmaps[0]!);
    expectIdentical(got.heatmaps[1]!, same.heatmaps[1]!);
    const hand = handChain(setup.crp.attributor, setup.x0, keepLogits([2]), [
      { layer: 'conv2', mask: (s) => channelMask(s, [2, 3]) },
    ]);
    expectClose(got.heatmaps[0]!, hand.heatmap, 1e-5);
    // the concept's own validation applies: pair 2 would be channels 4 and 5 of a 4-channel layer
    expectCrpError(
      () => setup.crp.run(setup.x0, [{ y: [2], conv2: [2] }], { maskMap: { conv2: pairs } }),
      'invalid-argument',
      '0..3',
    );
  });
});

describe('NeuronConcept', () => {
  test('masks single values by their flat NHWC index, one neuron per condition row, in one pass', () => {
    const model = buildModel();
    const crp = new CondAttribution(model);
    const x = images(1);
    try {
      const shape = [H, W, CONV_CHANNELS];
      expect(NeuronConcept.index(2, [1, 3], shape)).toBe((1 * W + 3) * CONV_CHANNELS + 2);
      // two active neurons of conv2 (a dead ReLU would send nothing down)
      const pass = crp.attributor.forward(x);
      const act = values(pass.output('conv2'));
      pass.dispose();
      const picks: [number, [number, number]][] = [];
      for (let i = 0; i < act.length && picks.length < 2; i += 7) {
        const c = i % CONV_CHANNELS;
        const p = Math.floor(i / CONV_CHANNELS);
        if (act[i]! > 0 && !picks.some(([pc]) => pc === c)) picks.push([c, [Math.floor(p / W), p % W]]);
      }
      expect(picks).toHaveLength(2);
      const neurons = picks.map(([c, p]) => NeuronConcept.index(c, p, shape));
      const together = crp.run(
        x,
        neurons.map((n) => ({ conv2: [n] })),
        {
          startLayer: 'conv2',
          excludeParallel: false,
          maskMap: { conv2: new NeuronConcept() },
        },
      );
      // each row equals the receptive-field concept of that neuron run alone
      const alone = picks.map(([c, p]) =>
        crp.run(x, [{ conv2: [c] }], {
          startLayer: 'conv2',
          excludeParallel: false,
          maskMap: { conv2: ChannelConcept.receptiveField(c, p) },
        }),
      );
      alone.forEach((r, i) => {
        expectClose(row(together.heatmap!, i), values(r.heatmap!), 1e-6);
        expectNonZero(row(together.heatmap!, i), `neuron ${i}`);
      });
      for (const r of [together, ...alone]) disposeCondResult(r);
      expectCrpError(
        () =>
          crp.run(x, [{ conv2: [H * W * CONV_CHANNELS] }], {
            startLayer: 'conv2',
            maskMap: { conv2: new NeuronConcept() },
          }),
        'invalid-argument',
        /neuron 144 is out of range/,
      );
    } finally {
      x.dispose();
      crp.dispose();
      model.dispose();
    }
  });
});

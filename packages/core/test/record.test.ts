/**
 * Recorded relevances (the value before a layer's own mask, masked flow below, y-only flow above) and
 * `heatmap: false` (the backward pass stops at the lowest recorded layer with the same numbers).
 */
import { type Composite, epsilonPlusFlat, type Rule } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  CondAttribution,
  type CondAttributionResult,
  type Condition,
  disposeCondResult,
} from '../src/index.js';
import {
  buildModel,
  CONV_CHANNELS,
  channelMask,
  expectClose,
  expectIdentical,
  expectNonZero,
  handChain,
  imageAt,
  images,
  keepLogits,
  maxAbs,
  row,
  useWasm,
  values,
} from './helpers.js';

useWasm();

/** EpsilonPlusFlat whose rules count how often each layer's relevance is computed. */
function countingComposite(): { composite: Composite; calls: Map<string, number> } {
  const base = epsilonPlusFlat();
  const calls = new Map<string, number>();
  const composite: Composite = {
    name: 'counting EpsilonPlusFlat',
    ruleFor(node, graph) {
      const rule = base.ruleFor(node, graph);
      if (rule === undefined) return undefined;
      const counted: Rule = {
        name: rule.name,
        params: rule.params,
        prepare(ctx) {
          const prepared = rule.prepare(ctx);
          return {
            backward(r) {
              calls.set(node.id, (calls.get(node.id) ?? 0) + 1);
              return prepared.backward(r);
            },
            dispose: () => prepared.dispose(),
          };
        },
      };
      return counted;
    },
  };
  return { composite, calls };
}

let model: tfl.LayersModel;
let crp: CondAttribution;
let calls: Map<string, number>;
let x: tf.Tensor;
let x0: tf.Tensor;

beforeAll(() => {
  model = buildModel();
  const counting = countingComposite();
  calls = counting.calls;
  crp = new CondAttribution(model, { composite: counting.composite });
  x = images(2, 5);
  x0 = imageAt(x, 0);
});

afterAll(() => {
  crp.dispose();
  x.dispose();
  x0.dispose();
  model.dispose();
});

const ALL_LAYERS = ['dense2', 'dense1', 'flat', 'pool', 'conv2', 'conv1'];
const ones = (s: readonly number[]) =>
  channelMask(
    s,
    Array.from({ length: s[s.length - 1]! }, (_, i) => i),
  );

function recorded(input: tf.Tensor, conditions: readonly Condition[], recordLayers = ALL_LAYERS) {
  const result = crp.run(input, conditions, { recordLayers });
  try {
    return Object.fromEntries(Object.entries(result.relevances).map(([k, t]) => [k, values(t)]));
  } finally {
    disposeCondResult(result);
  }
}

/** The values of channel `k` (last axis) of a flat NHWC array with `c` channels. */
function channelValues(v: Float64Array, c: number, k: number): number[] {
  return Array.from(v).filter((_, i) => i % c === k);
}

describe('recorded relevance', () => {
  test('at a masked layer is the value before the mask; below is the masked flow; above equals the y-only run', () => {
    const k = 1;
    const yOnly = recorded(x0, [{ y: [2] }]);
    const masked = recorded(x0, [{ y: [2], conv2: [k] }]);
    // above conv2 (towards the output): exactly the y-only relevance
    for (const layer of ['dense2', 'dense1', 'flat', 'pool']) {
      expectNonZero(yOnly[layer]!, `y-only relevance at ${layer}`);
      expectIdentical(masked[layer]!, yOnly[layer]!);
    }
    // at conv2: the value before conv2's mask, other channels included
    expectIdentical(masked.conv2!, yOnly.conv2!);
    const others = [0, 2, 3].map((c) => maxAbs(channelValues(masked.conv2!, CONV_CHANNELS, c)));
    expect(Math.max(...others)).toBeGreaterThan(1e-6);
    // below conv2: the flow of channel k only
    const hand = handChain(crp.attributor, x0, keepLogits([2]), [
      { layer: 'conv2', mask: (s) => channelMask(s, [k]) },
      { layer: 'conv1', mask: ones },
    ]);
    expectClose(hand.arriving.conv2!, yOnly.conv2!, 1e-6);
    expectNonZero(hand.arriving.conv1!);
    expectClose(masked.conv1!, hand.arriving.conv1!, 1e-5);
    expect(maxAbs(masked.conv1!.map((v, i) => v - yOnly.conv1![i]!))).toBeGreaterThan(1e-6);
  });

  test('with two masked layers each records the flow masked above it but not by itself', () => {
    const yOnly = recorded(x0, [{ y: [0] }]);
    // keep all but one of the dense1 units that carry relevance, so that the dense1 mask removes something
    const alive = Array.from(yOnly.dense1!.keys()).filter((u) => Math.abs(yOnly.dense1![u]!) > 1e-6);
    expect(alive.length).toBeGreaterThanOrEqual(2);
    const keep = alive.slice(0, -1);
    const condition = { y: [0], dense1: keep, conv2: [3] };
    const got = recorded(x0, [condition]);
    const hand = handChain(crp.attributor, x0, keepLogits([0]), [
      { layer: 'dense1', mask: (s) => channelMask(s, keep) },
      { layer: 'pool', mask: ones },
      { layer: 'conv2', mask: (s) => channelMask(s, [3]) },
      { layer: 'conv1', mask: ones },
    ]);
    expectIdentical(got.dense2!, yOnly.dense2!);
    // dense1 is recorded before its own mask: the dropped unit still carries relevance
    expectIdentical(got.dense1!, yOnly.dense1!);
    expect(Math.abs(got.dense1![alive.at(-1)!]!)).toBeGreaterThan(1e-6);
    // conv2: masked by dense1 above, not yet by its own mask (other channels non-zero)
    const others = [0, 1, 2].map((c) => maxAbs(channelValues(got.conv2!, CONV_CHANNELS, c)));
    expect(Math.max(...others)).toBeGreaterThan(1e-6);
    for (const layer of ['pool', 'conv2', 'conv1']) {
      expectNonZero(hand.arriving[layer]!, `hand relevance at ${layer}`);
      expectClose(got[layer]!, hand.arriving[layer]!, 1e-5);
      expect(maxAbs(got[layer]!.map((v, i) => v - yOnly[layer]![i]!))).toBeGreaterThan(1e-6);
    }
  });

  test('recorded rows follow the rows of a batched run', () => {
    const conditions: Condition[] = [
      { y: [1], conv2: [0] },
      { y: [1], conv2: [2] },
      { y: [0], conv2: [1] },
    ];
    const result = crp.run(x, conditions, { recordLayers: ['conv1', 'pool'] });
    try {
      // 2 images x 3 conditions of one key set: 6 rows, image-major (an empty row list must not pass)
      expect(result.rows.map((r) => [r.image, r.condition])).toEqual([
        [0, 0],
        [0, 1],
        [0, 2],
        [1, 0],
        [1, 1],
        [1, 2],
      ]);
      expect(result.relevances.conv1!.shape[0]).toBe(6);
      expect(result.relevances.pool!.shape[0]).toBe(6);
      result.rows.forEach(({ image, condition }, r) => {
        const one = imageAt(x, image);
        const single = recorded(one, [conditions[condition]!], ['conv1', 'pool']);
        one.dispose();
        expectClose(row(result.relevances.conv1!, r), single.conv1!, 1e-6);
        expectClose(row(result.relevances.pool!, r), single.pool!, 1e-6);
      });
    } finally {
      disposeCondResult(result);
    }
  });
});

describe('heatmap: false', () => {
  const CONDITIONS: Condition[] = [
    { y: [2], conv2: [1] },
    { y: [0] },
    { y: [1], dense1: [0, 2] },
    { y: [2], conv2: [0, 3] },
  ];

  function snapshot(result: CondAttributionResult) {
    return {
      prediction: Array.from(result.prediction.dataSync()),
      relevances: Object.fromEntries(
        Object.entries(result.relevances).map(([k, t]) => [k, Array.from(t.dataSync())]),
      ),
      rows: result.rows,
    };
  }

  function counted<T>(fn: () => T): { value: T; calls: Map<string, number> } {
    calls.clear();
    const value = fn();
    return { value, calls: new Map(calls) };
  }

  test('stops at the lowest recorded layer and records the same relevances as the full run', () => {
    for (const recordLayers of [['conv2'], ['pool', 'conv2', 'dense1'], ['dense1']]) {
      const full = counted(() => crp.run(x, CONDITIONS, { recordLayers }));
      const part = counted(() => crp.run(x, CONDITIONS, { recordLayers, heatmap: false }));
      try {
        expect(part.value.heatmap).toBeNull();
        expect(full.value.heatmap).not.toBeNull();
        const a = snapshot(part.value);
        const b = snapshot(full.value);
        expect(Object.keys(a.relevances).sort()).toEqual([...recordLayers].sort());
        for (const layer of recordLayers) expectNonZero(a.relevances[layer]!, `relevance at ${layer}`);
        expect(a).toEqual(b);
        // the full run reaches conv1 (the first layer); the partial one never computes below its lowest recorded layer
        expect(full.calls.get('conv1') ?? 0).toBeGreaterThan(0);
        expect(part.calls.get('conv1') ?? 0).toBe(0);
        const lowest = recordLayers.includes('conv2') ? 'conv2' : 'dense1';
        expect(part.calls.get(lowest) ?? 0).toBe(0);
        expect(part.calls.get('dense2') ?? 0).toBeGreaterThan(0);
      } finally {
        disposeCondResult(full.value);
        disposeCondResult(part.value);
      }
    }
  });

  test('leaves no tensor behind when the lowest recorded layer is masked by the condition', () => {
    const warm = crp.run(x, CONDITIONS, { recordLayers: ['conv2'], heatmap: false });
    disposeCondResult(warm);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      disposeCondResult(crp.run(x, CONDITIONS, { recordLayers: ['conv2'], heatmap: false }));
      disposeCondResult(crp.run(x, CONDITIONS, { recordLayers: ['conv2', 'dense1'], heatmap: false }));
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('rows of one image with the same y', () => {
  /** EpsilonPlusFlat whose rules note the batch of the relevance each layer receives. */
  function batchRecording(): { composite: Composite; batch: Map<string, number> } {
    const base = epsilonPlusFlat();
    const batch = new Map<string, number>();
    const composite: Composite = {
      name: 'batch-recording EpsilonPlusFlat',
      ruleFor(node, graph) {
        const rule = base.ruleFor(node, graph);
        if (rule === undefined) return undefined;
        return {
          name: rule.name,
          params: rule.params,
          prepare(ctx) {
            const prepared = rule.prepare(ctx);
            return {
              backward(r, hint) {
                batch.set(node.id, r.shape[0]!);
                return prepared.backward(r, hint);
              },
              dispose: () => prepared.dispose(),
            };
          },
        };
      },
    };
    return { composite, batch };
  }

  test('share one backward pass above the first conditioned layer; each row equals its own run', () => {
    const conditions: Condition[] = [
      { y: [1], conv2: [0] },
      { y: [1], conv2: [2] },
      { y: [1], conv2: [1, 3] },
    ];
    const layers = ['dense1', 'pool', 'conv2', 'conv1'];
    const alone = conditions.map((condition) => {
      const one = crp.run(x0, [condition], { recordLayers: layers });
      const got = {
        heatmap: values(one.heatmap!),
        ...Object.fromEntries(layers.map((l) => [l, values(one.relevances[l]!)])),
      };
      disposeCondResult(one);
      return got as Record<string, Float64Array>;
    });
    const before = tf.memory().numTensors;
    const { composite, batch } = batchRecording();
    const shared = new CondAttribution(model, { composite });
    const result = shared.run(x0, conditions, { recordLayers: layers });
    try {
      // above conv2 the rows are equal: one row; from conv2's mask down, three
      expect(batch.get('dense1')).toBe(1);
      expect(batch.get('dense2')).toBe(1);
      expect(batch.get('conv1')).toBe(3);
      expect(result.heatmap!.shape[0]).toBe(3);
      for (const layer of layers) expect(result.relevances[layer]!.shape[0]).toBe(3);
      alone.forEach((expected, r) => {
        expectClose(row(result.heatmap!, r), expected.heatmap!, 1e-6);
        for (const layer of layers) expectClose(row(result.relevances[layer]!, r), expected[layer]!, 1e-6);
      });
    } finally {
      disposeCondResult(result);
      shared.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  test('different y: every row from the output on, with the same numbers as alone', () => {
    const { composite, batch } = batchRecording();
    const separate = new CondAttribution(model, { composite });
    const conditions: Condition[] = [
      { y: [1], conv2: [0] },
      { y: [2], conv2: [0] },
    ];
    const result = separate.run(x0, conditions);
    try {
      expect(batch.get('dense1')).toBe(2);
      conditions.forEach((condition, r) => {
        const alone = crp.run(x0, [condition]);
        expectClose(row(result.heatmap!, r), values(alone.heatmap!), 1e-6);
        disposeCondResult(alone);
      });
    } finally {
      disposeCondResult(result);
      separate.dispose();
    }
  });
});

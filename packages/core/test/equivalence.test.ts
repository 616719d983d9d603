/**
 * Equivalences of the conditional backward pass: plain LRP, linearity over channels, all/no channels,
 * two masked layers against a hand-chained computation, and the order of layers inside a condition.
 */
import { Attributor, disposeResult } from '@crp/lrp';
import type * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { type Condition, disposeCondResult } from '../src/index.js';
import {
  CLASSES,
  CONV_CHANNELS,
  channelMask,
  channelSum,
  DENSE1_UNITS,
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

const setup = useCondSetup();

/** Heatmap rows of one run; the result is disposed. */
function heatmaps(input: tf.Tensor, conditions: readonly Condition[]): Float64Array[] {
  const result = setup.crp.run(input, conditions);
  try {
    return heatmapRows(result);
  } finally {
    disposeCondResult(result);
  }
}

function addInto(acc: Float64Array, v: ArrayLike<number>): void {
  for (let i = 0; i < acc.length; i++) acc[i]! += v[i]!;
}

const LAYER_SIZES: [string, number][] = [
  ['conv1', CONV_CHANNELS],
  ['conv2', CONV_CHANNELS],
  ['dense1', DENSE1_UNITS],
];

describe('a condition { y: [c] } alone', () => {
  test('reproduces Attributor.attribute(..., { target: c }) summed over the colour channels, for every image and class', () => {
    // an independent attributor with the same (default) composite and canonizers
    const lrp = new Attributor(setup.model);
    const conditions = [{ y: [0] }, { y: [1] }, { y: [2] }];
    const result = setup.crp.run(setup.x, conditions);
    try {
      expect(result.heatmap!.shape).toEqual([2 * CLASSES, H, W]);
      const logits = logitsOf(setup.model, setup.x);
      for (let c = 0; c < CLASSES; c++) {
        const plain = lrp.attribute(setup.x, { target: c });
        try {
          const expected = channelSum(plain.relevance);
          for (let image = 0; image < 2; image++) {
            // N = 2 images, K = 3 conditions: image-major rows
            const r = image * CLASSES + c;
            expect(result.rows[r]).toEqual({ image, condition: c });
            const want = expected.slice(image * H * W, (image + 1) * H * W);
            expectNonZero(want, `LRP heatmap of image ${image} class ${c}`);
            expectClose(row(result.heatmap!, r), want, 1e-5);
            expectClose(
              row(result.prediction, r),
              logits.slice(image * CLASSES, (image + 1) * CLASSES),
              1e-6,
            );
          }
        } finally {
          disposeResult(plain);
        }
      }
    } finally {
      disposeCondResult(result);
      lrp.dispose();
    }
  });

  test('with several y indices keeps each logit: the heatmap is the sum of the single-index heatmaps', () => {
    const [both, only0, only2] = heatmaps(setup.x0, [{ y: [0, 2] }, { y: [0] }, { y: [2] }]) as [
      Float64Array,
      Float64Array,
      Float64Array,
    ];
    const sum = new Float64Array(both.length);
    addInto(sum, only0);
    addInto(sum, only2);
    expectClose(both, sum, 1e-5);
    const hand = handChain(setup.crp.attributor, setup.x0, keepLogits([0, 2]), []);
    expectClose(both, hand.heatmap, 1e-5);
  });
});

describe('linearity of the masked backward pass', () => {
  for (const [layer, size] of LAYER_SIZES) {
    test(`the single-channel conditions over all channels of ${layer} sum to the unconditioned heatmap`, () => {
      for (const c of [0, 2]) {
        const conditions: Condition[] = [
          { y: [c] },
          ...Array.from({ length: size }, (_, k) => ({ y: [c], [layer]: [k] })),
        ];
        const [full, ...parts] = heatmaps(setup.x0, conditions) as [Float64Array, ...Float64Array[]];
        expectNonZero(full, 'the y-only heatmap');
        // at least two channels contribute, and they differ: the masks do select something
        const contributing = parts.filter((p) => maxAbs(p) > 1e-6);
        expect(contributing.length).toBeGreaterThanOrEqual(2);
        expect(maxAbs(contributing[0]!.map((v, i) => v - contributing[1]![i]!))).toBeGreaterThan(1e-6);
        const sum = new Float64Array(full.length);
        for (const p of parts) addInto(sum, p);
        expectClose(sum, full, 1e-5);
      }
    });
  }

  test('a single-channel condition equals the hand computation (backward to the layer, mask, backward to the input)', () => {
    for (const [layer, k] of [
      ['conv2', 1],
      ['conv1', 3],
      ['dense1', 2],
    ] as const) {
      const [got] = heatmaps(setup.x0, [{ y: [1], [layer]: [k] }]) as [Float64Array];
      const hand = handChain(setup.crp.attributor, setup.x0, keepLogits([1]), [
        { layer, mask: (s) => channelMask(s, [k]) },
      ]);
      expectNonZero(hand.heatmap, `hand heatmap through ${layer}:${k}`);
      expectClose(got, hand.heatmap, 1e-5);
    }
  });
});

describe('all and no channels', () => {
  test('a condition listing every channel of a layer equals { y: [c] }', () => {
    for (const [layer, size] of LAYER_SIZES) {
      const all = Array.from({ length: size }, (_, k) => k);
      const [yOnly, allChannels, reversed] = heatmaps(setup.x0, [
        { y: [1] },
        { y: [1], [layer]: all },
        { y: [1], [layer]: [...all].reverse() },
      ]) as [Float64Array, Float64Array, Float64Array];
      expectClose(allChannels, yOnly, 1e-6);
      expectClose(reversed, yOnly, 1e-6);
    }
  });

  test('an empty list at a layer gives an all-zero heatmap (and the prediction is unchanged)', () => {
    for (const [layer] of LAYER_SIZES) {
      const result = setup.crp.run(setup.x0, [{ y: [0], [layer]: [] }]);
      try {
        expect(Array.from(result.heatmap!.dataSync()).every((v) => v === 0)).toBe(true);
        expectClose(result.prediction, logitsOf(setup.model, setup.x0), 1e-6);
      } finally {
        disposeCondResult(result);
      }
    }
    const [noClass] = heatmaps(setup.x0, [{ y: [] }]) as [Float64Array];
    expect(noClass.every((v) => v === 0)).toBe(true);
  });
});

describe('two masked layers', () => {
  test('equal the hand-chained computation (mask at the upper layer, then at the lower one)', () => {
    const cases: { condition: Condition; steps: [string, number[]][] }[] = [
      {
        condition: { y: [1], dense1: [0, 3], conv2: [2] },
        steps: [
          ['dense1', [0, 3]],
          ['conv2', [2]],
        ],
      },
      {
        condition: { y: [0], conv2: [1, 3], conv1: [0] },
        steps: [
          ['conv2', [1, 3]],
          ['conv1', [0]],
        ],
      },
      {
        condition: { y: [2], conv1: [1, 2], dense1: [4] },
        steps: [
          ['dense1', [4]],
          ['conv1', [1, 2]],
        ],
      },
    ];
    for (const { condition, steps } of cases) {
      const [got] = heatmaps(setup.x0, [condition]) as [Float64Array];
      const hand = handChain(
        setup.crp.attributor,
        setup.x0,
        keepLogits(condition.y!),
        steps.map(([layer, keep]) => ({ layer, mask: (s: readonly number[]) => channelMask(s, keep) })),
      );
      expectNonZero(hand.heatmap, `hand heatmap for ${JSON.stringify(condition)}`);
      expectClose(got, hand.heatmap, 1e-5);
      // and the second mask matters: masking only the upper layer gives something else
      const [upperOnly] = heatmaps(setup.x0, [{ y: condition.y!, [steps[0]![0]]: steps[0]![1] }]) as [
        Float64Array,
      ];
      expect(maxAbs(upperOnly.map((v, i) => v - got[i]!))).toBeGreaterThan(1e-6);
    }
  });

  test('the order of layers inside a condition object does not matter', () => {
    const orders: Condition[] = [
      { y: [0], dense1: [2], conv2: [1] },
      { conv2: [1], y: [0], dense1: [2] },
      { dense1: [2], conv2: [1], y: [0] },
      { conv2: [1], dense1: [2], y: [0] },
    ];
    const result = setup.crp.run(setup.x0, orders);
    try {
      // one key set: one group, rows in the caller's order
      expect(result.rows).toEqual(orders.map((_, condition) => ({ image: 0, condition })));
      const rows = heatmapRows(result);
      for (const r of rows.slice(1)) expectIdentical(r, rows[0]!);
      const hand = handChain(setup.crp.attributor, setup.x0, keepLogits([0]), [
        { layer: 'dense1', mask: (s) => channelMask(s, [2]) },
        { layer: 'conv2', mask: (s) => channelMask(s, [1]) },
      ]);
      expectNonZero(hand.heatmap);
      expectClose(rows[0]!, hand.heatmap, 1e-5);
    } finally {
      disposeCondResult(result);
    }
  });
});

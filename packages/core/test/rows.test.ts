/**
 * Row order: grouping by key set, image-major broadcasting, pairing, `rows` metadata, chunking (chunkSize,
 * the `chunks()` generator and progress).
 */

import type { Progress } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { groupConditions, planGroupRows } from '../src/conditions.js';
import {
  CondAttribution,
  type CondAttributionChunk,
  type CondAttributionResult,
  type Condition,
  disposeCondResult,
  type PlannedRow,
} from '../src/index.js';
import {
  activationOf,
  buildModel,
  CLASSES,
  channelMask,
  expectClose,
  expectIdentical,
  expectNonZero,
  H,
  handChain,
  imageAt,
  images,
  keepLogits,
  logitsOf,
  row,
  useWasm,
  W,
} from './helpers.js';

useWasm();

let model: tfl.LayersModel;
let crp: CondAttribution;
let x2: tf.Tensor;
let x3: tf.Tensor;

beforeAll(() => {
  model = buildModel();
  crp = new CondAttribution(model);
  x2 = images(2, 21);
  x3 = images(3, 33);
});

afterAll(() => {
  crp.dispose();
  x2.dispose();
  x3.dispose();
  model.dispose();
});

/** Two key sets, interleaved: { y } at 0, 2, 4 and { y, conv2 } at 1, 3 (listing the keys in either order). */
const MIXED: Condition[] = [
  { y: [0] },
  { y: [1], conv2: [0] },
  { y: [2] },
  { conv2: [1], y: [0] },
  { y: [1] },
];
/** For 2 images: the { y } group (K = 3) is image-major, the { y, conv2 } group (K = 2) is paired. */
const MIXED_ROWS_2: PlannedRow[] = [
  { image: 0, condition: 0 },
  { image: 0, condition: 2 },
  { image: 0, condition: 4 },
  { image: 1, condition: 0 },
  { image: 1, condition: 2 },
  { image: 1, condition: 4 },
  { image: 0, condition: 1 },
  { image: 1, condition: 3 },
];

/** The expected heatmap of one image under one condition with at most one masked layer, by hand. */
function expectedHeatmap(input: tf.Tensor, image: number, condition: Condition): Float64Array {
  const one = imageAt(input, image);
  try {
    const steps = Object.entries(condition)
      .filter(([k]) => k !== 'y')
      .map(([layer, keep]) => ({ layer, mask: (s: readonly number[]) => channelMask(s, keep) }));
    expect(steps.length).toBeLessThanOrEqual(1);
    return handChain(crp.attributor, one, keepLogits(condition.y!), steps).heatmap;
  } finally {
    one.dispose();
  }
}

function conv1Activation(input: tf.Tensor, image: number): Float64Array {
  const one = imageAt(input, image);
  try {
    return activationOf(model, 'conv1', one);
  } finally {
    one.dispose();
  }
}

/** Every row's heatmap, prediction and conv1 activation against independent computations. */
function checkRows(result: CondAttributionResult, input: tf.Tensor, conditions: readonly Condition[]): void {
  const n = input.shape[0]!;
  const logits = logitsOf(model, input);
  expect(result.heatmap!.shape).toEqual([result.rows.length, H, W]);
  expect(result.prediction.shape).toEqual([result.rows.length, CLASSES]);
  result.rows.forEach(({ image, condition }, r) => {
    expect(image).toBeLessThan(n);
    const want = expectedHeatmap(input, image, conditions[condition]!);
    expectNonZero(want, `row ${r}`);
    expectClose(row(result.heatmap!, r), want, 1e-5);
    expectClose(row(result.prediction, r), logits.slice(image * CLASSES, (image + 1) * CLASSES), 1e-6);
    expectClose(row(result.activations.conv1!, r), conv1Activation(input, image), 1e-6);
  });
}

describe('planning', () => {
  test('groupConditions groups by key set in first-appearance order, keys sorted, conditions in order', () => {
    expect(groupConditions(MIXED)).toEqual([
      { keys: ['y'], conditions: [0, 2, 4] },
      { keys: ['conv2', 'y'], conditions: [1, 3] },
    ]);
    expect(
      groupConditions([{ conv1: [0], y: [1] }, { y: [0] }, { y: [2], conv1: [1] }, { dense1: [0] }]),
    ).toEqual([
      { keys: ['conv1', 'y'], conditions: [0, 2] },
      { keys: ['y'], conditions: [1] },
      { keys: ['dense1'], conditions: [3] },
    ]);
  });

  test('planGroupRows pairs when N == K and is image-major otherwise', () => {
    const g = { keys: ['y'], conditions: [4, 7, 9] };
    expect(planGroupRows(g, 3)).toEqual([
      { image: 0, condition: 4 },
      { image: 1, condition: 7 },
      { image: 2, condition: 9 },
    ]);
    expect(planGroupRows(g, 2)).toEqual([
      { image: 0, condition: 4 },
      { image: 0, condition: 7 },
      { image: 0, condition: 9 },
      { image: 1, condition: 4 },
      { image: 1, condition: 7 },
      { image: 1, condition: 9 },
    ]);
    expect(planGroupRows({ keys: ['y'], conditions: [5] }, 1)).toEqual([{ image: 0, condition: 5 }]);
  });
});

describe('row order of run()', () => {
  test('groups are concatenated group after group; image-major when N != K, paired when N == K', () => {
    const result = crp.run(x2, MIXED, { recordActivations: ['conv1'] });
    try {
      expect(result.rows).toEqual(MIXED_ROWS_2);
      checkRows(result, x2, MIXED);
    } finally {
      disposeCondResult(result);
    }
  });

  test('N images x K conditions with N != K, both > 1, are image-major', () => {
    const conditions: Condition[] = [
      { y: [2], dense1: [0] },
      { y: [0], dense1: [2] },
    ];
    const result = crp.run(x3, conditions, { recordActivations: ['conv1'] });
    try {
      expect(result.rows).toEqual(
        [0, 1, 2].flatMap((image) => [0, 1].map((condition) => ({ image, condition }))),
      );
      checkRows(result, x3, conditions);
    } finally {
      disposeCondResult(result);
    }
  });

  test('N == K pairs image i with condition i', () => {
    const conditions: Condition[] = [{ y: [1] }, { y: [2] }, { y: [0] }];
    const result = crp.run(x3, conditions, { recordActivations: ['conv1'] });
    try {
      expect(result.rows).toEqual([0, 1, 2].map((i) => ({ image: i, condition: i })));
      checkRows(result, x3, conditions);
    } finally {
      disposeCondResult(result);
    }
  });

  test('one image with one condition gives one row', () => {
    const one = imageAt(x3, 2);
    const result = crp.run(one, [{ y: [2], conv1: [3] }], { recordActivations: ['conv1'] });
    try {
      expect(result.rows).toEqual([{ image: 0, condition: 0 }]);
      checkRows(result, one, [{ y: [2], conv1: [3] }]);
    } finally {
      disposeCondResult(result);
      one.dispose();
    }
  });
});

describe('chunking', () => {
  const OPTIONS = { recordLayers: ['conv1', 'conv2', 'dense1'], recordActivations: ['conv2'] };

  function snapshot(result: CondAttributionResult) {
    return {
      heatmap: Array.from(result.heatmap!.dataSync()),
      prediction: Array.from(result.prediction.dataSync()),
      relevances: Object.fromEntries(
        Object.entries(result.relevances).map(([k, t]) => [k, [t.shape, Array.from(t.dataSync())]]),
      ),
      activations: Object.fromEntries(
        Object.entries(result.activations).map(([k, t]) => [k, [t.shape, Array.from(t.dataSync())]]),
      ),
      rows: result.rows,
    };
  }

  test('chunkSize 1, 3 and large give identical results', () => {
    const runs = [1, 3, 1000, undefined].map((chunkSize) => {
      const result = crp.run(x2, MIXED, chunkSize === undefined ? OPTIONS : { ...OPTIONS, chunkSize });
      try {
        return snapshot(result);
      } finally {
        disposeCondResult(result);
      }
    });
    expect(runs[0]!.rows).toEqual(MIXED_ROWS_2);
    expect(runs[0]!.relevances.conv2![0]).toEqual([8, H, W, 4]);
    for (const r of runs.slice(1)) expect(r).toEqual(runs[0]);
    // chunkSize bounds the rows of a chunk, and the chunks cover every row once
    const sizes: number[] = [];
    for (const chunk of crp.chunks(x2, MIXED, { ...OPTIONS, chunkSize: 3 })) {
      sizes.push(chunk.rows.length);
      disposeCondResult(chunk);
    }
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(runs[0]!.rows.length);
    expect(Math.max(...sizes)).toBe(3);
  });

  test('chunks() yields consecutive offsets and sizes bounded by chunkSize that never mix images of a broadcast group', () => {
    const full = crp.run(x2, MIXED, OPTIONS);
    const progress: Progress[] = [];
    const seen: { offset: number; size: number }[] = [];
    try {
      for (const chunk of crp.chunks(x2, MIXED, {
        ...OPTIONS,
        chunkSize: 2,
        onProgress: (p) => progress.push({ ...p }),
      })) {
        try {
          seen.push({ offset: chunk.offset, size: chunk.rows.length });
          expect(chunk.rows).toEqual(MIXED_ROWS_2.slice(chunk.offset, chunk.offset + chunk.rows.length));
          expect(chunk.heatmap!.shape[0]).toBe(chunk.rows.length);
          expect(chunk.prediction.shape[0]).toBe(chunk.rows.length);
          for (const t of [...Object.values(chunk.relevances), ...Object.values(chunk.activations)]) {
            expect(t.shape[0]).toBe(chunk.rows.length);
          }
          // the chunk's numbers are those of the same rows of run()
          const slice = (t: tf.Tensor) => {
            const part = tf.slice(t, [chunk.offset], [chunk.rows.length]);
            const v = Array.from(part.dataSync());
            part.dispose();
            return v;
          };
          expectIdentical(chunk.heatmap!, slice(full.heatmap!));
          expectIdentical(chunk.prediction, slice(full.prediction));
          for (const k of Object.keys(full.relevances))
            expectIdentical(chunk.relevances[k]!, slice(full.relevances[k]!));
          for (const k of Object.keys(full.activations))
            expectIdentical(chunk.activations[k]!, slice(full.activations[k]!));
        } finally {
          disposeCondResult(chunk);
        }
      }
    } finally {
      disposeCondResult(full);
    }
    // { y } group: image 0 -> 2 + 1 rows, image 1 -> 2 + 1 rows; paired { y, conv2 } group: 2 rows
    expect(seen).toEqual([
      { offset: 0, size: 2 },
      { offset: 2, size: 1 },
      { offset: 3, size: 2 },
      { offset: 5, size: 1 },
      { offset: 6, size: 2 },
    ]);
    expect(progress.map((p) => p.done)).toEqual([2, 3, 5, 6, 8]);
    expect(progress.every((p) => p.total === 8)).toBe(true);
    expect(progress.every((p) => p.elapsedMs >= 0 && p.etaMs! >= 0)).toBe(true);
    expect(progress.at(-1)!.etaMs).toBe(0);
  });

  test('chunk sizes follow chunkSize for other sizes too', () => {
    const sizes = (chunkSize: number) => {
      const out: [number, number][] = [];
      const done: number[] = [];
      for (const chunk of crp.chunks(x2, MIXED, { chunkSize, onProgress: (p) => done.push(p.done) })) {
        out.push([chunk.offset, chunk.rows.length]);
        disposeCondResult(chunk);
      }
      expect(done).toEqual(out.map(([o, s]) => o + s));
      return out;
    };
    expect(sizes(1)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((o) => [o, 1]));
    expect(sizes(3)).toEqual([
      [0, 3],
      [3, 3],
      [6, 2],
    ]);
    expect(sizes(100)).toEqual([
      [0, 3],
      [3, 3],
      [6, 2],
    ]);
    // a paired group is cut by chunkSize as well
    const paired: CondAttributionChunk[] = [
      ...crp.chunks(x3, [{ y: [0] }, { y: [1] }, { y: [2] }], { chunkSize: 2 }),
    ];
    expect(paired.map((c) => [c.offset, c.rows.length])).toEqual([
      [0, 2],
      [2, 1],
    ]);
    expect(paired.flatMap((c) => c.rows)).toEqual([0, 1, 2].map((i) => ({ image: i, condition: i })));
    for (const c of paired) disposeCondResult(c);
  });
});

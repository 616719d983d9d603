/**
 * Nothing leaks: 200 conditional attributions over every feature, and the chunks() generator run fully,
 * stopped early (break, return(), a throwing consumer) and interrupted by a throwing progress callback.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ChannelConcept,
  CondAttribution,
  type Condition,
  type CondRunOptions,
  disposeCondResult,
} from '../src/index.js';
import { buildModel, expectNonZero, images, useWasm } from './helpers.js';

useWasm();

let model: tfl.LayersModel;
let crp: CondAttribution;
let x: tf.Tensor;
let x1: tf.Tensor;
let initOne: tf.Tensor;
let initPerImage: tf.Tensor;

const MIXED: Condition[] = [
  { y: [0] },
  { y: [1], conv2: [0, 2] },
  { y: [2] },
  { conv2: [1], y: [0] },
  { y: [1], dense1: [0], conv1: [3] },
  { y: [0, 2], dense1: [] },
];

/** Configurations covering every code path of the engine (broadcast, paired, masks, start layer, ...). */
function configurations(): { input: tf.Tensor; conditions: Condition[]; options: CondRunOptions }[] {
  return [
    { input: x, conditions: MIXED, options: {} },
    {
      input: x1,
      conditions: MIXED,
      options: { chunkSize: 2, recordLayers: ['conv1', 'conv2', 'dense1', 'dense2'] },
    },
    { input: x, conditions: MIXED, options: { heatmap: false, recordLayers: ['conv2', 'dense1'] } },
    {
      input: x,
      conditions: [
        { y: [1], conv2: [2] },
        { y: [0], conv2: [1] },
      ],
      options: { heatmap: false, recordLayers: ['conv2'] },
    },
    {
      input: x,
      conditions: [{ conv1: [0] }, { conv2: [1] }],
      options: { startLayer: 'conv2', initRelevance: 1, recordActivations: ['conv1'] },
    },
    {
      input: x,
      conditions: [{ y: [0] }, { y: [1] }, { y: [2] }],
      options: { initRelevance: tf.abs, chunkSize: 1 },
    },
    { input: x, conditions: [{ y: [0, 1] }, { y: [2], conv1: [1] }], options: { initRelevance: initOne } },
    {
      input: x,
      conditions: [{ y: [0, 1] }, { y: [2], conv1: [1] }, { y: [1] }],
      options: { initRelevance: initPerImage },
    },
    {
      input: x,
      conditions: [{ y: [0], conv2: [1] }],
      options: {
        maskMap: { conv2: ChannelConcept.receptiveField(1, [2, 2]) },
        recordLayers: ['conv2', 'conv1', 'image'],
      },
    },
    {
      input: x1,
      conditions: [{ pool: [3] }],
      options: { startLayer: 'pool', recordLayers: ['pool'], recordActivations: ['pool', 'image'] },
    },
  ];
}

beforeAll(() => {
  model = buildModel();
  crp = new CondAttribution(model);
  x = images(2, 17);
  x1 = tf.slice(x, [1], [1]);
  initOne = tf.tensor2d([[1, -2, 0.5]]);
  initPerImage = tf.tensor2d([
    [1, 2, 3],
    [3, 2, 1],
  ]);
  // warm up: the attributor caches derived parameters on first use
  for (const { input, conditions, options } of configurations())
    disposeCondResult(crp.run(input, conditions, options));
});

afterAll(() => {
  crp.dispose();
  for (const t of [x, x1, initOne, initPerImage]) t.dispose();
  model.dispose();
});

describe('tensor count', () => {
  test('is unchanged after 200 conditional attributions (run + disposeCondResult)', () => {
    const configs = configurations();
    const before = tf.memory().numTensors;
    let heatmapSeen = false;
    for (let i = 0; i < 200; i++) {
      const { input, conditions, options } = configs[i % configs.length]!;
      const result = crp.run(input, conditions, options);
      if (i === 0) {
        expectNonZero(result.heatmap!, 'first heatmap');
        heatmapSeen = true;
      }
      disposeCondResult(result);
    }
    expect(heatmapSeen).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('is unchanged after chunks() runs to the end', () => {
    const before = tf.memory().numTensors;
    let count = 0;
    for (const { input, conditions, options } of configurations()) {
      for (const chunk of crp.chunks(input, conditions, { ...options, chunkSize: 2 })) {
        count++;
        disposeCondResult(chunk);
      }
    }
    expect(count).toBeGreaterThan(10);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('is unchanged when the consumer breaks early, calls return() or throws', () => {
    const before = tf.memory().numTensors;
    for (const { input, conditions, options } of configurations()) {
      // break after the first chunk
      for (const chunk of crp.chunks(input, conditions, { ...options, chunkSize: 1 })) {
        disposeCondResult(chunk);
        break;
      }
      // break in the middle
      let seen = 0;
      for (const chunk of crp.chunks(input, conditions, { ...options, chunkSize: 1 })) {
        disposeCondResult(chunk);
        if (++seen === 2) break;
      }
      // return() after one step
      const gen = crp.chunks(input, conditions, { ...options, chunkSize: 2 });
      const first = gen.next();
      expect(first.done).toBe(false);
      disposeCondResult(first.value);
      gen.return(undefined);
      // a generator never started
      crp.chunks(input, conditions, options).return(undefined);
      // a consumer that throws
      expect(() => {
        for (const chunk of crp.chunks(input, conditions, { ...options, chunkSize: 1 })) {
          disposeCondResult(chunk);
          throw new Error('consumer failed');
        }
      }).toThrow('consumer failed');
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  test('is unchanged when onProgress throws, in run() and in chunks()', () => {
    const before = tf.memory().numTensors;
    for (const { input, conditions, options } of configurations()) {
      for (const failAt of [1, 2]) {
        let calls = 0;
        const onProgress = () => {
          if (++calls === failAt) throw new Error('progress failed');
        };
        let error: unknown;
        try {
          disposeCondResult(crp.run(input, conditions, { ...options, chunkSize: 1, onProgress }));
        } catch (err) {
          error = err;
        }
        // a single-row run reports once and cannot fail at the second report
        if (error !== undefined) expect((error as Error).message).toBe('progress failed');
        calls = 0;
        try {
          for (const chunk of crp.chunks(input, conditions, { ...options, chunkSize: 1, onProgress }))
            disposeCondResult(chunk);
        } catch (err) {
          expect((err as Error).message).toBe('progress failed');
        }
      }
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  test('is unchanged after errors found while running', () => {
    const before = tf.memory().numTensors;
    const bad: [Condition[], CondRunOptions][] = [
      [[{ y: [0] }, { y: [1], conv2: [9] }], {}],
      [[{ y: [5] }], { chunkSize: 1 }],
      [[{ y: [0], conv2: [0] }], { maskMap: { conv2: ChannelConcept.receptiveField(0, [99, 0]) } }],
      [[{ y: [0] }], { initRelevance: () => tf.zeros([1, 7]) }],
    ];
    for (const [conditions, options] of bad) {
      expect(() => crp.run(x, conditions, options)).toThrow();
      expect(() => [...crp.chunks(x, conditions, options)]).toThrow();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

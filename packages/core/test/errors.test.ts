/**
 * Bad input gets a CrpError with a `code` and a message that says what is valid; nothing is left behind.
 */
import type { CrpErrorCode } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { CondAttribution, type Condition, type CondRunOptions, disposeCondResult } from '../src/index.js';
import { buildModel, expectCrpError, H, images, useWasm, W } from './helpers.js';

useWasm();

let model: tfl.LayersModel;
let crp: CondAttribution;
let x: tf.Tensor;
let tensorsBefore = 0;

beforeAll(() => {
  model = buildModel();
  crp = new CondAttribution(model);
  x = images(2, 9);
  // warm the attributor's parameter cache, so that tensor counts compare like with like
  disposeCondResult(crp.run(x, [{ y: [0], conv1: [0], conv2: [0], dense1: [0] }]));
});

afterAll(() => {
  crp.dispose();
  x.dispose();
  model.dispose();
});

// every error leaves the tensor count as it was
beforeEach(() => {
  tensorsBefore = tf.memory().numTensors;
});
afterEach(() => {
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});

/** Checks run() and the chunks() generator (which throws on its first step). */
function expectBoth(
  conditions: Condition[],
  options: CondRunOptions,
  code: CrpErrorCode,
  ...patterns: (string | RegExp)[]
): void {
  expectCrpError(() => crp.run(x, conditions, options), code, ...patterns);
  expectCrpError(() => crp.chunks(x, conditions, options).next(), code, ...patterns);
}

describe('conditions', () => {
  test('an unknown layer lists the model layers', () => {
    expectBoth(
      [{ y: [0], conv3: [1] }],
      {},
      'unknown-layer',
      "'conv3'",
      /conv1.*conv2.*pool.*flat.*dense1.*dense2/,
    );
    // also when only a later condition is bad
    expectBoth([{ y: [0] }, { y: [1], Conv2: [0] }], {}, 'unknown-layer', "'Conv2'", 'conv2');
  });

  test('a channel index out of range gives the range 0..C-1', () => {
    expectBoth(
      [{ y: [0], conv2: [4] }],
      {},
      'invalid-argument',
      'channel 4',
      "'conv2'",
      '4 channels',
      '0..3',
    );
    expectBoth([{ y: [0], dense1: [0, 5] }], {}, 'invalid-argument', 'channel 5', "'dense1'", '0..4');
    expectBoth([{ y: [0] }, { y: [0], conv1: [-1] }], {}, 'invalid-argument', 'channel -1', '0..3');
    expectBoth([{ y: [0], conv1: [1.5] }], {}, 'invalid-argument', 'channel 1.5', '0..3');
  });

  test('a y index out of range gives the range of classes', () => {
    expectBoth([{ y: [3] }], {}, 'invalid-target', 'y index 3', '3 outputs', '0..2');
    expectBoth([{ y: [0] }, { y: [-1], conv1: [0] }], {}, 'invalid-target', 'y index -1', '0..2');
    expectBoth([{ y: [0.5] }], {}, 'invalid-target', '0..2');
  });

  test('an empty condition list, a non-object condition, a value that is not an array', () => {
    expectBoth([], {}, 'invalid-argument', 'empty', '{ y: [0] }');
    expectCrpError(() => crp.run(x, null as unknown as Condition[]), 'invalid-argument', 'empty');
    expectBoth([{ y: [0] }, 5 as unknown as Condition], {}, 'invalid-argument', 'condition 1', 'object');
    expectBoth([null as unknown as Condition], {}, 'invalid-argument', 'condition 0', 'object');
    expectBoth([[0] as unknown as Condition], {}, 'invalid-argument', 'condition 0', 'object');
    expectBoth([{ y: 1 } as unknown as Condition], {}, 'invalid-argument', "'y'", 'array', '{ y: [1] }');
    expectBoth(
      [{ y: [0], conv2: 2 } as unknown as Condition],
      {},
      'invalid-argument',
      "'conv2'",
      '{ conv2: [2] }',
    );
  });

  test('a condition on the input layer', () => {
    expectBoth([{ y: [0], image: [0] }], {}, 'invalid-argument', "input layer 'image'");
  });

  test('a condition on a layer above the start layer lists the layers that can be conditioned', () => {
    expectBoth(
      [{ dense1: [0] }],
      { startLayer: 'conv2' },
      'invalid-argument',
      "'dense1'",
      "'conv2'",
      /conditioned: .*conv1/,
    );
    expectBoth([{ pool: [0] }], { startLayer: 'conv1' }, 'invalid-argument', "'pool'");
  });
});

describe('options', () => {
  test('heatmap: false without recordLayers', () => {
    expectBoth([{ y: [0] }], { heatmap: false }, 'invalid-argument', 'recordLayers');
    expectBoth([{ y: [0] }], { heatmap: false, recordLayers: [] }, 'invalid-argument', 'recordLayers');
  });

  test('unknown start and recorded layers, recording above the start layer', () => {
    expectBoth([{ y: [0] }], { startLayer: 'conv9' }, 'unknown-layer', "'conv9'", 'conv1');
    expectBoth([{ y: [0] }], { recordLayers: ['conv1', 'nope'] }, 'unknown-layer', "'nope'", 'dense1');
    expectBoth(
      [{ conv1: [0] }],
      { startLayer: 'conv2', recordLayers: ['dense1'] },
      'invalid-argument',
      "'dense1'",
    );
  });

  test('a chunkSize that is not a positive integer', () => {
    expectBoth([{ y: [0] }], { chunkSize: 0 }, 'invalid-argument', 'chunkSize', '0');
    expectBoth([{ y: [0] }], { chunkSize: 2.5 }, 'invalid-argument', 'chunkSize');
  });

  test('an initRelevance tensor of the wrong shape', () => {
    const wrong = tf.zeros([1, 4]);
    const wrongBatch = tf.zeros([3, 3]);
    tensorsBefore += 2;
    try {
      expectBoth(
        [{ y: [0] }],
        { initRelevance: wrong },
        'invalid-argument',
        'initRelevance',
        '[1 or images, 3]',
        '[1, 4]',
      );
      // 2 images: a batch of 3 fits neither one for all nor one per image
      expectBoth([{ y: [0] }], { initRelevance: wrongBatch }, 'invalid-argument', 'initRelevance', '[3, 3]');
    } finally {
      wrong.dispose();
      wrongBatch.dispose();
      tensorsBefore -= 2;
    }
  });

  test('an input of the wrong shape', () => {
    const bad = tf.zeros([1, H, W, 2]);
    tensorsBefore += 1;
    try {
      expectCrpError(() => crp.run(bad, [{ y: [0] }]), 'invalid-shape', `[batch, ${H}, ${W}, 3]`);
    } finally {
      bad.dispose();
      tensorsBefore -= 1;
    }
  });
});

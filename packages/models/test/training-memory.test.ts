import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  INFERENCE_BYTES_PER_OUTPUT,
  planTrainingMemory,
  selectTrainLayers,
  TRAINING_BYTES_PER_OUTPUT,
  WASM_MEMORY_LIMIT,
} from '../src/training-memory.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** [4] -> dense 3 -> relu -> dense 2: 15 + 8 = 23 parameters; outputs per image 3 + 3 + 2 = 8. */
const mlp = () =>
  tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [4], units: 3, name: 'hidden' }),
      tfl.layers.reLU({ name: 'hidden_relu' }),
      tfl.layers.dense({ units: 2, name: 'out' }),
    ],
  });

/**
 * [8, 8, 1] -> conv 2 (3x3 same, 20 parameters) -> relu -> pool 2 -> flatten -> dense 2 (66 parameters), PyTorch
 * style names. Outputs per image: conv 128, relu 128, pool 32, (flatten: a view), dense 2.
 */
const convNet = () =>
  tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [8, 8, 1],
        filters: 2,
        kernelSize: 3,
        padding: 'same',
        name: 'features.0',
      }),
      tfl.layers.reLU({ name: 'features.1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'features.2' }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({ units: 2, name: 'classifier.0' }),
    ],
  });

describe('planTrainingMemory', () => {
  it('adds up weights, packed copies, gradients, moments and activations as documented (by hand: a small MLP)', () => {
    const model = mlp();
    const plan = planTrainingMemory(model, {
      backend: 'wasm',
      memoryLimit: 10_000,
      headroom: 1,
      otherBytes: 0,
      maxBatchSize: 100,
      moments: 'backend',
    });
    expect(plan.parameters).toEqual({ total: 23, trained: 23 });
    expect(plan.bytes).toEqual({
      weights: 92, // 23 float32
      packedWeights: 72, // the kernels 4x3 and 3x2 (wasm packs them for XNNPACK)
      gradients: 92,
      optimizerState: 184, // m and v
      optimizerWorkspace: 288, // 6 float32 copies of the largest variable (12 elements)
      other: 0,
      fragmentation: 48, // one hole of the largest variable (12 elements)
      activationsPerImage: 160, // 20 bytes x (3 + 3 + 2) outputs
    });
    // (10000 - 776) / 160 = 57.65
    expect(plan.batchSize).toBe(57);
    expect(plan.limitedBy).toBe('memory');
    expect(plan.peakBytes).toBe(776 + 57 * 160);
    expect(plan.budgetBytes).toBe(10_000);
    // moments in JavaScript leave 92 + 72 + 92 + 48 = 304 bytes fixed: (10000 - 304) / 160 = 60.6
    const js = planTrainingMemory(model, {
      backend: 'wasm',
      memoryLimit: 10_000,
      headroom: 1,
      otherBytes: 0,
      maxBatchSize: 100,
      moments: 'js',
    });
    expect(js.batchSize).toBe(60);
    expect(js.bytes.optimizerState + js.bytes.optimizerWorkspace).toBe(0);
    // 'auto' takes the placement with the larger batch
    const auto = planTrainingMemory(model, {
      backend: 'wasm',
      memoryLimit: 10_000,
      headroom: 1,
      otherBytes: 0,
      maxBatchSize: 100,
    });
    expect(auto.moments).toBe('js');
    // with room for maxBatchSize either way, the moments stay on the backend
    expect(planTrainingMemory(model, { backend: 'wasm', otherBytes: 0 }).moments).toBe('backend');
    model.dispose();
  });

  it('counts only the trained layers and those after them on the tape, the frozen ones as at inference', () => {
    const model = convNet();
    const all = planTrainingMemory(model, { backend: 'cpu', otherBytes: 0 });
    expect(all.parameters).toEqual({ total: 86, trained: 86 });
    expect(all.bytes.packedWeights).toBe(0); // not wasm
    expect(all.bytes.activationsPerImage).toBe(TRAINING_BYTES_PER_OUTPUT * (128 + 128 + 32 + 2));
    expect(all.selection).toEqual({ trained: ['features.0', 'classifier.0'], frozenPrefix: 0 });
    expect(all.limitBytes).toBeUndefined();
    expect(all.batchSize).toBe(32); // no limit off wasm: maxBatchSize
    expect(all.limitedBy).toBe('maxBatchSize');
    const head = planTrainingMemory(model, { backend: 'wasm', trainLayers: ['classifier'], otherBytes: 0 });
    expect(head.selection).toEqual({ trained: ['classifier.0'], frozenPrefix: 4 });
    expect(head.parameters).toEqual({ total: 86, trained: 66 });
    expect(head.bytes.gradients).toBe(4 * 66);
    // the tape holds the dense output; the frozen layers need their largest output (128) at a time
    expect(head.bytes.activationsPerImage).toBe(
      TRAINING_BYTES_PER_OUTPUT * 2 + INFERENCE_BYTES_PER_OUTPUT * 128,
    );
    expect(head.bytes.packedWeights).toBe(4 * (18 + 64)); // conv filter 3x3x1x2 and dense kernel 32x2
    expect(head.limitBytes).toBe(WASM_MEMORY_LIMIT);
    model.dispose();
  });

  it("takes the backend's tensors as 'other' by default, and says why a name is not a layer to train", () => {
    const model = mlp();
    const data = tf.zeros([1000]); // 4000 bytes of someone else's tensors
    const plan = planTrainingMemory(model, { backend: 'wasm' });
    expect(plan.bytes.other).toBe(tf.memory().numBytes - 92);
    expect(plan.bytes.other).toBeGreaterThanOrEqual(4000);
    data.dispose();
    const err = (() => {
      try {
        planTrainingMemory(model, { trainLayers: ['hidden_relu'] });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CrpError);
    expect((err as CrpError).code).toBe('unknown-layer');
    expect((err as Error).message).toMatch(
      /'hidden_relu', which is no layer with trainable weights.*valid: hidden, out/,
    );
    expect(() => planTrainingMemory(model, { maxBatchSize: 0 })).toThrow(
      /maxBatchSize must be a whole number >= 1/,
    );
    model.dispose();
  });
});

describe('selectTrainLayers', () => {
  it('takes names and dotted groups, and frozen prefixes only in chains', () => {
    const model = convNet();
    expect(selectTrainLayers(model, ['features'])).toEqual({ trained: ['features.0'], frozenPrefix: 0 });
    expect(selectTrainLayers(model, ['classifier.0', 'features.0'])).toEqual({
      trained: ['features.0', 'classifier.0'],
      frozenPrefix: 0,
    });
    expect(() => selectTrainLayers(model, [])).toThrow(/non-empty list of layer names/);
    expect(() => selectTrainLayers(model, ['classifier.9'])).toThrow(
      /valid: features, classifier, features.0, classifier.0/,
    );
    model.dispose();
    // a branch (two layers read the input): no frozen prefix, everything runs under the tape
    const input = tfl.input({ shape: [4] });
    const a = tfl.layers.dense({ units: 2, name: 'a' }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.dense({ units: 2, name: 'b' }).apply(input) as tfl.SymbolicTensor;
    const sum = tfl.layers.add().apply([a, b]) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 2, name: 'head' }).apply(sum) as tfl.SymbolicTensor;
    const branched = tfl.model({ inputs: input, outputs: out });
    expect(selectTrainLayers(branched, ['head'])).toEqual({ trained: ['head'], frozenPrefix: 0 });
    branched.dispose();
  });
});

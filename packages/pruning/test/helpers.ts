/**
 * Shared setup for the @crp/pruning suite: backends, a seeded PRNG, a tiny seeded model with a batch norm, an
 * independent graph runner (lrp's forwardNode) for hand computations, and error assertions.
 */
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { graphFromLayersModel, type ModelGraph } from '@crp/lrp';
import { forwardNode } from '@crp/lrp/internal';
import {
  type StateDict,
  type TorchResNetSpec,
  torchResNetFromStateDict,
  torchResNetShapes,
} from '@crp/models';
import { mulberry32, seedWeights, uniform } from '@crp/testing';
import { formulaImage, formulaStateDict } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, expect } from 'vitest';

export { mulberry32, uniform, useBackend } from '@crp/testing';

/**
 * image [6, 6, 3] -> conv1 (3->4, 3x3 same) -> bn1 -> relu1 -> conv2 (4->6, 3x3 same, relu) -> pool (2x2)
 * -> flat -> dense1 (54->5, relu) -> dense2 (5->3 logits). Every weight is set from a seeded PRNG.
 */
export function tinyModel(seed = 7): tfl.LayersModel {
  const input = tfl.input({ shape: [6, 6, 3], name: 'image' });
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv1' }).apply(input);
  x = tfl.layers.batchNormalization({ name: 'bn1' }).apply(x);
  x = tfl.layers.reLU({ name: 'relu1' }).apply(x);
  x = tfl.layers
    .conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv2' })
    .apply(x);
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(x);
  x = tfl.layers.flatten({ name: 'flat' }).apply(x);
  x = tfl.layers.dense({ units: 5, activation: 'relu', name: 'dense1' }).apply(x);
  const out = tfl.layers.dense({ units: 3, name: 'dense2' }).apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  // batch norm: gamma, beta, mean, variance (> 0)
  seedWeights(
    model,
    seed,
    [-0.6, 0.6],
    [-0.1, 0.3],
    [
      [0.5, 1.5],
      [-0.2, 0.2],
      [-0.3, 0.3],
      [0.5, 2],
    ],
  );
  return model;
}

/** n seeded images [n, 6, 6, 3] in [-1, 1]. */
export function tinyImages(n: number, seed = 11): tf.Tensor4D {
  return tf.tensor4d(uniform(mulberry32(seed), n * 6 * 6 * 3), [n, 6, 6, 3]);
}

/** A torchvision ResNet (or ResNeXt) of @crp/models with the seeded formula weights of @crp/testing. */
export function formulaResNet(spec: TorchResNetSpec, seed: number, inputSize = 32): tfl.LayersModel {
  return torchResNetFromStateDict(formulaStateDict(torchResNetShapes(spec), seed) as StateDict, {
    inputSize,
  });
}

/** A {@link formulaResNet} of input size `inputSize` and two formula images of that size (`imageSeed`), made before
 * the calling describe block's tests and disposed after them (read the fields in tests). */
export function useFormulaResNet(
  spec: TorchResNetSpec,
  seed: number,
  imageSeed: number,
  inputSize = 32,
): { model: tfl.LayersModel; x: tf.Tensor } {
  const net = {} as { model: tfl.LayersModel; x: tf.Tensor };
  beforeAll(() => {
    net.model = formulaResNet(spec, seed, inputSize);
    net.x = formulaImage(2, inputSize, imageSeed);
  });
  afterAll(() => {
    net.model.dispose();
    net.x.dispose();
  });
  return net;
}

/** The shape of a layer's kernel (its first weight). */
export function kernelShape(model: tfl.LayersModel, layer: string): number[] {
  return model.getLayer(layer).getWeights()[0]!.shape;
}

export function values(t: tf.Tensor): Float64Array {
  return Float64Array.from(t.dataSync());
}

/** model.predict as values (the prediction tensor is disposed). */
export function predictValues(model: tfl.LayersModel, x: tf.Tensor): Float64Array {
  const out = model.predict(x) as tf.Tensor;
  const v = values(out);
  out.dispose();
  return v;
}

/**
 * Runs the model's graph node by node with lrp's forwardNode (independent of tfjs-layers' predict), replacing
 * the output of selected nodes by `edit(output)`. Returns every node's output as values.
 */
export function runGraph(
  model: tfl.LayersModel,
  x: tf.Tensor,
  edit: Record<string, (t: tf.Tensor) => tf.Tensor> = {},
): Record<string, Float64Array> {
  const graph = graphFromLayersModel(model);
  const outs = new Map<string, tf.Tensor>();
  const result: Record<string, Float64Array> = {};
  tf.tidy(() => {
    for (const node of graph.nodes) {
      const inputs = node.kind === 'input' ? [x] : node.inputs.map((i) => outs.get(i)!);
      let y = forwardNode(node, inputs).output;
      const e = edit[node.id];
      if (e !== undefined) y = e(y);
      outs.set(node.id, y);
      result[node.id] = values(y);
    }
  });
  graph.dispose();
  return result;
}

/**
 * The Taylor criterion's objective as a function of node `at`'s output, for tf.grad: every other node of `graph`
 * run by lrp's forwardNode on `x`, then the cross-entropy (`loss`) or the logit (`logit`) of each sample's label,
 * summed over the samples.
 */
export function objectiveAt(
  graph: ModelGraph,
  at: string,
  x: tf.Tensor,
  labels: number[],
  objective: 'loss' | 'logit',
  classes = 3,
): (a: tf.Tensor) => tf.Scalar {
  return (a) => {
    const outs = new Map<string, tf.Tensor>();
    for (const node of graph.nodes) {
      const inputs = node.kind === 'input' ? [x] : node.inputs.map((i) => outs.get(i)!);
      outs.set(node.id, node.id === at ? a : forwardNode(node, inputs).output);
    }
    const logits = outs.get(graph.outputId)!;
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
    return (
      objective === 'loss'
        ? tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits))))
        : tf.sum(tf.mul(onehot, logits))
    ) as tf.Scalar;
  };
}

/** Zeroes channels (last axis) of a tensor. */
export function zeroChannels(channels: readonly number[]): (t: tf.Tensor) => tf.Tensor {
  return (t) => {
    const c = t.shape[t.rank - 1]!;
    const keep = new Float32Array(c).fill(1);
    for (const k of channels) keep[k] = 0;
    return tf.mul(t, tf.tensor1d(keep));
  };
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** max |actual - expected| <= tol * max(max |expected|, floor). */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol = 1e-5,
  floor = 1e-6,
) {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  const bound = tol * Math.max(maxAbs(expected), floor);
  if (!(worst <= bound)) {
    throw new Error(
      `max deviation ${worst} at ${at} exceeds ${bound} (actual ${actual[at]}, expected ${expected[at]})`,
    );
  }
}

/** Two models give the same logits for `x`: within 1e-5 of the largest, which is not 0 (a model that outputs 0
 * would match anything scaled by it). */
export function expectSameLogits(got: tfl.LayersModel, want: tfl.LayersModel, x: tf.Tensor): void {
  const expected = predictValues(want, x);
  expect(maxAbs(expected)).toBeGreaterThan(1e-6);
  expectClose(predictValues(got, x), expected, 1e-5);
}

/** The outputs of the named layers of `model` for `x`, as values (the tensors are disposed). */
export function layerOutputs(
  model: tfl.LayersModel,
  x: tf.Tensor,
  layers: readonly string[],
): Float32Array[] {
  const probe = tfl.model({
    inputs: model.inputs,
    outputs: layers.map((l) => model.getLayer(l).output as tfl.SymbolicTensor),
  });
  const out = probe.predict(x) as tf.Tensor | tf.Tensor[];
  const ys = Array.isArray(out) ? out : [out];
  const v = ys.map((y) => y.dataSync() as Float32Array);
  tf.dispose(ys);
  return v;
}

/** Each probed layer's output is exactly 0 in `channels` (of `width`, the last axis) and not 0 somewhere else. */
export function expectChannelsZeroed(
  model: tfl.LayersModel,
  x: tf.Tensor,
  probe: readonly string[],
  channels: readonly number[],
  width: number,
): void {
  for (const [k, v] of layerOutputs(model, x, probe).entries()) {
    let nonzero = 0;
    for (let i = 0; i < v.length; i++) {
      if (channels.includes(i % width)) expect(v[i], `${probe[k]} at ${i}`).toBe(0);
      else if (v[i] !== 0) nonzero++;
    }
    expect(nonzero).toBeGreaterThan(0);
  }
}

export { expectCrpErrorAsync as expectCrpError } from '@crp/testing';

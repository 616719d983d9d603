import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { fileSystem } from '../src/node.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Lamb, registerTrainingKernels } from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const norm = (x: number[]) => Math.sqrt(x.reduce((s, v) => s + v * v, 0));

/**
 * LAMB by hand, in float64, for one variable: the state after each of `gradients` (You et al. 2020, Algorithm 2).
 */
function lambByHand(
  w0: number[],
  gradients: ((w: number[]) => number[])[],
  { lr, b1, b2, eps, wd }: { lr: number; b1: number; b2: number; eps: number; wd: number },
) {
  let w = [...w0];
  let m = w.map(() => 0);
  let v = w.map(() => 0);
  const history: { w: number[]; m: number[]; v: number[]; trust: number }[] = [];
  gradients.forEach((grad, k) => {
    const t = k + 1;
    const g = grad(w);
    m = m.map((mi, i) => b1 * mi + (1 - b1) * g[i]!);
    v = v.map((vi, i) => b2 * vi + (1 - b2) * g[i]! ** 2);
    const mHat = m.map((mi) => mi / (1 - b1 ** t));
    const vHat = v.map((vi) => vi / (1 - b2 ** t));
    const r = mHat.map((mi, i) => mi / (Math.sqrt(vHat[i]!) + eps));
    const u = r.map((ri, i) => ri + wd * w[i]!);
    const wn = norm(w);
    const un = norm(u);
    const trust = wn > 0 && un > 0 ? wn / un : 1;
    w = w.map((wi, i) => wi - lr * trust * u[i]!);
    history.push({ w, m, v, trust });
  });
  return history;
}

async function values(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

function expectClose(actual: number[], expected: number[], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  for (const [i, a] of actual.entries()) expect(a).toBeCloseTo(expected[i]!, digits);
}

describe('Lamb', () => {
  const hyper = { lr: 0.1, b1: 0.9, b2: 0.99, eps: 1e-6, wd: 0.01 };
  const c = [0.5, -1, 2, 0.25];
  // loss = sum(c * w) + 0.5 * sum(w^2): gradient c + w, so the second step depends on the first
  const loss = (w: tf.Variable) =>
    tf.add(tf.sum(tf.mul(tf.tensor1d(c), w)), tf.mul(0.5, tf.sum(tf.square(w)))) as tf.Scalar;
  const grad = (w: number[]) => w.map((wi, i) => c[i]! + wi);

  it.each([
    ['backend', 'cpu'],
    ['js', 'cpu'],
    ['js', 'wasm'],
  ] as const)(
    'matches a hand computation of one and two steps (moments, bias correction, trust ratio, weight decay) with moments on the %s (%s)',
    async (moments, backend) => {
      if (!(await tf.setBackend(backend))) throw new Error(`the ${backend} backend failed to initialise`);
      const w0 = [1, -2, 3, 0.5];
      const expected = lambByHand(w0, [grad, grad], hyper);
      const w = tf.variable(tf.tensor1d(w0), true, 'lamb_test_w');
      const opt = new Lamb({
        learningRate: hyper.lr,
        beta1: hyper.b1,
        beta2: hyper.b2,
        epsilon: hyper.eps,
        weightDecay: hyper.wd,
        moments,
      });
      for (const step of expected) {
        opt.minimize(() => loss(w), false, [w]);
        expectClose(await values(w), step.w);
      }
      // trust ratio is not 1 here, so the layer adaptation really happened
      expect(Math.abs(expected[0]!.trust - 1)).toBeGreaterThan(0.1);
      const weights = await opt.getWeights();
      expect(weights.map((x) => x.name)).toEqual(['iter', 'lamb_test_w/m', 'lamb_test_w/v']);
      expect(await values(weights[0]!.tensor)).toEqual([2]);
      expectClose(await values(weights[1]!.tensor), expected[1]!.m);
      expectClose(await values(weights[2]!.tensor), expected[1]!.v);
      expect(opt.iterations).toBe(2);
      opt.dispose();
      w.dispose();
      await tf.setBackend('cpu');
    },
  );

  it('uses trust ratio 1 for zero weights (the 0 guard) and skips vectors when asked', async () => {
    const zero = tf.variable(tf.zeros([4]), true, 'lamb_test_zero');
    const opt = new Lamb({ learningRate: 0.1 });
    const expected = lambByHand([0, 0, 0, 0], [grad], { ...hyper, b2: 0.999, wd: 0 });
    expect(expected[0]!.trust).toBe(1);
    opt.minimize(() => loss(zero), false, [zero]);
    expectClose(await values(zero), expected[0]!.w);
    // with excludeVectors a rank-1 variable takes a plain Adam step: no decay, no trust ratio
    const w0 = [1, -2, 3, 0.5];
    const vec = tf.variable(tf.tensor1d(w0), true, 'lamb_test_vec');
    const plain = new Lamb({ learningRate: 0.1, weightDecay: 0.5, excludeVectors: true });
    plain.minimize(() => loss(vec), false, [vec]);
    // first Adam step: m̂ = g, v̂ = g², so the step is lr * sign(g) (up to ε)
    expectClose(
      await values(vec),
      w0.map((wi, i) => wi - 0.1 * Math.sign(grad(w0)[i]!)),
      5,
    );
    for (const x of [opt, plain, zero, vec]) x.dispose();
  });

  it("with moments 'js' takes the same steps as on the backend, on a small conv net over several steps", async () => {
    registerTrainingKernels();
    for (const backend of ['cpu', 'wasm']) {
      if (!(await tf.setBackend(backend))) throw new Error(`the ${backend} backend failed to initialise`);
      const make = () =>
        tfl.sequential({
          layers: [
            tfl.layers.conv2d({
              inputShape: [6, 6, 2],
              filters: 3,
              kernelSize: 3,
              kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }),
              biasInitializer: tfl.initializers.randomNormal({ seed: 4 }),
            }),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 2, kernelInitializer: tfl.initializers.glorotUniform({ seed: 5 }) }),
          ],
        });
      const x = tf.randomNormal([5, 6, 6, 2], 0, 1, 'float32', 6);
      const y = tf.tensor2d([1, 0, 0, 1, 1, 0, 0, 1, 1, 0], [5, 2]);
      const weights: number[][][] = [];
      for (const moments of ['backend', 'js'] as const) {
        const model = make();
        const opt = new Lamb({ learningRate: 0.05, weightDecay: 0.01, excludeVectors: true, moments });
        const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
        const before = tf.memory().numTensors;
        for (let step = 0; step < 5; step++) {
          opt.minimize(
            () => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar,
            false,
            vars,
          );
        }
        // the js moments live outside the backend: no tensor is added by the steps
        if (moments === 'js') expect(tf.memory().numTensors).toBe(before);
        weights.push(await Promise.all(model.getWeights().map(async (w) => Array.from(await w.data()))));
        opt.dispose();
        model.dispose();
      }
      const [onBackend, inJs] = weights as [number[][], number[][]];
      for (const [i, w] of onBackend.entries()) expectClose(inJs[i]!, w, 5);
      // and the steps moved the weights well beyond that tolerance
      const initial = make();
      const w0 = await initial.getWeights()[0]!.data();
      expect(Math.max(...onBackend[0]!.map((v, i) => Math.abs(v - w0[i]!)))).toBeGreaterThan(0.05);
      initial.dispose();
      tf.dispose([x, y]);
    }
    await tf.setBackend('cpu');
  });

  it("with moments 'js' saves and restores its state (getWeights / setWeights and the arrays of checkpoints)", async () => {
    const w = tf.variable(tf.tensor1d([1, -2, 3, 0.5]), true, 'lamb_test_js_state');
    const opt = new Lamb({ learningRate: 0.1, weightDecay: 0.01, moments: 'js' });
    opt.minimize(() => loss(w), false, [w]);
    const arrays = opt.momentArrays()!;
    expect(arrays.map((a) => a.name)).toEqual(['lamb_test_js_state/m', 'lamb_test_js_state/v']);
    const lent = await opt.getWeights();
    expect(lent.map((x) => x.name)).toEqual(['iter', 'lamb_test_js_state/m', 'lamb_test_js_state/v']);
    expect(Array.from(await lent[1]!.tensor.data())).toEqual(Array.from(arrays[0]!.values));
    const snapshot = lent.map((x) => ({ name: x.name, tensor: x.tensor.clone() }));
    const copies = arrays.map((a) => ({ ...a, values: a.values.slice() }));
    const before = await values(w);
    opt.minimize(() => loss(w), false, [w]);
    const after = await values(w);
    // back to step 1 twice: through tensors, and through arrays
    for (const restore of [
      async (o: Lamb) => o.setWeights(snapshot),
      async (o: Lamb) => o.setMomentArrays(copies, 1),
    ]) {
      w.assign(tf.tensor1d(before));
      const again = new Lamb({ learningRate: 0.1, weightDecay: 0.01, moments: 'js' });
      await restore(again);
      expect(again.iterations).toBe(1);
      again.minimize(() => loss(w), false, [w]);
      expect(await values(w)).toEqual(after);
      again.dispose();
    }
    tf.dispose(snapshot.map((x) => x.tensor));
    // lent tensors end with the next getWeights, step or dispose
    const count = tf.memory().numTensors;
    await opt.getWeights();
    expect(tf.memory().numTensors).toBe(count + 3);
    await opt.getWeights();
    expect(tf.memory().numTensors).toBe(count + 3);
    opt.minimize(() => loss(w), false, [w]);
    expect(tf.memory().numTensors).toBe(count);
    await opt.getWeights();
    opt.dispose();
    expect(tf.memory().numTensors).toBe(count);
    w.dispose();
  });

  it('saves and restores its state, so that training resumes identically', async () => {
    const make = (name: string) =>
      tf.variable(
        tf.tensor2d([
          [1, -2],
          [3, 0.5],
        ]),
        true,
        name,
      );
    const a = make('lamb_test_a');
    const optA = new Lamb({ learningRate: 0.05, weightDecay: 0.1 });
    const loss2 = (w: tf.Variable) => tf.sum(tf.square(tf.sub(w, 2))) as tf.Scalar;
    optA.minimize(() => loss2(a), false, [a]);
    const saved = await optA.getWeights();
    // a second optimiser for a copy of the variable takes over the state under the same variable name
    const snapshot = saved.map((x) => ({ name: x.name, tensor: x.tensor.clone() }));
    const before = await values(a);
    optA.minimize(() => loss2(a), false, [a]);
    const after = await values(a);
    a.assign(tf.tensor2d(before, [2, 2]));
    const optB = new Lamb({ learningRate: 0.05, weightDecay: 0.1 });
    await optB.setWeights(snapshot);
    expect(optB.iterations).toBe(1);
    optB.minimize(() => loss2(a), false, [a]);
    expect(await values(a)).toEqual(after);
    tf.dispose(snapshot.map((x) => x.tensor));
    for (const x of [optA, optB, a]) x.dispose();
  });

  it('is a registered, serialisable tf.Optimizer that model.fit and model.save/load use', async () => {
    expect(new Lamb()).toBeInstanceOf(tf.Optimizer);
    expect(tf.serialization.SerializationMap.getMap().classNameMap.Lamb).toBeDefined();
    const config = new Lamb({ learningRate: 0.01, weightDecay: 0.02, excludeVectors: true }).getConfig();
    const copy = Lamb.fromConfig(Lamb, config);
    expect(copy.getConfig()).toEqual(config);

    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({
          inputShape: [3],
          units: 2,
          kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
        }),
      ],
    });
    model.compile({ optimizer: new Lamb({ learningRate: 0.01 }), loss: 'meanSquaredError' });
    const xs = tf.tensor2d([
      [1, 2, 3],
      [0, 1, 0],
      [2, 0, 1],
    ]);
    const ys = tf.tensor2d([
      [1, 0],
      [0, 1],
      [1, 1],
    ]);
    const history = await model.fit(xs, ys, { epochs: 5, batchSize: 3, verbose: 0, shuffle: false });
    expect(history.history.loss![4]!).toBeLessThan(history.history.loss![0]! as number);

    const root = await mkdtemp(join(tmpdir(), 'crp-models-lamb-'));
    await model.save(fileSystem(join(root, 'm')), { includeOptimizer: true });
    const loaded = await tfl.loadLayersModel(fileSystem(join(root, 'm')));
    expect(loaded.optimizer).toBeInstanceOf(Lamb);
    expect((loaded.optimizer as Lamb).learningRate).toBe(0.01);
    await rm(root, { recursive: true, force: true });
    tf.dispose([xs, ys]);
    model.dispose();
    loaded.dispose();
  });

  it('rejects hyper-parameters outside their ranges', () => {
    expect(() => new Lamb({ learningRate: 0 })).toThrow(/learningRate is 0; valid: a number > 0/);
    expect(() => new Lamb({ beta1: 1 })).toThrow(/beta1 is 1; valid: 0 <= beta1 < 1/);
    expect(() => new Lamb({ weightDecay: -1 })).toThrow(/weightDecay is -1/);
    expect(() => new Lamb({ moments: 'gpu' as 'js' })).toThrow(/moments is 'gpu'; valid: 'backend', 'js'/);
  });

  it('refuses saved moments that are not <variable>/m and <variable>/v pairs, in both forms', async () => {
    const made: tf.Tensor[] = [];
    const t = () => {
      made.push(tf.zeros([2]));
      return made.at(-1)!;
    };
    const iterations = { name: 'iter', tensor: tf.scalar(3, 'int32') };
    made.push(iterations.tensor);
    for (const moments of ['backend', 'js'] as const) {
      const lamb = new Lamb({ moments });
      await expect(lamb.setWeights([iterations, { name: 'w/x', tensor: t() }])).rejects.toThrow(
        /Lamb weight 'w\/x' is not '<variable>\/m' or '<variable>\/v'/,
      );
      await expect(lamb.setWeights([iterations, { name: 'w/m', tensor: t() }])).rejects.toThrow(
        /Lamb weights have 'w\/m' but no 'w\/v'/,
      );
      lamb.dispose();
    }
    tf.dispose(made);
    const lamb = new Lamb({ moments: 'js' });
    const values = new Float32Array(2);
    expect(() => lamb.setMomentArrays([{ name: 'w/m', shape: [2], values }], 1)).toThrow(
      /Lamb weights have 'w\/m' but no 'w\/v'/,
    );
    expect(() => lamb.setMomentArrays([{ name: 'w', shape: [2], values }], 1)).toThrow(
      /is not '<variable>\/m'/,
    );
    lamb.dispose();
  });
});

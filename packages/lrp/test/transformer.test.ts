/**
 * Transformer blocks in the engine: every AttnLRP rule against a float64 loop written from LXT's formulas (not from
 * src/), the structural kinds (permute, class token, token select) moving relevance exactly, conservation per
 * encoder block of a small ViT, the adjoint (dot-product test), condition rows against a batch-1 pass, no leaks,
 * and the refusals. The whole-model comparison with LXT itself is in @crp/models (test/vit.test.ts), which builds
 * torchvision-shaped ViTs.
 */
import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import {
  Attributor,
  attnLrp,
  COMPOSITE_NAMES,
  type Composite,
  compositeNameFor,
  cpLrp,
  disposeResult,
  graphFromLayersModel,
  isTransformer,
  layerMapComposite,
  rules,
  TRANSFORMER_COMPOSITES,
  transformerLayers,
} from '../src/index.js';
import { expectClose, mulberry32, randomizeWeights, uniform, useBackend, values } from './helpers.js';

useBackend('cpu');

const sym = (t: unknown) => t as tfl.SymbolicTensor;

/** Values of a layer's weights as float64 arrays. */
function weights(model: tfl.LayersModel, name: string): Float64Array[] {
  return model
    .getLayer(name)
    .getWeights()
    .map((w) => values(w));
}

/** Relevance at `stops` for relevance `r` at `from`, with the model's input `x` (batch 1). */
function backwardTo(
  model: tfl.LayersModel,
  composite: Composite,
  x: tf.Tensor,
  from: string,
  r: Float64Array,
  stops: string[],
): Float64Array[] {
  const lrp = new Attributor(model, { composite, canonizers: [], keepSoftmax: true });
  const pass = lrp.forward(x);
  const rel = tf.tensor(Array.from(r), pass.output(from).shape);
  try {
    const out = lrp.backward(pass, { from, relevance: rel, stopAt: stops });
    const result = stops.map((s) => values(out.get(s)!));
    for (const t of out.values()) t.dispose();
    return result;
  } finally {
    rel.dispose();
    pass.dispose();
    lrp.dispose();
  }
}

function outputOf(model: tfl.LayersModel, x: tf.Tensor, layer: string): Float64Array {
  const sub = tfl.model({
    inputs: model.inputs,
    outputs: model.getLayer(layer).output as tfl.SymbolicTensor,
  });
  const y = sub.predict(x) as tf.Tensor;
  const v = values(y);
  y.dispose();
  return v;
}

describe('AttnLRP rules equal LXT’s formulas (float64 loops)', () => {
  const T = 3;
  const D = 5;
  const rng = mulberry32(11);
  const xData = uniform(rng, T * D, -2, 2);
  const rData = uniform(rng, T * D);

  test('LinearEpsilon on a Dense over tokens: R_in = x * W (R / (z + 1e-6))', () => {
    const input = tfl.input({ shape: [T, D], name: 'x' });
    const out = tfl.layers.dense({ units: 4, name: 'fc' }).apply(input);
    const model = tfl.model({ inputs: input, outputs: sym(out) });
    randomizeWeights(model, 3);
    const x = tf.tensor(Array.from(xData), [1, T, D]);
    const r = uniform(rng, T * 4);
    const [w, b] = weights(model, 'fc') as [Float64Array, Float64Array];
    const expected = new Float64Array(T * D);
    for (let t = 0; t < T; t++) {
      for (let o = 0; o < 4; o++) {
        let z = b[o]!;
        for (let i = 0; i < D; i++) z += xData[t * D + i]! * w[i * 4 + o]!;
        const s = r[t * 4 + o]! / (z + 1e-6);
        for (let i = 0; i < D; i++) expected[t * D + i]! += xData[t * D + i]! * w[i * 4 + o]! * s;
      }
    }
    expectClose(backwardTo(model, attnLrp(), x, 'fc', r, ['x'])[0]!, expected, 1e-5);
    x.dispose();
  });

  test('LayerNormEpsilon: epsilon on x - mean, the std held constant (LXT layer_norm)', () => {
    const input = tfl.input({ shape: [T, D], name: 'x' });
    const out = tfl.layers.layerNormalization({ epsilon: 1e-5, name: 'ln' }).apply(input);
    const model = tfl.model({ inputs: input, outputs: sym(out) });
    randomizeWeights(model, 4);
    const [gamma, beta] = weights(model, 'ln') as [Float64Array, Float64Array];
    const x = tf.tensor(Array.from(xData), [1, T, D]);
    const expected = new Float64Array(T * D);
    for (let t = 0; t < T; t++) {
      const row = xData.subarray(t * D, (t + 1) * D);
      const mean = row.reduce((a, v) => a + v, 0) / D;
      const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / D;
      const std = Math.sqrt(variance + 1e-5);
      // R_in_i = x_i * sum_j R_j / (y_j + eps) * gamma_j / std * (delta_ij - 1/D)
      const g = new Float64Array(D);
      for (let j = 0; j < D; j++) {
        const y = ((row[j]! - mean) / std) * gamma[j]! + beta[j]!;
        g[j] = ((rData[t * D + j]! / (y + 1e-6)) * gamma[j]!) / std;
      }
      const gMean = g.reduce((a, v) => a + v, 0) / D;
      for (let i = 0; i < D; i++) expected[t * D + i] = row[i]! * (g[i]! - gMean);
    }
    expectClose(backwardTo(model, attnLrp(), x, 'ln', rData, ['x'])[0]!, expected, 1e-5);
    x.dispose();
  });

  test('LayerNormEpsilon divides by y + eps without a sign: an output within float32 noise of -eps decides the token', () => {
    // vit_b_16, block 0's ln_2, token 28, feature 657: float64 y = 7.5508e-7; PyTorch float32 -4.0191e-7; this
    // engine 4.3213e-7 with the separate bias Add on the patch embedding, -1.0114e-6 with the fused one (the rms
    // float32 error of that layer is 1.5e-6 to 2.1e-6). Here feature 2 is that output: x - mean is exactly 0
    // there, so y_2 is exactly beta_2, and the relevance reaching it is y_2 v_2 (a Dense above gives x * W^T(...)).
    const input = tfl.input({ shape: [1, 4], name: 'x' });
    const out = tfl.layers.layerNormalization({ epsilon: 1e-6, name: 'ln' }).apply(input);
    const model = tfl.model({ inputs: input, outputs: sym(out) });
    const x = tf.tensor([1, -1, 0, 0], [1, 1, 4]);
    const v = [0.3, -0.2, 0.7, 0.1];
    const relevanceAtFeature0 = (y2: number) => {
      const beta = [0.1, -0.1, Math.fround(y2), 0.2];
      model.getLayer('ln').setWeights([tf.ones([4]), tf.tensor1d(beta)]);
      const y = outputOf(model, x, 'ln');
      const r = Float64Array.from(y, (yj, j) => yj * v[j]!);
      const got = backwardTo(model, attnLrp(), x, 'ln', r, ['x'])[0]!;
      // LXT: g_j = R_j / (y_j + 1e-6) / std, R_in_0 = x_0 (g_0 - mean(g))
      const row = [1, -1, 0, 0];
      const mean = row.reduce((a, b) => a + b, 0) / 4;
      const std = Math.sqrt(row.reduce((a, b) => a + (b - mean) ** 2, 0) / 4 + 1e-6);
      const g = Array.from(y, (yj, j) => r[j]! / (yj + 1e-6) / std);
      const want = row[0]! * (g[0]! - g.reduce((a, b) => a + b, 0) / 4);
      expect(y[2]).toBe(Math.fround(y2));
      expect(Math.abs(got[0]! - want)).toBeLessThan(1e-5 * Math.abs(want));
      return got[0]!;
    };
    const float64 = relevanceAtFeature0(7.5508e-7);
    const pytorch = relevanceAtFeature0(-4.0191e-7);
    const separate = relevanceAtFeature0(4.3213e-7);
    const fused = relevanceAtFeature0(-1.0114e-6);
    // y_2 / (y_2 + eps) is 0.43, -0.67, 0.30 and 88 for the four: R_in_0 is 0.247 (float64), 0.520 (PyTorch),
    // 0.279 (separate Add) and -21.6 (fused), from outputs at most 1.8e-6 apart: one float32 realization can land
    // next to the pole, and the whole token's relevance follows (mean(g) reaches every feature)
    expect(Math.abs(separate - float64)).toBeLessThan(0.2 * Math.abs(float64));
    expect(Math.abs(pytorch - float64)).toBeLessThan(2 * Math.abs(float64));
    expect(fused).toBeLessThan(-50 * Math.abs(float64));
    x.dispose();
  });

  test('SoftmaxDT over the last axis: R_in = x * (R - s * sum R) (LXT softmax)', () => {
    const input = tfl.input({ shape: [T, D], name: 'x' });
    const out = tfl.layers.softmax({ axis: -1, name: 'sm' }).apply(input);
    const model = tfl.model({ inputs: input, outputs: sym(out) });
    const x = tf.tensor(Array.from(xData), [1, T, D]);
    const expected = new Float64Array(T * D);
    for (let t = 0; t < T; t++) {
      const row = xData.subarray(t * D, (t + 1) * D);
      const max = Math.max(...row);
      const e = Array.from(row, (v) => Math.exp(v - max));
      const total = e.reduce((a, v) => a + v, 0);
      const rSum = rData.subarray(t * D, (t + 1) * D).reduce((a, v) => a + v, 0);
      for (let i = 0; i < D; i++)
        expected[t * D + i] = row[i]! * (rData[t * D + i]! - (e[i]! / total) * rSum);
    }
    expectClose(backwardTo(model, attnLrp(), x, 'sm', rData, ['x'])[0]!, expected, 1e-5);
    x.dispose();
  });

  /** q, k (or A, v) from the input through two Dense layers, then their product. */
  function productModel(transposeB: boolean, scale: number) {
    const input = tfl.input({ shape: [2, T, 4], name: 'x' });
    // a: [2, T, 4] queries, or [2, T, T] attention weights for A v
    const a = tfl.layers.dense({ units: transposeB ? 4 : T, name: 'a' }).apply(input);
    const b = tfl.layers.dense({ units: 4, name: 'b' }).apply(input);
    const p = transformerLayers.matMul({ transposeB, scale, name: 'p' }).apply([sym(a), sym(b)]);
    const model = tfl.model({ inputs: input, outputs: sym(p) });
    randomizeWeights(model, 5);
    const x = tf.tensor(Array.from(uniform(rng, 2 * T * 4, -1, 1)), [1, 2, T, 4]);
    return { model, x, a: outputOf(model, x, 'a'), b: outputOf(model, x, 'b') };
  }

  /** z[h, i, j] = sum_k a[h, i, k] * B[h, k, j] with B = b or b^T; all [2, T, 4] with T x T or T x 4 products. */
  function product(a: Float64Array, b: Float64Array, transposeB: boolean): { z: Float64Array; n: number } {
    const n = transposeB ? T : 4;
    const inner = transposeB ? 4 : T;
    const z = new Float64Array(2 * T * n);
    for (let h = 0; h < 2; h++)
      for (let i = 0; i < T; i++)
        for (let j = 0; j < n; j++)
          for (let k = 0; k < inner; k++) {
            const bv = transposeB ? b[h * T * 4 + j * 4 + k]! : b[h * T * 4 + k * 4 + j]!;
            z[(h * T + i) * n + j]! += a[h * T * inner + i * inner + k]! * bv;
          }
    return { z, n };
  }

  test('UniformMatmul on scale * q k^T: half to each factor, 2z + 1e-8 before the scale (LXT matmul + mul2)', () => {
    const scale = 0.5;
    const { model, x, a, b } = productModel(true, scale);
    const { z, n } = product(a, b, true);
    const r = uniform(rng, z.length);
    const ra = new Float64Array(a.length);
    const rb = new Float64Array(b.length);
    for (let h = 0; h < 2; h++)
      for (let i = 0; i < T; i++)
        for (let j = 0; j < n; j++) {
          const s = r[(h * T + i) * n + j]! / (2 * z[(h * T + i) * n + j]! + 1e-8);
          for (let k = 0; k < 4; k++) {
            const ai = h * T * 4 + i * 4 + k;
            const bj = h * T * 4 + j * 4 + k;
            ra[ai]! += a[ai]! * b[bj]! * s;
            rb[bj]! += a[ai]! * b[bj]! * s;
          }
        }
    const [ga, gb] = backwardTo(model, attnLrp(), x, 'p', r, ['a', 'b']);
    expectClose(ga!, ra, 1e-5);
    expectClose(gb!, rb, 1e-5);
    // with the epsilon negligible, the two halves sum to the relevance (the uniform rule conserves)
    const total = (v: Float64Array) => v.reduce((s, e) => s + e, 0);
    expect(Math.abs(total(ga!) + total(gb!) - total(r))).toBeLessThan(1e-4 * total(r.map(Math.abs)));
    x.dispose();
  });

  test('CPMatmul on A v: nothing to A, the epsilon rule (z + 1e-6) to v (LXT multi_head_attention_cp)', () => {
    const { model, x, a, b } = productModel(false, 1);
    const { z, n } = product(a, b, false);
    const r = uniform(rng, z.length);
    const rb = new Float64Array(b.length);
    for (let h = 0; h < 2; h++)
      for (let i = 0; i < T; i++)
        for (let j = 0; j < n; j++) {
          const s = r[(h * T + i) * n + j]! / (z[(h * T + i) * n + j]! + 1e-6);
          for (let k = 0; k < T; k++) {
            const bk = h * T * 4 + k * 4 + j;
            rb[bk]! += a[h * T * T + i * T + k]! * b[bk]! * s;
          }
        }
    const [ga, gb] = backwardTo(model, cpLrp(), x, 'p', r, ['a', 'b']);
    expect(Array.from(ga!).every((v) => v === 0)).toBe(true);
    expectClose(gb!, rb, 1e-5);
    x.dispose();
  });

  test('Add2 splits a sum in proportion to the summands; a position embedding keeps its share', () => {
    const input = tfl.input({ shape: [T, D], name: 'x' });
    const a = tfl.layers.dense({ units: D, name: 'a' }).apply(input);
    const sum = tfl.layers.add({ name: 'sum' }).apply([sym(a), input]);
    const pos = transformerLayers.positionEmbedding({ name: 'pos' }).apply(sym(sum));
    const model = tfl.model({ inputs: input, outputs: sym(pos) });
    randomizeWeights(model, 6);
    const x = tf.tensor(Array.from(xData), [1, T, D]);
    const av = outputOf(model, x, 'a');
    const [p] = weights(model, 'pos') as [Float64Array];
    const rSum = new Float64Array(T * D);
    const ra = new Float64Array(T * D);
    const rx = new Float64Array(T * D);
    for (let i = 0; i < T * D; i++) {
      const s = av[i]! + xData[i]!;
      rSum[i] = (s * rData[i]!) / (s + p[i]! + 1e-8);
      ra[i] = (av[i]! * rSum[i]!) / (s + 1e-8);
      rx[i] = (xData[i]! * rSum[i]!) / (s + 1e-8);
    }
    const [gSum] = backwardTo(model, attnLrp(), x, 'pos', rData, ['sum']);
    expectClose(gSum!, rSum, 1e-5);
    // the same rule by name in a layer map; stopped at 'a', the input gets only the Add's share
    const composite = layerMapComposite([['add', rules.add2()]]);
    const [ga, gx] = backwardTo(model, composite, x, 'sum', rSum, ['a', 'x']);
    expectClose(ga!, ra, 1e-5);
    expectClose(gx!, rx, 1e-5);
    x.dispose();
  });
});

interface TinyVitOptions {
  blocks?: number;
  /** Zero every bias, LayerNorm beta and the position embedding: then every rule but the softmax's conserves. */
  zeroBiases?: boolean;
  seed?: number;
}

/** A small ViT from the engine's layers: 8x8x3 input, 4x4 patches (4 tokens + class token), width 8, 2 heads. */
function tinyVit(o: TinyVitOptions = {}): tfl.LayersModel {
  const L = tfl.layers;
  const [T, D, H] = [5, 8, 2];
  const input = tfl.input({ shape: [8, 8, 3], name: 'input' });
  let x = sym(L.conv2d({ filters: D, kernelSize: 4, strides: 4, name: 'conv_proj' }).apply(input));
  x = sym(L.reshape({ targetShape: [4, D], name: 'tokens' }).apply(x));
  x = sym(transformerLayers.classToken({ name: 'class_token' }).apply(x));
  x = sym(transformerLayers.positionEmbedding({ name: 'pos' }).apply(x));
  for (let i = 0; i < (o.blocks ?? 2); i++) {
    const b = `b${i}.`;
    const y = sym(L.layerNormalization({ epsilon: 1e-6, name: `${b}ln_1` }).apply(x));
    const heads = (n: string) => {
      const t = L.dense({ units: D, name: `${b}${n}` }).apply(y);
      const s = L.reshape({ targetShape: [T, H, D / H], name: `${b}${n}_split` }).apply(t);
      return sym(L.permute({ dims: [2, 1, 3], name: `${b}${n}_heads` }).apply(s));
    };
    const scores = transformerLayers
      .matMul({ transposeB: true, scale: 0.5, name: `${b}scores` })
      .apply([heads('q'), heads('k')]);
    const attention = L.softmax({ axis: -1, name: `${b}softmax` }).apply(sym(scores));
    let c = sym(transformerLayers.matMul({ name: `${b}context` }).apply([sym(attention), heads('v')]));
    c = sym(L.permute({ dims: [2, 1, 3], name: `${b}context_tokens` }).apply(c));
    c = sym(L.reshape({ targetShape: [T, D], name: `${b}merge` }).apply(c));
    c = sym(L.dense({ units: D, name: `${b}out_proj` }).apply(c));
    x = sym(L.add({ name: `${b}add_1` }).apply([x, c]));
    let m = sym(L.layerNormalization({ epsilon: 1e-6, name: `${b}ln_2` }).apply(x));
    m = sym(L.dense({ units: 16, activation: 'gelu', name: `${b}mlp.0` }).apply(m));
    m = sym(L.dense({ units: D, name: `${b}mlp.3` }).apply(m));
    x = sym(L.add({ name: `${b}add_2` }).apply([x, m]));
  }
  x = sym(L.layerNormalization({ epsilon: 1e-6, name: 'ln' }).apply(x));
  x = sym(transformerLayers.selectToken({ name: 'cls' }).apply(x));
  const model = tfl.model({ inputs: input, outputs: sym(L.dense({ units: 3, name: 'head' }).apply(x)) });
  randomizeWeights(model, o.seed ?? 21, 0.8);
  if (o.zeroBiases) {
    for (const layer of model.layers) {
      const ws = layer.getWeights();
      const cls = layer.getClassName();
      const zero = (i: number) =>
        cls === 'PositionEmbedding' || (cls === 'LayerNormalization' ? i === 1 : i === 1 && ws.length === 2);
      if (ws.length === 0) continue;
      const made = ws.map((w, i) => (zero(i) ? tf.zerosLike(w) : tf.clone(w)));
      layer.setWeights(made);
      for (const t of made) t.dispose();
    }
  }
  return model;
}

const image = (seed: number, n = 1) =>
  tf.tensor(Array.from(uniform(mulberry32(seed), n * 8 * 8 * 3, -1, 1)), [n, 8, 8, 3]);
const sumOf = (t: tf.Tensor) => values(t).reduce((a, v) => a + v, 0);

describe('a small ViT', () => {
  test('every layer is a known kind; the softmax inside is an activation node, the class token a structural one', () => {
    const model = tinyVit();
    const graph = graphFromLayersModel(model);
    const kinds = (k: string) => graph.nodes.filter((n) => n.kind === k).map((n) => n.id);
    expect(kinds('layerNorm')).toEqual(['b0.ln_1', 'b0.ln_2', 'b1.ln_1', 'b1.ln_2', 'ln']);
    expect(kinds('matMul')).toEqual(['b0.scores', 'b0.context', 'b1.scores', 'b1.context']);
    expect(kinds('permute')).toHaveLength(8);
    expect(graph.node('b0.softmax').activation).toBe('softmax');
    expect(graph.node('b0.mlp.0').activation).toBe('gelu');
    expect([graph.node('class_token').kind, graph.node('pos').kind, graph.node('cls').kind]).toEqual([
      'classToken',
      'positionEmbedding',
      'selectToken',
    ]);
    // the engine's forward pass is the model's
    const x = image(1);
    const lrp = new Attributor(model, { composite: attnLrp() });
    const pass = lrp.forward(x);
    const y = model.predict(x) as tf.Tensor;
    expectClose(pass.prediction, values(y), 1e-6);
    for (const t of [x, y]) t.dispose();
    pass.dispose();
    lrp.dispose();
  });

  /** The rules of attn_lrp / cp_lrp with every epsilon 0: then conservation holds to float precision. */
  const exact = (cp: boolean): Composite =>
    layerMapComposite(
      [
        ['matMul', cp ? rules.cpMatmul(0) : rules.uniformMatmul(0)],
        [['conv2d', 'dense'], rules.linearEpsilon(0)],
        ['layerNorm', rules.layerNormEpsilon(0)],
        [(n) => n.activation === 'softmax' && n.kind === 'activation', rules.softmaxDT()],
        ['activation', rules.pass()],
        [['add', 'positionEmbedding'], rules.add2(0)],
      ],
      cp ? 'CP-LRP (epsilon 0)' : 'AttnLRP (epsilon 0)',
    );

  test('conservation per block to float precision: CP-LRP exactly, AttnLRP up to the softmax’s bias term (zero biases)', () => {
    const model = tinyVit({ zeroBiases: true });
    const x = image(2);
    const blockIn = ['pos', 'b0.add_2'];
    const blockOut = ['b0.add_2', 'b1.add_2'];
    for (const composite of [exact(false), exact(true), attnLrp(), cpLrp()]) {
      // the named composites' epsilons (1e-6 on linear layers) absorb a little more
      const tol = composite.name.endsWith('(epsilon 0)') ? 2e-6 : 1e-4;
      const lrp = new Attributor(model, { composite });
      const record = [
        'pos',
        'class_token',
        'ln',
        'b0.add_2',
        'b1.add_2',
        'b0.softmax',
        'b0.scores',
        'b1.softmax',
        'b1.scores',
      ];
      const r = lrp.attribute(x, { target: 1, recordLayers: record });
      const s = Object.fromEntries(record.map((k) => [k, sumOf(r.relevances[k]!)]));
      const logit = values(r.prediction)[1]!;
      // the head and the final LayerNorm conserve
      expect(Math.abs(s.ln! - logit)).toBeLessThan(tol * Math.abs(logit));
      for (const [i, block] of ['b0', 'b1'].entries()) {
        // what the softmax absorbs: its output's relevance minus its input's (the scores' output)
        const absorbed = s[`${block}.softmax`]! - s[`${block}.scores`]!;
        if (composite.name.startsWith('CP-LRP'))
          expect([s[`${block}.softmax`], s[`${block}.scores`]]).toEqual([0, 0]);
        const drift = s[blockIn[i]!]! - (s[blockOut[i]!]! - absorbed);
        expect(Math.abs(drift), `${composite.name} ${block}`).toBeLessThan(tol * Math.abs(logit));
      }
      // the position embedding is zero here; the class token keeps its slot's share
      expect(Math.abs(s.pos! - s.class_token!)).toBeLessThan(tol * Math.abs(logit));
      const slot0 = values(r.relevances.pos!)
        .slice(0, 8)
        .reduce((a, v) => a + v, 0);
      expect(Math.abs(sumOf(r.relevance) - (s.pos! - slot0))).toBeLessThan(tol * Math.abs(logit));
      disposeResult(r);
      lrp.dispose();
    }
    x.dispose();
  });

  test('the adjoint is the transpose of the backward pass (dot-product test), for AttnLRP and CP-LRP', () => {
    const model = tinyVit();
    const x = image(3);
    for (const composite of [attnLrp(), cpLrp()]) {
      const lrp = new Attributor(model, { composite });
      const pass = lrp.forward(x);
      for (const layer of ['head', 'b1.add_1', 'b0.context', 'b0.softmax', 'class_token']) {
        const shape = pass.output(layer).shape;
        const u = tf.tensor(
          Array.from(
            uniform(
              mulberry32(4),
              shape.reduce((a, b) => a * b, 1),
            ),
          ),
          shape,
        );
        const v = tf.tensor(Array.from(uniform(mulberry32(5), 8 * 8 * 3)), [1, 8, 8, 3]);
        const bu = lrp.backward(pass, { from: layer, relevance: u });
        const btv = lrp.adjoint(pass, { values: v, record: [layer] });
        const lhs = values(v).reduce((a, e, i) => a + e * values(bu.get('input')!)[i]!, 0);
        const btvValues = values(btv.get(layer)!);
        const rhs = values(u).reduce((a, e, i) => a + e * btvValues[i]!, 0);
        expect(Math.abs(lhs - rhs), `${composite.name} ${layer}: ${lhs} vs ${rhs}`).toBeLessThan(
          1e-4 * Math.max(1, Math.abs(lhs)),
        );
        for (const t of [u, v, ...bu.values(), ...btv.values()]) t.dispose();
      }
      pass.dispose();
      lrp.dispose();
    }
    x.dispose();
  });

  test('rows of relevance against one forward pass equal one backward pass per row', () => {
    const model = tinyVit();
    const x = image(6);
    const lrp = new Attributor(model, { composite: attnLrp() });
    const pass = lrp.forward(x);
    const shape = pass.output('b1.mlp.0').shape.slice(1);
    const size = shape.reduce((a, b) => a * b, 1);
    const rows = tf.tensor(Array.from(uniform(mulberry32(7), 3 * size)), [3, ...shape]);
    const all = lrp.backward(pass, { from: 'b1.mlp.0', relevance: rows });
    const together = values(all.get('input')!);
    for (let k = 0; k < 3; k++) {
      const row = tf.slice(rows, k, 1);
      const one = lrp.backward(pass, { from: 'b1.mlp.0', relevance: row });
      expectClose(together.slice(k * 192, (k + 1) * 192), values(one.get('input')!), 1e-5);
      for (const t of [row, ...one.values()]) t.dispose();
    }
    for (const t of [x, rows, ...all.values()]) t.dispose();
    pass.dispose();
    lrp.dispose();
  });

  test('wasm computes what cpu computes (GELU through erf, batched products)', async () => {
    const model = tinyVit();
    const run = () => {
      const x = image(8, 2);
      const r = new Attributor(model, { composite: attnLrp() }).attribute(x, { target: [0, 2] });
      const out = values(r.relevance);
      disposeResult(r);
      x.dispose();
      return out;
    };
    const onCpu = run();
    await tf.setBackend('wasm');
    try {
      expectClose(run(), onCpu, 1e-4);
    } finally {
      await tf.setBackend('cpu');
    }
  });

  test('no tensor leaks: attribution, rows and the adjoint leave numTensors unchanged', () => {
    const model = tinyVit();
    const x = image(9);
    for (const composite of [attnLrp(), cpLrp()]) {
      const lrp = new Attributor(model, { composite });
      disposeResult(lrp.attribute(x, { target: 0 }));
      const before = tf.memory().numTensors;
      for (let i = 0; i < 20; i++)
        disposeResult(lrp.attribute(x, { target: i % 3, recordLayers: ['b0.context'] }));
      const pass = lrp.forward(x);
      const v = tf.onesLike(x);
      for (const t of lrp.adjoint(pass, { values: v, record: ['b1.add_2', 'b0.softmax'] }).values())
        t.dispose();
      v.dispose();
      pass.dispose();
      expect(tf.memory().numTensors).toBe(before);
      lrp.dispose();
    }
    x.dispose();
  });
});

describe('the transformer layers are serialisable', () => {
  test('a ViT saved as JSON and loaded again computes the same logits', async () => {
    const model = tinyVit({ blocks: 1 });
    const loaded = await tfl.models.modelFromJSON(model.toJSON(null, false) as tf.serialization.ConfigDict);
    loaded.setWeights(model.getWeights());
    expect(loaded.layers.map((l) => l.getClassName())).toEqual(model.layers.map((l) => l.getClassName()));
    expect(loaded.getLayer('b0.scores').getConfig()).toMatchObject({ transposeB: true, scale: 0.5 });
    const x = image(12);
    const a = model.predict(x) as tf.Tensor;
    const b = loaded.predict(x) as tf.Tensor;
    expectClose(b, values(a), 1e-6);
    for (const t of [x, a, b]) t.dispose();
  });
});

describe('refusals', () => {
  test('a position embedding fed another token count names the layer and refuses to interpolate', () => {
    const pe = transformerLayers.positionEmbedding({ name: 'pos' });
    const a = tfl.input({ shape: [5, 4] });
    pe.apply(a);
    const b = tfl.input({ shape: [7, 4] });
    const model = tfl.model({ inputs: b, outputs: sym(pe.apply(b)) });
    const x = tf.zeros([1, 7, 4]);
    expect(() => model.predict(x)).toThrowError(/layer 'pos'.*\[7, 4\].*\[5, 4\].*not supported/);
    try {
      model.predict(x);
    } catch (e) {
      expect(e instanceof CrpError && e.code).toBe('invalid-shape');
    }
    x.dispose();
  });

  test('LayerNormalization over another axis than the features is refused by name', () => {
    const input = tfl.input({ shape: [3, 4] });
    const model = tfl.model({
      inputs: input,
      outputs: sym(tfl.layers.layerNormalization({ axis: 1, name: 'ln_tokens' }).apply(input)),
    });
    expect(() => graphFromLayersModel(model)).toThrowError(/'ln_tokens'.*supported: the last axis/);
  });

  test('an AttnLRP rule on a layer of another kind says which kinds it takes', () => {
    const model = tinyVit({ blocks: 1 });
    const lrp = new Attributor(model, { composite: layerMapComposite([['dense', rules.softmaxDT()]]) });
    const x = image(10);
    expect(() => lrp.attribute(x, { target: 0 })).toThrowError(
      /SoftmaxDT applies to a softmax.*'head' is Dense/,
    );
    x.dispose();
    lrp.dispose();
  });

  test('the composites are known by name', () => {
    expect(COMPOSITE_NAMES).toContain('attn_lrp');
    expect(COMPOSITE_NAMES).toContain('cp_lrp');
    const model = tinyVit({ blocks: 1 });
    const a = new Attributor(model, { composite: 'attn_lrp' });
    const c = new Attributor(model, { composite: 'cp_lrp' });
    expect([a.ruleOf('b0.scores').name, c.ruleOf('b0.context').name, a.ruleOf('b0.ln_1').name]).toEqual([
      'UniformMatmul',
      'CPMatmul',
      'LayerNormEpsilon',
    ]);
    expect([a.ruleOf('b0.softmax').name, a.ruleOf('b0.mlp.0').name, a.ruleOf('pos').name]).toEqual([
      'SoftmaxDT',
      'LinearEpsilon',
      'Add2',
    ]);
    a.dispose();
    c.dispose();
  });

  test('a transformer defaults to attn_lrp; a CNN composite named for it is refused with the ones that fit', () => {
    const model = tinyVit({ blocks: 1 });
    const graph = graphFromLayersModel(model);
    expect(isTransformer(graph)).toBe(true);
    expect(compositeNameFor(graph)).toBe('attn_lrp');
    expect(compositeNameFor(graph, 'cp_lrp')).toBe('cp_lrp');
    const byDefault = new Attributor(model);
    expect(byDefault.composite.name).toBe('AttnLRP');
    byDefault.dispose();
    for (const cnn of COMPOSITE_NAMES.filter(
      (n) => !(TRANSFORMER_COMPOSITES as readonly string[]).includes(n),
    )) {
      let error: unknown;
      try {
        new Attributor(model, { composite: cnn });
      } catch (e) {
        error = e;
      }
      expect(error, cnn).toBeInstanceOf(CrpError);
      expect((error as CrpError).code).toBe('unsupported-composite');
      expect((error as CrpError).message).toContain(`composite '${cnn}' is for CNNs`);
      expect((error as CrpError).message).toContain('b0.scores');
      expect((error as CrpError).message).toContain('attn_lrp or cp_lrp');
    }
    // an unknown name stays an unknown name; a Composite object is the caller's own choice and is kept
    expect(() => compositeNameFor(graph, 'attn')).toThrow(/unknown composite 'attn'/);
    const own = layerMapComposite([['dense', rules.epsilon()]], 'Own');
    const a = new Attributor(model, { composite: own });
    expect(a.composite).toBe(own);
    a.dispose();
    // a CNN: epsilon_plus_flat by default, and any composite (attn_lrp too: LinearEpsilon on every layer)
    const cnn = tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [3], units: 2, name: 'fc' })],
    });
    const cnnGraph = graphFromLayersModel(cnn);
    expect([isTransformer(cnnGraph), compositeNameFor(cnnGraph)]).toEqual([false, 'epsilon_plus_flat']);
    expect(compositeNameFor(cnnGraph, 'attn_lrp')).toBe('attn_lrp');
    const plain = new Attributor(cnn);
    expect(plain.composite.name).toBe('EpsilonPlusFlat');
    plain.dispose();
    cnn.dispose();
  });
});

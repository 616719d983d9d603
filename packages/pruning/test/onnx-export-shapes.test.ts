import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeOnnx, importOnnx, type OnnxTensor, parseOnnxModel } from '@crp/models';
import { onnxTensorValues } from '@crp/models/internal';
import { formulaImage } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { ChannelMask, exportPruned, MaskedModel } from '../src/index.js';
import { expectCrpError, useBackend } from './helpers.js';

/**
 * The ONNX writer on graphs whose other constants name a pruned count (encodeOnnx of @crp/models): the shape
 * constants of Reshapes, `value_info`, a Gemm bias stored as [1, units], and a Gemm after the flatten of a
 * 4 x 4 map. Fixtures from packages/models/fixtures-src/make-reshape-net.py (torch.onnx.export); the written
 * pruned file was checked once by python3-onnx's full checker (fixtures-src/check-pruned-onnx.py), whose verdict
 * and logits are in test/fixtures/pruned-reshape-net-onnx.json.
 */
const ONNX = join(import.meta.dirname, '..', '..', 'models', 'test', 'fixtures', 'onnx');
const bytesOf = (file: string) => new Uint8Array(readFileSync(join(ONNX, file)));

useBackend('wasm');

function relativeGap(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let gap = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    gap = Math.max(gap, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(a[i]!));
  }
  return gap / scale;
}

/** The pruned model written and read back: its logits, the pruned model's and the masked model's. */
async function roundTrip(
  source: Uint8Array,
  model: tfl.LayersModel,
  masks: Record<string, number[]>,
  x: tf.Tensor,
) {
  const mask = ChannelMask.of(masks);
  const masked = await MaskedModel.create(model, mask);
  const pruned = await exportPruned(model, mask);
  try {
    const written = encodeOnnx(source, pruned);
    const back = importOnnx(written);
    const logits = [pruned, back, masked.model].map((m) => {
      const y = m.predict(x) as tf.Tensor;
      const v = y.dataSync().slice();
      y.dispose();
      return v;
    });
    back.dispose();
    return { written, pruned: logits[0]!, back: logits[1]!, masked: logits[2]! };
  } finally {
    pruned.dispose();
    masked.dispose();
  }
}

const tensor = (t: OnnxTensor | undefined) => Array.from(onnxTensorValues(t!));

/** The relative gap of the model's logits for view-flatten.json's input (make-view-flatten.py of @crp/models) to
 * torch's in `logitsFile`. */
function gapToTorch(model: tfl.LayersModel, logitsFile: string): number {
  const read = (file: string) => JSON.parse(readFileSync(join(ONNX, file), 'utf8'));
  const { input, inputShape } = read('view-flatten.json') as { input: number[]; inputShape: number[] };
  const { logits } = read(logitsFile) as { logits: number[] };
  const ours = tf.tidy(() => {
    const x = tf.transpose(tf.tensor4d(input, inputShape as [number, number, number, number]), [0, 2, 3, 1]);
    return (model.predict(x) as tf.Tensor).dataSync().slice();
  });
  return relativeGap(logits, ours);
}

describe('a pruned model whose shape constants name pruned counts, written as .onnx', () => {
  it('reshape-net: the Reshape targets, value_info, the [1, units] bias and the flattened Gemm columns follow the pruning', async () => {
    const source = bytesOf('reshape-net.onnx');
    const model = importOnnx(source);
    const x = formulaImage(2, 8, 33);
    try {
      // conv2 loses channels 1 and 5 of 8 (the 4 x 4 map each head reads), fc_gap1 unit 2 of 6
      const r = await roundTrip(source, model, { conv2: [1, 5], fc_gap1: [2] }, x);
      expect(relativeGap(r.pruned, r.back)).toBeLessThan(1e-5);
      expect(relativeGap(r.masked, r.back)).toBeLessThan(1e-5);
      const [src, out] = [parseOnnxModel(source), parseOnnxModel(r.written)];
      const init = (m: typeof out, name: string) => m.graph.initializers.find((t) => t.name === name);
      // [-1, 128] (a Constant node) -> [-1, 6 * 16]; [0, 8] (an initializer) -> [0, 6]: -1 and 0 kept
      const constant = out.graph.nodes.find((n) => n.name === '/Reshape_shape')!.attributes.get('value')!.t!;
      expect([constant.dims, constant.dataType, tensor(constant)]).toEqual([[2], 7, [-1, 96]]);
      expect(tensor(init(out, '/Constant_1_output_0'))).toEqual([0, 6]);
      expect(init(out, '/Constant_1_output_0')!.dims).toEqual([2]);
      // the bias torch would write as [6] is stored as [1, 6]: written as [1, 5], its values the kept units'
      expect(init(out, 'fc_gap1.bias')!.dims).toEqual([1, 5]);
      const bias = tensor(init(src, 'fc_gap1.bias'));
      expect(tensor(init(out, 'fc_gap1.bias'))).toEqual([0, 1, 3, 4, 5].map((u) => Math.fround(bias[u]!)));
      // the Gemm after the flatten of [8, 4, 4] in NCHW order: pruning channel c removes the 16 consecutive
      // columns c * 16 ... c * 16 + 15 of each row, and the others keep their order
      for (const name of ['fc_flat.weight', 'fc_view.weight']) {
        const [w0, w1] = [tensor(init(src, name)), tensor(init(out, name))];
        expect(init(out, name)!.dims).toEqual([5, 96]);
        const kept = Array.from({ length: 128 }, (_, i) => i).filter(
          (i) => ![1, 5].includes(Math.floor(i / 16)),
        );
        expect(w1).toEqual(Array.from({ length: 5 }, (_, u) => kept.map((i) => w0[u * 128 + i]!)).flat());
      }
      // value_info: the pruned counts replaced, every other dim (the batch of 2 torch traced) kept, none lost
      const shapes = (m: typeof out) => new Map(m.graph.valueInfo.map((v) => [v.name, v.shape]));
      const [before, after] = [shapes(src), shapes(out)];
      expect([...after.keys()]).toEqual([...before.keys()]);
      const expected = new Map(before);
      for (const [name, shape] of Object.entries({
        '/conv2/Conv_output_0': [2, 6, 4, 4],
        '/Relu_1_output_0': [2, 6, 4, 4],
        '/Flatten_output_0': [2, 96],
        '/Reshape_output_0': [2, 96],
        '/GlobalAveragePool_output_0': [2, 6, 1, 1],
        '/Reshape_1_output_0': [2, 6],
        '/fc_gap1/Gemm_output_0': [2, 5],
        '/Relu_2_output_0': [2, 5],
      }))
        expected.set(name, shape);
      expect(after).toEqual(expected);
      // the nodes, inputs and outputs are the source's
      expect(out.graph.nodes.filter((n) => n.opType !== 'Constant')).toEqual(
        src.graph.nodes.filter((n) => n.opType !== 'Constant'),
      );
      expect([out.graph.inputs, out.graph.outputs]).toEqual([src.graph.inputs, src.graph.outputs]);

      // the bytes python3-onnx's full checker passed once (fixtures-src/check-pruned-onnx.py)
      await mkdir('test-artifacts', { recursive: true });
      await writeFile(join('test-artifacts', 'pruned-reshape-net.onnx'), r.written);
      const fixture = join(import.meta.dirname, 'fixtures', 'pruned-reshape-net-onnx.json');
      expect(existsSync(fixture), 'run fixtures-src/check-pruned-onnx.py').toBe(true);
      const python = JSON.parse(readFileSync(fixture, 'utf8')) as {
        sha256: string;
        checker: string;
        logits: number[];
      };
      expect(createHash('sha256').update(r.written).digest('hex')).toBe(python.sha256);
      expect(python.checker).toBe('onnx.checker.check_model(full_check=True): passed');
      expect(relativeGap(python.logits, r.back)).toBeLessThan(1e-5);
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('reshape-targets: each form of target (0, -1, the fixed batch, a count, allowzero) is written as ONNX reads the pruned shape', async () => {
    // make-reshape-net.py: conv's f [2, 4, 4, 4] read through [0, -1], [2, 64], [0, 64], [-1, 64] (allowzero 1)
    // and, pooled, [-1, 0]
    const source = bytesOf('reshape-targets.onnx');
    const model = importOnnx(source);
    const x = formulaImage(2, 4, 35);
    try {
      const r = await roundTrip(source, model, { conv: [1] }, x);
      expect(relativeGap(r.pruned, r.back)).toBeLessThan(1e-5);
      expect(relativeGap(r.masked, r.back)).toBeLessThan(1e-5);
      const out = parseOnnxModel(r.written);
      const target = (k: string) => tensor(out.graph.initializers.find((t) => t.name === `shape_${k}`));
      // a count becomes the pruned one (3 channels of 4 x 4); 0 (batch or channels), -1 and the batch of 2 stay
      expect(['a', 'b', 'c', 'd', 'e'].map(target)).toEqual([
        [0, -1],
        [2, 48],
        [0, 48],
        [-1, 0],
        [-1, 48],
      ]);
      expect(out.graph.initializers.find((t) => t.name === 'ga')!.dims).toEqual([3, 48]);
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('view-flatten: a flatten computed from the input shape (dynamic batch) needs no rewrite; the pruned file reads back', async () => {
    // fixtures-src/make-view-flatten.py of @crp/models: `x.view(x.size(0), -1)` exported with a dynamic batch, its
    // target Shape -> Gather -> Unsqueeze -> Concat([N], [-1]), which stays right for any channel count
    const source = bytesOf('view-flatten-opset13.onnx');
    const model = importOnnx(source);
    const x = formulaImage(2, 8, 35);
    try {
      const r = await roundTrip(source, model, { 'features.3': [1, 4] }, x);
      expect(relativeGap(r.pruned, r.back)).toBeLessThan(1e-5);
      expect(relativeGap(r.masked, r.back)).toBeLessThan(1e-5);
      const [src, out] = [parseOnnxModel(source), parseOnnxModel(r.written)];
      expect(out.graph.nodes).toEqual(src.graph.nodes);
      // 4 of the 6 channels of 4 x 4 left in the classifier's columns
      expect(out.graph.initializers.find((t) => t.name === 'classifier.weight')!.dims).toEqual([5, 64]);
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it("view-count: `x.view(x.size(0), 96)` on a dynamic batch gets its Concat's constant [96] rewritten to the pruned count", async () => {
    // fixtures-src/make-view-flatten.py of @crp/models: Shape -> Gather -> Unsqueeze -> Concat(., Constant [96])
    const source = bytesOf('view-count-opset13.onnx');
    const model = importOnnx(source);
    const x = formulaImage(2, 8, 35);
    try {
      const r = await roundTrip(source, model, { 'features.3': [1, 4] }, x);
      expect(relativeGap(r.pruned, r.back)).toBeLessThan(1e-5);
      expect(relativeGap(r.masked, r.back)).toBeLessThan(1e-5);
      const [src, out] = [parseOnnxModel(source), parseOnnxModel(r.written)];
      const concat = out.graph.nodes.find((n) => n.opType === 'Concat')!;
      const count = out.graph.nodes.find((n) => n.outputs[0] === concat.inputs[1])!;
      // 4 of the 6 channels of 4 x 4, in place: only the Concat reads the constant
      expect(count.opType).toBe('Constant');
      expect(tensor(count.attributes.get('value')!.t)).toEqual([64]);
      const others = (m: typeof out) => m.graph.nodes.filter((n) => n !== count && n.name !== count.name);
      expect(others(out)).toEqual(others(src));
      expect(out.graph.initializers.map((t) => t.name)).toEqual(src.graph.initializers.map((t) => t.name));
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('view-count-shared: a count constant two Concats read is rewritten in place when both need the new count, else a new one is written for the pruned branch', async () => {
    const source = bytesOf('view-count-shared.onnx');
    const model = importOnnx(source);
    const x = formulaImage(2, 8, 36);
    const counts = (m: ReturnType<typeof parseOnnxModel>) =>
      m.graph.nodes
        .filter((n) => n.opType === 'Concat')
        .map((c) => {
          const name = c.inputs[1]!;
          const t =
            m.graph.initializers.find((i) => i.name === name) ??
            m.graph.nodes.find((n) => n.outputs[0] === name)!.attributes.get('value')!.t;
          return [name, tensor(t)];
        });
    try {
      const src = parseOnnxModel(source);
      const [[shared]] = counts(src) as [[string, number[]]];
      expect(counts(src)).toEqual([
        [shared, [96]],
        [shared, [96]],
      ]);
      // branch a alone: its Concat reads a new initializer [80], branch b's the shared [96]
      const one = await roundTrip(source, model, { conv_a: [1] }, x);
      expect(relativeGap(one.pruned, one.back)).toBeLessThan(1e-5);
      expect(relativeGap(one.masked, one.back)).toBeLessThan(1e-5);
      const written = parseOnnxModel(one.written);
      expect(counts(written)).toEqual([
        [`${shared}_pruned`, [80]],
        [shared, [96]],
      ]);
      expect(written.graph.initializers.find((t) => t.name === `${shared}_pruned`)!.dataType).toBe(7); // int64
      // both branches pruned by one channel: the one constant becomes [80], no new one
      const both = await roundTrip(source, model, { conv_a: [1], conv_b: [4] }, x);
      expect(relativeGap(both.masked, both.back)).toBeLessThan(1e-5);
      const written2 = parseOnnxModel(both.written);
      expect(counts(written2)).toEqual([
        [shared, [80]],
        [shared, [80]],
      ]);
      expect(written2.graph.initializers.map((t) => t.name)).toEqual(
        src.graph.initializers.map((t) => t.name),
      );
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('view-count-reader: a Concat count that a Reshape of a weight also reads gets a new initializer for the pruned branch; the weight keeps the old one', async () => {
    // make-view-flatten.py: branch a's Concat reads the Constant [96] that gain_view (Reshape of the weight
    // [6, 16] branch b is scaled by) reads as its target
    const source = bytesOf('view-count-reader.onnx');
    const model = importOnnx(source);
    const x = formulaImage(2, 8, 37);
    const countValue = (m: ReturnType<typeof parseOnnxModel>, name: string) =>
      tensor(
        m.graph.initializers.find((i) => i.name === name) ??
          m.graph.nodes.find((n) => n.outputs[0] === name)!.attributes.get('value')!.t,
      );
    try {
      expect(gapToTorch(model, 'view-count-reader.json')).toBeLessThan(1e-5);
      const src = parseOnnxModel(source);
      const view = src.graph.nodes.find((n) => n.name === 'gain_view')!;
      const count = view.inputs[1]!;
      const concatA = src.graph.nodes.find((n) => n.opType === 'Concat' && n.inputs[1] === count)!;
      expect(countValue(src, count)).toEqual([96]);
      const r = await roundTrip(source, model, { conv_a: [1] }, x);
      expect(relativeGap(r.pruned, r.back)).toBeLessThan(1e-5);
      expect(relativeGap(r.masked, r.back)).toBeLessThan(1e-5);
      const out = parseOnnxModel(r.written);
      // branch a's Concat reads a new int64 initializer [80] (5 of 6 channels of 4 x 4) ...
      const concatOut = out.graph.nodes.find((n) => n.name === concatA.name)!;
      expect(concatOut.inputs[1]).toBe(`${count}_pruned`);
      const added = out.graph.initializers.find((t) => t.name === `${count}_pruned`)!;
      expect([added.dataType, added.dims, tensor(added)]).toEqual([7, [1], [80]]);
      // ... and the weight's Reshape reads the old Constant, still [96], the Constant node as it was
      const viewOut = out.graph.nodes.find((n) => n.name === 'gain_view')!;
      expect(viewOut.inputs).toEqual(view.inputs);
      expect(countValue(out, count)).toEqual([96]);
      const constant = (m: typeof src) => m.graph.nodes.find((n) => n.outputs[0] === count);
      expect(constant(out)).toEqual(constant(src));
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('view-count-int32 (tf2onnx: the target computed in int32, cast to int64 for the Reshape): torch’s logits; the int32 Constant [96] is rewritten as int32 [64]', async () => {
    const source = bytesOf('view-count-int32.onnx');
    const model = importOnnx(source);
    const x = formulaImage(2, 8, 38);
    try {
      expect(gapToTorch(model, 'view-count.json')).toBeLessThan(1e-5);
      const r = await roundTrip(source, model, { 'features.3': [1, 4] }, x);
      expect(relativeGap(r.pruned, r.back)).toBeLessThan(1e-5);
      expect(relativeGap(r.masked, r.back)).toBeLessThan(1e-5);
      const [src, out] = [parseOnnxModel(source), parseOnnxModel(r.written)];
      const concat = out.graph.nodes.find((n) => n.opType === 'Concat')!;
      const count = (m: typeof out) =>
        m.graph.nodes.find((n) => n.outputs[0] === concat.inputs[1])!.attributes.get('value')!.t!;
      expect([count(src).dataType, tensor(count(src))]).toEqual([6, [96]]);
      // in place (only the Concat reads it), int32 as the Concat's other part; 4 of 6 channels of 4 x 4
      expect([count(out).dataType, count(out).dims, tensor(count(out))]).toEqual([6, [1], [64]]);
      const others = (m: typeof out) => m.graph.nodes.filter((n) => n.outputs[0] !== concat.inputs[1]);
      expect(others(out)).toEqual(others(src));
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('view-count-int32-read: a cast Concat whose output another node reads too is refused, naming the Reshape, the Cast, the Concat and the reader', async () => {
    const source = bytesOf('view-count-int32-read.onnx');
    const model = importOnnx(source);
    const x = formulaImage(2, 8, 39);
    try {
      expect(gapToTorch(model, 'view-count.json')).toBeLessThan(1e-5);
      const err = await expectCrpError(
        () => roundTrip(source, model, { 'features.3': [1, 4] }, x),
        'unsupported-model',
      );
      expect(err.message).toMatch(
        /^the ONNX writer cannot put the pruned model into the Reshape '[^']+': its target shape 'target_int64' is 'target_int64' \(Cast\) of '[^']+' \(Concat\), which 'target_length' \(Shape\) also reads, and the pruning changes its parts; export the model with a shape computation of its own for the Reshape$/,
      );
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  // rewriting the Concat's parts would change a graph output; the writer imports its source first, and the
  // importer takes one output only, so the refusal is the importer's (should it take more, the writer must refuse)
  it.each([
    { fixture: 'view-count-int32-output.onnx', output: 'the cast Concat' },
    { fixture: 'view-count-int32-cast-output.onnx', output: 'the Cast of the Concat' },
  ])(
    '$fixture: a model whose Reshape target is $output, also a graph output, is refused',
    async ({ fixture }) => {
      // the model of the same graph with the logits only (same weights, same Reshape target)
      const model = importOnnx(bytesOf('view-count-int32.onnx'));
      const x = formulaImage(2, 8, 40);
      try {
        const err = await expectCrpError(
          () => roundTrip(bytesOf(fixture), model, { 'features.3': [1, 4] }, x),
          'unsupported-model',
        );
        expect(err.message).toBe(
          'the ONNX graph has 1 inputs and 2 outputs; the toolkit explains models with one input and one output',
        );
      } finally {
        x.dispose();
        model.dispose();
      }
    },
  );

  it('reshape-net unpruned (fine-tuned): the shape constants, value_info and the [1, 6] bias are the source’s bytes', async () => {
    const source = bytesOf('reshape-net.onnx');
    const model = importOnnx(source);
    try {
      const before = tf.memory().numTensors;
      const written = encodeOnnx(source, model);
      expect(tf.memory().numTensors).toBe(before); // the re-imported source and read-back model are disposed
      const [src, out] = [parseOnnxModel(source), parseOnnxModel(written)];
      expect(out.graph.valueInfo).toEqual(src.graph.valueInfo);
      expect(out.graph.nodes).toEqual(src.graph.nodes);
      expect(out.graph.initializers.map((t) => [t.name, t.dims])).toEqual(
        src.graph.initializers.map((t) => [t.name, t.dims]),
      );
      expect(written).toEqual(source); // float32 weights written back as they were read
    } finally {
      model.dispose();
    }
  });

  it('shared-shape: one shape constant for two Reshapes is rewritten when both need the same value, and refused, naming both, when not', async () => {
    const source = bytesOf('shared-shape.onnx');
    const model = importOnnx(source);
    const x = tf.tidy(() => tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 5));
    try {
      const r = await roundTrip(source, model, { conv_a: [2], conv_b: [0] }, x);
      expect(relativeGap(r.masked, r.back)).toBeLessThan(1e-5);
      const shape = parseOnnxModel(r.written).graph.initializers.find((t) => t.name === 'shape');
      expect(tensor(shape)).toEqual([-1, 3]);

      const err = await expectCrpError(
        () => roundTrip(source, model, { conv_a: [2] }, x),
        'unsupported-model',
      );
      expect(err.message).toBe(
        "the ONNX writer cannot put the pruned model into the Reshape 'reshape_a': its target shape 'shape' is shared with the Reshape 'reshape_b', and the pruning needs [-1, 3] for one and [-1, 4] for the other; export the model with a shape constant per Reshape",
      );
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('folded-shape: a shape constant shared with the Reshape of a constant (folded by the importer) keeps its value for it, so a pruning that needs another is refused, naming both', async () => {
    // fixtures-src/make-folded-shape.py: reshape_a (of conv_a's pooled map) and reshape_scale (of the constant
    // `scale`, which the importer folds) share `shape` [-1, 4]; reshape_b has a constant of its own
    const source = bytesOf('folded-shape.onnx');
    const model = importOnnx(source);
    const x = tf.tidy(() => tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 5));
    try {
      const before = tf.memory().numTensors;
      const err = await expectCrpError(
        () => roundTrip(source, model, { conv_a: [2] }, x),
        'unsupported-model',
      );
      expect(err.message).toBe(
        "the ONNX writer cannot put the pruned model into the Reshape 'reshape_a': its target shape 'shape' is shared with the Reshape 'reshape_scale' of a constant, which needs it as it is ([-1, 4]), while the pruning needs [-1, 3] here; export the model with a shape constant per Reshape (or with torch.onnx.export's do_constant_folding=True, which folds the constant's Reshape)",
      );
      expect(tf.memory().numTensors).toBe(before); // the pruned and masked models disposed on the refusal
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('a shape constant the writer cannot rewrite is refused, naming the Reshape and why: read by another operator, or computed', async () => {
    // fixtures-src/make-writer-refusals.py: reshape_a's target `dims` [2, 3] is squeeze_b's axes too; in
    // computed-shape, reshape_a's target [-1, 3] is the folded Reshape of another constant
    const cases = [
      [
        'shape-read-by-squeeze.onnx',
        "the ONNX writer cannot put the pruned model into the Reshape 'reshape_a': its target shape 'dims' is also read by 'squeeze_b' (Squeeze), whose input the writer cannot rewrite; export the model with a shape constant of its own for the Reshape",
      ],
      [
        'computed-shape.onnx',
        "the ONNX writer cannot put the pruned model into the Reshape 'reshape_a': its target shape 'target' is computed by 'reshape_target' (Reshape), not an initializer, a Constant node or a Concat of them, so the writer cannot rewrite it",
      ],
    ] as const;
    const x = tf.tidy(() => tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 5));
    try {
      for (const [file, message] of cases) {
        const source = bytesOf(file);
        const model = importOnnx(source);
        try {
          // pruning branch b only leaves reshape_a's target as it is: written
          const r = await roundTrip(source, model, { conv_b: [0] }, x);
          expect(relativeGap(r.masked, r.back), file).toBeLessThan(1e-5);
          const err = await expectCrpError(
            () => roundTrip(source, model, { conv_a: [1] }, x),
            'unsupported-model',
          );
          expect(err.message, file).toBe(message);
        } finally {
          model.dispose();
        }
      }
    } finally {
      x.dispose();
    }
  });

  it('shape-reshaped: a target that a folded Reshape reads as its data (making another Reshape’s target) is refused, not rewritten under that Reshape', async () => {
    // fixtures-src/make-writer-refusals.py: reshape_a's `shape` [-1, 3] is reshaped (folded) into reshape_b's target
    const source = bytesOf('shape-reshaped.onnx');
    const model = importOnnx(source);
    const x = tf.tidy(() => tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 5));
    try {
      const err = await expectCrpError(
        () => roundTrip(source, model, { conv_a: [1] }, x),
        'unsupported-model',
      );
      expect(err.message).toBe(
        "the ONNX writer cannot put the pruned model into the Reshape 'reshape_a': its target shape 'shape' is also read by 'reshape_shape' (Reshape), whose input the writer cannot rewrite; export the model with a shape constant of its own for the Reshape",
      );
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('identity-shape: a target read through an Identity node is rewritten at the initializer behind it', async () => {
    const source = bytesOf('identity-shape.onnx');
    const model = importOnnx(source);
    const x = tf.tidy(() => tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 5));
    try {
      const r = await roundTrip(source, model, { conv_a: [1] }, x);
      expect(relativeGap(r.masked, r.back)).toBeLessThan(1e-5);
      const out = parseOnnxModel(r.written);
      const init = (name: string) => tensor(out.graph.initializers.find((t) => t.name === name));
      expect([init('shape_a'), init('shape')]).toEqual([
        [-1, 3],
        [-1, 4],
      ]);
      expect(out.graph.nodes).toEqual(parseOnnxModel(source).graph.nodes);
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('reshape-net with its initializers listed as graph inputs: those inputs get the pruned dims, the others stay', async () => {
    const source = bytesOf('reshape-net-inputs.onnx');
    const model = importOnnx(source);
    const x = formulaImage(2, 8, 33);
    try {
      const r = await roundTrip(source, model, { conv2: [1, 5], fc_gap1: [2] }, x);
      expect(relativeGap(r.masked, r.back)).toBeLessThan(1e-5);
      const [src, out] = [parseOnnxModel(source), parseOnnxModel(r.written)];
      const dims = new Map(out.graph.initializers.map((t) => [t.name, t.dims]));
      // every input is kept, in order; an initializer's input has its new dims, the image input its own
      expect(out.graph.inputs.map((i) => i.name)).toEqual(src.graph.inputs.map((i) => i.name));
      for (const input of out.graph.inputs) {
        const expected = dims.get(input.name) ?? src.graph.inputs.find((i) => i.name === input.name)!.shape;
        expect([input.name, input.shape]).toEqual([input.name, expected]);
      }
      const shapeOf = (name: string) => out.graph.inputs.find((i) => i.name === name)!.shape;
      expect([shapeOf('conv2.weight'), shapeOf('fc_flat.weight'), shapeOf('fc_gap1.bias')]).toEqual([
        [6, 6, 3, 3],
        [5, 96],
        [1, 5],
      ]);
      expect(shapeOf('input')).toEqual([2, 3, 8, 8]);
    } finally {
      x.dispose();
      model.dispose();
    }
  });
});

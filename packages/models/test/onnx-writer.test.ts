import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expectCrpError } from '@crp/testing';
import { referencePath } from '@crp/testing/reference';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeOnnx, importOnnx, parseOnnxModel } from '../src/index.js';
import { encodeOnnxFile, readOnnx, writeOnnx } from '../src/node.js';
import { onnxTensorValues } from '../src/onnx-proto.js';
import { prunedTarget } from '../src/onnx-writer.js';

/**
 * The ONNX writer: the source `.onnx` with a model's weights. Written from the slim ResNet exported by
 * torch.onnx.export (fixtures-src/make-slim-resnets.py) and from the reference cases' squeeze-excitation net (a
 * Gemm after a flatten, a standalone batch norm). A pruned model's file is tested in @crp/pruning
 * (test/onnx-export.test.ts, with logits from python3-onnx's reading of the written file).
 */
const RESNET = join(import.meta.dirname, 'fixtures', 'onnx', 'slim-resnet-basic.onnx');
const FIXTURES = join(import.meta.dirname, 'fixtures', 'onnx');
const fixture = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));

const REF = referencePath('onnx', 'models');
let dir: string;

beforeAll(async () => {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  dir = await mkdtemp(join(tmpdir(), 'crp-onnx-writer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A seeded input batch of the model's input shape. */
function inputOf(model: { inputs: { shape: (number | null)[] }[] }): tf.Tensor {
  const [, h, w, c] = model.inputs[0]!.shape as number[];
  return tf.randomNormal([2, h!, w!, c!], 0, 1, 'float32', 7);
}

function maxGap(a: tf.Tensor, b: tf.Tensor): number {
  const [x, y] = [a.dataSync(), b.dataSync()];
  let gap = 0;
  let scale = 0;
  x.forEach((v, i) => {
    gap = Math.max(gap, Math.abs(v - y[i]!));
    scale = Math.max(scale, Math.abs(v));
  });
  return gap / scale;
}

/** Every weight scaled by a seeded factor per layer and shifted: a stand-in for fine-tuning. */
function perturb(model: ReturnType<typeof importOnnx>): void {
  model.layers.forEach((layer, k) => {
    const ws = layer.getWeights();
    if (ws.length === 0) return;
    // a batch norm's variance must stay positive: scale only
    const next = ws.map((w, j) =>
      tf.tidy(() => tf.add(tf.mul(w, 1 + 0.1 * Math.sin(k + j)), j === 3 ? 0 : 0.01 * k)),
    );
    layer.setWeights(next);
    for (const t of next) t.dispose();
  });
}

describe('encodeOnnx', () => {
  for (const [label, file] of [
    ['the slim ResNet (torch.onnx.export, batch norms folded)', RESNET],
    ['the squeeze-excitation net (Gemm after a flatten, Dropout, SiLU)', join(REF, 'se_net.onnx')],
    ['the DenseNet-like (standalone batch norms)', join(REF, 'densenet_like.onnx')],
    [
      'reshape-net (Reshapes to constant targets, value_info, a [1, units] Gemm bias, a sum of Gemm outputs)',
      join(import.meta.dirname, 'fixtures', 'onnx', 'reshape-net.onnx'),
    ],
  ] as const) {
    it(`${label}: the written file reads back as the model, with the source's nodes, names and opsets`, () => {
      const bytes = new Uint8Array(readFileSync(file));
      const model = importOnnx(bytes);
      const x = inputOf(model);
      try {
        // unchanged weights: the file's float32 values are the model's, so the logits are identical
        const same = encodeOnnx(bytes, model);
        const again = importOnnx(same);
        const [y0, y1] = [model.predict(x) as tf.Tensor, again.predict(x) as tf.Tensor];
        expect(maxGap(y0, y1)).toBe(0);
        again.dispose();
        y1.dispose();
        // changed weights: the written file computes the changed model
        perturb(model);
        const written = encodeOnnx(bytes, model);
        const back = importOnnx(written);
        const [a, b] = [model.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
        expect(maxGap(a, b)).toBeLessThan(1e-5);
        expect(maxGap(a, y0)).toBeGreaterThan(1e-2); // the weights did change
        back.dispose();
        tf.dispose([a, b, y0]);
        const [src, out] = [parseOnnxModel(bytes), parseOnnxModel(written)];
        expect(out.opsets).toEqual(src.opsets);
        expect(out.irVersion).toBe(src.irVersion);
        expect(out.producerName).toBe(src.producerName);
        expect(out.graph.nodes).toEqual(src.graph.nodes);
        expect(out.graph.inputs).toEqual(src.graph.inputs);
        expect(out.graph.outputs).toEqual(src.graph.outputs);
        expect(out.graph.initializers.map((t) => [t.name, t.dims])).toEqual(
          src.graph.initializers.map((t) => [t.name, t.dims]),
        );
      } finally {
        x.dispose();
        model.dispose();
      }
    });
  }

  it('a Gemm with beta 0 (C switched off) and alpha 2: C is kept, not divided by beta; a bias it cannot hold is refused', () => {
    const bytes = new Uint8Array(
      readFileSync(join(import.meta.dirname, 'fixtures', 'onnx', 'gemm-beta-zero.onnx')),
    );
    const model = importOnnx(bytes);
    const x = inputOf(model);
    try {
      const fc = model.layers.find((l) => l.getClassName() === 'Dense')!;
      const y0 = model.predict(x) as tf.Tensor;
      const same = importOnnx(encodeOnnx(bytes, model));
      const y1 = same.predict(x) as tf.Tensor;
      expect(maxGap(y0, y1)).toBe(0); // was NaN: C / beta = 0 / 0
      tf.dispose([y0, y1]);
      same.dispose();
      // the kernel changed (divided by alpha on the way back), the bias still zero: written
      const [k, b] = fc.getWeights();
      const k2 = tf.mul(k!, 1.5);
      fc.setWeights([k2, b!]);
      const written = encodeOnnx(bytes, model);
      const c = parseOnnxModel(written).graph.initializers.find((t) => t.name === 'c')!;
      expect(Array.from(onnxTensorValues(c))).toEqual([1, 2, 3, 4, 5]); // the source's C, which beta 0 ignores
      const back = importOnnx(written);
      const [a, a2] = [model.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
      expect(maxGap(a, a2)).toBeLessThan(1e-6);
      tf.dispose([a, a2]);
      back.dispose();
      // a non-zero bias has no place in a Gemm whose beta is 0
      const b2 = tf.onesLike(b!);
      fc.setWeights([k2, b2]);
      expectCrpError(() => encodeOnnx(bytes, model), 'unsupported-model', /beta 0/);
      tf.dispose([k2, b2]);
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('leaks no tensor', () => {
    const bytes = new Uint8Array(readFileSync(RESNET));
    const model = importOnnx(bytes);
    const before = tf.memory().numTensors;
    encodeOnnx(bytes, model);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('refuses a model that is not the one imported from the file, naming the missing layers', () => {
    const model = importOnnx(new Uint8Array(readFileSync(join(REF, 'se_net.onnx'))));
    try {
      expectCrpError(
        () => encodeOnnx(new Uint8Array(readFileSync(RESNET)), model),
        'invalid-argument',
        /lacks the layers .*layer1\.0\.conv1/,
      );
    } finally {
      model.dispose();
    }
  });

  it("an external-data source: refused with the writer's own message without its data, written self-contained with it", async () => {
    // every initializer external, the Reshape's int64 target [0, 8] too, which the writer does not replace
    const source = join(import.meta.dirname, 'fixtures', 'onnx', 'reshape-net-external.onnx');
    const bytes = new Uint8Array(readFileSync(source));
    const data = new Uint8Array(readFileSync(`${source}.data`));
    const model = await readOnnx(source);
    const x = inputOf(model);
    try {
      expectCrpError(
        () => encodeOnnx(bytes, model),
        'not-found',
        /^the ONNX writer writes a self-contained \.onnx, and the tensors .+ keep their data in the external file 'reshape-net-external\.onnx\.data', which were not given: writeOnnx reads them beside the source \.onnx; encodeOnnx takes them as options\.externalData$/,
      );
      perturb(model);
      const externalData = (location: string) =>
        location === 'reshape-net-external.onnx.data' ? data : undefined;
      const written = encodeOnnx(bytes, model, { externalData });
      const [src, out] = [parseOnnxModel(bytes), parseOnnxModel(written)];
      expect(src.graph.initializers.some((t) => t.external !== undefined)).toBe(true);
      expect(out.graph.initializers.filter((t) => t.external !== undefined)).toEqual([]);
      expect(out.graph.initializers.map((t) => [t.name, t.dims])).toEqual(
        src.graph.initializers.map((t) => [t.name, t.dims]),
      );
      // the tensor the writer did not replace keeps its type and values, now in the file
      const shape = out.graph.initializers.find((t) => t.name === '/Constant_1_output_0')!;
      expect([shape.dataType, Array.from(onnxTensorValues(shape))]).toEqual([7, [0, 8]]);
      const back = importOnnx(written); // no external data needed any more
      const [a, b] = [model.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
      expect(maxGap(a, b)).toBeLessThan(1e-5);
      tf.dispose([a, b]);
      back.dispose();
      // writeOnnx and encodeOnnxFile read the data file beside the source
      const path = join(dir, 'external-inlined.onnx');
      await writeOnnx(model, source, path);
      expect(new Uint8Array(await readFile(path))).toEqual(written);
      expect(await encodeOnnxFile(model, source)).toEqual(written);
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('refuses a Vision Transformer source before importing it', () => {
    const model = importOnnx(new Uint8Array(readFileSync(RESNET)));
    try {
      expectCrpError(
        () =>
          encodeOnnx(
            new Uint8Array(
              readFileSync(join(import.meta.dirname, 'fixtures', 'onnx', 'timm_style_vit.onnx')),
            ),
            model,
          ),
        'unsupported-model',
        /^the ONNX writer writes CNNs; this model is a Vision Transformer/,
      );
    } finally {
      model.dispose();
    }
  });

  it('writeOnnx writes the file atomically beside nothing else', async () => {
    const model = importOnnx(new Uint8Array(readFileSync(RESNET)));
    try {
      const path = join(dir, 'out.onnx');
      await writeOnnx(model, RESNET, path);
      expect(new Uint8Array(await readFile(path))).toEqual(
        encodeOnnx(new Uint8Array(readFileSync(RESNET)), model),
      );
    } finally {
      model.dispose();
    }
  });
});

describe('encodeOnnx refuses what the file cannot hold, naming the node and what is valid', () => {
  it('a changed weight the file holds as an element-wise constant (x * a + b read as a batch norm)', () => {
    // fixtures-src/make-conv-affine-onnx.py: conv -> Mul -> Add (one BatchNormalization layer 'mul') -> ...
    const bytes = fixture('conv-affine.onnx');
    const model = importOnnx(bytes);
    try {
      expect(encodeOnnx(bytes, model)).toEqual(bytes); // unchanged: written back as it was
      const affine = model.layers.find((l) => l.getClassName() === 'BatchNormalization')!;
      const ws = affine.getWeights();
      const scaled = ws.map((w, j) => (j === 0 ? tf.mul(w, 2) : w));
      affine.setWeights(scaled);
      scaled[0]!.dispose();
      const e = expectCrpError(() => encodeOnnx(bytes, model), 'unsupported-model');
      expect(e.message).toBe(
        `the weights of '${affine.name}' changed, and the .onnx holds them as constants of element-wise operators, not as a layer's initializers; the writer puts back Conv, Gemm/MatMul and BatchNormalization weights only`,
      );
    } finally {
      model.dispose();
    }
  });

  it('a non-zero kernel for a Gemm with alpha 0 (its B is kept while the kernel stays zero)', () => {
    const bytes = fixture('gemm-alpha-zero.onnx');
    const model = importOnnx(bytes);
    try {
      const fc = model.getLayer('fc');
      const [k, b] = fc.getWeights();
      expect(Array.from(k!.dataSync()).every((v) => v === 0)).toBe(true); // alpha 0: A*B is off
      // a changed bias with the kernel still zero: written, B as it was
      const b2 = tf.add(b!, 0.5);
      fc.setWeights([k!, b2]);
      const written = encodeOnnx(bytes, model);
      const init = (name: string) => parseOnnxModel(written).graph.initializers.find((t) => t.name === name)!;
      expect(Array.from(onnxTensorValues(init('g')))).toEqual(
        Array.from(onnxTensorValues(parseOnnxModel(bytes).graph.initializers.find((t) => t.name === 'g')!)),
      );
      expect(Array.from(onnxTensorValues(init('c')))).toEqual(Array.from(b2.dataSync()));
      const k2 = tf.onesLike(k!);
      fc.setWeights([k2, b2]);
      const e = expectCrpError(() => encodeOnnx(bytes, model), 'unsupported-model');
      expect(e.message).toBe(
        "the kernel of 'fc' is no longer zero, but the Gemm 'fc' has alpha 0, which ignores its g; export the model again from PyTorch",
      );
      tf.dispose([b2, k2]);
    } finally {
      model.dispose();
    }
  });

  it('weights that are not float32 initializers (a conv weight as a Constant node)', () => {
    const bytes = fixture('weights-not-float32.onnx');
    const model = importOnnx(bytes);
    try {
      const e = expectCrpError(() => encodeOnnx(bytes, model), 'unsupported-model');
      expect(e.message).toBe(
        "the weights 'w_const' of 'conv' (Conv) are not float32 initializers of the graph (a Constant node or another type); the writer replaces float32 initializers only",
      );
    } finally {
      model.dispose();
    }
  });

  it('tied weights (one initializer read by two Gemms, two layers here) that now differ', () => {
    const bytes = fixture('tied-weights.onnx');
    const model = importOnnx(bytes);
    const setKernel = (layer: string, f: (k: tf.Tensor) => tf.Tensor) => {
      const [k, b] = model.getLayer(layer).getWeights();
      const k2 = f(k!);
      model.getLayer(layer).setWeights([k2, b!]);
      k2.dispose();
    };
    try {
      expect(encodeOnnx(bytes, model)).toEqual(bytes);
      // changed alike: one tensor holds both
      for (const layer of ['fc_a', 'fc_b']) setKernel(layer, (k) => tf.mul(k, 2));
      const f = parseOnnxModel(encodeOnnx(bytes, model)).graph.initializers.find((t) => t.name === 'f')!;
      expect(Array.from(onnxTensorValues(f))).toEqual(
        Array.from(
          onnxTensorValues(parseOnnxModel(bytes).graph.initializers.find((t) => t.name === 'f')!),
        ).map((v) => Math.fround(Math.fround(v) * 2)),
      );
      // fc_b alone changed: the file would silently hold one of them (before: the last node's)
      setKernel('fc_b', (k) => tf.add(k, 0.5));
      const e = expectCrpError(() => encodeOnnx(bytes, model), 'unsupported-model');
      expect(e.message).toBe(
        "the nodes 'fc_a' and 'fc_b' share the initializer 'f', and their layers 'fc_a' and 'fc_b' now hold different weights (fine-tuned or pruned apart), which one tensor cannot hold; keep their weights equal, or export the model with a weight per node",
      );
    } finally {
      model.dispose();
    }
  });

  it('a Reshape target: every dimension fixed by a count, a copying 0 or the one -1 (ONNX Reshape rules)', () => {
    // counts follow the output; -1, a 0 that copies the right count and the batch axis stay
    expect(prunedTarget('r', [-1, 128], [-1, 6, 4, 4], [-1, 96])).toEqual([-1, 96]);
    expect(prunedTarget('r', [0, 128], [-1, 6, 4, 4], [-1, 96])).toEqual([0, 96]);
    expect(prunedTarget('r', [2, -1], [-1, 6, 4, 4], [-1, 96])).toEqual([2, -1]);
    expect(prunedTarget('r', [2, 0, 1, 1], [-1, 6], [-1, 6, 1, 1])).toEqual([2, 0, 1, 1]);
    expect(prunedTarget('r', [0, -1], [-1, 6, 1, 1], [-1, 6])).toEqual([0, -1]);
    expect(prunedTarget('r', [-1, 0], [-1, 6, 1, 1], [-1, 6])).toEqual([-1, 0]);
    // a 0 that would copy another count than the output's becomes that count
    expect(prunedTarget('r', [-1, 0], [-1, 8, 1, 1], [-1, 6])).toEqual([-1, 6]);
    // a dimension the output leaves open takes the -1; the batch's -1 becomes 0 (a copy of the batch)
    expect(prunedTarget('r', [-1, 8, 1, 1], [-1, 8], [-1, -1, 1, 1])).toEqual([0, -1, 1, 1]);
    expect(prunedTarget('r', [0, 128], [-1, -1, 4, 4], [-1, -1])).toEqual([0, -1]);
    expect(prunedTarget('r', [2, 128], [-1, -1, 4, 4], [-1, -1])).toEqual([2, -1]);
    // ... or a 0 where the input has the output's count, when the -1 is needed elsewhere
    expect(prunedTarget('r', [-1, 8, 4, 1], [-1, 8], [-1, 8, -1, 1])).toEqual([0, 8, -1, 1]);
    // refused: two open dimensions (ONNX infers one -1)
    const two = expectCrpError(
      () => prunedTarget('reshape_4', [-1, 8, 4, 1], [-1, 8], [-1, -1, -1, 1]),
      'unsupported-model',
    );
    expect(two.message).toBe(
      "the ONNX writer cannot put the pruned model into the Reshape 'reshape_4': its target shape [-1, 8, 4, 1] would need a -1 at dimensions 1 and 2, which the pruned output [-1, -1, -1, 1] leaves open and no 0 can copy from the input [-1, 8]; ONNX infers one -1 only, so the pruned output is ambiguous there",
    );
    // with allowzero 1 a 0 is a count of 0: the batch's -1 cannot give way to an open dimension
    expect(prunedTarget('r', [-1, 128], [-1, 6, 4, 4], [-1, 96], true)).toEqual([-1, 96]);
    const zero = expectCrpError(
      () => prunedTarget('reshape_5', [-1, 8, 1, 1], [-1, 8], [-1, -1, 1, 1], true),
      'unsupported-model',
    );
    expect(zero.message).toBe(
      "the ONNX writer cannot put the pruned model into the Reshape 'reshape_5': its target shape [-1, 8, 1, 1] would need a -1 at dimensions 0 and 1, which the pruned output [-1, -1, 1, 1] leaves open (allowzero 1: a 0 cannot copy the batch) and no 0 can copy from the input [-1, 8]; ONNX infers one -1 only, so the pruned output is ambiguous there",
    );
    expect([two.code, zero.code, two.details]).toEqual([
      'unsupported-model',
      'unsupported-model',
      { node: 'reshape_4' },
    ]);
  });
});

describe('a Reshape of a constant (folded by the importer) whose shape constant another Reshape shares', () => {
  it('imports as the graph computes it and is written back unchanged when only weights change', () => {
    // fixtures-src/make-folded-shape.py: reshape_scale folds `scale` [4] to [1, 4] with the `shape` that
    // reshape_a uses; logits computed there with numpy
    const bytes = fixture('folded-shape.onnx');
    const c = JSON.parse(readFileSync(join(FIXTURES, 'folded-shape.json'), 'utf8')) as {
      input: { shape: number[]; data: number[] };
      logits: { data: number[] };
    };
    const model = importOnnx(bytes);
    const x = tf.tidy(() => tf.transpose(tf.tensor(c.input.data, c.input.shape), [0, 2, 3, 1]));
    try {
      const expected = tf.tensor(c.logits.data, [2, 3]);
      const y = model.predict(x) as tf.Tensor;
      expect(maxGap(expected, y)).toBeLessThan(1e-5);
      // the folded constant is the per-feature scale of mul_b (an affine layer), not a layer of its own
      expect(model.layers.map((l) => l.name)).not.toContain('reshape_scale');
      // fine-tuned convs (the affine layer of the constant stays: the file holds it as constants)
      for (const name of ['conv_a', 'conv_b']) {
        const next = model
          .getLayer(name)
          .getWeights()
          .map((w) => tf.mul(w, 1.25));
        model.getLayer(name).setWeights(next);
        tf.dispose(next);
      }
      const written = encodeOnnx(bytes, model);
      const [src, out] = [parseOnnxModel(bytes), parseOnnxModel(written)];
      expect(out.graph.nodes).toEqual(src.graph.nodes);
      const back = importOnnx(written);
      const [a, b] = [model.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
      expect(maxGap(a, b)).toBeLessThan(1e-6);
      expect(maxGap(y, a)).toBeGreaterThan(0.01); // the change is in the file
      tf.dispose([a, b]);
      back.dispose();
      const shape = (m: typeof out) => m.graph.initializers.find((t) => t.name === 'shape')!;
      expect(Array.from(onnxTensorValues(shape(out)))).toEqual([-1, 4]);
      tf.dispose([expected, y]);
    } finally {
      x.dispose();
      model.dispose();
    }
  });
});

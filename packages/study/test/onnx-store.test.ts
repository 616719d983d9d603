/**
 * fileStudyStore with an `.onnx` source: the fine-tuned model goes to `model/` and, as the source graph, to
 * `model.onnx`; a graph that cannot hold the model is refused before either is written (a study that fails there
 * leaves no `model/` behind).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCrpError } from '@crp/common';
import { importOnnx } from '@crp/models';
import { loadModel } from '@crp/models/node';
import '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '@crp/testing';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStudyStore } from '../src/node.js';

useBackend('wasm');

// @crp/models fixtures-src/make-conv-affine-onnx.py: conv -> Mul -> Add (read as a batch norm) -> ReLU -> pool -> Gemm
const FIXTURES = join(import.meta.dirname, '..', '..', 'models', 'test', 'fixtures', 'onnx');
const ONNX = join(FIXTURES, 'conv-affine.onnx');
// make-reshape-net.py: every initializer in reshape-net-external.onnx.data beside it
const EXTERNAL = join(FIXTURES, 'reshape-net-external.onnx');

describe('fileStudyStore with onnxSource', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crp-study-onnx-store-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes model/ and model.onnx, the .onnx with the model’s weights', async () => {
    const out = join(dir, 'ok');
    const model = importOnnx(new Uint8Array(readFileSync(ONNX)));
    try {
      const fc = model.layers.find((l) => l.getClassName() === 'Dense')!;
      const [k, b] = fc.getWeights();
      const k2 = tf.mul(k!, 2);
      fc.setWeights([k2, b!]);
      k2.dispose();
      await fileStudyStore(out, { onnxSource: ONNX }).saveModel!(model);
      expect((await readdir(out)).sort()).toEqual(['model', 'model.onnx']);
      const back = importOnnx(new Uint8Array(readFileSync(join(out, 'model.onnx'))));
      const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 3);
      const [y0, y1] = [model.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
      expect(Array.from(y1.dataSync())).toEqual(Array.from(y0.dataSync()));
      tf.dispose([x, y0, y1]);
      back.dispose();
    } finally {
      model.dispose();
    }
  });

  it('refuses a model the .onnx cannot hold before writing model/', async () => {
    const out = join(dir, 'refused');
    const model = importOnnx(new Uint8Array(readFileSync(ONNX)));
    try {
      // the x * a + b read as a batch norm, changed (as fine-tuning would): the .onnx holds it as Mul/Add constants
      const affine = model.layers.find((l) => l.getClassName() === 'BatchNormalization')!;
      const ws = affine.getWeights();
      const changed = ws.map((w, i) => (i === 0 ? tf.mul(w, 1.5) : w));
      affine.setWeights(changed);
      changed[0]!.dispose();
      let caught: unknown;
      try {
        await fileStudyStore(out, { onnxSource: ONNX }).saveModel!(model);
      } catch (err) {
        caught = err;
      }
      expect(isCrpError(caught) && caught.code).toBe('unsupported-model');
      expect(existsSync(join(out, 'model'))).toBe(false);
      expect(existsSync(join(out, 'model.onnx'))).toBe(false);
    } finally {
      model.dispose();
    }
  });
  it('writes a self-contained model.onnx for a source that keeps its weights in an external data file', async () => {
    const out = join(dir, 'external');
    const model = await loadModel(EXTERNAL);
    try {
      await fileStudyStore(out, { onnxSource: EXTERNAL }).saveModel!(model);
      expect((await readdir(out)).sort()).toEqual(['model', 'model.onnx']);
      const back = importOnnx(new Uint8Array(readFileSync(join(out, 'model.onnx'))));
      const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 5);
      const [y0, y1] = [model.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
      expect(Array.from(y1.dataSync())).toEqual(Array.from(y0.dataSync()));
      tf.dispose([x, y0, y1]);
      back.dispose();
    } finally {
      model.dispose();
    }
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as lrp from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { referencePath } from '@crp/testing/reference';
import { beforeAll, describe, expect, it } from 'vitest';
import { importOnnx } from '../src/index.js';

/**
 * The ONNX reference cases of vendor/reference/onnx (made by scripts/golden/onnx/make_onnx_golden.py): a
 * DenseNet-like, a squeeze-excitation and a ResNet-like CNN exported by torch.onnx.export, with torch's logits
 * and zennit's relevances for EpsilonPlusFlat, EpsilonAlpha2Beta1Flat and EpsilonGammaBox. The imported model
 * must give torch's logits and, attributed by @crp/lrp, zennit's relevances (tolerance of
 * vendor/reference/README.md: max |ours - golden| <= 1e-4 * max |golden|).
 */
const REF = referencePath('onnx');

interface Golden {
  layout: string;
  shape: number[];
  data: number[];
}
interface OnnxCase {
  id: string;
  model: string;
  composite: string;
  input: Golden;
  targets: number[];
  logits: Golden;
  logitsDuringAttribution: Golden;
  relevance: Record<string, Golden>;
}
interface Index {
  models: { name: string; file: string }[];
  cases: { id: string; kind: string; model: string; file: string }[];
}
const index = JSON.parse(readFileSync(join(REF, 'index.json'), 'utf8')) as Index;
const readCase = (file: string) => JSON.parse(readFileSync(join(REF, file), 'utf8')) as OnnxCase;
const onnxBytes = (file: string) => new Uint8Array(readFileSync(join(REF, file)));

beforeAll(async () => {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
});

/** max |ours - golden| / max |golden| */
function deviation(ours: tf.Tensor, golden: Golden): number {
  expect(ours.shape).toEqual(golden.shape);
  const a = ours.dataSync();
  let diff = 0;
  let scale = 0;
  golden.data.forEach((g, i) => {
    diff = Math.max(diff, Math.abs(a[i]! - g));
    scale = Math.max(scale, Math.abs(g));
  });
  return scale === 0 ? diff / 1e-7 : diff / scale;
}

function composite(name: string): lrp.Composite {
  switch (name) {
    case 'EpsilonPlusFlat':
      return lrp.epsilonPlusFlat();
    case 'EpsilonAlpha2Beta1Flat':
      return lrp.epsilonAlpha2Beta1Flat();
    case 'EpsilonGammaBox':
      return lrp.epsilonGammaBox({ low: -3, high: 3 });
    default:
      throw new Error(`no composite ${name}`);
  }
}

describe('importOnnx on torch.onnx.export models', () => {
  for (const m of index.models) {
    // the LRP cases (the onnx-crp ones, zennit-crp conditions, run in @crp/conformance)
    const cases = index.cases
      .filter((c) => c.model === m.name && c.kind === 'onnx-lrp')
      .map((c) => readCase(c.file));
    it(`${m.name}: torch's logits`, () => {
      const model = importOnnx(onnxBytes(m.file));
      try {
        for (const c of cases) {
          const y = tf.tidy(() => model.predict(tf.tensor(c.input.data, c.input.shape)) as tf.Tensor);
          expect(deviation(y, c.logits), c.id).toBeLessThan(1e-5);
          y.dispose();
        }
      } finally {
        model.dispose();
      }
    });
    for (const c of cases) {
      it(`${c.id}: zennit's relevances`, () => {
        const model = importOnnx(onnxBytes(m.file));
        const x = tf.tensor(c.input.data, c.input.shape);
        const recordLayers = Object.keys(c.relevance).filter((k) => k !== 'input');
        const result = lrp.attribute(model, x, {
          composite: composite(c.composite),
          target: c.targets,
          recordLayers,
        });
        try {
          expect(deviation(result.prediction, c.logitsDuringAttribution)).toBeLessThan(1e-4);
          expect(deviation(result.relevance, c.relevance.input!), 'input').toBeLessThan(1e-4);
          for (const layer of recordLayers) {
            expect(deviation(result.relevances[layer]!, c.relevance[layer]!), layer).toBeLessThan(1e-4);
          }
        } finally {
          lrp.disposeResult(result);
          x.dispose();
          model.dispose();
        }
      });
    }
  }
});

describe('grouped convolutions through ONNX (resnext_like: Conv with 1 < group < channels)', () => {
  it('become GroupedConv2D layers with the ONNX weights per group and PyTorch’s module names', () => {
    const model = importOnnx(onnxBytes('models/resnext_like.onnx'));
    try {
      for (const [name, groups, width] of [
        ['layer1.0.conv2', 4, 16],
        ['layer2.0.conv2', 8, 32],
      ] as const) {
        const layer = model.getLayer(name);
        expect(layer.getClassName()).toBe('GroupedConv2D');
        expect(layer.getConfig().groups).toBe(groups);
        expect(layer.getWeights()[0]!.shape).toEqual([3, 3, width / groups, width]);
      }
      expect(model.getLayer('layer1.0.conv1').getClassName()).toBe('Conv2D');
    } finally {
      model.dispose();
    }
  });
});

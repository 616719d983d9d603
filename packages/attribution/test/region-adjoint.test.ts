/**
 * Region relevance through the adjoint pass equals zennit-crp's definition (one conditional backward pass per
 * concept, `method: 'per-concept'`) for every concept of every layer: on a chain, on a residual model with a
 * projection shortcut (exclude_parallel semantics) and with other composites; for boxes, a centre square and
 * a weighted mask with negative weights; for batches with one target per image.
 */
import { CondAttribution } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fromTensors,
  type Region,
  type RegionRelevance,
  regionAtlas,
  regionRelevances,
} from '../src/index.js';
import { expectCrpError, mulberry32, tinyImages, tinyModel, uniform, useWasm } from './helpers.js';

useWasm();

function residualModel(): tfl.LayersModel {
  const x = tfl.input({ shape: [8, 8, 3], name: 'image' });
  const ap = (l: tfl.layers.Layer, t: tfl.SymbolicTensor | tfl.SymbolicTensor[]) =>
    l.apply(t) as tfl.SymbolicTensor;
  const a = ap(
    tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'a' }),
    x,
  );
  const b = ap(tfl.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', name: 'b' }), a);
  const short = ap(tfl.layers.conv2d({ filters: 5, kernelSize: 1, name: 'short' }), a);
  const s = ap(tfl.layers.add({ name: 'sum' }), [b, short]);
  const r = ap(tfl.layers.reLU({ name: 'r' }), s);
  const p = ap(tfl.layers.averagePooling2d({ poolSize: 2, name: 'avg' }), r);
  const f = ap(tfl.layers.flatten({ name: 'flat' }), p);
  const d = ap(tfl.layers.dense({ units: 6, activation: 'relu', name: 'd' }), f);
  const y = ap(tfl.layers.dense({ units: 3, name: 'out' }), d);
  const model = tfl.model({ inputs: x, outputs: y });
  const rng = mulberry32(3);
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    const made = ws.map((w) => tf.tensor(Array.from(uniform(rng, w.size, -0.6, 0.7)), w.shape));
    layer.setWeights(made);
    tf.dispose(made);
  }
  return model;
}

/** max |a - b| over every concept of every layer and the totals, relative to the largest value */
function compare(a: RegionRelevance[], b: RegionRelevance[]): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  let scale = 0;
  a.forEach((ra, i) => {
    const rb = b[i]!;
    expect(Object.keys(ra.layers)).toEqual(Object.keys(rb.layers));
    worst = Math.max(worst, Math.abs(ra.total - rb.total));
    scale = Math.max(scale, Math.abs(rb.total));
    for (const [layer, la] of Object.entries(ra.layers)) {
      const lb = rb.layers[layer]!;
      expect(la.concepts).toEqual(lb.concepts);
      la.relevance.forEach((v, k) => {
        worst = Math.max(worst, Math.abs(v - lb.relevance[k]!));
        scale = Math.max(scale, Math.abs(lb.relevance[k]!));
      });
    }
  });
  expect(scale).toBeGreaterThan(0);
  return worst / scale;
}

const weighted: Region = { mask: Array.from(uniform(mulberry32(9), 64, -0.5, 1)) };
const REGIONS: [string, Region][] = [
  ['centre square', { centerSquare: 4 }],
  [
    'two boxes, one partly outside',
    {
      boxes: [
        { x: 0, y: 1, width: 3, height: 2 },
        { x: 6, y: 5, width: 4, height: 4 },
      ],
    },
  ],
  ['weighted mask with negative weights', weighted],
];

describe('regionRelevances: adjoint = per-concept', () => {
  let images: tf.Tensor4D;
  beforeAll(() => {
    images = tinyImages(3, 31);
  });
  afterAll(() => images.dispose());

  const models: [string, () => tfl.LayersModel, string][] = [
    ['chain (conv, ReLU, max pool, dense)', () => tinyModel(9), 'epsilon_plus_flat'],
    ['chain with alpha-beta', () => tinyModel(4), 'epsilon_alpha2_beta1_flat'],
    ['residual block with projection shortcut and average pool', residualModel, 'epsilon_plus_flat'],
  ];
  for (const [name, make, composite] of models) {
    for (const [regionName, region] of REGIONS) {
      it(`${name}, ${regionName}, every concept of every layer, a target per image`, () => {
        const model = make();
        const crp = new CondAttribution(model, { composite });
        try {
          const options = { target: [1, 0, 2] };
          const fast = regionRelevances(crp, images, region, options);
          const slow = regionRelevances(crp, images, region, { ...options, method: 'per-concept' });
          expect(compare(fast, slow)).toBeLessThan(1e-5);
          const layers = Object.keys(fast[0]!.layers);
          expect(layers.length).toBeGreaterThanOrEqual(3);
          // every concept of every layer was computed
          for (const layer of layers)
            expect(fast[0]!.layers[layer]!.concepts.length).toBe(model.getLayer(layer).outputShape.at(-1));
        } finally {
          crp.dispose();
          model.dispose();
        }
      });
    }
  }

  it('on a chain the concepts of each layer add up to the total; one or several images per pass agree', () => {
    const model = tinyModel(9);
    const crp = new CondAttribution(model);
    try {
      const all = regionRelevances(crp, images, { centerSquare: 4 }, { target: 1 });
      const single = regionRelevances(crp, images, { centerSquare: 4 }, { target: 1, batchSize: 1 });
      expect(compare(all, single)).toBeLessThan(1e-6);
      for (const r of all) {
        for (const { relevance } of Object.values(r.layers)) {
          const sum = relevance.reduce((s, x) => s + x, 0);
          expect(Math.abs(sum - r.total)).toBeLessThan(1e-5 * Math.max(1, Math.abs(r.total)));
        }
      }
    } finally {
      crp.dispose();
      model.dispose();
    }
  });

  it('a subset of concepts gives the same numbers as all concepts', () => {
    const model = tinyModel(9);
    const crp = new CondAttribution(model);
    try {
      const all = regionRelevances(crp, images, weighted, { target: 2, layers: ['c2'] });
      const some = regionRelevances(crp, images, weighted, {
        target: 2,
        layers: ['c2'],
        concepts: { c2: [4, 1] },
      });
      expect(some[1]!.layers.c2!.concepts).toEqual([4, 1]);
      expect(some[1]!.layers.c2!.relevance).toEqual([
        all[1]!.layers.c2!.relevance[4],
        all[1]!.layers.c2!.relevance[1],
      ]);
    } finally {
      crp.dispose();
      model.dispose();
    }
  });

  it('leaves no tensors behind', () => {
    const model = tinyModel(9);
    const crp = new CondAttribution(model);
    try {
      regionRelevances(crp, images, { centerSquare: 4 }, { target: 1 });
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++)
        regionRelevances(crp, images, weighted, { target: [0, 1, 2], batchSize: 2 });
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      crp.dispose();
      model.dispose();
    }
  });

  it('bad input: typed errors that say what is valid', async () => {
    const model = tinyModel(9);
    const crp = new CondAttribution(model);
    try {
      const outside = { boxes: [{ x: 8, y: 0, width: 2, height: 2 }] };
      await expectCrpError(
        () => regionRelevances(crp, images, outside, { target: 1 }),
        'invalid-argument',
        /no pixel/,
      );
      await expectCrpError(
        () => regionRelevances(crp, images, { mask: new Float32Array(64) }, { target: 1 }),
        'invalid-argument',
        /no pixel/,
      );
      await expectCrpError(
        () => regionRelevances(crp, images, { mask: new Float32Array(63).fill(1) }, { target: 1 }),
        'invalid-argument',
        /8x8, so give 64/,
      );
      await expectCrpError(
        () => regionRelevances(crp, images, { centerSquare: 4 }, { target: 1, layers: ['c9'] }),
        'unknown-layer',
        /c9.*c1/,
      );
      await expectCrpError(
        () => regionRelevances(crp, images, { centerSquare: 4 }, { target: 1, concepts: { c2: [6] } }),
        'invalid-argument',
        /0\.\.5/,
      );
      await expectCrpError(
        () => regionRelevances(crp, images, { centerSquare: 4 }, { target: [1, 2] }),
        'invalid-target',
        /2 targets for 3 images/,
      );
      await expectCrpError(
        () => regionRelevances(crp, images, { centerSquare: 4 }, { target: 3 }),
        'invalid-target',
        /0\.\.2/,
      );
      await expectCrpError(
        () => regionRelevances(crp, images, { centerSquare: 4 }, { target: 1, method: 'fast' as 'adjoint' }),
        'invalid-argument',
        /'adjoint' or 'per-concept'/,
      );
    } finally {
      crp.dispose();
      model.dispose();
    }
  });
});

describe('regionAtlas through the adjoint', () => {
  it('gives the same votes and mean relevances as the per-concept definition', async () => {
    const model = residualModel();
    const crp = new CondAttribution(model);
    const images = tinyImages(6, 41);
    const labels = [1, 1, 0, 1, 2, 1];
    try {
      const ds = fromTensors(images, labels, { batchSize: 3 });
      const options = { target: 1, region: { centerSquare: 4 }, topK: 2 };
      const fast = await regionAtlas(crp, ds, { ...options, batchSize: 3 });
      const slow = await regionAtlas(crp, ds, { ...options, method: 'per-concept' });
      expect(fast.samples).toBe(4);
      for (const layer of fast.layerOrder) {
        const a = fast.layers[layer]!.ranking;
        const b = slow.layers[layer]!.ranking;
        expect(a.map((e) => [e.concept, e.votes])).toEqual(b.map((e) => [e.concept, e.votes]));
        a.forEach((e, i) => {
          expect(e.meanRelevance).toBeCloseTo(b[i]!.meanRelevance, 5);
        });
      }
    } finally {
      images.dispose();
      crp.dispose();
      model.dispose();
    }
  });
});

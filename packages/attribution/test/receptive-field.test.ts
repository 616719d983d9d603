import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChannelConcept, CondAttribution, disposeCondResult } from '@crp/core';
import { blurHeatmap, cropBox, imgify, opacityView, relevanceBox, toRasterImage } from '@crp/vis';
import { readPng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fromTensors,
  maximization,
  receptiveFieldBox,
  receptiveFieldGeometry,
  referenceGrid,
  referenceImages,
} from '../src/index.js';
import { writeReferenceGrid } from '../src/node.js';
import {
  expectCrpError,
  mulberry32,
  seedWeights,
  tinyImages,
  tinyModel,
  uniform,
  useWasm,
} from './helpers.js';

useWasm();

/** 12x12x3 -> c1 3x3 same -> pool 2 -> c2 3x3 same stride 2 -> zero pad 1 -> c3 2x2 valid -> dense. All weights
 * and biases positive, so every unit is alive and relevance reaches every pixel it can. */
function geometryModel(pool: 'avg' | 'max'): tfl.LayersModel {
  const poolLayer = pool === 'avg' ? tfl.layers.averagePooling2d : tfl.layers.maxPooling2d;
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [12, 12, 3],
        filters: 4,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        name: 'c1',
      }),
      poolLayer({ poolSize: 2, name: 'p1' }),
      tfl.layers.conv2d({
        filters: 5,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        activation: 'relu',
        name: 'c2',
      }),
      tfl.layers.zeroPadding2d({ padding: 1, name: 'zp' }),
      tfl.layers.conv2d({ filters: 3, kernelSize: 2, padding: 'valid', activation: 'relu', name: 'c3' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 2, name: 'out' }),
    ],
  });
  seedWeights(model, 5, [0.05, 0.5], [0.01, 0.1]);
  return model;
}

/** Pixels with nonzero relevance when only `position` of `channel` in `layer` is kept (gradient-based RF). */
function relevantPixels(
  crp: CondAttribution,
  image: tf.Tensor,
  layer: string,
  channel: number,
  position: number,
): Set<number> {
  const r = crp.run(image, [{ y: [0], [layer]: [channel] }], {
    maskMap: { [layer]: ChannelConcept.receptiveField(channel, position) },
  });
  const hm = r.heatmap!.dataSync();
  disposeCondResult(r);
  const out = new Set<number>();
  hm.forEach((v, i) => {
    if (v !== 0) out.add(i);
  });
  return out;
}

function boxPixels(box: { x: number; y: number; width: number; height: number }, w: number): Set<number> {
  const out = new Set<number>();
  for (let y = box.y; y < box.y + box.height; y++)
    for (let x = box.x; x < box.x + box.width; x++) out.add(y * w + x);
  return out;
}

describe('receptive fields', () => {
  let image: tf.Tensor;
  beforeAll(() => {
    image = tf.tensor4d(uniform(mulberry32(3), 12 * 12 * 3, 0.1, 1), [1, 12, 12, 3]);
  });
  afterAll(() => image.dispose());

  it('takes the union of the branches where a residual block adds them (a downsample beside two convs)', () => {
    // 12x12x3 -> ZeroPadding2D(1) + c1 3x3 stride 2 valid (PyTorch's padding=1, folded into c1 by the default
    // canonizers) -> [c2 3x3 same, c3 3x3 same] beside [down 1x1 stride 1] -> add
    const x = tfl.input({ shape: [12, 12, 3] });
    const pad = tfl.layers.zeroPadding2d({ padding: 1, name: 'pad' }).apply(x) as tfl.SymbolicTensor;
    const c1 = tfl.layers
      .conv2d({ filters: 2, kernelSize: 3, strides: 2, name: 'c1' })
      .apply(pad) as tfl.SymbolicTensor;
    const c2 = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'c2' }).apply(c1);
    const c3 = tfl.layers
      .conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'c3' })
      .apply(c2) as tfl.SymbolicTensor;
    const down = tfl.layers
      .conv2d({ filters: 2, kernelSize: 1, name: 'down' })
      .apply(c1) as tfl.SymbolicTensor;
    const sum = tfl.layers.add({ name: 'add' }).apply([c3, down]) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: x, outputs: sum });
    const crp = new CondAttribution(model);
    const g = crp.attributor.graph;
    // c1: 3x3 at stride 2 from -1; c3: two more 3x3 at stride 2 -> 3 + 2*2 + 2*2 = 11 from -1 - 2 - 2 = -5
    expect(receptiveFieldGeometry(g, 'c1')).toMatchObject({ stride: [2, 2], offset: [-1, -1], size: [3, 3] });
    expect(receptiveFieldGeometry(g, 'c3')).toMatchObject({
      stride: [2, 2],
      offset: [-5, -5],
      size: [11, 11],
    });
    expect(receptiveFieldGeometry(g, 'down')).toMatchObject({
      stride: [2, 2],
      offset: [-1, -1],
      size: [3, 3],
    });
    // the sum sees what either branch sees: the larger field of c3, which contains that of down
    expect(receptiveFieldGeometry(g, 'add')).toMatchObject({
      stride: [2, 2],
      offset: [-5, -5],
      size: [11, 11],
    });
    crp.dispose();
    model.dispose();
  });

  it('a dilated conv sees its dilated span, (k - 1) d + 1 pixels', () => {
    // 12x12x3 -> c1 3x3 dilation (2, 1) same -> c2 3x3 dilation 3 valid
    const x = tfl.input({ shape: [12, 12, 3] });
    const c1 = tfl.layers
      .conv2d({ filters: 2, kernelSize: 3, dilationRate: [2, 1], padding: 'same', name: 'c1' })
      .apply(x) as tfl.SymbolicTensor;
    const c2 = tfl.layers
      .conv2d({ filters: 2, kernelSize: 3, dilationRate: 3, name: 'c2' })
      .apply(c1) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: x, outputs: c2 });
    const crp = new CondAttribution(model);
    const g = crp.attributor.graph;
    // c1 spans 5 x 3 pixels, 'same' pads 2 x 1 before; c2 adds (3 - 1) * 3 = 6 on each axis
    expect(receptiveFieldGeometry(g, 'c1')).toMatchObject({ stride: [1, 1], offset: [-2, -1], size: [5, 3] });
    expect(receptiveFieldGeometry(g, 'c2')).toMatchObject({
      stride: [1, 1],
      offset: [-2, -1],
      size: [11, 9],
    });
    crp.dispose();
    model.dispose();
  });

  it('arithmetic of conv, pool, stride, same/valid padding and zero padding', () => {
    const model = geometryModel('avg');
    const crp = new CondAttribution(model);
    const g = crp.attributor.graph;
    expect(receptiveFieldGeometry(g, 'c1')).toMatchObject({
      stride: [1, 1],
      offset: [-1, -1],
      size: [3, 3],
      map: [12, 12],
    });
    expect(receptiveFieldGeometry(g, 'p1')).toMatchObject({ stride: [2, 2], offset: [-1, -1], size: [4, 4] });
    // c2: same padding with stride 2 on 6 pads 0 before, 1 after
    expect(receptiveFieldGeometry(g, 'c2')).toMatchObject({
      stride: [4, 4],
      offset: [-1, -1],
      size: [8, 8],
      map: [3, 3],
    });
    expect(receptiveFieldGeometry(g, 'c3')).toMatchObject({
      stride: [4, 4],
      offset: [-5, -5],
      size: [12, 12],
      map: [4, 4],
    });
    expect(receptiveFieldGeometry(g, 'out')).toMatchObject({ spatial: false });
    const c3 = receptiveFieldGeometry(g, 'c3');
    expect(receptiveFieldBox(c3, [0, 3])).toEqual({ x: 7, y: 0, width: 5, height: 7 });
    expect(receptiveFieldBox(receptiveFieldGeometry(g, 'out'), 0)).toEqual({
      x: 0,
      y: 0,
      width: 12,
      height: 12,
    });
    expect(() => receptiveFieldBox(c3, 16)).toThrow(/outside the 4x4 map/);
    crp.dispose();
    model.dispose();
  });

  it('equals the gradient-based receptive field (pixels with relevance when one position is kept)', () => {
    const model = geometryModel('avg');
    const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
    const g = crp.attributor.graph;
    const cases: [string, number, number][] = [
      ['c1', 2, 0],
      ['c1', 1, 12 * 5 + 7],
      ['c2', 4, 0],
      ['c2', 0, 4],
      ['c2', 3, 8],
      ['c3', 1, 0],
      ['c3', 2, 6],
      ['c3', 0, 15],
    ];
    for (const [layer, channel, position] of cases) {
      const box = receptiveFieldBox(receptiveFieldGeometry(g, layer), position);
      const got = relevantPixels(crp, image, layer, channel, position);
      expect(
        [...got].sort((a, b) => a - b),
        `${layer} ${position}`,
      ).toEqual([...boxPixels(box, 12)].sort((a, b) => a - b));
    }
    crp.dispose();
    model.dispose();
  });

  it('with max pooling, the relevant pixels lie inside the box', () => {
    const model = geometryModel('max');
    const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
    for (const position of [0, 5, 10, 15]) {
      const box = boxPixels(
        receptiveFieldBox(receptiveFieldGeometry(crp.attributor.graph, 'c3'), position),
        12,
      );
      const got = relevantPixels(crp, image, 'c3', 1, position);
      expect(got.size).toBeGreaterThan(0);
      for (const p of got) expect(box.has(p)).toBe(true);
    }
    crp.dispose();
    model.dispose();
  });
});

describe('reference images', () => {
  let model: tfl.LayersModel;
  let crp: CondAttribution;
  let images: tf.Tensor4D;
  const labels = [0, 1, 2, 1, 0, 2, 1, 1];
  beforeAll(() => {
    model = tinyModel(23);
    crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
    images = tinyImages(labels.length, 31);
  });
  afterAll(() => {
    crp.dispose();
    model.dispose();
    images.dispose();
  });

  it('crops the receptive field of the most relevant position and the conditional heatmap', async () => {
    const ds = fromTensors(images, labels, { batchSize: 3 });
    const max = await maximization(crp, ds, { layers: ['c1'], topK: 3, maxTarget: 'max' });
    const options = { localization: 'conditional', crop: 'receptive-field' } as const;
    await referenceImages(crp, ds, max, { ...options, layer: 'c1', channels: [1], topK: 1 }); // warm-up: cached rule weights
    const before = tf.memory().numTensors;
    const refs = await referenceImages(crp, ds, max, { ...options, layer: 'c1', channels: [0, 3], topK: 2 });
    expect(tf.memory().numTensors).toBe(before);
    expect(Object.keys(refs.channels)).toEqual(['0', '3']);
    const geometry = receptiveFieldGeometry(crp.attributor.graph, 'c1');
    for (const c of [0, 3]) {
      const list = refs.channels[c]!;
      expect(list.map((s) => s.sample)).toEqual(max.relevance.c1!.top[c]!.slice(0, 2).map((t) => t.sample));
      for (const s of list) {
        const t = max.relevance.c1!.top[c]!.find((x) => x.sample === s.sample)!;
        expect(s.position).toEqual([Math.floor(t.argmaxPosition / 8), t.argmaxPosition % 8]);
        expect(s.box).toEqual(receptiveFieldBox(geometry, t.argmaxPosition));
        expect(s.label).toBe(labels[s.sample]);
        const one = tf.slice(images, s.sample, 1);
        const picture = toRasterImage({ shape: [8, 8, 3], data: one.dataSync() as Float32Array });
        expect(s.crop).toEqual(cropBox(picture, s.box));
        const r = crp.run(one, [{ y: [s.label], c1: [c] }]);
        const heat = imgify(
          { data: r.heatmap!.dataSync() as Float32Array, shape: [8, 8] },
          { cmap: 'bwr', symmetric: true },
        );
        expect(s.heatmap).toEqual(cropBox(heat, s.box));
        disposeCondResult(r);
        one.dispose();
        expect(s.heatmapShareInBox).toBeGreaterThan(0);
        expect(s.heatmapShareInBox).toBeLessThanOrEqual(1);
      }
    }
    const grid = referenceGrid(refs, { cellSize: 16 });
    expect([grid.width, grid.height]).toEqual([4 * 16 + 3 * 2, 2 * 16 + 2]);
    const dir = await mkdtemp(join(tmpdir(), 'crp-ref-'));
    await writeReferenceGrid(join(dir, 'c1.png'), refs, { cellSize: 16 });
    const back = await readPng(join(dir, 'c1.png'));
    expect([back.width, back.height]).toEqual([grid.width, grid.height]);
    await rm(dir, { recursive: true, force: true });
  });

  it('localises by the strongest neuron (default) and shows the relevant area in the opaque view', async () => {
    const ds = fromTensors(images, labels, { batchSize: 3 });
    const max = await maximization(crp, ds, { layers: ['c2'], topK: 3 });
    const refs = await referenceImages(crp, ds, max, { layer: 'c2', channels: [2, 4], topK: 2 });
    expect(refs.localization).toBe('neuron');
    const geometry = receptiveFieldGeometry(crp.attributor.graph, 'c2');
    let opaqueDiffers = 0;
    for (const c of [2, 4]) {
      for (const s of refs.channels[c]!) {
        const one = tf.slice(images, s.sample, 1);
        const r = crp.run(one, [{ c2: [c] }], {
          startLayer: 'c2',
          excludeParallel: false,
          maskMap: { c2: ChannelConcept.receptiveField(c, s.position) },
        });
        const data = r.heatmap!.dataSync() as Float32Array;
        disposeCondResult(r);
        // the heatmap of one neuron lies inside its receptive field
        const rf = receptiveFieldBox(geometry, s.position);
        for (let y = 0; y < 8; y++) {
          for (let x = 0; x < 8; x++) {
            const inside = y >= rf.y && y < rf.y + rf.height && x >= rf.x && x < rf.x + rf.width;
            if (!inside) expect(data[y * 8 + x]).toBe(0);
          }
        }
        const heat = { data, shape: [8, 8] };
        const blurred = blurHeatmap(
          { width: 8, height: 8, data: Float64Array.from(data, (v) => Math.max(v, 0)) },
          0.5,
        );
        const box = relevanceBox({ data: blurred.data, shape: [8, 8] }, 0.1) ?? rf;
        expect(s.box).toEqual(box);
        const picture = toRasterImage({ shape: [8, 8, 3], data: one.dataSync() as Float32Array });
        one.dispose();
        expect(s.crop).toEqual(cropBox(picture, box));
        expect(s.heatmap).toEqual(cropBox(imgify(heat, { cmap: 'bwr', symmetric: true }), box));
        const opaque = opacityView(picture, heat, {
          blur: 0.5,
          threshold: 0.2,
          minOpacity: 0.3,
          background: [0, 0, 0],
        });
        expect(s.opaque).toEqual(cropBox(opaque, box));
        if (s.opaque.data.some((v, i) => v !== s.crop.data[i])) opaqueDiffers++;
      }
    }
    // the low-relevance pixels are darkened somewhere
    expect(opaqueDiffers).toBeGreaterThan(0);

    const channel = await referenceImages(crp, ds, max, {
      layer: 'c2',
      channels: [2],
      topK: 1,
      localization: 'channel',
    });
    const first = channel.channels[2]![0]!;
    const one = tf.slice(images, first.sample, 1);
    const r = crp.run(one, [{ c2: [2] }], { startLayer: 'c2', excludeParallel: false });
    const heat = imgify(
      { data: r.heatmap!.dataSync() as Float32Array, shape: [8, 8] },
      { cmap: 'bwr', symmetric: true },
    );
    expect(first.heatmap).toEqual(cropBox(heat, first.box));
    disposeCondResult(r);
    one.dispose();
  });

  it('says what is valid for bad requests', async () => {
    const max = await maximization(crp, { images, labels }, { layers: ['c2'], topK: 2 });
    await expectCrpError(
      () => referenceImages(crp, { images, labels }, max, { layer: 'c1' }),
      'invalid-argument',
      /has: c2/,
    );
    await expectCrpError(
      () => referenceImages(crp, { images, labels }, max, { layer: 'c2', channels: [6] }),
      'invalid-argument',
      /0\.\.5/,
    );
    const fewer = tf.slice(images, 0, 2);
    await expectCrpError(
      () => referenceImages(crp, { images: fewer, labels: labels.slice(0, 2) }, max, { layer: 'c2' }),
      'invalid-argument',
      /not in the source/,
    );
    fewer.dispose();
    await expectCrpError(
      () => referenceImages(crp, { images, labels }, max, { layer: 'c2', localization: 'pixel' as 'neuron' }),
      'invalid-argument',
      /'neuron', 'channel' or 'conditional'/,
    );
    await expectCrpError(
      () => referenceImages(crp, { images, labels }, max, { layer: 'c2', opacity: { threshold: 1 } }),
      'invalid-argument',
      /opacity.threshold must be in \[0, 1\)/,
    );
  });
});

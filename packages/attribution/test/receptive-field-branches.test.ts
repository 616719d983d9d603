import { graphFromLayersModel } from '@crp/lrp';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { receptiveFieldGeometry } from '../src/index.js';

/** Receptive fields where branches meet (ResNet additions, DenseNet concatenations, squeeze-excitation
 * products), by hand: per axis a position o sees [a o + b, a o + b + r - 1]. */
function model() {
  const x = tfl.input({ shape: [8, 8, 1] });
  const ap = (l: tfl.layers.Layer, t: tfl.SymbolicTensor | tfl.SymbolicTensor[]) =>
    l.apply(t) as tfl.SymbolicTensor;
  const c1 = ap(tfl.layers.conv2d({ name: 'c1', filters: 2, kernelSize: 3, padding: 'same' }), x); // a1 b-1 r3
  const c2 = ap(tfl.layers.conv2d({ name: 'c2', filters: 2, kernelSize: 3, padding: 'same' }), c1); // a1 b-2 r5
  const sum = ap(tfl.layers.add({ name: 'sum' }), [c2, c1]); // union: b -2, r 5
  const c3 = ap(tfl.layers.conv2d({ name: 'c3', filters: 2, kernelSize: 1 }), x); // a1 b0 r1
  const cat = ap(tfl.layers.concatenate({ name: 'cat' }), [c3, sum]); // union of [0, 0] and [-2, 2]: b -2 r 5
  const gap = ap(tfl.layers.globalAveragePooling2d({ name: 'gap' }), cat);
  const gate = ap(tfl.layers.reshape({ name: 'gate', targetShape: [1, 1, 4] }), gap);
  const se = ap(tfl.layers.multiply({ name: 'se' }), [cat, gate]); // the feature branch: b -2 r 5
  const pool = ap(tfl.layers.maxPooling2d({ name: 'pool', poolSize: 2 }), se); // a2 b-2 r6
  const odd = ap(tfl.layers.conv2d({ name: 'odd', filters: 4, kernelSize: 2, strides: 2 }), cat); // a2
  const bad = ap(tfl.layers.concatenate({ name: 'bad' }), [pool, odd]); // same map size, same stride 2: fine
  const y = ap(tfl.layers.flatten({ name: 'flat' }), bad);
  return tfl.model({ inputs: x, outputs: y });
}

describe('receptive fields across branches', () => {
  const graph = graphFromLayersModel(model());
  const geo = (layer: string) => {
    const g = receptiveFieldGeometry(graph, layer);
    return [g.stride[0], g.offset[0], g.size[0]];
  };

  it('Add and Concatenate: the union of what their inputs see', () => {
    expect(geo('c2')).toEqual([1, -2, 5]);
    expect(geo('sum')).toEqual([1, -2, 5]);
    expect(geo('c3')).toEqual([1, 0, 1]);
    expect(geo('cat')).toEqual([1, -2, 5]);
  });

  it('Multiply follows its feature branch; strides compose after it', () => {
    expect(geo('se')).toEqual([1, -2, 5]);
    expect(geo('pool')).toEqual([2, -2, 6]);
    // odd: a 2x2 stride-2 conv of cat: b -2, r 5 + 1 = 6; bad: union of [-2, 3] and [-2, 3]
    expect(geo('odd')).toEqual([2, -2, 6]);
    expect(geo('bad')).toEqual([2, -2, 6]);
    expect(receptiveFieldGeometry(graph, 'flat').spatial).toBe(false);
  });
});

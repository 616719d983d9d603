/**
 * The constant folder the ViT recogniser reads torch's shape computations with (Shape -> Gather -> Unsqueeze ->
 * Concat, the Expand of the class token through Equal/Where/ConstantOfShape, a weight's Transpose), against
 * values computed by hand.
 */
import { isCrpError } from '@crp/common';
import { describe, expect, it } from 'vitest';
import type { OnnxAttribute, OnnxGraph, OnnxNode, OnnxTensor } from '../src/index.js';
import { GraphReader } from '../src/onnx-ops/graph-values.js';

const ints = (name: string, v: number[]): OnnxAttribute => ({ name, type: 7, ints: v, floats: [] });
const int = (name: string, v: number): OnnxAttribute => ({ name, type: 2, i: v, ints: [], floats: [] });
const node = (opType: string, inputs: string[], output: string, attrs: OnnxAttribute[] = []): OnnxNode => ({
  name: `/${output}`,
  opType,
  domain: '',
  inputs,
  outputs: [output],
  attributes: new Map(attrs.map((a) => [a.name, a])),
});
/** An int64 (dataType 7) or float (1) initializer. */
const init = (name: string, dims: number[], values: number[], dataType = 7): OnnxTensor =>
  ({
    name,
    dims,
    dataType,
    floatData: dataType === 1 ? values : [],
    int64Data: dataType === 7 ? values : [],
    int32Data: [],
    doubleData: [],
  }) as unknown as OnnxTensor;

const graph: OnnxGraph = {
  name: 'g',
  inputs: [],
  outputs: [],
  valueInfo: [],
  initializers: [
    init('one', [], [1]),
    init('minus1', [1], [-1]),
    init('three', [], [3]),
    init(
      'arange24',
      [2, 3, 4],
      Array.from({ length: 24 }, (_, i) => i),
      1,
    ),
    init(
      'arange10',
      [10],
      Array.from({ length: 10 }, (_, i) => i),
    ),
    init('starts', [1], [8]),
    init('ends', [1], [2]),
    init('steps', [1], [-2]),
    init('cls', [1, 1, 2], [5, 6], 1),
    init('target', [3], [3, -1, -1]),
    init('axes0', [1], [0]),
  ],
  nodes: [
    node('Shape', ['x'], 's'),
    node('Gather', ['s', 'one'], 't', [int('axis', 0)]),
    node('Unsqueeze', ['t', 'axes0'], 'u'),
    node('Concat', ['u', 'minus1'], 'reshapeTo', [int('axis', 0)]),
    node('Gather', ['s', 'one'], 'width'),
    node('Div', ['width', 'three'], 'intDiv'),
    node('Transpose', ['arange24'], 'perm', [ints('perm', [2, 0, 1])]),
    node('Slice', ['arange10', 'starts', 'ends', 'axes0', 'steps'], 'backwards'),
    // torch's expand(n, -1, -1): -1 becomes 1 through Equal/Where before the Expand
    node('ConstantOfShape', ['s'], 'ones', []),
    node('Equal', ['target', 'minus1'], 'isMinus'),
    node('Where', ['isMinus', 'onesOf3', 'target'], 'shape'),
    node('Shape', ['target'], 'three1'),
    node('ConstantOfShape', ['three1'], 'onesOf3', [
      { name: 'value', type: 4, t: init('v', [1], [1]), ints: [], floats: [] },
    ]),
    node('Expand', ['cls', 'shape'], 'expanded'),
    node('Relu', ['x'], 'activation'),
  ],
};

function reader(): GraphReader {
  const r = new GraphReader(graph, (t) => ({
    kind: 'const',
    dims: t.dims,
    data: Float64Array.from(
      t.dataType === 1 ? t.floatData : (t as unknown as { int64Data: number[] }).int64Data,
    ),
  }));
  r.setAct('x', [2, 17, 16]);
  return r;
}
const at = graph.nodes[0]!;
const values = (r: GraphReader, name: string) => {
  const c = r.constant(name, at);
  return { dims: c.dims, data: Array.from(c.data) };
};

describe('the constant folder of the ViT recogniser', () => {
  it('folds shape computations from the static shapes of activations', () => {
    const r = reader();
    expect(values(r, 's')).toEqual({ dims: [3], data: [2, 17, 16] });
    expect(values(r, 't')).toEqual({ dims: [], data: [17] });
    expect(values(r, 'reshapeTo')).toEqual({ dims: [2], data: [17, -1] });
    // int64 division truncates: 17 / 3 = 5
    expect(values(r, 'intDiv')).toEqual({ dims: [], data: [5] });
    expect(r.used.has(graph.nodes[0]!)).toBe(true);
  });

  it('transposes with any permutation, slices backwards, and expands torch-style', () => {
    const r = reader();
    // out[k][i][j] = in[i][j][k] = 12 i + 4 j + k; out is [4, 2, 3]: out[1][1][2] = 12 + 8 + 1 = 21 at 1*6 + 1*3 + 2
    const perm = values(r, 'perm');
    expect(perm.dims).toEqual([4, 2, 3]);
    expect(perm.data[11]).toBe(21);
    expect(perm.data.slice(0, 6)).toEqual([0, 4, 8, 12, 16, 20]);
    expect(values(r, 'backwards')).toEqual({ dims: [3], data: [8, 6, 4] });
    expect(values(r, 'shape')).toEqual({ dims: [3], data: [3, 1, 1] });
    expect(values(r, 'expanded')).toEqual({ dims: [3, 1, 2], data: [5, 6, 5, 6, 5, 6] });
  });

  it('tells constants from activations, and refuses to fold an activation', () => {
    const r = reader();
    expect(r.isConstant('reshapeTo')).toBe(true);
    expect(r.isConstant('activation')).toBe(false);
    expect(() => r.constant('activation', at)).toThrow(/computed by '\/activation' \(Relu\)/);
    const e = (() => {
      try {
        r.constant('x', at);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(isCrpError(e, 'unsupported-layer')).toBe(true);
    expect((e as Error).message).toMatch(/'x' is computed from the model input; expected a constant/);
    expect(r.consumers('x').map((n) => n.opType)).toEqual(['Relu']);
  });
});

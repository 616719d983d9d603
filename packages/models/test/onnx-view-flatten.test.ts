import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectCrpError } from '@crp/testing';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  encodeOnnx,
  importOnnx,
  type OnnxAttribute,
  type OnnxModel,
  type OnnxNode,
  parseOnnxModel,
} from '../src/index.js';

/** A CNN whose flatten is `x.view(x.size(0), -1)`, exported with a dynamic batch: its Reshape's target is
 * computed from the input's shape (Shape -> Gather -> Unsqueeze -> Concat), folded by the importer with the batch
 * size kept symbolic. Fixtures and torch's logits: fixtures-src/make-view-flatten.py. */
const FIXTURES = join(import.meta.dirname, 'fixtures', 'onnx');
const fixture = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));
const golden = JSON.parse(readFileSync(join(FIXTURES, 'view-flatten.json'), 'utf8')) as {
  input: number[];
  inputShape: [number, number, number, number];
  logits: number[];
};

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** torch's NCHW input as the model's NHWC one, and the model's logits for it. */
function logits(model: ReturnType<typeof importOnnx>): number[] {
  return tf.tidy(() => {
    const x = tf.transpose(tf.tensor4d(golden.input, golden.inputShape), [0, 2, 3, 1]);
    return Array.from((model.predict(x) as tf.Tensor).dataSync());
  });
}

const maxGap = (a: readonly number[], b: readonly number[]) =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('ONNX CNN with a flatten computed from the input shape (dynamic batch)', () => {
  for (const opset of [13, 11]) {
    const file = `view-flatten-opset${opset}.onnx`;
    it(`opset ${opset}: the shape computation is folded; torch's logits, the module names kept`, () => {
      const bytes = fixture(file);
      const ops = parseOnnxModel(bytes).graph.nodes.map((n) => n.opType);
      expect(ops).toEqual(expect.arrayContaining(['Shape', 'Gather', 'Unsqueeze', 'Concat', 'Reshape']));
      const before = tf.memory().numTensors;
      const model = importOnnx(bytes);
      try {
        expect(model.inputs[0]!.shape).toEqual([null, 8, 8, 3]); // the batch stays dynamic
        const y = logits(model);
        expect(y).toHaveLength(golden.logits.length);
        expect(maxGap(y, golden.logits)).toBeLessThan(1e-5);
        const names = model.layers.map((l) => l.name);
        expect(names).toEqual(expect.arrayContaining(['features.0', 'features.3', 'classifier']));
        expect(model.layers.filter((l) => l.getClassName() === 'Flatten')).toHaveLength(1);
      } finally {
        model.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it("view-count (`x.view(x.size(0), 96)`, a Concat with a Constant [96]): torch's logits", () => {
    const { logits: torchLogits } = JSON.parse(readFileSync(join(FIXTURES, 'view-count.json'), 'utf8')) as {
      logits: number[];
    };
    const model = importOnnx(fixture('view-count-opset13.onnx'));
    try {
      expect(model.inputs[0]!.shape).toEqual([null, 8, 8, 3]);
      expect(maxGap(logits(model), torchLogits)).toBeLessThan(1e-5);
    } finally {
      model.dispose();
    }
  });

  it('encodeOnnx writes changed weights back into the graph, its shape computation kept as it was', () => {
    const bytes = fixture('view-flatten-opset13.onnx');
    const model = importOnnx(bytes);
    try {
      const fc = model.getLayer('classifier');
      const [k, b] = fc.getWeights();
      const k2 = tf.mul(k!, 2);
      fc.setWeights([k2, b!]);
      k2.dispose();
      const written = encodeOnnx(bytes, model);
      expect(parseOnnxModel(written).graph.nodes).toEqual(parseOnnxModel(bytes).graph.nodes);
      const back = importOnnx(written);
      expect(maxGap(logits(back), logits(model))).toBeLessThan(1e-5);
      expect(maxGap(logits(model), golden.logits)).toBeGreaterThan(1e-2); // the weights did change
      back.dispose();
    } finally {
      model.dispose();
    }
  });

  /** The opset-13 graph with `edit` applied to its nodes (and graph). */
  function edited(edit: (nodes: OnnxNode[], model: OnnxModel) => void) {
    const model = parseOnnxModel(fixture('view-flatten-opset13.onnx'));
    edit(model.graph.nodes, model);
    return model;
  }
  const concat = (nodes: OnnxNode[]) => nodes.find((n) => n.opType === 'Concat')!;
  const gather = (nodes: OnnxNode[]) => nodes.find((n) => n.opType === 'Gather')!;
  const unsqueeze = (nodes: OnnxNode[]) => nodes.find((n) => n.opType === 'Unsqueeze')!;
  const intAttr = (name: string, i: number): [string, OnnxAttribute] => [
    name,
    { name, type: 2, i, floats: [], ints: [] },
  ];
  /** A node inserted before `before` (topological order kept). */
  function insert(
    nodes: OnnxNode[],
    before: OnnxNode,
    n: Omit<OnnxNode, 'domain' | 'attributes'>,
    attrs: [string, OnnxAttribute][] = [],
  ) {
    nodes.splice(nodes.indexOf(before), 0, { ...n, domain: '', attributes: new Map(attrs) });
  }

  it("a Cast of the batch size (to int32) moves it: torch's logits", () => {
    const model = importOnnx(
      edited((nodes) => {
        const u = unsqueeze(nodes);
        insert(
          nodes,
          u,
          { name: 'cast_batch', opType: 'Cast', inputs: [u.inputs[0]!], outputs: ['batch_int32'] },
          [intAttr('to', 6)],
        );
        u.inputs[0] = 'batch_int32';
      }),
    );
    try {
      expect(maxGap(logits(model), golden.logits)).toBeLessThan(1e-5);
    } finally {
      model.dispose();
    }
  });

  it("an input with a fixed batch size folds the computation to numbers (target [2, -1]): torch's logits", () => {
    const model = importOnnx(
      edited((_nodes, m) => {
        m.graph.inputs[0]!.shape![0] = golden.inputShape[0];
      }),
    );
    try {
      expect(maxGap(logits(model), golden.logits)).toBeLessThan(1e-5);
    } finally {
      model.dispose();
    }
  });

  const reshape = (nodes: OnnxNode[]) => nodes.find((n) => n.opType === 'Reshape')!;
  const setAllowzero = (nodes: OnnxNode[]) => reshape(nodes).attributes.set(...intAttr('allowzero', 1));

  it("[N, -1] with allowzero 1 (no 0 in the target: the same as allowzero 0): torch's logits", () => {
    const model = importOnnx(edited(setAllowzero));
    try {
      expect(maxGap(logits(model), golden.logits)).toBeLessThan(1e-5);
    } finally {
      model.dispose();
    }
  });

  it('[N, 0, -1] with allowzero 1 (a 0 is a count of zero there, and invalid beside a -1) is refused, naming the node', () => {
    expectCrpError(
      () =>
        importOnnx(
          edited((nodes) => {
            setAllowzero(nodes);
            const c = concat(nodes);
            insert(nodes, c, { name: 'zero_rest', opType: 'Constant', inputs: [], outputs: ['zero_rest'] }, [
              [
                'value',
                {
                  name: 'value',
                  type: 4,
                  t: {
                    name: 'zero_rest',
                    dims: [2],
                    dataType: 7,
                    int64Data: [0, -1],
                    floatData: [],
                    int32Data: [],
                    doubleData: [],
                  },
                  floats: [],
                  ints: [],
                },
              ],
            ]);
            c.inputs[1] = 'zero_rest';
          }),
        ),
      'unsupported-layer',
      /^ONNX node '[^']+' \(Reshape\): its target shape \[N, 0, -1\] \(N the dynamic batch size\) has allowzero 1, under which a 0 is a count of zero \(an empty dimension, and beside a -1 not valid ONNX\), not a copy of the input's dimension; supported: allowzero 0, or allowzero 1 with no 0 in the target \(the same meaning\)$/,
    );
  });

  describe('a shape computation that uses the dynamic batch size otherwise is refused, naming the node', () => {
    it('the batch size after the first axis of the target ([-1, N])', () => {
      expectCrpError(
        () =>
          importOnnx(
            edited((nodes) => {
              concat(nodes).inputs.reverse();
            }),
          ),
        'unsupported-layer',
        /^ONNX node '[^']+' \(Reshape\): its target shape \[-1, N\] puts the batch size N, which is dynamic, after the first axis; supported: targets that keep the batch axis, with N, -1 or 0 first$/,
      );
    });

    it('arithmetic on the batch size ([N * 2, -1])', () => {
      expectCrpError(
        () =>
          importOnnx(
            edited((nodes) => {
              const g = nodes.find((n) => n.opType === 'Gather')!;
              // the gathered batch size doubled: Add(g, g) before the Unsqueeze
              const doubled = `${g.outputs[0]}_doubled`;
              const add: OnnxNode = {
                ...g,
                name: 'double_batch',
                opType: 'Add',
                inputs: [g.outputs[0]!, g.outputs[0]!],
                outputs: [doubled],
                attributes: new Map(),
              };
              nodes.splice(nodes.indexOf(g) + 1, 0, add);
              const u = nodes.find((n) => n.opType === 'Unsqueeze')!;
              u.inputs[0] = doubled;
            }),
          ),
        'unsupported-layer',
        /^ONNX node 'double_batch' \(Add\): computes with the batch size \(input '[^']+'\), which is dynamic; supported: a shape computation that only moves the batch size into a Reshape's target \(Shape -> Gather -> Unsqueeze -> Concat\), or an input with a fixed batch size$/,
      );
    });

    const computes = (node: string, op: string) =>
      new RegExp(
        `^ONNX node '${node}' \\(${op}\\): computes with the batch size \\(input '[^']+'\\), which is dynamic; supported: `,
      );

    it('the batch size as an index (Gather of the shape at N)', () => {
      expectCrpError(
        () =>
          importOnnx(
            edited((nodes) => {
              const u = unsqueeze(nodes);
              const g = gather(nodes);
              insert(nodes, u, {
                name: 'gather_at_batch',
                opType: 'Gather',
                inputs: [g.inputs[0]!, g.outputs[0]!],
                outputs: ['at_batch'],
              });
              u.inputs[0] = 'at_batch';
            }),
          ),
        'unsupported-layer',
        computes('gather_at_batch', 'Gather'),
      );
    });

    it("the batch size as a Slice's end (shape[-1:N])", () => {
      expectCrpError(
        () =>
          importOnnx(
            edited((nodes) => {
              const c = concat(nodes);
              const [batch, minusOne] = c.inputs as [string, string];
              insert(nodes, c, {
                name: 'slice_to_batch',
                opType: 'Slice',
                inputs: [gather(nodes).inputs[0]!, minusOne, batch],
                outputs: ['sliced'],
              });
              c.inputs[1] = 'sliced';
            }),
          ),
        'unsupported-layer',
        computes('slice_to_batch', 'Slice'),
      );
    });

    it('an operator the importer does not fold reading the batch size (Range(0, N, 1))', () => {
      expectCrpError(
        () =>
          importOnnx(
            edited((nodes) => {
              const c = concat(nodes);
              const zero = gather(nodes).inputs[1]!;
              insert(nodes, c, {
                name: 'range_to_batch',
                opType: 'Range',
                inputs: [zero, gather(nodes).outputs[0]!, zero],
                outputs: ['range'],
              });
            }),
          ),
        'unsupported-layer',
        /^ONNX node 'range_to_batch' \(Range\): reads the batch size \(input '[^']+', computed from the input's shape\), which is dynamic; supported: the batch size as the first count of a Reshape's target, or an input with a fixed batch size$/,
      );
    });
  });
});

import * as tfl from '@tensorflow/tfjs-layers';
import type { OnnxNode } from '../onnx-proto.js';
import {
  attrInt,
  type ConversionContext,
  type OnnxConverter,
  onnxShape,
  refuse,
  type TensorValue,
} from './context.js';

/** The inputs of an Add, Mul or Concat, all tensors computed from the model input. */
function tensorsIn(node: OnnxNode, cx: ConversionContext): TensorValue[] {
  const ins = node.inputs.map((n) => cx.get(node, n));
  if (ins.some((v) => v.kind !== 'tensor'))
    refuse(
      node,
      `${node.opType} with a constant operand is not supported (except the bias after a MatMul); supported: ${node.opType} of tensors computed from the input`,
    );
  return ins as TensorValue[];
}

/** Two operands and their NCHW shapes. */
function pair(node: OnnxNode, ts: TensorValue[]) {
  if (ts.length !== 2) refuse(node, `${node.opType} of ${ts.length} inputs`);
  const [a, b] = ts as [TensorValue, TensorValue];
  return { a, b, sa: onnxShape(a), sb: onnxShape(b) };
}

/** Concat over the channel axis: `Concatenate` (DenseNet). */
export const convertConcat: OnnxConverter = (node, cx) => {
  const ts = tensorsIn(node, cx);
  const name = cx.layerName(node, undefined, true);
  const axis = attrInt(node, 'axis', 1);
  const rank = onnxShape(ts[0]!).length;
  if (axis !== 1 && axis !== 1 - rank)
    refuse(node, `Concat over axis ${axis} is not supported; supported: the channel axis 1`);
  const syms = ts.every((t) => t.squeezed === true || t.sym.shape.length === 2)
    ? ts.map((t) => t.sym)
    : ts.map((t) => cx.as4d(node, t));
  cx.set(node, {
    kind: 'tensor',
    sym: cx.apply(tfl.layers.concatenate({ name, axis: -1 }), syms),
    squeezed: ts.every((t) => t.squeezed === true),
  });
};

/** Add of two tensors of equal shape: an `Add` layer (a residual addition, its own node for the rules). */
export const convertAdd: OnnxConverter = (node, cx) => {
  const ts = tensorsIn(node, cx);
  const name = cx.layerName(node, undefined, true);
  const { a, b, sa, sb } = pair(node, ts);
  if (sa.length !== sb.length || sa.some((d, i) => d !== sb[i]))
    refuse(
      node,
      `Add of shapes [${sa.join(', ')}] and [${sb.join(', ')}]; supported: equal shapes (residual additions)`,
    );
  const flat = a.flat ?? b.flat;
  const syms = a.squeezed === b.squeezed ? [a.sym, b.sym] : [cx.as4d(node, a), cx.as4d(node, b)];
  cx.set(node, {
    kind: 'tensor',
    sym: cx.apply(tfl.layers.add({ name }), syms),
    squeezed: a.squeezed === true && b.squeezed === true,
    ...(flat === undefined ? {} : { flat }),
  });
};

/** Mul of a feature map and a gate broadcast over its height and width (squeeze-excitation): a `Multiply`
 * whose first input is the feature branch (relevance goes to it, see the README). */
export const convertMul: OnnxConverter = (node, cx) => {
  const ts = tensorsIn(node, cx);
  const name = cx.layerName(node, undefined, true);
  const { a, b, sa, sb } = pair(node, ts);
  const isGate = (s: number[], full: number[]) =>
    s.length === 4 &&
    full.length === 4 &&
    s[1] === full[1] &&
    s[2] === 1 &&
    s[3] === 1 &&
    (full[2]! > 1 || full[3]! > 1);
  const [feature, gate] = isGate(sb, sa) ? [a, b] : isGate(sa, sb) ? [b, a] : [undefined, undefined];
  if (feature === undefined || gate === undefined)
    refuse(
      node,
      `Mul of shapes [${sa.join(', ')}] and [${sb.join(', ')}] is not supported; supported: a feature map [N, C, H, W] times a gate [N, C, 1, 1] (squeeze-excitation) and x * sigmoid(x) (SiLU)`,
    );
  cx.set(node, {
    kind: 'tensor',
    sym: cx.apply(tfl.layers.multiply({ name }), [cx.as4d(node, feature), cx.as4d(node, gate)]),
  });
};

import * as tfl from '@tensorflow/tfjs-layers';
import type { OnnxNode } from '../onnx-proto.js';
import { constantAffine } from './constant-affine.js';
import {
  attrInt,
  type ConstValue,
  type ConversionContext,
  type OnnxConverter,
  onnxShape,
  refuse,
  type TensorValue,
  type Value,
} from './context.js';

/** The inputs of an Add, Mul or Concat, all tensors computed from the model input. */
function tensorsIn(node: OnnxNode, cx: ConversionContext): TensorValue[] {
  const ins = node.inputs.map((n) => cx.get(node, n));
  if (ins.some((v) => v.kind !== 'tensor'))
    refuse(
      node,
      `${node.opType} with a constant operand is not supported; supported: ${node.opType} of tensors computed from the input`,
    );
  return ins as TensorValue[];
}

/** A binary Add, Sub, Mul or Div of a tensor and a constant becomes a per-channel affine map; true if so. */
function withConstant(node: OnnxNode, cx: ConversionContext): boolean {
  if (node.inputs.length !== 2) return false;
  const [a, b] = node.inputs.map((n) => cx.get(node, n)) as [Value, Value];
  if (a.kind === 'const' && b.kind === 'const')
    refuse(node, `${node.opType} of two constants is not supported`);
  if (a.kind === b.kind) return false;
  if (a.kind === 'tensor') constantAffine(node, cx, a, b as ConstValue, false);
  else constantAffine(node, cx, b as TensorValue, a, true);
  return true;
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
  const nhwc = ts.every((t) => t.nhwc === true);
  if (!nhwc && ts.some((t) => t.nhwc === true))
    refuse(node, 'Concat of channels-last and channels-first tensors');
  const channelAxis = nhwc ? rank - 1 : 1;
  if (axis !== channelAxis && axis !== channelAxis - rank)
    refuse(node, `Concat over axis ${axis} is not supported; supported: the channel axis ${channelAxis}`);
  if (nhwc) {
    const sym = cx.apply(
      tfl.layers.concatenate({ name, axis: -1 }),
      ts.map((t) => t.sym),
    );
    cx.set(node, { kind: 'tensor', sym, nhwc });
    return;
  }
  const syms = ts.every((t) => t.squeezed === true || t.sym.shape.length === 2)
    ? ts.map((t) => t.sym)
    : ts.map((t) => cx.as4d(node, t));
  cx.set(node, {
    kind: 'tensor',
    sym: cx.apply(tfl.layers.concatenate({ name, axis: -1 }), syms),
    squeezed: ts.every((t) => t.squeezed === true),
  });
};

/** Sub and Div of a tensor and a constant: a per-channel affine map (see {@link constantAffine}). */
export const convertSubDiv: OnnxConverter = (node, cx) => {
  if (!withConstant(node, cx))
    refuse(
      node,
      `${node.opType} of two tensors is not supported; supported: ${node.opType} of a tensor and a constant`,
    );
};

/** Add of two tensors of equal shape: an `Add` layer (a residual addition, its own node for the rules); of a
 * tensor and a constant: a per-channel affine map (see {@link constantAffine}). */
export const convertAdd: OnnxConverter = (node, cx) => {
  if (withConstant(node, cx)) return;
  const ts = tensorsIn(node, cx);
  const name = cx.layerName(node, undefined, true);
  const { a, b, sa, sb } = pair(node, ts);
  if (sa.length !== sb.length || sa.some((d, i) => d !== sb[i]))
    refuse(
      node,
      `Add of shapes [${sa.join(', ')}] and [${sb.join(', ')}]; supported: equal shapes (residual additions)`,
    );
  const flat = a.flat ?? b.flat;
  // `squeezed` absent and false are the same (a sum of sums of vectors is a vector too)
  const squeezed = a.squeezed === true && b.squeezed === true;
  const syms =
    (a.squeezed === true) === (b.squeezed === true) ? [a.sym, b.sym] : [cx.as4d(node, a), cx.as4d(node, b)];
  cx.set(node, {
    kind: 'tensor',
    sym: cx.apply(tfl.layers.add({ name }), syms),
    ...(squeezed ? { squeezed } : {}),
    ...(flat === undefined ? {} : { flat }),
  });
};

/** Mul of a feature map and a gate broadcast over its height and width (squeeze-excitation): a `Multiply`
 * whose first input is the feature branch (relevance goes to it, see the README). The gate is [N, C, 1, 1] of an
 * NCHW map, or Keras's channels-last [N, 1, 1, C] of a channels-last map (tf2onnx: a Reshape((1, 1, C)) gate
 * times the map transposed back to NHWC). Of a tensor and a constant: a per-channel affine map (see
 * {@link constantAffine}). A product of two full maps is refused: no zennit rule or convention says how its
 * relevance splits between the factors. */
export const convertMul: OnnxConverter = (node, cx) => {
  if (withConstant(node, cx)) return;
  const ts = tensorsIn(node, cx);
  const name = cx.layerName(node, undefined, true);
  const { a, b, sa, sb } = pair(node, ts);
  // [N, C, 1, 1] against [N, C, H, W] (NCHW), or [N, 1, 1, C] against [N, H, W, C] (both channels-last)
  const nhwc = a.nhwc === true && b.nhwc === true;
  const [c, h, w] = nhwc ? [3, 1, 2] : [1, 2, 3];
  const isGate = (s: number[], full: number[]) =>
    s.length === 4 &&
    full.length === 4 &&
    s[c] === full[c] &&
    s[h] === 1 &&
    s[w] === 1 &&
    (full[h]! > 1 || full[w]! > 1);
  const mixed = (a.nhwc === true) !== (b.nhwc === true);
  const [feature, gate] = mixed
    ? [undefined, undefined]
    : isGate(sb, sa)
      ? [a, b]
      : isGate(sa, sb)
        ? [b, a]
        : [undefined, undefined];
  if (feature === undefined || gate === undefined)
    refuse(
      node,
      `Mul of ${mixed ? 'a channels-last and a channels-first tensor' : 'two tensors'} of shapes [${sa.join(', ')}] and [${sb.join(', ')}] is not supported; supported: a feature map times a gate broadcast over height and width ([N, C, H, W] * [N, C, 1, 1], or channels-last [N, H, W, C] * [N, 1, 1, C]: squeeze-excitation, relevance to the feature map), x * sigmoid(x) (SiLU) and a product with a constant. A product of two full-size maps has no LRP convention in zennit for splitting its relevance between the factors, so it is not guessed`,
    );
  const syms = nhwc ? [feature.sym, gate.sym] : [cx.as4d(node, feature), cx.as4d(node, gate)];
  cx.set(node, {
    kind: 'tensor',
    sym: cx.apply(tfl.layers.multiply({ name }), syms),
    ...(nhwc ? { nhwc: true } : {}),
  });
};

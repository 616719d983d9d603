import type { OnnxNode } from '../onnx-proto.js';
import { attrInts, type OnnxConverter, onnxShape, refuse } from './context.js';

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];
const same = (a: readonly number[] | undefined, b: readonly number[]) =>
  a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Transpose between channels-last and channels-first, as tf2onnx writes around NCHW operators of a TF graph:
 * [0, 3, 1, 2] of a channels-last value is the same Keras tensor read as NCHW, [0, 2, 3, 1] of an NCHW value the
 * same Keras tensor read as channels-last (before a Keras `Flatten`, whose order is then TF's). No layer: the
 * engine's tensors are NHWC either way.
 */
export const convertTranspose: OnnxConverter = (node: OnnxNode, cx) => {
  const x = cx.tensorIn(node);
  const perm = attrInts(node, 'perm');
  const rank = onnxShape(x).length;
  if (rank === 4 && x.nhwc === true && same(perm, TO_NCHW)) cx.set(node, { kind: 'tensor', sym: x.sym });
  else if (rank === 4 && x.nhwc !== true && x.squeezed !== true && same(perm, TO_NHWC))
    cx.set(node, { kind: 'tensor', sym: x.sym, nhwc: true });
  else
    refuse(
      node,
      `Transpose with perm [${perm?.join(', ') ?? 'reversed'}] of a ${x.nhwc === true ? 'channels-last' : 'channels-first'} tensor [${onnxShape(x).join(', ')}] is not supported; supported: [0, 3, 1, 2] of a channels-last and [0, 2, 3, 1] of a channels-first image tensor (tf2onnx's layout changes)`,
    );
};

/** The axes of a Squeeze or Unsqueeze: the `axes` input from opset 13 on, the attribute before. */
function axesOf(node: OnnxNode, cx: Parameters<OnnxConverter>[1], rank: number): number[] {
  const axes = cx.constIn(node, 1)?.data ?? attrInts(node, 'axes');
  if (axes === undefined) refuse(node, 'a Squeeze without axes is not supported; supported: explicit axes');
  return Array.from(axes, (a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
}

/** Squeeze of axes [2, 3] of a [N, C, 1, 1] value (tf2onnx's global pool: GlobalAveragePool + Squeeze): the
 * [N, C] vector, no layer. */
export const convertSqueeze: OnnxConverter = (node, cx) => {
  const x = cx.tensorIn(node);
  const shape = onnxShape(x);
  const axes = axesOf(node, cx, shape.length);
  if (x.squeezed === true && same(axes, [2, 3])) cx.set(node, { kind: 'tensor', sym: x.sym });
  else
    refuse(
      node,
      `Squeeze of axes [${axes.join(', ')}] of [${shape.join(', ')}] is not supported; supported: axes [2, 3] of [N, C, 1, 1] after a global pool`,
    );
};

/** Unsqueeze of axes [2, 3] of a [N, C] vector: the [N, C, 1, 1] value, no layer. */
export const convertUnsqueeze: OnnxConverter = (node, cx) => {
  const x = cx.tensorIn(node);
  const shape = onnxShape(x);
  const axes = axesOf(node, cx, shape.length + 2);
  if (shape.length === 2 && same(axes, [2, 3])) cx.set(node, { kind: 'tensor', sym: x.sym, squeezed: true });
  else
    refuse(
      node,
      `Unsqueeze of axes [${axes.join(', ')}] of [${shape.join(', ')}] is not supported; supported: axes [2, 3] of [N, C]`,
    );
};

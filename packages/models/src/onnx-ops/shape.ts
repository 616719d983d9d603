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
import { resolveReshape } from './graph-values.js';

/** A `Constant` node: its tensor `value` as a constant. */
export const convertConstant: OnnxConverter = (node, cx) => {
  const t = node.attributes.get('value')?.t;
  if (t === undefined) refuse(node, 'a Constant without a tensor `value` is not supported');
  cx.set(node, cx.constOf(t));
};

/** Identity and Dropout (inference): the input itself, no layer. */
export const convertIdentity: OnnxConverter = (node, cx) => {
  cx.set(node, cx.get(node, node.inputs[0]));
};

/** The target shape of a Reshape of an activation [N, ...] (0 copies the input's dimension unless allowzero, one
 * -1 is inferred), its batch axis N. Supported: targets that keep the batch axis, i.e. -1 or 0 there (or the batch
 * size the graph's input fixes) and each sample's elements in the rest. Refused, naming the node: any other first
 * count (`[8, -1]` on a dynamic batch is ONNX's [8, N * size / 8]: samples mixed), rest counts that do not hold
 * one sample (`[-1, C]` of [N, C, H, W] folds the H * W positions into the batch axis), and what ONNX rejects. */
function reshapeTarget(node: OnnxNode, cx: ConversionContext, shape: number[]): number[] {
  const raw = linkTarget(node, cx);
  const from = `a reshape of [${shape.join(', ')}] to [${raw.join(', ')}]`;
  const batch = cx.inputBatch;
  const known = shape.slice(1).reduce((a, b) => a * b, 1);
  const kept = batch === undefined ? '-1 or 0' : `-1, 0 or ${batch} (the batch size the input fixes)`;
  const supported = `supported: targets that keep the batch axis, with ${kept} first and each sample's ${known} elements in the rest`;
  if (raw.filter((d) => d === -1).length > 1 || raw.some((d) => d < -1 || !Number.isInteger(d)))
    refuse(node, `${from} is not valid ONNX: one -1 at most, the other counts 0 or positive`);
  // a computed batch size is the batch axis kept, which linkTarget marks 0 (a copy) under allowzero 1 too: it has
  // refused a 0 elsewhere in such a target
  const zeroCopies = attrInt(node, 'allowzero', 0) === 0 || Number.isNaN(cx.constIn(node, 1)?.data[0]);
  if (raw.includes(0) && !zeroCopies)
    refuse(node, `${from} with allowzero 1 makes a dimension of size 0; ${supported}`);
  if (raw.some((d, i) => d === 0 && i >= shape.length))
    refuse(node, `${from} copies (0) a dimension the ${shape.length}-D input does not have`);
  const first = raw[0];
  if (first === undefined || (first !== -1 && first !== 0 && first !== batch))
    refuse(
      node,
      `${from} changes the batch axis (its first count ${first ?? 'missing'}${batch === undefined ? ', while the batch size is dynamic' : `, while the input fixes the batch size at ${batch}`}), which mixes the samples; ${supported}`,
      { target: raw },
    );
  // with the batch axis kept, each sample's elements fill the rest: a -1 there is inferred from them
  const rest = raw.slice(1).map((d, i) => (d === 0 ? shape[i + 1]! : d));
  const fixedPart = rest.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const target = rest.map((d) => (d === -1 ? known / fixedPart : d));
  const rows = target.reduce((a, b) => a * b, 1);
  // a target whose sample size is not the input's moves elements between samples (ONNX's [2, 3] -> [-1, 2] is
  // [3, 2]); the batch axis below is the input's, so that would be read wrong
  if (target.some((d) => !Number.isInteger(d)))
    refuse(
      node,
      `${from} mixes the elements of the samples (${known} per sample, which the fixed counts of the rest, ${fixedPart} per row, do not divide); ${supported}`,
      { target: raw },
    );
  if (rows !== known)
    refuse(
      node,
      `${from} mixes the elements of the samples (${known} per sample, the target rows hold ${rows}); ${supported}`,
      { target: raw },
    );
  return [shape[0]!, ...target];
}

/** The constant target of a Reshape as the file means it. A target computed from the input's shape with a dynamic
 * batch (torch's `x.view(x.size(0), -1)`: Shape -> Gather -> Unsqueeze -> Concat, folded by the importer) has
 * NaN (DYNAMIC_BATCH) for the batch size; first, that is the batch axis kept, marked 0 (the copy of the batch; the
 * writer never writes it, as it lies in the Concat's computed part). Anywhere else it is refused, naming the node.
 * Under allowzero 1 such a target is read only when it holds no 0 after the batch, where allowzero changes nothing
 * (torch writes allowzero 0); a 0 there is a count of zero, which ONNX defines differently (and, beside a -1,
 * rejects). */
function linkTarget(node: OnnxNode, cx: ConversionContext): number[] {
  const t = cx.constIn(node, 1);
  if (t === undefined) refuse(node, 'the target shape must be a constant');
  const raw = Array.from(t.data);
  if (raw.slice(1).some(Number.isNaN))
    refuse(
      node,
      `its target shape [${raw.map((d) => (Number.isNaN(d) ? 'N' : d)).join(', ')}] puts the batch size N, which is dynamic, after the first axis; supported: targets that keep the batch axis, with N, -1 or 0 first`,
    );
  if (!Number.isNaN(raw[0]!)) return raw;
  const rest = raw.slice(1);
  if (attrInt(node, 'allowzero', 0) === 1 && rest.includes(0))
    refuse(
      node,
      `its target shape [N, ${rest.join(', ')}] (N the dynamic batch size) has allowzero 1, under which a 0 is a count of zero (an empty dimension${rest.includes(-1) ? ', and beside a -1 not valid ONNX' : ''}), not a copy of the input's dimension; supported: allowzero 0, or allowzero 1 with no 0 in the target (the same meaning)`,
    );
  return [0, ...rest];
}

/** A Reshape of a constant (torch.onnx.export without constant folding writes a weight's `w.view(1, -1, 1, 1)`
 * so): the constant in its new shape, no layer. Linked for the ONNX writer, as its target may be shared. */
function foldReshape(node: OnnxNode, cx: ConversionContext): void {
  const c = cx.constIn(node, 0)!;
  const t = cx.constIn(node, 1);
  if (t === undefined) refuse(node, 'the target shape must be a constant');
  const target = Array.from(t.data);
  cx.shapeLinks.push({
    node: node.name,
    input: node.inputs[0]!,
    shape: node.inputs[1]!,
    output: node.outputs[0]!,
    target,
    constant: true,
  });
  cx.set(node, { kind: 'const', dims: resolveReshape(node, c.dims, target), data: c.data });
}

/** Flatten (axis 1) and Reshape: flattening [N, C, H, W] to [N, C*H*W] (a `Flatten`, remembered as `flat` so a
 * following Gemm reorders its rows), [N, C] <-> [N, C, 1, 1] (no layer) and [N, C] -> channels-last [N, 1, 1, C]
 * (a Keras `Reshape`), and a Reshape of a constant (folded); anything else is refused. */
export const convertReshape: OnnxConverter = (node, cx) => {
  if (node.opType === 'Reshape' && cx.get(node, node.inputs[0]).kind === 'const') {
    foldReshape(node, cx);
    return;
  }
  const x = cx.tensorIn(node);
  const shape = onnxShape(x);
  let target: number[];
  if (node.opType === 'Flatten') {
    const axis = attrInt(node, 'axis', 1);
    if (axis !== 1) refuse(node, `Flatten over axis ${axis} is not supported; supported: axis 1`);
    target = [shape[0]!, shape.slice(1).reduce((a, b) => a * b, 1)];
  } else {
    target = reshapeTarget(node, cx, shape);
    cx.shapeLinks.push({
      node: node.name,
      input: node.inputs[0]!,
      shape: node.inputs[1]!,
      output: node.outputs[0]!,
      target: linkTarget(node, cx),
      ...(attrInt(node, 'allowzero', 0) === 1 ? { allowzero: true as const } : {}),
    });
  }
  const rest = target.slice(1);
  const same = rest.length === shape.length - 1 && rest.every((d, i) => d === shape[i + 1]);
  let y: TensorValue;
  if (same) y = x;
  else if (rest.length === 1 && x.sym.shape.length === 4) {
    const [, h, wd, c] = x.sym.shape as [null, number, number, number];
    const sym = cx.apply(tfl.layers.flatten({ name: cx.layerName(node, undefined, true) }), x.sym);
    // a channels-last value flattens in TF's own order; an NCHW one in (c, h, w), which the next Gemm reorders
    const reorder = h * wd > 1 && x.nhwc !== true;
    y = { kind: 'tensor', sym, ...(reorder ? { flat: [c, h, wd] as [number, number, number] } : {}) };
  } else if (rest.length === 1 && x.squeezed === true) y = { kind: 'tensor', sym: x.sym };
  else if (rest.length === 3 && rest[1] === 1 && rest[2] === 1 && x.sym.shape.length === 2)
    y = { kind: 'tensor', sym: x.sym, squeezed: true };
  else if (rest.length === 3 && rest[0] === 1 && rest[1] === 1 && x.sym.shape.length === 2) {
    // Keras's Reshape((1, 1, C)) of a [N, C] vector (a squeeze-excitation gate in a tf2onnx graph): channels-last
    const layer = tfl.layers.reshape({ name: cx.layerName(node), targetShape: [1, 1, rest[2]!] });
    y = { kind: 'tensor', sym: cx.apply(layer, x.sym), nhwc: true };
  } else
    refuse(
      node,
      `reshape of [${shape.join(', ')}] to [${target.join(', ')}] is not supported; supported: flattening [N, C, H, W] to [N, C*H*W], [N, C] <-> [N, C, 1, 1] and [N, C] -> channels-last [N, 1, 1, C]`,
    );
  cx.set(node, y);
};

/** Pad: constant zero padding of height and width, a `ZeroPadding2D` (all-zero pads: nothing). */
export const convertPad: OnnxConverter = (node, cx) => {
  const x = cx.tensorIn(node);
  const mode = node.attributes.get('mode')?.s ?? 'constant';
  const pads = cx.constIn(node, 1)?.data;
  const value = cx.constIn(node, 2)?.data[0] ?? 0;
  if (node.inputs[3] !== undefined && node.inputs[3] !== '') refuse(node, 'Pad with axes is not supported');
  if (mode !== 'constant' || value !== 0)
    refuse(node, `Pad mode '${mode}' with value ${value} is not supported; supported: constant zero padding`);
  if (pads === undefined || pads.length !== 8)
    refuse(node, 'the pads of a 4-D tensor must be a constant of 8 values');
  const [n0, c0, t, l, n1, c1, b, r] = Array.from(pads) as number[] as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (n0 !== 0 || c0 !== 0 || n1 !== 0 || c1 !== 0 || [t, l, b, r].some((p) => p < 0))
    refuse(
      node,
      `pads [${Array.from(pads).join(', ')}] are not supported; supported: non-negative pads of height and width`,
    );
  if (t === 0 && l === 0 && b === 0 && r === 0) {
    cx.set(node, x); // torch exports AvgPool2d at opset 11 with an all-zero Pad before it
    return;
  }
  const sym = cx.as4d(node, x);
  const layer = tfl.layers.zeroPadding2d({
    name: cx.layerName(node),
    padding: [
      [t, b],
      [l, r],
    ],
  });
  cx.set(node, { kind: 'tensor', sym: cx.apply(layer, sym) });
};

import * as tfl from '@tensorflow/tfjs-layers';
import type { OnnxNode } from '../onnx-proto.js';
import { paddedMaxPooling2d } from '../padded-max-pooling-2d.js';
import {
  attrInt,
  attrInts,
  type ConversionContext,
  type OnnxConverter,
  paddingOf,
  refuse,
  type Window,
  windowOf,
} from './context.js';

/** ceil_mode = 1 is accepted only where it gives the same output size as floor. */
function checkCeilMode(node: OnnxNode, win: Window, size: [number, number]): void {
  if (attrInt(node, 'ceil_mode', 0) === 0) return;
  const out = (round: (v: number) => number, n: number, k: number, s: number, p: number) =>
    round((n + p - k) / s) + 1;
  const [t, l, b, r] = win.pads;
  const differs = (axis: 0 | 1, p: number) =>
    out(Math.floor, size[axis], win.kernel[axis], win.strides[axis], p) !==
    out(Math.ceil, size[axis], win.kernel[axis], win.strides[axis], p);
  if (differs(0, t + b) || differs(1, l + r))
    refuse(
      node,
      'ceil_mode = 1 changes the output size here; supported: ceil_mode = 0 (or sizes where it makes no difference)',
    );
}

/** MaxPool and AveragePool (2-D). Max pool pads never win a window (ONNX's and PyTorch's -inf padding:
 * `PaddedMaxPooling2D`); an average pool's pads are zeros only where they are counted (count_include_pad). */
export const convertPool: OnnxConverter = (node: OnnxNode, cx: ConversionContext) => {
  const sym = cx.as4d(node, cx.tensorIn(node));
  const [h, wd] = sym.shape.slice(1, 3) as [number, number];
  const kernel = (attrInts(node, 'kernel_shape') ?? []) as [number, number];
  if (kernel.length !== 2) refuse(node, 'only 2-D pooling is supported');
  if (node.outputs.filter((o) => o !== '').length > 1)
    refuse(node, 'the indices output of MaxPool is not supported');
  const win = windowOf(node, kernel, [h, wd]);
  checkCeilMode(node, win, [h, wd]);
  let padding = paddingOf(win, [h, wd]);
  const max = node.opType === 'MaxPool';
  const includePad = !max && attrInt(node, 'count_include_pad', 0) !== 0;
  let input = sym;
  const name = cx.layerName(node);
  if (max && Array.isArray(padding)) {
    const y = cx.apply(paddedMaxPooling2d({ name, poolSize: kernel, strides: win.strides, padding }), sym);
    cx.set(node, { kind: 'tensor', sym: y });
    return;
  }
  if (Array.isArray(padding)) {
    // zero padding is exact for an average that counts the pads
    if (!includePad)
      refuse(
        node,
        `average pooling with pads [${win.pads.join(', ')}] that are not counted (count_include_pad = 0) is not supported unless they are TF's 'same' pads`,
      );
    input = cx.pad(node, sym, padding);
    padding = 'valid';
  } else if (padding === 'same' && includePad) {
    input = cx.pad(node, sym, [
      [win.pads[0], win.pads[2]],
      [win.pads[1], win.pads[3]],
    ]);
    padding = 'valid';
  }
  const args = { name, poolSize: kernel, strides: win.strides, padding };
  const y = cx.apply(max ? tfl.layers.maxPooling2d(args) : tfl.layers.averagePooling2d(args), input);
  cx.set(node, { kind: 'tensor', sym: y });
};

/** GlobalAveragePool / GlobalMaxPool: a squeezed [N, C] tensor standing for ONNX's [N, C, 1, 1]. */
export const convertGlobalPool: OnnxConverter = (node: OnnxNode, cx: ConversionContext) => {
  const x = cx.tensorIn(node);
  const name = cx.layerName(node);
  if (x.squeezed === true) {
    cx.set(node, x);
    return;
  }
  const sym = cx.as4d(node, x);
  const layer =
    node.opType === 'GlobalAveragePool'
      ? tfl.layers.globalAveragePooling2d({ name })
      : tfl.layers.globalMaxPooling2d({ name });
  cx.set(node, { kind: 'tensor', sym: cx.apply(layer, sym), squeezed: true });
};

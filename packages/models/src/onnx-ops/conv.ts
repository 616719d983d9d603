import { GroupedConv2D } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { OnnxNode } from '../onnx-proto.js';
import { preset } from '../preset-initializer.js';
import {
  attrInt,
  type ConversionContext,
  convKernel,
  dilationsOf,
  type OnnxConverter,
  paddingOf,
  refuse,
  windowOf,
} from './context.js';

/** Torch's depthwise weight [cin * m, 1, kh, kw] -> TF [kh, kw, cin, m]: torch's output channel c * m + j is
 * TF's (channel c, multiplier j), the same order. */
function depthwiseKernel(w: Float64Array, cin: number, m: number, kh: number, kw: number): tf.Tensor4D {
  const k = new Float32Array(w.length);
  for (let c = 0; c < cin; c++)
    for (let j = 0; j < m; j++)
      for (let p = 0; p < kh * kw; p++) k[(p * cin + c) * m + j] = w[(c * m + j) * kh * kw + p]!;
  return tf.tensor4d(k, [kh, kw, cin, m]);
}

/** Conv (2-D): group 1 as `Conv2D` (with both dilations and strides as a one-group `GroupedConv2D`), group =
 * channels as `DepthwiseConv2D`, other groups as @crp/lrp's `GroupedConv2D`; pads TF's 'same' cannot express
 * become a `ZeroPadding2D` before it. */
export const convertConv: OnnxConverter = (node: OnnxNode, cx: ConversionContext) => {
  const x = cx.tensorIn(node);
  const w = cx.constIn(node, 1)!;
  const b = cx.constIn(node, 2);
  const [out, perGroup, kh, kw] = w.dims as [number, number, number, number];
  const sym = cx.as4d(node, x);
  const [h, wd, cin] = sym.shape.slice(1) as [number, number, number];
  const group = attrInt(node, 'group', 1);
  const dilationRate = dilationsOf(node);
  const dilated = dilationRate[0] !== 1 || dilationRate[1] !== 1;
  const win = windowOf(node, [(kh - 1) * dilationRate[0] + 1, (kw - 1) * dilationRate[1] + 1], [h, wd]);
  const padding = paddingOf(win, [h, wd]);
  const input = Array.isArray(padding) ? cx.pad(node, sym, padding) : sym;
  const name = cx.layerName(node, node.inputs[1]);
  const bias = b === undefined ? null : Float32Array.from(b.data);
  const common = {
    name,
    kernelSize: [kh, kw] as [number, number],
    strides: win.strides,
    dilationRate,
    padding: Array.isArray(padding) ? ('valid' as const) : padding,
    useBias: bias !== null,
    ...(bias === null ? {} : { biasInitializer: preset(() => tf.tensor1d(bias), 'zeros') }),
  };
  const strided = win.strides[0] !== 1 || win.strides[1] !== 1;
  let layer: tfl.layers.Layer;
  if (group === 1 && dilated && strided) {
    // TF.js's Conv2D takes dilations only with stride 1; GroupedConv2D (one group) runs the kernel spread by zeros
    if (perGroup !== cin)
      refuse(node, `weight [${w.dims.join(', ')}] does not fit an input of ${cin} channels`);
    layer = new GroupedConv2D({
      ...common,
      filters: out,
      groups: 1,
      kernelInitializer: preset(() => convKernel(w.data, out, cin, kh, kw), 'glorotUniform'),
    });
  } else if (group === 1) {
    if (perGroup !== cin)
      refuse(node, `weight [${w.dims.join(', ')}] does not fit an input of ${cin} channels`);
    layer = tfl.layers.conv2d({
      ...common,
      filters: out,
      kernelInitializer: preset(() => convKernel(w.data, out, cin, kh, kw), 'glorotUniform'),
    });
  } else if (group === cin && perGroup === 1 && out % cin === 0 && !dilated) {
    const m = out / cin;
    layer = tfl.layers.depthwiseConv2d({
      ...common,
      depthMultiplier: m,
      depthwiseInitializer: preset(() => depthwiseKernel(w.data, cin, m, kh, kw), 'glorotUniform'),
    });
  } else if (group > 1 && cin % group === 0 && out % group === 0 && perGroup === cin / group) {
    // PyTorch's Conv2d(groups) (ResNeXt): weight [out, in / group, kh, kw] -> [kh, kw, in / group, out]. A dilated
    // depthwise conv (group = channels) comes here too: TF.js's DepthwiseConv2D layer ignores its dilation rate,
    // and a grouped conv with one input channel per group is the same map (output c * m + j reads channel c)
    layer = new GroupedConv2D({
      ...common,
      filters: out,
      groups: group,
      kernelInitializer: preset(() => convKernel(w.data, out, perGroup, kh, kw), 'glorotUniform'),
    });
  } else {
    refuse(
      node,
      `group ${group} with weight [${w.dims.join(', ')}] does not fit an input of ${cin} channels; supported: group 1, grouped (input and output channels divisible by group) and depthwise (group = channels)`,
    );
  }
  cx.links.push({
    kind: layer.getClassName() === 'DepthwiseConv2D' ? 'depthwise' : 'conv',
    layer: name,
    node: node.name,
    weight: node.inputs[1]!,
    ...(b === undefined ? {} : { bias: node.inputs[2]! }),
  });
  cx.set(node, { kind: 'tensor', sym: cx.apply(layer, input) });
};

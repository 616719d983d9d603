import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { OnnxNode } from '../onnx-proto.js';
import { preset } from '../preset-initializer.js';
import {
  attrFloat,
  attrInt,
  type ConversionContext,
  type OnnxConverter,
  onnxShape,
  refuse,
  type TensorValue,
} from './context.js';

/** MatMul + Add of a constant vector is one dense layer: the bias, and the Add node to skip. */
function fusedBias(node: OnnxNode, cx: ConversionContext, units: number) {
  const add = cx.onlyConsumer(node.outputs[0]!);
  if (add?.opType !== 'Add') return undefined;
  const other = add.inputs.find((n) => n !== node.outputs[0]);
  const v = other === undefined ? undefined : cx.lookup(other);
  return v?.kind === 'const' && v.data.length === units ? { bias: v.data, add } : undefined;
}

/** Kernel [in, out] in the TF order of the input features: after a flatten of a (c, h, w) map torch's row
 * (ch, y, x) is TF's row (y, x, ch). */
function denseKernel(
  x: TensorValue,
  w: Float64Array,
  inF: number,
  units: number,
  transB: boolean,
  alpha: number,
) {
  const flat = x.flat;
  const rowOf = (i: number): number => {
    if (flat === undefined) return i;
    const [c, h, wd] = flat;
    const ch = Math.floor(i / (h * wd));
    return (i % (h * wd)) * c + ch;
  };
  const kernel = new Float32Array(inF * units);
  for (let i = 0; i < inF; i++) {
    const row = rowOf(i);
    for (let u = 0; u < units; u++)
      kernel[row * units + u] = alpha * w[transB ? u * inF + i : i * units + u]!;
  }
  return kernel;
}

/** Gemm, and MatMul (+ Add of a constant vector), of a [N, features] input and a constant matrix: `Dense`. */
export const convertGemm: OnnxConverter = (node: OnnxNode, cx: ConversionContext) => {
  const x = cx.tensorIn(node);
  const w = cx.constIn(node, 1);
  if (w === undefined || w.dims.length !== 2) refuse(node, 'the second input must be a constant matrix');
  if (x.sym.shape.length !== 2)
    refuse(node, `needs a 2-D input [N, features]; got [${onnxShape(x).join(', ')}]`);
  const isGemm = node.opType === 'Gemm';
  if (isGemm && attrInt(node, 'transA', 0) !== 0) refuse(node, 'transA = 1 is not supported');
  const transB = isGemm && attrInt(node, 'transB', 0) !== 0;
  const alpha = isGemm ? attrFloat(node, 'alpha', 1) : 1;
  const beta = isGemm ? attrFloat(node, 'beta', 1) : 1;
  const [r0, r1] = w.dims as [number, number];
  const [inF, units] = transB ? [r1, r0] : [r0, r1];
  if (inF !== x.sym.shape[1])
    refuse(node, `weight [${w.dims.join(', ')}] does not fit ${x.sym.shape[1]} input features`);
  let biasData: Float64Array | undefined;
  let biasName: string | undefined;
  let outNode = node;
  if (isGemm) {
    biasData = cx.constIn(node, 2)?.data;
    biasName = biasData === undefined ? undefined : node.inputs[2];
  } else {
    const fused = fusedBias(node, cx, units);
    if (fused !== undefined) {
      biasData = fused.bias;
      biasName = fused.add.inputs.find((n) => n !== node.outputs[0]);
      cx.skip(fused.add);
      outNode = fused.add;
    }
  }
  if (biasData !== undefined && biasData.length !== units) {
    if (biasData.length !== 1) refuse(node, `bias of ${biasData.length} values for ${units} units`);
    biasData = new Float64Array(units).fill(biasData[0]!);
  }
  const kernel = denseKernel(x, w.data, inF, units, transB, alpha);
  const bias = biasData === undefined ? null : Float32Array.from(biasData, (v) => beta * v);
  const name = cx.layerName(node, node.inputs[1]);
  cx.links.push({
    kind: 'dense',
    layer: name,
    node: node.name,
    weight: node.inputs[1]!,
    ...(biasName === undefined ? {} : { bias: biasName }),
    transB,
    alpha,
    beta,
    ...(x.flat === undefined ? {} : { flat: x.flat }),
  });
  const layer = tfl.layers.dense({
    name,
    units,
    useBias: bias !== null,
    kernelInitializer: preset(() => tf.tensor2d(kernel, [inF, units]), 'glorotUniform'),
    ...(bias === null ? {} : { biasInitializer: preset(() => tf.tensor1d(bias), 'zeros') }),
  });
  cx.set(outNode, { kind: 'tensor', sym: cx.apply(layer, x.sym) });
};

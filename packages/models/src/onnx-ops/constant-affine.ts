import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { OnnxNode } from '../onnx-proto.js';
import { preset } from '../preset-initializer.js';
import { type ConstValue, type ConversionContext, onnxShape, refuse, type TensorValue } from './context.js';

/** One value per channel from a constant that broadcasts against a value of ONNX shape `shape`: a scalar, or a
 * constant whose only dimension above 1 is the channel axis (1 for NCHW and [N, F], 3 for channels-last). */
function perChannel(node: OnnxNode, c: ConstValue, x: TensorValue, shape: number[]): Float64Array {
  const channels = x.sym.shape[x.sym.shape.length - 1] as number;
  if (c.data.length === 1) return new Float64Array(channels).fill(c.data[0]!);
  const axis = shape.length === 4 && x.nhwc !== true ? 1 : shape.length - 1;
  // right-aligned broadcasting: the constant's dimension for the channel axis, all others 1
  const offset = shape.length - c.dims.length;
  const fits =
    offset >= 0 &&
    c.dims.every((d, i) => (i + offset === axis ? d === channels : d === 1)) &&
    x.flat === undefined;
  if (!fits) {
    const per =
      shape.length === 4
        ? x.nhwc === true
          ? '[C] or [1, 1, 1, C]'
          : '[C, 1, 1] or [1, C, 1, 1]'
        : '[F] or [1, F]';
    refuse(
      node,
      `${node.opType} of a tensor [${shape.join(', ')}] and a constant of shape [${c.dims.join(', ')}] is not supported; supported: a scalar or one value per channel (${per})${x.flat === undefined ? '' : ', and only a scalar after a flatten of a feature map'}`,
    );
  }
  return c.data;
}

/** The next node of a chain of constant operations (`(x - mean) / std`, `x * a + b`): the only consumer of
 * `node`'s output when it is a binary Add, Sub, Mul or Div with a constant other operand. */
function nextStep(
  node: OnnxNode,
  cx: ConversionContext,
): { node: OnnxNode; c: ConstValue; constFirst: boolean } | undefined {
  const next = cx.onlyConsumer(node.outputs[0]!);
  if (next === undefined || !AFFINE_OPS.has(next.opType) || next.inputs.length !== 2) return undefined;
  const k = next.inputs.indexOf(node.outputs[0]!);
  const other = cx.lookup(next.inputs[1 - k]!);
  if (other?.kind !== 'const' || next.inputs[0] === next.inputs[1]) return undefined;
  if (next.opType === 'Div' && k === 1) return undefined; // c / x is not affine
  return { node: next, c: other, constFirst: k === 1 };
}

const AFFINE_OPS = new Set(['Add', 'Sub', 'Mul', 'Div']);

/** Applies one constant operation to the map x * scale + offset (per channel, in place). */
function compose(
  op: string,
  constFirst: boolean,
  k: Float64Array,
  scale: Float64Array,
  offset: Float64Array,
): void {
  for (let i = 0; i < scale.length; i++) {
    const c = k[i]!;
    if (op === 'Add') offset[i] = offset[i]! + c;
    else if (op === 'Sub' && constFirst) [scale[i], offset[i]] = [-scale[i]!, c - offset[i]!];
    else if (op === 'Sub') offset[i] = offset[i]! - c;
    else if (op === 'Mul') [scale[i], offset[i]] = [scale[i]! * c, offset[i]! * c];
    else [scale[i], offset[i]] = [scale[i]! / c, offset[i]! / c];
  }
}

/**
 * Add, Sub, Mul or Div of a tensor and a constant (scalar or per channel, e.g. an input normalisation
 * `(x - mean) / std`, or Keras's `Rescaling`), and the constant operations that follow it alone: one per-channel
 * affine map x * scale + offset, written as a `BatchNormalization` of mean 0, variance 1 and epsilon 0. So the
 * canonizers merge it into the conv or dense layer before it, and the composites treat it as a batch norm (Pass),
 * as zennit does a batch norm. The layer is named after the first node of the chain.
 */
export function constantAffine(
  node: OnnxNode,
  cx: ConversionContext,
  x: TensorValue,
  c: ConstValue,
  constFirst: boolean,
) {
  if (node.opType === 'Div' && constFirst)
    refuse(
      node,
      'Div of a constant by a tensor (c / x) is not supported; supported: x / c, x * c, x + c, x - c, c - x',
    );
  const shape = onnxShape(x);
  const n = x.sym.shape[x.sym.shape.length - 1] as number;
  const scale = new Float64Array(n).fill(1);
  const offset = new Float64Array(n);
  compose(node.opType, constFirst, perChannel(node, c, x, shape), scale, offset);
  let last = node;
  for (let step = nextStep(last, cx); step !== undefined; step = nextStep(last, cx)) {
    compose(step.node.opType, step.constFirst, perChannel(step.node, step.c, x, shape), scale, offset);
    cx.skip(step.node);
    last = step.node;
  }
  const layer = tfl.layers.batchNormalization({
    name: cx.layerName(node, undefined, true),
    axis: -1,
    epsilon: 0,
    gammaInitializer: preset(() => tf.tensor1d(Float32Array.from(scale)), 'ones'),
    betaInitializer: preset(() => tf.tensor1d(Float32Array.from(offset)), 'zeros'),
    movingMeanInitializer: preset(() => tf.zeros([n]), 'zeros'),
    movingVarianceInitializer: preset(() => tf.ones([n]), 'ones'),
  });
  cx.set(last, { ...x, sym: cx.apply(layer, x.sym) });
}

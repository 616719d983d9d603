import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { OnnxNode } from '../onnx-proto.js';
import { preset } from '../preset-initializer.js';
import { attrFloat, type ConversionContext, nchwOnly, type OnnxConverter, refuse } from './context.js';

/** BatchNormalization in inference mode (constant scale, bias, mean, variance): `BatchNormalization` over the
 * channel axis (the canonizers merge it into a neighbouring conv before attribution). */
export const convertBatchNormalization: OnnxConverter = (node: OnnxNode, cx: ConversionContext) => {
  const x = cx.tensorIn(node);
  if (x.nhwc === true) nchwOnly(node);
  const parts = [1, 2, 3, 4].map((k) => cx.constIn(node, k)!);
  if (parts.some((p) => p === undefined)) refuse(node, 'scale, bias, mean and variance must be constants');
  if (node.outputs.filter((o) => o !== '').length > 1)
    refuse(node, 'training mode (running statistics as outputs) is not supported');
  const [gamma, beta, mean, variance] = parts.map((p) => Float32Array.from(p.data)) as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  const name = cx.layerName(node, node.inputs[1]);
  const [scale, bias, meanName, varName] = node.inputs.slice(1, 5) as [string, string, string, string];
  cx.links.push({
    kind: 'batchNorm',
    layer: name,
    node: node.name,
    scale,
    bias,
    mean: meanName,
    variance: varName,
  });
  const layer = tfl.layers.batchNormalization({
    name,
    axis: -1,
    epsilon: attrFloat(node, 'epsilon', 1e-5),
    gammaInitializer: preset(() => tf.tensor1d(gamma), 'ones'),
    betaInitializer: preset(() => tf.tensor1d(beta), 'zeros'),
    movingMeanInitializer: preset(() => tf.tensor1d(mean), 'zeros'),
    movingVarianceInitializer: preset(() => tf.tensor1d(variance), 'ones'),
  });
  cx.set(node, { ...x, sym: cx.apply(layer, x.sym) });
};

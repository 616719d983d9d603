import * as tfl from '@tensorflow/tfjs-layers';
import type { OnnxNode } from '../onnx-proto.js';
import { attrFloat, attrInt, type ConversionContext, type OnnxConverter, refuse } from './context.js';

/** An element-wise activation: one Keras layer on the input, the value's layout kept. */
function activation(
  make: (node: OnnxNode, name: () => string, cx: ConversionContext) => tfl.layers.Layer,
): OnnxConverter {
  return (node, cx) => {
    const x = cx.tensorIn(node);
    const layer = make(node, () => cx.layerName(node), cx);
    cx.set(node, { ...x, sym: cx.apply(layer, x.sym) });
  };
}

export const convertRelu = activation((_, name) => tfl.layers.reLU({ name: name() }));

export const convertLeakyRelu = activation((node, name) =>
  tfl.layers.leakyReLU({ name: name(), alpha: attrFloat(node, 'alpha', 0.01) }),
);

export const convertElu = activation((node, name) => {
  if (attrFloat(node, 'alpha', 1) !== 1) refuse(node, 'Elu with alpha other than 1 is not supported');
  return tfl.layers.elu({ name: name() });
});

export const convertTanh = activation((_, name) =>
  tfl.layers.activation({ name: name(), activation: 'tanh' }),
);

/** Clip(0, 6) is ReLU6 and Clip(0) ReLU; the bounds are inputs from opset 11 on, attributes before. */
export const convertClip = activation((node, name, cx) => {
  const lo = cx.constIn(node, 1)?.data[0] ?? node.attributes.get('min')?.f ?? -Infinity;
  const hi = cx.constIn(node, 2)?.data[0] ?? node.attributes.get('max')?.f ?? Infinity;
  if (lo !== 0 || (hi !== 6 && hi !== Infinity))
    refuse(node, `Clip(${lo}, ${hi}) is not supported; supported: Clip(0, 6) (ReLU6) and Clip(0) (ReLU)`);
  return tfl.layers.reLU({ name: name(), ...(hi === 6 ? { maxValue: 6 } : {}) });
});

/** Sigmoid; `x * sigmoid(x)` (how torch.nn.SiLU exports) is one swish activation, its Mul skipped. */
export const convertSigmoid: OnnxConverter = (node, cx) => {
  const x = cx.tensorIn(node);
  const mul = cx.onlyConsumer(node.outputs[0]!);
  if (
    mul?.opType === 'Mul' &&
    mul.inputs.includes(node.inputs[0]!) &&
    mul.inputs.includes(node.outputs[0]!)
  ) {
    cx.skip(mul);
    cx.set(mul, {
      ...x,
      sym: cx.apply(tfl.layers.activation({ name: cx.layerName(node), activation: 'swish' }), x.sym),
    });
    return;
  }
  cx.set(node, {
    ...x,
    sym: cx.apply(tfl.layers.activation({ name: cx.layerName(node), activation: 'sigmoid' }), x.sym),
  });
};

/** Softmax over the classes of a [N, classes] output. */
export const convertSoftmax: OnnxConverter = (node, cx) => {
  const x = cx.tensorIn(node);
  const axis = attrInt(node, 'axis', -1);
  if (x.sym.shape.length !== 2 || (axis !== -1 && axis !== 1))
    refuse(node, 'softmax is supported over the classes of a [N, classes] output only');
  cx.set(node, { kind: 'tensor', sym: cx.apply(tfl.layers.softmax({ name: cx.layerName(node) }), x.sym) });
};

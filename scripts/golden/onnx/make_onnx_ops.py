#!/usr/bin/env python3
"""Golden values for the ONNX operators beyond the first three models (vendor/reference/onnx, run after
make_onnx_golden.py; it adds its models and cases to the same index.json):

* `mobile_like` (opset 14, and `mobile_like_opset13.onnx` for the logits only): MobileNetV3 in miniature, with an
  input normalisation `(x - mean) / std` inside the model (Sub, Div by per-channel constants), Hardswish (ONNX
  HardSwish at opset 14, `x * HardSigmoid(x)` below), a depthwise conv, a squeeze-excitation whose gate is a
  Hardsigmoid, and a constant scale and shift after a conv (Mul, Add by scalars);
* `dilated_net` (opset 13): convs with dilation 2 and (2, 1);
* `tf2onnx_gap` and `tf2onnx_flatten`: graphs shaped as tf2onnx emits a Keras CNN (NHWC input, a Rescaling's Mul
  and Add, a Transpose [0, 3, 1, 2] before the first Conv, convs with TF's 'same' pads written out, batch norms
  folded into the convs, ReLU6 as Clip(0, 6) with constant inputs, GlobalAveragePooling2D as GlobalAveragePool +
  Squeeze, a Dense as MatMul + Add, Flatten as Transpose [0, 2, 3, 1] + Reshape), written with onnx.helper (no
  TensorFlow here) from a torch model of the same function, whose logits (the expected outputs) and zennit
  relevances are computed in NCHW;
* `tf2onnx_se` and `tf2onnx_dw`: the same kind of graphs with a squeeze-excitation block written channels-last
  (a Reshape((1, 1, C)) gate times the feature map transposed back to NHWC), a standalone batch norm read through a
  Transpose [0, 3, 1, 2], and a dilated depthwise conv (group = channels, dilations [2, 2]).

    ZENNIT_SRC=<zennit 0.5.1 tree>/src python3 scripts/golden/onnx/make_onnx_ops.py vendor/reference/onnx

Conventions of the zennit run (as make_onnx_golden.py): Hardswish and Hardsigmoid are zennit `Activation`s (Pass);
a constant affine map x * c + b after a conv is a batch norm merged into the conv (the importer writes it as a
BatchNormalization of mean 0, variance 1, epsilon 0, which mergeBatchNorm merges); one that follows no conv (the
input normalisation, a Rescaling) gets Pass, as the importer's batch norm does; the SE product PassToFeature.
"""
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_onnx_golden as base  # noqa: E402
from make_onnx_golden import CLASSES, SIZE, ExactNamedMergeBatchNorm, GatedProduct, init_weights  # noqa: E402

torch.set_num_threads(1)
OUT = sys.argv[1] if len(sys.argv) > 1 else 'vendor/reference/onnx'


class PassThrough(torch.autograd.Function):
    """Computes f(x) forward and passes the incoming gradient unchanged (zennit's Pass rule)."""

    @staticmethod
    def forward(ctx, x, f):
        return f(x)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class Normalize(torch.nn.Module):
    """(x - mean) / std per channel inside the model: exported as Sub and Div by [1, C, 1, 1] constants."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1))
        self.zennit = False

    def forward(self, x):
        f = lambda v: (v - self.mean) / self.std  # noqa: E731
        return PassThrough.apply(x, f) if self.zennit else f(x)


class ScaleShift(torch.nn.BatchNorm2d):
    """x * scale + shift with scalar constants (exported as Mul and Add); for zennit a batch norm of mean 0,
    variance 1 and eps 0 with the same function, merged into the conv before it."""

    def __init__(self, channels, scale, shift):
        super().__init__(channels, eps=0.0)
        self.scale, self.shift = scale, shift
        self.zennit = False

    def set_constants(self):
        with torch.no_grad():
            self.weight.fill_(self.scale)
            self.bias.fill_(self.shift)
            self.running_mean.zero_()
            self.running_var.fill_(1.0)

    def forward(self, x):
        return super().forward(x) if self.zennit else x * self.scale + self.shift


class HardSE(torch.nn.Module):
    """MobileNetV3's squeeze-excitation: global pool, 1x1 conv, ReLU, 1x1 conv, Hardsigmoid gate, product."""

    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc1 = torch.nn.Conv2d(channels, squeeze, 1)
        self.relu = torch.nn.ReLU()
        self.fc2 = torch.nn.Conv2d(squeeze, channels, 1)
        self.hardsigmoid = torch.nn.Hardsigmoid()
        self.zennit = False

    def forward(self, x):
        g = self.hardsigmoid(self.fc2(self.relu(self.fc1(self.avgpool(x)))))
        return GatedProduct.apply(x, g) if self.zennit else x * g


class MobileLike(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.normalize = Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.Hardswish(),
            torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.BatchNorm2d(8), torch.nn.Hardswish(),
            HardSE(8, 4),
            torch.nn.Conv2d(8, 12, 1), ScaleShift(12, 0.5, 0.25), torch.nn.Hardswish(),
        )
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.classifier = torch.nn.Linear(12, CLASSES)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(self.normalize(x))), 1))

    canonizers = staticmethod(lambda: [ExactNamedMergeBatchNorm(
        [(['features.0'], 'features.1'), (['features.3'], 'features.4'), (['features.7'], 'features.8')])])


class DilatedNet(torch.nn.Module):
    """Dilated convolutions (DeepLab-style): conv 3x3 dilation 2 (padding 2) + BN + ReLU, conv 3x3 with dilation
    (2, 1) (padding (2, 1)) + BN + ReLU, conv 3x3 stride 2 + BN + ReLU, global pool, Linear."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=2, dilation=2), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, padding=(2, 1), dilation=(2, 1)), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 12, 3, stride=2, padding=1), torch.nn.BatchNorm2d(12), torch.nn.ReLU(),
        )
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.classifier = torch.nn.Linear(12, CLASSES)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    canonizers = staticmethod(lambda: [ExactNamedMergeBatchNorm(
        [(['features.0'], 'features.1'), (['features.3'], 'features.4'), (['features.6'], 'features.7')])])


class Rescaling(torch.nn.Module):
    """Keras's Rescaling(scale=0.5, offset=-0.25) in front of a tf2onnx graph (Mul, Add by scalars; the seeded inputs
    are already around 0, so not 1 / 127.5); Pass for zennit."""

    def __init__(self):
        super().__init__()
        self.zennit = False

    def forward(self, x):
        f = lambda v: v * 0.5 - 0.25  # noqa: E731
        return PassThrough.apply(x, f) if self.zennit else f(x)


class TfLike(torch.nn.Module):
    """The function of the Keras CNN behind the tf2onnx graphs, in NCHW: Rescaling, conv 3x3 'same' + BN + ReLU6,
    conv 3x3 stride 2 'same' (TF pads bottom/right only) + BN + ReLU, then GlobalAveragePooling2D + Dense, or a
    Flatten in TF's (h, w, c) order + Dense."""

    def __init__(self, head):
        super().__init__()
        self.rescaling = Rescaling()
        self.conv2d = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.relu6 = torch.nn.ReLU6()
        self.conv2d_1 = torch.nn.Conv2d(8, 12, 3, stride=2)
        self.bn_1 = torch.nn.BatchNorm2d(12)
        self.relu = torch.nn.ReLU()
        self.head = head
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)  # a pooling layer for zennit (Norm), as the importer's
        self.dense = torch.nn.Linear(12 if head == 'gap' else 12 * (SIZE // 2) ** 2, CLASSES)

    def features(self, x):
        x = self.relu6(self.bn(self.conv2d(self.rescaling(x))))
        x = torch.nn.functional.pad(x, (0, 1, 0, 1))  # TF 'same' of 16 px, kernel 3, stride 2: 0 before, 1 after
        return self.relu(self.bn_1(self.conv2d_1(x)))

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x).flatten(1) if self.head == 'gap' else x.permute(0, 2, 3, 1).flatten(1)
        return self.dense(x)

    canonizers = staticmethod(lambda: [ExactNamedMergeBatchNorm([(['conv2d'], 'bn'), (['conv2d_1'], 'bn_1')])])


def folded(conv, bn):
    """The conv with its batch norm folded in (tf2onnx's Conv + BatchNormalization fusion), as numpy."""
    s = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    w = (conv.weight.detach() * s.view(-1, 1, 1, 1)).numpy().astype(np.float32)
    b = ((conv.bias.detach() - bn.running_mean) * s + bn.bias.detach()).numpy().astype(np.float32)
    return w, b


def tf2onnx_graph(model, name):
    """The ONNX graph tf2onnx writes for the Keras version of `model` (opset 13), NHWC input [unk, 16, 16, 3]."""
    w1, b1 = folded(model.conv2d, model.bn)
    w2, b2 = folded(model.conv2d_1, model.bn_1)
    dense = model.dense.weight.detach().numpy().T.astype(np.float32)  # Keras kernel [in, out]
    init = [
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), 'model/rescaling/Cast/x:0'),
        numpy_helper.from_array(np.array(-0.25, dtype=np.float32), 'model/rescaling/Cast_1/x:0'),
        numpy_helper.from_array(w1, 'model/conv2d/Conv2D_weights_fused_bn'),
        numpy_helper.from_array(b1, 'model/conv2d/Conv2D_bias_fused_bn'),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), 'model/re_lu/Relu6__9_min'),
        numpy_helper.from_array(np.array(6.0, dtype=np.float32), 'model/re_lu/Relu6__9_max'),
        numpy_helper.from_array(w2, 'model/conv2d_1/Conv2D_weights_fused_bn'),
        numpy_helper.from_array(b2, 'model/conv2d_1/Conv2D_bias_fused_bn'),
        numpy_helper.from_array(dense, 'model/dense/MatMul/ReadVariableOp:0'),
        numpy_helper.from_array(model.dense.bias.detach().numpy().astype(np.float32), 'model/dense/BiasAdd/ReadVariableOp:0'),
    ]
    n = helper.make_node
    nodes = [
        n('Mul', ['input_1', 'model/rescaling/Cast/x:0'], ['model/rescaling/mul:0'], name='model/rescaling/mul'),
        n('Add', ['model/rescaling/mul:0', 'model/rescaling/Cast_1/x:0'], ['model/rescaling/add:0'], name='model/rescaling/add'),
        n('Transpose', ['model/rescaling/add:0'], ['model/conv2d/BiasAdd__6:0'], name='model/conv2d/BiasAdd__6', perm=[0, 3, 1, 2]),
        n('Conv', ['model/conv2d/BiasAdd__6:0', 'model/conv2d/Conv2D_weights_fused_bn', 'model/conv2d/Conv2D_bias_fused_bn'],
          ['model/batch_normalization/FusedBatchNormV3:0'], name='model/conv2d/BiasAdd',
          dilations=[1, 1], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], group=1),
        n('Clip', ['model/batch_normalization/FusedBatchNormV3:0', 'model/re_lu/Relu6__9_min', 'model/re_lu/Relu6__9_max'],
          ['model/re_lu/Relu6:0'], name='model/re_lu/Relu6'),
        n('Conv', ['model/re_lu/Relu6:0', 'model/conv2d_1/Conv2D_weights_fused_bn', 'model/conv2d_1/Conv2D_bias_fused_bn'],
          ['model/batch_normalization_1/FusedBatchNormV3:0'], name='model/conv2d_1/BiasAdd',
          dilations=[1, 1], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1], group=1),
        n('Relu', ['model/batch_normalization_1/FusedBatchNormV3:0'], ['model/re_lu_1/Relu:0'], name='model/re_lu_1/Relu'),
    ]
    if model.head == 'gap':
        nodes += [
            n('GlobalAveragePool', ['model/re_lu_1/Relu:0'], ['model/global_average_pooling2d/Mean:0'],
              name='model/global_average_pooling2d/Mean'),
            n('Squeeze', ['model/global_average_pooling2d/Mean:0', 'model/global_average_pooling2d/Mean_axes'],
              ['model/global_average_pooling2d/Mean_Squeeze__12:0'], name='model/global_average_pooling2d/Mean_Squeeze__12'),
        ]
        init.append(numpy_helper.from_array(np.array([2, 3], dtype=np.int64), 'model/global_average_pooling2d/Mean_axes'))
        features = 'model/global_average_pooling2d/Mean_Squeeze__12:0'
    else:
        flat = 12 * (SIZE // 2) ** 2
        nodes += [
            n('Transpose', ['model/re_lu_1/Relu:0'], ['model/re_lu_1/Relu__14:0'], name='model/re_lu_1/Relu__14', perm=[0, 2, 3, 1]),
            n('Reshape', ['model/re_lu_1/Relu__14:0', 'model/flatten/Const:0'], ['model/flatten/Reshape:0'], name='model/flatten/Reshape'),
        ]
        init.append(numpy_helper.from_array(np.array([-1, flat], dtype=np.int64), 'model/flatten/Const:0'))
        features = 'model/flatten/Reshape:0'
    nodes += [
        n('MatMul', [features, 'model/dense/MatMul/ReadVariableOp:0'], ['model/dense/MatMul:0'], name='model/dense/MatMul'),
        n('Add', ['model/dense/MatMul:0', 'model/dense/BiasAdd/ReadVariableOp:0'], ['dense'], name='model/dense/BiasAdd'),
    ]
    graph = helper.make_graph(
        nodes, 'tf2onnx', [helper.make_tensor_value_info('input_1', TensorProto.FLOAT, ['unk__16', SIZE, SIZE, 3])],
        [helper.make_tensor_value_info('dense', TensorProto.FLOAT, ['unk__17', CLASSES])], init)
    m = helper.make_model(graph, producer_name='tf2onnx', producer_version='1.16.1 15c810', opset_imports=[helper.make_opsetid('', 13)])
    onnx.checker.check_model(m)
    onnx.save(m, f'{OUT}/models/{name}.onnx')


class NhwcGate(torch.nn.Module):
    """Keras's Multiply([x, gate]) of a squeeze-excitation block: PassToFeature for zennit (as the SE products of
    make_onnx_golden.py)."""

    def __init__(self):
        super().__init__()
        self.zennit = False

    def forward(self, x, g):
        return GatedProduct.apply(x, g) if self.zennit else x * g


class TfSE(torch.nn.Module):
    """The Keras CNN behind `tf2onnx_se`, in NCHW: conv 3x3 'same' + BN + ReLU, a squeeze-excitation block written
    channels-last (GlobalAveragePooling2D, Dense 8->4 ReLU, Dense 4->8 sigmoid, Reshape((1, 1, 8)), Multiply), a
    standalone BatchNormalization of the product (no conv before it: zennit's Pass, as the importer's), global
    average pool, Dense."""

    def __init__(self):
        super().__init__()
        self.conv2d = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.re_lu = torch.nn.ReLU()
        self.global_average_pooling2d = torch.nn.AdaptiveAvgPool2d(1)
        self.dense = torch.nn.Linear(8, 4)
        self.re_lu_1 = torch.nn.ReLU()
        self.dense_1 = torch.nn.Linear(4, 8)
        self.sigmoid = torch.nn.Sigmoid()
        self.multiply = NhwcGate()
        self.batch_normalization = torch.nn.BatchNorm2d(8)
        self.global_average_pooling2d_1 = torch.nn.AdaptiveAvgPool2d(1)
        self.dense_2 = torch.nn.Linear(8, CLASSES)

    def forward(self, x):
        x = self.re_lu(self.bn(self.conv2d(x)))
        g = self.global_average_pooling2d(x).flatten(1)
        g = self.sigmoid(self.dense_1(self.re_lu_1(self.dense(g))))
        x = self.batch_normalization(self.multiply(x, g.view(-1, 8, 1, 1)))
        return self.dense_2(self.global_average_pooling2d_1(x).flatten(1))

    canonizers = staticmethod(lambda: [ExactNamedMergeBatchNorm([(['conv2d'], 'bn')])])


class TfDilatedDepthwise(torch.nn.Module):
    """The Keras CNN behind `tf2onnx_dw`, in NCHW: conv 3x3 'same' + ReLU, DepthwiseConv2D 3x3 with dilation_rate 2
    'same' (padding 2) + BN + ReLU, global average pool, Dense."""

    def __init__(self):
        super().__init__()
        self.conv2d = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.re_lu = torch.nn.ReLU()
        self.depthwise_conv2d = torch.nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
        self.bn = torch.nn.BatchNorm2d(8)
        self.re_lu_1 = torch.nn.ReLU()
        self.global_average_pooling2d = torch.nn.AdaptiveAvgPool2d(1)
        self.dense = torch.nn.Linear(8, CLASSES)

    def forward(self, x):
        x = self.re_lu_1(self.bn(self.depthwise_conv2d(self.re_lu(self.conv2d(x)))))
        return self.dense(self.global_average_pooling2d(x).flatten(1))

    canonizers = staticmethod(lambda: [ExactNamedMergeBatchNorm([(['depthwise_conv2d'], 'bn')])])


def numpy_of(t):
    return t.detach().numpy().astype(np.float32)


def save_tf2onnx(nodes, init, name):
    graph = helper.make_graph(
        nodes, 'tf2onnx', [helper.make_tensor_value_info('input_1', TensorProto.FLOAT, ['unk__16', SIZE, SIZE, 3])],
        [helper.make_tensor_value_info('dense', TensorProto.FLOAT, ['unk__17', CLASSES])], init)
    m = helper.make_model(graph, producer_name='tf2onnx', producer_version='1.16.1 15c810', opset_imports=[helper.make_opsetid('', 13)])
    onnx.checker.check_model(m)
    onnx.save(m, f'{OUT}/models/{name}.onnx')


def tf2onnx_se_graph(model, name):
    """`tf2onnx_se`: the SE gate computed as a [N, C] vector (GlobalAveragePool + Squeeze, two Dense as MatMul +
    Add, Sigmoid) and reshaped to Keras's channels-last [N, 1, 1, C] (Reshape((1, 1, 8))); the feature map goes
    back to channels-last (Transpose [0, 2, 3, 1]) for the Mul, as tf2onnx leaves a Multiply whose other input is
    not a constant; the standalone BatchNormalization of the product reads it through Transpose [0, 3, 1, 2]
    (tf2onnx's conv_convert_inputs for an NHWC FusedBatchNormV3)."""
    w1, b1 = folded(model.conv2d, model.bn)
    bn = model.batch_normalization
    init = [
        numpy_helper.from_array(w1, 'model/conv2d/Conv2D_weights_fused_bn'),
        numpy_helper.from_array(b1, 'model/conv2d/Conv2D_bias_fused_bn'),
        numpy_helper.from_array(np.array([2, 3], dtype=np.int64), 'model/global_average_pooling2d/Mean_axes'),
        numpy_helper.from_array(numpy_of(model.dense.weight).T.copy(), 'model/dense/MatMul/ReadVariableOp:0'),
        numpy_helper.from_array(numpy_of(model.dense.bias), 'model/dense/BiasAdd/ReadVariableOp:0'),
        numpy_helper.from_array(numpy_of(model.dense_1.weight).T.copy(), 'model/dense_1/MatMul/ReadVariableOp:0'),
        numpy_helper.from_array(numpy_of(model.dense_1.bias), 'model/dense_1/BiasAdd/ReadVariableOp:0'),
        numpy_helper.from_array(np.array([-1, 1, 1, 8], dtype=np.int64), 'model/reshape/Reshape/shape_Concat__21:0'),
        numpy_helper.from_array(numpy_of(bn.weight), 'model/batch_normalization/ReadVariableOp:0'),
        numpy_helper.from_array(numpy_of(bn.bias), 'model/batch_normalization/ReadVariableOp_1:0'),
        numpy_helper.from_array(numpy_of(bn.running_mean), 'model/batch_normalization/FusedBatchNormV3/ReadVariableOp:0'),
        numpy_helper.from_array(numpy_of(bn.running_var), 'model/batch_normalization/FusedBatchNormV3/ReadVariableOp_1:0'),
        numpy_helper.from_array(np.array([2, 3], dtype=np.int64), 'model/global_average_pooling2d_1/Mean_axes'),
        numpy_helper.from_array(numpy_of(model.dense_2.weight).T.copy(), 'model/dense_2/MatMul/ReadVariableOp:0'),
        numpy_helper.from_array(numpy_of(model.dense_2.bias), 'model/dense_2/BiasAdd/ReadVariableOp:0'),
    ]
    n = helper.make_node

    def dense(layer, x):
        return [
            n('MatMul', [x, f'model/{layer}/MatMul/ReadVariableOp:0'], [f'model/{layer}/MatMul:0'], name=f'model/{layer}/MatMul'),
            n('Add', [f'model/{layer}/MatMul:0', f'model/{layer}/BiasAdd/ReadVariableOp:0'],
              ['dense' if layer == 'dense_2' else f'model/{layer}/BiasAdd:0'], name=f'model/{layer}/BiasAdd'),
        ]

    nodes = [
        n('Transpose', ['input_1'], ['model/conv2d/BiasAdd__6:0'], name='model/conv2d/BiasAdd__6', perm=[0, 3, 1, 2]),
        n('Conv', ['model/conv2d/BiasAdd__6:0', 'model/conv2d/Conv2D_weights_fused_bn', 'model/conv2d/Conv2D_bias_fused_bn'],
          ['model/bn/FusedBatchNormV3:0'], name='model/conv2d/BiasAdd',
          dilations=[1, 1], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], group=1),
        n('Relu', ['model/bn/FusedBatchNormV3:0'], ['model/re_lu/Relu:0'], name='model/re_lu/Relu'),
        n('GlobalAveragePool', ['model/re_lu/Relu:0'], ['model/global_average_pooling2d/Mean:0'],
          name='model/global_average_pooling2d/Mean'),
        n('Squeeze', ['model/global_average_pooling2d/Mean:0', 'model/global_average_pooling2d/Mean_axes'],
          ['model/global_average_pooling2d/Mean_Squeeze__12:0'], name='model/global_average_pooling2d/Mean_Squeeze__12'),
        *dense('dense', 'model/global_average_pooling2d/Mean_Squeeze__12:0'),
        n('Relu', ['model/dense/BiasAdd:0'], ['model/dense/Relu:0'], name='model/dense/Relu'),
        *dense('dense_1', 'model/dense/Relu:0'),
        n('Sigmoid', ['model/dense_1/BiasAdd:0'], ['model/dense_1/Sigmoid:0'], name='model/dense_1/Sigmoid'),
        n('Reshape', ['model/dense_1/Sigmoid:0', 'model/reshape/Reshape/shape_Concat__21:0'], ['model/reshape/Reshape:0'],
          name='model/reshape/Reshape'),
        n('Transpose', ['model/re_lu/Relu:0'], ['model/re_lu/Relu__15:0'], name='model/re_lu/Relu__15', perm=[0, 2, 3, 1]),
        n('Mul', ['model/re_lu/Relu__15:0', 'model/reshape/Reshape:0'], ['model/multiply/mul:0'], name='model/multiply/mul'),
        n('Transpose', ['model/multiply/mul:0'], ['model/batch_normalization/FusedBatchNormV3__18:0'],
          name='model/batch_normalization/FusedBatchNormV3__18', perm=[0, 3, 1, 2]),
        n('BatchNormalization', ['model/batch_normalization/FusedBatchNormV3__18:0', 'model/batch_normalization/ReadVariableOp:0',
                                 'model/batch_normalization/ReadVariableOp_1:0',
                                 'model/batch_normalization/FusedBatchNormV3/ReadVariableOp:0',
                                 'model/batch_normalization/FusedBatchNormV3/ReadVariableOp_1:0'],
          ['model/batch_normalization/FusedBatchNormV3:0'], name='model/batch_normalization/FusedBatchNormV3',
          epsilon=bn.eps),
        n('GlobalAveragePool', ['model/batch_normalization/FusedBatchNormV3:0'], ['model/global_average_pooling2d_1/Mean:0'],
          name='model/global_average_pooling2d_1/Mean'),
        n('Squeeze', ['model/global_average_pooling2d_1/Mean:0', 'model/global_average_pooling2d_1/Mean_axes'],
          ['model/global_average_pooling2d_1/Mean_Squeeze__24:0'], name='model/global_average_pooling2d_1/Mean_Squeeze__24'),
        *dense('dense_2', 'model/global_average_pooling2d_1/Mean_Squeeze__24:0'),
    ]
    save_tf2onnx(nodes, init, name)


def tf2onnx_dw_graph(model, name):
    """`tf2onnx_dw`: a Keras DepthwiseConv2D(3, dilation_rate=2, padding='same') as tf2onnx writes it: Conv with
    group = channels, dilations [2, 2], TF's 'same' pads written out ([2, 2, 2, 2]), the batch norm folded in."""
    w2, b2 = folded(model.depthwise_conv2d, model.bn)
    init = [
        numpy_helper.from_array(numpy_of(model.conv2d.weight), 'model/conv2d/Conv2D/ReadVariableOp:0'),
        numpy_helper.from_array(numpy_of(model.conv2d.bias), 'model/conv2d/BiasAdd/ReadVariableOp:0'),
        numpy_helper.from_array(w2, 'model/depthwise_conv2d/depthwise_weights_fused_bn'),
        numpy_helper.from_array(b2, 'model/depthwise_conv2d/depthwise_bias_fused_bn'),
        numpy_helper.from_array(np.array([2, 3], dtype=np.int64), 'model/global_average_pooling2d/Mean_axes'),
        numpy_helper.from_array(numpy_of(model.dense.weight).T.copy(), 'model/dense/MatMul/ReadVariableOp:0'),
        numpy_helper.from_array(numpy_of(model.dense.bias), 'model/dense/BiasAdd/ReadVariableOp:0'),
    ]
    n = helper.make_node
    nodes = [
        n('Transpose', ['input_1'], ['model/conv2d/BiasAdd__6:0'], name='model/conv2d/BiasAdd__6', perm=[0, 3, 1, 2]),
        n('Conv', ['model/conv2d/BiasAdd__6:0', 'model/conv2d/Conv2D/ReadVariableOp:0', 'model/conv2d/BiasAdd/ReadVariableOp:0'],
          ['model/conv2d/BiasAdd:0'], name='model/conv2d/BiasAdd',
          dilations=[1, 1], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], group=1),
        n('Relu', ['model/conv2d/BiasAdd:0'], ['model/re_lu/Relu:0'], name='model/re_lu/Relu'),
        n('Conv', ['model/re_lu/Relu:0', 'model/depthwise_conv2d/depthwise_weights_fused_bn',
                   'model/depthwise_conv2d/depthwise_bias_fused_bn'],
          ['model/bn/FusedBatchNormV3:0'], name='model/depthwise_conv2d/depthwise',
          dilations=[2, 2], kernel_shape=[3, 3], strides=[1, 1], pads=[2, 2, 2, 2], group=8),
        n('Relu', ['model/bn/FusedBatchNormV3:0'], ['model/re_lu_1/Relu:0'], name='model/re_lu_1/Relu'),
        n('GlobalAveragePool', ['model/re_lu_1/Relu:0'], ['model/global_average_pooling2d/Mean:0'],
          name='model/global_average_pooling2d/Mean'),
        n('Squeeze', ['model/global_average_pooling2d/Mean:0', 'model/global_average_pooling2d/Mean_axes'],
          ['model/global_average_pooling2d/Mean_Squeeze__12:0'], name='model/global_average_pooling2d/Mean_Squeeze__12'),
        n('MatMul', ['model/global_average_pooling2d/Mean_Squeeze__12:0', 'model/dense/MatMul/ReadVariableOp:0'],
          ['model/dense/MatMul:0'], name='model/dense/MatMul'),
        n('Add', ['model/dense/MatMul:0', 'model/dense/BiasAdd/ReadVariableOp:0'], ['dense'], name='model/dense/BiasAdd'),
    ]
    save_tf2onnx(nodes, init, name)


def rename(case, names):
    """Relevance keys from torch module names to the imported layers' names (tf2onnx: the Keras layer names)."""
    case['relevance'] = {names.get(k, k): v for k, v in case['relevance'].items()}
    case['relevanceSums'] = {names.get(k, k): v for k, v in case['relevanceSums'].items()}
    return case


def main():
    index = base.read_index()
    new_models, new_cases = [], []
    specs = [
        # name, model, seed, layers recorded (torch names), torch name -> layer name, how it is written
        ('mobile_like', MobileLike, 21, ['features.3', 'features.5', 'features.6', 'features.7'], {'features.6': 'features.6.mul'}, 14),
        ('dilated_net', DilatedNet, 24, ['features.0', 'features.3'], {}, 13),
        ('tf2onnx_gap', lambda: TfLike('gap'), 22, ['conv2d', 'conv2d_1'], {}, 'tf2onnx'),
        ('tf2onnx_flatten', lambda: TfLike('flatten'), 23, ['conv2d_1'], {}, 'tf2onnx'),
        # the SE gate channels-last and a standalone NHWC batch norm; a dilated depthwise conv (tf2onnx_graphs below)
        ('tf2onnx_se', TfSE, 25, ['conv2d', 'dense', 'multiply'], {}, tf2onnx_se_graph),
        ('tf2onnx_dw', TfDilatedDepthwise, 26, ['conv2d', 'depthwise_conv2d'], {}, tf2onnx_dw_graph),
    ]
    for name, cls, seed, record, names, how in specs:
        torch.manual_seed(seed)
        model = init_weights(cls(), seed)
        for m in model.modules():
            if isinstance(m, ScaleShift):
                m.set_constants()  # init_weights drew them as a batch norm's
        if how == 'tf2onnx' or callable(how):
            (tf2onnx_graph if how == 'tf2onnx' else how)(model, name)
            new_models.append(base.model_entry(name, 13, layout='NHWC', producer='tf2onnx-shaped (onnx.helper)'))
        else:
            base.export(model, f'{OUT}/models/{name}.onnx', how)
            new_models.append(base.model_entry(name, how))
            if name == 'mobile_like':
                base.export(model, f'{OUT}/models/mobile_like_opset13.onnx', 13)
        new_cases += base.write_lrp_cases(name, model, record, seed, lambda case: rename(case, names))
    ids = {c['id'] for c in new_cases}
    models = {m['name'] for m in new_models}
    index['models'] = [m for m in index['models'] if m['name'] not in models] + new_models
    index['cases'] = [c for c in index['cases'] if c['id'] not in ids] + new_cases
    base.write_index(index)


if __name__ == '__main__':
    main()

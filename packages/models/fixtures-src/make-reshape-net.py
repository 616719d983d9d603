"""The Reshape fixtures of the ONNX writer: graphs whose shape constants name a channel count that pruning changes.
Run from packages/models: /usr/bin/python3 fixtures-src/make-reshape-net.py (Debian python3-torch and python3-onnx;
seeded weights, one thread).

reshape-net.onnx, from torch.onnx.export of `ReshapeNet` (input [2, 3, 8, 8]): conv1 -> ReLU -> max pool ->
conv2 -> ReLU gives f [2, 8, 4, 4], read by three heads whose sum is the output:
  - fc_flat(torch.flatten(f, 1)): an ONNX Flatten, then a Gemm over 8 x 4 x 4 features in (c, h, w) order;
  - fc_view(f.reshape(-1, 128)): a Reshape to [-1, 128], its shape here a Constant node;
  - fc_gap2(ReLU(fc_gap1(global average pool of f, reshaped to [0, 8]))): a Reshape whose shape is an
    initializer; 0 copies the batch size (torch wrote the traced batch, 2; the script sets 0 so the file has both
    -1 and 0). fc_gap1's bias is stored as [1, 6] (valid for Gemm's C, which broadcasts), torch writes [6].
Pruning channels of conv2 changes 128 and 8; the writer must rewrite both constants. onnx.shape_inference adds
`value_info` (shapes of every intermediate value), which the writer must keep consistent with the pruned shapes.

reshape-net-external.onnx (+ .onnx.data): the same model with every initializer in an external data file.
reshape-net-inputs.onnx: the same model with every initializer listed as a graph input too.

shared-shape.onnx, made with onnx.helper: two convs of the input (4 channels each), each globally pooled and
reshaped to [-1, 4] by ONE shared shape initializer, then a Gemm each, added. Pruning one branch's conv alone
asks two different values of the same constant (refused); pruning both alike asks one (rewritten).

identity-shape.onnx: the same, but branch a's Reshape reads its own [-1, 4] through an Identity node.

reshape-targets.onnx, made with onnx.helper (opset 14, input [2, 3, 4, 4], the batch fixed at 2): conv (4 channels,
padding 1) -> ReLU gives f [2, 4, 4, 4], read by five Gemms whose sum is the output, each through another form
of target: reshape_a [0, -1], reshape_b [2, 64] (the batch the input fixes), reshape_c [0, 64], reshape_e [-1, 64]
with allowzero 1, and, after a global average pool, reshape_d [-1, 0]. Pruning a channel of conv asks [0, -1],
[2, 48], [0, 48], [-1, 48] and [-1, 0].
"""
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper


class ReshapeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc_flat = nn.Linear(8 * 4 * 4, 5)
        self.fc_view = nn.Linear(8 * 4 * 4, 5)
        self.fc_gap1 = nn.Linear(8, 6)
        self.fc_gap2 = nn.Linear(6, 5)

    def forward(self, x):
        f = F.relu(self.conv2(self.pool(F.relu(self.conv1(x)))))
        a = self.fc_flat(torch.flatten(f, 1))
        b = self.fc_view(f.reshape(-1, 8 * 4 * 4))
        g = self.fc_gap2(F.relu(self.fc_gap1(F.adaptive_avg_pool2d(f, 1).reshape(f.shape[0], 8))))
        return a + b + g


def reshape_net():
    torch.manual_seed(21)
    net = ReshapeNet().eval()
    x = torch.randn(2, 3, 8, 8)
    torch.onnx.export(net, x, '/tmp/reshape-net.onnx', opset_version=13, input_names=['input'],
                      output_names=['logits'], do_constant_folding=True)
    model = onnx.load('/tmp/reshape-net.onnx')
    g = model.graph
    reshapes = [n for n in g.node if n.op_type == 'Reshape']
    assert len(reshapes) == 2, [n.name for n in g.node]
    inits = {t.name: t for t in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    for n in reshapes:
        shape = n.input[1]
        if shape in inits:
            value = numpy_helper.to_array(inits[shape])
            g.initializer.remove(inits[shape])
        else:
            value = numpy_helper.to_array(producers[shape].attribute[0].t)
            g.node.remove(producers[shape])
        if list(value) == [-1, 128]:  # fc_view's: a Constant node
            const = helper.make_node('Constant', [], [shape], name=f'{n.name}_shape',
                                     value=numpy_helper.from_array(value.astype(np.int64), shape))
            g.node.insert(0, const)
        else:  # fc_gap's: an initializer, batch 0 (copied from the input)
            assert list(value) == [2, 8], value
            g.initializer.append(numpy_helper.from_array(np.array([0, 8], dtype=np.int64), shape))
    bias = next(t for t in g.initializer if t.name == 'fc_gap1.bias')
    assert list(bias.dims) == [6]
    bias.dims[:] = [1, 6]
    model = onnx.shape_inference.infer_shapes(model)
    assert len(model.graph.value_info) > 5
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, 'test/fixtures/onnx/reshape-net.onnx')
    # the same graph with every initializer listed as a graph input too (overridable, as
    # keep_initializers_as_inputs=True writes it): the writer must update those inputs' shapes
    inputs = onnx.ModelProto()
    inputs.CopyFrom(model)
    inputs.graph.input.extend(
        helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inputs.graph.initializer)
    onnx.checker.check_model(inputs, full_check=True)
    onnx.save(inputs, 'test/fixtures/onnx/reshape-net-inputs.onnx')
    # the same graph with every initializer (the int64 shape [0, 8] too) in one external data file (onnx appends
    # to an existing one: remove it first)
    if os.path.exists('test/fixtures/onnx/reshape-net-external.onnx.data'):
        os.remove('test/fixtures/onnx/reshape-net-external.onnx.data')
    onnx.save_model(model, 'test/fixtures/onnx/reshape-net-external.onnx', save_as_external_data=True,
                    all_tensors_to_one_file=True, location='reshape-net-external.onnx.data', size_threshold=0)
    print('reshape-net:', [(n.name, n.op_type, list(n.input)) for n in model.graph.node if n.op_type in ('Reshape', 'Flatten', 'Constant')])


def shared_shape(identity=False):
    rng = np.random.default_rng(21)
    f32 = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    tensors = {'wa': f32(4, 3, 3, 3), 'ba': f32(4), 'wb': f32(4, 3, 3, 3), 'bb': f32(4),
               'fa': f32(3, 4), 'fa_b': f32(3), 'fb': f32(3, 4), 'fb_b': f32(3),
               'shape': np.array([-1, 4], dtype=np.int64)}
    nodes = []
    if identity:  # branch a reads its own target through an Identity, branch b the initializer 'shape'
        tensors['shape_a'] = np.array([-1, 4], dtype=np.int64)
        nodes.append(helper.make_node('Identity', ['shape_a'], ['shape_a_id'], name='shape_a_identity'))
    for k in 'ab':
        nodes += [
            helper.make_node('Conv', ['x', f'w{k}', f'b{k}'], [f'c{k}'], name=f'conv_{k}', pads=[1, 1, 1, 1]),
            helper.make_node('Relu', [f'c{k}'], [f'r{k}'], name=f'relu_{k}'),
            helper.make_node('GlobalAveragePool', [f'r{k}'], [f'p{k}'], name=f'pool_{k}'),
            helper.make_node('Reshape', [f'p{k}', 'shape_a_id' if identity and k == 'a' else 'shape'], [f'v{k}'],
                             name=f'reshape_{k}'),
            helper.make_node('Gemm', [f'v{k}', f'f{k}', f'f{k}_b'], [f'y{k}'], name=f'fc_{k}', transB=1),
        ]
    nodes.append(helper.make_node('Add', ['ya', 'yb'], ['out'], name='add'))
    graph = helper.make_graph(
        nodes, 'shared_shape', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 3, 6, 6])],
        [helper.make_tensor_value_info('out', TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(v, n) for n, v in tensors.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], producer_name='crp-fixture')
    model.ir_version = 7
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, f'test/fixtures/onnx/{"identity-shape" if identity else "shared-shape"}.onnx')


def reshape_targets():
    rng = np.random.default_rng(29)
    f32 = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    tensors = {'w': f32(4, 3, 3, 3), 'b': f32(4)}
    nodes = [helper.make_node('Conv', ['x', 'w', 'b'], ['c'], name='conv', pads=[1, 1, 1, 1]),
             helper.make_node('Relu', ['c'], ['f'], name='relu'),
             helper.make_node('GlobalAveragePool', ['f'], ['p'], name='pool')]
    branches = {'a': ('f', [0, -1], 64, {}), 'b': ('f', [2, 64], 64, {}), 'c': ('f', [0, 64], 64, {}),
                'd': ('p', [-1, 0], 4, {}), 'e': ('f', [-1, 64], 64, {'allowzero': 1})}
    for k, (src, target, width, attrs) in branches.items():
        tensors[f'shape_{k}'] = np.array(target, dtype=np.int64)
        tensors[f'g{k}'] = f32(3, width)
        tensors[f'g{k}_b'] = f32(3)
        nodes += [helper.make_node('Reshape', [src, f'shape_{k}'], [f'v{k}'], name=f'reshape_{k}', **attrs),
                  helper.make_node('Gemm', [f'v{k}', f'g{k}', f'g{k}_b'], [f'y{k}'], name=f'fc_{k}', transB=1)]
    nodes += [helper.make_node('Add', ['ya', 'yb'], ['s1'], name='add_1'),
              helper.make_node('Add', ['s1', 'yc'], ['s2'], name='add_2'),
              helper.make_node('Add', ['s2', 'yd'], ['s3'], name='add_3'),
              helper.make_node('Add', ['s3', 'ye'], ['out'], name='add_4')]
    graph = helper.make_graph(
        nodes, 'reshape_targets', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 3, 4, 4])],
        [helper.make_tensor_value_info('out', TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(v, n) for n, v in tensors.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 14)], producer_name='crp-fixture')
    model.ir_version = 7
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, 'test/fixtures/onnx/reshape-targets.onnx')


if __name__ == '__main__':
    torch.set_num_threads(1)
    reshape_net()
    shared_shape()
    shared_shape(identity=True)
    reshape_targets()

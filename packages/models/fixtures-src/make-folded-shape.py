"""folded-shape.onnx: a Reshape of a constant (the importer folds it) that shares its shape constant with a Reshape
of a tensor, for the ONNX writer. Run from packages/models: /usr/bin/python3 fixtures-src/make-folded-shape.py
(Debian python3-onnx and numpy; seeded weights). Written with onnx.helper in the form torch.onnx.export gives
`v * self.scale.view(-1, 4)` without constant folding (a Reshape of the parameter), its shape constant shared
with another Reshape as a graph optimiser that merges equal constants leaves it:

  x [2, 3, 6, 6] -> conv_a -> relu -> global average pool -> reshape_a (shape [-1, 4]) -> fc_a --+-> add -> out
                 -> conv_b -> relu -> global average pool -> reshape_b (shape_b [-1, 4])         |
                    * reshape_scale(scale [4], shape [-1, 4]) -> fc_b -------------------------+

Pruning a channel of conv_a asks [-1, 3] of `shape` for reshape_a and [-1, 4] for reshape_scale: the writer must
refuse, naming both. folded-shape.json holds the input and the logits computed here with numpy (the graph's
definition, independently of any ONNX runtime).
"""
import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(21)
f32 = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
t = {'wa': f32(4, 3, 3, 3), 'ba': f32(4), 'wb': f32(4, 3, 3, 3), 'bb': f32(4),
     'fa': f32(3, 4), 'fa_b': f32(3), 'fb': f32(3, 4), 'fb_b': f32(3),
     'scale': (1 + f32(4)).astype(np.float32),
     'shape': np.array([-1, 4], dtype=np.int64), 'shape_b': np.array([-1, 4], dtype=np.int64)}
nodes = []
for k in 'ab':
    nodes += [
        helper.make_node('Conv', ['x', f'w{k}', f'b{k}'], [f'c{k}'], name=f'conv_{k}', pads=[1, 1, 1, 1]),
        helper.make_node('Relu', [f'c{k}'], [f'r{k}'], name=f'relu_{k}'),
        helper.make_node('GlobalAveragePool', [f'r{k}'], [f'p{k}'], name=f'pool_{k}'),
        helper.make_node('Reshape', [f'p{k}', 'shape' if k == 'a' else 'shape_b'], [f'v{k}'], name=f'reshape_{k}'),
    ]
nodes += [
    helper.make_node('Reshape', ['scale', 'shape'], ['scale_2d'], name='reshape_scale'),
    helper.make_node('Mul', ['vb', 'scale_2d'], ['sb'], name='mul_b'),
    helper.make_node('Gemm', ['va', 'fa', 'fa_b'], ['ya'], name='fc_a', transB=1),
    helper.make_node('Gemm', ['sb', 'fb', 'fb_b'], ['yb'], name='fc_b', transB=1),
    helper.make_node('Add', ['ya', 'yb'], ['out'], name='add'),
]
graph = helper.make_graph(
    nodes, 'folded_shape', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 3, 6, 6])],
    [helper.make_tensor_value_info('out', TensorProto.FLOAT, [2, 3])],
    [numpy_helper.from_array(v, n) for n, v in t.items()])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], producer_name='crp-fixture')
model.ir_version = 7
onnx.checker.check_model(model, full_check=True)
onnx.save(model, 'test/fixtures/onnx/folded-shape.onnx')


def branch(x, w, b):
    # 3x3 conv, padding 1, in float64; ReLU; global average pool
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    n, _, h, wd = x.shape
    y = np.zeros((n, w.shape[0], h, wd))
    for i in range(h):
        for j in range(wd):
            y[:, :, i, j] = np.einsum('ncuv,ocuv->no', xp[:, :, i:i + 3, j:j + 3], w) + b
    return np.maximum(y, 0).mean(axis=(2, 3))


x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
ya = branch(x, t['wa'], t['ba']) @ t['fa'].T.astype(np.float64) + t['fa_b']
yb = (branch(x, t['wb'], t['bb']) * t['scale']) @ t['fb'].T.astype(np.float64) + t['fb_b']
with open('test/fixtures/onnx/folded-shape.json', 'w') as f:
    json.dump({'input': {'shape': list(x.shape), 'data': x.ravel().tolist()},
               'logits': {'shape': [2, 3], 'data': (ya + yb).ravel().tolist()}}, f)
    f.write('\n')
print('folded-shape:', (ya + yb).ravel().tolist())

"""Graphs the ONNX writer must refuse to put a changed model into, each naming the node and what is valid. Run from
packages/models: /usr/bin/python3 fixtures-src/make-writer-refusals.py (python3-onnx; seeded weights). Each is valid
ONNX (onnx.checker with full_check) and imports; the refusal comes when the model's weights or counts change.

gemm-alpha-zero.onnx: conv -> ReLU -> flatten -> Gemm with alpha 0 (A*B switched off, beta 1): a non-zero kernel
  has no place in it.
weights-not-float32.onnx: a conv whose W is a Constant node (torch.onnx.export never writes one, a hand-made or
  optimised graph may): the writer replaces float32 initializers only.
shape-read-by-squeeze.onnx: two convs of the input (3 channels), each globally pooled; branch a's pooled map is
  reshaped by `dims` [2, 3] (the batch of 2 and the 3 channels), branch b's squeezed over the axes `dims`
  ([2, 3] again, opset 13's Squeeze input); Gemms, added. Pruning conv_a asks [2, 2] of `dims`, which the Squeeze
  reads as its axes.
tied-weights.onnx: two convs of the input (3 channels), each pooled, flattened and read by a Gemm; both Gemms
  read the one initializer `f` (tied weights), which the importer makes two Dense layers of: the writer must refuse
  when their weights differ.
shape-reshaped.onnx: reshape_a's target `shape` [-1, 3] is also the data of reshape_shape (a Reshape of a
  constant, folded by the importer, to [-1]), whose output is reshape_b's target: rewriting `shape` for a pruned
  conv_a would change reshape_b's target too, which the written file would get wrong.
batch-mixing-reshape.onnx (an import refusal): conv (3 channels) -> global average pool [2, 3, 1, 1] -> Reshape to
  [-1, 2], which ONNX reads as [3, 2] (elements of two samples in one row) -> Gemm.
computed-shape.onnx: branch a's Reshape reads its target [-1, 3] from a Reshape of the constant `target_2d`
  ([[-1, 3]] reshaped to [-1]), which the importer folds: a computed target the writer cannot rewrite.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(23)
f32 = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731


def save(nodes, name, inputs, outputs, tensors):
    graph = helper.make_graph(nodes, name.replace('-', '_'), inputs, outputs,
                              [numpy_helper.from_array(v, n) for n, v in tensors.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], producer_name='crp-fixture')
    model.ir_version = 7
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, f'test/fixtures/onnx/{name}.onnx')


def image(n, c, h, w):
    return [helper.make_tensor_value_info('x', TensorProto.FLOAT, [n, c, h, w])]


def out(n, k):
    return [helper.make_tensor_value_info('out', TensorProto.FLOAT, [n, k])]


save([helper.make_node('Conv', ['x', 'w', 'b'], ['y'], name='conv', pads=[1, 1, 1, 1]),
      helper.make_node('Relu', ['y'], ['r'], name='relu'),
      helper.make_node('Flatten', ['r'], ['f'], name='flatten', axis=1),
      helper.make_node('Gemm', ['f', 'g', 'c'], ['out'], name='fc', alpha=0.0, beta=1.0, transB=1)],
     'gemm-alpha-zero', image(1, 3, 4, 4), out(1, 5),
     {'w': f32(2, 3, 3, 3), 'b': f32(2), 'g': np.zeros((5, 32), np.float32), 'c': f32(5)})

save([helper.make_node('Constant', [], ['w_const'], name='conv_weight',
                       value=numpy_helper.from_array(f32(2, 3, 3, 3), 'w_const')),
      helper.make_node('Conv', ['x', 'w_const', 'b'], ['y'], name='conv', pads=[1, 1, 1, 1]),
      helper.make_node('Relu', ['y'], ['r'], name='relu'),
      helper.make_node('GlobalAveragePool', ['r'], ['p'], name='pool'),
      helper.make_node('Flatten', ['p'], ['f'], name='flatten', axis=1),
      helper.make_node('Gemm', ['f', 'g', 'c'], ['out'], name='fc', transB=1)],
     'weights-not-float32', image(1, 3, 4, 4), out(1, 5), {'b': f32(2), 'g': f32(5, 2), 'c': f32(5)})

for name in ['shape-read-by-squeeze', 'computed-shape', 'shape-reshaped']:
    tensors = {'wa': f32(3, 3, 3, 3), 'ba': f32(3), 'wb': f32(3, 3, 3, 3), 'bb': f32(3),
               'fa': f32(2, 3), 'fa_b': f32(2), 'fb': f32(2, 3), 'fb_b': f32(2)}
    nodes = []
    for k in 'ab':
        nodes += [
            helper.make_node('Conv', ['x', f'w{k}', f'b{k}'], [f'c{k}'], name=f'conv_{k}', pads=[1, 1, 1, 1]),
            helper.make_node('Relu', [f'c{k}'], [f'r{k}'], name=f'relu_{k}'),
            helper.make_node('GlobalAveragePool', [f'r{k}'], [f'p{k}'], name=f'pool_{k}'),
        ]
    if name == 'shape-read-by-squeeze':
        tensors['dims'] = np.array([2, 3], dtype=np.int64)
        nodes += [helper.make_node('Reshape', ['pa', 'dims'], ['va'], name='reshape_a'),
                  helper.make_node('Squeeze', ['pb', 'dims'], ['vb'], name='squeeze_b')]
    elif name == 'shape-reshaped':
        tensors['shape'] = np.array([-1, 3], dtype=np.int64)
        tensors['flat'] = np.array([-1], dtype=np.int64)
        nodes += [helper.make_node('Reshape', ['pa', 'shape'], ['va'], name='reshape_a'),
                  helper.make_node('Reshape', ['shape', 'flat'], ['shape_b'], name='reshape_shape'),
                  helper.make_node('Reshape', ['pb', 'shape_b'], ['vb'], name='reshape_b')]
    else:
        tensors['target_2d'] = np.array([[-1, 3]], dtype=np.int64)
        tensors['flat'] = np.array([-1], dtype=np.int64)
        tensors['target_b'] = np.array([-1, 3], dtype=np.int64)
        nodes += [helper.make_node('Reshape', ['target_2d', 'flat'], ['target'], name='reshape_target'),
                  helper.make_node('Reshape', ['pa', 'target'], ['va'], name='reshape_a'),
                  helper.make_node('Reshape', ['pb', 'target_b'], ['vb'], name='reshape_b')]
    nodes += [helper.make_node('Gemm', ['va', 'fa', 'fa_b'], ['ya'], name='fc_a', transB=1),
              helper.make_node('Gemm', ['vb', 'fb', 'fb_b'], ['yb'], name='fc_b', transB=1),
              helper.make_node('Add', ['ya', 'yb'], ['out'], name='add')]
    save(nodes, name, image(2, 3, 6, 6), out(2, 2), tensors)
tensors = {'wa': f32(3, 3, 3, 3), 'ba': f32(3), 'wb': f32(3, 3, 3, 3), 'bb': f32(3), 'f': f32(2, 3), 'f_b': f32(2)}
nodes = []
for k in 'ab':
    nodes += [
        helper.make_node('Conv', ['x', f'w{k}', f'b{k}'], [f'c{k}'], name=f'conv_{k}', pads=[1, 1, 1, 1]),
        helper.make_node('Relu', [f'c{k}'], [f'r{k}'], name=f'relu_{k}'),
        helper.make_node('GlobalAveragePool', [f'r{k}'], [f'p{k}'], name=f'pool_{k}'),
        helper.make_node('Flatten', [f'p{k}'], [f'v{k}'], name=f'flatten_{k}', axis=1),
        helper.make_node('Gemm', [f'v{k}', 'f', 'f_b'], [f'y{k}'], name=f'fc_{k}', transB=1),
    ]
nodes.append(helper.make_node('Add', ['ya', 'yb'], ['out'], name='add'))
save(nodes, 'tied-weights', image(2, 3, 6, 6), out(2, 2), tensors)
save([helper.make_node('Conv', ['x', 'w', 'b'], ['y'], name='conv', pads=[1, 1, 1, 1]),
      helper.make_node('GlobalAveragePool', ['y'], ['p'], name='pool'),
      helper.make_node('Reshape', ['p', 'shape'], ['v'], name='reshape'),
      helper.make_node('Gemm', ['v', 'g', 'c'], ['out'], name='fc', transB=1)],
     'batch-mixing-reshape', image(2, 3, 4, 4), out(3, 4),
     {'w': f32(3, 3, 3, 3), 'b': f32(3), 'shape': np.array([-1, 2], dtype=np.int64), 'g': f32(4, 2), 'c': f32(4)})
print('written')

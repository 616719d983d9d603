"""A conv followed by x * a + b as two element-wise constants (the importer reads them as a batch norm), then ReLU,
global average pooling and a Gemm to 2 classes, for 32x32 RGB patches: pruning the conv changes the affine map,
which the .onnx holds as constants of Mul and Add, so neither `crp prune --export` nor the study can write it back as .onnx. Run from
packages/models: /usr/bin/python3 fixtures-src/make-conv-affine-onnx.py (python3-onnx; a fixed formula, no seed)."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

w = ((np.arange(4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3) * 7) % 11 - 5) / 10
b = np.array([0.1, -0.2, 0.05, 0.3], dtype=np.float32)
a = np.array([1.5, 0.5, 2.0, 1.0], dtype=np.float32).reshape(1, 4, 1, 1)
c = np.array([0.2, 0.1, -0.1, 0.0], dtype=np.float32).reshape(1, 4, 1, 1)
fw = np.array([[1.0, -1.0, 0.5, 0.25], [-0.5, 1.0, 0.75, -0.25]], dtype=np.float32)
fb = np.array([0.0, 0.1], dtype=np.float32)
graph = helper.make_graph(
    [
        helper.make_node('Conv', ['x', 'conv.weight', 'conv.bias'], ['y'], name='/conv/Conv', pads=[1, 1, 1, 1]),
        helper.make_node('Mul', ['y', 'scale'], ['m'], name='/Mul'),
        helper.make_node('Add', ['m', 'shift'], ['s'], name='/Add'),
        helper.make_node('Relu', ['s'], ['r'], name='/relu/Relu'),
        helper.make_node('GlobalAveragePool', ['r'], ['p'], name='/pool/GlobalAveragePool'),
        helper.make_node('Flatten', ['p'], ['f'], name='/Flatten', axis=1),
        helper.make_node('Gemm', ['f', 'fc.weight', 'fc.bias'], ['out'], name='/fc/Gemm', transB=1),
    ],
    'conv_affine',
    [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 32, 32])],
    [helper.make_tensor_value_info('out', TensorProto.FLOAT, [1, 2])],
    [
        numpy_helper.from_array(v, n)
        for v, n in [(w, 'conv.weight'), (b, 'conv.bias'), (a, 'scale'), (c, 'shift'), (fw, 'fc.weight'), (fb, 'fc.bias')]
    ],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], producer_name='crp-fixture')
model.ir_version = 7
onnx.checker.check_model(model, full_check=True)
onnx.save(model, 'test/fixtures/onnx/conv-affine.onnx')

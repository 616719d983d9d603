"""A Gemm whose C is switched off (beta = 0) and whose A*B is scaled (alpha = 2, transB = 0), after a conv and a
flatten: what the ONNX writer must put back without dividing by beta. Run from packages/models:
/usr/bin/python3 fixtures-src/make-gemm-beta-zero.py (python3-onnx; the values are a fixed formula, no seed)."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

w = (np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) % 7 - 3) / 10
b = np.array([0.1, -0.2], dtype=np.float32)
g = (np.arange(2 * 4 * 4 * 5, dtype=np.float32).reshape(32, 5) % 11 - 5) / 20
c = np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=np.float32)  # ignored: beta is 0
graph = helper.make_graph(
    [
        helper.make_node('Conv', ['x', 'w', 'b'], ['y'], name='conv', pads=[1, 1, 1, 1]),
        helper.make_node('Relu', ['y'], ['r'], name='relu'),
        helper.make_node('Flatten', ['r'], ['f'], name='flatten', axis=1),
        helper.make_node('Gemm', ['f', 'g', 'c'], ['out'], name='fc', alpha=2.0, beta=0.0, transB=0),
    ],
    'gemm_beta_zero',
    [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 4, 4])],
    [helper.make_tensor_value_info('out', TensorProto.FLOAT, [1, 5])],
    [numpy_helper.from_array(v, n) for v, n in [(w, 'w'), (b, 'b'), (g, 'g'), (c, 'c')]],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], producer_name='crp-fixture')
model.ir_version = 7
onnx.checker.check_model(model, full_check=True)
onnx.save(model, 'test/fixtures/onnx/gemm-beta-zero.onnx')

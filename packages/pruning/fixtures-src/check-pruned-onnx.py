#!/usr/bin/env python3
"""Checks once, with python3-onnx, that a pruned model the toolkit wrote as `.onnx` is a valid ONNX model, and
records the logits an independent reading of the file gives.

The test `test/onnx-export.test.ts` writes test-artifacts/pruned-slim-resnet-basic.onnx: the slim ResNet of
@crp/models (packages/models/test/fixtures/onnx/slim-resnet-basic.onnx, from torch.onnx.export) with channels of
the residual streams of layer1, layer3 and layer4 and of layer2.0.conv1 removed by exportPruned, written by
encodeOnnx. This script loads the file with `onnx.load`, runs `onnx.checker.check_model(full_check=True)` (which
includes shape inference: every Conv, Add and Gemm must fit the new channel counts), evaluates the graph node by
node with torch.nn.functional (Debian's onnx 1.12 has no onnx.reference.ReferenceEvaluator, added in 1.13, and
no onnxruntime is installed; the graph has only Conv, Relu, MaxPool, Add, GlobalAveragePool, Flatten and Gemm) on
the formula input of scripts/golden/make_resnet_golden.py ([2, 3, 32, 32], seed 33), and writes
test/fixtures/pruned-slim-resnet-onnx.json: the SHA-256 of the bytes checked, the initializers' shapes and the
logits. The test then checks that the toolkit writes exactly those bytes and reads them back to those logits.

    /usr/bin/python3 packages/pruning/fixtures-src/check-pruned-onnx.py \
        packages/pruning/test-artifacts/pruned-slim-resnet-basic.onnx packages/pruning/test/fixtures/pruned-slim-resnet-onnx.json

The same for test/onnx-export-shapes.test.ts's pruned reshape-net (models/fixtures-src/make-reshape-net.py: its
Reshape targets, value_info and a [1, units] Gemm bias rewritten by the writer; the full checker's shape inference
compares every value_info with the shapes it infers), on an input of [2, 3, 8, 8]:

    /usr/bin/python3 packages/pruning/fixtures-src/check-pruned-onnx.py \
        packages/pruning/test-artifacts/pruned-reshape-net.onnx packages/pruning/test/fixtures/pruned-reshape-net-onnx.json 2,3,8,8
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..', 'scripts', 'golden'))
from make_resnet_golden import formula_input, shortest  # noqa: E402


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def conv_padding(x, pads):
    """ONNX pads [top, left, bottom, right] as an explicit zero pad (F.pad takes left, right, top, bottom)."""
    return F.pad(x, (pads[1], pads[3], pads[0], pads[2]))


def run(model, x):
    values = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    values[model.graph.input[0].name] = x
    for node in model.graph.node:
        a = attrs(node)
        i = [values[n] if n else None for n in node.input]
        op = node.op_type
        if op == 'Conv':
            y = F.conv2d(conv_padding(i[0], a.get('pads', [0, 0, 0, 0])), i[1], i[2] if len(i) > 2 else None,
                         stride=a.get('strides', [1, 1]), dilation=a.get('dilations', [1, 1]), groups=a.get('group', 1))
        elif op == 'Relu':
            y = F.relu(i[0])
        elif op == 'MaxPool':
            pads = a.get('pads', [0, 0, 0, 0])
            y = F.max_pool2d(F.pad(i[0], (pads[1], pads[3], pads[0], pads[2]), value=-float('inf')),
                             a['kernel_shape'], a.get('strides', [1, 1]))
        elif op == 'Add':
            y = i[0] + i[1]
        elif op == 'GlobalAveragePool':
            y = i[0].mean(dim=(2, 3), keepdim=True)
        elif op == 'Constant':
            y = torch.from_numpy(numpy_helper.to_array(a['value']).copy())
        elif op == 'Reshape':
            # ONNX: 0 copies the input's dimension, -1 is inferred
            y = i[0].reshape([i[0].shape[k] if d == 0 else d for k, d in enumerate(i[1].tolist())])
        elif op == 'Flatten':
            y = torch.flatten(i[0], a.get('axis', 1))
        elif op == 'Gemm':
            w = i[1].t() if a.get('transB', 0) else i[1]
            y = a.get('alpha', 1.0) * (i[0] @ w) + a.get('beta', 1.0) * i[2]
        else:
            raise ValueError(f'{node.name}: {op} is not evaluated by this script')
        values[node.output[0]] = y
    return values[model.graph.output[0].name]


def main(path, out, shape=(2, 3, 32, 32)):
    torch.set_num_threads(1)
    with open(path, 'rb') as fh:
        data = fh.read()
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    x = formula_input(list(shape), 33)
    with torch.no_grad():
        logits = run(model, x)
    result = {
        'source': os.path.basename(path),
        'sha256': hashlib.sha256(data).hexdigest(),
        'checker': 'onnx.checker.check_model(full_check=True): passed',
        'onnx': onnx.__version__,
        'torch': torch.__version__,
        'initializers': {t.name: list(t.dims) for t in model.graph.initializer},
        'input': f'formula_input({list(shape)}, 33) of scripts/golden/make_resnet_golden.py (NCHW)',
        'logits': shortest(logits.numpy().astype(np.float32)),
    }
    with open(out, 'w') as fh:
        json.dump(result, fh, indent=1)
        fh.write('\n')


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], *([tuple(int(d) for d in sys.argv[3].split(','))] if len(sys.argv) > 3 else []))

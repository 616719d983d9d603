#!/usr/bin/env python3
"""The .onnx of the golden ResNets (vendor/reference/resnet): torchvision's resnet18, resnet50 and resnext50_32x4d (10 classes, eval
mode) exported by torch.onnx.export (opset 17, batch/height/width dynamic) with their initializers STRIPPED: each
keeps its name (the state-dict key), dims and type, but no data. resnet50's weights alone are ~94 MB; the
conformance runner fills them from the same seeded formula as the .pth cases (@crp/testing/torch-weights), so the
SAME golden case files run through the .onnx path.

    python3 scripts/golden/onnx/export_resnet_onnx.py vendor/reference/resnet/models

`training=TrainingMode.PRESERVE` keeps every BatchNormalization as its own node (inference mode, as the model is in
eval mode) with the state dict's names: the EVAL export folds them into the convs under generated names
(`onnx::Conv_497`) that no formula can fill. The toolkit's canonizer merges them exactly as for the .pth.
"""
import os
import sys

import onnx
import torch
import torchvision

torch.set_num_threads(1)
OUT = sys.argv[1] if len(sys.argv) > 1 else 'vendor/reference/resnet/models'
os.makedirs(OUT, exist_ok=True)
for name in ['resnet18', 'resnet50', 'resnext50_32x4d']:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(num_classes=10).eval()
    with torch.no_grad():  # distinct values everywhere: the exporter merges equal initializers (fresh BN ones/zeros)
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape) + 0.5)
    path = f'{OUT}/{name}.onnx'
    torch.onnx.export(
        model, torch.zeros(1, 3, 64, 64), path, opset_version=17, input_names=['input'], output_names=['logits'],
        training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
        dynamic_axes={'input': {0: 'batch', 2: 'height', 3: 'width'}, 'logits': {0: 'batch'}},
    )
    m = onnx.load(path)
    for t in m.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT:
            t.ClearField('raw_data')
            del t.float_data[:]
    onnx.save(m, path)
    kinds = sorted({n.op_type for n in m.graph.node})
    print(name, os.path.getsize(path), 'bytes;', len(m.graph.initializer), 'initializers;', kinds)

#!/usr/bin/env python3
"""The .onnx of the golden ViTs: torchvision's VisionTransformer exported by torch.onnx.export (Debian torch 1.13,
do_constant_folding=False, batch dynamic), so the `vit` golden cases also run through the ONNX importer.

    /usr/bin/python3 scripts/golden/onnx/export_vit_onnx.py vendor/reference

- vit/tiny_vit.onnx: the small ViT of scripts/golden/lxt_vit.py (make_weights(20240622), the weights of
  vit/tiny_vit.json) at opset 17 (LayerNormalization), weights kept (about 30 KB).
- vit/tiny_vit.opset14.onnx: the same at opset 14, where torch writes LayerNorm as ReduceMean/Sub/Pow/Add/Sqrt/Div/
  Mul/Add.
- vit/tiny_vit.folded.onnx: the same exported with torch.onnx.export's defaults (constant folding, batch fixed at
  1, generated names such as `onnx::MatMul_222` for the folded weights), as users' files mostly are.
- vit-b-16/vit/vit_b_16_formula.onnx: vit_b_16 at 224 with the seeded formula's weights (lxt_vit.formula_weights),
  initializers STRIPPED as in export_resnet_onnx.py: each keeps its name (the state-dict key), dims and type, no
  data; the conformance runner fills them from the same formula (@crp/testing/vit-formula).

No constant folding: folding would transpose in_proj_weight into a generated name (`onnx::MatMul_222`) that no
formula can fill, and would merge equal initializers. The formula's and make_weights' values are distinct anyway.
"""
import importlib.util
import os
import sys

import onnx
import torch
import torchvision

torch.set_num_threads(1)
OUT = sys.argv[1] if len(sys.argv) > 1 else 'vendor/reference'
HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('lxt_vit', os.path.join(HERE, '..', 'lxt_vit.py'))
lxt_vit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lxt_vit)  # no LXT needed: make_weights and formula_weights are plain torch


def export(model, size, path, opset, strip, defaults=False):
    if defaults:  # what a user gets from torch.onnx.export(model, x, path): constant folding, batch fixed at 1
        torch.onnx.export(model, torch.zeros(1, 3, size, size), path, opset_version=opset)
    else:
        torch.onnx.export(
            model, torch.zeros(1, 3, size, size), path, opset_version=opset, input_names=['input'],
            output_names=['logits'], do_constant_folding=False,
            dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}},
        )
    m = onnx.load(path)
    if strip:
        for t in m.graph.initializer:
            if t.data_type == onnx.TensorProto.FLOAT:
                t.ClearField('raw_data')
                del t.float_data[:]
        onnx.save(m, path)
    kinds = sorted({n.op_type for n in m.graph.node})
    print(path, os.path.getsize(path), 'bytes;', len(m.graph.initializer), 'initializers;', kinds, flush=True)


c = lxt_vit.CONFIG
tiny = torchvision.models.VisionTransformer(
    image_size=c['imageSize'], patch_size=c['patchSize'], num_layers=c['numLayers'], num_heads=c['numHeads'],
    hidden_dim=c['hiddenDim'], mlp_dim=c['mlpDim'], num_classes=c['numClasses']).eval()
tiny.load_state_dict(lxt_vit.make_weights(20240622), strict=True)
os.makedirs(f'{OUT}/vit', exist_ok=True)
export(tiny, c['imageSize'], f'{OUT}/vit/tiny_vit.onnx', 17, False)
export(tiny, c['imageSize'], f'{OUT}/vit/tiny_vit.opset14.onnx', 14, False)
export(tiny, c['imageSize'], f'{OUT}/vit/tiny_vit.folded.onnx', 17, False, defaults=True)

if '--no-vit-b-16' not in sys.argv:
    big = dict(imageSize=224, patchSize=16, hiddenDim=768, numHeads=12, mlpDim=3072, numLayers=12, numClasses=1000)
    model = torchvision.models.vit_b_16().eval()
    model.load_state_dict(lxt_vit.formula_weights(big), strict=True)
    os.makedirs(f'{OUT}/vit-b-16/vit', exist_ok=True)
    export(model, 224, f'{OUT}/vit-b-16/vit/vit_b_16_formula.onnx', 17, True)

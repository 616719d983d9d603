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
- vit/tiny_vit.opset11.onnx, .opset12.onnx, .opset13.onnx: the same at the oldest opsets the importer reads: Squeeze/
  Unsqueeze axes and Split sizes as attributes (11, 12), Softmax with the pre-13 semantics (its input coerced to 2-D
  at `axis`: torch writes axis 2 of the rank-3 scores, which is the last axis, so the same softmax).
- vit/tiny_vit.gelu.onnx: the opset-17 export rewritten with python3-onnx (torch 1.13 cannot write opset 20): each
  exact GELU chain (Div by sqrt 2, Erf, Add 1, Mul by x, Mul by 0.5) replaced by one `Gelu` node (approximate
  'none'), the model's opset raised to 20 (no other operator of the graph changed between 17 and 20).
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
import onnx.numpy_helper
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
    check(m, path)
    kinds = sorted({n.op_type for n in m.graph.node})
    print(path, os.path.getsize(path), 'bytes;', len(m.graph.initializer), 'initializers;', kinds, flush=True)


def check(m, path):
    """onnx's checker; python3-onnx 1.12 (Debian) knows opsets up to 17 and says so for the Gelu file."""
    try:
        onnx.checker.check_model(m, full_check=True)
        print(path, 'onnx.checker: ok', flush=True)
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        print(path, f'onnx.checker (onnx {onnx.__version__}): {str(e).splitlines()[0]}', flush=True)


def fuse_gelu(src, dst):
    """Each Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x, .) -> Mul(0.5) chain of `src` as one Gelu node (opset 20).
    Nodes are tracked by their index in the graph (protobuf's Python wrappers have no stable identity)."""
    m = onnx.load(src)
    g = m.graph
    nodes = list(g.node)
    consts = {}
    for n in nodes:
        if n.op_type == 'Constant' and n.attribute[0].name == 'value':
            v = onnx.numpy_helper.to_array(n.attribute[0].t).reshape(-1)
            if v.size == 1:
                consts[n.output[0]] = float(v[0])
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    readers = {}
    for i, n in enumerate(nodes):
        for x in n.input:
            readers.setdefault(x, []).append(i)
    drop = set()
    replace = {}
    for e, n in enumerate(nodes):
        if n.op_type != 'Erf':
            continue
        d = producer[n.input[0]]
        a = readers[n.output[0]][0]
        mu = readers[nodes[a].output[0]][0]
        h = readers[nodes[mu].output[0]][0]
        div, add, mul, half = nodes[d], nodes[a], nodes[mu], nodes[h]
        x = div.input[0]
        assert div.op_type == 'Div' and abs(consts[div.input[1]] - 2 ** 0.5) < 1e-6
        assert add.op_type == 'Add' and consts[add.input[1]] == 1
        assert mul.op_type == 'Mul' and x in mul.input and half.op_type == 'Mul' and consts[half.input[1]] == 0.5
        drop.update((d, e, a, mu, h))
        for k in (div.input[1], add.input[1], half.input[1]):
            if all(r in drop for r in readers[k]):  # a Constant no other node reads (torch shares some)
                drop.add(producer[k])
        scope = n.name.rsplit('/', 1)[0]
        replace[h] = onnx.helper.make_node('Gelu', [x], [half.output[0]], name=f'{scope}/Gelu', approximate='none')
    kept = [replace.get(i, n) for i, n in enumerate(nodes) if i not in drop or i in replace]
    del g.node[:]
    g.node.extend(kept)
    for o in m.opset_import:
        if o.domain in ('', 'ai.onnx'):
            o.version = 20
    m.ir_version = 9  # the IR version that goes with opset 20
    onnx.save(m, dst)
    check(m, dst)
    print(dst, os.path.getsize(dst), 'bytes;', len(replace), 'GELUs fused;', sorted({n.op_type for n in g.node}),
          flush=True)


c = lxt_vit.CONFIG
tiny = torchvision.models.VisionTransformer(
    image_size=c['imageSize'], patch_size=c['patchSize'], num_layers=c['numLayers'], num_heads=c['numHeads'],
    hidden_dim=c['hiddenDim'], mlp_dim=c['mlpDim'], num_classes=c['numClasses']).eval()
tiny.load_state_dict(lxt_vit.make_weights(20240622), strict=True)
os.makedirs(f'{OUT}/vit', exist_ok=True)
export(tiny, c['imageSize'], f'{OUT}/vit/tiny_vit.onnx', 17, False)
export(tiny, c['imageSize'], f'{OUT}/vit/tiny_vit.opset14.onnx', 14, False)
export(tiny, c['imageSize'], f'{OUT}/vit/tiny_vit.folded.onnx', 17, False, defaults=True)
for opset in (11, 12, 13):
    export(tiny, c['imageSize'], f'{OUT}/vit/tiny_vit.opset{opset}.onnx', opset, False)
fuse_gelu(f'{OUT}/vit/tiny_vit.onnx', f'{OUT}/vit/tiny_vit.gelu.onnx')

if '--no-vit-b-16' not in sys.argv:
    big = dict(imageSize=224, patchSize=16, hiddenDim=768, numHeads=12, mlpDim=3072, numLayers=12, numClasses=1000)
    model = torchvision.models.vit_b_16().eval()
    model.load_state_dict(lxt_vit.formula_weights(big), strict=True)
    os.makedirs(f'{OUT}/vit-b-16/vit', exist_ok=True)
    export(model, 224, f'{OUT}/vit-b-16/vit/vit_b_16_formula.onnx', 17, True)

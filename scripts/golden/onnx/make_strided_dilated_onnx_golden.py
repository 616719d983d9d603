#!/usr/bin/env python3
"""Golden LRP values for ONNX convs with stride AND dilation, a grouped one, and asymmetric pads: `strided_dilated`.

A small CNN with seeded weights, exported with torch.onnx.export (opset 13) and explained with zennit 0.5.1 on the
same torch model, with the conventions and helpers of make_onnx_golden.py (same directory; the models and cases of
the other scripts are left as they are):

* `features.0`: Conv2d(3, 8, 3, stride=2, dilation=2, padding=2) + BN + ReLU (an ONNX Conv with strides [2, 2]
  and dilations [2, 2]; TF's 'same' cannot express its pads, and TF.js's Conv2D takes no dilation with a stride);
* `features.3` + `features.4`: ZeroPad2d((1, 2, 0, 1)) then Conv2d(8, 12, 3, stride=(2, 1), dilation=(1, 2),
  groups=4) + BN + ReLU. The exporter writes the padding as a Pad node; this script folds it into the Conv's
  `pads` [0, 1, 1, 2] (top, left, bottom, right), as onnx-optimizer's fuse_pad_into_conv does, so the file holds a
  grouped Conv with strides [2, 1], dilations [1, 2] and asymmetric pads. The function is unchanged (zero padding
  either way) and, the conv being no first layer, so are the relevances: every rule of the composites gives a
  zero input a zero share (zennit's ZBox, which does not, applies to the first layer only);
* `features.7`: Conv2d(12, 16, 3, stride=2, dilation=2, padding=(2, 1)) + BN + ReLU (per-axis pads);
* adaptive average pool, `fc` Linear(16, 5).

Input 16x16 -> 8x8 -> 4x7 -> 2x3. Relevance recorded at the three convs, for the three composites of
make_onnx_golden.py. Adds `models/strided_dilated.onnx` and the cases `onnx_lrp_*__strided_dilated` to
vendor/reference/onnx:

    ZENNIT_SRC=<zennit 0.5.1 tree>/src python3 scripts/golden/onnx/make_strided_dilated_onnx_golden.py vendor/reference/onnx

There is no `.pth` form of this case: the toolkit reads torchvision architectures (VGG, ResNet, ViT) from a state
dict, and this network is none. Deterministic: seeded, one thread.
"""
import os
import sys

import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_onnx_golden as base  # noqa: E402

NAME = 'strided_dilated'
SEED = 27
OPSET = 13


class StridedDilated(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2, dilation=2, padding=2, bias=False),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.ZeroPad2d((1, 2, 0, 1)),
            torch.nn.Conv2d(8, 12, 3, stride=(2, 1), dilation=(1, 2), groups=4, bias=False),
            torch.nn.BatchNorm2d(12),
            torch.nn.ReLU(),
            torch.nn.Conv2d(12, 16, 3, stride=2, dilation=2, padding=(2, 1)),
            torch.nn.BatchNorm2d(16),
            torch.nn.ReLU(),
        )
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(16, base.CLASSES)

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))

    @staticmethod
    def canonizers():
        return [base.ExactNamedMergeBatchNorm([(['features.0'], 'features.1'), (['features.4'], 'features.5'),
                                               (['features.7'], 'features.8')])]


def fuse_pad_into_conv(path, padding):
    """Folds the exporter's Pad node of `features.3` (ZeroPad2d with `padding` = (left, right, top, bottom)) into the
    Conv that reads it, as onnx-optimizer's fuse_pad_into_conv does. torch 1.13 computes the Pad's `pads` input with
    a chain of shape nodes (ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast) in the module's scope; they
    are dropped with it. Whether the fused graph computes the same function is checked by the logits (the TS tests
    compare the imported model's logits with torch's)."""
    model = onnx.load(path)
    g = model.graph
    scope = [n for n in g.node if n.name.startswith('/features/features.3/')]
    pad = next(n for n in scope if n.op_type == 'Pad')
    assert [a.s for a in pad.attribute if a.name == 'mode'] in ([], [b'constant'])
    conv = next(n for n in g.node if pad.output[0] in n.input)
    assert conv.op_type == 'Conv' and conv.input[0] == pad.output[0]
    conv.input[0] = pad.input[0]
    left, right, top, bottom = padding
    attr = next(a for a in conv.attribute if a.name == 'pads')
    old = list(attr.ints)
    attr.ints[:] = [old[0] + top, old[1] + left, old[2] + bottom, old[3] + right]
    for n in scope:
        g.node.remove(n)
    used = {i for n in g.node for i in n.input}
    assert all(o in used or o == g.output[0].name for n in g.node for o in n.output), 'a dangling node is left'
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return list(attr.ints)


def main():
    torch.manual_seed(SEED)
    model = base.init_weights(StridedDilated(), SEED)
    file = f'{base.OUT}/models/{NAME}.onnx'
    base.export(model, file, OPSET)
    pads = fuse_pad_into_conv(file, model.features[3].padding)
    assert pads == [0, 1, 1, 2], pads
    convs = [n for n in onnx.load(file).graph.node if n.op_type == 'Conv']
    attrs = [{a.name: list(a.ints) if a.ints else a.i for a in n.attribute} for n in convs]
    print([(n.name, a) for n, a in zip(convs, attrs)], file=sys.stderr)
    assert [a['strides'] for a in attrs] == [[2, 2], [2, 1], [2, 2]]
    assert [a['dilations'] for a in attrs] == [[2, 2], [1, 2], [2, 2]]
    base.replace_model(NAME, OPSET, model, ['features.0', 'features.4', 'features.7'], SEED)


if __name__ == '__main__':
    main()

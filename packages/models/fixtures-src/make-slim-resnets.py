#!/usr/bin/env python3
"""Writes the slimmed-ResNet fixtures of @crp/models (test/fixtures/pth/slim-resnet-*.pth and slim-resnets.json).

Documentation only: the package and its tests never run this script. Run it once with Debian's PyTorch
(python3-torch 1.13, python3-torchvision 0.14, python3-onnx):

    /usr/bin/python3 packages/models/fixtures-src/make-slim-resnets.py packages/models/test/fixtures/pth

A slimmed ResNet is torchvision's `ResNet` class (its forward, its BasicBlock / Bottleneck, its module names) whose
convolutions and batch norms have other widths than torchvision's 64-filter stem and 64-128-256-512 stages: what a
user gets from channel pruning or from a width-reduced training recipe. Here the modules of torchvision's
constructor are replaced by ones of the widths below (the forward is unchanged), so the state dict has torchvision's
keys and the slim shapes:

  slim-resnet-basic.pth       ResNet(BasicBlock, [2, 1, 1, 1], num_classes=2), stem 8, stages 8-12-16-20
                              (layer1.1: an identity shortcut; layer1.0: none needed, 8 -> 8)
  slim-resnet-bottleneck.pth  ResNet(Bottleneck, [1, 2, 1, 1], num_classes=3, groups=2), stem 8, inner widths
                              4-8-8-12, block outputs 16-24-32-40 (not 4x the width), conv2 grouped (2 groups)

Weights are the seeded formula of scripts/golden/make_resnet_golden.py (the `fill` below, seed 7 and 11), so the
tests can also rebuild the state dicts in TypeScript (@crp/testing/torch-weights). slim-resnets.json holds torch's
logits (eval mode) for the formula's NCHW input of 32 and 48 pixels (seed = the size), and each file's SHA-256.

Each model is also written as ONNX (test/fixtures/onnx/slim-resnet-*.onnx, beside the pth folder) the way a user
exports one: `torch.onnx.export` of the eval-mode model with the exporter's defaults (training=EVAL,
do_constant_folding: every batch norm folded into its conv, whose weights get generated initializer names such as
`onnx::Conv_123`), opset 13, 32x32 input, dynamic batch. The layer names survive only in the node names
(`/layer1/layer1.0/conv1/Conv`), which is what the study from `.onnx` must map back to PyTorch's module names.
slim-resnets.json records each .onnx's SHA-256 (`onnx_sha256`); its logits are the model's above.
"""
import hashlib
import json
import os
import sys

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..', 'scripts', 'golden'))
from make_resnet_golden import fill, formula_input, shortest  # noqa: E402


def slim(model, stem, stages, groups):
    """Replaces every conv / batch norm of a torchvision ResNet by one of the given widths: stem filters, then per
    stage (inner width, block output). Strides, paddings, kernel sizes and groups stay torchvision's."""
    def conv(old, cin, cout, g=1):
        return nn.Conv2d(cin, cout, old.kernel_size, old.stride, old.padding, groups=g, bias=False)

    model.conv1 = conv(model.conv1, 3, stem)
    model.bn1 = nn.BatchNorm2d(stem)
    cin = stem
    for s, (width, out) in enumerate(stages):
        for block in getattr(model, f'layer{s + 1}'):
            if isinstance(block, Bottleneck):
                block.conv1, block.bn1 = conv(block.conv1, cin, width), nn.BatchNorm2d(width)
                block.conv2, block.bn2 = conv(block.conv2, width, width, groups), nn.BatchNorm2d(width)
                block.conv3, block.bn3 = conv(block.conv3, width, out), nn.BatchNorm2d(out)
            else:
                block.conv1, block.bn1 = conv(block.conv1, cin, width), nn.BatchNorm2d(width)
                block.conv2, block.bn2 = conv(block.conv2, width, out), nn.BatchNorm2d(out)
            needs = block.stride != 1 or cin != out
            assert needs == (block.downsample is not None), (s, cin, out)
            if block.downsample is not None:
                block.downsample[0] = conv(block.downsample[0], cin, out)
                block.downsample[1] = nn.BatchNorm2d(out)
            cin = out
    model.fc = nn.Linear(cin, model.fc.out_features)
    return model


def main(out_dir):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    models = {
        'slim-resnet-basic': (slim(ResNet(BasicBlock, [2, 1, 1, 1], num_classes=2), 8,
                                   [(8, 8), (12, 12), (16, 16), (20, 20)], 1), 7),
        'slim-resnet-bottleneck': (slim(ResNet(Bottleneck, [1, 2, 1, 1], num_classes=3, groups=2, width_per_group=64),
                                        8, [(4, 16), (8, 24), (8, 32), (12, 40)], 2), 11),
    }
    summary = {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'models': {}}
    for name, (model, seed) in models.items():
        fill(model, seed).eval()
        path = os.path.join(out_dir, f'{name}.pth')
        torch.save(model.state_dict(), path)
        with open(path, 'rb') as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        onnx_path = os.path.join(out_dir, '..', 'onnx', f'{name}.onnx')
        torch.onnx.export(model, formula_input((1, 3, 32, 32), 32), onnx_path, opset_version=13,
                          input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
        with open(onnx_path, 'rb') as fh:
            onnx_digest = hashlib.sha256(fh.read()).hexdigest()
        logits = {}
        with torch.no_grad():
            for size in (32, 48):
                logits[str(size)] = shortest(model(formula_input((1, 3, size, size), size)).numpy())
        summary['models'][name] = {
            'seed': seed,
            'sha256': digest,
            'onnx_sha256': onnx_digest,
            'shapes': {k: list(v.shape) for k, v in model.state_dict().items()},
            'logits': logits,
        }
    with open(os.path.join(out_dir, 'slim-resnets.json'), 'w') as fh:
        json.dump(summary, fh, indent=1)
        fh.write('\n')


if __name__ == '__main__':
    main(sys.argv[1])

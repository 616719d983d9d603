#!/usr/bin/env python3
"""Golden LRP values for a grouped-convolution CNN through ONNX: a ResNeXt in miniature (`resnext_like`).

torchvision's ResNeXt bottleneck (1x1 conv, 3x3 conv with `groups`, 1x1 conv, downsample, addition through
zennit's Sum) with two blocks of 4 and 8 groups, seeded weights, exported with torch.onnx.export (opset 13: the
Conv node's `group` attribute) and explained with zennit 0.5.1 on the same torch model, with the conventions and
helpers of make_onnx_golden.py (same directory; its cases and models are left as they are). Adds
`models/resnext_like.onnx` and the cases `onnx_lrp_*__resnext_like` to vendor/reference/onnx:

    ZENNIT_SRC=<zennit 0.5.1 tree>/src python3 scripts/golden/onnx/make_grouped_onnx_golden.py vendor/reference/onnx

Deterministic: seeded, one thread.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_onnx_golden as base  # noqa: E402

NAME = 'resnext_like'
SEED = 21
OPSET = 13


class GroupedBottleneck(torch.nn.Module):
    """torchvision's Bottleneck with groups: conv1 1x1, conv2 3x3 (stride, groups), conv3 1x1, each with a batch
    norm, downsample (1x1 conv + batch norm) when the shape changes, ReLU after the addition."""

    def __init__(self, cin, width, cout, groups, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(width)
        self.conv2 = torch.nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(width)
        self.conv3 = torch.nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = torch.nn.BatchNorm2d(cout)
        self.relu = torch.nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 1, stride=stride, bias=False), torch.nn.BatchNorm2d(cout)
            )
        self.sum = base.Sum()
        self.zennit = False

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = self.sum(torch.stack([out, identity], dim=-1)) if self.zennit else out + identity
        return self.relu(out)


class ResNeXtLike(torch.nn.Module):
    """conv1-bn1-relu, layer1 (16 wide, 4 groups of 4), layer2 (stride 2, 32 wide, 8 groups of 4), adaptive
    average pool, fc."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.relu = torch.nn.ReLU()
        self.layer1 = torch.nn.Sequential(GroupedBottleneck(8, 16, 16, 4, 1))
        self.layer2 = torch.nn.Sequential(GroupedBottleneck(16, 32, 32, 8, 2))
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(32, base.CLASSES)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    @staticmethod
    def canonizers():
        pairs = [(['conv1'], 'bn1')]
        for block in ['layer1.0', 'layer2.0']:
            pairs += [([f'{block}.conv{k}'], f'{block}.bn{k}') for k in (1, 2, 3)]
            pairs.append(([f'{block}.downsample.0'], f'{block}.downsample.1'))
        return [base.ExactNamedMergeBatchNorm(pairs)]


def main():
    torch.manual_seed(SEED)
    model = base.init_weights(ResNeXtLike(), SEED)
    assert model.layer2[0].conv2.groups == 8
    base.export(model, f'{base.OUT}/models/{NAME}.onnx', OPSET)
    base.replace_model(NAME, OPSET, model, ['layer1.0.conv2', 'layer2.0.conv2', 'layer2.0.downsample.0'], SEED)


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Checks once, in PyTorch, that a pruned ResNet written by the toolkit loads into torchvision's architecture.

The test `test/residual.test.ts` ("writes the pruned ResNet as a state_dict.pth ...") writes
test-artifacts/pruned-resnet18.pth: torchvision resnet18 (3 classes, weights of the seeded formula of
scripts/golden/make_resnet_golden.py, seed 3) with channels of layer1.0.conv1, layer3.1.conv1 and layer4.0.conv1
removed by exportPruned, and channels of the residual streams of layer2 and layer4 (masks on layer2.1.add and
layer4.1.add: every conv writing or reading the stream, its batch norms and fc lose them). This script builds
torchvision.models.resnet18(num_classes=3), gives every conv, batch norm and fc the channel counts found in the
file, calls torch.load + load_state_dict(strict=True), runs the
formula's 32x32 input (seed 32) and writes test/fixtures/pruned-resnet18-pth.json: the SHA-256 of the bytes torch
accepted and torch's logits. The test then checks that the toolkit writes exactly those bytes and that the
pruned TF.js model gives those logits; no Python is needed to run it.

    python3 packages/pruning/fixtures-src/check-pruned-resnet-pth.py \
        packages/pruning/test-artifacts/pruned-resnet18.pth packages/pruning/test/fixtures/pruned-resnet18-pth.json
"""
import hashlib
import json
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..', 'scripts', 'golden'))
from make_resnet_golden import formula_input  # noqa: E402


def main(path, out):
    torch.set_num_threads(1)
    with open(path, 'rb') as fh:
        data = fh.read()
    state = torch.load(path)
    model = torchvision.models.resnet18(num_classes=3)
    pruned = {}
    for name, module in list(model.named_modules()):
        parent = model.get_submodule(name.rsplit('.', 1)[0]) if '.' in name else model
        attr = name.rsplit('.', 1)[-1]
        if isinstance(module, torch.nn.Conv2d):
            out_c, in_c = state[f'{name}.weight'].shape[:2]
            if (out_c, in_c) != (module.out_channels, module.in_channels):
                pruned[name] = [int(out_c), int(in_c)]
                setattr(parent, attr, torch.nn.Conv2d(in_c, out_c, module.kernel_size, module.stride, module.padding,
                                                      bias=False))
        elif isinstance(module, torch.nn.Linear):
            out_f, in_f = state[f'{name}.weight'].shape
            if (out_f, in_f) != (module.out_features, module.in_features):
                pruned[name] = [int(out_f), int(in_f)]
                setattr(parent, attr, torch.nn.Linear(in_f, out_f))
        elif isinstance(module, torch.nn.BatchNorm2d):
            c = state[f'{name}.weight'].shape[0]
            if c != module.num_features:
                pruned[name] = [int(c)]
                setattr(parent, attr, torch.nn.BatchNorm2d(c))
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    model.eval()
    with torch.no_grad():
        logits = model(formula_input((1, 3, 32, 32), 32))
    with open(out, 'w') as fh:
        json.dump({
            'sha256': hashlib.sha256(data).hexdigest(),
            'bytes': len(data),
            'torch': torch.__version__,
            'torchvision': torchvision.__version__,
            'prunedModules': pruned,
            'logits': [float(repr(v)) for v in logits.numpy().astype('float32').ravel()],
        }, fh, indent=1)
        fh.write('\n')
    print(f'torch loaded {path} ({len(data)} bytes) into resnet18 with pruned {sorted(pruned)}; logits {logits}')


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])

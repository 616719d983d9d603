#!/usr/bin/env python3
"""Golden values for torchvision ResNets: logits, zennit LRP and zennit-crp CRP (vendor/reference/resnet).

Run (Debian bookworm: python3-torch 1.13, python3-torchvision 0.14, numpy), with the reference libraries exported
from their public sources at the commits recorded in vendor/reference/PROVENANCE.md:

    python3 scripts/golden/make_resnet_golden.py --zennit /tmp/zennit/src --crp /tmp/zennit-crp \
        --out vendor/reference/resnet

The models are torchvision's own constructors (resnet18, resnet50 and resnext50_32x4d, 10 classes, eval mode).
`--models resnext50_32x4d` makes the cases of the named models only and keeps the other models' cases in
index.json (each model's cases depend on that model alone). Their weights and
the inputs come from a seeded formula that @crp/testing/torch-weights computes identically in TypeScript, so no
weight file is committed (resnet50 has 25M parameters): u(name, i) = h32((fnv1a(name) ^ seed) + h32(i)) / 2^32.
One small real .pth is written as well (resnet18 in float16 is 22 MB, too large; see `--pth`).
"""
import argparse
import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np

M32 = 0xFFFFFFFF


def h32(x):
    """lowbias32 on a uint64 array holding 32-bit values."""
    x = x & M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


def fnv1a(text):
    h = 0x811C9DC5
    for b in text.encode('utf-8'):
        h = ((h ^ b) * 0x01000193) & M32
    return h


def formula_values(name, count, seed, scale, offset):
    base = np.uint64((fnv1a(name) ^ seed) & M32)
    i = np.arange(count, dtype=np.uint64)
    u = h32((base + h32(i)) & M32).astype(np.float64) / 4294967296.0
    return (u * scale + offset).astype(np.float32)


def tensor_formula(name, shape):
    last = name.rsplit('.', 1)[-1]
    if last == 'num_batches_tracked':
        return 0.0, 0.0
    if len(shape) == 4:
        a = math.sqrt(6 / (shape[1] * shape[2] * shape[3]))
        return 2 * a, -a
    if len(shape) == 2:
        a = math.sqrt(3 / shape[1])
        return 2 * a, -a
    if last == 'weight':
        return 0.5, 0.5
    if last == 'running_var':
        return 1.0, 0.5
    return 0.4, -0.2


def fill(model, seed):
    import torch
    state = model.state_dict()
    for name, t in state.items():
        scale, offset = tensor_formula(name, list(t.shape))
        if t.dtype != torch.float32:
            t.zero_()
            continue
        v = formula_values(name, t.numel(), seed, scale, offset).reshape(tuple(t.shape))
        t.copy_(torch.from_numpy(v))
    model.load_state_dict(state)
    return model


def formula_input(shape, seed):
    import torch
    n = int(np.prod(shape))
    return torch.from_numpy(formula_values('input', n, seed, 4.0, -2.0).reshape(shape))


def shortest(values):
    """float32 values as the shortest decimals that round-trip (numpy's repr of float32)."""
    return [float(repr(np.float32(v))) if np.isfinite(v) else None for v in np.asarray(values, np.float32).ravel()]


def tensor(t, layout):
    a = t.detach().cpu().numpy().astype(np.float32)
    return {'layout': layout, 'shape': list(a.shape), 'data': shortest(a)}


def nhwc(t):
    return tensor(t.permute(0, 2, 3, 1) if t.dim() == 4 else t, 'NHWC' if t.dim() == 4 else 'NC')


def tree_sha256(root):
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for f in sorted(filenames):
            if f.endswith('.pyc'):
                continue
            p = os.path.join(dirpath, f)
            h.update(os.path.relpath(p, root).encode())
            with open(p, 'rb') as fh:
                h.update(fh.read())
    return h.hexdigest()


MODELS = {'resnet18': 18, 'resnet50': 50, 'resnext50_32x4d': 32}
CLASSES = 10
# layers whose relevance (summed over space: one value per channel) is recorded, in both branches of a block
RECORD = ['conv1', 'layer1.0.conv1', 'layer2.0.conv2', 'layer2.0.downsample.0', 'layer3.1.conv1', 'layer3.1.conv2',
          'layer4.0.conv1', 'layer4.0.downsample.0', 'layer4.1']


def record_outputs(model, names):
    outputs = {}
    handles = []
    modules = dict(model.named_modules())

    def hook_for(name):
        def hook(module, inputs, output):
            output.retain_grad()
            outputs[name] = output
        return hook

    for name in names:
        handles.append(modules[name].register_forward_hook(hook_for(name)))
    return outputs, handles


def lrp_case(name, model, size, composite_name, zennit):
    import torch
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer
    x = formula_input((1, 3, size, size), size)
    with torch.no_grad():
        logits = model(x)
    target = int(logits.argmax(1))
    make = {
        'EpsilonPlusFlat': lambda: EpsilonPlusFlat(canonizers=[ResNetCanonizer()]),
        'EpsilonAlpha2Beta1': lambda: EpsilonAlpha2Beta1(canonizers=[ResNetCanonizer()]),
        'EpsilonGammaBox': lambda: EpsilonGammaBox(low=-2.0, high=2.0, canonizers=[ResNetCanonizer()]),
    }[composite_name]
    composite = make()
    outputs, handles = record_outputs(model, RECORD)
    with Gradient(model, composite) as attributor:
        out, relevance = attributor(x, lambda y: torch.nn.functional.one_hot(torch.tensor([target]), CLASSES) * y)
    for h in handles:
        h.remove()
    channel = {k: tensor(v.grad.sum((2, 3)), 'NC') for k, v in outputs.items()}
    return {
        'format': 'crp-golden-torch/1',
        'id': f'resnet_lrp_{composite_name}__{name}_{size}',
        'kind': 'torch-lrp',
        'model': name,
        'inputSize': size,
        'inputSeed': size,
        'composite': composite_name,
        'compositePython': {
            'EpsilonPlusFlat': 'EpsilonPlusFlat(canonizers=[ResNetCanonizer()])',
            'EpsilonAlpha2Beta1': 'EpsilonAlpha2Beta1(canonizers=[ResNetCanonizer()])',
            'EpsilonGammaBox': 'EpsilonGammaBox(low=-2.0, high=2.0, canonizers=[ResNetCanonizer()])',
        }[composite_name],
        'target': target,
        'logits': tensor(logits, 'NC'),
        'logitsDuringAttribution': tensor(out, 'NC'),
        'heatmap': tensor(relevance.sum(1), 'NHW'),
        'relevanceSum': float(relevance.sum()),
        'channelRelevance': channel,
    }


def top_channels(model, size, target, layer, k):
    '''The k channels of `layer` with the largest |relevance| for the target (zennit-crp, condition y alone).'''
    from crp.attribution import CondAttribution
    from zennit.composites import EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer
    x = formula_input((1, 3, size, size), size)
    attribution = CondAttribution(model, no_param_grad=True)
    result = attribution(x.clone().requires_grad_(True), [{'y': [target]}],
                         EpsilonPlusFlat(canonizers=[ResNetCanonizer()]), record_layer=[layer])
    rel = result.relevances[layer].sum((2, 3))[0].abs()
    return [int(i) for i in rel.argsort(descending=True)[:k]]


def crp_case(name, model, size, cid, conditions, record, exclude_parallel=True):
    import torch
    from crp.attribution import CondAttribution
    from zennit.composites import EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer
    x = formula_input((1, 3, size, size), size)
    composite = EpsilonPlusFlat(canonizers=[ResNetCanonizer()])
    attribution = CondAttribution(model, no_param_grad=True)
    result = attribution(x.clone().requires_grad_(True), conditions, composite, record_layer=record,
                         exclude_parallel=exclude_parallel)
    rel = {k: tensor(v.sum((2, 3)) if v.dim() == 4 else v, 'NC') for k, v in result.relevances.items()}
    return {
        'format': 'crp-golden-torch/1',
        'id': f'resnet_crp_{cid}{"" if exclude_parallel else "_parallel"}__{name}_{size}',
        'kind': 'torch-crp',
        'model': name,
        'inputSize': size,
        'inputSeed': size,
        'composite': 'EpsilonPlusFlat(canonizers=[ResNetCanonizer()])',
        'conditions': conditions,
        'recordLayer': record,
        'excludeParallel': exclude_parallel,
        'heatmap': tensor(result.heatmap, 'NHW'),
        'prediction': tensor(result.prediction, 'NC'),
        'channelRelevance': rel,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--zennit', required=True, help='zennit source tree: its src/ folder')
    parser.add_argument('--crp', required=True, help='zennit-crp source tree (the folder holding crp/)')
    parser.add_argument('--out', required=True)
    parser.add_argument('--models', default=','.join(MODELS), help=f'comma-separated subset of {", ".join(MODELS)}')
    args = parser.parse_args()
    selected = args.models.split(',')
    unknown = [m for m in selected if m not in MODELS]
    if unknown:
        parser.error(f'unknown models {unknown}; valid: {", ".join(MODELS)}')
    sys.path.insert(0, args.zennit)
    sys.path.insert(0, args.crp)
    import torch
    import torchvision
    import zennit
    torch.set_num_threads(1)
    torch.manual_seed(0)
    os.makedirs(os.path.join(args.out, 'cases'), exist_ok=True)

    models = {}
    for name, seed in MODELS.items():
        if name not in selected:
            continue
        model = getattr(torchvision.models, name)(num_classes=CLASSES).eval()
        fill(model, seed)
        for p in model.parameters():
            p.requires_grad_(False)
        models[name] = model

    cases = []

    def write(case):
        path = os.path.join('cases', f"{case['id']}.json")
        text = json.dumps(case, separators=(',', ':'))
        with open(os.path.join(args.out, path), 'w') as fh:
            fh.write(text)
        cases.append({'id': case['id'], 'kind': case['kind'], 'model': case['model'], 'file': path,
                      'bytes': len(text)})
        print(case['id'], len(text), file=sys.stderr)

    # logits of the plain models at the sizes of the issue
    for name, model in models.items():
        logits = {}
        for size in (64, 128, 224):
            with torch.no_grad():
                logits[str(size)] = tensor(model(formula_input((1, 3, size, size), size)), 'NC')
        write({'format': 'crp-golden-torch/1', 'id': f'resnet_logits__{name}', 'kind': 'torch-logits', 'model': name,
               'inputSeed': 'inputSize', 'logits': logits})

    for name, model in models.items():
        for size in (32, 64):
            for composite in ('EpsilonPlusFlat', 'EpsilonAlpha2Beta1', 'EpsilonGammaBox'):
                write(lrp_case(name, model, size, composite, zennit))

    # CRP: conditions on a conv inside a block and on a downsample (the other branch), recording both branches
    for name, model in models.items():
        size = 64
        with torch.no_grad():
            target = int(model(formula_input((1, 3, size, size), size)).argmax(1))
        record = ['layer4.0.conv1', 'layer4.0.downsample.0', 'layer3.1.conv1', 'layer3.1.conv2', 'layer3.0.conv1',
                  'layer2.0.conv1', 'layer2.0.downsample.0']
        a, b, c = top_channels(model, size, target, 'layer3.1.conv2', 3)
        write(crp_case(name, model, size, 'layer3.1.conv2',
                       [{'y': [target], 'layer3.1.conv2': [a]}, {'y': [target], 'layer3.1.conv2': [b, c]}], record))
        a, b = top_channels(model, size, target, 'layer4.0.downsample.0', 2)
        conditions = [{'y': [target], 'layer4.0.downsample.0': [a]}, {'y': [target], 'layer4.0.downsample.0': [b]}]
        write(crp_case(name, model, size, 'layer4.0.downsample.0', conditions, record))
        write(crp_case(name, model, size, 'layer4.0.downsample.0', conditions, record, exclude_parallel=False))

    index_path = os.path.join(args.out, 'index.json')
    if os.path.exists(index_path):
        # cases of models not made in this run stay, in their place before the new ones
        with open(index_path) as fh:
            kept = [c for c in json.load(fh)['cases'] if c['model'] not in selected]
        cases[:0] = kept
    seeds = ', '.join(f'{k}: {v}' for k, v in MODELS.items())
    index = {
        'format': 'lrp-golden-index/1',
        'split': 'resnet',
        'provenance': {
            'generator': 'scripts/golden/make_resnet_golden.py',
            'zennit': {'version': zennit.__version__ if hasattr(zennit, '__version__') else '0.5.1',
                       'sourceSha256': tree_sha256(os.path.join(args.zennit, 'zennit'))},
            'zennitCrp': {'sourceSha256': tree_sha256(os.path.join(args.crp, 'crp'))},
            'torch': torch.__version__,
            'torchvision': torchvision.__version__,
            'numpy': np.__version__,
            'python': sys.version.split()[0],
            'torchThreads': 1,
            'weights': f'u(name, i) = h32((fnv1a(name) ^ seed) + h32(i)) / 2^32; seeds {seeds}',
        },
        'cases': cases,
    }
    with open(index_path, 'w') as fh:
        json.dump(index, fh, indent=1)


if __name__ == '__main__':
    main()

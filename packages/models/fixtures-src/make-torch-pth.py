#!/usr/bin/env python3
"""Writes the PyTorch fixtures of @crp/models' `.pth` reader and adaptive-pool tests (test/fixtures/pth/).

Documentation only: the package and its tests never run this script. It needs Debian's PyTorch
(`apt-get install python3-torch python3-torchvision`; run it with /usr/bin/python3) and, for the LRP
reference, zennit 0.5.1 from source (commit 3121bb223061506834ca68abad3eefc792dea999 of
github.com/chr5tphr/zennit, the version of /work/shared/reference) on PYTHONPATH:

    git -C zennit archive 3121bb223061506834ca68abad3eefc792dea999 src | tar -x -C /tmp/zennit-0.5.1
    PYTHONPATH=/tmp/zennit-0.5.1/src /usr/bin/python3 fixtures-src/make-torch-pth.py

The model is a real `torchvision.models.vgg.VGG` (module names `features.N`, `avgpool`, `classifier.N`)
with tiny sizes: features from cfg [8, 'M', 8, 'M', 8, 'M'] (torchvision's `make_layers`, with and
without batch norm), torchvision's AdaptiveAvgPool2d((7, 7)), and a classifier Linear(8*7*7, 16), ReLU,
Dropout, Linear(16, 16), ReLU, Dropout, Linear(16, 3).

Inputs are not stored: the tests regenerate them. Image k of size S is the NHWC array whose i-th value
(row-major over [1, S, S, 3]) is float32(2 * u_i - 1), u = mulberry32(seed) (the PRNG of @crp/common,
re-implemented below bit for bit), seed = 1000 + S.

Files (all written by torch.save unless said otherwise):
  tiny-vgg.pth                state_dict, float32
  tiny-vgg-bn.pth             state_dict with batch norm (int64 num_batches_tracked included)
  tiny-vgg-bn-f16.pth         the batch-norm state_dict as float16
  tiny-vgg-bf16.pth           the plain state_dict as bfloat16
  tiny-vgg-noncontiguous.pth  classifier.0.weight saved as a transposed view (strides [1, 392]) and
                              features.0.bias as a slice at storage offset 5 of a larger tensor
  tiny-vgg-shared.pth         every bias a view into ONE storage (several tensors share it), `module.` prefix
  tiny-vgg-prefixed.pth       keys prefixed `model.` (a wrapper's state_dict)
  tiny-vgg-module.pth         torch.save(model): the whole pickled torchvision VGG (a module tree)
  tiny-vgg-legacy.pth         _use_new_zipfile_serialization=False (the pre-1.6 format)
  tiny-vgg-deflated.pth       tiny-vgg.pth re-zipped by Python's zipfile with deflate (unaligned entries)
  tiny-vgg-big-endian.pth     tiny-vgg.pth with a `byteorder` entry 'big' and byte-swapped storages
  tiny-vgg-truncated.pth      the first 60% of tiny-vgg.pth
  tiny-vgg-corrupt.pth        tiny-vgg.pth with 16 bytes of features.6.weight's storage zeroed (its CRC-32 fails)
  unsafe-global.pth           a pickle whose object reduces to os.system (global posix.system)
  custom-class.pth            torch.save of a module whose class is defined in __main__
  torch2-style.pth            features.0 of tiny-vgg.pth pickled as torch >= 2 does tensors and parameters with
                              Python state (_rebuild_from_type_v2, _rebuild_parameter_with_state)
  resnet.pth                  a state_dict with the keys of torchvision's resnet18 (1-element tensors)
  torchvision-vgg-keys.json   {name: shape} of the state_dicts of torchvision's vgg11..vgg19(_bn), 1000 classes
  tiny-vgg.json               torch's logits per model for inputs of 40, 56, 64, 100, 128, 150 and 224 pixels
                              (last feature maps 5, 7, 8, 12, 16, 18, 28: every case of the adaptive pool)
  adaptive-pool.json          torch's adaptive_avg_pool2d for many input/output sizes (NHWC)
  lrp-adaptive.json           zennit's EpsilonPlusFlat relevances of the plain model at 64x64 (7x7 pool of an
                              8x8 map: overlapping windows)
"""
import collections
import json
import os
import struct
import sys
import zipfile
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models.vgg import VGG, cfgs, make_layers

ZENNIT_COMMIT = '3121bb223061506834ca68abad3eefc792dea999'
CFG = [8, 'M', 8, 'M', 8, 'M']
HIDDEN = 16
CLASSES = 3
SIZES = [40, 56, 64, 100, 128, 150, 224]
OUT = Path(sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != '--big' else Path(__file__).resolve().parent.parent / 'test' / 'fixtures' / 'pth')


def mulberry32(seed):
    """@crp/common's mulberry32 (JavaScript int32 arithmetic emulated with masks)."""
    a = seed & 0xFFFFFFFF

    def imul(x, y):
        return (x * y) & 0xFFFFFFFF

    def next_value():
        nonlocal a
        a = (a + 0x6D2B79F5) & 0xFFFFFFFF
        t = a
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    return next_value


def image(size):
    """The test input of `size` pixels as NCHW float32 (see the header)."""
    rng = mulberry32(1000 + size)
    values = [2 * rng() - 1 for _ in range(size * size * 3)]
    return torch.tensor(values, dtype=torch.float32).reshape(1, size, size, 3).permute(0, 3, 1, 2).contiguous()


def tiny_vgg(batch_norm):
    """A torchvision VGG with tiny features and classifier (same module names as vgg11 & co)."""
    model = VGG(make_layers(CFG, batch_norm=batch_norm), num_classes=CLASSES, init_weights=False)
    model.classifier = nn.Sequential(
        nn.Linear(8 * 7 * 7, HIDDEN), nn.ReLU(True), nn.Dropout(),
        nn.Linear(HIDDEN, HIDDEN), nn.ReLU(True), nn.Dropout(),
        nn.Linear(HIDDEN, CLASSES),
    )
    with torch.no_grad():  # He-normal weights, small biases: logits of order 1
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
                m.bias.uniform_(-0.1, 0.1)
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(77)
    return model.eval()


def rounded(model, dtype):
    """A float32 copy of `model` whose floating-point state went through `dtype` (what a reader of that file gets)."""
    state = {k: (v.to(dtype).to(torch.float32) if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    copy = tiny_vgg(batch_norm=any('running_mean' in k for k in state))
    copy.load_state_dict(state)
    return copy.eval()


def logits(model):
    with torch.no_grad():
        return {str(s): f32(model(image(s))) for s in SIZES}


def f32(t):
    """The values of a float32 tensor as the shortest decimals that parse back to the same float32 (small JSON)."""
    return [float(str(v)) for v in t.detach().to(torch.float32).flatten().numpy()]


def nhwc(t):
    return {'shape': list(t.permute(0, 2, 3, 1).shape), 'data': f32(t.permute(0, 2, 3, 1))}


class Evil:
    """Unpickling this would run a shell command: the reader must refuse it without running anything."""

    def __reduce__(self):
        return (os.system, ('echo this must never run',))


class FromType:
    """Pickles a tensor the way torch >= 2 does for tensors with Python state: _rebuild_from_type_v2."""

    def __init__(self, t):
        self.t = t

    def __reduce__(self):
        t = self.t
        args = (t.storage(), t.storage_offset(), tuple(t.size()), t.stride(), False, collections.OrderedDict())
        return (torch._tensor._rebuild_from_type_v2, (torch._utils._rebuild_tensor_v2, torch.Tensor, args, {}))


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    """Stands in for torch >= 2's function of that name (torch 1.13 has none), so that its global can be pickled."""
    return torch.nn.Parameter(data, requires_grad)


class ParameterWithState:
    """Pickles a parameter as torch >= 2 does when it has Python state: _rebuild_parameter_with_state."""

    def __init__(self, t):
        self.t = t

    def __reduce__(self):
        return (torch._utils._rebuild_parameter_with_state, (self.t, True, collections.OrderedDict(), {'note': 1}))


class Wrapper(nn.Module):
    """A user's own class: its global is __main__.Wrapper, outside the reader's allowed set."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner


def rezip(src, dst, transform=None, compression=zipfile.ZIP_STORED, extra=None):
    """Copies a zip entry by entry (optionally changing entries) with Python's zipfile, with fixed timestamps."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', compression=compression) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if transform is not None:
                data = transform(info.filename, data)
            zout.writestr(zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0)), data, compression)
        for name, data in (extra or {}).items():
            zout.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, compression)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(11)
    plain = tiny_vgg(batch_norm=False)
    bn = tiny_vgg(batch_norm=True)
    sd = plain.state_dict()

    torch.save(sd, OUT / 'tiny-vgg.pth')
    torch.save(bn.state_dict(), OUT / 'tiny-vgg-bn.pth')
    torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in bn.state_dict().items()},
               OUT / 'tiny-vgg-bn-f16.pth')
    torch.save({k: v.bfloat16() for k, v in sd.items()}, OUT / 'tiny-vgg-bf16.pth')

    odd = dict(sd)
    w = sd['classifier.0.weight']  # [16, 392]
    odd['classifier.0.weight'] = w.t().contiguous().t()  # same values, strides (1, 16): column-major storage
    assert not odd['classifier.0.weight'].is_contiguous() and odd['classifier.0.weight'].stride() == (1, 16)
    b = sd['features.0.bias']
    odd['features.0.bias'] = torch.cat([torch.full((5,), 99.0), b, torch.full((3,), -99.0)])[5:5 + b.numel()]
    assert odd['features.0.bias'].storage_offset() == 5
    torch.save(odd, OUT / 'tiny-vgg-noncontiguous.pth')

    biases = [k for k in sd if k.endswith('.bias')]
    pool = torch.cat([sd[k] for k in biases])
    shared, at = {}, 0
    for k, v in sd.items():
        if k.endswith('.bias'):
            shared['module.' + k] = pool[at:at + v.numel()]
            at += v.numel()
        else:
            shared['module.' + k] = v
    assert len({t.storage().data_ptr() for k, t in shared.items() if k.endswith('.bias')}) == 1
    torch.save(shared, OUT / 'tiny-vgg-shared.pth')

    torch.save({'model.' + k: v for k, v in sd.items()}, OUT / 'tiny-vgg-prefixed.pth')
    torch.save(plain, OUT / 'tiny-vgg-module.pth')
    torch.save(sd, OUT / 'tiny-vgg-legacy.pth', _use_new_zipfile_serialization=False)
    rezip(OUT / 'tiny-vgg.pth', OUT / 'tiny-vgg-deflated.pth', compression=zipfile.ZIP_DEFLATED)

    def big_endian(name, data):
        if '/data/' not in name:
            return data
        return bytes(b for i in range(0, len(data), 4) for b in reversed(data[i:i + 4]))  # float32 storages only

    prefix = zipfile.ZipFile(OUT / 'tiny-vgg.pth').namelist()[0].split('/')[0]
    rezip(OUT / 'tiny-vgg.pth', OUT / 'tiny-vgg-big-endian.pth', transform=big_endian,
          extra={f'{prefix}/byteorder': b'big'})

    whole = (OUT / 'tiny-vgg.pth').read_bytes()
    (OUT / 'tiny-vgg-truncated.pth').write_bytes(whole[:int(len(whole) * 0.6)])
    with zipfile.ZipFile(OUT / 'tiny-vgg.pth') as z:
        info = z.getinfo(f'{prefix}/data/4')  # the storage of features.6.weight
        local = whole[info.header_offset:info.header_offset + 30]
        start = info.header_offset + 30 + struct.unpack('<H', local[26:28])[0] + struct.unpack('<H', local[28:30])[0]
    corrupt = bytearray(whole)
    corrupt[start + 64:start + 80] = b'\x00' * 16
    (OUT / 'tiny-vgg-corrupt.pth').write_bytes(bytes(corrupt))

    torch.save({'weights': sd['features.0.weight'], 'payload': Evil()}, OUT / 'unsafe-global.pth')
    _rebuild_parameter_with_state.__module__ = 'torch._utils'
    torch._utils._rebuild_parameter_with_state = _rebuild_parameter_with_state
    torch.save({'features.0.weight': FromType(sd['features.0.weight']), 'features.0.bias': ParameterWithState(sd['features.0.bias'])},
               OUT / 'torch2-style.pth')
    torch.save(Wrapper(plain), OUT / 'custom-class.pth')
    resnet = torchvision.models.resnet18(num_classes=2).state_dict()
    torch.save({k: torch.zeros(1) if v.is_floating_point() else v for k, v in resnet.items()},
               OUT / 'resnet.pth')

    keys = {}
    for name, cfg in [('vgg11', 'A'), ('vgg13', 'B'), ('vgg16', 'D'), ('vgg19', 'E')]:
        for batch_norm in (False, True):
            model = VGG(make_layers(cfgs[cfg], batch_norm=batch_norm), init_weights=False)
            keys[name + ('_bn' if batch_norm else '')] = {
                'cfg': cfgs[cfg],
                'stateDict': {k: list(v.shape) for k, v in model.state_dict().items()},
            }
    (OUT / 'torchvision-vgg-keys.json').write_text(json.dumps(keys) + '\n')

    record = {
        'description': 'torchvision VGG, cfg [8, M, 8, M, 8, M], AdaptiveAvgPool2d((7, 7)), classifier 392-16-16-3; '
                       f'logits of torch {torch.__version__} (torchvision {torchvision.__version__}) in eval mode for '
                       'the mulberry32 images of the script header',
        'sizes': SIZES,
        'logits': {
            'plain': logits(plain),
            'bn': logits(bn),
            'bn-f16': logits(rounded(bn, torch.float16)),
            'bf16': logits(rounded(plain, torch.bfloat16)),
        },
    }
    (OUT / 'tiny-vgg.json').write_text(json.dumps(record) + '\n')

    gen = torch.Generator().manual_seed(5)
    cases = []
    for h, w, oh, ow in [(8, 8, 7, 7), (12, 12, 7, 7), (16, 18, 7, 7), (14, 14, 7, 7), (7, 7, 7, 7), (5, 5, 7, 7),
                         (3, 2, 7, 7), (1, 1, 7, 7), (10, 10, 3, 3), (9, 13, 4, 5), (6, 4, 1, 1), (11, 7, 2, 6)]:
        x = torch.rand(1, 2, h, w, generator=gen) * 2 - 1
        y = nn.functional.adaptive_avg_pool2d(x, (oh, ow))
        cases.append({'outputSize': [oh, ow], 'x': nhwc(x), 'y': nhwc(y)})
    (OUT / 'adaptive-pool.json').write_text(json.dumps({'torch': torch.__version__, 'cases': cases}) + '\n')

    write_lrp(plain)
    for p in sorted(OUT.iterdir()):
        print(f'{p.name}: {p.stat().st_size} bytes')


def write_lrp(model):
    """zennit's EpsilonPlusFlat on the plain model: Flat on features.0, ZPlus on convs, Epsilon on Linear, Norm on
    the adaptive pool (zennit.types.AvgPool includes AdaptiveAvgPool2d), Pass on ReLU, the gradient through max
    pools and flatten."""
    import zennit
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonPlusFlat

    x = image(64).requires_grad_()
    target = 1
    recorded = {}

    def keep(name):
        def hook(module, inputs, output):
            output.register_hook(lambda grad: recorded.__setitem__(name, grad.detach().clone()))
        return hook

    handles = [model.features[-1].register_forward_hook(keep('features.8')),
               model.avgpool.register_forward_hook(keep('avgpool'))]
    composite = EpsilonPlusFlat()
    with Gradient(model=model, composite=composite) as attributor:
        rules = {}
        for name, module in model.named_modules():
            for hook in list(module._forward_pre_hooks.values()):
                owner = getattr(hook, '__self__', None)
                if owner is not None:
                    rules[name] = type(owner).__name__
        output, relevance = attributor(x, lambda out: torch.eye(CLASSES)[[target]] * out)
    for h in handles:
        h.remove()
    assert rules['avgpool'] == 'Norm' and rules['features.0'] == 'Flat', rules
    record = {
        'description': 'zennit EpsilonPlusFlat (default stabilisers) on the plain tiny VGG, input = the 64-pixel '
                       'image of the script header (NHWC), relevance at the output = one_hot(target) * logits; '
                       '`relevances[layer]` = relevance at that module output, NHWC (features.8: the last max pool, '
                       'i.e. the relevance of the adaptive pool input; avgpool: of its 7x7 output)',
        'zennit': f'{zennit.__name__} 0.5.1 @ {ZENNIT_COMMIT}',
        'torch': torch.__version__,
        'size': 64,
        'target': target,
        'rules': rules,
        'logits': f32(output),
        'relevance': nhwc(relevance),
        'relevances': {k: nhwc(v) for k, v in recorded.items()},
    }
    (OUT / 'lrp-adaptive.json').write_text(json.dumps(record) + '\n')


def big(out_dir):
    """`--big DIR`: the measurement model (NOT a fixture, ~515 MB): torchvision.models.vgg11_bn(num_classes=2) with
    random init (no download) and non-trivial batch-norm statistics, as DIR/vgg11_bn-2.pth, and torch's logits for
    the 128-pixel image of the header in DIR/vgg11_bn-2.json (scripts/check-big-vgg.ts compares them)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(2)
    model = torchvision.models.vgg11_bn(num_classes=2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    torch.save(model.state_dict(), out / 'vgg11_bn-2.pth')
    with torch.no_grad():
        logits = f32(model(image(128)))
    (out / 'vgg11_bn-2.json').write_text(json.dumps({
        'description': 'torchvision vgg11_bn, 2 classes, random init; logits for the 128-pixel mulberry32 image',
        'parameters': sum(p.numel() for p in model.parameters()),
        'size': 128,
        'logits': logits,
    }) + '\n')
    print(f'{out / "vgg11_bn-2.pth"}: {(out / "vgg11_bn-2.pth").stat().st_size} bytes; logits {logits}')


if __name__ == '__main__':
    if len(sys.argv) > 2 and sys.argv[1] == '--big':
        big(sys.argv[2])
    else:
        main()

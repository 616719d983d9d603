#!/usr/bin/env python3
"""Writes the PyTorch fixtures of @crp/models' safetensors import test (test/fixtures/).

Documentation only: the package and its tests never run this script. It needs PyTorch (Debian:
`apt-get install python3-torch`; run it with /usr/bin/python3) and nothing else: the safetensors files
are written with struct + json, without the `safetensors` package.

It builds a SMALL torchvision-style VGG -- features from cfg [8, 'M', 16, 'M'] (Conv2d 3x3 pad 1,
optional BatchNorm2d, ReLU, MaxPool2d 2x2), AdaptiveAvgPool2d((4, 4)), classifier Linear(16*4*4, 32),
ReLU, Dropout, Linear(32, 32), ReLU, Dropout, Linear(32, 10) -- with and without batch norm, and
records torch's logits for seeded inputs of 16x16 (the pool is an identity there) and 32x32 (the
pool averages 2x2 windows).

Files:
  vgg-small.safetensors          F32, no batch norm
  vgg-small-bn.safetensors       F32, batch norm (with the I64 num_batches_tracked that torch keeps)
  vgg-small-bn-f16.safetensors   the batch-norm model stored as F16
  vgg-small-bf16.safetensors     the plain model stored as BF16
  vgg-small.json                 inputs (NCHW, 3 decimals) and torch's logits for every file
"""
import json
import struct
import sys
from pathlib import Path

import torch
from torch import nn

CFG = [8, 'M', 16, 'M']
POOL = 4
CLASSES = 10
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / 'test' / 'fixtures')


def make_layers(cfg, batch_norm):
    layers, channels = [], 3
    for v in cfg:
        if v == 'M':
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """torchvision.models.vgg.VGG with a smaller pool size and classifier."""

    def __init__(self, batch_norm):
        super().__init__()
        self.features = make_layers(CFG, batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((POOL, POOL))
        self.classifier = nn.Sequential(
            nn.Linear(16 * POOL * POOL, 32), nn.ReLU(True), nn.Dropout(),
            nn.Linear(32, 32), nn.ReLU(True), nn.Dropout(),
            nn.Linear(32, CLASSES),
        )

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.int64: 'I64'}


def write_safetensors(path, state, dtype):
    header, blobs, offset = {}, [], 0
    for name in sorted(state):
        t = state[name].detach().contiguous()
        if t.is_floating_point():
            t = t.to(dtype)
        if t.dtype == torch.bfloat16:
            data = t.view(torch.int16).numpy().tobytes()  # numpy has no bfloat16
        else:
            data = t.numpy().tobytes()
        header[name] = {'dtype': DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header['__metadata__'] = {'format': 'pt', 'cfg': json.dumps(CFG)}
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * (-len(text) % 8)  # the reference writer pads the header to 8 bytes
    assert sys.byteorder == 'little'
    path.write_bytes(struct.pack('<Q', len(text)) + text + b''.join(blobs))


def init_weights(model):
    """He-normal weights and small random biases, so that the logits are of order 1 (torch's default gives ~0.05)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
                m.bias.uniform_(-0.1, 0.1)
    return model


def rounded(model, dtype):
    """A float32 copy of the model whose parameters went through `dtype` (what a reader of that file gets)."""
    state = {k: (v.to(dtype).to(torch.float32) if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    copy = VGG(batch_norm=any('running_mean' in k for k in state))
    copy.load_state_dict(state)
    return copy.eval()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(2024)
    inputs = {
        '16': torch.round(torch.rand(2, 3, 16, 16, generator=gen) * 2000 - 1000) / 1000,
        '32': torch.round(torch.rand(1, 3, 32, 32, generator=gen) * 2000 - 1000) / 1000,
    }
    torch.manual_seed(7)
    plain = init_weights(VGG(batch_norm=False)).eval()
    bn = init_weights(VGG(batch_norm=True))
    with torch.no_grad():  # non-trivial batch-norm parameters and statistics
        for m in bn.features:
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(123)
    bn.eval()

    files = {
        'vgg-small.safetensors': (plain, torch.float32),
        'vgg-small-bn.safetensors': (bn, torch.float32),
        'vgg-small-bn-f16.safetensors': (bn, torch.float16),
        'vgg-small-bf16.safetensors': (plain, torch.bfloat16),
    }
    record = {
        'description': 'torchvision-style VGG, cfg [8, M, 16, M], AdaptiveAvgPool2d((4, 4)), classifier 256-32-32-10; '
                       'inputs are NCHW; logits of torch ' + torch.__version__ + ' in eval mode',
        'inputs': {k: {'shape': list(v.shape), 'data': [round(x, 3) for x in v.flatten().tolist()]} for k, v in inputs.items()},
        'logits': {},
    }
    for name, (model, dtype) in files.items():
        write_safetensors(OUT / name, model.state_dict(), dtype)
        reference = rounded(model, dtype)
        with torch.no_grad():
            record['logits'][name] = {k: reference(x).flatten().tolist() for k, x in inputs.items()}
    (OUT / 'vgg-small.json').write_text(json.dumps(record) + '\n')
    for p in sorted(OUT.iterdir()):
        print(f'{p.name}: {p.stat().st_size} bytes')


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""The fixture of the study tests: a small torchvision-style VGG with batch norm, trained in PyTorch on synthetic
two-class patches, saved as the users of the toolkit save theirs, and the patches as an image folder.

  /usr/bin/python3 packages/study/fixtures-src/make-study-fixture.py     (Debian's python3-torch, torchvision)

Writes packages/study/test/fixtures/:
  vgg-bn-2class.pth     torch.save(model.state_dict()) of VGG(make_layers([8, 'M', 16, 'M', 16, 'M'],
                        batch_norm=True)) with a classifier 16*7*7 -> 24 -> 24 -> 2 (torchvision's module names,
                        features.N / classifier.N), trained 30 epochs with Adam on 48x48 patches
  patches/mitosis/*.png 24 patches: a dark, round, ragged blob near the centre on pink "tissue" (the mitotic figure)
  patches/normal/*.png  24 patches: the same tissue with pale, oval nuclei only
  expected.json         the model's accuracy on the patches as PyTorch computes it (ImageNet normalisation)
The patches are synthetic, seeded and small (48x48 RGB PNG); nothing is downloaded.
"""
import json
import math
import random
import struct
import sys
import zlib
from pathlib import Path

import torch
from torch import nn
from torchvision.models.vgg import VGG, make_layers

OUT = Path(__file__).resolve().parent.parent / 'test' / 'fixtures'
SIZE = 48
PER_CLASS = 24
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def png(path, pixels):
    """A minimal RGB PNG writer (no PIL needed)."""
    raw = b''.join(b'\x00' + bytes(v for px in row for v in px) for row in pixels)

    def chunk(kind, data):
        c = struct.pack('>I', len(data)) + kind + data
        return c + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)

    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', SIZE, SIZE, 8, 2, 0, 0, 0))
    data += chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')
    path.write_bytes(data)


def patch(rng, mitosis):
    """Pink tissue with pale nuclei; a mitosis patch has a dark ragged blob near the centre."""
    img = [[[235 + rng.randint(-12, 8), 190 + rng.randint(-15, 10), 215 + rng.randint(-12, 8)] for _ in range(SIZE)]
           for _ in range(SIZE)]

    def blob(cx, cy, rx, ry, colour, ragged):
        for y in range(SIZE):
            for x in range(SIZE):
                a = math.atan2(y - cy, x - cx)
                r = 1 + (0.35 * math.sin(5 * a + ragged) if ragged is not None else 0)
                if ((x - cx) / (rx * r)) ** 2 + ((y - cy) / (ry * r)) ** 2 <= 1:
                    img[y][x] = [max(0, min(255, c + rng.randint(-10, 10))) for c in colour]

    for _ in range(rng.randint(3, 5)):  # pale oval nuclei anywhere
        blob(rng.uniform(4, SIZE - 4), rng.uniform(4, SIZE - 4), rng.uniform(3, 5), rng.uniform(2, 4),
             [170, 140, 200], None)
    if mitosis:
        c = SIZE / 2
        blob(c + rng.uniform(-6, 6), c + rng.uniform(-6, 6), rng.uniform(5, 7), rng.uniform(5, 7),
             [60, 30, 90], rng.uniform(0, 6.28))
    return img


def tensor(img):
    t = torch.tensor(img, dtype=torch.float32).permute(2, 0, 1) / 255
    return (t - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def main():
    torch.manual_seed(0)
    rng = random.Random(7)
    images, labels = [], []
    for cls, name in enumerate(['mitosis', 'normal']):
        folder = OUT / 'patches' / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(PER_CLASS):
            img = patch(rng, mitosis=(name == 'mitosis'))
            png(folder / f'{name}-{i:02d}.png', img)
            images.append(tensor(img))
            labels.append(cls)
    x = torch.stack(images)
    y = torch.tensor(labels)
    model = VGG(make_layers([8, 'M', 16, 'M', 16, 'M'], batch_norm=True), num_classes=2, init_weights=True)
    model.classifier = nn.Sequential(
        nn.Linear(16 * 7 * 7, 24), nn.ReLU(True), nn.Dropout(),
        nn.Linear(24, 24), nn.ReLU(True), nn.Dropout(),
        nn.Linear(24, 2),
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(30):
        model.train()
        perm = torch.randperm(len(y))
        for b in range(0, len(y), 8):
            idx = perm[b:b + 8]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    torch.save(model.state_dict(), OUT / 'vgg-bn-2class.pth')
    (OUT / 'expected.json').write_text(json.dumps({'accuracy': accuracy, 'classes': ['mitosis', 'normal'],
                                                    'size': SIZE, 'torch': torch.__version__}, indent=2) + '\n')
    print(f'accuracy {accuracy:.3f}', file=sys.stderr)


if __name__ == '__main__':
    main()

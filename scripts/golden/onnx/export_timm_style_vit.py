#!/usr/bin/env python3
"""A timm-style ViT (timm's `VisionTransformer` layout, written out here: timm is not packaged for Debian), exported
by torch.onnx.export (Debian torch 1.13, opsets 17 and 11), to test that the ONNX ViT reader takes timm's attention
layout too. Beside it, `timm_style_vit.json`: an input (torch.manual_seed(7), NHWC) and PyTorch's logits.

    /usr/bin/python3 scripts/golden/onnx/export_timm_style_vit.py packages/models/test/fixtures/onnx

What differs from torchvision's graph: `patch_embed.proj` then flatten(2).transpose(1, 2); the class token
concatenated after `expand`; per block `norm1`, ONE `qkv` Linear on [batch, tokens, features] reshaped to
[B, N, 3, heads, d] and permuted (2, 0, 3, 1, 4), q, k, v taken by Gather (unbind), q * scale, `q @ k.transpose(-2,
-1)`, softmax, `@ v`, transpose(1, 2).reshape(B, N, C), `proj`; `norm2`, `mlp.fc1`, GELU, `mlp.fc2`; the final
`norm`, `x[:, 0]`, `head`. Weights are seeded (torch.manual_seed(0)), scaled so that attention is not uniform.
"""
import json
import os
import sys

import onnx
import torch
from torch import nn

torch.set_num_threads(1)
torch.manual_seed(0)
OUT = sys.argv[1] if len(sys.argv) > 1 else 'packages/models/test/fixtures/onnx'


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TimmStyleViT(nn.Module):
    def __init__(self, size=16, patch=4, dim=16, depth=2, heads=2, hidden=32, classes=5):
        super().__init__()
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


os.makedirs(OUT, exist_ok=True)
model = TimmStyleViT().eval()
with torch.no_grad():  # larger q/k weights than nn.Linear's default, so the softmax is far from uniform
    for b in model.blocks:
        b.attn.qkv.weight.mul_(4)
torch.manual_seed(7)
x = torch.randn(2, 3, 16, 16)
with torch.no_grad():
    logits = model(x)
with open(f'{OUT}/timm_style_vit.json', 'w') as f:
    json.dump({'input': {'shape': [2, 16, 16, 3], 'data': x.permute(0, 2, 3, 1).reshape(-1).tolist()},
               'logits': {'shape': list(logits.shape), 'data': logits.reshape(-1).tolist()}}, f)
# opset 17 (Split sizes and Squeeze axes as inputs) and opset 11 (as attributes, Softmax's pre-13 semantics)
for opset, path in ((17, f'{OUT}/timm_style_vit.onnx'), (11, f'{OUT}/timm_style_vit.opset11.onnx')):
    torch.onnx.export(model, torch.zeros(1, 3, 16, 16), path, opset_version=opset, input_names=['input'],
                      output_names=['logits'], do_constant_folding=False,
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    print(path, os.path.getsize(path), 'bytes;', sorted({n.op_type for n in m.graph.node}))

#!/usr/bin/env python3
"""Golden values of AttnLRP and CP-LRP on a small Vision Transformer, computed with LXT's explicit rules.

Usage (Debian's python3 with python3-torch; LXT from its public repository, not installed, not vendored):

    git clone https://github.com/rachtibat/LRP-eXplains-Transformers /tmp/lxt   # or any export of it
    /usr/bin/python3 scripts/golden/lxt_vit.py --lxt /tmp/lxt --out vendor/reference/vit

Why a ViT built here and not LXT's own model wrappers: `lxt.explicit.core` traces models with transformers' HFTracer
and `lxt.explicit.rules` imports `torch.func`, which need PyTorch >= 2.0; Debian bookworm has 1.13. The rules
themselves are plain autograd Functions, so this script imports them from the LXT source and writes the ViT
forward pass with them, the way LXT's own explicit models do (lxt/explicit/models/bert.py: `lf.linear_epsilon`,
`lf.layer_norm`, `lf.matmul`, `lf.mul2` by the constant 1/sqrt(d), `lf.softmax`, `lf.add2`; the identity rule on
GELU; CP-LRP as `lxt.explicit.special.multi_head_attention_cp`: queries and keys without gradient, the values
through `epsilon_lrp(torch.matmul, 1e-6, attention.detach(), v)`). `torch.func` is given functorch (shipped with
Debian's torch 1.13) so that `lxt.explicit.rules` imports; the functions used here do not call it. The patch
embedding (a strided conv) gets `epsilon_lrp` with epsilon 1e-6, the same rule as `linear_epsilon`.

The model follows torchvision's VisionTransformer layer for layer (conv_proj, class_token, encoder.pos_embedding,
encoder.layers.encoder_layer_N.{ln_1, self_attention, ln_2, mlp.0/mlp.3}, encoder.ln, heads.head, LayerNorm eps
1e-6), with random seeded weights. Writes one JSON file per case and a model file (TF.js layouts), see README.md
beside the output.
"""
import argparse
import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

FORMAT = 'vit-golden/1'


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--lxt', required=True, help='directory of the LXT source (holds lxt/explicit/functional.py)')
    p.add_argument('--out', required=True, help='output directory, e.g. vendor/reference/vit')
    p.add_argument('--pth', default=None,
                   help='also save the model as a torchvision VisionTransformer state dict (torch.save) at this path')
    p.add_argument('--vit-b-16', default=None, metavar='DIR',
                   help='also write vit_b_16 cases (224 pixels, weights from a seeded formula, computed in float64; '
                        'about two minutes) into DIR (not vendored: see vendor/reference/vit/README.md)')
    p.add_argument('--lxt-commit', default=None, help='the LXT commit exported (default: git rev-parse in --lxt)')
    return p.parse_args()


lf = lr = None  # lxt.explicit.functional and lxt.explicit.rules, imported from the source by import_lxt


def import_lxt(path):
    """Imports LXT's explicit rules from its source tree at `path` (also used by bench/anchors/lxt_vit.py)."""
    global lf, lr
    sys.path.insert(0, path)
    import functorch  # Debian torch 1.13 ships it; LXT's rules.py imports its API as torch.func

    sys.modules.setdefault('torch.func', functorch)
    import lxt.explicit.functional as functional
    import lxt.explicit.rules as rules
    lf, lr = functional, rules


# the small ViT: 16x16 RGB, 4x4 patches (16 tokens + class token), width 16, 2 heads, MLP 32, 2 blocks, 5 classes
CONFIG = dict(imageSize=16, patchSize=4, hiddenDim=16, numHeads=2, mlpDim=32, numLayers=2, numClasses=5,
              layerNormEpsilon=1e-6)


def make_weights(seed):
    g = torch.Generator().manual_seed(seed)
    c = CONFIG
    d, m, p = c['hiddenDim'], c['mlpDim'], c['patchSize']
    tokens = (c['imageSize'] // p) ** 2 + 1

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).float()

    w = {
        'conv_proj.weight': randn(d, 3, p, p, scale=math.sqrt(1 / (3 * p * p))),
        'conv_proj.bias': randn(d, scale=0.1),
        'class_token': randn(1, 1, d, scale=0.5),
        'encoder.pos_embedding': randn(1, tokens, d, scale=0.5),
    }
    for i in range(c['numLayers']):
        b = f'encoder.layers.encoder_layer_{i}.'
        w[b + 'ln_1.weight'] = 1 + randn(d, scale=0.1)
        w[b + 'ln_1.bias'] = randn(d, scale=0.1)
        # queries and keys a little larger so that the attention is not uniform
        w[b + 'self_attention.in_proj_weight'] = torch.cat([
            randn(d, d, scale=2 / math.sqrt(d)), randn(d, d, scale=2 / math.sqrt(d)), randn(d, d, scale=1 / math.sqrt(d))])
        w[b + 'self_attention.in_proj_bias'] = randn(3 * d, scale=0.1)
        w[b + 'self_attention.out_proj.weight'] = randn(d, d, scale=1 / math.sqrt(d))
        w[b + 'self_attention.out_proj.bias'] = randn(d, scale=0.1)
        w[b + 'ln_2.weight'] = 1 + randn(d, scale=0.1)
        w[b + 'ln_2.bias'] = randn(d, scale=0.1)
        w[b + 'mlp.0.weight'] = randn(m, d, scale=math.sqrt(2 / d))
        w[b + 'mlp.0.bias'] = randn(m, scale=0.1)
        w[b + 'mlp.3.weight'] = randn(d, m, scale=math.sqrt(1 / m))
        w[b + 'mlp.3.bias'] = randn(d, scale=0.1)
    w['encoder.ln.weight'] = 1 + randn(d, scale=0.1)
    w['encoder.ln.bias'] = randn(d, scale=0.1)
    w['heads.head.weight'] = randn(c['numClasses'], d, scale=math.sqrt(1 / d))
    w['heads.head.bias'] = randn(c['numClasses'], scale=0.1)
    return w


def forward(w, x, mode, taps, c=None):
    """The ViT with LXT's rules. mode: 'attn_lrp' or 'cp_lrp'. `taps[name] = tensor` records the intermediate
    outputs named as the TF.js graph names its nodes (their .grad after backward is LXT's relevance there)."""
    c = c or CONFIG
    d, h, p, eps = c['hiddenDim'], c['numHeads'], c['patchSize'], c['layerNormEpsilon']
    dh = d // h
    n = x.shape[0]

    def tap(name, t):
        t.retain_grad()
        taps[name] = t
        return t

    t = lr.epsilon_lrp(lambda inp: F.conv2d(inp, w['conv_proj.weight'], w['conv_proj.bias'], stride=p), 1e-6, x)
    t = t.reshape(n, d, -1).permute(0, 2, 1)
    t = torch.cat([w['class_token'].expand(n, -1, -1), t], dim=1)
    t = tap('encoder.pos_embedding', lf.add2(t, w['encoder.pos_embedding']))
    tokens = t.shape[1]
    for i in range(c['numLayers']):
        b = f'encoder.layers.encoder_layer_{i}.'
        y = tap(b + 'ln_1', lf.layer_norm(t, w[b + 'ln_1.weight'], w[b + 'ln_1.bias'], eps))
        wq, wk, wv = w[b + 'self_attention.in_proj_weight'].chunk(3)
        bq, bk, bv = w[b + 'self_attention.in_proj_bias'].chunk(3)

        def heads(z):
            return z.reshape(n, tokens, h, dh).permute(0, 2, 1, 3)

        if mode == 'attn_lrp':
            q = heads(lf.linear_epsilon(y, wq, bq))
            k = heads(lf.linear_epsilon(y, wk, bk))
            v = heads(lf.linear_epsilon(y, wv, bv))
            scores = lf.mul2(lf.matmul(q, k.transpose(-1, -2)), 1 / math.sqrt(dh))
            attention = tap(b + 'self_attention.softmax', lf.softmax(scores, -1))
            context = lf.matmul(attention, v)
        else:
            with torch.no_grad():
                q = heads(F.linear(y, wq, bq))
                k = heads(F.linear(y, wk, bk))
                attention = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh), -1)
            v = heads(lf.linear_epsilon(y, wv, bv))
            context = lr.epsilon_lrp(torch.matmul, 1e-6, attention.detach(), v)
        context = tap(b + 'self_attention.context', context)
        merged = context.permute(0, 2, 1, 3).reshape(n, tokens, d)
        out = lf.linear_epsilon(merged, w[b + 'self_attention.out_proj.weight'], w[b + 'self_attention.out_proj.bias'])
        t = tap(b + 'add_1', lf.add2(t, out))
        y = lf.layer_norm(t, w[b + 'ln_2.weight'], w[b + 'ln_2.bias'], eps)
        y = tap(b + 'mlp.1', lr.identity(F.gelu, lf.linear_epsilon(y, w[b + 'mlp.0.weight'], w[b + 'mlp.0.bias'])))
        y = lf.linear_epsilon(y, w[b + 'mlp.3.weight'], w[b + 'mlp.3.bias'])
        t = tap(b + 'add_2', lf.add2(t, y))
    t = tap('encoder.ln', lf.layer_norm(t, w['encoder.ln.weight'], w['encoder.ln.bias'], eps))
    return lf.linear_epsilon(t[:, 0], w['heads.head.weight'], w['heads.head.bias'])


def plain_forward(w, x):
    """torch's own modules (no LXT): the logits the TF.js model must reproduce."""
    c = CONFIG
    d, h, p, eps = c['hiddenDim'], c['numHeads'], c['patchSize'], c['layerNormEpsilon']
    n = x.shape[0]
    t = F.conv2d(x, w['conv_proj.weight'], w['conv_proj.bias'], stride=p).reshape(n, d, -1).permute(0, 2, 1)
    t = torch.cat([w['class_token'].expand(n, -1, -1), t], dim=1) + w['encoder.pos_embedding']
    for i in range(c['numLayers']):
        b = f'encoder.layers.encoder_layer_{i}.'
        y = F.layer_norm(t, (d,), w[b + 'ln_1.weight'], w[b + 'ln_1.bias'], eps).transpose(0, 1)
        y, _ = F.multi_head_attention_forward(
            y, y, y, d, h, w[b + 'self_attention.in_proj_weight'], w[b + 'self_attention.in_proj_bias'], None, None,
            False, 0.0, w[b + 'self_attention.out_proj.weight'], w[b + 'self_attention.out_proj.bias'],
            training=False, need_weights=False)
        t = t + y.transpose(0, 1)
        y = F.layer_norm(t, (d,), w[b + 'ln_2.weight'], w[b + 'ln_2.bias'], eps)
        y = F.linear(F.gelu(F.linear(y, w[b + 'mlp.0.weight'], w[b + 'mlp.0.bias'])), w[b + 'mlp.3.weight'],
                     w[b + 'mlp.3.bias'])
        t = t + y
    t = F.layer_norm(t, (d,), w['encoder.ln.weight'], w['encoder.ln.bias'], eps)
    return F.linear(t[:, 0], w['heads.head.weight'], w['heads.head.bias'])


def f32(values):
    """Shortest decimals that round-trip to the same float32 (as the zennit reference set writes them)."""
    return [float(np.format_float_positional(np.float32(v), unique=True, trim='-')) for v in values]


def tensor(t, layout):
    a = t.detach().cpu().numpy().astype(np.float32)
    return {'layout': layout, 'shape': list(a.shape), 'data': f32(a.reshape(-1))}


def nhwc(t):
    return tensor(t.permute(0, 2, 3, 1), 'NHWC')


def model_json(w):
    """Weights in TF.js layouts: conv [kh, kw, in, out], dense [in, out], q/k/v split from in_proj."""
    out = {}
    for k, v in w.items():
        if k == 'conv_proj.weight':
            out[k] = tensor(v.permute(2, 3, 1, 0), 'HWIO')
        elif k.endswith('in_proj_weight'):
            for name, part in zip(('q_proj', 'k_proj', 'v_proj'), v.chunk(3)):
                out[k.replace('in_proj_weight', name + '.weight')] = tensor(part.t(), 'IO')
        elif k.endswith('in_proj_bias'):
            for name, part in zip(('q_proj', 'k_proj', 'v_proj'), v.chunk(3)):
                out[k.replace('in_proj_bias', name + '.bias')] = tensor(part, 'O')
        elif v.dim() == 2:
            out[k] = tensor(v.t(), 'IO')
        else:
            out[k] = tensor(v, 'plain')
    return out


def run_case(w, x, targets, mode, condition=None, c=None):
    """One attribution: relevance at the input and at every tap. With a CRP condition (layer, mask), as
    zennit-crp with exclude_parallel=True (its default): relevance runs from the output down to the layer, is
    multiplied by the mask there, and only that masked relevance goes on down (relevance that bypasses the layer
    through the residual stream is dropped); the condition's own layer is not reported."""
    taps = {}
    xi = x.clone().requires_grad_(True)
    logits = forward(w, xi, mode, taps, c)
    init = F.one_hot(torch.tensor(targets), (c or CONFIG)['numClasses']).float() * logits.detach()
    if condition is None:
        logits.backward(init)
        return logits.detach(), xi.grad.detach(), {name: t.grad for name, t in taps.items()}
    layer, mask = condition
    names = list(taps)
    # taps are recorded in forward order; in this ViT every tap after the layer lies above it
    above = names[names.index(layer) + 1:]
    below = names[:names.index(layer)]
    got = torch.autograd.grad(logits, [taps[n] for n in above] + [taps[layer]], init, retain_graph=True)
    rel = dict(zip(above, got[:-1]))
    down = torch.autograd.grad(taps[layer], [xi] + [taps[n] for n in below], got[-1] * mask)
    rel.update(zip(below, down[1:]))
    return logits.detach(), down[0].detach(), rel


def fnv1a(text):
    h = 0x811c9dc5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xffffffff
    return h


def formula(name, shape, scale, offset=0.0):
    """The seeded formula both sides compute exactly (32-bit integer arithmetic, then float64, then float32):
    element i (row-major, torchvision's layout) is offset + scale * (2 u - 1), u = lowbias32((fnv1a(name) + i *
    0x9e3779b9) mod 2^32) / 2^32 (lowbias32: x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b;
    x ^= x >> 16, all mod 2^32)."""
    n = int(np.prod(shape))
    m = np.uint64(0xffffffff)
    x = (np.uint64(fnv1a(name)) + np.arange(n, dtype=np.uint64) * np.uint64(0x9e3779b9)) & m
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7feb352d)) & m
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846ca68b)) & m
    x ^= x >> np.uint64(16)
    u = x.astype(np.float64) / 4294967296.0
    v = offset + scale * (2 * u - 1)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def formula_weights(c):
    """torchvision's vit state dict with every tensor from `formula`; the scales are in FORMULA_SCALES below."""
    d, m, p = c['hiddenDim'], c['mlpDim'], c['patchSize']
    tokens = (c['imageSize'] // p) ** 2 + 1
    shapes = {'class_token': (1, 1, d), 'conv_proj.weight': (d, 3, p, p), 'conv_proj.bias': (d,),
              'encoder.pos_embedding': (1, tokens, d)}
    for i in range(c['numLayers']):
        b = f'encoder.layers.encoder_layer_{i}.'
        shapes.update({b + 'ln_1.weight': (d,), b + 'ln_1.bias': (d,),
                       b + 'self_attention.in_proj_weight': (3 * d, d), b + 'self_attention.in_proj_bias': (3 * d,),
                       b + 'self_attention.out_proj.weight': (d, d), b + 'self_attention.out_proj.bias': (d,),
                       b + 'ln_2.weight': (d,), b + 'ln_2.bias': (d,), b + 'mlp.0.weight': (m, d), b + 'mlp.0.bias': (m,),
                       b + 'mlp.3.weight': (d, m), b + 'mlp.3.bias': (d,)})
    shapes.update({'encoder.ln.weight': (d,), 'encoder.ln.bias': (d,), 'heads.head.weight': (c['numClasses'], d),
                   'heads.head.bias': (c['numClasses'],)})
    w = {}
    for name, shape in shapes.items():
        if name.endswith('ln_1.weight') or name.endswith('ln_2.weight') or name == 'encoder.ln.weight':
            w[name] = formula(name, shape, 0.1, 1.0)
        elif name.endswith('bias'):
            w[name] = formula(name, shape, 0.05)
        elif name in ('class_token', 'encoder.pos_embedding'):
            w[name] = formula(name, shape, 0.5)
        else:
            fan_in = int(np.prod(shape[1:]))
            # uniform with standard deviation 1 / sqrt(fan_in); queries and keys twice that, so that the attention
            # is not uniform
            w[name] = formula(name, shape, (2.0 if 'in_proj' in name else 1.0) * math.sqrt(3 / fan_in))
    return w


def rel_l2(ours, golden):
    return float((ours - golden).norm() / golden.norm())


def max_rel(ours, golden):
    return float((ours - golden).abs().max() / golden.abs().max())


# A float32 engine's tolerance on the vit_b_16 cases, as a multiple of PyTorch's own float32 error on the same case
# (the worse of two summation orders, see vit_b_16_cases), never below the reference set's 1e-4.
FLOAT32_FACTOR = 3.0


VIT_B_16_CONFIG = dict(imageSize=224, patchSize=16, hiddenDim=768, numHeads=12, mlpDim=3072, numLayers=12,
                       numClasses=1000, layerNormEpsilon=1e-6)
VIT_B_16_BLOCKS = ['encoder.pos_embedding'] + [f'encoder.layers.encoder_layer_{i}.add_2' for i in range(12)]


def vit_b_16_runs():
    """The vit_b_16 cases: (id, composite, CRP condition (layer, mask) or None, the condition as the case states it)."""
    last = 'encoder.layers.encoder_layer_11.'
    neuron_mask = torch.zeros(3072)
    neuron_mask[42] = 1
    head_mask = torch.zeros(1, 12, 1, 1)
    head_mask[0, 5] = 1
    return [('attn_lrp__vit_b_16', 'attn_lrp', None, None),
            ('cp_lrp__vit_b_16', 'cp_lrp', None, None),
            ('crp_mlp_neuron__vit_b_16', 'attn_lrp', (last + 'mlp.1', neuron_mask),
             {'layer': last + 'mlp.1', 'axis': -1, 'index': 42, 'what': 'MLP neuron (GELU output, all tokens)'}),
            ('crp_head__vit_b_16', 'attn_lrp', (last + 'self_attention.context', head_mask),
             {'layer': last + 'self_attention.context', 'axis': 1, 'index': 5,
              'what': 'attention head (attention-weighted values [batch, head, token, d])'})]


def compared(logits, relevance, rel):
    """The tensors a vit_b_16 case compares: logits, heatmap, relevance per token after the position embedding and
    after every block (of the first image)."""
    return {'logits': logits[:1], 'heatmap': relevance[:1].sum(1),
            **{k + ' per token': rel[k][:1].sum(-1) for k in VIT_B_16_BLOCKS if rel.get(k) is not None}}


def vit_b_16_cases(out):
    """vit_b_16 at 224 pixels, weights and the image from the formula: AttnLRP and CP-LRP heatmaps, relevance per
    token after the position embedding and after every block, CRP on an MLP neuron and on a head of block 11.

    Computed in float64: LXT's stabiliser is z + eps without a sign, so wherever a denominator's true value lies
    within float32's rounding noise of -eps (an output of LayerNorm, of a Linear or a sum near -1e-6), a float32 run
    divides by almost zero there and that element's relevance is amplified; at this width and depth a few such
    elements exist, and where float32 noise puts them is a matter of summation order. PyTorch's own float32
    result is therefore not a reference: each case records PyTorch float32's error against the float64 golden
    values for two summation orders (the image alone, and the image twice in one batch), per compared tensor, and
    the tolerance a float32 engine is held to: FLOAT32_FACTOR times the worse of the two (relative L2 error for the
    heatmap and the per-token relevance, max |diff| / max |golden| for the logits), at least 1e-4."""
    c = VIT_B_16_CONFIG
    w32 = formula_weights(c)
    w = {k: v.double() for k, v in w32.items()}
    # the image: formula('input', NHWC, 1.5), in NHWC row-major order
    x32 = formula('input', (1, 224, 224, 3), 1.5).permute(0, 3, 1, 2).contiguous()
    x = x32.double()
    import torchvision
    tv = torchvision.models.vit_b_16().double().eval()
    tv.load_state_dict(w, strict=True)
    with torch.no_grad():
        plain = tv(x)
    target = [int(plain[0].argmax())]
    with open(os.path.join(out, 'vit_b_16_formula.json'), 'w') as f:
        json.dump({'format': FORMAT, 'name': 'vit_b_16_formula', 'config': c,
                   'formula': {'name': 'lowbias32', 'input': {'name': 'input', 'scale': 1.5},
                               'text': 'see scripts/golden/lxt_vit.py: formula, formula_weights'}}, f, indent=1)
    blocks = VIT_B_16_BLOCKS
    written = []
    for case_id, mode, condition, described in vit_b_16_runs():
        logits, relevance, rel = run_case(w, x, target, mode, condition, c)
        assert torch.allclose(logits, plain, atol=1e-4 * plain.abs().max()), (logits - plain).abs().max()
        golden = compared(logits, relevance, rel)
        # PyTorch float32 on the same case, two summation orders: the image alone, and twice in one batch
        float32 = {}
        for order, images in (('batch1', x32), ('batch2', torch.cat([x32, x32]))):
            mask = None if condition is None else (condition[0], condition[1].float())
            got = compared(*run_case(w32, images, target * images.shape[0], mode, mask, c))
            for name, g in golden.items():
                o = got[name].double()
                d = float32.setdefault(name, {'maxRelative': 0.0, 'relativeL2': 0.0})
                d['maxRelative'] = max(d['maxRelative'], max_rel(o, g))
                d['relativeL2'] = max(d['relativeL2'], rel_l2(o, g))
        tolerance = {name: ({'metric': 'maxRelative', 'value': max(1e-4, FLOAT32_FACTOR * d['maxRelative'])}
                            if name == 'logits' else
                            {'metric': 'relativeL2', 'value': max(1e-4, FLOAT32_FACTOR * d['relativeL2'])})
                     for name, d in float32.items()}
        case = {'format': FORMAT, 'id': case_id, 'kind': 'vit', 'model': 'vit_b_16_formula', 'composite': mode,
                'targets': target, 'logits': tensor(plain, 'NC'), 'heatmap': tensor(relevance.sum(1), 'NHW'),
                'tokenRelevance': {k: tensor(rel[k].sum(-1), 'NT') for k in blocks if rel.get(k) is not None},
                'relevanceSums': {'input': f32(relevance.sum((1, 2, 3)))},
                'float32': {'factor': FLOAT32_FACTOR, 'pytorchDeviation': float32, 'tolerance': tolerance}}
        if described is not None:
            case['condition'] = described
        with open(os.path.join(out, 'cases', case_id + '.json'), 'w') as f:
            json.dump(case, f, separators=(',', ':'))
        written.append({'id': case_id, 'kind': 'vit', 'model': 'vit_b_16_formula', 'file': f'cases/{case_id}.json'})
        print(case_id, 'target', target, 'input sum', float(relevance.sum()),
              'pytorch float32 heatmap rel L2', float32['heatmap']['relativeL2'], flush=True)
    return written


def lxt_provenance(lxt, commit=None):
    """The versions behind the numbers: LXT's commit and the SHA-256 of its explicit rules, torch, numpy, Python."""
    commit = commit or subprocess.run(['git', '-C', lxt, 'rev-parse', 'HEAD'], capture_output=True,
                                      text=True).stdout.strip()
    src = hashlib.sha256()
    for rel_path in ('lxt/explicit/functional.py', 'lxt/explicit/rules.py', 'lxt/explicit/special.py'):
        with open(os.path.join(lxt, rel_path), 'rb') as f:
            src.update(f.read())
    return {'lxt': {'commit': commit or 'unknown', 'explicitSourceSha256': src.hexdigest()},
            'torch': torch.__version__, 'numpy': np.__version__, 'python': sys.version.split()[0], 'torchThreads': 1}


def main():
    global ARGS
    ARGS = parse_args()
    import_lxt(ARGS.lxt)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = ARGS.out
    os.makedirs(os.path.join(out, 'cases'), exist_ok=True)
    w = make_weights(20240622)
    for v in w.values():
        v.requires_grad_(False)
    c = CONFIG
    model = {'format': FORMAT, 'name': 'tiny_vit', 'config': c, 'weights': model_json(w)}
    with open(os.path.join(out, 'tiny_vit.json'), 'w') as f:
        json.dump(model, f, separators=(',', ':'))

    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, c['imageSize'], c['imageSize'], generator=gen)
    plain = plain_forward(w, x)
    # the predicted class of the first image, the runner-up of the second
    targets = [int(plain[0].argmax()), int(plain[1].argsort()[-2])]
    cases = []
    block_outputs = [f'encoder.layers.encoder_layer_{i}.add_2' for i in range(c['numLayers'])]
    recorded = ['encoder.pos_embedding', 'encoder.ln'] + [
        f'encoder.layers.encoder_layer_{i}.{n}' for i in range(c['numLayers'])
        for n in ('ln_1', 'self_attention.context', 'add_1', 'mlp.1', 'add_2')]

    def write(case_id, mode, logits, relevance, rel, condition=None):
        case = {
            'format': FORMAT, 'id': case_id, 'kind': 'vit', 'model': 'tiny_vit', 'composite': mode,
            'input': nhwc(x), 'targets': targets, 'logits': tensor(plain, 'NC'),
            'logitsDuringAttribution': tensor(logits, 'NC'),
            'relevance': {'input': nhwc(relevance),
                          **{k: tensor(v, 'tokens') for k, v in rel.items() if k in recorded and v is not None}},
            'heatmap': tensor(relevance.sum(1), 'NHW'),
            'relevanceSums': {'input': f32(relevance.sum((1, 2, 3))),
                              **{k: f32(v.flatten(1).sum(1)) for k, v in rel.items() if k in block_outputs + ['encoder.pos_embedding']}},
        }
        if condition is not None:
            case['condition'] = condition
        with open(os.path.join(out, 'cases', case_id + '.json'), 'w') as f:
            json.dump(case, f, separators=(',', ':'))
        cases.append({'id': case_id, 'kind': 'vit', 'model': 'tiny_vit', 'file': f'cases/{case_id}.json'})

    if ARGS.pth:
        # the same weights in torchvision's own module: its logits are the plain forward's, and its state dict is
        # what @crp/models' importTorchVit reads
        import torchvision
        tv = torchvision.models.VisionTransformer(
            image_size=c['imageSize'], patch_size=c['patchSize'], num_layers=c['numLayers'], num_heads=c['numHeads'],
            hidden_dim=c['hiddenDim'], mlp_dim=c['mlpDim'], num_classes=c['numClasses']).eval()
        tv.load_state_dict(w, strict=True)
        with torch.no_grad():
            assert torch.allclose(tv(x), plain, atol=1e-6), (tv(x) - plain).abs().max()
        torch.save(tv.state_dict(), ARGS.pth)

    for mode in ('attn_lrp', 'cp_lrp'):
        logits, relevance, rel = run_case(w, x, targets, mode)
        assert torch.allclose(logits, plain, atol=1e-5), (logits - plain).abs().max()
        write(f'{mode}__tiny_vit', mode, logits, relevance, rel)

    # CRP: one MLP neuron of the last block, one attention head of the last block
    last = f'encoder.layers.encoder_layer_{c["numLayers"] - 1}.'
    neuron = 7
    mask = torch.zeros(c['mlpDim'])
    mask[neuron] = 1
    logits, relevance, rel = run_case(w, x, targets, 'attn_lrp', (last + 'mlp.1', mask))
    write('crp_mlp_neuron__tiny_vit', 'attn_lrp', logits, relevance, rel,
          {'layer': last + 'mlp.1', 'axis': -1, 'index': neuron, 'what': 'MLP neuron (GELU output, all tokens)'})
    head = 1
    mask = torch.zeros(1, c['numHeads'], 1, 1)
    mask[0, head] = 1
    logits, relevance, rel = run_case(w, x, targets, 'attn_lrp', (last + 'self_attention.context', mask))
    write('crp_head__tiny_vit', 'attn_lrp', logits, relevance, rel,
          {'layer': last + 'self_attention.context', 'axis': 1, 'index': head,
           'what': 'attention head (attention-weighted values [batch, head, token, d])'})

    provenance = lxt_provenance(ARGS.lxt, ARGS.lxt_commit)
    if ARGS.vit_b_16:
        os.makedirs(os.path.join(ARGS.vit_b_16, 'cases'), exist_ok=True)
        large = vit_b_16_cases(ARGS.vit_b_16)
        with open(os.path.join(ARGS.vit_b_16, 'index.json'), 'w') as f:
            json.dump({'format': 'lrp-golden-index/1', 'split': 'vit_b_16',
                       'provenance': {**provenance, 'weights': 'formula', 'input': 'formula'},
                       'models': ['vit_b_16_formula.json'], 'cases': large}, f, indent=1)

    index = {
        'format': 'lrp-golden-index/1', 'split': 'vit',
        'provenance': {**provenance, 'weightsSeed': 20240622, 'inputSeed': 7},
        'models': ['tiny_vit.json'], 'cases': cases,
    }
    with open(os.path.join(out, 'index.json'), 'w') as f:
        json.dump(index, f, indent=1)
    for case in cases:
        print(case['id'])


if __name__ == '__main__':
    main()

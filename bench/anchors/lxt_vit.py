#!/usr/bin/env python3
"""The anchor of bench suite `vit`: LXT's explicit AttnLRP rules on Debian's PyTorch (CPU), timed in the same run.

    /usr/bin/python3 bench/anchors/lxt_vit.py --lxt <LXT source> [--threads N] [--runs 3] [--size 224]

Times (wall, milliseconds, median of --runs after --warmup untimed runs) on torchvision's vit_b_16 with the weights and image
of the seeded formula of scripts/golden/lxt_vit.py (the ViT written there with LXT's explicit functions, as LXT's
own explicit models are; see that script for why not LXT's model wrappers):

* `heatmapMs`: one AttnLRP heatmap (forward, backward of one_hot(target) * logits to the image);
* `crp1Ms`: CRP on one MLP neuron of the last block: a forward pass, a backward pass to the block, the mask, a
  backward pass down to the image (8 conditions one at a time cost 8 of these: LXT's LayerNorm rule frees its
  graph in the backward pass, so each condition needs its own forward pass);
* `crp8BatchedMs`: the same 8 conditions as zennit-crp runs them: the image repeated 8 times in one batch, one
  forward, one backward to the block, the masks, one backward down.

Prints one JSON line (also the CPU time of every timed run, `*CpuMs`; `peakRssMiB`: the process's peak resident memory; `threads`, `torch`).
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', '..', 'scripts', 'golden'))
import lxt_vit as g  # noqa: E402

NEURONS = [k * 7 for k in range(8)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--lxt', required=True, help='directory of the LXT source (holds lxt/explicit/functional.py)')
    p.add_argument('--threads', type=int, default=2, help='torch threads (the wasm backend uses the same number)')
    p.add_argument('--runs', type=int, default=3)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--quick', action='store_true', help='a 2-block ViT, to check that the script works')
    a = p.parse_args()
    g.import_lxt(a.lxt)
    torch.set_num_threads(a.threads)
    c = dict(imageSize=a.size, patchSize=16, hiddenDim=768, numHeads=12, mlpDim=3072, numLayers=2 if a.quick else 12,
             numClasses=1000, layerNormEpsilon=1e-6)
    last = f'encoder.layers.encoder_layer_{c["numLayers"] - 1}.'
    w = g.formula_weights(c)
    x = g.formula('input', (1, a.size, a.size, 3), 1.5).permute(0, 3, 1, 2).contiguous()

    def heatmap():
        xi = x.clone().requires_grad_(True)
        logits = g.forward(w, xi, 'attn_lrp', {}, c)
        init = F.one_hot(logits.argmax(-1), 1000).float() * logits.detach()
        logits.backward(init)
        return xi.grad.sum(1)

    def crp(images, masks):
        """One CRP attribution of `images` (a batch) with one mask per row at the block's MLP neurons."""
        xi = images.clone().requires_grad_(True)
        taps = {}
        logits = g.forward(w, xi, 'attn_lrp', taps, c)
        init = F.one_hot(logits.argmax(-1), 1000).float() * logits.detach()
        layer = taps[last + 'mlp.1']
        (r,) = torch.autograd.grad(logits, layer, init, retain_graph=True)
        (h,) = torch.autograd.grad(layer, xi, r * masks)
        return h.sum(1)

    def mask(rows):
        m = torch.zeros(len(rows), 1, c['mlpDim'])
        for i, k in enumerate(rows):
            m[i, 0, k] = 1
        return m

    def one():
        return crp(x, mask(NEURONS[:1]))

    # the 8 conditions on 8 copies of the image in one batch, as zennit-crp does
    def batched():
        return crp(x.repeat(len(NEURONS), 1, 1, 1), mask(NEURONS))

    def timed(fn):
        for _ in range(a.warmup):
            fn()
        runs, cpu = [], []
        for _ in range(a.runs):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            runs.append((time.perf_counter() - t0) * 1000)
            # CPU time of every thread of the process: on a loaded machine the wall time is mostly waiting
            cpu.append((time.process_time() - c0) * 1000)
        return sorted(runs)[len(runs) // 2], runs, cpu

    hm, hm_runs, hm_cpu = timed(heatmap)
    one_ms, one_runs, one_cpu = timed(one)
    batched_ms, batched_runs, batched_cpu = timed(batched)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({'heatmapMs': hm, 'heatmapRuns': hm_runs, 'heatmapCpuMs': hm_cpu, 'crp1Ms': one_ms,
                      'crp1Runs': one_runs, 'crp1CpuMs': one_cpu, 'crp8BatchedMs': batched_ms,
                      'crp8BatchedRuns': batched_runs, 'crp8BatchedCpuMs': batched_cpu, 'peakRssMiB': peak,
                      'threads': a.threads, 'torch': torch.__version__, 'layers': c['numLayers'],
                      'condition': last + 'mlp.1', 'neurons': NEURONS}))


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Anchor figures for the `resnet` bench suite: zennit and zennit-crp on PyTorch CPU, the same workloads, the same
hour. Prints one JSON object (milliseconds, medians of 3 timed runs after one warm-up):

    python3 bench/anchor/zennit_resnet.py --zennit <zennit>/src --crp <zennit-crp> [--model resnet50] [--size 224]

The bench runs it itself when CRP_ZENNIT_SRC and CRP_ZENNIT_CRP_SRC name the two source trees (the commits of
vendor/reference/PROVENANCE.md). Weights: the seeded formula of scripts/golden/make_resnet_golden.py.
"""
import argparse
import io
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'scripts', 'golden'))


def timed(fn, runs=3):
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--zennit', required=True)
    parser.add_argument('--crp', required=True)
    parser.add_argument('--model', default='resnet50')
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    args = parser.parse_args()
    sys.path.insert(0, args.zennit)
    sys.path.insert(0, args.crp)
    import torch
    import torchvision
    from crp.attribution import CondAttribution
    from make_resnet_golden import fill, formula_input
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer
    torch.set_num_threads(args.threads)
    model = fill(getattr(torchvision.models, args.model)(num_classes=10).eval(), 50)
    for p in model.parameters():
        p.requires_grad_(False)
    x = formula_input((1, 3, args.size, args.size), args.size)

    def heatmap():
        with Gradient(model, EpsilonPlusFlat(canonizers=[ResNetCanonizer()])) as attributor:
            attributor(x, torch.eye(10)[[0]])

    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    last = convs[-1]
    conditions = [{'y': [k % 3], last: [k * 7]} for k in range(8)]
    attribution = CondAttribution(model, no_param_grad=True)

    def crp8():
        attribution(x.clone().requires_grad_(True), conditions, EpsilonPlusFlat(canonizers=[ResNetCanonizer()]),
                    record_layer=convs)

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    data = buffer.getvalue()

    def load():
        torch.load(io.BytesIO(data))

    print(json.dumps({
        'model': args.model, 'size': args.size, 'threads': args.threads, 'torch': torch.__version__,
        'heatmapMs': timed(heatmap), 'crp8RecordAllConvsMs': timed(crp8), 'pthLoadMs': timed(load),
    }))


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Anchor figures for the `resnet` bench suite: zennit and zennit-crp on PyTorch CPU, the same workloads, in the
same run. Prints one JSON object (milliseconds: every timed run and their median, 3 runs after one warm-up, and the
load average before and after):

    /usr/bin/python3 bench/anchors/zennit_resnet.py --zennit <zennit>/src --crp <zennit-crp> [--model resnet50]
        [--size 224] [--threads 2]

The suite (bench/src/suites/resnet.ts) runs it itself before its own figures, with the threads of our backend; it
finds the sources through CRP_ZENNIT_SRC and CRP_ZENNIT_CRP_SRC or at /tmp/zennit/src and /tmp/zennit-crp (the
commits of vendor/reference/PROVENANCE.md; bench/README.md says how to get them). Weights: the seeded formula of
scripts/golden/make_resnet_golden.py (the same values as @crp/testing/torch-weights), 10 classes.
"""
import argparse
import io
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'scripts', 'golden'))


def timed(fn, runs=3, warmup=1):
    """`warmup` untimed calls, then `runs` timed ones: wall and CPU milliseconds of each, and the wall median."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    # CPU time of every thread of the process: on a loaded machine the wall time is mostly waiting for a core
    return {'median': statistics.median(times), 'runs': times, 'cpuMs': cpu}


def use_sources(zennit, crp):
    """Imports zennit and zennit-crp from their source trees (never installed ones)."""
    sys.path.insert(0, zennit)
    sys.path.insert(0, crp)


def load_average():
    return [round(x, 2) for x in os.getloadavg()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--zennit', required=True)
    parser.add_argument('--crp', required=True)
    parser.add_argument('--model', default='resnet50')
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    args = parser.parse_args()
    use_sources(args.zennit, args.crp)
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

    start = load_average()
    figures = {'heatmapMs': timed(heatmap), 'crp8RecordAllConvsMs': timed(crp8), 'pthLoadMs': timed(load)}
    print(json.dumps({
        'model': args.model, 'size': args.size, 'threads': args.threads, 'torch': torch.__version__,
        'loadAverage': {'start': start, 'end': load_average()},
        **figures,
    }))


if __name__ == '__main__':
    main()

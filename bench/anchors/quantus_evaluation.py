#!/usr/bin/env python3
"""Anchor of the bench suite `evaluation`: the same two workloads in Quantus + zennit on PyTorch CPU, timed on this
machine in the same hour as `pnpm bench --only evaluation`, written to bench/anchors/quantus-evaluation.json (the
suite reads it for its notes).

  /usr/bin/python3 bench/anchors/quantus_evaluation.py --quantus /tmp/quantus --zennit /tmp/zennit/src [--threads 2]

Sources as for the golden values (scripts/golden/make-evaluation-golden.py): Quantus 0.6.0 and zennit 0.5.1 from
their public trees, Debian's python3-torch 1.13. Workloads (random He-normal weights, seeded; timing does not
depend on the values):
  * PixelFlipping on VGG16 (224x224x3, 1000 classes), one image, features_in_step 784: 192 steps (Quantus
    requires a divisor of 224 * 224; 768 = one 16x16 patch x 3 channels is not one, 784 is the nearest), softmax,
    baseline black, a precomputed explanation;
  * RegionPerturbation (most relevant first) on the same VGG16, image and explanation with 16x16 patches,
    `--regions` steps (default 196), one forward pass per step and one of the original;
  * Selectivity on the same VGG16, image and explanation with 16x16 patches: 196 steps (the issue's "pixel
    flipping in 16x16 patches"; Quantus's PixelFlipping has no patches), one forward pass per step as Quantus runs it;
  * MPRT cascading top-down over every layer of the small VGG (conv 32-32-M-64-64-M-128-M, dense 8192->128->10
    on 64x64x3), one image, explanations by zennit EpsilonPlusFlat (Gradient attributor).
Each time is the median of `--runs` runs (default 3) after a short warm-up (the same call on a few steps /
one layer), with the process's CPU time of each run; the machine's load average is recorded beside the times
(other work on the machine skews them). A run of some workloads (`--only`) keeps the others' figures in the file.
"""
import argparse
import os
import json
import statistics
import sys
import time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument('--quantus', required=True)
ap.add_argument('--zennit', required=True)
ap.add_argument('--threads', type=int, default=2)
ap.add_argument('--runs', type=int, default=3)
ap.add_argument('--regions', type=int, default=196, help='steps of the region-perturbation workload')
ap.add_argument('--only', help='comma-separated workloads to time: pixel-flipping, selectivity, region-perturbation, mprt (PixelFlipping on '
                'VGG16 takes about half an hour on 2 loaded cores)')
ap.add_argument('--out', default=str(Path(__file__).resolve().parent / 'quantus-evaluation.json'))
args = ap.parse_args()
WORKLOADS = ['pixel-flipping', 'selectivity', 'region-perturbation', 'mprt']
only = WORKLOADS if args.only is None else args.only.split(',')
if any(w not in WORKLOADS for w in only):
    ap.error(f'unknown workload in --only {args.only}; valid: {", ".join(WORKLOADS)}')
sys.path[:0] = [args.quantus, args.zennit]

# OpenMP threads that spin while they wait collapse when the machine is oversubscribed (shared: load 30 made
# MPRT 82 s wall / 8.7 s CPU instead of about 4 s / 0.7 s with PASSIVE); read by torch's OpenMP at import
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
import torchvision  # noqa: E402

import quantus  # noqa: E402
from zennit.attribution import Gradient  # noqa: E402
from zennit.composites import EpsilonPlusFlat  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(1)


def he(model):
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            nn.init.zeros_(m.bias)
    return model.eval()


def small_vgg():
    f = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(8192, 128), nn.ReLU(), nn.Linear(128, 10))
    return he(f)


def explain(model, inputs, targets, **kwargs):
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    out_classes = model(x[:1]).shape[1]
    with Gradient(model=model, composite=EpsilonPlusFlat()) as attributor:
        _, rel = attributor(x, torch.eye(out_classes)[torch.as_tensor(np.asarray(targets))])
    return rel.sum(1, keepdims=True).detach().numpy()


def timed(fn, warmup):
    """Wall and CPU time (process_time: every thread of the process) per run, with the load average and the
    time of day beside them: on a shared machine the claim is the ratio to ours measured in the same hour."""
    warmup()
    runs, cpu = [], []
    load = list(os.getloadavg())
    for _ in range(args.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {'medianMs': statistics.median(runs), 'runsMs': runs, 'medianCpuMs': statistics.median(cpu),
            'cpuMs': cpu, 'loadAverage': [load, list(os.getloadavg())], 'threads': args.threads,
            'ompWaitPolicy': os.environ.get('OMP_WAIT_POLICY', 'default'),
            'ranAt': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}


# a run merges into --out: the other workloads' figures are kept, each with its own ranAt, CPU times and load
results = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
kept_about = results.get('about') if args.only else None
rng = np.random.default_rng(7)

vgg16 = he(torchvision.models.vgg16())
x = rng.uniform(0, 1, (1, 3, 224, 224)).astype(np.float32)
a = rng.uniform(-1, 1, (1, 1, 224, 224)).astype(np.float32)
y = np.array([0])
pf = quantus.PixelFlipping(features_in_step=784, disable_warnings=True)
pf_warm = quantus.PixelFlipping(features_in_step=50176, disable_warnings=True)
if 'pixel-flipping' in only:
    print('PixelFlipping, VGG16, 192 steps...', file=sys.stderr)
    results['pixelFlippingVgg16'] = timed(
        lambda: pf(model=vgg16, x_batch=x, y_batch=y, a_batch=a.copy(), channel_first=True),
        lambda: pf_warm(model=vgg16, x_batch=x, y_batch=y, a_batch=a.copy(), channel_first=True))

sel = quantus.Selectivity(patch_size=16, disable_warnings=True)
sel_warm = quantus.Selectivity(patch_size=224, disable_warnings=True)
if 'selectivity' in only:
    print('Selectivity, VGG16, 16x16 patches (196 steps)...', file=sys.stderr)
    results['selectivityVgg16'] = timed(
        lambda: sel(model=vgg16, x_batch=x, y_batch=y, a_batch=a.copy(), channel_first=True),
        lambda: sel_warm(model=vgg16, x_batch=x, y_batch=y, a_batch=a.copy(), channel_first=True))

rp = quantus.RegionPerturbation(patch_size=16, regions_evaluation=args.regions, disable_warnings=True)
rp_warm = quantus.RegionPerturbation(patch_size=16, regions_evaluation=1, disable_warnings=True)
if 'region-perturbation' in only:
    print(f'RegionPerturbation, VGG16, 16x16 patches, {args.regions} steps...', file=sys.stderr)
    results['regionPerturbationVgg16'] = {
        **timed(lambda: rp(model=vgg16, x_batch=x, y_batch=y, a_batch=a.copy(), channel_first=True),
                lambda: rp_warm(model=vgg16, x_batch=x, y_batch=y, a_batch=a.copy(), channel_first=True)),
        'regions': args.regions}

small = small_vgg()
xs = rng.uniform(0, 1, (1, 3, 64, 64)).astype(np.float32)
mprt = quantus.MPRT(layer_order='top_down', disable_warnings=True)
mprt_warm = quantus.MPRT(layer_order='top_down', skip_layers=True, disable_warnings=True)
if 'mprt' in only:
    print('MPRT cascading, small VGG...', file=sys.stderr)
    results['mprtSmallVgg'] = timed(
        lambda: mprt(model=small, x_batch=xs, y_batch=np.array([3]), a_batch=None, channel_first=True,
                     explain_func=explain),
        lambda: mprt_warm(model=small, x_batch=xs, y_batch=np.array([3]), a_batch=None, channel_first=True,
                          explain_func=explain))

results['about'] = kept_about or {
    'loadAverage': list(os.getloadavg()), 'runs': args.runs,
    'quantus': quantus.__version__, 'torch': torch.__version__, 'threads': args.threads,
    'ranAt': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
    'pixelFlippingSteps': 192, 'selectivitySteps': 196, 'mprtLayers': 7,
}
Path(args.out).write_text(json.dumps(results, indent=2) + '\n')
print(json.dumps(results, indent=2))

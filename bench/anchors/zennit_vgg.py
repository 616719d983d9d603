#!/usr/bin/env python3
"""Anchor figures for the `lrp` and `crp` bench suites: zennit and zennit-crp on PyTorch CPU, the same workloads on
the same models, weights and images, in the same run. Prints one JSON object (milliseconds: every timed run, their
median and the CPU time of each run; the load average before and after) and, with --heatmaps, writes each
workload's heatmap as raw little-endian float32 for the suite to compare with its own:

    /usr/bin/python3 bench/anchors/zennit_vgg.py --zennit <zennit>/src --crp <zennit-crp> --suite lrp|crp
        [--threads 2] [--quick] [--heatmaps DIR]

The suites (bench/src/suites/lrp.ts and crp.ts) run it themselves before their own figures, with the threads of our
backend. Models: torchvision's vgg16 (1000 classes, 224 px) and the architecture of @crp/models' smallVgg (conv
32-32-M-64-64-M-128-M, Linear 8192->128->10, 64 px), weights of the seeded formula of
scripts/golden/make_resnet_golden.py (the values of @crp/testing/torch-weights, from which the suites build theirs:
benchVgg of bench/src/torch-fixtures.ts); images of its formula_input. `--quick` runs the small VGG only, as the
suites' --quick does.

Workloads (the suites' own):
- lrp: EpsilonPlusFlat heatmap of one VGG16 image for class 0 (and PyTorch's plain forward pass); the small VGG at
  batch 1 and 16 for class 3. The output relevance is the target's logit (one-hot times the output), as ours; the
  composite is registered once, outside the timed calls, as our Attributor is built once.
- crp: 8 conditions {y: [k % 3], <last conv>: [7k]}, k = 0..7, of one image, EpsilonPlusFlat, the relevance of
  every conv recorded (zennit-crp's record_layer): small VGG and VGG16.
"""
import argparse
import json
import os
import sys

# OpenMP threads that spin while they wait collapse on a shared machine (load 14: the small VGG's heatmap took
# 2,361 ms wall / 604 ms CPU at 2 threads, PASSIVE 194 / 82 ms); read by torch's OpenMP at import, as in
# quantus_evaluation.py
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
from zennit_resnet import load_average, timed, use_sources  # noqa: E402

SMALL_VGG_CFG = [32, 32, 'M', 64, 64, 'M', 128, 'M']
# seeds of the weights (BENCH_VGGS of bench/src/torch-fixtures.ts) and of the images (the IMAGE_SEED constants
# of the suites lrp.ts and crp.ts); the suites' heatmap comparison tells when the two sides drift apart
VGG16_SEED, SMALL_VGG_SEED = 1, 2
LRP_IMAGE_SEED, SMALL_IMAGE_SEED, CRP_IMAGE_SEED = 7, 11, 5


def small_vgg(torch, torchvision):
    class SmallVgg(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torchvision.models.vgg.make_layers(SMALL_VGG_CFG)
            self.classifier = torch.nn.Sequential(torch.nn.Linear(128 * 8 * 8, 128), torch.nn.ReLU(),
                                                  torch.nn.Linear(128, 10))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    return SmallVgg()


def vgg16(torch, torchvision):
    model = torchvision.models.vgg16(num_classes=1000)
    # at 224 px the adaptive pool is an identity, which our import leaves out; zennit's Norm rule on it would move
    # every relevance by its 1e-6 stabiliser
    model.avgpool = torch.nn.Identity()
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--zennit', required=True)
    parser.add_argument('--crp', required=True)
    parser.add_argument('--suite', required=True, choices=['lrp', 'crp'])
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--heatmaps', help='directory to write the heatmaps to (raw float32)')
    args = parser.parse_args()
    use_sources(args.zennit, args.crp)
    import torch
    import torchvision
    from crp.attribution import CondAttribution
    from make_resnet_golden import fill, formula_input
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonPlusFlat
    torch.set_num_threads(args.threads)

    def build(make, seed):
        model = fill(make(torch, torchvision).eval(), seed)
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    models = {'small_vgg_64': (build(small_vgg, SMALL_VGG_SEED), 64)}
    if not args.quick:
        models['vgg16_224'] = (build(vgg16, VGG16_SEED), 224)

    figures, heatmaps = {}, {}

    def keep(name, heatmap, layout):
        if args.heatmaps is None:
            return
        a = heatmap.detach().numpy().astype('<f4')
        path = os.path.join(args.heatmaps, f'{name}.f32')
        a.tofile(path)
        heatmaps[name] = {'file': path, 'shape': list(a.shape), 'layout': layout}

    start = load_average()
    if args.suite == 'lrp':
        def lrp(key, model, x, target, runs, warmup):
            classes = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1].out_features
            one_hot = torch.eye(classes)[[target] * x.shape[0]]
            # ours explains the target's logit: one-hot times the output
            with Gradient(model, EpsilonPlusFlat()) as attributor:
                figures[key] = timed(lambda: attributor(x, lambda out: out * one_hot), runs, warmup)
                keep(key, attributor(x, lambda out: out * one_hot)[1], 'NCHW')

        if 'vgg16_224' in models:
            model, size = models['vgg16_224']
            x = formula_input((1, 3, size, size), LRP_IMAGE_SEED)

            def forward():
                with torch.no_grad():
                    model(x)

            figures['vgg16_224.forward'] = timed(forward)
            lrp('vgg16_224.heatmap', model, x, 0, 3, 1)
        model, size = models['small_vgg_64']
        for batch, runs in ((1, 20), (16, 5)):
            x = formula_input((batch, 3, size, size), SMALL_IMAGE_SEED)
            lrp(f'small_vgg_64.heatmap.batch{batch}', model, x, 3, runs, 2)
    else:
        for key, (model, size) in models.items():
            convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
            conditions = [{'y': [k % 3], convs[-1]: [k * 7]} for k in range(8)]
            attribution = CondAttribution(model, no_param_grad=True)
            x = formula_input((1, 3, size, size), CRP_IMAGE_SEED)

            def crp8():
                return attribution(x.clone().requires_grad_(True), conditions, EpsilonPlusFlat(),
                                   record_layer=convs)

            figures[f'{key}.crp8'] = timed(crp8, 30 if key == 'small_vgg_64' else 3)
            keep(f'{key}.crp8', crp8().heatmap, 'NHW')
    print(json.dumps({
        'suite': args.suite, 'threads': args.threads, 'torch': torch.__version__,
        'ompWaitPolicy': os.environ['OMP_WAIT_POLICY'],
        'loadAverage': {'start': start, 'end': load_average()}, 'figures': figures, 'heatmaps': heatmaps,
    }))


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""How far PyTorch float32 lands from the vit_b_16 AttnLRP / CP-LRP golden values when the image moves by one ulp.

The vit_b_16 cases (lxt_vit.py, vit_b_16_cases) hold a float32 engine to 3x PyTorch float32's own error on two
summation orders. LXT's stabiliser z + eps has no sign, so a denominator whose float32 value lands at its pole (-eps)
divides by almost zero, and which float32 realization of the input lands where is luck. This script measures that
luck on PyTorch itself: the case on the image and on `--trials` copies with each pixel moved by at most one ulp
(seeded: up, down or kept, a third each; vit_b_16_conditioning.one_ulp_moves), all equally valid float32 inputs of
the same image (`formula.input` of vit_b_16_formula.json), against the committed float64 golden values. It changes
no file. bench/src/vit-spread.ts does the same for this engine; vit_b_16_conditioning.py asks the question for
other images.

    /usr/bin/python3 scripts/golden/vit_b_16_float32_spread.py --lxt /tmp/lxt [--trials 7] [--first 1] \
        [--case attn_lrp]
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxt_vit  # noqa: E402
from vit_b_16_conditioning import one_ulp_moves  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, '..', '..', 'vendor', 'reference', 'vit-b-16', 'vit', 'cases')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--lxt', required=True)
    p.add_argument('--trials', type=int, default=7)
    p.add_argument('--first', type=int, default=1, help='seed of the first move')
    p.add_argument('--case', default='attn_lrp', choices=['attn_lrp', 'cp_lrp'])
    args = p.parse_args()
    lxt_vit.import_lxt(args.lxt)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    with open(os.path.join(CASES, f'{args.case}__vit_b_16.json')) as f:
        case = json.load(f)
    c = dict(imageSize=224, patchSize=16, hiddenDim=768, numHeads=12, mlpDim=3072, numLayers=12, numClasses=1000,
             layerNormEpsilon=1e-6)
    w32 = lxt_vit.formula_weights(c)
    with open(os.path.join(CASES, '..', 'vit_b_16_formula.json')) as f:
        image = json.load(f)['formula']['input']
    x32 = lxt_vit.formula(image['name'], (1, 224, 224, 3), image['scale']).permute(0, 3, 1, 2).contiguous()
    golden_heatmap = torch.tensor(case['heatmap']['data'], dtype=torch.float64)
    golden_pos = torch.tensor(case['tokenRelevance']['encoder.pos_embedding']['data'], dtype=torch.float64)
    tol = case['float32']['tolerance']
    print(f'tolerance: heatmap {tol["heatmap"]["value"]:.3e}, pos_embedding per token '
          f'{tol["encoder.pos_embedding per token"]["value"]:.3e}', flush=True)
    over = 0
    for trial in [0] + list(range(args.first, args.first + args.trials)):
        x = x32 if trial == 0 else one_ulp_moves(x32, trial)
        _, relevance, rel = lxt_vit.run_case(w32, x, case['targets'], args.case, None, c)
        heatmap = relevance[:1].sum(1).double().flatten()
        pos = rel['encoder.pos_embedding'][:1].sum(-1).double().flatten()
        h, t = lxt_vit.rel_l2(heatmap, golden_heatmap), lxt_vit.rel_l2(pos, golden_pos)
        over += h > tol['heatmap']['value'] or t > tol['encoder.pos_embedding per token']['value']
        print(f'{"image as it is" if trial == 0 else f"one-ulp moves, seed {trial}"}: heatmap rel L2 {h:.3e}'
              f'{" (over)" if h > tol["heatmap"]["value"] else ""}, pos_embedding per token {t:.3e}'
              f'{" (over)" if t > tol["encoder.pos_embedding per token"]["value"] else ""}', flush=True)

    print(f'{over} of {args.trials + 1} over the tolerance', flush=True)


if __name__ == '__main__':
    main()

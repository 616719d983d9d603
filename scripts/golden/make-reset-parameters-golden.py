#!/usr/bin/env python3
"""What PyTorch's `reset_parameters()` does to a layer whose fan_in is 0 (the re-randomisation of MPRT).

  /usr/bin/python3 scripts/golden/make-reset-parameters-golden.py

Debian bookworm's python3-torch 1.13, CPU. Writes vendor/reference/evaluation/reset_parameters_golden.json
(format crp-golden-reset-parameters/1), read by packages/evaluation/test/reset-parameters-fan-in.test.ts.

Per case: the torch module, its TF.js counterpart (class, kernel shape in the TF layout, bias length), the bias set
before the call, the bias after it, and how many values of torch's generator the call consumed (found by comparing
the generator's next values with those after `manual_seed` and k skipped draws). At fan_in 0 the bias after the
call does not depend on the generator (zeros or unchanged), so the toolkit's own generator must give it bit for
bit; a case with fan_in > 0 is the control: one draw per value, kernel first, then bias.
"""
import json
import warnings
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / 'vendor/reference/evaluation/reset_parameters_golden.json'
SEED = 43  # Quantus's manual_seed(seed + 1) for MPRT's default seed 42


def draws_consumed(call):
    """How many float32 uniform draws `call` took from torch's default generator after manual_seed(SEED)."""
    torch.manual_seed(SEED)
    call()
    after = torch.rand(8).tolist()
    for k in range(0, 256):
        torch.manual_seed(SEED)
        torch.rand(k)
        if torch.rand(8).tolist() == after:
            return k
    raise RuntimeError('more than 255 draws')


CASES = [
    # (torch module, TF.js class, TF.js kernel shape)
    (lambda: nn.Linear(0, 3), 'Dense', [0, 3]),
    (lambda: nn.Conv2d(0, 3, 3), 'Conv2D', [3, 3, 0, 3]),
    (lambda: nn.Conv1d(0, 2, 3), 'Conv1D', [3, 0, 2]),
    (lambda: nn.Linear(4, 3), 'Dense', [4, 3]),
    (lambda: nn.Conv2d(2, 3, 3), 'Conv2D', [3, 3, 2, 3]),
]

cases = []
for make, cls, kernel_shape in CASES:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the constructor's own reset_parameters() warns too
        module = make()
    before = [0.5, -1.25, 2.0][: module.out_channels if hasattr(module, 'out_channels') else module.out_features]
    with torch.no_grad():
        module.bias.copy_(torch.tensor(before))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        consumed = draws_consumed(module.reset_parameters)
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
    bias = module.bias.detach().numpy().astype('float64')
    case = {
        'torch': repr(module),
        'tfClass': cls,
        'kernelShape': kernel_shape,
        'fanIn': fan_in,
        'biasBefore': before,
        'drawsConsumed': consumed,
        'warnings': sorted({str(w.message) for w in caught}),
    }
    if fan_in == 0:
        # generator-independent: compared bit for bit (sign of zero included)
        case['biasAfter'] = [float(v) for v in bias]
        case['biasAfterSignBits'] = [bool(torch.signbit(torch.tensor(v))) for v in bias]
    else:
        case['bound'] = 1 / fan_in ** 0.5
        case['biasWithinBound'] = bool((abs(bias) <= case['bound']).all())
    cases.append(case)

OUT.write_text(json.dumps({'format': 'crp-golden-reset-parameters/1', 'torch': torch.__version__, 'seed': SEED,
                           'cases': cases}, indent=1) + '\n')
print(f'wrote {OUT} ({len(cases)} cases)')

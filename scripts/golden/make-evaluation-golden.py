#!/usr/bin/env python3
"""Golden values of the evaluation metrics (@crp/evaluation), computed by Quantus itself.

  /usr/bin/python3 scripts/golden/make-evaluation-golden.py --quantus /tmp/quantus --zennit /tmp/zennit/src

`--quantus` is a source tree of github.com/understandable-machine-intelligence-lab/Quantus (the folder holding
the `quantus` package; commit recorded in the output), `--zennit` one of github.com/chr5tphr/zennit 0.5.1
(commit 3121bb22..., the folder holding the `zennit` package), as for the LRP goldens. Debian bookworm's
python3-torch 1.13, numpy 1.24, scipy 1.10, scikit-image 0.19 (Quantus runs on them unpatched), CPU, one thread.

Writes vendor/reference/evaluation/evaluation_golden.json (format crp-golden-evaluation/1):
  * the model: vendor/reference/models/tiny_vgg.json, loaded into torch here (nothing new to vendor);
  * inputs (seeded randn, clipped to [-3, 3]), labels (the model's own predictions), segmentation masks;
  * explanations: zennit's EpsilonPlusFlat relevance summed over the channels (`heatmap`, NHW) and zennit's
    gradient x input (`relevance`, NHWC: per channel, without ties);
  * per case: the metric and its options in the toolkit's names, the Quantus call that made the values, every
    random draw Quantus made (indices, permutations, uniform values, noise, the randomised weights of MPRT), in
    the order Quantus drew them, and Quantus's values (per-sample scores or curves).
Everything is stored in the TF.js layout (NHWC; feature indices of NHWC flattening), converted here from
Quantus's NCHW, so the toolkit never transposes.
"""
import argparse
import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ap = argparse.ArgumentParser()
ap.add_argument('--quantus', required=True)
ap.add_argument('--zennit', required=True)
ap.add_argument('--out', default=str(ROOT / 'vendor/reference/evaluation/evaluation_golden.json'))
args = ap.parse_args()
sys.path[:0] = [args.quantus, args.zennit]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import quantus  # noqa: E402
from quantus.functions import perturb_func as qperturb  # noqa: E402
from quantus.helpers import utils as qutils  # noqa: E402
from zennit.attribution import Gradient  # noqa: E402
from zennit.composites import EpsilonPlusFlat  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

# Patch: Quantus's batched correlation_pearson calls scipy.stats.pearsonr(a, b, axis=1) on Python >= 3.10, and
# the `axis` argument only exists from scipy 1.13; Debian's scipy 1.10 gets the row-by-row loop that Quantus
# itself uses on Python < 3.10 (the same pearsonr per row).
import scipy.spatial  # noqa: E402
import scipy.stats  # noqa: E402
import quantus.functions.similarity_func as qsim  # noqa: E402

_pearsonr = scipy.stats.pearsonr


class _StatsWithAxis:
    def __getattr__(self, name):
        return getattr(scipy.stats, name)

    @staticmethod
    def pearsonr(a, b, axis=None):
        if axis is None:
            return _pearsonr(a, b)
        assert axis == 1
        return (np.array([_pearsonr(aa, bb)[0] for aa, bb in zip(a, b)]),)


qsim.scipy = type('scipy_patched', (), {'stats': _StatsWithAxis(), 'spatial': scipy.spatial})

N, C, H, W = 4, 3, 16, 16
HW = H * W


# ---------------------------------------------------------------- model: tiny_vgg.json in torch
spec = json.loads((ROOT / 'vendor/reference/models/tiny_vgg.json').read_text())


class TinyVGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Linear(256, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


# (h, w, c) row of the TF dense kernel <-> (c, h, w) column of the torch weight, for classifier.0
FH, FW, FC = 4, 4, 16
HWC_OF_CHW = np.array([(h * FW + w) * FC + c for c in range(FC) for h in range(FH) for w in range(FW)])


def torch_param(layer, name):
    k = np.array(layer[name], dtype=np.float32)
    if name == 'bias':
        return torch.from_numpy(k)
    k = k.reshape(layer['kernelShape'])
    if layer['type'] == 'conv2d':
        return torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
    if layer['name'] == 'classifier.0':
        k = k[HWC_OF_CHW]
    return torch.from_numpy(np.ascontiguousarray(k.T))


def tf_kernel(name, module):
    """A torch module's weight in the TF.js layout of tiny_vgg.json (inverse of torch_param)."""
    w = module.weight.detach().numpy()
    if isinstance(module, nn.Conv2d):
        k = w.transpose(2, 3, 1, 0)
    else:
        k = w.T
        if name == 'classifier.0':
            inv = np.empty_like(HWC_OF_CHW)
            inv[HWC_OF_CHW] = np.arange(len(HWC_OF_CHW))
            k = k[inv]
    return k


model = TinyVGG().eval()
modules = dict(model.named_modules())
with torch.no_grad():
    for layer in spec['layers']:
        if layer['type'] in ('conv2d', 'dense'):
            modules[layer['name']].weight.copy_(torch_param(layer, 'kernel'))
            modules[layer['name']].bias.copy_(torch_param(layer, 'bias'))


# ---------------------------------------------------------------- data
def nhwc(a):
    """NCHW (or N1HW) numpy -> NHWC."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(a), 1, -1))


def nhwc_index(i):
    """Feature index of NCHW flattening -> the same feature's index in NHWC flattening."""
    i = np.asarray(i)
    c, p = i // HW, i % HW
    return p * C + c


def tensor(a, layout):
    a = np.asarray(a)
    if a.dtype == np.bool_:
        a = a.astype(np.float32)
    flat = [None if not np.isfinite(v) else float(v) for v in a.astype(np.float64).ravel()]
    return {'layout': layout, 'shape': list(a.shape), 'data': flat}


gen = torch.Generator().manual_seed(2310)
x_batch = torch.randn(N, C, H, W, generator=gen).clamp(-3, 3).numpy().astype(np.float32)
with torch.no_grad():
    logits = model(torch.from_numpy(x_batch)).numpy()
y_batch = logits.argmax(1)
assert len(set(y_batch.tolist())) > 1, 'inputs should be predicted as more than one class'


def zennit_relevance(mdl, x, y):
    """EpsilonPlusFlat relevance of classes y (zennit 0.5.1, Gradient attributor), NCHW."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    with Gradient(model=mdl, composite=EpsilonPlusFlat()) as attributor:
        out, rel = attributor(x, torch.eye(3)[torch.as_tensor(np.asarray(y))])
    return rel.detach().numpy()


def explain_heatmap(model, inputs, targets, **kwargs):
    """Quantus explain_func: zennit EpsilonPlusFlat relevance summed over the colour channels, N1HW."""
    return zennit_relevance(model, inputs, targets).sum(1, keepdims=True)


def gradient_x_input(mdl, x, y):
    """Gradient x input of classes y (zennit's Gradient attributor without a composite), NCHW."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    with Gradient(model=mdl) as attributor:
        out, grad = attributor(x, torch.eye(3)[torch.as_tensor(np.asarray(y))])
    return (grad * x).detach().numpy()


heatmap = zennit_relevance(model, x_batch, y_batch).sum(1, keepdims=True)  # N, 1, H, W
# EpsilonPlusFlat's flat first layer gives a pixel's three channels the same relevance; the full-channel
# explanation is gradient x input, whose channel values differ
relevance = gradient_x_input(model, x_batch, y_batch)  # N, C, H, W
# ties in the explanation would make numpy's unstable argsort pick an arbitrary order; the cases avoid them
assert all(len(np.unique(h)) == h.size for h in heatmap), 'heatmap values must be distinct'
assert all(len(np.unique(r)) == r.size for r in relevance), 'relevance values must be distinct'

# segmentation masks: a box per sample (the last one covers the centre square)
s_batch = np.zeros((N, 1, H, W), dtype=np.float32)
for i, (y0, x0, hh, ww) in enumerate([(2, 3, 5, 6), (8, 8, 6, 7), (0, 0, 4, 16), (4, 4, 8, 8)]):
    s_batch[i, 0, y0:y0 + hh, x0:x0 + ww] = 1

# ---------------------------------------------------------------- recording Quantus's random draws
draws = []


def recording(fn, record):
    """Wraps a perturb function: calls it unchanged and lets `record` note what it drew (from the RNG state
    before the call, replayed on a copy, so Quantus's own draws are what is recorded)."""
    def wrapped(*a, **kw):
        state = np.random.get_state()
        out = fn(*a, **kw)
        after = np.random.get_state()
        np.random.set_state(state)
        record(kw, out)
        np.random.set_state(after)
        return out
    return wrapped


def run(metric, **kw):
    np.random.seed(kw.pop('seed', 0))
    scores = metric(model=model, x_batch=x_batch, y_batch=y_batch, channel_first=True, **kw)
    return scores


cases = []


def case(cid, metric, options, quantus_call, scores, explanation, extra=None, aggregate=None):
    c = {'id': cid, 'metric': metric, 'options': options, 'quantus': quantus_call, 'explanation': explanation,
         'expected': scores}
    if aggregate is not None:
        c['expectedAggregate'] = aggregate
    if extra:
        c.update(extra)
    cases.append(c)


def as_list(scores):
    return [[float(v) for v in s] if np.ndim(s) else (None if not np.isfinite(float(s)) else float(s))
            for s in scores]


A_HEAT = heatmap
A_FULL = relevance

# ---- PixelFlipping. Quantus sorts the flattened C*H*W features with numpy's unstable argsort; a heatmap
# broadcast over the channels ties a pixel's three features, and Quantus requires H*W % features_in_step == 0
# (256 has no factor 3), so a step would split some tie group in an arbitrary order. The sorted metrics
# therefore use the per-channel explanation (no ties).
for cid, kw, a, expl in [
    ('pixel-flipping-black', dict(features_in_step=16, perturb_baseline='black'), A_FULL, 'relevance'),
    ('pixel-flipping-mean', dict(features_in_step=32, perturb_baseline='mean'), A_FULL, 'relevance'),
]:
    m = quantus.PixelFlipping(**kw, disable_warnings=True)
    scores = run(m, a_batch=a.copy())
    case(cid, 'PixelFlipping', {'featuresInStep': kw['features_in_step'], 'perturbBaseline': kw['perturb_baseline']},
         f'PixelFlipping({kw})', as_list(scores), expl,
         extra={'expectedAuc': [float(v) for v in qutils.calculate_auc(np.array(scores), batched=True)]})

# ---- RegionPerturbation: morf / lerf (and the area between), padding (patch 5 on 16), random order (recorded)
rp = {}  # the curves of the unpadded morf and lerf cases, for the area between them
for cid, kw in [
    ('region-perturbation-morf', dict(patch_size=4, order='morf', regions_evaluation=16)),
    ('region-perturbation-lerf', dict(patch_size=4, order='lerf', regions_evaluation=16)),
    ('region-perturbation-padded-mean', dict(patch_size=5, order='morf', regions_evaluation=10,
                                             perturb_baseline='mean')),
]:
    m = quantus.RegionPerturbation(**kw, disable_warnings=True)
    scores = run(m, a_batch=A_HEAT.copy())
    if kw['patch_size'] == 4:
        rp[kw['order']] = np.array(scores)
    opts = {'patchSize': kw['patch_size'], 'order': kw['order'], 'regionsEvaluation': kw['regions_evaluation']}
    if 'perturb_baseline' in kw:
        opts['perturbBaseline'] = kw['perturb_baseline']
    case(cid, 'RegionPerturbation', opts, f'RegionPerturbation({kw})', as_list(scores), 'heatmap')

perms = []
real_permutation = np.random.permutation


def recorded_permutation(n):
    p = real_permutation(n)
    perms.append(p.tolist())
    return p


np.random.permutation = recorded_permutation
m = quantus.RegionPerturbation(patch_size=4, order='random', regions_evaluation=16, disable_warnings=True)
scores = run(m, a_batch=A_HEAT.copy(), seed=7)
np.random.permutation = real_permutation
case('region-perturbation-random', 'RegionPerturbation', {'patchSize': 4, 'order': 'random', 'regionsEvaluation': 16},
     "RegionPerturbation(patch_size=4, order='random', regions_evaluation=16)", as_list(scores), 'heatmap',
     extra={'random': {'permutations': perms}})
# the area between the perturbation curves (AttnLRP's ABPC: AUC of the output, least- minus most-relevant
# first) from Quantus's own curves: they hold y - y_perturbed, so it is AUC(morf) - AUC(lerf)
abpc = qutils.calculate_auc(rp['morf'], batched=True) - qutils.calculate_auc(rp['lerf'], batched=True)
cases[-3]['expectedAuc'] = [float(v) for v in qutils.calculate_auc(rp['lerf'], batched=True)]
cases[-4]['expectedAuc'] = [float(v) for v in qutils.calculate_auc(rp['morf'], batched=True)]
case('region-perturbation-abpc', 'RegionPerturbationABPC', {'patchSize': 4, 'regionsEvaluation': 16},
     'calculate_auc(morf curves) - calculate_auc(lerf curves), RegionPerturbation(patch_size=4, regions_evaluation=16)',
     [float(v) for v in abpc], 'heatmap')

# ---- Selectivity
m = quantus.Selectivity(patch_size=4, disable_warnings=True)
scores = run(m, a_batch=A_HEAT.copy())
case('selectivity', 'Selectivity', {'patchSize': 4}, 'Selectivity(patch_size=4)', as_list(scores), 'heatmap',
     extra={'expectedAuc': [float(v) for v in qutils.calculate_auc(np.array(scores), batched=True)]})

# ---- IROF: Quantus's SLIC segments (recorded; the toolkit takes segments as input), baseline 'mean' (default).
# Quantus's mask is [N,1,H,W] and its baseline_replacement_by_mask asserts arr.shape == mask.shape, so IROF only
# runs on one-channel inputs: the case uses the first colour channel and a one-channel copy of the model.
segments = []
real_seg = qutils.get_superpixel_segments


def recorded_segments(img, segmentation_method):
    s = real_seg(img=img, segmentation_method=segmentation_method)
    segments.append(s.tolist())
    return s


class FirstChannel(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x.repeat(1, 3, 1, 1))


irof_model = FirstChannel(model).eval()
x_grey = x_batch[:, :1].copy()
qutils.get_superpixel_segments = recorded_segments
import quantus.metrics.faithfulness.irof as irof_module  # noqa: E402

irof_module.utils.get_superpixel_segments = recorded_segments
m = quantus.IROF(return_aggregate=False, disable_warnings=True)  # Quantus's default: the mean (True)
np.random.seed(0)
scores = m(model=irof_model, x_batch=x_grey, y_batch=y_batch, a_batch=A_HEAT.copy(), channel_first=True)
qutils.get_superpixel_segments = real_seg
case('irof', 'IROF', {'perturbBaseline': 'mean'}, "IROF(segmentation_method='slic', perturb_baseline='mean')",
     as_list(scores), 'heatmap',
     extra={'input': 'greyInput', 'model': 'tiny_vgg repeated over 3 channels', 'segments': tensor(np.array(segments),
                                                                                                    'NHW')})

# ---- FaithfulnessCorrelation: random subsets (recorded)
subsets = []
m = quantus.FaithfulnessCorrelation(nr_runs=20, subset_size=32, return_aggregate=False, disable_warnings=True)
m.perturb_func = recording(m.perturb_func, lambda kw, out: subsets.append(nhwc_index(kw['indices']).tolist()))
scores = run(m, a_batch=A_HEAT.copy(), seed=11)
case('faithfulness-correlation', 'FaithfulnessCorrelation', {'nrRuns': 20, 'subsetSize': 32},
     'FaithfulnessCorrelation(nr_runs=20, subset_size=32)', as_list(scores), 'heatmap',
     extra={'random': {'subsets': subsets}})

# ---- FaithfulnessEstimate
m = quantus.FaithfulnessEstimate(features_in_step=32, disable_warnings=True)
scores = run(m, a_batch=A_FULL.copy())
case('faithfulness-estimate', 'FaithfulnessEstimate', {'featuresInStep': 32},
     'FaithfulnessEstimate(features_in_step=32)', as_list(scores), 'relevance')

# ---- MonotonicityCorrelation: uniform baseline (one value per sample per draw, recorded)
uniforms = []


def note_uniform(kw, out):
    # batched 'uniform' baseline: np.random.uniform(0, 1, size=batch) per call
    uniforms.append(np.random.uniform(low=0.0, high=1.0, size=N).tolist())


m = quantus.MonotonicityCorrelation(nr_samples=3, features_in_step=64, disable_warnings=True)
m.perturb_func = recording(m.perturb_func, note_uniform)
scores = run(m, a_batch=A_FULL.copy(), seed=5)
case('monotonicity-correlation', 'MonotonicityCorrelation', {'nrSamples': 3, 'featuresInStep': 64},
     "MonotonicityCorrelation(nr_samples=3, features_in_step=64, perturb_baseline='uniform')", as_list(scores),
     'relevance', extra={'random': {'uniform': uniforms}})

# ---- localisation
for cid, metric, ctor, opts in [
    ('pointing-game', 'PointingGame', quantus.PointingGame(disable_warnings=True), {}),
    ('relevance-mass-accuracy', 'RelevanceMassAccuracy', quantus.RelevanceMassAccuracy(disable_warnings=True), {}),
    ('relevance-rank-accuracy', 'RelevanceRankAccuracy', quantus.RelevanceRankAccuracy(disable_warnings=True), {}),
    ('top-k-intersection', 'TopKIntersection', quantus.TopKIntersection(k=20, disable_warnings=True), {'k': 20}),
    ('attribution-localisation', 'AttributionLocalisation', quantus.AttributionLocalisation(disable_warnings=True),
     {}),
]:
    scores = run(ctor, a_batch=A_HEAT.copy(), s_batch=s_batch.copy())
    case(cid, metric, opts, f'{metric}({opts})', as_list(scores), 'heatmap')

# ---- complexity
for cid, metric, ctor in [
    ('sparseness', 'Sparseness', quantus.Sparseness(disable_warnings=True)),
    ('complexity', 'Complexity', quantus.Complexity(disable_warnings=True)),
    ('effective-complexity', 'EffectiveComplexity', quantus.EffectiveComplexity(eps=0.05, disable_warnings=True)),
]:
    scores = run(ctor, a_batch=A_HEAT.copy())
    case(cid, metric, {'eps': 0.05} if metric == 'EffectiveComplexity' else {}, f'{metric}()', as_list(scores),
         'heatmap')

# ---- Completeness (Quantus compares with ==; the case records the two sides too)
m = quantus.Completeness(normalise=False, disable_warnings=True)
scores = run(m, a_batch=A_FULL.copy())
case('completeness', 'Completeness', {'normalise': False}, 'Completeness(normalise=False)',
     [float(bool(s)) for s in scores], 'relevance',
     extra={'relevanceSum': [float(v) for v in A_FULL.reshape(N, -1).sum(-1)]})

# ---- MPRT: zennit relevance of the model with layers randomised by torch (weights recorded, TF layout)
randomised_layers = {}


def randomised_order(order):
    """The layers in the order Quantus randomises them; each layer's new weights (torch.manual_seed(seed + 1)
    then reset_parameters(), so the same for every order) go once into `randomisedLayers`."""
    q = quantus.helpers.model.pytorch_model.PyTorchModel(model=model, channel_first=True, softmax=False)
    names = []
    for name, rmodel in q.get_random_layer_generator(order=order, seed=42):
        mod = dict(rmodel.named_modules())[name]
        entry = {'kernel': tensor(tf_kernel(name, mod), 'TF'), 'bias': tensor(mod.bias.detach().numpy(), 'TF')}
        assert randomised_layers.setdefault(name, entry) == entry
        names.append(name)
    return names


def ssim_array(a, b, batched=False, **kw):
    """Quantus's ssim; batched, it returns a list, which MPRT's `.tolist()` cannot take (a Quantus defect):
    the same values as an array."""
    return np.array(quantus.similarity_func.ssim(a, b, batched=batched, **kw))


for order in ['top_down', 'independent']:
    for sim, sim_name in [(None, 'spearman'), (ssim_array, 'ssim')]:
        if order == 'independent' and sim_name == 'ssim':
            continue
        kw = dict(layer_order=order, seed=42, disable_warnings=True)
        if sim is not None:
            kw['similarity_func'] = sim
        m = quantus.MPRT(**kw)
        scores = run(m, a_batch=None, explain_func=explain_heatmap)
        case(f'mprt-{order.replace("_", "-")}-{sim_name}', 'MPRT',
             {'layerOrder': order, 'similarity': sim_name, 'seed': 42},
             f"MPRT(layer_order='{order}', similarity_func={sim_name}), explain_func=zennit EpsilonPlusFlat heatmap",
             {k: [float(v) for v in s] for k, s in scores.items()}, 'explainer: heatmap',
             extra={'random': {'layers': randomised_order(order)}})
# the average over layers (Quantus 'return_average_correlation'; includes the 'original' entry, see README)
m = quantus.MPRT(layer_order='top_down', seed=42, return_average_correlation=True, disable_warnings=True)
scores = run(m, a_batch=None, explain_func=explain_heatmap)
case('mprt-top-down-average', 'MPRT', {'layerOrder': 'top_down', 'similarity': 'spearman', 'seed': 42,
                                       'returnAverageCorrelation': True},
     "MPRT(layer_order='top_down', return_average_correlation=True)", [float(v) for v in scores],
     'explainer: heatmap', extra={'random': {'layers': randomised_order('top_down')}})

# ---- RandomLogit: the off-target class drawn by Quantus (recorded), SSIM (default)
np.random.seed(42)
yc = np.stack([np.arange(3) for _ in range(N)])
ym = np.ones_like(yc)
ym[np.arange(N)[None, :], y_batch] = 0
off = yc[ym.astype(bool)].reshape(N, -1)[np.arange(N)[None, :], np.random.randint(0, 2, N)].flatten()
m = quantus.RandomLogit(num_classes=3, seed=42, disable_warnings=True)
scores = run(m, a_batch=A_HEAT.copy(), explain_func=explain_heatmap)
case('random-logit', 'RandomLogit', {'numClasses': 3, 'seed': 42}, 'RandomLogit(num_classes=3, seed=42)',
     [float(v) for v in scores], 'heatmap', extra={'random': {'offTargets': off.tolist()}})

# ---- Max/AvgSensitivity: uniform noise of every draw (recorded, NHWC)
for cid, cls in [('max-sensitivity', quantus.MaxSensitivity), ('avg-sensitivity', quantus.AvgSensitivity)]:
    noise = []

    def note_noise(kw, out):
        n = np.random.uniform(low=-0.2, high=0.2, size=(N, C * HW))
        noise.append(tensor(nhwc(n.reshape(N, C, H, W)), 'NHWC'))

    m = cls(nr_samples=4, lower_bound=0.2, disable_warnings=True)
    m.perturb_func = recording(m.perturb_func, note_noise)
    scores = run(m, a_batch=A_HEAT.copy(), explain_func=explain_heatmap, seed=3)
    case(cid, cls.__name__, {'nrSamples': 4, 'lowerBound': 0.2}, f'{cls.__name__}(nr_samples=4, lower_bound=0.2)',
         [float(v) for v in scores], 'heatmap', extra={'random': {'noise': noise}})


# ---- the 'blur' perturbation (Quantus's baseline_replacement_by_blur: a box kernel of blur_kernel_size, zero
# padding, the mean over the window of the array before the step). Quantus's batched metrics call perturb_func
# with flat (batch, features) arrays and no indexed_axes, which baseline_replacement_by_blur cannot take (a
# Quantus limitation): the wrapper only reshapes each sample to (C, H, W), unravels the flat indices and calls
# Quantus's function with a (1, k, k) kernel, i.e. a k x k blur of each colour channel.
def batched_blur(shape, kernel):
    def perturb(arr, indices, **kw):
        out = np.array(arr, copy=True)
        for b in range(arr.shape[0]):
            idx = np.unravel_index(np.asarray(indices[b]), shape)
            idx = tuple(i.reshape(-1, 1, 1) for i in idx)  # ndim 3 each: pointwise indices, no meshgrid
            out[b] = qperturb.baseline_replacement_by_blur(
                arr=arr[b].reshape(shape), indices=idx, indexed_axes=[0, 1, 2],
                blur_kernel_size=[1, kernel, kernel]).reshape(-1)
        return out
    return perturb


m = quantus.PixelFlipping(features_in_step=16, perturb_func=batched_blur((C, H, W), 15), disable_warnings=True)
scores = run(m, a_batch=A_FULL.copy())
case('pixel-flipping-blur', 'PixelFlipping', {'featuresInStep': 16, 'perturbBaseline': 'blur'},
     'PixelFlipping(features_in_step=16, perturb_func=baseline_replacement_by_blur(blur_kernel_size=15) per sample)',
     as_list(scores), 'relevance',
     extra={'expectedAuc': [float(v) for v in qutils.calculate_auc(np.array(scores), batched=True)]})
# patch 5 on 16: edge-padded to 20 x 20 (2 before, 2 after), the blur sees the padded array; an even kernel
m = quantus.RegionPerturbation(patch_size=5, order='morf', regions_evaluation=10,
                               perturb_func=batched_blur((C, 20, 20), 4), disable_warnings=True)
scores = run(m, a_batch=A_HEAT.copy())
case('region-perturbation-blur', 'RegionPerturbation',
     {'patchSize': 5, 'order': 'morf', 'regionsEvaluation': 10, 'perturbBaseline': 'blur', 'blurKernelSize': 4},
     'RegionPerturbation(patch_size=5, regions_evaluation=10, perturb_func=baseline_replacement_by_blur('
     'blur_kernel_size=4) per sample)', as_list(scores), 'heatmap')

# ---- ROAD: noisy linear imputation of the top p% features, accuracy per percentage. Quantus's
# noisy_linear_imputation indexes a mask of H*W pixels with indices of the C*H*W features, so ROAD only runs on
# one-channel inputs (a Quantus defect): the cases use the grey input and the model fed it three times, as IROF,
# with that model's own predictions as the labels (`labels` of the case), so that the accuracy starts at 1.
with torch.no_grad():
    y_grey = irof_model(torch.from_numpy(x_grey)).numpy().argmax(1)
for cid, kw in [('road', dict()), ('road-few-noiseless', dict(percentages=[5, 25, 50, 75, 95], noise=0.0))]:
    noise = []
    imputed = []  # the first calls' removed pixels and Quantus's imputed image, to compare the imputation itself

    def note(kw_, out):
        noise.append(np.random.randn(1, len(kw_['indices'])).ravel().tolist())
        if len(imputed) < 12:
            imputed.append({'indices': np.asarray(kw_['indices']).tolist(), 'normal': noise[-1],
                            'image': tensor(nhwc(out[None])[0], 'HWC')})

    m = quantus.ROAD(**kw, disable_warnings=True)
    m.perturb_func = recording(m.perturb_func, note)
    per_sample = []
    post = m.custom_postprocess

    def keep(**k):
        per_sample.append(np.array(m.evaluation_scores[0], dtype=float).tolist())
        return post(**k)

    m.custom_postprocess = keep
    np.random.seed(13)
    scores = m(model=irof_model, x_batch=x_grey, y_batch=y_grey, a_batch=A_HEAT.copy(), channel_first=True)
    opts = {}
    if 'percentages' in kw:
        opts = {'percentages': kw['percentages'], 'noise': kw['noise']}
    case(cid, 'ROAD', opts, f'ROAD({kw})', per_sample[0], 'heatmap',
         extra={'input': 'greyInput', 'model': 'tiny_vgg repeated over 3 channels', 'labels': y_grey.tolist(),
                'expectedAccuracy': [float(v) for v in scores.values()],
                'percentages': [float(p) for p in scores.keys()],
                'noiseScale': kw.get('noise', 0.01), 'imputed': imputed,
                'random': {'normal': noise} if kw.get('noise', 0.01) != 0 else {}})

# ---- IROF with its own segmentation: Quantus's SLIC (skimage's slic(img, start_label=0) on the H x W x C image
# as double), computed by the toolkit; the same values as the 'irof' case
c = dict(cases[[k['id'] for k in cases].index('irof')])
c.pop('segments')
c['id'] = 'irof-slic'
c['options'] = {'perturbBaseline': 'mean', 'segmentation': 'slic'}
cases.append(c)

# ---- SLIC superpixels: skimage's label maps (start_label=0 as Quantus), the toolkit's must be equal
from skimage.segmentation import slic  # noqa: E402
import skimage  # noqa: E402

rng = np.random.RandomState(23)


def blobs(h, w, ch):
    """A smooth image of a few coloured discs on a gradient, with a little noise, in [0, 1]."""
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([(yy / h) * 0.5 + 0.2 * c for c in range(ch)], -1)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, h / 3)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 1, ch)
    return np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)


slic_images = [
    ('slic-rgb', blobs(32, 40, 3), {}),
    ('slic-rgb-few-compact', blobs(30, 30, 3), {'n_segments': 12, 'compactness': 25.0}),
    ('slic-rgb-soft', blobs(24, 36, 3), {'n_segments': 40, 'compactness': 1.0, 'max_num_iter': 20}),
    ('slic-grey', blobs(28, 28, 1), {}),
    ('slic-two-channel', blobs(20, 24, 2), {'n_segments': 30, 'compactness': 0.5}),
    ('slic-input-rgb', nhwc(x_batch)[0].astype(np.float64), {}),
]
camel = {'n_segments': 'nSegments', 'compactness': 'compactness', 'max_num_iter': 'maxNumIter'}
for cid, img, kw in slic_images:
    labels = slic(img, start_label=0, **kw)
    case(cid, 'SLIC', {camel[k]: v for k, v in kw.items()}, f'skimage.segmentation.slic(image, start_label=0, {kw})',
         np.asarray(labels).ravel().tolist(), 'none',
         extra={'image': tensor(img, 'HWC'), 'labelShape': list(labels.shape),
                'skimage': skimage.__version__})

def sha_tree(path):
    h = hashlib.sha256()
    for f in sorted(Path(path).rglob('*.py')):
        h.update(f.read_bytes())
    return h.hexdigest()


def git_head(path):
    try:
        return subprocess.check_output(['git', '-C', str(path), 'rev-parse', 'HEAD'], text=True).strip()
    except Exception:
        return None


out = {
    'format': 'crp-golden-evaluation/1',
    'model': 'tiny_vgg',
    'provenance': {
        'quantus': {'version': quantus.__version__, 'sourceSha256': sha_tree(Path(args.quantus) / 'quantus')},
        'zennit': {'sourceSha256': sha_tree(Path(args.zennit) / 'zennit')},
        'torch': torch.__version__, 'numpy': np.__version__, 'python': sys.version.split()[0], 'torchThreads': 1,
        'script': 'scripts/golden/make-evaluation-golden.py',
    },
    'input': tensor(nhwc(x_batch), 'NHWC'),
    'greyInput': tensor(nhwc(x_grey), 'NHWC'),
    'labels': y_batch.tolist(),
    'logits': tensor(logits, 'NC'),
    'relevance': tensor(nhwc(relevance), 'NHWC'),
    'heatmap': tensor(heatmap[:, 0], 'NHW'),
    'mask': tensor(s_batch[:, 0], 'NHW'),
    'randomisedLayers': randomised_layers,
    'cases': cases,
}
Path(args.out).write_text(json.dumps(out, separators=(',', ':')) + '\n')
print(f'wrote {args.out}: {len(cases)} cases, {Path(args.out).stat().st_size} bytes')

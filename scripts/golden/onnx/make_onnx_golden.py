#!/usr/bin/env python3
"""Golden LRP and CRP values for ONNX models: a DenseNet-like, a squeeze-excitation and a ResNet-like CNN.

Each model is a small PyTorch module with seeded random weights. It is exported with torch.onnx.export
(Debian python3-torch, eval mode; the exporter folds every batch norm that follows a conv into the conv) and
explained with zennit on the same torch model (zennit 0.5.1 imported from source, as the other reference cases:
see vendor/reference/README.md). Written to vendor/reference/onnx/ (format: its README.md):

    ZENNIT_SRC=<zennit 0.5.1 tree>/src CRP_SRC=<zennit-crp tree> \
        python3 scripts/golden/onnx/make_onnx_golden.py vendor/reference/onnx

(then make_onnx_ops.py and make_grouped_onnx_golden.py, which add their models to the same index.json).
CRP cases (kind onnx-crp): zennit-crp's CondAttribution on the DenseNet-like and the squeeze-excitation model, with
the same composites and canonizers as the LRP cases. Deterministic: seeded, one thread. Also writes the bad-input fixtures (an unsupported operator, a dynamic input
size, external data).

Conventions of the zennit run, matching the toolkit's engine:
* batch norms: SequentialMergeBatchNorm / NamedMergeBatchNorm merge those that follow a conv, exactly (eps 0
  while merged, as zennit 1.0 and as the exporter folds them); a batch norm before a conv (DenseNet's
  pre-activation) gets zennit's Pass rule;
* residual additions go through zennit's `Sum` module on stacked inputs (as zennit's ResNet canonizer does), so
  they get the composite's Sum rule (Norm);
* the squeeze-excitation product x * g: zennit has no rule for a product of two tensors (autograd would give
  R_x = g R, R_g = x R). The toolkit's default is PassToFeature (R_x = R, the gate gets none); the zennit run
  computes that product with an autograd function whose backward is exactly that, everything else is zennit.
"""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.environ.get('ZENNIT_SRC', '/tmp/onnx-ref/zennit/src'))
import zennit  # noqa: E402
# zennit-crp (imported where used, so the scripts that import this one as helpers do not need it)
sys.path.insert(0, os.environ.get('CRP_SRC', '/tmp/zennit-crp'))
from zennit.attribution import Gradient  # noqa: E402
from zennit.canonizers import NamedMergeBatchNorm, SequentialMergeBatchNorm  # noqa: E402
from zennit.composites import EpsilonAlpha2Beta1Flat, EpsilonGammaBox, EpsilonPlusFlat  # noqa: E402
from zennit.layer import Sum  # noqa: E402

torch.set_num_threads(1)
OUT = sys.argv[1] if len(sys.argv) > 1 else 'vendor/reference/onnx'
SIZE = 16
CLASSES = 5


class ExactMerge:
    """zennit 0.5.1's batch-norm merge with zennit 1.0's exact identity: the merged batch norm's eps is 0 while
    merged (0.5.1 keeps it, scaling by 1/sqrt(1 + eps)); torch.onnx.export folds batch norms exactly too."""

    def register(self, linears, batch_norm):
        self.saved_eps = batch_norm.eps
        super().register(linears, batch_norm)
        batch_norm.eps = 0.

    def remove(self):
        super().remove()
        self.batch_norm.eps = self.saved_eps


class ExactNamedMergeBatchNorm(ExactMerge, NamedMergeBatchNorm):
    pass


class ExactSequentialMergeBatchNorm(ExactMerge, SequentialMergeBatchNorm):
    pass


class GatedProduct(torch.autograd.Function):
    """x * g whose backward gives x the incoming gradient unchanged and g nothing (PassToFeature)."""

    @staticmethod
    def forward(ctx, x, g):
        ctx.gate_shape = g.shape
        return x * g

    @staticmethod
    def backward(ctx, grad):
        return grad, torch.zeros(ctx.gate_shape, dtype=grad.dtype)


# ---------------------------------------------------------------------------------------------------- models

class DenseLayer(torch.nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.norm1 = torch.nn.BatchNorm2d(cin)
        self.relu1 = torch.nn.ReLU()
        self.conv1 = torch.nn.Conv2d(cin, growth, 3, padding=1, bias=False)

    def forward(self, x):
        return torch.cat([x, self.conv1(self.relu1(self.norm1(x)))], 1)


class DenseNetLike(torch.nn.Module):
    """torchvision DenseNet in miniature: stem conv+BN+ReLU+maxpool(3, 2, 1), a dense block of two layers
    (pre-activation BN-ReLU-conv, concatenated to the input), a transition (BN-ReLU-conv1x1-avgpool 2), final BN,
    ReLU, global average pool, classifier."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential()
        self.features.add_module('conv0', torch.nn.Conv2d(3, 8, 3, padding=1, bias=False))
        self.features.add_module('norm0', torch.nn.BatchNorm2d(8))
        self.features.add_module('relu0', torch.nn.ReLU())
        self.features.add_module('pool0', torch.nn.MaxPool2d(3, 2, 1))
        block = torch.nn.Sequential()
        block.add_module('denselayer1', DenseLayer(8, 4))
        block.add_module('denselayer2', DenseLayer(12, 4))
        self.features.add_module('denseblock1', block)
        trans = torch.nn.Sequential()
        trans.add_module('norm', torch.nn.BatchNorm2d(16))
        trans.add_module('relu', torch.nn.ReLU())
        trans.add_module('conv', torch.nn.Conv2d(16, 8, 1, bias=False))
        trans.add_module('pool', torch.nn.AvgPool2d(2, 2))
        self.features.add_module('transition1', trans)
        self.features.add_module('norm5', torch.nn.BatchNorm2d(8))
        self.features.add_module('relu5', torch.nn.ReLU())
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.classifier = torch.nn.Linear(8, CLASSES)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    # SequentialMergeBatchNorm would pair a dense layer's pre-activation norm with the conv registered before it
    # (zennit issue #165); only norm0 follows a conv
    canonizers = staticmethod(lambda: [ExactNamedMergeBatchNorm([(['features.conv0'], 'features.norm0')])])


class SqueezeExcitation(torch.nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc1 = torch.nn.Conv2d(channels, squeeze, 1)
        self.relu = torch.nn.ReLU()
        self.fc2 = torch.nn.Conv2d(squeeze, channels, 1)
        self.sigmoid = torch.nn.Sigmoid()
        self.zennit = False

    def forward(self, x):
        g = self.sigmoid(self.fc2(self.relu(self.fc1(self.avgpool(x)))))
        return GatedProduct.apply(x, g) if self.zennit else x * g


class SENet(torch.nn.Module):
    """conv-BN-ReLU, a stride-2 conv-BN-ReLU, torchvision's SqueezeExcitation block (global pool, 1x1 convs,
    sigmoid gate, product), SiLU, global average pool and a two-layer classifier with dropout."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 12, 3, stride=2, padding=1),
            torch.nn.BatchNorm2d(12),
            torch.nn.ReLU(),
            SqueezeExcitation(12, 4),
            torch.nn.SiLU(),
        )
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, CLASSES)
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    canonizers = staticmethod(lambda: [ExactSequentialMergeBatchNorm()])


class BasicBlock(torch.nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.relu = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 1, stride=stride, bias=False), torch.nn.BatchNorm2d(cout)
            )
        self.sum = Sum()
        self.zennit = False

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        # zennit's ResNet canonizer routes the addition through its Sum module (Norm rule)
        out = self.sum(torch.stack([out, identity], dim=-1)) if self.zennit else out + identity
        return self.relu(out)


class ResNetLike(torch.nn.Module):
    """torchvision's ResNet layout in miniature: conv1-bn1-relu, layer1 (identity block), layer2 (stride-2 block
    with a downsample branch), adaptive average pool, fc."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.relu = torch.nn.ReLU()
        self.layer1 = torch.nn.Sequential(BasicBlock(8, 8, 1))
        self.layer2 = torch.nn.Sequential(BasicBlock(8, 16, 2))
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(16, CLASSES)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    @staticmethod
    def canonizers():
        pairs = [(['conv1'], 'bn1')]
        for block in ['layer1.0', 'layer2.0']:
            pairs += [([f'{block}.conv1'], f'{block}.bn1'), ([f'{block}.conv2'], f'{block}.bn2')]
        pairs.append((['layer2.0.downsample.0'], 'layer2.0.downsample.1'))
        return [ExactNamedMergeBatchNorm(pairs)]


class Unsupported(torch.nn.Module):
    """A conv followed by Softplus, an operator the importer refuses."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.act = torch.nn.Softplus()

    def forward(self, x):
        return torch.flatten(self.act(self.conv(x)), 1)


def init_weights(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('weight') and p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif name.endswith('weight'):  # batch-norm gamma
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for name, b in model.named_buffers():
            if name.endswith('running_mean'):
                b.copy_(torch.randn(b.shape, generator=g) * 0.3)
            elif name.endswith('running_var'):
                b.copy_(torch.rand(b.shape, generator=g) * 1.5 + 0.5)
    return model.eval()


def set_zennit(model, on):
    for m in model.modules():
        if hasattr(m, 'zennit'):
            m.zennit = on


# ------------------------------------------------------------------------------------------------ formatting

def f32(v):
    """The shortest decimal that round-trips to the same float32."""
    x = np.float32(v)
    for digits in range(1, 10):
        s = f'{x:.{digits}g}'
        if np.float32(float(s)) == x:
            return float(s)
    return float(x)


def tensor(t, layout):
    a = t.detach().cpu().numpy().astype(np.float32)
    if layout == 'NHWC':
        a = a.transpose(0, 2, 3, 1)
    return {'layout': layout, 'shape': list(a.shape), 'data': [f32(v) for v in a.reshape(-1)]}


def export(model, path, opset, dynamic=False):
    x = torch.zeros(1, 3, SIZE, SIZE)
    kwargs = {}
    if dynamic:
        kwargs['dynamic_axes'] = {'input': {0: 'batch', 2: 'height', 3: 'width'}, 'logits': {0: 'batch'}}
    torch.onnx.export(
        model, x, path, opset_version=opset, input_names=['input'], output_names=['logits'],
        do_constant_folding=True, **kwargs,
    )


COMPOSITES = {
    'EpsilonPlusFlat': (lambda c: EpsilonPlusFlat(canonizers=c), 'EpsilonPlusFlat(canonizers=[...])'),
    'EpsilonAlpha2Beta1Flat': (lambda c: EpsilonAlpha2Beta1Flat(canonizers=c), 'EpsilonAlpha2Beta1Flat(canonizers=[...])'),
    'EpsilonGammaBox': (
        lambda c: EpsilonGammaBox(low=-3.0, high=3.0, canonizers=c),
        'EpsilonGammaBox(low=-3.0, high=3.0, canonizers=[...])',
    ),
}


def lrp_case(name, model, composite_name, record, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, SIZE, SIZE, generator=g).clamp(-3, 3)
    with torch.no_grad():
        logits = model(x)
    targets = [int(v) for v in logits.argmax(1)]
    make, python = COMPOSITES[composite_name]
    set_zennit(model, True)
    grads = {}
    modules = dict(model.named_modules())
    handles = []
    for layer in record:
        def hook(_m, _i, out, layer=layer):
            out.register_hook(lambda grad: grads.__setitem__(layer, grad.detach().clone()))
        handles.append(modules[layer].register_forward_hook(hook))
    composite = make(model.canonizers())
    with Gradient(model, composite) as attributor:
        inp = x.clone().requires_grad_(True)
        out, rel = attributor(inp, lambda y: torch.eye(CLASSES)[targets] * y)
    for h in handles:
        h.remove()
    set_zennit(model, False)
    relevance = {'input': tensor(rel, 'NHWC')}
    for layer in record:
        r = grads[layer]
        relevance[layer] = tensor(r, 'NHWC' if r.dim() == 4 else 'NC')
    return {
        'id': f'onnx_lrp_{composite_name}__{name}',
        'kind': 'onnx-lrp',
        'model': name,
        'composite': composite_name,
        'compositePython': python,
        'input': tensor(x, 'NHWC'),
        'inputSeed': seed,
        'targets': targets,
        'logits': tensor(logits, 'NC'),
        'logitsDuringAttribution': tensor(out, 'NC'),
        'relevance': relevance,
        'relevanceSums': {k: [f32(v) for v in (grads[k] if k != 'input' else rel).flatten(1).sum(1)] for k in ['input', *record]},
    }


# CRP: conditions on a conv inside the dense block (the concatenation's other input is the parallel branch) and
# on the conv before the squeeze-excitation product (the gate branch and the feature branch both start after it)
CRP_SPECS = {
    'densenet_like': {
        'record': ['features.conv0', 'features.pool0', 'features.denseblock1.denselayer1.conv1',
                   'features.denseblock1.denselayer2.conv1', 'features.transition1.conv'],
        'conditions': [
            # (condition layer, exclude_parallel values)
            ('features.denseblock1.denselayer1.conv1', [True, False]),
            ('features.denseblock1.denselayer2.conv1', [True, False]),
        ],
        'notes': 'Concatenation: each input gets the slice of the relevance of its channels (autograd, as zennit). '
                 'The condition layer is one input of a dense layer\'s torch.cat, the block\'s input (pool0, and '
                 'for denselayer2 also denselayer1\'s output) the other: with exclude_parallel=True relevance '
                 'reaches the layers below only through the condition layer (zennit-crp starts a second backward '
                 'pass at its masked output); with False the unmasked relevance of the concatenation\'s other '
                 'input flows down too.',
    },
    'se_net': {
        'record': ['features.0', 'features.3', 'features.5', 'features.6.fc1', 'features.6.fc2'],
        'conditions': [('features.3', [True])],
        'notes': 'Squeeze-excitation y = x * g (torchvision SqueezeExcitation, features.6): the feature branch x '
                 '(features.5, the ReLU after the conditioned conv) gets all the relevance of the product, the '
                 'gate branch (features.6.fc1, features.6.fc2) none: zennit has no rule for a product of two '
                 'tensors, and the generator\'s autograd function for the product gives the feature branch the '
                 'incoming relevance unchanged and the gate zero (PassToFeature, the toolkit\'s default for a '
                 'gated product). Everything below features.3 is reached through it alone, so exclude_parallel '
                 'changes nothing here (not applicable).',
    },
}


def top_channels(model, x, target, layer, k):
    """The k channels of `layer` with the largest |relevance| for the target (zennit-crp, condition y alone)."""
    from crp.attribution import CondAttribution
    set_zennit(model, True)
    attribution = CondAttribution(model, no_param_grad=True)
    result = attribution(x.clone().requires_grad_(True), [{'y': [target]}],
                         EpsilonPlusFlat(canonizers=model.canonizers()), record_layer=[layer])
    set_zennit(model, False)
    rel = result.relevances[layer].sum((2, 3))[0].abs()
    return [int(i) for i in rel.argsort(descending=True)[:k]]


def crp_case(name, model, layer, exclude_parallel, seed):
    """zennit-crp's CondAttribution with EpsilonPlusFlat (the model's canonizers): two conditions on `layer`
    (its top channel; its second and third channels together), relevance recorded at the spec's layers."""
    spec = CRP_SPECS[name]
    # the first image of the model's EpsilonPlusFlat LRP case (same seed): a random input can put an average-pool
    # window's sum near zero (DenseNet's transition pool, Norm rule), where float32's rounding of the conv below is
    # amplified past the 1e-4 tolerance (seed 1111: a window sums to 4e-4 from values of +-0.7, 1.3e-3 relative)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, SIZE, SIZE, generator=g).clamp(-3, 3)[:1]
    with torch.no_grad():
        target = int(model(x).argmax(1))
    a, b, c = top_channels(model, x, target, layer, 3)
    conditions = [{'y': [target], layer: [a]}, {'y': [target], layer: [b, c]}]
    from crp.attribution import CondAttribution
    set_zennit(model, True)
    attribution = CondAttribution(model, no_param_grad=True)
    result = attribution(x.clone().requires_grad_(True), conditions, EpsilonPlusFlat(canonizers=model.canonizers()),
                         record_layer=spec['record'], exclude_parallel=exclude_parallel)
    set_zennit(model, False)
    short = layer.replace('features.denseblock1.', '')
    return {
        'id': f'onnx_crp_{short}{"" if exclude_parallel else "_parallel"}__{name}',
        'kind': 'onnx-crp',
        'model': name,
        'compositePython': 'EpsilonPlusFlat(canonizers=[...])',
        'notes': spec['notes'],
        'input': tensor(x, 'NHWC'),
        'inputSeed': seed,
        'conditions': conditions,
        'recordLayer': spec['record'],
        'excludeParallel': exclude_parallel,
        'heatmap': {'layout': 'NHW', 'shape': list(result.heatmap.shape),
                    'data': [f32(v) for v in result.heatmap.detach().numpy().reshape(-1)]},
        'prediction': tensor(result.prediction, 'NC'),
        # zennit-crp records a conditioned layer before its own mask (torch 1.13): compare it on the condition's
        # channels only
        'relevances': {k: tensor(v, 'NHWC' if v.dim() == 4 else 'NC') for k, v in result.relevances.items()},
    }


def write_crp_cases(models, index):
    for name, model in models.items():
        seed = {'densenet_like': 1100, 'se_net': 1200}[name]
        for layer, excludes in CRP_SPECS[name]['conditions']:
            for exclude in excludes:
                case = crp_case(name, model, layer, exclude, seed)
                file = f'cases/{case["id"]}.json'
                with open(f'{OUT}/{file}', 'w') as f:
                    json.dump(case, f, separators=(',', ':'))
                index['cases'].append({'id': case['id'], 'kind': 'onnx-crp', 'model': name, 'file': file})


def write_lrp_cases(name, model, record, seed, edit=lambda case: case):
    """Writes the LRP case of each composite (seeds 100 * seed + k) to cases/ and returns their index entries;
    `edit` may change a case before it is written (the layer names of make_onnx_ops.py)."""
    entries = []
    for k, composite in enumerate(COMPOSITES):
        case = edit(lrp_case(name, model, composite, record, 100 * seed + k))
        file = f'cases/{case["id"]}.json'
        with open(f'{OUT}/{file}', 'w') as f:
            json.dump(case, f, separators=(',', ':'))
        entries.append({'id': case['id'], 'kind': 'onnx-lrp', 'model': name, 'file': file})
        print(case['id'], file=sys.stderr)
    return entries


def model_entry(name, opset, **extra):
    """The index entry of models/<name>.onnx (input SIZE x SIZE x 3, CLASSES classes)."""
    return {'name': name, 'file': f'models/{name}.onnx', 'opset': opset, **extra,
            'inputShape': [SIZE, SIZE, 3], 'classes': CLASSES}


def read_index():
    with open(f'{OUT}/index.json') as f:
        return json.load(f)


def write_index(index):
    with open(f'{OUT}/index.json', 'w') as f:
        json.dump(index, f, indent=1)
        f.write('\n')


def replace_model(name, opset, model, record, seed):
    """For the scripts that add one model to the index: its entry and LRP cases replace any of the same name."""
    index = read_index()
    index['models'] = [m for m in index['models'] if m['name'] != name]
    index['cases'] = [c for c in index['cases'] if c['model'] != name]
    index['models'].append(model_entry(name, opset))
    index['cases'] += write_lrp_cases(name, model, record, seed)
    write_index(index)


def main():
    global CLASSES
    os.makedirs(f'{OUT}/models', exist_ok=True)
    os.makedirs(f'{OUT}/cases', exist_ok=True)
    specs = [
        # name, class, seed, opset, layers whose relevance is recorded (torch module names = layer names)
        ('densenet_like', DenseNetLike, 11, 11, ['features.denseblock1.denselayer2.conv1', 'features.transition1.conv']),
        ('se_net', SENet, 12, 13, ['features.3', 'features.6.fc1']),
        ('resnet_like', ResNetLike, 13, 17, ['layer1.0.conv2', 'layer2.0.downsample.0']),
    ]
    index = {'format': 'lrp-golden-index/1', 'provenance': provenance(), 'models': [], 'cases': []}
    crp_models = {}
    for name, cls, seed, opset, record in specs:
        torch.manual_seed(seed)
        model = init_weights(cls(), seed)
        if name in CRP_SPECS:
            crp_models[name] = model
        path = f'{OUT}/models/{name}.onnx'
        export(model, path, opset)
        index['models'].append(model_entry(name, opset))
        index['cases'] += write_lrp_cases(name, model, record, seed)
    write_crp_cases(crp_models, index)

    # bad inputs and variants
    torch.manual_seed(14)
    export(init_weights(Unsupported(), 14), f'{OUT}/models/unsupported_softplus.onnx', 13)
    torch.manual_seed(12)
    se = init_weights(SENet(), 12)
    export(se, f'{OUT}/models/se_net_dynamic.onnx', 13, dynamic=True)
    # a two-class DenseNet-like for 48x48 images: the model of the `crp study` test (packages/cli)
    CLASSES = 2
    torch.manual_seed(15)
    dense2 = init_weights(DenseNetLike(), 15)
    torch.onnx.export(dense2, torch.zeros(1, 3, 48, 48), f'{OUT}/models/densenet_like_2class_48.onnx', opset_version=13,
                      input_names=['input'], output_names=['logits'], do_constant_folding=True)
    CLASSES = 5
    import onnx
    m = onnx.load(f'{OUT}/models/se_net.onnx')
    onnx.save_model(m, f'{OUT}/models/se_net_external.onnx', save_as_external_data=True,
                    all_tensors_to_one_file=True, location='se_net_external.onnx.data', size_threshold=0)
    write_index(index)


def provenance():
    def tree_sha(path):
        h = hashlib.sha256()
        for root, _dirs, files in sorted(os.walk(path)):
            for fn in sorted(files):
                if fn.endswith('.py'):
                    with open(os.path.join(root, fn), 'rb') as f:
                        h.update(f.read())
        return h.hexdigest()
    import crp
    import onnx
    return {
        'zennit': {'version': zennit.__version__ if hasattr(zennit, '__version__') else '0.5.1',
                   'commit': os.environ.get('ZENNIT_COMMIT', '3121bb223061506834ca68abad3eefc792dea999'),
                   'sourceSha256': tree_sha(os.path.dirname(zennit.__file__))},
        'torch': torch.__version__, 'onnx': onnx.__version__, 'numpy': np.__version__,
        'zennitCrp': {'commit': os.environ.get('CRP_COMMIT', '5117f31d942e1076d853f15ca873ed53f335d089'),
                      'sourceSha256': tree_sha(os.path.dirname(crp.__file__))},
        'python': sys.version.split()[0], 'torchThreads': 1,
    }


if __name__ == '__main__':
    main()

"""view-flatten-opset13.onnx, view-flatten-opset11.onnx: a small CNN whose flatten is `x.view(x.size(0), -1)`,
exported by torch.onnx.export with a dynamic batch (dynamic_axes={'input': {0: 'batch'}}), so the Reshape's target
is computed from the input's shape: Shape -> Gather(0) -> Unsqueeze -> Concat(with [-1]) -> Reshape.
view-flatten.json: a seeded input [2, 3, 8, 8] and torch's logits.
view-count-opset13.onnx: the same CNN with `x.view(x.size(0), 96)`, a fixed count: the Concat's second input is
a Constant [96], which concept pruning of features.3 must rewrite (the ONNX writer); view-count.json: torch's
logits for view-flatten.json's input.
view-count-shared.onnx: two such branches (conv_a, conv_b of the input, each viewed as [N, 96], two Linears,
added) whose Concats read one Constant [96] (shared by hand after the export: torch writes one per view), so
pruning one branch needs a new constant for its Concat while the other keeps the shared one.
view-count-reader.onnx: the same two branches, branch b's view through a Linear of 96 units scaled by a weight
`gain.view(96)`, which torch folds; written back by hand as the Reshape of the weight [6, 16] an export without folding has, its target branch
a's Constant [96], so that count is also read by an operator that is no Concat: pruning branch a needs a new
constant, and the Reshape of the weight keeps [96]. view-count-reader.json: torch's logits for view-flatten.json's input.
view-count-int32.onnx: view-count-opset13.onnx with its target computed in int32 and cast to int64 before the
Reshape, as tf2onnx writes a TensorFlow shape (int32; its Reshape handler inserts Cast(to int64) on the target):
Gather -> Cast(int32) -> Unsqueeze -> Concat(., Constant int32 [96]) -> Cast(int64) -> Reshape; same logits.
view-count-int32-read.onnx: the same with a Shape node that also reads the Concat's output (its result unused),
so that rewriting the Concat's parts would change what another node reads.
view-count-int32-output.onnx, view-count-int32-cast-output.onnx: view-count-int32.onnx with the Concat's output
(int32), or the Cast's (int64), also a graph output, so that rewriting the Concat's parts would change what the
model gives out (the importer refuses a graph of two outputs, and so the writer, which imports its source).
Only some fixtures: /usr/bin/python3 fixtures-src/make-view-flatten.py view-count-reader view-count-int32
(or view-count-outputs)
Run from packages/models:
/usr/bin/python3 fixtures-src/make-view-flatten.py (Debian python3-torch and python3-onnx; one thread).
"""
import json

import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn


class ViewFlatten(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.classifier = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(x.size(0), -1))


class ViewCount(ViewFlatten):
    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(x.size(0), 96))


class SharedCount(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.conv_b = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.fc_a = nn.Linear(96, 5)
        self.fc_b = nn.Linear(96, 5)

    def forward(self, x):
        a = torch.relu(self.conv_a(x))
        b = torch.relu(self.conv_b(x))
        return self.fc_a(a.view(a.size(0), 96)) + self.fc_b(b.view(b.size(0), 96))


class GainCount(SharedCount):
    """Branch b: a Linear of 96 units scaled by a weight gain.view(96), then a Linear to the classes."""
    def __init__(self):
        super().__init__()
        self.fc_b = nn.Linear(96, 96)
        self.head_b = nn.Linear(96, 5)
        self.gain = nn.Parameter(torch.rand(6, 16) + 0.5)

    def forward(self, x):
        a = torch.relu(self.conv_a(x))
        b = torch.relu(self.conv_b(x))
        return self.fc_a(a.view(a.size(0), 96)) + self.head_b(self.fc_b(b.view(b.size(0), 96)) * self.gain.view(96))


def export(net, x, path, **options):
    torch.onnx.export(net, x, path, opset_version=13, input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, **options)
    return onnx.load(path)


def count_constants(model):
    """The Constant nodes that hold the [96] of each view's Concat."""
    producers = {o: n for n in model.graph.node for o in n.output}
    return [producers[c.input[1]] for c in model.graph.node if c.op_type == 'Concat']


def make_view_count_reader(x):
    torch.manual_seed(24)
    net = GainCount().eval()
    path = 'test/fixtures/onnx/view-count-reader.onnx'
    model = export(net, x, path)
    # torch folds gain.view(96) into the Mul's constant; written back as the Reshape of the weight [6, 16] that an
    # export without folding has, its target branch a's Constant [96] (torch writes one per view)
    first, _ = count_constants(model)
    mul = next(n for n in model.graph.node if n.op_type == 'Mul')
    gain = next(t for t in model.graph.initializer if t.name == mul.input[1])
    assert list(gain.dims) == [96]
    gain.dims[:] = [6, 16]
    gain.name = 'gain'
    view = onnx.helper.make_node('Reshape', ['gain', first.output[0]], ['gain_view'], name='gain_view')
    mul.input[1] = 'gain_view'
    model.graph.node.insert(list(model.graph.node).index(mul), view)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    print([n.op_type for n in model.graph.node])
    with torch.no_grad():
        y = net(x)
    with open('test/fixtures/onnx/view-count-reader.json', 'w') as f:
        json.dump({'logits': y.flatten().tolist()}, f)


def make_view_count_int32():
    path = 'test/fixtures/onnx/view-count-int32.onnx'
    model = onnx.load('test/fixtures/onnx/view-count-opset13.onnx')
    nodes = model.graph.node
    gather = next(n for n in nodes if n.op_type == 'Gather')
    unsqueeze = next(n for n in nodes if n.op_type == 'Unsqueeze' and n.input[0] == gather.output[0])
    concat = next(n for n in nodes if n.op_type == 'Concat')
    reshape = next(n for n in nodes if n.op_type == 'Reshape' and n.input[1] == concat.output[0])
    (count,) = count_constants(model)
    tensor = count.attribute[0].t
    tensor.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(tensor).astype('int32'), tensor.name))
    to_int32 = onnx.helper.make_node('Cast', [gather.output[0]], ['batch_int32'], name='batch_int32', to=6)
    unsqueeze.input[0] = 'batch_int32'
    nodes.insert(list(nodes).index(unsqueeze), to_int32)
    to_int64 = onnx.helper.make_node('Cast', [concat.output[0]], ['target_int64'], name='target_int64', to=7)
    reshape.input[1] = 'target_int64'
    nodes.insert(list(nodes).index(reshape), to_int64)
    del model.graph.value_info[:]
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    print([n.op_type for n in model.graph.node])
    nodes.insert(list(nodes).index(to_int64), onnx.helper.make_node('Shape', [concat.output[0]], ['target_length'],
                                                                    name='target_length'))
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, 'test/fixtures/onnx/view-count-int32-read.onnx')
    make_view_count_outputs()


def make_view_count_outputs():
    for name, op, dtype in (('output', 'Concat', onnx.TensorProto.INT32), ('cast-output', 'Cast', onnx.TensorProto.INT64)):
        model = onnx.load('test/fixtures/onnx/view-count-int32.onnx')
        node = next(n for n in model.graph.node if n.op_type == op and (op != 'Cast' or n.name == 'target_int64'))
        model.graph.output.append(onnx.helper.make_tensor_value_info(node.output[0], dtype, [2]))
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, f'test/fixtures/onnx/view-count-int32-{name}.onnx')
        print(name, [o.name for o in model.graph.output])


if __name__ == '__main__':
    import sys
    torch.set_num_threads(1)
    torch.manual_seed(21)
    net = ViewFlatten().eval()
    x = torch.randn(2, 3, 8, 8)
    if sys.argv[1:] == ['view-count-reader', 'view-count-int32']:
        make_view_count_reader(x)
        make_view_count_int32()
        sys.exit(0)
    if sys.argv[1:] == ['view-count-outputs']:
        make_view_count_outputs()
        sys.exit(0)
    for opset in (13, 11):
        path = f'test/fixtures/onnx/view-flatten-opset{opset}.onnx'
        torch.onnx.export(net, x, path, opset_version=opset, input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
        ops = [n.op_type for n in onnx.load(path).graph.node]
        assert 'Shape' in ops and 'Gather' in ops and 'Concat' in ops, ops
        print(opset, ops)
    with torch.no_grad():
        y = net(x)
    with open('test/fixtures/onnx/view-flatten.json', 'w') as f:
        json.dump({'input': x.flatten().tolist(), 'inputShape': list(x.shape), 'logits': y.flatten().tolist()}, f)

    torch.manual_seed(22)
    net = ViewCount().eval()
    path = 'test/fixtures/onnx/view-count-opset13.onnx'
    model = export(net, x, path)
    assert [onnx.numpy_helper.to_array(c.attribute[0].t).tolist() for c in count_constants(model)] == [[96]]
    with torch.no_grad():
        y = net(x)
    with open('test/fixtures/onnx/view-count.json', 'w') as f:
        json.dump({'logits': y.flatten().tolist()}, f)

    torch.manual_seed(23)
    path = 'test/fixtures/onnx/view-count-shared.onnx'
    model = export(SharedCount().eval(), x, path)
    first, second = count_constants(model)
    for c in model.graph.node:
        if c.op_type == 'Concat' and c.input[1] == second.output[0]:
            c.input[1] = first.output[0]
    model.graph.node.remove(second)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    print([n.op_type for n in model.graph.node])
    make_view_count_reader(x)
    make_view_count_int32()

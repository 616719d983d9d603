"""view-flatten-opset13.onnx, view-flatten-opset11.onnx: a small CNN whose flatten is `x.view(x.size(0), -1)`,
exported by torch.onnx.export with a dynamic batch (dynamic_axes={'input': {0: 'batch'}}), so the Reshape's target
is computed from the input's shape: Shape -> Gather(0) -> Unsqueeze -> Concat(with [-1]) -> Reshape.
view-flatten.json: a seeded input [2, 3, 8, 8] and torch's logits. Run from packages/models:
/usr/bin/python3 fixtures-src/make-view-flatten.py (Debian python3-torch and python3-onnx; one thread).
"""
import json

import onnx
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


if __name__ == '__main__':
    torch.set_num_threads(1)
    torch.manual_seed(21)
    net = ViewFlatten().eval()
    x = torch.randn(2, 3, 8, 8)
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

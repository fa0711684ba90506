#!/usr/bin/python3
"""The reference loss-landscape scripts' way of computing a surface, for comparison with landscape_bench:
for each grid point, write w + a*dx + b*dy into the model and evaluate it (torch.no_grad, eval mode).
Same model shape (784-64-32-10), 2,000 samples, 51x51 grid, filter-normalised directions, same LibTorch
version (Debian's python3-torch). Prints the wall time; --points N evaluates only the first N points and
extrapolates (the full grid takes about as long as landscape_bench's BM_Surface51_Unbatched).

--cnn FILE.pt: the same loop for a TorchScript CNN on 1,000 CIFAR-sized samples [1000, 3, 32, 32] in batches of
--batch (128, the reference scripts' default), as landscape_bench's BM_Resnet20_PerGridPoint (resnet20.pt
from tests/landscape/make_cnn_models.py DIR --bench)."""
import argparse
import time

import numpy as np
import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument('--points', type=int, default=51 * 51)
parser.add_argument('--cnn', default='')
parser.add_argument('--batch', type=int, default=128)
args = parser.parse_args()

torch.manual_seed(2018)
if args.cnn:
    net = torch.jit.load(args.cnn).eval()
    inputs = torch.rand(1000, 3, 32, 32)
    targets = torch.randint(0, 10, (1000,))
else:
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                        nn.Linear(32, 10)).eval()
    inputs = torch.rand(2000, 1, 28, 28)
    targets = torch.randint(0, 10, (2000,))
batch = args.batch if args.cnn else len(inputs)
weights = [p.detach().clone() for p in net.parameters()]


def direction():
    d = [torch.randn(w.size()) for w in weights]
    for di, w in zip(d, weights):
        if di.dim() <= 1:
            di.fill_(0)
        else:
            for ds, ws in zip(di, w):
                ds.mul_(ws.norm() / (ds.norm() + 1e-10))
    return d


dx, dy = direction(), direction()
x = np.linspace(-1, 1, 51)
xm, ym = np.meshgrid(x, x)
coords = np.c_[xm.ravel(), ym.ravel()][: args.points]
criterion = nn.CrossEntropyLoss()
start = time.time()
with torch.no_grad():
    for a, b in coords:
        for p, w, u, v in zip(net.parameters(), weights, dx, dy):
            p.data = w + u * a + v * b
        loss, correct = 0.0, 0
        for i in range(0, len(inputs), batch):
            out = net(inputs[i:i + batch])
            loss += criterion(out, targets[i:i + batch]).item() * len(out)
            correct += out.argmax(1).eq(targets[i:i + batch]).sum().item()
        loss, acc = loss / len(inputs), 100.0 * correct / len(inputs)
elapsed = time.time() - start
print('reference-style loop: %d points in %.2f s (%.2f ms/point; 2601 points: %.1f s), torch threads %d'
      % (len(coords), elapsed, 1e3 * elapsed / len(coords), elapsed / len(coords) * 2601, torch.get_num_threads()))

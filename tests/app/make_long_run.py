"""Fixture: a long run recorded by the Python module (1,600 snapshots of a small MLP, every step), whose
activations turn NaN at step 1,234 (an input poisoned on purpose) and stay finite before. Usage: DIR"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import tensorscape  # noqa: E402


def main(out):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(32, 8)
    y = torch.randint(0, 3, (32,))
    with tensorscape.init(os.path.join(out, "run"), model, every=1, histogram_bins=8, quiet=True) as run:
        for step in range(1600):
            xb = x.clone()
            if step >= 1234:
                xb[0, 0] = float("nan")
            loss = nn.functional.cross_entropy(model(xb), y)
            opt.zero_grad()
            loss.backward()
            if step < 1234:
                opt.step()
            run.log(step, loss=loss.item())


if __name__ == "__main__":
    main(sys.argv[1])

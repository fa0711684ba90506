"""Fixture: a run recorded by the Python module from an ordinary training loop (a small CNN with BatchNorm
and a residual add, random data, 40 steps, every 4), for `tensorscape open` tests. Usage: make_python_run.py DIR"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import tensorscape  # noqa: E402


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.conv2(y) + y)
        return self.fc(torch.flatten(self.pool(y), 1))


def main(out):
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    run = tensorscape.init(os.path.join(out, "run"), model, every=4, scalars=["val_loss"])
    for step in range(40):
        x = torch.randn(16, 1, 12, 12)
        y = torch.randint(0, 10, (16,))
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        values = {"loss": loss.item(), "accuracy": 0.1}
        if step % 10 == 9:
            values["val_loss"] = loss.item() + 0.1
        run.log(step, **values)
    run.close()


if __name__ == "__main__":
    main(sys.argv[1])

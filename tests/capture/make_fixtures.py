#!/usr/bin/python3
# Writes the capture tests' fixtures into a folder: TorchScript models (scripted and traced) and, for each,
# the reference activations and gradients computed by running the same modules directly in eager PyTorch.
# Usage: make_fixtures.py OUT_DIR
#
# Reference files: <model>.ref.txt lists records "<kind> <name> <ndim> <dims...>" in the order their float32
# data follows in <model>.ref.bin. Kinds: input, labels, output, loss, act, actgrad, param, paramgrad.
import os
import struct
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(1234)


class Block(nn.Module):
    """A residual block: the relu module is called twice, the skip is a functional add."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        out = out + x
        return self.relu(out)


class SkipNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block = Block(4)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = self.block(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


def skipnet_reference(m, x):
    """SkipNet's forward written out, recording every intermediate under the name capture should give it."""
    r = OrderedDict()

    def rec(name, t):
        t.retain_grad()
        r[name] = t
        return t

    h = rec("relu", F.relu(rec("stem", m.stem(x))))
    b = m.block
    a = rec("block.relu", b.relu(rec("block.bn1", b.bn1(rec("block.conv1", b.conv1(h))))))
    s = rec("block.add", rec("block.conv2", b.conv2(a)) + h)
    o = rec("block.relu_1", b.relu(s))
    p = rec("pool", m.pool(o))
    return rec("fc", m.fc(torch.flatten(p, 1))), r


def sequential_reference(m, x):
    """Runs a Sequential's children one by one; in-place modules get a clone so recorded values stay."""
    r = OrderedDict()
    for name, child in m.named_children():
        x = child(x.clone() if getattr(child, "inplace", False) else x)
        if x.requires_grad:
            x.retain_grad()
        r[name] = x
    return x, r


class SqrtNet(nn.Module):
    """sqrt after a ReLU: finite forward, infinite gradient at exact zeros (health-check fixture)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 16)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc2(torch.sqrt(self.act(self.fc1(x))))


class TwoArgs(nn.Module):
    """forward() with a second (defaulted) argument: graph surgery refuses it, output-only capture remains."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x, scale: float = 1.0):
        return self.fc(x) * scale


def write_ref(name, records):
    with open(os.path.join(OUT, name + ".ref.txt"), "w") as txt, open(os.path.join(OUT, name + ".ref.bin"), "wb") as b:
        for kind, key, t in records:
            t = t.detach().to(torch.float32).contiguous()
            txt.write("%s %s %d %s\n" % (kind, key, t.dim(), " ".join(str(d) for d in t.shape)))
            b.write(t.numpy().tobytes())


def fixture(name, model, script, x, labels, reference):
    model.train()
    saved = torch.jit.script(model) if script else torch.jit.trace(model, x)
    saved.save(os.path.join(OUT, name + ".pt"))
    # The reference: the eager modules, run directly, in training mode, then autograd for the gradients.
    out, acts = reference(model, x)
    loss = F.cross_entropy(out, labels)
    loss.backward()
    records = [("input", "x", x), ("labels", "y", labels.to(torch.float32)), ("output", "out", out),
               ("loss", "loss", loss.reshape(1))]
    for k, t in acts.items():
        records.append(("act", k, t))
    for k, t in acts.items():
        if t.grad is not None:
            records.append(("actgrad", k, t.grad))
    for k, p in model.named_parameters():
        records.append(("param", k, p))
        records.append(("paramgrad", k, p.grad))
    write_ref(name, records)


# 1. Sequential MLP (scripted) on [N, 4].
mlp = nn.Sequential(nn.Flatten(), nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3))
x = torch.randn(6, 4)
y = torch.randint(0, 3, (6,))
fixture("mlp_seq", mlp, True, x, y, sequential_reference)

# 2. CNN with BatchNorm and an in-place ReLU (scripted) on [N, 1, 12, 12].
cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                    nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 5))
x = torch.rand(5, 1, 12, 12)
y = torch.randint(0, 5, (5,))
fixture("cnn_seq", cnn, True, x, y, sequential_reference)

# 3. Residual model, scripted and traced, on [N, 1, 8, 8].
skip = SkipNet()
x = torch.rand(4, 1, 8, 8)
y = torch.randint(0, 3, (4,))
fixture("skip_script", skip, True, x, y, skipnet_reference)
skip.zero_grad()
fixture("skip_trace", skip, False, x, y, skipnet_reference)

# 4. Health and fallback fixtures (no references needed).
torch.jit.script(SqrtNet()).save(os.path.join(OUT, "sqrt_net.pt"))
torch.jit.script(TwoArgs()).save(os.path.join(OUT, "two_args.pt"))

# 5. Parameter names and shapes of the modules the built-in models are documented to equal.
def builtin_mlp(d, widths, classes):
    layers = [("flatten", nn.Flatten())]
    w = d
    for i, k in enumerate(widths):
        layers += [("fc%d" % (i + 1), nn.Linear(w, k)), ("relu%d" % (i + 1), nn.ReLU())]
        w = k
    layers.append(("out", nn.Linear(w, classes)))
    return nn.Sequential(OrderedDict(layers))


def builtin_cnn(c, h, w, channels, classes):
    layers = []
    for i, k in enumerate(channels):
        n = str(i + 1)
        layers += [("conv" + n, nn.Conv2d(c, k, 3, padding=1)), ("relu" + n, nn.ReLU()), ("pool" + n, nn.MaxPool2d(2))]
        c, h, w = k, h // 2, w // 2
    layers += [("flatten", nn.Flatten()), ("fc1", nn.Linear(c * h * w, 64)), ("relu_fc", nn.ReLU()),
               ("out", nn.Linear(64, classes))]
    return nn.Sequential(OrderedDict(layers))


with open(os.path.join(OUT, "builtin_params.txt"), "w") as f:
    for spec, m in [("builtin:mlp", builtin_mlp(2, [64, 32], 3)), ("builtin:mlp:20,10,5", builtin_mlp(784, [20, 10, 5], 10)),
                    ("builtin:cnn", builtin_cnn(1, 28, 28, [8, 16], 10))]:
        for k, p in m.named_parameters():
            f.write("%s %s %s\n" % (spec, k, ",".join(str(d) for d in p.shape)))
print("fixtures written to", OUT)

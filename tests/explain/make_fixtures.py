"""Fixtures for explain_tests: TorchScript models and float64 references computed here, independently of the
engine (explicit LRP matrices in numpy). Usage: make_fixtures.py OUT_DIR (run by /usr/bin/python3)."""
import json
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(7)
rng = np.random.default_rng(7)


def save_npy(name, a):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(a, dtype=np.float32))


# 1. An MLP with biases, and LRP references in float64 by the rules' formulas.
mlp = nn.Sequential(OrderedDict(fc1=nn.Linear(20, 16), relu1=nn.ReLU(), fc2=nn.Linear(16, 12),
                                relu2=nn.ReLU(), out=nn.Linear(12, 5))).eval()
torch.jit.script(mlp).save(os.path.join(OUT, "mlp.pt"))
x = rng.normal(size=(1, 20))
save_npy("mlp_x.npy", x)
Ws = [mlp.fc1.weight, mlp.fc2.weight, mlp.out.weight]
bs = [mlp.fc1.bias, mlp.fc2.bias, mlp.out.bias]
Ws = [w.detach().double().numpy() for w in Ws]
bs = [b.detach().double().numpy() for b in bs]
acts = [x[0]]
zs = []
for i, (W, b) in enumerate(zip(Ws, bs)):
    z = W @ acts[-1] + b
    zs.append(z)
    acts.append(np.maximum(z, 0) if i < 2 else z)
target = int(np.argmax(zs[-1]))


def lrp_eps(eps):
    R = np.zeros(5)
    R[target] = zs[-1][target]
    sums = [R.sum()]
    for i in (2, 1, 0):
        z = zs[i]
        s = R / (z + eps * np.where(z >= 0, 1.0, -1.0))
        R = acts[i] * (Ws[i].T @ s)
        sums.append(R.sum())
    return R, sums


def lrp_ab(alpha, beta):
    R = np.zeros(5)
    R[target] = zs[-1][target]
    sums = [R.sum()]
    for i in (2, 1, 0):
        a, W = acts[i], Ws[i]
        contrib = W * a[None, :]  # [out, in]: x_j w_kj
        pos, neg = np.maximum(contrib, 0), np.minimum(contrib, 0)
        zp, zn = pos.sum(1), neg.sum(1)
        sp = np.where(zp > 1e-9, R / np.where(zp > 1e-9, zp, 1), 0)
        sn = np.where(zn < -1e-9, R / np.where(zn < -1e-9, zn, 1), 0)
        R = alpha * (pos * sp[:, None]).sum(0) - beta * (neg * sn[:, None]).sum(0)
        sums.append(R.sum())
    return R, sums


r_eps, sums_eps = lrp_eps(0.1)
r_ab, sums_ab = lrp_ab(2.0, 1.0)
save_npy("mlp_lrp_eps.npy", r_eps[None, :])
save_npy("mlp_lrp_ab.npy", r_ab[None, :])
with open(os.path.join(OUT, "mlp.json"), "w") as f:
    json.dump({"target": target, "score": zs[-1][target], "sums_eps": sums_eps, "sums_ab": sums_ab}, f)


# 1b. An MLP with ReLU6 (some units saturated above 6) and GELU: LRP-epsilon passes relevance through both
# activations unchanged (the identity rule), so the float64 reference is the MLP's with those activations.
act = nn.Sequential(OrderedDict(fc1=nn.Linear(20, 16), act1=nn.ReLU6(), fc2=nn.Linear(16, 12), act2=nn.GELU(),
                                out=nn.Linear(12, 5))).eval()
with torch.no_grad():
    act.fc1.weight.mul_(12.0)  # pre-activations of several units above 6
torch.jit.script(act).save(os.path.join(OUT, "act_mlp.pt"))
ax1 = rng.normal(size=(1, 20))
save_npy("act_x.npy", ax1)
aW = [m.weight.detach().double().numpy() for m in (act.fc1, act.fc2, act.out)]
ab = [m.bias.detach().double().numpy() for m in (act.fc1, act.fc2, act.out)]
with torch.no_grad():
    gelu = lambda z: nn.functional.gelu(torch.from_numpy(z)).numpy()
a_acts, a_zs = [ax1[0]], []
for i in range(3):
    z = aW[i] @ a_acts[-1] + ab[i]
    a_zs.append(z)
    a_acts.append(np.clip(z, 0, 6) if i == 0 else gelu(z) if i == 1 else z)
a_target = int(np.argmax(a_zs[-1]))
R = np.zeros(5)
R[a_target] = a_zs[-1][a_target]
for i in (2, 1, 0):
    s_ = R / (a_zs[i] + 0.1 * np.where(a_zs[i] >= 0, 1.0, -1.0))
    R = a_acts[i] * (aW[i].T @ s_)
save_npy("act_lrp_eps.npy", R[None, :])
with open(os.path.join(OUT, "act_mlp.json"), "w") as f:
    json.dump({"target": a_target, "saturated": int((a_zs[0] > 6).sum())}, f)


# 2. A bias-free ReLU network with a residual add, max and average pooling (no BatchNorm shift, no biases):
# LRP-0 equals gradient x input, and every layer conserves relevance.
class BiasFree(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.avg = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(24, 4, bias=False)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        y = torch.relu(self.conv2(x))
        y = self.conv3(y)
        x = torch.relu(x + y)
        x = self.avg(x)
        return self.fc(torch.flatten(x, 1))


torch.jit.script(BiasFree().eval()).save(os.path.join(OUT, "biasfree.pt"))
save_npy("biasfree_x.npy", rng.uniform(size=(1, 1, 12, 12)))

# 3. torchvision's ResNet-18 with random weights and non-trivial BatchNorm statistics (so that folding matters).
import torchvision  # noqa: E402

resnet = torchvision.models.resnet18(num_classes=10)
with torch.no_grad():
    for m in resnet.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.1, 0.1)
torch.jit.script(resnet.eval()).save(os.path.join(OUT, "resnet18.pt"))
save_npy("image_x.npy", rng.uniform(size=(1, 3, 64, 64)))

# 4. Models LRP has no rule for: a Transformer encoder layer (self-attention, LayerNorm) and a sigmoid MLP.
enc = nn.Sequential(OrderedDict(proj=nn.Linear(8, 16), enc=nn.TransformerEncoderLayer(16, 2, 32, batch_first=True),
                                flat=nn.Flatten(), out=nn.Linear(16 * 4, 3))).eval()
torch.jit.script(enc).save(os.path.join(OUT, "transformer.pt"))
save_npy("seq_x.npy", rng.normal(size=(1, 4, 8)))
sig = nn.Sequential(OrderedDict(fc1=nn.Linear(20, 8), act=nn.Sigmoid(), out=nn.Linear(8, 3))).eval()
torch.jit.script(sig).save(os.path.join(OUT, "sigmoid.pt"))

# 5. Neurogram: mean ablations computed here with forward hooks, on a CNN with biases and BatchNorm (conv2 has no
# bias), and for the layers without parameters (the two ReLUs and the pool module called twice) by replacing the
# value in a forward written out here, under the names capture gives them (relu, pool, relu_1, pool_1).
class AblCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6 * 3 * 3, 5)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


abl = AblCnn()
ax = torch.rand(300, 1, 12, 12, generator=torch.Generator().manual_seed(3))
# labels from a fixed rule on the pixels (which quadrant is brightest, plus the centre), learnt for a while so
# that the layers matter and accuracy is neither chance nor perfect
quadrants = torch.stack([ax[:, 0, :6, :6].mean((1, 2)), ax[:, 0, :6, 6:].mean((1, 2)), ax[:, 0, 6:, :6].mean((1, 2)),
                         ax[:, 0, 6:, 6:].mean((1, 2)), ax[:, 0, 3:9, 3:9].mean((1, 2))], 1)
ay = quadrants.argmax(1)
opt = torch.optim.Adam(abl.parameters(), lr=1e-2)
torch.manual_seed(5)
abl.train()
for step in range(150):
    idx = torch.randint(0, 300, (64,))
    opt.zero_grad()
    nn.functional.cross_entropy(abl(ax[idx]), ay[idx]).backward()
    opt.step()
abl.eval()
torch.jit.script(abl).save(os.path.join(OUT, "abl_cnn.pt"))
with torch.no_grad():
    logits0 = abl(ax)
save_npy("abl_x.npy", ax.numpy())
save_npy("abl_y.npy", ay.double().numpy())


def kpis(logits):
    return {"accuracy": (logits.argmax(1) == ay).double().mean().item(),
            "loss": nn.functional.cross_entropy(logits.double(), ay).item()}


# A second data set: the same samples at a contrast of 0.6 (the labels still hold). Each layer is ablated with
# its mean over the clean data on both sets, as the engine does.
ax_shift = 0.6 * ax + 0.2
save_npy("abl_x_shift.npy", ax_shift.numpy())
with torch.no_grad():
    ref = {"intact": kpis(logits0.double()), "layers": {},
           "shifted": {"intact": kpis(abl(ax_shift).double()), "layers": {}}}
for name in ("conv1", "bn1", "conv2", "bn2", "fc"):
    mod = getattr(abl, name)
    out = []
    h = mod.register_forward_hook(lambda m, i, o: out.append(o.double()))
    with torch.no_grad():
        abl(ax)
    h.remove()
    o = out[0]
    mean = o.mean(dim=[0, 2, 3], keepdim=True) if o.dim() == 4 else o.mean(dim=0, keepdim=True)
    h = mod.register_forward_hook(lambda m, i, o: mean.expand_as(o).to(o.dtype))
    with torch.no_grad():
        ref["layers"][name] = kpis(abl(ax).double())
        ref["shifted"]["layers"][name] = kpis(abl(ax_shift).double())
    h.remove()


def abl_forward(x, replace=None):
    # AblCnn.forward with the value named `replace` swapped for the function's result on it
    r = replace or {}
    def at(name, v):
        return r[name](v) if name in r else v
    x = at("pool", abl.pool(at("relu", torch.relu(abl.bn1(abl.conv1(x))))))
    x = at("pool_1", abl.pool(at("relu_1", torch.relu(abl.bn2(abl.conv2(x))))))
    return abl.fc(torch.flatten(x, 1))


for name in ("relu", "pool", "relu_1", "pool_1"):
    seen = []
    with torch.no_grad():
        abl_forward(ax, {name: lambda v: seen.append(v.double()) or v})
    mean = seen[0].mean(dim=[0, 2, 3], keepdim=True)
    with torch.no_grad():
        ref["layers"][name] = kpis(abl_forward(ax, {name: lambda v: mean.expand_as(v).to(v.dtype)}).double())
        ref["shifted"]["layers"][name] = kpis(abl_forward(ax_shift, {name: lambda v: mean.expand_as(v).to(v.dtype)}).double())
with torch.no_grad():
    assert torch.equal(abl_forward(ax), logits0)
ref["predicted_classes"] = int(logits0.argmax(1).unique().numel())
with open(os.path.join(OUT, "abl_cnn.json"), "w") as f:
    json.dump(ref, f)

# 6. Feature visualisation. A linear unit whose weights are a planted ring: its maximiser over the box [0, 1] is
# known (1 where the weight is positive, 0 where negative). Two ReLU conv channels that detect vertical and
# horizontal lines. The top inputs of a random pool, ranked here with forward hooks in float64.
yy, xx = np.mgrid[0:28, 0:28]
ring = np.where(np.abs(np.hypot(yy - 13.5, xx - 13.5) - 8.0) < 3.0, 1.0, -1.0) * (0.5 + 0.5 * rng.uniform(size=(28, 28)))


class FvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 5, bias=False)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(784, 4)

    def forward(self, x):
        h = self.relu(self.conv(x))
        return torch.cat([self.fc(torch.flatten(x, 1)), h.mean((2, 3))], 1)


fv = FvNet().eval()
with torch.no_grad():
    line = torch.tensor([0.0, -1.0, 2.0, -1.0, 0.0])
    fv.conv.weight[0, 0] = line.repeat(5, 1)      # columns -1, 2, -1: a vertical line
    fv.conv.weight[1, 0] = line.repeat(5, 1).t()  # a horizontal line
    fv.fc.weight[0] = torch.from_numpy(ring.reshape(-1)).float() * 0.05
    fv.fc.bias[0] = 0.1
torch.jit.script(fv).save(os.path.join(OUT, "fv.pt"))
save_npy("fv_ring.npy", ring[None, None])
pool = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(11))
save_npy("fv_pool.npy", pool.numpy())
acts = {}
hooks = [fv.fc.register_forward_hook(lambda m, i, o: acts.__setitem__("fc", o.double())),
         fv.relu.register_forward_hook(lambda m, i, o: acts.__setitem__("relu", o.double().mean((2, 3))))]
with torch.no_grad():
    fv(pool)
for h in hooks:
    h.remove()
top = {}
for name, a in acts.items():
    t = a.topk(5, 0)
    top[name] = {"index": t.indices.t().tolist(), "value": t.values.t().tolist()}
with open(os.path.join(OUT, "fv_top.json"), "w") as f:
    json.dump(top, f)
print("ok")

"""Real architectures for the capture tests: torchvision classification families (random weights, nothing is
downloaded) and torch.nn sequence models, scripted, each with an eager reference recorded by forward hooks.

Usage: make_zoo.py OUT_DIR [NAME ...]. For each model NAME it writes NAME.pt (torch.jit.script) and
NAME.ref.txt/.ref.bin in the format of make_fixtures.py: the input ("input x"), the output ("output out"),
and one "act" record per module call, named as capture names them: the module path, "_1", "_2" for repeated
calls, and for tuple outputs the first tensor under the path and the others as "<path>.h_n", "<path>.c_n"
(LSTM), "<path>.h_n" (GRU, RNN), "<path>.c" (LSTMCell), "<path>.attn_weights" (MultiheadAttention: every
head's map, [N, heads, L, S], also where the model asks for none, as capture does) or "<path>.outK". Tensors
are recorded batch first (an RNN's [layers, N, H] state as [N, layers, H]). A module called inside a loop of
forward() (an RNN cell stepped over time, a block applied k times) is one layer: its calls stacked after the
batch dimension, [N, calls, ...]. Models run in eval mode with gradients enabled, as capture runs them.
"""
import os
import re
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
import torchvision
from torchvision.models.convnext import CNBlockConfig

KNOWN = {"LSTM": ["", "h_n", "c_n"], "GRU": ["", "h_n"], "RNN": ["", "h_n"], "LSTMCell": ["", "c"],
         "MultiheadAttention": ["", "attn_weights"]}


def leaves(v, out):
    if isinstance(v, torch.Tensor) or v is None:
        out.append(v)
    elif isinstance(v, (tuple, list)):
        for e in v:
            leaves(e, out)
    else:
        out.append(None)


class SeqClassifier(nn.Module):
    """Embedding-free sequence classifier: [N, T, F] -> RNN -> last step -> Linear."""

    def __init__(self, kind, features=6, hidden=12, classes=4, batch_first=True):
        super().__init__()
        cls = {"lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.batch_first = batch_first
        self.rnn = cls(features, hidden, num_layers=2, batch_first=batch_first)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        if not self.batch_first:
            x = x.transpose(0, 1)
        out, _ = self.rnn(x)
        last = out[:, -1] if self.batch_first else out[-1]
        return self.fc(last)


class TransformerClassifier(nn.Module):
    """[N, T, F] -> Linear embedding -> 2 encoder layers -> mean over tokens -> Linear."""

    def __init__(self, features=6, d_model=16, classes=4):
        super().__init__()
        self.embed = nn.Linear(features, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead=2, dim_feedforward=32, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2)
        self.head = nn.Linear(d_model, classes)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(1))


class LoopedCell(nn.Module):
    """A hand-written recurrence: an LSTMCell stepped over the T steps of [N, T, F] in a Python loop (a
    prim::Loop in TorchScript, whose trip count is the input's length), then a block applied 3 times."""

    def __init__(self, features=6, hidden=10, classes=4):
        super().__init__()
        self.hidden = hidden
        self.cell = nn.LSTMCell(features, hidden)
        self.block = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        h = torch.zeros(x.size(0), self.hidden)
        c = torch.zeros(x.size(0), self.hidden)
        for t in range(x.size(1)):
            h, c = self.cell(x[:, t], (h, c))
        for _ in range(3):
            h = self.block(h)
        return self.fc(h)


def zoo():
    tv = torchvision.models
    img = lambda s: torch.rand(2, 3, s, s)
    seq = torch.randn(3, 5, 6)
    return OrderedDict([
        ("resnet18", (lambda: tv.resnet18(num_classes=10), img(64))),
        ("mobilenet_v2", (lambda: tv.mobilenet_v2(num_classes=10), img(64))),
        ("densenet121", (lambda: tv.densenet121(num_classes=10), img(32))),
        ("shufflenet_v2", (lambda: tv.shufflenet_v2_x0_5(num_classes=10), img(64))),
        ("efficientnet_b0", (lambda: tv.efficientnet_b0(num_classes=10), img(64))),
        ("convnext", (lambda: tv.convnext.ConvNeXt([CNBlockConfig(16, 32, 2), CNBlockConfig(32, None, 2)],
                                                   num_classes=10), img(32))),
        ("vit", (lambda: tv.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                              hidden_dim=32, mlp_dim=64, num_classes=10), img(32))),
        ("transformer", (lambda: TransformerClassifier(), seq)),
        ("lstm", (lambda: SeqClassifier("lstm"), seq)),
        ("lstm_seq_first", (lambda: SeqClassifier("lstm", batch_first=False), seq)),
        ("gru", (lambda: SeqClassifier("gru"), seq)),
        ("looped_cell", (lambda: LoopedCell(), seq)),
    ])


def maps_of_every_head(mod):
    """MultiheadAttention.forward that also keeps every head's attention map (mod._zoo_maps), whatever the
    caller asked for (forward hooks of PyTorch 1.13 see neither keyword arguments nor maps not asked for)."""
    plain = type(mod).forward

    def forward(*args, **kwargs):
        asked = kwargs.get("need_weights", True)
        kwargs["need_weights"] = True
        kwargs["average_attn_weights"] = False
        out, maps = plain(mod, *args, **kwargs)
        mod._zoo_maps = maps
        return out, (maps if asked else None)
    return forward


def reference(model, x):
    calls = {}
    records = []
    hooks = []
    for name, module in model.named_modules():
        if not name:
            continue

        def hook(mod, inputs, output, name=name):
            if isinstance(mod, nn.MultiheadAttention):
                output = (output[0], mod._zoo_maps)  # the maps of every head, as capture asks for them
            k = calls.get(name, 0)
            calls[name] = k + 1
            base = name if k == 0 else "%s_%d" % (name, k)
            out = []
            leaves(output, out)
            names = KNOWN.get(type(mod).__name__, [])
            batch = x.shape[0]
            for i, t in enumerate(out):
                if t is None:
                    continue
                suffix = names[i] if i < len(names) else ("" if i == 0 else "out%d" % i)
                if t.dim() >= 1 and t.shape[0] == batch:
                    bf = t
                elif t.dim() >= 2 and t.shape[1] == batch:
                    bf = t.transpose(0, 1)
                else:
                    continue
                records.append(("act", base + ("." + suffix if suffix else ""), bf.detach().clone()))

        hooks.append(module.register_forward_hook(hook))
        if isinstance(module, nn.MultiheadAttention):
            module.forward = maps_of_every_head(module)
    out = model(x)
    for h in hooks:
        h.remove()
    return out, stack_loop_calls(model, records)


def stack_loop_calls(model, records):
    """Modules called inside a loop (LoopedCell's cell, block and block's children) are one layer each: their
    calls ("cell", "cell_1", ... and "cell.c", "cell_1.c", ...) stacked at dim 1."""
    if not isinstance(model, LoopedCell):
        return records
    pattern = re.compile(r"^((?:cell|block)(?:\.\d+)?)(?:_\d+)?(\.c)?$")
    out, stacks = [], {}
    for kind, key, t in records:
        m = pattern.match(key)
        if not m:
            out.append((kind, key, t))
            continue
        name = m.group(1) + (m.group(2) or "")
        if name not in stacks:
            stacks[name] = []
            out.append((kind, name, stacks[name]))
        stacks[name].append(t)
    return [(k, n, torch.stack(t, 1) if isinstance(t, list) else t) for k, n, t in out]


def write_ref(path, records):
    with open(path + ".ref.txt", "w") as txt, open(path + ".ref.bin", "wb") as b:
        for kind, key, t in records:
            t = t.detach().to(torch.float32).contiguous()
            txt.write("%s %s %d %s\n" % (kind, key, t.dim(), " ".join(str(d) for d in t.shape)))
            b.write(t.numpy().tobytes())


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    wanted = sys.argv[2:]
    for name, (make, x) in zoo().items():
        if wanted and name not in wanted:
            continue
        torch.manual_seed(0)
        model = make().eval()
        torch.jit.script(model).save(os.path.join(out_dir, name + ".pt"))
        out, records = reference(model, x)
        write_ref(os.path.join(out_dir, name), [("input", "x", x), ("output", "out", out)] + records)
        print(name, "written:", len(records), "module calls")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()

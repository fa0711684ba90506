"""TorchScript CNNs for the batched layer-program path of the landscape evaluator (tests and benchmark).

usage: make_cnn_models.py OUTDIR [--bench]

Writes, with random weights and non-trivial BatchNorm statistics (so that folding BatchNorm into the
convolutions is exercised):
  resnet_script.pt / resnet_trace.pt  a small CIFAR-style ResNet (1x28x28 inputs, BN, residual adds with 1x1
                                      projection shortcuts, max-pool, global average pool, dropout, Linear)
  tv_resnet18.pt, tv_mobilenet_v2.pt, tv_squeezenet1_0.pt, tv_mobilenet_v3_small.pt, tv_shufflenet_v2_x0_5.pt
                                      torchvision's own architectures (random weights, 3x32x32 inputs)
  tv_convnext_mini.pt                 torchvision's ConvNeXt class with two small stages (permute, LayerNorm,
                                      GELU, layer scale, stochastic depth)
  tv_densenet_mini.pt                 torchvision's DenseNet class with two small blocks (a list of features
                                      grown by append, concatenated by every layer)
  unsupported.pt                      a CNN whose forward takes an absolute value (not a layer op)
  --bench: resnet20.pt                the reference paper's ResNet-20 for CIFAR-10 (3x32x32, 16/32/64 channels)
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet for small images: a 3x3 stem, stages of basic blocks, global average pool, Linear."""

    def __init__(self, in_ch, widths, blocks, classes=10, pool=False, dropout=0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        layers = []
        cin = widths[0]
        for i, w in enumerate(widths):
            for k in range(blocks):
                layers.append(Block(cin, w, 2 if (k == 0 and i > 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.layers(x)
        x = F.adaptive_avg_pool2d(x, 1)
        x = x.view(x.size(0), -1)
        return self.fc(self.drop(x))


class Rectified(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 28 * 28, 10)

    def forward(self, x):
        return self.fc(torch.flatten(torch.abs(self.conv(x)), 1))


def randomise_bn(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model.eval()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(11)
    small = randomise_bn(ResNet(1, (4, 8), 1, pool=True, dropout=0.25), gen)
    torch.jit.script(small).save(os.path.join(out, "resnet_script.pt"))
    torch.jit.trace(small, torch.rand(2, 1, 28, 28)).save(os.path.join(out, "resnet_trace.pt"))
    torch.jit.script(Rectified().eval()).save(os.path.join(out, "unsupported.pt"))
    import torchvision.models as tv
    torch.jit.script(randomise_bn(tv.resnet18(num_classes=10), gen)).save(os.path.join(out, "tv_resnet18.pt"))
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    mini = ConvNeXt([CNBlockConfig(16, 32, 2), CNBlockConfig(32, None, 1)], stochastic_depth_prob=0.1,
                    layer_scale=0.5, num_classes=10).eval()
    torch.jit.script(mini).save(os.path.join(out, "tv_convnext_mini.pt"))
    from torchvision.models.densenet import DenseNet
    dense = randomise_bn(DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, num_classes=10), gen)
    torch.jit.script(dense).save(os.path.join(out, "tv_densenet_mini.pt"))
    for name in ("mobilenet_v2", "squeezenet1_0", "mobilenet_v3_small", "shufflenet_v2_x0_5"):
        torch.jit.script(randomise_bn(getattr(tv, name)(num_classes=10), gen)).save(
            os.path.join(out, "tv_" + name + ".pt"))
    if "--bench" in sys.argv:
        r20 = randomise_bn(ResNet(3, (16, 32, 64), 3), gen)
        torch.jit.script(r20).save(os.path.join(out, "resnet20.pt"))


if __name__ == "__main__":
    with torch.no_grad():
        main()

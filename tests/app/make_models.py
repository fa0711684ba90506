"""Models for the app tests: torchvision MobileNetV2, an autoencoder, odd names, failing forwards, dict outputs
a layer of thresholds with inputs under them, a token model with
token arrays (random weights, torch.jit.script; nothing is downloaded).
Usage: make_models.py OUT_DIR."""
import os
import sys, torch, torch.nn as nn, torchvision
from typing import Dict, List
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
torch.jit.script(torchvision.models.mobilenet_v2(num_classes=10).eval()).save(out + "/mobilenet_v2.pt")
class AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
        self.dec = nn.Sequential(nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(8, 3, 4, 2, 1), nn.Sigmoid())
    def forward(self, x):
        return self.dec(self.enc(x))
torch.jit.script(AutoEncoder()).save(out + "/autoencoder.pt")
torch.jit.script(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten())).save(out + '/we"ird.pt')
class Fails(nn.Module):
    def forward(self, x):
        if x.size(1) != 5:
            raise ValueError("this model wants 5 features per sample")
        return x
torch.jit.script(Fails()).save(out + "/fails.pt")
class ReturnsNone(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
    def forward(self, x):
        y = self.fc(x)
        return None
torch.jit.script(ReturnsNone()).save(out + "/none.pt")
class TokenClassifier(nn.Module):
    """[N, T, F] -> Linear -> TransformerEncoder (2 layers, 4 heads) -> mean over tokens -> Linear."""
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 32)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2)
        self.head = nn.Linear(32, 5)
    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(1))
torch.jit.script(TokenClassifier().eval()).save(out + "/transformer.pt")
class Thresholds(nn.Module):
    """relu(x[0] - t_i) for 100 thresholds t_i in [0.3, 1]: every neuron is zero for a sample with x[0] < 0.3."""
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 100)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(100, 3)
        with torch.no_grad():
            self.fc1.weight.zero_()
            self.fc1.weight[:, 0] = 1.0
            self.fc1.bias.copy_(-torch.linspace(0.3, 1.0, 100))
    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))
torch.jit.script(Thresholds()).save(out + "/thresholds.pt")
import numpy as np  # noqa: E402
one = np.zeros((1, 4), np.float32)
one[0, 0] = 0.2  # one sample under every threshold
np.save(out + "/low_one.npy", one)
low = np.zeros((16, 4), np.float32)
low[:, 0] = np.linspace(0.0, 0.25, 16)  # 16 samples under every threshold: the layer is dead
np.save(out + "/low_16.npy", low)
class DictOut(nn.Module):
    """Per-pixel logits in a dict, as torchvision's segmentation models return them ({"out", "aux"})."""
    def __init__(self, keys: List[str]):
        super().__init__()
        self.body = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 3, 1)
        self.aux = nn.Conv2d(4, 3, 1)
        self.keys = keys
    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = torch.relu(self.body(x))
        out: Dict[str, torch.Tensor] = {}
        for i, k in enumerate(self.keys):
            out[k] = self.head(f) if i == len(self.keys) - 1 else self.aux(f)
        return out
torch.jit.script(DictOut(["aux", "out"])).save(out + "/dict_out.pt")
torch.jit.script(DictOut(["logits"])).save(out + "/dict_logits.pt")
torch.jit.script(DictOut(["mask", "depth"])).save(out + "/dict_two.pt")
class Tokens(nn.Module):
    """Token indices -> nn.Embedding(50, 16) -> TransformerEncoder -> mean over tokens -> Linear."""
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 1)
        self.fc = nn.Linear(16, 3)
    def forward(self, x):
        return self.fc(self.enc(self.emb(x)).mean(1))
torch.jit.script(Tokens().eval()).save(out + "/tokens.pt")
g = np.random.default_rng(0)
np.save(out + "/tokens.npy", g.integers(0, 50, size=(6, 10)).astype(np.int64))
np.save(out + "/tokens_far.npy", (np.arange(60) % 50 + 40).reshape(6, 10).astype(np.int64))  # 40 to 89
np.save(out + "/tokens_float.npy", g.integers(0, 50, size=(6, 10)).astype(np.float32))
# What users mistake for a model file: torch.save of a state_dict (zip, and the legacy pickle format).
torch.save(nn.Linear(2, 2).state_dict(), out + "/state_dict.pt")
torch.save(nn.Linear(2, 2).state_dict(), out + "/legacy_pickle.pt", _use_new_zipfile_serialization=False)
class Slow(nn.Module):
    """Seconds of matrix products per forward pass (an inspection to interrupt)."""
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(512, 512)
        self.out = nn.Linear(512, 4)
    def forward(self, x):
        for _ in range(150):
            x = torch.tanh(self.fc(x))
        return self.out(x)
torch.jit.script(Slow()).save(out + "/slow.pt")

"""Models for the app tests: torchvision MobileNetV2, an autoencoder, odd names and failing forwards
(random weights, torch.jit.script; nothing is downloaded). Usage: make_models.py OUT_DIR."""
import os
import sys, torch, torch.nn as nn, torchvision
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

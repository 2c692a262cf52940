#!/usr/bin/python3
"""Reference for tests/test_inception.c: the FID InceptionV3 (models.md §A,
written from the spec, not copied from pytorch-fid) in PyTorch with
deterministic random weights; writes the goldens into tests/data/inception/.
Run with Debian's torch: /usr/bin/python3 tests/reference/inception_ref.py
[--save-checkpoint PATH] (a torch.save state dict with the real key names,
for converter/CLI checks; never committed).

Generator shared with the C test (tests/test_inception.c, tw_* helpers there):
  SplitMix64 (tests/test.h), u = test_rng_float in [-1,1) with 24 bits.
  Weights: ONE stream seeded WEIGHT_SEED, tensors in state-dict order (the 94
  convs of models.md Appendix 1: conv.weight, bn.weight, bn.bias,
  bn.running_mean, bn.running_var; then fc.weight, fc.bias), elements in C
  order, every value in float32 arithmetic:
    conv.weight      u * (float)sqrt(6/fan_in)      (fan_in = in*kH*kW)
    bn.weight        1 + 0.25f*u
    bn.bias          0.2f*u
    bn.running_mean  0.2f*u
    bn.running_var   0.75f + 0.5f*|u|
    fc.weight        u * (float)sqrt(3/2048)
    fc.bias          0.1f*u
  Then the BatchNorm running statistics are calibrated like a trained
  network's (otherwise random offsets leave many ReLU features dead or
  nearly so): one pass over the 16 golden inputs in training mode with
  momentum 1 replaces running_mean/var by the batch statistics.  Those
  17,216 x 2 floats are committed (bn_stats.f32: per conv in order, mean then
  var) and the C test substitutes them for the generated values.
  Inputs (already "preprocessed": 3x299x299 in about [-1,1]): image i has its
  own stream seeded IMAGE_SEED + i; G = 4 + 6*(i%5); first 3*G*G grid values
  g[c][gy][gx] = u, then for c, y, x in C order
    v = 0.8f*g[c][y*G/299][x*G/299] + amp*u,   amp = 0.05f*(1 + i%4).
"""
import hashlib
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

WEIGHT_SEED = 0x1CE9710
IMAGE_SEED = 0x5EED0000
NIMG = 16
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "inception")

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


class Stream:
    """SplitMix64 as a counter: draw k (1-based) mixes seed + k*gamma."""

    def __init__(self, seed):
        self.seed = np.uint64(seed)
        self.pos = 0

    def floats(self, n):
        with np.errstate(over="ignore"):
            k = np.arange(self.pos + 1, self.pos + n + 1, dtype=np.uint64)
            z = self.seed + k * np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        self.pos += n
        v = (z >> np.uint64(40)).astype(np.int64) - (1 << 23)
        return (v.astype(np.float64) / float(1 << 23)).astype(np.float32)


# ------------------------------------------------------------------ model

class BasicConv(nn.Module):
    def __init__(self, cin, cout, k, stride=1, pad=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avgpool(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    def __init__(self, cin, pf):
        super().__init__()
        self.branch1x1 = BasicConv(cin, 64, 1)
        self.branch5x5_1 = BasicConv(cin, 48, 1)
        self.branch5x5_2 = BasicConv(48, 64, 5, pad=2)
        self.branch3x3dbl_1 = BasicConv(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv(64, 96, 3, pad=1)
        self.branch3x3dbl_3 = BasicConv(96, 96, 3, pad=1)
        self.branch_pool = BasicConv(cin, pf, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b2 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        b4 = self.branch_pool(avgpool(x))
        return torch.cat([b1, b2, b3, b4], 1)


class BlockB(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv(64, 96, 3, pad=1)
        self.branch3x3dbl_3 = BasicConv(96, 96, 3, stride=2)

    def forward(self, x):
        b1 = self.branch3x3(x)
        b2 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b1, b2, F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):
    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = BasicConv(cin, 192, 1)
        self.branch7x7_1 = BasicConv(cin, c7, 1)
        self.branch7x7_2 = BasicConv(c7, c7, (1, 7), pad=(0, 3))
        self.branch7x7_3 = BasicConv(c7, 192, (7, 1), pad=(3, 0))
        self.branch7x7dbl_1 = BasicConv(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv(c7, c7, (7, 1), pad=(3, 0))
        self.branch7x7dbl_3 = BasicConv(c7, c7, (1, 7), pad=(0, 3))
        self.branch7x7dbl_4 = BasicConv(c7, c7, (7, 1), pad=(3, 0))
        self.branch7x7dbl_5 = BasicConv(c7, 192, (1, 7), pad=(0, 3))
        self.branch_pool = BasicConv(cin, 192, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b2 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b3 = x
        for m in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                  self.branch7x7dbl_4, self.branch7x7dbl_5):
            b3 = m(b3)
        b4 = self.branch_pool(avgpool(x))
        return torch.cat([b1, b2, b3, b4], 1)


class BlockD(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv(cin, 192, 1)
        self.branch3x3_2 = BasicConv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv(192, 192, (1, 7), pad=(0, 3))
        self.branch7x7x3_3 = BasicConv(192, 192, (7, 1), pad=(3, 0))
        self.branch7x7x3_4 = BasicConv(192, 192, 3, stride=2)

    def forward(self, x):
        b1 = self.branch3x3_2(self.branch3x3_1(x))
        b2 = x
        for m in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b2 = m(b2)
        return torch.cat([b1, b2, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):
    def __init__(self, cin, maxpool):
        super().__init__()
        self.maxpool = maxpool
        self.branch1x1 = BasicConv(cin, 320, 1)
        self.branch3x3_1 = BasicConv(cin, 384, 1)
        self.branch3x3_2a = BasicConv(384, 384, (1, 3), pad=(0, 1))
        self.branch3x3_2b = BasicConv(384, 384, (3, 1), pad=(1, 0))
        self.branch3x3dbl_1 = BasicConv(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv(448, 384, 3, pad=1)
        self.branch3x3dbl_3a = BasicConv(384, 384, (1, 3), pad=(0, 1))
        self.branch3x3dbl_3b = BasicConv(384, 384, (3, 1), pad=(1, 0))
        self.branch_pool = BasicConv(cin, 192, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        t = self.branch3x3_1(x)
        b2 = torch.cat([self.branch3x3_2a(t), self.branch3x3_2b(t)], 1)
        t = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3 = torch.cat([self.branch3x3dbl_3a(t), self.branch3x3dbl_3b(t)], 1)
        p = F.max_pool2d(x, 3, stride=1, padding=1) if self.maxpool else avgpool(x)
        return torch.cat([b1, b2, b3, self.branch_pool(p)], 1)


class FIDInception(nn.Module):
    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv(32, 64, 3, pad=1)
        self.Conv2d_3b_1x1 = BasicConv(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32)
        self.Mixed_5c = BlockA(256, 64)
        self.Mixed_5d = BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, 128)
        self.Mixed_6c = BlockC(768, 160)
        self.Mixed_6d = BlockC(768, 160)
        self.Mixed_6e = BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, False)
        self.Mixed_7c = BlockE(2048, True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x):
        """x: the 3x299x299 network input (after resize and 2x-1)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for b in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                  self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                  self.Mixed_7c):
            x = b(x)
        f = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return f, self.fc(f)


def fill_weights(model):
    st = Stream(WEIGHT_SEED)
    sd = model.state_dict()
    out = {}
    h = hashlib.sha256()
    for name, t in sd.items():
        if name.endswith("num_batches_tracked"):
            out[name] = t
            continue
        u = st.floats(t.numel()).reshape(tuple(t.shape))
        if name.endswith("conv.weight"):
            fan_in = t.shape[1] * t.shape[2] * t.shape[3]
            v = u * np.float32(math.sqrt(6.0 / fan_in))
        elif name.endswith("bn.weight"):
            v = np.float32(1) + np.float32(0.25) * u
        elif name.endswith("bn.bias") or name.endswith("bn.running_mean"):
            v = np.float32(0.2) * u
        elif name.endswith("bn.running_var"):
            v = np.float32(0.75) + np.float32(0.5) * np.abs(u)
        elif name == "fc.weight":
            v = u * np.float32(math.sqrt(3.0 / 2048))
        elif name == "fc.bias":
            v = np.float32(0.1) * u
        else:
            raise SystemExit("unexpected tensor " + name)
        assert v.dtype == np.float32
        h.update(v.tobytes())
        out[name] = torch.from_numpy(np.ascontiguousarray(v))
    model.load_state_dict(out)
    return h.hexdigest()


def make_inputs(n, size=299):
    xs = np.empty((n, 3, size, size), dtype=np.float32)
    for i in range(n):
        st = Stream(IMAGE_SEED + i)
        G = 4 + 6 * (i % 5)
        g = st.floats(3 * G * G).reshape(3, G, G)
        amp = np.float32(0.05) * np.float32(1 + i % 4)
        idx = (np.arange(size) * G) // size
        base = np.float32(0.8) * g[:, idx][:, :, idx]
        noise = amp * st.floats(3 * size * size).reshape(3, size, size)
        xs[i] = base + noise
    return xs


def main():
    ckpt = None
    if len(sys.argv) == 3 and sys.argv[1] == "--save-checkpoint":
        ckpt = sys.argv[2]
    torch.set_num_threads(2)
    model = FIDInception().eval()
    wsha = fill_weights(model)
    nparams = sum(p.numel() for p in model.parameters())
    assert nparams == 23850960, nparams
    xs = make_inputs(NIMG)
    xsha = hashlib.sha256(xs.tobytes()).hexdigest()
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(xs))
    model.eval()
    stats = []
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            h.update(t.numpy().astype("<f4").tobytes())
        if name.endswith("running_mean") or name.endswith("running_var"):
            stats.append(t.numpy().astype("<f4"))
    wsha = h.hexdigest()
    if ckpt:
        torch.save(model.state_dict(), ckpt)
    with torch.no_grad():
        f, lg = model(torch.from_numpy(xs))
        f, lg = f.numpy(), lg.numpy()
        # How much two legitimate PyTorch runs differ: 1 thread, and one
        # image at a time.
        torch.set_num_threads(1)
        f1 = model(torch.from_numpy(xs))[0].numpy()
        torch.set_num_threads(2)
        fb = np.concatenate([model(torch.from_numpy(xs[i:i + 1]))[0].numpy() for i in range(NIMG)])
        # float64 forward: the scale of float32 rounding through the network.
        m64 = model.double()
        f64 = m64(torch.from_numpy(xs).double())[0].numpy()
        model.float()
        f64.tofile("/tmp/inception_ref_f64.bin")
    sd = f.astype(np.float64).std(axis=0, ddof=1)
    live = sd > 0
    for tag, g in (("1thread", f1), ("batch1", fb), ("float64", f64)):
        d = np.abs(g.astype(np.float64) - f)
        print("torch %s vs 2 threads: max |d|/sd = %.3g, max |d| = %.3g"
              % (tag, (d[:, live] / sd[live]).max(), d.max()))
    print("features: mean %.4g, sd over images: min %.3g median %.3g max %.3g, zero-sd %d"
          % (f.mean(), sd.min(), np.median(sd), sd.max(), int((~live).sum())))
    os.makedirs(OUT, exist_ok=True)
    np.concatenate(stats).tofile(os.path.join(OUT, "bn_stats.f32"))
    f.astype("<f4").tofile(os.path.join(OUT, "features.f32"))
    lg.astype("<f4").tofile(os.path.join(OUT, "logits.f32"))
    with open(os.path.join(OUT, "golden.txt"), "w") as fp:
        fp.write("# written by tests/reference/inception_ref.py (torch %s); do not edit\n"
                 % torch.__version__)
        fp.write("images %d\nweights_sha256 %s\ninputs_sha256 %s\n" % (NIMG, wsha, xsha))
    print("weights sha256", wsha)
    print("inputs sha256", xsha)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Builds the small checkpoint fixtures of tests/test_convert.py with the real
PyTorch (run once with Debian's /usr/bin/python3, torch 1.13, numpy):

    /usr/bin/python3 tests/reference/make_checkpoint_fixtures.py

Writes tests/data/convert/*: the same few tensors in every container
(torch zip, torch legacy, TorchScript, safetensors, npz), tiny DINO / DINOv2
ViTs with the real key names (and a DINO training checkpoint with its
wrappers), two malicious pickles, and expected.json with, for every tensor,
its dtype, shape, the SHA-256 of its float32 little-endian row-major bytes
and (for the small container fixtures) its values.  The outputs are
committed; the tests themselves need no torch.
"""
import argparse
import collections
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "convert")
ST_NAME = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
           torch.float64: "F64", torch.int64: "I64"}
DT_NAME = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16",
           torch.float64: "f64", torch.int64: "i64"}


def f32_sha(t):
    a = t.detach().to(torch.float32).contiguous().numpy().astype("<f4")
    return hashlib.sha256(a.tobytes()).hexdigest()


def describe(sd, values=False):
    out = collections.OrderedDict()
    for k, t in sd.items():
        t = t.detach()
        e = {"dtype": DT_NAME[t.dtype], "shape": list(t.shape)}
        if t.dtype != torch.int64:
            e["sha256_f32"] = f32_sha(t)
        if values:
            e["values"] = t.reshape(-1).double().tolist() if t.dtype != torch.int64 \
                else t.reshape(-1).tolist()
        out[k] = e
    return out


def write_safetensors(path, sd):
    """safetensors by hand (format: models.md §E.6): u64 header length, JSON
    padded with spaces to a multiple of 8, then the tensors back to back."""
    header, blobs, pos = collections.OrderedDict(), [], 0
    for k, t in sd.items():
        t = t.detach().contiguous()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            raw = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": ST_NAME[t.dtype], "shape": list(t.shape),
                     "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def container_sd():
    g = torch.Generator().manual_seed(1234)
    base = torch.randn(3, 4, generator=g)
    shared = torch.randn(2, 5, generator=g)
    sd = collections.OrderedDict()
    sd["a.weight"] = torch.randn(2, 3, generator=g)
    sd["t.weight"] = base.t()                    # non-contiguous: strides (1, 4)
    sd["s.first"] = shared[0]                    # shared storage, offset 0
    sd["s.second"] = shared[1]                   # shared storage, offset 5
    sd["s.slice"] = shared[:, 1:4]               # offset 1, strides (5, 1)
    sd["scalar"] = torch.tensor(3.5)
    sd["half"] = torch.randn(3, 2, generator=g).half()
    sd["bf"] = torch.randn(5, generator=g).bfloat16()
    sd["dbl"] = torch.randn(2, 2, generator=g).double()
    sd["bn.num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
    sd["param"] = torch.nn.Parameter(torch.randn(3, generator=g))
    return sd


def vit_sd(D=8, depth=2, p=2, G=3, hidden=32, dinov2=False, R=0, swiglu=False, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g)
    sd = collections.OrderedDict()
    sd["cls_token"] = r(1, 1, D)
    sd["pos_embed"] = r(1, 1 + G * G, D)
    if R:
        sd["register_tokens"] = r(1, R, D)
    if dinov2:
        sd["mask_token"] = r(1, D)
    sd["patch_embed.proj.weight"] = r(D, 3, p, p)
    sd["patch_embed.proj.bias"] = r(D)
    for i in range(depth):
        b = "blocks.%d." % i
        sd[b + "norm1.weight"] = r(D)
        sd[b + "norm1.bias"] = r(D)
        sd[b + "attn.qkv.weight"] = r(3 * D, D)
        sd[b + "attn.qkv.bias"] = r(3 * D)
        sd[b + "attn.proj.weight"] = r(D, D)
        sd[b + "attn.proj.bias"] = r(D)
        if dinov2:
            sd[b + "ls1.gamma"] = r(D)
        sd[b + "norm2.weight"] = r(D)
        sd[b + "norm2.bias"] = r(D)
        if swiglu:
            sd[b + "mlp.w12.weight"] = r(2 * hidden, D)
            sd[b + "mlp.w12.bias"] = r(2 * hidden)
            sd[b + "mlp.w3.weight"] = r(D, hidden)
            sd[b + "mlp.w3.bias"] = r(D)
        else:
            sd[b + "mlp.fc1.weight"] = r(hidden, D)
            sd[b + "mlp.fc1.bias"] = r(hidden)
            sd[b + "mlp.fc2.weight"] = r(D, hidden)
            sd[b + "mlp.fc2.bias"] = r(D)
        if dinov2:
            sd[b + "ls2.gamma"] = r(D)
    sd["norm.weight"] = r(D)
    sd["norm.bias"] = r(D)
    return sd


def dino_head(D=8, hh=16, bn=4, out=10, seed=5):
    g = torch.Generator().manual_seed(seed)
    h = collections.OrderedDict()
    h["head.mlp.0.weight"] = torch.randn(hh, D, generator=g)
    h["head.mlp.0.bias"] = torch.randn(hh, generator=g)
    h["head.mlp.2.weight"] = torch.randn(hh, hh, generator=g)
    h["head.mlp.2.bias"] = torch.randn(hh, generator=g)
    h["head.mlp.4.weight"] = torch.randn(bn, hh, generator=g)
    h["head.mlp.4.bias"] = torch.randn(bn, generator=g)
    h["head.last_layer.weight_g"] = torch.ones(out, 1)
    h["head.last_layer.weight_v"] = torch.randn(out, bn, generator=g)
    return h


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1, bias=False)
        self.bn = torch.nn.BatchNorm2d(2, eps=0.001)
        self.fc = torch.nn.Linear(2, 3)
        with torch.no_grad():
            self.bn.running_mean.copy_(torch.tensor([0.25, -0.5]))
            self.bn.running_var.copy_(torch.tensor([1.5, 2.0]))

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


class Evil:
    """Its pickle calls os.system: the converter must refuse it unexecuted."""

    def __reduce__(self):
        return (os.system, ("touch fdd_pwned_marker",))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    expected = collections.OrderedDict()

    sd = container_sd()
    torch.save(sd, os.path.join(OUT, "sd_zip.pth"))
    torch.save(sd, os.path.join(OUT, "sd_legacy.pth"), _use_new_zipfile_serialization=False)
    expected["sd_zip.pth"] = describe(sd, values=True)
    expected["sd_legacy.pth"] = describe(sd, values=True)

    st = collections.OrderedDict((k, sd[k].detach().contiguous())
                                 for k in ("a.weight", "t.weight", "scalar", "half", "bf", "dbl"))
    write_safetensors(os.path.join(OUT, "sd.safetensors"), st)
    expected["sd.safetensors"] = describe(st, values=True)

    arrs = collections.OrderedDict([("a.weight", sd["a.weight"].numpy()),
                                    ("fort", np.asfortranarray(sd["t.weight"].numpy())),
                                    ("half", sd["half"].numpy()),
                                    ("dbl", sd["dbl"].numpy())])
    np.savez(os.path.join(OUT, "sd.npz"), **arrs)
    np.savez_compressed(os.path.join(OUT, "sd_compressed.npz"), **arrs)
    assert arrs["fort"].flags.f_contiguous and not arrs["fort"].flags.c_contiguous
    npz_sd = collections.OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v)))
                                     for k, v in arrs.items())
    expected["sd.npz"] = describe(npz_sd, values=True)
    expected["sd_compressed.npz"] = expected["sd.npz"]

    m = torch.jit.script(Tiny().eval())
    torch.jit.save(m, os.path.join(OUT, "script.pt"))
    expected["script.pt"] = describe(m.state_dict(),
                                     values=True)

    # Tiny ViTs with the real key structure (D=8, 2 heads, patch 2, 3x3 grid).
    dino = vit_sd(seed=1)
    torch.save(dino, os.path.join(OUT, "dino_tiny.pth"))
    expected["dino_tiny.pth"] = describe(dino)

    teacher = collections.OrderedDict([("backbone." + k, v) for k, v in vit_sd(seed=2).items()])
    teacher.update(dino_head())
    student = collections.OrderedDict([("module." + k, v + 1) for k, v in teacher.items()])
    ns = argparse.Namespace(arch="vit_tiny", lr=0.1, momentum=np.float64(0.996))
    full = {"student": student, "teacher": teacher, "epoch": 5, "args": ns,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
            "dino_loss": {"center": torch.zeros(1, 10)}}
    torch.save(full, os.path.join(OUT, "dino_tiny_full.pth"))
    expected["dino_tiny_full.pth"] = describe(collections.OrderedDict(
        (k[len("backbone."):] if k.startswith("backbone.") else k, v) for k, v in teacher.items()))

    v2 = collections.OrderedDict((k, v.half()) for k, v in vit_sd(dinov2=True, R=2, seed=3).items())
    torch.save(v2, os.path.join(OUT, "dinov2_tiny_reg_legacy.pth"),
               _use_new_zipfile_serialization=False)
    expected["dinov2_tiny_reg_legacy.pth"] = describe(v2)

    sw = vit_sd(dinov2=True, swiglu=True, hidden=16, seed=4)
    write_safetensors(os.path.join(OUT, "dinov2_tiny_swiglu.safetensors"), sw)
    expected["dinov2_tiny_swiglu.safetensors"] = describe(sw)

    # Malicious: a real torch.save of an object whose pickle calls os.system.
    torch.save({"w": torch.zeros(2), "x": Evil()}, os.path.join(OUT, "evil_zip.pth"))
    torch.save({"w": torch.zeros(2), "x": Evil()}, os.path.join(OUT, "evil_legacy.pth"),
               _use_new_zipfile_serialization=False)

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=0, sort_keys=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %s: %d files, %d bytes" % (OUT, len(os.listdir(OUT)), total))


if __name__ == "__main__":
    sys.exit(main())

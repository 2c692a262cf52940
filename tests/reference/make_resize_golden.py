#!/usr/bin/python3
"""Reference outputs for tests/test_resize.c (run with /usr/bin/python3, which
has Pillow 9.4, torch 1.13 and torchvision 0.14):

    /usr/bin/python3 tests/reference/make_resize_golden.py [outdir]
    /usr/bin/python3 tests/reference/make_resize_golden.py --random N SEED outdir

The second form writes N random cases instead (a wider check, not committed);
run the C test on them with RESIZE_GOLDEN_DIR=outdir build/tests/test_resize.

Writes <outdir>/golden.txt (default tests/data/resize) with one case a line:

    op filter kind src_w src_h seed out_w out_h digest-or-file [stride]

and, for torch bilinear (float tolerance, not bit-exact), small raw float32
files holding every stride-th output value.  The source images are made
from the case line alone with SplitMix64 or a closed formula; test_resize.c
makes the same ones (see gen_rgb / gen_plane there).
"""
import hashlib
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image

M64 = (1 << 64) - 1


def splitmix(state):
    """SplitMix64 as in tests/test.h: returns (new_state, value)."""
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def gen_rgb(kind, w, h, seed):
    """uint8 H x W x 3.  noise: one SplitMix64 draw per pixel, bytes 7, 6, 5
    (from the top) as R, G, B.  edges: hard stripes, a ramp, a hashed blue."""
    a = np.zeros((h, w, 3), dtype=np.uint8)
    if kind == "noise":
        s = seed
        for y in range(h):
            for x in range(w):
                s, v = splitmix(s)
                a[y, x] = (v >> 56, (v >> 48) & 255, (v >> 40) & 255)
    elif kind == "edges":
        for y in range(h):
            for x in range(w):
                r = 255 if ((x // 3 + y // 5) & 1) else 0
                g = (x * 255) // max(w - 1, 1)
                b = ((x * x + 7 * y) * seed) & 255
                a[y, x] = (r, g, b)
    else:
        raise ValueError(kind)
    return a


def gen_plane(kind, w, h, seed):
    """float32 H x W.  noise/edges: channel 0 of gen_rgb as float (what
    clean-fid feeds Pillow); unit: that divided by 255 (pytorch-fid's [0,1]);
    rndf: test_rng_float(s) * 300 (negative and > 255 values too)."""
    if kind in ("noise", "edges"):
        return gen_rgb(kind, w, h, seed)[:, :, 0].astype(np.float32)
    if kind == "unit":
        return gen_rgb("noise", w, h, seed)[:, :, 0].astype(np.float32) / np.float32(255)
    if kind == "rndf":
        out = np.zeros((h, w), dtype=np.float32)
        s = seed
        for y in range(h):
            for x in range(w):
                s, v = splitmix(s)
                i = (v >> 40) - (1 << 23)
                out[y, x] = np.float32(i) / np.float32(1 << 23) * np.float32(300)
        return out
    raise ValueError(kind)


FILTERS = {"box": Image.BOX, "bilinear": Image.BILINEAR, "hamming": Image.HAMMING,
           "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}


def sha(b):
    return hashlib.sha256(b).hexdigest()


def f32_bytes(a):
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def tf1_bilinear(x, out_w, out_h):
    """TF1 resize_bilinear (align_corners=False), the float32 op sequence of
    torch-fidelity's 'slow' method, written out from its description."""
    h, w = x.shape
    t = torch.from_numpy(x)
    sx = torch.tensor(w / out_w, dtype=torch.float32)
    sy = torch.tensor(h / out_h, dtype=torch.float32)
    gx = torch.arange(0, out_w, 1, dtype=torch.float32) * sx
    gy = torch.arange(0, out_h, 1, dtype=torch.float32) * sy
    xl = gx.long(); xh = (xl + 1).clamp_max(w - 1); fx = gx - xl.float()
    yl = gy.long(); yh = (yl + 1).clamp_max(h - 1); fy = gy - yl.float()
    a00 = t[yl][:, xl]; a01 = t[yl][:, xh]; a10 = t[yh][:, xl]; a11 = t[yh][:, xh]
    top = a00 + (a01 - a00) * fx.view(1, -1)
    bot = a10 + (a11 - a10) * fx.view(1, -1)
    return (top + (bot - top) * fy.view(-1, 1)).numpy()


RANDOM = None  # (count, random.Random) in --random mode


def rdim(r):
    return r.choice([r.randint(1, 8), r.randint(1, 64), r.randint(1, 400), r.randint(200, 700)])


def pick(fixed, op):
    """The fixed case list, or random cases of the same shape."""
    if RANDOM is None:
        return fixed
    n, r = RANDOM
    out = []
    while len(out) < n:
        sw, sh, seed = rdim(r), rdim(r), r.randint(1, 1 << 40)
        if sw * sh > 150000:
            continue
        ow, oh = rdim(r), rdim(r)
        f = r.choice(sorted(FILTERS))
        kind = r.choice(["noise", "edges"] if op in ("u8", "clean", "tv", "crop")
                        else ["noise", "rndf", "unit", "edges"])
        if op in ("u8", "f32"):
            out.append((f, kind, sw, sh, seed, ow, oh))
        elif op == "clean":
            out.append((kind, sw, sh, seed))
        elif op == "tv":
            size = r.choice([224, 256, r.randint(1, 300)])
            out.append((kind, sw, sh, seed, size, r.randint(1, size + 20)))
        elif op in ("crop", "tf1"):
            out.append((kind, sw, sh, seed, ow, oh))
        else:
            out.append((kind, sw, sh, seed, ow, oh, 1 + ow * oh // 3000))
    return out


def main():
    global RANDOM
    args = sys.argv[1:]
    if args[:1] == ["--random"]:
        import random
        RANDOM = (int(args[1]), random.Random(int(args[2])))
        args = args[3:]
    outdir = args[0] if args else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data", "resize")
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    lines = []

    # Pillow 8-bit RGB.  (filter, kind, sw, sh, seed, ow, oh)
    u8 = [
        ("bicubic", "noise", 64, 48, 1, 299, 299), ("bicubic", "noise", 500, 375, 2, 299, 299),
        ("bicubic", "edges", 500, 375, 3, 299, 299), ("bicubic", "noise", 37, 29, 4, 17, 23),
        ("bicubic", "noise", 1, 50, 5, 299, 299), ("bicubic", "noise", 50, 1, 6, 7, 3),
        ("bicubic", "noise", 3000, 2, 7, 299, 299), ("bicubic", "noise", 2, 3000, 8, 299, 299),
        ("bicubic", "edges", 299, 299, 9, 299, 299), ("bicubic", "noise", 100, 80, 10, 100, 40),
        ("bicubic", "noise", 100, 80, 11, 33, 80), ("bicubic", "noise", 1, 1, 12, 5, 5),
        ("bicubic", "noise", 5, 5, 13, 1, 1), ("bicubic", "edges", 33, 17, 14, 1000, 9),
        ("bicubic", "noise", 800, 3, 15, 1, 299), ("bicubic", "edges", 17, 1, 16, 1, 1),
        ("bicubic", "edges", 1024, 768, 17, 299, 299), ("bicubic", "noise", 300, 300, 18, 299, 299),
        ("bilinear", "noise", 64, 48, 21, 299, 299), ("bilinear", "edges", 500, 375, 22, 97, 61),
        ("bilinear", "noise", 3000, 2, 23, 299, 299),
        ("lanczos", "noise", 64, 48, 31, 299, 299), ("lanczos", "edges", 500, 375, 32, 97, 61),
        ("lanczos", "noise", 37, 29, 33, 40, 17),
        ("box", "noise", 64, 48, 41, 299, 299), ("box", "edges", 500, 375, 42, 97, 61),
        ("hamming", "noise", 64, 48, 51, 299, 299), ("hamming", "edges", 500, 375, 52, 97, 61),
    ]
    for f, kind, sw, sh, seed, ow, oh in pick(u8, "u8"):
        im = Image.fromarray(gen_rgb(kind, sw, sh, seed), "RGB")
        out = np.asarray(im.resize((ow, oh), FILTERS[f]))
        lines.append(f"u8 {f} {kind} {sw} {sh} {seed} {ow} {oh} {sha(out.tobytes())}")

    # Pillow mode "F" planes.
    f32 = [
        ("bicubic", "noise", 64, 48, 61, 299, 299), ("bicubic", "rndf", 500, 375, 62, 299, 299),
        ("bicubic", "rndf", 37, 29, 63, 17, 23), ("bicubic", "noise", 3000, 2, 64, 299, 299),
        ("bicubic", "rndf", 2, 3000, 65, 299, 299), ("bicubic", "rndf", 100, 80, 66, 100, 40),
        ("bicubic", "rndf", 100, 80, 67, 33, 80), ("bicubic", "rndf", 1, 1, 68, 5, 5),
        ("bicubic", "edges", 1024, 768, 69, 299, 299), ("bicubic", "rndf", 299, 299, 70, 299, 299),
        ("bilinear", "rndf", 64, 48, 71, 299, 299), ("bilinear", "rndf", 500, 375, 72, 97, 61),
        ("lanczos", "rndf", 64, 48, 73, 299, 299), ("lanczos", "rndf", 500, 375, 74, 97, 61),
        ("box", "rndf", 64, 48, 75, 299, 299), ("box", "rndf", 500, 375, 76, 97, 61),
        ("hamming", "rndf", 64, 48, 77, 299, 299), ("hamming", "rndf", 500, 375, 78, 97, 61),
    ]
    for f, kind, sw, sh, seed, ow, oh in pick(f32, "f32"):
        im = Image.fromarray(gen_plane(kind, sw, sh, seed), "F")
        out = np.asarray(im.resize((ow, oh), FILTERS[f]))
        lines.append(f"f32 {f} {kind} {sw} {sh} {seed} {ow} {oh} {sha(f32_bytes(out))}")

    # clean-fid "clean" mode, as cleanfid/resize.py make_resizer("PIL",
    # quantize_after=False, "bicubic", ...) does it: per channel "F", clip.
    clean = [("noise", 64, 48, 81), ("edges", 300, 200, 82), ("noise", 299, 299, 83),
             ("edges", 1024, 768, 84)]
    for kind, sw, sh, seed in pick(clean, "clean"):
        x = gen_rgb(kind, sw, sh, seed)
        chans = []
        for c in range(3):
            im = Image.fromarray(x[:, :, c].astype(np.float32), mode="F")
            chans.append(np.asarray(im.resize((299, 299), resample=Image.BICUBIC)
                                    ).clip(0, 255).reshape(299, 299, 1))
        out = np.concatenate(chans, axis=2)
        lines.append(f"clean bicubic {kind} {sw} {sh} {seed} 299 299 {sha(f32_bytes(out))}")

    # torchvision Resize(size, BICUBIC) + CenterCrop(crop) on PIL images.
    tv = [("noise", 500, 375, 91, 256, 224), ("edges", 375, 500, 92, 256, 224),
          ("noise", 256, 256, 93, 256, 224), ("noise", 100, 60, 94, 256, 224),
          ("edges", 1000, 3, 95, 256, 224), ("noise", 225, 301, 96, 224, 224),
          ("edges", 640, 427, 97, 256, 224), ("noise", 333, 500, 98, 224, 224)]
    for kind, sw, sh, seed, size, crop in pick(tv, "tv"):
        tf = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
                        T.CenterCrop(crop)])
        out = np.asarray(tf(Image.fromarray(gen_rgb(kind, sw, sh, seed), "RGB")))
        assert out.shape == (crop, crop, 3)
        lines.append(f"tv bicubic {kind} {sw} {sh} {seed} {size} {crop} {sha(out.tobytes())}")

    # CenterCrop alone, including padding.  ow/oh are the crop width/height.
    crops = [("noise", 100, 60, 101, 224, 224), ("noise", 300, 100, 102, 224, 224),
             ("noise", 225, 227, 103, 224, 224), ("edges", 341, 256, 104, 224, 224),
             ("noise", 7, 9, 105, 4, 12), ("noise", 10, 3, 106, 13, 2)]
    for kind, sw, sh, seed, cw, ch in pick(crops, "crop"):
        out = np.asarray(T.CenterCrop((ch, cw))(Image.fromarray(gen_rgb(kind, sw, sh, seed), "RGB")))
        assert out.shape == (ch, cw, 3)
        lines.append(f"crop none {kind} {sw} {sh} {seed} {cw} {ch} {sha(out.tobytes())}")

    # TF1 resize_bilinear (bit-exact with the torch-fidelity op sequence).
    tf1 = [("noise", 64, 48, 111, 299, 299), ("rndf", 512, 384, 112, 299, 299),
           ("noise", 299, 299, 113, 299, 299), ("rndf", 37, 29, 114, 16, 40),
           ("rndf", 1, 7, 115, 5, 5), ("unit", 256, 256, 116, 224, 224)]
    for kind, sw, sh, seed, ow, oh in pick(tf1, "tf1"):
        out = tf1_bilinear(gen_plane(kind, sw, sh, seed), ow, oh)
        lines.append(f"tf1 bilinear {kind} {sw} {sh} {seed} {ow} {oh} {sha(f32_bytes(out))}")

    # torch F.interpolate bilinear: sampled raw values (checked in ulp).  The
    # plane is channel 0 of a 3-channel batch, as pytorch-fid and clean-fid
    # legacy_pytorch call it: torch 1.13 CPU takes another kernel for C == 1,
    # whose results differ from the C >= 2 one by up to 2 ulp on [0,1] data.
    tcases = [("unit", 64, 48, 121, 299, 299, 7), ("unit", 512, 384, 122, 299, 299, 7),
              ("noise", 500, 375, 123, 299, 299, 11), ("rndf", 37, 29, 124, 16, 40, 1),
              ("unit", 299, 299, 125, 299, 299, 13), ("rndf", 1, 7, 126, 5, 5, 1),
              ("rndf", 7, 1, 127, 300, 2, 1), ("unit", 1000, 20, 128, 299, 299, 7)]
    for i, (kind, sw, sh, seed, ow, oh, stride) in enumerate(pick(tcases, "torch")):
        x = gen_plane(kind, sw, sh, seed)
        t3 = torch.from_numpy(np.stack([x, x[::-1].copy(), x * 2]))[None]
        out = F.interpolate(t3, size=(oh, ow), mode="bilinear", align_corners=False)[0, 0].numpy()
        name = f"torch_{i}.f32"
        with open(os.path.join(outdir, name), "wb") as fh:
            fh.write(f32_bytes(out.reshape(-1)[::stride]))
        lines.append(f"torch bilinear {kind} {sw} {sh} {seed} {ow} {oh} {name} {stride}")

    with open(os.path.join(outdir, "golden.txt"), "w") as fh:
        fh.write("# made by tests/reference/make_resize_golden.py (Pillow %s, torch %s)\n"
                 % (Image.__version__, torch.__version__))
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} cases to {outdir}")


if __name__ == "__main__":
    main()

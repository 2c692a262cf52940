#!/usr/bin/python3
"""Regenerates tests/data/jpeg/: small JPEGs made with the encoders of this
machine (Pillow 9.4 and libjpeg-turbo 2.1.5's cjpeg/jpegtran) from procedural
images, and digests.txt with, per file, "<file> <w> <h> <sha256>" where the
digest is of Pillow's Image.open(f).convert("RGB") bytes.  Files the C
decoder must refuse are listed in refused.txt ("<file> <reason>").

Run from the repository root with Debian's /usr/bin/python3:
    /usr/bin/python3 tests/reference/make_jpeg_corpus.py
"""
import hashlib
import io
import os
import subprocess
import sys

import numpy as np
from PIL import Image

OUT = "tests/data/jpeg"


def picture(w, h, seed):
    """Photo-like content: smooth gradients, a few shapes, edges and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    fx, fy = x / max(w - 1, 1), y / max(h - 1, 1)
    r = 255 * fx
    g = 255 * (0.5 + 0.5 * np.sin(6.0 * fy + 3.0 * fx))
    b = 255 * (1 - fx * fy)
    for _ in range(4):
        cx, cy, rad = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2, max(w, h) / 3 + 2)
        m = (x - cx) ** 2 + (y - cy) ** 2 < rad ** 2
        col = rng.uniform(0, 255, 3)
        r, g, b = np.where(m, col[0], r), np.where(m, col[1], g), np.where(m, col[2], b)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def digest(path):
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        return rgb.size, hashlib.sha256(rgb.tobytes()).hexdigest()


def pillow_ok(data):
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.convert("RGB")
        return True
    except Exception:
        return False


def cjpeg(src_ppm, dst, *args):
    with open(dst, "wb") as f:
        subprocess.run(["cjpeg", *args, src_ppm], stdout=f, check=True)


def jpegtran(src, dst, *args):
    with open(dst, "wb") as f:
        subprocess.run(["jpegtran", *args, src], stdout=f, check=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith((".jpg", ".txt", ".scans")):
            os.remove(os.path.join(OUT, f))
    tmp = "/tmp/fdd_jpeg_corpus"
    os.makedirs(tmp, exist_ok=True)
    made = []
    refused = []

    def pil(name, im, **kw):
        p = os.path.join(OUT, name)
        im.save(p, "JPEG", **kw)
        made.append(name)

    sizes = [(1, 1), (7, 13), (17, 9), (33, 31), (64, 48), (100, 75), (4001, 3), (3, 301), (2, 2), (5, 3)]
    for i, (w, h) in enumerate(sizes):
        im = picture(w, h, 100 + i)
        for ss, tag in [(0, "444"), (1, "422"), (2, "420")]:
            pil(f"pil_{w}x{h}_{tag}.jpg", im, quality=85, subsampling=ss)
        ppm = os.path.join(tmp, f"src_{w}x{h}.ppm")
        im.save(ppm)
        for samp, tag in [("2x1", "422"), ("1x2", "440"), ("4x1", "411"), ("2x2", "420"),
                          ("4x2", "410"), ("2x1,1x2,1x1", "mixed"), ("3x1", "311")]:
            if w * h > 5000 and tag not in ("440", "411", "mixed"):
                continue
            name = f"cj_{w}x{h}_{tag}.jpg"
            cjpeg(ppm, os.path.join(OUT, name), "-quality", "80", "-sample", samp)
            made.append(name)

    big = picture(160, 120, 7)
    ppm = os.path.join(tmp, "big.ppm")
    big.save(ppm)
    pil("pil_160x120_prog_420.jpg", big, quality=80, progressive=True)
    pil("pil_160x120_prog_444.jpg", big, quality=80, progressive=True, subsampling=0)
    pil("pil_160x120_opt.jpg", big, quality=80, optimize=True)
    pil("pil_160x120_q100.jpg", big, quality=100)
    pil("pil_160x120_q100_444.jpg", big, quality=100, subsampling=0)
    pil("pil_160x120_q5.jpg", big, quality=5)
    pil("pil_160x120_q1.jpg", big, quality=1)
    pil("pil_160x120_gray.jpg", big.convert("L"), quality=80)
    pil("pil_160x120_gray_prog.jpg", big.convert("L"), quality=80, progressive=True)
    pil("pil_160x120_cmyk.jpg", big.convert("CMYK"), quality=80)
    pil("pil_61x37_cmyk.jpg", picture(61, 37, 8).convert("CMYK"), quality=90)
    pil("pil_160x120_cmyk_prog.jpg", big.convert("CMYK"), quality=80, progressive=True)
    variants = [
        ("cj_restart1.jpg", ["-restart", "1"]),
        ("cj_restart3b.jpg", ["-restart", "3B"]),
        ("cj_restart1b_420.jpg", ["-restart", "1B", "-sample", "2x2"]),
        ("cj_prog.jpg", ["-progressive"]),
        ("cj_prog_restart.jpg", ["-progressive", "-restart", "2B"]),
        ("cj_prog_411.jpg", ["-progressive", "-sample", "4x1"]),
        ("cj_prog_mixed.jpg", ["-progressive", "-sample", "2x1,1x2,1x1"]),
        ("cj_opt.jpg", ["-optimize"]),
        ("cj_gray.jpg", ["-grayscale"]),
        ("cj_gray_prog.jpg", ["-grayscale", "-progressive", "-restart", "1"]),
        ("cj_rgb.jpg", ["-rgb"]),
        ("cj_rgb_prog.jpg", ["-rgb", "-progressive"]),
        ("cj_q100_444.jpg", ["-quality", "100", "-sample", "1x1"]),
        ("cj_q3.jpg", ["-quality", "3"]),
        ("cj_dct_float.jpg", ["-dct", "float"]),
        ("cj_nojfif_420.jpg", ["-sample", "2x2"]),
    ]
    for name, args in variants:
        cjpeg(ppm, os.path.join(OUT, name), *args)
        made.append(name)
    # Non-interleaved sequential scans (a multi-scan baseline file).
    scans = os.path.join(tmp, "seq.scans")
    with open(scans, "w") as f:
        f.write("0;\n1;\n2;\n")
    cjpeg(ppm, os.path.join(OUT, "cj_noninterleaved.jpg"), "-scans", scans, "-sample", "2x2")
    made.append("cj_noninterleaved.jpg")
    # Progressive with successive approximation on every band, restart markers.
    scans2 = os.path.join(tmp, "prog.scans")
    with open(scans2, "w") as f:
        f.write("0,1,2: 0-0, 0, 1;\n0: 1-5, 0, 2;\n2: 1-63, 0, 1;\n1: 1-63, 0, 1;\n"
                "0: 6-63, 0, 2;\n0: 1-63, 2, 1;\n0,1,2: 0-0, 1, 0;\n2: 1-63, 1, 0;\n"
                "1: 1-63, 1, 0;\n0: 1-63, 1, 0;\n")
    cjpeg(ppm, os.path.join(OUT, "cj_prog_sa.jpg"), "-scans", scans2, "-restart", "1")
    made.append("cj_prog_sa.jpg")
    # Incomplete progressions: libjpeg-turbo's block smoothing is then on.
    for name, script, extra in [
        ("cj_prog_dconly.jpg", "0,1,2: 0-0, 0, 0;\n", []),
        ("cj_prog_dconly_gray.jpg", "0: 0-0, 0, 1;\n0: 0-0, 1, 0;\n", ["-grayscale"]),
        ("cj_prog_partial.jpg", "0,1,2: 0-0, 0, 1;\n0: 1-63, 0, 2;\n1: 1-63, 0, 0;\n2: 1-63, 0, 0;\n"
                                "0,1,2: 0-0, 1, 0;\n", []),
        ("cj_prog_low_only.jpg", "0,1,2: 0-0, 0, 0;\n0: 1-2, 0, 0;\n1: 1-5, 0, 1;\n", ["-sample", "2x2"]),
    ]:
        sp = os.path.join(tmp, name + ".scans")
        with open(sp, "w") as f:
            f.write(script)
        cjpeg(ppm, os.path.join(OUT, name), "-scans", sp, *extra)
        made.append(name)
    # Data cut short but closed with an EOI: libjpeg pads with zeros (grey
    # MCUs; for progressive files the smoothing then uses the previous
    # scan's state below the cut), and Pillow returns an image.
    for src, frac, name in [("cj_prog_sa.jpg", 0.6, "cut_eoi_prog_sa.jpg"),
                            ("pil_160x120_prog_420.jpg", 0.5, "cut_eoi_prog_pil.jpg"),
                            ("pil_100x75_420.jpg", 0.7, "cut_eoi_baseline.jpg"),
                            ("cj_restart1b_420.jpg", 0.5, "cut_eoi_restart.jpg")]:
        data = open(os.path.join(OUT, src), "rb").read()
        cut = data[: int(len(data) * frac)] + b"\xff\xd9"
        open(os.path.join(OUT, name), "wb").write(cut)
        if pillow_ok(cut):
            made.append(name)
        else:  # the cut fell inside a marker segment: Pillow says truncated
            refused.append((name, "truncated"))
    base = os.path.join(OUT, "pil_160x120_q100.jpg")
    jpegtran(base, os.path.join(OUT, "jt_prog_from_q100.jpg"), "-progressive")
    made.append("jt_prog_from_q100.jpg")
    # Refused: arithmetic coding (Pillow decodes it; fdd does not).
    cjpeg(ppm, os.path.join(OUT, "refuse_arith.jpg"), "-arithmetic")
    refused.append(("refuse_arith.jpg", "unsupported"))
    cjpeg(ppm, os.path.join(OUT, "refuse_arith_prog.jpg"), "-arithmetic", "-progressive")
    refused.append(("refuse_arith_prog.jpg", "unsupported"))
    # A 12-bit frame header (hand-edited precision byte): Pillow refuses too.
    d = bytearray(open(os.path.join(OUT, "cj_gray.jpg"), "rb").read())
    i = 2
    while d[i + 1] not in (0xC0, 0xC1):
        i += 2 + (d[i + 2] << 8 | d[i + 3])
    d[i + 4] = 12
    open(os.path.join(OUT, "refuse_12bit.jpg"), "wb").write(d)
    refused.append(("refuse_12bit.jpg", "unsupported"))
    d[i + 1], d[i + 4] = 0xC3, 8  # lossless SOF3
    open(os.path.join(OUT, "refuse_lossless.jpg"), "wb").write(d)
    refused.append(("refuse_lossless.jpg", "unsupported"))
    # Truncated in the middle of the entropy data: Pillow raises.
    full = open(os.path.join(OUT, "pil_100x75_420.jpg"), "rb").read()
    open(os.path.join(OUT, "refuse_truncated.jpg"), "wb").write(full[: len(full) * 2 // 3])
    refused.append(("refuse_truncated.jpg", "truncated"))

    # Pillow's verdict (decodes / raises) on every prefix of a few files.
    trunc_lines = []
    for name in ["pil_33x31_420.jpg", "cj_restart1b_420.jpg", "cj_prog_sa.jpg", "pil_17x9_444.jpg",
                 "cj_noninterleaved.jpg", "cj_gray_prog.jpg", "pil_7x13_422.jpg", "cj_prog_partial.jpg"]:
        data = open(os.path.join(OUT, name), "rb").read()
        ok = [pillow_ok(data[:n]) for n in range(len(data) + 1)]
        ranges, n = [], 0
        while n <= len(data):
            if ok[n]:
                a = n
                while n + 1 <= len(data) and ok[n + 1]:
                    n += 1
                ranges.append(f"{a}..{n}")
            n += 1
        trunc_lines.append(f"{name} {len(data)} {','.join(ranges) or '-'}\n")
    with open(os.path.join(OUT, "truncation.txt"), "w") as f:
        f.writelines(trunc_lines)

    lines = []
    for name in sorted(made):
        (w, h), dg = digest(os.path.join(OUT, name))
        lines.append(f"{name} {w} {h} {dg}\n")
    with open(os.path.join(OUT, "digests.txt"), "w") as f:
        f.writelines(lines)
    with open(os.path.join(OUT, "refused.txt"), "w") as f:
        f.writelines(f"{n} {r}\n" for n, r in refused)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(made)} images, {len(refused)} refused, {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()

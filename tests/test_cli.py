#!/usr/bin/env python3
"""End-to-end tests of the fdd command (standard library only).

Builds a small DINO-shaped ViT checkpoint as an .npz (patch 16, 197 tokens,
width 16) with deterministic weights, converts it with convert/fdd-convert,
and runs fdd compare / stats / merge / features / decode / preprocess / info
on images from tests/data.  Checks: results identical across thread counts,
batch sizes and shard splits; JSON fields; refusal of mismatched statistics;
bad-image handling with and without --skip-bad; no partial output files; the
message for a missing model."""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FDD = os.environ.get("FDD_BIN", os.path.join(ROOT, "build", "fdd"))
if not os.path.isabs(FDD):
    FDD = os.path.join(ROOT, FDD)
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL", what, file=sys.stderr)


def npy_bytes(shape, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        "".join("%d, " % d for d in shape) if len(shape) != 1 else "%d," % shape[0])
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + \
        struct.pack("<%df" % len(values), *values)


def tiny_vit(path, width=16, depth=2, mlp=32, patch=16, grid=14):
    rng = random.Random(1234)
    sd = []

    def t(name, shape, scale=0.2, const=None):
        n = 1
        for d in shape:
            n *= d
        vals = [const] * n if const is not None else [rng.uniform(-scale, scale) for _ in range(n)]
        sd.append((name, shape, vals))

    t("cls_token", (1, 1, width))
    t("pos_embed", (1, grid * grid + 1, width))
    t("patch_embed.proj.weight", (width, 3, patch, patch), 0.02)
    t("patch_embed.proj.bias", (width,))
    for b in range(depth):
        p = "blocks.%d." % b
        t(p + "norm1.weight", (width,), const=1.0)
        t(p + "norm1.bias", (width,))
        t(p + "attn.qkv.weight", (3 * width, width))
        t(p + "attn.qkv.bias", (3 * width,))
        t(p + "attn.proj.weight", (width, width))
        t(p + "attn.proj.bias", (width,))
        t(p + "norm2.weight", (width,), const=1.0)
        t(p + "norm2.bias", (width,))
        t(p + "mlp.fc1.weight", (mlp, width))
        t(p + "mlp.fc1.bias", (mlp,))
        t(p + "mlp.fc2.weight", (width, mlp))
        t(p + "mlp.fc2.bias", (width,))
    t("norm.weight", (width,), const=1.0)
    t("norm.bias", (width,))
    with zipfile.ZipFile(path, "w") as z:
        for name, shape, vals in sd:
            z.writestr(name + ".npy", npy_bytes(shape, vals))


def run(*args, ok=True):
    r = subprocess.run([FDD] + list(args), cwd=ROOT, capture_output=True, text=True)
    if ok and r.returncode != 0:
        print("command failed:", " ".join(args), r.stderr, file=sys.stderr)
    return r


def main():
    tmp = tempfile.mkdtemp(prefix="fdd-test-cli.")
    try:
        ckpt = os.path.join(tmp, "tiny.npz")
        model = os.path.join(tmp, "tiny.fdw")
        tiny_vit(ckpt)
        r = subprocess.run([sys.executable, os.path.join(ROOT, "convert", "fdd-convert"), ckpt, "-o", model,
                            "--arch", "vit", "--num-heads", "2"], capture_output=True, text=True)
        check(r.returncode == 0, "convert tiny ViT: " + r.stderr)
        if r.returncode:
            return

        a, b = os.path.join(tmp, "A"), os.path.join(tmp, "B")
        os.makedirs(os.path.join(a, "sub"))
        os.makedirs(b)
        pngs = sorted(f for f in os.listdir(os.path.join(ROOT, "tests/data/png")) if f.endswith(".png"))[:12]
        jpgs = sorted(f for f in os.listdir(os.path.join(ROOT, "tests/data/jpeg")) if f.endswith(".jpg"))[:12]
        for i, f in enumerate(pngs):
            shutil.copy(os.path.join(ROOT, "tests/data/png", f), os.path.join(a, "sub" if i % 2 else "", f))
        for f in jpgs:
            shutil.copy(os.path.join(ROOT, "tests/data/jpeg", f), os.path.join(b, f))

        # compare: JSON, same bits for any thread count and batch size
        outs = []
        for threads, batch in (("1", "1"), ("2", "5"), ("3", "16")):
            r = run("compare", a, b, "--model", model, "--json", "--threads", threads, "--batch", batch)
            check(r.returncode == 0, "compare threads=%s batch=%s" % (threads, batch))
            outs.append(json.loads(r.stdout)[0] if r.returncode == 0 else {})
        rec = outs[0]
        check(rec.get("n1") == len(pngs) and rec.get("n2") == len(jpgs), "image counts %s" % rec)
        check(all(o.get("fd_hex") == rec.get("fd_hex") for o in outs), "fd identical across threads/batches")
        check(rec.get("fd", -1) > 0 and abs(rec["fd"] - float.fromhex(rec["fd_hex"])) == 0, "fd value and hex")
        for key in ("weights_sha256", "fdd_version", "isa", "threads", "profile", "mean_term", "trace_term"):
            check(key in rec, "json has " + key)
        check(rec.get("profile") == "dino", "profile recorded")
        check(rec.get("exif_transpose") is False, "exif_transpose recorded (default false)")
        r = run("compare", a, b, "--model", model, "--json", "--exif-transpose")
        check(r.returncode == 0 and json.loads(r.stdout)[0].get("exif_transpose") is True,
              "--exif-transpose recorded in --json")
        r = run("compare", a, a, "--model", model, "--json")
        check(r.returncode == 0 and abs(json.loads(r.stdout)[0]["fd"]) < 1e-9, "fd(A, A) = 0")

        # stats on shards, merged in either order == stats of everything
        whole = os.path.join(tmp, "whole.npz")
        run("stats", a, "-o", whole, "--model", model)
        s1, s2 = os.path.join(tmp, "s1"), os.path.join(tmp, "s2")
        os.makedirs(s1)
        os.makedirs(s2)
        for i, f in enumerate(pngs):
            src = os.path.join(a, "sub" if i % 2 else "", f)
            shutil.copy(src, os.path.join(s1 if i < 5 else s2, f))
        p1, p2 = os.path.join(tmp, "p1.npz"), os.path.join(tmp, "p2.npz")
        run("stats", s1, "-o", p1, "--model", model, "--threads", "1")
        run("stats", s2, "-o", p2, "--model", model, "--threads", "2")
        m12, m21 = os.path.join(tmp, "m12.npz"), os.path.join(tmp, "m21.npz")
        check(run("merge", p1, p2, "-o", m12).returncode == 0, "merge")
        run("merge", p2, p1, "-o", m21)

        def member(path, key):
            with zipfile.ZipFile(path) as z:
                return z.read(key + ".npy")
        for key in ("mu", "sigma", "fdd_sum", "fdd_sumsq"):
            check(member(m12, key) == member(whole, key) == member(m21, key), "merged %s == whole" % key)
        r = run("compare", whole, b, "--model", model, "--json")
        check(r.returncode == 0 and json.loads(r.stdout)[0]["fd_hex"] == rec["fd_hex"], "npz vs folder == folders")

        # statistics made with another profile are refused unless --force
        other = os.path.join(tmp, "other.npz")
        with zipfile.ZipFile(whole) as z, zipfile.ZipFile(other, "w") as o:
            for n in z.namelist():
                data = z.read(n)
                if n == "fdd_profile.npy":
                    data = data.replace(b"dino", b"DINO")
                o.writestr(n, data)
        r = run("compare", other, whole, ok=False)
        check(r.returncode != 0 and "--force" in r.stderr, "profile mismatch refused: " + r.stderr)
        check(run("compare", other, whole, "--force").returncode == 0, "--force compares")
        # statistics of EXIF-turned images carry it in their profile: not merged with unturned ones
        turned = os.path.join(tmp, "turned.npz")
        check(run("stats", s1, "-o", turned, "--model", model, "--exif-transpose").returncode == 0, "stats --exif-transpose")
        check(member(turned, "fdd_profile").endswith(b"dino+exif-transpose"), "profile records +exif-transpose")
        r = run("merge", turned, p2, "-o", os.path.join(tmp, "tm.npz"), ok=False)
        check(r.returncode != 0 and "exif-transpose" in r.stderr, "turned + unturned merge refused: " + r.stderr)

        # features: one row per image, sidecar with the paths
        feats = os.path.join(tmp, "f.npy")
        check(run("features", a, "-o", feats, "--model", model).returncode == 0, "features")
        with open(feats, "rb") as f:
            head = f.read(128)
        check(b"'shape': (%d, 16)" % len(pngs) in head, "features shape: %r" % head[:80])
        with open(feats + ".paths.txt") as f:
            paths = f.read().split()
        check(len(paths) == len(pngs) and paths == sorted(paths, key=lambda p: p.split("/")), "sorted sidecar")

        # --feature: other ViT outputs; the head's layer needs a checkpoint with a head
        f2 = os.path.join(tmp, "f2.npy")
        check(run("features", a, "-o", f2, "--model", model, "--feature", "cls+mean").returncode == 0, "cls+mean")
        with open(f2, "rb") as f:
            check(b"'shape': (%d, 32)" % len(pngs) in f.read(128), "cls+mean is 2 x width")
        r = run("features", a, "-o", f2, "--model", model, "--feature", "head-hidden", ok=False)
        check(r.returncode != 0 and "head" in r.stderr, "head-hidden without a head: " + r.stderr)

        # --resize / --crop replace the profile's geometry (recorded as the profile)
        xr = os.path.join(tmp, "xr.npy")
        r = run("preprocess", os.path.join(b, jpgs[0]), "-o", xr, "--model", model, "--resize", "160x128")
        check(r.returncode == 0 and os.path.getsize(xr) == 128 + 3 * 160 * 128 * 4, "--resize WxH: " + r.stderr)
        r = run("compare", a, b, "--model", model, "--resize", "96", "--crop", "64", "--json")
        check(r.returncode == 0 and json.loads(r.stdout)[0]["profile"] == "r96x0-c64x64", "--resize N --crop M")
        r = run("compare", a, b, "--model", model, "--resize", "96", ok=False)
        check(r.returncode != 0 and "--crop" in r.stderr, "--resize N alone refused: " + r.stderr)
        r = run("compare", a, b, "--model", "%s,%s" % (model, model), "--json")
        recs = json.loads(r.stdout) if r.returncode == 0 else []
        check(len(recs) == 2 and recs[0]["fd_hex"] == recs[1]["fd_hex"] == rec["fd_hex"], "two models, one pass")

        # a bad image: error naming it, or skipped with --skip-bad; no partial output
        with open(os.path.join(a, "zz_bad.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\nbroken")
        out = os.path.join(tmp, "bad.npz")
        r = run("stats", a, "-o", out, "--model", model, ok=False)
        check(r.returncode != 0 and "zz_bad.png" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
              "bad image: one-line error naming it: " + r.stderr)
        check(not any(n.startswith("bad.npz") for n in os.listdir(tmp)), "no partial output file")
        r = run("stats", a, "-o", out, "--model", model, "--skip-bad")
        check(r.returncode == 0 and "skipped" in r.stderr and "zz_bad.png" in r.stderr, "--skip-bad lists it")
        os.remove(os.path.join(a, "zz_bad.png"))

        # missing model: says how to get it
        r = run("compare", a, b, "--model", "no-such-model", ok=False)
        check(r.returncode != 0 and "weights/README.md" in r.stderr and "fetch" in r.stderr, "missing model: " + r.stderr)

        # info, decode, preprocess
        r = run("info", model)
        check(r.returncode == 0 and "arch" in r.stdout and "blocks.0.attn.qkv.weight" in r.stdout, "info")
        r = run("info", os.path.join(ROOT, "README.md"), ok=False)
        check(r.returncode != 0 and "README.md" in r.stderr, "info on a non-fdw file")
        ppm = os.path.join(tmp, "x.ppm")
        check(run("decode", os.path.join(b, jpgs[0]), "-o", ppm).returncode == 0, "decode")
        with open(ppm, "rb") as f:
            check(f.read(2) == b"P6", "decode writes P6")
        # EXIF orientation 6 (13x7 stored): ignored by default, as Image.open;
        # --exif-transpose turns it to 7x13 as ImageOps.exif_transpose
        rot = os.path.join(ROOT, "tests", "data", "formats", "exif_o6.png")
        outs = {}
        for flag in ((), ("--exif-transpose",)):
            r = run("decode", rot, "-o", ppm, *flag)
            with open(ppm, "rb") as f:
                outs[flag] = f.read() if r.returncode == 0 else b""
        check(outs[()].startswith(b"P6\n13 7\n"), "decode ignores the EXIF orientation by default")
        check(outs[("--exif-transpose",)].startswith(b"P6\n7 13\n"), "decode --exif-transpose turns the image")
        check(outs[()] != outs[("--exif-transpose",)], "--exif-transpose changes the decode output")
        r = run("decode", os.path.join(b, jpgs[0]), "-o", ppm, "--exif-transpose")
        check(r.returncode == 0, "--exif-transpose on an image without EXIF")
        r = run("--help", ok=False)
        check("--exif-transpose" in r.stderr, "--exif-transpose in --help")
        x = os.path.join(tmp, "x.npy")
        r = run("preprocess", os.path.join(b, jpgs[0]), "-o", x, "--model", model)
        check(r.returncode == 0 and os.path.getsize(x) == 128 + 3 * 224 * 224 * 4, "preprocess 3x224x224")
        r = run("bogus", ok=False)
        check(r.returncode == 2, "unknown command: usage")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if not os.path.exists(FDD):
        print("FAIL fdd binary not found at", FDD, file=sys.stderr)
        failed += 1
    else:
        main()
    print("RESULT cli %d %d" % (passed, failed))
    sys.exit(1 if failed else 0)

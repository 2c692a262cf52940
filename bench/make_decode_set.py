#!/usr/bin/python3
"""Builds the decode benchmark's test set (bench/bench_decode.c runs it when
OUTDIR/SET_OK is missing; never committed):

  OUTDIR/baseline/NN.jpg     baseline JPEG, 4:2:0, quality 90   (cjpeg)
  OUTDIR/progressive/NN.jpg  progressive JPEG, 4:2:0, q 90      (cjpeg -progressive)
  OUTDIR/yuv444/NN.jpg       baseline JPEG, 4:4:4, q 90         (cjpeg -sample 1x1)
  OUTDIR/png/NN.png          PNG, Pillow's default compression  (Pillow only)
  OUTDIR/tiny.jpg            16x16 JPEG: djpeg's process start-up cost

Each 1024x1024 picture is a 2x2 tile of four different photos of
../shared/data/photos (Kodak24, then McMaster), each resized to 512x512 with
LANCZOS: real photo detail at its native density, where an upscaled photo
would be unrealistically smooth (and fast) to decode.  Tiles come from
Pillow when /usr/bin/python3 has it, else from `BENCH_DECODE --tile-ppm`
(fdd's own decoders and its Pillow-exact LANCZOS: the same pixels).  Without
cjpeg the JPEGs come from Pillow (same libjpeg-turbo, quality and sampling).

usage: make_decode_set.py OUTDIR [BENCH_DECODE] [N]"""
import glob, os, shutil, subprocess, sys

SRC = "../shared/data/photos"
out = sys.argv[1]
tiler = sys.argv[2] if len(sys.argv) > 2 else None
n = int(sys.argv[3]) if len(sys.argv) > 3 else 8

try:
    from PIL import Image
except ImportError:
    Image = None

photos = sorted(glob.glob(SRC + "/Kodak24/*.png")) + sorted(glob.glob(SRC + "/McMaster/*.tif"))
if len(photos) < 4 * n:
    print("SKIP: %s needs >= %d photos (Kodak24, McMaster), found %d" % (SRC, 4 * n, len(photos)))
    sys.exit(2)
cjpeg = shutil.which("cjpeg")
if not cjpeg and not Image:
    print("SKIP: neither cjpeg (libjpeg-turbo-progs) nor Pillow to write the JPEGs")
    sys.exit(2)

for d in ("ppm", "baseline", "progressive", "yuv444", "png"):
    os.makedirs(os.path.join(out, d), exist_ok=True)
ok = os.path.join(out, "SET_OK")
if os.path.exists(ok):
    os.remove(ok)

jpeg_kinds = {  # name: (cjpeg options, Pillow save options)
    "baseline": ([], dict(subsampling=2)),
    "progressive": (["-progressive"], dict(subsampling=2, progressive=True)),
    "yuv444": (["-sample", "1x1"], dict(subsampling=0)),
}

for i in range(n):
    ppm = os.path.join(out, "ppm", "%02d.ppm" % i)
    srcs = photos[4 * i:4 * i + 4]
    if Image:
        tile = Image.new("RGB", (1024, 1024))
        for k, p in enumerate(srcs):
            im = Image.open(p).convert("RGB").resize((512, 512), Image.LANCZOS)
            tile.paste(im, (512 * (k % 2), 512 * (k // 2)))
        tile.save(ppm)
    else:
        if not tiler:
            print("SKIP: no Pillow and no bench_decode to build the tiles")
            sys.exit(2)
        subprocess.run([tiler, "--tile-ppm", ppm] + srcs, check=True)
    for kind, (opts, pil_opts) in jpeg_kinds.items():
        dst = os.path.join(out, kind, "%02d.jpg" % i)
        if cjpeg:
            subprocess.run([cjpeg, "-quality", "90"] + opts + ["-outfile", dst, ppm], check=True)
        else:
            Image.open(ppm).save(dst, quality=90, **pil_opts)
    if Image:
        Image.open(ppm).save(os.path.join(out, "png", "%02d.png" % i))

# A 16x16 grey picture: running djpeg on it costs the process start-up and
# almost no decoding, which bench_decode subtracts from djpeg's times.
tiny_ppm = os.path.join(out, "ppm", "tiny.ppm")
with open(tiny_ppm, "wb") as f:
    f.write(b"P6\n16 16\n255\n" + bytes(range(0, 256, 1)) * 3)
if cjpeg:
    subprocess.run([cjpeg, "-quality", "90", "-outfile", os.path.join(out, "tiny.jpg"), tiny_ppm],
                   check=True)
else:
    Image.open(tiny_ppm).save(os.path.join(out, "tiny.jpg"), quality=90)

with open(ok, "w") as f:
    f.write("jpeg by %s, tiles by %s, png %s\n" % ("cjpeg" if cjpeg else "Pillow",
            "Pillow" if Image else "fdd", "by Pillow" if Image else "skipped (no Pillow)"))
print("decode set: %d images of 1024x1024 per kind in %s (%s)" % (n, out, open(ok).read().strip()))

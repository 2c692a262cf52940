#!/usr/bin/python3
"""Builds tests/data/webp/: WebP files written by Pillow 9.4's encoder
(libwebp 1.2.4) plus a few hand-made container cases, and digests.txt made by
tests/reference/pillow_digests.py (`<file> <w> <h> <sha256 of
Image.open(f).convert("RGB")>` or `<file> ERROR <exception>`).
Names: ll_* lossless (VP8L), ly_* lossy (VP8), anim_* animations, x_* hand-made.
Pillow 9.4's WebP writer has no sharp_yuv (use_sharp_yuv) option, so no such
file is made.  Run from the repo root with /usr/bin/python3 (Pillow, numpy).
Deterministic: a second run rewrites the same bytes."""
import io
import os
import struct
import subprocess
import sys

import numpy as np
from PIL import Image

OUT = "tests/data/webp/"
files = {}


def smooth(w, h, seed, mode="RGB"):
    y, x = np.mgrid[0:h, 0:w]
    r = np.random.default_rng(seed)
    a = (x * 255 // max(w - 1, 1) + r.integers(0, 24, (h, w))) % 256
    b = (y * 255 // max(h - 1, 1) + r.integers(0, 24, (h, w))) % 256
    c = ((x + y) * 5 + r.integers(0, 24, (h, w))) % 256
    im = Image.fromarray(np.stack([a, b, c], -1).astype(np.uint8), "RGB")
    return im if mode == "RGB" else im.convert(mode)


def with_alpha(im, seed):
    """RGBA with a gradient alpha, a fully transparent band whose RGB is not
    zero (exact=True must keep it) and an opaque band."""
    w, h = im.size
    r = np.random.default_rng(seed)
    a = ((np.arange(w)[None, :] * 255 // max(w - 1, 1)) + r.integers(0, 9, (h, w))) % 256
    a[: max(1, h // 4)] = 0
    a[-max(1, h // 4):] = 255
    rgba = np.dstack([np.asarray(im.convert("RGB")), a.astype(np.uint8)])
    return Image.fromarray(rgba, "RGBA")


def palette_img(w, h, ncolors, seed):
    r = np.random.default_rng(seed)
    pal = r.integers(0, 256, (ncolors, 4)).astype(np.uint8)
    pal[:, 3] = 255
    idx = (np.add.outer(np.arange(h) // 3, np.arange(w) // 2) + r.integers(0, 2, (h, w))) % ncolors
    return Image.fromarray(pal[idx][:, :, :3], "RGB")


def save(name, im, **kw):
    b = io.BytesIO()
    im.save(b, "WEBP", **kw)
    files[name] = b.getvalue()


# ---------------------------------------------------------------- lossless
base = smooth(64, 48, 1)
for m in range(7):
    save(f"ll_m{m}_64x48.webp", base, lossless=True, method=m)
for q in (0, 100):
    save(f"ll_q{q}_m6_64x48.webp", base, lossless=True, quality=q, method=6)
rgba = with_alpha(smooth(40, 36, 2), 3)
for ex in (False, True):
    for m in (0, 4, 6):
        save(f"ll_alpha_exact{int(ex)}_m{m}.webp", rgba, lossless=True, exact=ex, method=m)
save("ll_gray_45x31.webp", smooth(45, 31, 4, "L"), lossless=True)
for n in (2, 3, 4, 5, 11, 16, 17, 60, 256):
    save(f"ll_pal{n}_37x23.webp", palette_img(37, 23, n, n), lossless=True, method=6 if n % 2 else 3)
save("ll_pal4_alpha.webp", with_alpha(palette_img(29, 17, 4, 9), 10).quantize(4).convert("RGBA"),
     lossless=True, exact=True)
save("ll_1x1.webp", smooth(1, 1, 5), lossless=True)
save("ll_1x1_alpha0.webp", Image.new("RGBA", (1, 1), (200, 100, 50, 0)), lossless=True, exact=True)
save("ll_7x13.webp", smooth(7, 13, 6), lossless=True)
save("ll_3x1000.webp", smooth(3, 1000, 7), lossless=True)
save("ll_1000x3.webp", smooth(1000, 3, 8), lossless=True, method=6)
save("ll_257x5.webp", smooth(257, 5, 9), lossless=True, method=2)
noise = Image.fromarray(np.random.default_rng(11).integers(0, 256, (32, 32, 3), dtype=np.uint8))
save("ll_noise_32x32.webp", noise, lossless=True)
save("ll_flat_100x100.webp", Image.new("RGB", (100, 100), (12, 200, 99)), lossless=True)
# Repetitive content: long backward references and the colour cache.
tile = np.asarray(smooth(8, 8, 12))
save("ll_tiled_96x40.webp", Image.fromarray(np.tile(tile, (5, 12, 1))), lossless=True, method=5)
save("ll_icc_exif.webp", base, lossless=True, icc_profile=b"\0" * 131, exif=b"Exif\0\0MM\0*")

# ------------------------------------------------------------------ lossy
for q in (1, 50, 100):
    save(f"ly_q{q}_64x48.webp", base, quality=q)
for m in range(7):
    save(f"ly_m{m}_q75.webp", base, quality=75, method=m)
save("ly_7x13.webp", smooth(7, 13, 6), quality=80)
save("ly_1x1.webp", smooth(1, 1, 5), quality=80)
save("ly_33x17.webp", smooth(33, 17, 13), quality=60)
save("ly_gray_45x31.webp", smooth(45, 31, 4, "L"), quality=70)
save("ly_alpha_q70.webp", rgba, quality=70)
save("ly_alpha_q100_exact.webp", rgba, quality=100, exact=True)
save("ly_icc.webp", base, quality=50, icc_profile=b"\1" * 64)

# ------------------------------------------------------------- animations
fr1, fr2 = smooth(30, 20, 14), smooth(30, 20, 15)
b = io.BytesIO()
fr1.save(b, "WEBP", save_all=True, append_images=[fr2], lossless=True, duration=100)
files["anim_ll_2frames.webp"] = b.getvalue()
b = io.BytesIO()
fr1.save(b, "WEBP", save_all=True, append_images=[fr2], quality=60, duration=100)
files["anim_ly_2frames.webp"] = b.getvalue()
a1, a2 = with_alpha(fr1, 16), with_alpha(fr2, 17)
b = io.BytesIO()
a1.save(b, "WEBP", save_all=True, append_images=[a2], lossless=True, exact=True, duration=50)
files["anim_ll_alpha.webp"] = b.getvalue()


# ------------------------------------------------------------- hand-made
def riff(chunks, riff_size=None):
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def chunk(tag, payload):
    return tag + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")


def vp8x(flags, w, h):
    return chunk(b"VP8X", struct.pack("<I", flags) + struct.pack("<I", w - 1)[:3] +
                 struct.pack("<I", h - 1)[:3])


def payload_of(data, tag):
    pos = 12
    while pos + 8 <= len(data):
        n = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if data[pos:pos + 4] == tag:
            return data[pos + 8:pos + 8 + n]
        pos += 8 + n + (n & 1)
    raise KeyError(tag)


vl = payload_of(files["ll_7x13.webp"], b"VP8L")
v8 = payload_of(files["ly_7x13.webp"], b"VP8 ")
files["x_vp8x_vp8l.webp"] = riff([vp8x(0, 7, 13), chunk(b"VP8L", vl)])
files["x_vp8x_vp8l_unknown_chunks.webp"] = riff([vp8x(0x2c, 7, 13), chunk(b"ICCP", b"abc"),
                                                 chunk(b"ZZZZ", b"x" * 5), chunk(b"VP8L", vl),
                                                 chunk(b"EXIF", b"e"), chunk(b"XMP ", b"xy")])
files["x_vp8x_canvas_mismatch.webp"] = riff([vp8x(0, 8, 13), chunk(b"VP8L", vl)])
files["x_vp8x_reserved_flag.webp"] = riff([vp8x(0x01, 7, 13), chunk(b"VP8L", vl)])
files["x_vp8x_no_image.webp"] = riff([vp8x(0, 7, 13), chunk(b"EXIF", b"e")])
files["x_vp8x_two_images.webp"] = riff([vp8x(0, 7, 13), chunk(b"VP8L", vl), chunk(b"ZZZZ", b""),
                                        chunk(b"VP8L", vl)])
files["x_trailing_garbage.webp"] = riff([chunk(b"VP8L", vl)]) + b"garbage after the RIFF chunk"
files["x_riff_size_too_big.webp"] = riff([chunk(b"VP8L", vl)], riff_size=len(vl) + 4 + 8 + 2 + 10)
files["x_truncated_vp8l.webp"] = files["ll_7x13.webp"][:-7]
files["x_vp8l_then_unknown.webp"] = riff([chunk(b"VP8L", vl), chunk(b"ABCD", b"123")])
files["x_vp8l_then_short.webp"] = riff([chunk(b"VP8L", vl)]) + b""
files["x_vp8l_bad_version.webp"] = riff([chunk(b"VP8L", vl[:4] + bytes([vl[4] | 0x20]) + vl[5:])])
files["x_vp8l_zero_payload_tail.webp"] = riff([chunk(b"VP8L", vl + b"\0" * 9)])
files["x_first_chunk_unknown.webp"] = riff([chunk(b"ABCD", b""), chunk(b"VP8L", vl)])
files["x_vp8x_alph_ignored.webp"] = riff([vp8x(0, 7, 13), chunk(b"ALPH", b"\xff"), chunk(b"VP8 ", v8)])
files["x_vp8x_alph_bad.webp"] = riff([vp8x(0x10, 7, 13), chunk(b"ALPH", b"\xff\0"), chunk(b"VP8 ", v8)])
files["x_vp8x_alph_raw.webp"] = riff([vp8x(0x10, 7, 13), chunk(b"ALPH", b"\0" + bytes(range(91))),
                                      chunk(b"VP8 ", v8)])
files["x_vp8x_alph_raw_short.webp"] = riff([vp8x(0x10, 7, 13), chunk(b"ALPH", b"\0" + bytes(90)),
                                            chunk(b"VP8 ", v8)])
files["x_vp8_then_alph.webp"] = riff([vp8x(0x10, 7, 13), chunk(b"VP8 ", v8), chunk(b"ALPH", b"\0" * 92)])

os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    os.remove(OUT + f)
for name in sorted(files):
    with open(OUT + name, "wb") as fh:
        fh.write(files[name])
subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "pillow_digests.py"), OUT,
                "/tmp/webp-digests.txt"], check=True)
os.replace("/tmp/webp-digests.txt", OUT + "digests.txt")
print(len(files), "files,", sum(len(v) for v in files.values()), "bytes")

#!/usr/bin/python3
"""Builds tests/data/formats/: PNM, BMP and GIF files written by Pillow 9.4 and
by hand (edge cases and Pillow quirks), and digests.txt with one line per file:
`<file> <w> <h> <sha256 of Image.open(f).convert("RGB") bytes>`, or
`<file> ERROR <exception>` when Pillow refuses the file.
Run from the repo root with /usr/bin/python3 (Pillow, numpy)."""
import hashlib, io, os, struct, sys
import numpy as np
from PIL import Image

OUT = "tests/data/formats/"
files = {}

def rng_bytes(seed, n):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)

def smooth(w, h, seed, mode="RGB"):
    y, x = np.mgrid[0:h, 0:w]
    r = np.random.default_rng(seed)
    a = (x * 255 // max(w - 1, 1) + r.integers(0, 40, (h, w))) % 256
    b = (y * 255 // max(h - 1, 1) + r.integers(0, 40, (h, w))) % 256
    c = ((x + y) * 7 + r.integers(0, 40, (h, w))) % 256
    arr = np.stack([a, b, c], -1).astype(np.uint8)
    im = Image.fromarray(arr, "RGB")
    return im if mode == "RGB" else im.convert(mode)

def pil_save(name, im, **kw):
    b = io.BytesIO(); im.save(b, **kw); files[name] = b.getvalue()

# ------------------------------------------------------------------- PNM
def pnm(kind, w, h, maxval, vals, header=None):
    hdr = header if header is not None else b"P%d\n%d %d\n%d\n" % (kind, w, h, maxval)
    if maxval > 255: body = b"".join(struct.pack(">H", v & 0xFFFF) for v in vals)
    else: body = bytes(v & 255 for v in vals)
    return hdr + body

for mv in (1, 7, 100, 255, 256, 1000, 4095, 65534, 65535):
    n = 13 * 5
    r = np.random.default_rng(mv)
    vals = [int(v) for v in r.integers(0, min(mv + 3, 256 if mv < 256 else 65536), n)]
    files[f"p5_max{mv}.pgm"] = pnm(5, 13, 5, mv, vals)
    vals = [int(v) for v in r.integers(0, min(mv + 3, 256 if mv < 256 else 65536), n * 3)]
    files[f"p6_max{mv}.ppm"] = pnm(6, 13, 5, mv, vals)
pil_save("p6_pillow.ppm", smooth(40, 30, 1), format="PPM")
pil_save("p5_pillow.pgm", smooth(40, 30, 2, "L"), format="PPM")
pil_save("p4_pillow_13x7.pbm", smooth(13, 7, 3, "1"), format="PPM")
files["p5_comments.pgm"] = b"P5 #c1\n3#c2\n 2\t#\r255\n" + bytes(range(10, 16))
files["p5_underscore.pgm"] = b"P5 1_0 1 +255 " + bytes(range(10))
files["p6_extra_data.ppm"] = pnm(6, 2, 2, 255, list(range(12))) + b"trailing"
files["p5_truncated.pgm"] = pnm(5, 4, 4, 255, list(range(15)))
files["p5_maxval0.pgm"] = pnm(5, 2, 1, 0, [0, 0])
files["p5_token_long.pgm"] = b"P5 00000000003 1 255 abc"
files["p5_badtoken.pgm"] = b"P5 3x 1 255 abc"
files["p7.pam"] = b"P7\nWIDTH 1\nHEIGHT 1\nDEPTH 1\nMAXVAL 255\nENDHDR\n\0"

# ------------------------------------------------------------------- BMP
def bmp(bits, w, h, pal, data, comp=0, hsize=40, masks=b"", colors=None, offset=None, extra_hdr=b""):
    if hsize == 12:
        hdr = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        hdr = struct.pack("<IiiHHIIiiII", hsize, w, h, 1, bits, comp, len(data), 2835, 2835,
                          len(pal) // 4 if colors is None else colors, 0)
        hdr += (masks if hsize > 40 else b"").ljust(hsize - 40, b"\0")
    pre = hdr + (masks if hsize == 40 else b"") + pal
    off = 14 + len(pre) if offset is None else offset
    return b"BM" + struct.pack("<IHHI", 14 + len(pre) + len(data), 0, 0, off) + pre + data

def rows(bits, w, h, seed):
    stride = ((w * bits + 31) >> 3) & ~3
    return bytes(rng_bytes(seed, stride * h))

def pal_bgrx(n, seed): return bytes(rng_bytes(seed, 4 * n))

for bits, mode in ((1, "1"), (4, "P"), (8, "P"), (8, "L"), (24, "RGB"), (32, "RGBA")):
    im = smooth(23, 9, bits, "RGB")
    if mode == "P": im = im.quantize(16 if bits == 4 else 200)
    elif mode != "RGB": im = im.convert(mode)
    if mode == "RGBA": im.putalpha(128)
    pil_save(f"bmp_pillow_{bits}_{mode}.bmp", im, format="BMP", bits=bits) if bits == 4 else \
        pil_save(f"bmp_pillow_{bits}_{mode}.bmp", im, format="BMP")
files["bmp_1bit_colour.bmp"] = bmp(1, 37, 5, pal_bgrx(2, 1), rows(1, 37, 5, 2))
files["bmp_4bit_raw.bmp"] = bmp(4, 21, 6, pal_bgrx(16, 3), rows(4, 21, 6, 4))
files["bmp_8bit_short_pal.bmp"] = bmp(8, 9, 4, pal_bgrx(3, 5), rows(8, 9, 4, 6))
files["bmp_8bit_topdown.bmp"] = bmp(8, 9, -4, pal_bgrx(256, 7), rows(8, 9, 4, 8))
files["bmp_8bit_grey256.bmp"] = bmp(8, 9, 4, b"".join(bytes([i, i, i, 0]) for i in range(256)), rows(8, 9, 4, 9))
files["bmp_8bit_grey2.bmp"] = bmp(8, 9, 4, b"\0\0\0\0\xff\xff\xff\0", rows(8, 9, 4, 10))
files["bmp_1bit_grey256.bmp"] = bmp(1, 3, 4, b"".join(bytes([i, i, i, 0]) for i in range(256)), rows(1, 3, 4, 11))
files["bmp_8bit_300colors.bmp"] = bmp(8, 4, 4, pal_bgrx(300, 12), rows(8, 4, 4, 13))
files["bmp_16_555.bmp"] = bmp(16, 11, 5, b"", rows(16, 11, 5, 14))
files["bmp_16_565_bf.bmp"] = bmp(16, 11, 5, b"", rows(16, 11, 5, 15), comp=3, masks=struct.pack("<III", 0xF800, 0x7E0, 0x1F))
files["bmp_16_555_bf.bmp"] = bmp(16, 11, 5, b"", rows(16, 11, 5, 16), comp=3, masks=struct.pack("<III", 0x7C00, 0x3E0, 0x1F))
files["bmp_16_bad_bf.bmp"] = bmp(16, 11, 5, b"", rows(16, 11, 5, 16), comp=3, masks=struct.pack("<III", 0xF00, 0xF0, 0xF))
for i, m in enumerate([(0xFF0000, 0xFF00, 0xFF, 0), (0xFF000000, 0xFF0000, 0xFF00, 0),
                       (0xFF000000, 0xFF0000, 0xFF00, 0xFF), (0xFF, 0xFF00, 0xFF0000, 0xFF000000),
                       (0xFF0000, 0xFF00, 0xFF, 0xFF000000), (0, 0, 0, 0)]):
    files[f"bmp_32_bf{i}_v5.bmp"] = bmp(32, 7, 3, b"", rows(32, 7, 3, 20 + i), comp=3, hsize=124, masks=struct.pack("<IIII", *m))
files["bmp_24_bf_v3.bmp"] = bmp(24, 7, 3, b"", rows(24, 7, 3, 30), comp=3, masks=struct.pack("<III", 0xFF0000, 0xFF00, 0xFF))
files["bmp_32_raw.bmp"] = bmp(32, 7, 3, b"", rows(32, 7, 3, 31))
files["bmp_os2_8bit.bmp"] = bmp(8, 6, 3, bytes(rng_bytes(32, 3 * 256)), rows(8, 6, 3, 33), hsize=12)
files["bmp_os2_24.bmp"] = bmp(24, 6, 3, b"", rows(24, 6, 3, 34), hsize=12)
files["bmp_offset0.bmp"] = bmp(24, 6, 3, b"", rows(24, 6, 3, 35), offset=0)
files["bmp_truncated.bmp"] = bmp(24, 6, 3, b"", rows(24, 6, 3, 36))[:-5]
files["bmp_bits7.bmp"] = bmp(7, 6, 3, b"", rows(8, 6, 3, 37))
files["bmp_jpeg_comp.bmp"] = bmp(24, 6, 3, b"", rows(24, 6, 3, 38), comp=4)
files["bmp_header_50.bmp"] = bmp(24, 6, 3, b"", rows(24, 6, 3, 39), hsize=50)
# RLE8 / RLE4: runs, absolute runs (odd/even), EOL, delta (Pillow reads it after 2 skipped bytes), clipping
rle8 = bytes([3, 7, 0, 3, 1, 2, 3, 0, 0, 5, 9, 0, 0,    # row: run, absolute(odd, pad), run, EOL
              20, 4, 0, 0,                             # run longer than the row: clipped
              0, 2, 9, 9, 1, 1, 2, 8, 0, 0,            # delta (1 right, 1 up), run, EOL
              0, 4, 1, 2, 3, 4, 2, 5, 0, 1])           # absolute(even), run, end of bitmap
files["bmp_rle8_w9.bmp"] = bmp(8, 9, 4, pal_bgrx(16, 40), rle8, comp=1)
files["bmp_rle8.bmp"] = bmp(8, 8, 4, pal_bgrx(16, 40), rle8, comp=1)
files["bmp_rle8_short.bmp"] = bmp(8, 8, 9, pal_bgrx(16, 40), rle8, comp=1)
files["bmp_rle8_topdown.bmp"] = bmp(8, 8, -4, pal_bgrx(16, 40), rle8, comp=1)
files["bmp_rle8_grey.bmp"] = bmp(8, 8, 4, b"".join(bytes([i, i, i, 0]) for i in range(256)), rle8, comp=1)
files["bmp_rle8_odd_offset.bmp"] = bmp(8, 8, 4, pal_bgrx(16, 40) + b"\0", rle8, comp=1, colors=16)
rle4 = bytes([5, 0x12, 0, 5, 0x34, 0x56, 0x70, 0, 0, 0, 7, 0xAB, 0xCD, 0xEF, 0x10, 0, 0,
              0, 2, 0, 0, 2, 1, 3, 0xF1, 0, 0, 12, 0x9A, 0, 0, 9, 0x55, 0, 1])
files["bmp_rle4.bmp"] = bmp(4, 9, 4, pal_bgrx(16, 41), rle4, comp=2)
r = np.random.default_rng(42)
big = bytearray()
for y in range(40):
    x = 0
    while x < 60:
        if r.integers(0, 2):
            n = int(r.integers(1, 20)); big += bytes([n, int(r.integers(0, 256))]); x += n
        else:
            n = int(r.integers(3, 30)); big += bytes([0, n]) + bytes(r.integers(0, 256, n, dtype=np.uint8)) + (b"\0" if n % 2 else b""); x += n
    big += b"\0\0"
files["bmp_rle8_random.bmp"] = bmp(8, 60, 40, pal_bgrx(256, 43), bytes(big), comp=1)
files["bmp_rle8_grey2.bmp"] = bmp(8, 4, 1, b"\0\0\0\0\xff\xff\xff\0", bytes([4, 1, 0, 1]), comp=1)  # mode "1": Pillow refuses
files["bmp_rle8_24bit.bmp"] = bmp(24, 8, 5, b"", rle8, comp=1)

# ------------------------------------------------------------------- GIF
def lzw_literal(bits, idx):
    """Literal-only LZW with a clear code before the table would grow."""
    clear = 1 << bits; cs = bits + 1; out = []; per = max(clear - 2, 1)
    codes = []
    for i, v in enumerate(idx):
        if i % per == 0: codes.append(clear)
        codes.append(v)
    codes.append(clear + 1)
    acc = nb = 0; bs = bytearray()
    for c in codes:
        acc |= c << nb; nb += cs
        while nb >= 8: bs.append(acc & 255); acc >>= 8; nb -= 8
    if nb: bs.append(acc & 255)
    return bytes(bs)

def sub_blocks(b, size=255):
    return b"".join(bytes([len(b[i:i + size])]) + b[i:i + size] for i in range(0, len(b), size)) + b"\0"

def gif(sw, sh, gpal, frames, ext=b"", trailer=b";"):
    gct = b""
    flags = 0
    if gpal is not None:
        n = len(gpal) // 3; k = max((n - 1).bit_length(), 1)
        flags = 0x80 | (k - 1); gct = gpal.ljust(3 << k, b"\0")
    out = b"GIF89a" + struct.pack("<HHBBB", sw, sh, flags, 0, 0) + gct + ext
    for (x, y, w, h, lpal, inter, bits, data) in frames:
        f = 0x40 if inter else 0
        lct = b""
        if lpal is not None:
            n = len(lpal) // 3; k = max((n - 1).bit_length(), 1); f |= 0x80 | (k - 1); lct = lpal.ljust(3 << k, b"\0")
        out += b"," + struct.pack("<HHHHB", x, y, w, h, f) + lct + bytes([bits]) + sub_blocks(data)
    return out + trailer

def gce(tr=None): return b"!\xf9\x04" + bytes([1 if tr is not None else 0]) + b"\x0a\0" + bytes([tr or 0]) + b"\0"

pil_save("gif_pillow_p.gif", smooth(50, 30, 50).quantize(64), format="GIF")
pil_save("gif_pillow_l.gif", smooth(33, 17, 51, "L"), format="GIF")
pil_save("gif_pillow_interlaced.gif", smooth(31, 19, 52).quantize(200), format="GIF", interlace=True)
fr = [smooth(20, 10, 53 + i).quantize(32) for i in range(3)]
b = io.BytesIO(); fr[0].save(b, format="GIF", save_all=True, append_images=fr[1:], duration=50, loop=0); files["gif_pillow_anim.gif"] = b.getvalue()
b = io.BytesIO(); smooth(20, 12, 56).quantize(16).save(b, format="GIF", transparency=3); files["gif_pillow_trns.gif"] = b.getvalue()
p4 = bytes(rng_bytes(60, 12))
idx = [int(v) % 4 for v in rng_bytes(61, 7 * 5)]
idx6 = [int(v) % 6 for v in rng_bytes(61, 7 * 5)]
files["gif_offset_frame.gif"] = gif(10, 8, p4, [(2, 1, 7, 5, None, False, 2, lzw_literal(2, idx))], ext=gce(5))
files["gif_frame_outside.gif"] = gif(4, 4, p4, [(3, 2, 7, 5, None, False, 2, lzw_literal(2, idx))])
files["gif_local_pal.gif"] = gif(7, 5, p4, [(0, 0, 7, 5, bytes(rng_bytes(62, 24)), True, 3, lzw_literal(3, idx))])
files["gif_identity_pal.gif"] = gif(7, 5, bytes([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]), [(0, 0, 7, 5, None, False, 3, lzw_literal(3, idx))])
files["gif_no_pal.gif"] = gif(7, 5, None, [(0, 0, 7, 5, None, False, 3, lzw_literal(3, idx))])
files["gif_codes_past_clear.gif"] = gif(7, 5, p4, [(0, 0, 7, 5, None, False, 2, lzw_literal(2, idx6))])
files["gif_early_end.gif"] = gif(7, 5, p4, [(0, 0, 7, 5, None, False, 2, lzw_literal(2, idx[:20]))])
files["gif_truncated.gif"] = gif(7, 5, p4, [(0, 0, 7, 5, None, False, 2, lzw_literal(2, idx))])[:-12]
files["gif_bits12.gif"] = gif(7, 5, p4, [(0, 0, 7, 5, None, False, 12, lzw_literal(12, idx))])
files["gif_bits13.gif"] = gif(7, 5, p4, [(0, 0, 7, 5, None, False, 13, lzw_literal(2, idx))])
files["gif_bits1.gif"] = gif(7, 5, p4[:6], [(0, 0, 7, 5, None, False, 1, lzw_literal(1, [v & 1 for v in idx]))])
files["gif_comment_app.gif"] = gif(7, 5, p4, [(0, 0, 7, 5, None, False, 2, lzw_literal(2, idx))],
                                   ext=b"!\xfe\x03abc\x02de\0" + b"!\xff\x0bNETSCAPE2.0\x03\x01\0\0\0" + b"!\x01\x00" + b"\x00")
files["gif_no_image.gif"] = gif(7, 5, p4, [])
files["gif_zero_frame.gif"] = gif(7, 5, p4, [(0, 0, 0, 5, None, False, 2, lzw_literal(2, idx))])  # whole canvas
files["gif_empty_frame.gif"] = gif(7, 5, p4, [(1, 0, 0, 5, None, False, 2, lzw_literal(2, idx))])

# ------------------------------------------------------------------ TIFF
for mode in ("L", "RGB", "RGBA", "P"):
    im = smooth(37, 23, 70, "RGB")
    im = im.quantize(100) if mode == "P" else im.convert(mode)
    for comp in ("raw", "packbits", "tiff_lzw", "tiff_adobe_deflate"):
        pil_save(f"tiff_{mode}_{comp}.tif", im, format="TIFF", compression=comp)
for comp in ("tiff_lzw", "tiff_adobe_deflate"):
    pil_save(f"tiff_RGB_{comp}_pred2.tif", smooth(64, 40, 71), format="TIFF", compression=comp, tiffinfo={317: 2})
pil_save("tiff_RGB_lzw_strips.tif", smooth(50, 70, 72), format="TIFF", compression="tiff_lzw", tiffinfo={278: 8})
pil_save("tiff_L_raw_strips.tif", smooth(50, 30, 73, "L"), format="TIFF", tiffinfo={278: 7})
pil_save("tiff_L_lzw_big.tif", smooth(300, 200, 74, "L"), format="TIFF", compression="tiff_lzw")

def tiff_mm(w, h, photo, spp, data, extra=()):
    """Big-endian uncompressed, one strip, by hand."""
    ents = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 1, 8) if spp == 1 else None, (259, 3, 1, 1),
            (262, 3, 1, photo), (273, 4, 1, 0), (277, 3, 1, spp), (278, 3, 1, h), (279, 4, 1, len(data))]
    ents = [e for e in ents if e]
    ifd_off = 8; nent = len(ents) + (1 if spp > 1 else 0) + (1 if extra else 0)
    data_off = ifd_off + 2 + 12 * nent + 4 + 8
    out = bytearray(b"MM\0*" + struct.pack(">I", ifd_off) + struct.pack(">H", nent))
    bps_off = ifd_off + 2 + 12 * nent + 4
    allents = ents + ([(258, 3, spp, bps_off)] if spp > 1 else []) + ([(338, 3, 1, extra[0])] if extra else [])
    for tag, typ, cnt, val in sorted(allents):
        if tag == 273: val = data_off
        if typ == 3 and cnt == 1: out += struct.pack(">HHIHH", tag, typ, cnt, val, 0)
        else: out += struct.pack(">HHII", tag, typ, cnt, val)
    out += b"\0\0\0\0" + struct.pack(">HHHH", 8, 8, 8, 8)
    return bytes(out + data)
files["tiff_mm_rgb.tif"] = tiff_mm(5, 3, 2, 3, bytes(rng_bytes(80, 45)))
files["tiff_mm_gray_whiteiszero.tif"] = tiff_mm(5, 3, 0, 1, bytes(rng_bytes(81, 15)))
files["tiff_mm_rgbx.tif"] = tiff_mm(5, 3, 2, 4, bytes(rng_bytes(82, 60)), extra=(0,))
files["tiff_mm_rgba_assoc.tif"] = tiff_mm(5, 3, 2, 4, bytes(rng_bytes(83, 60)), extra=(1,))  # RGBa: refused here
files["tiff_mm_truncated.tif"] = tiff_mm(5, 3, 2, 3, bytes(rng_bytes(84, 40)))
files["tiff_lzw_cut.tif"] = files["tiff_RGB_tiff_lzw.tif"][:1200]

# ------------------------------------------------------------------ write
os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT): os.remove(OUT + f)
lines = []
for name in sorted(files):
    with open(OUT + name, "wb") as fh: fh.write(files[name])
    try:
        im = Image.open(OUT + name); rgb = im.convert("RGB")
        lines.append(f"{name} {rgb.width} {rgb.height} {hashlib.sha256(rgb.tobytes()).hexdigest()}")
    except Exception as e:
        lines.append(f"{name} ERROR {type(e).__name__}")
with open(OUT + "digests.txt", "w") as fh: fh.write("\n".join(lines) + "\n")
print(len(files), "files,", sum(len(v) for v in files.values()), "bytes")

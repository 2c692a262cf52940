#!/usr/bin/python3
"""Builds tests/data/formats/: PNM, BMP and GIF files written by Pillow 9.4 and
by hand (edge cases and Pillow quirks), and digests.txt with one line per file:
`<file> <w> <h> <sha256 of Image.open(f).convert("RGB") bytes>`, or
`<file> ERROR <exception>` when Pillow refuses the file.
Run from the repo root with /usr/bin/python3 (Pillow, numpy)."""
import hashlib, io, os, struct, sys, zlib
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


# ------------------------------------------------------------- plain PNM
def plain(kind, w, h, maxval, vals, sep=b" "):
    hdr = b"P%d\n%d %d\n" % (kind, w, h) + (b"%d\n" % maxval if kind != 1 else b"")
    return hdr + sep.join(b"%d" % v for v in vals) + b"\n"

r = np.random.default_rng(100)
for mv in (1, 7, 255, 256, 1000, 65535):
    files[f"p2_max{mv}.pgm"] = plain(2, 9, 4, mv, [int(v) for v in r.integers(0, mv + 1, 36)])
    files[f"p3_max{mv}.ppm"] = plain(3, 9, 4, mv, [int(v) for v in r.integers(0, mv + 1, 108)], b"\n")
files["p1_plain.pbm"] = plain(1, 11, 5, 1, [int(v) for v in r.integers(0, 2, 55)])
files["p1_nosep.pbm"] = b"P1\n11 2\n" + bytes(int(v) for v in r.choice([48, 49], 22)) + b"\n"
files["p1_comments.pbm"] = b"P1 # c\n3 2\n0 1#x\n1\n#y\r1 0 0\n"
files["p1_badtoken.pbm"] = b"P1 3 1\n0 1 0 2\n"
files["p1_trailing_garbage.pbm"] = b"P1 3 1\n0 1 0 x\n"   # every byte of the block is checked
files["p1_short.pbm"] = b"P1 3 2\n0 1 0 1\n"
files["p2_comment_joins.pgm"] = b"P2 2 1 255\n12#c\n3 4\n"          # "12" + "3" = 123
files["p2_comment_cr.pgm"] = b"P2 3 1 255\n1 #c\r2 3 #tail"
files["p2_half_token_repeats.pgm"] = b"P2 4 3 255\n1 2 7"            # 7 fills the image
files["p2_negative.pgm"] = b"P2 3 1 255\n-1 -128 5\n"                # wraps modulo 256
files["p2_negative_mode_i.pgm"] = b"P2 2 1 1000\n-1 5\n"            # Pillow: struct.error
files["p2_over_maxval.pgm"] = b"P2 2 1 100\n5 101\n"
files["p2_token_long.pgm"] = b"P2 2 1 255\n1 2 12345678901"
files["p2_token_long_ws.pgm"] = b"P2 2 1 255\n1 2 12345678901 "    # not reached: decodes
files["p2_bad_token.pgm"] = b"P2 2 1 255\n1 0x1\n"
files["p2_underscore_sign.pgm"] = b"P2 3 1 255\n1_0 +7 -0\n"
files["p2_short.pgm"] = b"P2 3 2 255\n1 2 3\n"
files["p3_half_token.ppm"] = b"P3 2 2 1000\n1 2 3 999 0 500 77"

# ------------------------------------------------------- TIFF by hand
def lzw_encode(data):
    """TIFF LZW (MSB first, early change), one clear code at the start."""
    table = {bytes([i]): i for i in range(256)}
    nxt, width, acc, nb, out = 258, 9, 0, 0, bytearray()
    def put(code):
        nonlocal acc, nb
        acc = (acc << width) | code; nb += width
        while nb >= 8:
            out.append((acc >> (nb - 8)) & 255); nb -= 8
    put(256)
    cur = b""
    for c in data:
        wc = cur + bytes([c])
        if wc in table: cur = wc; continue
        put(table[cur]); table[wc] = nxt; nxt += 1
        if nxt > (1 << width) - 1 and width < 12: width += 1
        cur = bytes([c])
    if cur:
        put(table[cur]); nxt += 1
        if nxt > (1 << width) - 1 and width < 12: width += 1
    put(257)
    if nb: out.append((acc << (8 - nb)) & 255)
    assert nxt < 4000
    return bytes(out)

def packbits(data):
    return b"".join(bytes([len(data[i:i + 128]) - 1]) + data[i:i + 128] for i in range(0, len(data), 128))

def rev_bits(b): return bytes(int(f"{x:08b}"[::-1], 2) for x in b)

ENC = {1: lambda b: b, 5: lzw_encode, 8: lambda b: zlib.compress(b), 32773: packbits}

def tiff_build(w, h, bps, spp, photo, pixels, comp=1, tile=None, rps=None, fill=1, be=False,
               extra_tags=(), pred=1, cmap=None, extra_samples=None):
    """pixels: rows of packed sample bytes (list of h byte strings, file order)."""
    E = ">" if be else "<"
    bpp = bps * spp
    blocks = []
    if tile:
        tw, tl = tile
        rb = (tw * bpp + 7) // 8
        for ty in range(0, h, tl):
            for tx in range(0, w, tw):
                raw = b""
                for y in range(ty, ty + tl):
                    row = pixels[y] if y < h else b"\0" * ((w * bpp + 7) // 8)
                    bits = "".join(f"{x:08b}" for x in row)[tx * bpp:(tx + tw) * bpp]
                    bits = bits.ljust(rb * 8, "0")
                    raw += int(bits, 2).to_bytes(rb, "big") if bits else b""
                blocks.append(raw)
    else:
        rps = rps or h
        for sy in range(0, h, rps):
            blocks.append(b"".join(pixels[sy:sy + rps]))
    if pred == 2:
        def diff(raw, rowlen):
            out = bytearray(raw)
            n = bps // 8
            if n == 0: return raw
            for r0 in range(0, len(raw), rowlen):
                for k in range(rowlen // n - 1, spp - 1, -1):
                    a = int.from_bytes(raw[r0 + k * n:r0 + k * n + n], "big" if be else "little")
                    b_ = int.from_bytes(raw[r0 + (k - spp) * n:r0 + (k - spp) * n + n], "big" if be else "little")
                    out[r0 + k * n:r0 + k * n + n] = ((a - b_) % (1 << bps)).to_bytes(n, "big" if be else "little")
            return bytes(out)
        rowlen = ((tile[0] if tile else w) * bpp + 7) // 8
        blocks = [diff(b_, rowlen) for b_ in blocks]
    blocks = [ENC[comp](b_) for b_ in blocks]
    if fill == 2: blocks = [rev_bits(b_) for b_ in blocks]
    tags = {256: (4, [w]), 257: (4, [h]), 258: (3, [bps] * spp), 259: (3, [comp]), 262: (3, [photo]),
            277: (3, [spp])}
    if fill != 1: tags[266] = (3, [fill])
    if pred != 1: tags[317] = (3, [pred])
    if cmap: tags[320] = (3, cmap)
    if extra_samples is not None: tags[338] = (3, [extra_samples])
    if tile: tags.update({322: (3, [tile[0]]), 323: (3, [tile[1]]), 324: (4, [0] * len(blocks)), 325: (4, [len(b_) for b_ in blocks])})
    else: tags.update({273: (4, [0] * len(blocks)), 278: (3, [rps]), 279: (4, [len(b_) for b_ in blocks])})
    for k, v in extra_tags: tags[k] = v
    n = len(tags)
    ifd_end = 8 + 2 + 12 * n + 4
    heap = bytearray()
    def place(b_):
        off = ifd_end + len(heap); heap.extend(b_)
        if len(heap) % 2: heap.append(0)
        return off
    offtag = 324 if tile else 273
    ent = bytearray()
    sizes = {1: "B", 3: "H", 4: "I", 5: "II", 7: "B", 8: "h", 9: "i", 11: "f", 12: "d", 10: "ii", 2: "B", 6: "b", 16: "Q"}
    for tag in sorted(tags):
        typ, vals = tags[tag]
        fmt = sizes[typ]
        if typ in (5, 10): vals = [x for pair in vals for x in pair]; cnt = len(vals) // 2
        else: cnt = len(vals)
        payload = struct.pack(E + fmt[0] * len(vals), *vals)
        if len(payload) <= 4: val = payload.ljust(4, b"\0")
        else: val = struct.pack(E + "I", place(payload))
        if tag == offtag: offpos = (len(ent) + 8, len(payload) > 4, int.from_bytes(val, "big" if be else "little"))
        ent += struct.pack(E + "HHI", tag, typ, cnt) + val
    # the pixel data last, so that cutting the file cuts pixel data
    data_offs = [place(b_) for b_ in blocks]
    packed = struct.pack(E + "I" * len(data_offs), *data_offs)
    if offpos[1]: heap[offpos[2] - ifd_end:offpos[2] - ifd_end + len(packed)] = packed
    else: ent[offpos[0]:offpos[0] + 4] = packed.ljust(4, b"\0")
    head = (b"MM\0*" if be else b"II*\0") + struct.pack(E + "I", 8)
    return head + struct.pack(E + "H", n) + bytes(ent) + b"\0\0\0\0" + bytes(heap)

def pack_rows(arr, bps, be=False):
    """arr: h x (w*spp) ints -> packed rows."""
    rows = []
    for row in arr:
        if bps == 16: rows.append(b"".join(int(v).to_bytes(2, "big" if be else "little") for v in row))
        elif bps == 8: rows.append(bytes(int(v) for v in row))
        else:
            bits = "".join(format(int(v), f"0{bps}b") for v in row)
            bits = bits.ljust((len(bits) + 7) // 8 * 8, "0")
            rows.append(int(bits, 2).to_bytes(len(bits) // 8, "big"))
    return rows

r = np.random.default_rng(200)
W, H = 40, 23
g8 = smooth(W, H, 201, "L"); g8a = np.asarray(g8)
rgb8 = np.asarray(smooth(W, H, 202)).reshape(H, W * 3)
bits1 = (g8a > 128).astype(int)
g16 = (r.integers(0, 65536, (H, W)) * np.linspace(0, 1, W)).astype(int)
rgb16 = r.integers(0, 65536, (H, W * 3))
rgba16 = r.integers(0, 65536, (H, W * 4))
g4 = r.integers(0, 16, (H, W))
cmap16 = [int(v) for v in r.integers(0, 65536, 48)]
for comp, cn in ((1, "raw"), (5, "lzw"), (8, "deflate"), (32773, "packbits")):
    for tile in (None, (16, 16)):
        tn = "tiled" if tile else "strips"
        kw = dict(comp=comp, tile=tile, rps=None if tile else 7)
        files[f"tiff_1bit_{tn}_{cn}.tif"] = tiff_build(W, H, 1, 1, 0, pack_rows(bits1, 1), **kw)
        files[f"tiff_L_{tn}_{cn}.tif"] = tiff_build(W, H, 8, 1, 1, pack_rows(g8a, 8), **kw)
        files[f"tiff_RGB_{tn}_{cn}.tif"] = tiff_build(W, H, 8, 3, 2, pack_rows(rgb8, 8), **kw)
        files[f"tiff_I16_{tn}_{cn}.tif"] = tiff_build(W, H, 16, 1, 1, pack_rows(g16, 16), **kw)
        files[f"tiff_RGB16_{tn}_{cn}.tif"] = tiff_build(W, H, 16, 3, 2, pack_rows(rgb16, 16), **kw)
    files[f"tiff_1bit_black1_{cn}.tif"] = tiff_build(W, H, 1, 1, 1, pack_rows(bits1, 1), comp=comp)
    files[f"tiff_1bit_fill2_{cn}.tif"] = tiff_build(W, H, 1, 1, 0, pack_rows(bits1, 1), comp=comp, fill=2)
    files[f"tiff_L_fill2_{cn}.tif"] = tiff_build(W, H, 8, 1, 1, pack_rows(g8a, 8), comp=comp, fill=2)
    files[f"tiff_P4_{cn}.tif"] = tiff_build(W, H, 4, 1, 3, pack_rows(g4, 4), comp=comp, cmap=cmap16)
    files[f"tiff_L4_white0_{cn}.tif"] = tiff_build(W, H, 4, 1, 0, pack_rows(g4, 4), comp=comp)
for comp, cn in ((5, "lzw"), (8, "deflate")):
    files[f"tiff_I16_pred2_tiled_{cn}.tif"] = tiff_build(W, H, 16, 1, 1, pack_rows(g16, 16), comp=comp, tile=(16, 16), pred=2)
    files[f"tiff_RGB16_pred2_{cn}_mm.tif"] = tiff_build(W, H, 16, 3, 2, pack_rows(rgb16, 16, True), comp=comp, pred=2, be=True, rps=4)
    files[f"tiff_RGB_pred2_tiled_{cn}.tif"] = tiff_build(W, H, 8, 3, 2, pack_rows(rgb8, 8), comp=comp, tile=(16, 32), pred=2)
files["tiff_I16_mm.tif"] = tiff_build(W, H, 16, 1, 1, pack_rows(g16, 16, True), be=True)
files["tiff_I16_white0.tif"] = tiff_build(W, H, 16, 1, 0, pack_rows(g16, 16))          # not inverted
files["tiff_I16_white0_mm.tif"] = tiff_build(W, H, 16, 1, 0, pack_rows(g16, 16, True), be=True)  # Pillow refuses
files["tiff_RGBA16.tif"] = tiff_build(W, H, 16, 4, 2, pack_rows(rgba16, 16), extra_samples=2)
files["tiff_RGBA16_mm_lzw.tif"] = tiff_build(W, H, 16, 4, 2, pack_rows(rgba16, 16, True), comp=5, be=True, extra_samples=0, rps=4)
files["tiff_1bit_pred2_lzw.tif"] = tiff_build(W, H, 1, 1, 0, pack_rows(bits1, 1), comp=5, pred=2)  # libtiff refuses
files["tiff_tiled_cut.tif"] = files["tiff_RGB_tiled_raw.tif"][:-40]
files["tiff_tiled_lzw_cut.tif"] = files["tiff_RGB_tiled_lzw.tif"][:-300]
for comp in ("group3", "group4", "tiff_ccitt"):   # Pillow decodes these through libtiff; fdd refuses
    pil_save(f"tiff_unsup_{comp}.tif", smooth(W, H, 203, "1"), format="TIFF", compression=comp)
pil_save("tiff_unsup_jpeg.tif", smooth(W, H, 204), format="TIFF", compression="jpeg")


# ------------------------------------------------------ EXIF orientation
# exif-digests.txt: `<file> <orientation> <w> <h> <sha256>` of
# ImageOps.exif_transpose(Image.open(f)).convert("RGB") (or `ERROR <exc>`
# where exif_transpose raises); <orientation> is the 1..8 value
# Image.getexif().get(0x0112) compares equal to, 0 for none / unusable / raise.
exif_files = []
def exif_bytes(o, be=False, typ=3, count=1, vals=None, raw=None):
    """EXIF block "Exif\0\0" + TIFF header + IFD0 holding Orientation."""
    if raw is not None: return b"Exif\0\0" + raw
    E = ">" if be else "<"
    vals = vals if vals is not None else [o] * count
    fmt = {1: "B", 3: "H", 4: "I", 5: "II", 11: "f", 12: "d", 8: "h", 7: "B"}[typ]
    flat = [x for v in vals for x in (v if isinstance(v, tuple) else (v,))]
    payload = struct.pack(E + fmt[0] * len(flat), *flat)
    if len(payload) <= 4: val, heap = payload.ljust(4, b"\0"), b""
    else: val, heap = struct.pack(E + "I", 26), payload
    return (b"Exif\0\0" + (b"MM\0*" if be else b"II*\0") + struct.pack(E + "I", 8) + struct.pack(E + "H", 1)
            + struct.pack(E + "HHI", 0x0112, typ, len(vals)) + val + b"\0\0\0\0" + heap)

base = smooth(13, 7, 300)
def jpeg_with_app1(app1_payloads):
    # payloads are APP1 segments, or (marker, payload) pairs
    b = io.BytesIO(); base.save(b, format="JPEG", quality=90); j = b.getvalue()
    segs = b"".join(bytes([0xff, m]) + struct.pack(">H", len(p_) + 2) + p_
                    for m, p_ in ((x if isinstance(x, tuple) else (0xe1, x)) for x in app1_payloads))
    return j[:2] + segs + j[2:]

def jfif_app0(units):
    return (0xe0, b"JFIF\0\x01\x01" + bytes([units]) + struct.pack(">HH", 72, 72) + b"\0\0")

def png_chunk(cid, data):
    return struct.pack(">I", len(data)) + cid + data + struct.pack(">I", zlib.crc32(cid + data))

def png_with_exif(exifs_before, exifs_after):
    b = io.BytesIO(); base.save(b, format="PNG"); pn = b.getvalue()
    i = pn.index(b"IDAT") - 4
    e = pn.index(b"IEND") - 4
    return (pn[:i] + b"".join(png_chunk(b"eXIf", x[6:]) for x in exifs_before) + pn[i:e]
            + b"".join(png_chunk(b"eXIf", x[6:]) for x in exifs_after) + pn[e:])

for o in range(1, 9):
    ex = Image.Exif(); ex[0x0112] = o
    for fmt, ext, kw in (("JPEG", "jpg", {"quality": 90}), ("PNG", "png", {}), ("WEBP", "webp", {"lossless": True})):
        b = io.BytesIO(); base.save(b, format=fmt, exif=ex.tobytes(), **kw)
        files[f"exif_o{o}.{ext}"] = b.getvalue(); exif_files.append(f"exif_o{o}.{ext}")
    b = io.BytesIO(); base.save(b, format="TIFF", tiffinfo={274: o}); files[f"exif_o{o}.tif"] = b.getvalue()
    exif_files.append(f"exif_o{o}.tif")
b = io.BytesIO(); base.save(b, format="TIFF", tiffinfo={274: 6}, compression="tiff_lzw"); files["exif_o6_lzw.tif"] = b.getvalue()
b = io.BytesIO(); base.convert("1").save(b, format="TIFF", tiffinfo={274: 8}, compression="packbits"); files["exif_o8_1bit.tif"] = b.getvalue()
bad = {
    "exif_bad_header.jpg": jpeg_with_app1([exif_bytes(0, raw=b"XX*\0\x08\0\0\0\0\0")]),       # Pillow raises
    "exif_empty.jpg": jpeg_with_app1([b"Exif\0\0"]),
    "exif_prefix_exif0x.jpg": jpeg_with_app1([b"Exif\0X" + exif_bytes(6)[6:]]),              # Pillow raises
    "exif_ifd_past_end.jpg": jpeg_with_app1([exif_bytes(0, raw=b"II*\0\xff\0\0\0")]),
    # Pillow's JPEG open reads the first Exif APP1 at once unless a JFIF APP0
    # with units 1 (dpi) came before it; a TIFF header it accepts that is
    # under 8 bytes, or BigTIFF's "II+\0", then raises struct.error and the
    # open fails.
    "exif_tiff_short.jpg": jpeg_with_app1([b"Exif\0\0II*\0\x08\0"]),                    # Pillow fails
    "exif_tiff_4bytes_mm.jpg": jpeg_with_app1([b"Exif\0\0MM\0*"]),                          # Pillow fails
    "exif_tiff_3bytes.jpg": jpeg_with_app1([b"Exif\0\0II*"]),                               # not a header: kept
    "exif_bigtiff.jpg": jpeg_with_app1([b"Exif\0\0II+\0\x08\0\0\0\0\0\0\0\0\0\0\0"]),    # Pillow fails
    "exif_bigtiff_mm.jpg": jpeg_with_app1([b"Exif\0\0MM\0+\0\0\0\x08\0\0\0\0"]),          # read as plain TIFF
    "exif_tiff_short_after_dpi.jpg": jpeg_with_app1([jfif_app0(1), b"Exif\0\0II*\0"]),     # dpi first: kept
    "exif_tiff_short_after_dpcm.jpg": jpeg_with_app1([jfif_app0(2), b"Exif\0\0II*\0"]),    # units 2: fails
    "exif_tiff_short_second.jpg": jpeg_with_app1([exif_bytes(6), b"Exif\0\0II*\0"]),       # first only: kept
    "exif_ifd_cut.jpg": jpeg_with_app1([exif_bytes(6)[:6 + 8 + 2 + 12] + b"\x01"]),         # next-IFD cut: kept
    "exif_entry_cut.jpg": jpeg_with_app1([exif_bytes(6)[:6 + 8 + 2 + 8]]),
    "exif_count2.jpg": jpeg_with_app1([exif_bytes(0, vals=[6, 3])]),                      # first value
    "exif_count0.jpg": jpeg_with_app1([exif_bytes(0, vals=[])]),
    "exif_long.jpg": jpeg_with_app1([exif_bytes(8, typ=4)]),
    "exif_sshort_mm.jpg": jpeg_with_app1([exif_bytes(5, typ=8, be=True)]),
    "exif_byte.jpg": jpeg_with_app1([exif_bytes(6, typ=1)]),                              # bytes: no match
    "exif_undefined.jpg": jpeg_with_app1([exif_bytes(6, typ=7)]),
    "exif_rational.jpg": jpeg_with_app1([exif_bytes(0, typ=5, vals=[(12, 2)])]),          # 6
    "exif_rational_frac.jpg": jpeg_with_app1([exif_bytes(0, typ=5, vals=[(13, 2)])]),
    "exif_rational_zero.jpg": jpeg_with_app1([exif_bytes(0, typ=5, vals=[(6, 0)])]),
    "exif_rational_past_end.jpg": jpeg_with_app1([exif_bytes(0, typ=5, vals=[(12, 2)])[:-3]]),
    "exif_float.jpg": jpeg_with_app1([exif_bytes(3.0, typ=11)]),
    "exif_double.jpg": jpeg_with_app1([exif_bytes(7.0, typ=12)]),
    "exif_value9.jpg": jpeg_with_app1([exif_bytes(9)]),
    "exif_value0.jpg": jpeg_with_app1([exif_bytes(0)]),
    "exif_second_app1.jpg": jpeg_with_app1([exif_bytes(0, raw=b"MM\0*\0\0\0\x08\0\0"), exif_bytes(6)]),  # first only
    "exif_unknown_type.jpg": jpeg_with_app1([exif_bytes(6)[:6 + 8 + 2 + 2] + b"\x63\x00" + exif_bytes(6)[6 + 8 + 2 + 4:]]),
    "exif_after_idat.png": png_with_exif([], [exif_bytes(3)]),
    "exif_two_chunks.png": png_with_exif([exif_bytes(3)], [exif_bytes(6)]),                 # before IDAT wins
    "exif_two_after_idat.png": png_with_exif([], [exif_bytes(6), exif_bytes(8)]),           # the last one
    "exif_bad.png": png_with_exif([exif_bytes(0, raw=b"II*\0\x30\0\0\0")], []),
    "exif_bad_header.png": png_with_exif([exif_bytes(0, raw=b"XX*\0\x08\0\0\0\0\0")], []),  # exif_transpose raises
}
# Duplicate entries: the later one replaces the earlier.
dup = bytearray(exif_bytes(3))
dup[6 + 8:6 + 8 + 2] = b"\x02\x00"
dup = bytes(dup[:6 + 8 + 2 + 12]) + struct.pack("<HHIHH", 0x0112, 3, 1, 8, 0) + b"\0\0\0\0"
bad["exif_duplicate.jpg"] = jpeg_with_app1([dup])
# WebP: an EXIF chunk in a simple (VP8L) file is not read; VP8X flags unset still is.
wl = files["exif_o1.webp"]
bw = io.BytesIO(); base.save(bw, format="WEBP", lossless=True); simple = bw.getvalue()
ch = b"EXIF" + struct.pack("<I", len(exif_bytes(6))) + exif_bytes(6)
bad["exif_simple_trailing.webp"] = b"RIFF" + struct.pack("<I", len(simple) - 8 + len(ch)) + simple[8:] + ch
w6 = bytearray(files["exif_o6.webp"]); w6[20] &= ~0x08
bad["exif_vp8x_flag_unset.webp"] = bytes(w6)
for k, v in bad.items(): files[k] = v; exif_files.append(k)
exif_files += ["exif_o6_lzw.tif", "exif_o8_1bit.tif"]

# ------------------------------------------------------------------ write
os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT): os.remove(OUT + f)
warnings_ = __import__("warnings"); warnings_.simplefilter("ignore")
lines = []
for name in sorted(files):
    with open(OUT + name, "wb") as fh: fh.write(files[name])
for name in sorted(files):
    try:
        im = Image.open(OUT + name); rgb = im.convert("RGB")
        lines.append(f"{name} {rgb.width} {rgb.height} {hashlib.sha256(rgb.tobytes()).hexdigest()}")
    except Exception as e:
        lines.append(f"{name} ERROR {type(e).__name__}")
with open(OUT + "digests.txt", "w") as fh: fh.write("\n".join(lines) + "\n")
import warnings
from PIL import ImageOps
warnings.simplefilter("ignore")
lines = []
for name in sorted(exif_files):
    try:
        v = Image.open(OUT + name).getexif().get(0x0112)
        o = next((k for k in range(1, 9) if not isinstance(v, (bytes, str, tuple)) and v == k), 0)
    except Exception:
        o = 0
    try:
        rgb = ImageOps.exif_transpose(Image.open(OUT + name)).convert("RGB")
        lines.append(f"{name} {o} {rgb.width} {rgb.height} {hashlib.sha256(rgb.tobytes()).hexdigest()}")
    except Exception as e:
        lines.append(f"{name} {o} ERROR {type(e).__name__}")
with open(OUT + "exif-digests.txt", "w") as fh: fh.write("\n".join(lines) + "\n")
print(len(files), "files,", sum(len(v) for v in files.values()), "bytes")

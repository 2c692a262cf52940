#!/usr/bin/python3
"""Writes the PNG test corpus under tests/data/png/ with a small PNG writer
of our own (Pillow cannot write interlaced files or every bit depth), then
decodes every file with Pillow -- Image.open(p).convert("RGB") -- and writes
tests/data/png/digests.txt: "<file> <width> <height> <sha256 of RGB bytes>".

Run with Debian's /usr/bin/python3 (Pillow 9.4) from the repository root:
    /usr/bin/python3 tests/reference/make_png_corpus.py
Deterministic: same files and digests on every run."""
import hashlib
import os
import struct
import sys
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "png")

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & (2**64 - 1)

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & (2**64 - 1)
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n


def chunk(ctype, data):
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def pack_row(samples, depth):
    """samples: flat list of sample values of one row -> bytes."""
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", v) for v in samples)
    out = bytearray()
    per = 8 // depth
    for i in range(0, len(samples), per):
        byte = 0
        for j in range(per):
            v = samples[i + j] if i + j < len(samples) else 0
            byte |= v << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(ft, row, prev, bpp):
    out = bytearray([ft])
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i] if prev is not None else 0
        c = prev[i - bpp] if prev is not None and i >= bpp else 0
        pred = (0, a, b, (a + b) // 2, paeth(a, b, c))[ft]
        out.append((x - pred) & 255)
    return bytes(out)


def encode_image(pix, w, h, ctype, depth, interlace, filters, rng):
    """pix[y][x] = tuple of samples.  filters: None (cycle 0..4) or a type."""
    ch = CHANNELS[ctype]
    bpp = max(1, ch * depth // 8)
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = bytearray()
    n = 0
    for x0, y0, dx, dy in passes:
        xs = list(range(x0, w, dx))
        ys = list(range(y0, h, dy))
        if not xs or not ys:
            continue
        prev = None
        for y in ys:
            samples = [s for x in xs for s in pix[y][x]]
            row = pack_row(samples, depth)
            ft = (n % 5) if filters is None else (rng.below(5) if filters == "random" else filters)
            n += 1
            raw += filter_row(ft, row, prev, bpp)
            prev = row
    return bytes(raw)


def compress(raw, mode):
    if mode == "stored":
        return zlib.compress(raw, 0)
    if mode == "fixed":
        c = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_FIXED)
        return c.compress(raw) + c.flush()
    if mode == "dynamic":
        return zlib.compress(raw, 9)
    if mode == "mixed":  # stored, fixed and dynamic blocks in one stream
        third = len(raw) // 3
        parts = [(0, zlib.Z_DEFAULT_STRATEGY, raw[:third]), (9, zlib.Z_FIXED, raw[third:2 * third]),
                 (9, zlib.Z_DEFAULT_STRATEGY, raw[2 * third:])]
        body = b""
        for k, (level, strategy, piece) in enumerate(parts):
            c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
            # Non-final parts end with a full flush (byte aligned, not final).
            body += c.compress(piece) + c.flush(zlib.Z_FINISH if k == 2 else zlib.Z_FULL_FLUSH)
        return b"\x78\xda" + body + struct.pack(">I", zlib.adler32(raw))
    raise ValueError(mode)


def write_png(path, w, h, ctype, depth, interlace, pix, rng, filters=None, zmode="dynamic",
              nidat=1, plte=None, trns=None, extra_chunks=()):
    raw = encode_image(pix, w, h, ctype, depth, interlace, filters, rng)
    z = compress(raw, zmode)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0))
    for c in extra_chunks:
        out += chunk(*c)
    if plte is not None:
        out += chunk(b"PLTE", plte)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    # Split the stream into nidat pieces (some may be empty).
    cuts = sorted(rng.below(len(z) + 1) for _ in range(nidat - 1))
    prev = 0
    for cpos in cuts + [len(z)]:
        out += chunk(b"IDAT", z[prev:cpos])
        prev = cpos
    out += chunk(b"tEXt", b"Comment\0fdd test corpus")
    out += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def long_code_stream():
    bits = []

    def put(v, n):  # integer, LSB first
        bits.extend((v >> i) & 1 for i in range(n))

    lens = [0] * 258
    for i in range(14):
        lens[65 + i] = i + 1
    lens[65 + 14] = 15
    lens[256] = 15
    lens[257] = 1  # the single distance code
    # Canonical codes for the literal/length alphabet (257 symbols).
    codes, code = {}, 0
    for n in range(1, 16):
        for sym in range(257):
            if lens[sym] == n:
                codes[sym] = (code, n)
                code += 1
        code <<= 1
    order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
    # Header: final, dynamic; 257 lit/len codes, 1 distance code, all 19
    # code-length codes (0..15 get 4 bits each, a complete code; 16-18 unused).
    put(1, 1); put(2, 2); put(0, 5); put(0, 5); put(15, 4)
    for sym in order:
        put(0 if sym >= 16 else 4, 3)
    for v in lens:                            # code-length symbol v = code v, 4 bits, MSB first
        bits.extend((v >> (3 - i)) & 1 for i in range(4))
    data = b""
    for sym in list(range(65, 80)) * 2 + [256]:
        c, n = codes[sym]
        bits.extend((c >> (n - 1 - i)) & 1 for i in range(n))
        if sym != 256:
            data += bytes([sym])
    out = bytearray()
    for i in range(0, len(bits), 8):
        out.append(sum(b << j for j, b in enumerate(bits[i:i + 8])))
    assert zlib.decompress(bytes(out), -15) == data
    return b"\x78\x9c" + bytes(out) + struct.pack(">I", zlib.adler32(data))


def random_pixels(w, h, ctype, depth, rng, maxval=None, smooth=False):
    ch = CHANNELS[ctype]
    top = (1 << depth) if maxval is None else maxval
    pix = []
    for y in range(h):
        row = []
        for x in range(w):
            if smooth:  # gradients compress with matches, exercising lengths/distances
                row.append(tuple(((x * (c + 1) + y * 3 + c * 40) % top) for c in range(ch)))
            else:
                row.append(tuple(rng.below(top) for _ in range(ch)))
        pix.append(row)
    return pix


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".png") or f.endswith(".bin"):
            os.remove(os.path.join(OUT, f))
    rng = SplitMix64(20240501)
    files = []

    def add(name, *a, **k):
        write_png(os.path.join(OUT, name), *a, rng=rng, **k)
        files.append(name)

    sizes = [(1, 1), (7, 13), (33, 5)]
    zmodes = ["stored", "fixed", "dynamic", "mixed"]
    i = 0
    for ctype in (0, 2, 3, 4, 6):
        for depth in DEPTHS[ctype]:
            for interlace in (0, 1):
                for (w, h) in sizes:
                    zm = zmodes[i % 4]
                    nidat = 1 + (i % 3)
                    i += 1
                    plte = None
                    top = None
                    if ctype == 3:
                        npal = 1 << depth
                        plte = bytes(rng.below(256) for _ in range(3 * npal))
                    pix = random_pixels(w, h, ctype, depth, rng, top, smooth=(i % 2 == 0))
                    name = "c%dd%02d%s_%dx%d_%s_%didat.png" % (ctype, depth, "i" if interlace else "n",
                                                             w, h, zm, nidat)
                    add(name, w, h, ctype, depth, interlace, pix, zmode=zm, nidat=nidat, plte=plte)

    # Every filter type alone, on 8-bit RGB, 16-bit RGBA and 2-bit gray.
    for ft in range(5):
        pix = random_pixels(19, 11, 2, 8, rng, smooth=True)
        add("filter%d_rgb8.png" % ft, 19, 11, 2, 8, 0, pix, filters=ft)
        pix = random_pixels(9, 7, 6, 16, rng)
        add("filter%d_rgba16_i.png" % ft, 9, 7, 6, 16, 1, pix, filters=ft)
        pix = random_pixels(13, 6, 0, 2, rng)
        add("filter%d_gray2.png" % ft, 13, 6, 0, 2, 0, pix, filters=ft)
    pix = random_pixels(40, 30, 2, 8, rng, smooth=True)
    add("filter_random_rgb8.png", 40, 30, 2, 8, 0, pix, filters="random", nidat=6)

    # Palettes: tRNS (one transparent entry / full alpha table), short PLTE
    # (indices past it: gray ramp in Pillow 9.4), no PLTE at all.
    pal = bytes(rng.below(256) for _ in range(3 * 256))
    pix = random_pixels(17, 9, 3, 8, rng)
    add("pal8_trns_single.png", 17, 9, 3, 8, 0, pix, plte=pal, trns=b"\xff\xff\x00")
    add("pal8_trns_table.png", 17, 9, 3, 8, 1, pix, plte=pal, trns=bytes(range(0, 256, 3)))
    add("pal8_short_plte.png", 17, 9, 3, 8, 0, pix, plte=pal[:3 * 20])
    pix4 = random_pixels(11, 5, 3, 4, rng)
    add("pal4_short_plte_trns.png", 11, 5, 3, 4, 0, pix4, plte=pal[:3 * 5], trns=b"\x00\x80")
    add("pal2_trns_i.png", 9, 9, 3, 2, 1, random_pixels(9, 9, 3, 2, rng), plte=pal[:12], trns=b"\x10")
    add("pal1_plte256.png", 21, 3, 3, 1, 0, random_pixels(21, 3, 3, 1, rng), plte=pal)
    # Gray/RGB tRNS (ignored by convert("RGB")).
    add("gray8_trns.png", 6, 6, 0, 8, 0, random_pixels(6, 6, 0, 8, rng), trns=b"\x00\x07")
    add("rgb8_trns_i.png", 6, 6, 2, 8, 1, random_pixels(6, 6, 2, 8, rng), trns=b"\x00\x01\x00\x02\x00\x03")
    add("gray16_trns.png", 6, 6, 0, 16, 0, random_pixels(6, 6, 0, 16, rng), trns=b"\x12\x34")
    # 16-bit gray with small values: saturation min(v, 255) is visible.
    add("gray16_small.png", 16, 16, 0, 16, 0, random_pixels(16, 16, 0, 16, rng, maxval=512))
    add("gray16_small_i.png", 16, 16, 0, 16, 1, random_pixels(16, 16, 0, 16, rng, maxval=300))
    # Wide and thin images.
    add("wide_rgb8_200x2.png", 200, 2, 2, 8, 0, random_pixels(200, 2, 2, 8, rng, smooth=True))
    add("thin_rgba8_1x40_i.png", 1, 40, 6, 8, 1, random_pixels(1, 40, 6, 8, rng))
    add("wide_gray1_97x1_i.png", 97, 1, 0, 1, 1, random_pixels(97, 1, 0, 1, rng))
    add("thin_la16_2x31.png", 2, 31, 4, 16, 0, random_pixels(2, 31, 4, 16, rng))
    add("odd_rgb16_5x3_i.png", 5, 3, 2, 16, 1, random_pixels(5, 3, 2, 16, rng))
    # Larger smooth images: long matches and big dynamic blocks.
    add("smooth_rgb8_96x64.png", 96, 64, 2, 8, 0, random_pixels(96, 64, 2, 8, rng, smooth=True), nidat=4)
    add("smooth_rgba8_64x48_i.png", 64, 48, 6, 8, 1, random_pixels(64, 48, 6, 8, rng, smooth=True))
    # One IDAT of stored data: tests/test_png.c patches bytes at known offsets.
    add("rgb8_stored_1idat.png", 7, 13, 2, 8, 0, random_pixels(7, 13, 2, 8, rng), zmode="stored")
    add("rgb8_dynamic_1idat.png", 7, 13, 2, 8, 0, random_pixels(7, 13, 2, 8, rng, smooth=True))
    # Ancillary chunks before IDAT, one of them private/unknown.
    add("ancillary_gray4.png", 10, 10, 0, 4, 0, random_pixels(10, 10, 0, 4, rng),
        extra_chunks=[(b"gAMA", struct.pack(">I", 45455)), (b"prVt", b"private data"),
                      (b"pHYs", struct.pack(">IIB", 2835, 2835, 1))])

    # Raw zlib streams for the inflate unit tests: the data is regenerated by
    # tests/test_png.c (inflate_test_data) and compared byte for byte.
    data = (bytes(97 + ((i * i * 31 + i * 7) >> 3) % 17 for i in range(4000)) + b"abcabcabc" * 200
            + bytes(300))
    for zm in ("stored", "fixed", "dynamic", "mixed"):
        with open(os.path.join(OUT, "zlib_%s.bin" % zm), "wb") as f:
            f.write(compress(data, zm))

    # A hand-made dynamic block whose literal codes have every length 1..15
    # (second-level tables, the longest codes): literals 'A'+i get length
    # i+1 (i < 14), 'O' and end-of-block length 15; one distance code.  The
    # data, each of 'A'..'O' twice, is regenerated by tests/test_png.c.
    with open(os.path.join(OUT, "zlib_long_codes.bin"), "wb") as f:
        f.write(long_code_stream())

    # Pillow reference digests.
    from PIL import Image
    lines = []
    for name in sorted(files):
        with Image.open(os.path.join(OUT, name)) as im:
            rgb = im.convert("RGB")
            lines.append("%s %d %d %s" % (name, rgb.width, rgb.height,
                                          hashlib.sha256(rgb.tobytes()).hexdigest()))
    with open(os.path.join(OUT, "digests.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in files)
    print("%d files, %d bytes" % (len(files), total))


if __name__ == "__main__":
    sys.exit(main())

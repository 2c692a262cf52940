#!/usr/bin/python3
"""Co-process of bench/bench_decode.c: the in-process contenders, driven one
pass at a time over stdin so that bench_decode can interleave them with fdd.

  pillow: Image.open(io.BytesIO(data)).convert("RGB"), Pillow 9.4 as
          installed (its JPEG codec is libjpeg-turbo 2.1.5).
  tj:     libjpeg-turbo's TurboJPEG API through ctypes (tjDecompress2, RGB,
          default flags = ISLOW IDCT and fancy upsampling, like djpeg and
          fdd), into one reused output buffer: libjpeg-turbo's best case,
          with no process start-up and no allocation.

Every file is read into memory first.  Protocol (one line each way):
  -> READY pillow=<0|1> tj=<0|1> <reasons>
  <- hash KIND     -> HASH KIND <sha256 of all Pillow RGB outputs in order>
  <- pillow KIND   -> T <seconds for one pass over KIND's files>
  <- tj KIND       -> T <seconds>
  <- quit
usage: decode_pillow.py DIR KIND:EXT..."""
import ctypes, ctypes.util, glob, hashlib, io, os, sys, time

d = sys.argv[1]
files = {}
for arg in sys.argv[2:]:
    kind, ext = arg.split(":")
    names = sorted(glob.glob(os.path.join(d, kind, "*." + ext)))
    files[kind] = [open(p, "rb").read() for p in names]

why = []
try:
    from PIL import Image
    import PIL
    why.append("Pillow " + PIL.__version__)
except ImportError as e:
    Image = None
    why.append("no Pillow (%s)" % e)

tj = None
try:
    tj = ctypes.CDLL(ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0")
    tj.tjInitDecompress.restype = ctypes.c_void_p
    tj.tjDecompressHeader3.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong] + \
        [ctypes.POINTER(ctypes.c_int)] * 4
    tj.tjDecompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p,
                                 ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    tjh = tj.tjInitDecompress()
    if not tjh:
        raise OSError("tjInitDecompress failed")
    why.append("libturbojpeg")
except (OSError, AttributeError) as e:
    tj = None
    why.append("no libturbojpeg (%s)" % e)

tjbuf = None
if tj:
    cap = 0
    dims = {}
    for kind, blobs in files.items():
        for b in blobs:
            if b[:2] != b"\xff\xd8":
                continue
            w, h, s, c = (ctypes.c_int() for _ in range(4))
            if tj.tjDecompressHeader3(tjh, b, len(b), ctypes.byref(w), ctypes.byref(h),
                                      ctypes.byref(s), ctypes.byref(c)):
                sys.exit("tjDecompressHeader3 failed")
            dims[id(b)] = (w.value, h.value)
            cap = max(cap, w.value * h.value * 3)
    tjbuf = ctypes.create_string_buffer(max(cap, 1))


def pillow_pass(kind):
    t = time.perf_counter()
    for b in files[kind]:
        Image.open(io.BytesIO(b)).convert("RGB")
    return time.perf_counter() - t


def tj_pass(kind):
    t = time.perf_counter()
    for b in files[kind]:
        w, h = dims[id(b)]
        if tj.tjDecompress2(tjh, b, len(b), tjbuf, w, 0, h, 0, 0):  # TJPF_RGB = 0
            sys.exit("tjDecompress2 failed")
    return time.perf_counter() - t


print("READY pillow=%d tj=%d %s" % (Image is not None, tj is not None, "; ".join(why)), flush=True)
for line in sys.stdin:
    cmd, *rest = line.split()
    if cmd == "quit":
        break
    kind = rest[0]
    if cmd == "hash":
        h = hashlib.sha256()
        for b in files[kind]:
            h.update(Image.open(io.BytesIO(b)).convert("RGB").tobytes())
        print("HASH %s %s" % (kind, h.hexdigest()), flush=True)
    elif cmd == "pillow":
        print("T %.9f" % pillow_pass(kind), flush=True)
    elif cmd == "tj":
        print("T %.9f" % tj_pass(kind), flush=True)

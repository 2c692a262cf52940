#!/usr/bin/env python3
"""Tests of convert/fdd-convert (standard library only; run from the repo root
by `make test`).  Fixtures: tests/data/convert (made by
tests/reference/make_checkpoint_fixtures.py with real torch).  The .fdw files
the converter writes are parsed by an independent minimal reader below.
Prints "RESULT convert <passed> <failed>"."""
import collections
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

sys.dont_write_bytecode = True  # loading convert/fdd-convert must not leave a __pycache__
ROOT = os.getcwd()
CONVERTER = os.path.join(ROOT, "convert", "fdd-convert")
FETCH = os.path.join(ROOT, "weights", "fetch")
FIX = os.path.join(ROOT, "tests", "data", "convert")
EXPECTED = json.load(open(os.path.join(FIX, "expected.json")),
                     object_pairs_hook=collections.OrderedDict)

_loader = importlib.machinery.SourceFileLoader("fdd_convert", CONVERTER)
_spec = importlib.util.spec_from_loader("fdd_convert", _loader)
conv = importlib.util.module_from_spec(_spec)
_loader.exec_module(conv)

passed = failed = 0
_cur_fail = []


def check(cond, msg):
    if not cond:
        _cur_fail.append(msg)
    return cond


def run_test(fn):
    global passed, failed
    del _cur_fail[:]
    t0 = time.time()
    try:
        fn()
    except Exception as e:  # a crash is a failure, not the end of the run
        _cur_fail.append("exception %s: %s" % (type(e).__name__, e))
    if os.environ.get("TEST_TIMES"):
        print("%-40s %.2f s" % (fn.__name__, time.time() - t0))
    if _cur_fail:
        failed += 1
        for m in _cur_fail[:6]:
            print("FAIL %s: %s" % (fn.__name__, m))
    else:
        passed += 1


def run_conv(args, cwd=None):
    p = subprocess.run([sys.executable, CONVERTER] + args, cwd=cwd, capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def run_conv_inproc(args):
    """The same entry point, in this process (fast; for the many rejection cases)."""
    import contextlib
    import io
    so, se = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        try:
            rc = conv.main(args)
        except SystemExit as e:
            rc = e.code
    return rc, so.getvalue(), se.getvalue()


def expect_error(args, what, cwd=None, out=None, inproc=False):
    rc, so, se = run_conv_inproc(args) if inproc else run_conv(args, cwd)
    check(rc not in (0, None), "%s: exit status %s" % (what, rc))
    lines = se.strip().splitlines()
    check(len(lines) == 1 and lines[0].startswith("fdd-convert: "),
          "%s: not a one-line error: %r" % (what, se[:300]))
    check("Traceback" not in se, "%s: traceback" % what)
    if out:
        check(not os.path.exists(out), "%s: output was created" % what)
    return se


# ------------------------------------------------------------ independent .fdw reader

def read_fdw(path):
    """Parses and checks everything docs/format.md states; returns
    (meta dict, meta key order, [(name, dtype, shape, bytes)])."""
    d = open(path, "rb").read()
    assert len(d) >= 128, "short file"
    assert d[:8] == b"\x89FDW\r\n\x1a\n", "magic"
    version, hsize, bo, n = struct.unpack_from("<IIII", d, 8)
    mo, ms, to, ts, do, ds, fs = struct.unpack_from("<7Q", d, 24)
    assert version == 1 and hsize == 128, "version/header size"
    assert d[16:20] == b"\x0d\x0c\x0b\x0a", "byte order mark"
    assert 1 <= n <= 1000000, "n_tensors"
    assert mo == 128 and ms <= 16 << 20 and to == mo + ms, "meta/table offsets"
    assert do == (to + ts + 63) // 64 * 64, "data_offset"
    assert fs == len(d) and ds == fs - do, "file/data size"
    assert d[80:112] == hashlib.sha256(d[128:]).digest(), "sha256"
    assert d[112:128] == bytes(16), "reserved"
    text = d[mo:mo + ms].decode("utf-8")
    assert text.endswith("\n") or not text
    meta, order = {}, []
    for line in text.split("\n")[:-1]:
        k, eq, v = line.partition("=")
        assert eq and re.fullmatch(r"[a-z0-9_.-]+", k) and k not in meta, "meta key %r" % k
        meta[k] = v
        order.append(k.encode())
    assert order == sorted(order), "metadata keys not sorted"
    assert d[to + ts:do] == bytes(do - to - ts), "table padding"
    pos, tensors, names, prev_end = to, [], set(), do
    esize = {0: 4, 1: 2, 2: 2}
    for _ in range(n):
        nl = struct.unpack_from("<H", d, pos)[0]
        assert 1 <= nl <= 255
        name = d[pos + 2:pos + 2 + nl]
        assert all(0x21 <= c <= 0x7E for c in name), "name chars"
        name = name.decode()
        assert name not in names, "duplicate"
        names.add(name)
        pos += 2 + nl
        dt, nd = d[pos], d[pos + 1]
        assert dt in esize and nd <= 8
        pos += 2
        shape = struct.unpack_from("<%dQ" % nd, d, pos)
        assert all(x >= 1 for x in shape)
        pos += 8 * nd
        off, nb = struct.unpack_from("<QQ", d, pos)
        pos += 16
        numel = 1
        for x in shape:
            numel *= x
        assert nb == numel * esize[dt], "nbytes"
        assert off % 64 == 0 and off >= prev_end and off + nb <= fs, "tensor placement"
        assert d[prev_end:off] == bytes(off - prev_end), "gap not zero"
        tensors.append((name, dt, shape, d[off:off + nb]))
        prev_end = off + nb
    assert pos == to + ts, "table end"
    assert prev_end == fs, "trailing bytes"
    return meta, tensors


def f32_values(raw, dtype):
    if dtype in ("f32", 0):
        return list(struct.unpack("<%df" % (len(raw) // 4), raw))
    if dtype in ("f16", 1):
        return list(struct.unpack("<%de" % (len(raw) // 2), raw))
    if dtype in ("bf16", 2):
        hs = struct.unpack("<%dH" % (len(raw) // 2), raw)
        return list(struct.unpack("<%df" % len(hs), struct.pack("<%dI" % len(hs), *[h << 16 for h in hs])))
    if dtype == "f64":
        return list(struct.unpack("<%dd" % (len(raw) // 8), raw))
    raise ValueError(dtype)


def f32_sha(raw, dtype):
    v = f32_values(raw, dtype)
    return hashlib.sha256(struct.pack("<%df" % len(v), *v)).hexdigest()


def write_safetensors(path, tensors):
    """tensors: [(name, 'F32', shape, bytes)]"""
    header, pos, blobs = collections.OrderedDict(), 0, []
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [pos, pos + len(raw)]}
        pos += len(raw)
        blobs.append(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def zeros_f32(shape):
    n = 1
    for x in shape:
        n *= x
    return bytes(4 * n)


TMP = tempfile.mkdtemp(prefix="fdd_test_convert_")


def tmp(name):
    return os.path.join(TMP, name)


# ------------------------------------------------------------ containers

CONTAINERS = ["sd_zip.pth", "sd_legacy.pth", "sd.safetensors", "sd.npz", "sd_compressed.npz",
              "script.pt"]
FORMATS = {"sd_zip.pth": "torch-zip", "sd_legacy.pth": "torch-legacy",
           "sd.safetensors": "safetensors", "sd.npz": "npz", "sd_compressed.npz": "npz",
           "script.pt": "torchscript"}


def test_container_values():
    for fx in CONTAINERS:
        with open(os.path.join(FIX, fx), "rb") as f:
            sd, fmt, _ = conv.read_state_dict(fx, f)
            check(fmt == FORMATS[fx], "%s: format %s" % (fx, fmt))
            exp = [(k, e) for k, e in EXPECTED[fx].items() if e["dtype"] != "i64"]
            check(list(sd) == [k for k, _ in exp], "%s: names/order %s" % (fx, list(sd)))
            for k, e in exp:
                if k not in sd:
                    continue
                t = sd[k]
                check(t.dtype == e["dtype"] and list(t.shape) == e["shape"],
                      "%s %s: %s %s" % (fx, k, t.dtype, list(t.shape)))
                vals = f32_values(t.raw(), t.dtype)
                check(vals == e["values"], "%s %s: values differ" % (fx, k))
                check(f32_sha(t.raw(), t.dtype) == e["sha256_f32"], "%s %s: sha" % (fx, k))


def test_counters_dropped():
    for fx in ("sd_zip.pth", "sd_legacy.pth", "script.pt"):
        with open(os.path.join(FIX, fx), "rb") as f:
            sd, _, _ = conv.read_state_dict(fx, f)
        check(not any(k.endswith("num_batches_tracked") for k in sd), fx)


def test_shared_and_strided_views():
    with open(os.path.join(FIX, "sd_zip.pth"), "rb") as f:
        sd, _, _ = conv.read_state_dict("x", f)
        check(sd["s.first"].storage is sd["s.second"].storage, "storage not shared")
        check(sd["t.weight"].stride == (1, 4), "t.weight strides %s" % (sd["t.weight"].stride,))
        check(sd["s.slice"].offset == 1 and sd["s.slice"].stride == (5, 1), "slice view")
        check(sd["scalar"].shape == () and sd["scalar"].numel == 1, "scalar")


# ------------------------------------------------------------ end to end

VIT_CASES = [  # fixture, family, registers, layer_scale, mlp, hidden, pos_interp, head
    ("dino_tiny.pth", "dino", 0, "0", "gelu", 32, "offset", False),
    ("dino_tiny_full.pth", "dino", 0, "0", "gelu", 32, "offset", True),
    ("dinov2_tiny_reg_legacy.pth", "dinov2", 2, "1", "gelu", 32, "antialias", False),
    ("dinov2_tiny_swiglu.safetensors", "dinov2", 0, "1", "swiglu", 16, "offset", False),
]


def test_vit_end_to_end():
    for fx, fam, R, ls, mlp, hid, interp, head in VIT_CASES:
        out = tmp(fx + ".fdw")
        rc, so, se = run_conv([os.path.join(FIX, fx), "-o", out, "--num-heads", "2"])
        if not check(rc == 0, "%s: rc %d %s" % (fx, rc, se.strip())):
            continue
        try:
            meta, tensors = read_fdw(out)
        except AssertionError as e:
            check(False, "%s: bad .fdw: %s" % (fx, e))
            continue
        src = open(os.path.join(FIX, fx), "rb").read()
        want = {"arch": "vit", "arch.family": fam, "arch.patch_size": "2", "arch.embed_dim": "8",
                "arch.depth": "2", "arch.num_heads": "2", "arch.mlp_hidden": str(hid),
                "arch.mlp": mlp, "arch.num_register_tokens": str(R), "arch.layer_scale": ls,
                "arch.pos_grid": "3", "arch.pos_interp": interp, "arch.ln_eps": "1e-6",
                "feature.dim": "8", "source.file": fx,
                "source.sha256": hashlib.sha256(src).hexdigest(),
                "converter": "fdd-convert 1", "preprocess.interp": "bicubic",
                "preprocess.mean": "0.485,0.456,0.406", "preprocess.std": "0.229,0.224,0.225",
                "preprocess.resize": "256" if fam == "dino" else "224,224",
                "preprocess.crop": "224" if fam == "dino" else "0"}
        for k, v in want.items():
            check(meta.get(k) == v, "%s: %s=%r, want %r" % (fx, k, meta.get(k), v))
        check(("arch.head" in meta) == head, "%s: arch.head" % fx)
        if head:
            check(meta.get("arch.head_hidden") == "16" and meta.get("arch.head_out") == "10",
                  "%s: head dims" % fx)
        exp = EXPECTED[fx]
        check([t[0] for t in tensors] == list(exp), "%s: tensor names/order" % fx)
        for name, dt, shape, raw in tensors:
            e = exp.get(name)
            if e is None:
                continue
            check(dt == 0 and list(shape) == e["shape"], "%s %s: dtype/shape" % (fx, name))
            check(f32_sha(raw, 0) == e["sha256_f32"], "%s %s: values" % (fx, name))


def test_dtype_options():
    src = os.path.join(FIX, "dino_tiny.pth")
    outs = {}
    for dt in ("f32", "f16", "bf16"):
        outs[dt] = tmp("dt_%s.fdw" % dt)
        rc, _, se = run_conv([src, "-o", outs[dt], "--num-heads", "2", "--dtype", dt])
        check(rc == 0, "--dtype %s: %s" % (dt, se.strip()))
    _, t32 = read_fdw(outs["f32"])
    _, t16 = read_fdw(outs["f16"])
    _, tbf = read_fdw(outs["bf16"])
    for (n, d32, s, r32), (_, d16, _, r16), (_, dbf, _, rbf) in zip(t32, t16, tbf):
        check(d16 == 1 and dbf == 2, "%s: dtype codes %d %d" % (n, d16, dbf))
        v = f32_values(r32, 0)
        check(struct.pack("<%de" % len(v), *v) == r16, "%s: f16 rounding" % n)
        bits = struct.unpack("<%dI" % len(v), r32)
        hb = []
        for b in bits:  # round to nearest, ties to even (no NaN in the fixture)
            up, rem = b >> 16, b & 0xFFFF
            if rem > 0x8000 or (rem == 0x8000 and up & 1):
                up += 1
            hb.append(up)
        check(struct.pack("<%dH" % len(hb), *hb) == rbf, "%s: bf16 rounding" % n)
    # keep: the float16 legacy checkpoint stays float16, bit for bit
    out = tmp("keep.fdw")
    rc, _, se = run_conv([os.path.join(FIX, "dinov2_tiny_reg_legacy.pth"), "-o", out,
                          "--num-heads", "2", "--dtype", "keep"])
    check(rc == 0, "keep: " + se.strip())
    _, tk = read_fdw(out)
    exp = EXPECTED["dinov2_tiny_reg_legacy.pth"]
    for n, dt, s, raw in tk:
        check(dt == 1 and f32_sha(raw, 1) == exp[n]["sha256_f32"], "keep %s" % n)


def test_key_option_and_list():
    out = tmp("student.fdw")
    rc, _, se = run_conv([os.path.join(FIX, "dino_tiny_full.pth"), "-o", out, "--num-heads", "2",
                          "--key", "student"])
    check(rc == 0, "--key student: " + se.strip())
    meta, tensors = read_fdw(out)
    exp = EXPECTED["dino_tiny_full.pth"]
    # the student's tensors are the teacher's + 1: names equal, values differ
    check([t[0] for t in tensors] == list(exp), "student names")
    check(f32_sha(tensors[0][3], 0) != exp[tensors[0][0]]["sha256_f32"], "student == teacher?")
    rc, so, se = run_conv(["--list", os.path.join(FIX, "sd_legacy.pth")])
    check(rc == 0 and "t.weight f32 [4, 3]" in so and "torch-legacy" in so, "--list: %r" % so[:200])
    expect_error([os.path.join(FIX, "dino_tiny_full.pth"), "-o", tmp("k.fdw"), "--key", "nope"],
                 "--key missing")


# ------------------------------------------------------------ rejections

def test_rejections():
    src = open(os.path.join(FIX, "sd_zip.pth"), "rb").read()
    leg = open(os.path.join(FIX, "dinov2_tiny_reg_legacy.pth"), "rb").read()
    cases = {
        "trunc_zip.pth": src[:len(src) // 2],
        "trunc_legacy.pth": leg[:len(leg) - 100],
        "trunc_legacy_pickle.pth": leg[:200],
        "magic.pth": b"\x00\x01garbage" * 40,
        "empty.pth": b"",
        "text.pth": b"hello world\n",
    }
    out = tmp("rej.fdw")
    for name, data in cases.items():
        p = tmp(name)
        open(p, "wb").write(data)
        se = expect_error([p, "-o", out, "--num-heads", "2"], name, out=out)
        check(p in se or name in se, "%s: message does not name the file: %s" % (name, se))
    se = expect_error([os.path.join(FIX, "sd_zip.pth"), "-o", out], "unrecognised", out=out)
    check("unrecognised architecture" in se and "cls_token" in se and "Conv2d_1a_3x3" in se,
          "unrecognised message: " + se)
    se = expect_error([os.path.join(FIX, "dino_tiny.pth"), "-o", out], "unknown width", out=out)
    check("--num-heads" in se, "width message: " + se)
    se = expect_error([tmp("does_not_exist.pth"), "-o", out], "missing input", out=out)
    check("weights/README.md" in se and "weights/fetch" in se, "missing-model hint: " + se)
    se = expect_error([os.path.join(FIX, "dino_tiny.pth"), "-o", tmp("no/such/dir/x.fdw"),
                       "--num-heads", "2"], "unwritable output")
    check("no/such/dir" in se, "output error names the output: " + se)


def _vit_tensors(drop=None, reshape=None, extra=None):
    exp = EXPECTED["dino_tiny.pth"]
    ts = []
    for n, e in exp.items():
        if n == drop:
            continue
        shape = reshape[1] if reshape and reshape[0] == n else e["shape"]
        ts.append((n, "F32", shape, zeros_f32(shape)))
    if extra:
        ts.append((extra, "F32", [2], zeros_f32([2])))
    return ts


def test_validation_errors():
    out = tmp("val.fdw")
    p = tmp("missing.safetensors")
    write_safetensors(p, _vit_tensors(drop="blocks.1.mlp.fc2.bias"))
    se = expect_error([p, "-o", out, "--num-heads", "2"], "missing tensor", out=out, inproc=True)
    check("missing" in se and "blocks.1.mlp.fc2.bias" in se, "missing message: " + se)
    write_safetensors(p, _vit_tensors(reshape=("blocks.0.attn.proj.weight", [8, 4])))
    se = expect_error([p, "-o", out, "--num-heads", "2"], "wrong shape", out=out, inproc=True)
    check("blocks.0.attn.proj.weight" in se, "shape message: " + se)
    write_safetensors(p, _vit_tensors(extra="head.weight"))
    se = expect_error([p, "-o", out, "--num-heads", "2"], "extra tensor", out=out, inproc=True)
    check("head.weight" in se, "extra message: " + se)
    # int tensor where a float is needed
    ts = _vit_tensors()
    ts[0] = ("cls_token", "I32", [1, 1, 8], bytes(32))
    write_safetensors(p, ts)
    expect_error([p, "-o", out, "--num-heads", "2"], "int tensor", out=out, inproc=True)


def test_bad_safetensors_and_npz():
    out = tmp("bad.fdw")
    good = [("a", "F32", [2], zeros_f32([2])), ("b", "F32", [3], zeros_f32([3]))]
    p = tmp("bad.safetensors")
    variants = []
    h = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [3], "data_offsets": [4, 16]}}).encode()
    variants.append(("overlap", struct.pack("<Q", len(h)) + h + bytes(16)))
    h = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    variants.append(("short data", struct.pack("<Q", len(h)) + h + bytes(4)))
    variants.append(("trailing data", struct.pack("<Q", len(h)) + h + bytes(12)))
    variants.append(("huge header", struct.pack("<Q", 1 << 40) + b"{}"))
    variants.append(("bad json", struct.pack("<Q", 4) + b"{abc"))
    h = json.dumps({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}).encode()
    variants.append(("negative dim", struct.pack("<Q", len(h)) + h + bytes(8)))
    h = json.dumps({"a": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}).encode()
    variants.append(("bad dtype", struct.pack("<Q", len(h)) + h + bytes(8)))
    for what, data in variants:
        open(p, "wb").write(data)
        expect_error([p, "-o", out], what, out=out, inproc=True)
    write_safetensors(p, good)  # sanity: the good file is read (then fails recognition)
    se = expect_error([p, "-o", out], "good safetensors", out=out, inproc=True)
    check("unrecognised" in se, "good safetensors not parsed: " + se)
    # npz with a pickled object array
    pz = tmp("obj.npz")
    hdr = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    hdr += " " * (-(10 + len(hdr) + 1) % 64) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + \
        pickle.dumps([1], protocol=2)
    with zipfile.ZipFile(pz, "w") as z:
        z.writestr("x.npy", npy)
    se = expect_error([pz, "-o", out], "npz object array", out=out, inproc=True)
    check("refused" in se, "object array message: " + se)
    with zipfile.ZipFile(pz, "w") as z:
        z.writestr("x.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", 20) + b"__import__('os')    ")
    expect_error([pz, "-o", out], "npz header code", out=out, inproc=True)


# ------------------------------------------------------------ malicious pickles

class _Payload:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def _torch_zip(path, pkl):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")


def _legacy(path, obj_pkl, sysinfo_pkl=None):
    parts = [pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2), pickle.dumps(1001, protocol=2),
             sysinfo_pkl or pickle.dumps({"protocol_version": 1001, "little_endian": True,
                                          "type_sizes": {"short": 2, "int": 4, "long": 4}},
                                         protocol=2),
             obj_pkl, pickle.dumps([], protocol=2)]
    open(path, "wb").write(b"".join(parts))


def test_malicious_pickles():
    marker = tmp("pwned_marker")
    import builtins
    import subprocess as sp
    payloads = {
        "os_system": _Payload(os.system, ("touch " + marker,)),
        "eval": _Payload(builtins.eval, ("open(%r, 'w')" % marker,)),
        "exec": _Payload(builtins.exec, ("open(%r, 'w')" % marker,)),
        "subprocess": _Payload(sp.call, (["touch", marker],)),
        "getattr": _Payload(getattr, ("abc", "upper")),
    }
    pickles = {}
    for name, pl in payloads.items():
        for proto in (2, 4):  # GLOBAL and STACK_GLOBAL
            pickles["%s_p%d" % (name, proto)] = pickle.dumps({"w": pl}, protocol=proto)
    pickles["inst"] = b"(S'touch " + marker.encode() + b"'\nios\nsystem\n."
    pickles["obj_builtin"] = b"(cposix\nsystem\nS'touch " + marker.encode() + b"'\no."
    pickles["qtensor"] = b"\x80\x02ctorch._utils\n_rebuild_qtensor\n)R."
    out = tmp("evil.fdw")
    for name, pkl in pickles.items():
        for kind in ("zip", "legacy", "legacy_sysinfo"):
            p = tmp("evil_%s_%s.pth" % (name, kind))
            if kind == "zip":
                _torch_zip(p, pkl)
            elif kind == "legacy":
                _legacy(p, pkl)
            else:
                _legacy(p, pickle.dumps({}, protocol=2), sysinfo_pkl=pkl)
            se = expect_error([p, "-o", out], "%s/%s" % (name, kind), out=out, inproc=True)
            check("refus" in se, "%s/%s: message %s" % (name, kind, se))
            check(not os.path.exists(marker), "%s/%s: PAYLOAD RAN" % (name, kind))
            if os.path.exists(marker):
                os.unlink(marker)
    # the committed fixtures, made by real torch.save; their payload would
    # create fdd_pwned_marker in the working directory
    work = tmp("evil_cwd")
    os.makedirs(work, exist_ok=True)
    for fx in ("evil_zip.pth", "evil_legacy.pth"):
        se = expect_error([os.path.join(FIX, fx), "-o", "x.fdw"], fx, cwd=work)
        check("posix.system" in se or "os.system" in se, fx + ": " + se)
        check(os.listdir(work) == [], fx + ": files appeared: %s" % os.listdir(work))


# ------------------------------------------------------------ atomic output

def test_atomic_output():
    out = tmp("atomic.fdw")
    open(out, "wb").write(b"previous contents")
    expect_error([os.path.join(FIX, "evil_zip.pth"), "-o", out], "atomic/bad input")
    check(open(out, "rb").read() == b"previous contents", "old output clobbered by a failure")
    # a failure in the middle of writing leaves neither the output nor a temp file
    d = tmp("atomic_dir")
    os.makedirs(d, exist_ok=True)
    target = os.path.join(d, "x.fdw")

    def boom():
        raise conv.ConvertError("boom")
    try:
        conv.write_fdw(target, {"arch": "vit"}, [("a", "f32", (2,), lambda: bytes(8)),
                                                 ("b", "f32", (2,), boom)])
        check(False, "write_fdw did not fail")
    except conv.ConvertError:
        pass
    check(os.listdir(d) == [], "left behind: %s" % os.listdir(d))
    # success replaces the old file in one step and leaves nothing else
    rc, _, se = run_conv([os.path.join(FIX, "dino_tiny.pth"), "-o", out, "--num-heads", "2"])
    check(rc == 0, se)
    meta, _ = read_fdw(out)
    check(meta["source.file"] == "dino_tiny.pth", "replaced output")
    check(not [n for n in os.listdir(TMP) if n.endswith(".tmp")], "temp files left")


# ------------------------------------------------------------ recognition with real shapes

# Appendix 1 of models.md: prefix, out, in, kH, kW (written out independently).
APPENDIX1 = """
Conv2d_1a_3x3 32 3 3 3|Conv2d_2a_3x3 32 32 3 3|Conv2d_2b_3x3 64 32 3 3|Conv2d_3b_1x1 80 64 1 1
Conv2d_4a_3x3 192 80 3 3
Mixed_5b.branch1x1 64 192 1 1|Mixed_5b.branch5x5_1 48 192 1 1|Mixed_5b.branch5x5_2 64 48 5 5
Mixed_5b.branch3x3dbl_1 64 192 1 1|Mixed_5b.branch3x3dbl_2 96 64 3 3|Mixed_5b.branch3x3dbl_3 96 96 3 3
Mixed_5b.branch_pool 32 192 1 1
Mixed_5c.branch1x1 64 256 1 1|Mixed_5c.branch5x5_1 48 256 1 1|Mixed_5c.branch5x5_2 64 48 5 5
Mixed_5c.branch3x3dbl_1 64 256 1 1|Mixed_5c.branch3x3dbl_2 96 64 3 3|Mixed_5c.branch3x3dbl_3 96 96 3 3
Mixed_5c.branch_pool 64 256 1 1
Mixed_5d.branch1x1 64 288 1 1|Mixed_5d.branch5x5_1 48 288 1 1|Mixed_5d.branch5x5_2 64 48 5 5
Mixed_5d.branch3x3dbl_1 64 288 1 1|Mixed_5d.branch3x3dbl_2 96 64 3 3|Mixed_5d.branch3x3dbl_3 96 96 3 3
Mixed_5d.branch_pool 64 288 1 1
Mixed_6a.branch3x3 384 288 3 3|Mixed_6a.branch3x3dbl_1 64 288 1 1|Mixed_6a.branch3x3dbl_2 96 64 3 3
Mixed_6a.branch3x3dbl_3 96 96 3 3
"""
for _b, _c in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
    APPENDIX1 += ("%(b)s.branch1x1 192 768 1 1|%(b)s.branch7x7_1 %(c)d 768 1 1|"
                  "%(b)s.branch7x7_2 %(c)d %(c)d 1 7|%(b)s.branch7x7_3 192 %(c)d 7 1|"
                  "%(b)s.branch7x7dbl_1 %(c)d 768 1 1|%(b)s.branch7x7dbl_2 %(c)d %(c)d 7 1|"
                  "%(b)s.branch7x7dbl_3 %(c)d %(c)d 1 7|%(b)s.branch7x7dbl_4 %(c)d %(c)d 7 1|"
                  "%(b)s.branch7x7dbl_5 192 %(c)d 1 7|%(b)s.branch_pool 192 768 1 1\n"
                  % {"b": _b, "c": _c})
APPENDIX1 += """
Mixed_7a.branch3x3_1 192 768 1 1|Mixed_7a.branch3x3_2 320 192 3 3|Mixed_7a.branch7x7x3_1 192 768 1 1
Mixed_7a.branch7x7x3_2 192 192 1 7|Mixed_7a.branch7x7x3_3 192 192 7 1|Mixed_7a.branch7x7x3_4 192 192 3 3
"""
for _b, _c in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
    APPENDIX1 += ("%(b)s.branch1x1 320 %(c)d 1 1|%(b)s.branch3x3_1 384 %(c)d 1 1|"
                  "%(b)s.branch3x3_2a 384 384 1 3|%(b)s.branch3x3_2b 384 384 3 1|"
                  "%(b)s.branch3x3dbl_1 448 %(c)d 1 1|%(b)s.branch3x3dbl_2 384 448 3 3|"
                  "%(b)s.branch3x3dbl_3a 384 384 1 3|%(b)s.branch3x3dbl_3b 384 384 3 1|"
                  "%(b)s.branch_pool 192 %(c)d 1 1\n" % {"b": _b, "c": _c})
CONVS = [(r.split()[0], tuple(int(x) for x in r.split()[1:]))
         for r in APPENDIX1.replace("\n", "|").split("|") if r.strip()]

# TF graph names (torch-fidelity's util_convert_inception_weights.py map).
TF_BRANCH = {"branch1x1": "conv", "branch5x5_1": "tower/conv", "branch5x5_2": "tower/conv_1",
             "branch3x3dbl_1": "tower_1/conv", "branch3x3dbl_2": "tower_1/conv_1",
             "branch3x3dbl_3": "tower_1/conv_2", "branch_pool": "tower_2/conv"}
TF_BLOCK = {"Mixed_5b": "mixed", "Mixed_5c": "mixed_1", "Mixed_5d": "mixed_2", "Mixed_6a": "mixed_3",
            "Mixed_6b": "mixed_4", "Mixed_6c": "mixed_5", "Mixed_6d": "mixed_6", "Mixed_6e": "mixed_7",
            "Mixed_7a": "mixed_8", "Mixed_7b": "mixed_9", "Mixed_7c": "mixed_10"}


def nvidia_name(prefix):
    stem = {"Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1", "Conv2d_2b_3x3": "conv_2",
            "Conv2d_3b_1x1": "conv_3", "Conv2d_4a_3x3": "conv_4"}
    if prefix in stem:
        return "layers." + stem[prefix]
    block, br = prefix.split(".")
    tb = TF_BLOCK[block]
    if block == "Mixed_6a":
        m = {"branch3x3": "conv", "branch3x3dbl_1": "tower/conv", "branch3x3dbl_2": "tower/conv_1",
             "branch3x3dbl_3": "tower/conv_2"}
    elif block in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        m = {"branch1x1": "conv", "branch7x7_1": "tower/conv", "branch7x7_2": "tower/conv_1",
             "branch7x7_3": "tower/conv_2", "branch_pool": "tower_2/conv"}
        for i in range(1, 6):
            m["branch7x7dbl_%d" % i] = "tower_1/conv" + ("" if i == 1 else "_%d" % (i - 1))
    elif block == "Mixed_7a":
        m = {"branch3x3_1": "tower/conv", "branch3x3_2": "tower/conv_1"}
        for i in range(1, 5):
            m["branch7x7x3_%d" % i] = "tower_1/conv" + ("" if i == 1 else "_%d" % (i - 1))
    elif block in ("Mixed_7b", "Mixed_7c"):
        m = {"branch1x1": "conv", "branch3x3_1": "tower_conv", "branch3x3_2a": "tower_mixed_conv",
             "branch3x3_2b": "tower_mixed_conv_1", "branch3x3dbl_1": "tower_1_conv",
             "branch3x3dbl_2": "tower_1_conv_1", "branch3x3dbl_3a": "tower_1_mixed_conv",
             "branch3x3dbl_3b": "tower_1_mixed_conv_1", "branch_pool": "tower_2_conv"}
    else:
        m = TF_BRANCH
    return "layers.%s.%s" % (tb, m[br].replace("/", "."))


def inception_shapes(counters=True):
    s = collections.OrderedDict()
    for p, w in CONVS:
        s[p + ".conv.weight"] = w
        for k in ("weight", "bias", "running_mean", "running_var"):
            s["%s.bn.%s" % (p, k)] = (w[0],)
        if counters:
            s[p + ".bn.num_batches_tracked"] = ()
    s["fc.weight"] = (1008, 2048)
    s["fc.bias"] = (1008,)
    return s


def test_inception_recognition():
    check(len(CONVS) == 94, "appendix table has %d rows" % len(CONVS))
    full = inception_shapes(counters=False)
    check(sum(w[0] * w[1] * w[2] * w[3] for _, w in CONVS) == 21751136, "conv weight count")
    plan = conv.recognise(full)
    check(plan.meta["arch"] == "inception-fid" and plan.meta["feature.dim"] == "2048"
          and plan.meta["arch.num_classes"] == "1008" and plan.meta["arch.bn_eps"] == "0.001"
          and plan.meta["preprocess.profile"] == "pytorch-fid", "meta %s" % plan.meta)
    check([t[0] for t in plan.tensors] == list(full), "canonical order")
    check(len(plan.tensors) == 472, "472 tensors, got %d" % len(plan.tensors))
    # torch-fidelity: same names, its own order (bn before conv), no counters
    tf_order = collections.OrderedDict()
    for p, w in CONVS:
        for k in ("weight", "bias", "running_mean", "running_var"):
            tf_order["%s.bn.%s" % (p, k)] = (w[0],)
        tf_order[p + ".conv.weight"] = w
    tf_order["fc.weight"], tf_order["fc.bias"] = (1008, 2048), (1008,)
    plan = conv.recognise(tf_order)
    check([t[0] for t in plan.tensors] == list(full), "torch-fidelity order not canonical")
    # NVIDIA TorchScript names
    nv = collections.OrderedDict()
    for p, w in CONVS:
        n = nvidia_name(p)
        nv[n + ".weight"] = w
        nv[n + ".beta"] = (w[0],)
        nv[n + ".mean"] = (w[0],)
        nv[n + ".var"] = (w[0],)
    nv["output.weight"], nv["output.bias"] = (1008, 2048), (1008,)
    plan = conv.recognise(nv)
    check([t[0] for t in plan.tensors] == list(full), "torchscript names not mapped")
    check(plan.meta.get("source.names") == "stylegan-torchscript", "source.names")
    src = dict((t[0], t[1]) for t in plan.tensors)
    check(src["Mixed_7c.branch3x3dbl_3b.conv.weight"] == "layers.mixed_10.tower_1_mixed_conv_1.weight",
          "7c mapping")
    check(src["Mixed_6b.branch7x7dbl_5.bn.running_var"] == "layers.mixed_4.tower_1.conv_4.var",
          "6b mapping")
    check(src["Conv2d_1a_3x3.bn.weight"] is None and
          [t for t in plan.tensors if t[0] == "Conv2d_1a_3x3.bn.weight"][0][3] == 1.0,
          "BN gamma of the TorchScript copy must be synthesised as 1")
    # rejections
    bad = collections.OrderedDict(full)
    bad["Mixed_6c.branch7x7_2.conv.weight"] = (160, 160, 7, 1)
    try:
        conv.recognise(bad)
        check(False, "wrong shape accepted")
    except conv.ConvertError as e:
        check("Mixed_6c.branch7x7_2.conv.weight" in str(e), str(e))
    bad = collections.OrderedDict(full)
    del bad["fc.bias"]
    try:
        conv.recognise(bad)
        check(False, "missing fc.bias accepted")
    except conv.ConvertError as e:
        check("fc.bias" in str(e), str(e))
    tv = collections.OrderedDict(full)
    tv["fc.weight"], tv["fc.bias"] = (1000, 2048), (1000,)
    tv["AuxLogits.fc.weight"] = (1000, 768)
    try:
        conv.recognise(tv)
        check(False, "torchvision inception accepted")
    except conv.ConvertError as e:
        check("torchvision" in str(e), str(e))


def vit_shapes(D, depth, p, img, hidden=None, dinov2=False, R=0, swiglu=False):
    G = img // p
    s = collections.OrderedDict([("cls_token", (1, 1, D)), ("pos_embed", (1, 1 + G * G, D))])
    if R:
        s["register_tokens"] = (1, R, D)
    if dinov2:
        s["mask_token"] = (1, D)
    s["patch_embed.proj.weight"], s["patch_embed.proj.bias"] = (D, 3, p, p), (D,)
    h = hidden or 4 * D
    for i in range(depth):
        b = "blocks.%d." % i
        s[b + "norm1.weight"] = s[b + "norm1.bias"] = (D,)
        s[b + "attn.qkv.weight"], s[b + "attn.qkv.bias"] = (3 * D, D), (3 * D,)
        s[b + "attn.proj.weight"], s[b + "attn.proj.bias"] = (D, D), (D,)
        if dinov2:
            s[b + "ls1.gamma"] = (D,)
        s[b + "norm2.weight"] = s[b + "norm2.bias"] = (D,)
        if swiglu:
            s[b + "mlp.w12.weight"], s[b + "mlp.w12.bias"] = (2 * h, D), (2 * h,)
            s[b + "mlp.w3.weight"], s[b + "mlp.w3.bias"] = (D, h), (D,)
        else:
            s[b + "mlp.fc1.weight"], s[b + "mlp.fc1.bias"] = (h, D), (h,)
            s[b + "mlp.fc2.weight"], s[b + "mlp.fc2.bias"] = (D, h), (D,)
        if dinov2:
            s[b + "ls2.gamma"] = (D,)
    s["norm.weight"] = s["norm.bias"] = (D,)
    return s


def test_vit_recognition():
    cases = [  # shapes, n entries (models.md), expected meta
        (vit_shapes(384, 12, 16, 224), 150,
         dict(family="dino", patch_size="16", num_heads="6", pos_grid="14", mlp_hidden="1536",
              pos_interp="offset", layer_scale="0")),
        (vit_shapes(768, 12, 8, 224), 150,
         dict(family="dino", patch_size="8", num_heads="12", pos_grid="28", mlp_hidden="3072")),
        (vit_shapes(384, 12, 14, 518, dinov2=True), 175,
         dict(family="dinov2", num_heads="6", pos_grid="37", layer_scale="1", pos_interp="offset")),
        (vit_shapes(1024, 24, 14, 518, dinov2=True), 343,
         dict(family="dinov2", num_heads="16", depth="24", mlp_hidden="4096", mlp="gelu")),
        (vit_shapes(1024, 24, 14, 518, dinov2=True, R=4), 344,
         dict(num_register_tokens="4", pos_interp="antialias")),
        (vit_shapes(1536, 40, 14, 518, hidden=4096, dinov2=True, R=4, swiglu=True), 568,
         dict(num_heads="24", depth="40", mlp="swiglu", mlp_hidden="4096", embed_dim="1536")),
    ]
    for shapes, n, want in cases:
        check(len(shapes) == n, "entry count %d != %d" % (len(shapes), n))
        plan = conv.recognise(shapes)
        for k, v in want.items():
            check(plan.meta.get("arch." + k) == v, "%s: arch.%s=%s want %s"
                  % (plan.meta.get("arch.embed_dim"), k, plan.meta.get("arch." + k), v))
        check([t[0] for t in plan.tensors] == list(shapes), "order")
    dv2 = conv.recognise(vit_shapes(1024, 24, 14, 518, dinov2=True)).meta
    check(dv2["preprocess.profile"] == "dgm-eval" and dv2["preprocess.resize"] == "224,224"
          and dv2["feature.dim"] == "1024", "dinov2 preprocessing %s" % dv2)
    d1 = conv.recognise(vit_shapes(384, 12, 16, 224)).meta
    check(d1["preprocess.resize"] == "256" and d1["preprocess.crop"] == "224", "dino preprocessing")
    s = vit_shapes(384, 12, 16, 224)
    s["pos_embed"] = (1, 1 + 195, 384)
    try:
        conv.recognise(s)
        check(False, "non-square grid accepted")
    except conv.ConvertError as e:
        check("square" in str(e), str(e))


def test_inception_tiny_end_to_end():
    """Test mode (--no-shape-check): real names, tiny shapes, whole file path,
    for both the pytorch-fid names and the NVIDIA TorchScript names."""
    def val(i):
        return struct.pack("<f", i * 0.5)
    ts_pf, ts_nv = [], []
    for i, (p, w) in enumerate(CONVS):
        ts_pf.append((p + ".conv.weight", "F32", [1, 1, 1, 1], val(i)))
        for j, k in enumerate(("weight", "bias", "running_mean", "running_var")):
            ts_pf.append(("%s.bn.%s" % (p, k), "F32", [1], val(i + j + 1)))
        n = nvidia_name(p)
        ts_nv.append((n + ".weight", "F32", [1, 1, 1, 1], val(i)))
        for j, k in ((1, "beta"), (2, "mean"), (3, "var")):
            ts_nv.append(("%s.%s" % (n, k), "F32", [1], val(i + j + 1)))
    ts_pf += [("fc.weight", "F32", [1, 1], val(7)), ("fc.bias", "F32", [1], val(8))]
    ts_nv += [("output.weight", "F32", [1, 1], val(7)), ("output.bias", "F32", [1], val(8))]
    for label, ts in (("pytorch-fid", ts_pf), ("torchscript", ts_nv)):
        p = tmp("inc_%s.safetensors" % label)
        write_safetensors(p, ts)
        out = tmp("inc_%s.fdw" % label)
        se = expect_error([p, "-o", out], label + " tiny shapes need test mode", out=out)
        check("wrong shape" in se, se)
        rc, _, se = run_conv([p, "-o", out, "--no-shape-check"])
        if not check(rc == 0, "%s: %s" % (label, se)):
            continue
        meta, tensors = read_fdw(out)
        check(meta["arch"] == "inception-fid" and meta["source.format"] == "safetensors", label)
        names = [t[0] for t in tensors]
        check(names == list(inception_shapes(counters=False)), label + ": names/order")
        vals = dict((t[0], f32_values(t[3], 0)) for t in tensors)
        for i, (pref, w) in enumerate(CONVS):
            check(vals[pref + ".conv.weight"] == [i * 0.5], "%s %s" % (label, pref))
            want_gamma = 1.0 if label == "torchscript" else (i + 1) * 0.5
            check(vals[pref + ".bn.weight"] == [want_gamma], "%s %s gamma" % (label, pref))
            check(vals[pref + ".bn.running_var"] == [(i + 4) * 0.5], "%s %s var" % (label, pref))
        check(vals["fc.weight"] == [3.5] and vals["fc.bias"] == [4.0], label + " fc")


def test_torchscript_container_end_to_end():
    """The TorchScript fixture read through the CLI path (tree walk → names)."""
    with open(os.path.join(FIX, "script.pt"), "rb") as f:
        obj, fmt = conv.load_checkpoint("script.pt", f)
        check(fmt == "torchscript" and isinstance(obj, conv.TSObject), "torchscript root")
        check(getattr(obj, "qualname", "").startswith("__torch__."), "class name")


# ------------------------------------------------------------ weights/fetch (no network)

def test_fetch_offline():
    def fetch(args):
        p = subprocess.run([sys.executable, FETCH] + args, capture_output=True, text=True,
                           timeout=60)
        return p.returncode, p.stdout, p.stderr
    rc, so, se = fetch(["--list"])
    check(rc == 0 and "inception-fid" in so and "dinov2-vitl14" in so and "dino-vits16" in so,
          "--list: %s %s" % (so[:300], se))
    rc, so, se = fetch(["dinov2-vitl14", "--dry-run"])
    check(rc == 0 and "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth"
          in so and "fdd-convert" in so and "dinov2-vitl14.fdw" in so, "dry run: " + so + se)
    rc, so, se = fetch(["inception-fid", "--dry-run"])
    check(rc == 0 and "pt_inception-2015-12-05-6726825d.pth" in so and
          "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2" in so, "inception dry run")
    rc, so, se = fetch(["no-such-model"])
    check(rc != 0 and "unknown" in se, "unknown name: " + se)
    # --from a local file whose SHA-256 is not the pinned one: refused, nothing written
    d = tmp("fetch_dir")
    os.makedirs(d, exist_ok=True)
    rc, so, se = fetch(["inception-fid", "--from", os.path.join(FIX, "sd_zip.pth"), "--dir", d])
    check(rc != 0 and "SHA-256" in se, "sha mismatch: " + se)
    check(os.listdir(d) == [], "fetch wrote files: %s" % os.listdir(d))
    # --from a local file with no pinned hash: converted with the converter
    rc, so, se = fetch(["dino-vits16", "--from", os.path.join(FIX, "dino_tiny.pth"), "--dir", d,
                        "--", "--num-heads", "2"])
    check(rc == 0 and os.path.exists(os.path.join(d, "dino-vits16.fdw")), "fetch --from: " + se)


def main():
    for t in (test_container_values, test_counters_dropped, test_shared_and_strided_views,
              test_vit_end_to_end, test_dtype_options, test_key_option_and_list,
              test_rejections, test_validation_errors, test_bad_safetensors_and_npz,
              test_malicious_pickles, test_atomic_output, test_inception_recognition,
              test_vit_recognition, test_inception_tiny_end_to_end,
              test_torchscript_container_end_to_end, test_fetch_offline):
        run_test(t)
    shutil.rmtree(TMP, ignore_errors=True)
    print("RESULT convert %d %d" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Compares fdd's JPEG decoder with Pillow over every .jpg/.jpeg under
../shared/data (not part of `make test`; the shared data is not committed).

    /usr/bin/python3 tests/reference/check_jpeg_shared.py [build/tests/test_jpeg] [-v]

Prints one line per disagreement and a summary: files bit-exact, pixel
mismatches, and error-verdict differences (fdd error vs Pillow image or
the reverse).  A pixel mismatch is also compared with libjpeg-turbo's
portable C path (djpeg with JSIMD_FORCENONE=1): Pillow runs the x86 SIMD
IDCT, which wraps 16-bit lanes on corrupt coefficients where the C code
(and fdd) does not (imaging.md 3.6)."""
import hashlib
import os
import subprocess
import sys

from PIL import Image

ROOT = "../shared/data"


def pillow(path):
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
            return (rgb.size[0], rgb.size[1], hashlib.sha256(rgb.tobytes()).hexdigest())
    except Exception as e:  # Pillow's verdict is what matters
        return ("ERROR", type(e).__name__ + ": " + str(e))


def djpeg_c_digest(path):
    """SHA-256 of libjpeg-turbo's non-SIMD decode as RGB bytes (gray/RGB only)."""
    env = dict(os.environ, JSIMD_FORCENONE="1")
    out = subprocess.run(["djpeg", "-pnm", path], capture_output=True, env=env).stdout
    try:
        magic, dims, maxv, px = out.split(b"\n", 3)
        w, h = map(int, dims.split())
    except ValueError:
        return None
    if magic == b"P5":
        px = bytes(b for v in px[: w * h] for b in (v, v, v))
    elif magic != b"P6":
        return None
    return f"{w} {h} {hashlib.sha256(px[: w * h * 3]).hexdigest()}"


def main():
    args = [a for a in sys.argv[1:] if a != "-v"]
    verbose = "-v" in sys.argv
    tool = args[0] if args else "build/tests/test_jpeg"
    if not os.path.isdir(ROOT):
        print(f"skip: {ROOT} absent")
        return 0
    files = []
    for d, _, names in os.walk(ROOT):
        for n in names:
            if n.lower().endswith((".jpg", ".jpeg")):
                files.append(os.path.join(d, n))
    files.sort()
    ours = {}
    for i in range(0, len(files), 200):
        out = subprocess.run([tool, "--digest", *files[i:i + 200]], capture_output=True, text=True,
                             timeout=600).stdout
        for line in out.splitlines():
            path, rest = line.split(" ", 1)
            ours[path] = rest
    exact = mismatch = simd_only = both_err = we_err = they_err = 0
    for f in files:
        ref = pillow(f)
        got = ours.get(f, "ERROR (crashed or no output)")
        if ref[0] == "ERROR":
            if got.startswith("ERROR"):
                both_err += 1
                if verbose:
                    print(f"both-error {f}: fdd {got[6:]} | Pillow {ref[1]}")
            else:
                they_err += 1
                print(f"PILLOW-ONLY-ERROR {f}: Pillow {ref[1]}")
        elif got.startswith("ERROR"):
            we_err += 1
            print(f"FDD-ONLY-ERROR {f}: {got[6:]}")
        elif got == f"{ref[0]} {ref[1]} {ref[2]}":
            exact += 1
        else:
            mismatch += 1
            same_c = djpeg_c_digest(f) == got
            if same_c:
                simd_only += 1
            print(f"MISMATCH {f}: fdd {got} Pillow {ref}"
                  + (" (fdd equals libjpeg-turbo's C path: SIMD-only difference)" if same_c else ""))
    print(f"{len(files)} files: {exact} bit-exact, {mismatch} pixel mismatches ({simd_only} of them equal to "
          f"libjpeg-turbo's C path), {both_err} errors in both, "
          f"{we_err} fdd-only errors, {they_err} Pillow-only errors")
    return 1 if mismatch or they_err else 0


if __name__ == "__main__":
    sys.exit(main())

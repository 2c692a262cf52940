#!/usr/bin/python3
"""PyTorch side of bench/bench_vit.c: seconds per image of a DINO ViT-S/16 and
ViT-B/16 forward (224x224, batch 1 and 32) in Debian's torch 1.13.

Run by bench_vit with OpenBLAS first on LD_LIBRARY_PATH (Debian's torch
otherwise links the reference BLAS for every Linear layer); this script checks
which BLAS is loaded and says so.  Prints "TORCH <model> <s/img b1> <s/img b32>".
The model is the reference model of tests/reference/vit_ref.py (same layers
as the dino repository's VisionTransformer)."""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
import vit_ref  # noqa: E402


def blas_loaded():
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if ".so" in line}
    return sorted(os.path.basename(p) for p in libs if "blas" in p or "lapack" in p)


def bench(m, bs, reps):
    sd = {k: v for k, v in vit_ref.make_weights(m).items()}
    x = torch.randn(bs, 3, 224, 224)
    best = 1e30
    with torch.no_grad():
        vit_ref.forward(m, sd, x[:1])
        for _ in range(reps):
            t0 = time.perf_counter()
            vit_ref.forward(m, sd, x)
            best = min(best, (time.perf_counter() - t0) / bs)
    return best


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    libs = blas_loaded()
    print("BLAS libraries loaded: %s" % (", ".join(libs) or "none"))
    if not any("openblas" in lib for lib in libs):
        print("WARNING: OpenBLAS not loaded; PyTorch's Linear layers use the reference BLAS")
    for name, D, heads in (("vits16", 384, 6), ("vitb16", 768, 12)):
        m = dict(name=name, family="dino", p=16, D=D, depth=12, heads=heads, hidden=4 * D,
                 swiglu=False, R=0, ls=False, grid=14, head=None, seed=1)
        print("TORCH %s %.6f %.6f" % (name, bench(m, 1, 5), bench(m, 32, 1)), flush=True)


if __name__ == "__main__":
    main()

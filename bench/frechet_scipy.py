#!/usr/bin/python3
"""pytorch-fid's trace route, scipy.linalg.sqrtm(S1 @ S2), timed on the
matrices that bench/bench_frechet.c wrote (an .npz with mu1 sigma1 mu2
sigma2).  Run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread
so scipy uses OpenBLAS as pip users get it; the BLAS actually loaded is
printed from /proc/self/maps.  Prints "scipy_seconds <median> sqrt_trace <v>"."""
import sys, time
import numpy as np
import scipy.linalg

z = np.load(sys.argv[1])
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 1
s1, s2 = z["sigma1"], z["sigma2"]
times = []
for _ in range(reps):
    t = time.perf_counter()
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    tr = np.trace(covmean).real
    times.append(time.perf_counter() - t)
blas = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l or "lapack" in l})
print("scipy BLAS/LAPACK loaded:", ", ".join(blas))
print("scipy_seconds %.3f sqrt_trace %.17g" % (sorted(times)[len(times) // 2], tr))

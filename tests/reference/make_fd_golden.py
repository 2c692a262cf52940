#!/usr/bin/python3
"""Writes the small goldens of tests/test_frechet.c, tests/test_stats.c and
tests/test_npy.c into tests/data/fd/.  Needs Debian's python3-numpy, -scipy
and -mpmath (run with /usr/bin/python3).  `make test` only reads the output.

Reference values are the exact trace term of the *stored* float64 matrices,
tr((S1 S2)^(1/2)) = sum of Re sqrt(eig(S1 S2)), computed with mpmath at 50
digits, and (for the feature sets) the same for the exact covariances of the
float32 features."""
import os
import numpy as np
import scipy.linalg
import mpmath as mp

mp.mp.dps = 50
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "fd")
os.makedirs(OUT, exist_ok=True)

MASK = (1 << 64) - 1


def splitmix(seed):
    s = seed
    while True:
        s = (s + 0x9E3779B97F4A7C15) & MASK
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def rng_floats(seed, n):
    """test_rng_float of tests/test.h: uniform in [-1, 1) with 24 bits."""
    g = splitmix(seed)
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        v = next(g) >> 40
        out[i] = np.float32((v - (1 << 23)) / float(1 << 23))
    return out


def features(seed, n, d, scale):
    x = rng_floats(seed, n * d).reshape(n, d)
    # correlated, graded features like a network's, kept in float32
    mix = rng_floats(seed + 1, d * d).reshape(d, d)
    return (x @ mix * np.float32(scale)).astype(np.float32)


def exact_sqrt_trace(s1, s2):
    a, b = mp.matrix(s1.tolist()), mp.matrix(s2.tolist())
    ev = mp.eig(a * b, left=False, right=False)
    return sum(mp.re(mp.sqrt(mp.mpc(e))) for e in ev)


def exact_cov(x):
    n, d = x.shape
    X = [[mp.mpf(float(v)) for v in row] for row in x]
    mu = [mp.fsum(X[i][j] for i in range(n)) / n for j in range(d)]
    c = mp.matrix(d, d)
    for i in range(d):
        for j in range(d):
            c[i, j] = mp.fsum((X[k][i] - mu[i]) * (X[k][j] - mu[j]) for k in range(n)) / (n - 1)
    return mu, c


def fd_parts(mu1, s1, mu2, s2, st):
    mean = mp.fsum((mp.mpf(float(a)) - mp.mpf(float(b))) ** 2 for a, b in zip(mu1, mu2))
    t1 = mp.fsum(mp.mpf(float(s1[i, i])) for i in range(s1.shape[0]))
    t2 = mp.fsum(mp.mpf(float(s2[i, i])) for i in range(s2.shape[0]))
    return mean, t1, t2, st, mean + t1 + t2 - 2 * st


def numpy_routes(s1, s2):
    sq = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.maximum(w, 0))) @ v.T
    ev = np.linalg.eigvalsh(r @ s2 @ r)
    return sq, np.sqrt(np.maximum(ev, 0)).sum()


lines = []


def case(name, x1, x2):
    mu1, mu2 = x1.astype(np.float64).mean(0), x2.astype(np.float64).mean(0)
    s1, s2 = np.cov(x1.astype(np.float64), rowvar=False), np.cov(x2.astype(np.float64), rowvar=False)
    np.savez(os.path.join(OUT, name + ".npz"), x1=x1, x2=x2, mu1=mu1, sigma1=s1, mu2=mu2, sigma2=s2)
    st = exact_sqrt_trace(s1, s2)
    mean, t1, t2, _, fd = fd_parts(mu1, s1, mu2, s2, st)
    lines.append("%s stored sqrt_trace %s fd %s" % (name, mp.nstr(st, 25), mp.nstr(fd, 25)))
    # exact covariances of the features themselves (the factor route's target)
    e1, c1 = exact_cov(x1)
    e2, c2 = exact_cov(x2)
    ev = mp.eig(c1 * c2, left=False, right=False)
    stf = sum(mp.re(mp.sqrt(mp.mpc(e))) for e in ev)
    lines.append("%s features sqrt_trace %s" % (name, mp.nstr(stf, 25)))
    sq, eh = numpy_routes(s1, s2)
    print("%s: exact %s scipy.sqrtm rel %.2e numpy eigh rel %.2e" % (
        name, mp.nstr(st, 20), abs((sq - st) / st), abs((eh - st) / st)))


# full rank: 200 images of 16 dims; rank deficient: 12 and 10 images of 24 dims
case("full16", features(101, 200, 16, 0.5), features(202, 200, 16, 0.6) + np.float32(0.05))
case("rankdef24", features(303, 12, 24, 0.5), features(404, 10, 24, 0.5))

with open(os.path.join(OUT, "reference.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")

# Foreign statistics files: pytorch-fid (savez_compressed, float64) and
# clean-fid (mu float32, sigma float64, compressed), and a plain savez.
mu = np.array([0.5, -1.25, 3.0, 0.125])
sg = np.array([[2.0, 0.5, 0, 0], [0.5, 1.0, 0.25, 0], [0, 0.25, 3.0, -1.0], [0, 0, -1.0, 4.0]])
np.savez_compressed(os.path.join(OUT, "pytorch_fid.npz"), mu=mu, sigma=sg)
np.savez_compressed(os.path.join(OUT, "clean_fid.npz"), mu=mu.astype(np.float32), sigma=sg)
np.savez(os.path.join(OUT, "stored_f32.npz"), mu=mu.astype(np.float32), sigma=sg.astype(np.float32))
np.save(os.path.join(OUT, "fortran_be.npy"), np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3)))
print("\n".join(lines))

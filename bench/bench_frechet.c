/* bench_frechet.c — times fdd_frechet at d = FDD_BENCH_D (default 2048) on a
 * full-rank pair (flat and 1/k spectra) and a rank-deficient pair (n = d/2
 * images), with 2 threads, against bench/frechet_scipy.py
 * (scipy.linalg.sqrtm under OpenBLAS) on the same matrices: FDD_BENCH_REPS
 * rounds (default 1) of one fdd run then one scipy run, so that the shared
 * machine's changes of speed land on both; medians, the ratio of the
 * medians and the median of the rounds' ratios. */
#include "fdd.h"
#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t rng(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s) { return (double)(rng(s) >> 11) * 0x1p-53 - 0.5; }

/* Exact fdd statistics of n random d-dimensional feature vectors.
 * "power" (the default): a covariance spectrum decaying as 1/k, the shape
 * measured on trained networks' features (Agrawal et al., "α-ReQ", NeurIPS
 * 2022: α ≈ 1), in a random basis: x = z·diag(k^-1/2)·Aᵀ/sqrt(d) with z and A
 * uniform.  "flat" (FDD_BENCH_SPECTRUM=flat): independent coordinates with
 * scales 0.2..2.2, a nearly flat spectrum, the hardest case for Jacobi. */
static void make_cov(size_t d, size_t n, uint64_t seed, int flat, double *mu, double *sg) {
    float *x = malloc(n * d * sizeof(float));
    fdd_error e;
    fdd_ctx *ctx;
    fdd_ctx_create(&ctx, 2, FDD_ISA_AUTO, &e);
    if (flat) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++) x[i * d + j] = (float)(unif(&seed) * (0.2 + 2.0 * j / d));
    } else {
        float *z = malloc(n * d * sizeof(float)), *A = malloc(d * d * sizeof(float));
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < d; k++) z[i * d + k] = (float)(unif(&seed) * sqrt(12.0 / (k + 1)));
        for (size_t j = 0; j < d * d; j++) A[j] = (float)(unif(&seed) * sqrt(12.0 / d));
        fdd_gemm(ctx, 0, 1, n, d, d, z, d, A, d, x, d);
        for (size_t j = 0; j < n * d; j++) x[j] += 0.5f;
        free(z);
        free(A);
    }
    fdd_stats *s;
    fdd_stats_create(&s, d, &e);
    fdd_stats_add(s, ctx, x, n, &e);
    fdd_stats_moments(s, ctx, mu, sg, &e);
    fdd_stats_free(s);
    fdd_ctx_free(ctx);
    free(x);
}

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* S = Q diag(w) Qᵀ with Q a product of m random Householder reflectors,
 * applied to both sides in O(m d²): a known-answer pair for the accuracy
 * line (the commuting pair S1, S2 with one Q has tr((S1 S2)^(1/2)) = Σ
 * sqrt(w1 w2)). */
static void householder_spectrum(size_t d, const double *w, int m, uint64_t seed, double *S) {
    double *v = malloc(d * sizeof(double)), *y = malloc(d * sizeof(double));
    memset(S, 0, d * d * sizeof(double));
    for (size_t i = 0; i < d; i++) S[i * d + i] = w[i];
    for (int r = 0; r < m; r++) {
        double nn = 0;
        for (size_t i = 0; i < d; i++) { v[i] = unif(&seed); nn += v[i] * v[i]; }
        for (size_t i = 0; i < d; i++) v[i] /= sqrt(nn);
        /* S := H S H with H = I - 2vvᵀ: y = S v, S -= 2(v yᵀ + y vᵀ) - 4(vᵀy) v vᵀ. */
        double vy = 0;
        for (size_t i = 0; i < d; i++) {
            double t = 0;
            for (size_t j = 0; j < d; j++) t += S[i * d + j] * v[j];
            y[i] = t;
        }
        for (size_t i = 0; i < d; i++) vy += v[i] * y[i];
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++)
                S[i * d + j] += -2 * (v[i] * y[j] + y[i] * v[j]) + 4 * vy * v[i] * v[j];
    }
    for (size_t i = 0; i < d; i++)   /* exactly symmetric */
        for (size_t j = 0; j < i; j++) S[j * d + i] = S[i * d + j];
    free(v);
    free(y);
}

static void accuracy(size_t d, double *mu, double *s1, double *s2) {
    double *w1 = malloc(d * sizeof(double)), *w2 = malloc(d * sizeof(double)), want = 0, c = 0;
    uint64_t seed = 77;
    for (size_t i = 0; i < d; i++) {
        w1[i] = 1.0 / (i + 1) * (0.5 + unif(&seed) + 0.5);
        w2[i] = 1.0 / (i + 1) * (0.5 + unif(&seed) + 0.5);
        double x = sqrt(w1[i] * w2[i]), t = want + x;   /* Neumaier */
        c += fabs(want) >= x ? (want - t) + x : (x - t) + want;
        want = t;
    }
    want += c;
    householder_spectrum(d, w1, 64, 5, s1);
    householder_spectrum(d, w2, 64, 5, s2);
    memset(mu, 0, d * sizeof(double));
    fdd_ctx *ctx;
    fdd_error e;
    fdd_fd_result r;
    fdd_ctx_create(&ctx, 2, FDD_ISA_AUTO, &e);
    double t0 = now();
    if (fdd_frechet(ctx, d, mu, s1, mu, s2, &r, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    printf("accuracy d=%zu: commuting pair (1/k spectra, 64-reflector basis): |sqrt_trace - exact|/exact = %.2e "
           "(%.3f s, sweeps %d)\n", d, fabs(r.sqrt_trace - want) / want, now() - t0, r.sweeps);
    fdd_ctx_free(ctx);
    free(w1);
    free(w2);
}

int main(void) {
    size_t d = getenv("FDD_BENCH_D") ? (size_t)atol(getenv("FDD_BENCH_D")) : 2048;
    int reps = getenv("FDD_BENCH_REPS") ? atoi(getenv("FDD_BENCH_REPS")) : 1;
    if (d < 2 || reps < 1) return 1;
    double *mu1 = malloc(d * 8), *mu2 = malloc(d * 8), *s1 = malloc(d * d * 8), *s2 = malloc(d * d * 8);
    /* The cases: full rank (n = 2d images) with a flat and with a 1/k
     * spectrum, and rank-deficient (n = d/2).  FDD_BENCH_QUICK=k: case k
     * (1-3) only, no scipy (for tuning). */
    struct { const char *name; int flat; int rankdef; } cases[3] = {
        {"full-rank, flat spectrum", 1, 0}, {"full-rank, 1/k spectrum", 0, 0}, {"rank-deficient, 1/k spectrum", 0, 1}};
    int quick = getenv("FDD_BENCH_QUICK") != NULL, c0 = quick ? atoi(getenv("FDD_BENCH_QUICK")) - 1 : 0;
    if (c0 < 0 || c0 > 2) c0 = 0;
    if (!quick) accuracy(d, mu1, s1, s2);
    for (int c = c0; c < (quick ? c0 + 1 : 3); c++) {
        size_t n = cases[c].rankdef ? d / 2 : 2 * d;
        make_cov(d, n, 11 + c, cases[c].flat, mu1, s1);
        make_cov(d, n, 23 + c, cases[c].flat, mu2, s2);
        /* fdd and scipy alternate, one run each per round, so that a change
         * in the shared machine's speed lands on both sides; medians, and
         * the median of the rounds' ratios. */
        char path[] = "/tmp/fdd_bench_frechet_XXXXXX", npz[64] = "";
        if (!quick) {
            int fd = mkstemp(path);
            if (fd < 0) { fprintf(stderr, "bench_frechet: cannot create a temporary file\n"); return 1; }
            close(fd);
            snprintf(npz, sizeof npz, "%s.npz", path);
            fdd_npy_out a[4] = {{"mu1", FDD_NPY_F8, 1, {d}, mu1}, {"sigma1", FDD_NPY_F8, 2, {d, d}, s1},
                                {"mu2", FDD_NPY_F8, 1, {d}, mu2}, {"sigma2", FDD_NPY_F8, 2, {d, d}, s2}};
            fdd_error e;
            if (fdd_npz_write(npz, a, 4, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
        }
        fdd_ctx *ctx;
        fdd_error e;
        fdd_ctx_create(&ctx, 2, FDD_ISA_AUTO, &e);
        double *t = malloc(3 * reps * sizeof(double)), *ts = t + reps, *ratio = t + 2 * reps, sq = 0, cpu = 0;
        int have_scipy = !quick;
        fdd_fd_result r;
        for (int k = 0; k < reps; k++) {
            double c1 = cpu_now(), t0 = now();
            if (fdd_frechet(ctx, d, mu1, s1, mu2, s2, &r, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
            t[k] = now() - t0;
            cpu += cpu_now() - c1;
            if (!have_scipy) continue;
            char cmd[512], line[4096];
            snprintf(cmd, sizeof cmd,
                     "OPENBLAS_NUM_THREADS=2 LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread "
                     "/usr/bin/python3 bench/frechet_scipy.py %s 1", npz);
            FILE *p = popen(cmd, "r");
            double sec = -1;
            while (p && fgets(line, sizeof line, p)) {
                if (k == 0 && strncmp(line, "scipy BLAS", 10) == 0)
                    printf("%s%s", line, strchr(line, '\n') ? "" : "\n");
                sscanf(line, "scipy_seconds %lf sqrt_trace %lf", &sec, &sq);
            }
            if (p) pclose(p);
            if (sec <= 0) { have_scipy = 0; continue; }
            ts[k] = sec;
            ratio[k] = sec / t[k];
        }
        double st = r.sqrt_trace;
        qsort(t, reps, sizeof(double), cmp);
        printf("fdd %s d=%zu threads=2: %.3f s, %.3f CPU s per run (sweeps %d, %d passes on the Gram matrix, %d LQ steps, "
               "ranks %d/%d, sqrt_trace %.17g)\n", cases[c].name, d, t[reps / 2], cpu / reps, r.sweeps,
               r.gram_passes, r.lq_steps, r.rank1, r.rank2, st);
        fdd_ctx_free(ctx);
        if (have_scipy) {
            qsort(ts, reps, sizeof(double), cmp);
            qsort(ratio, reps, sizeof(double), cmp);
            double sec = ts[reps / 2], best = t[reps / 2], q = ratio[reps / 2];
            printf("scipy_seconds %.3f sqrt_trace %.17g\n", sec, sq);
            printf("%s d=%zu: scipy+OpenBLAS %.3f s vs fdd (2 threads) %.3f s: fdd is %.2fx %s (median of the rounds' "
                   "ratios %.2fx); |delta sqrt_trace|/value %.2e\n",
                   cases[c].name, d, sec, best, sec > best ? sec / best : best / sec, sec > best ? "faster" : "slower", q,
                   fabs(sq - st) / st);
        } else if (!quick)
            printf("scipy route not available (needs /usr/bin/python3 with numpy and scipy)\n");
        free(t);
        if (quick) continue;
        remove(npz);
        remove(path);
    }
    return 0;
}

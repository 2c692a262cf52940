/* bench_frechet.c — times fdd_frechet at d = FDD_BENCH_D (default 2048) on a
 * full-rank pair and a rank-deficient pair (n = d/2 images), with 1 and 2
 * threads (median of FDD_BENCH_REPS, default 1), then runs
 * bench/frechet_scipy.py (scipy.linalg.sqrtm under OpenBLAS) on the same
 * matrices and prints the ratio. */
#include "fdd.h"
#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

/* Covariance of n graded random feature vectors (exact fdd statistics). */
static void make_cov(size_t d, size_t n, uint64_t seed, double *mu, double *sg) {
    float *x = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = (float)(((double)(rng(&seed) >> 11) * 0x1p-53 - 0.5) * (0.2 + 2.0 * j / d));
    fdd_stats *s;
    fdd_error e;
    fdd_ctx *ctx;
    fdd_ctx_create(&ctx, 2, FDD_ISA_SCALAR, &e);
    fdd_stats_create(&s, d, &e);
    fdd_stats_add(s, ctx, x, n, &e);
    fdd_stats_moments(s, ctx, mu, sg, &e);
    fdd_stats_free(s);
    fdd_ctx_free(ctx);
    free(x);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    size_t d = getenv("FDD_BENCH_D") ? (size_t)atol(getenv("FDD_BENCH_D")) : 2048;
    int reps = getenv("FDD_BENCH_REPS") ? atoi(getenv("FDD_BENCH_REPS")) : 1;
    if (d < 2 || reps < 1) return 1;
    double *mu1 = malloc(d * 8), *mu2 = malloc(d * 8), *s1 = malloc(d * d * 8), *s2 = malloc(d * d * 8);
    const char *names[2] = {"full-rank", "rank-deficient"};
    /* FDD_BENCH_QUICK=1: full rank only, 2 threads, no scipy (for tuning). */
    int quick = getenv("FDD_BENCH_QUICK") != NULL;
    for (int c = 0; c < (quick ? 1 : 2); c++) {
        size_t n = c == 0 ? 2 * d : d / 2;
        make_cov(d, n, 11 + c, mu1, s1);
        make_cov(d, n, 23 + c, mu2, s2);
        double best[2] = {0, 0}, st = 0;
        for (int th = quick ? 2 : 1; th <= 2; th++) {
            fdd_ctx *ctx;
            fdd_error e;
            fdd_ctx_create(&ctx, th, FDD_ISA_AUTO, &e);
            double *t = malloc(reps * sizeof(double));
            fdd_fd_result r;
            for (int k = 0; k < reps; k++) {
                double t0 = now();
                if (fdd_frechet(ctx, d, mu1, s1, mu2, s2, &r, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
                t[k] = now() - t0;
            }
            qsort(t, reps, sizeof(double), cmp);
            best[th - 1] = t[reps / 2];
            st = r.sqrt_trace;
            printf("fdd %s d=%zu threads=%d: %.3f s (sweeps %d, ranks %d/%d, sqrt_trace %.17g)\n", names[c], d, th,
                   best[th - 1], r.sweeps, r.rank1, r.rank2, r.sqrt_trace);
            free(t);
            fdd_ctx_free(ctx);
        }
        if (quick) continue;
        char path[] = "/tmp/fdd_bench_frechet_XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0) continue;
        char npz[64];
        snprintf(npz, sizeof npz, "%s.npz", path);
        fdd_npy_out a[4] = {{"mu1", FDD_NPY_F8, 1, {d}, mu1}, {"sigma1", FDD_NPY_F8, 2, {d, d}, s1},
                            {"mu2", FDD_NPY_F8, 1, {d}, mu2}, {"sigma2", FDD_NPY_F8, 2, {d, d}, s2}};
        fdd_error e;
        if (fdd_npz_write(npz, a, 4, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "OPENBLAS_NUM_THREADS=2 LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread "
                 "/usr/bin/python3 bench/frechet_scipy.py %s %d", npz, reps);
        FILE *p = popen(cmd, "r");
        double sec = -1, sq = 0;
        char line[512];
        while (p && fgets(line, sizeof line, p)) {
            fputs(line, stdout);
            sscanf(line, "scipy_seconds %lf sqrt_trace %lf", &sec, &sq);
        }
        if (p) pclose(p);
        if (sec > 0)
            printf("%s d=%zu: scipy+OpenBLAS %.3f s vs fdd (2 threads) %.3f s: fdd is %.2fx %s; |delta sqrt_trace|/value %.2e\n",
                   names[c], d, sec, best[1], sec > best[1] ? sec / best[1] : best[1] / sec,
                   sec > best[1] ? "faster" : "slower", fabs(sq - st) / st);
        else
            printf("scipy route not available (needs /usr/bin/python3 with numpy and scipy)\n");
        remove(npz);
        remove(path);
    }
    return 0;
}

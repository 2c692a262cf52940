/* test_frechet.c — Fréchet distance: known answers (commuting pairs from a
 * random orthogonal basis, S1 = S2), thread-count determinism, and the
 * 50-digit mpmath references of tests/reference/make_fd_golden.py. */
#include "test.h"
#include "fdd.h"
#include "stats.h"
#include "gemm.h"

#include <math.h>

/* Random orthogonal d x d matrix: modified Gram-Schmidt, twice, on random rows. */
static double *random_orthogonal(size_t d, uint64_t seed) {
    double *q = malloc(d * d * sizeof(double));
    for (size_t i = 0; i < d * d; i++) q[i] = test_rng_float(&seed);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < d; i++) {
            for (size_t j = 0; j < i; j++) {
                double s = 0;
                for (size_t k = 0; k < d; k++) s += q[i * d + k] * q[j * d + k];
                for (size_t k = 0; k < d; k++) q[i * d + k] -= s * q[j * d + k];
            }
            double n = 0;
            for (size_t k = 0; k < d; k++) n += q[i * d + k] * q[i * d + k];
            n = sqrt(n);
            for (size_t k = 0; k < d; k++) q[i * d + k] /= n;
        }
    return q;
}

/* S = Qᵀ diag(w) Q (rows of q are the eigenvectors). */
static double *with_spectrum(const double *q, const double *w, size_t d) {
    double *s = calloc(d * d, sizeof(double));
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j <= i; j++) {
            double v = 0;
            for (size_t k = 0; k < d; k++) v += q[k * d + i] * w[k] * q[k * d + j];
            s[i * d + j] = s[j * d + i] = v;
        }
    return s;
}

static void commuting_isa(size_t d, int threads, fdd_isa isa) {
    uint64_t seed = 1000 + d;
    double *q = random_orthogonal(d, seed);
    double *a = malloc(d * sizeof(double)), *b = malloc(d * sizeof(double));
    double *mu1 = calloc(d, sizeof(double)), *mu2 = calloc(d, sizeof(double));
    double want = 0;
    for (size_t i = 0; i < d; i++) {
        a[i] = 0.1 + 2 * fabs(test_rng_float(&seed));
        b[i] = 0.1 + 2 * fabs(test_rng_float(&seed));
        want += sqrt(a[i] * b[i]);
        mu2[i] = 0.01 * test_rng_float(&seed);
    }
    double *s1 = with_spectrum(q, a, d), *s2 = with_spectrum(q, b, d);
    fdd_ctx *ctx;
    fdd_error e;
    REQUIRE(fdd_ctx_create(&ctx, threads, isa, &e) == FDD_OK, "%s", e.msg);
    fdd_fd_result r;
    fdd_status st = fdd_frechet(ctx, d, mu1, s1, mu2, s2, &r, &e);
    CHECK(st == FDD_OK, "%s", e.msg);
    double rel = fabs(r.sqrt_trace - want) / want;
    CHECK(rel <= 1e-12, "d=%zu: sqrt_trace %.17g want %.17g rel %.2e", d, r.sqrt_trace, want, rel);
    CHECK(r.rank1 == (int)d && r.rank2 == (int)d, "ranks %d %d", r.rank1, r.rank2);
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "  commuting d=%zu rel %.2e sweeps %d\n", d, rel, r.sweeps);
    /* S1 = S2: the trace term equals tr S up to rounding. */
    st = fdd_frechet(ctx, d, mu1, s1, mu1, s1, &r, &e);
    CHECK(st == FDD_OK, "%s", e.msg);
    CHECK(fabs(r.fd) <= 1e-12 * r.trace1, "S1 = S2: fd %.3g (trace %.6g)", r.fd, r.trace1);
    CHECK(r.mean_term == 0, "mean term %g", r.mean_term);
    if (getenv("TEST_VERBOSE")) fprintf(stderr, "  S1 = S2 d=%zu: |fd| / tr S %.2e\n", d, fabs(r.fd) / r.trace1);
    fdd_ctx_free(ctx);
    free(q); free(a); free(b); free(s1); free(s2); free(mu1); free(mu2);
}

static void commuting(size_t d, int threads) { commuting_isa(d, threads, FDD_ISA_SCALAR); }
static void test_commuting_64(void) { commuting(64, 1); }
/* The size class the speed work targets (d = 2048 is in bench/bench_frechet.c). */
static void test_commuting_512(void) { commuting_isa(512, 2, FDD_ISA_AUTO); }
/* 22 blocks of 32: tasks of four blocks on the lines of AG(3, 4), 42 of its
 * 64 points empty */
static void test_commuting_700(void) { commuting_isa(700, 2, FDD_ISA_AUTO); }

/* Known answers at sizes around every block boundary (Jacobi blocks of 48,
 * Cholesky and LQ panels of 64, a last block or panel of one row): flat,
 * graded (1/k) and half-rank spectra in a common random basis.  (A
 * look-ahead that advanced by the wrong panel size passed every other test
 * and failed here from d = 97.) */
static void test_sizes(void) {
    static const size_t sizes[] = {1, 2, 3, 5, 8, 31, 47, 48, 49, 63, 64, 65, 95, 96, 97, 100, 113, 127, 128, 129, 161, 193};
    fdd_ctx *ctx;
    fdd_error e;
    REQUIRE(fdd_ctx_create(&ctx, 2, FDD_ISA_AUTO, &e) == FDD_OK, "%s", e.msg);
    double worst = 0;
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        size_t d = sizes[z];
        uint64_t seed = 7000 + d;
        double *q = random_orthogonal(d, seed), *a = malloc(d * sizeof(double)), *b = malloc(d * sizeof(double)),
               *mu = calloc(d, sizeof(double));
        for (int kind = 0; kind < 3; kind++) {
            double want = 0;
            for (size_t i = 0; i < d; i++) {
                a[i] = 0.1 + 2 * fabs(test_rng_float(&seed));
                b[i] = 0.1 + 2 * fabs(test_rng_float(&seed));
                if (kind == 1) { a[i] /= (double)(i + 1); b[i] /= (double)(i + 1); }
                if (kind == 2 && 2 * i >= d) a[i] = 0;
                want += sqrt(a[i] * b[i]);
            }
            double *s1 = with_spectrum(q, a, d), *s2 = with_spectrum(q, b, d);
            fdd_fd_result r;
            CHECK(fdd_frechet(ctx, d, mu, s1, mu, s2, &r, &e) == FDD_OK, "d=%zu: %s", d, e.msg);
            double rel = fabs(r.sqrt_trace - want) / want, tol = kind == 2 ? 1e-7 : 1e-12;
            CHECK(rel <= tol, "d=%zu, %s spectrum: sqrt_trace %.17g want %.17g rel %.2e", d,
                  kind == 0 ? "flat" : kind == 1 ? "1/k" : "half-rank", r.sqrt_trace, want, rel);
            if (kind < 2 && rel > worst) worst = rel;
            free(s1); free(s2);
        }
        free(q); free(a); free(b); free(mu);
    }
    if (getenv("TEST_VERBOSE")) fprintf(stderr, "  sizes 1..193: worst full-rank rel %.2e\n", worst);
    fdd_ctx_free(ctx);
}

/* The double GEMM: every ISA and thread count gives the same bits as the
 * scalar fma() chains, for all transposes, negation, accumulation and edge
 * shapes; and the scalar path equals a direct chain. */
static void test_dgemm_identical(void) {
    const size_t M = 37, N = 53, K = 300;
    uint64_t seed = 5;
    double *A = malloc(M * K * sizeof(double)), *B = malloc(K * N * sizeof(double));
    double *C0 = malloc(M * N * sizeof(double)), *C1 = malloc(M * N * sizeof(double));
    for (size_t i = 0; i < M * K; i++) A[i] = test_rng_float(&seed) * (1 + (double)(i % 7) * 1e-9);
    for (size_t i = 0; i < K * N; i++) B[i] = test_rng_float(&seed) / 3;
    for (int v = 0; v < 16; v++) {
        int ta = v & 1, tb = (v >> 1) & 1, neg = (v >> 2) & 1, acc = (v >> 3) & 1;
        size_t lda = ta ? M : K, ldb = tb ? K : N;
        /* reference: direct chains */
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) {
                double a = acc ? (double)(i + j) / 8 : 0;
                for (size_t k = 0; k < K; k++) {
                    double x = ta ? A[k * lda + i] : A[i * lda + k], y = tb ? B[j * ldb + k] : B[k * ldb + j];
                    a = fma(neg ? -x : x, y, a);
                }
                C0[i * N + j] = a;
            }
        for (int isa = FDD_ISA_SCALAR; isa <= FDD_ISA_AVX512; isa++) {
            if (!fdd_isa_available((fdd_isa)isa)) continue;
            for (int th = 1; th <= 3; th += 2) {
                fdd_ctx *ctx;
                fdd_error e;
                REQUIRE(fdd_ctx_create(&ctx, th, (fdd_isa)isa, &e) == FDD_OK, "%s", e.msg);
                for (size_t i = 0; i < M; i++)
                    for (size_t j = 0; j < N; j++) C1[i * N + j] = (double)(i + j) / 8;
                CHECK(fdd_dgemm(ctx, ta, tb, M, N, K, neg, A, lda, B, ldb, C1, N, acc, NULL, &e) == FDD_OK, "%s",
                      e.msg);
                CHECK(memcmp(C0, C1, M * N * sizeof(double)) == 0, "dgemm %s threads %d ta %d tb %d neg %d acc %d differs",
                      fdd_isa_name((fdd_isa)isa), th, ta, tb, neg, acc);
                fdd_ctx_free(ctx);
            }
        }
    }
    free(A); free(B); free(C0); free(C1);
}

/* The Jacobi's kernels (gemm.h): the dot tile in chunks and the plane
 * rotation give on every ISA the bits of direct fma() chains in the
 * documented order and of plain products. */
static void test_dkernels_identical(void) {
    const size_t K = 264, ld = 272;
    uint64_t seed = 11;
    double *a = malloc(4 * ld * sizeof(double)), *b = malloc(4 * ld * sizeof(double)), want[16], acc[128];
    for (size_t i = 0; i < 4 * ld; i++) { a[i] = test_rng_float(&seed); b[i] = test_rng_float(&seed) * 1e-3; }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (size_t k = 0; k < K; k += 8)
                for (int q = 0; q < 8; q++) l[q] = fma(a[i * ld + k + q], b[j * ld + k + q], l[q]);
            want[4 * i + j] = fdd_ddot_sum(l);
        }
    for (int isa = FDD_ISA_SCALAR; isa <= FDD_ISA_AVX512; isa++) {
        if (!fdd_isa_available((fdd_isa)isa)) continue;
        const fdd_dgemm_kernel *kn = fdd_dgemm_kernel_for((fdd_isa)isa);
        kn->dot(104, a, ld, b, ld, acc, 0);   /* in two chunks, as the Jacobi does */
        kn->dot(K - 104, a + 104, ld, b + 104, ld, acc, 1);
        int same = 1;
        for (int t = 0; t < 16; t++) same &= fdd_ddot_sum(acc + 8 * t) == want[t];
        CHECK(same, "dot kernel %s differs from the fma chains", fdd_isa_name((fdd_isa)isa));
        for (size_t n = 0; n < 27; n += 13) {   /* whole vectors and tails */
            double x[40], y[40], x0[40], y0[40], c = 0.8, sn = -0.6000000000000001;
            for (size_t k = 0; k < n; k++) { x[k] = x0[k] = a[k]; y[k] = y0[k] = b[k] * 1e3; }
            kn->rot(n, x, y, c, sn);
            for (size_t k = 0; k < n; k++)
                same &= x[k] == c * x0[k] - sn * y0[k] && y[k] == sn * x0[k] + c * y0[k];
        }
        CHECK(same, "rotation kernel %s differs from plain products", fdd_isa_name((fdd_isa)isa));
    }
    free(a); free(b);
}

/* fdd_frechet gives the same bits on every ISA (the GEMM is canonical, the
 * rest is portable code). */
static void test_isa_identical(void) {
    /* d = 200: blocks of 48 with an edge block of 8; full rank, and rank 120 */
    size_t d = 200;
    for (size_t rank = d; rank >= 120; rank -= 80) {
        uint64_t seed = 99 + rank;
        double *x = malloc(d * d * sizeof(double)), *s1 = calloc(d * d, sizeof(double)),
               *s2 = calloc(d * d, sizeof(double)), *mu = calloc(d, sizeof(double));
        for (int m = 0; m < 2; m++) {
            double *s = m ? s2 : s1;
            for (size_t i = 0; i < d * d; i++) x[i] = test_rng_float(&seed) * (1 + (double)(i % d) / 16);
            for (size_t i = 0; i < d; i++)
                for (size_t j = 0; j <= i; j++) {
                    double v = 0;
                    for (size_t k = 0; k < rank; k++) v += x[i * d + k] * x[j * d + k];
                    s[i * d + j] = v;
                }
        }
        fdd_fd_result r[FDD_ISA_COUNT];
        int have = 0;
        for (int isa = FDD_ISA_SCALAR; isa <= FDD_ISA_AVX512; isa++) {
            if (!fdd_isa_available((fdd_isa)isa)) continue;
            fdd_ctx *ctx;
            fdd_error e;
            REQUIRE(fdd_ctx_create(&ctx, 2, (fdd_isa)isa, &e) == FDD_OK, "%s", e.msg);
            CHECK(fdd_frechet(ctx, d, mu, s1, mu, s2, &r[isa], &e) == FDD_OK, "%s", e.msg);
            fdd_ctx_free(ctx);
            CHECK(memcmp(&r[isa], &r[FDD_ISA_SCALAR], sizeof r[0]) == 0, "rank %zu: %s: %.17g vs scalar %.17g", rank,
                  fdd_isa_name((fdd_isa)isa), r[isa].sqrt_trace, r[FDD_ISA_SCALAR].sqrt_trace);
            have++;
        }
        CHECK(have >= 1, "no ISA available");
        /* rounding-level pivots may stay positive past the true rank */
        CHECK(rank == d ? r[FDD_ISA_SCALAR].rank1 == (int)d : r[FDD_ISA_SCALAR].rank1 < (int)d, "rank %d for %zu",
              r[FDD_ISA_SCALAR].rank1, rank);
        free(x); free(s1); free(s2); free(mu);
    }
}
static void test_commuting_200(void) { commuting(200, 2); }

static void test_threads_identical(void) {
    size_t d = 200;   /* 5 blocks: a bye in every round */
    uint64_t seed = 77;
    double *x = malloc(d * d * sizeof(double)), *s1 = calloc(d * d, sizeof(double)),
           *s2 = calloc(d * d, sizeof(double)), *mu = calloc(d, sizeof(double));
    for (int m = 0; m < 2; m++) {
        double *s = m ? s2 : s1;
        for (size_t i = 0; i < d * d; i++) x[i] = test_rng_float(&seed);
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) {
                double v = 0;
                for (size_t k = 0; k < d / 2; k++) v += x[i * d + k] * x[j * d + k]; /* rank d/2 */
                s[i * d + j] = v;
            }
    }
    fdd_fd_result r[3];
    for (int t = 1; t <= 3; t++) {
        fdd_ctx *ctx;
        fdd_error e;
        REQUIRE(fdd_ctx_create(&ctx, t, FDD_ISA_AUTO, &e) == FDD_OK, "%s", e.msg);
        CHECK(fdd_frechet(ctx, d, mu, s1, mu, s2, &r[t - 1], &e) == FDD_OK, "%s", e.msg);
        fdd_ctx_free(ctx);
    }
    CHECK(memcmp(&r[0], &r[1], sizeof r[0]) == 0 && memcmp(&r[0], &r[2], sizeof r[0]) == 0,
          "results differ with thread count: %.17g %.17g %.17g", r[0].fd, r[1].fd, r[2].fd);
    free(x); free(s1); free(s2); free(mu);
}

/* Graded pairs (columns as 1/sqrt(k)) whose iteration takes all its paths,
 * at d = 512 (16 blocks, every point of AG(2, 4)) and d = 700 (22 blocks on
 * AG(3, 4), 42 points empty): LQ steps, tasks skipped as far below the
 * previous sweep, passes over the Gram matrix after a failed stopping test
 * (the threads sharing each pair's columns), and tasks of neighbouring
 * rounds overlapping in time.  The result's counters show that the paths
 * were taken (which seed takes which path changes with the iteration: the
 * check fails rather than losing coverage).  Same bits for 1, 2 and 3
 * threads and on every ISA. */
static void paths_identical(size_t d, uint64_t seed) {
    double *x = malloc(d * d * sizeof(double)), *s1 = calloc(d * d, sizeof(double)),
           *s2 = calloc(d * d, sizeof(double)), *mu = calloc(d, sizeof(double));
    for (int m = 0; m < 2; m++) {
        double *s = m ? s2 : s1;
        for (size_t i = 0; i < d * d; i++) x[i] = test_rng_float(&seed) / sqrt((double)(1 + i % d));
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j <= i; j++) {
                double v = 0;
                for (size_t k = 0; k < d; k++) v += x[i * d + k] * x[j * d + k];
                s[i * d + j] = s[j * d + i] = v;
            }
    }
    fdd_fd_result ref, r;
    /* 1, 2, 3 threads on the default ISA, then 2 threads on every other ISA */
    struct run { int isa, threads; } runs[3 + FDD_ISA_COUNT];
    int nrun = 0;
    for (int t = 1; t <= 3; t++) runs[nrun++] = (struct run){FDD_ISA_AUTO, t};
    for (int isa = FDD_ISA_SCALAR; isa <= FDD_ISA_AVX512; isa++)
        if (fdd_isa_available((fdd_isa)isa) && isa != (int)fdd_isa_best()) runs[nrun++] = (struct run){isa, 2};
    for (int k = 0; k < nrun; k++) {
        fdd_ctx *ctx;
        fdd_error e;
        REQUIRE(fdd_ctx_create(&ctx, runs[k].threads, (fdd_isa)runs[k].isa, &e) == FDD_OK, "%s", e.msg);
        CHECK(fdd_frechet(ctx, d, mu, s1, mu, s2, k ? &r : &ref, &e) == FDD_OK, "%s", e.msg);
        fdd_ctx_free(ctx);
        if (k)
            CHECK(memcmp(&r, &ref, sizeof r) == 0, "isa %d, %d threads: %.17g vs %.17g", runs[k].isa, runs[k].threads,
                  r.sqrt_trace, ref.sqrt_trace);
    }
    /* the paths this test is meant to cover were taken */
    CHECK(ref.rank1 == (int)d && ref.sweeps > 2 && ref.lq_steps >= 1 && ref.gram_passes >= 1 &&
              ref.skipped_tasks >= 1,
          "rank %d, %d sweeps, %d LQ steps, %d Gram passes, %d tasks skipped", ref.rank1, ref.sweeps, ref.lq_steps,
          ref.gram_passes, ref.skipped_tasks);
    fprintf(stderr, "  paths d=%zu: %d sweeps, %d Gram passes, %d LQ steps, %d tasks skipped\n", d, ref.sweeps,
            ref.gram_passes, ref.lq_steps, ref.skipped_tasks);
    free(x); free(s1); free(s2); free(mu);
}
static void test_paths_identical(void) {
    paths_identical(512, 3);
    paths_identical(700, 14);
}

/* "<name> stored sqrt_trace V fd V" / "<name> features sqrt_trace V" */
static int ref_value(const char *name, const char *kind, const char *field, double *v) {
    FILE *f = fopen("tests/data/fd/reference.txt", "r");
    if (!f) return 0;
    char line[512], n[64], k[64], f1[64], f2[64];
    char v1[64], v2[64];
    int ok = 0;
    while (fgets(line, sizeof line, f)) {
        int c = sscanf(line, "%63s %63s %63s %63s %63s %63s", n, k, f1, v1, f2, v2);
        if (c < 4 || strcmp(n, name) || strcmp(k, kind)) continue;
        if (strcmp(f1, field) == 0) { *v = strtod(v1, NULL); ok = 1; }
        else if (c == 6 && strcmp(f2, field) == 0) { *v = strtod(v2, NULL); ok = 1; }
    }
    fclose(f);
    return ok;
}

static void golden(const char *name, double tol_stored, double tol_features) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/fd/%s.npz", name);
    fdd_npz *z;
    fdd_error e;
    REQUIRE(fdd_npz_open(path, &z, &e) == FDD_OK, "%s", e.msg);
    fdd_npy_array a[6];
    const char *keys[6] = {"mu1", "sigma1", "mu2", "sigma2", "x1", "x2"};
    for (int i = 0; i < 6; i++) REQUIRE(fdd_npz_get(z, keys[i], &a[i], &e) == FDD_OK, "%s", e.msg);
    size_t d = (size_t)a[0].shape[0];
    double want, want_fd, want_feat;
    REQUIRE(ref_value(name, "stored", "sqrt_trace", &want) && ref_value(name, "stored", "fd", &want_fd) &&
                ref_value(name, "features", "sqrt_trace", &want_feat),
            "reference values for %s missing", name);
    fdd_fd_result r;
    REQUIRE(fdd_frechet(NULL, d, a[0].data, a[1].data, a[2].data, a[3].data, &r, &e) == FDD_OK, "%s", e.msg);
    double rel = fabs(r.sqrt_trace - want) / want;
    CHECK(rel <= tol_stored, "%s: matrices: sqrt_trace %.17g want %.17g rel %.2e", name, r.sqrt_trace, want, rel);
    CHECK(fabs(r.fd - want_fd) <= tol_stored * 4 * want, "%s: fd %.17g want %.17g", name, r.fd, want_fd);
    double relf = 0;
    CHECK(fdd_frechet_features(NULL, d, a[4].data, (size_t)a[4].shape[0], a[5].data, (size_t)a[5].shape[0], &r,
                               &e) == FDD_OK, "%s", e.msg);
    relf = fabs(r.sqrt_trace - want_feat) / want_feat;
    CHECK(relf <= tol_features, "%s: features: sqrt_trace %.17g want %.17g rel %.2e", name, r.sqrt_trace,
          want_feat, relf);
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "  %s: matrix route rel %.2e, feature route rel %.2e\n", name, rel, relf);
    for (int i = 0; i < 6; i++) fdd_npy_array_free(&a[i]);
    fdd_npz_close(z);
}

static void test_golden_full(void) { golden("full16", 1e-13, 1e-13); }
/* numpy's eigh route reaches 1.2e-8 and scipy's sqrtm 2.2e-8 on this pair. */
static void test_golden_rank_deficient(void) { golden("rankdef24", 1.2e-8, 1e-13); }

/* Covariances of any magnitude: the result scales exactly (the matrices are
 * scaled by powers of two inside), where the products of the factors would
 * otherwise overflow (2^600) or underflow (2^-600) to NaN or 0. */
static void test_scale_invariance(void) {
    size_t d = 40;
    uint64_t seed = 3;
    double *x = malloc(d * d * sizeof(double)), *s[2], *t[2], *mu = calloc(d, sizeof(double));
    for (int m = 0; m < 2; m++) {
        s[m] = calloc(d * d, sizeof(double));
        t[m] = calloc(d * d, sizeof(double));
        for (size_t i = 0; i < d * d; i++) x[i] = test_rng_float(&seed);
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j <= i; j++) {
                double v = 0;
                for (size_t k = 0; k < d; k++) v += x[i * d + k] * x[j * d + k];
                s[m][i * d + j] = s[m][j * d + i] = v;
            }
    }
    fdd_fd_result r0, r;
    fdd_error e;
    CHECK(fdd_frechet(NULL, d, mu, s[0], mu, s[1], &r0, &e) == FDD_OK, "%s", e.msg);
    const int ex[4] = {600, -600, 1000, -1000};
    for (int k = 0; k < 4; k++) {
        for (int m = 0; m < 2; m++)
            for (size_t i = 0; i < d * d; i++) t[m][i] = ldexp(s[m][i], ex[k]);
        CHECK(fdd_frechet(NULL, d, mu, t[0], mu, t[1], &r, &e) == FDD_OK, "%s", e.msg);
        CHECK(r.sqrt_trace == ldexp(r0.sqrt_trace, ex[k]) && r.rank1 == r0.rank1 && r.sweeps == r0.sweeps,
              "scale 2^%d: sqrt_trace %.17g, want %.17g", ex[k], r.sqrt_trace, ldexp(r0.sqrt_trace, ex[k]));
    }
    /* subnormal covariances: diag(2^-1060, 2^-1062) twice, sqrt_trace their sum */
    double z[4] = {0x1p-1060, 0, 0, 0x1p-1062};
    CHECK(fdd_frechet(NULL, 2, mu, z, mu, z, &r, &e) == FDD_OK && r.sqrt_trace == 0x1p-1060 + 0x1p-1062,
          "subnormal: sqrt_trace %g", r.sqrt_trace);
    free(x); free(mu);
    for (int m = 0; m < 2; m++) { free(s[m]); free(t[m]); }
}

static void test_bad_input(void) {
    double mu[2] = {0, 0}, s[4] = {1, 0, 0, NAN};
    fdd_fd_result r;
    fdd_error e;
    CHECK(fdd_frechet(NULL, 2, mu, s, mu, s, &r, &e) == FDD_E_ARG, "NaN accepted");
    CHECK(fdd_frechet(NULL, 0, mu, s, mu, s, &r, &e) == FDD_E_ARG, "d = 0 accepted");
    double z[4] = {0, 0, 0, 0};
    CHECK(fdd_frechet(NULL, 2, mu, z, mu, z, &r, &e) == FDD_OK && r.fd == 0 && r.rank1 == 0, "zero covariances");
}

/* Every allocation failure is a clean FDD_E_NOMEM (run under ASan by make test-san). */
void fdd_alloc_fail_at(long n);
static void test_alloc_failures(void) {
    size_t d = 40;
    uint64_t seed = 3;
    double *s1 = calloc(d * d, sizeof(double)), *mu = calloc(d, sizeof(double));
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j <= i; j++) s1[i * d + j] = (i == j ? 2.0 : 0.0) + 0.01 * test_rng_float(&seed);
    fdd_ctx *ctx;
    fdd_error e;
    REQUIRE(fdd_ctx_create(&ctx, 2, FDD_ISA_AUTO, &e) == FDD_OK, "%s", e.msg);
    int ok = 0;
    for (long n = 1; n < 200 && !ok; n++) {
        fdd_fd_result r;
        fdd_alloc_fail_at(n);
        fdd_status st = fdd_frechet(ctx, d, mu, s1, mu, s1, &r, &e);
        fdd_alloc_fail_at(0);
        CHECK(st == FDD_OK || st == FDD_E_NOMEM, "allocation %ld: status %d", n, (int)st);
        ok = st == FDD_OK;
    }
    CHECK(ok, "never succeeded");
    fdd_ctx_free(ctx);
    free(s1); free(mu);
}

int main(void) {
    RUN(test_commuting_64);
    RUN(test_commuting_200);
    RUN(test_commuting_512);
    RUN(test_commuting_700);
    RUN(test_paths_identical);
    RUN(test_sizes);
    RUN(test_dgemm_identical);
    RUN(test_dkernels_identical);
    RUN(test_isa_identical);
    RUN(test_threads_identical);
    RUN(test_golden_full);
    RUN(test_golden_rank_deficient);
    RUN(test_scale_invariance);
    RUN(test_bad_input);
    RUN(test_alloc_failures);
    return test_summary("frechet");
}

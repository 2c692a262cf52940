/* test_stats.c — exact statistics: permutation/shard/thread invariance (bit
 * for bit), accuracy against a float64 two-pass computation, exact cases,
 * refusals, save/load/merge round trips and foreign (numpy) files. */
#include "test.h"
#include "fdd.h"
#include "stats.h"

#include <math.h>

#define D 24
#define N 150

static float feats[N * D];

static void make_feats(void) {
    uint64_t s = 42;
    for (size_t i = 0; i < N * D; i++) feats[i] = test_rng_float(&s) * (1.0f + (float)(i % D)) + 0.5f * (float)(i % 3);
}

static fdd_stats *accumulate(const size_t *order, size_t n, fdd_ctx *ctx, size_t batch) {
    fdd_stats *s;
    fdd_error e;
    if (fdd_stats_create(&s, D, &e) != FDD_OK) return NULL;
    float *buf = malloc(batch * D * sizeof(float));
    for (size_t i = 0; i < n; i += batch) {
        size_t m = n - i < batch ? n - i : batch;
        for (size_t k = 0; k < m; k++) memcpy(buf + k * D, feats + order[i + k] * D, D * sizeof(float));
        if (fdd_stats_add(s, ctx, buf, m, &e) != FDD_OK) { fdd_stats_free(s); free(buf); return NULL; }
    }
    free(buf);
    return s;
}

static void moments(const fdd_stats *s, double *mu, double *sg) {
    fdd_error e;
    fdd_status st = fdd_stats_moments(s, NULL, mu, sg, &e);
    if (st) fprintf(stderr, "%s\n", e.msg);
}

static void test_invariance(void) {
    size_t order[N], rev[N];
    for (size_t i = 0; i < N; i++) { order[i] = i; rev[i] = N - 1 - i; }
    uint64_t seed = 9;   /* a shuffled order too */
    size_t shuf[N];
    memcpy(shuf, order, sizeof shuf);
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = test_rng_next(&seed) % (i + 1), t = shuf[i];
        shuf[i] = shuf[j]; shuf[j] = t;
    }
    fdd_ctx *c2;
    fdd_error e;
    REQUIRE(fdd_ctx_create(&c2, 2, FDD_ISA_SCALAR, &e) == FDD_OK, "%s", e.msg);
    fdd_stats *a = accumulate(order, N, NULL, 7), *b = accumulate(rev, N, c2, 64), *c = accumulate(shuf, N, c2, 1);
    /* shards: shuffled order split in three, merged in reverse */
    fdd_stats *p1 = accumulate(shuf, 50, NULL, 33), *p2 = accumulate(shuf + 50, 60, c2, 5),
              *p3 = accumulate(shuf + 110, 40, NULL, 40);
    REQUIRE(a && b && c && p1 && p2 && p3, "accumulate failed");
    CHECK(fdd_stats_merge(p3, p2, &e) == FDD_OK, "%s", e.msg);
    CHECK(fdd_stats_merge(p3, p1, &e) == FDD_OK, "%s", e.msg);
    static double m[4][D], s[4][D * D];
    fdd_stats *all[4] = {a, b, c, p3};
    for (int k = 0; k < 4; k++) moments(all[k], m[k], s[k]);
    for (int k = 1; k < 4; k++) {
        CHECK(memcmp(m[0], m[k], sizeof m[0]) == 0, "mu differs for variant %d", k);
        CHECK(memcmp(s[0], s[k], sizeof s[0]) == 0, "sigma differs for variant %d", k);
    }
    CHECK(fdd_stats_count(p3) == N, "count %llu", (unsigned long long)fdd_stats_count(p3));
    /* accuracy against a float64 two-pass computation */
    double mu[D], maxs = 0, errm = 0, errs = 0;
    for (size_t j = 0; j < D; j++) {
        double t = 0;
        for (size_t i = 0; i < N; i++) t += feats[i * D + j];
        mu[j] = t / N;
        errm = fmax(errm, fabs(mu[j] - m[0][j]) / fmax(fabs(mu[j]), 1e-300));
    }
    for (size_t j = 0; j < D; j++)
        for (size_t k = 0; k < D; k++) {
            double t = 0;
            for (size_t i = 0; i < N; i++) t += (feats[i * D + j] - mu[j]) * (feats[i * D + k] - mu[k]);
            t /= N - 1;
            maxs = fmax(maxs, fabs(t));
            errs = fmax(errs, fabs(t - s[0][j * D + k]));
        }
    CHECK(errm <= 1e-12, "mu relative error %.2e", errm);
    CHECK(errs <= 1e-12 * maxs, "sigma error %.2e (max |sigma| %.3g)", errs / maxs, maxs);
    if (getenv("TEST_VERBOSE")) fprintf(stderr, "  mu rel err %.2e, sigma rel err %.2e\n", errm, errs / maxs);
    for (int k = 0; k < 4; k++) fdd_stats_free(all[k]);
    fdd_stats_free(p1);
    fdd_stats_free(p2);
    fdd_ctx_free(c2);
}

static void test_exact_small(void) {
    /* 3 images of 2 dims: exact mean 1/3 needs correct rounding. */
    float x[6] = {0, 1, 0, 2, 1, 6};
    fdd_stats *s;
    fdd_error e;
    REQUIRE(fdd_stats_create(&s, 2, &e) == FDD_OK, "%s", e.msg);
    REQUIRE(fdd_stats_add(s, NULL, x, 3, &e) == FDD_OK, "%s", e.msg);
    double mu[2], sg[4];
    REQUIRE(fdd_stats_moments(s, NULL, mu, sg, &e) == FDD_OK, "%s", e.msg);
    CHECK(mu[0] == 1.0 / 3 && mu[1] == 3.0, "mu %.17g %.17g", mu[0], mu[1]);
    /* var0 = 1/3, cov = 1.5, var1 = 7 */
    CHECK(sg[0] == 1.0 / 3 && sg[1] == 1.5 && sg[2] == 1.5 && sg[3] == 7.0, "sigma %.17g %.17g %.17g", sg[0], sg[1], sg[3]);
    fdd_stats_free(s);
}

static void test_refusals(void) {
    fdd_stats *s;
    fdd_error e;
    REQUIRE(fdd_stats_create(&s, 2, &e) == FDD_OK, "%s", e.msg);
    float big[2] = {0, 4194304.0f}, nan[2] = {NAN, 0}, ok[2] = {4194303.5f, -4194303.5f};
    CHECK(fdd_stats_add(s, NULL, big, 1, &e) == FDD_E_NUMERIC && strstr(e.msg, "2^22"), "%s", e.msg);
    CHECK(fdd_stats_add(s, NULL, nan, 1, &e) == FDD_E_NUMERIC, "NaN accepted");
    CHECK(fdd_stats_count(s) == 0, "refused rows counted");
    CHECK(fdd_stats_add(s, NULL, ok, 1, &e) == FDD_OK, "%s", e.msg);
    double sg[4];
    CHECK(fdd_stats_moments(s, NULL, NULL, sg, &e) == FDD_E_ARG, "covariance of one image accepted");
    fdd_stats_free(s);
    CHECK(fdd_stats_create(&s, 0, &e) == FDD_E_ARG, "dim 0 accepted");
    fdd_stats *t;
    fdd_alloc_fail_at(2);
    CHECK(fdd_stats_create(&t, 8, &e) == FDD_E_NOMEM, "allocation failure not reported");
    fdd_alloc_fail_at(0);
}

static void test_save_load_merge(void) {
    size_t order[N];
    for (size_t i = 0; i < N; i++) order[i] = i;
    fdd_stats *all = accumulate(order, N, NULL, 16), *h1 = accumulate(order, 70, NULL, 16),
              *h2 = accumulate(order + 70, N - 70, NULL, 16);
    REQUIRE(all && h1 && h2, "accumulate");
    fdd_error e;
    fdd_stats_set_identity(h1, "inception", "clean", &e);
    fdd_stats_set_identity(h2, "inception", "clean", &e);
    REQUIRE(fdd_stats_save(h1, NULL, "build/test_stats_h1.npz", 1, &e) == FDD_OK, "%s", e.msg);
    REQUIRE(fdd_stats_save(h2, NULL, "build/test_stats_h2.npz", 1, &e) == FDD_OK, "%s", e.msg);
    fdd_stats *l1, *l2;
    REQUIRE(fdd_stats_load("build/test_stats_h1.npz", &l1, &e) == FDD_OK, "%s", e.msg);
    REQUIRE(fdd_stats_load("build/test_stats_h2.npz", &l2, &e) == FDD_OK, "%s", e.msg);
    CHECK(fdd_stats_is_exact(l1) && strcmp(fdd_stats_model(l1), "inception") == 0 &&
          strcmp(fdd_stats_profile(l1), "clean") == 0, "identity lost");
    CHECK(fdd_stats_merge(l2, l1, &e) == FDD_OK, "%s", e.msg);
    static double m1[D], s1[D * D], m2[D], s2[D * D];
    moments(all, m1, s1);
    moments(l2, m2, s2);
    CHECK(memcmp(m1, m2, sizeof m1) == 0 && memcmp(s1, s2, sizeof s1) == 0, "merged files differ from one run");
    /* mismatched identity */
    fdd_stats_set_identity(h1, "dinov2", "clean", &e);
    CHECK(fdd_stats_merge(h1, l1, &e) == FDD_E_MISMATCH, "identity mismatch accepted");
    /* without sums: a plain mu/sigma file */
    REQUIRE(fdd_stats_save(all, NULL, "build/test_stats_plain.npz", 0, &e) == FDD_OK, "%s", e.msg);
    fdd_stats *pl;
    REQUIRE(fdd_stats_load("build/test_stats_plain.npz", &pl, &e) == FDD_OK, "%s", e.msg);
    CHECK(!fdd_stats_is_exact(pl), "plain file loaded as exact");
    moments(pl, m2, s2);
    CHECK(memcmp(m1, m2, sizeof m1) == 0 && memcmp(s1, s2, sizeof s1) == 0, "plain mu/sigma changed");
    CHECK(fdd_stats_merge(pl, l1, &e) == FDD_E_ARG, "merge without sums accepted");
    fdd_stats_free(all); fdd_stats_free(h1); fdd_stats_free(h2);
    fdd_stats_free(l1); fdd_stats_free(l2); fdd_stats_free(pl);
    remove("build/test_stats_h1.npz");
    remove("build/test_stats_h2.npz");
    remove("build/test_stats_plain.npz");
}

static void test_foreign_files(void) {
    const double mu[4] = {0.5, -1.25, 3.0, 0.125};
    const double sg[16] = {2.0, 0.5, 0, 0, 0.5, 1.0, 0.25, 0, 0, 0.25, 3.0, -1.0, 0, 0, -1.0, 4.0};
    const char *files[3] = {"tests/data/fd/pytorch_fid.npz", "tests/data/fd/clean_fid.npz",
                            "tests/data/fd/stored_f32.npz"};
    for (int f = 0; f < 3; f++) {
        fdd_stats *s;
        fdd_error e;
        CHECK(fdd_stats_load(files[f], &s, &e) == FDD_OK, "%s", e.msg);
        if (!s) continue;
        double m[4], g[16];
        CHECK(fdd_stats_dim(s) == 4, "dim %zu", fdd_stats_dim(s));
        moments(s, m, g);
        CHECK(memcmp(m, mu, sizeof m) == 0 && memcmp(g, sg, sizeof g) == 0, "%s: values differ", files[f]);
        fdd_stats_free(s);
    }
}

int main(void) {
    make_feats();
    RUN(test_invariance);
    RUN(test_exact_small);
    RUN(test_refusals);
    RUN(test_save_load_merge);
    RUN(test_foreign_files);
    return test_summary("stats");
}

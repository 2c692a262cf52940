/* test_gemm.c — GEMM accuracy against float64 and bit-identity of every ISA
 * path and thread count against the canonical fmaf chain. */
#include "test.h"
#include "gemm.h"

#include <math.h>

static fdd_ctx *ctxs[FDD_ISA_COUNT][5];   /* [isa][threads] */

static void fill(float *x, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) x[i] = test_rng_float(&seed);
}

/* The contract, written as plainly as possible. */
static void canonical(int ta, int tb, size_t M, size_t N, size_t K, const float *A, size_t lda,
                      const float *B, size_t ldb, float *C, size_t ldc) {
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            float acc = 0.0f;
            for (size_t k = 0; k < K; k++)
                acc = fmaf(ta ? A[k * lda + i] : A[i * lda + k], tb ? B[j * ldb + k] : B[k * ldb + j], acc);
            C[i * ldc + j] = acc;
        }
}

typedef struct { size_t m, n, k; } shape;

static void check_shape(shape s, int ta, int tb, bool check_f64) {
    size_t lda = (ta ? s.m : s.k) + 3, ldb = (tb ? s.k : s.n) + 1, ldc = s.n + 5;
    size_t arows = ta ? s.k : s.m, brows = tb ? s.n : s.k;
    float *A = malloc(sizeof(float) * (arows * lda + 1));
    float *B = malloc(sizeof(float) * (brows * ldb + 1));
    float *ref = malloc(sizeof(float) * (s.m * ldc + 1));
    float *C = malloc(sizeof(float) * (s.m * ldc + 1));
    fill(A, arows * lda, s.m * 31 + s.k);
    fill(B, brows * ldb, s.n * 17 + s.k + 5);
    canonical(ta, tb, s.m, s.n, s.k, A, lda, B, ldb, ref, ldc);

    if (check_f64) {   /* the chain is an accurate dot product */
        double worst = 0;
        for (size_t i = 0; i < s.m; i++)
            for (size_t j = 0; j < s.n; j++) {
                double d = 0, mag = 0;
                for (size_t k = 0; k < s.k; k++) {
                    double x = ta ? A[k * lda + i] : A[i * lda + k];
                    double y = tb ? B[j * ldb + k] : B[k * ldb + j];
                    d += x * y;
                    mag += fabs(x * y);
                }
                double e = fabs(ref[i * ldc + j] - d) / (mag * (double)s.k * 0x1p-24 + 1e-30);
                if (e > worst) worst = e;
            }
        CHECK(worst <= 1.0, "%zux%zux%zu: error %.3g x K*eps*sum|ab|", s.m, s.n, s.k, worst);
    }
    for (int isa = 0; isa < FDD_ISA_COUNT; isa++)
        for (int t = 1; t <= 4; t++) {
            if (!ctxs[isa][t]) continue;
            for (size_t i = 0; i < s.m * ldc; i++) C[i] = NAN;   /* gaps of ldc must stay */
            fdd_gemm(ctxs[isa][t], ta, tb, s.m, s.n, s.k, A, lda, B, ldb, C, ldc);
            bool same = true;
            for (size_t i = 0; i < s.m && same; i++)
                same = memcmp(C + i * ldc, ref + i * ldc, s.n * sizeof(float)) == 0;
            CHECK(same, "%s with %d threads differs from the canonical chain: %zux%zux%zu ta=%d tb=%d",
                  fdd_isa_name((fdd_isa)isa), t, s.m, s.n, s.k, ta, tb);
            bool gaps = true;
            for (size_t i = 0; i + 1 < s.m; i++)
                for (size_t j = s.n; j < ldc; j++) gaps = gaps && isnan(C[i * ldc + j]);
            CHECK(gaps, "%s wrote outside C", fdd_isa_name((fdd_isa)isa));
        }
    free(A); free(B); free(ref); free(C);
}

static void test_shapes(void) {
    static const shape shapes[] = {
        {1, 1, 1}, {1, 1, 0}, {2, 3, 1}, {1, 37, 5}, {37, 1, 5}, {13, 17, 19}, {14, 32, 256},
        {15, 33, 257}, {29, 65, 513}, {6, 16, 1000}, {100, 7, 300}, {3, 2000, 11}, {2000, 3, 11},
        {197, 96, 64}, {64, 289, 288}, {170, 1030, 40},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int t = 0; t < 4; t++) check_shape(shapes[i], t & 1, t >> 1, true);
}

static void test_large(void) {
    /* Inception- and ViT-like sizes: K in the thousands, many tiles. */
    check_shape((shape){192, 1225, 1728}, 0, 0, false);
    check_shape((shape){394, 384, 1536}, 0, 1, false);
}

static void test_epilogue(void) {
    size_t M = 23, N = 45, K = 300;
    float *A = malloc(M * K * 4), *B = malloc(K * N * 4), *C0 = malloc(M * N * 4);
    float *C = malloc(M * N * 4), *ref = malloc(M * N * 4), rb[23], cb[45];
    fill(A, M * K, 1); fill(B, K * N, 2); fill(C0, M * N, 3); fill(rb, M, 4); fill(cb, N, 5);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            float acc = C0[i * N + j];
            for (size_t k = 0; k < K; k++) acc = fmaf(A[i * K + k], B[k * N + j], acc);
            acc = acc + rb[i];
            acc = acc + cb[j];
            ref[i * N + j] = acc > 0 ? acc : 0;
        }
    fdd_matrix a = {A, K, false}, b = {B, N, false};
    for (int isa = 0; isa < FDD_ISA_COUNT; isa++)
        for (int t = 1; t <= 4; t++) {
            if (!ctxs[isa][t]) continue;
            memcpy(C, C0, M * N * 4);
            fdd_gemm_op op = {.m = M, .n = N, .k = K, .pack_a = fdd_pack_a_matrix, .a_arg = &a,
                              .pack_b = fdd_pack_b_matrix, .b_arg = &b, .c = C, .ldc = N,
                              .accumulate = true, .row_bias = rb, .col_bias = cb, .relu = true};
            fdd_error err;
            CHECK(fdd_gemm_run(ctxs[isa][t], &op, &err) == FDD_OK, "%s", err.msg);
            CHECK(memcmp(C, ref, M * N * 4) == 0, "epilogue differs on %s/%d threads",
                  fdd_isa_name((fdd_isa)isa), t);
        }
    free(A); free(B); free(C0); free(C); free(ref);
}

static void test_isa_parse(void) {
    CHECK(fdd_isa_parse("avx512") == FDD_ISA_AVX512, "parse avx512");
    CHECK(fdd_isa_parse("bogus") == FDD_ISA_COUNT, "parse bogus");
    CHECK(fdd_isa_available(FDD_ISA_SCALAR), "scalar always available");
    fdd_ctx *c = NULL;
    fdd_error err;
    if (!fdd_isa_available(FDD_ISA_NEON))
        CHECK(fdd_ctx_create(&c, 1, FDD_ISA_NEON, &err) == FDD_E_UNSUPPORTED && !c,
              "an unavailable ISA is refused");
}

int main(void) {
    int navail = 0;
    for (int isa = 0; isa < FDD_ISA_COUNT; isa++) {
        if (!fdd_isa_available((fdd_isa)isa)) continue;
        navail++;
        for (int t = 1; t <= 4; t++) {
            fdd_error err;
            if (fdd_ctx_create(&ctxs[isa][t], t, (fdd_isa)isa, &err) != FDD_OK) {
                fprintf(stderr, "ctx: %s\n", err.msg);
                return 1;
            }
        }
    }
    fprintf(stderr, "  gemm: testing %d ISA paths (best: %s)\n", navail, fdd_isa_name(fdd_isa_best()));
    RUN(test_isa_parse);
    RUN(test_shapes);
    RUN(test_epilogue);
    RUN(test_large);
    for (int isa = 0; isa < FDD_ISA_COUNT; isa++)
        for (int t = 1; t <= 4; t++) fdd_ctx_free(ctxs[isa][t]);
    return test_summary("gemm");
}

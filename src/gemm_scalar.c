/* gemm_scalar.c — the portable micro-kernel.  It is the fallback on every
 * CPU and the oracle the SIMD kernels are tested against bit for bit: each
 * element is one fmaf chain over k, exactly the contract in gemm.h. */
#include "gemm.h"

#define MR 4
#define NR 8

static void ukernel_scalar(size_t kc, const float *Ap, const float *Bp, float *c, size_t ldc,
                           int load_c) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = load_c ? c[i * ldc + j] : 0.0f;
    for (size_t k = 0; k < kc; k++, Ap += MR, Bp += NR)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] = fmaf(Ap[i], Bp[j], acc[i][j]);
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) c[i * ldc + j] = acc[i][j];
}

static uint64_t peak_scalar(uint64_t iters, float *sink) {
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const float x = 0.999999f, y = 1e-7f;
    for (uint64_t it = 0; it < iters; it++)
        for (int i = 0; i < 8; i++) a[i] = fmaf(a[i], x, y);
    float s = 0;
    for (int i = 0; i < 8; i++) s += a[i];
    *sink = s;
    return iters * 8;
}

const fdd_gemm_kernel fdd_kernel_scalar = {FDD_ISA_SCALAR, MR, NR, ukernel_scalar, peak_scalar};

/* ---- double: the portable 4 x 8 kernel of src/dgemm.c and the oracle of
 * the SIMD ones: each element one fma() chain over k. */
static void dukernel_scalar(size_t kc, const double *Ap, const double *Bp, size_t ldb,
                            double *c, size_t ldc, int load_c) {
    double acc[4][8];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) acc[i][j] = load_c ? c[i * ldc + j] : 0.0;
    for (size_t k = 0; k < kc; k++, Ap += 4, Bp += ldb)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++) acc[i][j] = fma(Ap[i], Bp[j], acc[i][j]);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) c[i * ldc + j] = acc[i][j];
}
static void ddot_scalar(size_t K, const double *a, size_t lda, const double *b, size_t ldb, double *acc,
                        int load) {
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double *c = acc + (4 * i + j) * 8;
            if (!load)
                for (int l = 0; l < 8; l++) c[l] = 0.0;
            for (size_t k = 0; k < K; k += 8)
                for (int l = 0; l < 8; l++) c[l] = fma(a[i * lda + k + l], b[j * ldb + k + l], c[l]);
        }
}
static void drot_scalar(size_t n, double *x, double *y, double c, double s) {
    for (size_t k = 0; k < n; k++) {
        double a = x[k], b = y[k];
        x[k] = c * a - s * b;
        y[k] = s * a + c * b;
    }
}
const fdd_dgemm_kernel fdd_dkernel_scalar = {FDD_ISA_SCALAR, 4, 8, dukernel_scalar, ddot_scalar, drot_scalar};
/* ---- end double */

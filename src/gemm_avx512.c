/* gemm_avx512.c — AVX-512F micro-kernel, 14 x 32: twenty-eight zmm
 * accumulators, two B vectors and a broadcast A element per row (folded into
 * the FMA as an embedded broadcast).  Built with -mavx512f; called only when
 * CPUID and XCR0 allow.  Same chains as the scalar kernel. */
#include "gemm.h"

#if defined(__x86_64__) && defined(__AVX512F__)
#include <immintrin.h>

#define MR 14
#define NR 32

static void ukernel_avx512(size_t kc, const float *Ap, const float *Bp, float *c, size_t ldc,
                           int load_c) {
    __m512 acc[MR][2];
    if (load_c) {
        for (int i = 0; i < MR; i++) {
            acc[i][0] = _mm512_loadu_ps(c + i * ldc);
            acc[i][1] = _mm512_loadu_ps(c + i * ldc + 16);
        }
    } else {
        for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    }
    for (size_t k = 0; k < kc; k++, Ap += MR, Bp += NR) {
        __m512 b0 = _mm512_load_ps(Bp), b1 = _mm512_load_ps(Bp + 16);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_set1_ps(Ap[i]);
            acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_ps(c + i * ldc, acc[i][0]);
        _mm512_storeu_ps(c + i * ldc + 16, acc[i][1]);
    }
}

static uint64_t peak_avx512(uint64_t iters, float *sink) {
    __m512 a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (uint64_t it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    *sink = _mm512_reduce_add_ps(s);
    return iters * 12 * 16;
}

const fdd_gemm_kernel fdd_kernel_avx512 = {FDD_ISA_AVX512, MR, NR, ukernel_avx512, peak_avx512};
#else
const fdd_gemm_kernel fdd_kernel_avx512 = {FDD_ISA_AVX512, 14, 32, NULL, NULL};
#endif

/* ---- double: 8 x 24 micro-kernel for src/dgemm.c (24 zmm accumulators,
 * three B vectors, a broadcast A element per row).  Same chains as the
 * scalar double kernel. */
#if defined(__x86_64__) && defined(__AVX512F__)
static void dukernel_avx512(size_t kc, const double *Ap, const double *Bp, size_t ldb,
                            double *c, size_t ldc, int load_c) {
    __m512d acc[8][3];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 3; j++)
            acc[i][j] = load_c ? _mm512_loadu_pd(c + i * ldc + 8 * j) : _mm512_setzero_pd();
    for (size_t k = 0; k < kc; k++, Ap += 8, Bp += ldb) {
        __m512d b0 = _mm512_loadu_pd(Bp), b1 = _mm512_loadu_pd(Bp + 8), b2 = _mm512_loadu_pd(Bp + 16);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            __m512d a = _mm512_set1_pd(Ap[i]);
            acc[i][0] = _mm512_fmadd_pd(a, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_pd(a, b1, acc[i][1]);
            acc[i][2] = _mm512_fmadd_pd(a, b2, acc[i][2]);
        }
    }
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 3; j++) _mm512_storeu_pd(c + i * ldc + 8 * j, acc[i][j]);
}

/* 4 x 4 dot products (gemm.h's order): sixteen zmm chains, lane l = k mod 8,
 * written out so that they stay in registers. */
#define DDOT_ROW(i)                                                              \
    {                                                                            \
        __m512d av = _mm512_loadu_pd(a + (i) * lda + k);                          \
        c##i##0 = _mm512_fmadd_pd(av, b0, c##i##0);                                \
        c##i##1 = _mm512_fmadd_pd(av, b1, c##i##1);                                \
        c##i##2 = _mm512_fmadd_pd(av, b2, c##i##2);                                \
        c##i##3 = _mm512_fmadd_pd(av, b3, c##i##3);                                \
    }
static void ddot_avx512(size_t K, const double *a, size_t lda, const double *b, size_t ldb, double *acc,
                        int load) {
#define L(i, j) (load ? _mm512_loadu_pd(acc + (4 * (i) + (j)) * 8) : _mm512_setzero_pd())
    __m512d c00 = L(0, 0), c01 = L(0, 1), c02 = L(0, 2), c03 = L(0, 3), c10 = L(1, 0), c11 = L(1, 1),
            c12 = L(1, 2), c13 = L(1, 3), c20 = L(2, 0), c21 = L(2, 1), c22 = L(2, 2), c23 = L(2, 3),
            c30 = L(3, 0), c31 = L(3, 1), c32 = L(3, 2), c33 = L(3, 3);
#undef L
    for (size_t k = 0; k < K; k += 8) {
        __m512d b0 = _mm512_loadu_pd(b + k), b1 = _mm512_loadu_pd(b + ldb + k),
                b2 = _mm512_loadu_pd(b + 2 * ldb + k), b3 = _mm512_loadu_pd(b + 3 * ldb + k);
        DDOT_ROW(0) DDOT_ROW(1) DDOT_ROW(2) DDOT_ROW(3)
    }
#define S(i, j) _mm512_storeu_pd(acc + (4 * (i) + (j)) * 8, c##i##j);
    S(0, 0) S(0, 1) S(0, 2) S(0, 3) S(1, 0) S(1, 1) S(1, 2) S(1, 3)
    S(2, 0) S(2, 1) S(2, 2) S(2, 3) S(3, 0) S(3, 1) S(3, 2) S(3, 3)
#undef S
}
#undef DDOT_ROW
static void drot_avx512(size_t n, double *x, double *y, double c, double s) {
    __m512d cv = _mm512_set1_pd(c), sv = _mm512_set1_pd(s);
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m512d a = _mm512_loadu_pd(x + k), b = _mm512_loadu_pd(y + k);
        _mm512_storeu_pd(x + k, _mm512_sub_pd(_mm512_mul_pd(cv, a), _mm512_mul_pd(sv, b)));
        _mm512_storeu_pd(y + k, _mm512_add_pd(_mm512_mul_pd(sv, a), _mm512_mul_pd(cv, b)));
    }
    for (; k < n; k++) {
        double a = x[k], b = y[k];
        x[k] = c * a - s * b;
        y[k] = s * a + c * b;
    }
}
const fdd_dgemm_kernel fdd_dkernel_avx512 = {FDD_ISA_AVX512, 8, 24, dukernel_avx512, ddot_avx512, drot_avx512};
#else
const fdd_dgemm_kernel fdd_dkernel_avx512 = {FDD_ISA_AVX512, 8, 24, NULL, NULL, NULL};
#endif
/* ---- end double */

/* gemm_avx2.c — AVX2+FMA micro-kernel, 6 x 16: twelve ymm accumulators,
 * two B vectors and one broadcast per k.  Built with -mavx2 -mfma; called
 * only when CPUID says the CPU and OS support it.  Same chains as the
 * scalar kernel: vfmadd231ps computes a*b+c with one rounding, like fmaf. */
#include "gemm.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#define MR 6
#define NR 16

static void ukernel_avx2(size_t kc, const float *Ap, const float *Bp, float *c, size_t ldc,
                         int load_c) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (load_c) {
        c00 = _mm256_loadu_ps(c + 0 * ldc); c01 = _mm256_loadu_ps(c + 0 * ldc + 8);
        c10 = _mm256_loadu_ps(c + 1 * ldc); c11 = _mm256_loadu_ps(c + 1 * ldc + 8);
        c20 = _mm256_loadu_ps(c + 2 * ldc); c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
        c30 = _mm256_loadu_ps(c + 3 * ldc); c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
        c40 = _mm256_loadu_ps(c + 4 * ldc); c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
        c50 = _mm256_loadu_ps(c + 5 * ldc); c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
    } else {
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    }
    for (size_t k = 0; k < kc; k++, Ap += MR, Bp += NR) {
        __m256 b0 = _mm256_load_ps(Bp), b1 = _mm256_load_ps(Bp + 8), a;
        a = _mm256_broadcast_ss(Ap + 0); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(Ap + 1); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(Ap + 2); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(Ap + 3); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(Ap + 4); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(Ap + 5); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
    }
    _mm256_storeu_ps(c + 0 * ldc, c00); _mm256_storeu_ps(c + 0 * ldc + 8, c01);
    _mm256_storeu_ps(c + 1 * ldc, c10); _mm256_storeu_ps(c + 1 * ldc + 8, c11);
    _mm256_storeu_ps(c + 2 * ldc, c20); _mm256_storeu_ps(c + 2 * ldc + 8, c21);
    _mm256_storeu_ps(c + 3 * ldc, c30); _mm256_storeu_ps(c + 3 * ldc + 8, c31);
    _mm256_storeu_ps(c + 4 * ldc, c40); _mm256_storeu_ps(c + 4 * ldc + 8, c41);
    _mm256_storeu_ps(c + 5 * ldc, c50); _mm256_storeu_ps(c + 5 * ldc + 8, c51);
}

/* Ten independent chains cover the FMA latency x throughput product. */
static uint64_t peak_avx2(uint64_t iters, float *sink) {
    __m256 a[10];
    for (int i = 0; i < 10; i++) a[i] = _mm256_set1_ps((float)i);
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (uint64_t it = 0; it < iters; it++)
        for (int i = 0; i < 10; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
    __m256 s = a[0];
    for (int i = 1; i < 10; i++) s = _mm256_add_ps(s, a[i]);
    *sink = _mm256_cvtss_f32(s);
    return iters * 10 * 8;
}

const fdd_gemm_kernel fdd_kernel_avx2 = {FDD_ISA_AVX2, MR, NR, ukernel_avx2, peak_avx2};
#else
const fdd_gemm_kernel fdd_kernel_avx2 = {FDD_ISA_AVX2, 6, 16, NULL, NULL};
#endif

/* ---- double: 4 x 12 micro-kernel for src/dgemm.c (12 ymm accumulators,
 * three B vectors, one broadcast).  Same chains as the scalar double kernel. */
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
static void dukernel_avx2(size_t kc, const double *Ap, const double *Bp, size_t ldb,
                          double *c, size_t ldc, int load_c) {
    __m256d acc[4][3];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            acc[i][j] = load_c ? _mm256_loadu_pd(c + i * ldc + 4 * j) : _mm256_setzero_pd();
    for (size_t k = 0; k < kc; k++, Ap += 4, Bp += ldb) {
        __m256d b0 = _mm256_loadu_pd(Bp), b1 = _mm256_loadu_pd(Bp + 4), b2 = _mm256_loadu_pd(Bp + 8);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m256d a = _mm256_broadcast_sd(Ap + i);
            acc[i][0] = _mm256_fmadd_pd(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_pd(a, b1, acc[i][1]);
            acc[i][2] = _mm256_fmadd_pd(a, b2, acc[i][2]);
        }
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) _mm256_storeu_pd(c + i * ldc + 4 * j, acc[i][j]);
}

/* 4 x 4 dot products (gemm.h's order) as four 2 x 2 tiles: lanes 0-3 and
 * 4-7 of each chain in two ymm registers, written out so that the eight
 * chains stay in registers. */
static void ddot_avx2(size_t K, const double *a, size_t lda, const double *b, size_t ldb, double *acc,
                      int load) {
    for (int i0 = 0; i0 < 4; i0 += 2)
        for (int j0 = 0; j0 < 4; j0 += 2) {
            double *p00 = acc + (4 * i0 + j0) * 8, *p01 = p00 + 8, *p10 = p00 + 32, *p11 = p10 + 8;
            __m256d l00 = _mm256_setzero_pd(), h00 = l00, l01 = l00, h01 = l00, l10 = l00, h10 = l00, l11 = l00,
                    h11 = l00;
            if (load) {
                l00 = _mm256_loadu_pd(p00), h00 = _mm256_loadu_pd(p00 + 4);
                l01 = _mm256_loadu_pd(p01), h01 = _mm256_loadu_pd(p01 + 4);
                l10 = _mm256_loadu_pd(p10), h10 = _mm256_loadu_pd(p10 + 4);
                l11 = _mm256_loadu_pd(p11), h11 = _mm256_loadu_pd(p11 + 4);
            }
            const double *a0 = a + i0 * lda, *a1 = a0 + lda, *b0 = b + j0 * ldb, *b1 = b0 + ldb;
            for (size_t k = 0; k < K; k += 8) {
                __m256d bl0 = _mm256_loadu_pd(b0 + k), bh0 = _mm256_loadu_pd(b0 + k + 4);
                __m256d bl1 = _mm256_loadu_pd(b1 + k), bh1 = _mm256_loadu_pd(b1 + k + 4);
                __m256d al = _mm256_loadu_pd(a0 + k), ah = _mm256_loadu_pd(a0 + k + 4);
                l00 = _mm256_fmadd_pd(al, bl0, l00), h00 = _mm256_fmadd_pd(ah, bh0, h00);
                l01 = _mm256_fmadd_pd(al, bl1, l01), h01 = _mm256_fmadd_pd(ah, bh1, h01);
                al = _mm256_loadu_pd(a1 + k), ah = _mm256_loadu_pd(a1 + k + 4);
                l10 = _mm256_fmadd_pd(al, bl0, l10), h10 = _mm256_fmadd_pd(ah, bh0, h10);
                l11 = _mm256_fmadd_pd(al, bl1, l11), h11 = _mm256_fmadd_pd(ah, bh1, h11);
            }
            _mm256_storeu_pd(p00, l00), _mm256_storeu_pd(p00 + 4, h00);
            _mm256_storeu_pd(p01, l01), _mm256_storeu_pd(p01 + 4, h01);
            _mm256_storeu_pd(p10, l10), _mm256_storeu_pd(p10 + 4, h10);
            _mm256_storeu_pd(p11, l11), _mm256_storeu_pd(p11 + 4, h11);
        }
}

static void drot_avx2(size_t n, double *x, double *y, double c, double s) {
    __m256d cv = _mm256_set1_pd(c), sv = _mm256_set1_pd(s);
    size_t k = 0;
    for (; k + 4 <= n; k += 4) {
        __m256d a = _mm256_loadu_pd(x + k), b = _mm256_loadu_pd(y + k);
        _mm256_storeu_pd(x + k, _mm256_sub_pd(_mm256_mul_pd(cv, a), _mm256_mul_pd(sv, b)));
        _mm256_storeu_pd(y + k, _mm256_add_pd(_mm256_mul_pd(sv, a), _mm256_mul_pd(cv, b)));
    }
    for (; k < n; k++) {
        double a = x[k], b = y[k];
        x[k] = c * a - s * b;
        y[k] = s * a + c * b;
    }
}
const fdd_dgemm_kernel fdd_dkernel_avx2 = {FDD_ISA_AVX2, 4, 12, dukernel_avx2, ddot_avx2, drot_avx2};
#else
const fdd_dgemm_kernel fdd_dkernel_avx2 = {FDD_ISA_AVX2, 4, 12, NULL, NULL, NULL};
#endif
/* ---- end double */

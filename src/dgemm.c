/* dgemm.c — the float64 GEMM driver (the Fréchet distance's products, block
 * Householder updates and block Jacobi rotations).
 *
 * Canonical arithmetic, as the float GEMM (src/gemm.c): C(i,j) is the chain
 *     acc = accumulate ? C(i,j) : +0.0;  for k = 0..K-1: acc = fma(s·A(i,k), B(k,j), acc)
 * The micro-kernels carry the chain across K blocks by reloading C, block
 * sizes and tile shapes never change a bit, and threads own whole tiles of C
 * (never a K range): every ISA and thread count gives the same bits. */
#include "gemm.h"

const fdd_dgemm_kernel *fdd_dgemm_kernel_for(fdd_isa isa) {
    const fdd_dgemm_kernel *k = NULL;
    if (isa == FDD_ISA_AVX512) k = &fdd_dkernel_avx512;
    else if (isa == FDD_ISA_AVX2) k = &fdd_dkernel_avx2;
    return k && k->fn ? k : &fdd_dkernel_scalar;
}

/* Block sizes (speed only): a KC x NR panel of B in L1, MC x KC of A in L2,
 * KC x NC of B in L2/L3.  MC and NC are multiples of every MR and NR. */
enum { DKC = 256, DMC = 120, DNC = 960 };

size_t fdd_dgemm_ws_doubles(const fdd_dgemm_kernel *k) {
    (void)k;
    return (size_t)DMC * DKC + (size_t)DKC * DNC + 64 * 64;
}

/* op(A) rows [i0,i0+mc) x cols [k0,k0+kc) into MR-row panels, negated if neg. */
static void pack_a(const double *A, size_t lda, int ta, int neg, size_t i0, size_t mc, size_t k0,
                   size_t kc, size_t mr, double *dst) {
    double s = neg ? -1.0 : 1.0;
    for (size_t p = 0; p < mc; p += mr, dst += kc * mr) {
        size_t rows = mc - p < mr ? mc - p : mr;
        if (!ta) {
            for (size_t r = 0; r < rows; r++) {
                const double *src = A + (i0 + p + r) * lda + k0;
                for (size_t k = 0; k < kc; k++) dst[k * mr + r] = s * src[k];
            }
        } else {
            for (size_t k = 0; k < kc; k++) {
                const double *src = A + (k0 + k) * lda + i0 + p;
                for (size_t r = 0; r < rows; r++) dst[k * mr + r] = s * src[r];
            }
        }
        for (size_t r = rows; r < mr; r++)
            for (size_t k = 0; k < kc; k++) dst[k * mr + r] = 0.0;
    }
}

/* op(B) rows [k0,k0+kc) x cols [j0,j0+nc) into NR-column panels. */
static void pack_b(const double *B, size_t ldb, int tb, size_t k0, size_t kc, size_t j0, size_t nc,
                   size_t nr, double *dst) {
    for (size_t q = 0; q < nc; q += nr, dst += kc * nr) {
        size_t cols = nc - q < nr ? nc - q : nr;
        if (!tb) {
            for (size_t k = 0; k < kc; k++) {
                const double *src = B + (k0 + k) * ldb + j0 + q;
                double *d = dst + k * nr;
                memcpy(d, src, cols * sizeof(double));
                for (size_t c = cols; c < nr; c++) d[c] = 0.0;
            }
        } else {
            for (size_t c = 0; c < cols; c++) {
                const double *src = B + (j0 + q + c) * ldb + k0;
                for (size_t k = 0; k < kc; k++) dst[k * nr + c] = src[k];
            }
            for (size_t k = 0; k < kc; k++)
                for (size_t c = cols; c < nr; c++) dst[k * nr + c] = 0.0;
        }
    }
}

void fdd_dgemm_st(const fdd_dgemm_kernel *kern, int ta, int tb, size_t M, size_t N, size_t K, int neg,
                  const double *A, size_t lda, const double *B, size_t ldb, double *C, size_t ldc,
                  int acc, double *ws) {
    if (M == 0 || N == 0) return;
    const size_t MR = (size_t)kern->mr, NR = (size_t)kern->nr;
    double *pa = ws, *pb = ws + (size_t)DMC * DKC, *t = pb + (size_t)DKC * DNC;
    if (K == 0) {
        if (!acc)
            for (size_t i = 0; i < M; i++) memset(C + i * ldc, 0, N * sizeof(double));
        return;
    }
    for (size_t j0 = 0; j0 < N; j0 += DNC) {
        size_t nc = N - j0 < DNC ? N - j0 : DNC;
        for (size_t k0 = 0; k0 < K; k0 += DKC) {
            size_t kc = K - k0 < DKC ? K - k0 : DKC;
            int load = k0 > 0 || acc;
            pack_b(B, ldb, tb, k0, kc, j0, nc, NR, pb);
            for (size_t i0 = 0; i0 < M; i0 += DMC) {
                size_t mc = M - i0 < DMC ? M - i0 : DMC;
                pack_a(A, lda, ta, neg, i0, mc, k0, kc, MR, pa);
                for (size_t jj = 0; jj < nc; jj += NR) {
                    size_t nr = nc - jj < NR ? nc - jj : NR;
                    const double *bp = pb + (jj / NR) * kc * NR;
                    for (size_t ii = 0; ii < mc; ii += MR) {
                        size_t mr = mc - ii < MR ? mc - ii : MR;
                        const double *ap = pa + (ii / MR) * kc * MR;
                        double *c = C + (i0 + ii) * ldc + j0 + jj;
                        if (mr == MR && nr == NR) {
                            kern->fn(kc, ap, bp, NR, c, ldc, load);
                            continue;
                        }
                        /* Edge tile: the full kernel on a scratch tile. */
                        if (load)
                            for (size_t i = 0; i < MR; i++)
                                for (size_t j = 0; j < NR; j++)
                                    t[i * NR + j] = i < mr && j < nr ? c[i * ldc + j] : 0.0;
                        kern->fn(kc, ap, bp, NR, t, NR, load);
                        for (size_t i = 0; i < mr; i++) memcpy(c + i * ldc, t + i * NR, nr * sizeof(double));
                    }
                }
            }
        }
    }
}

typedef struct djob {
    const fdd_dgemm_kernel *k;
    int ta, tb, neg, acc;
    size_t M, N, K, tm, tn, tasks_n;
    const double *A, *B;
    size_t lda, ldb, ldc;
    double *C, *ws;
    size_t wsd;
} djob;

static void dtask(void *arg, size_t task, int thread) {
    const djob *j = arg;
    size_t m0 = (task / j->tasks_n) * j->tm, n0 = (task % j->tasks_n) * j->tn;
    size_t m = j->M - m0 < j->tm ? j->M - m0 : j->tm, n = j->N - n0 < j->tn ? j->N - n0 : j->tn;
    const double *A = j->ta ? j->A + m0 : j->A + m0 * j->lda;
    const double *B = j->tb ? j->B + n0 * j->ldb : j->B + n0;
    fdd_dgemm_st(j->k, j->ta, j->tb, m, n, j->K, j->neg, A, j->lda, B, j->ldb, j->C + m0 * j->ldc + n0,
                 j->ldc, j->acc, j->ws + (size_t)thread * j->wsd);
}

fdd_status fdd_dgemm(fdd_ctx *ctx, int ta, int tb, size_t M, size_t N, size_t K, int neg,
                     const double *A, size_t lda, const double *B, size_t ldb, double *C, size_t ldc,
                     int acc, double *ws, fdd_error *err) {
    if (M == 0 || N == 0) return FDD_OK;
    const fdd_dgemm_kernel *k = fdd_dgemm_kernel_for(fdd_ctx_isa(ctx));
    size_t nt = (size_t)fdd_ctx_threads(ctx), MR = (size_t)k->mr, NR = (size_t)k->nr;
    /* Tasks: column ranges (B packed once per task), or row ranges when N is
     * narrow; about two per thread.  Speed only: tiles never split K. */
    size_t tm = M, tn = N;
    if (nt > 1) {
        size_t want = 2 * nt, np = (N + NR - 1) / NR, mp = (M + MR - 1) / MR;
        if (np >= want || N >= M) tn = ((np + want - 1) / want) * NR;
        else tm = ((mp + want - 1) / want) * MR;
    }
    djob j = {k, ta, tb, neg, acc, M, N, K, tm, tn, (N + tn - 1) / tn, A, B, lda, ldb, ldc, C, NULL,
              fdd_dgemm_ws_doubles(k)};
    j.ws = ws;
    if (!ws) {
        size_t bytes;
        if (!fdd_mul_ok(j.wsd * sizeof(double), nt, &bytes))
            return fdd_fail(err, FDD_E_NOMEM, "dgemm: workspace size overflows");
        j.ws = fdd_aligned_alloc(bytes);
        if (!j.ws) return fdd_fail(err, FDD_E_NOMEM, "dgemm: cannot allocate %zu bytes", bytes);
    }
    fdd_parallel(ctx, dtask, &j, ((M + tm - 1) / tm) * j.tasks_n);
    if (!ws) fdd_aligned_free(j.ws);
    return FDD_OK;
}

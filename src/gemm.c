/* gemm.c — the GEMM driver: cache blocking, packing, threading, epilogue.
 *
 * Canonical arithmetic (docs/reproducibility.md): C(i,j) is the chain
 *     acc = accumulate ? C(i,j) : +0.0f;
 *     for k = 0..K-1:  acc = fma(A(i,k), B(k,j), acc)
 * followed by the epilogue, in this order: + row_bias[i], + col_bias[j], ReLU.
 * The micro-kernels carry the chain across K blocks by reloading C into their
 * accumulators, so block sizes and micro-kernel shapes never change a bit;
 * threads own whole tiles of C and never split K.
 *
 * Structure (BLIS): a task is a region of C (a range of columns, or of rows
 * when N is narrow).  For each NC x KC block of B the task packs it once into
 * NR-wide panels, then for each MC x KC block of A packs it into MR-tall
 * panels (zero padded at the edges) and runs the micro-kernel over the
 * MR x NR tiles.  Packing through callbacks lets convolutions feed im2col
 * patches straight into the packed panels (implicit GEMM). */
#include "gemm.h"

#include <stdlib.h>

const fdd_gemm_kernel *fdd_gemm_kernel_for(fdd_isa isa) {
    switch (isa) {
    case FDD_ISA_SCALAR: return &fdd_kernel_scalar;
    case FDD_ISA_AVX2: return &fdd_kernel_avx2;
    case FDD_ISA_AVX512: return &fdd_kernel_avx512;
    case FDD_ISA_NEON: return &fdd_kernel_neon;
    default: return NULL;
    }
}

/* ---------------------------------------------------------------- packing */

/* Packs rows [i0, i0+mc) x cols [k0, k0+kc) of op(A) into MR-row panels:
 * dst[panel][k*MR + r]. */
void fdd_pack_a_matrix(const void *arg, size_t i0, size_t mc, size_t k0, size_t kc, int mr,
                       float *dst) {
    const fdd_matrix *m = arg;
    for (size_t p = 0; p < mc; p += (size_t)mr, dst += kc * (size_t)mr) {
        size_t rows = mc - p < (size_t)mr ? mc - p : (size_t)mr;
        if (!m->trans) {          /* A(i,k) = a[i*ld + k]: mr sequential streams */
            const float *src[32];
            FDD_ASSERT(rows <= 32);
            for (size_t r = 0; r < rows; r++) src[r] = m->data + (i0 + p + r) * m->ld + k0;
            if (rows == (size_t)mr) {
                for (size_t k = 0; k < kc; k++)
                    for (size_t r = 0; r < (size_t)mr; r++) dst[k * (size_t)mr + r] = src[r][k];
            } else {
                for (size_t k = 0; k < kc; k++)
                    for (size_t r = 0; r < rows; r++) dst[k * (size_t)mr + r] = src[r][k];
            }
        } else {                  /* A(i,k) = a[k*ld + i] */
            for (size_t k = 0; k < kc; k++) {
                const float *src = m->data + (k0 + k) * m->ld + i0 + p;
                for (size_t r = 0; r < rows; r++) dst[k * (size_t)mr + r] = src[r];
            }
        }
        for (size_t r = rows; r < (size_t)mr; r++)
            for (size_t k = 0; k < kc; k++) dst[k * (size_t)mr + r] = 0.0f;
    }
}

/* Packs rows [k0, k0+kc) x cols [j0, j0+nc) of op(B) into NR-column panels:
 * dst[panel][k*NR + c]. */
void fdd_pack_b_matrix(const void *arg, size_t k0, size_t kc, size_t j0, size_t nc, int nr,
                       float *dst) {
    const fdd_matrix *m = arg;
    for (size_t q = 0; q < nc; q += (size_t)nr, dst += kc * (size_t)nr) {
        size_t cols = nc - q < (size_t)nr ? nc - q : (size_t)nr;
        if (!m->trans) {          /* B(k,j) = b[k*ld + j] */
            for (size_t k = 0; k < kc; k++) {
                const float *src = m->data + (k0 + k) * m->ld + j0 + q;
                float *d = dst + k * (size_t)nr;
                memcpy(d, src, cols * sizeof(float));
                for (size_t c = cols; c < (size_t)nr; c++) d[c] = 0.0f;
            }
        } else {                  /* B(k,j) = b[j*ld + k] */
            for (size_t c = 0; c < cols; c++) {
                const float *src = m->data + (j0 + q + c) * m->ld + k0;
                for (size_t k = 0; k < kc; k++) dst[k * (size_t)nr + c] = src[k];
            }
            for (size_t k = 0; k < kc; k++)
                for (size_t c = cols; c < (size_t)nr; c++) dst[k * (size_t)nr + c] = 0.0f;
        }
    }
}

/* ----------------------------------------------------------------- driver */

/* Block sizes: KC x NR micro-panels of B stay in L1, MC x KC blocks of A
 * in L2, KC x NC blocks of B in L2/L3.  They affect speed only. */
#ifndef FDD_GEMM_KC
#define FDD_GEMM_KC 384
#define FDD_GEMM_MC 168
#define FDD_GEMM_NC 1024
#endif
enum { KC = FDD_GEMM_KC, MC_MAX = FDD_GEMM_MC, NC_MAX = FDD_GEMM_NC };

typedef struct job {
    const fdd_gemm_op *op;
    const fdd_gemm_kernel *kern;
    size_t task_m, task_n, tasks_n;   /* a task is a task_m x task_n region of C */
    size_t kc;                        /* K block: K split into equal blocks <= KC */
    float *ws;              /* per thread t at ws + t*per_thread: packed A, packed B, edge tile */
    size_t per_thread;
    size_t a_floats, b_floats;
} job;

/* 4-wide float vectors (GNU vector extension: lane-wise IEEE operations). */
typedef float v4f __attribute__((vector_size(16), aligned(4)));
typedef int32_t v4i __attribute__((vector_size(16), aligned(4)));

/* Bias and ReLU on a finished region of C, in place. */
static void epilogue(const fdd_gemm_op *op, size_t i0, size_t mr, size_t j0, size_t nr) {
    for (size_t i = 0; i < mr; i++) {
        float *c = op->c + (i0 + i) * op->ldc + j0;
        if (op->col_bias) {
            for (size_t j = 0; j < nr; j++) {
                float v = c[j];
                if (op->row_bias) v = v + op->row_bias[i0 + i];
                v = v + op->col_bias[j0 + j];
                if (op->relu) v = v > 0.0f ? v : 0.0f;
                c[j] = v;
            }
        } else if (op->row_bias) {   /* convolutions: 4 lanes at a time, the same operations */
            const float b = op->row_bias[i0 + i];
            const v4f vb = {b, b, b, b}, z = {0, 0, 0, 0};
            size_t j = 0;
            for (; j + 4 <= nr; j += 4) {
                v4f v;
                memcpy(&v, c + j, sizeof v);
                v = v + vb;
                if (op->relu) {   /* v > 0 ? v : +0 (NaN and -0 give +0, as the scalar line) */
                    v4i m = v > z, vi;
                    memcpy(&vi, &v, sizeof vi);
                    vi &= m;
                    memcpy(&v, &vi, sizeof v);
                }
                memcpy(c + j, &v, sizeof v);
            }
            for (; j < nr; j++) {
                float v = c[j] + b;
                c[j] = op->relu ? (v > 0.0f ? v : 0.0f) : v;
            }
        } else if (op->relu) {
            for (size_t j = 0; j < nr; j++) c[j] = c[j] > 0.0f ? c[j] : 0.0f;
        }
    }
}

/* One packed A block times one packed B block into C[i0.., j0..]. */
static void macro_kernel(const fdd_gemm_op *op, const fdd_gemm_kernel *kern, size_t i0, size_t mc,
                         size_t j0, size_t nc, size_t kc, int load, const float *pa,
                         const float *pb, float *t) {
    const size_t MR = (size_t)kern->mr, NR = (size_t)kern->nr;
    for (size_t jj = 0; jj < nc; jj += NR) {
        size_t nr = nc - jj < NR ? nc - jj : NR;
        const float *bp = pb + (jj / NR) * kc * NR;
        for (size_t ii = 0; ii < mc; ii += MR) {
            size_t mr = mc - ii < MR ? mc - ii : MR;
            const float *ap = pa + (ii / MR) * kc * MR;
            float *c = op->c + (i0 + ii) * op->ldc + j0 + jj;
            if (mr == MR && nr == NR) {
                kern->fn(kc, ap, bp, c, op->ldc, load);
                continue;
            }
            /* Edge tile: run the full-size kernel on a scratch tile. */
            if (load)
                for (size_t i = 0; i < MR; i++)
                    for (size_t j = 0; j < NR; j++)
                        t[i * NR + j] = i < mr && j < nr ? c[i * op->ldc + j] : 0.0f;
            kern->fn(kc, ap, bp, t, NR, load);
            for (size_t i = 0; i < mr; i++) memcpy(c + i * op->ldc, t + i * NR, nr * sizeof(float));
        }
    }
}

static void run_task(void *arg, size_t task, int thread) {
    const job *jb = arg;
    const fdd_gemm_op *op = jb->op;
    const fdd_gemm_kernel *kern = jb->kern;
    size_t m0 = (task / jb->tasks_n) * jb->task_m, n0 = (task % jb->tasks_n) * jb->task_n;
    size_t m1 = op->m - m0 < jb->task_m ? op->m : m0 + jb->task_m;
    size_t n1 = op->n - n0 < jb->task_n ? op->n : n0 + jb->task_n;
    float *pa = jb->ws + (size_t)thread * jb->per_thread, *pb = pa + jb->a_floats, *t = pb + jb->b_floats;

    for (size_t j0 = n0; j0 < n1; j0 += NC_MAX) {
        size_t nc = n1 - j0 < NC_MAX ? n1 - j0 : NC_MAX;
        if (op->k == 0 && !op->accumulate)
            for (size_t i = m0; i < m1; i++) memset(op->c + i * op->ldc + j0, 0, nc * sizeof(float));
        for (size_t k0 = 0; k0 < op->k; k0 += jb->kc) {
            size_t kc = op->k - k0 < jb->kc ? op->k - k0 : jb->kc;
            op->pack_b(op->b_arg, k0, kc, j0, nc, kern->nr, pb);
            for (size_t i0 = m0; i0 < m1; i0 += MC_MAX) {
                size_t mc = m1 - i0 < MC_MAX ? m1 - i0 : MC_MAX;
                op->pack_a(op->a_arg, i0, mc, k0, kc, kern->mr, pa);
                macro_kernel(op, kern, i0, mc, j0, nc, kc, k0 > 0 || op->accumulate, pa, pb, t);
            }
        }
        if (op->row_bias || op->col_bias || op->relu) epilogue(op, m0, m1 - m0, j0, nc);
    }
}

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

fdd_status fdd_gemm_run(fdd_ctx *ctx, const fdd_gemm_op *op, fdd_error *err) {
    if (op->m == 0 || op->n == 0) return FDD_OK;
    const fdd_gemm_kernel *kern = fdd_gemm_kernel_for(fdd_ctx_isa(ctx));
    FDD_ASSERT(kern && kern->fn);
    const size_t MR = (size_t)kern->mr, NR = (size_t)kern->nr;
    size_t nt = (size_t)fdd_ctx_threads(ctx);
    /* Split C among threads along its longer side: splitting N repacks A
     * once per task, splitting M repacks B, so the cheaper one is chosen.
     * Speed only: results never depend on the split. */
    size_t task_m = op->m, task_n = op->n;
    if (nt > 1) {
        size_t want = nt;   /* one task per thread: each task repacks its operand */
        size_t npanels = (op->n + NR - 1) / NR, mpanels = (op->m + MR - 1) / MR;
        bool split_n = op->n >= op->m ? npanels >= nt : mpanels < nt;
        if (split_n) task_n = (npanels + want - 1) / want * NR;
        else task_m = (mpanels + want - 1) / want * MR;
    }
    /* Equal K blocks (4032 = 9 x 448 rather than 15 x 256 + 192): fewer
     * reloads of C per chain, no short last block. */
    size_t kblocks = (op->k + KC - 1) / KC, kc = kblocks ? (op->k + kblocks - 1) / kblocks : 1;
    size_t mc = round_up(op->m < MC_MAX ? op->m : MC_MAX, MR);
    size_t nc = round_up(op->n < NC_MAX ? op->n : NC_MAX, NR);
    job jb = {.op = op, .kern = kern, .task_m = task_m, .task_n = task_n,
              .tasks_n = (op->n + task_n - 1) / task_n, .kc = kc};
    jb.a_floats = round_up(mc * kc, 16);
    jb.b_floats = round_up(nc * kc, 16);
    size_t per_thread = jb.a_floats + jb.b_floats + MR * NR;
    size_t total;
    if (!fdd_mul_ok(per_thread, nt * sizeof(float), &total))
        return fdd_fail(err, FDD_E_NOMEM, "gemm: workspace size overflows");
    float *ws = ctx ? fdd_ctx_scratch(ctx, total) : fdd_aligned_alloc(total);
    if (!ws) {
        if (!ctx) fdd_aligned_free(ws);
        return fdd_fail(err, FDD_E_NOMEM, "gemm: cannot allocate %zu bytes of packing buffers", total);
    }
    jb.ws = ws;
    jb.per_thread = per_thread;
    fdd_parallel(ctx, run_task, &jb, ((op->m + task_m - 1) / task_m) * jb.tasks_n);
    if (!ctx) fdd_aligned_free(ws);
    return FDD_OK;
}

void fdd_gemm(fdd_ctx *ctx, int transA, int transB, size_t M, size_t N, size_t K,
              const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc) {
    fdd_matrix a = {A, lda, transA != 0}, b = {B, ldb, transB != 0};
    fdd_gemm_op op = {.m = M, .n = N, .k = K,
                      .pack_a = fdd_pack_a_matrix, .a_arg = &a,
                      .pack_b = fdd_pack_b_matrix, .b_arg = &b,
                      .c = C, .ldc = ldc};
    fdd_error err;
    if (fdd_gemm_run(ctx, &op, &err) != FDD_OK) {
        /* The public convenience call has no status: fall back to the
         * canonical chain computed directly (same bits, just slow). */
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) {
                float acc = 0.0f;
                for (size_t k = 0; k < K; k++) {
                    float x = transA ? A[k * lda + i] : A[i * lda + k];
                    float y = transB ? B[j * ldb + k] : B[k * ldb + j];
                    acc = fmaf(x, y, acc);
                }
                C[i * ldc + j] = acc;
            }
    }
}

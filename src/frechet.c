/* frechet.c — the Fréchet distance in float64 (docs/reproducibility.md,
 * "Fréchet distance").
 *
 *   FD = |mu1-mu2|^2 + tr S1 + tr S2 - 2 tr((S1 S2)^(1/2))
 *
 * The trace term is the nuclear norm of a product of factors: with
 * S1 = F1 F1ᵀ and S2 = F2 F2ᵀ, the eigenvalues of S1 S2 are the squared
 * singular values of F2ᵀ F1, so tr((S1 S2)^(1/2)) = Σ σ_i(F2ᵀ F1).  The
 * factors are pivoted Cholesky factors (stopping at the first non-positive
 * pivot, which also gives the numerical rank of a singular covariance), and
 * the singular values come from a one-sided (Hestenes) Jacobi method with a
 * blocked round-robin ordering, after a pivoted-QR preconditioning step
 * (Drmač–Veselić); the products go through the double GEMM (src/dgemm.c).  Singular values are computed directly, so
 * no square root of an eigenvalue at rounding level is ever taken.
 *
 * Determinism: every reduction has a fixed order; threads only split work
 * into tasks whose outputs are disjoint (tiles of a product, disjoint block
 * pairs of a Jacobi round), and the GEMM's chains are the same on every ISA,
 * so neither the thread count nor the ISA changes a bit. */
#include "gemm.h"

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* Portable 2-wide double vectors (GNU vector extension: SSE2 on x86-64,
 * NEON on AArch64, scalar elsewhere; plain IEEE adds and multiplies, no
 * contraction, so every target computes the same bits). */
typedef double v2d __attribute__((vector_size(16), aligned(8)));

static inline v2d ld2(const double *p) { v2d v; memcpy(&v, p, sizeof v); return v; }
static inline double hsum2(v2d v) { return v[0] + v[1]; }

#define PAD4(n) (((n) + 3) & ~(size_t)3)
#define PAD8(n) (((n) + 7) & ~(size_t)7)

/* Σ a[k]·b[k] for k < n, n a multiple of 4, in a fixed order. */
static double dot4(const double *a, const double *b, size_t n) {
    v2d s0 = {0, 0}, s1 = s0;
    for (size_t k = 0; k < n; k += 4) {
        s0 += ld2(a + k) * ld2(b + k);
        s1 += ld2(a + k + 2) * ld2(b + k + 2);
    }
    return hsum2(s0 + s1);
}

/* ------------------------------------------------------------ products */

/* This thread's part of gemm_ws. */
static double *thread_ws(const fdd_dgemm_kernel *kern, double *ws, int thread) {
    return ws + (size_t)thread * fdd_dgemm_ws_doubles(kern);
}

/* Workspace of the double GEMM for every thread of ctx. */
static double *gemm_ws(fdd_ctx *ctx) {
    size_t n = fdd_dgemm_ws_doubles(fdd_dgemm_kernel_for(fdd_ctx_isa(ctx))), b;
    if (!fdd_mul_ok(n * sizeof(double), (size_t)fdd_ctx_threads(ctx), &b)) return NULL;
    return fdd_aligned_alloc(b);
}

/* Lower triangle of C (n x n) = X·Xᵀ, X n x K: row strips of SY_B, each
 * one single-threaded GEMM against the rows at and above it (the few
 * entries right of the diagonal inside a strip are computed too and never
 * read), the longest strips first; each element is the GEMM's one chain, so
 * the split changes no bit. */
#define SY_B 192
typedef struct {
    const fdd_dgemm_kernel *kern;
    size_t n, K, ldx, ldc, ns;
    const double *X;
    double *C, *ws;
} syrk_job;

static void syrk_task(void *arg, size_t t, int thread) {
    syrk_job *J = arg;
    size_t i0 = (J->ns - 1 - t) * SY_B, ib = J->n - i0 < SY_B ? J->n - i0 : SY_B;
    fdd_dgemm_st(J->kern, 0, 1, ib, i0 + ib, J->K, 0, J->X + i0 * J->ldx, J->ldx, J->X, J->ldx, J->C + i0 * J->ldc,
                 J->ldc, 0, thread_ws(J->kern, J->ws, thread));
}

static void syrk_lower(fdd_ctx *ctx, size_t n, size_t K, const double *X, size_t ldx, double *C, size_t ldc,
                       double *ws) {
    syrk_job J = {fdd_dgemm_kernel_for(fdd_ctx_isa(ctx)), n, K, ldx, ldc, (n + SY_B - 1) / SY_B, X, C, ws};
    fdd_parallel(ctx, syrk_task, &J, J.ns);
}

/* ------------------------------------------------- pivoted Cholesky */

/* S (d x d, lower triangle read) = P L Lᵀ Pᵀ with complete pivoting, in
 * place in W (d rows of ld >= PAD4(d)).  On return W holds L in pivoted
 * order (row k = original index perm[k]), zero above the diagonal and from
 * column *rank on: the factorisation stops at the first pivot <= 0 — the
 * rest of the matrix is then rounding noise that is not positive, and no
 * threshold is invented.  perm is complete either way (the unfactored
 * indices follow in their final order).  Right-looking, blocked by CH_NB
 * columns: a panel is computed with its updates delayed, then the trailing
 * matrix gets one rank-CH_NB update by the double GEMM on this thread (ws:
 * its workspace), in row strips of SY_B over its upper triangle only.  The
 * factor's columns fill the lower left as they are computed; of the
 * trailing matrix only the upper triangle is kept (what lies below its
 * diagonal is stale, and becomes the factor's column before it is read), so
 * a column below the diagonal is read as the contiguous row right of it. */
#define CH_NB 64

/* Σ a[k]·b[k] for k < n: dot4 over whole 4-lanes, then the rest in order. */
static double dotn(const double *a, const double *b, size_t n) {
    size_t n4 = n & ~(size_t)3;
    double s = dot4(a, b, n4);
    for (size_t k = n4; k < n; k++) s += a[k] * b[k];
    return s;
}

static int pivoted_cholesky(const fdd_dgemm_kernel *kern, size_t d, const double *S, int e, double *W, size_t ld,
                            size_t *perm, size_t *rank, double *ws) {
    double *dg = fdd_malloc(d * sizeof(double));
    if (!dg) return -1;
    /* S·2^-e in two exact steps: 2^-e alone overflows for subnormal S */
    double sa = ldexp(1, -e / 2), sb = ldexp(1, -e - (-e / 2));
    for (size_t i = 0; i < d; i++) {
        perm[i] = i;
        dg[i] = S[i * d + i] * sa * sb;
        memset(W + i * ld + d, 0, (ld - d) * sizeof(double));
    }
    for (size_t i0 = 0; i0 < d; i0 += 32)   /* the upper triangle from S's lower one, in tiles */
        for (size_t j0 = i0; j0 < d; j0 += 32)
            for (size_t i = i0; i < d && i < i0 + 32; i++)
                for (size_t j = j0 > i ? j0 : i; j < d && j < j0 + 32; j++) W[i * ld + j] = S[j * d + i] * sa * sb;
    size_t k = 0;
    int done = 0;
    for (size_t k0 = 0; k0 < d && !done; k0 += CH_NB) {
        size_t k1 = k0 + CH_NB < d ? k0 + CH_NB : d;
        for (k = k0; k < k1; k++) {
            size_t p = k;
            for (size_t i = k + 1; i < d; i++)
                if (dg[i] > dg[p]) p = i;
            if (!(dg[p] > 0)) { done = 1; break; }
            if (p != k) {
                /* Symmetric swap of k and p (k < p) on what is kept: the
                 * factor's parts of rows k and p, their upper parts right of
                 * p, and (k, i) with (i, p) for k < i < p. */
                double t, *wk = W + k * ld, *wp = W + p * ld;
                for (size_t c = 0; c < k; c++) { t = wk[c]; wk[c] = wp[c]; wp[c] = t; }
                for (size_t c = p + 1; c < d; c++) { t = wk[c]; wk[c] = wp[c]; wp[c] = t; }
                for (size_t i = k + 1; i < p; i++) { t = wk[i]; wk[i] = W[i * ld + p]; W[i * ld + p] = t; }
                t = dg[k]; dg[k] = dg[p]; dg[p] = t;
                size_t u = perm[k]; perm[k] = perm[p]; perm[p] = u;
            }
            double lkk = sqrt(dg[k]);
            const double *lk = W + k * ld + k0;   /* row k: the panel's earlier columns, then the trailing row */
            for (size_t i = k + 1; i < d; i++) {
                double v = (lk[i - k0] - dotn(W + i * ld + k0, lk, k - k0)) / lkk;
                W[i * ld + k] = v;
                dg[i] -= v * v;
            }
            W[k * ld + k] = lkk;
        }
        for (size_t i0 = k1; !done && i0 < d; i0 += SY_B) {
            size_t ib = d - i0 < SY_B ? d - i0 : SY_B;
            fdd_dgemm_st(kern, 0, 1, ib, d - i0, k1 - k0, 1, W + i0 * ld + k0, ld, W + i0 * ld + k0, ld,
                         W + i0 * ld + i0, ld, 1, ws);
        }
    }
    *rank = k;
    for (size_t i = 0; i < d; i++) {   /* L: zero above the diagonal and right of the rank */
        size_t c = i < k ? i + 1 : k;
        memset(W + i * ld + c, 0, (ld - c) * sizeof(double));
    }
    fdd_free(dg);
    return 0;
}

/* The two covariances factored at once, one per task. */
typedef struct {
    const fdd_dgemm_kernel *kern;
    size_t d, ld;
    const double *S[2];
    int e[2];
    double *W[2], *ws;
    size_t *perm[2], rank[2];
    int bad[2];
} chol_job;

static void chol_task(void *arg, size_t t, int thread) {
    chol_job *J = arg;
    J->bad[t] = pivoted_cholesky(J->kern, J->d, J->S[t], J->e[t], J->W[t], J->ld, J->perm[t], &J->rank[t],
                                 thread_ws(J->kern, J->ws, thread));
}

/* ------------------------------------------------ Householder LQ */

/* X (m x n, m <= n, row-major, ld) = L·Q in place: on return the lower
 * triangle of the first m columns holds L, the rest is zero.  Reflectors
 * H = I − τvvᵀ act on rows from the right; blocked by QB rows, the trailing
 * rows get the block reflector I − VᵀTV (LAPACK's forward, rowwise dlarft)
 * through row dot products and two GEMMs.  V is QB x ld scratch, T QB x QB,
 * Wt 2m x QB.  X's rows are zero from column n to PAD8(n) <= ld (the row
 * dots read whole 8-lanes); a reflector's v is zero left of
 * its own column, so the panel's sums run over whole 4-lanes from the lane
 * holding that column (dot4: a fixed order, vectorised on every target). */
#define QB 64

static double dot_from(const double *x, const double *v, size_t lo, size_t n4) {
    lo &= ~(size_t)3;
    return dot4(x + lo, v + lo, n4 - lo);
}

static void house_row(double *x, size_t i, size_t n, double *v, double *tau) {
    size_t n4 = PAD4(n), a = PAD4(i + 1) < n4 ? PAD4(i + 1) : n4;
    double alpha = x[i], xn = 0;
    for (size_t c = i + 1; c < a; c++) xn += x[c] * x[c];
    xn += dot4(x + a, x + a, n4 - a);
    memset(v, 0, PAD8(n) * sizeof(double));
    v[i] = 1;
    if (xn == 0) { *tau = 0; return; }
    double beta = sqrt(alpha * alpha + xn);
    if (alpha > 0) beta = -beta;
    *tau = (beta - alpha) / beta;
    double sc = 1 / (alpha - beta);
    for (size_t c = i + 1; c < n; c++) { v[c] = x[c] * sc; x[c] = 0; }
    x[i] = beta;
}

/* One panel: rows [k0, k0 + nb) of X, already updated by every earlier
 * panel, become L's rows; their reflectors go to V (rows of ld), tau, and
 * the block reflector's T (upper, QB x QB): T[i][i] = τi, T[0:i][i] =
 * −τi·T[0:i][0:i]·(V[0:i]·vi). */
static void lq_panel(double *X, size_t k0, size_t nb, size_t n, size_t ld, double *V, double *tau, double *T) {
    size_t n4 = PAD4(n);
    for (size_t r = 0; r < nb; r++) {
        double *x = X + (k0 + r) * ld;
        for (size_t j = 0; j < r; j++) {       /* earlier reflectors of the panel */
            const double *v = V + j * ld;
            double s = dot_from(x, v, k0 + j, n4) * tau[j];
            for (size_t c = k0 + j; c < n; c++) x[c] -= s * v[c];
        }
        house_row(x, k0 + r, n, V + r * ld, &tau[r]);
    }
    memset(T, 0, QB * QB * sizeof(double));   /* zero below the diagonal: T goes through the GEMM */
    for (size_t i = 0; i < nb; i++) {
        double g[QB];
        for (size_t j = 0; j < i; j++) g[j] = dot_from(V + j * ld, V + i * ld, k0 + i, n4);
        for (size_t j = 0; j < i; j++) {
            double s = 0;
            for (size_t l = j; l < i; l++) s += T[j * QB + l] * g[l];
            T[j * QB + i] = -tau[i] * s;
        }
        T[i * QB + i] = tau[i];
    }
}

/* Rows [x, y) of X get panel k0's block reflector: Wt = Xr·Vᵀ (row dot
 * products read in place, 64 rows at a time: no copy of the trailing
 * matrix), Wt2 = Wt·T, Xr −= Wt2·V (columns >= k0 only: V is zero left of
 * k0), on this thread.  Each row's result depends on that row alone, so any
 * split of the rows gives the same bits. */
static void row_dots(const fdd_dgemm_kernel *kn, size_t s, size_t len, const double *a, size_t na,
                     const double *b, size_t nb, size_t ld, double *c, size_t ldc, double *st);

static void lq_update(const fdd_dgemm_kernel *kern, double *X, size_t x, size_t y, size_t k0, size_t nb, size_t n,
                      size_t ld, const double *V, const double *T, double *Wt, double *Wt2, double *ws) {
    if (y <= x) return;
    for (size_t i = x; i < y; i += 64)
        row_dots(kern, k0, n, X + i * ld, y - i < 64 ? y - i : 64, V, nb, ld, Wt + i * QB, QB, ws);
    fdd_dgemm_st(kern, 0, 0, y - x, nb, nb, 0, Wt + x * QB, QB, T, QB, Wt2 + x * QB, QB, 0, ws);
    fdd_dgemm_st(kern, 0, 0, y - x, n - k0, nb, 1, Wt2 + x * QB, QB, V + k0, ld, X + x * ld + k0, ld, 1, ws);
}

/* One step of the look-ahead: panel k0 (V, T) is applied to the rows below
 * it while the next panel is factored.  Task 0 updates the next panel's rows
 * first and factors them (into V2, tau2, T2), then a share of the rest; task
 * 1 updates the other rows.  The split only balances the threads. */
typedef struct {
    const fdd_dgemm_kernel *kern;
    double *X, *Wt, *Wt2, *ws;
    size_t m, n, ld, k0, nb, r0, nb2, split;
    const double *V, *T;
    double *V2, *tau2, *T2;
} lq_job;

static void lq_task(void *arg, size_t t, int thread) {
    lq_job *J = arg;
    double *ws = thread_ws(J->kern, J->ws, thread);
    size_t e = J->r0 + J->nb2;
    if (t == 0) {
        lq_update(J->kern, J->X, J->r0, e, J->k0, J->nb, J->n, J->ld, J->V, J->T, J->Wt, J->Wt2, ws);
        lq_panel(J->X, J->r0, J->nb2, J->n, J->ld, J->V2, J->tau2, J->T2);
        lq_update(J->kern, J->X, e, J->split, J->k0, J->nb, J->n, J->ld, J->V, J->T, J->Wt, J->Wt2, ws);
    } else {
        lq_update(J->kern, J->X, J->split, J->m, J->k0, J->nb, J->n, J->ld, J->V, J->T, J->Wt, J->Wt2, ws);
    }
}

/* V: 2 x QB x ld, T: 2 x QB x QB (the current panel and the next). */
static void house_lq(fdd_ctx *ctx, double *X, size_t m, size_t n, size_t ld, double *V, double *T, double *Wt,
                     double *ws) {
    double tau[2][QB];
    const fdd_dgemm_kernel *kern = fdd_dgemm_kernel_for(fdd_ctx_isa(ctx));
    size_t nb = m < QB ? m : QB, cur = 0;
    lq_panel(X, 0, nb, n, ld, V, tau[0], T);
    for (size_t k0 = 0; k0 + nb < m;) {
        size_t r0 = k0 + nb, nb2 = m - r0 < QB ? m - r0 : QB, rest = m - r0 - nb2;
        /* task 0's panel costs about as much as 5·QB rows of update */
        size_t share = rest > 5 * QB ? (rest - 5 * QB) / 2 : 0;
        lq_job J = {kern, X, Wt, Wt + m * QB, ws, m, n, ld, k0, nb, r0, nb2, r0 + nb2 + share,
                    V + cur * QB * ld, T + cur * QB * QB, V + (cur ^ 1) * QB * ld, tau[cur ^ 1], T + (cur ^ 1) * QB * QB};
        fdd_parallel(ctx, lq_task, &J, 2);
        cur ^= 1;
        k0 = r0;   /* the next panel, of nb2 rows */
        nb = nb2;
    }
}

/* ---------------------------------------------------- one-sided Jacobi */

/* The rows of G (n vectors of length len, row stride ld) are rotated
 * pairwise until mutually orthogonal (to the stopping test below); their
 * norms are then the singular values.  Blocked: the vectors in blocks; a
 * sweep is rounds of tasks on disjoint blocks (make_schedule: four blocks of
 * QJB on the lines of an affine space where that fits, otherwise pairs of
 * blocks of JB by a round-robin tournament), the tasks of a round in
 * parallel.  A task forms the Gram matrix A of its vectors — the cross
 * blocks by dot products (gemm.h's dot kernel, reading the rows in place),
 * the diagonal blocks carried from the block's last rotation as U_b·A·U_bᵀ
 * (formed afresh at the start of each sweep) — runs one cyclic pass of
 * Jacobi rotations over all its pairs on A (two-sided, accumulating them in
 * U), and if it rotated, overwrites X with U·X by the GEMM micro-kernel
 * (in place, a column tile at a time).
 * Pairs: JB = 48 measured best at d = 2048 (24: 20% slower, 64: 40% slower;
 * the inner pass grows as the task, the traffic of the products as 1/JB);
 * four blocks of 32 (a 128-vector task) were 9–19% faster than those pairs
 * at d = 2048.  lead[b]: columns left of it are zero in block b (R is
 * triangular at the start), so the products skip them. */
#ifndef JB
#define JB 48
#endif
#define QJB 32
_Static_assert(JB % 8 == 0 && QJB % 8 == 0 && QJB <= JB, "blocks of whole 8-double lanes");
#define JW (2 * JB > 4 * QJB ? 2 * JB : 4 * QJB)   /* most vectors in a task */
#define INNER_REL 0x1p-7   /* see jac_task_body */
/* A task whose largest cosine is below TASK_SKIP times the largest of the
 * previous sweep does not rotate (after a sweep that rotated): late in the iteration, and early on graded spectra, most
 * block pairs are that far below the rest and their rotations would be
 * undone at first order (d = 2048: about 10% less time; the stopping test
 * decides convergence as always). */
#define TASK_SKIP 0x1p-7
#define MAX_SWEEPS 40

typedef struct jac_job {
    double *x;               /* the rows, n x ld */
    double *gram;            /* per block: jb x jb Gram matrix of its rows (stride JB) */
    size_t n, ld, len, nblk, jb;   /* jb: rows per block */
    double tol, floor2, skip2;   /* skip2: a task whose largest cos² is at most this does not rotate */
    const fdd_dgemm_kernel *kern;
    size_t *lead;
    const size_t *tk;        /* the sweep's tasks, round by round: 4 blocks each (>= nblk: none) */
    size_t per;              /* tasks per round */
    _Atomic size_t *step;    /* per block: rounds of the sweep done */
    long *rot;               /* rotations per task */
    double *cmx;             /* largest |cos| a task saw */
    double *tb;              /* per thread: A, U, packed U, edge tiles, GEMM workspace */
    size_t tbd;
} jac_job;

static size_t blk_rows(const jac_job *J, size_t b) { return J->n - b * J->jb < J->jb ? J->n - b * J->jb : J->jb; }
static double *blk_x(const jac_job *J, size_t b) { return J->x + b * J->jb * J->ld; }

/* [X_0; ...; X_{nb-1}] = U·[X_0; ...] in columns [s, e) (block b: nr[b]
 * rows at X[b]), in place: a column tile is copied out before it is
 * overwritten.
 * Each element one fma chain over the w inputs in order, as the GEMM's, by
 * the micro-kernel.  U's rows are packed into MR-row panels [k][MR] (a panel
 * never straddles two blocks); column tiles outside, panels inside, so a
 * tile of X is read into L1 once.  pack = 0: pk already holds U packed. */
static void rotate_rows(const jac_job *J, const double *U, double *const *X, const size_t *nr, size_t nb, size_t s,
                        size_t e, double *pk, double *tile, double *bt, int pack) {
    const fdd_dgemm_kernel *kn = J->kern;
    size_t MR = (size_t)kn->mr, NR = (size_t)kn->nr, ld = J->ld, len = e, K = 0;
    size_t gs[4 * (JB / 4 + 2)], gb[4 * (JB / 4 + 2)], ng = 0, off[5];   /* panel: first row, block */
    const double *xr[JW];
    for (size_t b = 0; b < nb; b++) {
        off[b] = K;
        for (size_t g = 0; g < nr[b]; g += MR) { gs[ng] = K + g; gb[ng++] = b; }
        for (size_t r = 0; r < nr[b]; r++) xr[K + r] = X[b] + r * ld;
        K += nr[b];
    }
    off[nb] = K;
    for (size_t i = 0; i < ng && pack; i++) {
        size_t g = gs[i], end = off[gb[i] + 1];
        for (size_t k = 0; k < K; k++)
            for (size_t r = 0; r < MR; r++) pk[(i * K + k) * MR + r] = g + r < end ? U[(g + r) * K + k] : 0.0;
    }
    for (size_t j = s; j < len; j += NR) {
        /* the K x NR tile of X, copied into one contiguous panel (zero padded
         * at the edge): read once from memory, then from L1 by every panel
         * of U in a single pass over K */
        size_t nc = len - j < NR ? len - j : NR;
        for (size_t k = 0; k < K; k++) {
            const double *sp = xr[k] + j;
            if (nc == NR) memcpy(bt + k * NR, sp, NR * sizeof(double));
            else
                for (size_t q = 0; q < NR; q++) bt[k * NR + q] = q < nc ? sp[q] : 0.0;
        }
        for (size_t i = 0; i < ng; i++) {
            size_t g = gs[i], b = gb[i], end = off[b + 1], mr = end - g < MR ? end - g : MR;
            double *d = X[b] + (g - off[b]) * ld;
            if (mr == MR && nc == NR) {
                kn->fn(K, pk + i * K * MR, bt, NR, d + j, ld, 0);
                continue;
            }
            kn->fn(K, pk + i * K * MR, bt, NR, tile, NR, 0);
            for (size_t r = 0; r < mr; r++) memcpy(d + r * ld + j, tile + r * NR, nc * sizeof(double));
        }
    }
}

/* c (na x nb, ldc) = dot products of rows a_i and b_j over columns [s, len)
 * (s rounded down to 8, the rows zero-padded to a multiple of 8), in
 * gemm.h's dot order: 4 x 4 tiles by the kernel in column chunks of DOT_KC
 * (so the rows of a tile are read from L1; st holds the tiles' chains),
 * the rest by the same chains here. */
#define DOT_KC 256
#define DOT_ST ((JB / 4) * (JB / 4) * 128)

/* gram_pass: third blocks per chunk; the panel's row stride (an odd number
 * of cache lines); per pair in hand, doubles for A, A0, U, U packed and Uᵀ
 * padded to whole NR panels */
#define GRAM_CB 4
#define GRAM_LDZ (GRAM_CB * JB + 8)
#define GRAM_SLOT (3 * JW * JW + (JW + 32) * JW + JW * (JW + 24))

/* A thread's scratch (doubles): the Gram matrix A and its copy A0, the
 * rotation U, U packed for the kernel, an MR x NR edge tile (MR <= 8, NR <=
 * 24 on every ISA), an edge panel of X, the dot chains, gram_pass's panel,
 * GEMM workspace. */
enum {
    TB_A = 0, TB_U = TB_A + JW * JW, TB_A0 = TB_U + JW * JW, TB_PK = TB_A0 + JW * JW,
    TB_TILE = TB_PK + (JW + 32) * JW, TB_BT = TB_TILE + 8 * 24, TB_ST = TB_BT + JW * 24, TB_Z = TB_ST + DOT_ST,
    TB_WS = TB_Z + JW * GRAM_LDZ
};
static void row_dots(const fdd_dgemm_kernel *kn, size_t s, size_t len, const double *a, size_t na,
                     const double *b, size_t nb, size_t ld, double *c, size_t ldc, double *st) {
    s &= ~(size_t)7;
    size_t end = (len + 7) & ~(size_t)7, ti = na / 4, tj = nb / 4;
    for (size_t k0 = s; k0 < end; k0 += DOT_KC) {
        size_t kc = end - k0 < DOT_KC ? end - k0 : DOT_KC;
        for (size_t i = 0; i < ti; i++)
            for (size_t j = 0; j < tj; j++)
                kn->dot(kc, a + 4 * i * ld + k0, ld, b + 4 * j * ld + k0, ld, st + (i * tj + j) * 128, k0 > s);
    }
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++) {
            if (i < 4 * ti && j < 4 * tj) {
                c[i * ldc + j] = fdd_ddot_sum(st + ((i / 4) * tj + j / 4) * 128 + (4 * (i % 4) + j % 4) * 8);
                continue;
            }
            double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (size_t k = s; k < end; k += 8)
                for (int q = 0; q < 8; q++) l[q] = fma(a[i * ld + k + q], b[j * ld + k + q], l[q]);
            c[i * ldc + j] = fdd_ddot_sum(l);
        }
}

/* Spin (then yield) until *a >= r; acquire. */
static void spin_until(_Atomic size_t *a, size_t r) {
    for (unsigned spins = 0; atomic_load_explicit(a, memory_order_acquire) < r; spins++)
        if (spins > 64) sched_yield();
}

/* Wait until block b has done the rounds before round r.  Tasks are handed
 * out in order and only wait on earlier ones, so the earliest unfinished
 * task can always run: no deadlock, and no barrier between rounds. */
static void wait_block(const jac_job *J, size_t b, size_t r) { spin_until(&J->step[b], r); }

static void jac_task_body(jac_job *J, size_t t, int thread, size_t *blk, size_t nb);

/* Task t of a sweep is in round t / per: it runs once its blocks are
 * through the earlier rounds, so every block sees the same sequence of
 * rotations whatever the thread count or timing. */
static void jac_task(void *arg, size_t t, int thread) {
    jac_job *J = arg;
    size_t blk[4], nb = 0, r = t / J->per;
    for (int i = 0; i < 4; i++)
        if (J->tk[4 * t + i] < J->nblk) blk[nb++] = J->tk[4 * t + i];
    J->rot[t] = 0;
    J->cmx[t] = 0;
    for (size_t i = 0; i < nb; i++) wait_block(J, blk[i], r);
    if (nb) jac_task_body(J, t, thread, blk, nb);
    for (size_t i = 0; i < nb; i++) atomic_store_explicit(&J->step[blk[i]], r + 1, memory_order_release);
}

/* One cyclic pass of two-sided rotations over the pairs of A (w x w, the
 * Gram matrix of w vectors), accumulated in U (w x w, set here).  Returns
 * the number of rotations, or -1 without rotating when the largest cos² is
 * at most skip2; *cmx_out: the largest |cos| before the pass. */
static long inner_pass(const jac_job *J, double *A, double *U, size_t w, double skip2, double *cmx_out) {
    for (size_t i = 0; i < w * w; i++) U[i] = 0;
    for (size_t i = 0; i < w; i++) U[i * w + i] = 1;
    size_t uh[JW];
    for (size_t i = 0; i < w; i++) uh[i] = i + 1;
    /* The pass rotates the pairs whose cos² exceeds INNER_REL² times the
     * task's largest: a pair far below the largest would be disturbed again
     * at first order by the large rotations of this very pass, so rotating
     * it now is mostly wasted (d = 2048: the inner pass 35% cheaper, the same
     * sweep counts); later sweeps rotate it once it matters. */
    long rot = 0;
    double cmx = 0;
    for (size_t p = 0; p < w; p++)
        for (size_t q = p + 1; q < w; q++) {
            double al = A[p * w + p], be = A[q * w + q], ga = A[p * w + q];
            if (al > J->floor2 && be > J->floor2) cmx = fmax(cmx, (ga / al) * (ga / be));
        }
    *cmx_out = sqrt(cmx);
    if (cmx <= skip2) return -1;
    double th2 = fmax(J->tol * J->tol, INNER_REL * INNER_REL * cmx);
    for (size_t p = 0; p < w; p++)
        for (size_t q = p + 1; q < w; q++) {
            double al = A[p * w + p], be = A[q * w + q], ga = A[p * w + q];
            /* A vector whose norm is below eps times the largest one is a
             * singular value at rounding level: rotating it changes the sum by
             * less than its own rounding, so it is left alone. */
            if (al <= J->floor2 || be <= J->floor2) continue;
            double c2 = (ga / al) * (ga / be);   /* cos², no square root on the critical path */
            if (!(c2 > th2)) continue;
            double zeta = (be - al) / (2 * ga), tn;
            if (fabs(zeta) > 1e150) tn = 0.5 / zeta;
            else tn = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
            double c = 1 / sqrt(1 + tn * tn), sn = c * tn;
            /* x_p' = c·x_p − s·x_q, x_q' = s·x_p + c·x_q.  In this cyclic
             * order only the entries (i, j), p <= i < j, are read again in
             * the pass, so only they are kept: row p and column q between p
             * and q, rows p and q right of q (A's lower part and the rows
             * already done go stale).  Then U's rows. */
            double *ap = A + p * w, *aq = A + q * w;
            for (size_t k = p + 1; k < q; k++) {
                double apk = ap[k], akq = A[k * w + q];
                ap[k] = c * apk - sn * akq;
                A[k * w + q] = sn * apk + c * akq;
            }
            J->kern->rot(w - q - 1, ap + q + 1, aq + q + 1, c, sn);
            ap[p] = al - tn * ga;
            aq[q] = be + tn * ga;
            ap[q] = 0;
            /* U's rows: nonzero only left of hi (U starts as I and zeros
             * rotate to +0 exactly, so skipping them changes no bit) */
            size_t h = uh[p] > uh[q] ? uh[p] : uh[q];
            uh[p] = uh[q] = h;
            J->kern->rot(h, U + p * w, U + q * w, c, sn);
            rot++;
        }
    return rot;
}

static void jac_task_body(jac_job *J, size_t t, int thread, size_t *blk, size_t nb) {
    size_t nr[4], off[4], s = SIZE_MAX, w = 0;
    double *X[4];
    for (size_t b = 0; b < nb; b++) {
        nr[b] = blk_rows(J, blk[b]);
        off[b] = w;
        w += nr[b];
        s = J->lead[blk[b]] < s ? J->lead[blk[b]] : s;
        X[b] = blk_x(J, blk[b]);
    }
    size_t len = J->len, ld = J->ld;
    double *tb = J->tb + (size_t)thread * J->tbd, *A = tb + TB_A, *U = tb + TB_U, *pk = tb + TB_PK,
           *tile = tb + TB_TILE, *bt = tb + TB_BT, *A0 = tb + TB_A0, *ws = tb + TB_WS;
    for (size_t b = 0; b < nb; b++) {
        const double *gb = J->gram + blk[b] * JB * JB;
        for (size_t i = 0; i < nr[b]; i++)
            for (size_t j = 0; j < nr[b]; j++) A[(off[b] + i) * w + off[b] + j] = gb[i * JB + j];
    }
    for (size_t a = 0; a < nb; a++)   /* the cross blocks, mirrored */
        for (size_t b = a + 1; b < nb; b++) {
            double *C = U;   /* U is not in use yet */
            row_dots(J->kern, s, len, X[a], nr[a], X[b], nr[b], ld, C, nr[b], tb + TB_ST);
            for (size_t i = 0; i < nr[a]; i++)
                for (size_t j = 0; j < nr[b]; j++)
                    A[(off[a] + i) * w + off[b] + j] = A[(off[b] + j) * w + off[a] + i] = C[i * nr[b] + j];
        }
    memcpy(A0, A, w * w * sizeof(double));
    double cmx;
    long rot = inner_pass(J, A, U, w, J->skip2, &cmx);
    J->cmx[t] = cmx;
    J->rot[t] = rot;
    if (rot <= 0) return;   /* skipped (see TASK_SKIP), or nothing to rotate */
    rotate_rows(J, U, X, nr, nb, s, J->len, pk, tile, bt, 1);
    /* the blocks' new Gram matrices, (U·A0)_b·U_bᵀ: U·A0 once into A (which
     * the pass left partly stale), then one small product per block */
    fdd_dgemm_st(J->kern, 0, 0, w, w, w, 0, U, w, A0, w, A, w, 0, ws);
    for (size_t b = 0, o = 0; b < nb; o += nr[b], b++) {
        fdd_dgemm_st(J->kern, 0, 1, nr[b], nr[b], w, 0, A + o * w, w, U + o * w, w, J->gram + blk[b] * JB * JB, JB,
                     0, ws);
    }
    for (size_t b = 0; b < nb; b++) J->lead[blk[b]] = s;
}

/* Gram matrices of the blocks, fresh (start of a sweep). */
static void gram_task(void *arg, size_t b, int thread) {
    jac_job *J = arg;
    double *st = J->tb + (size_t)thread * J->tbd + TB_ST;
    const double *X = blk_x(J, b);
    row_dots(J->kern, J->lead[b], J->len, X, blk_rows(J, b), X, blk_rows(J, b), J->ld, J->gram + b * JB * JB, JB, st);
}

static double norm2(const double *x, size_t n) {
    double s = 0;
    for (size_t k = 0; k < n; k++) s += x[k] * x[k];
    return s;
}

/* Rows in order of decreasing norm (de Rijk), ties by index: vectors of
 * similar length meet in the same block pairs, which saves about a sweep.
 * Reads the rows where they are, writes them in order to dst. */
typedef struct { double v; size_t i; } keyed;
static int by_norm_desc(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

static void sort_order(const jac_job *J, keyed *k) {
    for (size_t i = 0; i < J->n; i++) k[i] = (keyed){norm2(blk_x(J, i / J->jb) + (i % J->jb) * J->ld, J->len), i};
    qsort(k, J->n, sizeof(keyed), by_norm_desc);
}

static void sort_rows(const jac_job *J, const keyed *k, double *dst) {
    for (size_t i = 0; i < J->n; i++)
        memcpy(dst + i * J->ld, blk_x(J, k[i].i / J->jb) + (k[i].i % J->jb) * J->ld, J->ld * sizeof(double));
}

/* The stopping test, on M, the Gram matrix of the rows (lower triangle
 * read).  With d_i the row norms and c_ij the cosines between rows, the
 * second-order expansion of tr(M^(1/2)) about its diagonal is
 *     Σσ = Σ d_i − Σ_{i<j} c_ij² d_i d_j / (2 (d_i + d_j)) + O(c³),
 * free of eigenvalue gaps (tr √· is smooth on positive matrices).  *sum =
 * Σd − correction; the test passes when correction × max|c| — an estimate
 * of the third-order remainder, 9–15 times the true one at d = 2048 and
 * above it in every case measured (docs/reproducibility.md) — is below
 * 2^-41 Σd.  Rows under the floor are
 * rounding-level and left out, as in the rotations.  It also leaves the
 * order of the rows by norm (ord, for a next sweep) and, per pair of blocks
 * of jb consecutive rows, the largest cosine (bm) and the correction (bc)
 * between them (lower triangles, nblk x nblk; hot_pairs).  dn: 2n + 2 nblk
 * scratch. */
typedef struct {
    const double *M, *dn, *rn;
    size_t n, ld, jb, nblk;
    double floor2, *bm, *bc, *part;   /* part: per block of rows, its correction and largest |cos| */
} test_job;

/* The rows of block nblk − 1 − t (the longest first) against the rows
 * before them. */
static void test_task(void *arg, size_t t, int thread) {
    (void)thread;
    const test_job *T = arg;
    size_t B = T->nblk - 1 - t, i0 = B * T->jb, i1 = i0 + T->jb < T->n ? i0 + T->jb : T->n, ld = T->ld;
    double corr = 0, cmax = 0, *bm = T->bm + B * T->nblk, *bc = T->bc + B * T->nblk;
    for (size_t i = i0; i < i1; i++) {
        double di = T->dn[i], ri = T->rn[i];
        if (T->M[i * ld + i] <= T->floor2) continue;
        for (size_t j = 0; j < i; j++) {
            if (T->M[j * ld + j] <= T->floor2) continue;
            double dj = T->dn[j], cs = T->M[i * ld + j] * ri * T->rn[j], w = cs * cs * (di * dj / (2 * (di + dj)));
            corr += w;
            cmax = fmax(cmax, fabs(cs));
            bm[j / T->jb] = fmax(bm[j / T->jb], fabs(cs));
            bc[j / T->jb] += w;
        }
    }
    T->part[2 * B] = corr;
    T->part[2 * B + 1] = cmax;
}

static void gram_test(fdd_ctx *ctx, const double *M, size_t n, size_t ld, double floor2, size_t jb, size_t nblk,
                      double *dn, double *sum, int *pass, keyed *ord, double *bm, double *bc) {
    double s = 0, c = 0, corr = 0, cmax = 0, *rn = dn + n, *part = dn + 2 * n;
    for (size_t i = 0; i < n; i++) {
        double v = sqrt(fmax(M[i * ld + i], 0)), t = s + v;   /* Neumaier, index order */
        c += fabs(s) >= fabs(v) ? (s - t) + v : (v - t) + s;
        s = t;
        dn[i] = v;
        rn[i] = v > 0 ? 1 / v : 0;   /* zero rows are under the floor and skipped */
        ord[i] = (keyed){v, i};
    }
    s += c;
    qsort(ord, n, sizeof(keyed), by_norm_desc);
    for (size_t i = 0; i < nblk * nblk; i++) bm[i] = bc[i] = 0;
    /* by blocks of rows in parallel (each writes its own row of bm, bc),
     * the blocks' corrections summed in block order: a fixed order */
    test_job T = {M, dn, rn, n, ld, jb, nblk, floor2, bm, bc, part};
    fdd_parallel(ctx, test_task, &T, nblk);
    for (size_t B = 0; B < nblk; B++) {
        corr += part[2 * B];
        cmax = fmax(cmax, part[2 * B + 1]);
    }
    sum[0] = s - corr;
    sum[1] = s;
    *pass = corr * cmax <= 0x1p-41 * s;
}

/* After a failed test, the pairs of blocks worth rotating.  Late in the
 * iteration the large cosines sit in a few pairs of blocks of close norms,
 * and most pairs move the sum by less than the test's margin.  Pairs (a
 * block with itself included) are left out in order of increasing largest
 * cosine while the left-out correction times the largest left-out cosine
 * stays under 2^-43 Σd (s), a quarter of what the test allows; the rest go
 * to hot as a·nblk + b (a >= b).  Depends only on the test's Gram matrix.
 * Returns their number; kp: scratch for nblk (nblk + 1) / 2. */
static size_t hot_pairs(const double *bm, const double *bc, size_t nblk, double s, keyed *kp, size_t *hot) {
    size_t np = 0;
    for (size_t a = 0; a < nblk; a++)
        for (size_t b = 0; b <= a; b++) kp[np++] = (keyed){-bm[a * nblk + b], a * nblk + b};
    qsort(kp, np, sizeof(keyed), by_norm_desc);   /* -key down: keys up */
    double acc = 0;
    size_t out = 0;
    for (; out < np; out++) {
        double c = bc[kp[out].i];
        if ((acc + c) * -kp[out].v > 0x1p-43 * s) break;
        acc += c;
    }
    for (size_t k = out; k < np; k++) hot[k - out] = kp[k].i;
    return np - out;
}

/* The end of the iteration, on the Gram matrix H of the rows (n x n, lower
 * triangle by blocks: block (x, k), x >= k, at rows x, columns k; the
 * diagonal blocks whole) instead of on the rows.  Once a failed test finds
 * the large cosines in few pairs of blocks, another sweep over the rows
 * would spend most of its time on the other pairs, and a new Gram matrix
 * for the test after it.  Here each hot pair of blocks gets one pass of the
 * same rotations on its part of H (inner_pass), applied to H from both
 * sides: for every third block k, the pair's blocks of column k stacked,
 * [H_bk; H_ak] = U·[H_bk; H_ak] by the micro-kernel (gram_chunk), and the
 * pair's own block U·H·Uᵀ.  Each element of the pair's rows and columns is
 * read and written once: 2·(2·32)²·n flops a pair, against about as much
 * per pair of a sweep plus its dot products, but only for the hot pairs
 * and with no new Gram matrix.  The test then reads H again, at O(n²).
 * The eigenvalues of H are the σ²: the sum and the test are as on the
 * rows' Gram matrix, and rotations of a scaled-diagonally dominant H keep
 * the small eigenvalues' relative accuracy (Demmel–Veselić), as those of
 * the rows do.  Measured at d = 2048, in one process: the first test
 * after the third sweep (826–955 hot pairs, then 290–320, then 40–60) took
 * 5–8% less time than testing after the fifth (two more sweeps, then one
 * pass over 140–200 pairs). */

/* The pair in hand: its blocks (ascending), their rows, the pass's U (w x
 * w), packed for the micro-kernel (pk) and transposed (UT, ldu: w padded to
 * whole NR panels); A0: the pair's block of H before the pass; A: scratch. */
typedef struct {
    size_t blk[2], nb, nr[2], w, ldu, nc[3];   /* nc: chunks left of b, between b and a, below a */
    long rot;
    double *A, *A0, *U, *pk, *UT;
} gram_pair;

typedef struct {
    const jac_job *J;
    double *H;
    const size_t *hot;       /* the pairs, in the order they go */
    size_t nhot, nthr;
    _Atomic unsigned count, gen;   /* the barrier */
    _Atomic size_t *chunk;   /* per pair: the next chunk of third blocks to take */
    _Atomic size_t ready;    /* pairs prepared (task 0) */
    gram_pair slot[2];       /* pair h in slot[h % 2] */
    long total;
} gram_job;

/* All nthr tasks meet here (they run at once: one per thread). */
static void gram_barrier(gram_job *G) {
    unsigned g = atomic_load(&G->gen);
    if (atomic_fetch_add(&G->count, 1) + 1 == G->nthr) {
        atomic_store(&G->count, 0);
        atomic_fetch_add(&G->gen, 1);
    } else
        for (unsigned spins = 0; atomic_load(&G->gen) == g; spins++)
            if (spins > 64) sched_yield();
}

static int gram_disjoint(const gram_job *G, size_t h, size_t k) {
    size_t nblk = G->J->nblk, a = G->hot[h] / nblk, b = G->hot[h] % nblk, c = G->hot[k] / nblk,
           d = G->hot[k] % nblk;
    return a != c && a != d && b != c && b != d;
}

/* Block (x, k) of the full H, from the lower triangle: a pointer and the
 * strides of its rows and columns. */
static const double *gram_block(const jac_job *J, const double *H, size_t x, size_t k, size_t *rs, size_t *cs) {
    size_t ld = J->ld, jb = J->jb;
    if (x >= k) {
        *rs = ld;
        *cs = 1;
        return H + x * jb * ld + k * jb;
    }
    *rs = 1;
    *cs = ld;
    return H + k * jb * ld + x * jb;
}

/* Pair h's block of H, and one pass of rotations on it (task 0). */
static void gram_prep(gram_job *G, size_t h) {
    const jac_job *J = G->J;
    gram_pair *P = &G->slot[h % 2];
    size_t nblk = J->nblk, a = G->hot[h] / nblk, b = G->hot[h] % nblk, w = 0, off[2];
    P->blk[0] = b;
    P->blk[1] = a;
    P->nb = a == b ? 1 : 2;
    for (size_t i = 0; i < P->nb; i++) {
        P->nr[i] = blk_rows(J, P->blk[i]);
        off[i] = w;
        w += P->nr[i];
    }
    P->w = w;
    for (size_t i = 0; i < P->nb; i++)
        for (size_t j = 0; j < P->nb; j++) {
            size_t rs, cs;
            const double *B = gram_block(J, G->H, P->blk[i], P->blk[j], &rs, &cs);
            for (size_t r = 0; r < P->nr[i]; r++)
                for (size_t c = 0; c < P->nr[j]; c++) P->A[(off[i] + r) * w + off[j] + c] = B[r * rs + c * cs];
        }
    memcpy(P->A0, P->A, w * w * sizeof(double));
    double cmx;
    P->rot = inner_pass(J, P->A, P->U, w, 0, &cmx);
    if (P->rot > 0) {
        double *X[2] = {G->H + b * J->jb * J->ld, G->H + a * J->jb * J->ld};   /* no columns: packs U only */
        rotate_rows(J, P->U, X, P->nr, P->nb, 0, 0, P->pk, NULL, NULL, 1);
        size_t NR = (size_t)J->kern->nr;
        P->ldu = (w + NR - 1) / NR * NR;   /* Uᵀ, zero-padded to whole NR panels */
        for (size_t j = 0; j < w; j++)
            for (size_t i = 0; i < P->ldu; i++) P->UT[j * P->ldu + i] = i < w ? P->U[i * w + j] : 0.0;
        P->nc[0] = (b * J->jb + GRAM_CB * NR - 1) / (GRAM_CB * NR);
        P->nc[1] = a > b ? (a - b - 1 + GRAM_CB - 1) / GRAM_CB : 0;
        P->nc[2] = (nblk - a - 1 + GRAM_CB - 1) / GRAM_CB;
        G->total += P->rot;
    }
}

/* The pair's own blocks: (U·A0)·Uᵀ, the lower triangle's part (task 0). */
static void gram_own_block(gram_job *G, size_t h, double *ws) {
    const jac_job *J = G->J;
    gram_pair *P = &G->slot[h % 2];
    size_t w = P->w, ld = J->ld, jb = J->jb;
    fdd_dgemm_st(J->kern, 0, 0, w, w, w, 0, P->U, w, P->A0, w, P->A, w, 0, ws);
    fdd_dgemm_st(J->kern, 0, 1, w, w, w, 0, P->A, w, P->U, w, P->A0, w, 0, ws);
    for (size_t i = 0, oi = 0; i < P->nb; oi += P->nr[i], i++)
        for (size_t j = 0, oj = 0; j <= i; oj += P->nr[j], j++)
            for (size_t r = 0; r < P->nr[i]; r++)
                for (size_t c = 0; c < P->nr[j]; c++) {
                    size_t p = oi + r, q = oj + c;   /* the lower triangle's value on both sides of a diagonal block */
                    G->H[(P->blk[i] * jb + r) * ld + P->blk[j] * jb + c] = p >= q ? P->A0[p * w + q] : P->A0[q * w + p];
                }
}

/* Chunk c of pair h (blocks b <= a), in three kinds by where the lower
 * triangle keeps the pair's blocks of column k.  Left of b (k < b): in the
 * pair's own rows, rotated in place, GRAM_CB micro-kernel tiles of columns
 * at a time.  Between (b < k < a): H_bk is kept as H_kb, so GRAM_CB third
 * blocks are gathered into the panel Z, Z = U·Z, put back.  Below a (k >
 * a): both kept as rows of block k, [H_kb H_ka] = [H_kb H_ka]·Uᵀ, by the
 * micro-kernel with Uᵀ read in place — each element the same chain as U's
 * product from the left. */
static void gram_chunk(gram_job *G, size_t h, size_t c, double *Z, double *tile, double *bt) {
    const jac_job *J = G->J;
    const gram_pair *P = &G->slot[h % 2];
    const fdd_dgemm_kernel *kn = J->kern;
    size_t ld = J->ld, jb = J->jb, n = J->n, NR = (size_t)kn->nr, MR = (size_t)kn->mr;
    size_t b = P->blk[0], a = P->blk[P->nb - 1], off[2] = {0, P->nr[0]}, w = P->w;
    double *X[2] = {G->H + b * jb * ld, G->H + a * jb * ld};
    if (c < P->nc[0]) {
        size_t j0 = c * GRAM_CB * NR, j1 = j0 + GRAM_CB * NR < b * jb ? j0 + GRAM_CB * NR : b * jb;
        rotate_rows(J, P->U, X, P->nr, P->nb, j0, j1, P->pk, tile, bt, 0);
        return;
    }
    if ((c -= P->nc[0]) < P->nc[1]) {
        size_t k0 = b + 1 + c * GRAM_CB, k1 = k0 + GRAM_CB < a ? k0 + GRAM_CB : a, ldz = GRAM_LDZ, nz = 0;
        size_t cz[GRAM_CB + 1];
        cz[0] = 0;
        for (size_t k = k0; k < k1; k++, nz++) cz[nz + 1] = cz[nz] + blk_rows(J, k);
        for (int put = 0; put < 2; put++) {
            if (put) {
                jac_job Jz = *J;
                Jz.ld = ldz;
                double *XZ[2] = {Z, Z + off[1] * ldz};
                rotate_rows(&Jz, P->U, XZ, P->nr, P->nb, 0, cz[nz], P->pk, tile, bt, 0);
            }
            for (size_t q = 0; q < nz; q++) {
                size_t k = k0 + q, nk = cz[q + 1] - cz[q];
                double *hb = G->H + k * jb * ld + b * jb, *ha = X[1] + k * jb, *zb = Z + cz[q],
                       *za = Z + off[1] * ldz + cz[q];
                for (size_t r = 0; r < P->nr[0]; r++)   /* H_bk = H_kbᵀ */
                    for (size_t col = 0; col < nk; col++)
                        if (put) hb[col * ld + r] = zb[r * ldz + col];
                        else zb[r * ldz + col] = hb[col * ld + r];
                for (size_t r = 0; r < P->nr[1]; r++)
                    if (put) memcpy(ha + r * ld, za + r * ldz, nk * sizeof(double));
                    else memcpy(za + r * ldz, ha + r * ld, nk * sizeof(double));
            }
        }
        return;
    }
    c -= P->nc[1];
    size_t r0 = (a + 1 + c * GRAM_CB) * jb, r1 = r0 + GRAM_CB * jb < n ? r0 + GRAM_CB * jb : n;
    double *ap = bt;   /* MR rows of [H_kb H_ka], packed [j][MR] */
    for (size_t i0 = r0; i0 < r1; i0 += MR) {
        size_t mr = r1 - i0 < MR ? r1 - i0 : MR;
#if defined(__GNUC__)
        /* the rows two groups on: two short segments per row, far apart,
         * which the hardware does not prefetch (this part 30% faster) */
        for (size_t r = 0; r < 2 * MR && i0 + 2 * MR + r < r1; r++)
            for (size_t l = 0; l < jb; l += 8) {
                __builtin_prefetch(G->H + (i0 + 2 * MR + r) * ld + b * jb + l, 1);
                __builtin_prefetch(G->H + (i0 + 2 * MR + r) * ld + a * jb + l, 1);
            }
#endif
        for (size_t r = 0; r < MR; r++) {
            const double *hb = G->H + (i0 + r) * ld + b * jb, *ha = G->H + (i0 + r) * ld + a * jb;
            for (size_t j = 0; j < P->nr[0]; j++) ap[j * MR + r] = r < mr ? hb[j] : 0.0;
            for (size_t j = P->nr[0]; j < w; j++) ap[j * MR + r] = r < mr ? ha[j - off[1]] : 0.0;
        }
        for (size_t p = 0; p < P->ldu; p += NR) {
            kn->fn(w, ap, P->UT + p, P->ldu, tile, NR, 0);
            for (size_t r = 0; r < mr; r++)
                for (size_t q = 0; q < NR && p + q < w; q++) {
                    size_t i = p + q, col = i < off[1] || P->nb == 1 ? b * jb + i : a * jb + (i - off[1]);
                    G->H[(i0 + r) * ld + col] = tile[r * NR + q];
                }
        }
    }
}

/* Task t of nthr, one per thread.  Pair h's chunks are taken by every task;
 * task 0 first prepares pair h + 1 when it shares no block with pair h
 * (then nothing it reads is being written), and after the chunks (a
 * barrier) writes pair h's own blocks and, if not done yet, prepares pair
 * h + 1.  A task starts on pair h + 1's chunks once it is ready.  Which
 * thread does a chunk changes no bit. */
static void gram_pass_task(void *arg, size_t t, int thread) {
    gram_job *G = arg;
    const jac_job *J = G->J;
    double *tb = J->tb + (size_t)thread * J->tbd, *tile = tb + TB_TILE, *bt = tb + TB_BT, *ws = tb + TB_WS,
           *Z = tb + TB_Z;
    if (t == 0 && G->nhot) {
        gram_prep(G, 0);
        atomic_store(&G->ready, 1);
    }
    for (size_t h = 0; h < G->nhot; h++) {
        spin_until(&G->ready, h + 1);
        int ahead = t == 0 && h + 1 < G->nhot && gram_disjoint(G, h, h + 1);
        if (ahead) gram_prep(G, h + 1);
        const gram_pair *P = &G->slot[h % 2];
        if (P->rot > 0)
            for (size_t c, nc = P->nc[0] + P->nc[1] + P->nc[2]; (c = atomic_fetch_add(&G->chunk[h], 1)) < nc;)
                gram_chunk(G, h, c, Z, tile, bt);
        gram_barrier(G);
        if (t == 0) {
            if (G->slot[h % 2].rot > 0) gram_own_block(G, h, ws);
            if (!ahead && h + 1 < G->nhot) gram_prep(G, h + 1);
            atomic_store(&G->ready, h + 2);
        }
    }
}

/* One pass over the hot pairs (order: gram_order).  Returns the number of
 * rotations. */
static long gram_pass(fdd_ctx *ctx, const jac_job *J, double *H, const size_t *hot, size_t nhot, double *buf,
                      _Atomic size_t *chunk) {
    gram_job G = {.J = J, .H = H, .hot = hot, .nhot = nhot, .nthr = (size_t)fdd_ctx_threads(ctx), .chunk = chunk};
    atomic_init(&G.count, 0);
    atomic_init(&G.gen, 0);
    atomic_init(&G.ready, 0);
    for (size_t h = 0; h < nhot; h++) atomic_init(&chunk[h], 0);
    for (int i = 0; i < 2; i++) {
        double *b = buf + (size_t)i * GRAM_SLOT;
        G.slot[i] = (gram_pair){.A = b, .A0 = b + JW * JW, .U = b + 2 * JW * JW, .pk = b + 3 * JW * JW,
                                .UT = b + 3 * JW * JW + (JW + 32) * JW};
    }
    fdd_parallel(ctx, gram_pass_task, &G, G.nthr);
    return G.total;
}

/* The order of the hot pairs: by the rounds of a round-robin tournament of
 * the blocks (circle method: with m = nblk rounded up to even, blocks a, b
 * < m − 1 meet in round (a + b) mod (m − 1), block m − 1 meets a in round
 * 2a mod (m − 1)), a block with itself first, so that neighbours in the
 * list share no block and the next pair can be prepared while one is
 * applied. */
static void gram_order(size_t *hot, size_t nhot, size_t nblk, keyed *kp) {
    size_t m = nblk + (nblk & 1);
    for (size_t h = 0; h < nhot; h++) {
        size_t a = hot[h] / nblk, b = hot[h] % nblk, r;
        if (a == b) r = 0;
        else if (a == m - 1) r = 1 + (2 * b) % (m - 1);
        else r = 1 + (a + b) % (m - 1);
        kp[h] = (keyed){-(double)(r * nblk + b), hot[h]};   /* by_norm_desc: keys up */
    }
    qsort(kp, nhot, sizeof(keyed), by_norm_desc);
    for (size_t h = 0; h < nhot; h++) hot[h] = kp[h].i;
}

/* The sweep's schedule: 4 blocks per task (an index >= *nblk: none), the
 * tasks in rounds of *per with disjoint blocks.  With 5 to 64 blocks of
 * QJB rows: the lines of the affine space AG(m, 4) (m = 2: 16 points, m =
 * 3: 64; points past the last block are empty), a round being the lines of
 * one direction.  Every pair of blocks lies on exactly one line, so a task
 * rotates six pairs of blocks for 2·(4·QJB)²·n flops of U·X: a sweep's U·X
 * is 2.67 n³ instead of the 4 n³ of pairs.  Otherwise blocks of JB rows in
 * pairs, by the circle method (ring[0] fixed, the rest rotating by one),
 * index nblk being the bye.  NULL when out of memory. */
static size_t *make_schedule(size_t n, size_t *jb, size_t *nblk, size_t *ntask, size_t *per) {
    size_t q = (n + QJB - 1) / QJB, *tk;
    if (q >= 5 && q <= 64) {
        /* GF(4) as 2-bit numbers: addition is xor, multiplication this table */
        static const unsigned char mul[4][4] = {{0, 0, 0, 0}, {0, 1, 2, 3}, {0, 2, 3, 1}, {0, 3, 1, 2}};
        size_t m = q <= 16 ? 2 : 3, P = (size_t)1 << (2 * m), t = 0;
        *jb = QJB;
        *nblk = q;
        *per = P / 4;
        *ntask = (P - 1) / 3 * (P / 4);
        if (!(tk = fdd_malloc(*ntask * 4 * sizeof(size_t)))) return NULL;
        for (size_t dv = 1; dv < P; dv++) {   /* directions: lowest nonzero digit 1 */
            size_t lo = 0;
            while (((dv >> (2 * lo)) & 3) == 0) lo++;
            if (((dv >> (2 * lo)) & 3) != 1) continue;
            unsigned char seen[64] = {0};
            for (size_t p = 0; p < P; p++) {
                if (seen[p]) continue;
                for (size_t k = 0; k < 4; k++) {   /* the point p + k·dv */
                    size_t x = 0;
                    for (size_t c = 0; c < m; c++)
                        x |= (size_t)(((p >> (2 * c)) & 3) ^ mul[k][(dv >> (2 * c)) & 3]) << (2 * c);
                    seen[x] = 1;
                    tk[4 * t + k] = x;
                }
                t++;
            }
        }
        return tk;
    }
    size_t nb = (n + JB - 1) / JB, nr = nb + (nb & 1), *ring;
    *jb = JB;
    *nblk = nb;
    *per = nr / 2;
    *ntask = (nr - 1) * (nr / 2);
    tk = fdd_malloc(*ntask * 4 * sizeof(size_t));
    ring = fdd_malloc(nr * sizeof(size_t));
    if (!tk || !ring) {
        fdd_free(tk);
        fdd_free(ring);
        return NULL;
    }
    for (size_t i = 0; i < nr; i++) ring[i] = i;
    for (size_t round = 0; round + 1 < nr; round++) {
        for (size_t t = 0; t < nr / 2; t++) {
            size_t *e = tk + 4 * (round * (nr / 2) + t);
            e[0] = ring[t];
            e[1] = ring[nr - 1 - t];
            e[2] = e[3] = nb;
        }
        size_t last = ring[nr - 1];
        for (size_t i = nr - 1; i > 1; i--) ring[i] = ring[i - 1];
        ring[1] = last;
    }
    fdd_free(ring);
    return tk;
}

/* Rotations stop at |cos| <= 2^-33: such a pair moves the sum by less than
 * 2^-67 of its smaller norm, and the correction above accounts for it. */
#define ROT_TOL 0x1p-33
/* The stopping test runs once a sweep saw no cosine above this (3/64: at
 * d = 2048 after the third sweep, where the hot pairs are under half). */
#define TEST_BELOW 0x1.8p-5

static fdd_status jacobi_nuclear(fdd_ctx *ctx, double *G, size_t n, size_t ld, size_t len, size_t *lead,
                                 double *ws, double *M, double *sum, fdd_fd_result *diag, fdd_error *err) {
    *sum = 0;
    if (n == 0) return FDD_OK;
    size_t jb, nblk, ntask, per, nt = (size_t)fdd_ctx_threads(ctx);
    size_t *tk = make_schedule(n, &jb, &nblk, &ntask, &per);
    const fdd_dgemm_kernel *kern = fdd_dgemm_kernel_for(fdd_ctx_isa(ctx));
    size_t tbd = (TB_WS + fdd_dgemm_ws_doubles(kern) + 7) & ~(size_t)7, np = nblk * (nblk + 1) / 2;
    _Atomic size_t *step = tk ? fdd_malloc(nblk * sizeof(*step)) : NULL;
    long *rot = tk ? fdd_malloc(ntask * sizeof(long)) : NULL;
    double *cmx = tk ? fdd_malloc(ntask * sizeof(double)) : NULL,
           *gram = tk ? fdd_malloc(nblk * JB * JB * sizeof(double)) : NULL;
    double *tb = fdd_aligned_alloc(nt * tbd * sizeof(double)), *bm = tk ? fdd_malloc(2 * nblk * nblk * sizeof(double)) : NULL;
    keyed *ord = fdd_malloc(n * sizeof(keyed)), *kp = tk ? fdd_malloc(np * sizeof(keyed)) : NULL;
    size_t *hot = tk ? fdd_malloc(np * sizeof(size_t)) : NULL;
    double *dn = tk ? fdd_malloc((2 * n + 2 * nblk) * sizeof(double)) : NULL,
           *gbuf = fdd_aligned_alloc(2 * GRAM_SLOT * sizeof(double));
    _Atomic size_t *chunk = tk ? fdd_malloc(np * sizeof(*chunk)) : NULL;
    fdd_status st = FDD_OK;
    if (!tk || !step || !rot || !cmx || !gram || !tb || !bm || !ord || !kp || !hot || !dn || !gbuf || !chunk) {
        st = fdd_fail(err, FDD_E_NOMEM, "Fréchet distance: out of memory");
        goto out;
    }
    for (size_t b = 0; b < nblk; b++) lead[b] = b * jb;   /* R is triangular */
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, norm2(G + i * ld, len));
    jac_job J = {G, gram, n, ld, len, nblk, jb, ROT_TOL, mx * 0x1p-106, 0, kern, lead, tk, per,
                 step, rot, cmx, tb, tbd};
    int it, done = 0, tested = 0, on_gram = 0;
    double sd[2] = {0, 0};   /* the last test's Σd − correction, Σd */
    size_t nhot = 0;
    long total_last = 0;
    double seen_last = 0;
    /* Sweeps over the rows until a test fails with few hot pairs of blocks,
     * then passes over the Gram matrix (gram_pass); MAX_SWEEPS in all. */
    for (it = 1; it <= MAX_SWEEPS && !done; it++) {
        if (on_gram) {
            gram_order(hot, nhot, nblk, kp);
            long r = gram_pass(ctx, &J, M, hot, nhot, gbuf, chunk);
            diag->gram_passes++;
            gram_test(ctx, M, n, ld, J.floor2, jb, nblk, dn, sd, &done, ord, bm, bm + nblk * nblk);
            if (r == 0) done = 1;   /* nothing above ROT_TOL in the hot pairs: the rest is below the margin */
            if (!done) nhot = hot_pairs(bm, bm + nblk * nblk, nblk, sd[1], kp, hot);
            continue;
        }
        if (it > 1) {   /* sorted into M, which becomes the rows; after a test, in its order */
            if (!tested) sort_order(&J, ord);
            J.skip2 = total_last == 0 ? 0 : (TASK_SKIP * seen_last) * (TASK_SKIP * seen_last);
            sort_rows(&J, ord, M);
            double *t = J.x;
            J.x = M;
            M = t;
            for (size_t b = 0; b < nblk; b++) lead[b] = 0;
        }
        fdd_parallel(ctx, gram_task, &J, nblk);
        long total = 0;
        double seen = 0;
        for (size_t b = 0; b < nblk; b++) atomic_init(&step[b], 0);
        fdd_parallel(ctx, jac_task, &J, ntask);
        size_t skipped = 0;
        for (size_t t = 0; t < ntask; t++) {
            if (rot[t] < 0) skipped++;
            else total += rot[t];
            seen = fmax(seen, cmx[t]);
        }
        diag->sweeps++;
        diag->skipped_tasks += (int)skipped;
        total_last = total;
        seen_last = seen;
        tested = 0;
        if (total == 0 || seen < TEST_BELOW) {
            syrk_lower(ctx, n, len, J.x, ld, M, ld, ws);
            gram_test(ctx, M, n, ld, J.floor2, jb, nblk, dn, sd, &done, ord, bm, bm + nblk * nblk);
            if (total == 0 && !skipped) done = 1;
            tested = 1;
            /* at most half the pairs hot: the rest on the Gram matrix, which
             * the test has (a pass costs about as much per pair as a sweep
             * and the test after it per 1000–1200 pairs at d = 2048) */
            if (!done && (nhot = hot_pairs(bm, bm + nblk * nblk, nblk, sd[1], kp, hot)) <= np / 2) on_gram = 1;
        }
    }
    *sum = sd[0];
    if (!done)
        st = fdd_fail(err, FDD_E_NUMERIC,
                      "Fréchet distance: Jacobi did not converge in %d sweeps (n = %zu)", MAX_SWEEPS, n);
out:
    fdd_free(tk); fdd_free((void *)step); fdd_free(rot); fdd_free(cmx); fdd_free(gram);
    fdd_free(bm); fdd_free(ord); fdd_free(kp); fdd_free(hot); fdd_free(dn); fdd_free((void *)chunk);
    fdd_aligned_free(tb); fdd_aligned_free(gbuf);   /* G and M are the caller's */
    return st;
}

/* dst (m rows of ldd) = the transpose of the lower triangle of src's first
 * m columns, zero elsewhere; in 32 x 32 tiles. */
static void transpose_lower(const double *src, size_t m, size_t lds, double *dst, size_t ldd) {
    for (size_t j = 0; j < m; j++) memset(dst + j * ldd, 0, ldd * sizeof(double));
    for (size_t j0 = 0; j0 < m; j0 += 32)
        for (size_t i0 = j0; i0 < m; i0 += 32)
            for (size_t j = j0; j < m && j < j0 + 32; j++)
                for (size_t i = i0 > j ? i0 : j; i < m && i < i0 + 32; i++) dst[j * ldd + i] = src[i * lds + j];
}

/* How far the rows of R = Lᵀ are from their own axes: the mean over rows of
 * 1 − R_ii²/|r_i|² (0 when R is diagonal), L lower triangular in the first m
 * columns of Y. */
static fdd_status off_axis(const double *Y, size_t m, size_t ld, double *off, fdd_error *err) {
    double *r = fdd_calloc(m, sizeof(double)), s = 0;
    if (!r) return fdd_fail(err, FDD_E_NOMEM, "Fréchet distance: out of memory");
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j <= i; j++) r[j] += Y[i * ld + j] * Y[i * ld + j];
    for (size_t i = 0; i < m; i++)
        if (r[i] > 0) s += 1 - Y[i * ld + i] * Y[i * ld + i] / r[i];
    *off = s / (double)m;
    fdd_free(r);
    return FDD_OK;
}

/* LQ steps of Lᵀ after the first LQ (QR iteration on the factor), at most
 * LQ_STEPS, while off_axis > LQ_OFF_AXIS. */
#define LQ_STEPS 3
#define LQ_OFF_AXIS 0.05

/* Row stride of the Jacobi's vectors (m of them, m long, padded to whole
 * 8-double lanes): an odd number of cache lines, since the rotations read
 * a task's rows at once, which a power-of-two stride would pile into one L1
 * set. */
static size_t jac_ld(size_t m) {
    size_t lm = (m + 7) & ~(size_t)7;
    return (lm / 8) % 2 == 0 ? lm + 8 : lm;
}

/* Doubles in each of nuclear_norm's three work matrices for an r x c input:
 * m = min(r, c) rows of max(PAD8(max(r, c)), jac_ld(m)) at most. */
static int slot_doubles(size_t r, size_t c, size_t *out) {
    size_t m = r < c ? r : c, n = r < c ? c : r, w = PAD8(n) > jac_ld(m) ? PAD8(n) : jac_ld(m);
    return fdd_mul_ok(m, w, out);
}

/* Σσ(X) for X (rows x cols, row stride ldx).  Preconditioned after
 * Drmač–Veselić: with m = min(rows, cols) vectors in order of decreasing
 * norm (P), the Householder LQ P·X = L·Q, and one-sided Jacobi on the
 * columns of L (the rows of R = Lᵀ).  The LQ saves about 40% of the sweeps
 * on a 1/k spectrum; ordering by norm does as well here as the pivots of a
 * QR with column pivoting, which cost a Gram matrix and a pivoted Cholesky
 * (measured at d = 2048: the same sweep counts).  slot: three work matrices
 * of slot_doubles(rows, cols) each, the third of which may be X itself (X is
 * read only before it is written): the same few large blocks serve every
 * stage, since a fresh page costs more than most of the arithmetic on it. */
static fdd_status nuclear_norm(fdd_ctx *ctx, const double *X, size_t rows, size_t cols, size_t ldx,
                               double *const slot[3], double *sum, fdd_fd_result *diag, fdd_error *err) {
    *sum = 0;
    diag->sweeps = diag->lq_steps = diag->gram_passes = diag->skipped_tasks = 0;
    if (rows == 0 || cols == 0) return FDD_OK;
    size_t m = rows < cols ? rows : cols, n = rows < cols ? cols : rows, ld = PAD8(n), lm = jac_ld(m);
    double *Y = slot[0], *Z = slot[1], *Lc = slot[2];
    double *V = fdd_aligned_alloc(2 * QB * ld * sizeof(double)), *T = fdd_malloc(2 * QB * QB * sizeof(double)),
           *Wt = fdd_aligned_alloc(2 * m * QB * sizeof(double)), *ws = gemm_ws(ctx);
    keyed *order = fdd_malloc(m * sizeof(keyed));
    size_t *lead = fdd_malloc(((m + QJB - 1) / QJB) * sizeof(size_t));
    fdd_status st = FDD_OK;
    if (!V || !T || !Wt || !ws || !order || !lead) {
        st = fdd_fail(err, FDD_E_NOMEM, "Fréchet distance: out of memory");
        goto out;
    }
    /* Y: the m vectors (rows of X, or its columns when it is tall), by
     * decreasing norm, ties by index. */
    if (rows <= cols) {
        for (size_t i = 0; i < m; i++) order[i] = (keyed){norm2(X + i * ldx, n), i};
        qsort(order, m, sizeof(keyed), by_norm_desc);
        for (size_t i = 0; i < m; i++) {
            memcpy(Y + i * ld, X + order[i].i * ldx, n * sizeof(double));
            memset(Y + i * ld + n, 0, (ld - n) * sizeof(double));
        }
    } else {
        for (size_t i = 0; i < m; i++) {
            double v = 0;
            for (size_t c = 0; c < n; c++) v += X[c * ldx + i] * X[c * ldx + i];
            order[i] = (keyed){v, i};
        }
        qsort(order, m, sizeof(keyed), by_norm_desc);
        for (size_t i = 0; i < m; i++)
            for (size_t c = 0; c < ld; c++) Y[i * ld + c] = c < n ? X[c * ldx + order[i].i] : 0;
    }
    house_lq(ctx, Y, m, n, ld, V, T, Wt, ws);
    /* Further LQ steps of Lᵀ (QR iteration on the factor) while the rows of
     * R = Lᵀ are far from their own axes: each step costs about half a
     * sweep and saves up to a whole one (d = 2048: the 1/k pair starts at
     * 0.52 and takes three steps, 8 sweeps -> 6; the flat pair starts at
     * 0.10 and takes two, 8 sweeps -> 6 and 14% less time; the threshold
     * 0.15 gave it none, 0.02 five, which cost more than they saved). */
    for (int step = 0; step < LQ_STEPS; step++) {
        double off = 0;
        if ((st = off_axis(Y, m, ld, &off, err)) || off <= LQ_OFF_AXIS) break;
        transpose_lower(Y, m, ld, Z, ld);   /* Z = Lᵀ, the next matrix to factor */
        double *t = Y;
        Y = Z;
        Z = t;
        house_lq(ctx, Y, m, m, ld, V, T, Wt, ws);
        diag->lq_steps++;
    }
    if (st) goto out;
    transpose_lower(Y, m, ld, Lc, lm);   /* R = Lᵀ, the vectors of the Jacobi */
    st = jacobi_nuclear(ctx, Lc, m, lm, m, lead, ws, Z, sum, diag, err);
out:
    fdd_aligned_free(V); fdd_free(T); fdd_aligned_free(Wt); fdd_aligned_free(ws); fdd_free(order); fdd_free(lead);
    return st;
}

/* ------------------------------------------------------------ public */

static double neumaier_sum(const double *v, size_t n, size_t stride) {
    double s = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
        double x = v[i * stride], t = s + x;
        c += fabs(s) >= fabs(x) ? (s - t) + x : (x - t) + s;
        s = t;
    }
    return s + c;
}

static double mean_term(size_t d, const double *mu1, const double *mu2) {
    double s = 0, c = 0;
    for (size_t i = 0; i < d; i++) {
        double x = (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]), t = s + x;
        c += s >= x ? (s - t) + x : (x - t) + s;   /* Neumaier, all terms >= 0 */
        s = t;
    }
    return s + c;
}

static void finish(fdd_fd_result *r) {
    r->fd = ((r->mean_term + r->trace1) + r->trace2) - 2 * r->sqrt_trace;
}

/* G = L1ᵀ·T2 in row strips of SY_B, one single-threaded GEMM each: column
 * i of L1 is zero above row i, so strip i0's sum starts at row i0 (only
 * zeros are skipped); the first strips are the longest. */
typedef struct {
    const fdd_dgemm_kernel *kern;
    size_t d, r1, r2, ld, ldg;
    const double *L1, *T2;
    double *G, *ws;
} prod_job;

static void prod_task(void *arg, size_t t, int thread) {
    prod_job *J = arg;
    size_t i0 = t * SY_B, ib = J->r1 - i0 < SY_B ? J->r1 - i0 : SY_B;
    fdd_dgemm_st(J->kern, 1, 0, ib, J->r2, J->d - i0, 0, J->L1 + i0 * J->ld + i0, J->ld, J->T2 + i0 * J->ld, J->ld,
                 J->G + i0 * J->ldg, J->ldg, 0, thread_ws(J->kern, J->ws, thread));
}

/* An even e with max_i |S_ii| · 2^-e in [1/2, 2) (0 for a zero diagonal). */
static int scale_exponent(size_t d, const double *S) {
    double mx = 0;
    for (size_t i = 0; i < d; i++) mx = fmax(mx, fabs(S[i * d + i]));
    int e = 0;
    if (mx > 0) frexp(mx, &e);
    return e - (e & 1);
}

fdd_status fdd_frechet(fdd_ctx *ctx, size_t d, const double *mu1, const double *s1, const double *mu2,
                       const double *s2, fdd_fd_result *out, fdd_error *err) {
    memset(out, 0, sizeof *out);
    size_t dd;
    if (d == 0 || !fdd_mul_ok(d, d, &dd) || dd > SIZE_MAX / 8 / 6)
        return fdd_fail(err, FDD_E_ARG, "Fréchet distance: bad dimension %zu", d);
    for (size_t i = 0; i < d; i++)
        if (!isfinite(mu1[i]) || !isfinite(mu2[i]))
            return fdd_fail(err, FDD_E_ARG, "Fréchet distance: non-finite mean");
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j <= i; j++)
            if (!isfinite(s1[i * d + j]) || !isfinite(s2[i * d + j]))
                return fdd_fail(err, FDD_E_ARG, "Fréchet distance: non-finite covariance");
    out->mean_term = mean_term(d, mu1, mu2);
    out->trace1 = neumaier_sum(s1, d, d + 1);
    out->trace2 = neumaier_sum(s2, d, d + 1);

    /* Three d x (PAD8(d) + 8) blocks serve every stage (the two pivoted
     * Cholesky factors, in place; then T2 and G; then nuclear_norm's
     * slots). */
    size_t ld = PAD4(d), cap;
    if (!fdd_mul_ok(d, ((d + 7) & ~(size_t)7) + 8, &cap) || cap > SIZE_MAX / 8 / 6)
        return fdd_fail(err, FDD_E_ARG, "Fréchet distance: bad dimension %zu", d);
    double *W = fdd_aligned_alloc(cap * sizeof(double)), *L1 = fdd_aligned_alloc(cap * sizeof(double)),
           *L2 = fdd_aligned_alloc(cap * sizeof(double)), *ws = gemm_ws(ctx);
    size_t *p1 = fdd_malloc(d * sizeof(size_t)), *p2 = fdd_malloc(d * sizeof(size_t)),
           *inv2 = fdd_malloc(d * sizeof(size_t));
    fdd_status st = FDD_OK;
    if (!W || !L1 || !L2 || !ws || !p1 || !p2 || !inv2) {
        st = fdd_fail(err, FDD_E_NOMEM, "Fréchet distance: cannot allocate work space for d = %zu", d);
        goto done;
    }
    size_t r1, r2;
    /* Each covariance is scaled by an even power of two bringing its largest
     * diagonal entry near 1, and the result scaled back: exact, so the bits
     * are those of the unscaled computation wherever that neither overflows
     * nor underflows, and covariances of any magnitude work (the products of
     * the factors would overflow from about 1e150). */
    int e1 = scale_exponent(d, s1), e2 = scale_exponent(d, s2);
    {
        chol_job cj = {fdd_dgemm_kernel_for(fdd_ctx_isa(ctx)), d, ld, {s1, s2}, {e1, e2}, {L1, L2}, ws, {p1, p2},
                       {0, 0}, {0, 0}};
        fdd_parallel(ctx, chol_task, &cj, 2);
        if (cj.bad[0] || cj.bad[1]) {
            st = fdd_fail(err, FDD_E_NOMEM, "Fréchet distance: out of memory");
            goto done;
        }
        r1 = cj.rank[0];
        r2 = cj.rank[1];
    }
    out->rank1 = (int)r1;
    out->rank2 = (int)r2;
    if (r1 == 0 || r2 == 0) goto done;   /* a zero covariance: trace term 0 */
    /* T2 row j = row of L2 for original index p1[j] (L1's pivot order). */
    double *T2 = W;
    for (size_t i = 0; i < d; i++) inv2[p2[i]] = i;
    for (size_t j = 0; j < d; j++) memcpy(T2 + j * ld, L2 + inv2[p1[j]] * ld, ld * sizeof(double));
    /* G = L1ᵀ·T2 (r1 x r2): row b is column b of F2ᵀF1 up to a permutation. */
    size_t ldg = PAD4(r2);
    double *G = L2;   /* reuse: d x ld >= r1 x ldg */
    {
        prod_job pj = {fdd_dgemm_kernel_for(fdd_ctx_isa(ctx)), d, r1, r2, ld, ldg, L1, T2, G, ws};
        fdd_parallel(ctx, prod_task, &pj, (r1 + SY_B - 1) / SY_B);
    }
    {
        double *const slot[3] = {W, L1, G};
        st = nuclear_norm(ctx, G, r1, r2, ldg, slot, &out->sqrt_trace, out, err);
    }
    out->sqrt_trace = ldexp(out->sqrt_trace, (e1 + e2) / 2);
done:
    finish(out);
    fdd_aligned_free(W);
    fdd_aligned_free(L1); fdd_aligned_free(L2); fdd_aligned_free(ws);
    fdd_free(p1); fdd_free(p2); fdd_free(inv2);
    return st;
}

/* Centred features in float64, transposed: out row c = feature c over the
 * n images (length PAD4(n), zero padded); mean in mu.  Two-pass in a fixed
 * order. */
static void centre_t(const float *x, size_t n, size_t d, double *mu, double *out, size_t ldo) {
    for (size_t c = 0; c < d; c++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += (double)x[i * d + c];
        mu[c] = s / (double)n;
        for (size_t i = 0; i < n; i++) out[c * ldo + i] = (double)x[i * d + c] - mu[c];
        for (size_t i = n; i < ldo; i++) out[c * ldo + i] = 0;
    }
}

fdd_status fdd_frechet_features(fdd_ctx *ctx, size_t d, const float *x1, size_t n1, const float *x2,
                                size_t n2, fdd_fd_result *out, fdd_error *err) {
    memset(out, 0, sizeof *out);
    if (d == 0 || n1 < 2 || n2 < 2)
        return fdd_fail(err, FDD_E_ARG, "Fréchet distance: need d >= 1 and at least 2 images per set");
    size_t l1 = PAD4(n1), l2 = PAD4(n2), a, b;
    if (!fdd_mul_ok(d, l1, &a) || !fdd_mul_ok(d, l2, &b) || a > SIZE_MAX / 16 || b > SIZE_MAX / 16)
        return fdd_fail(err, FDD_E_ARG, "Fréchet distance: too many features");
    for (size_t i = 0; i < n1 * d; i++)
        if (!isfinite(x1[i])) return fdd_fail(err, FDD_E_ARG, "Fréchet distance: non-finite feature");
    for (size_t i = 0; i < n2 * d; i++)
        if (!isfinite(x2[i])) return fdd_fail(err, FDD_E_ARG, "Fréchet distance: non-finite feature");
    double *mu1 = fdd_malloc(d * sizeof(double)), *mu2 = fdd_malloc(d * sizeof(double));
    double *X1 = fdd_aligned_alloc(a * sizeof(double)), *X2 = fdd_aligned_alloc(b * sizeof(double));
    double *G = NULL, *wk1 = NULL, *wk2 = NULL;   /* the product and nuclear_norm's other slots */
    fdd_status st = FDD_OK;
    if (!mu1 || !mu2 || !X1 || !X2) goto nomem;
    centre_t(x1, n1, d, mu1, X1, l1);
    centre_t(x2, n2, d, mu2, X2, l2);
    out->mean_term = mean_term(d, mu1, mu2);
    {
        double s = 0, c = 0;
        for (size_t k = 0; k < d; k++) {
            double v = dot4(X1 + k * l1, X1 + k * l1, l1), t = s + v;
            c += fabs(s) >= fabs(v) ? (s - t) + v : (v - t) + s;
            s = t;
        }
        out->trace1 = (s + c) / (double)(n1 - 1);
        s = c = 0;
        for (size_t k = 0; k < d; k++) {
            double v = dot4(X2 + k * l2, X2 + k * l2, l2), t = s + v;
            c += fabs(s) >= fabs(v) ? (s - t) + v : (v - t) + s;
            s = t;
        }
        out->trace2 = (s + c) / (double)(n2 - 1);
    }
    if (n1 > d || n2 > d) {
        /* More images than dimensions: the d x d covariances are the smaller factors. */
        fdd_fd_result r;
        double *S1 = fdd_aligned_alloc(d * d * sizeof(double)), *S2 = fdd_aligned_alloc(d * d * sizeof(double));
        if (!S1 || !S2) { fdd_aligned_free(S1); fdd_aligned_free(S2); goto nomem; }
        if ((st = fdd_dgemm(ctx, 0, 1, d, d, l1, 0, X1, l1, X1, l1, S1, d, 0, NULL, err)) ||
            (st = fdd_dgemm(ctx, 0, 1, d, d, l2, 0, X2, l2, X2, l2, S2, d, 0, NULL, err))) {
            fdd_aligned_free(S1); fdd_aligned_free(S2);
            goto done;
        }
        for (size_t k = 0; k < d * d; k++) { S1[k] /= (double)(n1 - 1); S2[k] /= (double)(n2 - 1); }
        st = fdd_frechet(ctx, d, mu1, S1, mu2, S2, &r, err);
        fdd_aligned_free(S1); fdd_aligned_free(S2);
        /* the trace term and how it went from the covariance route, the
         * other terms from the features */
        r.mean_term = out->mean_term;
        r.trace1 = out->trace1;
        r.trace2 = out->trace2;
        *out = r;
        finish(out);
        goto done;
    }
    /* G = X1cᵀ·X2c (n1 x n2, images by images); tr((S1S2)^(1/2)) =
     * Σσ(G) / sqrt((n1-1)(n2-1)). */
    size_t cap, cg;
    if (!slot_doubles(n1, n2, &cap) || !fdd_mul_ok(n1, l2, &cg) || cap > SIZE_MAX / 8 || cg > SIZE_MAX / 8)
        goto nomem;
    if (cap < cg) cap = cg;
    G = fdd_aligned_alloc(cap * sizeof(double));
    wk1 = fdd_aligned_alloc(cap * sizeof(double));
    wk2 = fdd_aligned_alloc(cap * sizeof(double));
    if (!G || !wk1 || !wk2) goto nomem;
    if ((st = fdd_dgemm(ctx, 1, 0, n1, n2, d, 0, X1, l1, X2, l2, G, l2, 0, NULL, err))) goto done;
    double nuc;
    double *const slot[3] = {wk1, wk2, G};
    st = nuclear_norm(ctx, G, n1, n2, l2, slot, &nuc, out, err);
    out->sqrt_trace = nuc / sqrt((double)(n1 - 1)) / sqrt((double)(n2 - 1));
    out->rank1 = (int)(n1 - 1 < d ? n1 - 1 : d);
    out->rank2 = (int)(n2 - 1 < d ? n2 - 1 : d);
    finish(out);
    goto done;
nomem:
    st = fdd_fail(err, FDD_E_NOMEM, "Fréchet distance: out of memory");
done:
    fdd_free(mu1); fdd_free(mu2);
    fdd_aligned_free(X1); fdd_aligned_free(X2);
    fdd_aligned_free(G); fdd_aligned_free(wk1); fdd_aligned_free(wk2);
    return st;
}

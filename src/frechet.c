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
 * blocked round-robin ordering.  Singular values are computed directly, so
 * no square root of an eigenvalue at rounding level is ever taken.
 *
 * Determinism: every reduction has a fixed order; threads only split work
 * into tasks whose outputs are disjoint (rows of a product, disjoint column
 * pairs of a Jacobi step), so the thread count never changes a bit. */
#include "internal.h"

#include <math.h>
#include <stdio.h>

/* Portable 2-wide double vectors (GNU vector extension: SSE2 on x86-64,
 * NEON on AArch64, scalar elsewhere; plain IEEE adds and multiplies, no
 * contraction, so every target computes the same bits). */
typedef double v2d __attribute__((vector_size(16), aligned(8)));

static inline v2d ld2(const double *p) { v2d v; memcpy(&v, p, sizeof v); return v; }
static inline void st2(double *p, v2d v) { memcpy(p, &v, sizeof v); }
static inline double hsum2(v2d v) { return v[0] + v[1]; }

#define PAD4(n) (((n) + 3) & ~(size_t)3)

/* Σ a[k]·b[k] for k < n, n a multiple of 4, in a fixed order. */
static double dot4(const double *a, const double *b, size_t n) {
    v2d s0 = {0, 0}, s1 = s0;
    for (size_t k = 0; k < n; k += 4) {
        s0 += ld2(a + k) * ld2(b + k);
        s1 += ld2(a + k + 2) * ld2(b + k + 2);
    }
    return hsum2(s0 + s1);
}

/* ------------------------------------------------------ NT products */

/* C[i][j] = Σ_k X[i][k]·Y[j][k] for i < m, j < n over k in [k0(i), K)
 * where k0(i) = trap ? (i rounded down to a multiple of 4) : 0 — with a
 * trapezoidal X (zeros left of the diagonal) that skips only zeros.  Rows are
 * padded to multiples of 4 (K a multiple of 4).  Parallel over blocks of j. */
typedef struct nt_job {
    size_t m, n, K;
    const double *X, *Y;
    size_t ldx, ldy;
    double *C;
    size_t ldc;
    int trap;
} nt_job;

#define NT_JB 64
#define NT_KC 256

static void nt_task(void *arg, size_t t, int thread) {
    (void)thread;
    nt_job *J = arg;
    size_t j0 = t * NT_JB, j1 = j0 + NT_JB < J->n ? j0 + NT_JB : J->n;
    for (size_t i = 0; i < J->m; i++)
        for (size_t j = j0; j < j1; j++) J->C[i * J->ldc + j] = 0.0;
    for (size_t kc = 0; kc < J->K; kc += NT_KC) {
        size_t kend = kc + NT_KC < J->K ? kc + NT_KC : J->K;
        for (size_t i = 0; i < J->m; i += 4) {
            size_t ni = J->m - i < 4 ? J->m - i : 4;
            size_t ks = J->trap ? (i > kc ? i : kc) : kc;
            if (ks >= kend) continue;
            const double *x[4];
            for (size_t r = 0; r < 4; r++) x[r] = J->X + (i + (r < ni ? r : 0)) * J->ldx;
            size_t j = j0;
            for (; j + 2 <= j1; j += 2) {
                const double *y0 = J->Y + j * J->ldy, *y1 = y0 + J->ldy;
                v2d a00 = {0, 0}, a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
                    a31 = a00;
                for (size_t k = ks; k < kend; k += 2) {
                    v2d b0 = ld2(y0 + k), b1 = ld2(y1 + k);
                    v2d x0 = ld2(x[0] + k), x1 = ld2(x[1] + k), x2 = ld2(x[2] + k), x3 = ld2(x[3] + k);
                    a00 += x0 * b0; a01 += x0 * b1;
                    a10 += x1 * b0; a11 += x1 * b1;
                    a20 += x2 * b0; a21 += x2 * b1;
                    a30 += x3 * b0; a31 += x3 * b1;
                }
                double *c = J->C + i * J->ldc + j;
                v2d acc[4][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
                for (size_t r = 0; r < ni; r++) {
                    c[r * J->ldc] += hsum2(acc[r][0]);
                    c[r * J->ldc + 1] += hsum2(acc[r][1]);
                }
            }
            for (; j < j1; j++) {
                const double *y0 = J->Y + j * J->ldy;
                for (size_t r = 0; r < ni; r++)
                    J->C[(i + r) * J->ldc + j] += dot4(x[r] + ks, y0 + ks, kend - ks);
            }
        }
    }
}

static void gemm_nt(fdd_ctx *ctx, size_t m, size_t n, size_t K, const double *X, size_t ldx,
                    const double *Y, size_t ldy, double *C, size_t ldc, int trap) {
    nt_job J = {m, n, K, X, Y, ldx, ldy, C, ldc, trap};
    fdd_parallel(ctx, nt_task, &J, (n + NT_JB - 1) / NT_JB);
}

/* ------------------------------------------------- pivoted Cholesky */

/* S (d x d, lower triangle read) = P L Lᵀ Pᵀ with complete pivoting.  On
 * return L is d x ldl row-major in pivoted order (row k = original index
 * perm[k]), *rank the number of columns: the factorisation stops at the
 * first pivot <= 0 — the rest of the matrix is then rounding noise that is
 * not positive, and no threshold is invented.  Right-looking, blocked by
 * NB columns: a panel is computed with its updates delayed, then the
 * trailing lower triangle gets one rank-NB update. */
#define CH_NB 32

typedef struct trail_job {
    double *W, *L;
    size_t d, ldl, k0, k1;
} trail_job;

static void trail_row(trail_job *T, size_t i) {
    const double *li = T->L + i * T->ldl + T->k0;
    double *w = T->W + i * T->d;
    size_t nb = T->k1 - T->k0;
    for (size_t j = T->k1; j <= i; j++) {
        const double *lj = T->L + j * T->ldl + T->k0;
        double s = 0;
        for (size_t c = 0; c < nb; c++) s += li[c] * lj[c];
        w[j] -= s;
    }
}

static void trail_task(void *arg, size_t t, int thread) {
    (void)thread;
    trail_job *T = arg;
    size_t n = T->d - T->k1, a = T->k1 + t, b = T->d - 1 - t;
    (void)n;
    trail_row(T, a);
    if (b != a) trail_row(T, b);
}

static fdd_status pivoted_cholesky(fdd_ctx *ctx, size_t d, const double *S, double *W, double *L,
                                   size_t ldl, size_t *perm, size_t *rank, fdd_error *err) {
    (void)err;
    double *dg = fdd_malloc(d * sizeof(double));
    if (!dg) return FDD_E_NOMEM;
    for (size_t i = 0; i < d; i++) {
        perm[i] = i;
        for (size_t j = 0; j <= i; j++) W[i * d + j] = S[i * d + j];
        dg[i] = S[i * d + i];
    }
    memset(L, 0, d * ldl * sizeof(double));
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
                /* Symmetric swap of k and p in the lower triangle of the
                 * trailing matrix, and of the rows of L computed so far. */
                double t;
                t = W[k * d + k]; W[k * d + k] = W[p * d + p]; W[p * d + p] = t;
                for (size_t i = k + 1; i < p; i++) { t = W[i * d + k]; W[i * d + k] = W[p * d + i]; W[p * d + i] = t; }
                for (size_t i = p + 1; i < d; i++) { t = W[i * d + k]; W[i * d + k] = W[i * d + p]; W[i * d + p] = t; }
                for (size_t c = 0; c < k; c++) { t = L[k * ldl + c]; L[k * ldl + c] = L[p * ldl + c]; L[p * ldl + c] = t; }
                t = dg[k]; dg[k] = dg[p]; dg[p] = t;
                size_t u = perm[k]; perm[k] = perm[p]; perm[p] = u;
            }
            double lkk = sqrt(dg[k]);
            L[k * ldl + k] = lkk;
            const double *lk = L + k * ldl + k0;
            for (size_t i = k + 1; i < d; i++) {
                const double *li = L + i * ldl + k0;
                double s = W[i * d + k];
                for (size_t c = 0; c < k - k0; c++) s -= li[c] * lk[c];
                double v = s / lkk;
                L[i * ldl + k] = v;
                dg[i] -= v * v;
            }
        }
        if (!done && k1 < d) {
            trail_job T = {W, L, d, ldl, k0, k1};
            fdd_parallel(ctx, trail_task, &T, (d - k1 + 1) / 2);
        }
    }
    *rank = k;
    fdd_free(dg);
    return FDD_OK;
}

/* ---------------------------------------------------- one-sided Jacobi */

/* The rows of G (n vectors of length ld, ld a multiple of 4, zero padded)
 * are rotated pairwise until mutually orthogonal to working precision; their
 * norms are then the singular values of the matrix whose columns they are.
 * Ordering: blocks of JB vectors; each sweep first treats the pairs inside
 * every block, then the cross pairs of block pairs in round-robin rounds
 * where the block pairs of one round are disjoint (run in parallel). */
#define JB 16
#define MAX_SWEEPS 40

typedef struct jac_job {
    double *G;
    size_t n, ld, len;
    double tol, floor2;
    size_t nblk;
    const size_t *pa, *pb;   /* block pairs of the current round */
    long *rot;               /* rotations per task */
} jac_job;

/* Orthogonalises vectors p and q; returns 1 if it rotated. */
static int rotate_pair(double *x, double *y, size_t len, double tol, double floor2) {
    v2d sa = {0, 0}, sb = sa, sg = sa;
    for (size_t k = 0; k < len; k += 2) {
        v2d a = ld2(x + k), b = ld2(y + k);
        sa += a * a;
        sb += b * b;
        sg += a * b;
    }
    double al = hsum2(sa), be = hsum2(sb), ga = hsum2(sg);
    /* A vector whose norm is below eps times the largest one is a singular
     * value at rounding level: rotating it against others changes the sum by
     * less than its own rounding, so it is left alone (this is what keeps
     * the sweep count low for singular covariances). */
    if (al <= floor2 || be <= floor2 || !(fabs(ga) > tol * sqrt(al) * sqrt(be))) return 0;
    double zeta = (be - al) / (2 * ga), t;
    if (fabs(zeta) > 1e150) t = 0.5 / zeta;
    else t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
    double c = 1 / sqrt(1 + t * t), s = c * t;
    v2d vc = {c, c}, vs = {s, s};
    for (size_t k = 0; k < len; k += 2) {
        v2d a = ld2(x + k), b = ld2(y + k);
        st2(x + k, vc * a - vs * b);
        st2(y + k, vs * a + vc * b);
    }
    return 1;
}

static void jac_inner_task(void *arg, size_t t, int thread) {
    (void)thread;
    jac_job *J = arg;
    size_t a0 = t * JB, a1 = a0 + JB < J->n ? a0 + JB : J->n;
    long r = 0;
    for (size_t p = a0; p < a1; p++)
        for (size_t q = p + 1; q < a1; q++) r += rotate_pair(J->G + p * J->ld, J->G + q * J->ld, J->len, J->tol, J->floor2);
    J->rot[t] = r;
}

static void jac_cross_task(void *arg, size_t t, int thread) {
    (void)thread;
    jac_job *J = arg;
    size_t A = J->pa[t], B = J->pb[t];
    long r = 0;
    if (A < J->nblk && B < J->nblk) {
        size_t a0 = A * JB, a1 = a0 + JB < J->n ? a0 + JB : J->n;
        size_t b0 = B * JB, b1 = b0 + JB < J->n ? b0 + JB : J->n;
        for (size_t p = a0; p < a1; p++)
            for (size_t q = b0; q < b1; q++)
                r += rotate_pair(J->G + p * J->ld, J->G + q * J->ld, J->len, J->tol, J->floor2);
    }
    J->rot[t] = r;
}

static fdd_status jacobi_nuclear(fdd_ctx *ctx, double *G, size_t n, size_t ld, size_t len,
                                 double *sum, int *sweeps, fdd_error *err) {
    *sum = 0;
    *sweeps = 0;
    if (n == 0) return FDD_OK;
    size_t nblk = (n + JB - 1) / JB, nr = nblk + (nblk & 1); /* round-robin with a bye */
    size_t half = nr / 2;
    size_t *pa = fdd_malloc(half * sizeof(size_t)), *pb = fdd_malloc(half * sizeof(size_t)),
           *ring = fdd_malloc(nr * sizeof(size_t));
    long *rot = fdd_malloc((nblk > half ? nblk : half) * sizeof(long));
    if (!pa || !pb || !ring || !rot) {
        fdd_free(pa); fdd_free(pb); fdd_free(ring); fdd_free(rot);
        return fdd_fail(err, FDD_E_NOMEM, "Fréchet distance: out of memory");
    }
    /* Rotate while |cos angle| > tol: sqrt(len)·eps as LAPACK's dgesvj. */
    double tol = sqrt((double)len) * 0x1p-53;
    jac_job J = {G, n, ld, len, tol, 0, nblk, pa, pb, rot};
    fdd_status st = FDD_OK;
    int sw;
    for (sw = 1; sw <= MAX_SWEEPS; sw++) {
        long total = 0;
        double mx = 0;
        for (size_t i = 0; i < n; i++) mx = fmax(mx, dot4(G + i * ld, G + i * ld, len));
        J.floor2 = mx * 0x1p-106;
        fdd_parallel(ctx, jac_inner_task, &J, nblk);
        for (size_t t = 0; t < nblk; t++) total += rot[t];
        for (size_t i = 0; i < nr; i++) ring[i] = i;
        for (size_t round = 0; round + 1 < nr; round++) {
            for (size_t t = 0; t < half; t++) { pa[t] = ring[t]; pb[t] = ring[nr - 1 - t]; }
            fdd_parallel(ctx, jac_cross_task, &J, half);
            for (size_t t = 0; t < half; t++) total += rot[t];
            /* circle method: ring[0] fixed, the rest rotate by one */
            size_t last = ring[nr - 1];
            for (size_t i = nr - 1; i > 1; i--) ring[i] = ring[i - 1];
            ring[1] = last;
        }
        if (total == 0) break;
    }
    if (sw > MAX_SWEEPS) {
        st = fdd_fail(err, FDD_E_NUMERIC,
                      "Fréchet distance: Jacobi did not converge in %d sweeps (n = %zu, tolerance %.3g)",
                      MAX_SWEEPS, n, tol);
        sw = MAX_SWEEPS;
    }
    *sweeps = sw;
    /* Σ of the norms in index order, compensated (Neumaier). */
    double s = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
        double v = sqrt(dot4(G + i * ld, G + i * ld, len));
        double t = s + v;
        c += fabs(s) >= fabs(v) ? (s - t) + v : (v - t) + s;
        s = t;
    }
    *sum = s + c;
    fdd_free(pa); fdd_free(pb); fdd_free(ring); fdd_free(rot);
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

    size_t ld = PAD4(d);
    double *W = fdd_malloc(dd * sizeof(double));
    double *L1 = fdd_aligned_alloc(d * ld * sizeof(double)), *L2 = fdd_aligned_alloc(d * ld * sizeof(double));
    double *T1 = fdd_aligned_alloc(d * ld * sizeof(double)), *T2 = fdd_aligned_alloc(d * ld * sizeof(double));
    size_t *p1 = fdd_malloc(d * sizeof(size_t)), *p2 = fdd_malloc(d * sizeof(size_t)),
           *inv2 = fdd_malloc(d * sizeof(size_t));
    fdd_status st = FDD_OK;
    if (!W || !L1 || !L2 || !T1 || !T2 || !p1 || !p2 || !inv2) {
        st = fdd_fail(err, FDD_E_NOMEM, "Fréchet distance: cannot allocate work space for d = %zu", d);
        goto done;
    }
    size_t r1, r2;
    if ((st = pivoted_cholesky(ctx, d, s1, W, L1, ld, p1, &r1, err)) ||
        (st = pivoted_cholesky(ctx, d, s2, W, L2, ld, p2, &r2, err))) {
        st = fdd_fail(err, FDD_E_NOMEM, "Fréchet distance: out of memory");
        goto done;
    }
    out->rank1 = (int)r1;
    out->rank2 = (int)r2;
    if (r1 == 0 || r2 == 0) goto done;   /* a zero covariance: trace term 0 */
    /* T1 = L1ᵀ (r1 x d, row b = column b of L1: zero left of b).  T2 row a =
     * column a of L2 re-indexed to L1's pivot order. */
    for (size_t i = 0; i < d; i++) inv2[p2[i]] = i;
    memset(T1, 0, d * ld * sizeof(double));
    memset(T2, 0, d * ld * sizeof(double));
    for (size_t j = 0; j < d; j++)
        for (size_t b = 0; b < r1; b++) T1[b * ld + j] = L1[j * ld + b];
    for (size_t j = 0; j < d; j++) {
        const double *row = L2 + inv2[p1[j]] * ld;
        for (size_t a = 0; a < r2; a++) T2[a * ld + j] = row[a];
    }
    /* G = T1 · T2ᵀ (r1 x r2): row b is column b of F2ᵀF1 up to a permutation. */
    size_t ldg = PAD4(r2);
    double *G = L1;   /* reuse: d x ld >= r1 x ldg */
    memset(G, 0, r1 * ldg * sizeof(double));
    gemm_nt(ctx, r1, r2, ld, T1, ld, T2, ld, G, ldg, 1);
    st = jacobi_nuclear(ctx, G, r1, ldg, ldg, &out->sqrt_trace, &out->sweeps, err);
done:
    finish(out);
    fdd_free(W);
    fdd_aligned_free(L1); fdd_aligned_free(L2); fdd_aligned_free(T1); fdd_aligned_free(T2);
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
    double *Y1 = NULL, *Y2 = NULL, *G = NULL;
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
        double *S1 = fdd_malloc(d * d * sizeof(double)), *S2 = fdd_malloc(d * d * sizeof(double));
        if (!S1 || !S2) { fdd_free(S1); fdd_free(S2); goto nomem; }
        gemm_nt(ctx, d, d, l1, X1, l1, X1, l1, S1, d, 0);
        gemm_nt(ctx, d, d, l2, X2, l2, X2, l2, S2, d, 0);
        for (size_t k = 0; k < d * d; k++) { S1[k] /= (double)(n1 - 1); S2[k] /= (double)(n2 - 1); }
        st = fdd_frechet(ctx, d, mu1, S1, mu2, S2, &r, err);
        fdd_free(S1); fdd_free(S2);
        out->sqrt_trace = r.sqrt_trace;
        out->rank1 = r.rank1;
        out->rank2 = r.rank2;
        out->sweeps = r.sweeps;
        finish(out);
        goto done;
    }
    /* Rows of X1ᵀ: images of set 1 as centred vectors (n1 x d), likewise set 2. */
    size_t ldd = PAD4(d);
    Y1 = fdd_aligned_alloc(n1 * ldd * sizeof(double));
    Y2 = fdd_aligned_alloc(n2 * ldd * sizeof(double));
    G = fdd_aligned_alloc(n1 * l2 * sizeof(double));
    if (!Y1 || !Y2 || !G) goto nomem;
    for (size_t i = 0; i < n1; i++)
        for (size_t c = 0; c < ldd; c++) Y1[i * ldd + c] = c < d ? X1[c * l1 + i] : 0;
    for (size_t i = 0; i < n2; i++)
        for (size_t c = 0; c < ldd; c++) Y2[i * ldd + c] = c < d ? X2[c * l2 + i] : 0;
    memset(G, 0, n1 * l2 * sizeof(double));
    /* G = Y1·Y2ᵀ (n1 x n2); tr((S1S2)^(1/2)) = Σσ(G) / sqrt((n1-1)(n2-1)). */
    gemm_nt(ctx, n1, n2, ldd, Y1, ldd, Y2, ldd, G, l2, 0);
    double nuc;
    st = jacobi_nuclear(ctx, G, n1, l2, l2, &nuc, &out->sweeps, err);
    out->sqrt_trace = nuc / sqrt((double)(n1 - 1)) / sqrt((double)(n2 - 1));
    out->rank1 = (int)(n1 - 1 < d ? n1 - 1 : d);
    out->rank2 = (int)(n2 - 1 < d ? n2 - 1 : d);
    finish(out);
    goto done;
nomem:
    st = fdd_fail(err, FDD_E_NOMEM, "Fréchet distance: out of memory");
done:
    fdd_free(mu1); fdd_free(mu2);
    fdd_aligned_free(X1); fdd_aligned_free(X2); fdd_aligned_free(Y1); fdd_aligned_free(Y2);
    fdd_aligned_free(G);
    return st;
}

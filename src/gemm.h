/* gemm.h — private interface of the GEMM: the micro-kernel contract every
 * ISA file implements, and the operation descriptor layers use. */
#ifndef FDD_GEMM_H
#define FDD_GEMM_H

#include "internal.h"

#include <math.h>

/* Micro-kernel contract (every ISA):
 *   Ap: MR x kc panel, packed k-major (Ap[k*MR + i]); Bp: kc x NR panel
 *   (Bp[k*NR + j]).  C is an MR x NR tile at c with row stride ldc.
 *   If load_c, the accumulators start from C (continuing a chain), else from
 *   +0.0f.  For each element the kernel runs acc = fma(Ap[k][i], Bp[k][j], acc)
 *   for k = 0..kc-1 in order and stores acc.  Always a full MR x NR tile;
 *   the driver handles edges.  Panels are 64-byte aligned. */
typedef void (*fdd_ukernel_fn)(size_t kc, const float *Ap, const float *Bp, float *c,
                               size_t ldc, int load_c);

/* Register-only FMA loop for the benchmark's peak figure: iters iterations
 * of the ISA's independent FMA chains; returns the float FMAs performed. */
typedef uint64_t (*fdd_peak_fn)(uint64_t iters, float *sink);

struct fdd_gemm_kernel {
    fdd_isa isa;
    int mr, nr;
    fdd_ukernel_fn fn;      /* NULL when not compiled into this binary */
    fdd_peak_fn peak;
};

extern const fdd_gemm_kernel fdd_kernel_scalar;
extern const fdd_gemm_kernel fdd_kernel_avx2;
extern const fdd_gemm_kernel fdd_kernel_avx512;
extern const fdd_gemm_kernel fdd_kernel_neon;

/* Packing callbacks: write the block of op(A) rows [i0,i0+mc) x cols
 * [k0,k0+kc) as MR-row panels dst[panel][k*MR + r] (zero padded), and of
 * op(B) rows [k0,k0+kc) x cols [j0,j0+nc) as NR-col panels dst[panel][k*NR + c].
 * A convolution supplies its own B packer that reads im2col patches. */
typedef void (*fdd_pack_a_fn)(const void *arg, size_t i0, size_t mc, size_t k0, size_t kc,
                              int mr, float *dst);
typedef void (*fdd_pack_b_fn)(const void *arg, size_t k0, size_t kc, size_t j0, size_t nc,
                              int nr, float *dst);

/* A plain row-major matrix (trans: the stored matrix is the transpose). */
typedef struct fdd_matrix {
    const float *data;
    size_t ld;
    bool trans;
} fdd_matrix;
void fdd_pack_a_matrix(const void *arg, size_t i0, size_t mc, size_t k0, size_t kc, int mr,
                       float *dst);
void fdd_pack_b_matrix(const void *arg, size_t k0, size_t kc, size_t j0, size_t nc, int nr,
                       float *dst);

/* C = [C +] op(A)·op(B), then + row_bias[i], + col_bias[j], ReLU (each optional). */
typedef struct fdd_gemm_op {
    size_t m, n, k;
    fdd_pack_a_fn pack_a;
    const void *a_arg;
    fdd_pack_b_fn pack_b;
    const void *b_arg;
    float *c;
    size_t ldc;
    bool accumulate;        /* chains start from C instead of +0 */
    const float *row_bias, *col_bias;
    bool relu;
} fdd_gemm_op;

fdd_status fdd_gemm_run(fdd_ctx *ctx, const fdd_gemm_op *op, fdd_error *err);

/* ---- double: the float64 GEMM (src/dgemm.c) used by the Fréchet distance.
 * Same contract as the float kernels with double: each element of C is one
 * chain acc = fma(Ap[k][i], Bp[k][j], acc) over k in order, starting from C
 * (load_c) or +0.0; so every ISA and thread count gives the same bits.  Row k
 * of B is at Bp + k·ldb: ldb = nr for a packed panel, or the row stride of
 * a matrix read in place (the Jacobi rotations of src/frechet.c). */
typedef void (*fdd_dukernel_fn)(size_t kc, const double *Ap, const double *Bp, size_t ldb,
                                double *c, size_t ldc, int load_c);

/* A 4 x 4 tile of dot products of rows, Σ_k a[i·lda + k]·b[j·ldb + k], in
 * one canonical order: for each (i, j) eight chains over the k ≡ l (mod 8)
 * in order, acc[(4i + j)·8 + l] = fma(a[k], b[k], acc[...]), starting from
 * +0.0 (or from acc when load: a long K is done in chunks), combined by
 * fdd_ddot_sum.  K is a multiple of 8.  Zero products leave a chain as it
 * is, so leading zero columns may be skipped in steps of 8. */
typedef void (*fdd_ddot_fn)(size_t K, const double *a, size_t lda, const double *b, size_t ldb, double *acc,
                            int load);
/* ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)) */
static inline double fdd_ddot_sum(const double *l) {
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* A plane rotation of two rows: x' = c·x − s·y, y' = s·x + c·y, each
 * element two products and one add or subtract (no fma): the same bits on
 * every ISA. */
typedef void (*fdd_drot_fn)(size_t n, double *x, double *y, double c, double s);

typedef struct fdd_dgemm_kernel {
    fdd_isa isa;
    int mr, nr;
    fdd_dukernel_fn fn;     /* NULL when not compiled into this binary */
    fdd_ddot_fn dot;
    fdd_drot_fn rot;
} fdd_dgemm_kernel;

extern const fdd_dgemm_kernel fdd_dkernel_scalar;
extern const fdd_dgemm_kernel fdd_dkernel_avx2;
extern const fdd_dgemm_kernel fdd_dkernel_avx512;

/* The ISA's double kernel (the scalar one where there is none, e.g. NEON). */
const fdd_dgemm_kernel *fdd_dgemm_kernel_for(fdd_isa isa);

/* Doubles of workspace one single-threaded call needs (64-byte aligned). */
size_t fdd_dgemm_ws_doubles(const fdd_dgemm_kernel *k);

/* C[MxN] = (acc ? C : 0) + s·op(A)·op(B), s = -1 if neg else +1; op(A) = A
 * (MxK, row-major, lda) or, with ta, the transpose of the stored KxM A; the
 * same for B.  neg negates A while packing: fma(-a, b, c) is c - a·b rounded
 * once, so C -= A·B is still one canonical chain.  Single-threaded, on the
 * caller's workspace (fdd_dgemm_ws_doubles). */
void fdd_dgemm_st(const fdd_dgemm_kernel *k, int ta, int tb, size_t M, size_t N, size_t K, int neg,
                  const double *A, size_t lda, const double *B, size_t ldb, double *C, size_t ldc,
                  int acc, double *ws);
/* The same on the context's threads (they split M or N, never K).  ws:
 * fdd_ctx_threads(ctx) x fdd_dgemm_ws_doubles doubles, or NULL to allocate. */
fdd_status fdd_dgemm(fdd_ctx *ctx, int ta, int tb, size_t M, size_t N, size_t K, int neg,
                     const double *A, size_t lda, const double *B, size_t ldb, double *C,
                     size_t ldc, int acc, double *ws, fdd_error *err);
/* ---- end double */

#endif

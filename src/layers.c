/* layers.c — CNN layers (see layers.h).  Convolutions are implicit GEMMs:
 * A = the folded weights [cout x cin*kh*kw], B = the im2col matrix
 * [cin*kh*kw x n*ho*wo] which the pack_b callback gathers straight into the
 * GEMM's packed panels (no im2col buffer), C = the output rows. */
#include "layers.h"

#include "gemm.h"

#include <math.h>

fdd_status fdd_conv_init_bn(fdd_conv *cv, size_t cin, size_t cout, size_t kh, size_t kw,
                            size_t sh, size_t sw, size_t ph, size_t pw, const float *w,
                            const float *gamma, const float *beta, const float *mean,
                            const float *var, float eps, fdd_error *err) {
    memset(cv, 0, sizeof *cv);
    size_t k = cin * kh * kw, nw;
    if (!fdd_mul_ok(k, cout, &nw) || !fdd_mul_ok(nw, sizeof(float), &nw))
        return fdd_fail(err, FDD_E_NOMEM, "conv: weight size overflows");
    cv->w = fdd_aligned_alloc(nw);
    cv->b = fdd_malloc(cout * sizeof(float));
    if (!cv->w || !cv->b) {
        fdd_conv_free(cv);
        return fdd_fail(err, FDD_E_NOMEM, "conv: cannot allocate %zu bytes of folded weights", nw);
    }
    cv->cin = cin; cv->cout = cout; cv->kh = kh; cv->kw = kw;
    cv->sh = sh; cv->sw = sw; cv->ph = ph; cv->pw = pw;
    for (size_t o = 0; o < cout; o++) {
        float s = gamma[o] / sqrtf(var[o] + eps);
        for (size_t i = 0; i < k; i++) cv->w[o * k + i] = w[o * k + i] * s;
        cv->b[o] = beta[o] - mean[o] * s;
    }
    return FDD_OK;
}

void fdd_conv_free(fdd_conv *cv) {
    fdd_aligned_free(cv->w);
    fdd_free(cv->b);
    cv->w = NULL;
    cv->b = NULL;
}

size_t fdd_conv_out(size_t in, size_t k, size_t s, size_t p) {
    return in + 2 * p < k ? 0 : (in + 2 * p - k) / s + 1;
}

typedef struct conv_b {
    const fdd_fmap *in;
    size_t kh, kw, sh, sw, ph, pw, ho, wo;
} conv_b;

enum { MAX_NR = 64 };

/* Packs im2col rows [k0,k0+kc) (k = (ci*kh + ky)*kw + kx) x columns
 * [j0,j0+nc) (j = (image*ho + oy)*wo + ox) into NR-column panels. */
static void pack_b_conv(const void *arg, size_t k0, size_t kc, size_t j0, size_t nc, int nr_,
                        float *dst) {
    const conv_b *cb = arg;
    const fdd_fmap *in = cb->in;
    const size_t nr = (size_t)nr_, hw = cb->ho * cb->wo, H = in->h, W = in->w;
    FDD_ASSERT(nr <= MAX_NR);
    ptrdiff_t iy0[MAX_NR], ix0[MAX_NR];
    size_t base[MAX_NR];
    for (size_t p = 0; p < nc; p += nr, dst += kc * nr) {
        size_t cols = nc - p < nr ? nc - p : nr;
        size_t j = j0 + p, img = j / hw, pix = j % hw, oy = pix / cb->wo, ox = pix % cb->wo;
        for (size_t c = 0; c < cols; c++) {
            base[c] = img * in->ns;
            iy0[c] = (ptrdiff_t)(oy * cb->sh) - (ptrdiff_t)cb->ph;
            ix0[c] = (ptrdiff_t)(ox * cb->sw) - (ptrdiff_t)cb->pw;
            if (++ox == cb->wo) {
                ox = 0;
                if (++oy == cb->ho) { oy = 0; img++; }
            }
        }
        /* The panel's columns fall into runs of one output row each (same
         * image and input row, x advancing by the stride); a run's row of the
         * panel is a strided copy when its window row and both ends are
         * inside the image, zeros when the row is outside, else checked per
         * element. */
        size_t seg[MAX_NR + 1], nseg = 0;
        for (size_t c = 0; c < cols; c++)
            if (c == 0 || iy0[c] != iy0[c - 1] || base[c] != base[c - 1]) seg[nseg++] = c;
        seg[nseg] = cols;
        size_t ci = k0 / (cb->kh * cb->kw), r = k0 % (cb->kh * cb->kw);
        size_t ky = r / cb->kw, kx = r % cb->kw;
        for (size_t kk = 0; kk < kc; kk++) {
            const float *src = in->d + ci * in->cs;
            float *o = dst + kk * nr;
            for (size_t g = 0; g < nseg; g++) {
                size_t c0 = seg[g], c1 = seg[g + 1];
                ptrdiff_t iy = iy0[c0] + (ptrdiff_t)ky, xa = ix0[c0] + (ptrdiff_t)kx, xb = ix0[c1 - 1] + (ptrdiff_t)kx;
                if (iy < 0 || iy >= (ptrdiff_t)H) {
                    for (size_t c = c0; c < c1; c++) o[c] = 0.0f;
                } else if (xa >= 0 && xb < (ptrdiff_t)W) {
                    const float *sp = src + base[c0] + (size_t)iy * W + (size_t)xa;
                    if (cb->sw == 1) memcpy(o + c0, sp, (c1 - c0) * sizeof(float));
                    else
                        for (size_t c = c0; c < c1; c++) o[c] = sp[(c - c0) * cb->sw];
                } else {
                    const float *sp = src + base[c0] + (size_t)iy * W;
                    for (size_t c = c0; c < c1; c++) {
                        ptrdiff_t ix = ix0[c] + (ptrdiff_t)kx;
                        o[c] = ix >= 0 && ix < (ptrdiff_t)W ? sp[ix] : 0.0f;
                    }
                }
            }
            for (size_t c = cols; c < nr; c++) o[c] = 0.0f;
            if (++kx == cb->kw) {
                kx = 0;
                if (++ky == cb->kh) { ky = 0; ci++; }
            }
        }
    }
}

fdd_status fdd_conv_run(fdd_ctx *ctx, const fdd_conv *cv, const fdd_fmap *in, const fdd_fmap *out,
                        bool relu, fdd_error *err) {
    size_t ho = fdd_conv_out(in->h, cv->kh, cv->sh, cv->ph);
    size_t wo = fdd_conv_out(in->w, cv->kw, cv->sw, cv->pw);
    FDD_ASSERT(in->c == cv->cin && out->c == cv->cout && out->n == in->n && out->h == ho &&
               out->w == wo && out->ns == ho * wo && out->cs >= in->n * ho * wo);
    size_t k = cv->cin * cv->kh * cv->kw;
    fdd_matrix a = {cv->w, k, false};
    fdd_matrix bm = {in->d, in->cs, false};
    conv_b cb = {in, cv->kh, cv->kw, cv->sh, cv->sw, cv->ph, cv->pw, ho, wo};
    /* A 1x1 stride-1 convolution of a channel-major map is a plain GEMM. */
    bool plain = cv->kh == 1 && cv->kw == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 &&
                 cv->pw == 0 && in->ns == in->h * in->w;
    fdd_gemm_op op = {.m = cv->cout, .n = in->n * ho * wo, .k = k,
                      .pack_a = fdd_pack_a_matrix, .a_arg = &a,
                      .pack_b = plain ? fdd_pack_b_matrix : pack_b_conv,
                      .b_arg = plain ? (const void *)&bm : (const void *)&cb,
                      .c = out->d, .ldc = out->cs, .row_bias = cv->b, .relu = relu};
    return fdd_gemm_run(ctx, &op, err);
}

/* ------------------------------------------------------------------ pools */

typedef struct pool_job {
    const fdd_fmap *in, *out;
    size_t k, s, p;
    bool avg;
} pool_job;

/* One output of a pool over the clipped window [y0,y1) x [x0,x1). */
static float pool_one(const float *src, size_t w, size_t y0, size_t y1, size_t x0, size_t x1, bool avg) {
    if (avg) {
        float sum = 0.0f;
        for (size_t y = y0; y < y1; y++)
            for (size_t x = x0; x < x1; x++) sum += src[y * w + x];
        return sum / (float)((y1 - y0) * (x1 - x0));
    }
    float v = src[y0 * w + x0];
    for (size_t y = y0; y < y1; y++)
        for (size_t x = x0; x < x1; x++) {
            float t = src[y * w + x];
            if (t > v || t != t) v = t;   /* NaN propagates, like PyTorch's max pool. */
        }
    return v;
}

#define POOL_ROW 1024

/* 4-wide float vectors (GNU vector extension: lane-wise IEEE operations, so
 * a lane computes exactly what the scalar code computes). */
typedef float v4f __attribute__((vector_size(16), aligned(4)));
typedef int32_t v4i __attribute__((vector_size(16), aligned(4)));

/* acc[j] += r[j*s] (avg) or acc[j] = r[j*s] > acc[j] || isnan(r[j*s]) ?
 * r[j*s] : acc[j] (max), for j < n. */
static inline void pool_row(float *acc, const float *r, size_t n, size_t s, bool avg) {
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        v4f a, t;
        memcpy(&a, acc + j, sizeof a);
        if (s == 1) memcpy(&t, r + j, sizeof t);
        else t = (v4f){r[j * s], r[(j + 1) * s], r[(j + 2) * s], r[(j + 3) * s]};
        if (avg) {
            a += t;
        } else {
            v4i m = (t > a) | (t != t), ti, ai;
            memcpy(&ti, &t, sizeof ti);
            memcpy(&ai, &a, sizeof ai);
            ai = (ti & m) | (ai & ~m);
            memcpy(&a, &ai, sizeof a);
        }
        memcpy(acc + j, &a, sizeof a);
    }
    for (; j < n; j++) {
        float t = r[j * s];
        if (avg) acc[j] += t;
        else acc[j] = t > acc[j] || t != t ? t : acc[j];
    }
}

/* One channel (all images) per task.  Output columns whose window lies
 * inside the row are computed a row at a time, vectorised across columns;
 * each output still sees its window's elements in the same order (rows,
 * then columns) as pool_one, so the bits are the same. */
static void pool_task(void *arg, size_t ch, int thread) {
    (void)thread;
    const pool_job *pj = arg;
    const fdd_fmap *in = pj->in, *out = pj->out;
    size_t k = pj->k, s = pj->s, p = pj->p, w = in->w, ow = out->w;
    size_t xa = (p + s - 1) / s, xb = w + p >= k ? (w + p - k) / s + 1 : 0;
    if (xb > ow) xb = ow;
    if (xa > xb || ow > POOL_ROW) xa = xb = ow;
    float acc[POOL_ROW];
    for (size_t i = 0; i < in->n; i++) {
        const float *src = in->d + ch * in->cs + i * in->ns;
        float *dst = out->d + ch * out->cs + i * out->ns;
        for (size_t oy = 0; oy < out->h; oy++) {
            size_t y0 = oy * s, y1 = y0 + k;  /* window rows in padded coordinates */
            y0 = y0 < p ? 0 : y0 - p;
            y1 = y1 - p > in->h ? in->h : y1 - p;
            float *d = dst + oy * ow;
            for (size_t ox = 0; ox < ow; ox++) {
                if (ox == xa) ox = xb;
                if (ox >= ow) break;
                size_t x0 = ox * s, x1 = x0 + k;
                x0 = x0 < p ? 0 : x0 - p;
                x1 = x1 - p > w ? w : x1 - p;
                d[ox] = pool_one(src, w, y0, y1, x0, x1, pj->avg);
            }
            if (xa == xb) continue;
            const float *base = src + xa * s - p;   /* window start of column xa */
            size_t nx = xb - xa;
            if (pj->avg) {
                for (size_t j = 0; j < nx; j++) acc[j] = 0.0f;
                for (size_t y = y0; y < y1; y++)
                    for (size_t dx = 0; dx < k; dx++) pool_row(acc, base + y * w + dx, nx, s, true);
                float cnt = (float)((y1 - y0) * k);
                for (size_t j = 0; j < nx; j++) d[xa + j] = acc[j] / cnt;
            } else {
                for (size_t j = 0; j < nx; j++) acc[j] = base[y0 * w + j * s];
                for (size_t y = y0; y < y1; y++)
                    for (size_t dx = 0; dx < k; dx++) pool_row(acc, base + y * w + dx, nx, s, false);
                for (size_t j = 0; j < nx; j++) d[xa + j] = acc[j];
            }
        }
    }
}

static void pool(fdd_ctx *ctx, const fdd_fmap *in, const fdd_fmap *out, size_t k, size_t s,
                 size_t p, bool avg) {
    FDD_ASSERT(out->c == in->c && out->n == in->n && p < k &&
               out->h == fdd_conv_out(in->h, k, s, p) && out->w == fdd_conv_out(in->w, k, s, p));
    pool_job pj = {in, out, k, s, p, avg};
    fdd_parallel(ctx, pool_task, &pj, in->c);
}

void fdd_maxpool(fdd_ctx *ctx, const fdd_fmap *in, const fdd_fmap *out, size_t k, size_t s,
                 size_t p) {
    pool(ctx, in, out, k, s, p, false);
}

void fdd_avgpool(fdd_ctx *ctx, const fdd_fmap *in, const fdd_fmap *out, size_t k, size_t s,
                 size_t p) {
    pool(ctx, in, out, k, s, p, true);
}

typedef struct gap_job {
    const fdd_fmap *in;
    float *feat;
} gap_job;

static void gap_task(void *arg, size_t ch, int thread) {
    (void)thread;
    const gap_job *g = arg;
    const fdd_fmap *in = g->in;
    size_t hw = in->h * in->w;
    for (size_t i = 0; i < in->n; i++) {
        const float *src = in->d + ch * in->cs + i * in->ns;
        float sum = 0.0f;
        for (size_t t = 0; t < hw; t++) sum += src[t];
        g->feat[i * in->c + ch] = sum / (float)hw;
    }
}

void fdd_global_avgpool(fdd_ctx *ctx, const fdd_fmap *in, float *feat) {
    gap_job g = {in, feat};
    fdd_parallel(ctx, gap_task, &g, in->c);
}

fdd_status fdd_linear(fdd_ctx *ctx, const float *x, size_t n, size_t in, const float *W,
                      const float *b, size_t out, float *y, fdd_error *err) {
    fdd_matrix a = {x, in, false}, bm = {W, in, true};
    fdd_gemm_op op = {.m = n, .n = out, .k = in,
                      .pack_a = fdd_pack_a_matrix, .a_arg = &a,
                      .pack_b = fdd_pack_b_matrix, .b_arg = &bm,
                      .c = y, .ldc = out, .col_bias = b};
    return fdd_gemm_run(ctx, &op, err);
}

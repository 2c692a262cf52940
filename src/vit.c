/* vit.c — DINO and DINOv2 vision transformers (models.md §B, §C).
 *
 * One generic pre-norm ViT whose sizes come from the .fdw metadata written by
 * convert/fdd-convert (arch=vit): patch size, width, depth, heads, MLP hidden
 * size, GELU MLP or SwiGLU, layer scale, register tokens, and the position
 * embedding interpolation rule of the family.
 *
 * Reproducibility: every linear layer is one fdd_gemm_run over the token rows
 * of the whole batch (a row's chains never read another row); attention runs
 * one task per (image, head) on the GEMM micro-kernels directly, so it has
 * the same canonical fma chains on every ISA; LayerNorm, softmax and the
 * activations are sequential per row with the project's own exp and erf.
 * An image's features therefore never depend on its batch neighbours, the
 * thread count or the ISA. */
#include "gemm.h"
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { FEAT_CLS, FEAT_MEAN, FEAT_CLS_MEAN, FEAT_HEAD_HIDDEN, FEAT_HEAD_HIDDEN_LINEAR };

typedef struct vit_block {
    const float *n1w, *n1b, *qkv_w, *qkv_b, *proj_w, *proj_b, *ls1;
    const float *n2w, *n2b, *fc1_w, *fc1_b, *fc2_w, *fc2_b, *ls2;
} vit_block;

typedef struct vit {
    int dinov2;            /* family: 0 DINO, 1 DINOv2 */
    size_t p, D, depth, heads, hd, hidden, R, grid;
    int swiglu, layer_scale, antialias;
    float eps;
    const float *cls, *pos, *reg, *mask, *pe_w, *pe_b, *norm_w, *norm_b;
    vit_block *blocks;
    int has_head;
    size_t head_hidden, head_bottleneck, head_out;
    const float *h0w, *h0b, *h2w, *h2b, *h4w, *h4b, *hg, *hv;
    int feature;
} vit;

/* ------------------------------------------------------------------ open */

static const char *meta_str(const fdd_weights *w, const char *key) {
    const char *v = fdd_weights_meta(w, key);
    return v ? v : "";
}

static void vit_close(fdd_model *m) {
    vit *v = m->impl;
    if (!v) return;
    fdd_free(v->blocks);
    fdd_free(v);
    m->impl = NULL;
}

#define SPEC_MAX 16
typedef struct spec_list {
    fdd_tensor_spec *s;
    size_t n, cap;
    char (*names)[96];
} spec_list;

static void spec_add(spec_list *l, const char *name, const float **dest, int ndim, uint64_t d0,
                     uint64_t d1, uint64_t d2, uint64_t d3) {
    FDD_ASSERT(l->n < l->cap);
    fdd_tensor_spec *s = &l->s[l->n];
    snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
    s->name = l->names[l->n];
    s->ndim = ndim;
    uint64_t d[4] = {d0, d1, d2, d3};
    for (int i = 0; i < FDD_MAX_DIMS; i++) s->dims[i] = i < 4 ? d[i] : 0;
    s->dest = dest;
    l->n++;
}

static fdd_status vit_open(fdd_model *m, fdd_error *err) {
    fdd_weights *w = m->w;
    const char *path = fdd_weights_path(w);
    long v_p, v_d, v_depth, v_heads, v_hidden, v_r = 0, v_ls = 0, v_grid;
    double eps = 1e-6;
    fdd_status st;
    const char *fam = meta_str(w, "arch.family");
    int dinov2;
    if (!strcmp(fam, "dino")) dinov2 = 0;
    else if (!strcmp(fam, "dinov2")) dinov2 = 1;
    else return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unknown arch.family '%s' (dino, dinov2)",
                         path, fam);
    if ((st = fdd_meta_int(w, "arch.patch_size", 1, 64, &v_p, err)) ||
        (st = fdd_meta_int(w, "arch.embed_dim", 1, 8192, &v_d, err)) ||
        (st = fdd_meta_int(w, "arch.depth", 1, 256, &v_depth, err)) ||
        (st = fdd_meta_int(w, "arch.num_heads", 1, 256, &v_heads, err)) ||
        (st = fdd_meta_int(w, "arch.mlp_hidden", 1, 65536, &v_hidden, err)) ||
        (st = fdd_meta_int(w, "arch.pos_grid", 1, 1024, &v_grid, err)))
        return st;
    if (fdd_weights_meta(w, "arch.num_register_tokens") &&
        (st = fdd_meta_int(w, "arch.num_register_tokens", 0, 64, &v_r, err)))
        return st;
    if (fdd_weights_meta(w, "arch.layer_scale") &&
        (st = fdd_meta_int(w, "arch.layer_scale", 0, 1, &v_ls, err)))
        return st;
    if (fdd_weights_meta(w, "arch.ln_eps") && (st = fdd_meta_float(w, "arch.ln_eps", &eps, err)))
        return st;
    if (!(eps > 0 && eps < 1)) return fdd_fail(err, FDD_E_FORMAT, "%s: bad arch.ln_eps", path);
    if (v_d % v_heads)
        return fdd_fail(err, FDD_E_FORMAT, "%s: arch.embed_dim %ld not divisible by arch.num_heads %ld",
                        path, v_d, v_heads);
    const char *mlp = meta_str(w, "arch.mlp");
    int swiglu;
    if (!strcmp(mlp, "gelu") || !*mlp) swiglu = 0;
    else if (!strcmp(mlp, "swiglu")) swiglu = 1;
    else return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unknown arch.mlp '%s'", path, mlp);
    const char *interp = meta_str(w, "arch.pos_interp");
    int antialias;
    if (!strcmp(interp, "offset") || !*interp) antialias = 0;
    else if (!strcmp(interp, "antialias")) antialias = 1;
    else return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unknown arch.pos_interp '%s'", path, interp);

    vit *v = fdd_calloc(1, sizeof *v);
    if (!v) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path);
    m->impl = v;
    v->dinov2 = dinov2;
    v->p = (size_t)v_p; v->D = (size_t)v_d; v->depth = (size_t)v_depth;
    v->heads = (size_t)v_heads; v->hd = v->D / v->heads; v->hidden = (size_t)v_hidden;
    v->R = (size_t)v_r; v->grid = (size_t)v_grid; v->swiglu = swiglu;
    v->layer_scale = (int)v_ls; v->antialias = antialias; v->eps = (float)eps;
    v->blocks = fdd_calloc(v->depth, sizeof *v->blocks);
    if (!v->blocks) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path);

    const char *head = meta_str(w, "arch.head");
    if (*head) {
        long hh, hb, ho;
        if (strcmp(head, "dino"))
            return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unknown arch.head '%s'", path, head);
        if ((st = fdd_meta_int(w, "arch.head_hidden", 1, 65536, &hh, err)) ||
            (st = fdd_meta_int(w, "arch.head_bottleneck", 1, 65536, &hb, err)) ||
            (st = fdd_meta_int(w, "arch.head_out", 1, 1L << 24, &ho, err)))
            return st;
        v->has_head = 1;
        v->head_hidden = (size_t)hh; v->head_bottleneck = (size_t)hb; v->head_out = (size_t)ho;
    }

    size_t cap = 16 + 16 * v->depth + 8;
    spec_list l = {0};
    l.s = fdd_calloc(cap, sizeof *l.s);
    l.names = fdd_calloc(cap, sizeof *l.names);
    l.cap = cap;
    if (!l.s || !l.names) {
        fdd_free(l.s);
        fdd_free(l.names);
        return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path);
    }
    const uint64_t D = v->D, H = v->hidden, P = v->p;
    spec_add(&l, "cls_token", &v->cls, 3, 1, 1, D, 0);
    spec_add(&l, "pos_embed", &v->pos, 3, 1, 1 + (uint64_t)v->grid * v->grid, D, 0);
    if (v->R) spec_add(&l, "register_tokens", &v->reg, 3, 1, v->R, D, 0);
    if (fdd_weights_find(w, "mask_token")) spec_add(&l, "mask_token", &v->mask, 2, 1, D, 0, 0);
    spec_add(&l, "patch_embed.proj.weight", &v->pe_w, 4, D, 3, P, P);
    spec_add(&l, "patch_embed.proj.bias", &v->pe_b, 1, D, 0, 0, 0);
    for (size_t i = 0; i < v->depth; i++) {
        vit_block *b = &v->blocks[i];
        char n[96];
#define BLK(suffix, dest, nd, a, bb) \
        (snprintf(n, sizeof n, "blocks.%zu." suffix, i), spec_add(&l, n, dest, nd, a, bb, 0, 0))
        BLK("norm1.weight", &b->n1w, 1, D, 0);
        BLK("norm1.bias", &b->n1b, 1, D, 0);
        BLK("attn.qkv.weight", &b->qkv_w, 2, 3 * D, D);
        BLK("attn.qkv.bias", &b->qkv_b, 1, 3 * D, 0);
        BLK("attn.proj.weight", &b->proj_w, 2, D, D);
        BLK("attn.proj.bias", &b->proj_b, 1, D, 0);
        BLK("norm2.weight", &b->n2w, 1, D, 0);
        BLK("norm2.bias", &b->n2b, 1, D, 0);
        if (v->swiglu) {
            BLK("mlp.w12.weight", &b->fc1_w, 2, 2 * H, D);
            BLK("mlp.w12.bias", &b->fc1_b, 1, 2 * H, 0);
            BLK("mlp.w3.weight", &b->fc2_w, 2, D, H);
            BLK("mlp.w3.bias", &b->fc2_b, 1, D, 0);
        } else {
            BLK("mlp.fc1.weight", &b->fc1_w, 2, H, D);
            BLK("mlp.fc1.bias", &b->fc1_b, 1, H, 0);
            BLK("mlp.fc2.weight", &b->fc2_w, 2, D, H);
            BLK("mlp.fc2.bias", &b->fc2_b, 1, D, 0);
        }
        if (v->layer_scale) {
            BLK("ls1.gamma", &b->ls1, 1, D, 0);
            BLK("ls2.gamma", &b->ls2, 1, D, 0);
        }
#undef BLK
    }
    spec_add(&l, "norm.weight", &v->norm_w, 1, D, 0, 0, 0);
    spec_add(&l, "norm.bias", &v->norm_b, 1, D, 0, 0, 0);
    if (v->has_head) {
        uint64_t hh = v->head_hidden, hb = v->head_bottleneck, ho = v->head_out;
        spec_add(&l, "head.mlp.0.weight", &v->h0w, 2, hh, D, 0, 0);
        spec_add(&l, "head.mlp.0.bias", &v->h0b, 1, hh, 0, 0, 0);
        spec_add(&l, "head.mlp.2.weight", &v->h2w, 2, hh, hh, 0, 0);
        spec_add(&l, "head.mlp.2.bias", &v->h2b, 1, hh, 0, 0, 0);
        spec_add(&l, "head.mlp.4.weight", &v->h4w, 2, hb, hh, 0, 0);
        spec_add(&l, "head.mlp.4.bias", &v->h4b, 1, hb, 0, 0, 0);
        spec_add(&l, "head.last_layer.weight_g", &v->hg, 2, ho, 1, 0, 0);
        spec_add(&l, "head.last_layer.weight_v", &v->hv, 2, ho, hb, 0, 0);
    }
    st = fdd_weights_bind(w, l.s, l.n, err);
    fdd_free(l.s);
    fdd_free(l.names);
    if (st) return st;
    v->feature = FEAT_CLS;
    m->dim = v->D;
    m->nlogits = 0;
    return FDD_OK;
}

/* Feature choice (fdd_model_set_feature): "cls" (default: the CLS token after
 * the final norm, DINO's output and DINOv2's x_norm_clstoken), "mean" (mean
 * of the normed patch tokens, registers excluded), "cls+mean" ([cls, mean]
 * concatenated, 2D), "head-hidden" (DINO training checkpoints: the DINO
 * head's second hidden layer after its GELU, head.mlp.2 -> GELU, 2048-d) and
 * "head-hidden-linear" (the same layer before the GELU). */
static fdd_status vit_set_feature(fdd_model *m, const char *name, fdd_error *err) {
    vit *v = m->impl;
    int f;
    size_t dim;
    if (!strcmp(name, "cls") || !strcmp(name, "default")) f = FEAT_CLS, dim = v->D;
    else if (!strcmp(name, "mean")) f = FEAT_MEAN, dim = v->D;
    else if (!strcmp(name, "cls+mean")) f = FEAT_CLS_MEAN, dim = 2 * v->D;
    else if (!strcmp(name, "head-hidden") || !strcmp(name, "head-hidden-linear")) {
        if (!v->has_head)
            return fdd_fail(err, FDD_E_UNSUPPORTED,
                            "%s: feature '%s' needs a DINO training checkpoint with its head",
                            fdd_weights_path(m->w), name);
        f = name[11] ? FEAT_HEAD_HIDDEN_LINEAR : FEAT_HEAD_HIDDEN;
        dim = v->head_hidden;
    } else
        return fdd_fail(err, FDD_E_ARG,
                        "%s: unknown feature '%s' (cls, mean, cls+mean, head-hidden, "
                        "head-hidden-linear)", fdd_weights_path(m->w), name);
    v->feature = f;
    m->dim = dim;
    return FDD_OK;
}

/* ----------------------------------------------------------- preprocessing */

static fdd_status vit_preprocess_config(const fdd_model *m, const char *profile,
                                        fdd_preprocess *cfg, fdd_error *err) {
    const char *path = fdd_weights_path(m->w);
    if (!profile) profile = fdd_weights_meta(m->w, "preprocess.profile");
    if (!profile) profile = "dino";
    memset(cfg, 0, sizeof *cfg);
    if (!strcmp(profile, "dino")) {
        /* DINO eval: Resize(256) of the shorter side, CenterCrop(224). */
        cfg->resize_w = 256;
        cfg->resize_h = 0;
        cfg->crop_w = cfg->crop_h = 224;
    } else if (!strcmp(profile, "dgm-eval")) {
        /* dgm-eval FD-DINOv2: Resize((224, 224)), aspect not kept, no crop. */
        cfg->resize_w = cfg->resize_h = 224;
    } else {
        return fdd_fail(err, FDD_E_ARG, "%s: unknown profile '%s' for a ViT (dino, dgm-eval)", path,
                        profile);
    }
    snprintf(cfg->profile, sizeof cfg->profile, "%s", profile);
    cfg->out_w = cfg->out_h = 224;
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(cfg->mean, mean, sizeof mean);
    memcpy(cfg->std, std, sizeof std);
    return FDD_OK;
}

/* ------------------------------------------------ position interpolation */

/* Keys cubic convolution, PyTorch's get_cubic_upsample_coefficients (float). */
static void cubic_coeffs(float t, float c[4]) {
    const float A = -0.75f;
    float x1 = t, x2 = 1.0f - t;
    float a1 = x1 + 1.0f, a2 = x2 + 1.0f;
    c[0] = ((A * a1 - 5.0f * A) * a1 + 8.0f * A) * a1 - 4.0f * A;
    c[1] = ((A + 2.0f) * x1 - (A + 3.0f)) * x1 * x1 + 1.0f;
    c[2] = ((A + 2.0f) * x2 - (A + 3.0f)) * x2 * x2 + 1.0f;
    c[3] = ((A * a2 - 5.0f * A) * a2 + 8.0f * A) * a2 - 4.0f * A;
}

/* PIL-style cubic (a = -0.5), PyTorch's antialias filter. */
static double aa_cubic(double x) {
    const double a = -0.5;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

/* Interpolation weights along one axis: out index o reads in[idx[o*nt + j]]
 * with weight wt[o*nt + j] (nt = taps per output, zero weights padded). */
typedef struct axis_w {
    size_t nt;
    int32_t *idx;
    float *wt;
} axis_w;

/* Taps needed along an axis of M inputs -> G outputs. */
static size_t axis_taps(const vit *v, size_t M, size_t G) {
    if (!v->antialias) return 4;
    double scale = (double)M / (double)G;
    double support = scale >= 1.0 ? 2.0 * scale : 2.0;
    return (size_t)ceil(support) * 2 + 1;
}

static void axis_weights(const vit *v, size_t M, size_t G, axis_w *a) {
    size_t nt = a->nt;
    if (!v->antialias) {
        /* F.interpolate(scale_factor = (G + 0.1)/M, bicubic, align_corners
         * False): the kernel uses 1/scale_factor (double, cast to float),
         * not M/G: src = (dst + 0.5)·M/(G + 0.1) − 0.5, taps clamped. */
        double s = ((double)G + 0.1) / (double)M;
        float inv = (float)(1.0 / s);
        for (size_t o = 0; o < G; o++) {
            float real = inv * ((float)o + 0.5f) - 0.5f;
            long i0 = (long)floorf(real);
            if (i0 > (long)M - 1) i0 = (long)M - 1;
            float t = real - (float)i0;
            t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
            float c[4];
            cubic_coeffs(t, c);
            for (size_t j = 0; j < 4; j++) {
                long k = i0 - 1 + (long)j;
                k = k < 0 ? 0 : k > (long)M - 1 ? (long)M - 1 : k;
                a->idx[o * nt + j] = (int32_t)k;
                a->wt[o * nt + j] = c[j];
            }
        }
        return;
    }
    /* F.interpolate(size = G, bicubic, antialias = True): PIL-style window. */
    double scale = (double)M / (double)G;
    double support = scale >= 1.0 ? 2.0 * scale : 2.0;
    double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    for (size_t o = 0; o < G; o++) {
        double center = scale * ((double)o + 0.5);
        long xmin = (long)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        long xmax = (long)(center + support + 0.5);
        if (xmax > (long)M) xmax = (long)M;
        double w[64], total = 0;
        size_t n = 0;
        for (long j = xmin; j < xmax && n < nt; j++, n++) {
            w[n] = aa_cubic(((double)j - center + 0.5) * invscale);
            total += w[n];
        }
        for (size_t j = 0; j < nt; j++) {
            a->idx[o * nt + j] = (int32_t)(j < n ? xmin + (long)j : xmin);
            a->wt[o * nt + j] = j < n ? (float)(total != 0 ? w[j] / total : w[j]) : 0.0f;
        }
    }
}

/* ---------------------------------------------------------------- forward */

typedef struct fwd {
    const vit *v;
    fdd_ctx *ctx;
    const fdd_gemm_kernel *kern;
    fdd_isa isa;
    size_t nb, T, np, gh, gw, H, W, rows, nthreads;
    const float *in;
    float *x, *h, *o, *big, *pos, *feat_a, *feat_b;
    float **scratch;              /* per thread attention buffers */
    size_t tm, tn, hdn;           /* padded sizes for attention */
    size_t szq, szk;              /* attention scratch: packed A, packed B */
    const vit_block *blk;
    /* elementwise jobs */
    const float *lnw, *lnb;
    float *src, *dst;
    size_t ld_src, ld_dst, ncols;
    const float *gamma;
} fwd;

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* Rows split into tasks of this many rows for the elementwise passes. */
enum { ROWS_PER_TASK = 16 };

static void layer_norm_row(const float *x, float *y, size_t D, const float *w, const float *b,
                           float eps) {
    double s = 0;
    for (size_t i = 0; i < D; i++) s += x[i];
    double mean = s / (double)D, q = 0;
    for (size_t i = 0; i < D; i++) {
        double d = x[i] - mean;
        q += d * d;
    }
    float meanf = (float)mean;
    float rstd = (float)(1.0 / sqrt(q / (double)D + (double)eps));
    for (size_t i = 0; i < D; i++) y[i] = (x[i] - meanf) * rstd * w[i] + b[i];
}

static void ln_task(void *arg, size_t task, int thread) {
    (void)thread;
    fwd *f = arg;
    size_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < f->rows ? r0 + ROWS_PER_TASK : f->rows;
    for (size_t r = r0; r < r1; r++)
        layer_norm_row(f->src + r * f->ld_src, f->dst + r * f->ld_dst, f->v->D, f->lnw, f->lnb,
                       f->v->eps);
}

/* In-place exp / GELU over n floats: src/detmath.c (vector loops with the
 * scalar functions' exact operation sequence on AVX-512). */
static void exp_n(fdd_isa isa, float *p, size_t n) { fdd_expf_n(isa, p, n); }
static void gelu_n(fdd_isa isa, float *p, size_t n) { fdd_gelu_n(isa, p, n); }

static void gelu_task(void *arg, size_t task, int thread) {
    (void)thread;
    fwd *f = arg;
    size_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < f->rows ? r0 + ROWS_PER_TASK : f->rows;
    for (size_t r = r0; r < r1; r++) {
        gelu_n(f->isa, f->dst + r * f->ld_dst, f->ncols);
    }
}

/* SwiGLU: u = [x1 | x2] (2H per row) -> silu(x1) * x2 into the first half. */
static void swiglu_task(void *arg, size_t task, int thread) {
    (void)thread;
    fwd *f = arg;
    size_t H = f->ncols;
    size_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < f->rows ? r0 + ROWS_PER_TASK : f->rows;
    for (size_t r = r0; r < r1; r++) {
        float *p = f->dst + r * f->ld_dst;
        for (size_t i = 0; i < H; i++) {
            float a = p[i];
            p[i] = a / (1.0f + fdd_expf(-a)) * p[H + i];
        }
    }
}

/* x += gamma * y (gamma optional). */
static void residual_task(void *arg, size_t task, int thread) {
    (void)thread;
    fwd *f = arg;
    size_t D = f->v->D;
    size_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < f->rows ? r0 + ROWS_PER_TASK : f->rows;
    for (size_t r = r0; r < r1; r++) {
        float *x = f->dst + r * D;
        const float *y = f->src + r * D;
        if (f->gamma)
            for (size_t i = 0; i < D; i++) x[i] = x[i] + f->gamma[i] * y[i];
        else
            for (size_t i = 0; i < D; i++) x[i] = x[i] + y[i];
    }
}

static void run_rows(fwd *f, fdd_task_fn fn) {
    fdd_parallel(f->ctx, fn, f, (f->rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK);
}

/* y[rows x N] = a[rows x K] · Wᵀ + b, with W the [N, K] PyTorch weight. */
static fdd_status linear(fwd *f, const float *a, size_t lda, size_t rows, size_t K, const float *W,
                         const float *b, size_t N, float *y, size_t ldy, fdd_error *err) {
    fdd_matrix A = {a, lda, false}, B = {W, K, true};
    fdd_gemm_op op = {.m = rows, .n = N, .k = K, .pack_a = fdd_pack_a_matrix, .a_arg = &A,
                      .pack_b = fdd_pack_b_matrix, .b_arg = &B, .c = y, .ldc = ldy,
                      .col_bias = b};
    return fdd_gemm_run(f->ctx, &op, err);
}

/* Patch extraction straight into packed A panels (implicit im2col): row i is
 * patch (image, py, px), column k = c·p² + ky·p + kx, the conv weight order. */
static void pack_patches(const void *arg, size_t i0, size_t mc, size_t k0, size_t kc, int mr,
                         float *dst) {
    const fwd *f = arg;
    const size_t p = f->v->p, pp = p * p, HW = f->H * f->W;
    for (size_t q = 0; q < mc; q += (size_t)mr, dst += kc * (size_t)mr) {
        size_t rows = mc - q < (size_t)mr ? mc - q : (size_t)mr;
        for (size_t r = 0; r < (size_t)mr; r++) {
            if (r >= rows) {
                for (size_t k = 0; k < kc; k++) dst[k * (size_t)mr + r] = 0.0f;
                continue;
            }
            size_t i = i0 + q + r, img = i / f->np, pi = i % f->np;
            size_t py = pi / f->gw, px = pi % f->gw;
            const float *base = f->in + img * 3 * HW + py * p * f->W + px * p;
            for (size_t k = 0; k < kc; k++) {
                size_t kk = k0 + k, c = kk / pp, rem = kk % pp, ky = rem / p, kx = rem % p;
                dst[k * (size_t)mr + r] = base[c * HW + ky * f->W + kx];
            }
        }
    }
}

/* One (image, head) of multi-head attention: S = q·kᵀ, ·scale, softmax over
 * keys, O = P·v, on the GEMM micro-kernel (canonical fma chains). */
static void attn_task(void *arg, size_t task, int thread) {
    fwd *f = arg;
    const vit *v = f->v;
    const fdd_gemm_kernel *kern = f->kern;
    const size_t MR = (size_t)kern->mr, NR = (size_t)kern->nr;
    const size_t T = f->T, D = v->D, hd = v->hd, ld = 3 * D;
    size_t img = task / v->heads, head = task % v->heads;
    const float *qkv = f->big + img * T * ld;
    float *pq = f->scratch[thread];   /* packed q (tm x hd), then P (tm x T) */
    float *pk = pq + f->szq;          /* packed kᵀ (hd x tn), then v (T x hdn) */
    float *s = pk + f->szk;           /* scores, tm x tn */
    float *ot = s + round_up(f->tm * f->tn, 16);   /* output, tm x hdn */
    fdd_matrix q = {qkv + head * hd, ld, false};
    fdd_matrix k = {qkv + D + head * hd, ld, true};
    fdd_matrix vm = {qkv + 2 * D + head * hd, ld, false};
    fdd_pack_a_matrix(&q, 0, T, 0, hd, (int)MR, pq);
    fdd_pack_b_matrix(&k, 0, hd, 0, T, (int)NR, pk);
    for (size_t j = 0; j < f->tn; j += NR)
        for (size_t i = 0; i < f->tm; i += MR)
            kern->fn(hd, pq + i * hd, pk + j * hd, s + i * f->tn + j, f->tn, 0);
    const float scale = (float)(1.0 / sqrt((double)hd));   /* hd ** -0.5 */
    for (size_t i = 0; i < T; i++) {
        float *row = s + i * f->tn;
        float mx = -INFINITY;
        for (size_t j = 0; j < T; j++) {
            row[j] = row[j] * scale;
            mx = row[j] > mx ? row[j] : mx;
        }
        for (size_t j = 0; j < T; j++) row[j] = row[j] - mx;
        exp_n(f->isa, row, T);
        float sum = 0.0f;
        for (size_t j = 0; j < T; j++) sum += row[j];
        float inv = 1.0f / sum;
        for (size_t j = 0; j < T; j++) row[j] = row[j] * inv;
    }
    fdd_matrix pm = {s, f->tn, false};
    fdd_pack_a_matrix(&pm, 0, T, 0, T, (int)MR, pq);
    fdd_pack_b_matrix(&vm, 0, T, 0, hd, (int)NR, pk);
    for (size_t j = 0; j < f->hdn; j += NR)
        for (size_t i = 0; i < f->tm; i += MR)
            kern->fn(T, pq + i * T, pk + j * T, ot + i * f->hdn + j, f->hdn, 0);
    float *out = f->o + img * T * D + head * hd;
    for (size_t i = 0; i < T; i++) memcpy(out + i * D, ot + i * f->hdn, hd * sizeof(float));
}

/* Interpolated position embedding for a gh x gw grid: [1 + gh·gw, D]. */
static void interp_pos(const vit *v, size_t gh, size_t gw, int square, float *out, float *tmp,
                       axis_w *ay, axis_w *ax) {
    const size_t D = v->D, M = v->grid;
    memcpy(out, v->pos, D * sizeof(float));
    const float *src = v->pos + D;
    if (gh * gw == M * M && square) {   /* the families' `npatch == N and w == h` */
        memcpy(out + D, src, M * M * D * sizeof(float));
        return;
    }
    axis_weights(v, M, gw, ax);
    axis_weights(v, M, gh, ay);
    /* Along x first: tmp[M][gw][D]; then along y: out[gh][gw][D]. */
    for (size_t yy = 0; yy < M; yy++)
        for (size_t xo = 0; xo < gw; xo++) {
            float *d = tmp + (yy * gw + xo) * D;
            for (size_t c = 0; c < D; c++) d[c] = 0.0f;
            for (size_t t = 0; t < ax->nt; t++) {
                const float *sr = src + (yy * M + (size_t)ax->idx[xo * ax->nt + t]) * D;
                float wt = ax->wt[xo * ax->nt + t];
                for (size_t c = 0; c < D; c++) d[c] = d[c] + wt * sr[c];
            }
        }
    for (size_t yo = 0; yo < gh; yo++)
        for (size_t xo = 0; xo < gw; xo++) {
            float *d = out + D + (yo * gw + xo) * D;
            for (size_t c = 0; c < D; c++) d[c] = 0.0f;
            for (size_t t = 0; t < ay->nt; t++) {
                const float *sr = tmp + ((size_t)ay->idx[yo * ay->nt + t] * gw + xo) * D;
                float wt = ay->wt[yo * ay->nt + t];
                for (size_t c = 0; c < D; c++) d[c] = d[c] + wt * sr[c];
            }
        }
}

/* Arena layout of one forward chunk; with a->base == NULL only counts. */
typedef struct layout {
    float *x, *h, *o, *big, *pos, *ptmp, *feat_a, *feat_b;
    axis_w ax, ay;
    float **scratch;
} layout;

static int carve(fdd_arena *a, layout *L, const fwd *f, size_t nthreads) {
    const vit *v = f->v;
    size_t D = v->D, rows = f->rows, M = v->grid;
    size_t mlp = v->swiglu ? 2 * v->hidden : v->hidden;
    size_t bigc = mlp > 3 * D ? mlp : 3 * D;
    size_t tkx = axis_taps(v, M, f->gw), tky = axis_taps(v, M, f->gh);
    size_t per = f->szq + f->szk + round_up(f->tm * f->tn, 16) + f->tm * f->hdn;
    size_t hh = v->has_head ? v->head_hidden : 0;
    /* Sizes were overflow-checked by the caller (rows and T bounded). */
    L->x = fdd_arena_alloc(a, rows * D * sizeof(float));
    L->h = fdd_arena_alloc(a, rows * D * sizeof(float));
    L->o = fdd_arena_alloc(a, rows * D * sizeof(float));
    L->big = fdd_arena_alloc(a, rows * bigc * sizeof(float));
    L->pos = fdd_arena_alloc(a, (1 + f->np) * D * sizeof(float));
    L->ptmp = fdd_arena_alloc(a, M * f->gw * D * sizeof(float));
    L->ax.idx = fdd_arena_alloc(a, f->gw * tkx * sizeof(int32_t));
    L->ax.wt = fdd_arena_alloc(a, f->gw * tkx * sizeof(float));
    L->ay.idx = fdd_arena_alloc(a, f->gh * tky * sizeof(int32_t));
    L->ay.wt = fdd_arena_alloc(a, f->gh * tky * sizeof(float));
    L->ax.nt = tkx;
    L->ay.nt = tky;
    L->feat_a = fdd_arena_alloc(a, f->nb * (hh > 2 * D ? hh : 2 * D) * sizeof(float));
    L->feat_b = fdd_arena_alloc(a, f->nb * (2 * hh > D ? 2 * hh : D) * sizeof(float));
    (void)tkx;
    L->scratch = fdd_arena_alloc(a, nthreads * sizeof(float *));
    int ok = a->base != NULL && L->x && L->h && L->o && L->big && L->pos && L->ptmp && L->ax.idx &&
             L->ax.wt && L->ay.idx && L->ay.wt && L->feat_a && L->feat_b && L->scratch;
    for (size_t t = 0; t < nthreads; t++) {
        float *s = fdd_arena_alloc(a, per * sizeof(float));
        if (ok) {
            if (!s) ok = 0;
            else L->scratch[t] = s;
        }
    }
    return ok;
}

static fdd_status forward_chunk(fwd *f, const float *in, size_t nb, float *features, fdd_error *err) {
    const vit *v = f->v;
    const size_t D = v->D, T = f->T, np = f->np, R = v->R;
    fdd_status st;
    f->nb = nb;
    f->in = in;
    /* Patch embedding: o[nb·np, D] = patches · Wᵀ + b. */
    {
        fdd_matrix B = {v->pe_w, 3 * v->p * v->p, true};
        fdd_gemm_op op = {.m = nb * np, .n = D, .k = 3 * v->p * v->p, .pack_a = pack_patches,
                          .a_arg = f, .pack_b = fdd_pack_b_matrix, .b_arg = &B, .c = f->o,
                          .ldc = D, .col_bias = v->pe_b};
        if ((st = fdd_gemm_run(f->ctx, &op, err))) return st;
    }
    /* Tokens: [cls + pos0, registers, patches + pos]. */
    for (size_t b = 0; b < nb; b++) {
        float *x = f->x + b * T * D;
        for (size_t c = 0; c < D; c++) x[c] = v->cls[c] + f->pos[c];
        for (size_t r = 0; r < R; r++) memcpy(x + (1 + r) * D, v->reg + r * D, D * sizeof(float));
        for (size_t i = 0; i < np; i++) {
            float *d = x + (1 + R + i) * D;
            const float *s = f->o + (b * np + i) * D, *pp = f->pos + (1 + i) * D;
            for (size_t c = 0; c < D; c++) d[c] = s[c] + pp[c];
        }
    }
    f->rows = nb * T;
    size_t mlp = v->swiglu ? 2 * v->hidden : v->hidden;
    for (size_t l = 0; l < v->depth; l++) {
        const vit_block *bk = &v->blocks[l];
        f->blk = bk;
        /* h = norm1(x); qkv = h·Wᵀ + b */
        f->src = f->x; f->dst = f->h; f->ld_src = f->ld_dst = D; f->lnw = bk->n1w; f->lnb = bk->n1b;
        run_rows(f, ln_task);
        if ((st = linear(f, f->h, D, f->rows, D, bk->qkv_w, bk->qkv_b, 3 * D, f->big, 3 * D, err)))
            return st;
        fdd_parallel(f->ctx, attn_task, f, nb * v->heads);
        if ((st = linear(f, f->o, D, f->rows, D, bk->proj_w, bk->proj_b, D, f->h, D, err)))
            return st;
        f->src = f->h; f->dst = f->x; f->gamma = bk->ls1;
        run_rows(f, residual_task);
        /* MLP */
        f->src = f->x; f->dst = f->h; f->ld_src = f->ld_dst = D; f->lnw = bk->n2w; f->lnb = bk->n2b;
        run_rows(f, ln_task);
        if ((st = linear(f, f->h, D, f->rows, D, bk->fc1_w, bk->fc1_b, mlp, f->big, mlp, err)))
            return st;
        f->dst = f->big; f->ld_dst = mlp; f->ncols = v->hidden;
        run_rows(f, v->swiglu ? swiglu_task : gelu_task);
        if ((st = linear(f, f->big, mlp, f->rows, v->hidden, bk->fc2_w, bk->fc2_b, D, f->o, D, err)))
            return st;
        f->src = f->o; f->dst = f->x; f->gamma = bk->ls2;
        run_rows(f, residual_task);
    }
    /* Final norm of the tokens the feature needs. */
    int feat = v->feature;
    size_t dim = D;
    for (size_t b = 0; b < nb; b++) {
        const float *x = f->x + b * T * D;
        float *cls = f->feat_a + b * 2 * D, *mean = cls + D;
        layer_norm_row(x, cls, D, v->norm_w, v->norm_b, v->eps);
        if (feat == FEAT_MEAN || feat == FEAT_CLS_MEAN) {
            double *acc = (double *)f->o;   /* D doubles fit in o's rows */
            for (size_t c = 0; c < D; c++) acc[c] = 0;
            float *t = f->big;
            for (size_t i = 0; i < np; i++) {
                layer_norm_row(x + (1 + R + i) * D, t, D, v->norm_w, v->norm_b, v->eps);
                for (size_t c = 0; c < D; c++) acc[c] += t[c];
            }
            for (size_t c = 0; c < D; c++) mean[c] = (float)(acc[c] / (double)np);
        }
    }
    if (feat == FEAT_CLS || feat == FEAT_MEAN || feat == FEAT_CLS_MEAN) {
        size_t off = feat == FEAT_MEAN ? D : 0;
        dim = feat == FEAT_CLS_MEAN ? 2 * D : D;
        for (size_t b = 0; b < nb; b++)
            memcpy(features + b * dim, f->feat_a + b * 2 * D + off, dim * sizeof(float));
        return FDD_OK;
    }
    /* DINO head: Linear -> GELU -> Linear [-> GELU]. */
    size_t hh = v->head_hidden;
    float *h1 = f->feat_b, *h2 = f->feat_b + nb * hh;
    if ((st = linear(f, f->feat_a, 2 * D, nb, D, v->h0w, v->h0b, hh, h1, hh, err))) return st;
    gelu_n(f->isa, h1, nb * hh);
    if ((st = linear(f, h1, hh, nb, hh, v->h2w, v->h2b, hh, h2, hh, err))) return st;
    if (feat == FEAT_HEAD_HIDDEN) gelu_n(f->isa, h2, nb * hh);
    memcpy(features, h2, nb * hh * sizeof(float));
    return FDD_OK;
}

/* Largest number of token rows processed at once (memory bound only). */
enum { MAX_CHUNK_ROWS = 8192 };

static fdd_status vit_forward(fdd_model *m, fdd_ctx *ctx, const fdd_preprocess *cfg,
                              const float *inputs, size_t n, float *features, float *logits,
                              fdd_error *err) {
    (void)logits;
    vit *v = m->impl;
    const char *path = fdd_weights_path(m->w);
    if (n == 0) return FDD_OK;
    if (!cfg || cfg->out_w <= 0 || cfg->out_h <= 0)
        return fdd_fail(err, FDD_E_ARG, "%s: missing input size", path);
    size_t H = (size_t)cfg->out_h, W = (size_t)cfg->out_w, p = v->p;
    if (H < p || W < p || H > 16384 || W > 16384)
        return fdd_fail(err, FDD_E_ARG, "%s: input %zux%zu too small or too large for patch %zu",
                        path, W, H, p);
    if (v->dinov2 && (H % p || W % p))   /* DINOv2 asserts it; DINO's conv drops the rest */
        return fdd_fail(err, FDD_E_ARG, "%s: input %zux%zu is not a multiple of the patch size %zu",
                        path, W, H, p);
    fwd f = {0};
    f.v = v;
    f.ctx = ctx;
    f.isa = fdd_ctx_isa(ctx);
    f.kern = fdd_gemm_kernel_for(f.isa);
    if (!f.kern || !f.kern->fn) return fdd_fail(err, FDD_E_ARG, "%s: no GEMM kernel for the ISA", path);
    f.H = H; f.W = W; f.gh = H / p; f.gw = W / p; f.np = f.gh * f.gw;
    f.T = 1 + v->R + f.np;
    if (f.T > 65536)
        return fdd_fail(err, FDD_E_ARG, "%s: input %zux%zu gives too many tokens", path, W, H);
    size_t nb = MAX_CHUNK_ROWS / f.T;
    if (nb < 1) nb = 1;
    if (nb > n) nb = n;
    f.nthreads = (size_t)fdd_ctx_threads(ctx);
    if (f.nthreads < 1) f.nthreads = 1;
    f.tm = round_up(f.T, (size_t)f.kern->mr);
    f.tn = round_up(f.T, (size_t)f.kern->nr);
    f.hdn = round_up(v->hd, (size_t)f.kern->nr);
    /* Panels must stay 64-byte aligned: every piece a multiple of 16 floats. */
    f.szq = round_up(f.tm * (f.T > v->hd ? f.T : v->hd), 16);
    f.szk = round_up(f.tn * v->hd > f.T * f.hdn ? f.tn * v->hd : f.T * f.hdn, 16);
    f.rows = nb * f.T;
    /* Size the arena for the biggest chunk. */
    fdd_arena a = {0};
    layout L;
    f.nb = nb;
    carve(&a, &L, &f, f.nthreads);
    size_t need = a.peak;
    fdd_status st = fdd_arena_init(&a, ctx, need, err);
    if (st) return st;
    if (!carve(&a, &L, &f, f.nthreads)) {
        fdd_arena_free(&a);
        return fdd_fail(err, FDD_E_NOMEM, "%s: arena sizing error", path);
    }
    f.x = L.x; f.h = L.h; f.o = L.o; f.big = L.big; f.pos = L.pos; f.scratch = L.scratch;
    f.feat_a = L.feat_a; f.feat_b = L.feat_b;
    interp_pos(v, f.gh, f.gw, H == W, f.pos, L.ptmp, &L.ay, &L.ax);
    size_t in_sz = 3 * H * W;
    for (size_t i = 0; i < n; i += nb) {
        size_t k = n - i < nb ? n - i : nb;
        st = forward_chunk(&f, inputs + i * in_sz, k, features + i * m->dim, err);
        if (st) break;
    }
    fdd_arena_free(&a);
    return st;
}

const fdd_arch fdd_arch_vit = {
    .name = "vit",
    .open = vit_open,
    .close = vit_close,
    .preprocess_config = vit_preprocess_config,
    .forward = vit_forward,
    .set_feature = vit_set_feature,
};

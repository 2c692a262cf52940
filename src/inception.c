/* inception.c — the FID InceptionV3 (the 2015-12-05 TF graph as pytorch-fid
 * builds it, specs/models.md §A): FIDInceptionA/C/E_1/E_2 with
 * count_include_pad=False average pools, the max pool in Mixed_7c, BatchNorm
 * eps from the metadata (1e-3), 2048-d pool3 features and the 1008 logits.
 *
 * Activations are channel-major with the batch inside (C x N·H·W), so each
 * convolution is one implicit GEMM over the whole batch and each branch
 * writes straight into its channel slot of the block output.  A forward pass
 * runs the network twice: a dry run that only sizes the buffers, then the
 * real one in a single arena allocation. */
#include "layers.h"
#include "model.h"

#include <stdio.h>

enum { NCONV = 94, FEAT = 2048, FC_IN = 2048, CHUNK = 8, MIN_SIDE = 75, MAX_SIDE = 4096 };

typedef struct cspec {
    char name[40];
    unsigned short cin, cout, kh, kw, s, ph, pw;
} cspec;

typedef struct incep {
    cspec spec[NCONV];
    fdd_conv conv[NCONV];
    const float *fc_w, *fc_b;
    size_t ncls;
} incep;

/* ------------------------------------------------- the 94 convolutions */

typedef struct builder {
    cspec *spec;
    int n;
    const char *prefix;
} builder;

static void add(builder *b, const char *name, int cin, int cout, int kh, int kw, int s, int ph,
                int pw) {
    cspec *c = &b->spec[b->n++];
    FDD_ASSERT(b->n <= NCONV);
    snprintf(c->name, sizeof c->name, "%s%s%s", b->prefix, b->prefix[0] ? "." : "", name);
    c->cin = (unsigned short)cin; c->cout = (unsigned short)cout;
    c->kh = (unsigned short)kh; c->kw = (unsigned short)kw; c->s = (unsigned short)s;
    c->ph = (unsigned short)ph; c->pw = (unsigned short)pw;
}

/* State-dict order (models.md Appendix 1); the forward pass consumes the
 * convolutions in this same order. */
static void build_specs(cspec *spec) {
    builder b = {spec, 0, ""};
    add(&b, "Conv2d_1a_3x3", 3, 32, 3, 3, 2, 0, 0);
    add(&b, "Conv2d_2a_3x3", 32, 32, 3, 3, 1, 0, 0);
    add(&b, "Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1);
    add(&b, "Conv2d_3b_1x1", 64, 80, 1, 1, 1, 0, 0);
    add(&b, "Conv2d_4a_3x3", 80, 192, 3, 3, 1, 0, 0);
    static const char *const A[] = {"Mixed_5b", "Mixed_5c", "Mixed_5d"};
    static const int A_in[] = {192, 256, 288}, A_pf[] = {32, 64, 64};
    for (int i = 0; i < 3; i++) {
        b.prefix = A[i];
        add(&b, "branch1x1", A_in[i], 64, 1, 1, 1, 0, 0);
        add(&b, "branch5x5_1", A_in[i], 48, 1, 1, 1, 0, 0);
        add(&b, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
        add(&b, "branch3x3dbl_1", A_in[i], 64, 1, 1, 1, 0, 0);
        add(&b, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
        add(&b, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
        add(&b, "branch_pool", A_in[i], A_pf[i], 1, 1, 1, 0, 0);
    }
    b.prefix = "Mixed_6a";
    add(&b, "branch3x3", 288, 384, 3, 3, 2, 0, 0);
    add(&b, "branch3x3dbl_1", 288, 64, 1, 1, 1, 0, 0);
    add(&b, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    add(&b, "branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0);
    static const char *const C[] = {"Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"};
    static const int C7[] = {128, 160, 160, 192};
    for (int i = 0; i < 4; i++) {
        int c7 = C7[i];
        b.prefix = C[i];
        add(&b, "branch1x1", 768, 192, 1, 1, 1, 0, 0);
        add(&b, "branch7x7_1", 768, c7, 1, 1, 1, 0, 0);
        add(&b, "branch7x7_2", c7, c7, 1, 7, 1, 0, 3);
        add(&b, "branch7x7_3", c7, 192, 7, 1, 1, 3, 0);
        add(&b, "branch7x7dbl_1", 768, c7, 1, 1, 1, 0, 0);
        add(&b, "branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0);
        add(&b, "branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3);
        add(&b, "branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0);
        add(&b, "branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3);
        add(&b, "branch_pool", 768, 192, 1, 1, 1, 0, 0);
    }
    b.prefix = "Mixed_7a";
    add(&b, "branch3x3_1", 768, 192, 1, 1, 1, 0, 0);
    add(&b, "branch3x3_2", 192, 320, 3, 3, 2, 0, 0);
    add(&b, "branch7x7x3_1", 768, 192, 1, 1, 1, 0, 0);
    add(&b, "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
    add(&b, "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
    add(&b, "branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0);
    static const char *const E[] = {"Mixed_7b", "Mixed_7c"};
    static const int E_in[] = {1280, 2048};
    for (int i = 0; i < 2; i++) {
        b.prefix = E[i];
        add(&b, "branch1x1", E_in[i], 320, 1, 1, 1, 0, 0);
        add(&b, "branch3x3_1", E_in[i], 384, 1, 1, 1, 0, 0);
        add(&b, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
        add(&b, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
        add(&b, "branch3x3dbl_1", E_in[i], 448, 1, 1, 1, 0, 0);
        add(&b, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
        add(&b, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
        add(&b, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
        add(&b, "branch_pool", E_in[i], 192, 1, 1, 1, 0, 0);
    }
    FDD_ASSERT(b.n == NCONV);
}

/* ------------------------------------------------------------ open/close */

static void inception_close(fdd_model *m) {
    incep *net = m->impl;
    if (!net) return;
    for (int i = 0; i < NCONV; i++) fdd_conv_free(&net->conv[i]);
    fdd_free(net);
    m->impl = NULL;
}

static fdd_status inception_open(fdd_model *m, fdd_error *err) {
    const char *path = fdd_weights_path(m->w);
    long ncls = 1008;
    double eps = 0.001;
    fdd_status s;
    if (fdd_weights_meta(m->w, "arch.num_classes") &&
        (s = fdd_meta_int(m->w, "arch.num_classes", 1, 1000000, &ncls, err)))
        return s;
    if (fdd_weights_meta(m->w, "arch.bn_eps")) {
        if ((s = fdd_meta_float(m->w, "arch.bn_eps", &eps, err))) return s;
        if (!(eps > 0 && eps < 1))
            return fdd_fail(err, FDD_E_FORMAT, "%s: metadata arch.bn_eps=%g is not in (0, 1)", path, eps);
    }
    long dim = FEAT;
    if (fdd_weights_meta(m->w, "feature.dim") &&
        (s = fdd_meta_int(m->w, "feature.dim", FEAT, FEAT, &dim, err)))
        return s;

    incep *net = fdd_calloc(1, sizeof *net);
    fdd_tensor_spec *ts = fdd_calloc(NCONV * 5 + 2, sizeof *ts);
    const float **ptr = fdd_calloc(NCONV * 5 + 2, sizeof *ptr);
    char (*names)[64] = fdd_calloc(NCONV * 5, sizeof *names);
    if (!net || !ts || !ptr || !names) {
        fdd_free(net); fdd_free(ts); fdd_free(ptr); fdd_free(names);
        return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path);
    }
    m->impl = net;
    net->ncls = (size_t)ncls;
    build_specs(net->spec);
    static const char *const part[5] = {"conv.weight", "bn.weight", "bn.bias", "bn.running_mean",
                                        "bn.running_var"};
    size_t n = 0;
    for (int i = 0; i < NCONV; i++) {
        const cspec *c = &net->spec[i];
        for (int p = 0; p < 5; p++, n++) {
            snprintf(names[n], sizeof names[n], "%s.%s", c->name, part[p]);
            ts[n].name = names[n];
            ts[n].dest = &ptr[n];
            if (p == 0) {
                ts[n].ndim = 4;
                ts[n].dims[0] = c->cout; ts[n].dims[1] = c->cin;
                ts[n].dims[2] = c->kh; ts[n].dims[3] = c->kw;
            } else {
                ts[n].ndim = 1;
                ts[n].dims[0] = c->cout;
            }
        }
    }
    ts[n] = (fdd_tensor_spec){.name = "fc.weight", .ndim = 2, .dims = {net->ncls, FC_IN}, .dest = &net->fc_w};
    ts[n + 1] = (fdd_tensor_spec){.name = "fc.bias", .ndim = 1, .dims = {net->ncls}, .dest = &net->fc_b};
    s = fdd_weights_bind(m->w, ts, n + 2, err);
    for (int i = 0; i < NCONV && !s; i++) {
        const cspec *c = &net->spec[i];
        const float **p = &ptr[5 * i];
        s = fdd_conv_init_bn(&net->conv[i], c->cin, c->cout, c->kh, c->kw, c->s, c->s, c->ph, c->pw,
                             p[0], p[1], p[2], p[3], p[4], (float)eps, err);
    }
    fdd_free(ts);
    fdd_free(ptr);
    fdd_free(names);
    if (s) {
        inception_close(m);
        return s;
    }
    m->dim = FEAT;
    m->nlogits = net->ncls;
    return FDD_OK;
}

static fdd_status inception_preprocess_config(const fdd_model *m, const char *profile,
                                              fdd_preprocess *cfg, fdd_error *err) {
    if (!profile) profile = fdd_weights_meta(m->w, "preprocess.profile");
    if (!profile) profile = "pytorch-fid";
    /* pytorch-fid: [0,1], bilinear (align_corners=False) to 299, 2x-1.
     * tf1: [0,255], TF-1 bilinear to 299, (x-128)/128.
     * clean: [0,255], Pillow float bicubic to 299, (x-128)/128.
     * The arithmetic of each is in fdd_preprocess_image (src/model.c). */
    if (strcmp(profile, "pytorch-fid") && strcmp(profile, "tf1") && strcmp(profile, "clean"))
        return fdd_fail(err, FDD_E_ARG,
                        "%s: profile '%s' is not one of pytorch-fid, tf1, clean for inception-fid",
                        fdd_weights_path(m->w), profile);
    snprintf(cfg->profile, sizeof cfg->profile, "%s", profile);
    cfg->resize_w = cfg->resize_h = 299;
    cfg->out_w = cfg->out_h = 299;
    for (int c = 0; c < 3; c++) {
        cfg->mean[c] = 0.0f;
        cfg->std[c] = 1.0f;
    }
    return FDD_OK;
}

/* ---------------------------------------------------------------- forward */

typedef struct run {
    fdd_ctx *ctx;
    const incep *net;
    fdd_error *err;
    fdd_status st;
    bool dry;               /* sizing pass: track sizes, compute nothing */
    size_t n;               /* images in this pass */
    float *pp[2];           /* ping-pong buffers for stage outputs */
    int cur;
    size_t pp_need;         /* floats */
    float *scr;             /* stack of block temporaries */
    size_t scr_used, scr_peak;
    int ci;                 /* next convolution */
} run;

static size_t fm_size(const run *r, size_t c, size_t h, size_t w) {
    return (c * r->n * h * w + 15) & ~(size_t)15;
}

/* The next stage output: the ping-pong buffer not holding the input. */
static fdd_fmap stage_out(run *r, size_t c, size_t h, size_t w) {
    size_t sz = fm_size(r, c, h, w);
    if (sz > r->pp_need) r->pp_need = sz;
    r->cur ^= 1;
    return fdd_fmap_cm(r->dry ? NULL : r->pp[r->cur], c, r->n, h, w);
}

static fdd_fmap scratch(run *r, size_t c, size_t h, size_t w) {
    size_t off = r->scr_used;
    r->scr_used += fm_size(r, c, h, w);
    if (r->scr_used > r->scr_peak) r->scr_peak = r->scr_used;
    return fdd_fmap_cm(r->dry ? NULL : r->scr + off, c, r->n, h, w);
}

static const fdd_conv *next_conv(const run *r) { return &r->net->conv[r->ci]; }

static size_t out_h(const run *r, const fdd_fmap *in) {
    const fdd_conv *c = next_conv(r);
    return fdd_conv_out(in->h, c->kh, c->sh, c->ph);
}
static size_t out_w(const run *r, const fdd_fmap *in) {
    const fdd_conv *c = next_conv(r);
    return fdd_conv_out(in->w, c->kw, c->sw, c->pw);
}

/* Runs the next convolution (+BN+ReLU) of in into out. */
static void conv(run *r, const fdd_fmap *in, const fdd_fmap *out) {
    const fdd_conv *cv = &r->net->conv[r->ci++];
    if (r->dry || r->st) return;
    r->st = fdd_conv_run(r->ctx, cv, in, out, true, r->err);
}

/* The next convolution into a new scratch map. */
static fdd_fmap conv_scratch(run *r, const fdd_fmap *in) {
    fdd_fmap o = scratch(r, next_conv(r)->cout, out_h(r, in), out_w(r, in));
    conv(r, in, &o);
    return o;
}

/* The next convolution into channels [off, off+cout) of out; returns off+cout. */
static size_t conv_slot(run *r, const fdd_fmap *in, const fdd_fmap *out, size_t off) {
    size_t c = next_conv(r)->cout;
    fdd_fmap o = fdd_fmap_slice(out, off, c);
    conv(r, in, &o);
    return off + c;
}

static fdd_fmap stage_conv(run *r, const fdd_fmap *in) {
    fdd_fmap o = stage_out(r, next_conv(r)->cout, out_h(r, in), out_w(r, in));
    conv(r, in, &o);
    return o;
}

static void pool(run *r, const fdd_fmap *in, const fdd_fmap *out, size_t k, size_t s, size_t p,
                 bool avg) {
    if (r->dry || r->st) return;
    if (avg)
        fdd_avgpool(r->ctx, in, out, k, s, p);
    else
        fdd_maxpool(r->ctx, in, out, k, s, p);
}

static fdd_fmap stage_maxpool(run *r, const fdd_fmap *in) {
    fdd_fmap o = stage_out(r, in->c, fdd_conv_out(in->h, 3, 2, 0), fdd_conv_out(in->w, 3, 2, 0));
    pool(r, in, &o, 3, 2, 0, false);
    return o;
}

/* FIDInceptionA (in -> 224 + pool_features channels). */
static fdd_fmap block_a(run *r, const fdd_fmap *x) {
    size_t mark = r->scr_used, pf = r->net->conv[r->ci + 6].cout;
    fdd_fmap out = stage_out(r, 224 + pf, x->h, x->w);
    size_t off = conv_slot(r, x, &out, 0);
    fdd_fmap t = conv_scratch(r, x);
    off = conv_slot(r, &t, &out, off);
    t = conv_scratch(r, x);
    t = conv_scratch(r, &t);
    off = conv_slot(r, &t, &out, off);
    fdd_fmap p = scratch(r, x->c, x->h, x->w);
    pool(r, x, &p, 3, 1, 1, true);
    conv_slot(r, &p, &out, off);
    r->scr_used = mark;
    return out;
}

/* InceptionB (Mixed_6a): 35 -> 17, 384 + 96 + in channels. */
static fdd_fmap block_b(run *r, const fdd_fmap *x) {
    size_t mark = r->scr_used;
    size_t h = fdd_conv_out(x->h, 3, 2, 0), w = fdd_conv_out(x->w, 3, 2, 0);
    fdd_fmap out = stage_out(r, 384 + 96 + x->c, h, w);
    size_t off = conv_slot(r, x, &out, 0);
    fdd_fmap t = conv_scratch(r, x);
    t = conv_scratch(r, &t);
    off = conv_slot(r, &t, &out, off);
    fdd_fmap p = fdd_fmap_slice(&out, off, x->c);
    pool(r, x, &p, 3, 2, 0, false);
    r->scr_used = mark;
    return out;
}

/* FIDInceptionC (Mixed_6b..6e): 768 channels. */
static fdd_fmap block_c(run *r, const fdd_fmap *x) {
    size_t mark = r->scr_used;
    fdd_fmap out = stage_out(r, 768, x->h, x->w);
    size_t off = conv_slot(r, x, &out, 0);
    fdd_fmap t = conv_scratch(r, x);
    fdd_fmap u = conv_scratch(r, &t);
    off = conv_slot(r, &u, &out, off);
    r->scr_used = mark;
    t = conv_scratch(r, x);
    u = conv_scratch(r, &t);
    t = conv_scratch(r, &u);
    u = conv_scratch(r, &t);
    off = conv_slot(r, &u, &out, off);
    r->scr_used = mark;
    fdd_fmap p = scratch(r, x->c, x->h, x->w);
    pool(r, x, &p, 3, 1, 1, true);
    conv_slot(r, &p, &out, off);
    r->scr_used = mark;
    return out;
}

/* InceptionD (Mixed_7a): 17 -> 8, 320 + 192 + in channels. */
static fdd_fmap block_d(run *r, const fdd_fmap *x) {
    size_t mark = r->scr_used;
    size_t h = fdd_conv_out(x->h, 3, 2, 0), w = fdd_conv_out(x->w, 3, 2, 0);
    fdd_fmap out = stage_out(r, 320 + 192 + x->c, h, w);
    fdd_fmap t = conv_scratch(r, x);
    size_t off = conv_slot(r, &t, &out, 0);
    r->scr_used = mark;
    t = conv_scratch(r, x);
    fdd_fmap u = conv_scratch(r, &t);
    t = conv_scratch(r, &u);
    off = conv_slot(r, &t, &out, off);
    fdd_fmap p = fdd_fmap_slice(&out, off, x->c);
    pool(r, x, &p, 3, 2, 0, false);
    r->scr_used = mark;
    return out;
}

/* FIDInceptionE_1 (avg pool branch) / E_2 (max pool branch): 2048 channels. */
static fdd_fmap block_e(run *r, const fdd_fmap *x, bool maxpool) {
    size_t mark = r->scr_used;
    fdd_fmap out = stage_out(r, 2048, x->h, x->w);
    size_t off = conv_slot(r, x, &out, 0);
    fdd_fmap t = conv_scratch(r, x);
    off = conv_slot(r, &t, &out, off);
    off = conv_slot(r, &t, &out, off);
    r->scr_used = mark;
    t = conv_scratch(r, x);
    fdd_fmap u = conv_scratch(r, &t);
    off = conv_slot(r, &u, &out, off);
    off = conv_slot(r, &u, &out, off);
    r->scr_used = mark;
    fdd_fmap p = scratch(r, x->c, x->h, x->w);
    pool(r, x, &p, 3, 1, 1, !maxpool);
    conv_slot(r, &p, &out, off);
    r->scr_used = mark;
    return out;
}

/* The network up to Mixed_7c for r->n images of in; returns its output. */
static fdd_fmap network(run *r, const fdd_fmap *in) {
    r->ci = 0;
    r->cur = 0;
    fdd_fmap x = stage_conv(r, in);   /* Conv2d_1a_3x3 */
    x = stage_conv(r, &x);            /* Conv2d_2a_3x3 */
    x = stage_conv(r, &x);            /* Conv2d_2b_3x3 */
    x = stage_maxpool(r, &x);
    x = stage_conv(r, &x);            /* Conv2d_3b_1x1 */
    x = stage_conv(r, &x);            /* Conv2d_4a_3x3 */
    x = stage_maxpool(r, &x);
    for (int i = 0; i < 3; i++) x = block_a(r, &x);
    x = block_b(r, &x);
    for (int i = 0; i < 4; i++) x = block_c(r, &x);
    x = block_d(r, &x);
    x = block_e(r, &x, false);
    x = block_e(r, &x, true);
    FDD_ASSERT(r->ci == NCONV);
    return x;
}

static fdd_status inception_forward(fdd_model *m, fdd_ctx *ctx, const fdd_preprocess *cfg,
                                    const float *inputs, size_t n, float *features, float *logits,
                                    fdd_error *err) {
    const incep *net = m->impl;
    if (cfg->out_w < MIN_SIDE || cfg->out_h < MIN_SIDE || cfg->out_w > MAX_SIDE ||
        cfg->out_h > MAX_SIDE)
        return fdd_fail(err, FDD_E_ARG, "inception: input size %dx%d is outside %d..%d",
                        cfg->out_w, cfg->out_h, MIN_SIDE, MAX_SIDE);
    size_t H = (size_t)cfg->out_h, W = (size_t)cfg->out_w, chunk = n < CHUNK ? n : CHUNK;
    /* Sizing pass (sizes are bounded: MAX_SIDE^2 x 64 ch x CHUNK fits in size_t). */
    run r = {.ctx = ctx, .net = net, .err = err, .dry = true, .n = chunk};
    fdd_fmap in = {NULL, 3, chunk, H, W, H * W, 3 * H * W};
    fdd_fmap last = network(&r, &in);
    size_t total = (2 * r.pp_need + r.scr_peak) * sizeof(float);
    fdd_arena arena;
    fdd_status s = fdd_arena_init(&arena, ctx, total, err);
    if (s) return s;
    r.pp[0] = fdd_arena_alloc(&arena, r.pp_need * sizeof(float));
    r.pp[1] = fdd_arena_alloc(&arena, r.pp_need * sizeof(float));
    r.scr = r.scr_peak ? fdd_arena_alloc(&arena, r.scr_peak * sizeof(float)) : NULL;
    FDD_ASSERT(r.pp[0] && r.pp[1] && (r.scr || !r.scr_peak));
    r.dry = false;
    for (size_t i0 = 0; i0 < n && !r.st; i0 += chunk) {
        size_t nb = n - i0 < chunk ? n - i0 : chunk;
        r.n = nb;
        r.scr_used = 0;
        in = (fdd_fmap){(float *)(uintptr_t)(inputs + i0 * 3 * H * W), 3, nb, H, W, H * W, 3 * H * W};
        last = network(&r, &in);
        if (r.st) break;
        FDD_ASSERT(last.c == FEAT);
        float *f = features + i0 * FEAT;
        fdd_global_avgpool(ctx, &last, f);
        if (logits)
            r.st = fdd_linear(ctx, f, nb, FC_IN, net->fc_w, net->fc_b, net->ncls,
                              logits + i0 * net->ncls, err);
    }
    fdd_arena_free(&arena);
    return r.st;
}

const fdd_arch fdd_arch_inception = {
    .name = "inception-fid",
    .open = inception_open,
    .close = inception_close,
    .preprocess_config = inception_preprocess_config,
    .forward = inception_forward,
};

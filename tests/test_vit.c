/* test_vit.c — DINO / DINOv2 ViTs (src/vit.c) against PyTorch goldens made by
 * tests/reference/vit_ref.py, plus bit-identity across ISA paths, thread
 * counts and batch sizes, and clean errors on bad files and arguments.
 *
 * Weights and inputs are generated here with the SplitMix64 rule documented
 * in vit_ref.py (same stream, same float32 arithmetic), written to a
 * temporary .fdw and opened through fdd_model_open. */
#include "test.h"
#include "fdw_write.h"

#include "fdd.h"
#include "internal.h"   /* fdd_alloc_fail_at */

#include <math.h>
#include <unistd.h>

typedef struct size3 { int h, w, n; } size3;
typedef struct model_cfg {
    const char *name, *family;
    int p, D, depth, heads, hidden, swiglu, R, ls, grid;
    int head_hidden, head_bottleneck, head_out;   /* 0: no head */
    uint64_t seed;
    size3 sizes[3];
    const char *feats[5];
} model_cfg;

/* The same table as MODELS in tests/reference/vit_ref.py. */
static const model_cfg MODELS[] = {
    {"dino_s16", "dino", 16, 384, 12, 6, 1536, 0, 0, 0, 14, 0, 0, 0, 101,
     {{224, 224, 4}, {160, 224, 4}}, {"cls"}},
    {"dino_b16", "dino", 16, 768, 12, 12, 3072, 0, 0, 0, 14, 0, 0, 0, 202,
     {{224, 224, 3}, {128, 96, 8}}, {"cls"}},
    {"dinov2_s14_reg", "dinov2", 14, 384, 12, 6, 1536, 0, 4, 1, 37, 0, 0, 0, 303,
     {{224, 224, 4}, {168, 252, 4}}, {"cls"}},
    {"dinov2_g_small", "dinov2", 14, 128, 2, 2, 344, 1, 4, 1, 37, 0, 0, 0, 404,
     {{518, 518, 3}, {224, 224, 4}, {98, 140, 4}}, {"cls", "mean"}},
    {"dinov2_tiny", "dinov2", 14, 64, 2, 1, 256, 0, 0, 1, 37, 0, 0, 0, 505,
     {{224, 224, 4}, {140, 182, 4}}, {"cls", "mean"}},
    {"dino_tiny_head", "dino", 16, 64, 2, 2, 256, 0, 0, 0, 14, 256, 32, 100, 606,
     {{224, 224, 4}, {176, 208, 4}},
     {"cls", "mean", "cls+mean", "head-hidden", "head-hidden-linear"}},
};
enum { NMODELS = sizeof MODELS / sizeof MODELS[0] };

static const model_cfg *find_model(const char *name) {
    for (int i = 0; i < NMODELS; i++)
        if (!strcmp(MODELS[i].name, name)) return &MODELS[i];
    return NULL;
}

/* ------------------------------------------------------ weight generation */

typedef struct gen {
    tw_tensor t[1024];
    char names[1024][64];
    float *data[1024];
    size_t n;
    uint64_t rng;
} gen;

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void add(gen *g, const char *name, int ndim, uint64_t d0, uint64_t d1, uint64_t d2,
                uint64_t d3) {
    size_t i = g->n++;
    snprintf(g->names[i], sizeof g->names[i], "%s", name);
    uint64_t dims[4] = {d0, d1, d2, d3}, numel = 1;
    tw_tensor *t = &g->t[i];
    t->name = g->names[i];
    t->ndim = ndim;
    for (int k = 0; k < ndim; k++) t->dims[k] = dims[k], numel *= dims[k];
    float *v = malloc(numel * sizeof(float));
    /* The value rule of vit_ref.py gen_value. */
    float scale = 0;
    int kind;
    if (ends_with(name, ".weight") && strstr(name, "norm") && ndim == 1) kind = 0;
    else if (ends_with(name, ".bias")) kind = 1;
    else if (ends_with(name, ".gamma")) kind = 2;
    else if (!strcmp(name, "cls_token") || !strcmp(name, "pos_embed") ||
             !strcmp(name, "register_tokens") || !strcmp(name, "mask_token")) kind = 3;
    else if (ends_with(name, "weight_g")) kind = 4;
    else {
        kind = 5;
        double c = (strstr(name, "qkv") || strstr(name, "fc1") || strstr(name, "w12") ||
                    strstr(name, "patch_embed") || strstr(name, "head.mlp")) ? 2.0 : 1.0;
        scale = (float)(c / sqrt((double)(numel / dims[0])));
    }
    for (uint64_t j = 0; j < numel; j++) {
        float u = test_rng_float(&g->rng);
        switch (kind) {
        case 0: v[j] = 1.0f + 0.2f * u; break;
        case 1: v[j] = 0.1f * u; break;
        case 2: v[j] = 0.5f + 0.25f * u; break;
        case 3: v[j] = u; break;
        case 4: v[j] = 1.0f + 0.1f * u; break;
        default: v[j] = u * scale; break;
        }
    }
    g->data[i] = v;
    t->data = v;
}

static void gen_free(gen *g) {
    for (size_t i = 0; i < g->n; i++) free(g->data[i]);
    free(g);
}

/* Orders "key=value" lines by key (bytewise), as the format requires. */
static int cmp_str(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t lx = strcspn(x, "="), ly = strcspn(y, "=");
    int c = memcmp(x, y, lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

/* Writes the model's .fdw to path; skip_tensor drops one tensor (error tests),
 * extra_meta overrides/adds "key=value" lines. */
static int write_model(const model_cfg *m, const char *path, const char *skip_tensor,
                       const char *override_key, const char *override_val) {
    gen *g = calloc(1, sizeof *g);
    g->rng = m->seed;
    uint64_t D = (uint64_t)m->D, H = (uint64_t)m->hidden, P = (uint64_t)m->p;
    add(g, "cls_token", 3, 1, 1, D, 0);
    add(g, "pos_embed", 3, 1, 1 + (uint64_t)m->grid * (uint64_t)m->grid, D, 0);
    if (m->R) add(g, "register_tokens", 3, 1, (uint64_t)m->R, D, 0);
    if (!strcmp(m->family, "dinov2")) add(g, "mask_token", 2, 1, D, 0, 0);
    add(g, "patch_embed.proj.weight", 4, D, 3, P, P);
    add(g, "patch_embed.proj.bias", 1, D, 0, 0, 0);
    char n[64];
    for (int i = 0; i < m->depth; i++) {
#define B(s, nd, a, b) (snprintf(n, sizeof n, "blocks.%d." s, i), add(g, n, nd, a, b, 0, 0))
        B("norm1.weight", 1, D, 0); B("norm1.bias", 1, D, 0);
        B("attn.qkv.weight", 2, 3 * D, D); B("attn.qkv.bias", 1, 3 * D, 0);
        B("attn.proj.weight", 2, D, D); B("attn.proj.bias", 1, D, 0);
        if (m->ls) B("ls1.gamma", 1, D, 0);
        B("norm2.weight", 1, D, 0); B("norm2.bias", 1, D, 0);
        if (m->swiglu) {
            B("mlp.w12.weight", 2, 2 * H, D); B("mlp.w12.bias", 1, 2 * H, 0);
            B("mlp.w3.weight", 2, D, H); B("mlp.w3.bias", 1, D, 0);
        } else {
            B("mlp.fc1.weight", 2, H, D); B("mlp.fc1.bias", 1, H, 0);
            B("mlp.fc2.weight", 2, D, H); B("mlp.fc2.bias", 1, D, 0);
        }
        if (m->ls) B("ls2.gamma", 1, D, 0);
#undef B
    }
    add(g, "norm.weight", 1, D, 0, 0, 0);
    add(g, "norm.bias", 1, D, 0, 0, 0);
    if (m->head_hidden) {
        uint64_t hh = (uint64_t)m->head_hidden, hb = (uint64_t)m->head_bottleneck,
                 ho = (uint64_t)m->head_out;
        add(g, "head.mlp.0.weight", 2, hh, D, 0, 0); add(g, "head.mlp.0.bias", 1, hh, 0, 0, 0);
        add(g, "head.mlp.2.weight", 2, hh, hh, 0, 0); add(g, "head.mlp.2.bias", 1, hh, 0, 0, 0);
        add(g, "head.mlp.4.weight", 2, hb, hh, 0, 0); add(g, "head.mlp.4.bias", 1, hb, 0, 0, 0);
        add(g, "head.last_layer.weight_g", 2, ho, 1, 0, 0);
        add(g, "head.last_layer.weight_v", 2, ho, hb, 0, 0);
    }
    /* Metadata as fdd-convert writes it (convert/README.md), sorted. */
    char lines[40][96];
    int nl = 0;
#define META(...) snprintf(lines[nl++], sizeof lines[0], __VA_ARGS__)
    int dinov2 = !strcmp(m->family, "dinov2");
    META("arch=vit");
    META("arch.depth=%d", m->depth);
    META("arch.embed_dim=%d", m->D);
    META("arch.family=%s", m->family);
    META("arch.layer_scale=%d", m->ls);
    META("arch.ln_eps=1e-06");
    META("arch.mlp=%s", m->swiglu ? "swiglu" : "gelu");
    META("arch.mlp_hidden=%d", m->hidden);
    META("arch.num_heads=%d", m->heads);
    META("arch.num_register_tokens=%d", m->R);
    META("arch.patch_size=%d", m->p);
    META("arch.pos_grid=%d", m->grid);
    META("arch.pos_interp=%s", m->R ? "antialias" : "offset");
    if (m->head_hidden) {
        META("arch.head=dino");
        META("arch.head_bottleneck=%d", m->head_bottleneck);
        META("arch.head_hidden=%d", m->head_hidden);
        META("arch.head_out=%d", m->head_out);
    }
    META("converter=fdd-convert 1");
    META("feature.dim=%d", m->D);
    META("preprocess.crop=%s", dinov2 ? "0" : "224");
    META("preprocess.interp=bicubic");
    META("preprocess.mean=0.485,0.456,0.406");
    META("preprocess.profile=%s", dinov2 ? "dgm-eval" : "dino");
    META("preprocess.resize=%s", dinov2 ? "224,224" : "256");
    META("preprocess.std=0.229,0.224,0.225");
    META("source.file=%s.pth", m->name);
    META("source.format=torch-zip");
    META("source.sha256=0000000000000000000000000000000000000000000000000000000000000000");
#undef META
    const char *ptr[40];
    int np = 0;
    size_t klen = override_key ? strlen(override_key) : 0;
    for (int i = 0; i < nl; i++) {
        if (override_key && !strncmp(lines[i], override_key, klen) && lines[i][klen] == '=') {
            if (!override_val) continue;
            snprintf(lines[i], sizeof lines[0], "%s=%s", override_key, override_val);
        }
        ptr[np++] = lines[i];
    }
    qsort(ptr, (size_t)np, sizeof ptr[0], cmp_str);
    char meta[4096] = "";
    for (int i = 0; i < np; i++) {
        strcat(meta, ptr[i]);
        strcat(meta, "\n");
    }
    tw_tensor *keep = malloc(g->n * sizeof *keep);
    size_t nk = 0;
    for (size_t i = 0; i < g->n; i++)
        if (!skip_tensor || strcmp(g->t[i].name, skip_tensor)) keep[nk++] = g->t[i];
    int r = tw_write_fdw(path, meta, keep, nk);
    free(keep);
    gen_free(g);
    return r;
}

static float *make_inputs(const model_cfg *m, int H, int W, int n) {
    uint64_t s = m->seed + 1000 + 17 * (uint64_t)H + (uint64_t)W;
    size_t cnt = (size_t)n * 3 * (size_t)H * (size_t)W;
    float *x = malloc(cnt * sizeof(float));
    for (size_t i = 0; i < cnt; i++) x[i] = 1.5f * test_rng_float(&s);
    return x;
}

static char tmpdir_path[256];

static fdd_model *open_model(const model_cfg *m) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.fdw", tmpdir_path, m->name);
    if (access(path, R_OK) != 0 && write_model(m, path, NULL, NULL, NULL)) return NULL;
    fdd_model *mod = NULL;
    fdd_error err;
    if (fdd_model_open(path, &mod, &err)) {
        fprintf(stderr, "open %s: %s\n", m->name, err.msg);
        return NULL;
    }
    return mod;
}

static fdd_preprocess cfg_for(int H, int W) {
    fdd_preprocess c;
    memset(&c, 0, sizeof c);
    snprintf(c.profile, sizeof c.profile, "test");
    c.out_h = H;
    c.out_w = W;
    return c;
}

static float *load_golden(const char *name, int H, int W, size_t nfloats) {
    char path[512];
    snprintf(path, sizeof path, "tests/data/vit/%s_%dx%d.f32", name, H, W);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *v = malloc(nfloats * sizeof(float));
    unsigned char b[4];
    size_t i = 0;
    for (; i < nfloats && fread(b, 1, 4, f) == 4; i++) {
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(&v[i], &u, 4);
    }
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (i != nfloats || extra) {
        free(v);
        return NULL;
    }
    return v;
}

static fdd_ctx *ctx_default;

/* Features of every variant of the model at one size vs the golden file. */
static void check_golden(const char *name) {
    const model_cfg *m = find_model(name);
    REQUIRE(m, "no model %s", name);
    fdd_model *mod = open_model(m);
    REQUIRE(mod, "cannot open %s", name);
    fdd_error err;
    for (int si = 0; si < 3 && m->sizes[si].n; si++) {
        int H = m->sizes[si].h, W = m->sizes[si].w, n = m->sizes[si].n;
        size_t total = 0, dims[5];
        int nf = 0;
        for (; nf < 5 && m->feats[nf]; nf++) {
            CHECK(fdd_model_set_feature(mod, m->feats[nf], &err) == FDD_OK, "%s", err.msg);
            dims[nf] = fdd_model_dim(mod);
            total += dims[nf] * (size_t)n;
        }
        float *gold = load_golden(name, H, W, total);
        CHECK(gold, "tests/data/vit/%s_%dx%d.f32 missing or wrong size", name, H, W);
        if (!gold) continue;
        float *x = make_inputs(m, H, W, n);
        fdd_preprocess cfg = cfg_for(H, W);
        const float *g = gold;
        for (int fi = 0; fi < nf; fi++) {
            size_t d = dims[fi];
            float *out = calloc((size_t)n * d, sizeof(float));
            fdd_model_set_feature(mod, m->feats[fi], &err);
            fdd_status st = fdd_model_forward(mod, ctx_default, &cfg, x, (size_t)n, out, NULL, &err);
            CHECK(st == FDD_OK, "%s %dx%d: %s", name, H, W, err.msg);
            /* max |diff| / std over images per feature; cosine per image. */
            double worst = 0, worst_cos = 1;
            for (size_t j = 0; j < d; j++) {
                double s = 0, q = 0, md = 0;
                for (int i = 0; i < n; i++) s += g[(size_t)i * d + j];
                double mean = s / n;
                for (int i = 0; i < n; i++) {
                    double e = g[(size_t)i * d + j] - mean;
                    q += e * e;
                    double df = fabs((double)out[(size_t)i * d + j] - g[(size_t)i * d + j]);
                    if (df > md) md = df;
                }
                double sd = sqrt(q / (n - 1));
                double r = md / (sd > 1e-30 ? sd : 1e-30);
                if (r > worst) worst = r;
            }
            for (int i = 0; i < n; i++) {
                double ab = 0, aa = 0, bb = 0;
                for (size_t j = 0; j < d; j++) {
                    double a = out[(size_t)i * d + j], b = g[(size_t)i * d + j];
                    ab += a * b; aa += a * a; bb += b * b;
                }
                double c = ab / sqrt(aa * bb);
                if (c < worst_cos) worst_cos = c;
            }
            if (getenv("TEST_VERBOSE"))
                fprintf(stderr, "  %s %dx%d %s: max|diff|/std %.3g, min cosine 1-%.3g\n", name, H,
                        W, m->feats[fi], worst, 1 - worst_cos);
            CHECK(worst <= 1e-3, "%s %dx%d %s: max|diff|/std = %.3g", name, H, W, m->feats[fi], worst);
            CHECK(worst_cos >= 0.99999, "%s %dx%d %s: cosine %.8f", name, H, W, m->feats[fi],
                  worst_cos);
            g += (size_t)n * d;
            free(out);
        }
        free(x);
        free(gold);
    }
    fdd_model_set_feature(mod, "cls", &err);
    fdd_model_close(mod);
}

static void test_golden_dino_s16(void) { check_golden("dino_s16"); }
static void test_golden_dino_b16(void) { check_golden("dino_b16"); }
static void test_golden_dinov2_s14_reg(void) { check_golden("dinov2_s14_reg"); }
static void test_golden_dinov2_g_small(void) { check_golden("dinov2_g_small"); }
static void test_golden_dinov2_tiny(void) { check_golden("dinov2_tiny"); }
static void test_golden_dino_tiny_head(void) { check_golden("dino_tiny_head"); }

/* FD between the C features of two golden sets vs the same FD from the
 * PyTorch features: within 1e-4 relative. */
static void test_fd_golden(void) {
    const model_cfg *m = find_model("dinov2_tiny");
    fdd_model *mod = open_model(m);
    REQUIRE(mod, "open");
    fdd_error err;
    int H1 = m->sizes[0].h, W1 = m->sizes[0].w, H2 = m->sizes[1].h, W2 = m->sizes[1].w, n = 4;
    size_t d = (size_t)m->D;
    float *g1 = load_golden(m->name, H1, W1, 2 * n * d), *g2 = load_golden(m->name, H2, W2, 2 * n * d);
    REQUIRE(g1 && g2, "goldens");
    float *x1 = make_inputs(m, H1, W1, n), *x2 = make_inputs(m, H2, W2, n);
    float *c1 = malloc(n * d * sizeof(float)), *c2 = malloc(n * d * sizeof(float));
    fdd_preprocess cfg1 = cfg_for(H1, W1), cfg2 = cfg_for(H2, W2);
    CHECK(fdd_model_forward(mod, ctx_default, &cfg1, x1, (size_t)n, c1, NULL, &err) == FDD_OK, "%s", err.msg);
    CHECK(fdd_model_forward(mod, ctx_default, &cfg2, x2, (size_t)n, c2, NULL, &err) == FDD_OK, "%s", err.msg);
    fdd_fd_result rc, rg;
    CHECK(fdd_frechet_features(ctx_default, d, c1, (size_t)n, c2, (size_t)n, &rc, &err) == FDD_OK,
          "%s", err.msg);
    CHECK(fdd_frechet_features(ctx_default, d, g1, (size_t)n, g2, (size_t)n, &rg, &err) == FDD_OK,
          "%s", err.msg);
    double rel = fabs(rc.fd - rg.fd) / fabs(rg.fd);
    if (getenv("TEST_VERBOSE")) fprintf(stderr, "  FD C %.9g torch %.9g rel %.3g\n", rc.fd, rg.fd, rel);
    CHECK(rel <= 1e-4, "FD %.9g vs %.9g (rel %.3g)", rc.fd, rg.fd, rel);
    free(g1); free(g2); free(x1); free(x2); free(c1); free(c2);
    fdd_model_close(mod);
}

/* Same bits for every ISA, 1/2/4 threads and batch sizes 1/3/8, and an
 * image's features independent of its batch neighbours. */
static void check_bits(const char *name, int H, int W, const char *feature) {
    const model_cfg *m = find_model(name);
    fdd_model *mod = open_model(m);
    REQUIRE(mod, "open %s", name);
    fdd_error err;
    REQUIRE(fdd_model_set_feature(mod, feature, &err) == FDD_OK, "%s", err.msg);
    const int n = 8;
    size_t d = fdd_model_dim(mod), in_sz = 3 * (size_t)H * (size_t)W;
    float *x = make_inputs(m, H, W, n + 2);
    float *ref = malloc(n * d * sizeof(float)), *out = malloc(n * d * sizeof(float));
    fdd_preprocess cfg = cfg_for(H, W);
    fdd_ctx *c0;
    REQUIRE(fdd_ctx_create(&c0, 1, FDD_ISA_SCALAR, &err) == FDD_OK, "%s", err.msg);
    CHECK(fdd_model_forward(mod, c0, &cfg, x, (size_t)n, ref, NULL, &err) == FDD_OK, "%s", err.msg);
    fdd_ctx_free(c0);
    static const int threads[] = {1, 2, 4}, batches[] = {1, 3, 8};
    for (int isa = 0; isa < FDD_ISA_COUNT; isa++) {
        if (!fdd_isa_available((fdd_isa)isa)) continue;
        for (int ti = 0; ti < 3; ti++) {
            fdd_ctx *c;
            REQUIRE(fdd_ctx_create(&c, threads[ti], (fdd_isa)isa, &err) == FDD_OK, "%s", err.msg);
            for (int bi = 0; bi < 3; bi++) {
                int bs = batches[bi];
                memset(out, 0xff, n * d * sizeof(float));
                for (int i = 0; i < n; i += bs) {
                    int k = n - i < bs ? n - i : bs;
                    CHECK(fdd_model_forward(mod, c, &cfg, x + (size_t)i * in_sz, (size_t)k,
                                            out + (size_t)i * d, NULL, &err) == FDD_OK, "%s", err.msg);
                }
                CHECK(!memcmp(out, ref, n * d * sizeof(float)), "%s %s: %s threads %d batch %d differ",
                      name, feature, fdd_isa_name((fdd_isa)isa), threads[ti], bs);
            }
            /* Image 0 with other neighbours (images 8, 9). */
            float *mix = malloc(3 * in_sz * sizeof(float)), o3[3 * 2048];
            memcpy(mix, x, in_sz * sizeof(float));
            memcpy(mix + in_sz, x + 8 * in_sz, 2 * in_sz * sizeof(float));
            CHECK(d <= 2048, "dim");
            if (d <= 2048) {
                CHECK(fdd_model_forward(mod, c, &cfg, mix, 3, o3, NULL, &err) == FDD_OK, "%s", err.msg);
                CHECK(!memcmp(o3, ref, d * sizeof(float)), "%s: neighbours changed image 0 (%s, %d threads)",
                      name, fdd_isa_name((fdd_isa)isa), threads[ti]);
            }
            free(mix);
            fdd_ctx_free(c);
        }
    }
    free(x); free(ref); free(out);
    fdd_model_close(mod);
}

static void test_bits_g_small(void) { check_bits("dinov2_g_small", 98, 140, "mean"); }
static void test_bits_dinov2_tiny(void) { check_bits("dinov2_tiny", 140, 182, "cls"); }
static void test_bits_dino_head(void) { check_bits("dino_tiny_head", 176, 208, "head-hidden"); }
static void test_bits_dino_head_cm(void) { check_bits("dino_tiny_head", 224, 224, "cls+mean"); }

/* A full-size model: every ISA and thread count on one image vs batch 4. */
static void test_bits_s16(void) {
    const model_cfg *m = find_model("dino_s16");
    fdd_model *mod = open_model(m);
    REQUIRE(mod, "open");
    fdd_error err;
    const int H = 160, W = 224;
    size_t d = fdd_model_dim(mod), in_sz = 3 * (size_t)H * W;
    float *x = make_inputs(m, H, W, 4), ref[4 * 384], out[384];
    fdd_preprocess cfg = cfg_for(H, W);
    CHECK(fdd_model_forward(mod, ctx_default, &cfg, x, 4, ref, NULL, &err) == FDD_OK, "%s", err.msg);
    for (int isa = FDD_ISA_AVX2; isa < FDD_ISA_COUNT; isa++) {
        if (!fdd_isa_available((fdd_isa)isa)) continue;
        for (int t = 1; t <= 2; t++) {
            fdd_ctx *c;
            REQUIRE(fdd_ctx_create(&c, t, (fdd_isa)isa, &err) == FDD_OK, "%s", err.msg);
            CHECK(fdd_model_forward(mod, c, &cfg, x + 2 * in_sz, 1, out, NULL, &err) == FDD_OK, "%s", err.msg);
            CHECK(!memcmp(out, ref + 2 * d, d * sizeof(float)), "S/16 %s %d threads differs",
                  fdd_isa_name((fdd_isa)isa), t);
            fdd_ctx_free(c);
        }
    }
    free(x);
    fdd_model_close(mod);
}

/* Bad files and arguments give one clear error, never a crash. */
static void test_errors(void) {
    const model_cfg *m = find_model("dinov2_tiny");
    char path[512];
    fdd_model *mod = NULL;
    fdd_error err;
    snprintf(path, sizeof path, "%s/bad.fdw", tmpdir_path);
    REQUIRE(!write_model(m, path, "blocks.1.ls2.gamma", NULL, NULL), "write");
    CHECK(fdd_model_open(path, &mod, &err) != FDD_OK, "missing tensor accepted");
    CHECK(strstr(err.msg, "blocks.1.ls2.gamma") != NULL, "message: %s", err.msg);
    REQUIRE(!write_model(m, path, NULL, "arch.num_heads", "3"), "write");
    CHECK(fdd_model_open(path, &mod, &err) != FDD_OK, "heads not dividing D accepted");
    REQUIRE(!write_model(m, path, NULL, "arch.family", "dinov3"), "write");
    CHECK(fdd_model_open(path, &mod, &err) == FDD_E_UNSUPPORTED, "unknown family: %s", err.msg);
    REQUIRE(!write_model(m, path, NULL, "arch.patch_size", "0"), "write");
    CHECK(fdd_model_open(path, &mod, &err) != FDD_OK, "patch 0 accepted");
    REQUIRE(!write_model(m, path, NULL, "arch.pos_grid", "36"), "write");
    CHECK(fdd_model_open(path, &mod, &err) != FDD_OK, "wrong pos grid accepted");
    REQUIRE(!write_model(m, path, NULL, "arch.depth", NULL), "write");
    CHECK(fdd_model_open(path, &mod, &err) != FDD_OK, "missing depth accepted");
    unlink(path);

    mod = open_model(m);
    REQUIRE(mod, "open");
    float x[3 * 15 * 15] = {0}, f[64];
    fdd_preprocess cfg = cfg_for(15, 15);
    CHECK(fdd_model_forward(mod, ctx_default, &cfg, x, 1, f, NULL, &err) == FDD_E_ARG,
          "DINOv2 input not a multiple of 14 accepted");
    cfg = cfg_for(7, 14);
    CHECK(fdd_model_forward(mod, ctx_default, &cfg, x, 1, f, NULL, &err) == FDD_E_ARG, "tiny input accepted");
    CHECK(fdd_model_set_feature(mod, "head-hidden", &err) == FDD_E_UNSUPPORTED, "head without head");
    CHECK(fdd_model_set_feature(mod, "pooler", &err) == FDD_E_ARG, "unknown feature");
    CHECK(fdd_model_dim(mod) == 64, "dim changed by a failed call");
    CHECK(fdd_model_set_feature(mod, "cls+mean", &err) == FDD_OK && fdd_model_dim(mod) == 128, "cls+mean dim");
    /* Preprocessing profiles. */
    fdd_preprocess p;
    CHECK(fdd_model_preprocess_config(mod, NULL, &p, &err) == FDD_OK, "%s", err.msg);
    CHECK(!strcmp(p.profile, "dgm-eval") && p.resize_w == 224 && p.resize_h == 224 && p.crop_w == 0 &&
          p.out_w == 224 && p.out_h == 224, "dgm-eval profile");
    CHECK(fdd_model_preprocess_config(mod, "dino", &p, &err) == FDD_OK, "%s", err.msg);
    CHECK(p.resize_w == 256 && p.resize_h == 0 && p.crop_w == 224 && p.crop_h == 224 &&
          p.mean[0] == 0.485f && p.std[2] == 0.225f, "dino profile");
    CHECK(fdd_model_preprocess_config(mod, "clean", &p, &err) == FDD_E_ARG, "unknown profile accepted");
    fdd_model_close(mod);
}

/* Allocation failures inside open and forward give errors, no leaks/crash. */
static void test_alloc_failures(void) {
    const model_cfg *m = find_model("dino_tiny_head");
    char path[512];
    snprintf(path, sizeof path, "%s/%s.fdw", tmpdir_path, m->name);
    fdd_model *mod = open_model(m);
    REQUIRE(mod, "open");
    fdd_model_close(mod);
    fdd_error err;
    int failures = 0;
    for (long k = 1; k < 200; k++) {
        fdd_alloc_fail_at(k);
        mod = NULL;
        fdd_status st = fdd_model_open(path, &mod, &err);
        fdd_alloc_fail_at(0);
        if (st != FDD_OK) { failures++; continue; }
        float x[3 * 32 * 32], f[256];
        memset(x, 0, sizeof x);
        fdd_preprocess cfg = cfg_for(32, 32);
        fdd_model_set_feature(mod, "head-hidden", &err);
        fdd_alloc_fail_at(k);
        st = fdd_model_forward(mod, ctx_default, &cfg, x, 1, f, NULL, &err);
        fdd_alloc_fail_at(0);
        if (st != FDD_OK) failures++;
        fdd_model_close(mod);
    }
    CHECK(failures > 0, "no allocation failure was injected");
}

int main(void) {
    snprintf(tmpdir_path, sizeof tmpdir_path, "/tmp/fdd_test_vit.XXXXXX");
    if (!mkdtemp(tmpdir_path)) {
        perror("mkdtemp");
        return 1;
    }
    fdd_error err;
    if (fdd_ctx_create(&ctx_default, 2, FDD_ISA_AUTO, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const char *only = getenv("TEST_VIT_ONLY");   /* a name substring, for development */
#define T(fn) if (!only || strstr(#fn, only)) RUN(fn)
    T(test_errors);
    T(test_alloc_failures);
    T(test_golden_dino_tiny_head);
    T(test_golden_dinov2_tiny);
    T(test_golden_dinov2_g_small);
    T(test_fd_golden);
    T(test_bits_g_small);
    T(test_bits_dinov2_tiny);
    T(test_bits_dino_head);
    T(test_bits_dino_head_cm);
    T(test_golden_dino_s16);
    T(test_golden_dinov2_s14_reg);
    T(test_golden_dino_b16);
    T(test_bits_s16);
#undef T
    fdd_ctx_free(ctx_default);
    for (int i = 0; i < NMODELS; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.fdw", tmpdir_path, MODELS[i].name);
        unlink(path);
    }
    rmdir(tmpdir_path);
    return test_summary("vit");
}

/* test_inception.c — the FID InceptionV3 (src/inception.c, src/layers.c).
 *
 * Golden: tests/reference/inception_ref.py builds the network in PyTorch
 * with weights and inputs from the SplitMix64 rule documented there; this
 * test builds the identical weights (checked by SHA-256), writes them as a
 * .fdw with the real tensor names, and compares the C features and logits
 * with tests/data/inception/{features,logits}.f32.
 * Bit identity: every ISA, threads 1/2/3, batch sizes 1/3/8, batch
 * neighbours (on small inputs, to stay fast). */
#include "test.h"
#include "fdw_write.h"
#include "fdd.h"
#include "internal.h"
#include "layers.h"

#include <math.h>
#include <unistd.h>

#define GOLDEN "tests/data/inception/"
enum { NIMG = 16, FEAT = 2048, NCLS = 1008, NCONV = 94 };

static const uint64_t WEIGHT_SEED = 0x1CE9710, IMAGE_SEED = 0x5EED0000;

/* ------------------------------------------------- weights (see the .py) */

typedef struct conv_def {
    char name[40];
    int cin, cout, kh, kw;
} conv_def;

static conv_def convs[NCONV];
static int nconv;

static void def(const char *prefix, const char *name, int cin, int cout, int kh, int kw) {
    conv_def *c = &convs[nconv++];
    snprintf(c->name, sizeof c->name, "%s%s%s", prefix, *prefix ? "." : "", name);
    c->cin = cin; c->cout = cout; c->kh = kh; c->kw = kw;
}

/* models.md Appendix 1, written out independently of src/inception.c. */
static void define_convs(void) {
    nconv = 0;
    def("", "Conv2d_1a_3x3", 3, 32, 3, 3);
    def("", "Conv2d_2a_3x3", 32, 32, 3, 3);
    def("", "Conv2d_2b_3x3", 32, 64, 3, 3);
    def("", "Conv2d_3b_1x1", 64, 80, 1, 1);
    def("", "Conv2d_4a_3x3", 80, 192, 3, 3);
    const char *A[] = {"Mixed_5b", "Mixed_5c", "Mixed_5d"};
    int ain[] = {192, 256, 288}, apf[] = {32, 64, 64};
    for (int i = 0; i < 3; i++) {
        def(A[i], "branch1x1", ain[i], 64, 1, 1);
        def(A[i], "branch5x5_1", ain[i], 48, 1, 1);
        def(A[i], "branch5x5_2", 48, 64, 5, 5);
        def(A[i], "branch3x3dbl_1", ain[i], 64, 1, 1);
        def(A[i], "branch3x3dbl_2", 64, 96, 3, 3);
        def(A[i], "branch3x3dbl_3", 96, 96, 3, 3);
        def(A[i], "branch_pool", ain[i], apf[i], 1, 1);
    }
    def("Mixed_6a", "branch3x3", 288, 384, 3, 3);
    def("Mixed_6a", "branch3x3dbl_1", 288, 64, 1, 1);
    def("Mixed_6a", "branch3x3dbl_2", 64, 96, 3, 3);
    def("Mixed_6a", "branch3x3dbl_3", 96, 96, 3, 3);
    const char *C[] = {"Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"};
    int c7s[] = {128, 160, 160, 192};
    for (int i = 0; i < 4; i++) {
        int c7 = c7s[i];
        def(C[i], "branch1x1", 768, 192, 1, 1);
        def(C[i], "branch7x7_1", 768, c7, 1, 1);
        def(C[i], "branch7x7_2", c7, c7, 1, 7);
        def(C[i], "branch7x7_3", c7, 192, 7, 1);
        def(C[i], "branch7x7dbl_1", 768, c7, 1, 1);
        def(C[i], "branch7x7dbl_2", c7, c7, 7, 1);
        def(C[i], "branch7x7dbl_3", c7, c7, 1, 7);
        def(C[i], "branch7x7dbl_4", c7, c7, 7, 1);
        def(C[i], "branch7x7dbl_5", c7, 192, 1, 7);
        def(C[i], "branch_pool", 768, 192, 1, 1);
    }
    def("Mixed_7a", "branch3x3_1", 768, 192, 1, 1);
    def("Mixed_7a", "branch3x3_2", 192, 320, 3, 3);
    def("Mixed_7a", "branch7x7x3_1", 768, 192, 1, 1);
    def("Mixed_7a", "branch7x7x3_2", 192, 192, 1, 7);
    def("Mixed_7a", "branch7x7x3_3", 192, 192, 7, 1);
    def("Mixed_7a", "branch7x7x3_4", 192, 192, 3, 3);
    const char *E[] = {"Mixed_7b", "Mixed_7c"};
    int ein[] = {1280, 2048};
    for (int i = 0; i < 2; i++) {
        def(E[i], "branch1x1", ein[i], 320, 1, 1);
        def(E[i], "branch3x3_1", ein[i], 384, 1, 1);
        def(E[i], "branch3x3_2a", 384, 384, 1, 3);
        def(E[i], "branch3x3_2b", 384, 384, 3, 1);
        def(E[i], "branch3x3dbl_1", ein[i], 448, 1, 1);
        def(E[i], "branch3x3dbl_2", 448, 384, 3, 3);
        def(E[i], "branch3x3dbl_3a", 384, 384, 1, 3);
        def(E[i], "branch3x3dbl_3b", 384, 384, 3, 1);
        def(E[i], "branch_pool", ein[i], 192, 1, 1);
    }
}

static float *read_f32(const char *path, size_t n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    float *v = malloc(n * sizeof *v);
    size_t got = v ? fread(v, sizeof *v, n, fp) : 0;
    fclose(fp);
    if (got != n) { free(v); return NULL; }
    return v;
}

static char model_path[256];
static int have_model;

/* Generates the weights, checks their digest against the golden and writes
 * the .fdw.  Returns 0 on success. */
static int make_model(const char *want_sha) {
    define_convs();
    if (nconv != NCONV) return -1;
    enum { NT = NCONV * 5 + 2 };
    static tw_tensor t[NT];
    static char names[NT][80];
    static const char *part[5] = {"conv.weight", "bn.weight", "bn.bias", "bn.running_mean",
                                  "bn.running_var"};
    /* Calibrated BatchNorm statistics (see the reference script). */
    float *stats = read_f32(GOLDEN "bn_stats.f32", 17216 * 2);
    if (!stats) {
        fprintf(stderr, "cannot read " GOLDEN "bn_stats.f32\n");
        return -1;
    }
    size_t si = 0;
    uint64_t s = WEIGHT_SEED;
    fdd_sha256 sh;
    fdd_sha256_init(&sh);
    size_t n = 0;
    for (int i = 0; i <= NCONV; i++) {
        for (int p = 0; p < (i < NCONV ? 5 : 2); p++, n++) {
            tw_tensor *x = &t[n];
            x->name = names[n];
            size_t numel;
            if (i == NCONV) {
                snprintf(names[n], sizeof names[n], "fc.%s", p ? "bias" : "weight");
                x->ndim = p ? 1 : 2;
                x->dims[0] = NCLS;
                x->dims[1] = FEAT;
                numel = p ? NCLS : (size_t)NCLS * FEAT;
            } else {
                const conv_def *c = &convs[i];
                snprintf(names[n], sizeof names[n], "%.40s.%s", c->name, part[p]);
                x->ndim = p ? 1 : 4;
                x->dims[0] = (uint64_t)c->cout;
                x->dims[1] = (uint64_t)c->cin;
                x->dims[2] = (uint64_t)c->kh;
                x->dims[3] = (uint64_t)c->kw;
                numel = p ? (size_t)c->cout : (size_t)(c->cout * c->cin * c->kh * c->kw);
            }
            float *v = malloc(numel * sizeof *v);
            if (!v) return -1;
            float scale = i == NCONV ? (float)sqrt(3.0 / FEAT)
                                     : (float)sqrt(6.0 / (convs[i].cin * convs[i].kh * convs[i].kw));
            for (size_t j = 0; j < numel; j++) {
                float u = test_rng_float(&s);
                if (i == NCONV)
                    v[j] = p ? 0.1f * u : u * scale;
                else if (p == 0)
                    v[j] = u * scale;
                else if (p == 1)
                    v[j] = 1.0f + 0.25f * u;
                else if (p == 2 || p == 3)
                    v[j] = 0.2f * u;
                else
                    v[j] = 0.75f + 0.5f * fabsf(u);
                if (i < NCONV && p >= 3) v[j] = stats[si++];
            }
            fdd_sha256_update(&sh, v, numel * sizeof *v);
            x->data = v;
        }
    }
    free(stats);
    uint8_t dg[32];
    char hex[65];
    fdd_sha256_final(&sh, dg);
    fdd_sha256_hex(dg, hex);
    int ok = !want_sha || !strcmp(hex, want_sha);
    if (!ok) fprintf(stderr, "weights sha256 %s, golden %s\n", hex, want_sha);
    const char *meta = "arch=inception-fid\narch.bn_eps=0.001\narch.num_classes=1008\n"
                       "feature.dim=2048\npreprocess.profile=pytorch-fid\n";
    snprintf(model_path, sizeof model_path, "/tmp/fdd_test_inception_%ld.fdw", (long)getpid());
    if (ok && tw_write_fdw(model_path, meta, t, n)) ok = 0;
    for (size_t i = 0; i < n; i++) free((void *)t[i].data);
    return ok ? 0 : -1;
}

/* Image i of the reference script's generator at h x w. */
static void make_input(int i, size_t h, size_t w, float *out) {
    uint64_t s = IMAGE_SEED + (uint64_t)i;
    size_t G = 4 + 6 * (size_t)(i % 5);
    float g[3 * 28 * 28];
    for (size_t j = 0; j < 3 * G * G; j++) g[j] = test_rng_float(&s);
    float amp = 0.05f * (float)(1 + i % 4);
    for (size_t c = 0; c < 3; c++)
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++) {
                float base = 0.8f * g[(c * G + y * G / h) * G + x * G / w];
                out[(c * h + y) * w + x] = base + amp * test_rng_float(&s);
            }
}

static char golden_wsha[80], golden_xsha[80];

static int read_golden_meta(void) {
    FILE *fp = fopen(GOLDEN "golden.txt", "r");
    if (!fp) return -1;
    char line[256];
    while (fgets(line, sizeof line, fp)) {
        sscanf(line, "weights_sha256 %64s", golden_wsha);
        sscanf(line, "inputs_sha256 %64s", golden_xsha);
    }
    fclose(fp);
    return golden_wsha[0] && golden_xsha[0] ? 0 : -1;
}

static fdd_status forward(fdd_model *m, int threads, fdd_isa isa, size_t h, size_t w,
                          const float *in, size_t n, size_t batch, float *feat, float *logits) {
    fdd_ctx *ctx;
    fdd_error e;
    fdd_status s = fdd_ctx_create(&ctx, threads, isa, &e);
    if (s) return s;
    fdd_preprocess cfg;
    s = fdd_model_preprocess_config(m, NULL, &cfg, &e);
    cfg.out_w = (int)w;
    cfg.out_h = (int)h;
    for (size_t i = 0; i < n && !s; i += batch) {
        size_t nb = n - i < batch ? n - i : batch;
        s = fdd_model_forward(m, ctx, &cfg, in + i * 3 * h * w, nb, feat + i * FEAT,
                              logits ? logits + i * NCLS : NULL, &e);
    }
    if (s) fprintf(stderr, "forward: %s\n", e.msg);
    fdd_ctx_free(ctx);
    return s;
}

/* -------------------------------------------------------------- golden */

static fdd_model *model;
static float *feat_c;      /* NIMG x FEAT from the golden run, reused below */

/* Max |c-g| / sd(g over images) for each column (sd = 0: |c-g| must be 0). */
static double compare(const char *what, const float *c, const float *g, size_t n, size_t d) {
    double worst = 0;
    size_t bad = 0, dead = 0;
    for (size_t j = 0; j < d; j++) {
        double mu = 0, ss = 0;
        for (size_t i = 0; i < n; i++) mu += g[i * d + j];
        mu /= (double)n;
        for (size_t i = 0; i < n; i++) ss += (g[i * d + j] - mu) * (g[i * d + j] - mu);
        double sd = sqrt(ss / (double)(n - 1));
        for (size_t i = 0; i < n; i++) {
            double diff = fabs((double)c[i * d + j] - g[i * d + j]);
            if (sd == 0) {
                if (diff != 0) bad++;
                continue;
            }
            if (diff / sd > worst) worst = diff / sd;
        }
        dead += sd == 0;
    }
    CHECK(bad == 0, "%s: %zu values differ in zero-variance columns", what, bad);
    double mincos = 1;
    for (size_t i = 0; i < n; i++) {
        double ab = 0, aa = 0, bb = 0;
        for (size_t j = 0; j < d; j++) {
            ab += (double)c[i * d + j] * g[i * d + j];
            aa += (double)c[i * d + j] * c[i * d + j];
            bb += (double)g[i * d + j] * g[i * d + j];
        }
        double cs = ab / sqrt(aa * bb);
        if (cs < mincos) mincos = cs;
    }
    printf("inception %s: max |C - torch| = %.3g x sd, min cosine 1 - %.3g (%zu zero-sd columns)\n",
           what, worst, 1 - mincos, dead);
    CHECK(mincos >= 0.99999, "%s: cosine %.9f", what, mincos);
    return worst;
}

static void test_golden(void) {
    if (read_golden_meta()) {
        CHECK(0, "cannot read " GOLDEN "golden.txt");
        return;
    }
    REQUIRE(make_model(golden_wsha) == 0, "weights differ from the reference script's");
    have_model = 1;
    fdd_error e;
    REQUIRE(fdd_model_open(model_path, &model, &e) == FDD_OK, "%s", e.msg);
    CHECK(fdd_model_dim(model) == FEAT && fdd_model_logits(model) == NCLS, "dims");
    CHECK(!strcmp(fdd_model_arch(model), "inception-fid"), "arch");

    size_t px = 3 * 299 * 299;
    float *x = malloc(NIMG * px * sizeof *x);
    float *lg = malloc(NIMG * NCLS * sizeof *lg);
    feat_c = malloc(NIMG * FEAT * sizeof *feat_c);
    REQUIRE(x && lg && feat_c, "oom");
    for (int i = 0; i < NIMG; i++) make_input(i, 299, 299, x + i * px);
    uint8_t dg[32];
    char hex[65];
    fdd_sha256 sh;
    fdd_sha256_init(&sh);
    fdd_sha256_update(&sh, x, NIMG * px * sizeof *x);
    fdd_sha256_final(&sh, dg);
    fdd_sha256_hex(dg, hex);
    CHECK(!strcmp(hex, golden_xsha), "inputs differ from the reference script's");

    CHECK(forward(model, 2, FDD_ISA_AUTO, 299, 299, x, NIMG, 8, feat_c, lg) == FDD_OK, "forward");
    float *gf = read_f32(GOLDEN "features.f32", NIMG * FEAT);
    float *gl = read_f32(GOLDEN "logits.f32", NIMG * NCLS);
    if (gf && gl) {
        double wf = compare("features", feat_c, gf, NIMG, FEAT);
        CHECK(wf <= 1e-3, "features: max |diff| = %.3g sd", wf);
        double wl = compare("logits", lg, gl, NIMG, NCLS);
        CHECK(wl <= 1e-3, "logits: max |diff| = %.3g sd", wl);
        /* FD between the two halves, from the C and from the torch features. */
        fdd_fd_result rc, rg;
        size_t h = NIMG / 2;
        CHECK(fdd_frechet_features(NULL, FEAT, feat_c, h, feat_c + h * FEAT, h, &rc, &e) == FDD_OK,
              "%s", e.msg);
        CHECK(fdd_frechet_features(NULL, FEAT, gf, h, gf + h * FEAT, h, &rg, &e) == FDD_OK, "%s", e.msg);
        double rel = fabs(rc.fd - rg.fd) / fabs(rg.fd);
        printf("inception FD(first 8, last 8): C %.9g, torch %.9g, relative difference %.3g\n", rc.fd,
               rg.fd, rel);
        CHECK(rel <= 1e-4, "FD relative difference %.3g", rel);
    } else {
        CHECK(0, "cannot read the golden features/logits");
    }
    /* One full-size image on every other ISA, bit for bit. */
    for (int isa = 0; isa < FDD_ISA_COUNT; isa++) {
        if (!fdd_isa_available((fdd_isa)isa)) continue;
        float f[FEAT];
        CHECK(forward(model, 1, (fdd_isa)isa, 299, 299, x + 3 * px, 1, 1, f, NULL) == FDD_OK, "fwd");
        CHECK(!memcmp(f, feat_c + 3 * FEAT, sizeof f), "isa %s differs at 299x299", fdd_isa_name((fdd_isa)isa));
    }
    /* INCEPTION_DUMP=path saves the C features (float32) for diagnosis. */
    const char *dump = getenv("INCEPTION_DUMP");
    FILE *dfp = dump ? fopen(dump, "wb") : NULL;
    if (dfp) {
        fwrite(feat_c, sizeof *feat_c, NIMG * FEAT, dfp);
        fclose(dfp);
    }
    free(gf);
    free(gl);
    free(x);
    free(lg);
}

/* -------------------------------------------------------- bit identity */

static void test_bit_identity(void) {
    REQUIRE(model, "no model");
    /* Non-square and small (the network is fully convolutional): fast. */
    enum { N = 8 };
    const size_t H = 91, W = 83, px = 3 * H * W;
    float *x = malloc(N * px * sizeof *x), *ref = malloc(N * FEAT * sizeof *ref);
    float *f = malloc(N * FEAT * sizeof *f), *rl = malloc(N * NCLS * sizeof *rl),
          *l = malloc(N * NCLS * sizeof *l);
    REQUIRE(x && ref && f && rl && l, "oom");
    for (int i = 0; i < N; i++) make_input(i + 3, H, W, x + i * px);
    fdd_isa best = fdd_isa_best();
    REQUIRE(forward(model, 2, best, H, W, x, N, N, ref, rl) == FDD_OK, "reference run");
    for (int isa = 0; isa < FDD_ISA_COUNT; isa++) {
        if (!fdd_isa_available((fdd_isa)isa)) continue;
        memset(f, 0, N * FEAT * sizeof *f);
        CHECK(forward(model, isa == FDD_ISA_SCALAR ? 2 : 1, (fdd_isa)isa, H, W, x, N, N, f, l) == FDD_OK, "fwd");
        CHECK(!memcmp(f, ref, N * FEAT * sizeof *f), "features differ on %s", fdd_isa_name((fdd_isa)isa));
        CHECK(!memcmp(l, rl, N * NCLS * sizeof *l), "logits differ on %s", fdd_isa_name((fdd_isa)isa));
    }
    static const int threads[] = {1, 2, 3};
    static const size_t batch[] = {1, 3, 8};
    for (int t = 0; t < 3; t++)
        for (int b = 0; b < 3; b++) {
            memset(f, 0, N * FEAT * sizeof *f);
            CHECK(forward(model, threads[t], best, H, W, x, N, batch[b], f, l) == FDD_OK, "fwd");
            CHECK(!memcmp(f, ref, N * FEAT * sizeof *f), "features differ: %d threads, batch %zu",
                  threads[t], batch[b]);
            CHECK(!memcmp(l, rl, N * NCLS * sizeof *l), "logits differ: %d threads, batch %zu",
                  threads[t], batch[b]);
        }
    /* Image 0 with other neighbours (a batch of 3: images 0, 6, 2). */
    float *y = malloc(3 * px * sizeof *y);
    REQUIRE(y, "oom");
    memcpy(y, x, px * sizeof *y);
    memcpy(y + px, x + 6 * px, px * sizeof *y);
    memcpy(y + 2 * px, x + 2 * px, px * sizeof *y);
    CHECK(forward(model, 2, best, H, W, y, 3, 3, f, NULL) == FDD_OK, "fwd");
    CHECK(!memcmp(f, ref, FEAT * sizeof *f) && !memcmp(f + FEAT, ref + 6 * FEAT, FEAT * sizeof *f) &&
              !memcmp(f + 2 * FEAT, ref + 2 * FEAT, FEAT * sizeof *f),
          "an image's features change with its batch neighbours");
    free(y);
    free(x);
    free(ref);
    free(f);
    free(rl);
    free(l);
}

/* ------------------------------------------------------------- errors */

static void test_errors(void) {
    REQUIRE(model, "no model");
    fdd_ctx *ctx;
    fdd_error e;
    REQUIRE(fdd_ctx_create(&ctx, 1, FDD_ISA_AUTO, &e) == FDD_OK, "%s", e.msg);
    fdd_preprocess cfg;
    CHECK(fdd_model_preprocess_config(model, "nope", &cfg, &e) == FDD_E_ARG, "bad profile accepted");
    static const char *profiles[] = {"pytorch-fid", "tf1", "clean"};
    for (int i = 0; i < 3; i++) {
        CHECK(fdd_model_preprocess_config(model, profiles[i], &cfg, &e) == FDD_OK, "%s", e.msg);
        CHECK(!strcmp(cfg.profile, profiles[i]) && cfg.out_w == 299 && cfg.out_h == 299, "cfg %s",
              profiles[i]);
    }
    CHECK(fdd_model_preprocess_config(model, NULL, &cfg, &e) == FDD_OK &&
              !strcmp(cfg.profile, "pytorch-fid"), "default profile");
    float *x = calloc(3 * 80 * 80, sizeof *x), f[FEAT];
    REQUIRE(x, "oom");
    cfg.out_w = cfg.out_h = 74;   /* too small for the stride-2 stages */
    CHECK(fdd_model_forward(model, ctx, &cfg, x, 1, f, NULL, &e) == FDD_E_ARG, "74x74 accepted");
    cfg.out_w = cfg.out_h = 80;
    /* Allocation failures give a clean error. */
    for (long k = 1; k <= 3; k++) {
        fdd_alloc_fail_at(k);
        fdd_status s = fdd_model_forward(model, ctx, &cfg, x, 1, f, NULL, &e);
        fdd_alloc_fail_at(0);
        CHECK(s == FDD_OK || s == FDD_E_NOMEM, "allocation failure %ld: status %d", k, (int)s);
    }
    CHECK(fdd_model_forward(model, ctx, &cfg, x, 1, f, NULL, &e) == FDD_OK, "%s", e.msg);
    free(x);
    fdd_ctx_free(ctx);

    /* A file missing most tensors, and one with a mis-shaped fc. */
    char path[280];
    snprintf(path, sizeof path, "%s.bad", model_path);
    float w[27] = {0};
    tw_tensor t = {"Conv2d_1a_3x3.conv.weight", 4, {32, 3, 3, 3}, w};
    float big[32 * 27] = {0};
    t.data = big;
    REQUIRE(tw_write_fdw(path, "arch=inception-fid\n", &t, 1) == 0, "write");
    fdd_model *m = NULL;
    CHECK(fdd_model_open(path, &m, &e) != FDD_OK && strstr(e.msg, path), "incomplete file opened: %s", e.msg);
    fdd_model_close(m);
    REQUIRE(tw_write_fdw(path, "arch=inception-fid\narch.num_classes=0\n", &t, 1) == 0, "write");
    m = NULL;
    CHECK(fdd_model_open(path, &m, &e) == FDD_E_FORMAT, "num_classes=0 accepted");
    fdd_model_close(m);
    remove(path);
}

/* The pools against their plain definition (window rows, then columns),
 * bit for bit: the vectorised interior must not change a result, NaN
 * included. */
static float ref_pool(const float *src, size_t h, size_t w, size_t oy, size_t ox, size_t k, size_t s, size_t p,
                      bool avg) {
    size_t y0 = oy * s, y1 = y0 + k, x0 = ox * s, x1 = x0 + k;
    y0 = y0 < p ? 0 : y0 - p; y1 = y1 - p > h ? h : y1 - p;
    x0 = x0 < p ? 0 : x0 - p; x1 = x1 - p > w ? w : x1 - p;
    float v = avg ? 0.0f : src[y0 * w + x0];
    for (size_t y = y0; y < y1; y++)
        for (size_t x = x0; x < x1; x++) {
            float t = src[y * w + x];
            if (avg) v += t;
            else if (t > v || t != t) v = t;
        }
    return avg ? v / (float)((y1 - y0) * (x1 - x0)) : v;
}

static void test_pools(void) {
    static const size_t shapes[][5] = {{9, 11, 3, 1, 1}, {9, 11, 3, 2, 0}, {35, 35, 3, 1, 1}, {17, 17, 3, 2, 0},
                                       {8, 8, 3, 1, 1}, {147, 147, 3, 2, 0}, {5, 7, 5, 2, 2}, {3, 3, 3, 1, 1}};
    fdd_ctx *ctx;
    fdd_error e;
    REQUIRE(fdd_ctx_create(&ctx, 2, FDD_ISA_AUTO, &e) == FDD_OK, "%s", e.msg);
    uint64_t seed = 42;
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        size_t h = shapes[t][0], w = shapes[t][1], k = shapes[t][2], st = shapes[t][3], p = shapes[t][4];
        size_t c = 3, n = 2, oh = fdd_conv_out(h, k, st, p), ow = fdd_conv_out(w, k, st, p);
        float *x = malloc(c * n * h * w * sizeof(float)), *y = malloc(c * n * oh * ow * sizeof(float));
        for (size_t i = 0; i < c * n * h * w; i++) x[i] = test_rng_float(&seed);
        x[5] = NAN;
        x[c * n * h * w - 2] = -0.0f;
        fdd_fmap in = fdd_fmap_cm(x, c, n, h, w), out = fdd_fmap_cm(y, c, n, oh, ow);
        for (int avg = 0; avg < 2; avg++) {
            if (avg) fdd_avgpool(ctx, &in, &out, k, st, p);
            else fdd_maxpool(ctx, &in, &out, k, st, p);
            size_t bad = 0;
            for (size_t m = 0; m < c * n; m++)
                for (size_t oy = 0; oy < oh; oy++)
                    for (size_t ox = 0; ox < ow; ox++) {
                        float r = ref_pool(x + m * h * w, h, w, oy, ox, k, st, p, avg);
                        bad += memcmp(&r, &y[m * oh * ow + oy * ow + ox], sizeof r) != 0;
                    }
            CHECK(bad == 0, "%s pool %zux%zu k%zu s%zu p%zu: %zu outputs differ", avg ? "avg" : "max", h, w, k, st,
                  p, bad);
        }
        free(x);
        free(y);
    }
    fdd_ctx_free(ctx);
}

int main(void) {
    RUN(test_pools);
    RUN(test_golden);
    if (model) {
        RUN(test_bit_identity);
        RUN(test_errors);
    }
    fdd_model_close(model);
    free(feat_c);
    if (have_model) remove(model_path);
    return test_summary("inception");
}

/* bench_inception.c — images/s of the FID InceptionV3 forward pass (299x299,
 * features + logits) at batch 1 and batch 8, against PyTorch on the same
 * machine: bench/torch_inception.py (same architecture, 2 threads).
 *   build/bench/bench_inception [threads=2] [images=16]
 * Weights are random (timing does not depend on them); written to /tmp. */
#include "fdd.h"
#include "../tests/fdw_write.h"

#include <math.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng = 42;
static float urand(void) {
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((int32_t)(z >> 40) - (1 << 23)) / (float)(1 << 23);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The 94 convolutions: name, in, out, kh, kw (models.md Appendix 1). */
static tw_tensor T[94 * 5 + 2];
static char names[94 * 5 + 2][80];
static size_t nt;

static void conv(const char *pre, const char *name, int cin, int cout, int kh, int kw) {
    static const char *part[5] = {"conv.weight", "bn.weight", "bn.bias", "bn.running_mean",
                                  "bn.running_var"};
    for (int p = 0; p < 5; p++, nt++) {
        snprintf(names[nt], sizeof names[nt], "%s%s%s.%s", pre, *pre ? "." : "", name, part[p]);
        tw_tensor *t = &T[nt];
        t->name = names[nt];
        size_t n = p ? (size_t)cout : (size_t)(cout * cin * kh * kw);
        t->ndim = p ? 1 : 4;
        t->dims[0] = (uint64_t)cout; t->dims[1] = (uint64_t)cin;
        t->dims[2] = (uint64_t)kh; t->dims[3] = (uint64_t)kw;
        float *v = malloc(n * sizeof *v), sc = sqrtf(6.0f / (float)(cin * kh * kw));
        for (size_t i = 0; i < n; i++) {
            float u = urand();
            v[i] = p == 0 ? u * sc : p == 1 ? 1.0f + 0.25f * u : p == 4 ? 0.75f + 0.5f * fabsf(u) : 0.2f * u;
        }
        t->data = v;
    }
}

static void build(void) {
    conv("", "Conv2d_1a_3x3", 3, 32, 3, 3); conv("", "Conv2d_2a_3x3", 32, 32, 3, 3);
    conv("", "Conv2d_2b_3x3", 32, 64, 3, 3); conv("", "Conv2d_3b_1x1", 64, 80, 1, 1);
    conv("", "Conv2d_4a_3x3", 80, 192, 3, 3);
    const char *A[] = {"Mixed_5b", "Mixed_5c", "Mixed_5d"};
    int ain[] = {192, 256, 288}, apf[] = {32, 64, 64};
    for (int i = 0; i < 3; i++) {
        conv(A[i], "branch1x1", ain[i], 64, 1, 1); conv(A[i], "branch5x5_1", ain[i], 48, 1, 1);
        conv(A[i], "branch5x5_2", 48, 64, 5, 5); conv(A[i], "branch3x3dbl_1", ain[i], 64, 1, 1);
        conv(A[i], "branch3x3dbl_2", 64, 96, 3, 3); conv(A[i], "branch3x3dbl_3", 96, 96, 3, 3);
        conv(A[i], "branch_pool", ain[i], apf[i], 1, 1);
    }
    conv("Mixed_6a", "branch3x3", 288, 384, 3, 3); conv("Mixed_6a", "branch3x3dbl_1", 288, 64, 1, 1);
    conv("Mixed_6a", "branch3x3dbl_2", 64, 96, 3, 3); conv("Mixed_6a", "branch3x3dbl_3", 96, 96, 3, 3);
    const char *C[] = {"Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"};
    int c7s[] = {128, 160, 160, 192};
    for (int i = 0; i < 4; i++) {
        int c7 = c7s[i];
        conv(C[i], "branch1x1", 768, 192, 1, 1); conv(C[i], "branch7x7_1", 768, c7, 1, 1);
        conv(C[i], "branch7x7_2", c7, c7, 1, 7); conv(C[i], "branch7x7_3", c7, 192, 7, 1);
        conv(C[i], "branch7x7dbl_1", 768, c7, 1, 1); conv(C[i], "branch7x7dbl_2", c7, c7, 7, 1);
        conv(C[i], "branch7x7dbl_3", c7, c7, 1, 7); conv(C[i], "branch7x7dbl_4", c7, c7, 7, 1);
        conv(C[i], "branch7x7dbl_5", c7, 192, 1, 7); conv(C[i], "branch_pool", 768, 192, 1, 1);
    }
    conv("Mixed_7a", "branch3x3_1", 768, 192, 1, 1); conv("Mixed_7a", "branch3x3_2", 192, 320, 3, 3);
    conv("Mixed_7a", "branch7x7x3_1", 768, 192, 1, 1); conv("Mixed_7a", "branch7x7x3_2", 192, 192, 1, 7);
    conv("Mixed_7a", "branch7x7x3_3", 192, 192, 7, 1); conv("Mixed_7a", "branch7x7x3_4", 192, 192, 3, 3);
    const char *E[] = {"Mixed_7b", "Mixed_7c"};
    int ein[] = {1280, 2048};
    for (int i = 0; i < 2; i++) {
        conv(E[i], "branch1x1", ein[i], 320, 1, 1); conv(E[i], "branch3x3_1", ein[i], 384, 1, 1);
        conv(E[i], "branch3x3_2a", 384, 384, 1, 3); conv(E[i], "branch3x3_2b", 384, 384, 3, 1);
        conv(E[i], "branch3x3dbl_1", ein[i], 448, 1, 1); conv(E[i], "branch3x3dbl_2", 448, 384, 3, 3);
        conv(E[i], "branch3x3dbl_3a", 384, 384, 1, 3); conv(E[i], "branch3x3dbl_3b", 384, 384, 3, 1);
        conv(E[i], "branch_pool", ein[i], 192, 1, 1);
    }
    float *w = malloc(1008 * 2048 * sizeof *w), *b = malloc(1008 * sizeof *b);
    for (size_t i = 0; i < 1008 * 2048; i++) w[i] = urand() * 0.038f;
    for (size_t i = 0; i < 1008; i++) b[i] = 0.1f * urand();
    T[nt++] = (tw_tensor){"fc.weight", 2, {1008, 2048}, w};
    T[nt++] = (tw_tensor){"fc.bias", 1, {1008}, b};
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2, nimg = argc > 2 ? atoi(argv[2]) : 16;
    if (nimg < 8) nimg = 8;
    char path[128];
    snprintf(path, sizeof path, "/tmp/fdd_bench_inception_%ld.fdw", (long)getpid());
    build();
    if (tw_write_fdw(path, "arch=inception-fid\narch.bn_eps=0.001\narch.num_classes=1008\n", T, nt)) {
        fprintf(stderr, "%s: cannot write\n", path);
        return 1;
    }
    for (size_t i = 0; i < nt; i++) free((void *)T[i].data);
    fdd_error e;
    fdd_model *m;
    fdd_ctx *ctx;
    if (fdd_model_open(path, &m, &e) || fdd_ctx_create(&ctx, threads, FDD_ISA_AUTO, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    remove(path);
    fdd_preprocess cfg;
    fdd_model_preprocess_config(m, NULL, &cfg, &e);
    size_t px = 3 * 299 * 299;
    float *x = malloc((size_t)nimg * px * sizeof *x), *f = malloc((size_t)nimg * 2048 * sizeof *f),
          *l = malloc((size_t)nimg * 1008 * sizeof *l);
    for (size_t i = 0; i < (size_t)nimg * px; i++) x[i] = urand();
    printf("fdd inception-fid 299x299, %d threads, isa %s\n", fdd_ctx_threads(ctx),
           fdd_isa_name(fdd_ctx_isa(ctx)));
    static const int batches[] = {1, 8};
    for (int bi = 0; bi < 2; bi++) {
        int b = batches[bi];
        if (fdd_model_forward(m, ctx, &cfg, x, (size_t)b, f, l, &e)) {   /* warm-up */
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        double t0 = now();
        for (int i = 0; i + b <= nimg; i += b)
            if (fdd_model_forward(m, ctx, &cfg, x + (size_t)i * px, (size_t)b, f, l, &e)) {
                fprintf(stderr, "%s\n", e.msg);
                return 1;
            }
        double dt = now() - t0;
        int done = nimg / b * b;
        printf("batch %d: %.2f images/s (%.1f ms/image, %.1f GFLOP/s)\n", b, done / dt,
               1e3 * dt / done, done * 5.71 / dt);
    }
    free(x); free(f); free(l);
    fdd_ctx_free(ctx);
    fdd_model_close(m);
    return 0;
}

/* bench_vit.c — images/s of the DINO ViT-S/16 and ViT-B/16 forward pass at
 * 224x224, batch 1 and batch 32, next to Debian's PyTorch on the same
 * machine and thread count (bench/torch_vit.py, matrix products on
 * OpenBLAS).  Weights are random (speed does not depend on them).
 *
 *   build/bench/bench_vit [threads]      (default 2; FDD_BENCH_NO_TORCH=1
 *                                         skips the PyTorch side) */
#include "../tests/fdw_write.h"
#include "fdd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 12345;
static float frand(void) {
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((int32_t)(z >> 40) - (1 << 23)) / (float)(1 << 23);
}

/* A DINO ViT-/16 .fdw with random weights (1/sqrt(fan_in) scaled). */
static int write_vit(const char *path, int D, int depth, int heads) {
    enum { MAXT = 16 + 16 * 12 };
    tw_tensor t[MAXT];
    char names[MAXT][64];
    float *bufs[MAXT];
    size_t n = 0;
    uint64_t H = 4 * (uint64_t)D, d = (uint64_t)D;
#define ADD(nm, nd, a, b, c, e)                                                       \
    do {                                                                             \
        snprintf(names[n], 64, "%s", nm);                                            \
        uint64_t dd[4] = {a, b, c, e}, num = 1;                                      \
        t[n].name = names[n]; t[n].ndim = nd;                                        \
        for (int k = 0; k < nd; k++) t[n].dims[k] = dd[k], num *= dd[k];             \
        float *v = malloc(num * sizeof(float)), s = nd > 1 ? 1.0f / sqrtf((float)(num / dd[0])) : 0.1f; \
        for (uint64_t j = 0; j < num; j++) v[j] = frand() * s + (nd == 1 && strstr(nm, "norm") && strstr(nm, "weight") ? 1.0f : 0.0f); \
        bufs[n] = v; t[n].data = v; n++;                                             \
    } while (0)
    ADD("cls_token", 3, 1, 1, d, 0);
    ADD("pos_embed", 3, 1, 197, d, 0);
    ADD("patch_embed.proj.weight", 4, d, 3, 16, 16);
    ADD("patch_embed.proj.bias", 1, d, 0, 0, 0);
    char nm[64];
    for (int i = 0; i < depth; i++) {
#define B(s, nd, a, b) do { snprintf(nm, sizeof nm, "blocks.%d." s, i); ADD(nm, nd, a, b, 0, 0); } while (0)
        B("norm1.weight", 1, d, 0); B("norm1.bias", 1, d, 0);
        B("attn.qkv.weight", 2, 3 * d, d); B("attn.qkv.bias", 1, 3 * d, 0);
        B("attn.proj.weight", 2, d, d); B("attn.proj.bias", 1, d, 0);
        B("norm2.weight", 1, d, 0); B("norm2.bias", 1, d, 0);
        B("mlp.fc1.weight", 2, H, d); B("mlp.fc1.bias", 1, H, 0);
        B("mlp.fc2.weight", 2, d, H); B("mlp.fc2.bias", 1, d, 0);
#undef B
    }
    ADD("norm.weight", 1, d, 0, 0, 0);
    ADD("norm.bias", 1, d, 0, 0, 0);
#undef ADD
    char meta[1024];
    snprintf(meta, sizeof meta,
             "arch=vit\narch.depth=%d\narch.embed_dim=%d\narch.family=dino\narch.layer_scale=0\n"
             "arch.ln_eps=1e-06\narch.mlp=gelu\narch.mlp_hidden=%d\narch.num_heads=%d\n"
             "arch.num_register_tokens=0\narch.patch_size=16\narch.pos_grid=14\n"
             "arch.pos_interp=offset\nconverter=fdd-convert 1\nfeature.dim=%d\n"
             "preprocess.profile=dino\nsource.file=bench.pth\nsource.format=torch-zip\n"
             "source.sha256=0000000000000000000000000000000000000000000000000000000000000000\n",
             depth, D, 4 * D, heads, D);
    int r = tw_write_fdw(path, meta, t, n);
    for (size_t i = 0; i < n; i++) free(bufs[i]);
    return r;
}

/* Seconds per image at batch size bs (best of reps runs). */
static double time_forward(fdd_model *m, fdd_ctx *ctx, int bs, int reps) {
    fdd_preprocess cfg;
    fdd_error err;
    fdd_model_preprocess_config(m, "dino", &cfg, &err);
    size_t in = 3 * 224 * 224;
    float *x = malloc((size_t)bs * in * sizeof(float)), *f = malloc((size_t)bs * 768 * sizeof(float));
    for (size_t i = 0; i < (size_t)bs * in; i++) x[i] = frand();
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (fdd_model_forward(m, ctx, &cfg, x, (size_t)bs, f, NULL, &err)) {
            fprintf(stderr, "forward: %s\n", err.msg);
            exit(1);
        }
        double t = (now() - t0) / bs;
        if (t < best) best = t;
    }
    free(x);
    free(f);
    return best;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    fdd_ctx *ctx;
    fdd_error err;
    if (fdd_ctx_create(&ctx, threads, FDD_ISA_AUTO, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    static const struct { const char *name; int D, depth, heads; } M[] = {
        {"vits16", 384, 12, 6}, {"vitb16", 768, 12, 12}};
    double ours[2][2];
    printf("fdd ViT forward, 224x224, %d threads, ISA %s\n", threads, fdd_isa_name(fdd_ctx_isa(ctx)));
    for (int i = 0; i < 2; i++) {
        char path[256];
        snprintf(path, sizeof path, "/tmp/fdd_bench_%s_%d.fdw", M[i].name, (int)getpid());
        if (write_vit(path, M[i].D, M[i].depth, M[i].heads)) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        fdd_model *m;
        if (fdd_model_open(path, &m, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        unlink(path);
        time_forward(m, ctx, 1, 1);   /* warm-up */
        ours[i][0] = time_forward(m, ctx, 1, 5);
        ours[i][1] = time_forward(m, ctx, 32, 1);
        fdd_model_close(m);
    }
    fdd_ctx_free(ctx);
    double theirs[2][2] = {{0, 0}, {0, 0}};
    int have_torch = 0;
    const char *skip = getenv("FDD_BENCH_NO_TORCH");
    if (!(skip && *skip && strcmp(skip, "0"))) {
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "
                 "/usr/bin/python3 bench/torch_vit.py %d 2>&1", threads);
        FILE *p = popen(cmd, "r");
        char line[512];
        while (p && fgets(line, sizeof line, p)) {
            char name[32];
            double s1, s32;
            if (sscanf(line, "TORCH %31s %lf %lf", name, &s1, &s32) == 3) {
                int i = !strcmp(name, "vits16") ? 0 : !strcmp(name, "vitb16") ? 1 : -1;
                if (i >= 0) theirs[i][0] = s1, theirs[i][1] = s32, have_torch = 1;
            } else {
                fputs("  torch: ", stdout);
                fputs(line, stdout);
            }
        }
        if (p) pclose(p);
    }
    printf("%-8s %5s %14s %14s %8s\n", "model", "batch", "fdd img/s", "torch img/s", "speedup");
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 2; b++) {
            double a = 1.0 / ours[i][b], t = theirs[i][b] > 0 ? 1.0 / theirs[i][b] : 0;
            if (have_torch && t > 0)
                printf("%-8s %5d %14.2f %14.2f %7.2fx\n", M[i].name, b ? 32 : 1, a, t, a / t);
            else
                printf("%-8s %5d %14.2f %14s %8s\n", M[i].name, b ? 32 : 1, a, "n/a", "");
        }
    return 0;
}

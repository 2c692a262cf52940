/* bench_gemm.c — GFLOP/s of each ISA path and thread count on the GEMM shapes
 * InceptionV3 (299x299) and ViT-S/16 (224x224) run, as a fraction of the FMA
 * peak measured by this program in the same run (register-only FMA chains).
 * The machine is shared and noisy: every figure is a median of repetitions.
 *
 *   build/bench/bench_gemm [--quick] [--isa NAME] [--threads N] */
#include "gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct { fdd_peak_fn fn; uint64_t iters; double flops[64]; } peak_job;

static void peak_task(void *arg, size_t task, int thread) {
    (void)thread;
    peak_job *p = arg;
    float sink;
    p->flops[task] = 2.0 * (double)p->fn(p->iters, &sink);
    if (sink == 12345.0f) puts("");   /* keep the loop alive */
}

/* GFLOP/s of nt threads running the FMA loop at once. */
static double measure_peak(fdd_ctx *ctx, fdd_peak_fn fn, int reps) {
    double v[16];
    int nt = fdd_ctx_threads(ctx);
    peak_job p = {fn, 20000000, {0}};
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        fdd_parallel(ctx, peak_task, &p, (size_t)nt);
        double dt = now() - t0, f = 0;
        for (int i = 0; i < nt; i++) f += p.flops[i];
        v[r] = f / dt * 1e-9;
    }
    return median(v, reps);
}

typedef struct { const char *name; size_t m, n, k; int tb; } shape;

static const shape shapes[] = {
    /* InceptionV3 convolutions as GEMMs: M = Cout, K = Cin*kh*kw, N = H*W (batch 1) */
    {"incep Conv2d_2b_3x3   64x21609x288 ", 64, 21609, 288, 0},
    {"incep Conv2d_4a_3x3  192x5041x720  ", 192, 5041, 720, 0},
    {"incep Mixed_5b 5x5    64x1225x1200 ", 64, 1225, 1200, 0},
    {"incep Mixed_6b 1x7   192x289x1120  ", 192, 289, 1120, 0},
    {"incep Mixed_6e x8    192x2312x1344 ", 192, 2312, 1344, 0},
    {"incep Mixed_7c 3x3   384x512x4032  ", 384, 512, 4032, 0},
    /* ViT-S/16 at 224: 197 tokens, width 384, MLP 1536; x8 images */
    {"vit-s qkv  1576x1152x384  (x·Wᵀ)  ", 1576, 1152, 384, 1},
    {"vit-s fc1  1576x1536x384  (x·Wᵀ)  ", 1576, 1536, 384, 1},
    {"vit-s fc2  1576x384x1536  (x·Wᵀ)  ", 1576, 384, 1536, 1},
    {"vit-s attn q·kᵀ 197x197x64        ", 197, 197, 64, 1},
};

int main(int argc, char **argv) {
    int reps = 7, only_threads = 0;
    fdd_isa only_isa = FDD_ISA_AUTO;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) reps = 3;
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) only_isa = fdd_isa_parse(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) only_threads = atoi(argv[++i]);
    }
    printf("GEMM benchmark: median of %d runs; %% = fraction of the FMA peak measured now\n", reps);
    for (int isa = FDD_ISA_COUNT - 1; isa >= 0; isa--) {
        if (!fdd_isa_available((fdd_isa)isa)) continue;
        if (only_isa != FDD_ISA_AUTO && only_isa != isa) continue;
        if (isa == FDD_ISA_SCALAR && only_isa != FDD_ISA_SCALAR) continue;  /* fallback only */
        for (int nt = 1; nt <= 2; nt++) {
            if (only_threads && nt != only_threads) continue;
            fdd_ctx *ctx;
            fdd_error err;
            if (fdd_ctx_create(&ctx, nt, (fdd_isa)isa, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
            const fdd_gemm_kernel *kern = fdd_gemm_kernel_for((fdd_isa)isa);
            double peak = measure_peak(ctx, kern->peak, reps);
            printf("\n%s, %d thread%s: FMA peak %.1f GFLOP/s (kernel %dx%d)\n", fdd_isa_name((fdd_isa)isa),
                   nt, nt > 1 ? "s" : "", peak, kern->mr, kern->nr);
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                const shape *sh = &shapes[s];
                size_t lda = sh->k, ldb = sh->tb ? sh->k : sh->n;
                float *A = fdd_aligned_alloc(sh->m * sh->k * 4), *B = fdd_aligned_alloc(sh->k * sh->n * 4);
                float *C = fdd_aligned_alloc(sh->m * sh->n * 4);
                for (size_t i = 0; i < sh->m * sh->k; i++) A[i] = (float)(i % 7) * 0.1f;
                for (size_t i = 0; i < sh->k * sh->n; i++) B[i] = (float)(i % 5) * 0.1f;
                double flop = 2.0 * (double)sh->m * (double)sh->n * (double)sh->k, v[16];
                fdd_gemm(ctx, 0, sh->tb, sh->m, sh->n, sh->k, A, lda, B, ldb, C, sh->n); /* warm */
                for (int r = 0; r < reps; r++) {
                    double t0 = now();
                    fdd_gemm(ctx, 0, sh->tb, sh->m, sh->n, sh->k, A, lda, B, ldb, C, sh->n);
                    v[r] = flop / (now() - t0) * 1e-9;
                }
                double g = median(v, reps);
                printf("  %s %7.1f GFLOP/s  %5.1f%%\n", sh->name, g, 100.0 * g / peak);
                fdd_aligned_free(A); fdd_aligned_free(B); fdd_aligned_free(C);
            }
            fdd_ctx_free(ctx);
        }
    }
    return 0;
}

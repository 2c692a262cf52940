/* test_resize.c — the reference resizes (src/resize.c) against goldens made
 * by tests/reference/make_resize_golden.py with Pillow 9.4, torch 1.13 and
 * torchvision 0.14: SHA-256 of the outputs for the bit-exact ones, sampled
 * raw values (max ulp) for torch bilinear.  Also bad arguments and
 * allocation failures.  `test_resize --bench` times the common resizes. */
#include "image.h"
#include "test.h"

#include <time.h>

/* RESIZE_GOLDEN_DIR overrides it, e.g. for the script's --random cases. */
#define GOLDEN_DIR "tests/data/resize"

static const char *golden_dir(void) {
    const char *d = getenv("RESIZE_GOLDEN_DIR");
    return d && *d ? d : GOLDEN_DIR;
}

/* ------------------------------------------------ sources, as the script */

static void gen_rgb(const char *kind, int w, int h, uint64_t seed, uint8_t *out) {
    uint64_t s = seed;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = out + ((size_t)y * w + x) * 3;
            if (strcmp(kind, "noise") == 0) {
                uint64_t v = test_rng_next(&s);
                p[0] = (uint8_t)(v >> 56);
                p[1] = (uint8_t)(v >> 48);
                p[2] = (uint8_t)(v >> 40);
            } else {
                p[0] = ((x / 3 + y / 5) & 1) ? 255 : 0;
                p[1] = (uint8_t)((x * 255) / (w > 1 ? w - 1 : 1));
                p[2] = (uint8_t)(((uint64_t)x * x + 7u * (uint64_t)y) * seed);
            }
        }
}

static void gen_plane(const char *kind, int w, int h, uint64_t seed, float *out) {
    size_t n = (size_t)w * h;
    if (strcmp(kind, "rndf") == 0) {
        uint64_t s = seed;
        for (size_t i = 0; i < n; i++) out[i] = test_rng_float(&s) * 300.0f;
        return;
    }
    uint8_t *rgb = malloc(n * 3);
    gen_rgb(strcmp(kind, "unit") == 0 ? "noise" : kind, w, h, seed, rgb);
    for (size_t i = 0; i < n; i++)
        out[i] = strcmp(kind, "unit") == 0 ? (float)rgb[3 * i] / 255.0f : (float)rgb[3 * i];
    free(rgb);
}

static void hex_of(const void *data, size_t len, char hex[65]) {
    fdd_sha256 s;
    uint8_t d[32];
    fdd_sha256_init(&s);
    fdd_sha256_update(&s, data, len);
    fdd_sha256_final(&s, d);
    fdd_sha256_hex(d, hex);
}

/* Digest of float32 values as little-endian bytes, whatever the host. */
static void hex_of_f32(const float *v, size_t n, char hex[65]) {
    uint8_t *b = malloc(n * 4 + 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        fdd_put_le32(b + 4 * i, u);
    }
    hex_of(b, n * 4, hex);
    free(b);
}

static int filter_of(const char *name) {
    static const char *names[FDD_PIL_FILTER_COUNT] = {
        [FDD_PIL_BOX] = "box", [FDD_PIL_BILINEAR] = "bilinear", [FDD_PIL_HAMMING] = "hamming",
        [FDD_PIL_BICUBIC] = "bicubic", [FDD_PIL_LANCZOS] = "lanczos"};
    for (int i = 0; i < FDD_PIL_FILTER_COUNT; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

/* Distance in units in the last place between two finite floats. */
static int64_t ulp_diff(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    int64_t la = ia < 0 ? (int64_t)INT32_MIN - ia : ia, lb = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return la > lb ? la - lb : lb - la;
}

/* ------------------------------------------------------------ golden cases */

static int n_cases[8];
static int64_t torch_max_ulp = -1;
static long torch_values, torch_exact;

static void run_case(const char *line) {
    char op[16], filt[16], kind[16], ref[80];
    int sw, sh, ow, oh, stride = 0;
    unsigned long long seed;
    int n = sscanf(line, "%15s %15s %15s %d %d %llu %d %d %79s %d", op, filt, kind, &sw, &sh,
                   &seed, &ow, &oh, ref, &stride);
    REQUIRE(n >= 9, "bad golden line: %s", line);
    fdd_error err = {0};
    char hex[65] = "";
    size_t npx = (size_t)sw * sh, nout = (size_t)ow * oh;
    fdd_image src = {sw, sh, malloc(npx * 3)}, dst = {0};
    float *plane = malloc(npx * sizeof(float)), *out = malloc(nout * 3 * sizeof(float));
    fdd_status s = FDD_OK;
    if (strcmp(op, "u8") == 0 || strcmp(op, "tv") == 0 || strcmp(op, "crop") == 0 ||
        strcmp(op, "clean") == 0)
        gen_rgb(kind, sw, sh, seed, src.rgb);
    else
        gen_plane(kind, sw, sh, seed, plane);

    if (strcmp(op, "u8") == 0) {
        n_cases[0]++;
        s = fdd_resize_pillow_u8(&src, ow, oh, (fdd_pil_filter)filter_of(filt), &dst, &err);
        if (!s) hex_of(dst.rgb, nout * 3, hex);
    } else if (strcmp(op, "f32") == 0) {
        n_cases[1]++;
        s = fdd_resize_pillow_f32(plane, sw, sh, out, ow, oh, (fdd_pil_filter)filter_of(filt),
                                  &err);
        if (!s) hex_of_f32(out, nout, hex);
    } else if (strcmp(op, "clean") == 0) {
        n_cases[2]++;
        s = fdd_resize_cleanfid(&src, ow, oh, out, &err);
        if (!s) hex_of_f32(out, nout * 3, hex);
    } else if (strcmp(op, "tv") == 0) { /* ow = Resize size, oh = crop */
        n_cases[3]++;
        fdd_image mid = {0};
        s = fdd_resize_shorter_side(&src, ow, &mid, &err);
        if (!s) s = fdd_center_crop(&mid, oh, oh, &dst, &err);
        if (!s) hex_of(dst.rgb, (size_t)oh * oh * 3, hex);
        fdd_image_free(&mid);
    } else if (strcmp(op, "crop") == 0) {
        n_cases[4]++;
        s = fdd_center_crop(&src, ow, oh, &dst, &err);
        if (!s) hex_of(dst.rgb, nout * 3, hex);
    } else if (strcmp(op, "tf1") == 0) {
        n_cases[5]++;
        s = fdd_resize_tf1_bilinear(plane, sw, sh, out, ow, oh, &err);
        if (!s) hex_of_f32(out, nout, hex);
    } else if (strcmp(op, "torch") == 0) {
        n_cases[6]++;
        s = fdd_resize_torch_bilinear(plane, sw, sh, out, ow, oh, &err);
        char path[512];
        snprintf(path, sizeof path, "%s/%s", golden_dir(), ref);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL, "cannot open %s", path);
        size_t want = stride > 0 ? (nout + (size_t)stride - 1) / (size_t)stride : 0;
        float *gold = calloc(want + 1, sizeof(float));
        size_t got = f ? fread(gold, 4, want + 1, f) : 0;
        if (f) fclose(f);
        CHECK(got == want, "%s: %zu values, expected %zu", path, got, want);
        int64_t worst = 0;
        for (size_t i = 0; !s && i < got && i < want; i++) {
            uint8_t b[4];
            memcpy(b, &gold[i], 4); /* file is little-endian */
            uint32_t u = fdd_le32(b);
            float g;
            memcpy(&g, &u, 4);
            int64_t d = ulp_diff(out[i * (size_t)stride], g);
            if (d > worst) worst = d;
            torch_values++;
            torch_exact += d == 0;
        }
        free(gold);
        if (worst > torch_max_ulp) torch_max_ulp = worst;
        CHECK(worst <= 2, "%s: %d ulp from torch", line, (int)worst);
        strcpy(hex, ref); /* nothing more to compare */
    } else {
        CHECK(0, "unknown op in golden line: %s", line);
        strcpy(hex, ref);
    }
    CHECK(s == FDD_OK, "%s: %s", line, err.msg);
    if (!s) CHECK(strcmp(hex, ref) == 0, "%s: got %s", line, hex);
    fdd_image_free(&dst);
    free(src.rgb);
    free(plane);
    free(out);
}

static void test_golden(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/golden.txt", golden_dir());
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL, "cannot open %s (run from the repo root)", path);
    char line[512];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\n")] = 0;
        run_case(line);
        count++;
    }
    fclose(f);
    CHECK(count >= 70 || getenv("RESIZE_GOLDEN_DIR"), "only %d golden cases", count);
    fprintf(stderr,
            "  resize goldens: %d pillow-u8, %d pillow-F, %d clean-fid, %d torchvision, %d crop, "
            "%d tf1, %d torch (max %lld ulp, %ld/%ld values exact)\n",
            n_cases[0], n_cases[1], n_cases[2], n_cases[3], n_cases[4], n_cases[5], n_cases[6],
            (long long)torch_max_ulp, torch_exact, torch_values);
}

/* ------------------------------------------------------------- properties */

static void test_shorter_side_dims(void) {
    int w = 0, h = 0;
    CHECK(fdd_shorter_side_dims(500, 375, 256, &w, &h) == 0 && w == 341 && h == 256, "%dx%d", w, h);
    CHECK(fdd_shorter_side_dims(375, 500, 256, &w, &h) == 0 && w == 256 && h == 341, "%dx%d", w, h);
    CHECK(fdd_shorter_side_dims(300, 300, 256, &w, &h) == 0 && w == 256 && h == 256, "%dx%d", w, h);
    /* int(256 * 3 / 1000) = 0: torchvision would fail later; we refuse. */
    CHECK(fdd_shorter_side_dims(1000, 3, 1, &w, &h) == 0 && w == 333 && h == 1, "%dx%d", w, h);
    CHECK(fdd_shorter_side_dims(1, 2000000000, 256, &w, &h) == -1, "overflow accepted");
    CHECK(fdd_shorter_side_dims(0, 5, 256, &w, &h) == -1, "zero accepted");
    CHECK(fdd_shorter_side_dims(5, 5, 0, &w, &h) == -1, "size 0 accepted");
}

/* A flat image stays flat under every filter (weights sum to ~1). */
static void test_flat(void) {
    fdd_image src = {37, 23, malloc(37 * 23 * 3)}, dst;
    memset(src.rgb, 200, 37 * 23 * 3);
    fdd_error err;
    for (int f = 0; f < FDD_PIL_FILTER_COUNT; f++) {
        REQUIRE(fdd_resize_pillow_u8(&src, 301, 7, (fdd_pil_filter)f, &dst, &err) == FDD_OK, "%s",
                err.msg);
        int bad = 0;
        for (int i = 0; i < 301 * 7 * 3; i++) bad += abs(dst.rgb[i] - 200) > 1;
        CHECK(bad == 0, "filter %d: %d values off", f, bad);
        fdd_image_free(&dst);
    }
    free(src.rgb);
}

static void test_bad_args(void) {
    uint8_t px[12] = {0};
    fdd_image src = {2, 2, px}, dst = {0};
    float plane[4] = {0}, out[16];
    fdd_error err;
    const int bad[][2] = {{0, 5}, {5, 0}, {-1, 5}, {5, -7}, {-2147483647 - 1, 1},
                          {2147483647, 2147483647}, {100000, 100000}, {2147483647, 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int w = bad[i][0], h = bad[i][1];
        memset(&err, 0, sizeof err);
        dst.rgb = (uint8_t *)1;
        CHECK(fdd_resize_pillow_u8(&src, w, h, FDD_PIL_BICUBIC, &dst, &err) == FDD_E_ARG,
              "u8 %dx%d accepted", w, h);
        CHECK(dst.rgb == NULL && dst.width == 0, "dst not cleared");
        CHECK(strncmp(err.msg, "resize: ", 8) == 0 && strchr(err.msg, '\n') == NULL, "msg '%s'",
              err.msg);
        CHECK(fdd_resize_pillow_f32(plane, 2, 2, out, w, h, FDD_PIL_BICUBIC, &err) == FDD_E_ARG,
              "f32 %dx%d accepted", w, h);
        CHECK(fdd_resize_pillow_f32(plane, w, h, out, 2, 2, FDD_PIL_BICUBIC, &err) == FDD_E_ARG,
              "f32 source %dx%d accepted", w, h);
        CHECK(fdd_resize_torch_bilinear(plane, 2, 2, out, w, h, &err) == FDD_E_ARG, "torch %dx%d",
              w, h);
        CHECK(fdd_resize_tf1_bilinear(plane, w, h, out, 2, 2, &err) == FDD_E_ARG, "tf1 %dx%d", w, h);
        CHECK(fdd_resize_cleanfid(&src, w, h, out, &err) == FDD_E_ARG, "clean %dx%d", w, h);
        CHECK(fdd_center_crop(&src, w, h, &dst, &err) != FDD_OK, "crop %dx%d", w, h);
        fdd_image bigsrc = {w, h, px};
        CHECK(fdd_resize_pillow_u8(&bigsrc, 3, 3, FDD_PIL_BICUBIC, &dst, &err) == FDD_E_ARG,
              "source %dx%d accepted", w, h);
        CHECK(fdd_resize_shorter_side(&bigsrc, 224, &dst, &err) == FDD_E_ARG,
              "shorter side of %dx%d accepted", w, h);
    }
    CHECK(fdd_resize_shorter_side(&src, 0, &dst, &err) == FDD_E_ARG, "size 0");
    CHECK(fdd_resize_shorter_side(&src, -3, &dst, &err) == FDD_E_ARG, "size -3");
    CHECK(fdd_resize_shorter_side(&src, 2000000000, &dst, &err) == FDD_E_ARG, "size 2e9");
    CHECK(fdd_resize_pillow_u8(&src, 3, 3, (fdd_pil_filter)99, &dst, &err) == FDD_E_ARG, "filter");
    CHECK(fdd_resize_pillow_u8(&src, 3, 3, (fdd_pil_filter)-1, &dst, &err) == FDD_E_ARG, "filter");
    CHECK(fdd_resize_pillow_u8(NULL, 3, 3, FDD_PIL_BICUBIC, &dst, &err) == FDD_E_ARG, "NULL src");
    CHECK(fdd_resize_pillow_u8(&src, 3, 3, FDD_PIL_BICUBIC, NULL, &err) == FDD_E_ARG, "NULL dst");
    fdd_image nopix = {2, 2, NULL};
    CHECK(fdd_resize_pillow_u8(&nopix, 3, 3, FDD_PIL_BICUBIC, &dst, &err) == FDD_E_ARG, "no rgb");
    CHECK(fdd_resize_torch_bilinear(NULL, 2, 2, out, 2, 2, &err) == FDD_E_ARG, "NULL plane");
    CHECK(fdd_resize_pillow_f32(plane, 2, 2, NULL, 2, 2, FDD_PIL_BICUBIC, NULL) == FDD_E_ARG,
          "NULL dst, NULL err");
    /* A large but allowed output from a tiny source is fine. */
    CHECK(fdd_resize_pillow_u8(&src, 1, 200000, FDD_PIL_LANCZOS, &dst, &err) == FDD_OK, "%s",
          err.msg);
    fdd_image_free(&dst);
}

/* Every allocation failing in turn gives FDD_E_NOMEM and no leak (ASan). */
static void test_alloc_failures(void) {
    fdd_image src = {50, 40, malloc(50 * 40 * 3)}, dst;
    gen_rgb("noise", 50, 40, 5, src.rgb);
    float plane[50 * 40], out[31 * 17 * 3];
    gen_plane("rndf", 50, 40, 6, plane);
    fdd_error err;
    for (int which = 0; which < 6; which++) {
        int failures = 0;
        for (long n = 1; n < 20; n++) {
            fdd_alloc_fail_at(n);
            fdd_status s;
            switch (which) {
            case 0: s = fdd_resize_pillow_u8(&src, 31, 17, FDD_PIL_BICUBIC, &dst, &err); break;
            case 1: s = fdd_resize_pillow_f32(plane, 50, 40, out, 31, 17, FDD_PIL_LANCZOS, &err); break;
            case 2: s = fdd_resize_cleanfid(&src, 31, 17, out, &err); break;
            case 3: s = fdd_resize_torch_bilinear(plane, 50, 40, out, 31, 17, &err); break;
            case 4: s = fdd_resize_shorter_side(&src, 17, &dst, &err); break;
            default: s = fdd_center_crop(&src, 31, 17, &dst, &err); break;
            }
            fdd_alloc_fail_at(0);
            if (which == 0 || which == 4 || which == 5) {
                if (s == FDD_OK) fdd_image_free(&dst);
                else CHECK(dst.rgb == NULL, "dst not cleared on failure");
            }
            if (s == FDD_OK) break;
            CHECK(s == FDD_E_NOMEM, "case %d, allocation %ld: status %d (%s)", which, n, (int)s,
                  err.msg);
            failures++;
        }
        CHECK(failures >= 1, "case %d: no allocation failed", which);
    }
    free(src.rgb);
}

/* --------------------------------------------------------------- timing */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench(void) {
    enum { RUNS = 21 };
    fdd_image big = {1024, 1024, malloc(1024 * 1024 * 3)}, mid = {500, 375, malloc(500 * 375 * 3)};
    gen_rgb("noise", 1024, 1024, 1, big.rgb);
    gen_rgb("noise", 500, 375, 2, mid.rgb);
    float *plane = malloc(1024 * 1024 * sizeof(float)), *out = malloc(299 * 299 * 3 * sizeof(float));
    gen_plane("unit", 1024, 1024, 3, plane);
    fdd_error err;
    const char *names[] = {"pillow u8 BICUBIC 1024x1024 -> 299x299 (RGB)",
                           "pillow F BICUBIC 1024x1024 -> 299x299 (3 planes)",
                           "clean-fid clean 1024x1024 RGB -> 299x299x3 float",
                           "Resize(256)+CenterCrop(224) 500x375 (RGB)",
                           "torch bilinear 1024x1024 -> 299x299 (1 plane)",
                           "tf1 bilinear 1024x1024 -> 299x299 (1 plane)"};
    for (int which = 0; which < 6; which++) {
        double t[RUNS];
        for (int r = 0; r < RUNS; r++) {
            fdd_image d = {0}, m = {0};
            double t0 = now();
            switch (which) {
            case 0: fdd_resize_pillow_u8(&big, 299, 299, FDD_PIL_BICUBIC, &d, &err); break;
            case 1:
                for (int c = 0; c < 3; c++)
                    fdd_resize_pillow_f32(plane, 1024, 1024, out + c * 299 * 299, 299, 299,
                                          FDD_PIL_BICUBIC, &err);
                break;
            case 2: fdd_resize_cleanfid(&big, 299, 299, out, &err); break;
            case 3:
                fdd_resize_shorter_side(&mid, 256, &m, &err);
                fdd_center_crop(&m, 224, 224, &d, &err);
                break;
            case 4: fdd_resize_torch_bilinear(plane, 1024, 1024, out, 299, 299, &err); break;
            default: fdd_resize_tf1_bilinear(plane, 1024, 1024, out, 299, 299, &err); break;
            }
            t[r] = now() - t0;
            fdd_image_free(&d);
            fdd_image_free(&m);
        }
        qsort(t, RUNS, sizeof t[0], cmp_d);
        printf("%-52s median %8.3f ms  (min %.3f)\n", names[which], t[RUNS / 2] * 1e3, t[0] * 1e3);
    }
    free(big.rgb);
    free(mid.rgb);
    free(plane);
    free(out);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
        bench();
        return 0;
    }
    RUN(test_golden);
    RUN(test_shorter_side_dims);
    RUN(test_flat);
    RUN(test_bad_args);
    RUN(test_alloc_failures);
    return test_summary("resize");
}

/* test_jpeg.c — JPEG decoder: bit-exactness against Pillow digests
 * (tests/data/jpeg/digests.txt, made by tests/reference/make_jpeg_corpus.py),
 * refused files, Pillow's truncation verdicts, byte flips, allocation
 * failures, and the conformance files of ../shared/data when present.
 *
 * `test_jpeg --digest FILE...` prints "<file> <w> <h> <sha256>" or
 * "<file> ERROR <message>" per file (used by tests/reference/check_jpeg_shared.py). */
#include "test.h"

#include "image.h"
#include "test_image.h"

#include <dirent.h>
#include <stdio.h>

#define CORPUS "tests/data/jpeg/"

/* Decode with the invariants of every outcome checked. */
static fdd_status decode_checked(const uint8_t *d, size_t n, fdd_image *im, fdd_error *err) {
    memset(err, 0, sizeof *err);
    fdd_status s = fdd_image_decode(d, n, "t.jpg", im, err);
    const char *bad = test_decode_contract(s, im, err, "t.jpg");
    CHECK(!bad, "%s", bad);
    return s;
}

static void test_corpus(void) {
    FILE *f = fopen(CORPUS "digests.txt", "r");
    REQUIRE(f, "cannot open " CORPUS "digests.txt");
    char name[256], want[80];
    int w, h, n = 0;
    while (fscanf(f, "%255s %d %d %79s", name, &w, &h, want) == 4) {
        char path[512];
        snprintf(path, sizeof path, CORPUS "%s", name);
        size_t len;
        uint8_t *data = test_read_all(path, &len);
        CHECK(data, "cannot read %s", path);
        if (!data) continue;
        fdd_image im;
        fdd_error err = {0};
        fdd_status s = fdd_image_decode(data, len, name, &im, &err);
        CHECK(s == FDD_OK, "%s", err.msg);
        if (s == FDD_OK) {
            char hex[65];
            test_image_sha(&im, hex);
            CHECK(im.width == w && im.height == h, "%s: %dx%d, want %dx%d", name, im.width,
                  im.height, w, h);
            CHECK(strcmp(hex, want) == 0, "%s: pixels differ from Pillow", name);
            fdd_image_free(&im);
        }
        free(data);
        n++;
    }
    fclose(f);
    CHECK(n >= 100, "only %d corpus files", n);
}

static void test_refused(void) {
    FILE *f = fopen(CORPUS "refused.txt", "r");
    REQUIRE(f, "cannot open " CORPUS "refused.txt");
    char name[256], why[64];
    int n = 0;
    while (fscanf(f, "%255s %63s", name, why) == 2) {
        char path[512];
        snprintf(path, sizeof path, CORPUS "%s", name);
        size_t len;
        uint8_t *data = test_read_all(path, &len);
        CHECK(data, "cannot read %s", path);
        if (!data) continue;
        fdd_image im;
        fdd_error err = {0};
        fdd_status s = decode_checked(data, len, &im, &err);
        if (strcmp(why, "unsupported") == 0)
            CHECK(s == FDD_E_UNSUPPORTED && strstr(err.msg, "unsupported"), "%s: %d %s", name, s, err.msg);
        else
            CHECK(s == FDD_E_FORMAT && strstr(err.msg, why), "%s: %d %s", name, s, err.msg);
        if (!s) fdd_image_free(&im);
        free(data);
        n++;
    }
    fclose(f);
    CHECK(n >= 5, "only %d refused files", n);
}

/* truncation.txt: "<file> <len> <ok-ranges>" where ok-ranges lists the
 * prefix lengths a..b (inclusive, comma-separated) that Pillow decodes;
 * every other prefix is an error in Pillow.  Same verdict required. */
static void test_truncation_verdicts(void) {
    FILE *f = fopen(CORPUS "truncation.txt", "r");
    REQUIRE(f, "cannot open " CORPUS "truncation.txt");
    char name[256], ranges[4096];
    size_t flen;
    int files = 0;
    while (fscanf(f, "%255s %zu %4095s", name, &flen, ranges) == 3) {
        char path[512];
        snprintf(path, sizeof path, CORPUS "%s", name);
        size_t len;
        uint8_t *data = test_read_all(path, &len);
        CHECK(data && len == flen, "cannot read %s", path);
        if (!data) continue;
        int bad = 0;
        for (size_t L = 0; L <= len; L++) {
            bool ok = false;
            const char *r = ranges;
            while (*r && strcmp(r, "-") != 0) {
                size_t a, b;
                int used;
                if (sscanf(r, "%zu..%zu%n", &a, &b, &used) != 2) break;
                if (L >= a && L <= b) ok = true;
                r += used;
                if (*r == ',') r++;
            }
            fdd_image im;
            fdd_error err = {0};
            fdd_status s = decode_checked(data, L, &im, &err);
            if ((s == FDD_OK) != ok && bad++ < 3)
                CHECK(0, "%s prefix %zu: fdd %s, Pillow %s (%s)", name, L, s ? "error" : "ok",
                      ok ? "ok" : "error", err.msg);
            if (!s) fdd_image_free(&im);
        }
        CHECK(bad == 0, "%s: %d prefixes with a different verdict", name, bad);
        free(data);
        files++;
    }
    fclose(f);
    CHECK(files >= 3, "only %d truncation files", files);
}

/* Random byte flips and overwrites: an error or an image, never a crash
 * (the sanitizer build is the real check). */
static void test_byte_flips(void) {
    static const char *files[] = {"pil_100x75_420.jpg", "cj_prog_sa.jpg", "cj_restart1b_420.jpg",
                                  "pil_61x37_cmyk.jpg", "cj_17x9_mixed.jpg", "cj_gray_prog.jpg",
                                  "cj_noninterleaved.jpg", "pil_160x120_opt.jpg"};
    uint64_t rng = 12345;
    int iters = getenv("FDD_JPEG_FLIPS") ? atoi(getenv("FDD_JPEG_FLIPS")) : 600;
    for (size_t fi = 0; fi < sizeof files / sizeof *files; fi++) {
        char path[512];
        snprintf(path, sizeof path, CORPUS "%s", files[fi]);
        size_t len;
        uint8_t *orig = test_read_all(path, &len);
        CHECK(orig, "cannot read %s", path);
        if (!orig) continue;
        uint8_t *buf = malloc(len);
        int okc = 0;
        for (int it = 0; it < iters; it++) {
            memcpy(buf, orig, len);
            int nflip = 1 + (int)(test_rng_next(&rng) % 4);
            for (int k = 0; k < nflip; k++) {
                size_t pos = (size_t)(test_rng_next(&rng) % len);
                uint64_t r = test_rng_next(&rng);
                /* Mostly the headers (first 700 bytes), sometimes anywhere. */
                if ((r & 3) != 0 && len > 700) pos %= 700;
                buf[pos] = (r >> 8) & 1 ? (uint8_t)(r >> 16) : (uint8_t)(buf[pos] ^ (1u << ((r >> 16) & 7)));
            }
            size_t n = len;
            if (test_rng_next(&rng) % 5 == 0) n = (size_t)(test_rng_next(&rng) % len);
            fdd_image im;
            fdd_error err = {0};
            if (decode_checked(buf, n, &im, &err) == FDD_OK) {
                okc++;
                fdd_image_free(&im);
            }
        }
        free(buf);
        free(orig);
        if (getenv("TEST_VERBOSE")) fprintf(stderr, "  %s: %d/%d decoded\n", files[fi], okc, iters);
    }
}

static void test_alloc_failures(void) {
    static const char *files[] = {"pil_33x31_420.jpg", "cj_prog_sa.jpg", "pil_61x37_cmyk.jpg"};
    for (size_t fi = 0; fi < sizeof files / sizeof *files; fi++) {
        char path[512];
        snprintf(path, sizeof path, CORPUS "%s", files[fi]);
        size_t len;
        uint8_t *data = test_read_all(path, &len);
        CHECK(data, "cannot read %s", path);
        if (!data) continue;
        char why[600];
        int n = test_decode_alloc_failures(data, len, "t.jpg", 100, why, sizeof why);
        CHECK(n >= 2, "%s: %s", files[fi], why);
        free(data);
    }
}

/* Hand-made headers: bomb dimensions, bad sampling, bad tables. */
static void test_crafted(void) {
    size_t len;
    uint8_t *d = test_read_all(CORPUS "pil_7x13_444.jpg", &len);
    REQUIRE(d, "cannot read corpus file");
    size_t sof = 2;
    while (sof + 4 < len && d[sof + 1] != 0xC0) sof += 2 + (size_t)(d[sof + 2] << 8 | d[sof + 3]);
    REQUIRE(sof + 20 < len, "no SOF0");
    fdd_image im;
    fdd_error err = {0};
    /* 65000 x 65000 exceeds the bomb limit: refused before allocating. */
    uint8_t *c = malloc(len);
    memcpy(c, d, len);
    c[sof + 5] = c[sof + 7] = 0xFD;
    c[sof + 6] = c[sof + 8] = 0xE8;
    CHECK(decode_checked(c, len, &im, &err) == FDD_E_NOMEM && strstr(err.msg, "bomb"), "%s", err.msg);
    /* Zero height. */
    memcpy(c, d, len);
    c[sof + 5] = c[sof + 6] = 0;
    CHECK(decode_checked(c, len, &im, &err) == FDD_E_FORMAT, "%s", err.msg);
    /* Sampling factor 5 and 0, and a fractional ratio (3 vs 2). */
    memcpy(c, d, len);
    c[sof + 11] = 0x51;
    CHECK(decode_checked(c, len, &im, &err) == FDD_E_FORMAT, "%s", err.msg);
    c[sof + 11] = 0x01;
    CHECK(decode_checked(c, len, &im, &err) == FDD_E_FORMAT, "%s", err.msg);
    c[sof + 11] = 0x31;
    c[sof + 14] = 0x21;
    CHECK(decode_checked(c, len, &im, &err) == FDD_E_UNSUPPORTED, "%s", err.msg);
    /* 2 components: Pillow refuses. */
    memcpy(c, d, len);
    c[sof + 9] = 2;
    CHECK(decode_checked(c, len, &im, &err) != FDD_OK, "%s", err.msg);
    /* A Huffman table with too many codes of length 1. */
    memcpy(c, d, len);
    size_t dht = 2;
    while (dht + 4 < len && d[dht + 1] != 0xC4) dht += 2 + (size_t)(d[dht + 2] << 8 | d[dht + 3]);
    REQUIRE(dht + 8 < len, "no DHT");
    c[dht + 6] = 3;
    CHECK(decode_checked(c, len, &im, &err) == FDD_E_FORMAT, "%s", err.msg);
    /* Not even a header. */
    CHECK(decode_checked(d, 3, &im, &err) == FDD_E_FORMAT, "%s", err.msg);
    free(c);
    free(d);
}

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* libjpeg-turbo's own test images: arithmetic (testimgari) and 12-bit
 * (monkey12) ones must be refused with "unsupported", the others decode. */
static void test_conformance_refusals(void) {
    const char *dir = "../shared/data/conformance/libjpeg-turbo/testimages/";
    DIR *dp = opendir(dir);
    if (!dp) {
        printf("skip test_conformance_refusals: %s absent\n", dir);
        return;
    }
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dp))) {
        if (!has_suffix(e->d_name, ".jpg")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s%s", dir, e->d_name);
        size_t len;
        uint8_t *data = test_read_all(path, &len);
        if (!data) continue;
        fdd_image im;
        fdd_error err = {0};
        fdd_status s = decode_checked(data, len, &im, &err);
        bool must_refuse = strstr(e->d_name, "ari") || strstr(e->d_name, "12");
        if (must_refuse)
            CHECK(s == FDD_E_UNSUPPORTED, "%s: %d %s", e->d_name, s, err.msg);
        else
            CHECK(s == FDD_OK, "%s: %s", e->d_name, err.msg);
        if (!s) fdd_image_free(&im);
        free(data);
        n += must_refuse;
    }
    closedir(dp);
    CHECK(n >= 2, "only %d refusal cases found", n);
}

static int digest_mode(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        fdd_image im;
        fdd_error err = {0};
        fdd_status s = fdd_image_load(argv[i], &im, &err);
        if (s) {
            printf("%s ERROR %s\n", argv[i], err.msg);
            continue;
        }
        char hex[65];
        test_image_sha(&im, hex);
        printf("%s %d %d %s\n", argv[i], im.width, im.height, hex);
        fdd_image_free(&im);
    }
    return 0;
}

/* The SIMD paths against the scalar code (the oracle), bit for bit: every
 * corpus file, and damaged copies whose huge coefficients send some blocks
 * to the scalar IDCT.  Same verdict, same pixels. */
static int same_decode(const uint8_t *d, size_t n, const char *what) {
    fdd_image a, b;
    fdd_error ea = {0}, eb = {0};
    fdd_jpeg_set_simd(1);
    fdd_status sa = fdd_image_decode(d, n, "t.jpg", &a, &ea);
    fdd_jpeg_set_simd(0);
    fdd_status sb = fdd_image_decode(d, n, "t.jpg", &b, &eb);
    fdd_jpeg_set_simd(1);
    int same = sa == sb && (sa != FDD_OK || (a.width == b.width && a.height == b.height &&
                                             !memcmp(a.rgb, b.rgb, (size_t)a.width * a.height * 3)));
    CHECK(same, "%s: SIMD and scalar decodes differ (status %d/%d)", what, (int)sa, (int)sb);
    if (sa == FDD_OK) fdd_image_free(&a);
    if (sb == FDD_OK) fdd_image_free(&b);
    return sa == FDD_OK;
}

static void test_simd_vs_scalar(void) {
    FILE *f = fopen(CORPUS "digests.txt", "r");
    REQUIRE(f, "cannot open " CORPUS "digests.txt");
    char name[256], want[80];
    int w, h, n = 0, damaged_ok = 0;
    uint64_t rng = 777;
    while (fscanf(f, "%255s %d %d %79s", name, &w, &h, want) == 4) {
        char path[512];
        snprintf(path, sizeof path, CORPUS "%s", name);
        size_t len;
        uint8_t *data = test_read_all(path, &len);
        if (!data) continue;
        same_decode(data, len, name);
        n++;
        for (int it = 0; it < 4 && len > 64; it++) {   /* flips in the entropy-coded data */
            uint8_t *buf = malloc(len);
            memcpy(buf, data, len);
            for (int k = 0; k < 3; k++)
                buf[len / 2 + test_rng_next(&rng) % (len / 2 - 2)] ^= (uint8_t)(1u << (test_rng_next(&rng) % 8));
            damaged_ok += same_decode(buf, len, name);
            free(buf);
        }
        free(data);
    }
    fclose(f);
    printf("jpeg SIMD vs scalar: %d corpus files and %d damaged copies identical (%d of those decode)\n", n, 4 * n,
           damaged_ok);
    CHECK(n >= 100, "only %d corpus files", n);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--digest") == 0) return digest_mode(argc, argv);
    RUN(test_corpus);
    RUN(test_simd_vs_scalar);
    RUN(test_refused);
    RUN(test_truncation_verdicts);
    RUN(test_byte_flips);
    RUN(test_alloc_failures);
    RUN(test_crafted);
    RUN(test_conformance_refusals);
    return test_summary("jpeg");
}

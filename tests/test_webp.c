/* test_webp.c — WebP: container, lossless (VP8L, src/webp.c) and lossy
 * (VP8, src/vp8.c).  Bit-exactness against Pillow digests
 * (tests/data/webp/digests.txt, made by tests/reference/make_webp_corpus.py
 * with Pillow's encoder, and by tests/reference/vp8/make_vp8_golden.py for
 * the VP8 features Pillow's encoder never writes: simple/no loop filter,
 * token partitions, loop-filter deltas, relative segments, the pad byte),
 * Pillow's refusals, truncation at every length, random damage, the bomb
 * limit and allocation failures. */
#include "test.h"

#include "image.h"
#include "test_image.h"

#include <stdio.h>

#define DIR "tests/data/webp/"

/* Decodes with every outcome checked for sanity: an error has a one-line
 * message starting with the name and leaves no pixels. */
static fdd_status decode_checked(const uint8_t *d, size_t n, fdd_image *im, fdd_error *err) {
    memset(err, 0, sizeof *err);
    fdd_status s = fdd_image_decode(d, n, "t.webp", im, err);
    const char *bad = test_decode_contract(s, im, err, "t.webp");
    CHECK(!bad, "%s", bad);
    return s;
}

static uint8_t *load(const char *file, size_t *n) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s", file);
    uint8_t *d = test_read_all(path, n);
    CHECK(d != NULL, "cannot read %s", path);
    return d;
}

/* ------------------------------------------------------------ Pillow match */

static void test_corpus_digests(void) {
    FILE *f = fopen(DIR "digests.txt", "r");
    REQUIRE(f, "cannot open " DIR "digests.txt");
    char line[512], file[256], a[32], b[32], want[65];
    int n = 0, match = 0, refused = 0;
    while (fgets(line, sizeof line, f)) {
        int k = sscanf(line, "%255s %31s %31s %64s", file, a, b, want);
        if (k < 3) continue;
        size_t len;
        uint8_t *d = load(file, &len);
        if (!d) continue;
        n++;
        fdd_image im;
        fdd_error err;
        fdd_status s = decode_checked(d, len, &im, &err);
        if (strcmp(a, "ERROR") == 0) {
            CHECK(s != FDD_OK, "%s: Pillow refuses it (%s), fdd decoded it", file, b);
            if (s == FDD_OK) fdd_image_free(&im);
            else refused++;
        } else {
            CHECK(s == FDD_OK, "%s: %s", file, err.msg);
            if (s == FDD_OK) {
                char hex[65];
                test_image_sha(&im, hex);
                CHECK(im.width == atoi(a) && im.height == atoi(b), "%s: %dx%d, want %sx%s", file,
                      im.width, im.height, a, b);
                CHECK(strcmp(hex, want) == 0, "%s: RGB differs from Pillow", file);
                match += strcmp(hex, want) == 0;
                fdd_image_free(&im);
            }
        }
        free(d);
    }
    fclose(f);
    printf("webp corpus: %d files, %d bit-exact, %d refused as Pillow does\n", n, match, refused);
    CHECK(n >= 89, "only %d corpus files", n);
}

/* ----------------------------------------------------------- bad headers */

static void put24(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16);
}

static void test_webp_errors(void) {
    size_t n;
    uint8_t *d = load("x_vp8x_vp8l.webp", &n); /* RIFF, VP8X(10), VP8L */
    REQUIRE(d, "corpus");
    uint8_t *t = malloc(n + 64);
    fdd_image im;
    fdd_error err;
#define EXPECT_ERR(what, len, code, sub)                                                       \
    do {                                                                                       \
        fdd_status s_ = decode_checked(t, len, &im, &err);                                     \
        CHECK(s_ == (code) && strstr(err.msg, sub), "%s: status %d '%s'", what, (int)s_,      \
              err.msg);                                                                        \
        if (!s_) fdd_image_free(&im);                                                          \
    } while (0)
    memcpy(t, d, n);
    CHECK(decode_checked(t, n, &im, &err) == FDD_OK, "baseline: %s", err.msg);
    fdd_image_free(&im);
    /* A still image must fill the canvas exactly. */
    memcpy(t, d, n); put24(t + 24, 7);
    EXPECT_ERR("canvas", n, FDD_E_FORMAT, "canvas size");
    /* Canvas 65536 x 65536: libwebp's area limit. */
    memcpy(t, d, n); put24(t + 24, 65535); put24(t + 27, 65535);
    EXPECT_ERR("area", n, FDD_E_FORMAT, "canvas");
    /* RIFF size odd/short/long. */
    memcpy(t, d, n); fdd_put_le32(t + 4, 4);
    EXPECT_ERR("riff < 8", n, FDD_E_FORMAT, "RIFF size");
    memcpy(t, d, n); fdd_put_le32(t + 4, (uint32_t)n);
    EXPECT_ERR("riff > file", n, FDD_E_FORMAT, "truncated");
    /* VP8X size below 10. */
    memcpy(t, d, n); fdd_put_le32(t + 16, 8);
    EXPECT_ERR("vp8x size", n, FDD_E_FORMAT, "VP8X");
    /* Chunk size past the RIFF end. */
    memcpy(t, d, n); fdd_put_le32(t + 34, 0x7fffffff);
    EXPECT_ERR("chunk size", n, FDD_E_FORMAT, "past the end");
    /* Not WebP at all after RIFF/WEBP. */
    memcpy(t, d, n); memcpy(t + 12, "JUNK", 4);
    EXPECT_ERR("first chunk", n, FDD_E_UNSUPPORTED, "unsupported");
    /* Tiny files. */
    memcpy(t, d, n);
    EXPECT_ERR("16 bytes", 16, FDD_E_FORMAT, "truncated");
    EXPECT_ERR("15 bytes", 15, FDD_E_UNSUPPORTED, "unsupported");
    memcpy(t, "RIFF\x08\0\0\0WEBPVP8L", 16);
    EXPECT_ERR("riff 8", 16, FDD_E_FORMAT, "truncated");
    free(t);
    free(d);
    /* Animation canvas 20000 x 20000 (frames fit): bomb before allocating. */
    d = load("anim_ll_2frames.webp", &n);
    REQUIRE(d, "corpus");
    put24(d + 24, 19999); put24(d + 27, 19999);
    fdd_alloc_fail_at(1);
    memset(&err, 0, sizeof err);
    fdd_status s0 = fdd_image_decode(d, n, "t.webp", &im, &err);
    fdd_alloc_fail_at(0);
    CHECK(s0 == FDD_E_NOMEM && strstr(err.msg, "bomb"), "anim bomb: %d '%s'", (int)s0, err.msg);
    /* 2000 x 1000: the first frame lands top-left on a black canvas. */
    put24(d + 24, 1999); put24(d + 27, 999);
    fdd_image small;
    size_t n2;
    uint8_t *d2 = load("anim_ll_2frames.webp", &n2);
    REQUIRE(d2 && fdd_image_decode(d2, n2, "t.webp", &small, &err) == FDD_OK, "%s", err.msg);
    REQUIRE(fdd_image_decode(d, n, "t.webp", &im, &err) == FDD_OK, "%s", err.msg);
    bool same = im.width == 2000 && im.height == 1000;
    for (int y = 0; same && y < small.height; y++)
        same = memcmp(im.rgb + (size_t)y * 2000 * 3, small.rgb + (size_t)y * small.width * 3,
                      (size_t)small.width * 3) == 0;
    size_t nz = 0;
    for (size_t i = 0; i < (size_t)2000 * 1000 * 3; i++) nz += im.rgb[i] != 0;
    CHECK(same && nz <= (size_t)small.width * small.height * 3, "frame placement");
    fdd_image_free(&im);
    fdd_image_free(&small);
    free(d2);
    free(d);
    /* VP8L 16384 x 16384 in a simple file: bomb before allocating. */
    static const uint8_t big[] = {'R', 'I', 'F', 'F', 18, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'L',
                                  6, 0, 0, 0, 0x2f, 0xff, 0xff, 0xff, 0x0f, 0};
    fdd_alloc_fail_at(1);
    memset(&err, 0, sizeof err);
    fdd_status s = fdd_image_decode(big, sizeof big, "t.webp", &im, &err);
    fdd_alloc_fail_at(0);
    CHECK(s == FDD_E_NOMEM && strstr(err.msg, "bomb"), "vp8l bomb: %d '%s'", (int)s, err.msg);
#undef EXPECT_ERR
}

/* ----------------------------------------------- hand-written bitstreams */

/* LSB-first bit writer for hand-made VP8L streams. */
typedef struct {
    uint8_t b[256];
    size_t bits;
} bw;
static void put(bw *w, uint32_t v, int n) {
    for (int i = 0; i < n; i++, w->bits++)
        if ((v >> i) & 1) w->b[w->bits >> 3] |= (uint8_t)(1u << (w->bits & 7));
}
static size_t wrap_vp8l(const bw *w, uint8_t *out) {
    size_t plen = (w->bits + 7) / 8, pad = plen & 1;
    memcpy(out, "RIFF", 4);
    fdd_put_le32(out + 4, (uint32_t)(4 + 8 + plen + pad));
    memcpy(out + 8, "WEBPVP8L", 8);
    fdd_put_le32(out + 16, (uint32_t)plen);
    memcpy(out + 20, w->b, plen);
    if (pad) out[20 + plen] = 0;
    return 20 + plen + pad;
}
static void header(bw *w, int width, int height) {
    memset(w, 0, sizeof *w);
    put(w, 0x2f, 8);
    put(w, (uint32_t)width - 1, 14);
    put(w, (uint32_t)height - 1, 14);
    put(w, 0, 1);
    put(w, 0, 3);
}
static void simple_code(bw *w, int sym) { /* one 8-bit symbol: a 0-bit code */
    put(w, 1, 1); put(w, 0, 1); put(w, 1, 1); put(w, (uint32_t)sym, 8);
}

static void test_handmade(void) {
    uint8_t file[300];
    bw w;
    fdd_image im;
    fdd_error err;
    /* 3x2 of one colour: no transform, no cache, no meta, five 0-bit codes. */
    header(&w, 3, 2);
    put(&w, 0, 1); put(&w, 0, 1); put(&w, 0, 1);
    simple_code(&w, 0x40); simple_code(&w, 0x80); simple_code(&w, 0x20); simple_code(&w, 0xff);
    simple_code(&w, 0);
    size_t n = wrap_vp8l(&w, file);
    REQUIRE(decode_checked(file, n, &im, &err) == FDD_OK, "%s", err.msg);
    CHECK(im.width == 3 && im.height == 2 && im.rgb[0] == 0x80 && im.rgb[1] == 0x40 &&
          im.rgb[2] == 0x20 && im.rgb[15] == 0x80, "colour %02x %02x %02x", im.rgb[0], im.rgb[1],
          im.rgb[2]);
    fdd_image_free(&im);
    /* The same with the subtract-green transform: red and blue get green. */
    header(&w, 3, 2);
    put(&w, 1, 1); put(&w, 2, 2); put(&w, 0, 1);
    put(&w, 0, 1); put(&w, 0, 1);
    simple_code(&w, 0x40); simple_code(&w, 0x80); simple_code(&w, 0x20); simple_code(&w, 0xff);
    simple_code(&w, 0);
    n = wrap_vp8l(&w, file);
    REQUIRE(decode_checked(file, n, &im, &err) == FDD_OK, "%s", err.msg);
    CHECK(im.rgb[0] == 0xc0 && im.rgb[1] == 0x40 && im.rgb[2] == 0x60, "subtract green");
    fdd_image_free(&im);
    /* A transform used twice. */
    header(&w, 3, 2);
    put(&w, 1, 1); put(&w, 2, 2); put(&w, 1, 1); put(&w, 2, 2); put(&w, 0, 1);
    put(&w, 0, 1); put(&w, 0, 1);
    for (int k = 0; k < 5; k++) simple_code(&w, 0);
    n = wrap_vp8l(&w, file);
    CHECK(decode_checked(file, n, &im, &err) == FDD_E_FORMAT && strstr(err.msg, "twice"), "%s", err.msg);
    /* Colour cache of 12 bits. */
    header(&w, 3, 2);
    put(&w, 0, 1); put(&w, 1, 1); put(&w, 12, 4);
    n = wrap_vp8l(&w, file);
    CHECK(decode_checked(file, n, &im, &err) == FDD_E_FORMAT && strstr(err.msg, "cache"), "%s", err.msg);
    /* A simple code whose only symbol is beyond the distance alphabet: no
     * symbol at all, an invalid code. */
    header(&w, 3, 2);
    put(&w, 0, 1); put(&w, 0, 1); put(&w, 0, 1);
    for (int k = 0; k < 4; k++) simple_code(&w, 0);
    simple_code(&w, 200);
    n = wrap_vp8l(&w, file);
    CHECK(decode_checked(file, n, &im, &err) == FDD_E_FORMAT && strstr(err.msg, "prefix code"), "%s", err.msg);
    /* Meta prefix codes: a 1x1 entropy image naming group 1, so group 0 is
     * unused; it is still read and must be valid (libwebp checks it). */
    for (int bad_unused = 0; bad_unused < 2; bad_unused++) {
        header(&w, 3, 2);
        put(&w, 0, 1); put(&w, 0, 1);           /* no transform, no cache */
        put(&w, 1, 1); put(&w, 0, 3);           /* meta codes, 4x4 tiles */
        put(&w, 0, 1);                          /* entropy image: no cache */
        simple_code(&w, 1);                     /* green 1: group 1 */
        for (int k = 0; k < 4; k++) simple_code(&w, 0);
        for (int k = 0; k < 4; k++) simple_code(&w, 9); /* group 0 */
        simple_code(&w, bad_unused ? 200 : 3);  /* 200: no distance symbol */
        simple_code(&w, 0x40); simple_code(&w, 0x80); simple_code(&w, 0x20); simple_code(&w, 0xff);
        simple_code(&w, 0);
        n = wrap_vp8l(&w, file);
        fdd_status s = decode_checked(file, n, &im, &err);
        if (bad_unused) {
            CHECK(s == FDD_E_FORMAT && strstr(err.msg, "prefix code"), "bad unused group: %s", err.msg);
        } else {
            CHECK(s == FDD_OK && im.rgb[0] == 0x80 && im.rgb[1] == 0x40 && im.rgb[2] == 0x20 &&
                      im.rgb[17] == 0x20, "meta codes: %s", err.msg);
            fdd_image_free(&im);
        }
    }
    /* A two-symbol simple code naming the same symbol twice is a 0-bit code. */
    header(&w, 3, 2);
    put(&w, 0, 1); put(&w, 0, 1); put(&w, 0, 1);
    put(&w, 1, 1); put(&w, 1, 1); put(&w, 1, 1); put(&w, 7, 8); put(&w, 7, 8); /* green {7, 7} */
    for (int k = 0; k < 4; k++) simple_code(&w, 0);
    n = wrap_vp8l(&w, file);
    CHECK(decode_checked(file, n, &im, &err) == FDD_OK && im.rgb[1] == 7, "same symbol twice: %s",
          err.msg);
    fdd_image_free(&im);
    /* Green {0 literal, 256 = length 1 copy}; the first pixel's bit selects
     * the copy, which has nothing to copy from. */
    header(&w, 3, 2);
    put(&w, 0, 1); put(&w, 0, 1); put(&w, 0, 1);
    put(&w, 1, 1); put(&w, 1, 1); put(&w, 1, 1); put(&w, 0, 8); put(&w, 1, 8); /* green {0, 1} */
    for (int k = 0; k < 4; k++) simple_code(&w, 0);
    put(&w, 1, 1); /* symbol 1: a literal green 1 */
    put(&w, 0, 1); /* symbol 0 */
    for (int k = 0; k < 4; k++) put(&w, 1, 1);
    n = wrap_vp8l(&w, file);
    CHECK(decode_checked(file, n, &im, &err) == FDD_OK && im.rgb[1] == 1 && im.rgb[4] == 0,
          "two-symbol literal code: %s", err.msg);
    fdd_image_free(&im);
}

/* ------------------------------------------------ truncation and damage */

static const char *robust_files[] = {"ll_7x13.webp", "ll_pal3_37x23.webp", "ll_alpha_exact1_m4.webp",
                                     "anim_ll_2frames.webp", "x_vp8x_vp8l_unknown_chunks.webp",
                                     "ll_pal17_37x23.webp", "ll_tiled_96x40.webp"};

static void test_truncation(void) {
    for (size_t f = 0; f < sizeof robust_files / sizeof robust_files[0]; f++) {
        size_t n;
        uint8_t *d = load(robust_files[f], &n);
        if (!d) continue;
        for (size_t k = 0; k < n; k++) {
            uint8_t *t = malloc(k ? k : 1); /* exact size: ASan sees any over-read */
            memcpy(t, d, k);
            fdd_image im;
            fdd_error err;
            fdd_status s = decode_checked(t, k, &im, &err);
            /* The RIFF size covers the whole file, so every prefix is short. */
            CHECK(s != FDD_OK, "%s: prefix %zu decoded", robust_files[f], k);
            if (!s) fdd_image_free(&im);
            free(t);
        }
        free(d);
    }
}

static void damage(const char *const *files, size_t nfiles, int iters, const char *what) {
    uint64_t rng = 2024;
    int ok = 0, total = 0;
    for (size_t f = 0; f < nfiles; f++) {
        size_t n;
        uint8_t *d = load(files[f], &n);
        if (!d) continue;
        for (int it = 0; it < iters; it++) {
            uint8_t *t = malloc(n);
            memcpy(t, d, n);
            int flips = 1 + (int)(test_rng_next(&rng) % 4);
            for (int k = 0; k < flips; k++) {
                /* Mostly in the bitstream, sometimes in the headers. */
                size_t pos = (it & 3) ? 20 + test_rng_next(&rng) % (n - 20) : test_rng_next(&rng) % n;
                t[pos] ^= (uint8_t)(1u << (test_rng_next(&rng) % 8));
            }
            fdd_image im;
            fdd_error err;
            total++;
            if (decode_checked(t, n, &im, &err) == FDD_OK) {
                ok++;
                fdd_image_free(&im);
            }
            free(t);
        }
        free(d);
    }
    printf("webp damage (%s): %d of %d damaged files still decode\n", what, ok, total);
}

static void test_fuzz(void) {
    int iters = getenv("FDD_FUZZ_ITERS") ? atoi(getenv("FDD_FUZZ_ITERS")) : 3000;
    damage(robust_files, sizeof robust_files / sizeof robust_files[0], iters, "lossless");
}

/* The same through src/vp8.c (lossy, lossy + ALPH, lossy animation). */
static void test_fuzz_lossy(void) {
    static const char *const lossy[] = {"ly_alpha_q70.webp", "ly_7x13.webp", "anim_ly_2frames.webp"};
    int iters = getenv("FDD_FUZZ_ITERS") ? atoi(getenv("FDD_FUZZ_ITERS")) : 3000;
    damage(lossy, 3, iters / 2, "lossy");
    for (size_t f = 0; f < 3; f++) {
        size_t n;
        uint8_t *d = load(lossy[f], &n);
        if (!d) continue;
        for (size_t k = 0; k < n; k++) {
            uint8_t *t = malloc(k ? k : 1);
            memcpy(t, d, k);
            fdd_image im;
            fdd_error err;
            if (decode_checked(t, k, &im, &err) == FDD_OK) fdd_image_free(&im);
            free(t);
        }
        free(d);
    }
}

static void test_alloc_failures(void) {
    const char *files[] = {"ll_pal5_37x23.webp", "ll_m6_64x48.webp", "anim_ll_2frames.webp"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        uint8_t *d = load(files[f], &n);
        if (!d) continue;
        char why[600];
        int k = test_decode_alloc_failures(d, n, "t.webp", 200, why, sizeof why);
        CHECK(k >= 3, "%s: %s", files[f], why);
        free(d);
    }
}

int main(void) {
    RUN(test_corpus_digests);
    RUN(test_webp_errors);
    RUN(test_handmade);
    RUN(test_truncation);
    RUN(test_fuzz);
    RUN(test_fuzz_lossy);
    RUN(test_alloc_failures);
    return test_summary("webp");
}

/* test_formats.c — PNM, BMP, GIF (src/formats.c), TIFF (src/tiff.c) and EXIF
 * orientation (src/exif.c): bit-exactness against Pillow digests
 * (tests/data/formats/digests.txt and exif-digests.txt, made by
 * tests/reference/make_formats_corpus.py, which also lists the files Pillow
 * refuses), every truncated prefix, random byte flips, size limits and
 * allocation failures. */
#include "test.h"

#include "image.h"
#include "test_image.h"

#define DIR "tests/data/formats/"

static uint8_t *load(const char *file, size_t *n) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s", file);
    uint8_t *d = test_read_all(path, n);
    CHECK(d != NULL, "cannot read %s", path);
    return d;
}

/* Every outcome checked: an error names the file on one line and leaves no
 * pixels; a success has sane sizes. */
static fdd_status decode_checked(const uint8_t *d, size_t n, fdd_image *im) {
    fdd_error err = {0};
    fdd_status s = fdd_image_decode(d, n, "t.img", im, &err);
    const char *bad = test_decode_contract(s, im, &err, "t.img");
    CHECK(!bad, "%s", bad);
    return s;
}

static void test_corpus_digests(void) {
    FILE *f = fopen(DIR "digests.txt", "r");
    REQUIRE(f, "cannot open " DIR "digests.txt");
    char line[512], file[256], a[65], b[65], want[65];
    int n = 0, errors = 0, webp_skipped = 0;
    while (fgets(line, sizeof line, f)) {
        int k = sscanf(line, "%255s %64s %64s %64s", file, a, b, want);
        if (k < 2) continue;
        char path[400];
        snprintf(path, sizeof path, DIR "%s", file);
        fdd_image im;
        fdd_error err = {0};
        fdd_status s = fdd_image_load(path, &im, &err);
        n++;
        if (strcmp(a, "ERROR") == 0) {
            errors++;
            CHECK(s != FDD_OK, "%s: decoded, Pillow refuses it", file);
            CHECK(s == FDD_OK || strncmp(err.msg, path, strlen(path)) == 0, "%s: message '%s'", file,
                  err.msg);
            if (!s) fdd_image_free(&im);
            continue;
        }
        if (strncmp(file, "tiff_unsup_", 11) == 0) { /* Pillow decodes them via libtiff; fdd refuses */
            CHECK(s == FDD_E_UNSUPPORTED && strstr(err.msg, "compression"), "%s: %d '%s'", file, (int)s,
                  err.msg);
            if (!s) fdd_image_free(&im);
            continue;
        }
        if (s == FDD_E_UNSUPPORTED && strstr(file, ".webp")) { /* WebP decoding may not be there yet */
            webp_skipped++;
            continue;
        }
        CHECK(s == FDD_OK, "%s: %s", file, err.msg);
        if (s) continue;
        char hex[65];
        test_image_sha(&im, hex);
        CHECK(im.width == atoi(a) && im.height == atoi(b), "%s: %dx%d, want %sx%s", file, im.width,
              im.height, a, b);
        CHECK(strcmp(hex, want) == 0, "%s: RGB differs from Pillow", file);
        fdd_image_free(&im);
    }
    fclose(f);
    if (webp_skipped) printf("test_formats: %d WebP corpus files skipped: WebP not decoded\n", webp_skipped);
    CHECK(n >= 280 && errors >= 30, "only %d corpus files (%d errors)", n, errors);
}

/* EXIF orientation: the value Pillow's getexif() gives, and
 * ImageOps.exif_transpose's pixels (where it raises, fdd ignores the broken
 * EXIF and gives the plain decode; where Image.open already fails, both
 * decodes fail). */
static void test_exif(void) {
    FILE *f = fopen(DIR "exif-digests.txt", "r");
    REQUIRE(f, "cannot open " DIR "exif-digests.txt");
    char line[512], file[256], a[65], b[65], want[65];
    int orient, n = 0, rotated = 0, skipped = 0;
    while (fgets(line, sizeof line, f)) {
        int k = sscanf(line, "%255s %d %64s %64s %64s", file, &orient, a, b, want);
        if (k < 3) continue;
        char path[400];
        snprintf(path, sizeof path, DIR "%s", file);
        size_t len;
        uint8_t *d = test_read_all(path, &len);
        REQUIRE(d, "cannot read %s", path);
        CHECK(fdd_image_exif_orientation(d, len) == orient, "%s: orientation %d, Pillow %d", file,
              fdd_image_exif_orientation(d, len), orient);
        fdd_image im, plain;
        fdd_error err = {0};
        fdd_status s = fdd_image_decode_ex(d, len, path, FDD_DECODE_EXIF_TRANSPOSE, &im, &err);
        fdd_status s0 = fdd_image_decode_ex(d, len, path, 0, &plain, &err);
        free(d);
        n++;
        if (strcmp(a, "ERROR") == 0 && strcmp(b, "UnidentifiedImageError") == 0) {
            /* Pillow's open itself fails (a JPEG EXIF header it cannot read) */
            CHECK(s != FDD_OK && s0 != FDD_OK, "%s: decoded, Pillow cannot open it", file);
            if (!s) fdd_image_free(&im);
            if (!s0) fdd_image_free(&plain);
            continue;
        }
        if ((s == FDD_E_UNSUPPORTED || s0 == FDD_E_UNSUPPORTED) && strstr(file, ".webp")) {
            skipped++;
            if (!s) fdd_image_free(&im);
            if (!s0) fdd_image_free(&plain);
            continue;
        }
        CHECK(s == FDD_OK && s0 == FDD_OK, "%s: %s", file, err.msg);
        if (s || s0) {
            if (!s) fdd_image_free(&im);
            if (!s0) fdd_image_free(&plain);
            continue;
        }
        char hex[65], hex0[65];
        test_image_sha(&im, hex);
        test_image_sha(&plain, hex0);
        if (strcmp(a, "ERROR") == 0) {
            CHECK(strcmp(hex, hex0) == 0, "%s: broken EXIF changed the pixels", file);
        } else {
            CHECK(im.width == atoi(a) && im.height == atoi(b), "%s: %dx%d, want %sx%s", file, im.width,
                  im.height, a, b);
            CHECK(strcmp(hex, want) == 0, "%s: exif_transpose differs from Pillow", file);
            rotated += strcmp(hex, hex0) != 0;
        }
        fdd_image_free(&im);
        fdd_image_free(&plain);
    }
    fclose(f);
    if (skipped) printf("test_formats: %d WebP EXIF files checked on the bytes only: WebP not decoded\n", skipped);
    CHECK(n >= 60 && rotated >= 20, "only %d EXIF files, %d transposed", n, rotated);
}

/* Random damage inside the EXIF block never fails a decode that succeeds
 * without the flag, and a failing transpose allocation is a clean error. */
static void test_exif_damage(void) {
    const char *files[] = {"exif_o6.jpg", "exif_o5.png", "exif_o7.webp", "exif_o8.tif", "exif_rational.jpg"};
    uint64_t rng = 7;
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        size_t n;
        uint8_t *d = load(files[fi], &n);
        if (!d) continue;
        for (int it = 0; it < 3000; it++) {
            uint8_t *t = malloc(n);
            memcpy(t, d, n);
            /* the EXIF data sits in the first ~120 bytes of these files */
            size_t lim = n < 120 ? n : 120;
            for (int k = 0; k < 1 + it % 3; k++) t[test_rng_next(&rng) % lim] = (uint8_t)test_rng_next(&rng);
            size_t len = it % 7 == 0 ? test_rng_next(&rng) % (n + 1) : n;
            int o = fdd_image_exif_orientation(t, len);
            CHECK(o >= 0 && o <= 8, "%s: orientation %d", files[fi], o);
            fdd_image a, b;
            fdd_error err = {0};
            fdd_status s0 = fdd_image_decode_ex(t, len, "t.img", 0, &a, &err);
            fdd_status s1 = fdd_image_decode_ex(t, len, "t.img", FDD_DECODE_EXIF_TRANSPOSE, &b, &err);
            CHECK(s0 == s1, "%s: transpose flag changed the status %d -> %d", files[fi], (int)s0, (int)s1);
            if (!s0 && !s1)
                CHECK((int64_t)b.width * b.height == (int64_t)a.width * a.height, "%s: size", files[fi]);
            if (!s0) fdd_image_free(&a);
            if (!s1) fdd_image_free(&b);
            free(t);
        }
        free(d);
    }
    /* Allocation failure in the transpose (the last allocation of a decode). */
    size_t n;
    uint8_t *d = load("exif_o6.png", &n);
    REQUIRE(d, "corpus");
    bool seen = false;
    for (long k = 1; k < 40; k++) {
        fdd_image im;
        fdd_error err = {0};
        fdd_alloc_fail_at(k);
        fdd_status s = fdd_image_decode_ex(d, n, "t.img", FDD_DECODE_EXIF_TRANSPOSE, &im, &err);
        fdd_alloc_fail_at(0);
        if (s == FDD_OK) {
            fdd_image_free(&im);
            break;
        }
        CHECK(s == FDD_E_NOMEM && im.rgb == NULL && strncmp(err.msg, "t.img: ", 7) == 0, "fail at %ld: %d '%s'", k,
              (int)s, err.msg);
        seen |= strstr(err.msg, "transpose") != NULL;
    }
    CHECK(seen, "no failure in the transpose seen");
    free(d);
}

/* Hand-made headers for the limits: bomb sizes and sizes the file cannot
 * hold are refused before any allocation. */
static void test_limits(void) {
    static const struct {
        const char *what;
        const char *data;
        size_t n;
        fdd_status code;
        const char *sub;
    } cases[] = {
        {"pgm bomb", "P5 100000 100000 255\n\0\0\0", 24, FDD_E_NOMEM, "bomb"},
        {"pgm short", "P5 10000 10000 255\n\0\0\0", 22, FDD_E_FORMAT, "truncated"},
        {"ppm 16 short", "P6 2 2 65535\n\0\0\0", 16, FDD_E_FORMAT, "truncated"},
        {"pbm short", "P4 9 2\n\0\0\0", 10, FDD_E_FORMAT, "truncated"},
        {"pgm negative", "P5 -3 2 255\n\0\0\0", 15, FDD_E_FORMAT, "negative"},
        {"plain pgm short", "P2 10000 10000 255\n0 1\n", 23, FDD_E_FORMAT, "truncated"},
        {"plain pbm short", "P1 10000 10000\n0 1\n", 19, FDD_E_FORMAT, "truncated"},
        {"plain ppm bomb", "P3 100000 100000 255\n0 1\n", 25, FDD_E_NOMEM, "bomb"},
        {"tiff tile bomb", "II*\0\x08\0\0\0\x07\0\x00\x01\x04\0\x01\0\0\0\x10\0\0\0"
                           "\x01\x01\x04\0\x01\0\0\0\x10\0\0\0\x02\x01\x03\0\x01\0\0\0\x08\0\0\0"
                           "\x06\x01\x03\0\x01\0\0\0\x01\0\0\0\x42\x01\x04\0\x01\0\0\0\0\0\0\x40"
                           "\x43\x01\x04\0\x01\0\0\0\0\0\0\x40\x44\x01\x04\0\x01\0\0\0\x08\0\0\0", 94,
         FDD_E_FORMAT, "truncated"},
        {"pnm header eof", "P5 1 ", 5, FDD_E_FORMAT, "header"},
        {"gif bomb", "GIF89a\xff\xff\xff\xff\x00\x00\x00,\0\0\0\0\x01\0\x01\0\0\x02\x02\x44\x01\0;", 30,
         FDD_E_NOMEM, "bomb"},
        {"gif frame short", "GIF89a\x01\0\x01\0\x00\x00\x00,\0\0\0\0\xff\x3f\xff\x0f\0\x02\x02\x44\x01\0;",
         30, FDD_E_FORMAT, "truncated"},
        {"gif header", "GIF89a\x01\0", 8, FDD_E_FORMAT, "header"},
        {"bmp header", "BM\0\0\0\0\0\0\0\0\0\0\0\0\x28\0\0", 18, FDD_E_FORMAT, "truncated"},
        {"tiff ifd", "II*\0\x08\0\0\0", 8, FDD_E_FORMAT, "IFD"},
        {"tiff bomb", "II*\0\x08\0\0\0\x05\0\x00\x01\x04\0\x01\0\0\0\xff\xff\xff\x00"
                      "\x01\x01\x04\0\x01\0\0\0\xff\xff\xff\x00\x02\x01\x03\0\x01\0\0\0\x08\0\0\0"
                      "\x06\x01\x03\0\x01\0\0\0\x01\0\0\0\x11\x01\x04\0\x01\0\0\0\x08\0\0\0", 70,
         FDD_E_NOMEM, "bomb"},
        {"tiff too big for file", "II*\0\x08\0\0\0\x05\0\x00\x01\x04\0\x01\0\0\0\x00\x40\x00\x00"
                      "\x01\x01\x04\0\x01\0\0\0\x00\x10\x00\x00\x02\x01\x03\0\x01\0\0\0\x08\0\0\0"
                      "\x06\x01\x03\0\x01\0\0\0\x01\0\0\0\x11\x01\x04\0\x01\0\0\0\x08\0\0\0", 70,
         FDD_E_FORMAT, "truncated"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *t = malloc(cases[i].n);
        memcpy(t, cases[i].data, cases[i].n);
        fdd_image im;
        fdd_error err = {0};
        fdd_alloc_fail_at(1); /* any allocation before the refusal fails the check */
        fdd_status s = fdd_image_decode(t, cases[i].n, "t.img", &im, &err);
        fdd_alloc_fail_at(0);
        CHECK(s == cases[i].code && strstr(err.msg, cases[i].sub) && !strncmp(err.msg, "t.img: ", 7),
              "%s: status %d '%s'", cases[i].what, (int)s, err.msg);
        if (!s) fdd_image_free(&im);
        free(t);
    }
    /* BMP: 24-bit 60000 x 60000 (bomb) and 8000 x 8000 in a tiny file. */
    size_t n;
    uint8_t *d = load("bmp_32_raw.bmp", &n), *t;
    REQUIRE(d, "corpus");
    t = malloc(n);
    const struct { uint32_t w, h; fdd_status code; const char *sub; } bm[] = {
        {60000, 60000, FDD_E_NOMEM, "bomb"}, {8000, 8000, FDD_E_FORMAT, "truncated"},
        {0xFFFFFFF0u, 1, FDD_E_NOMEM, "bomb"}, {0, 3, FDD_E_FORMAT, "zero"}};
    for (size_t i = 0; i < 4; i++) {
        memcpy(t, d, n);
        fdd_put_le32(t + 18, bm[i].w);
        fdd_put_le32(t + 22, bm[i].h);
        fdd_image im;
        fdd_error err = {0};
        fdd_alloc_fail_at(1);
        fdd_status s = fdd_image_decode(t, n, "t.img", &im, &err);
        fdd_alloc_fail_at(0);
        CHECK(s == bm[i].code && strstr(err.msg, bm[i].sub), "bmp %ux%u: %d '%s'", bm[i].w, bm[i].h,
              (int)s, err.msg);
        if (!s) fdd_image_free(&im);
    }
    free(t);
    free(d);
}

static const char *fuzz_files[] = {
    "p5_max1000.pgm", "p6_max65535.ppm", "p4_pillow_13x7.pbm", "p5_comments.pgm",
    "bmp_pillow_4_P.bmp", "bmp_1bit_colour.bmp", "bmp_16_565_bf.bmp", "bmp_32_bf2_v5.bmp",
    "bmp_os2_8bit.bmp", "bmp_rle8.bmp", "bmp_rle4.bmp", "bmp_rle8_random.bmp",
    "gif_pillow_interlaced.gif", "gif_pillow_anim.gif", "gif_comment_app.gif",
    "gif_offset_frame.gif", "gif_local_pal.gif", "gif_bits1.gif", "tiff_RGB_tiff_lzw_pred2.tif",
    "tiff_P_packbits.tif", "tiff_RGBA_tiff_adobe_deflate.tif", "tiff_mm_rgbx.tif",
    "tiff_RGB_lzw_strips.tif", "tiff_L_raw_strips.tif", "p2_max1000.pgm", "p3_max65535.ppm",
    "p1_comments.pbm", "p2_comment_cr.pgm", "p3_half_token.ppm", "tiff_1bit_tiled_lzw.tif",
    "tiff_I16_pred2_tiled_deflate.tif", "tiff_RGB16_pred2_lzw_mm.tif", "tiff_P4_packbits.tif",
    "tiff_L_fill2_lzw.tif", "tiff_RGB_tiled_raw.tif", "tiff_1bit_fill2_raw.tif", "exif_o6.tif"};
#define NFUZZ (sizeof fuzz_files / sizeof fuzz_files[0])

/* Every prefix: an error or an image, never a crash or an over-read (each
 * prefix in an exact-size buffer for ASan). */
static void test_truncation(void) {
    for (size_t f = 0; f < NFUZZ; f++) {
        size_t n;
        uint8_t *d = load(fuzz_files[f], &n);
        if (!d) continue;
        fdd_image full;
        REQUIRE(decode_checked(d, n, &full) == FDD_OK, "%s", fuzz_files[f]);
        for (size_t k = 0; k < n; k++) {
            uint8_t *t = malloc(k ? k : 1);
            memcpy(t, d, k);
            fdd_image im;
            if (decode_checked(t, k, &im) == FDD_OK) {
                CHECK(im.width == full.width && im.height == full.height, "%s: prefix %zu size",
                      fuzz_files[f], k);
                fdd_image_free(&im);
            }
            free(t);
        }
        fdd_image_free(&full);
        free(d);
    }
}

static void test_fuzz(void) {
    uint64_t rng = 99;
    int iters = getenv("FDD_FUZZ_ITERS") ? atoi(getenv("FDD_FUZZ_ITERS")) : 1500;
    for (size_t f = 0; f < NFUZZ; f++) {
        size_t n;
        uint8_t *d = load(fuzz_files[f], &n);
        if (!d) continue;
        for (int it = 0; it < iters; it++) {
            uint8_t *t = malloc(n);
            memcpy(t, d, n);
            int flips = 1 + (int)(test_rng_next(&rng) % 4);
            for (int k = 0; k < flips; k++) {
                size_t pos = test_rng_next(&rng) % n;
                if (it & 1) t[pos] = (uint8_t)test_rng_next(&rng); /* any value, e.g. header fields */
                else t[pos] ^= (uint8_t)(1u << (test_rng_next(&rng) % 8));
            }
            size_t len = (it % 5 == 0) ? test_rng_next(&rng) % (n + 1) : n;
            fdd_image im;
            if (decode_checked(t, len, &im) == FDD_OK) fdd_image_free(&im);
            free(t);
        }
        free(d);
    }
}

static void test_alloc_failures(void) {
    const char *files[] = {"p6_max4095.ppm", "bmp_rle8.bmp", "bmp_pillow_8_P.bmp", "gif_pillow_p.gif",
                           "p2_max1000.pgm", "tiff_RGB_tiled_lzw.tif", "tiff_1bit_fill2_lzw.tif"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        uint8_t *d = load(files[f], &n);
        if (!d) continue;
        char why[600];
        int k = test_decode_alloc_failures(d, n, "t.img", 50, why, sizeof why);
        CHECK(k >= 1, "%s: %s", files[f], why);
        free(d);
    }
}

/* Real files from ../shared/data against the digests in
 * tests/data/corpus-digests.txt (BMP, GIF, PGM, PPM, TIFF; TIFF layouts
 * refused as unsupported are skipped). */
static void test_shared_data(void) {
    FILE *f = fopen("tests/data/corpus-digests.txt", "r");
    FILE *probe = fopen("../shared/data/README.md", "r");
    if (!f || !probe) {
        printf("test_formats: skipping shared-data check: ../shared/data is absent\n");
        if (f) fclose(f);
        if (probe) fclose(probe);
        return;
    }
    fclose(probe);
    char line[1024], file[700], a[65], b[65], want[65];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%699s %64s %64s %64s", file, a, b, want) != 4) continue;
        const char *ext = strrchr(file, '.');
        if (!ext || (strcmp(ext, ".bmp") && strcmp(ext, ".gif") && strcmp(ext, ".pgm") &&
                     strcmp(ext, ".ppm") && strcmp(ext, ".tif") && strcmp(ext, ".tiff")))
            continue;
        char path[800];
        snprintf(path, sizeof path, "../shared/data/%s", file);
        fdd_image im;
        fdd_error err = {0};
        fdd_status s = fdd_image_load(path, &im, &err);
        if (s == FDD_E_UNSUPPORTED && strstr(file, ".tif") && strstr(err.msg, "CCITT")) continue;
        if (s) {
            CHECK(0, "%s: %s", file, err.msg);
            continue;
        }
        char hex[65];
        test_image_sha(&im, hex);
        CHECK(strcmp(hex, want) == 0 && im.width == atoi(a), "%s differs from Pillow", file);
        fdd_image_free(&im);
        n++;
    }
    fclose(f);
    CHECK(n >= 430, "only %d shared files", n);
}

int main(void) {
    RUN(test_corpus_digests);
    RUN(test_limits);
    RUN(test_truncation);
    RUN(test_fuzz);
    RUN(test_alloc_failures);
    RUN(test_exif);
    RUN(test_exif_damage);
    RUN(test_shared_data);
    return test_summary("formats");
}

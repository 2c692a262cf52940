/* test_png.c — PNG decoder and inflate: bit-exactness against Pillow digests
 * (tests/data/png/digests.txt, made by tests/reference/make_png_corpus.py),
 * inflate unit tests, corrupt and truncated input, allocation failures. */
#include "test.h"

#include "image.h"
#include "test_image.h"

#include <stdio.h>

#define DIR "tests/data/png/"

/* Decodes with every outcome checked for sanity: an error has a message
 * starting with the name and leaves no pixels; success has sane sizes. */
static fdd_status decode_checked(const uint8_t *d, size_t n, fdd_image *im) {
    fdd_error err = {0};
    fdd_status s = fdd_image_decode(d, n, "t.png", im, &err);
    const char *bad = test_decode_contract(s, im, &err, "t.png");
    CHECK(!bad, "%s", bad);
    return s;
}

/* ------------------------------------------------------------ Pillow match */

static void test_corpus_digests(void) {
    FILE *f = fopen(DIR "digests.txt", "r");
    REQUIRE(f, "cannot open " DIR "digests.txt");
    char line[512], file[256], want[65];
    int w, h, n = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%255s %d %d %64s", file, &w, &h, want) != 4) continue;
        char path[400];
        snprintf(path, sizeof path, DIR "%s", file);
        fdd_image im;
        fdd_error err = {0};
        fdd_status s = fdd_image_load(path, &im, &err);
        CHECK(s == FDD_OK, "%s: %s", file, err.msg);
        if (s) continue;
        char hex[65];
        test_image_sha(&im, hex);
        CHECK(im.width == w && im.height == h, "%s: %dx%d, want %dx%d", file, im.width, im.height, w, h);
        CHECK(strcmp(hex, want) == 0, "%s: RGB differs from Pillow", file);
        fdd_image_free(&im);
        n++;
    }
    fclose(f);
    CHECK(n >= 120, "only %d corpus files", n);
}

/* ----------------------------------------------------------------- inflate */

static uint8_t *inflate_test_data(size_t *len) { /* same as make_png_corpus.py */
    size_t n = 4000 + 9 * 200 + 300;
    uint8_t *d = calloc(n, 1);
    for (uint32_t i = 0; i < 4000; i++) d[i] = (uint8_t)(97 + ((i * i * 31 + i * 7) >> 3) % 17);
    for (int i = 0; i < 200; i++) memcpy(d + 4000 + 9 * i, "abcabcabc", 9);
    *len = n;
    return d;
}

static void test_inflate_streams(void) {
    size_t n;
    uint8_t *want = inflate_test_data(&n);
    const char *modes[] = {"stored", "fixed", "dynamic", "mixed"};
    for (int m = 0; m < 4; m++) {
        char path[128];
        snprintf(path, sizeof path, DIR "zlib_%s.bin", modes[m]);
        size_t zl;
        uint8_t *z = test_read_all(path, &zl);
        CHECK(z, "cannot read %s", path);
        if (!z) continue;
        uint8_t *out = malloc(n + 16);
        size_t got = 0;
        fdd_error err = {0};
        fdd_status s = fdd_zlib_decompress(z, zl, out, n, &got, "z", &err);
        CHECK(s == FDD_OK && got == n && memcmp(out, want, n) == 0, "%s: %s", modes[m], err.msg);
        /* Output would exceed cap. */
        s = fdd_zlib_decompress(z, zl, out, n - 1, &got, "z", &err);
        CHECK(s == FDD_E_FORMAT, "%s: cap overflow not detected", modes[m]);
        /* Prefix mode stops at cap. */
        s = fdd_zlib_decompress_prefix(z, zl, out, n - 100, NULL, NULL, NULL, "z", &err);
        CHECK(s == FDD_OK && memcmp(out, want, n - 100) == 0, "%s prefix: %s", modes[m], err.msg);
        /* Every truncation is an error, never a crash. */
        for (size_t k = 0; k < zl; k++) {
            uint8_t *t = malloc(k ? k : 1);
            memcpy(t, z, k);
            s = fdd_zlib_decompress(t, k, out, n, &got, "z", &err);
            CHECK(s == FDD_E_FORMAT, "%s: prefix %zu accepted", modes[m], k);
            free(t);
        }
        /* Adler-32 mismatch. */
        z[zl - 1] ^= 1;
        s = fdd_zlib_decompress(z, zl, out, n, &got, "z", &err);
        CHECK(s == FDD_E_FORMAT && strstr(err.msg, "check"), "%s: bad Adler accepted", modes[m]);
        /* Raw inflate reports consumption exactly (stream minus header/trailer). */
        size_t used = 0;
        s = fdd_inflate(z + 2, zl - 2, out, n, &used, &got, "z", &err);
        CHECK(s == FDD_OK && used == zl - 6 && got == n, "%s: raw inflate used %zu of %zu", modes[m],
              used, zl - 6);
        free(out);
        free(z);
    }
    free(want);
}

/* Codes of length 15 (second-level tables, the longest codes). */
static void test_inflate_long_codes(void) {
    size_t zl, n = 0;
    uint8_t *z = test_read_all(DIR "zlib_long_codes.bin", &zl);
    REQUIRE(z, "cannot read zlib_long_codes.bin");
    uint8_t want[30], out[30];
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 15; i++) want[n++] = (uint8_t)('A' + i);
    size_t got = 0;
    fdd_error err = {0};
    CHECK(fdd_zlib_decompress(z, zl, out, n, &got, "z", &err) == FDD_OK && got == n &&
              memcmp(out, want, n) == 0, "%s", err.msg);
    free(z);
}

static void test_inflate_bad(void) {
    static const struct {
        const char *name;
        uint8_t d[16];
        size_t n;
        const char *why;
    } cases[] = {
        {"distance too far back", {0x03, 0x02, 0x00}, 3, "too far"},
        {"literal code 286", {0x1b, 0x03, 0x00}, 3, "literal"},
        {"distance code 30", {0x4b, 0x04, 0x3e, 0x00}, 4, "distance code"},
        {"over-subscribed", {0x05, 0xe0, 0x93, 0x24, 0x49, 0x92, 0x24, 0x49, 0x92, 0x00}, 10, "lengths"},
        {"incomplete", {0x05, 0x00, 0x04, 0x00}, 4, "lengths"},
        {"repeat first", {0x05, 0x00, 0x02, 0x24}, 4, "repeat"},
        {"block type 3", {0x07, 0x00}, 2, "block type"},
        {"stored nlen", {0x01, 0x05, 0x00, 0xfa, 0xfe, 'h', 'e', 'l', 'l', 'o'}, 10, "stored"},
        {"stored short", {0x01, 0x05, 0x00, 0xfa, 0xff, 'h', 'e'}, 7, "truncated"},
        {"empty", {0}, 0, "truncated"},
    };
    uint8_t out[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fdd_error err = {0};
        size_t used, got;
        fdd_status s = fdd_inflate(cases[i].d, cases[i].n, out, sizeof out, &used, &got, "x", &err);
        CHECK(s == FDD_E_FORMAT && strstr(err.msg, cases[i].why), "%s: status %d '%s'", cases[i].name,
              (int)s, err.msg);
    }
    /* Good tiny streams: stored "hello", fixed empty, zlib "hello hello ...". */
    static const uint8_t stored[] = {0x01, 0x05, 0x00, 0xfa, 0xff, 'h', 'e', 'l', 'l', 'o'};
    size_t used = 0, got = 0;
    fdd_error err = {0};
    CHECK(fdd_inflate(stored, sizeof stored, out, 5, &used, &got, "x", &err) == FDD_OK && got == 5 &&
              used == 10 && memcmp(out, "hello", 5) == 0, "stored: %s", err.msg);
    static const uint8_t fixed_empty[] = {0x03, 0x00};
    CHECK(fdd_inflate(fixed_empty, 2, out, 0, &used, &got, "x", &err) == FDD_OK && got == 0, "empty");
    static const uint8_t z[] = {0x78, 0xda, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0xc8, 0x40,
                                0x27, 0x01, 0x68, 0x03, 0x08, 0xb1};
    CHECK(fdd_zlib_decompress(z, sizeof z, out, sizeof out, &got, "x", &err) == FDD_OK && got == 23 &&
              memcmp(out, "hello hello hello hello", 23) == 0, "zlib: %s", err.msg);
    uint8_t bad[sizeof z];
    memcpy(bad, z, sizeof z);
    bad[0] = 0x79; /* header check fails */
    CHECK(fdd_zlib_decompress(bad, sizeof z, out, sizeof out, &got, "x", &err) == FDD_E_FORMAT, "hdr");
    bad[0] = 0x78; bad[1] = 0xbb; /* FDICT set, check passes: 0x78bb % 31 == 0 */
    CHECK((0x78 * 256 + 0xbb) % 31 == 0, "test vector");
    CHECK(fdd_zlib_decompress(bad, sizeof z, out, sizeof out, &got, "x", &err) == FDD_E_FORMAT, "dict");
    /* Random garbage never crashes and never writes past cap. */
    uint64_t rng = 7;
    uint8_t in[300], big[1024 + 8];
    for (int it = 0; it < 20000; it++) {
        size_t n = test_rng_next(&rng) % sizeof in;
        for (size_t k = 0; k < n; k++) in[k] = (uint8_t)test_rng_next(&rng);
        if (n && (it & 1)) in[0] = (uint8_t)((in[0] & ~6) | 4); /* dynamic blocks more often */
        memset(big + 1024, 0xA5, 8);
        fdd_inflate(in, n, big, 1024, &used, &got, "x", &err);
        CHECK(used <= n && got <= 1024, "bounds");
        CHECK(big[1024] == 0xA5 && big[1031] == 0xA5, "wrote past cap");
    }
    CHECK(fdd_crc32(0, (const uint8_t *)"123456789", 9) == 0xCBF43926u, "crc32 check value");
    CHECK(fdd_adler32(1, (const uint8_t *)"Wikipedia", 9) == 0x11E60398u, "adler32");
}

/* ---------------------------------------------------------------- PNG bad */

static uint8_t *load_corpus(const char *file, size_t *n) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s", file);
    uint8_t *d = test_read_all(path, n);
    CHECK(d != NULL, "cannot read %s", path);
    return d;
}

static void put_crc(uint8_t *chunk_start) { /* recompute a chunk's CRC in place */
    uint32_t len = fdd_be32(chunk_start);
    uint32_t c = fdd_crc32(0, chunk_start + 4, len + 4);
    uint8_t *p = chunk_start + 8 + len;
    p[0] = (uint8_t)(c >> 24); p[1] = (uint8_t)(c >> 16); p[2] = (uint8_t)(c >> 8); p[3] = (uint8_t)c;
}

static void test_png_errors(void) {
    size_t n;
    uint8_t *d = load_corpus("rgb8_dynamic_1idat.png", &n);
    REQUIRE(d, "corpus");
    uint8_t *t = malloc(n);
    fdd_image im;
    fdd_error err;
#define EXPECT_ERR(what, code, sub)                                                            \
    do {                                                                                       \
        memset(&err, 0, sizeof err);                                                           \
        fdd_status s_ = fdd_image_decode(t, n, "t.png", &im, &err);                            \
        CHECK(s_ == (code) && strstr(err.msg, sub) && strncmp(err.msg, "t.png: ", 7) == 0,     \
              "%s: status %d '%s'", what, (int)s_, err.msg);                                   \
        if (!s_) fdd_image_free(&im);                                                          \
    } while (0)
    /* IHDR CRC. */
    memcpy(t, d, n);
    t[8 + 8 + 13] ^= 1;
    EXPECT_ERR("IHDR crc", FDD_E_FORMAT, "CRC");
    /* Bad IHDR fields, CRC fixed up. */
    memcpy(t, d, n); t[8 + 8 + 9] = 5; put_crc(t + 8);
    EXPECT_ERR("colour type 5", FDD_E_FORMAT, "colour type");
    memcpy(t, d, n); t[8 + 8 + 8] = 4; put_crc(t + 8);
    EXPECT_ERR("rgb depth 4", FDD_E_FORMAT, "bit depth");
    memcpy(t, d, n); t[8 + 8 + 11] = 1; put_crc(t + 8);
    EXPECT_ERR("filter method", FDD_E_FORMAT, "filter");
    /* Bomb: 100000 x 100000 refused before allocating anything. */
    memcpy(t, d, n); t[8 + 8 + 1] = 0x01; t[8 + 8 + 2] = 0x86; t[8 + 8 + 3] = 0xa0;
    t[8 + 8 + 5] = 0x01; t[8 + 8 + 6] = 0x86; t[8 + 8 + 7] = 0xa0; put_crc(t + 8);
    fdd_alloc_fail_at(1);
    EXPECT_ERR("bomb", FDD_E_NOMEM, "bomb");
    fdd_alloc_fail_at(0);
    /* 20000 x 5000: below the bomb limit, but the data cannot hold it. */
    memcpy(t, d, n); t[8 + 8 + 1] = 0; t[8 + 8 + 2] = 0x4e; t[8 + 8 + 3] = 0x20;
    t[8 + 8 + 5] = 0; t[8 + 8 + 6] = 0x13; t[8 + 8 + 7] = 0x88; put_crc(t + 8);
    fdd_alloc_fail_at(1);
    EXPECT_ERR("too little data", FDD_E_FORMAT, "cannot hold");
    fdd_alloc_fail_at(0);
    /* Zero width. */
    memcpy(t, d, n); memset(t + 16, 0, 4); put_crc(t + 8);
    EXPECT_ERR("zero width", FDD_E_FORMAT, "zero");
    /* Bad signature byte: no longer recognised as PNG at all. */
    memcpy(t, d, n); t[1] = 'Q';
    EXPECT_ERR("signature", FDD_E_UNSUPPORTED, "unsupported");
    /* Find the IDAT chunk. */
    size_t idat = 8;
    while (memcmp(d + idat + 4, "IDAT", 4) != 0) idat += 12 + fdd_be32(d + idat);
    uint32_t ilen = fdd_be32(d + idat);
    /* IDAT CRC is ignored, as in Pillow. */
    memcpy(t, d, n); t[idat + 8 + ilen] ^= 0xff;
    memset(&err, 0, sizeof err);
    CHECK(fdd_image_decode(t, n, "t.png", &im, &err) == FDD_OK, "IDAT CRC: %s", err.msg);
    fdd_image_free(&im);
    /* Adler-32 right after the data: zlib inside Pillow checks it. */
    memcpy(t, d, n); t[idat + 8 + ilen - 1] ^= 1;
    EXPECT_ERR("adler", FDD_E_FORMAT, "data check");
    /* Bad zlib header. */
    memcpy(t, d, n); t[idat + 8] = 0x79;
    EXPECT_ERR("zlib header", FDD_E_FORMAT, "header");
    /* Unknown filter type 5 on the first row (stored data keeps it visible). */
    free(d);
    d = load_corpus("rgb8_stored_1idat.png", &n);
    REQUIRE(d, "corpus");
    t = realloc(t, n);
    idat = 8;
    while (memcmp(d + idat + 4, "IDAT", 4) != 0) idat += 12 + fdd_be32(d + idat);
    memcpy(t, d, n);
    t[idat + 8 + 2 + 5] = 5; /* zlib header, stored block header, then filter byte */
    {   /* keep the Adler-32 right, so that the filter byte is what fails */
        uint32_t il = fdd_be32(d + idat), a = fdd_adler32(1, t + idat + 8 + 7, il - 11);
        uint8_t *ap = t + idat + 8 + il - 4;
        ap[0] = (uint8_t)(a >> 24); ap[1] = (uint8_t)(a >> 16); ap[2] = (uint8_t)(a >> 8); ap[3] = (uint8_t)a;
    }
    EXPECT_ERR("filter type", FDD_E_FORMAT, "filter type");
    /* Chunk type with a bad character before IDAT. */
    memcpy(t, d, n); t[8 + 4] = '#';
    EXPECT_ERR("chunk type", FDD_E_FORMAT, "chunk");
    /* IEND before any IDAT. */
    memcpy(t, d, n); memcpy(t + idat + 4, "IEND", 4);
    EXPECT_ERR("no IDAT", FDD_E_FORMAT, "no image data");
    free(t);
    free(d);
#undef EXPECT_ERR
}

/* Every prefix of a few files: an error or an image, never a crash; and the
 * complete image data without the trailing chunks still decodes. */
static void test_png_truncation(void) {
    const char *files[] = {"c6d16i_7x13_stored_2idat.png", "c3d04n_33x5_stored_3idat.png",
                           "smooth_rgb8_96x64.png", "c0d01i_33x5_fixed_3idat.png"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        uint8_t *d = load_corpus(files[f], &n);
        if (!d) continue;
        fdd_image full;
        fdd_error err;
        REQUIRE(fdd_image_decode(d, n, "t.png", &full, &err) == FDD_OK, "%s", err.msg);
        int ok = 0;
        for (size_t k = 0; k < n; k++) {
            uint8_t *t = malloc(k ? k : 1); /* exact size: ASan sees any over-read */
            memcpy(t, d, k);
            fdd_image im;
            if (decode_checked(t, k, &im) == FDD_OK) {
                ok++;
                CHECK(memcmp(im.rgb, full.rgb, (size_t)im.width * im.height * 3) == 0,
                      "%s: prefix %zu decoded differently", files[f], k);
                fdd_image_free(&im);
            }
            free(t);
        }
        CHECK(ok >= 1, "%s: no truncated prefix decodes (IEND and tEXt are optional)", files[f]);
        fdd_image_free(&full);
        free(d);
    }
}

static void test_png_fuzz(void) {
    const char *files[] = {"c6d16i_7x13_stored_2idat.png", "c3d02i_33x5_fixed_3idat.png",
                           "smooth_rgba8_64x48_i.png", "c0d16n_33x5_dynamic_3idat.png",
                           "pal8_trns_table.png", "filter_random_rgb8.png"};
    uint64_t rng = 12345;
    int iters = getenv("FDD_FUZZ_ITERS") ? atoi(getenv("FDD_FUZZ_ITERS")) : 3000;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        uint8_t *d = load_corpus(files[f], &n);
        if (!d) continue;
        for (int it = 0; it < iters; it++) {
            uint8_t *t = malloc(n);
            memcpy(t, d, n);
            int flips = 1 + (int)(test_rng_next(&rng) % 4);
            for (int k = 0; k < flips; k++) {
                size_t pos = test_rng_next(&rng) % n;
                /* Half the time fix the chunk CRCs so the damage reaches inflate. */
                t[pos] ^= (uint8_t)(1u << (test_rng_next(&rng) % 8));
            }
            if (it & 1) {
                size_t c = 8;
                while (c + 12 <= n && fdd_be32(t + c) <= n - c - 12) {
                    put_crc(t + c);
                    c += 12 + fdd_be32(t + c);
                }
            }
            size_t len = (it % 5 == 0) ? test_rng_next(&rng) % (n + 1) : n;
            fdd_image im;
            if (decode_checked(t, len, &im) == FDD_OK) fdd_image_free(&im);
            free(t);
        }
        free(d);
    }
}

static void test_png_alloc_failures(void) {
    const char *files[] = {"c6d16i_7x13_stored_2idat.png", "c2d08n_33x5_stored_3idat.png"};
    for (size_t f = 0; f < 2; f++) {
        size_t n;
        uint8_t *d = load_corpus(files[f], &n);
        if (!d) continue;
        char why[600];
        int k = test_decode_alloc_failures(d, n, "t.png", 100, why, sizeof why);
        CHECK(k >= 2, "%s: %s", files[f], why);
        free(d);
    }
}

int main(void) {
    RUN(test_corpus_digests);
    RUN(test_inflate_streams);
    RUN(test_inflate_long_codes);
    RUN(test_inflate_bad);
    RUN(test_png_errors);
    RUN(test_png_truncation);
    RUN(test_png_fuzz);
    RUN(test_png_alloc_failures);
    return test_summary("png");
}

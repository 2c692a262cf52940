/* test_image.h — helpers shared by the image tests and tests/corpus.c:
 * reading a whole file and the SHA-256 of decoded pixels (the form the
 * Pillow digest files use). */
#ifndef FDD_TEST_IMAGE_H
#define FDD_TEST_IMAGE_H

#include "fdd.h"

#include <stdio.h>
#include <stdlib.h>

/* The whole file in a malloc'ed buffer, or NULL. */
static inline uint8_t *test_read_all(const char *path, size_t *len) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, r;
    uint8_t *b = malloc(cap);
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    fclose(f);
    *len = n;
    return b;
}

/* Lowercase hex SHA-256 of an image's RGB bytes. */
static inline void test_image_sha(const fdd_image *im, char hex[65]) {
    fdd_sha256 s;
    uint8_t d[32];
    fdd_sha256_init(&s);
    fdd_sha256_update(&s, im->rgb, (size_t)im->width * (size_t)im->height * 3);
    fdd_sha256_final(&s, d);
    fdd_sha256_hex(d, hex);
}

#endif

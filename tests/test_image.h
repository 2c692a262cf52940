/* test_image.h — helpers shared by the image tests and tests/corpus.c:
 * reading a whole file and the SHA-256 of decoded pixels (the form the
 * Pillow digest files use). */
#ifndef FDD_TEST_IMAGE_H
#define FDD_TEST_IMAGE_H

#include "fdd.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The decoders' contract on one outcome: an error leaves no pixels and says
 * "<name>: <reason>" on one line; a success has pixels and a size.  NULL if
 * it holds, else what broke (a static buffer). */
static inline const char *test_decode_contract(fdd_status s, const fdd_image *im, const fdd_error *err,
                                               const char *name) {
    static char why[700];
    size_t nl = strlen(name);
    if (s == FDD_OK) return im->rgb && im->width > 0 && im->height > 0 ? NULL : "empty success";
    if (im->rgb != NULL || im->width != 0) return "pixels left after an error";
    if (strncmp(err->msg, name, nl) != 0 || strncmp(err->msg + nl, ": ", 2) != 0 || strchr(err->msg, '\n')) {
        snprintf(why, sizeof why, "bad message '%s'", err->msg);
        return why;
    }
    return NULL;
}

/* Decodes data with the k-th allocation failing, for k = 1, 2, ... until a
 * decode succeeds.  Every failed decode must say FDD_E_NOMEM, leave no image
 * and name the file ("<name>: ...").  Returns the number of failed attempts
 * (the allocations the decoder makes), or -1 with the reason in why. */
static inline int test_decode_alloc_failures(const uint8_t *data, size_t len, const char *name, int max, char *why,
                                      size_t whylen) {
    snprintf(why, whylen, "no successful decode in %d attempts", max);
    for (int k = 1; k <= max; k++) {
        fdd_image im;
        fdd_error err = {0};
        fdd_alloc_fail_at(k);
        fdd_status s = fdd_image_decode(data, len, name, &im, &err);
        fdd_alloc_fail_at(0);
        if (s == FDD_OK) {
            fdd_image_free(&im);
            snprintf(why, whylen, "%d allocations", k - 1);
            return k - 1;
        }
        if (s != FDD_E_NOMEM || test_decode_contract(s, &im, &err, name)) {
            snprintf(why, whylen, "allocation %d failed: status %d '%s'", k, (int)s, err.msg);
            return -1;
        }
    }
    return -1;
}

#endif

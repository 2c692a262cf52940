/* fdw_write.h — a minimal .fdw writer for tests (docs/format.md), so C tests
 * can build weight files from generated tensors.  The real writer is
 * convert/fdd-convert; this one exists only to make fixtures. */
#ifndef FDD_FDW_WRITE_H
#define FDD_FDW_WRITE_H

#include "fdd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int ndim;
    uint64_t dims[8];
    const float *data;      /* float32, written as dtype 0 */
} tw_tensor;

static inline void tw_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Builds the file in memory (caller frees *out); meta is "k=v\n" lines,
 * keys sorted.  Returns 0 on success. */
static inline int tw_build_fdw(const char *meta, const tw_tensor *t, size_t n, uint8_t **out, size_t *out_len) {
    size_t meta_len = strlen(meta), table = 0;
    for (size_t i = 0; i < n; i++) table += 2 + strlen(t[i].name) + 2 + 8 * (size_t)t[i].ndim + 16;
    size_t table_off = 128 + meta_len, data_off = (table_off + table + 63) & ~(size_t)63, pos = data_off;
    uint64_t *offs = malloc((n + 1) * sizeof *offs), *nbytes = malloc((n + 1) * sizeof *nbytes);
    for (size_t i = 0; i < n; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].dims[d];
        offs[i] = pos;
        nbytes[i] = numel * 4;
        pos = (pos + nbytes[i] + 63) & ~(size_t)63;
    }
    size_t size = n ? (size_t)(offs[n - 1] + nbytes[n - 1]) : data_off;
    uint8_t *f = calloc(1, size);
    memcpy(f, "\x89" "FDW\r\n\x1a\n", 8);
    tw_le(f + 8, 1, 4); tw_le(f + 12, 128, 4); tw_le(f + 16, 0x0A0B0C0D, 4); tw_le(f + 20, n, 4);
    tw_le(f + 24, 128, 8); tw_le(f + 32, meta_len, 8); tw_le(f + 40, table_off, 8);
    tw_le(f + 48, table, 8); tw_le(f + 56, data_off, 8); tw_le(f + 64, size - data_off, 8);
    tw_le(f + 72, size, 8);
    memcpy(f + 128, meta, meta_len);
    uint8_t *p = f + table_off;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(t[i].name);
        tw_le(p, nl, 2); memcpy(p + 2, t[i].name, nl); p += 2 + nl;
        p[0] = 0; p[1] = (uint8_t)t[i].ndim; p += 2;
        for (int d = 0; d < t[i].ndim; d++, p += 8) tw_le(p, t[i].dims[d], 8);
        tw_le(p, offs[i], 8); tw_le(p + 8, nbytes[i], 8); p += 16;
        for (uint64_t j = 0; j < nbytes[i] / 4; j++) {
            uint32_t b;
            memcpy(&b, &t[i].data[j], 4);
            tw_le(f + offs[i] + 4 * j, b, 4);
        }
    }
    fdd_sha256 s;
    fdd_sha256_init(&s);
    fdd_sha256_update(&s, f + 128, size - 128);
    fdd_sha256_final(&s, f + 80);
    free(offs);
    free(nbytes);
    *out = f;
    *out_len = size;
    return 0;
}

/* Recomputes the header checksum after a test has edited the bytes. */
static inline void tw_reseal(uint8_t *f, size_t len) {
    if (len < 128) return;
    fdd_sha256 s;
    fdd_sha256_init(&s);
    fdd_sha256_update(&s, f + 128, len - 128);
    fdd_sha256_final(&s, f + 80);
}

static inline int tw_write_file(const char *path, const uint8_t *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    int ok = fwrite(data, 1, len, fp) == len;
    return (fclose(fp) == 0 && ok) ? 0 : -1;
}

static inline int tw_write_fdw(const char *path, const char *meta, const tw_tensor *t, size_t n) {
    uint8_t *f;
    size_t len;
    if (tw_build_fdw(meta, t, n, &f, &len)) return -1;
    int r = tw_write_file(path, f, len);
    free(f);
    return r;
}

#endif

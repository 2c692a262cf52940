/* weights.c — the .fdw reader (docs/format.md).  The file is mapped
 * read-only; every count, offset and size is checked before use, and the
 * SHA-256 of everything after the header must match before any tensor is
 * handed out.  The file is untrusted input: no field is believed until
 * checked, and every error names the file (and the tensor). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_SIZE 128
#define MAX_TENSORS 1000000u
#define MAX_META ((uint64_t)16 << 20)
static const uint8_t MAGIC[8] = {0x89, 'F', 'D', 'W', '\r', '\n', 0x1a, '\n'};

struct fdd_weights {
    char *path;
    const uint8_t *base;
    size_t size;
    bool mapped;
    size_t nmeta;
    char **keys, **values;
    size_t n;
    fdd_tensor_info *t;
    struct name_ix { const char *name; size_t ix; } *by_name;   /* sorted by name */
    char sha_hex[65];
    void **owned;              /* converted copies handed out by bind */
    size_t nowned;
};

static const size_t dtype_size[FDD_DTYPE_COUNT] = {4, 2, 2};

const char *fdd_weights_path(const fdd_weights *w) { return w->path; }
size_t fdd_weights_count(const fdd_weights *w) { return w->n; }
const fdd_tensor_info *fdd_weights_at(const fdd_weights *w, size_t i) { return i < w->n ? &w->t[i] : NULL; }
const char *fdd_weights_sha256(const fdd_weights *w) { return w->sha_hex; }
size_t fdd_weights_meta_count(const fdd_weights *w) { return w->nmeta; }

void fdd_weights_meta_at(const fdd_weights *w, size_t i, const char **key, const char **value) {
    *key = i < w->nmeta ? w->keys[i] : NULL;
    *value = i < w->nmeta ? w->values[i] : NULL;
}

const char *fdd_weights_meta(const fdd_weights *w, const char *key) {
    size_t lo = 0, hi = w->nmeta;           /* keys are sorted (checked) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(w->keys[mid], key);
        if (c == 0) return w->values[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const struct name_ix *)a)->name, ((const struct name_ix *)b)->name);
}

const fdd_tensor_info *fdd_weights_find(const fdd_weights *w, const char *name) {
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(w->by_name[mid].name, name);
        if (c == 0) return &w->t[w->by_name[mid].ix];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

void fdd_weights_close(fdd_weights *w) {
    if (!w) return;
    if (w->base) {
        if (w->mapped) munmap((void *)w->base, w->size);
        else fdd_free((void *)w->base);
    }
    for (size_t i = 0; i < w->nmeta; i++) { fdd_free(w->keys[i]); fdd_free(w->values[i]); }
    fdd_free(w->keys);
    fdd_free(w->values);
    if (w->t)
        for (size_t i = 0; i < w->n; i++) fdd_free((void *)w->t[i].name);
    fdd_free(w->t);
    fdd_free(w->by_name);
    for (size_t i = 0; i < w->nowned; i++) fdd_aligned_free(w->owned[i]);
    fdd_free(w->owned);
    fdd_free(w->path);
    fdd_free(w);
}

static char *dup_range(const uint8_t *p, size_t n) {
    char *s = fdd_malloc(n + 1);
    if (s) { memcpy(s, p, n); s[n] = 0; }
    return s;
}

static bool key_char(uint8_t c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static fdd_status parse_meta(fdd_weights *w, const uint8_t *p, size_t len, fdd_error *err) {
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += p[i] == '\n';
    if (len && p[len - 1] != '\n')
        return fdd_fail(err, FDD_E_FORMAT, "%s: metadata does not end with a newline", w->path);
    w->keys = fdd_calloc(lines ? lines : 1, sizeof(char *));
    w->values = fdd_calloc(lines ? lines : 1, sizeof(char *));
    if (!w->keys || !w->values) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", w->path);
    size_t pos = 0;
    while (pos < len) {
        size_t eol = pos, eq = SIZE_MAX;
        while (p[eol] != '\n') {
            if (p[eol] == '=' && eq == SIZE_MAX) eq = eol;
            if (p[eol] == 0) return fdd_fail(err, FDD_E_FORMAT, "%s: NUL byte in metadata", w->path);
            eol++;
        }
        if (eq == SIZE_MAX || eq == pos)
            return fdd_fail(err, FDD_E_FORMAT, "%s: metadata line %zu is not key=value", w->path,
                            w->nmeta + 1);
        for (size_t i = pos; i < eq; i++)
            if (!key_char(p[i]))
                return fdd_fail(err, FDD_E_FORMAT, "%s: metadata key on line %zu has a bad character",
                                w->path, w->nmeta + 1);
        char *k = dup_range(p + pos, eq - pos), *v = dup_range(p + eq + 1, eol - eq - 1);
        w->keys[w->nmeta] = k;
        w->values[w->nmeta] = v;
        w->nmeta++;
        if (!k || !v) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", w->path);
        if (w->nmeta > 1 && strcmp(w->keys[w->nmeta - 2], k) >= 0)
            return fdd_fail(err, FDD_E_FORMAT, "%s: metadata key '%s' is duplicated or out of order",
                            w->path, k);
        pos = eol + 1;
    }
    return FDD_OK;
}

static fdd_status parse_table(fdd_weights *w, uint64_t off, uint64_t size, uint64_t data_off,
                              fdd_error *err) {
    const uint8_t *p = w->base + off, *end = p + size;
    uint64_t prev_end = data_off;
    for (size_t i = 0; i < w->n; i++) {
        fdd_tensor_info *t = &w->t[i];
        if (end - p < 2) goto truncated;
        size_t nl = fdd_le16(p);
        p += 2;
        if (nl == 0 || nl > 255) return fdd_fail(err, FDD_E_FORMAT, "%s: tensor %zu: bad name length %zu", w->path, i, nl);
        if ((size_t)(end - p) < nl + 2) goto truncated;
        for (size_t j = 0; j < nl; j++)
            if (p[j] < 0x21 || p[j] > 0x7e)
                return fdd_fail(err, FDD_E_FORMAT, "%s: tensor %zu: name has a non-printable byte", w->path, i);
        t->name = dup_range(p, nl);
        if (!t->name) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", w->path);
        p += nl;
        unsigned dt = p[0], nd = p[1];
        p += 2;
        if (dt >= FDD_DTYPE_COUNT)
            return fdd_fail(err, FDD_E_FORMAT, "%s: tensor '%s': unknown dtype %u", w->path, t->name, dt);
        if (nd > FDD_MAX_DIMS)
            return fdd_fail(err, FDD_E_FORMAT, "%s: tensor '%s': %u dimensions (at most %d)", w->path,
                            t->name, nd, FDD_MAX_DIMS);
        if ((size_t)(end - p) < 8 * (size_t)nd + 16) goto truncated;
        t->dtype = (fdd_dtype)dt;
        t->ndim = (int)nd;
        uint64_t numel = 1;
        for (unsigned d = 0; d < nd; d++, p += 8) {
            t->dims[d] = fdd_le64(p);
            if (t->dims[d] == 0 || !fdd_mul64_ok(numel, t->dims[d], &numel))
                return fdd_fail(err, FDD_E_FORMAT, "%s: tensor '%s': bad shape (zero dimension or element count overflows)",
                                w->path, t->name);
        }
        t->numel = numel;
        t->offset = fdd_le64(p);
        t->nbytes = fdd_le64(p + 8);
        p += 16;
        uint64_t want, tend;
        if (!fdd_mul64_ok(numel, dtype_size[dt], &want) || want != t->nbytes)
            return fdd_fail(err, FDD_E_FORMAT, "%s: tensor '%s': byte length %llu does not match its shape and dtype",
                            w->path, t->name, (unsigned long long)t->nbytes);
        if (t->offset % 64 != 0)
            return fdd_fail(err, FDD_E_FORMAT, "%s: tensor '%s': data offset %llu is not 64-byte aligned", w->path,
                            t->name, (unsigned long long)t->offset);
        if (!fdd_add64_ok(t->offset, t->nbytes, &tend) || t->offset < data_off || tend > w->size)
            return fdd_fail(err, FDD_E_FORMAT, "%s: tensor '%s': data [%llu, +%llu) lies outside the data region",
                            w->path, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes);
        if (t->offset < prev_end)
            return fdd_fail(err, FDD_E_FORMAT, "%s: tensor '%s': data overlaps the previous tensor or is out of order",
                            w->path, t->name);
        prev_end = tend;
        t->data = w->base + t->offset;
    }
    if (p != end)
        return fdd_fail(err, FDD_E_FORMAT, "%s: tensor table has %zu bytes after the last entry", w->path,
                        (size_t)(end - p));
    return FDD_OK;
truncated:
    return fdd_fail(err, FDD_E_FORMAT, "%s: tensor table is truncated", w->path);
}

static fdd_status load_bytes(fdd_weights *w, fdd_error *err) {
    int fd = open(w->path, O_RDONLY);
    if (fd < 0) return fdd_fail(err, FDD_E_IO, "%s: cannot open: %s", w->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fdd_fail(err, FDD_E_IO, "%s: not a regular file", w->path);
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX / 2) {
        close(fd);
        return fdd_fail(err, FDD_E_NOMEM, "%s: file too large", w->path);
    }
    w->size = (size_t)st.st_size;
    if (w->size < HEADER_SIZE) {
        close(fd);
        return fdd_fail(err, FDD_E_FORMAT, "%s: truncated: %zu bytes, a .fdw header alone is %d", w->path,
                        w->size, HEADER_SIZE);
    }
    void *m = mmap(NULL, w->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
        w->base = m;
        w->mapped = true;
        close(fd);
        return FDD_OK;
    }
    /* No mmap (some filesystems): read the file into aligned memory. */
    uint8_t *buf = fdd_aligned_alloc(w->size);
    if (!buf) { close(fd); return fdd_fail(err, FDD_E_NOMEM, "%s: cannot allocate %zu bytes", w->path, w->size); }
    size_t got = 0;
    while (got < w->size) {
        ssize_t r = read(fd, buf + got, w->size - got);
        if (r <= 0) {
            fdd_aligned_free(buf);
            close(fd);
            return fdd_fail(err, FDD_E_IO, "%s: read error", w->path);
        }
        got += (size_t)r;
    }
    close(fd);
    w->base = buf;
    return FDD_OK;
}

fdd_status fdd_weights_open(const char *path, fdd_weights **out, fdd_error *err) {
    *out = NULL;
    fdd_weights *w = fdd_calloc(1, sizeof *w);
    if (!w) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path);
    size_t pl = strlen(path);
    w->path = fdd_malloc(pl + 1);
    if (!w->path) { fdd_free(w); return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path); }
    memcpy(w->path, path, pl + 1);
    fdd_status s = load_bytes(w, err);
    if (s) goto fail;

    const uint8_t *h = w->base;
    s = FDD_E_FORMAT;
    if (memcmp(h, MAGIC, 8) != 0) { fdd_fail(err, s, "%s: not an fdd weight file (bad magic)", path); goto fail; }
    uint32_t version = fdd_le32(h + 8), hsize = fdd_le32(h + 12), bom = fdd_le32(h + 16);
    uint32_t n = fdd_le32(h + 20);
    uint64_t meta_off = fdd_le64(h + 24), meta_size = fdd_le64(h + 32), table_off = fdd_le64(h + 40);
    uint64_t table_size = fdd_le64(h + 48), data_off = fdd_le64(h + 56), data_size = fdd_le64(h + 64);
    uint64_t file_size = fdd_le64(h + 72);
    if (version != 1) { fdd_fail(err, s, "%s: format version %u, this fdd reads version 1", path, version); goto fail; }
    if (hsize != HEADER_SIZE || bom != 0x0A0B0C0Du) { fdd_fail(err, s, "%s: bad header size or byte-order mark", path); goto fail; }
    if (file_size != w->size) {
        fdd_fail(err, s, "%s: %s: the header says %llu bytes, the file has %zu", path,
                 w->size < file_size ? "truncated" : "trailing bytes", (unsigned long long)file_size, w->size);
        goto fail;
    }
    uint64_t t1, t2;
    if (n > MAX_TENSORS || meta_off != HEADER_SIZE || meta_size > MAX_META ||
        !fdd_add64_ok(meta_off, meta_size, &t1) || table_off != t1 ||
        !fdd_add64_ok(table_off, table_size, &t2) || data_off != ((t2 + 63) & ~(uint64_t)63) ||
        data_off > file_size || data_size != file_size - data_off) {
        fdd_fail(err, s, "%s: inconsistent section offsets or sizes in the header", path);
        goto fail;
    }
    for (int i = 112; i < 128; i++)
        if (h[i]) { fdd_fail(err, s, "%s: reserved header bytes are not zero", path); goto fail; }

    /* Integrity before interpretation of anything else. */
    fdd_sha256 sh;
    uint8_t digest[32];
    fdd_sha256_init(&sh);
    fdd_sha256_update(&sh, w->base + HEADER_SIZE, w->size - HEADER_SIZE);
    fdd_sha256_final(&sh, digest);
    if (memcmp(digest, h + 80, 32) != 0) {
        fdd_fail(err, s, "%s: SHA-256 mismatch: the file is corrupt or was modified", path);
        goto fail;
    }
    fdd_sha256_hex(digest, w->sha_hex);

    if ((s = parse_meta(w, w->base + meta_off, (size_t)meta_size, err))) goto fail;
    w->n = n;
    w->t = fdd_calloc(n ? n : 1, sizeof *w->t);
    w->by_name = fdd_malloc((n ? n : 1) * sizeof *w->by_name);
    if (!w->t || !w->by_name) { s = fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path); goto fail; }
    if ((s = parse_table(w, table_off, table_size, data_off, err))) goto fail;
    for (size_t i = 0; i < n; i++) w->by_name[i] = (struct name_ix){w->t[i].name, i};
    qsort(w->by_name, n, sizeof *w->by_name, cmp_name);
    for (size_t i = 1; i < n; i++)
        if (strcmp(w->by_name[i - 1].name, w->by_name[i].name) == 0) {
            s = fdd_fail(err, FDD_E_FORMAT, "%s: tensor '%s' appears twice", path, w->by_name[i].name);
            goto fail;
        }
    *out = w;
    return FDD_OK;
fail:
    fdd_weights_close(w);
    return s;
}

/* ------------------------------------------------------------------ bind */

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else {                         /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 1024));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 1023) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static bool host_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static void fmt_shape(char *buf, size_t cap, int nd, const uint64_t *dims) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < nd && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ", %llu" : "%llu", (unsigned long long)dims[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static fdd_status as_float(fdd_weights *w, const fdd_tensor_info *t, const float **dest, fdd_error *err) {
    if (t->dtype == FDD_F32 && host_little_endian()) {
        *dest = t->data;
        return FDD_OK;
    }
    void **owned = fdd_realloc(w->owned, (w->nowned + 1) * sizeof *owned);
    if (!owned) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", w->path);
    w->owned = owned;
    float *f = fdd_aligned_alloc((size_t)t->numel * sizeof(float));
    if (!f) return fdd_fail(err, FDD_E_NOMEM, "%s: tensor '%s': out of memory", w->path, t->name);
    w->owned[w->nowned++] = f;
    const uint8_t *p = t->data;
    for (uint64_t i = 0; i < t->numel; i++) {
        uint32_t bits;
        if (t->dtype == FDD_F32) bits = fdd_le32(p + 4 * i);
        else if (t->dtype == FDD_BF16) bits = (uint32_t)fdd_le16(p + 2 * i) << 16;
        else { f[i] = half_to_float(fdd_le16(p + 2 * i)); continue; }
        memcpy(&f[i], &bits, 4);
    }
    *dest = f;
    return FDD_OK;
}

fdd_status fdd_weights_bind(fdd_weights *w, const fdd_tensor_spec *specs, size_t n, fdd_error *err) {
    bool *used = fdd_calloc(w->n ? w->n : 1, 1);
    if (!used) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", w->path);
    fdd_status s = FDD_OK;
    for (size_t i = 0; i < n && !s; i++) {
        const fdd_tensor_spec *sp = &specs[i];
        const fdd_tensor_info *t = fdd_weights_find(w, sp->name);
        if (!t) {
            const char *arch = fdd_weights_meta(w, "arch");
            s = fdd_fail(err, FDD_E_FORMAT, "%s: missing tensor '%s' (needed by arch %s)", w->path, sp->name,
                         arch ? arch : "?");
            break;
        }
        bool same = t->ndim == sp->ndim;
        for (int d = 0; same && d < sp->ndim; d++) same = t->dims[d] == sp->dims[d];
        if (!same) {
            char want[128], got[128];
            fmt_shape(want, sizeof want, sp->ndim, sp->dims);
            fmt_shape(got, sizeof got, t->ndim, t->dims);
            s = fdd_fail(err, FDD_E_FORMAT, "%s: tensor '%s' has shape %s, the architecture needs %s", w->path,
                         sp->name, got, want);
            break;
        }
        used[t - w->t] = true;
        if (sp->dest) s = as_float(w, t, sp->dest, err);
    }
    for (size_t i = 0; i < w->n && !s; i++)
        if (!used[i])
            s = fdd_fail(err, FDD_E_FORMAT, "%s: unexpected tensor '%s' (not part of arch %s)", w->path,
                         w->t[i].name, fdd_weights_meta(w, "arch") ? fdd_weights_meta(w, "arch") : "?");
    fdd_free(used);
    return s;
}

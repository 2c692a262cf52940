/* npy.c — NumPy .npy and .npz files (format: numpy lib/format.py; zip:
 * PKWARE APPNOTE), the carrier of FID statistics (mu, sigma) and features.
 *
 * Reading accepts what numpy, pytorch-fid and clean-fid write: float32 or
 * float64 in either byte order, C or Fortran order, .npz members stored or
 * deflated, with or without ZIP64 extra fields.  Every size comes from the
 * file and goes through checked arithmetic before it is used. */
#include "stats.h"
#include "image.h"   /* fdd_inflate, fdd_crc32 */

#include <stdio.h>

#define NPY_MAX_FILE ((size_t)1 << 40)   /* whole-file reads: 1 TiB sanity cap */

size_t fdd_npy_type_size(fdd_npy_type t) {
    switch (t) {
    case FDD_NPY_F4: return 4;
    case FDD_NPY_F8: return 8;
    case FDD_NPY_I8: return 8;
    case FDD_NPY_U1: return 1;
    }
    return 0;
}

static const char *type_descr(fdd_npy_type t) {
    switch (t) {
    case FDD_NPY_F4: return "<f4";
    case FDD_NPY_F8: return "<f8";
    case FDD_NPY_I8: return "<i8";
    case FDD_NPY_U1: return "|u1";
    }
    return "?";
}

void fdd_npy_array_free(fdd_npy_array *a) {
    if (!a) return;
    fdd_free(a->data);
    memset(a, 0, sizeof *a);
}

static int host_is_little(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ------------------------------------------------------- header parsing */

/* A cursor over the header's Python dict literal. */
typedef struct hcur {
    const char *p, *end;
} hcur;

static void skip_ws(hcur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int eat(hcur *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) { c->p++; return 1; }
    return 0;
}

/* A quoted string without escapes (all numpy writes); copied into buf. */
static int parse_str(hcur *c, char *buf, size_t cap) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) return 0;
        buf[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    buf[n] = 0;
    return 1;
}

static int parse_word(hcur *c, const char *w) {
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) { c->p += n; return 1; }
    return 0;
}

/* (), (n,), (a, b), ... with non-negative decimal integers. */
static int parse_shape(hcur *c, fdd_npy_array *a) {
    if (!eat(c, '(')) return 0;
    a->ndim = 0;
    for (;;) {
        skip_ws(c);
        if (eat(c, ')')) return 1;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return 0;
        uint64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (!fdd_mul64_ok(v, 10, &v) || !fdd_add64_ok(v, (uint64_t)(*c->p - '0'), &v)) return 0;
            c->p++;
        }
        if (c->p < c->end && *c->p == 'L') c->p++;     /* Python 2 longs */
        if (a->ndim >= FDD_NPY_MAX_DIMS) return -1;
        a->shape[a->ndim++] = v;
        if (eat(c, ',')) continue;
        if (eat(c, ')')) return 1;
        return 0;
    }
}

static fdd_status parse_descr(const char *d, const char *name, fdd_npy_type *t, int *swap,
                              fdd_error *err) {
    int little = host_is_little();
    char order = d[0];
    const char *code = d + 1;
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unsupported dtype '%s' (want float32 or float64)",
                        name, d);
    if (strcmp(code, "f4") == 0) *t = FDD_NPY_F4;
    else if (strcmp(code, "f8") == 0) *t = FDD_NPY_F8;
    else if (strcmp(code, "i8") == 0) *t = FDD_NPY_I8;
    else if (strcmp(code, "u1") == 0) *t = FDD_NPY_U1;
    else
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unsupported dtype '%s' (want float32 or float64)",
                        name, d);
    if (*t != FDD_NPY_U1 && order == '|')
        return fdd_fail(err, FDD_E_FORMAT, "%s: dtype '%s' has no byte order", name, d);
    int file_little = order == '<' || (order == '=' && little) || order == '|';
    *swap = (*t != FDD_NPY_U1) && (file_little != little);
    return FDD_OK;
}

static void swap_bytes(uint8_t *p, size_t count, size_t esz) {
    for (size_t i = 0; i < count; i++, p += esz)
        for (size_t a = 0, b = esz - 1; a < b; a++, b--) {
            uint8_t t = p[a]; p[a] = p[b]; p[b] = t;
        }
}

fdd_status fdd_npy_parse(const uint8_t *buf, size_t len, const char *name, fdd_npy_array *out,
                         fdd_error *err) {
    memset(out, 0, sizeof *out);
    static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    if (len < 10 || memcmp(buf, magic, 6) != 0)
        return fdd_fail(err, FDD_E_FORMAT, "%s: not a .npy array (bad magic)", name);
    unsigned major = buf[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = fdd_le16(buf + 8);
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated .npy header", name);
        hlen = fdd_le32(buf + 8);
        hstart = 12;
    } else {
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: .npy format version %u not supported", name, major);
    }
    size_t data_off;
    if (!fdd_add_ok(hstart, hlen, &data_off) || data_off > len)
        return fdd_fail(err, FDD_E_FORMAT, "%s: truncated .npy header", name);

    hcur c = {(const char *)buf + hstart, (const char *)buf + data_off};
    int have_descr = 0, have_fo = 0, have_shape = 0, fortran = 0;
    char descr[16] = "";
    if (!eat(&c, '{')) return fdd_fail(err, FDD_E_FORMAT, "%s: malformed .npy header", name);
    for (;;) {
        if (eat(&c, '}')) break;
        char key[32];
        if (!parse_str(&c, key, sizeof key) || !eat(&c, ':'))
            return fdd_fail(err, FDD_E_FORMAT, "%s: malformed .npy header", name);
        if (strcmp(key, "descr") == 0 && !have_descr) {
            if (!parse_str(&c, descr, sizeof descr))
                return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unsupported dtype (structured or too long)", name);
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_fo) {
            if (parse_word(&c, "True")) fortran = 1;
            else if (parse_word(&c, "False")) fortran = 0;
            else return fdd_fail(err, FDD_E_FORMAT, "%s: malformed fortran_order", name);
            have_fo = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            int r = parse_shape(&c, out);
            if (r < 0)
                return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: more than %d dimensions", name, FDD_NPY_MAX_DIMS);
            if (r == 0) return fdd_fail(err, FDD_E_FORMAT, "%s: malformed shape", name);
            have_shape = 1;
        } else {
            return fdd_fail(err, FDD_E_FORMAT, "%s: unexpected or repeated key '%s' in .npy header", name, key);
        }
        if (!eat(&c, ',')) {
            if (eat(&c, '}')) break;
            return fdd_fail(err, FDD_E_FORMAT, "%s: malformed .npy header", name);
        }
    }
    if (!have_descr || !have_fo || !have_shape)
        return fdd_fail(err, FDD_E_FORMAT, "%s: .npy header lacks descr, fortran_order or shape", name);

    int swap = 0;
    fdd_status st = parse_descr(descr, name, &out->type, &swap, err);
    if (st) return st;
    size_t esz = fdd_npy_type_size(out->type);
    size_t count = 1, nbytes;
    for (int i = 0; i < out->ndim; i++)
        if (out->shape[i] > SIZE_MAX || !fdd_mul_ok(count, (size_t)out->shape[i], &count))
            return fdd_fail(err, FDD_E_FORMAT, "%s: shape too large", name);
    if (!fdd_mul_ok(count, esz, &nbytes))
        return fdd_fail(err, FDD_E_FORMAT, "%s: shape too large", name);
    if (nbytes > len - data_off)
        return fdd_fail(err, FDD_E_FORMAT, "%s: truncated data (%zu of %zu bytes)", name,
                        len - data_off, nbytes);
    out->count = count;
    out->data = fdd_malloc(nbytes);
    if (!out->data) return fdd_fail(err, FDD_E_NOMEM, "%s: cannot allocate %zu bytes", name, nbytes);
    const uint8_t *src = buf + data_off;
    if (fortran && out->ndim > 1) {
        /* Column-major -> row-major: element (i0..ik) sits at sum i_j * stride_j
         * with stride_0 = 1 in the file. */
        uint64_t idx[FDD_NPY_MAX_DIMS] = {0};
        size_t fstride[FDD_NPY_MAX_DIMS];
        fstride[0] = 1;
        for (int j = 1; j < out->ndim; j++) fstride[j] = fstride[j - 1] * (size_t)out->shape[j - 1];
        uint8_t *dst = out->data;
        for (size_t e = 0; e < count; e++) {
            size_t off = 0;
            for (int j = 0; j < out->ndim; j++) off += (size_t)idx[j] * fstride[j];
            memcpy(dst + e * esz, src + off * esz, esz);
            for (int j = out->ndim - 1; j >= 0; j--) {   /* C-order odometer */
                if (++idx[j] < out->shape[j]) break;
                idx[j] = 0;
            }
        }
    } else {
        memcpy(out->data, src, nbytes);
    }
    if (swap) swap_bytes(out->data, count, esz);
    return FDD_OK;
}

fdd_status fdd_npy_read(const char *path, fdd_npy_array *out, fdd_error *err) {
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    fdd_status st = fdd_read_file(path, NPY_MAX_FILE, &buf, &len, err);
    if (st) return st;
    st = fdd_npy_parse(buf, len, path, out, err);
    fdd_free(buf);
    return st;
}

/* ------------------------------------------------------------ .npz read */

typedef struct npz_member {
    char *name;                     /* points into the file buffer, not NUL-terminated */
    size_t name_len;
    unsigned method;
    uint32_t crc;
    uint64_t csize, usize, local_off;
} npz_member;

struct fdd_npz {
    char *path;
    uint8_t *buf;
    size_t len;
    npz_member *m;
    size_t n;
};

const char *fdd_npz_path(const fdd_npz *z) { return z->path; }

void fdd_npz_close(fdd_npz *z) {
    if (!z) return;
    fdd_free(z->path);
    fdd_free(z->buf);
    fdd_free(z->m);
    fdd_free(z);
}

/* ZIP64 extended information (id 1): the 64-bit values of the fields whose
 * 32-bit slot holds 0xFFFFFFFF, in the order usize, csize, offset. */
static int zip64_extra(const uint8_t *ex, size_t exlen, uint64_t *usize, uint64_t *csize,
                       uint64_t *off) {
    size_t i = 0;
    while (i + 4 <= exlen) {
        unsigned id = fdd_le16(ex + i), sz = fdd_le16(ex + i + 2);
        if (sz > exlen - i - 4) return 0;
        if (id == 1) {
            const uint8_t *p = ex + i + 4;
            size_t left = sz;
            uint64_t *f[3] = {usize, csize, off};
            for (int k = 0; k < 3; k++) {
                if (*f[k] != 0xFFFFFFFFu) continue;
                if (left < 8) return 0;
                *f[k] = fdd_le64(p);
                p += 8;
                left -= 8;
            }
            return 1;
        }
        i += 4 + (size_t)sz;
    }
    return 1;
}

fdd_status fdd_npz_open(const char *path, fdd_npz **out, fdd_error *err) {
    *out = NULL;
    fdd_npz *z = fdd_calloc(1, sizeof *z);
    size_t plen = strlen(path);
    if (!z || !(z->path = fdd_malloc(plen + 1))) {
        fdd_free(z);
        return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path);
    }
    memcpy(z->path, path, plen + 1);
    fdd_status st = fdd_read_file(path, NPY_MAX_FILE, &z->buf, &z->len, err);
    if (st) { fdd_npz_close(z); return st; }
    const uint8_t *b = z->buf;
    size_t len = z->len;

    /* End of central directory: the last "PK\5\6" whose comment ends the file. */
    size_t eocd = SIZE_MAX;
    if (len >= 22) {
        size_t lo = len - 22 > 65535 ? len - 22 - 65535 : 0;
        for (size_t i = len - 22 + 1; i-- > lo;) {
            if (fdd_le32(b + i) == 0x06054b50u && (size_t)fdd_le16(b + i + 20) == len - 22 - i) {
                eocd = i;
                break;
            }
        }
    }
    if (eocd == SIZE_MAX) {
        fdd_npz_close(z);
        return fdd_fail(err, FDD_E_FORMAT, "%s: not a .npz (zip) file", path);
    }
    uint64_t nent = fdd_le16(b + eocd + 10), cdsize = fdd_le32(b + eocd + 12),
             cdoff = fdd_le32(b + eocd + 16);
    if (fdd_le16(b + eocd + 4) != 0 || fdd_le16(b + eocd + 6) != 0 ||
        fdd_le16(b + eocd + 8) != fdd_le16(b + eocd + 10)) {
        fdd_npz_close(z);
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: multi-disk zip archives are not supported", path);
    }
    if (nent == 0xFFFF || cdsize == 0xFFFFFFFFu || cdoff == 0xFFFFFFFFu) {
        /* ZIP64 end of central directory, found through its locator. */
        if (eocd < 20 || fdd_le32(b + eocd - 20) != 0x07064b50u) {
            fdd_npz_close(z);
            return fdd_fail(err, FDD_E_FORMAT, "%s: missing ZIP64 end-of-directory locator", path);
        }
        uint64_t z64 = fdd_le64(b + eocd - 20 + 8);
        if (z64 > len || len - z64 < 56 || fdd_le32(b + z64) != 0x06064b50u) {
            fdd_npz_close(z);
            return fdd_fail(err, FDD_E_FORMAT, "%s: bad ZIP64 end-of-directory record", path);
        }
        nent = fdd_le64(b + z64 + 32);
        cdsize = fdd_le64(b + z64 + 40);
        cdoff = fdd_le64(b + z64 + 48);
    }
    if (cdoff > len || cdsize > len - cdoff || nent > cdsize / 46 + 1) {
        fdd_npz_close(z);
        return fdd_fail(err, FDD_E_FORMAT, "%s: central directory out of bounds", path);
    }
    z->m = fdd_calloc(nent ? (size_t)nent : 1, sizeof *z->m);
    if (!z->m) {
        fdd_npz_close(z);
        return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path);
    }
    size_t p = (size_t)cdoff, cdend = (size_t)(cdoff + cdsize);
    for (uint64_t k = 0; k < nent; k++) {
        if (cdend - p < 46 || fdd_le32(b + p) != 0x02014b50u) {
            fdd_npz_close(z);
            return fdd_fail(err, FDD_E_FORMAT, "%s: corrupt central directory entry %llu", path,
                            (unsigned long long)k);
        }
        npz_member *m = &z->m[z->n];
        unsigned flags = fdd_le16(b + p + 8);
        m->method = fdd_le16(b + p + 10);
        m->crc = fdd_le32(b + p + 16);
        m->csize = fdd_le32(b + p + 20);
        m->usize = fdd_le32(b + p + 24);
        size_t nl = fdd_le16(b + p + 28), el = fdd_le16(b + p + 30), cl = fdd_le16(b + p + 32);
        m->local_off = fdd_le32(b + p + 42);
        if (cdend - p - 46 < nl + el + cl) {
            fdd_npz_close(z);
            return fdd_fail(err, FDD_E_FORMAT, "%s: corrupt central directory entry %llu", path,
                            (unsigned long long)k);
        }
        m->name = (char *)b + p + 46;
        m->name_len = nl;
        if (!zip64_extra(b + p + 46 + nl, el, &m->usize, &m->csize, &m->local_off)) {
            fdd_npz_close(z);
            return fdd_fail(err, FDD_E_FORMAT, "%s: corrupt ZIP64 extra field", path);
        }
        if (flags & 1) {
            fdd_npz_close(z);
            return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: encrypted zip members are not supported", path);
        }
        z->n++;
        p += 46 + nl + el + cl;
    }
    *out = z;
    return FDD_OK;
}

static const npz_member *find_member(const fdd_npz *z, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 0; i < z->n; i++) {
        const npz_member *m = &z->m[i];
        if (m->name_len == kl + 4 && memcmp(m->name, key, kl) == 0 &&
            memcmp(m->name + kl, ".npy", 4) == 0)
            return m;
    }
    return NULL;
}

int fdd_npz_has(const fdd_npz *z, const char *key) { return find_member(z, key) != NULL; }

fdd_status fdd_npz_get(const fdd_npz *z, const char *key, fdd_npy_array *out, fdd_error *err) {
    memset(out, 0, sizeof *out);
    char name[600];
    snprintf(name, sizeof name, "%s: %s", z->path, key);
    const npz_member *m = find_member(z, key);
    if (!m) return fdd_fail(err, FDD_E_FORMAT, "%s: no array '%s'", z->path, key);
    const uint8_t *b = z->buf;
    uint64_t lo = m->local_off;
    if (lo > z->len || z->len - lo < 30 || fdd_le32(b + lo) != 0x04034b50u)
        return fdd_fail(err, FDD_E_FORMAT, "%s: bad local zip header", name);
    uint64_t data = lo + 30 + (uint64_t)fdd_le16(b + lo + 26) + fdd_le16(b + lo + 28);
    if (data > z->len || m->csize > z->len - data)
        return fdd_fail(err, FDD_E_FORMAT, "%s: member data out of bounds", name);
    if (m->usize > SIZE_MAX - 1)
        return fdd_fail(err, FDD_E_NOMEM, "%s: member too large", name);
    const uint8_t *src = b + data;
    uint8_t *tmp = NULL;
    size_t ulen = (size_t)m->usize;
    if (m->method == 0) {
        if (m->csize != m->usize)
            return fdd_fail(err, FDD_E_FORMAT, "%s: stored member sizes differ", name);
    } else if (m->method == 8) {
        tmp = fdd_malloc(ulen ? ulen : 1);
        if (!tmp) return fdd_fail(err, FDD_E_NOMEM, "%s: cannot allocate %zu bytes", name, ulen);
        size_t consumed, produced;
        fdd_status st = fdd_inflate(src, (size_t)m->csize, tmp, ulen, &consumed, &produced, name, err);
        if (st) { fdd_free(tmp); return st; }
        if (produced != ulen) {
            fdd_free(tmp);
            return fdd_fail(err, FDD_E_FORMAT, "%s: inflated size %zu, expected %zu", name, produced, ulen);
        }
        src = tmp;
    } else {
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: zip compression method %u not supported", name,
                        m->method);
    }
    fdd_status st;
    if (fdd_crc32(0, src, ulen) != m->crc)
        st = fdd_fail(err, FDD_E_FORMAT, "%s: CRC-32 mismatch (corrupt member)", name);
    else
        st = fdd_npy_parse(src, ulen, name, out, err);
    fdd_free(tmp);
    return st;
}

/* ------------------------------------------------------------- writing */

/* The .npy header of one array, padded so that the data starts at a
 * multiple of 64 bytes (numpy's own layout).  Returns its length. */
static size_t npy_header(const fdd_npy_out *a, uint8_t *h, size_t cap) {
    char dict[256], shape[128];
    size_t sl = 0;
    shape[0] = 0;
    for (int i = 0; i < a->ndim; i++)
        sl += (size_t)snprintf(shape + sl, sizeof shape - sl, "%s%llu", i ? ", " : "",
                               (unsigned long long)a->shape[i]);
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s%s), }",
                      type_descr(a->type), shape, a->ndim == 1 ? "," : "");
    size_t total = 10 + (size_t)dl + 1;
    total = (total + 63) & ~(size_t)63;
    if (total > cap) return 0;
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    size_t hl = total - 10;
    h[8] = (uint8_t)hl;
    h[9] = (uint8_t)(hl >> 8);
    memcpy(h + 10, dict, (size_t)dl);
    memset(h + 10 + dl, ' ', total - 10 - (size_t)dl - 1);
    h[total - 1] = '\n';
    return total;
}

static fdd_status out_bytes(const fdd_npy_out *a, size_t *nbytes, fdd_error *err, const char *path) {
    size_t count = 1;
    if (a->ndim < 0 || a->ndim > FDD_NPY_MAX_DIMS)
        return fdd_fail(err, FDD_E_ARG, "%s: %s: bad number of dimensions", path, a->key);
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] > SIZE_MAX || !fdd_mul_ok(count, (size_t)a->shape[i], &count))
            return fdd_fail(err, FDD_E_ARG, "%s: %s: array too large", path, a->key);
    if (!fdd_mul_ok(count, fdd_npy_type_size(a->type), nbytes))
        return fdd_fail(err, FDD_E_ARG, "%s: %s: array too large", path, a->key);
    return FDD_OK;
}

/* Streams an array's data in little-endian order through fn, in chunks
 * (a byte swap only on big-endian hosts). */
typedef fdd_status (*sink_fn)(void *ctx, const uint8_t *p, size_t n, fdd_error *err);

static fdd_status stream_data(const fdd_npy_out *a, size_t nbytes, sink_fn fn, void *ctx,
                              fdd_error *err) {
    size_t esz = fdd_npy_type_size(a->type);
    if (host_is_little() || esz == 1) return fn(ctx, a->data, nbytes, err);
    uint8_t chunk[8192];
    const uint8_t *src = a->data;
    for (size_t off = 0; off < nbytes; off += sizeof chunk) {
        size_t n = nbytes - off < sizeof chunk ? nbytes - off : sizeof chunk;
        memcpy(chunk, src + off, n);
        swap_bytes(chunk, n / esz, esz);
        fdd_status st = fn(ctx, chunk, n, err);
        if (st) return st;
    }
    return FDD_OK;
}

static fdd_status crc_sink(void *ctx, const uint8_t *p, size_t n, fdd_error *err) {
    (void)err;
    *(uint32_t *)ctx = fdd_crc32(*(uint32_t *)ctx, p, n);
    return FDD_OK;
}

static fdd_status file_sink(void *ctx, const uint8_t *p, size_t n, fdd_error *err) {
    return fdd_outfile_write(ctx, p, n, err);
}

fdd_status fdd_npy_write(const char *path, const fdd_npy_out *a, fdd_error *err) {
    size_t nbytes;
    uint8_t h[512];
    fdd_status st = out_bytes(a, &nbytes, err, path);
    if (st) return st;
    size_t hl = npy_header(a, h, sizeof h);
    if (!hl) return fdd_fail(err, FDD_E_ARG, "%s: header too long", path);
    fdd_outfile o;
    if ((st = fdd_outfile_open(&o, path, err))) return st;
    if ((st = fdd_outfile_write(&o, h, hl, err)) || (st = stream_data(a, nbytes, file_sink, &o, err))) {
        fdd_outfile_abort(&o);
        return st;
    }
    return fdd_outfile_commit(&o, err);
}

/* Fixed DOS time stamp (1980-01-01 00:00): output bytes do not depend on the clock. */
#define ZIP_DOS_TIME 0
#define ZIP_DOS_DATE 0x21

fdd_status fdd_npz_write(const char *path, const fdd_npy_out *arrays, size_t n, fdd_error *err) {
    if (n == 0 || n > 1000) return fdd_fail(err, FDD_E_ARG, "%s: bad number of arrays", path);
    uint8_t *cd = fdd_malloc(n * (46 + 64));
    if (!cd) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path);
    size_t cdl = 0;
    uint64_t off = 0;
    fdd_outfile o;
    fdd_status st = fdd_outfile_open(&o, path, err);
    if (st) { fdd_free(cd); return st; }
    for (size_t i = 0; i < n; i++) {
        const fdd_npy_out *a = &arrays[i];
        size_t nbytes, kl = strlen(a->key);
        uint8_t h[512], lh[30 + 64];
        if ((st = out_bytes(a, &nbytes, err, path))) goto fail;
        size_t hl = npy_header(a, h, sizeof h);
        if (!hl || kl == 0 || kl + 4 > 64) {
            st = fdd_fail(err, FDD_E_ARG, "%s: bad array name or header", path);
            goto fail;
        }
        uint64_t usize = (uint64_t)hl + nbytes;
        /* Without ZIP64 every size and offset must fit in 32 bits. */
        if (usize >= 0xFFFFFFFFu || off + usize + 30 + kl + 4 >= 0xFFFFFFFFu) {
            st = fdd_fail(err, FDD_E_UNSUPPORTED, "%s: %s: archive would exceed 4 GiB", path, a->key);
            goto fail;
        }
        uint32_t crc = fdd_crc32(0, h, hl);
        stream_data(a, nbytes, crc_sink, &crc, err);
        uint8_t *L = lh;
        fdd_put_le32(L, 0x04034b50u);
        L[4] = 20; L[5] = 0;                       /* version needed 2.0 */
        L[6] = L[7] = 0;                           /* flags */
        L[8] = L[9] = 0;                           /* stored */
        L[10] = ZIP_DOS_TIME & 0xff; L[11] = ZIP_DOS_TIME >> 8;
        L[12] = ZIP_DOS_DATE & 0xff; L[13] = ZIP_DOS_DATE >> 8;
        fdd_put_le32(L + 14, crc);
        fdd_put_le32(L + 18, (uint32_t)usize);
        fdd_put_le32(L + 22, (uint32_t)usize);
        L[26] = (uint8_t)(kl + 4); L[27] = 0;
        L[28] = L[29] = 0;
        memcpy(L + 30, a->key, kl);
        memcpy(L + 30 + kl, ".npy", 4);
        uint8_t *C = cd + cdl;
        fdd_put_le32(C, 0x02014b50u);
        C[4] = 20; C[5] = 3;                       /* made by: 2.0, Unix */
        memcpy(C + 6, L + 4, 26);                  /* same fields as the local header */
        C[30] = C[31] = 0;                         /* extra */
        C[32] = C[33] = 0;                         /* comment */
        C[34] = C[35] = 0;                         /* disk */
        C[36] = C[37] = 0;                         /* internal attributes */
        fdd_put_le32(C + 38, 0600u << 16);         /* external: -rw------- */
        fdd_put_le32(C + 42, (uint32_t)off);
        memcpy(C + 46, a->key, kl);
        memcpy(C + 46 + kl, ".npy", 4);
        cdl += 46 + kl + 4;
        if ((st = fdd_outfile_write(&o, lh, 30 + kl + 4, err)) ||
            (st = fdd_outfile_write(&o, h, hl, err)) ||
            (st = stream_data(a, nbytes, file_sink, &o, err)))
            goto fail;
        off += 30 + kl + 4 + usize;
    }
    {
        uint8_t e[22] = {0};
        fdd_put_le32(e, 0x06054b50u);
        e[8] = e[10] = (uint8_t)n;
        e[9] = e[11] = (uint8_t)(n >> 8);
        fdd_put_le32(e + 12, (uint32_t)cdl);
        fdd_put_le32(e + 16, (uint32_t)off);
        if ((st = fdd_outfile_write(&o, cd, cdl, err)) || (st = fdd_outfile_write(&o, e, 22, err)))
            goto fail;
    }
    fdd_free(cd);
    return fdd_outfile_commit(&o, err);
fail:
    fdd_free(cd);
    fdd_outfile_abort(&o);
    return st;
}

/* ------------------------------------------------------ features (.npy) */

fdd_status fdd_features_write_npy(const char *path, const float *feats, size_t n, size_t dim,
                                  fdd_error *err) {
    fdd_npy_out a = {"features", FDD_NPY_F4, 2, {n, dim}, feats};
    return fdd_npy_write(path, &a, err);
}

fdd_status fdd_features_read_npy(const char *path, float **feats, size_t *n, size_t *dim,
                                 fdd_error *err) {
    *feats = NULL;
    *n = *dim = 0;
    fdd_npy_array a;
    fdd_status st = fdd_npy_read(path, &a, err);
    if (st) return st;
    if ((a.type != FDD_NPY_F4 && a.type != FDD_NPY_F8) || a.ndim != 2 || a.shape[1] == 0) {
        fdd_npy_array_free(&a);
        return fdd_fail(err, FDD_E_FORMAT, "%s: features must be a float32/float64 array [n, dim]", path);
    }
    if (a.type == FDD_NPY_F8) {
        float *f = fdd_malloc(a.count * sizeof(float) + 1);
        if (!f) {
            fdd_npy_array_free(&a);
            return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path);
        }
        for (size_t i = 0; i < a.count; i++) f[i] = (float)((const double *)a.data)[i];
        fdd_free(a.data);
        a.data = f;
    }
    *feats = a.data;
    *n = (size_t)a.shape[0];
    *dim = (size_t)a.shape[1];
    return FDD_OK;
}

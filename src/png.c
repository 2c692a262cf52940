/* png.c — PNG decoder giving exactly Pillow 9.4's Image.open(f).convert("RGB")
 * (imaging.md §4).  Chunk handling mirrors Pillow's PngImagePlugin where it
 * decides between success and failure:
 *  - chunks before the first IDAT must be complete with a correct CRC;
 *  - IDAT CRCs are not checked, and consecutive IDAT chunks form the zlib
 *    stream; decoding stops once every scanline is produced (no Adler-32);
 *  - after the image, chunks up to IEND must be complete (Pillow reads them).
 * Pixel rules: 16-bit samples keep their MSB, except 16-bit gray which
 * saturates (min(v, 255)); low-depth gray is scaled (x255, x85, x17); palette
 * indices without a PLTE entry give the gray ramp (i, i, i) as in Pillow < 10.1;
 * alpha and tRNS are dropped. */
#include "image.h"

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

typedef struct {
    uint32_t w, h;
    unsigned depth, ctype, channels, interlace;
    uint8_t pal[256 * 3];
} png_info;

typedef struct {
    size_t data, len; /* file offset and available length of an IDAT payload */
    size_t next;      /* file offset of the chunk after it (may exceed the file) */
} idat_seg;

/* Pillow's is_cid: four [A-Za-z0-9_] bytes. */
static bool is_cid(const uint8_t *t) {
    for (int i = 0; i < 4; i++) {
        uint8_t c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static bool is_type(const uint8_t *t, const char *s) { return memcmp(t, s, 4) == 0; }

/* Offset of the chunk after the one at q, saturating instead of wrapping. */
static size_t chunk_next(size_t q, uint32_t clen) {
    uint64_t n = (uint64_t)q + 12 + clen;
    return n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

static fdd_status parse_ihdr(png_info *P, const uint8_t *s, uint32_t n, const char *name,
                             fdd_error *err) {
    if (n < 13) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated IHDR chunk", name);
    P->w = fdd_be32(s);
    P->h = fdd_be32(s + 4);
    P->depth = s[8];
    P->ctype = s[9];
    /* Pillow ignores the compression byte and takes any non-zero interlace
     * byte as Adam7; a non-zero filter method is an error. */
    P->interlace = s[12] != 0;
    if (s[11]) return fdd_fail(err, FDD_E_FORMAT, "%s: unknown PNG filter method %u", name, s[11]);
    unsigned d = P->depth;
    bool ok;
    switch (P->ctype) {
    case 0: ok = d == 1 || d == 2 || d == 4 || d == 8 || d == 16; P->channels = 1; break;
    case 2: ok = d == 8 || d == 16; P->channels = 3; break;
    case 3: ok = d == 1 || d == 2 || d == 4 || d == 8; P->channels = 1; break;
    case 4: ok = d == 8 || d == 16; P->channels = 2; break;
    case 6: ok = d == 8 || d == 16; P->channels = 4; break;
    default: ok = false; P->channels = 0;
    }
    if (!ok)
        return fdd_fail(err, FDD_E_FORMAT, "%s: invalid PNG bit depth %u for colour type %u", name, d,
                        P->ctype);
    return FDD_OK;
}

/* ------------------------------------------------------------- unfiltering */

/* Paeth predictor without branches (the tie order a, b, c is kept):
 * p - a = b - c, p - b = a - c, p - c = (b - c) + (a - c). */
static inline int paeth(int a, int b, int c) {
    int pa = b - c, pb = a - c, pc = pa + pb;
    pa = pa < 0 ? -pa : pa;
    pb = pb < 0 ? -pb : pb;
    pc = pc < 0 ? -pc : pc;
    int t = pb < pa ? b : a, tp = pb < pa ? pb : pa;
    return pc < tp ? c : t;
}

/* Paeth rows for a constant bpp: the left and upper-left pixels stay in
 * registers, so the per-channel dependency chains do not go through memory. */
static inline void paeth_row(uint8_t *r, const uint8_t *prev, size_t n, const size_t bpp) {
    int a[8], c[8];
    size_t i, k;
    for (k = 0; k < bpp; k++) {
        r[k] = (uint8_t)(r[k] + prev[k]);
        a[k] = r[k];
        c[k] = prev[k];
    }
    for (i = bpp; i + bpp <= n; i += bpp)
        /* Unrolled, a[] and c[] live in registers (gcc -O2 does not do it). */
#pragma GCC unroll 8
        for (k = 0; k < bpp; k++) {
            int b = prev[i + k];
            a[k] = (uint8_t)(r[i + k] + paeth(a[k], b, c[k]));
            r[i + k] = (uint8_t)a[k];
            c[k] = b;
        }
}

/* Unfilters one row in place; prev is the unfiltered row above or NULL for
 * the first row of an image or pass.  False on an unknown filter type. */
static bool unfilter(unsigned ft, uint8_t *r, const uint8_t *prev, size_t n, size_t bpp) {
    size_t i;
    switch (ft) {
    case 0: return true;
    case 1:
        for (i = bpp; i < n; i++) r[i] = (uint8_t)(r[i] + r[i - bpp]);
        return true;
    case 2:
        if (prev)
            for (i = 0; i < n; i++) r[i] = (uint8_t)(r[i] + prev[i]);
        return true;
    case 3:
        if (prev) {
            for (i = 0; i < bpp && i < n; i++) r[i] = (uint8_t)(r[i] + (prev[i] >> 1));
            for (; i < n; i++) r[i] = (uint8_t)(r[i] + ((r[i - bpp] + prev[i]) >> 1));
        } else {
            for (i = bpp; i < n; i++) r[i] = (uint8_t)(r[i] + (r[i - bpp] >> 1));
        }
        return true;
    case 4:
        if (prev) {
            /* Rows hold whole pixels when bpp > 1 (depth >= 8). */
            switch (bpp) {
            case 1: paeth_row(r, prev, n, 1); break;
            case 2: paeth_row(r, prev, n, 2); break;
            case 3: paeth_row(r, prev, n, 3); break;
            case 4: paeth_row(r, prev, n, 4); break;
            case 6: paeth_row(r, prev, n, 6); break;
            default: paeth_row(r, prev, n, 8); break;
            }
        } else { /* b = c = 0: Paeth picks a, i.e. Sub */
            for (i = bpp; i < n; i++) r[i] = (uint8_t)(r[i] + r[i - bpp]);
        }
        return true;
    default: return false;
    }
}

/* ------------------------------------------------------ conversion to RGB8 */

/* Converts n pixels of an unfiltered row to RGB, writing one pixel every
 * `step` bytes of dst (3 for full rows, 3*dx for Adam7 passes). */
static void convert_row(const png_info *P, const uint8_t *s, size_t n, uint8_t *d, size_t step) {
    size_t x;
    switch (P->ctype * 32 + P->depth) {
    case 0 * 32 + 8:
        for (x = 0; x < n; x++, d += step) d[0] = d[1] = d[2] = s[x];
        return;
    case 0 * 32 + 16: /* Pillow mode I: saturates, does not shift */
        for (x = 0; x < n; x++, d += step) {
            unsigned v = fdd_be16(s + 2 * x);
            d[0] = d[1] = d[2] = (uint8_t)(v > 255 ? 255 : v);
        }
        return;
    case 0 * 32 + 1: case 0 * 32 + 2: case 0 * 32 + 4:
    case 3 * 32 + 1: case 3 * 32 + 2: case 3 * 32 + 4: {
        unsigned depth = P->depth, per = 8 / depth, mask = (1u << depth) - 1;
        unsigned scale = depth == 1 ? 255 : depth == 2 ? 85 : 17;
        for (x = 0; x < n; x++, d += step) {
            unsigned v = (s[x / per] >> (8 - depth * (x % per + 1))) & mask;
            if (P->ctype == 0) {
                d[0] = d[1] = d[2] = (uint8_t)(v * scale);
            } else {
                memcpy(d, P->pal + 3 * v, 3);
            }
        }
        return;
    }
    case 3 * 32 + 8:
        for (x = 0; x < n; x++, d += step) memcpy(d, P->pal + 3 * s[x], 3);
        return;
    case 2 * 32 + 8:
        if (step == 3) {
            memcpy(d, s, 3 * n);
            return;
        }
        for (x = 0; x < n; x++, d += step, s += 3) { d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; }
        return;
    case 2 * 32 + 16:
        for (x = 0; x < n; x++, d += step, s += 6) { d[0] = s[0]; d[1] = s[2]; d[2] = s[4]; }
        return;
    case 4 * 32 + 8:
        for (x = 0; x < n; x++, d += step) d[0] = d[1] = d[2] = s[2 * x];
        return;
    case 4 * 32 + 16:
        for (x = 0; x < n; x++, d += step) d[0] = d[1] = d[2] = s[4 * x];
        return;
    case 6 * 32 + 8:
        for (x = 0; x < n; x++, d += step, s += 4) { d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; }
        return;
    case 6 * 32 + 16:
        for (x = 0; x < n; x++, d += step, s += 8) { d[0] = s[0]; d[1] = s[2]; d[2] = s[4]; }
        return;
    }
}

/* ------------------------------------------------------------------ layout */

static const uint8_t adam7[7][4] = {/* x0, y0, dx, dy */
                                    {0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                    {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};

typedef struct {
    uint64_t pw, ph, rowbytes; /* pass size in pixels, bytes per row without filter byte */
    unsigned x0, y0, dx, dy;
} pass_geom;

/* Fills the passes (1 or 7) and returns the total filtered-data size. */
static uint64_t layout(const png_info *P, pass_geom g[7], int *npass) {
    uint64_t total = 0, bits = (uint64_t)P->channels * P->depth;
    *npass = P->interlace ? 7 : 1;
    for (int i = 0; i < *npass; i++) {
        pass_geom *p = &g[i];
        if (P->interlace) {
            p->x0 = adam7[i][0]; p->y0 = adam7[i][1]; p->dx = adam7[i][2]; p->dy = adam7[i][3];
        } else {
            p->x0 = p->y0 = 0; p->dx = p->dy = 1;
        }
        p->pw = P->w > p->x0 ? (P->w - p->x0 + p->dx - 1) / p->dx : 0;
        p->ph = P->h > p->y0 ? (P->h - p->y0 + p->dy - 1) / p->dy : 0;
        p->rowbytes = (p->pw * bits + 7) / 8; /* w < 2^32, bits <= 64: no overflow */
        if (p->pw && p->ph) total += p->ph * (p->rowbytes + 1); /* bounded by the bomb check */
    }
    return total;
}

/* ------------------------------------------------------------------ decode */

/* What zlib holds when Pillow's last scanline is done: Pillow feeds it each
 * IDAT's data in reads of at most 64 KiB, so the input ends at the end of
 * the read containing the last byte used. */
typedef struct {
    const idat_seg *segs;
    size_t nseg;
} idat_list;

static size_t pillow_window(void *ctx, size_t used) {
    const idat_list *L = ctx;
    size_t start = 0;
    size_t u = used ? used - 1 : 0;
    for (size_t k = 0; k < L->nseg; k++) {
        size_t n = L->segs[k].len;
        if (u < start + n || k + 1 == L->nseg) {
            size_t off = u > start ? u - start : 0;
            size_t block_end = (off / 65536 + 1) * 65536;
            return start + (n < block_end ? n : block_end);
        }
        start += n;
    }
    return start;
}

fdd_status fdd_decode_png(const uint8_t *data, size_t len, const char *name, fdd_image *out,
                          fdd_error *err) {
    memset(out, 0, sizeof *out);
    if (len < 8 || memcmp(data, png_sig, 8) != 0)
        return fdd_fail(err, FDD_E_FORMAT, "%s: not a PNG file", name);
    png_info P;
    memset(&P, 0, sizeof P);
    for (int i = 0; i < 256; i++) P.pal[3 * i] = P.pal[3 * i + 1] = P.pal[3 * i + 2] = (uint8_t)i;
    bool have_ihdr = false;
    fdd_status st;

    /* Chunks before the image data: complete, valid CRC (Pillow's _open). */
    size_t q = 8;
    for (;;) {
        if (len - q < 8)
            return fdd_fail(err, FDD_E_FORMAT, "%s: truncated PNG file (no image data)", name);
        uint32_t clen = fdd_be32(data + q);
        const uint8_t *type = data + q + 4;
        if (!is_cid(type))
            return fdd_fail(err, FDD_E_FORMAT, "%s: broken PNG file (bad chunk type at offset %zu)",
                            name, q);
        if (is_type(type, "IDAT")) break;
        if (is_type(type, "IEND"))
            return fdd_fail(err, FDD_E_FORMAT, "%s: PNG file has no image data", name);
        size_t ds = q + 8;
        if (clen > len - ds)
            return fdd_fail(err, FDD_E_FORMAT, "%s: truncated PNG file (in %.4s chunk)", name, type);
        if (len - ds - clen < 4)
            return fdd_fail(err, FDD_E_FORMAT, "%s: truncated PNG file (CRC of %.4s chunk)", name, type);
        if (fdd_crc32(0, data + q + 4, (size_t)clen + 4) != fdd_be32(data + ds + clen))
            return fdd_fail(err, FDD_E_FORMAT, "%s: broken PNG file (bad CRC in %.4s chunk)", name, type);
        if (is_type(type, "IHDR")) {
            if ((st = parse_ihdr(&P, data + ds, clen, name, err))) return st;
            have_ihdr = true;
        } else if (is_type(type, "PLTE") && have_ihdr && P.ctype == 3) {
            /* Entries past the PLTE keep the gray ramp (Pillow < 10.1). */
            size_t n = clen / 3 > 256 ? 256 : clen / 3;
            memcpy(P.pal, data + ds, 3 * n);
        }
        q = ds + clen + 4;
    }
    if (!have_ihdr) return fdd_fail(err, FDD_E_FORMAT, "%s: PNG file has no IHDR chunk", name);

    /* The zlib stream: consecutive IDAT chunks, cut short by the end of file. */
    size_t nseg = 0, total = 0;
    for (size_t c = q;;) {
        uint32_t clen = fdd_be32(data + c);
        size_t ds = c + 8, avail = clen < len - ds ? clen : len - ds;
        nseg++;
        total += avail; /* <= len */
        c = chunk_next(c, clen);
        if (c >= len || len - c < 8 || !is_type(data + c + 4, "IDAT")) break;
    }

    uint64_t px = (uint64_t)P.w * P.h;
    if (P.w == 0 || P.h == 0 || px > FDD_IMAGE_MAX_PIXELS || P.w > INT32_MAX || P.h > INT32_MAX)
        return fdd_image_alloc(out, P.w, P.h, name, err); /* fails with the right message */
    pass_geom g[7];
    int npass;
    uint64_t raw_size = layout(&P, g, &npass);
    /* DEFLATE expands at most 1032:1 (258 bytes from 2 bits): refuse before
     * allocating when the data present cannot hold the image. */
    if (raw_size > (uint64_t)total * 1032 + 1032 || raw_size > SIZE_MAX)
        return fdd_fail(err, FDD_E_FORMAT,
                        "%s: truncated PNG file (%zu bytes of image data cannot hold %ux%u pixels)",
                        name, total, P.w, P.h);

    idat_seg *segs = fdd_malloc(nseg * sizeof *segs);
    if (!segs) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", name);
    {
        size_t c = q;
        for (size_t i = 0; i < nseg; i++) {
            uint32_t clen = fdd_be32(data + c);
            segs[i].data = c + 8;
            segs[i].len = clen < len - (c + 8) ? clen : len - (c + 8);
            c = chunk_next(c, clen);
            segs[i].next = c;
        }
    }
    uint8_t *cat = NULL, *raw = NULL;
    const uint8_t *zs = data + segs[0].data;
    if (nseg > 1) {
        cat = fdd_malloc(total);
        if (!cat) { st = fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", name); goto done; }
        size_t o = 0;
        for (size_t i = 0; i < nseg; i++) {
            memcpy(cat + o, data + segs[i].data, segs[i].len);
            o += segs[i].len;
        }
        zs = cat;
    }
    if ((st = fdd_image_alloc(out, P.w, P.h, name, err))) goto done;
    raw = fdd_malloc((size_t)raw_size);
    if (!raw) { st = fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", name); goto done; }
    size_t used = 0;
    idat_list L = {segs, nseg};
    if ((st = fdd_zlib_decompress_prefix(zs, total, raw, (size_t)raw_size, pillow_window, &L, &used,
                                         name, err)))
        goto done;

    /* Unfilter and convert, pass by pass. */
    {
        uint8_t *r = raw;
        size_t bpp = (P.channels * P.depth + 7) / 8;
        size_t ostride = (size_t)P.w * 3;
        for (int pi = 0; pi < npass; pi++) {
            const pass_geom *p = &g[pi];
            if (!p->pw || !p->ph) continue;
            const uint8_t *prev = NULL;
            size_t rb = (size_t)p->rowbytes;
            for (size_t y = 0; y < p->ph; y++, r += rb + 1) {
                if (!unfilter(r[0], r + 1, prev, rb, bpp)) {
                    st = fdd_fail(err, FDD_E_FORMAT, "%s: broken PNG file (unknown filter type %u)",
                                  name, r[0]);
                    goto done;
                }
                uint8_t *d = out->rgb + (p->y0 + y * p->dy) * ostride + (size_t)p->x0 * 3;
                convert_row(&P, r + 1, (size_t)p->pw, d, (size_t)p->dx * 3);
                prev = r + 1;
            }
        }
    }

    /* After the image Pillow reads on to IEND; a chunk cut short by the end
     * of the file is an error there.  Start after the IDAT where the data
     * needed ended. */
    {
        size_t k = 0, acc = 0;
        while (k + 1 < nseg && acc + segs[k].len < used) acc += segs[k++].len;
        size_t c = segs[k].next;
        while (c < len && len - c >= 8) {
            uint32_t clen = fdd_be32(data + c);
            if (!is_cid(data + c + 4) || is_type(data + c + 4, "IEND")) break;
            if (clen > len - c - 8) {
                st = fdd_fail(err, FDD_E_FORMAT, "%s: truncated PNG file (in %.4s chunk after the image)",
                              name, data + c + 4);
                goto done;
            }
            c = chunk_next(c, clen);
        }
    }
    st = FDD_OK;
done:
    fdd_free(raw);
    fdd_free(cat);
    fdd_free(segs);
    if (st) fdd_image_free(out);
    return st;
}

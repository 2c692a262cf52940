/* tiff.c — baseline TIFF, first image only: 8-bit gray (BlackIsZero and
 * WhiteIsZero), palette, RGB and RGBA/RGBX (alpha dropped, as Pillow's
 * convert("RGB") does; associated alpha is divided out first, as Pillow's
 * "RGBa" unpacker does), in strips, uncompressed, PackBits, LZW or Deflate,
 * with horizontal predictor 2.  Pillow decodes uncompressed strips itself
 * (reading each strip's rows from its offset, byte counts unused) and
 * compressed ones through libtiff (byte counts used, a short strip is an
 * error); both are followed here.  Tiles, planar data, other depths and
 * old-style LZW are refused as unsupported. */
#include "image.h"

typedef struct tiff {
    const uint8_t *d;
    size_t len;
    bool be;
} tiff;

static uint32_t t16(const tiff *t, const uint8_t *p) { return t->be ? fdd_be16(p) : fdd_le16(p); }
static uint32_t t32(const tiff *t, const uint8_t *p) { return t->be ? fdd_be32(p) : fdd_le32(p); }

typedef struct tiff_tag {
    uint32_t type, count;
    const uint8_t *val; /* NULL if the tag is absent */
} tiff_tag;

static unsigned type_size(uint32_t type) {
    return type == 1 || type == 2 || type == 6 || type == 7 ? 1 : type == 3 || type == 8 ? 2
         : type == 4 || type == 9 || type == 11 ? 4 : type == 5 || type == 10 || type == 12 ? 8 : 0;
}

/* Element i of an integer tag (BYTE, SHORT or LONG). */
static uint32_t tag_uint(const tiff *t, const tiff_tag *g, uint32_t i) {
    switch (g->type) {
    case 1: return g->val[i];
    case 3: return t16(t, g->val + 2 * (size_t)i);
    default: return t32(t, g->val + 4 * (size_t)i);
    }
}

static bool tag_is_int(const tiff_tag *g) { return g->type == 1 || g->type == 3 || g->type == 4; }

/* TIFF LZW (MSB-first codes, 9..12 bits, width grows one code early). */
static fdd_status tiff_lzw(const uint8_t *in, size_t n, uint8_t *out, size_t cap,
                           const char *name, fdd_error *err) {
    if (n >= 2 && in[0] == 0 && (in[1] & 1))
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: old-style TIFF LZW is not supported", name);
    static const unsigned CLEAR = 256, EOI = 257;
    uint16_t prefix[4096];
    uint8_t suffix[4096], first[4096];
    uint16_t len[4096];
    for (unsigned i = 0; i < 256; i++) {
        prefix[i] = 0xFFFF;
        suffix[i] = first[i] = (uint8_t)i;
        len[i] = 1;
    }
    size_t o = 0, bitpos = 0, nbits = (size_t)n * 8;
    unsigned next = 258, width = 9;
    int old = -1;
    while (o < cap) {
        if (bitpos + width > nbits) break;
        /* 24 bits from the code's first byte hold any 12-bit code. */
        size_t byte = bitpos >> 3;
        uint32_t acc = (uint32_t)in[byte] << 16;
        if (byte + 1 < n) acc |= (uint32_t)in[byte + 1] << 8;
        if (byte + 2 < n) acc |= in[byte + 2];
        unsigned code = (acc >> (24 - (bitpos & 7) - width)) & ((1u << width) - 1);
        bitpos += width;
        if (code == CLEAR) {
            next = 258;
            width = 9;
            old = -1;
            continue;
        }
        if (code == EOI) break;
        if (old < 0) {
            if (code > 255) return fdd_fail(err, FDD_E_FORMAT, "%s: corrupt TIFF LZW data", name);
            out[o++] = (uint8_t)code;
            old = (int)code;
            continue;
        }
        if (code > next || next >= 4096)
            return fdd_fail(err, FDD_E_FORMAT, "%s: corrupt TIFF LZW data", name);
        unsigned c = code == next ? (unsigned)old : code;
        uint8_t f = first[c];
        /* new entry: old + first char of the current string */
        prefix[next] = (uint16_t)old;
        suffix[next] = code == next ? first[old] : f;
        first[next] = first[old];
        len[next] = (uint16_t)(len[old] + 1);
        next++;
        /* write the string of `code` backwards, clipped to cap */
        size_t l = len[code];
        size_t end = o + l;
        unsigned k = code;
        for (size_t j = end; j > o; j--, k = prefix[k])
            if (j - 1 < cap) out[j - 1] = suffix[k];
        o = end < cap ? end : cap;
        old = (int)code;
        if (next + 1 >= (1u << width) && width < 12) width++;
    }
    if (o < cap) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated: not enough TIFF LZW data", name);
    return FDD_OK;
}

static fdd_status tiff_packbits(const uint8_t *in, size_t n, uint8_t *out, size_t cap,
                                const char *name, fdd_error *err) {
    size_t i = 0, o = 0;
    while (o < cap && i < n) {
        int c = (int8_t)in[i++];
        if (c >= 0) {
            size_t k = (size_t)c + 1;
            if (k > n - i) k = n - i;
            if (k > cap - o) k = cap - o; /* libtiff discards the excess */
            memcpy(out + o, in + i, k);
            o += k;
            i += (size_t)c + 1;
        } else if (c != -128) {
            if (i >= n) break;
            size_t k = (size_t)(1 - c);
            if (k > cap - o) k = cap - o;
            memset(out + o, in[i++], k);
            o += k;
        }
    }
    if (o < cap) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated: not enough TIFF PackBits data", name);
    return FDD_OK;
}

fdd_status fdd_decode_tiff(const uint8_t *d, size_t len, const char *name, fdd_image *out,
                           fdd_error *err) {
    memset(out, 0, sizeof *out);
    tiff t = {d, len, len >= 2 && d[0] == 'M'};
    if (len < 8) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated TIFF header", name);
    uint32_t ifd = t32(&t, d + 4);
    if (ifd > len || len - ifd < 2) return fdd_fail(err, FDD_E_FORMAT, "%s: TIFF IFD offset past the end", name);
    uint32_t nent = t16(&t, d + ifd);
    if ((len - ifd - 2) / 12 < nent) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated TIFF IFD", name);
    enum { W, H, BPS, COMP, PHOTO, FILL, SOFF, SPP, RPS, SBC, PLANAR, PRED, CMAP, EXTRA, SFMT, TILE, NT };
    static const uint16_t ids[NT] = {256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320, 338, 339, 322};
    tiff_tag tg[NT];
    memset(tg, 0, sizeof tg);
    for (uint32_t i = 0; i < nent; i++) {
        const uint8_t *e = d + ifd + 2 + 12 * (size_t)i;
        uint32_t id = t16(&t, e);
        for (int k = 0; k < NT; k++) {
            if (ids[k] != id) continue;
            tiff_tag g = {t16(&t, e + 2), t32(&t, e + 4), NULL};
            unsigned ts = type_size(g.type);
            if (!ts || g.count == 0) break; /* unknown type or empty: ignored */
            uint64_t bytes = (uint64_t)ts * g.count;
            if (bytes <= 4) g.val = e + 8;
            else {
                uint32_t off = t32(&t, e + 8);
                if (off > len || bytes > len - off)
                    return fdd_fail(err, FDD_E_FORMAT, "%s: TIFF tag %u points past the end", name, (unsigned)id);
                g.val = d + off;
            }
            if (!tag_is_int(&g))
                return fdd_fail(err, FDD_E_FORMAT, "%s: TIFF tag %u has a non-integer type", name, (unsigned)id);
            tg[k] = g;
        }
    }
#define GET(k, def) (tg[k].val ? tag_uint(&t, &tg[k], 0) : (uint32_t)(def))
    if (!tg[W].val || !tg[H].val) return fdd_fail(err, FDD_E_FORMAT, "%s: TIFF without image size", name);
    uint64_t w = GET(W, 0), h = GET(H, 0);
    uint32_t comp = GET(COMP, 1), photo = GET(PHOTO, 0), spp = GET(SPP, 1), pred = GET(PRED, 1);
    if (tg[TILE].val) return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: tiled TIFF is not supported", name);
    if (GET(PLANAR, 1) != 1 && spp > 1)
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: planar TIFF is not supported", name);
    if (GET(FILL, 1) != 1) return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: TIFF fill order 2 is not supported", name);
    for (uint32_t i = 0; tg[BPS].val && i < tg[BPS].count && i < spp; i++)
        if (tag_uint(&t, &tg[BPS], i) != 8) goto unsupported;
    if (!tg[BPS].val) goto unsupported; /* default 1 bit */
    if (tg[BPS].count != 1 && tg[BPS].count < spp) goto unsupported; /* Pillow: unknown organization */
    for (uint32_t i = 0; tg[SFMT].val && i < tg[SFMT].count; i++)
        if (tag_uint(&t, &tg[SFMT], i) != 1) goto unsupported;
    uint32_t nextra = tg[EXTRA].val ? tg[EXTRA].count : 0, extra0 = GET(EXTRA, 0);
    /* Pillow's OPEN_INFO keys used here: gray/palette 1 sample, RGB 3, RGBA or
     * RGBX 4 with ExtraSamples absent, 0 (unspecified) or 2 (unassociated). */
    if ((photo == 0 || photo == 1 || photo == 3) && spp == 1 && nextra == 0) {
    } else if (photo == 2 && spp == 3 && nextra == 0) {
    } else if (photo == 2 && spp == 4 && (nextra == 0 || nextra == 1)) {
    } else goto unsupported;
    bool premul = nextra == 1 && extra0 == 1; /* Pillow's "RGBa": un-premultiplied on unpack */
    if (comp != 1 && comp != 5 && comp != 8 && comp != 32946 && comp != 32773)
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: TIFF compression %u is not supported", name, (unsigned)comp);
    if (pred != 1 && !(pred == 2 && comp != 1))
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: TIFF predictor %u is not supported", name, (unsigned)pred);
    fdd_status s = FDD_OK;
    if (w == 0 || h == 0) return fdd_fail(err, FDD_E_FORMAT, "%s: image has zero width or height", name);
    uint8_t pal[256][3];
    if (photo == 3) {
        if (!tg[CMAP].val || tg[CMAP].count < 768 || tg[CMAP].type != 3)
            return fdd_fail(err, FDD_E_FORMAT, "%s: TIFF palette missing or short", name);
        for (int i = 0; i < 256; i++)
            for (int c = 0; c < 3; c++) pal[i][c] = (uint8_t)(tag_uint(&t, &tg[CMAP], (uint32_t)(c * 256 + i)) >> 8);
    }
    uint64_t rps = GET(RPS, h);
    if (rps == 0 || rps > h) rps = h;
    uint64_t nstrips = (h + rps - 1) / rps, rowbytes = w * spp;
    if (!tg[SOFF].val || tg[SOFF].count < nstrips)
        return fdd_fail(err, FDD_E_FORMAT, "%s: TIFF strip offsets missing", name);
    if (comp != 1 && (!tg[SBC].val || tg[SBC].count < nstrips))
        return fdd_fail(err, FDD_E_FORMAT, "%s: TIFF strip byte counts missing", name);
    /* Size checks before allocating: uncompressed rows must be in the file;
     * compressed data expands at most ~1032x (Deflate), LZW and PackBits less. */
    uint64_t total, px;
    if (!fdd_mul64_ok(w, h, &px) || px > FDD_IMAGE_MAX_PIXELS || w > INT32_MAX || h > INT32_MAX)
        return fdd_image_alloc(out, w, h, name, err); /* the bomb message */
    total = px * spp;
    if (total / 1100 > len) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated: TIFF data cannot hold %llux%llu", name, (unsigned long long)w, (unsigned long long)h);
    uint8_t *buf = fdd_malloc((size_t)total);
    if (!buf) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", name);
    for (uint64_t si = 0; si < nstrips && !s; si++) {
        uint64_t rows = (si + 1) * rps > h ? h - si * rps : rps, need = rows * rowbytes;
        uint8_t *dst = buf + si * rps * rowbytes;
        uint64_t off = tag_uint(&t, &tg[SOFF], (uint32_t)si);
        if (comp == 1) {
            if (off > len || need > len - off) {
                s = fdd_fail(err, FDD_E_FORMAT, "%s: truncated TIFF strip %llu", name, (unsigned long long)si);
                break;
            }
            memcpy(dst, d + off, (size_t)need);
            continue;
        }
        uint64_t cnt = tag_uint(&t, &tg[SBC], (uint32_t)si);
        if (off > len) off = len;
        if (cnt > len - off) cnt = len - off; /* libtiff reads what is there */
        const uint8_t *src = d + off;
        if (comp == 5) s = tiff_lzw(src, (size_t)cnt, dst, (size_t)need, name, err);
        else if (comp == 32773) s = tiff_packbits(src, (size_t)cnt, dst, (size_t)need, name, err);
        else {
            size_t used;
            s = fdd_zlib_decompress_prefix(src, (size_t)cnt, dst, (size_t)need, NULL, NULL, &used, name, err);
        }
        if (!s && pred == 2)
            for (uint64_t r = 0; r < rows; r++) {
                uint8_t *row = dst + r * rowbytes;
                for (uint64_t k = spp; k < rowbytes; k++) row[k] = (uint8_t)(row[k] + row[k - spp]);
            }
    }
    if (!s) s = fdd_image_alloc(out, w, h, name, err);
    if (!s) {
        uint8_t *o = out->rgb;
        for (uint64_t i = 0; i < px; i++, o += 3) {
            const uint8_t *p = buf + i * spp;
            if (photo == 0) o[0] = o[1] = o[2] = (uint8_t)(255 - p[0]);
            else if (photo == 1) o[0] = o[1] = o[2] = p[0];
            else if (photo == 3) memcpy(o, pal[p[0]], 3);
            else if (premul && p[3] != 255) {
                for (int c = 0; c < 3; c++) {
                    unsigned v = p[3] ? p[c] * 255u / p[3] : 0;
                    o[c] = (uint8_t)(v > 255 ? 255 : v);
                }
            } else memcpy(o, p, 3);
        }
    }
    fdd_free(buf);
    return s;
unsupported:
    return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unsupported TIFF pixel layout (8-bit gray, palette, RGB, RGBA only)", name);
#undef GET
}

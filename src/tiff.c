/* tiff.c — baseline TIFF, first image only, as Pillow 9.4 opens it: gray
 * 1/2/4/8/16 bits (BlackIsZero and WhiteIsZero), palette 1/2/4/8 bits, RGB
 * and RGBA/RGBX 8 and 16 bits (alpha dropped, as Pillow's convert("RGB")
 * does; associated alpha is divided out first, as Pillow's "RGBa" unpacker
 * does), FillOrder 1 and 2, in strips or tiles, uncompressed, PackBits, LZW
 * or Deflate, with horizontal predictor 2; the Orientation tag is applied
 * as Pillow's load_end does.  Pillow decodes uncompressed data itself
 * (reading each strip's or tile's rows from its offset, byte counts unused)
 * and compressed data through libtiff (byte counts used, short data is an
 * error); both are followed here.  Planar data, CCITT, JPEG and old-style
 * LZW are refused as unsupported, naming the compression. */
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

/* Names for the refusal message of compressions Pillow decodes through
 * libtiff but this decoder does not. */
static const char *comp_name(uint32_t comp) {
    switch (comp) {
    case 2: return "CCITT modified Huffman RLE";
    case 3: return "CCITT Group 3 fax";
    case 4: return "CCITT Group 4 fax";
    case 6: return "old-style JPEG";
    case 7: return "JPEG";
    case 32771: return "raw 16-bit padded";
    case 32809: return "ThunderScan";
    case 34676: case 34677: return "SGILog";
    case 34925: return "LZMA";
    case 50000: return "Zstandard";
    case 50001: return "WebP";
    default: return "unknown";
    }
}

/* The pixel layout, one of Pillow's OPEN_INFO modes. */
typedef struct tiff_layout {
    uint32_t photo, spp, bps;
    bool be, premul;
    uint8_t pal[256][3];
} tiff_layout;

static unsigned sample(const tiff_layout *L, const uint8_t *row, uint64_t i) {
    switch (L->bps) {
    case 1: return row[i >> 3] >> (7 - (i & 7)) & 1;
    case 2: return row[i >> 2] >> (6 - 2 * (i & 3)) & 3;
    case 4: return row[i >> 1] >> (4 - 4 * (i & 1)) & 15;
    case 8: return row[i];
    default: return L->be ? fdd_be16(row + 2 * i) : fdd_le16(row + 2 * i);
    }
}

/* ncols pixels of one packed row into RGB at o, as Pillow's unpacker and
 * convert("RGB") give them: 1/2/4-bit gray scaled to 8 bits (inverted for
 * WhiteIsZero), 16-bit gray ("I;16", not inverted even for WhiteIsZero)
 * clipped to 255, 16-bit RGB(A) reduced to the high byte. */
static void emit_row(const tiff_layout *L, const uint8_t *row, uint64_t ncols, uint8_t *o) {
    for (uint64_t x = 0; x < ncols; x++, o += 3) {
        uint64_t i = x * L->spp;
        if (L->photo == 2) {
            if (L->bps == 16) {
                for (int c = 0; c < 3; c++) o[c] = (uint8_t)(sample(L, row, i + (uint64_t)c) >> 8);
            } else if (L->premul && L->spp == 4 && row[i + 3] != 255) {
                for (int c = 0; c < 3; c++) {
                    unsigned v = row[i + 3] ? row[i + (uint64_t)c] * 255u / row[i + 3] : 0;
                    o[c] = (uint8_t)(v > 255 ? 255 : v);
                }
            } else {
                memcpy(o, row + i, 3);
            }
            continue;
        }
        unsigned v = sample(L, row, i);
        if (L->photo == 3) {
            memcpy(o, L->pal[v & 255], 3);
            continue;
        }
        if (L->bps == 16) v = v > 255 ? 255 : v;
        else v = v * (255u / ((1u << L->bps) - 1));
        if (L->photo == 0 && L->bps != 16) v = 255 - v;
        o[0] = o[1] = o[2] = (uint8_t)v;
    }
}

static void reverse_bits(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        b = (uint8_t)((b & 0xF0) >> 4 | (b & 0x0F) << 4);
        b = (uint8_t)((b & 0xCC) >> 2 | (b & 0x33) << 2);
        p[i] = (uint8_t)((b & 0xAA) >> 1 | (b & 0x55) << 1);
    }
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
    enum { W, H, BPS, COMP, PHOTO, FILL, SOFF, SPP, RPS, SBC, PLANAR, PRED, CMAP, EXTRA, SFMT,
           TW, TL, TOFF, TBC, NT };
    static const uint16_t ids[NT] = {256, 257, 258, 259, 262, 266, 273, 277, 278, 279,
                                     284, 317, 320, 338, 339, 322, 323, 324, 325};
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
    uint32_t fill = GET(FILL, 1);
    bool tiled = tg[TOFF].val != NULL && tg[SOFF].val == NULL; /* Pillow prefers strips */
    if (comp != 1 && comp != 5 && comp != 8 && comp != 32946 && comp != 32773)
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: TIFF compression %u (%s) is not supported", name,
                        (unsigned)comp, comp_name(comp));
    if (GET(PLANAR, 1) != 1 && spp > 1)
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: planar TIFF is not supported", name);
    /* Pillow's key: bits per sample (one value stands for all samples). */
    if (!tg[BPS].val) goto unsupported; /* default 1 bit: Pillow's key has (1,) but spp must be 1 */
    if (tg[BPS].count != 1 && tg[BPS].count < spp) goto unsupported; /* Pillow: unknown organization */
    uint32_t bps = tag_uint(&t, &tg[BPS], 0);
    for (uint32_t i = 1; tg[BPS].count > 1 && i < spp; i++)
        if (tag_uint(&t, &tg[BPS], i) != bps) goto unsupported;
    for (uint32_t i = 0; tg[SFMT].val && i < tg[SFMT].count; i++)
        if (tag_uint(&t, &tg[SFMT], i) != 1) goto unsupported;
    uint32_t nextra = tg[EXTRA].val ? tg[EXTRA].count : 0, extra0 = GET(EXTRA, 0);
    /* Pillow's OPEN_INFO keys used here: gray 1/2/4/8 bits (both fill orders)
     * and 16 bits (II both photometrics, MM BlackIsZero; fill order 1),
     * palette 1/2/4/8 bits, RGB 8 bits (both fill orders) and 16 bits,
     * RGBA/RGBX 8 and 16 bits with ExtraSamples absent, 0 or 2 (and 1,
     * associated alpha, at 8 bits). */
    bool ok = false;
    if ((photo == 0 || photo == 1 || photo == 3) && spp == 1 && nextra == 0) {
        if (bps == 1 || bps == 2 || bps == 4 || bps == 8) ok = fill == 1 || fill == 2;
        else if (bps == 16 && photo != 3 && fill == 1) ok = !t.be || photo == 1;
    } else if (photo == 2 && spp == 3 && nextra == 0) {
        ok = bps == 8 ? (fill == 1 || fill == 2) : (bps == 16 && fill == 1);
    } else if (photo == 2 && spp == 4 && nextra <= 1 && fill == 1) {
        ok = bps == 8 || (bps == 16 && extra0 != 1);
    }
    if (!ok) goto unsupported;
    tiff_layout layout, *L = &layout;
    L->photo = photo;
    L->spp = spp;
    L->bps = bps;
    L->be = t.be;
    L->premul = nextra == 1 && extra0 == 1; /* Pillow's "RGBa": un-premultiplied on unpack */
    fdd_status s = FDD_OK;
    uint8_t *buf = NULL, *cbuf = NULL;
    if (pred != 1 && !(pred == 2 && comp != 1 && bps >= 8)) {
        s = fdd_fail(err, FDD_E_UNSUPPORTED, "%s: TIFF predictor %u is not supported", name, (unsigned)pred);
        goto done;
    }
    if (w == 0 || h == 0) {
        s = fdd_fail(err, FDD_E_FORMAT, "%s: image has zero width or height", name);
        goto done;
    }
    if (photo == 3) {
        /* ColorMap: all red, then green, then blue; Pillow keeps the high byte. */
        uint32_t n = 1u << bps;
        if (!tg[CMAP].val || tg[CMAP].count < 3 * n || tg[CMAP].type != 3) {
            s = fdd_fail(err, FDD_E_FORMAT, "%s: TIFF palette missing or short", name);
            goto done;
        }
        uint32_t per = tg[CMAP].count / 3;
        for (uint32_t i = 0; i < 256; i++)
            for (uint32_t c = 0; c < 3; c++)
                L->pal[i][c] = i < n ? (uint8_t)(tag_uint(&t, &tg[CMAP], c * per + i) >> 8) : 0;
    }
    /* Blocks: strips (w x rps) or tiles (tw x tl). */
    uint64_t bw = w, bh, nacross = 1, nblocks;
    if (tiled) {
        bw = GET(TW, 0);
        bh = GET(TL, 0);
        if (!tg[TW].val || !tg[TL].val || bw == 0 || bh == 0) {
            s = fdd_fail(err, FDD_E_FORMAT, "%s: TIFF tile size missing or zero", name);
            goto done;
        }
        nacross = (w + bw - 1) / bw;
        nblocks = nacross * ((h + bh - 1) / bh); /* < 2^64: both factors < 2^32 */
    } else {
        bh = GET(RPS, h);
        if (bh == 0 || bh > h) bh = h;
        nblocks = (h + bh - 1) / bh;
    }
    const tiff_tag *offs = tiled ? &tg[TOFF] : &tg[SOFF], *cnts = tiled ? &tg[TBC] : &tg[SBC];
    if (!offs->val || offs->count < nblocks) {
        s = fdd_fail(err, FDD_E_FORMAT, "%s: TIFF %s offsets missing", name, tiled ? "tile" : "strip");
        goto done;
    }
    if (comp != 1 && (!cnts->val || cnts->count < nblocks)) {
        s = fdd_fail(err, FDD_E_FORMAT, "%s: TIFF %s byte counts missing", name, tiled ? "tile" : "strip");
        goto done;
    }
    /* Size checks before allocating: uncompressed rows must be in the file;
     * compressed data expands at most ~1032x (Deflate), LZW and PackBits less. */
    uint64_t px, rowbytes, blockbytes;
    if (!fdd_mul64_ok(w, h, &px) || px > FDD_IMAGE_MAX_PIXELS || w > INT32_MAX || h > INT32_MAX) {
        s = fdd_image_alloc(out, w, h, name, err); /* the bomb message */
        goto done;
    }
    if (bw > INT32_MAX || bh > INT32_MAX ||
        !fdd_mul64_ok(bw, (uint64_t)spp * bps, &rowbytes) || (rowbytes = (rowbytes + 7) / 8) == 0 ||
        !fdd_mul64_ok(rowbytes, bh, &blockbytes) || blockbytes / 1100 > len ||
        px / 1100 * spp * bps / 8 > len) {
        s = fdd_fail(err, FDD_E_FORMAT, "%s: truncated: TIFF data cannot hold %llux%llu", name,
                     (unsigned long long)w, (unsigned long long)h);
        goto done;
    }
    buf = fdd_malloc((size_t)blockbytes);
    if (!buf) {
        s = fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", name);
        goto done;
    }
    if ((s = fdd_image_alloc(out, w, h, name, err))) goto done;
    for (uint64_t bi = 0; bi < nblocks && !s; bi++) {
        uint64_t x0 = tiled ? bi % nacross * bw : 0, y0 = (tiled ? bi / nacross : bi) * bh;
        uint64_t rows = h - y0 < bh ? h - y0 : bh, cols = w - x0 < bw ? w - x0 : bw;
        uint64_t off = tag_uint(&t, offs, (uint32_t)bi);
        if (comp == 1) {
            /* Pillow's own raw decoder: rows from the offset, byte counts
             * unused; the last row only needs its visible part. */
            uint64_t need = (rows - 1) * rowbytes + (cols * spp * bps + 7) / 8;
            if (off > len || need > len - off) {
                s = fdd_fail(err, FDD_E_FORMAT, "%s: truncated TIFF %s %llu", name,
                             tiled ? "tile" : "strip", (unsigned long long)bi);
                break;
            }
            memcpy(buf, d + off, (size_t)need);
            if (fill == 2) reverse_bits(buf, (size_t)need); /* the ";R" raw modes */
        } else {
            /* libtiff: byte counts used, a whole tile (or the strip's rows). */
            uint64_t need = (tiled ? bh : rows) * rowbytes, cnt = tag_uint(&t, cnts, (uint32_t)bi);
            if (off > len) off = len;
            if (cnt > len - off) cnt = len - off; /* libtiff reads what is there */
            const uint8_t *src = d + off;
            if (fill == 2 && cnt) { /* libtiff bit-reverses the raw data of FillOrder 2 */
                fdd_free(cbuf);
                if (!(cbuf = fdd_malloc((size_t)cnt))) {
                    s = fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", name);
                    break;
                }
                memcpy(cbuf, src, (size_t)cnt);
                reverse_bits(cbuf, (size_t)cnt);
                src = cbuf;
            }
            if (comp == 5) s = tiff_lzw(src, (size_t)cnt, buf, (size_t)need, name, err);
            else if (comp == 32773) s = tiff_packbits(src, (size_t)cnt, buf, (size_t)need, name, err);
            else {
                size_t used;
                s = fdd_zlib_decompress_prefix(src, (size_t)cnt, buf, (size_t)need, NULL, NULL, &used, name, err);
            }
            if (!s && pred == 2) {
                uint64_t nr = tiled ? bh : rows, ns = bw * spp;
                for (uint64_t r = 0; r < nr; r++) {
                    uint8_t *row = buf + r * rowbytes;
                    if (bps == 8) {
                        for (uint64_t k = spp; k < ns; k++) row[k] = (uint8_t)(row[k] + row[k - spp]);
                    } else { /* 16-bit samples in the file's byte order */
                        for (uint64_t k = spp; k < ns; k++) {
                            uint8_t *p = row + 2 * k, *q = p - 2 * spp;
                            unsigned v = t.be ? fdd_be16(p) + fdd_be16(q) : fdd_le16(p) + fdd_le16(q);
                            if (t.be) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
                            else { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
                        }
                    }
                }
            }
        }
        for (uint64_t r = 0; r < rows && !s; r++)
            emit_row(L, buf + r * rowbytes, cols, out->rgb + ((y0 + r) * w + x0) * 3);
    }
    /* Pillow's TiffImageFile.load_end transposes by the Orientation tag. */
    if (!s && fdd_image_orient(out, fdd_image_exif_orientation(d, len), err))
        s = fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", name);
done:
    if (s) fdd_image_free(out);
    fdd_free(cbuf);
    fdd_free(buf);
    return s;
unsupported:
    return fdd_fail(err, FDD_E_UNSUPPORTED,
                    "%s: unsupported TIFF pixel layout (bits %u, samples %u, photometric %u)", name,
                    tg[BPS].val ? (unsigned)tag_uint(&t, &tg[BPS], 0) : 1u, (unsigned)spp, (unsigned)photo);
#undef GET
}

/* formats.c — the small formats pytorch-fid accepts besides PNG/JPEG:
 * PNM (plain P1-P3 and binary P4-P6, 8 and 16 bit), BMP (raw, BI_BITFIELDS, RLE4/RLE8)
 * and GIF (first frame).  Each reproduces Pillow 9.4's
 * Image.open(f).convert("RGB"), including its quirks, which are noted where
 * they are copied; tests/reference/make_formats_corpus.py checks them. */
#include "image.h"

#include <math.h>

/* Pillow refuses before decoding; we also refuse before allocating. */
static fdd_status bomb_check(uint64_t w, uint64_t h, const char *name, fdd_error *err) {
    uint64_t px;
    if (w == 0 || h == 0)
        return fdd_fail(err, FDD_E_FORMAT, "%s: image has zero width or height", name);
    if (!fdd_mul64_ok(w, h, &px) || px > FDD_IMAGE_MAX_PIXELS || w > INT32_MAX || h > INT32_MAX)
        return fdd_fail(err, FDD_E_NOMEM,
                        "%s: image of %llux%llu pixels exceeds the decompression-bomb limit "
                        "(%llu pixels)",
                        name, (unsigned long long)w, (unsigned long long)h,
                        (unsigned long long)FDD_IMAGE_MAX_PIXELS);
    return FDD_OK;
}

/* Palette lookup as Pillow's "P" -> "RGB": entries past the palette keep the
 * grey ramp Pillow initialises every palette with. */
static void ramp_palette(uint8_t pal[256][3]) {
    for (int i = 0; i < 256; i++) pal[i][0] = pal[i][1] = pal[i][2] = (uint8_t)i;
}

/* ===================================================================== PNM */

static bool pnm_ws(uint8_t c) { return c == ' ' || (c >= 9 && c <= 13); }

/* PpmImageFile._read_token: skips leading whitespace, '#' drops the rest of
 * the line (even inside a token), at most 10 characters; then Python int(). */
static fdd_status pnm_token(const uint8_t *d, size_t len, size_t *pos, int64_t *value,
                            const char *name, fdd_error *err) {
    char tok[12];
    size_t n = 0, p = *pos;
    while (n <= 10) {
        if (p >= len) break;
        uint8_t c = d[p++];
        if (pnm_ws(c)) {
            if (!n) continue;
            break;
        }
        if (c == '#') {
            while (p < len && d[p] != '\r' && d[p] != '\n') p++;
            if (p < len) p++;
            continue;
        }
        tok[n++] = (char)c;
    }
    *pos = p;
    if (n == 0) return fdd_fail(err, FDD_E_FORMAT, "%s: PNM header ends early", name);
    if (n > 10) return fdd_fail(err, FDD_E_FORMAT, "%s: PNM header token too long", name);
    /* int(): optional sign, digits, single underscores between digits. */
    size_t i = 0;
    bool neg = false;
    if (tok[0] == '+' || tok[0] == '-') neg = tok[i++] == '-';
    int64_t v = 0;
    bool digit_before = false;
    if (i >= n) goto bad;
    for (; i < n; i++) {
        if (tok[i] >= '0' && tok[i] <= '9') {
            v = v * 10 + (tok[i] - '0'); /* at most 10 digits: no overflow */
            digit_before = true;
        } else if (tok[i] == '_' && digit_before && i + 1 < n) {
            digit_before = false;
        } else {
            goto bad;
        }
    }
    if (!digit_before) goto bad;
    *value = neg ? -v : v;
    return FDD_OK;
bad:
    return fdd_fail(err, FDD_E_FORMAT, "%s: PNM header has a non-numeric field", name);
}

/* Plain (ASCII) PNM: Pillow 9.4's PpmPlainDecoder, a Python decoder that
 * reads the data in ImageFile.SAFEBLOCK (1 MiB) blocks and whose block
 * handling is reproduced here because it shows in the output:
 *  - '#' drops up to and including the next CR or LF, so "12#c\n3" is the
 *    single value 123;
 *  - a block that ends inside a token keeps that token ("half token") and
 *    puts it in front of every later block -- it is never cleared -- and at
 *    the end of the file the half token is read again and again until the
 *    image is full;
 *  - P1 tokens are single '0'/'1' bytes (no separator needed) and every byte
 *    of a block is checked, even past the last pixel;
 *  - P2/P3 values: at most 10 characters, Python int(), not above maxval,
 *    scaled round(v / maxval * out_max) (out_max 65535 for P2 with maxval >
 *    255, mode "I", else 255); a negative value wraps modulo 256 (o8) in
 *    modes L/RGB and is an error in mode I (o32). */
#define PNM_BLOCK ((size_t)1 << 20)

typedef struct pnm_reader {
    const uint8_t *d;
    size_t len, pos;
    bool comment_spans;
} pnm_reader;

static size_t pnm_read_block(pnm_reader *r, uint8_t *buf) {
    size_t n = r->len - r->pos < PNM_BLOCK ? r->len - r->pos : PNM_BLOCK;
    memcpy(buf, r->d + r->pos, n);
    r->pos += n;
    return n;
}

/* PpmPlainDecoder._ignore_comments on buf[0..n); returns the new length. */
static size_t pnm_ignore_comments(pnm_reader *r, uint8_t *buf, size_t n) {
    if (r->comment_spans) {
        while (n) {
            /* _find_comment_end: min(a, b) if a * b > 0 else max(a, b), so a
             * block starting with LF whose CR comes later ends at the CR. */
            const uint8_t *pa = memchr(buf, '\n', n), *pb = memchr(buf, '\r', n);
            long long a = pa ? pa - buf : -1, b = pb ? pb - buf : -1;
            long long e = a * b > 0 ? (a < b ? a : b) : (a > b ? a : b);
            if (e >= 0) {
                memmove(buf, buf + e + 1, n - (size_t)e - 1);
                n -= (size_t)e + 1;
                break;
            }
            n = pnm_read_block(r, buf);
        }
    }
    r->comment_spans = false;
    /* Each comment is cut out with its line end, joining what surrounds it. */
    size_t o = 0, i = 0;
    while (i < n) {
        if (buf[i] != '#') {
            buf[o++] = buf[i++];
            continue;
        }
        size_t j = i;
        while (j < n && buf[j] != '\n' && buf[j] != '\r') j++;
        if (j == n) {
            r->comment_spans = true;
            break;
        }
        i = j + 1;
    }
    return o;
}

/* Python int() of a token: optional sign, digits, single '_' between digits. */
static bool py_int(const uint8_t *t, size_t n, int64_t *value) {
    size_t i = 0;
    bool neg = false, digit_before = false;
    if (n && (t[0] == '+' || t[0] == '-')) neg = t[i++] == '-';
    if (i >= n || n > 10) return false;
    int64_t v = 0;
    for (; i < n; i++) {
        if (t[i] >= '0' && t[i] <= '9') {
            v = v * 10 + (t[i] - '0'); /* at most 10 digits: no overflow */
            digit_before = true;
        } else if (t[i] == '_' && digit_before && i + 1 < n) {
            digit_before = false;
        } else {
            return false;
        }
    }
    if (!digit_before) return false;
    *value = neg ? -v : v;
    return true;
}

static fdd_status pnm_plain(const uint8_t *d, size_t len, size_t pos, int kind, int64_t w,
                            int64_t h, int64_t maxval, const char *name, fdd_image *out,
                            fdd_error *err) {
    size_t left = len - pos, bands = kind == 3 ? 3 : 1;
    uint64_t total = (uint64_t)w * (uint64_t)h * bands; /* within the bomb limit */
    /* Refuse before allocating when the file cannot fill the image: every P1
     * pixel takes a byte; a P2/P3 value takes two (digit and separator)
     * unless the half-token repetition can occur, which needs a '#', a file
     * not ending in whitespace, or more than one block. */
    bool can_repeat = kind != 1 && (left > PNM_BLOCK || !left || memchr(d + pos, '#', left) ||
                                    !pnm_ws(d[len - 1]));
    if (!can_repeat && total > (kind == 1 ? left : left / 2 + 1))
        return fdd_fail(err, FDD_E_FORMAT,
                        "%s: truncated: PNM data of %dx%d needs more values than the file holds",
                        name, (int)w, (int)h);
    uint8_t *buf = fdd_malloc((left < PNM_BLOCK ? left : PNM_BLOCK) + 16); /* no block is longer */
    if (!buf) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", name);
    fdd_status s = fdd_image_alloc(out, (uint64_t)w, (uint64_t)h, name, err);
    if (s) {
        fdd_free(buf);
        return s;
    }
    pnm_reader r = {d, len, pos, false};
    uint64_t got = 0;
    uint8_t *o = out->rgb, half[16];
    size_t hlen = 0;
    bool mode_i = kind == 2 && maxval > 255;
    while (got != total && !s) {
        uint8_t *blk = buf + 16;
        size_t n = pnm_read_block(&r, blk);
        if (kind == 1) {
            if (!n) break;
            n = pnm_ignore_comments(&r, blk, n);
            for (size_t i = 0; i < n; i++) {
                if (pnm_ws(blk[i])) continue;
                if (blk[i] != '0' && blk[i] != '1') {
                    s = fdd_fail(err, FDD_E_FORMAT, "%s: invalid P1 value '%c'", name,
                                 blk[i] >= 32 && blk[i] < 127 ? blk[i] : '?');
                    break;
                }
                if (got < total) {
                    o[0] = o[1] = o[2] = blk[i] == '0' ? 255 : 0;
                    o += 3;
                    got++;
                }
            }
            continue;
        }
        if (!n) {
            if (!hlen) break;
            blk[0] = ' '; /* flushes the half token */
            n = 1;
        }
        n = pnm_ignore_comments(&r, blk, n);
        if (hlen) {
            blk -= hlen;
            memcpy(blk, half, hlen);
            n += hlen;
        }
        size_t end = n;
        if (n && !pnm_ws(blk[n - 1])) {
            size_t st = n;
            while (st > 0 && !pnm_ws(blk[st - 1])) st--;
            if (n - st > 10) {
                s = fdd_fail(err, FDD_E_FORMAT, "%s: PNM value token too long", name);
                break;
            }
            memcpy(half, blk + st, n - st);
            hlen = n - st;
            end = st;
        }
        for (size_t i = 0; i < end && got != total;) {
            if (pnm_ws(blk[i])) {
                i++;
                continue;
            }
            size_t st = i;
            while (i < end && !pnm_ws(blk[i])) i++;
            int64_t v;
            if (i - st > 10) {
                s = fdd_fail(err, FDD_E_FORMAT, "%s: PNM value token too long", name);
                break;
            }
            if (!py_int(blk + st, i - st, &v)) {
                s = fdd_fail(err, FDD_E_FORMAT, "%s: PNM value is not a number", name);
                break;
            }
            if (v > maxval) {
                s = fdd_fail(err, FDD_E_FORMAT, "%s: PNM value %lld is above maxval %lld", name,
                             (long long)v, (long long)maxval);
                break;
            }
            int64_t q = (int64_t)rint((double)v / (double)maxval * (mode_i ? 65535.0 : 255.0));
            uint8_t b;
            if (mode_i) {
                if (q < 0) {
                    s = fdd_fail(err, FDD_E_FORMAT, "%s: negative PNM value %lld", name,
                                 (long long)v);
                    break;
                }
                b = (uint8_t)(q > 255 ? 255 : q); /* "I" -> "RGB" clips */
            } else {
                b = (uint8_t)(q & 255);
            }
            if (bands == 1) {
                o[0] = o[1] = o[2] = b;
                o += 3;
            } else {
                *o++ = b;
            }
            got++;
        }
    }
    fdd_free(buf);
    if (!s && got != total)
        s = fdd_fail(err, FDD_E_FORMAT, "%s: truncated: not enough PNM data", name);
    if (s) fdd_image_free(out);
    return s;
}

fdd_status fdd_decode_pnm(const uint8_t *d, size_t len, const char *name, fdd_image *out,
                          fdd_error *err) {
    memset(out, 0, sizeof *out);
    /* _read_magic: up to 6 bytes, stopping at whitespace. */
    size_t pos = 0;
    while (pos < 6 && pos < len && !pnm_ws(d[pos])) pos++;
    size_t mlen = pos;
    if (pos < len && pos < 6) pos++; /* the whitespace that ended it */
    if (mlen != 2 || d[0] != 'P' || d[1] < '1' || d[1] > '6')
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unsupported format: not a PNM file Pillow reads",
                        name);
    int kind = d[1] - '0';
    int64_t w, h, maxval = 1;
    fdd_status s;
    if ((s = pnm_token(d, len, &pos, &w, name, err))) return s;
    if ((s = pnm_token(d, len, &pos, &h, name, err))) return s;
    if (kind != 4 && kind != 1) {
        if ((s = pnm_token(d, len, &pos, &maxval, name, err))) return s;
        if (maxval <= 0 || maxval >= 65536)
            return fdd_fail(err, FDD_E_FORMAT, "%s: PNM maxval must be between 1 and 65535", name);
    }
    if (w < 0 || h < 0) return fdd_fail(err, FDD_E_FORMAT, "%s: negative PNM size", name);
    if ((s = bomb_check((uint64_t)w, (uint64_t)h, name, err))) return s;
    if (kind <= 3) return pnm_plain(d, len, pos, kind, w, h, maxval, name, out, err);
    size_t bands = kind == 6 ? 3 : 1, bpv = maxval > 255 ? 2 : 1, row, need;
    if (kind == 4) row = ((size_t)w + 7) / 8;
    else row = (size_t)w * bands * bpv; /* w <= INT32_MAX: fits */
    if (!fdd_mul_ok(row, (size_t)h, &need) || need > len - pos)
        return fdd_fail(err, FDD_E_FORMAT,
                        "%s: truncated: PNM data of %dx%d needs more bytes than the file holds", name,
                        (int)w, (int)h);
    /* Value map.  8-bit maxval 255 is raw; P5 maxval 65535 is read as "I;16B";
     * others go through PpmDecoder: min(out_max, round(v / maxval * out_max))
     * with Python's round-half-even, out_max 65535 for 16-bit gray ("I"
     * mode) and 255 otherwise; "I" -> "RGB" then clips to 255. */
    size_t nvals = bpv == 2 ? 65536 : 256;
    uint8_t *lut = fdd_malloc(nvals);
    if (!lut) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", name);
    double out_max = (kind == 5 && maxval > 255) ? 65535.0 : 255.0;
    for (size_t v = 0; v < nvals; v++) {
        double r;
        if (kind == 4) r = 0;
        else if (maxval == 255 || (kind == 5 && maxval == 65535)) r = (double)v;
        else {
            r = rint((double)v / (double)maxval * out_max);
            if (r > out_max) r = out_max;
        }
        lut[v] = (uint8_t)(r > 255 ? 255 : r);
    }
    if ((s = fdd_image_alloc(out, (uint64_t)w, (uint64_t)h, name, err))) {
        fdd_free(lut);
        return s;
    }
    const uint8_t *p = d + pos;
    uint8_t *o = out->rgb;
    for (int64_t y = 0; y < h; y++, p += row) {
        if (kind == 6 && maxval == 255) { /* raw RGB */
            memcpy(o, p, row);
            o += row;
            continue;
        }
        for (int64_t x = 0; x < w; x++, o += 3) {
            if (kind == 4) { /* "1;I": a set bit is black */
                o[0] = o[1] = o[2] = (p[x >> 3] >> (7 - (x & 7)) & 1) ? 0 : 255;
            } else if (kind == 5) {
                size_t v = bpv == 2 ? fdd_be16(p + 2 * x) : p[x];
                o[0] = o[1] = o[2] = lut[v];
            } else {
                for (int c = 0; c < 3; c++) {
                    size_t k = (size_t)x * 3 + (size_t)c;
                    o[c] = lut[bpv == 2 ? fdd_be16(p + 2 * k) : p[k]];
                }
            }
        }
    }
    fdd_free(lut);
    return FDD_OK;
}

/* ===================================================================== BMP */

enum { RM_1, RM_L, RM_P1, RM_P4, RM_P8, RM_BGR15, RM_BGR16, RM_BGR, RM_BGRX, RM_XBGR, RM_ABGR,
       RM_RGBA, RM_BGRA };
static const int rm_bits[] = {1, 8, 1, 4, 8, 16, 16, 24, 32, 32, 32, 32, 32};

/* One row of raw data in rawmode rm into RGB (after Pillow's conversion of
 * the image mode to RGB; 5/6-bit fields scale with integer division). */
static void bmp_row(int rm, const uint8_t *p, int w, const uint8_t pal[256][3], uint8_t *o) {
    /* The common layouts first, in tight loops. */
    if (rm == RM_BGR) {
        for (int x = 0; x < w; x++, o += 3, p += 3) { o[0] = p[2]; o[1] = p[1]; o[2] = p[0]; }
        return;
    }
    if (rm == RM_P8) {
        for (int x = 0; x < w; x++, o += 3) memcpy(o, pal[p[x]], 3);
        return;
    }
    for (int x = 0; x < w; x++, o += 3) {
        unsigned v;
        switch (rm) {
        case RM_1: o[0] = o[1] = o[2] = (p[x >> 3] >> (7 - (x & 7)) & 1) ? 255 : 0; break;
        case RM_L: o[0] = o[1] = o[2] = p[x]; break;
        case RM_P1: memcpy(o, pal[p[x >> 3] >> (7 - (x & 7)) & 1], 3); break;
        case RM_P4: memcpy(o, pal[(p[x >> 1] >> ((x & 1) ? 0 : 4)) & 15], 3); break;
        case RM_P8: memcpy(o, pal[p[x]], 3); break;
        case RM_BGR15:
            v = fdd_le16(p + 2 * x);
            o[0] = (uint8_t)(((v >> 10) & 31) * 255 / 31);
            o[1] = (uint8_t)(((v >> 5) & 31) * 255 / 31);
            o[2] = (uint8_t)((v & 31) * 255 / 31);
            break;
        case RM_BGR16:
            v = fdd_le16(p + 2 * x);
            o[0] = (uint8_t)(((v >> 11) & 31) * 255 / 31);
            o[1] = (uint8_t)(((v >> 5) & 63) * 255 / 63);
            o[2] = (uint8_t)((v & 31) * 255 / 31);
            break;
        case RM_BGR: o[0] = p[3 * x + 2]; o[1] = p[3 * x + 1]; o[2] = p[3 * x]; break;
        case RM_BGRX: case RM_BGRA: o[0] = p[4 * x + 2]; o[1] = p[4 * x + 1]; o[2] = p[4 * x]; break;
        case RM_XBGR: case RM_ABGR: o[0] = p[4 * x + 3]; o[1] = p[4 * x + 2]; o[2] = p[4 * x + 1]; break;
        default: /* RM_RGBA */ o[0] = p[4 * x]; o[1] = p[4 * x + 1]; o[2] = p[4 * x + 2]; break;
        }
    }
}

/* BmpRleDecoder (Pillow 9.4, a Python decoder), copied with its quirks:
 * encoded runs are clipped to the row, absolute RLE4 runs lose an odd last
 * pixel, the delta escape skips two bytes before reading (right, up), word
 * alignment is on the absolute file offset, and the image must be filled
 * completely ("not enough image data" otherwise). */
static fdd_status bmp_rle(const uint8_t *d, size_t len, size_t pos, bool rle4, uint64_t w,
                          uint64_t h, uint8_t *idx, const char *name, fdd_error *err) {
    uint64_t total = w * h, n = 0, x = 0;
#define PUT(v) do { if (n < total) idx[n] = (uint8_t)(v); n++; } while (0)
    while (n < total) {
        if (len - pos < 2) break;
        unsigned count = d[pos], byte = d[pos + 1];
        pos += 2;
        if (count) {
            uint64_t num = count;
            if (x + num > w) num = x < w ? w - x : 0;
            for (uint64_t i = 0; i < num; i++) PUT(rle4 ? ((i & 1) ? byte & 15 : byte >> 4) : byte);
            x += num;
        } else if (byte == 0) {
            if (n % w) n += w - n % w;
            x = 0;
        } else if (byte == 1) {
            break;
        } else if (byte == 2) {
            if (len - pos < 2) break;
            pos += 2;
            if (len - pos < 2)
                return fdd_fail(err, FDD_E_FORMAT, "%s: truncated BMP RLE delta", name);
            n += d[pos] + (uint64_t)d[pos + 1] * w;
            pos += 2;
            x = n % w;
        } else {
            size_t want = rle4 ? byte / 2 : byte, got = len - pos < want ? len - pos : want;
            for (size_t i = 0; i < got; i++) {
                if (rle4) {
                    PUT(d[pos + i] >> 4);
                    PUT(d[pos + i] & 15);
                } else {
                    PUT(d[pos + i]);
                }
            }
            pos += got;
            if (got < want) break;
            x += byte;
            if (pos % 2 && pos < len) pos++;
            else if (pos % 2) pos = len;
        }
    }
#undef PUT
    if (n < total) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated: not enough BMP RLE data", name);
    return FDD_OK;
}

fdd_status fdd_decode_bmp(const uint8_t *d, size_t len, const char *name, fdd_image *out,
                          fdd_error *err) {
    memset(out, 0, sizeof *out);
    if (len < 18) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated BMP header", name);
    uint64_t offset = fdd_le32(d + 10);
    uint32_t hsize = fdd_le32(d + 14);
    if (hsize != 12 && hsize != 40 && hsize != 64 && hsize != 108 && hsize != 124)
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unsupported BMP header type (%u)", name,
                        (unsigned)hsize);
    if (len - 14 < hsize) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated BMP header", name);
    const uint8_t *hd = d + 18;
    size_t pos = 14 + (size_t)hsize;
    uint64_t w, h, colors = 0;
    unsigned bits, comp = 0, pad;
    int dir = -1;
    uint32_t mask[4] = {0, 0, 0, 0};
    if (hsize == 12) {
        w = fdd_le16(hd);
        h = fdd_le16(hd + 2);
        bits = fdd_le16(hd + 6);
        pad = 3;
    } else {
        bool flip = hd[7] == 0xFF;
        dir = flip ? 1 : -1;
        w = fdd_le32(hd);
        h = flip ? (1ull << 32) - fdd_le32(hd + 4) : fdd_le32(hd + 4);
        bits = fdd_le16(hd + 10);
        comp = fdd_le32(hd + 12);
        colors = fdd_le32(hd + 28);
        pad = 4;
        if (comp == 3) {
            if (hsize >= 56) {
                for (int i = 0; i < 4; i++) mask[i] = fdd_le32(hd + 36 + 4 * i);
            } else {
                if (len - pos < 12) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated BMP masks", name);
                for (int i = 0; i < 3; i++) mask[i] = fdd_le32(d + pos + 4 * i);
                pos += 12;
            }
        }
    }
    if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unsupported BMP pixel depth (%u)", name, bits);
    if (!colors) colors = 1ull << bits;
    if (offset == 14 + (uint64_t)hsize && bits <= 8) offset += 4 * colors; /* 4 even for OS/2 */
    int rm = bits == 1 ? RM_P1 : bits == 4 ? RM_P4 : bits == 8 ? RM_P8 : bits == 16 ? RM_BGR15
           : bits == 24 ? RM_BGR : RM_BGRX;
    bool rle = false;
    if (comp == 3) {
        static const struct { unsigned bits; uint32_t m[4]; int rm; } ok[] = {
            {32, {0xFF0000, 0xFF00, 0xFF, 0}, RM_BGRX},
            {32, {0xFF000000, 0xFF0000, 0xFF00, 0}, RM_XBGR},
            {32, {0xFF000000, 0xFF0000, 0xFF00, 0xFF}, RM_ABGR},
            {32, {0xFF, 0xFF00, 0xFF0000, 0xFF000000}, RM_RGBA},
            {32, {0xFF0000, 0xFF00, 0xFF, 0xFF000000}, RM_BGRA},
            {32, {0, 0, 0, 0}, RM_BGRA},
            {24, {0xFF0000, 0xFF00, 0xFF, 0}, RM_BGR},
            {16, {0xF800, 0x7E0, 0x1F, 0}, RM_BGR16},
            {16, {0x7C00, 0x3E0, 0x1F, 0}, RM_BGR15},
        };
        int found = -1;
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
            if (ok[i].bits == bits && ok[i].m[0] == mask[0] && ok[i].m[1] == mask[1] &&
                ok[i].m[2] == mask[2] && (bits != 32 || ok[i].m[3] == mask[3]))
                found = ok[i].rm;
        if (found < 0) return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unsupported BMP bitfields layout", name);
        rm = found;
    } else if (comp == 1 || comp == 2) {
        rle = true;
    } else if (comp != 0) {
        return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unsupported BMP compression (%u)", name, comp);
    }
    uint8_t pal[256][3];
    ramp_palette(pal);
    if (bits <= 8) {
        if (colors > 65536)
            return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unsupported BMP palette size (%llu)", name,
                            (unsigned long long)colors);
        size_t plen = pad * (size_t)colors;
        if (plen > len - pos) plen = len - pos; /* a short palette is read as is */
        const uint8_t *pp = d + pos;
        pos += plen;
        bool grey = true;
        for (uint64_t i = 0; i < colors && grey; i++) {
            unsigned val = colors == 2 ? (i ? 255u : 0u) : (unsigned)(i & 255);
            size_t at = (size_t)i * pad;
            grey = at + 3 <= plen && pp[at] == val && pp[at + 1] == val && pp[at + 2] == val;
        }
        if (grey) {
            rm = colors == 2 ? RM_1 : RM_L;
        } else {
            size_t entries = plen / pad;
            if (entries > 256)
                return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: BMP palette of more than 256 colours", name);
            for (size_t i = 0; i < entries; i++) {
                pal[i][0] = pp[i * pad + 2];
                pal[i][1] = pp[i * pad + 1];
                pal[i][2] = pp[i * pad];
            }
        }
    }
    fdd_status s;
    if ((s = bomb_check(w, h, name, err))) return s;
    if (offset == 0) offset = pos;
    if (offset > len) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated: BMP data offset past the end", name);
    if (rle) {
        /* Pillow sets the decoded indices as raw "P" (or "L"): other modes fail. */
        if (rm != RM_P1 && rm != RM_P4 && rm != RM_P8 && rm != RM_L)
            return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unsupported BMP RLE pixel layout", name);
        /* A 6-byte delta escape advances at most 256 rows. */
        if (h / 64 > len)
            return fdd_fail(err, FDD_E_FORMAT, "%s: truncated: BMP RLE data cannot hold %llu rows",
                            name, (unsigned long long)h);
        uint8_t *idx = fdd_calloc((size_t)(w * h), 1);
        if (!idx) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", name);
        s = bmp_rle(d, len, (size_t)offset, comp == 2, w, h, idx, name, err);
        if (!s) s = fdd_image_alloc(out, w, h, name, err);
        if (!s)
            for (uint64_t y = 0; y < h; y++)
                bmp_row(rm == RM_L ? RM_L : RM_P8, idx + (dir < 0 ? h - 1 - y : y) * w, (int)w, pal,
                        out->rgb + y * w * 3);
        fdd_free(idx);
        return s;
    }
    uint64_t stride = ((w * bits + 31) >> 3) & ~3ull, bytes = (w * (uint64_t)rm_bits[rm] + 7) / 8, need;
    if (stride < bytes)
        return fdd_fail(err, FDD_E_FORMAT, "%s: BMP rows too short for the pixel layout", name);
    if (!fdd_mul64_ok(stride, h, &need) || need > len - offset)
        return fdd_fail(err, FDD_E_FORMAT,
                        "%s: truncated: BMP data of %llux%llu needs more bytes than the file holds",
                        name, (unsigned long long)w, (unsigned long long)h);
    if ((s = fdd_image_alloc(out, w, h, name, err))) return s;
    for (uint64_t y = 0; y < h; y++)
        bmp_row(rm, d + offset + (dir < 0 ? h - 1 - y : y) * stride, (int)w, pal, out->rgb + y * w * 3);
    return FDD_OK;
}

/* ===================================================================== GIF */

/* Pillow reads the file in 64 KiB blocks; its suspendable LZW decoder only
 * stops early at an end code or a sub-block cut by a block boundary, and
 * stopping with no file left is "image file is truncated". */
#define GIF_CHUNK 65536

typedef struct gif_lzw {
    uint8_t data[4096], buffer[4096];
    uint16_t link[4096];
} gif_lzw;

/* ImagingGifDecode, first frame: writes indices into the frame rectangle of
 * img (iw wide).  The end code does not stop it: Pillow just feeds it more of
 * the file. */
static fdd_status gif_lzw_decode(const uint8_t *d, size_t len, size_t start, unsigned bits,
                                 bool interlace, uint8_t *img, size_t iw, size_t x0, size_t y0,
                                 size_t fw, size_t fh, const char *name, fdd_error *err) {
    if (bits > 12) return fdd_fail(err, FDD_E_FORMAT, "%s: GIF LZW code size %u is over 12", name, bits);
    gif_lzw *t = fdd_malloc(sizeof *t);
    if (!t) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", name);
    unsigned clear = 1u << bits, end = clear + 1, next = 0, codesize = 0, codemask = 0;
    unsigned lastdata = 0, lastcode = 0, blocksize = 0, bitcount = 0, step, ilace;
    uint32_t bitbuffer = 0;
    int state = 1;
    size_t bufferindex = 4096, x = 0, y = 0, pos = start;
    size_t fed = len - start < GIF_CHUNK ? len : start + GIF_CHUNK;
    ilace = interlace ? 1 : 0;
    step = interlace ? 8 : 1;
    fdd_status s = FDD_OK;
    for (;;) {
        if (state == 1) {
            next = clear + 2;
            codesize = bits + 1;
            codemask = (1u << codesize) - 1;
            bufferindex = 4096;
            state = 2;
        }
        const uint8_t *p;
        size_t n;
        uint8_t single;
        if (bufferindex < 4096) {
            n = 4096 - bufferindex;
            p = t->buffer + bufferindex;
            bufferindex = 4096;
        } else {
            bool stalled = false;
            while (bitcount < codesize) {
                if (blocksize > 0) {
                    bitbuffer |= (uint32_t)d[pos++] << bitcount;
                    blocksize--;
                    bitcount += 8;
                } else if (pos >= fed || (size_t)d[pos] + 1 > fed - pos) {
                    stalled = true;
                    break;
                } else {
                    blocksize = d[pos++];
                }
            }
            if (stalled) {
                if (fed == len) {
                    s = fdd_fail(err, FDD_E_FORMAT, "%s: truncated: GIF image data ends early", name);
                    break;
                }
                fed = len - fed < GIF_CHUNK ? len : fed + GIF_CHUNK;
                continue;
            }
            unsigned c = bitbuffer & codemask;
            bitbuffer >>= codesize;
            bitcount -= codesize;
            if (c == clear) {
                if (state != 2) state = 1;
                continue;
            }
            if (c == end) { /* Pillow returns and asks for more data */
                if (fed == len) {
                    s = fdd_fail(err, FDD_E_FORMAT, "%s: truncated: GIF image data ends early", name);
                    break;
                }
                fed = len - fed < GIF_CHUNK ? len : fed + GIF_CHUNK;
                continue;
            }
            n = 1;
            if (state == 2) {
                if (c > clear) goto broken;
                lastdata = lastcode = c;
                state = 3;
            } else {
                unsigned thiscode = c;
                if (c > next) goto broken;
                if (c == next) {
                    if (bufferindex == 0) goto broken;
                    t->buffer[--bufferindex] = (uint8_t)lastdata;
                    c = lastcode;
                }
                while (c >= clear) {
                    if (bufferindex == 0 || c >= 4096) goto broken;
                    t->buffer[--bufferindex] = t->data[c];
                    c = t->link[c];
                }
                lastdata = c;
                if (next < 4096) {
                    t->data[next] = (uint8_t)c;
                    t->link[next] = (uint16_t)lastcode;
                    if (next == codemask && codesize < 12) {
                        codesize++;
                        codemask = (1u << codesize) - 1;
                    }
                    next++;
                }
                lastcode = thiscode;
            }
            /* The first pixel now; the rest of a string waits in buffer and
             * goes out on the next turn, as in Pillow. */
            single = (uint8_t)lastdata;
            p = &single;
        }
        /* Copy the pixels into the frame, row by row (interlace passes). */
        bool done = false;
        for (size_t i = 0; i < n; i++) {
            img[(y0 + y) * iw + x0 + x] = p[i];
            if (++x >= fw) {
                x = 0;
                y += step;
                while (y >= fh) {
                    if (ilace == 1) { y = 4; ilace = 2; }
                    else if (ilace == 2) { step = 4; y = 2; ilace = 3; }
                    else if (ilace == 3) { step = 2; y = 1; ilace = 0; }
                    else { done = true; break; }
                }
                if (done) break;
            }
        }
        if (done) break;
    }
    fdd_free(t);
    return s;
broken:
    fdd_free(t);
    return fdd_fail(err, FDD_E_FORMAT, "%s: broken GIF image data", name);
}

/* GifImageFile.data(): one sub-block of the returned length; *blk = NULL
 * for the terminator or the end of the file (Python's None), else it points
 * at the (possibly cut, even empty) block. */
static size_t gif_sub(const uint8_t *d, size_t len, size_t *pos, const uint8_t **blk) {
    *blk = NULL;
    if (*pos >= len) return 0;
    size_t n = d[(*pos)++];
    if (!n) return 0;
    *blk = d + *pos;
    if (n > len - *pos) n = len - *pos;
    *pos += n;
    return n;
}

/* An identity ramp palette counts as "no palette" (mode L). */
static bool gif_pal_needed(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[3 * i] != i || p[3 * i + 1] != i || p[3 * i + 2] != i) return true;
    return false;
}

fdd_status fdd_decode_gif(const uint8_t *d, size_t len, const char *name, fdd_image *out,
                          fdd_error *err) {
    memset(out, 0, sizeof *out);
    if (len < 13 || memcmp(d, "GIF8", 4) != 0 || (d[4] != '7' && d[4] != '9') || d[5] != 'a')
        return fdd_fail(err, FDD_E_FORMAT, "%s: truncated or bad GIF header", name);
    uint64_t w = fdd_le16(d + 6), h = fdd_le16(d + 8);
    size_t pos = 13, gn = 0;
    const uint8_t *gpal = NULL;
    if (d[10] & 128) {
        size_t bytes = (size_t)3 << ((d[10] & 7) + 1);
        if (bytes > len - pos) bytes = len - pos;
        if (bytes % 3) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated GIF palette", name);
        if (gif_pal_needed(d + pos, bytes / 3)) {
            gpal = d + pos;
            gn = bytes / 3;
        }
        pos += bytes;
    }
    /* Blocks up to the first image descriptor. */
    int transparency = -1;
    const uint8_t *blk;
    size_t n;
    for (;;) {
        if (pos >= len || d[pos] == ';')
            return fdd_fail(err, FDD_E_FORMAT, "%s: GIF file has no image", name);
        uint8_t c = d[pos++];
        if (c == '!') {
            if (pos >= len) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated GIF extension", name);
            uint8_t label = d[pos++];
            n = gif_sub(d, len, &pos, &blk);
            if (label == 249) {
                if (!blk || n < 3 || ((blk[0] & 1) && n < 4))
                    return fdd_fail(err, FDD_E_FORMAT, "%s: bad GIF graphic control block", name);
                if (blk[0] & 1) transparency = blk[3];
            } else if (label == 254) {
                while (n) n = gif_sub(d, len, &pos, &blk);
                continue;
            } else if (label == 255) {
                if (!blk) return fdd_fail(err, FDD_E_FORMAT, "%s: bad GIF application block", name);
                if (n >= 11 && memcmp(blk, "NETSCAPE2.0", 11) == 0) gif_sub(d, len, &pos, &blk);
            }
            /* Pillow then skips sub-blocks even after an empty first one. */
            while (gif_sub(d, len, &pos, &blk)) {}
        } else if (c == ',') {
            break;
        }
    }
    if (len - pos < 9) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated GIF image descriptor", name);
    uint64_t x0 = fdd_le16(d + pos), y0 = fdd_le16(d + pos + 2);
    uint64_t x1 = x0 + fdd_le16(d + pos + 4), y1 = y0 + fdd_le16(d + pos + 6);
    uint8_t flags = d[pos + 8];
    pos += 9;
    if (x1 > w || y1 > h) { /* Pillow grows the canvas to the frame */
        w = x1 > w ? x1 : w;
        h = y1 > h ? y1 : h;
    }
    const uint8_t *pal = gpal;
    size_t pn = gn;
    if (flags & 128) {
        size_t bytes = (size_t)3 << ((flags & 7) + 1);
        if (bytes > len - pos) bytes = len - pos;
        if (bytes % 3) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated GIF palette", name);
        pal = gif_pal_needed(d + pos, bytes / 3) ? d + pos : NULL;
        pn = pal ? bytes / 3 : 0;
        pos += bytes;
    }
    if (pos >= len) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated GIF image", name);
    unsigned bits = d[pos++];
    fdd_status s = bomb_check(w, h, name, err);
    if (s) return s;
    if (x0 == 0 && x1 == 0 && w * h / 32768 > len - pos)
        return fdd_fail(err, FDD_E_FORMAT, "%s: truncated: GIF data cannot hold the frame", name);
    if (x1 >= x0 && y1 >= y0 && (x1 - x0) * (y1 - y0) / 32768 > len - pos)
        return fdd_fail(err, FDD_E_FORMAT, "%s: truncated: GIF data cannot hold the frame", name);
    uint8_t *idx = fdd_malloc((size_t)(w * h));
    if (!idx) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", name);
    memset(idx, transparency >= 0 ? transparency : 0, (size_t)(w * h));
    /* Pillow's setimage reads a tile with x0 == x1 == 0 as "the whole image";
     * other empty frames are "tile cannot extend outside image". */
    if (x0 == 0 && x1 == 0) {
        y0 = 0;
        x1 = w;
        y1 = h;
    }
    if (x1 == x0 || y1 == y0) s = fdd_fail(err, FDD_E_FORMAT, "%s: GIF frame is empty", name);
    if (!s)
        s = gif_lzw_decode(d, len, pos, bits, (flags & 64) != 0, idx, (size_t)w, (size_t)x0, (size_t)y0,
                       (size_t)(x1 - x0), (size_t)(y1 - y0), name, err);
    if (!s) s = fdd_image_alloc(out, w, h, name, err);
    if (!s) {
        uint8_t lut[256][3];
        ramp_palette(lut);
        for (size_t i = 0; i < pn && i < 256; i++) memcpy(lut[i], pal + 3 * i, 3);
        size_t npx = (size_t)(w * h);
        for (size_t i = 0; i < npx; i++) memcpy(out->rgb + 3 * i, lut[idx[i]], 3);
    }
    fdd_free(idx);
    return s;
}

/* webp.c — WebP decoding as Pillow 9.4 sees it (libwebp 1.2.4 behind
 * WebPAnimDecoder): the RIFF container, lossless VP8L, and the container side
 * of lossy files (the VP8 bitstream itself is fdd_vp8_decode, src/vp8.c).
 *
 * What decides success or failure mirrors libwebp's demuxer (WebPDemux) and
 * WebPDecode on the first frame:
 *  - the file must hold the whole RIFF chunk (bytes after it are ignored);
 *  - chunk sizes (padded to even) must fit inside the RIFF chunk;
 *  - the first chunk is `VP8 `, `VP8L` or `VP8X` (else Pillow does not
 *    recognise the file);
 *  - an extended (VP8X) still image must be exactly the canvas size; every
 *    frame of an animation must lie inside the canvas and is checked, but
 *    only the first is decoded, onto a transparent black canvas;
 *  - an ALPH chunk is decoded (it can fail the file) only when libwebp
 *    would: VP8X with the alpha flag, or inside an animation frame.
 * Pixels: Pillow asks for non-premultiplied RGBA and drops A, so the RGB is
 * the bitstream's own (also under alpha 0), and alpha never changes RGB.
 * Specs: RFC 9649 (WebP), libwebp's src/demux/demux.c for the container. */
#include "image.h"

#include <stdlib.h>

#define MAX_CHUNK_PAYLOAD (0xffffffffu - 8u - 1u) /* libwebp's limit */

/* The per-symbol helpers of the pixel loop must inline to be fast. */
#if defined(__GNUC__) || defined(__clang__)
#define HOT static inline __attribute__((always_inline))
#else
#define HOT static inline
#endif

static fdd_status bad(fdd_error *err, const char *name, const char *why) {
    return fdd_fail(err, FDD_E_FORMAT, "%s: invalid WebP file: %s", name, why);
}

/* ============================================================ bit reader */

/* LSB-first bit reader.  Bytes past the end read as zero; libwebp's
 * end-of-stream rule is "more bits consumed than the data holds", where data
 * shorter than 8 bytes counts as 8 (its reader preloads 64 bits). */
typedef struct {
    const uint8_t *d;
    size_t len, pos;
    uint64_t buf;
    unsigned cnt;
    uint64_t used, limit;
} vbr;

static void br_init(vbr *b, const uint8_t *d, size_t len) {
    memset(b, 0, sizeof *b);
    b->d = d;
    b->len = len;
    b->limit = (uint64_t)(len < 8 ? 8 : len) * 8;
}

HOT void br_fill(vbr *b) {
    if (b->len - b->pos >= 8) {
        b->buf |= fdd_le64(b->d + b->pos) << b->cnt;
        b->pos += (63 - b->cnt) >> 3;
        b->cnt |= 56;
    } else {
        while (b->cnt <= 56) {
            if (b->pos < b->len) b->buf |= (uint64_t)b->d[b->pos++] << b->cnt;
            b->cnt += 8;
        }
    }
}

HOT void br_skip(vbr *b, unsigned n) {
    b->buf >>= n;
    b->cnt -= n;
    b->used += n;
}

HOT uint32_t br_bits(vbr *b, unsigned n) { /* n <= 32 */
    if (b->cnt < n) br_fill(b);
    uint32_t v = (uint32_t)(b->buf & ((1ull << n) - 1));
    br_skip(b, n);
    return v;
}

static inline bool br_eos(const vbr *b) { return b->used > b->limit; }

/* ========================================================= prefix codes */

/* Table entry: a leaf (sub == 0) gives the symbol and the bits it uses; a
 * link (root entries of long codes) gives the offset of a second-level
 * table of 2^sub entries, relative to the code's table start. */
typedef struct {
    uint16_t val;
    uint8_t bits, sub;
} hent;

typedef struct {
    uint32_t off;  /* table start in the entropy's table vector */
    uint8_t root;  /* index bits of the first level (0: a single symbol) */
} hcode;

#define MAX_CODE_LEN 15
#define ROOT_BITS 8

static inline uint32_t rev_bits(uint32_t c, unsigned n) {
    uint32_t r = 0;
    for (unsigned i = 0; i < n; i++) r |= ((c >> i) & 1u) << (n - 1 - i);
    return r;
}

/* Checks code lengths as libwebp's BuildHuffmanTable does (not all zero;
 * a single used symbol is a 0-bit code; otherwise the code must be complete)
 * and returns the table size in entries, or 0 if invalid.  With t != NULL
 * also fills the table (t must have that many entries). */
static size_t huff_build(const uint8_t *lens, int n, hent *t, uint8_t *root_out) {
    unsigned count[MAX_CODE_LEN + 1] = {0};
    int nz = 0, single = 0, maxlen = 0;
    for (int s = 0; s < n; s++) {
        count[lens[s]]++;
        if (lens[s]) {
            nz++;
            single = s;
            if (lens[s] > maxlen) maxlen = lens[s];
        }
    }
    if (nz == 0) return 0;
    if (nz == 1) {
        if (t) t[0] = (hent){(uint16_t)single, 0, 0};
        *root_out = 0;
        return 1;
    }
    uint32_t kraft = 0;
    for (int l = 1; l <= MAX_CODE_LEN; l++) kraft += count[l] << (MAX_CODE_LEN - l);
    if (kraft != 1u << MAX_CODE_LEN) return 0;
    unsigned root = maxlen < ROOT_BITS ? (unsigned)maxlen : ROOT_BITS;
    uint32_t next[MAX_CODE_LEN + 2];
    uint32_t code = 0;
    count[0] = 0;
    for (int l = 1; l <= MAX_CODE_LEN; l++) {
        code = (code + count[l - 1]) << 1;
        next[l] = code;
    }
    /* Second-level sizes: the longest code under each root prefix. */
    uint8_t need[1 << ROOT_BITS] = {0};
    uint32_t nxt[MAX_CODE_LEN + 2];
    memcpy(nxt, next, sizeof next);
    for (int s = 0; s < n; s++) {
        unsigned l = lens[s];
        if (!l) continue;
        uint32_t r = rev_bits(nxt[l]++, l);
        if (l > root) {
            uint32_t p = r & ((1u << root) - 1);
            if (l - root > need[p]) need[p] = (uint8_t)(l - root);
        }
    }
    size_t size = (size_t)1 << root;
    uint32_t suboff[1 << ROOT_BITS];
    for (uint32_t p = 0; p < (1u << root); p++) {
        suboff[p] = (uint32_t)size;
        if (need[p]) size += (size_t)1 << need[p];
    }
    *root_out = (uint8_t)root;
    if (!t) return size;
    for (uint32_t p = 0; p < (1u << root); p++)
        if (need[p]) t[p] = (hent){(uint16_t)suboff[p], (uint8_t)root, need[p]};
    for (int s = 0; s < n; s++) {
        unsigned l = lens[s];
        if (!l) continue;
        uint32_t r = rev_bits(next[l]++, l);
        if (l <= root) {
            for (uint32_t k = r; k < (1u << root); k += 1u << l) t[k] = (hent){(uint16_t)s, (uint8_t)l, 0};
        } else {
            uint32_t p = r & ((1u << root) - 1), hi = r >> root;
            uint32_t span = 1u << need[p];
            for (uint32_t k = hi; k < span; k += 1u << (l - root))
                t[suboff[p] + k] = (hent){(uint16_t)s, (uint8_t)(l - root), 0};
        }
    }
    return size;
}

HOT unsigned read_sym(vbr *b, const hent *t, unsigned root) {
    if (b->cnt < 32) br_fill(b);
    hent e = t[b->buf & ((1u << root) - 1)];
    if (e.sub) {
        br_skip(b, root);
        e = t[e.val + (b->buf & ((1u << e.sub) - 1))];
    }
    br_skip(b, e.bits);
    return e.val;
}

/* ======================================================= VP8L decoding */

#define NUM_LITERALS 256
#define NUM_LENGTH_CODES 24
#define NUM_DIST_CODES 40
#define MAX_CACHE_BITS 11
#define MAX_ALPHABET (NUM_LITERALS + NUM_LENGTH_CODES + (1 << MAX_CACHE_BITS))

static const uint8_t code_length_order[19] = {17, 18, 0, 1, 2, 3, 4, 5, 16, 6,
                                              7, 8, 9, 10, 11, 12, 13, 14, 15};

/* (dy, 8 - dx) pairs of the 120 short distance codes, RFC 9649 §4.2.2. */
static const uint8_t code_to_plane[120] = {
    0x18, 0x07, 0x17, 0x19, 0x28, 0x06, 0x27, 0x29, 0x16, 0x1a, 0x26, 0x2a, 0x38, 0x05, 0x37,
    0x39, 0x15, 0x1b, 0x36, 0x3a, 0x25, 0x2b, 0x48, 0x04, 0x47, 0x49, 0x14, 0x1c, 0x35, 0x3b,
    0x46, 0x4a, 0x24, 0x2c, 0x58, 0x45, 0x4b, 0x34, 0x3c, 0x03, 0x57, 0x59, 0x13, 0x1d, 0x56,
    0x5a, 0x23, 0x2d, 0x44, 0x4c, 0x55, 0x5b, 0x33, 0x3d, 0x68, 0x02, 0x67, 0x69, 0x12, 0x1e,
    0x66, 0x6a, 0x22, 0x2e, 0x54, 0x5c, 0x43, 0x4d, 0x65, 0x6b, 0x32, 0x3e, 0x78, 0x01, 0x77,
    0x79, 0x53, 0x5d, 0x11, 0x1f, 0x64, 0x6c, 0x42, 0x4e, 0x76, 0x7a, 0x21, 0x2f, 0x75, 0x7b,
    0x31, 0x3f, 0x63, 0x6d, 0x52, 0x5e, 0x00, 0x74, 0x7c, 0x41, 0x4f, 0x10, 0x20, 0x62, 0x6e,
    0x30, 0x73, 0x7d, 0x51, 0x5f, 0x40, 0x72, 0x7e, 0x61, 0x6f, 0x50, 0x71, 0x7f, 0x60, 0x70};

typedef struct {
    hcode c[5]; /* green (+lengths, cache), red, blue, alpha, distance */
} hgroup;

typedef struct {
    int cache_bits;     /* 0: no colour cache */
    int meta_bits, meta_w; /* meta_bits 0: one group for the whole image */
    uint32_t *meta;     /* group number per tile (compacted) */
    hgroup *groups;
    size_t ngroups;
    hent *tab;
    size_t ntab, cap;
} entropy;

typedef struct {
    vbr br;
    const char *name;
    fdd_error *err;
    uint8_t lens[MAX_ALPHABET];
} vl_dec;

static void entropy_free(entropy *E) {
    fdd_free(E->meta);
    fdd_free(E->groups);
    fdd_free(E->tab);
    memset(E, 0, sizeof *E);
}

static fdd_status vl_bad(vl_dec *D, const char *why) {
    return fdd_fail(D->err, FDD_E_FORMAT, "%s: invalid WebP lossless data: %s", D->name, why);
}
static fdd_status vl_nomem(vl_dec *D) {
    return fdd_fail(D->err, FDD_E_NOMEM, "%s: out of memory decoding WebP", D->name);
}
static fdd_status vl_eos(vl_dec *D) {
    return fdd_fail(D->err, FDD_E_FORMAT, "%s: truncated WebP lossless data", D->name);
}

/* Reads one prefix code of `alphabet` symbols (ReadHuffmanCode).  With E
 * the table is appended to E's vector and *out set; without, the code is
 * only checked (libwebp checks the codes of unused groups too). */
static fdd_status read_code(vl_dec *D, int alphabet, entropy *E, hcode *out) {
    vbr *b = &D->br;
    uint8_t *lens = D->lens;
    memset(lens, 0, (size_t)alphabet);
    if (br_bits(b, 1)) { /* simple code: one or two symbols */
        int nsym = (int)br_bits(b, 1) + 1;
        int first8 = (int)br_bits(b, 1);
        unsigned s = br_bits(b, first8 ? 8 : 1);
        /* libwebp stores symbols beyond the alphabet where the table
         * builder never looks: they are ignored. */
        if ((int)s < alphabet) lens[s] = 1;
        if (nsym == 2) {
            s = br_bits(b, 8);
            if ((int)s < alphabet) lens[s] = 1;
        }
    } else {
        uint8_t cl[19] = {0};
        int ncodes = (int)br_bits(b, 4) + 4;
        for (int i = 0; i < ncodes; i++) cl[code_length_order[i]] = (uint8_t)br_bits(b, 3);
        hent clt[1 << 7];
        uint8_t clroot;
        if (!huff_build(cl, 19, clt, &clroot)) return vl_bad(D, "invalid code-length code");
        int max_symbol = alphabet;
        if (br_bits(b, 1)) {
            unsigned nb = 2 + 2 * br_bits(b, 3);
            max_symbol = 2 + (int)br_bits(b, nb);
            if (max_symbol > alphabet) return vl_bad(D, "too many code lengths");
        }
        int sym = 0, prev = 8;
        while (sym < alphabet) {
            if (max_symbol-- == 0) break;
            if (br_eos(b)) return vl_eos(D);
            unsigned c = read_sym(b, clt, clroot);
            if (c < 16) {
                lens[sym++] = (uint8_t)c;
                if (c) prev = (int)c;
            } else {
                static const uint8_t extra[3] = {2, 3, 7}, base[3] = {3, 3, 11};
                int rep = (int)br_bits(b, extra[c - 16]) + base[c - 16];
                if (sym + rep > alphabet) return vl_bad(D, "code-length repeat past the alphabet");
                memset(lens + sym, c == 16 ? prev : 0, (size_t)rep);
                sym += rep;
            }
        }
    }
    if (br_eos(b)) return vl_eos(D);
    uint8_t root;
    size_t size = huff_build(lens, alphabet, NULL, &root);
    if (!size) return vl_bad(D, "invalid prefix code");
    if (!E) return FDD_OK;
    if (E->ntab + size > E->cap) {
        size_t cap = E->cap ? E->cap : 4096;
        while (cap < E->ntab + size) cap *= 2;
        hent *t = fdd_realloc(E->tab, cap * sizeof *t);
        if (!t) return vl_nomem(D);
        E->tab = t;
        E->cap = cap;
    }
    huff_build(lens, alphabet, E->tab + E->ntab, &root);
    out->off = (uint32_t)E->ntab;
    out->root = root;
    E->ntab += size;
    return FDD_OK;
}

static inline uint32_t sub_size(uint32_t size, int bits) {
    return (size + (1u << bits) - 1) >> bits;
}

static fdd_status decode_subimage(vl_dec *D, uint32_t w, uint32_t h, uint32_t **out);

/* Colour cache bits, meta prefix codes (entropy image, top level only) and
 * the prefix-code groups: ReadHuffmanCodes. */
static fdd_status read_entropy(vl_dec *D, uint32_t w, uint32_t h, bool top, entropy *E) {
    vbr *b = &D->br;
    fdd_status s;
    memset(E, 0, sizeof *E);
    if (br_bits(b, 1)) {
        E->cache_bits = (int)br_bits(b, 4);
        if (E->cache_bits < 1 || E->cache_bits > MAX_CACHE_BITS)
            return vl_bad(D, "invalid colour cache size");
    }
    size_t ngroups = 1;
    uint8_t *used = NULL;
    int32_t *map = NULL;
    if (top && br_bits(b, 1)) {
        E->meta_bits = (int)br_bits(b, 3) + 2;
        uint32_t mw = sub_size(w, E->meta_bits), mh = sub_size(h, E->meta_bits);
        if ((s = decode_subimage(D, mw, mh, &E->meta))) return s;
        E->meta_w = (int)mw;
        size_t n = (size_t)mw * mh;
        uint32_t maxg = 0;
        for (size_t i = 0; i < n; i++) {
            E->meta[i] = (E->meta[i] >> 8) & 0xffff;
            if (E->meta[i] > maxg) maxg = E->meta[i];
        }
        ngroups = (size_t)maxg + 1;
        used = fdd_calloc(ngroups, 1);
        map = fdd_malloc(ngroups * sizeof *map);
        if (!used || !map) {
            fdd_free(used);
            fdd_free(map);
            entropy_free(E);
            return vl_nomem(D);
        }
        for (size_t i = 0; i < n; i++) used[E->meta[i]] = 1;
    }
    size_t nused = 0;
    for (size_t g = 0; g < ngroups; g++) {
        if (map) map[g] = used[g] ? (int32_t)nused : -1;
        if (!used || used[g]) nused++;
    }
    E->groups = fdd_calloc(nused, sizeof *E->groups);
    if (!E->groups) {
        s = vl_nomem(D);
        goto done;
    }
    E->ngroups = nused;
    int green = NUM_LITERALS + NUM_LENGTH_CODES + (E->cache_bits ? 1 << E->cache_bits : 0);
    const int alphabet[5] = {green, NUM_LITERALS, NUM_LITERALS, NUM_LITERALS, NUM_DIST_CODES};
    for (size_t g = 0; g < ngroups; g++) {
        hgroup *hg = (!map || map[g] >= 0) ? &E->groups[map ? (size_t)map[g] : 0] : NULL;
        for (int j = 0; j < 5; j++)
            if ((s = read_code(D, alphabet[j], hg ? E : NULL, hg ? &hg->c[j] : NULL))) goto done;
    }
    if (map) {
        size_t n = (size_t)E->meta_w * sub_size(h, E->meta_bits);
        for (size_t i = 0; i < n; i++) E->meta[i] = (uint32_t)map[E->meta[i]];
    }
    s = FDD_OK;
done:
    fdd_free(used);
    fdd_free(map);
    if (s) entropy_free(E);
    return s;
}

/* Length or distance from its prefix symbol and extra bits. */
HOT uint32_t prefix_value(vbr *b, unsigned sym) {
    if (sym < 4) return sym + 1;
    unsigned extra = (sym - 2) >> 1;
    uint32_t offset = (2u + (sym & 1)) << extra;
    return offset + br_bits(b, extra) + 1;
}

static inline uint32_t plane_distance(uint32_t w, uint32_t code) {
    if (code > 120) return code - 120;
    int dc = code_to_plane[code - 1];
    int64_t dist = (int64_t)(dc >> 4) * w + (8 - (dc & 0xf));
    return dist >= 1 ? (uint32_t)dist : 1;
}

/* The LZ77-coded pixels of a w x h image into pix.  alpha8: the ALPH rule of
 * libwebp's 8-bit alpha path, where running out of data exactly at the last
 * pixel is not an error. */
static fdd_status decode_pixels(vl_dec *D, const entropy *E, uint32_t w, uint32_t h,
                                uint32_t *pix, bool alpha8) {
    vbr *b = &D->br;
    const size_t total = (size_t)w * h;
    size_t pos = 0;
    uint32_t col = 0, row = 0;
    uint32_t cache[1 << MAX_CACHE_BITS];
    const unsigned cshift = 32u - (unsigned)E->cache_bits;
    const uint32_t mask = E->meta_bits ? (1u << E->meta_bits) - 1 : 0xffffffffu;
    if (E->cache_bits) memset(cache, 0, sizeof(uint32_t) << E->cache_bits);
    const hgroup *g = &E->groups[0];
    const hent *T = E->tab;
#define CACHE_PUT(px) \
    do { if (E->cache_bits) cache[(0x1e35a7bdu * (uint32_t)(px)) >> cshift] = (px); } while (0)
    while (pos < total) {
        if (br_eos(b)) break;
        if (E->meta_bits && (col & mask) == 0)
            g = &E->groups[E->meta[(size_t)(row >> E->meta_bits) * E->meta_w + (col >> E->meta_bits)]];
        unsigned code = read_sym(b, T + g->c[0].off, g->c[0].root);
        uint32_t px;
        if (code < NUM_LITERALS) {
            unsigned r = read_sym(b, T + g->c[1].off, g->c[1].root);
            unsigned bl = read_sym(b, T + g->c[2].off, g->c[2].root);
            unsigned a = read_sym(b, T + g->c[3].off, g->c[3].root);
            px = ((uint32_t)a << 24) | ((uint32_t)r << 16) | ((uint32_t)code << 8) | bl;
        } else if (code < NUM_LITERALS + NUM_LENGTH_CODES) {
            uint32_t len = prefix_value(b, code - NUM_LITERALS);
            unsigned dsym = read_sym(b, T + g->c[4].off, g->c[4].root);
            uint32_t dist = plane_distance(w, prefix_value(b, dsym));
            if (br_eos(b)) break;
            if (dist > pos || len > total - pos)
                return vl_bad(D, "backward reference outside the image");
            for (uint32_t k = 0; k < len; k++) {
                uint32_t c = pix[pos - dist];
                pix[pos++] = c;
                CACHE_PUT(c);
            }
            col += len;
            while (col >= w) {
                col -= w;
                row++;
            }
            if (E->meta_bits && pos < total)
                g = &E->groups[E->meta[(size_t)(row >> E->meta_bits) * E->meta_w +
                                       (col >> E->meta_bits)]];
            continue;
        } else {
            /* The alphabet only has cache codes when there is a cache. */
            px = cache[code - (NUM_LITERALS + NUM_LENGTH_CODES)];
        }
        pix[pos++] = px;
        CACHE_PUT(px);
        if (++col == w) {
            col = 0;
            row++;
        }
    }
#undef CACHE_PUT
    if (br_eos(b) && !(alpha8 && pos == total)) return vl_eos(D);
    return FDD_OK;
}

/* A sub-image (transform data, palette, entropy image): no transforms, no
 * meta codes. */
static fdd_status decode_subimage(vl_dec *D, uint32_t w, uint32_t h, uint32_t **out) {
    entropy E;
    *out = NULL;
    fdd_status s = read_entropy(D, w, h, false, &E);
    if (s) return s;
    uint32_t *pix = fdd_malloc((size_t)w * h * sizeof *pix);
    if (!pix) {
        entropy_free(&E);
        return vl_nomem(D);
    }
    s = decode_pixels(D, &E, w, h, pix, false);
    entropy_free(&E);
    if (s) {
        fdd_free(pix);
        return s;
    }
    *out = pix;
    return FDD_OK;
}

enum { T_PREDICT = 0, T_CROSS = 1, T_SUBGREEN = 2, T_INDEX = 3 };

typedef struct {
    int type, bits;
    uint32_t xsize;  /* width of the image the transform outputs */
    uint32_t *data;  /* predictor/cross-colour tiles, or the 256-entry palette */
} vtransform;

static inline uint32_t add_px(uint32_t a, uint32_t b) {
    return (((a & 0xff00ff00u) + (b & 0xff00ff00u)) & 0xff00ff00u) |
           (((a & 0x00ff00ffu) + (b & 0x00ff00ffu)) & 0x00ff00ffu);
}
static inline uint32_t avg2(uint32_t a, uint32_t b) {
    return (((a ^ b) & 0xfefefefeu) >> 1) + (a & b);
}
/* (a * b) >> 5 with the arithmetic (flooring) shift libwebp relies on, for
 * int8 a and b, without shifting a negative number (implementation-defined
 * in C): |a * b| <= 16384, a multiple of 32. */
static inline int delta5(int a, int b) { return ((a * b + 16384) >> 5) - 512; }
static inline uint32_t clip255(int v) { return v < 0 ? 0 : v > 255 ? 255 : (uint32_t)v; }
static inline int absi(int v) { return v < 0 ? -v : v; }

static uint32_t select_px(uint32_t t, uint32_t l, uint32_t tl) {
    int d = 0;
    for (int sh = 0; sh < 32; sh += 8) {
        int a = (int)((t >> sh) & 0xff), bb = (int)((l >> sh) & 0xff), c = (int)((tl >> sh) & 0xff);
        d += absi(bb - c) - absi(a - c);
    }
    return d <= 0 ? t : l;
}
static uint32_t add_sub_full(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t r = 0;
    for (int sh = 0; sh < 32; sh += 8)
        r |= clip255((int)((a >> sh) & 0xff) + (int)((b >> sh) & 0xff) - (int)((c >> sh) & 0xff)) << sh;
    return r;
}
static uint32_t add_sub_half(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t avg = avg2(a, b), r = 0;
    for (int sh = 0; sh < 32; sh += 8) {
        int x = (int)((avg >> sh) & 0xff), y = (int)((c >> sh) & 0xff);
        r |= clip255(x + (x - y) / 2) << sh; /* C division truncates, as libwebp's */
    }
    return r;
}

HOT uint32_t predict(unsigned mode, uint32_t L, const uint32_t *top) {
    switch (mode) {
    case 1: return L;
    case 2: return top[0];
    case 3: return top[1];
    case 4: return top[-1];
    case 5: return avg2(avg2(L, top[1]), top[0]);
    case 6: return avg2(L, top[-1]);
    case 7: return avg2(L, top[0]);
    case 8: return avg2(top[-1], top[0]);
    case 9: return avg2(top[0], top[1]);
    case 10: return avg2(avg2(L, top[-1]), avg2(top[0], top[1]));
    case 11: return select_px(top[0], L, top[-1]);
    case 12: return add_sub_full(L, top[0], top[-1]);
    case 13: return add_sub_half(L, top[0], top[-1]);
    default: return 0xff000000u; /* 0, and 14/15 as libwebp */
    }
}

/* Inverse transform in place on p (t->xsize x h pixels; colour indexing
 * expands from its packed width). */
static void inverse_transform(const vtransform *t, uint32_t *p, uint32_t h) {
    const uint32_t W = t->xsize;
    switch (t->type) {
    case T_PREDICT: {
        uint32_t tw = sub_size(W, t->bits);
        p[0] = add_px(p[0], 0xff000000u);
        for (uint32_t x = 1; x < W; x++) p[x] = add_px(p[x], p[x - 1]);
        for (uint32_t y = 1; y < h; y++) {
            uint32_t *r = p + (size_t)y * W;
            const uint32_t *top = r - W;
            const uint32_t *modes = t->data + (size_t)(y >> t->bits) * tw;
            r[0] = add_px(r[0], top[0]);
            /* One mode per tile: dispatch once per run of pixels. */
            for (uint32_t x = 1; x < W;) {
                uint32_t x1 = ((x >> t->bits) + 1) << t->bits;
                if (x1 > W) x1 = W;
                unsigned m = (modes[x >> t->bits] >> 8) & 0xf;
                switch (m) {
#define RUN_MODE(k) case k: for (; x < x1; x++) r[x] = add_px(r[x], predict(k, r[x - 1], top + x)); break;
                RUN_MODE(1) RUN_MODE(2) RUN_MODE(3) RUN_MODE(4) RUN_MODE(5) RUN_MODE(6) RUN_MODE(7)
                RUN_MODE(8) RUN_MODE(9) RUN_MODE(10) RUN_MODE(11) RUN_MODE(12) RUN_MODE(13)
#undef RUN_MODE
                default: for (; x < x1; x++) r[x] = add_px(r[x], 0xff000000u); break;
                }
            }
        }
        break;
    }
    case T_CROSS: {
        uint32_t tw = sub_size(W, t->bits);
        for (uint32_t y = 0; y < h; y++) {
            uint32_t *r = p + (size_t)y * W;
            const uint32_t *tiles = t->data + (size_t)(y >> t->bits) * tw;
            for (uint32_t x = 0; x < W; x++) {
                uint32_t m = tiles[x >> t->bits], argb = r[x];
                int g2r = (int8_t)(m & 0xff), g2b = (int8_t)((m >> 8) & 0xff),
                    r2b = (int8_t)((m >> 16) & 0xff);
                int green = (int8_t)(argb >> 8);
                int red = (int)((argb >> 16) & 0xff), blue = (int)(argb & 0xff);
                red = (red + delta5(g2r, green)) & 0xff;
                blue += delta5(g2b, green);
                blue += delta5(r2b, (int8_t)red);
                blue &= 0xff;
                r[x] = (argb & 0xff00ff00u) | ((uint32_t)red << 16) | (uint32_t)blue;
            }
        }
        break;
    }
    case T_SUBGREEN: {
        size_t n = (size_t)W * h;
        for (size_t i = 0; i < n; i++) {
            uint32_t a = p[i], g = (a >> 8) & 0xff;
            p[i] = (a & 0xff00ff00u) | ((a + (g << 16)) & 0x00ff0000u) | ((a + g) & 0xffu);
        }
        break;
    }
    case T_INDEX: {
        const uint32_t *pal = t->data;
        if (t->bits == 0) {
            size_t n = (size_t)W * h;
            for (size_t i = 0; i < n; i++) p[i] = pal[(p[i] >> 8) & 0xff];
            break;
        }
        /* Backwards, so the packed input is read before it is overwritten. */
        const uint32_t pw = sub_size(W, t->bits), bpp = 8u >> t->bits;
        const uint32_t pmask = (1u << t->bits) - 1, vmask = (1u << bpp) - 1;
        for (uint32_t y = h; y-- > 0;)
            for (uint32_t x = W; x-- > 0;) {
                uint32_t packed = p[(size_t)y * pw + (x >> t->bits)];
                uint32_t idx = (packed >> (8 + (x & pmask) * bpp)) & vmask;
                p[(size_t)y * W + x] = pal[idx];
            }
        break;
    }
    }
}

typedef struct {
    vtransform t[4];
    int nt;
    uint32_t xsize; /* width of the coded image after the transforms */
    entropy E;
} vl_header;

static void header_free(vl_header *H) {
    for (int i = 0; i < H->nt; i++) fdd_free(H->t[i].data);
    entropy_free(&H->E);
    memset(H, 0, sizeof *H);
}

/* Transforms and entropy codes of the top-level image (DecodeImageStream
 * with is_level0), before its pixels. */
static fdd_status read_header(vl_dec *D, uint32_t w, uint32_t h, vl_header *H) {
    vbr *b = &D->br;
    fdd_status s;
    unsigned seen = 0;
    memset(H, 0, sizeof *H);
    H->xsize = w;
    while (br_bits(b, 1)) {
        int type = (int)br_bits(b, 2);
        if (seen & (1u << type)) {
            header_free(H);
            return vl_bad(D, "transform used twice");
        }
        seen |= 1u << type;
        vtransform *t = &H->t[H->nt++];
        t->type = type;
        t->xsize = H->xsize;
        if (type == T_PREDICT || type == T_CROSS) {
            t->bits = (int)br_bits(b, 3) + 2;
            s = decode_subimage(D, sub_size(H->xsize, t->bits), sub_size(h, t->bits), &t->data);
        } else if (type == T_INDEX) {
            uint32_t n = br_bits(b, 8) + 1, *pal;
            t->bits = n > 16 ? 0 : n > 4 ? 1 : n > 2 ? 2 : 3;
            H->xsize = sub_size(H->xsize, t->bits);
            s = decode_subimage(D, n, 1, &pal);
            if (!s) {
                /* Delta-coded palette; entries past it are transparent black. */
                t->data = fdd_calloc(256, sizeof(uint32_t));
                if (!t->data) s = vl_nomem(D);
                else {
                    t->data[0] = pal[0];
                    for (uint32_t i = 1; i < n; i++) t->data[i] = add_px(pal[i], t->data[i - 1]);
                }
                fdd_free(pal);
            }
        } else {
            s = FDD_OK;
        }
        if (s) {
            header_free(H);
            return s;
        }
    }
    if ((s = read_entropy(D, H->xsize, h, true, &H->E))) {
        header_free(H);
        return s;
    }
    return FDD_OK;
}

/* Decodes a VP8L image stream (after the 5-byte header for images, the whole
 * ALPH payload for alpha) into a malloc'ed w*h ARGB buffer, or only checks
 * it when argb is NULL.  alpha: ALPH rules (libwebp's 8-bit path). */
static fdd_status vl_decode_stream(const uint8_t *d, size_t len, size_t skip_bits, uint32_t w,
                                   uint32_t h, bool alpha, uint32_t **argb, const char *name,
                                   fdd_error *err) {
    vl_dec *D = fdd_malloc(sizeof *D);
    if (!D) return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory decoding WebP", name);
    D->name = name;
    D->err = err;
    br_init(&D->br, d, len);
    if (skip_bits) br_bits(&D->br, (unsigned)skip_bits);
    vl_header H;
    fdd_status s = read_header(D, w, h, &H);
    if (s) {
        fdd_free(D);
        return s;
    }
    bool alpha8 = false;
    if (alpha && H.nt == 1 && H.t[0].type == T_INDEX && H.E.cache_bits == 0) {
        alpha8 = true;
        for (size_t g = 0; g < H.E.ngroups; g++)
            for (int j = 1; j <= 3; j++) alpha8 = alpha8 && H.E.groups[g].c[j].root == 0;
    }
    uint32_t *pix = fdd_malloc((size_t)w * h * sizeof *pix);
    if (!pix) {
        header_free(&H);
        fdd_free(D);
        return fdd_fail(err, FDD_E_NOMEM, "%s: cannot allocate %ux%u pixels", name, w, h);
    }
    s = decode_pixels(D, &H.E, H.xsize, h, pix, alpha8);
    if (!s && argb)
        for (int i = H.nt; i-- > 0;) inverse_transform(&H.t[i], pix, h);
    header_free(&H);
    fdd_free(D);
    if (s || !argb) {
        fdd_free(pix);
        return s;
    }
    *argb = pix;
    return FDD_OK;
}

/* ============================================================ container */

typedef struct {
    size_t off, size;   /* chunk start and 8 + padded payload; size 0: none */
} span;

typedef struct {
    span img, alph;
    bool lossless;
    int frame_num;      /* 0: the frame has no image-bearing chunk */
    bool complete;      /* has its image chunk */
    uint32_t w, h;      /* from the bitstream */
    int64_t x, y;       /* animation frame offset */
} wframe;

typedef struct {
    const uint8_t *d;
    size_t end, pos;    /* end: end of the RIFF chunk */
    const char *name;
    fdd_error *err;
    bool ext, anim;
    unsigned flags;
    uint32_t cw, ch;    /* canvas */
    wframe first;       /* the frame that gets decoded */
    int nframes;
    bool last_complete; /* AddFrame: no frame after an incomplete one */
    bool has_frame;
} wparse;

static bool tag_is(const uint8_t *p, const char *t) { return memcmp(p, t, 4) == 0; }

/* WebPGetFeatures on one VP8/VP8L chunk (header + available payload). */
static fdd_status chunk_features(wparse *P, size_t off, size_t avail, uint32_t psize,
                                 wframe *f) {
    const uint8_t *q = P->d + off + 8;
    if (tag_is(P->d + off, "VP8L")) {
        if (avail < 5 || q[0] != 0x2f || (q[4] >> 5) != 0)
            return bad(P->err, P->name, "bad VP8L header");
        uint32_t v = fdd_le32(q + 1);
        f->w = (v & 0x3fff) + 1;
        f->h = ((v >> 14) & 0x3fff) + 1;
        f->lossless = true;
    } else {
        if (avail < 10 || q[3] != 0x9d || q[4] != 0x01 || q[5] != 0x2a)
            return bad(P->err, P->name, "bad VP8 frame header");
        uint32_t bits = q[0] | ((uint32_t)q[1] << 8) | ((uint32_t)q[2] << 16);
        uint32_t w = fdd_le16(q + 6) & 0x3fff, h = fdd_le16(q + 8) & 0x3fff;
        if (bits & 1) return bad(P->err, P->name, "VP8 frame is not a key frame");
        if (((bits >> 1) & 7) > 3) return bad(P->err, P->name, "unknown VP8 profile");
        if (!((bits >> 4) & 1)) return bad(P->err, P->name, "invisible VP8 frame");
        if ((bits >> 5) >= psize) return bad(P->err, P->name, "VP8 partition size exceeds the chunk");
        if (!w || !h) return bad(P->err, P->name, "VP8 frame has zero size");
        f->w = w;
        f->h = h;
        f->lossless = false;
    }
    return FDD_OK;
}

/* libwebp's StoreFrame: the ALPH and VP8/VP8L chunks from the current
 * position, stopping at the first other chunk. */
static fdd_status store_frame(wparse *P, int frame_num, size_t min_size, wframe *f) {
    int alpha_chunks = 0, image_chunks = 0;
    if (P->end - P->pos < 8 || P->end - P->pos < min_size)
        return bad(P->err, P->name, "truncated frame");
    for (;;) {
        size_t start = P->pos;
        const uint8_t *c = P->d + start;
        uint32_t psize = fdd_le32(c + 4);
        if (psize > MAX_CHUNK_PAYLOAD) return bad(P->err, P->name, "invalid chunk size");
        size_t padded = (size_t)psize + (psize & 1);
        if (padded > P->end - start - 8)
            return bad(P->err, P->name, "chunk extends past the end of the RIFF data");
        bool done = false;
        if (tag_is(c, "ALPH") && alpha_chunks == 0) {
            alpha_chunks++;
            f->alph = (span){start, 8 + padded};
            f->frame_num = frame_num;
            P->pos = start + 8 + padded;
        } else if (tag_is(c, "VP8L") && alpha_chunks > 0) {
            return bad(P->err, P->name, "ALPH chunk before a VP8L chunk");
        } else if ((tag_is(c, "VP8 ") || tag_is(c, "VP8L")) && image_chunks == 0) {
            fdd_status s = chunk_features(P, start, padded, psize, f);
            if (s) return s;
            image_chunks++;
            f->img = (span){start, 8 + padded};
            f->frame_num = frame_num;
            f->complete = true;
            P->pos = start + 8 + padded;
        } else {
            done = true;
        }
        if (P->pos == P->end) return FDD_OK;
        if (P->end - P->pos < 8) return bad(P->err, P->name, "truncated chunk header");
        if (done) return FDD_OK;
    }
}

/* AddFrame + the per-frame checks of IsValidExtendedFormat. */
static fdd_status add_frame(wparse *P, const wframe *f) {
    if (P->has_frame && !P->last_complete) return bad(P->err, P->name, "frame without image data");
    if (!P->has_frame) P->first = *f;
    P->has_frame = true;
    P->last_complete = f->complete;
    P->nframes++;
    return FDD_OK;
}

static fdd_status check_frame(wparse *P, const wframe *f) {
    if (!f->complete) return bad(P->err, P->name, "frame without image data");
    if (f->alph.size && f->alph.off > f->img.off) return bad(P->err, P->name, "ALPH chunk after the image");
    if (!P->anim) {
        if (f->x || f->y || f->w != P->cw || f->h != P->ch)
            return bad(P->err, P->name, "image size differs from the canvas size");
    } else if (f->x + f->w > P->cw || f->y + f->h > P->ch) {
        return bad(P->err, P->name, "animation frame outside the canvas");
    }
    return FDD_OK;
}

static fdd_status parse_single(wparse *P) {
    if (P->has_frame) return bad(P->err, P->name, "more than one image");
    if (P->end - P->pos < 8) return bad(P->err, P->name, "truncated chunk header");
    wframe f;
    memset(&f, 0, sizeof f);
    fdd_status s = store_frame(P, 1, 0, &f);
    if (s) return s;
    if (!(P->flags & 0x10)) f.alph.size = 0; /* alpha is only used with the VP8X alpha flag */
    if (!P->ext) {
        P->cw = f.w;
        P->ch = f.h;
    }
    return add_frame(P, &f);
}

static fdd_status parse_anmf(wparse *P, size_t chunk_padded) {
    if (P->end - P->pos < 16 || chunk_padded < 16) return bad(P->err, P->name, "truncated ANMF chunk");
    const uint8_t *q = P->d + P->pos;
    wframe f;
    memset(&f, 0, sizeof f);
    f.x = 2 * (int64_t)(fdd_le32(q) & 0xffffff);
    f.y = 2 * (int64_t)(fdd_le32(q + 3) & 0xffffff);
    uint64_t fw = (fdd_le32(q + 6) & 0xffffff) + 1, fh = (fdd_le32(q + 9) & 0xffffff) + 1;
    if (fw * fh >= (1ull << 32)) return bad(P->err, P->name, "animation frame too large");
    P->pos += 16;
    size_t start = P->pos, payload = chunk_padded - 16;
    fdd_status s = store_frame(P, P->nframes + 1, payload, &f);
    if (s) return s;
    if (P->pos - start > payload) return bad(P->err, P->name, "frame data extends past its ANMF chunk");
    if (P->anim && f.frame_num > 0) {
        if ((s = add_frame(P, &f))) return s;
        if ((s = check_frame(P, &f))) return s;
    }
    return FDD_OK;
}

static fdd_status parse_vp8x(wparse *P) {
    const uint8_t *c = P->d + P->pos;
    uint32_t sz = fdd_le32(c + 4);
    if (sz > MAX_CHUNK_PAYLOAD || sz < 10) return bad(P->err, P->name, "invalid VP8X chunk size");
    size_t padded = (size_t)sz + (sz & 1);
    if (padded > P->end - P->pos - 8) return bad(P->err, P->name, "VP8X chunk extends past the RIFF data");
    P->ext = true;
    P->flags = c[8];
    P->anim = (P->flags & 0x02) != 0;
    P->cw = (c[12] | (uint32_t)c[13] << 8 | (uint32_t)c[14] << 16) + 1;
    P->ch = (c[15] | (uint32_t)c[16] << 8 | (uint32_t)c[17] << 16) + 1;
    if ((uint64_t)P->cw * P->ch >= (1ull << 32)) return bad(P->err, P->name, "canvas too large");
    P->pos += 8 + padded;
    if (P->end - P->pos < 8) return bad(P->err, P->name, "no image data");
    int anim_chunks = 0;
    fdd_status s;
    for (;;) {
        const uint8_t *q = P->d + P->pos;
        uint32_t csize = fdd_le32(q + 4);
        if (csize > MAX_CHUNK_PAYLOAD) return bad(P->err, P->name, "invalid chunk size");
        size_t cpad = (size_t)csize + (csize & 1);
        if (cpad > P->end - P->pos - 8) return bad(P->err, P->name, "chunk extends past the end of the RIFF data");
        if (tag_is(q, "VP8X")) return bad(P->err, P->name, "second VP8X chunk");
        if (tag_is(q, "ALPH") || tag_is(q, "VP8 ") || tag_is(q, "VP8L")) {
            if (anim_chunks > 0 || P->anim) return bad(P->err, P->name, "still image inside an animation");
            if ((s = parse_single(P))) return s;
        } else if (tag_is(q, "ANIM")) {
            if (cpad < 6) return bad(P->err, P->name, "truncated ANIM chunk");
            anim_chunks++;
            P->pos += 8 + cpad;
        } else if (tag_is(q, "ANMF")) {
            if (anim_chunks == 0) return bad(P->err, P->name, "ANMF chunk before ANIM");
            P->pos += 8;
            if ((s = parse_anmf(P, cpad))) return s;
        } else {
            P->pos += 8 + cpad; /* ICCP, EXIF, XMP and unknown chunks */
        }
        if (P->pos == P->end) break;
        if (P->end - P->pos < 8) return bad(P->err, P->name, "truncated chunk header");
    }
    /* IsValidExtendedFormat */
    if (!P->has_frame) return bad(P->err, P->name, "no image data");
    if (P->flags & ~0x3eu) return bad(P->err, P->name, "reserved VP8X flags set");
    if (!P->last_complete) return bad(P->err, P->name, "frame without image data");
    if (!P->anim) return check_frame(P, &P->first);
    return FDD_OK;
}

/* ALPH of a lossy image: checked as libwebp's alpha decoder would, since a
 * failure there fails the file; its values never reach Pillow's RGB. */
static fdd_status check_alpha(wparse *P, const wframe *f) {
    const uint8_t *a = P->d + f->alph.off + 8;
    size_t n = fdd_le32(P->d + f->alph.off + 4); /* unpadded, as libwebp */
    if (n <= 1) return bad(P->err, P->name, "empty ALPH chunk");
    unsigned method = a[0] & 3, filter = (a[0] >> 2) & 3, pre = (a[0] >> 4) & 3, rsrv = a[0] >> 6;
    (void)filter; /* every filter value is valid */
    if (method > 1 || pre > 1 || rsrv) return bad(P->err, P->name, "bad ALPH header");
    if (method == 0) {
        if (n - 1 < (uint64_t)f->w * f->h) return bad(P->err, P->name, "truncated ALPH data");
        return FDD_OK;
    }
    return vl_decode_stream(a + 1, n - 1, 0, f->w, f->h, true, NULL, P->name, P->err);
}

static void argb_to_rgb(const uint32_t *argb, uint32_t w, uint32_t h, uint8_t *rgb, size_t stride) {
    for (uint32_t y = 0; y < h; y++) {
        const uint32_t *r = argb + (size_t)y * w;
        uint8_t *o = rgb + (size_t)y * stride;
        for (uint32_t x = 0; x < w; x++) {
            o[3 * x] = (uint8_t)(r[x] >> 16);
            o[3 * x + 1] = (uint8_t)(r[x] >> 8);
            o[3 * x + 2] = (uint8_t)r[x];
        }
    }
}

/* Decodes lossy frame f into rgb (frame size, 3 bytes a pixel, rows stride
 * bytes apart).  The payload handed over includes the pad byte of an odd
 * chunk: libwebp's decoder sees it too. */
static fdd_status decode_lossy(wparse *P, const wframe *f, uint8_t *rgb, size_t stride) {
    const uint8_t *payload = P->d + f->img.off + 8;
    size_t plen = f->img.size - 8;
    fdd_status s;
    if (stride == (size_t)f->w * 3) {
        s = fdd_vp8_decode(payload, plen, (int)f->w, (int)f->h, P->name, rgb, P->err);
    } else {
        uint8_t *tmp = fdd_malloc((size_t)f->w * f->h * 3);
        if (!tmp) return fdd_fail(P->err, FDD_E_NOMEM, "%s: out of memory decoding WebP", P->name);
        s = fdd_vp8_decode(payload, plen, (int)f->w, (int)f->h, P->name, tmp, P->err);
        if (!s)
            for (uint32_t y = 0; y < f->h; y++)
                memcpy(rgb + (size_t)y * stride, tmp + (size_t)y * f->w * 3, (size_t)f->w * 3);
        fdd_free(tmp);
    }
    if (s) return s;
    if (f->alph.size) return check_alpha(P, f);
    return FDD_OK;
}

fdd_status fdd_decode_webp(const uint8_t *data, size_t len, const char *name, fdd_image *out,
                           fdd_error *err) {
    memset(out, 0, sizeof *out);
    /* Pillow's _accept: RIFF....WEBP then one of the three image chunks. */
    if (len < 16 || memcmp(data, "RIFF", 4) || memcmp(data + 8, "WEBP", 4) ||
        !(tag_is(data + 12, "VP8 ") || tag_is(data + 12, "VP8L") || tag_is(data + 12, "VP8X")))
        return fdd_fail(err, FDD_E_UNSUPPORTED,
                        "%s: unsupported format: RIFF WebP without a VP8/VP8L/VP8X chunk", name);
    if (len < 20) return bad(err, name, "truncated file");
    uint32_t riff = fdd_le32(data + 4);
    if (riff < 8 || riff > MAX_CHUNK_PAYLOAD) return bad(err, name, "invalid RIFF size");
    if ((uint64_t)riff + 8 > len)
        return fdd_fail(err, FDD_E_FORMAT, "%s: truncated WebP file (RIFF size %u, file %zu bytes)",
                        name, riff, len);
    wparse P;
    memset(&P, 0, sizeof P);
    P.d = data;
    P.end = (size_t)riff + 8;
    P.pos = 12;
    P.name = name;
    P.err = err;
    if (P.end - P.pos < 8) return bad(err, name, "truncated chunk header");
    fdd_status s = tag_is(data + 12, "VP8X") ? parse_vp8x(&P) : parse_single(&P);
    if (s) return s;
    /* Canvas: Pillow's bomb check, before any pixel memory. */
    uint64_t px = (uint64_t)P.cw * P.ch;
    if (px > FDD_IMAGE_MAX_PIXELS) return fdd_image_alloc(out, P.cw, P.ch, name, err);
    const wframe *f = &P.first;
    uint32_t *argb = NULL;
    if (f->lossless) { /* its headers are checked before the canvas is allocated */
        s = vl_decode_stream(data + f->img.off + 8, f->img.size - 8, 40, f->w, f->h, false, &argb,
                             name, err);
        if (s) return s;
    }
    if ((s = fdd_image_alloc(out, P.cw, P.ch, name, err))) {
        fdd_free(argb);
        return s;
    }
    /* WebPAnimDecoder: an animation's first frame on a transparent black
     * canvas; a still image fills the canvas. */
    if (P.anim) memset(out->rgb, 0, (size_t)px * 3);
    uint8_t *dst = out->rgb + ((size_t)f->y * P.cw + (size_t)f->x) * 3;
    if (argb) {
        argb_to_rgb(argb, f->w, f->h, dst, (size_t)P.cw * 3);
        fdd_free(argb);
    } else {
        s = decode_lossy(&P, f, dst, (size_t)P.cw * 3);
    }
    if (s) fdd_image_free(out);
    return s;
}

/* inflate.c — CRC-32, Adler-32, raw DEFLATE (RFC 1951) and the zlib wrapper
 * (RFC 1950).  Shared by PNG, TIFF-Deflate and .npz, so nothing here knows
 * about images.
 *
 * Decoding is table driven: a 64-bit bit buffer refilled 8 bytes at a time,
 * a 2^10-entry primary table for literal/length codes and 2^8 for distances,
 * with second-level tables for longer codes.  Acceptance rules follow zlib
 * (the library Pillow inflates with), so the same streams are refused:
 * over-subscribed or incomplete codes (except a single code of length 1),
 * a missing end-of-block code, bad repeats, distances before the start of
 * the output.  Input is never read past in_len and output never written past
 * cap; bits needed beyond the input are an error ("truncated"). */
#include "image.h"

#include <pthread.h>

/* ------------------------------------------------------------------ CRC-32 */

/* Slicing-by-8 tables for the reflected polynomial 0xEDB88320, built once. */
static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_tab[0][n] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int n = 0; n < 256; n++)
            crc_tab[t][n] = (crc_tab[t - 1][n] >> 8) ^ crc_tab[0][crc_tab[t - 1][n] & 0xff];
}

uint32_t fdd_crc32(uint32_t crc, const uint8_t *p, size_t n) {
    pthread_once(&crc_once, crc_init);
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t lo = c ^ fdd_le32(p), hi = fdd_le32(p + 4);
        c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
            crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
            crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

/* ---------------------------------------------------------------- Adler-32 */

uint32_t fdd_adler32(uint32_t adler, const uint8_t *p, size_t n) {
    uint32_t a = adler & 0xffff, b = adler >> 16;
    while (n) {
        /* 5552 is the largest run for which b cannot overflow 32 bits. */
        size_t k = n < 5552 ? n : 5552;
        n -= k;
        while (k >= 8) {
            a += p[0]; b += a; a += p[1]; b += a; a += p[2]; b += a; a += p[3]; b += a;
            a += p[4]; b += a; a += p[5]; b += a; a += p[6]; b += a; a += p[7]; b += a;
            p += 8;
            k -= 8;
        }
        while (k--) { a += *p++; b += a; }
        a %= 65521;
        b %= 65521;
    }
    return (b << 16) | a;
}

/* ----------------------------------------------------------- Huffman tables */

/* Table entry (uint32): bits 0-7 code length to consume, bits 8-12 extra bits
 * (or sub-table index width), bits 13-15 kind, bits 16-31 value (literal
 * byte, length or distance base, or sub-table offset). */
enum { K_INVALID = 0, K_LIT = 1, K_LEN = 2, K_EOB = 3, K_SUB = 4, K_DIST = 5 };
#define ENT(len, extra, kind, val) \
    ((uint32_t)(len) | ((uint32_t)(extra) << 8) | ((uint32_t)(kind) << 13) | ((uint32_t)(val) << 16))
#define E_LEN(e) ((e) & 0xff)
#define E_EXTRA(e) (((e) >> 8) & 0x1f)
#define E_KIND(e) (((e) >> 13) & 7)
#define E_VAL(e) ((e) >> 16)

#define LIT_BITS 10
#define DIST_BITS 8
/* Table sizes: the primary table plus at most one sub-table per long code,
 * each at most 2^(15 - root) entries (a loose but simple bound). */
#define LIT_ENOUGH ((1 << LIT_BITS) + 286 * (1 << (15 - LIT_BITS)))
#define DIST_ENOUGH ((1 << DIST_BITS) + 30 * (1 << (15 - DIST_BITS)))

static const uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                       33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                       1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

typedef enum { T_CODES, T_LIT, T_DIST } table_type;

static uint32_t sym_entry(table_type t, unsigned sym, unsigned len) {
    switch (t) {
    case T_CODES: return ENT(len, 0, K_LIT, sym);
    case T_LIT:
        if (sym < 256) return ENT(len, 0, K_LIT, sym);
        if (sym == 256) return ENT(len, 0, K_EOB, 0);
        if (sym < 286) return ENT(len, len_extra[sym - 257], K_LEN, len_base[sym - 257]);
        return ENT(len, 0, K_INVALID, 0); /* 286, 287: legal in the fixed code only as errors */
    case T_DIST:
        if (sym < 30) return ENT(len, dist_extra[sym], K_DIST, dist_base[sym]);
        return ENT(len, 0, K_INVALID, 0);
    }
    return 0;
}

static unsigned bitrev(unsigned code, unsigned len) {
    unsigned r = 0;
    for (unsigned i = 0; i < len; i++) { r = (r << 1) | (code & 1); code >>= 1; }
    return r;
}

/* Builds a canonical-code lookup table from code lengths.  Returns false for
 * an over-subscribed set, or an incomplete one (zlib accepts incomplete only
 * for a single code of length 1 in the literal and distance alphabets, and an
 * empty distance alphabet).  Unused entries stay K_INVALID (0). */
static bool build_table(uint32_t *table, size_t cap, unsigned root, const uint8_t *lens, unsigned n,
                        table_type type) {
    unsigned count[16] = {0}, offs[16];
    uint16_t sorted[288];
    for (unsigned s = 0; s < n; s++) count[lens[s]]++;
    unsigned maxlen = 0;
    for (unsigned l = 1; l <= 15; l++)
        if (count[l]) maxlen = l;
    memset(table, 0, sizeof(uint32_t) << root);
    if (maxlen == 0) return type != T_CODES;  /* no codes: any use is an error later */
    int left = 1;
    for (unsigned l = 1; l <= 15; l++) {
        left <<= 1;
        left -= (int)count[l];
        if (left < 0) return false; /* over-subscribed */
    }
    if (left > 0 && (type == T_CODES || maxlen != 1)) return false; /* incomplete */
    offs[1] = 0;
    for (unsigned l = 1; l < 15; l++) offs[l + 1] = offs[l] + count[l];
    unsigned nsym = offs[15] + count[15];
    for (unsigned s = 0; s < n; s++)
        if (lens[s]) sorted[offs[lens[s]]++] = (uint16_t)s;

    size_t next_sub = (size_t)1 << root;
    unsigned code = 0, len = lens[sorted[0]];
    unsigned cur_prefix = ~0u, sub_bits = 0;
    size_t sub_off = 0;
    unsigned rem[16]; /* codes of each length not placed yet */
    memcpy(rem, count, sizeof rem);
    for (unsigned i = 0; i < nsym; i++) {
        unsigned sym = sorted[i];
        if (lens[sym] != len) { /* next length: the canonical code shifts left */
            code <<= (lens[sym] - len);
            len = lens[sym];
        }
        unsigned rev = bitrev(code, len);
        uint32_t e = sym_entry(type, sym, len);
        if (len <= root) {
            for (unsigned j = rev; j < (1u << root); j += 1u << len) table[j] = e;
        } else {
            unsigned prefix = rev & ((1u << root) - 1);
            if (prefix != cur_prefix) {
                /* New sub-table.  Codes sharing a prefix are consecutive in
                 * canonical order; its width is the smallest that the
                 * remaining codes fill (zlib's rule). */
                unsigned w = len - root;
                int room = 1 << w;
                while (w + root < maxlen) {
                    room -= (int)rem[w + root];
                    if (room <= 0) break;
                    w++;
                    room <<= 1;
                }
                if (next_sub + ((size_t)1 << w) > cap) return false; /* impossible: see *_ENOUGH */
                cur_prefix = prefix;
                sub_off = next_sub;
                sub_bits = w;
                memset(table + sub_off, 0, sizeof(uint32_t) << w);
                next_sub += (size_t)1 << w;
                table[prefix] = ENT(0, w, K_SUB, sub_off);
            }
            unsigned hi = rev >> root, step = 1u << (len - root);
            for (unsigned j = hi; j < (1u << sub_bits); j += step) table[sub_off + j] = e;
        }
        rem[len]--;
        code++;
    }
    return true;
}

/* ---------------------------------------------------------------- bit input */

typedef struct {
    const uint8_t *in;
    size_t len, pos;    /* pos may pass len by the zero bytes fed after the end */
    uint64_t buf;
    unsigned cnt;
} bits;

/* Tops the buffer up to at least 56 bits.  Past the end of the input, zero
 * bytes are fed; overrun() then reports that more bits were used than exist. */
static inline void refill(bits *b) {
    if (b->pos + 8 <= b->len) {
        uint64_t v = fdd_le64(b->in + b->pos);
        b->buf |= v << b->cnt;
        b->pos += (63 - b->cnt) >> 3;
        b->cnt |= 56;
    } else {
        while (b->cnt <= 56) {
            uint64_t v = b->pos < b->len ? b->in[b->pos] : 0;
            b->buf |= v << b->cnt;
            b->pos++;
            b->cnt += 8;
        }
    }
}

static inline bool overrun(const bits *b) {
    return b->pos > b->len && (uint64_t)b->pos * 8 - b->cnt > (uint64_t)b->len * 8;
}

static inline unsigned take(bits *b, unsigned n) { /* n <= 32, buffer holds >= n bits */
    unsigned v = (unsigned)(b->buf & ((1ull << n) - 1));
    b->buf >>= n;
    b->cnt -= n;
    return v;
}

static inline uint32_t lookup(const uint32_t *t, unsigned root, uint64_t buf) {
    uint32_t e = t[buf & ((1u << root) - 1)];
    if (E_KIND(e) == K_SUB) e = t[E_VAL(e) + ((buf >> root) & ((1u << E_EXTRA(e)) - 1))];
    return e;
}

/* ------------------------------------------------------------------- inflate */

typedef struct {
    uint32_t lit[LIT_ENOUGH];
    uint32_t dist[DIST_ENOUGH];
} tables;

enum { R_OK, R_TRUNC, R_CORRUPT, R_FULL };

typedef struct {
    const char *why; /* reason for R_CORRUPT */
} inflate_err;

static int build_fixed(tables *t) {
    uint8_t lens[288];
    memset(lens, 8, 144);
    memset(lens + 144, 9, 112);
    memset(lens + 256, 7, 24);
    memset(lens + 280, 8, 8);
    build_table(t->lit, LIT_ENOUGH, LIT_BITS, lens, 288, T_LIT);
    /* 32 distance codes; 30 and 31 decode as errors, as in zlib. */
    memset(lens, 5, 32);
    build_table(t->dist, DIST_ENOUGH, DIST_BITS, lens, 32, T_DIST);
    return R_OK;
}

static int build_dynamic(bits *b, tables *t, const char **why) {
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    refill(b);
    unsigned nlen = take(b, 5) + 257, ndist = take(b, 5) + 1, ncode = take(b, 4) + 4;
    if (nlen > 286 || ndist > 30) { *why = "too many length or distance symbols"; return R_CORRUPT; }
    uint8_t clens[19] = {0};
    for (unsigned i = 0; i < ncode; i++) {
        if (b->cnt < 3) refill(b);
        clens[order[i]] = (uint8_t)take(b, 3);
    }
    if (overrun(b)) return R_TRUNC;
    uint32_t ctab[1 << 7];
    if (!build_table(ctab, 1 << 7, 7, clens, 19, T_CODES)) { *why = "invalid code lengths set"; return R_CORRUPT; }
    uint8_t lens[286 + 30];
    unsigned n = 0;
    while (n < nlen + ndist) {
        refill(b);
        if (overrun(b)) return R_TRUNC;
        uint32_t e = ctab[b->buf & 127];
        if (E_KIND(e) == K_INVALID || E_LEN(e) == 0) { *why = "invalid code lengths set"; return R_CORRUPT; }
        take(b, E_LEN(e));
        unsigned sym = E_VAL(e);
        if (sym < 16) { lens[n++] = (uint8_t)sym; continue; }
        unsigned rep;
        uint8_t val = 0;
        if (sym == 16) {
            if (n == 0) { *why = "invalid bit length repeat"; return R_CORRUPT; }
            val = lens[n - 1];
            rep = 3 + take(b, 2);
        } else if (sym == 17) {
            rep = 3 + take(b, 3);
        } else {
            rep = 11 + take(b, 7);
        }
        if (n + rep > nlen + ndist) { *why = "invalid bit length repeat"; return R_CORRUPT; }
        memset(lens + n, val, rep);
        n += rep;
    }
    if (overrun(b)) return R_TRUNC;
    if (lens[256] == 0) { *why = "invalid code -- missing end-of-block"; return R_CORRUPT; }
    if (!build_table(t->lit, LIT_ENOUGH, LIT_BITS, lens, nlen, T_LIT)) {
        *why = "invalid literal/lengths set";
        return R_CORRUPT;
    }
    if (!build_table(t->dist, DIST_ENOUGH, DIST_BITS, lens + nlen, ndist, T_DIST)) {
        *why = "invalid distances set";
        return R_CORRUPT;
    }
    return R_OK;
}

/* Copies a match of len bytes from dist back; the caller checked bounds.
 * When there are at least 8 spare bytes after the match it copies in 8-byte
 * words, which may write (then later overwrite) a few bytes past the match. */
static inline void copy_match(uint8_t *out, size_t o, size_t dist, size_t len, bool slack) {
    uint8_t *d = out + o;
    const uint8_t *s = d - dist;
    if (slack && dist >= 8) {
        uint8_t *end = d + len;
        do {
            memcpy(d, s, 8);
            d += 8;
            s += 8;
        } while (d < end);
    } else if (dist == 1) {
        memset(d, *s, len);
    } else {
        for (size_t i = 0; i < len; i++) d[i] = s[i];
    }
}

/* One Huffman-coded block.  stop_at_cap: output full is success (R_FULL).
 * The bit state lives in locals here: stores to out (uint8_t) may alias
 * anything, so fields of *b would be reloaded after every byte written. */
static int inflate_block(bits *b, const tables *t, uint8_t *out, size_t cap, size_t *op,
                         bool stop_at_cap, const char **why) {
    size_t o = *op;
    int r = R_OK;
    const uint8_t *in = b->in;
    const size_t in_len = b->len;
    size_t pos = b->pos;
    uint64_t buf = b->buf;
    unsigned cnt = b->cnt;
    const uint32_t *lit = t->lit, *dtab = t->dist;
#define REFILL()                                                                   \
    do {                                                                           \
        if (pos + 8 <= in_len) {                                                   \
            buf |= fdd_le64(in + pos) << cnt;                                      \
            pos += (63 - cnt) >> 3;                                                \
            cnt |= 56;                                                             \
        } else {                                                                   \
            while (cnt <= 56) {                                                    \
                buf |= (uint64_t)(pos < in_len ? in[pos] : 0) << cnt;              \
                pos++;                                                             \
                cnt += 8;                                                          \
            }                                                                      \
        }                                                                          \
    } while (0)
#define TAKE(n) (v_ = (unsigned)(buf & ((1ull << (n)) - 1)), buf >>= (n), cnt -= (n), v_)
#define OVERRUN() (pos > in_len && (uint64_t)pos * 8 - cnt > (uint64_t)in_len * 8)
    unsigned v_;
    for (;;) {
        REFILL();
        if (OVERRUN()) { r = R_TRUNC; break; }
        uint32_t e = lookup(lit, LIT_BITS, buf);
        unsigned kind = E_KIND(e);
        if (kind == K_LIT) {
            /* Up to three literals per refill (56 bits >= 3 x 15). */
            if (o >= cap) { r = R_FULL; break; }
            buf >>= E_LEN(e); cnt -= E_LEN(e);
            out[o++] = (uint8_t)E_VAL(e);
            e = lookup(lit, LIT_BITS, buf);
            if (E_KIND(e) != K_LIT || o >= cap) continue;
            buf >>= E_LEN(e); cnt -= E_LEN(e);
            out[o++] = (uint8_t)E_VAL(e);
            e = lookup(lit, LIT_BITS, buf);
            if (E_KIND(e) != K_LIT || o >= cap) continue;
            buf >>= E_LEN(e); cnt -= E_LEN(e);
            out[o++] = (uint8_t)E_VAL(e);
            continue;
        }
        if (kind == K_LEN) {
            buf >>= E_LEN(e); cnt -= E_LEN(e);
            size_t len = E_VAL(e) + TAKE(E_EXTRA(e));
            uint32_t d = lookup(dtab, DIST_BITS, buf);
            if (E_KIND(d) != K_DIST) { *why = "invalid distance code"; r = R_CORRUPT; break; }
            buf >>= E_LEN(d); cnt -= E_LEN(d);
            size_t dist = E_VAL(d) + TAKE(E_EXTRA(d));
            if (OVERRUN()) { r = R_TRUNC; break; }
            if (dist > o) { *why = "invalid distance too far back"; r = R_CORRUPT; break; }
            if (len > cap - o) {
                if (!stop_at_cap) { r = R_FULL; break; }
                len = cap - o; /* fill what fits, then report full */
                copy_match(out, o, dist, len, false);
                o += len;
                r = R_FULL;
                break;
            }
            copy_match(out, o, dist, len, cap - o - len >= 8);
            o += len;
            continue;
        }
        if (kind == K_EOB) { buf >>= E_LEN(e); cnt -= E_LEN(e); break; }
        *why = "invalid literal/length code";
        r = R_CORRUPT;
        break;
    }
#undef REFILL
#undef TAKE
#undef OVERRUN
    b->pos = pos;
    b->buf = buf;
    b->cnt = cnt;
    *op = o;
    return r;
}

/* Shrinks the input to its first `end` bytes, keeping the bits consumed so
 * far: bytes pulled into the buffer ahead of use are given back. */
static void restrict_input(bits *b, size_t end) {
    uint64_t used_bits = (uint64_t)b->pos * 8 - b->cnt;
    size_t p = (size_t)(used_bits / 8);
    unsigned off = (unsigned)(used_bits % 8);
    b->buf = 0;
    b->cnt = 0;
    b->pos = p;
    if (off && p < b->len) {
        b->buf = (uint64_t)b->in[p] >> off;
        b->cnt = 8 - off;
        b->pos = p + 1;
    }
    if (end < b->len) b->len = end;
    if (b->pos > b->len) { /* nothing more can be seen: keep only whole bits */
        b->pos = b->len;
        b->buf = 0;
        b->cnt = 0;
    }
}

/* The whole raw stream.  With stop_at_cap, once the output is full the
 * decoder goes on only over the input zlib would already hold at that
 * moment (window(ctx, bytes used), whole input if NULL), as zlib inside
 * Pillow does: running out there, or meeting another literal or match, is
 * success; corrupt data is still an error, and so is a wrong Adler-32 when
 * the stream ends within that input (*adler_pos set to its offset). */
typedef size_t (*window_fn)(void *ctx, size_t used);

static int inflate_raw(bits *b, uint8_t *out, size_t cap, size_t *produced, bool stop_at_cap,
                       window_fn window, void *ctx, size_t in_off, const char **why,
                       size_t *adler_pos) {
    tables local; /* ~56 KB of stack */
    tables *t = &local;
    size_t o = 0;
    int r = R_OK;
    bool final = false, full = false;
    *adler_pos = SIZE_MAX;
    while (!final) {
        if (stop_at_cap && o == cap && !full) {
            full = true;
            if (window) restrict_input(b, window(ctx, in_off + (size_t)(((uint64_t)b->pos * 8 - b->cnt + 7) / 8)) - in_off);
        }
        refill(b);
        if (overrun(b)) { r = R_TRUNC; break; }
        final = take(b, 1);
        unsigned type = take(b, 2);
        if (type == 0) {
            /* Stored: drop to a byte boundary, give back whole buffered bytes. */
            take(b, b->cnt & 7);
            size_t p = b->pos - b->cnt / 8;
            b->buf = 0;
            b->cnt = 0;
            if (p > b->len || b->len - p < 4) { b->pos = p; r = R_TRUNC; break; }
            unsigned len = fdd_le16(b->in + p), nlen = fdd_le16(b->in + p + 2);
            p += 4;
            b->pos = p;
            if ((len ^ 0xffff) != nlen) { *why = "invalid stored block lengths"; r = R_CORRUPT; break; }
            size_t n = len;
            bool over = false;
            if (n > cap - o) { n = cap - o; over = true; }
            if (n > b->len - p) { r = R_TRUNC; break; }
            memcpy(out + o, b->in + p, n);
            o += n;
            b->pos = p + n;
            if (over) { r = R_FULL; break; }
            continue;
        }
        if (type == 3) { *why = "invalid block type"; r = R_CORRUPT; break; }
        r = type == 1 ? build_fixed(t) : build_dynamic(b, t, why);
        if (r != R_OK) break;
        r = inflate_block(b, t, out, cap, &o, stop_at_cap, why);
        if (r != R_OK) break;
    }
    if (r == R_OK && overrun(b)) r = R_TRUNC;
    if (stop_at_cap && o == cap) {
        if (r == R_OK) { /* the stream ended: zlib checks the trailer if it is there */
            if (!full && window)
                restrict_input(b, window(ctx, in_off + (size_t)(((uint64_t)b->pos * 8 - b->cnt + 7) / 8)) - in_off);
            take(b, b->cnt & 7);
            size_t p = b->pos - b->cnt / 8;
            if (p <= b->len && b->len - p >= 4) *adler_pos = p;
        }
        if (r == R_TRUNC || r == R_FULL) r = R_OK;
    }
    *produced = o;
    return r;
}

static void init_bits(bits *b, const uint8_t *in, size_t len) {
    b->in = in;
    b->len = len;
    b->pos = 0;
    b->buf = 0;
    b->cnt = 0;
}

/* Bytes of input used, counting a partly used last byte. */
static size_t bytes_used(const bits *b) {
    size_t used = b->pos - b->cnt / 8;
    return used > b->len ? b->len : used;
}

static fdd_status report(int r, const char *why, const char *name, fdd_error *err) {
    if (r == R_TRUNC) return fdd_fail(err, FDD_E_FORMAT, "%s: compressed data is truncated", name);
    if (r == R_FULL)
        return fdd_fail(err, FDD_E_FORMAT, "%s: decompressed data is larger than expected", name);
    return fdd_fail(err, FDD_E_FORMAT, "%s: corrupt compressed data (%s)", name, why);
}

fdd_status fdd_inflate(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                       size_t *consumed, size_t *produced, const char *name, fdd_error *err) {
    bits b;
    const char *why = "";
    size_t prod = 0;
    init_bits(&b, in, in_len);
    size_t adler_pos;
    int r = inflate_raw(&b, out, cap, &prod, false, NULL, NULL, 0, &why, &adler_pos);
    if (consumed) *consumed = bytes_used(&b);
    if (produced) *produced = prod;
    return r == R_OK ? FDD_OK : report(r, why, name, err);
}

static fdd_status zlib_header(const uint8_t *in, size_t in_len, const char *name, fdd_error *err) {
    if (in_len < 2) return fdd_fail(err, FDD_E_FORMAT, "%s: compressed data is truncated", name);
    unsigned cmf = in[0], flg = in[1];
    if ((cmf * 256 + flg) % 31 != 0)
        return fdd_fail(err, FDD_E_FORMAT, "%s: corrupt compressed data (incorrect header check)", name);
    if ((cmf & 15) != 8)
        return fdd_fail(err, FDD_E_FORMAT, "%s: corrupt compressed data (unknown compression method)", name);
    if ((cmf >> 4) > 7)
        return fdd_fail(err, FDD_E_FORMAT, "%s: corrupt compressed data (invalid window size)", name);
    if (flg & 0x20)
        return fdd_fail(err, FDD_E_FORMAT, "%s: compressed data needs a preset dictionary", name);
    return FDD_OK;
}

fdd_status fdd_zlib_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                               size_t *produced, const char *name, fdd_error *err) {
    size_t used = 0, prod = 0;
    if (produced) *produced = 0;
    fdd_status s = zlib_header(in, in_len, name, err);
    if (s) return s;
    s = fdd_inflate(in + 2, in_len - 2, out, cap, &used, &prod, name, err);
    if (produced) *produced = prod;
    if (s) return s;
    if (in_len - 2 - used < 4)
        return fdd_fail(err, FDD_E_FORMAT, "%s: compressed data is truncated (no Adler-32)", name);
    if (fdd_be32(in + 2 + used) != fdd_adler32(1, out, prod))
        return fdd_fail(err, FDD_E_FORMAT, "%s: corrupt compressed data (incorrect data check)", name);
    return FDD_OK;
}

fdd_status fdd_zlib_decompress_prefix(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                                      size_t (*window)(void *ctx, size_t used), void *ctx,
                                      size_t *consumed, const char *name, fdd_error *err) {
    if (consumed) *consumed = 0;
    fdd_status s = zlib_header(in, in_len, name, err);
    if (s) return s;
    bits b;
    const char *why = "";
    size_t prod = 0, adler_pos;
    init_bits(&b, in + 2, in_len - 2);
    int r = inflate_raw(&b, out, cap, &prod, true, window, ctx, 2, &why, &adler_pos);
    if (consumed) *consumed = 2 + bytes_used(&b);
    if (r == R_OK && prod == cap) {
        if (adler_pos != SIZE_MAX && fdd_be32(in + 2 + adler_pos) != fdd_adler32(1, out, prod))
            return fdd_fail(err, FDD_E_FORMAT, "%s: corrupt compressed data (incorrect data check)", name);
        return FDD_OK;
    }
    if (r == R_OK)
        return fdd_fail(err, FDD_E_FORMAT, "%s: compressed data ends early (%zu of %zu bytes)", name,
                        prod, cap);
    return report(r, why, name, err);
}

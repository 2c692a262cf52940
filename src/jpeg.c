/* jpeg.c — baseline/extended/progressive Huffman JPEG decoder, bit-exact with
 * Pillow 9.4's Image.open(f).convert("RGB") over libjpeg-turbo 2.1.5
 * (../shared/specs/imaging.md §3): ISLOW IDCT, fancy upsampling, libjpeg's
 * fixed-point YCbCr tables, Pillow's CMYK handling, and libjpeg-turbo 2.1's
 * block smoothing for incomplete progressions.  Arithmetic coding, lossless
 * and 12-bit files are refused as unsupported.
 *
 * Where the data is damaged the decoder follows libjpeg's recovery rules
 * (zero bits after a marker, "insufficient data" grey MCUs, restart resync)
 * and Pillow's verdict: running out of bytes where libjpeg's suspending
 * source would wait for more is "truncated", an error. To get that verdict
 * right the bit reader refills exactly when libjpeg's does (to >= 57 bits,
 * triggered by the same requests), so it stops at the same byte. */
#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#ifdef __SSE2__
/* SSE2 is part of x86-64 itself: no run-time dispatch.  The SIMD loops use
 * the same integer formulas as the scalar code (identical bits); other
 * architectures use the scalar code. */
#include <immintrin.h>
#endif

/* The SIMD paths can be switched off (fdd_jpeg_set_simd, a test hook) so the
 * tests can check them against the scalar code bit for bit. */
static int jpeg_simd = 1;
void fdd_jpeg_set_simd(int on) { jpeg_simd = on; }

#define MAXC 4           /* Pillow accepts 1, 3 or 4 components */
#define MAX_BLOCKS 10    /* libjpeg's D_MAX_BLOCKS_IN_MCU */
#define MIN_GET_BITS 57  /* libjpeg-turbo refill target with a 64-bit buffer */
#define LOOKB 10         /* bits of the fast Huffman tables, 8..16 */

/* Zigzag -> natural order, padded with 63s as libjpeg's table is, so that a
 * corrupt run length past the block end lands on the last coefficient. */
static const uint8_t zz[80] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33,
    40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36,
    29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
    47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63};

/* Annex K.3 tables, which libjpeg-turbo installs in DC/AC slots 0 and 1 when
 * a file (Motion-JPEG style) defines none before its first scan. */
static const uint8_t std_dc_bits[2][16] = {{0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
                                           {0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0}};
static const uint8_t std_ac_bits[2][16] = {{0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125},
                                           {0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 119}};
static const uint8_t std_ac_vals[2][162] = {
    {0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
     0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52,
     0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
     0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45,
     0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
     0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
     0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
     0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
     0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3,
     0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
     0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa},
    {0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
     0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33,
     0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18,
     0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44,
     0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63,
     0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
     0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
     0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
     0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
     0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
     0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa}};

typedef struct {
    uint8_t bits[17]; /* bits[1..16]: number of codes of each length */
    uint8_t vals[256];
    bool defined;
} htable;

/* Decoding form of a table (libjpeg's d_derived_tbl). */
typedef struct {
    uint16_t look[256]; /* 8-bit lookahead: (length << 8) | symbol; length 9 = longer code */
    /* LOOKB-bit lookahead, used when >= 17 bits are buffered (no request of
     * huff() could then refill): (length << 8) | symbol, 0 = longer code. */
    uint16_t lookb[1 << LOOKB];
    /* AC codes whose length l plus value bits s fit the same LOOKB bits:
     * (value << 16) | (run << 8) | (l + s); 0x10 | l for end of block;
     * 0 = neither. */
    int32_t acfast[1 << LOOKB];
    int32_t maxcode[18];
    int32_t valoff[18];
    uint8_t vals[256];
} hderived;

typedef struct {
    int id, h, v, tq;
    int hf, vf;            /* upsampling ratios Hmax/h, Vmax/v */
    int bw, bh;            /* real size in blocks */
    int bwp, bhp;          /* padded to whole MCUs (coefficient buffer) */
    int dw, dh;            /* libjpeg's downsampled_width/height */
    int16_t q[64];         /* latched quantiser, natural order, as libjpeg's short */
    uint16_t qraw[64];     /* the same, unsigned (block smoothing divides by it) */
    bool latched;
    int dc_tbl, ac_tbl;
    int16_t *coef;         /* bwp*bhp blocks, multi-scan files only */
    uint8_t *plane;        /* rows of bw*8 samples: all bh*8, or a ring (single scan) */
    size_t stride;
    int ring_rows;         /* sample row r lives at plane row r % ring_rows */
    int coef_bits[64];     /* progressive: current Al of each coefficient, -1 = none */
    int prev_bits[10];     /* coef_bits[0..9] before the component's latest scan */
    int up;                /* upsampler kind, see UP_* */
} jcomp;

enum { UP_NONE, UP_H2V1, UP_H2V2, UP_H1V2, UP_BOX };
enum { CS_GRAY, CS_YCC, CS_RGB, CS_CMYK, CS_YCCK };
enum { RM_SOS = 1, RM_EOI, RM_EOF }; /* read_markers outcomes (0 = error) */

typedef struct {
    const char *name;
    fdd_error *err;
    const uint8_t *p, *end; /* libjpeg's source position and end of file */
    int unread_marker;
    /* bit reader: the low `bits` bits of buf are unread */
    uint64_t buf;
    int bits;
    bool insufficient;
    bool suspended;        /* needed bytes beyond the end of file */
    bool saw_soi, saw_sof, seen_sos, multi, progressive, arith;
    htable dc[4], ac[4];
    uint16_t qt[4][64];
    bool qt_def[4];
    int restart_interval;
    int width, height, ncomp, maxh, maxv;
    int mcux, mcuy;        /* MCU grid of an interleaved scan */
    jcomp comp[MAXC];
    bool jfif, adobe;
    bool pil_dpi, pil_exif;   /* Pillow's info["dpi"] and info["exif"] set (header markers) */
    int adobe_transform;
    int scan_no;
    int last_good;         /* last iMCU row entered with data left (jdcoefct.c) */
    /* current scan */
    int ns;
    jcomp *sc[4];
    int ss, se, ah, al;
    hderived dtab[4], atab[4]; /* derived tables of the scan's components */
    int pred[4];
    int eobrun, restarts_to_go, next_rst;
    uint8_t rl[1024];      /* IDCT range limit (jdmaster.c) */
    int cs;                /* colour space, CS_* */
    int crr[256], cbb[256];
    int32_t crg[256], cbg[256];
    uint8_t *rowbuf;       /* upsampled rows, one per component */
    size_t rowbuf_stride;
} jdec;

#define JFAIL(d, code, ...) jfail_((d), (code), __VA_ARGS__)

static int jfail_(jdec *d, fdd_status code, const char *fmt, ...) FDD_PRINTF(3, 4);
static int jfail_(jdec *d, fdd_status code, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fdd_fail(d->err, code, "%s: %s", d->name, msg);
    return 0;
}

static int truncated(jdec *d) {
    return JFAIL(d, FDD_E_FORMAT, "truncated JPEG file (premature end of data)");
}

/* ------------------------------------------------------------- markers */

/* libjpeg's next_marker: skip anything up to FF, FF fill bytes and stuffed
 * FF00 pairs.  Returns the marker code, or 0 at the end of the file. */
static int next_marker(jdec *d) {
    for (;;) {
        int c;
        do {
            if (d->p >= d->end) return 0;
            c = *d->p++;
        } while (c != 0xFF);
        do {
            if (d->p >= d->end) return 0;
            c = *d->p++;
        } while (c == 0xFF);
        if (c != 0) return c;
    }
}

/* Reads a segment's length; *body points after it and *n is the payload
 * size.  False (suspension) when the segment is not wholly in the file. */
static bool segment(jdec *d, const uint8_t **body, size_t *n) {
    if (d->end - d->p < 2) return false;
    size_t len = fdd_be16(d->p);
    size_t pay = len >= 2 ? len - 2 : 0;
    if ((size_t)(d->end - d->p - 2) < pay) return false;
    *body = d->p + 2;
    *n = pay;
    d->p += 2 + pay;
    return true;
}

static int build_derived(jdec *d, const htable *t, bool is_dc, hderived *o) {
    uint8_t size[257];
    uint32_t code[257];
    int p = 0;
    for (int l = 1; l <= 16; l++) {
        int n = t->bits[l];
        if (p + n > 256) return JFAIL(d, FDD_E_FORMAT, "corrupt Huffman table");
        while (n--) size[p++] = (uint8_t)l;
    }
    size[p] = 0;
    int nsym = p;
    uint32_t c = 0;
    int si = size[0];
    p = 0;
    while (size[p]) {
        while (size[p] == si) code[p++] = c++;
        if (c >= (1u << si)) return JFAIL(d, FDD_E_FORMAT, "corrupt Huffman table");
        c <<= 1;
        si++;
    }
    p = 0;
    for (int l = 1; l <= 16; l++) {
        if (t->bits[l]) {
            o->valoff[l] = p - (int32_t)code[p];
            p += t->bits[l];
            o->maxcode[l] = (int32_t)code[p - 1];
        } else {
            o->maxcode[l] = -1;
        }
    }
    o->valoff[17] = 0;
    o->maxcode[17] = 0xFFFFF;
    memcpy(o->vals, t->vals, 256);
    for (int i = 0; i < 256; i++) o->look[i] = 9 << 8;
    p = 0;
    for (int l = 1; l <= 8; l++)
        for (int i = 1; i <= t->bits[l]; i++, p++) {
            int look = (int)(code[p] << (8 - l));
            for (int k = 1 << (8 - l); k > 0; k--) o->look[look++] = (uint16_t)((l << 8) | t->vals[p]);
        }
    memset(o->lookb, 0, sizeof o->lookb);
    p = 0;
    for (int l = 1; l <= LOOKB; l++)
        for (int i = 1; i <= t->bits[l]; i++, p++) {
            int look = (int)(code[p] << (LOOKB - l));
            for (int k = 1 << (LOOKB - l); k > 0; k--) o->lookb[look++] = (uint16_t)((l << 8) | t->vals[p]);
        }
    for (int i = 0; i < (1 << LOOKB); i++) {
        int e = o->lookb[i], l = e >> 8, rs = e & 0xFF, sz = rs & 15;
        o->acfast[i] = 0;
        if (!is_dc && l && !sz && rs >> 4 != 15) o->acfast[i] = 0x10 | l; /* end of block */
        if (!is_dc && l && sz && l + sz <= LOOKB) {
            int v = (i >> (LOOKB - l - sz)) & ((1 << sz) - 1);
            if (v < (1 << (sz - 1))) v -= (1 << sz) - 1;
            o->acfast[i] = (int32_t)((uint32_t)v << 16) | ((rs >> 4) << 8) | (l + sz);
        }
    }
    if (is_dc)
        for (int i = 0; i < nsym; i++)
            if (t->vals[i] > 15) return JFAIL(d, FDD_E_FORMAT, "corrupt Huffman table");
    return 1;
}

static int get_dht(jdec *d, const uint8_t *s, size_t n) {
    while (n > 16) {
        int index = s[0];
        htable t;
        int count = 0;
        t.bits[0] = 0;
        for (int i = 1; i <= 16; i++) count += t.bits[i] = s[i];
        s += 17;
        n -= 17;
        if (count > 256 || (size_t)count > n) return JFAIL(d, FDD_E_FORMAT, "corrupt Huffman table");
        memset(t.vals, 0, sizeof t.vals);
        memcpy(t.vals, s, (size_t)count);
        s += count;
        n -= (size_t)count;
        t.defined = true;
        bool is_ac = index & 0x10;
        if (is_ac) index -= 0x10;
        if (index >= 4) return JFAIL(d, FDD_E_FORMAT, "bad Huffman table index %d", index);
        (is_ac ? d->ac : d->dc)[index] = t;
    }
    if (n != 0) return JFAIL(d, FDD_E_FORMAT, "bad DHT marker length");
    return 1;
}

static int get_dqt(jdec *d, const uint8_t *s, size_t n) {
    /* Pillow's Python parser rejects short tables before libjpeg sees them. */
    while (n > 0) {
        int pq = s[0] >> 4, tq = s[0] & 15;
        size_t need = 1 + (pq ? 128 : 64);
        if (n < need) return JFAIL(d, FDD_E_FORMAT, "bad quantization table marker");
        if (tq >= 4) return JFAIL(d, FDD_E_FORMAT, "bad quantization table index %d", tq);
        for (int i = 0; i < 64; i++)
            d->qt[tq][zz[i]] = pq ? fdd_be16(s + 1 + 2 * i) : s[1 + i];
        d->qt_def[tq] = true;
        s += need;
        n -= need;
    }
    return 1;
}

static int get_sof(jdec *d, int marker, const uint8_t *s, size_t n) {
    if (n < 6) return JFAIL(d, FDD_E_FORMAT, "bad SOF marker length");
    if (s[0] != 8)
        return JFAIL(d, FDD_E_UNSUPPORTED, "unsupported JPEG: %d-bit samples (only 8-bit)", s[0]);
    int nc = s[5];
    if (nc != 1 && nc != 3 && nc != 4)
        return JFAIL(d, FDD_E_UNSUPPORTED, "unsupported JPEG: %d components", nc);
    if (d->saw_sof) return JFAIL(d, FDD_E_FORMAT, "duplicate SOF marker");
    d->height = fdd_be16(s + 1);
    d->width = fdd_be16(s + 3);
    if (d->height == 0 || d->width == 0) return JFAIL(d, FDD_E_FORMAT, "empty JPEG image (0 width or height)");
    if (n != 6 + 3 * (size_t)nc) return JFAIL(d, FDD_E_FORMAT, "bad SOF marker length");
    d->ncomp = nc;
    for (int i = 0; i < nc; i++) {
        jcomp *c = &d->comp[i];
        c->id = s[6 + 3 * i];
        c->h = s[7 + 3 * i] >> 4;
        c->v = s[7 + 3 * i] & 15;
        c->tq = s[8 + 3 * i];
    }
    d->progressive = marker == 0xC2 || marker == 0xCA;
    d->arith = marker == 0xC9 || marker == 0xCA;
    d->saw_sof = true;
    return 1;
}

static int get_sos(jdec *d, const uint8_t *s, size_t n) {
    if (!d->saw_sof) return JFAIL(d, FDD_E_FORMAT, "SOS marker before SOF");
    if (n < 1) return JFAIL(d, FDD_E_FORMAT, "bad SOS marker length");
    int ns = s[0];
    if (n != (size_t)ns * 2 + 4 || ns < 1 || ns > 4) return JFAIL(d, FDD_E_FORMAT, "bad SOS marker length");
    d->ns = ns;
    for (int i = 0; i < 4; i++) d->sc[i] = NULL;
    for (int i = 0; i < ns; i++) {
        int cc = s[1 + 2 * i], t = s[2 + 2 * i];
        jcomp *c = NULL;
        /* libjpeg-turbo tests the scan slot numbered like the component
         * (cur_comp_info[ci]), so components listed out of frame order fail;
         * mirrored because Pillow fails on them too. */
        for (int k = 0; k < d->ncomp; k++)
            if (d->comp[k].id == cc && !d->sc[k]) { c = &d->comp[k]; break; }
        if (!c) return JFAIL(d, FDD_E_FORMAT, "invalid component ID %d in SOS", cc);
        for (int k = 0; k < i; k++)
            if (d->sc[k] == c) return JFAIL(d, FDD_E_FORMAT, "scan names component %d twice", cc);
        c->dc_tbl = t >> 4;
        c->ac_tbl = t & 15;
        d->sc[i] = c;
    }
    d->ss = s[1 + 2 * ns];
    d->se = s[2 + 2 * ns];
    d->ah = s[3 + 2 * ns] >> 4;
    d->al = s[3 + 2 * ns] & 15;
    d->next_rst = 0;
    d->scan_no++;
    return 1;
}

/* APP0 (JFIF) and APP14 (Adobe) feed libjpeg's colour-space guess; libjpeg
 * looks at the first 14 bytes only.  APP0 and APP1 also decide whether
 * Pillow's open fails on the EXIF block: unless a JFIF APP0 with units 1 set
 * info["dpi"] before it, the first "Exif\0" APP1 is read at once, and a TIFF
 * header Pillow accepts that is under 8 bytes, or BigTIFF's "II+\0" (whose
 * 8-byte offset it reads past the 8 header bytes it has), raises
 * struct.error and fails the open. */
static int get_app(jdec *d, int marker, const uint8_t *s, size_t n) {
    if (marker == 0xE0 && n >= 4 && memcmp(s, "JFIF", 4) == 0) {
        if (n < 7 && !d->seen_sos) return JFAIL(d, FDD_E_FORMAT, "bad JFIF marker"); /* Pillow's parser */
        if (n >= 14 && s[4] == 0) d->jfif = true;
        if (n >= 12 && s[7] == 1) d->pil_dpi = true;
    } else if (marker == 0xE1 && n >= 5 && memcmp(s, "Exif\0", 5) == 0) {
        if (d->seen_sos || d->pil_exif) return 1;
        d->pil_exif = true;
        if (d->pil_dpi) return 1;
        const uint8_t *t = s;
        size_t tn = n;
        if (n >= 6 && s[5] == 0) t += 6, tn -= 6;   /* "Exif\0\0" stripped */
        static const char pre[6][4] = {"MM\0*", "II*\0", "MM*\0", "II\0*", "MM\0+", "II+\0"};
        bool tiff = false;
        for (int i = 0; tn >= 4 && i < 6; i++) tiff |= memcmp(t, pre[i], 4) == 0;
        if (tiff && (tn < 8 || t[2] == '+'))
            return JFAIL(d, FDD_E_FORMAT, "EXIF block with a TIFF header cut short or BigTIFF (Pillow cannot open it)");
    } else if (marker == 0xEE && n >= 5 && memcmp(s, "Adobe", 5) == 0) {
        if (n < 7 && !d->seen_sos) return JFAIL(d, FDD_E_FORMAT, "bad Adobe marker");
        if (n >= 12) {
            d->adobe = true;
            d->adobe_transform = s[11];
        }
    }
    return 1;
}

/* A segment cut short by the end of the file: libjpeg reads segments
 * incrementally, so the checks it makes on the first bytes still raise
 * errors (which Pillow reports even after a complete image) before it
 * suspends.  s/avail: the bytes present after the length field. */
static int partial_segment(jdec *d, int m, size_t len, const uint8_t *s, size_t avail) {
    if ((m == 0xC0 || m == 0xC1 || m == 0xC2 || m == 0xC9 || m == 0xCA) && avail >= 6 && d->saw_sof)
        return JFAIL(d, FDD_E_FORMAT, "duplicate SOF marker");
    if (m == 0xDD && len != 4) return JFAIL(d, FDD_E_FORMAT, "bad DRI marker length");
    if (m == 0xDB && avail >= 1 && (s[0] & 15) >= 4)
        return JFAIL(d, FDD_E_FORMAT, "bad quantization table index %d", s[0] & 15);
    if (m == 0xDA && avail >= 1 && (len != (size_t)s[0] * 2 + 6 || s[0] < 1 || s[0] > 4))
        return JFAIL(d, FDD_E_FORMAT, "bad SOS marker length");
    if (m == 0xC4 && avail >= 17) {
        int count = 0;
        for (int i = 1; i <= 16; i++) count += s[i];
        if (len < 19 || count > 256 || (size_t)count > len - 19)
            return JFAIL(d, FDD_E_FORMAT, "corrupt Huffman table");
    }
    return RM_EOF;
}

/* libjpeg's read_markers: processes markers until SOS or EOI.  Returns
 * RM_SOS, RM_EOI, RM_EOF (data ran out: libjpeg would suspend) or 0 with
 * err set. */
static int read_markers(jdec *d) {
    for (;;) {
        int m = d->unread_marker;
        if (!m) m = next_marker(d);
        if (!m) return RM_EOF;
        d->unread_marker = 0;
        const uint8_t *s;
        size_t n;
        if (m >= 0xD0 && m <= 0xD7) continue; /* stray RSTn: parameterless */
        if (m == 0x01) {                       /* TEM */
            if (!d->seen_sos) return JFAIL(d, FDD_E_FORMAT, "no marker found"); /* Pillow's parser */
            continue;
        }
        if (m == 0xD8) return JFAIL(d, FDD_E_FORMAT, "duplicate SOI marker");
        if (m == 0xD9) return RM_EOI;
        if ((m >= 0xE0 && m <= 0xEF) || m == 0xFE || m == 0xDC || m == 0xCC) {
            if (!segment(d, &s, &n)) return RM_EOF;
            if (m == 0xE0 || m == 0xE1 || m == 0xEE)
                if (!get_app(d, m, s, n)) return 0;
            continue;
        }
        if (m == 0xC3)
            return JFAIL(d, FDD_E_UNSUPPORTED, "unsupported JPEG: lossless (SOF3)");
        if ((m >= 0xC5 && m <= 0xC8) || m == 0xCB || (m >= 0xCD && m <= 0xCF))
            return JFAIL(d, FDD_E_UNSUPPORTED, "unsupported JPEG process (SOF marker 0x%02X)", m);
        if (m == 0xC4 || m == 0xDB || m == 0xDD || m == 0xDA || (m >= 0xC0 && m <= 0xCF)) {
            if (!segment(d, &s, &n)) {
                if (d->end - d->p < 2) return RM_EOF;
                return partial_segment(d, m, fdd_be16(d->p), d->p + 2, (size_t)(d->end - d->p - 2));
            }
            switch (m) {
            case 0xC4: if (!get_dht(d, s, n)) return 0; break;
            case 0xDB: if (!get_dqt(d, s, n)) return 0; break;
            case 0xDD:
                if (n != 2) return JFAIL(d, FDD_E_FORMAT, "bad DRI marker length");
                d->restart_interval = fdd_be16(s);
                break;
            case 0xDA: return get_sos(d, s, n) ? RM_SOS : 0;
            case 0xC0: case 0xC1: case 0xC2: case 0xC9: case 0xCA:
                if (!get_sof(d, m, s, n)) return 0;
                break;
            default: /* other SOFn were refused above */
                return JFAIL(d, FDD_E_UNSUPPORTED, "unsupported JPEG process (SOF marker 0x%02X)", m);
            }
            continue;
        }
        return JFAIL(d, FDD_E_FORMAT, "unknown JPEG marker 0x%02X", m);
    }
}

/* ------------------------------------------------------------ bit reader */

/* jpeg_fill_bit_buffer: load bytes until >= 57 bits, stopping at a marker.
 * Past a marker, zero bits are supplied when `need` bits are not there
 * (and the "insufficient data" flag is raised).  False on suspension. */
static bool fill(jdec *d, int need) {
    if (!d->unread_marker) {
        while (d->bits < MIN_GET_BITS) {
            if (d->p >= d->end) { d->suspended = true; return false; }
            int c = *d->p++;
            if (c == 0xFF) {
                do {
                    if (d->p >= d->end) { d->suspended = true; return false; }
                    c = *d->p++;
                } while (c == 0xFF);
                if (c == 0) {
                    c = 0xFF;
                } else {
                    d->unread_marker = c;
                    goto no_more;
                }
            }
            d->buf = (d->buf << 8) | (uint64_t)c;
            d->bits += 8;
        }
        return true;
    }
no_more:
    if (need > d->bits) {
        d->insufficient = true;
        d->buf <<= MIN_GET_BITS - d->bits;
        d->bits = MIN_GET_BITS;
    }
    return true;
}

#define PEEK(d, n) ((int)(((d)->buf >> ((d)->bits - (n))) & ((1u << (n)) - 1)))

static inline bool get_bits(jdec *d, int n, int *v) {
    if (d->bits < n && !fill(d, n)) return false;
    d->bits -= n;
    *v = (int)((d->buf >> d->bits) & ((1u << n) - 1));
    return true;
}

static inline int extend(int v, int s) { return v < (1 << (s - 1)) ? v + (int)(~0u << s) + 1 : v; }

/* jpeg_huff_decode: codes longer than the lookahead, bit by bit. */
static int huff_slow(jdec *d, const hderived *h, int l) {
    int v;
    if (!get_bits(d, l, &v)) return -1;
    int32_t code = v;
    while (code > h->maxcode[l]) {
        if (!get_bits(d, 1, &v)) return -1;
        code = (code << 1) | v;
        l++;
    }
    if (l > 16) return 0; /* garbage: libjpeg fakes a zero symbol */
    return h->vals[(code + h->valoff[l]) & 0xFF];
}

/* HUFF_DECODE: symbol, or -1 on suspension. */
static inline int huff(jdec *d, const hderived *h) {
    if (d->bits < 8) {
        if (!fill(d, 0)) return -1;
        if (d->bits < 8) return huff_slow(d, h, 1);
    }
    int e = h->look[PEEK(d, 8)];
    int nb = e >> 8;
    if (nb <= 8) {
        d->bits -= nb;
        return e & 0xFF;
    }
    return huff_slow(d, h, 9);
}

/* process_restart + read_restart_marker + jpeg_resync_to_restart. */
static bool restart(jdec *d) {
    d->bits = 0;
    if (!d->unread_marker) {
        d->unread_marker = next_marker(d);
        if (!d->unread_marker) { d->suspended = true; return false; }
    }
    int want = d->next_rst;
    if (d->unread_marker == 0xD0 + want) {
        d->unread_marker = 0;
    } else {
        for (;;) {
            int m = d->unread_marker, action;
            if (m < 0xC0) action = 2;
            else if (m < 0xD0 || m > 0xD7) action = 3;
            else if (m == 0xD0 + ((want + 1) & 7) || m == 0xD0 + ((want + 2) & 7)) action = 3;
            else if (m == 0xD0 + ((want - 1) & 7) || m == 0xD0 + ((want - 2) & 7)) action = 2;
            else action = 1;
            if (action == 1) { d->unread_marker = 0; break; }
            if (action == 3) break;
            d->unread_marker = next_marker(d);
            if (!d->unread_marker) { d->suspended = true; return false; }
        }
    }
    d->next_rst = (d->next_rst + 1) & 7;
    for (int i = 0; i < 4; i++) d->pred[i] = 0;
    d->eobrun = 0;
    d->restarts_to_go = d->restart_interval;
    if (!d->unread_marker) d->insufficient = false;
    return true;
}

/* ------------------------------------------------------ entropy decoding */

/* Sequential block (decode_mcu_slow).  blk is zeroed by the caller; *nz is
 * set when any AC coefficient may be nonzero.  The bit reader lives in
 * locals here, and refills happen at exactly the requests where huff() and
 * get_bits() would make them, loading the same bytes: 8 at a time when no FF
 * byte is among them, else through fill(), which handles stuffing, markers
 * and the end of the data. */
#define BR_SYNC() (d->buf = buf, d->bits = bits, d->p = p)
#define BR_LOAD() (buf = d->buf, bits = d->bits, p = d->p)
#define BR_NEED(n)                                                                   \
    do {                                                                             \
        if (bits < (n)) BR_FILL(n);                                                  \
    } while (0)
/* fill(d, n) on the locals. */
#define BR_FILL(n)                                                                   \
    do {                                                                             \
        {                                                                            \
            uint64_t w_;                                                             \
            if (!d->unread_marker && d->end - p >= 8 && (w_ = load_be64(p),          \
                                                         !has_ff(w_))) {             \
                int k_ = (64 - bits) >> 3; /* bytes to reach >= 57 bits */           \
                buf = ((buf << (4 * k_)) << (4 * k_)) | (w_ >> (64 - 8 * k_));       \
                bits += 8 * k_;                                                      \
                p += k_;                                                             \
            } else {                                                                 \
                /* Byte by byte as fill() does, FF00 included; markers, fill \
                 * bytes and the end of the data go to fill() itself. */    \
                if (!d->unread_marker && d->end - p >= 16)                           \
                    while (bits < MIN_GET_BITS) {                                    \
                        int c_ = *p;                                                 \
                        if (c_ == 0xFF) {                                            \
                            if (p[1] != 0) break;                                    \
                            p++;                                                     \
                        }                                                            \
                        p++;                                                         \
                        buf = (buf << 8) | (uint64_t)c_;                             \
                        bits += 8;                                                   \
                    }                                                                \
                BR_SYNC();                                                           \
                bool ok_ = bits >= MIN_GET_BITS || fill(d, (n));                     \
                BR_LOAD();                                                           \
                if (!ok_) return false;                                              \
            }                                                                        \
        }                                                                            \
    } while (0)
/* huff() on the locals: symbol into s. */
#define BR_HUFF(h, s, L)                                                              \
    do {                                                                             \
        int e_;                                                                      \
        if (bits < 8) {                                                              \
            BR_FILL(0);                                                              \
            if (bits < 8) { e_ = 1; goto L; }                                       \
        }                                                                            \
        e_ = (h)->look[(buf >> (bits - 8)) & 0xFF];                                  \
        if ((e_ >> 8) <= 8) {                                                        \
            bits -= e_ >> 8;                                                         \
            s = e_ & 0xFF;                                                           \
            break;                                                                   \
        }                                                                            \
        if (bits >= 9) {                                                             \
            /* huff_slow's requests are all met by the buffered bits when the  \
             * code ends within them (bits may be 57+ after the refill above): \
             * no further refill, decode it here. */                           \
            int l_ = 9;                                                              \
            int32_t c_ = (int32_t)((buf >> (bits - 9)) & 0x1FF);                     \
            while (c_ > (h)->maxcode[l_] && l_ < bits) {                             \
                l_++;                                                                \
                c_ = (int32_t)((buf >> (bits - l_)) & ((1u << l_) - 1));             \
            }                                                                        \
            if (c_ <= (h)->maxcode[l_]) { /* maxcode[17] stops it at 17 */      \
                bits -= l_;                                                          \
                s = l_ > 16 ? 0 : (h)->vals[(c_ + (h)->valoff[l_]) & 0xFF];          \
                break;                                                               \
            }                                                                        \
        }                                                                            \
        e_ = 9;                                                                      \
    L:                                                                               \
        BR_SYNC();                                                                   \
        s = huff_slow(d, (h), e_);                                                   \
        BR_LOAD();                                                                   \
        if (s < 0) return false;                                                     \
    } while (0)
/* A symbol: from the LOOKB-bit table (or the code-length loop of huff_slow,
 * which needs at most 17 bits) when >= 17 bits are buffered, else huff(). */
#define BR_SYM(h, s, L)                                                              \
    do {                                                                             \
        if (bits >= 17) {                                                            \
            int e_ = (h)->lookb[(buf >> (bits - LOOKB)) & ((1 << LOOKB) - 1)];       \
            if (e_) {                                                                \
                bits -= e_ >> 8;                                                     \
                s = e_ & 0xFF;                                                       \
            } else {                                                                 \
                uint32_t w_ = (uint32_t)(buf >> (bits - 17)) & 0x1FFFF;              \
                int l_ = LOOKB + 1;                                                  \
                int32_t c_ = (int32_t)(w_ >> (16 - LOOKB));                          \
                while (c_ > (h)->maxcode[l_]) c_ = (int32_t)(w_ >> (17 - ++l_));     \
                bits -= l_;                                                          \
                s = l_ > 16 ? 0 : (h)->vals[(c_ + (h)->valoff[l_]) & 0xFF];          \
            }                                                                        \
        } else {                                                                     \
            BR_HUFF(h, s, L);                                                        \
        }                                                                            \
    } while (0)
#define BR_BITS(n, v)                                                                \
    do {                                                                             \
        BR_NEED(n);                                                                  \
        bits -= (n);                                                                 \
        v = (int)((buf >> bits) & ((1u << (n)) - 1));                                \
    } while (0)

static inline uint64_t load_be64(const uint8_t *p) {
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return __builtin_bswap64(w);
#else
    w = 0;
    for (int i = 0; i < 8; i++) w = (w << 8) | p[i];
    return w;
#endif
}

static inline bool has_ff(uint64_t w) {
    uint64_t v = ~w; /* a byte of w is FF iff a byte of v is zero */
    return ((v - 0x0101010101010101u) & ~v & 0x8080808080808080u) != 0;
}

static bool decode_block_seq(jdec *d, int ci, const hderived *dc, const hderived *ac, int16_t *blk,
                             bool *nz) {
    uint64_t buf;
    int bits;
    const uint8_t *p;
    BR_LOAD();
    int s, r;
    BR_SYM(dc, s, dc_slow);
    if (s) {
        BR_BITS(s, r);
        s = extend(r, s);
    }
    /* libjpeg keeps the predictor in an int that corrupt data may overflow
     * (wrapping in practice); unsigned arithmetic gives that without UB. */
    d->pred[ci] = (int)((unsigned)d->pred[ci] + (unsigned)s);
    blk[0] = (int16_t)d->pred[ci];
    bool any = false;
    for (int k = 1; k < 64; k++) {
        if (bits >= LOOKB) {
            /* Code and value within the next LOOKB bits: no request in
             * between could have refilled. */
            int32_t f = ac->acfast[(buf >> (bits - LOOKB)) & ((1 << LOOKB) - 1)];
            if (f) {
                if (f & 0x10) {
                    bits -= f & 15;
                    break;
                }
                k += (f >> 8) & 15;
                bits -= f & 15;
                blk[zz[k]] = (int16_t)(f >> 16);
                any = true;
                continue;
            }
        }
        BR_SYM(ac, s, ac_slow);
        r = s >> 4;
        s &= 15;
        if (s) {
            k += r;
            BR_BITS(s, r);
            blk[zz[k]] = (int16_t)extend(r, s);
            any = true;
        } else {
            if (r != 15) break;
            k += 15;
        }
    }
    BR_SYNC();
    *nz = any;
    return true;
}

static bool decode_dc_first(jdec *d, int ci, const hderived *dc, int16_t *blk, int *bad) {
    int s = huff(d, dc), r;
    if (s < 0) return false;
    if (s) {
        if (!get_bits(d, s, &r)) return false;
        s = extend(r, s);
    }
    int p = d->pred[ci];
    if ((p >= 0 && s > INT32_MAX - p) || (p < 0 && s < INT32_MIN - p)) { *bad = 1; return false; }
    d->pred[ci] = p + s;
    blk[0] = (int16_t)(uint16_t)((unsigned)d->pred[ci] << d->al);
    return true;
}

static bool decode_ac_first(jdec *d, const hderived *ac, int16_t *blk) {
    if (d->eobrun > 0) { d->eobrun--; return true; }
    for (int k = d->ss; k <= d->se; k++) {
        int s = huff(d, ac), r;
        if (s < 0) return false;
        r = s >> 4;
        s &= 15;
        if (s) {
            k += r;
            if (!get_bits(d, s, &r)) return false;
            blk[zz[k]] = (int16_t)(uint16_t)((unsigned)extend(r, s) << d->al);
        } else if (r == 15) {
            k += 15;
        } else {
            d->eobrun = 1 << r;
            if (r) {
                if (!get_bits(d, r, &r)) return false;
                d->eobrun += r;
            }
            d->eobrun--;
            break;
        }
    }
    return true;
}

static inline bool refine_bit(jdec *d, int16_t *c, int p1, int m1) {
    int b;
    if (!get_bits(d, 1, &b)) return false;
    if (b && (*c & p1) == 0) *c = (int16_t)(*c >= 0 ? *c + p1 : *c + m1);
    return true;
}

static bool decode_ac_refine(jdec *d, const hderived *ac, int16_t *blk) {
    int p1 = 1 << d->al, m1 = -p1;
    int k = d->ss, se = d->se;
    if (d->eobrun == 0) {
        for (; k <= se; k++) {
            int s = huff(d, ac), r;
            if (s < 0) return false;
            r = s >> 4;
            s &= 15;
            if (s) {
                int b;
                if (!get_bits(d, 1, &b)) return false;
                s = b ? p1 : m1;
            } else if (r != 15) {
                d->eobrun = 1 << r;
                if (r) {
                    if (!get_bits(d, r, &r)) return false;
                    d->eobrun += r;
                }
                break;
            }
            do {
                int16_t *c = &blk[zz[k]];
                if (*c != 0) {
                    if (!refine_bit(d, c, p1, m1)) return false;
                } else if (--r < 0) {
                    break;
                }
                k++;
            } while (k <= se);
            if (s) blk[zz[k]] = (int16_t)s;
        }
    }
    if (d->eobrun > 0) {
        for (; k <= se; k++) {
            int16_t *c = &blk[zz[k]];
            if (*c != 0 && !refine_bit(d, c, p1, m1)) return false;
        }
        d->eobrun--;
    }
    return true;
}

/* ------------------------------------------------------------------ IDCT */

#ifdef __SSE2__
/* idct_islow with SSE2, for blocks where it gives the same bits.  Before each
 * pass's final shift the scalar code computes an exact integer linear form
 * of its 8 inputs; folded into one coefficient per input (below, e.g.
 * 2446 - 7373 - 16069 + 9633 = -11363) every factor fits pmaddwd.  Pass 1 is
 * exact in 32 bits when all dequantised inputs are within +-2^14 (sums stay
 * below 2^31); pass 2 needs its inputs in 16 bits, and from its sums only
 * bits 18..27 are kept (the range-limit index, & 1023), which wrapping 32-bit
 * arithmetic preserves.  rl[] is clamp(sign-extended 10 bits + 128), i.e.
 * a shift pair and packus.  Returns false (nothing written) otherwise. */
#define IDCT_K(a, b) _mm_set1_epi32((int)(uint16_t)(int16_t)(a) | (int)((uint32_t)(uint16_t)(int16_t)(b) << 16))
#define IDCT_1D(x, h, res, RND, SH)                                                            \
    do {                                                                                     \
        __m128i p04 = h ? _mm_unpackhi_epi16(x[0], x[4]) : _mm_unpacklo_epi16(x[0], x[4]);   \
        __m128i p26 = h ? _mm_unpackhi_epi16(x[2], x[6]) : _mm_unpacklo_epi16(x[2], x[6]);   \
        __m128i pab = h ? _mm_unpackhi_epi16(x[7], x[5]) : _mm_unpacklo_epi16(x[7], x[5]);   \
        __m128i pcd = h ? _mm_unpackhi_epi16(x[3], x[1]) : _mm_unpacklo_epi16(x[3], x[1]);   \
        __m128i t0 = _mm_madd_epi16(p04, IDCT_K(8192, 8192));                                \
        __m128i t1 = _mm_madd_epi16(p04, IDCT_K(8192, -8192));                               \
        __m128i t2 = _mm_madd_epi16(p26, IDCT_K(4433, -10704));                              \
        __m128i t3 = _mm_madd_epi16(p26, IDCT_K(10703, 4433));                               \
        __m128i e10 = _mm_add_epi32(_mm_add_epi32(t0, t3), RND);                             \
        __m128i e13 = _mm_add_epi32(_mm_sub_epi32(t0, t3), RND);                             \
        __m128i e11 = _mm_add_epi32(_mm_add_epi32(t1, t2), RND);                             \
        __m128i e12 = _mm_add_epi32(_mm_sub_epi32(t1, t2), RND);                             \
        __m128i oa = _mm_add_epi32(_mm_madd_epi16(pab, IDCT_K(-11363, 9633)),                \
                                   _mm_madd_epi16(pcd, IDCT_K(-6436, 2260)));                \
        __m128i ob = _mm_add_epi32(_mm_madd_epi16(pab, IDCT_K(9633, 2261)),                  \
                                   _mm_madd_epi16(pcd, IDCT_K(-11362, 6437)));               \
        __m128i oc = _mm_add_epi32(_mm_madd_epi16(pab, IDCT_K(-6436, -11362)),               \
                                   _mm_madd_epi16(pcd, IDCT_K(-2259, 9633)));                \
        __m128i od = _mm_add_epi32(_mm_madd_epi16(pab, IDCT_K(2260, 6437)),                  \
                                   _mm_madd_epi16(pcd, IDCT_K(9633, 11363)));                \
        res[0][h] = SH(_mm_add_epi32(e10, od));                                              \
        res[7][h] = SH(_mm_sub_epi32(e10, od));                                              \
        res[1][h] = SH(_mm_add_epi32(e11, oc));                                              \
        res[6][h] = SH(_mm_sub_epi32(e11, oc));                                              \
        res[2][h] = SH(_mm_add_epi32(e12, ob));                                              \
        res[5][h] = SH(_mm_sub_epi32(e12, ob));                                              \
        res[3][h] = SH(_mm_add_epi32(e13, oa));                                              \
        res[4][h] = SH(_mm_sub_epi32(e13, oa));                                              \
    } while (0)
#define IDCT_SH1(v) _mm_srai_epi32((v), 11)
/* bits 18..27, sign-extended, plus 128 */
#define IDCT_SH2(v) _mm_add_epi32(_mm_srai_epi32(_mm_slli_epi32((v), 4), 22), _mm_set1_epi32(128))

static inline void transpose8x8_16(__m128i r[8]) {
    __m128i a0 = _mm_unpacklo_epi16(r[0], r[1]), a1 = _mm_unpackhi_epi16(r[0], r[1]);
    __m128i a2 = _mm_unpacklo_epi16(r[2], r[3]), a3 = _mm_unpackhi_epi16(r[2], r[3]);
    __m128i a4 = _mm_unpacklo_epi16(r[4], r[5]), a5 = _mm_unpackhi_epi16(r[4], r[5]);
    __m128i a6 = _mm_unpacklo_epi16(r[6], r[7]), a7 = _mm_unpackhi_epi16(r[6], r[7]);
    __m128i b0 = _mm_unpacklo_epi32(a0, a2), b1 = _mm_unpackhi_epi32(a0, a2);
    __m128i b2 = _mm_unpacklo_epi32(a1, a3), b3 = _mm_unpackhi_epi32(a1, a3);
    __m128i b4 = _mm_unpacklo_epi32(a4, a6), b5 = _mm_unpackhi_epi32(a4, a6);
    __m128i b6 = _mm_unpacklo_epi32(a5, a7), b7 = _mm_unpackhi_epi32(a5, a7);
    r[0] = _mm_unpacklo_epi64(b0, b4);
    r[1] = _mm_unpackhi_epi64(b0, b4);
    r[2] = _mm_unpacklo_epi64(b1, b5);
    r[3] = _mm_unpackhi_epi64(b1, b5);
    r[4] = _mm_unpacklo_epi64(b2, b6);
    r[5] = _mm_unpackhi_epi64(b2, b6);
    r[6] = _mm_unpacklo_epi64(b3, b7);
    r[7] = _mm_unpackhi_epi64(b3, b7);
}

static bool idct_sse2(const int16_t *in, const int16_t *q, uint8_t *out, size_t stride) {
    __m128i x[8], bad = _mm_setzero_si128();
    for (int r = 0; r < 8; r++) {
        __m128i a = _mm_loadu_si128((const __m128i *)(in + 8 * r));
        __m128i b = _mm_loadu_si128((const __m128i *)(q + 8 * r));
        __m128i lo = _mm_mullo_epi16(a, b), hi = _mm_mulhi_epi16(a, b);
        __m128i t = _mm_srai_epi16(lo, 14);
        /* the product is in [-2^14, 2^14) iff hi, lo>>14 and lo>>15 agree */
        bad = _mm_or_si128(bad, _mm_or_si128(_mm_xor_si128(hi, t), _mm_xor_si128(t, _mm_srai_epi16(lo, 15))));
        x[r] = lo;
    }
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(bad, _mm_setzero_si128())) != 0xFFFF) return false;
    __m128i w[8][2];
    const __m128i r1 = _mm_set1_epi32(1024), r2 = _mm_set1_epi32(1 << 17);
    IDCT_1D(x, 0, w, r1, IDCT_SH1);
    IDCT_1D(x, 1, w, r1, IDCT_SH1);
    for (int r = 0; r < 8; r++) {
        for (int h = 0; h < 2; h++) /* in 16 bits iff bits 15..31 agree */
            bad = _mm_or_si128(bad, _mm_xor_si128(_mm_srai_epi32(w[r][h], 15), _mm_srai_epi32(w[r][h], 31)));
        x[r] = _mm_packs_epi32(w[r][0], w[r][1]);
    }
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(bad, _mm_setzero_si128())) != 0xFFFF) return false;
    transpose8x8_16(x); /* x[c]: column c of every row */
    IDCT_1D(x, 0, w, r2, IDCT_SH2);
    IDCT_1D(x, 1, w, r2, IDCT_SH2);
    for (int c = 0; c < 8; c++) x[c] = _mm_packs_epi32(w[c][0], w[c][1]);
    transpose8x8_16(x); /* back to rows */
    for (int r = 0; r < 8; r += 2) {
        __m128i v = _mm_packus_epi16(x[r], x[r + 1]);
        _mm_storel_epi64((__m128i *)(out + (size_t)r * stride), v);
        _mm_storel_epi64((__m128i *)(out + (size_t)(r + 1) * stride), _mm_srli_si128(v, 8));
    }
    return true;
}
#endif

/* jpeg_idct_islow.  libjpeg's C code computes in JLONG (64-bit on LP64) and
 * stores the first pass in int; the same here, so corrupt data cannot
 * overflow.  out receives 8x8 samples at the given stride. */
static void idct_islow(const int16_t *in, const int16_t *q, uint8_t *out, size_t stride,
                       const uint8_t *rl) {
#ifdef __SSE2__
    if (jpeg_simd && idct_sse2(in, q, out, stride)) return;
#endif
    int32_t ws[64];
    for (int c = 0; c < 8; c++) {
        const int16_t *x = in + c;
        const int16_t *qq = q + c;
        if (!(x[8] | x[16] | x[24] | x[32] | x[40] | x[48] | x[56])) {
            int32_t dc = (int32_t)((uint32_t)(x[0] * qq[0]) << 2);
            for (int r = 0; r < 8; r++) ws[r * 8 + c] = dc;
            continue;
        }
        int64_t z2 = x[16] * qq[16], z3 = x[48] * qq[48];
        int64_t z1 = (z2 + z3) * 4433;
        int64_t t2 = z1 - z3 * 15137, t3 = z1 + z2 * 6270;
        z2 = x[0] * qq[0];
        z3 = x[32] * qq[32];
        int64_t t0 = (z2 + z3) * 8192, t1 = (z2 - z3) * 8192;
        int64_t e10 = t0 + t3, e13 = t0 - t3, e11 = t1 + t2, e12 = t1 - t2;
        int64_t a = x[56] * qq[56], b = x[40] * qq[40], cc = x[24] * qq[24], dd = x[8] * qq[8];
        z1 = a + dd;
        z2 = b + cc;
        z3 = a + cc;
        int64_t z4 = b + dd;
        int64_t z5 = (z3 + z4) * 9633;
        a *= 2446;
        b *= 16819;
        cc *= 25172;
        dd *= 12299;
        z1 *= -7373;
        z2 *= -20995;
        z3 = z3 * -16069 + z5;
        z4 = z4 * -3196 + z5;
        a += z1 + z3;
        b += z2 + z4;
        cc += z2 + z3;
        dd += z1 + z4;
        ws[0 * 8 + c] = (int32_t)((e10 + dd + 1024) >> 11);
        ws[7 * 8 + c] = (int32_t)((e10 - dd + 1024) >> 11);
        ws[1 * 8 + c] = (int32_t)((e11 + cc + 1024) >> 11);
        ws[6 * 8 + c] = (int32_t)((e11 - cc + 1024) >> 11);
        ws[2 * 8 + c] = (int32_t)((e12 + b + 1024) >> 11);
        ws[5 * 8 + c] = (int32_t)((e12 - b + 1024) >> 11);
        ws[3 * 8 + c] = (int32_t)((e13 + a + 1024) >> 11);
        ws[4 * 8 + c] = (int32_t)((e13 - a + 1024) >> 11);
    }
    for (int r = 0; r < 8; r++, out += stride) {
        const int32_t *w = ws + r * 8;
        if (!(w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])) {
            uint8_t v = rl[(int)(((int64_t)w[0] + 16) >> 5) & 1023];
            memset(out, v, 8);
            continue;
        }
        int64_t z2 = w[2], z3 = w[6];
        int64_t z1 = (z2 + z3) * 4433;
        int64_t t2 = z1 - z3 * 15137, t3 = z1 + z2 * 6270;
        int64_t t0 = ((int64_t)w[0] + w[4]) * 8192, t1 = ((int64_t)w[0] - w[4]) * 8192;
        int64_t e10 = t0 + t3, e13 = t0 - t3, e11 = t1 + t2, e12 = t1 - t2;
        int64_t a = w[7], b = w[5], cc = w[3], dd = w[1];
        z1 = a + dd;
        z2 = b + cc;
        z3 = a + cc;
        int64_t z4 = b + dd;
        int64_t z5 = (z3 + z4) * 9633;
        a *= 2446;
        b *= 16819;
        cc *= 25172;
        dd *= 12299;
        z1 *= -7373;
        z2 *= -20995;
        z3 = z3 * -16069 + z5;
        z4 = z4 * -3196 + z5;
        a += z1 + z3;
        b += z2 + z4;
        cc += z2 + z3;
        dd += z1 + z4;
        const int64_t h = (int64_t)1 << 17;
        out[0] = rl[(int)((e10 + dd + h) >> 18) & 1023];
        out[7] = rl[(int)((e10 - dd + h) >> 18) & 1023];
        out[1] = rl[(int)((e11 + cc + h) >> 18) & 1023];
        out[6] = rl[(int)((e11 - cc + h) >> 18) & 1023];
        out[2] = rl[(int)((e12 + b + h) >> 18) & 1023];
        out[5] = rl[(int)((e12 - b + h) >> 18) & 1023];
        out[3] = rl[(int)((e13 + a + h) >> 18) & 1023];
        out[4] = rl[(int)((e13 - a + h) >> 18) & 1023];
    }
}

/* A block whose AC coefficients are all zero: every sample is the same. */
static void idct_dc(const int16_t *in, const int16_t *q, uint8_t *out, size_t stride,
                    const uint8_t *rl) {
    int32_t w0 = (int32_t)((uint32_t)(in[0] * q[0]) << 2);
    uint8_t v = rl[(int)(((int64_t)w0 + 16) >> 5) & 1023];
    for (int r = 0; r < 8; r++, out += stride) memset(out, v, 8);
}

/* ------------------------------------------------------------ frame setup */

/* jdinput.c initial_setup plus the checks of jpeg_start_decompress. */
static int setup_frame(jdec *d, fdd_image *out) {
    if (d->arith)
        return JFAIL(d, FDD_E_UNSUPPORTED, "unsupported JPEG: arithmetic coding");
    if (d->width > 65500 || d->height > 65500)
        return JFAIL(d, FDD_E_FORMAT, "JPEG image too large (%dx%d)", d->width, d->height);
    d->maxh = d->maxv = 1;
    for (int i = 0; i < d->ncomp; i++) {
        jcomp *c = &d->comp[i];
        if (c->h < 1 || c->h > 4 || c->v < 1 || c->v > 4)
            return JFAIL(d, FDD_E_FORMAT, "bad sampling factors %dx%d", c->h, c->v);
        if (c->h > d->maxh) d->maxh = c->h;
        if (c->v > d->maxv) d->maxv = c->v;
    }
    d->mcux = (d->width + 8 * d->maxh - 1) / (8 * d->maxh);
    d->mcuy = (d->height + 8 * d->maxv - 1) / (8 * d->maxv);
    for (int i = 0; i < d->ncomp; i++) {
        jcomp *c = &d->comp[i];
        if (d->maxh % c->h || d->maxv % c->v)
            return JFAIL(d, FDD_E_UNSUPPORTED, "unsupported JPEG: fractional sampling factors");
        c->hf = d->maxh / c->h;
        c->vf = d->maxv / c->v;
        c->dw = (int)(((int64_t)d->width * c->h + d->maxh - 1) / d->maxh);
        c->dh = (int)(((int64_t)d->height * c->v + d->maxv - 1) / d->maxv);
        c->bw = (int)(((int64_t)d->width * c->h + 8 * d->maxh - 1) / (8 * d->maxh));
        c->bh = (int)(((int64_t)d->height * c->v + 8 * d->maxv - 1) / (8 * d->maxv));
        c->bwp = d->mcux * c->h;
        c->bhp = d->mcuy * c->v;
        if (c->hf == 1 && c->vf == 1) c->up = UP_NONE;
        else if (c->hf == 2 && c->vf == 1) c->up = c->dw > 2 ? UP_H2V1 : UP_BOX;
        else if (c->hf == 2 && c->vf == 2) c->up = c->dw > 2 ? UP_H2V2 : UP_BOX;
        else if (c->hf == 1 && c->vf == 2) c->up = UP_H1V2;
        else c->up = UP_BOX;
        for (int k = 0; k < 64; k++) c->coef_bits[k] = -1;
    }
    /* The bomb limit is checked (and the output allocated) before any other
     * allocation sized by the file. */
    if (fdd_image_alloc(out, (uint64_t)d->width, (uint64_t)d->height, d->name, d->err)) return 0;
    /* libjpeg-turbo fills undefined Huffman slots 0 and 1 with Annex K tables. */
    for (int t = 0; t < 2; t++) {
        if (!d->dc[t].defined) {
            htable *h = &d->dc[t];
            memset(h, 0, sizeof *h);
            memcpy(h->bits + 1, std_dc_bits[t], 16);
            for (int k = 0; k < 12; k++) h->vals[k] = (uint8_t)k;
            h->defined = true;
        }
        if (!d->ac[t].defined) {
            htable *h = &d->ac[t];
            memset(h, 0, sizeof *h);
            memcpy(h->bits + 1, std_ac_bits[t], 16);
            memcpy(h->vals, std_ac_vals[t], 162);
            h->defined = true;
        }
    }
    d->multi = d->progressive || d->ns < d->ncomp;
    /* Samples are produced, upsampled and converted one MCU row at a time
     * (for multi-scan files once all coefficients are in): each plane is a
     * ring of three MCU rows (the newest and the two the vertical upsamplers
     * look at), which stays in cache. */
    for (int i = 0; i < d->ncomp; i++) {
        jcomp *c = &d->comp[i];
        size_t sz;
        int grp = d->ncomp == 1 && !d->multi ? 8 : 8 * c->v;
        c->stride = (size_t)c->bw * 8;
        c->ring_rows = c->bh * 8;
        if (3 * grp < c->ring_rows) c->ring_rows = 3 * grp;
        if (!fdd_mul_ok(c->stride, (size_t)c->ring_rows, &sz) || !(c->plane = fdd_malloc(sz)))
            return JFAIL(d, FDD_E_NOMEM, "cannot allocate JPEG sample planes");
    }
    if (!fdd_add_ok((size_t)d->width, 16, &d->rowbuf_stride) ||
        !(d->rowbuf = fdd_malloc(d->rowbuf_stride * (size_t)d->ncomp)))
        return JFAIL(d, FDD_E_NOMEM, "cannot allocate JPEG row buffer");
    if (d->multi)
        for (int i = 0; i < d->ncomp; i++) {
            jcomp *c = &d->comp[i];
            size_t nb, sz;
            if (!fdd_mul_ok((size_t)c->bwp, (size_t)c->bhp, &nb) || !fdd_mul_ok(nb, 64 * sizeof(int16_t), &sz) ||
                !(c->coef = fdd_calloc(sz, 1)))
                return JFAIL(d, FDD_E_NOMEM, "cannot allocate JPEG coefficients");
        }
    /* Range limit of jdmaster.c prepare_range_limit_table, indexed by x & 1023. */
    for (int x = 0; x < 1024; x++)
        d->rl[x] = (uint8_t)(x < 128 ? x + 128 : x < 512 ? 255 : x < 896 ? 0 : x - 896);
    return 1;
}

static int table_for(jdec *d, bool is_dc, int t, hderived *o) {
    const htable *h = t < 4 ? (is_dc ? &d->dc[t] : &d->ac[t]) : NULL;
    if (!h || !h->defined) return JFAIL(d, FDD_E_FORMAT, "scan uses undefined Huffman table %d", t);
    return build_derived(d, h, is_dc, o);
}

/* start_input_pass: latch quantisers, validate the scan, derive tables. */
static int start_scan(jdec *d) {
    for (int i = 0; i < d->ns; i++) {
        jcomp *c = d->sc[i];
        if (c->latched) continue;
        if (c->tq >= 4 || !d->qt_def[c->tq])
            return JFAIL(d, FDD_E_FORMAT, "quantization table %d not defined", c->tq);
        for (int k = 0; k < 64; k++) {
            c->qraw[k] = d->qt[c->tq][k];
            c->q[k] = (int16_t)d->qt[c->tq][k];
        }
        c->latched = true;
    }
    if (d->ns > 1) {
        int blocks = 0;
        for (int i = 0; i < d->ns; i++) blocks += d->sc[i]->h * d->sc[i]->v;
        if (blocks > MAX_BLOCKS) return JFAIL(d, FDD_E_FORMAT, "bad MCU size (%d blocks)", blocks);
    }
    if (d->progressive) {
        bool dc_band = d->ss == 0, bad = false;
        if (dc_band) bad = d->se != 0;
        else bad = d->ss > d->se || d->se > 63 || d->ns != 1;
        if (d->ah != 0 && d->al != d->ah - 1) bad = true;
        if (d->al > 13) bad = true;
        if (bad)
            return JFAIL(d, FDD_E_FORMAT, "invalid progressive parameters Ss=%d Se=%d Ah=%d Al=%d",
                         d->ss, d->se, d->ah, d->al);
        for (int i = 0; i < d->ns; i++) {
            jcomp *c = d->sc[i];
            for (int k = d->ss < 1 ? d->ss : 1; k <= 9; k++)
                c->prev_bits[k] = d->scan_no > 1 ? c->coef_bits[k] : 0;
            for (int k = d->ss; k <= d->se; k++) c->coef_bits[k] = d->al;
        }
        for (int i = 0; i < d->ns; i++) {
            jcomp *c = d->sc[i];
            if (dc_band) {
                if (d->ah == 0 && !table_for(d, true, c->dc_tbl, &d->dtab[i])) return 0;
            } else if (!table_for(d, false, c->ac_tbl, &d->atab[i])) {
                return 0;
            }
        }
    } else {
        for (int i = 0; i < d->ns; i++) {
            if (!table_for(d, true, d->sc[i]->dc_tbl, &d->dtab[i])) return 0;
            if (!table_for(d, false, d->sc[i]->ac_tbl, &d->atab[i])) return 0;
        }
    }
    for (int i = 0; i < 4; i++) d->pred[i] = 0;
    d->eobrun = 0;
    d->bits = 0;
    d->buf = 0;
    d->insufficient = false;
    d->restarts_to_go = d->restart_interval;
    return 1;
}

/* Decodes one scan.  Single-scan sequential files go straight to the sample
 * planes (IDCT per MCU); others accumulate coefficients. */
static void emit_rows(jdec *d, fdd_image *out, int y0, int y1);

static int decode_scan(jdec *d, fdd_image *out) {
    int ns = d->ns;
    int mcux, mcuy;
    if (ns == 1) {
        mcux = d->sc[0]->bw;
        mcuy = d->sc[0]->bh;
    } else {
        mcux = d->mcux;
        mcuy = d->mcuy;
    }
    int16_t mcu[MAX_BLOCKS][64];
    bool nz[MAX_BLOCKS];
    const int mode = !d->progressive ? 0 : d->ss == 0 ? (d->ah == 0 ? 1 : 2) : (d->ah == 0 ? 3 : 4);
    for (int my = 0; my < mcuy; my++) {
        /* Plane rows of this MCU row's blocks (no division per block). */
        uint8_t *prow_of[4][4] = {{NULL}};
        if (!d->multi)
            for (int i = 0; i < ns; i++) {
                jcomp *c = d->sc[i];
                int v = ns == 1 ? 1 : c->v;
                for (int yy = 0; yy < v; yy++)
                    prow_of[i][yy] = c->plane + (size_t)(((my * v + yy) * 8) % c->ring_rows) * c->stride;
            }
        for (int mx = 0; mx < mcux; mx++) {
            if (!d->insufficient) d->last_good = ns == 1 ? my / d->sc[0]->v : my;
            if (d->restart_interval && d->restarts_to_go == 0 && !restart(d)) return truncated(d);
            /* Gather the MCU's blocks: comp index, block row/col. */
            int nb = 0;
            int16_t *blk[MAX_BLOCKS];
            int bci[MAX_BLOCKS], bx[MAX_BLOCKS], by[MAX_BLOCKS], byy[MAX_BLOCKS];
            for (int i = 0; i < ns; i++) {
                jcomp *c = d->sc[i];
                int h = ns == 1 ? 1 : c->h, v = ns == 1 ? 1 : c->v;
                for (int yy = 0; yy < v; yy++)
                    for (int xx = 0; xx < h; xx++) {
                        bci[nb] = i;
                        bx[nb] = mx * h + xx;
                        by[nb] = my * v + yy;
                        byy[nb] = yy;
                        if (d->multi)
                            blk[nb] = c->coef + ((size_t)by[nb] * (size_t)c->bwp + (size_t)bx[nb]) * 64;
                        else
                            blk[nb] = mcu[nb];
                        nb++;
                    }
            }
            if (!d->multi) {
                memset(mcu, 0, sizeof(mcu[0]) * (size_t)nb);
                memset(nz, 0, sizeof nz);
            }
            if (mode == 2) {
                /* DC refinement never looks at the insufficient-data flag. */
                for (int b = 0; b < nb; b++) {
                    int v;
                    if (!get_bits(d, 1, &v)) return truncated(d);
                    if (v) blk[b][0] = (int16_t)(blk[b][0] | (1 << d->al));
                }
            } else if (!d->insufficient) {
                for (int b = 0; b < nb; b++) {
                    int i = bci[b];
                    bool ok;
                    int bad = 0;
                    switch (mode) {
                    case 0: ok = decode_block_seq(d, i, &d->dtab[i], &d->atab[i], blk[b], &nz[b]); break;
                    case 1: ok = decode_dc_first(d, i, &d->dtab[i], blk[b], &bad); break;
                    case 3: ok = decode_ac_first(d, &d->atab[0], blk[b]); break;
                    default: ok = decode_ac_refine(d, &d->atab[0], blk[b]); break;
                    }
                    if (!ok) {
                        if (bad) return JFAIL(d, FDD_E_FORMAT, "corrupt JPEG data (DC coefficient out of range)");
                        return truncated(d);
                    }
                }
            }
            if (d->restart_interval) d->restarts_to_go--;
            if (!d->multi) {
                for (int b = 0; b < nb; b++) {
                    jcomp *c = d->sc[bci[b]];
                    if (bx[b] >= c->bw || by[b] >= c->bh) continue; /* dummy block */
                    uint8_t *o = prow_of[bci[b]][byy[b]] + (size_t)bx[b] * 8;
                    if (nz[b]) idct_islow(blk[b], c->q, o, c->stride, d->rl);
                    else idct_dc(blk[b], c->q, o, c->stride, d->rl);
                }
            }
        }
        if (!d->multi) {
            /* MCU row my is in: rows of MCU row my-1 have all their context. */
            int oh = d->ncomp == 1 ? 8 : 8 * d->maxv;
            if (my > 0) emit_rows(d, out, (my - 1) * oh, my * oh);
            if (my == mcuy - 1) emit_rows(d, out, my * oh, d->height);
        }
    }
    return 1;
}

/* jdcoefct.c smoothing_ok: block smoothing would change the output. */
static bool smoothing_needed(const jdec *d) {
    static const int qpos[10] = {0, 1, 8, 16, 9, 2, 3, 10, 17, 24};
    bool useful = false;
    for (int i = 0; i < d->ncomp; i++) {
        const jcomp *c = &d->comp[i];
        if (!c->latched) return false;
        for (int k = 0; k < 10; k++)
            if (c->q[qpos[k]] == 0) return false;
        if (c->coef_bits[0] < 0) return false;
        for (int k = 1; k < 10; k++)
            if (c->coef_bits[k] != 0) useful = true;
    }
    return useful;
}

/* One smoothed coefficient estimate (jdcoefct.c): applied only where the
 * coefficient is still zero and not known exactly (bits != 0). */
static void smooth_coef(int16_t *w, int pos, int bits, int64_t q, int64_t num) {
    if (bits == 0 || w[pos] != 0) return;
    bool neg = num < 0;
    int64_t p = ((q << 7) + (neg ? -num : num)) / (q << 8);
    int32_t pred = (int32_t)(uint32_t)p; /* libjpeg stores the quotient in an int */
    if (bits > 0 && pred >= (1 << bits)) pred = (1 << bits) - 1;
    if (neg) pred = (int32_t)(0u - (uint32_t)pred);
    w[pos] = (int16_t)pred;
}

/* decompress_smooth_data of libjpeg-turbo 2.1: for an incomplete
 * progression, estimates missing low-frequency AC coefficients (and with no
 * AC data at all, the DC too) from the DC values of a 5x5 block
 * neighbourhood, then runs the IDCT.  Neighbour rows and columns follow
 * libjpeg's window bookkeeping exactly (it is not a plain clamp). */
static void idct_smooth(jdec *d, jcomp *c, int im) {
    const int last = d->mcuy - 1;
    int cur[10], prev[10];
    for (int k = 1; k < 10; k++) {
        cur[k] = c->coef_bits[k];
        prev[k] = d->scan_no > 1 ? c->prev_bits[k] : -1;
    }
    int v = c->v;
    int rows = im < last ? v : (c->bh % v ? c->bh % v : v);
    const int *bits = im > d->last_good ? prev : cur;
    bool change_dc = true;
    for (int k = 1; k < 10; k++)
        if (bits[k] != -1) change_dc = false;
    const int64_t Q00 = c->qraw[0], Q01 = c->qraw[1], Q10 = c->qraw[8], Q20 = c->qraw[16],
                  Q11 = c->qraw[9], Q02 = c->qraw[2], Q03 = c->qraw[3], Q12 = c->qraw[10],
                  Q21 = c->qraw[17], Q30 = c->qraw[24];
    for (int br = 0; br < rows; br++) {
        int R = im * v + br;
        int rp = (br > 0 || im > 0) ? R - 1 : R;
        int rpp = (br > 1 || im > 1) ? R - 2 : rp;
        int rn = (br < rows - 1 || im < last) ? R + 1 : R;
        int rnn = (br < rows - 2 || im + 1 < last) ? R + 2 : rn;
        const int rr[5] = {rpp, rp, R, rn, rnn};
        const int16_t *row[5];
        for (int k = 0; k < 5; k++) row[k] = c->coef + (size_t)rr[k] * (size_t)c->bwp * 64;
        int dc[5][6]; /* dc[row][1..5]: the 5 columns of the window */
        for (int k = 0; k < 5; k++)
            for (int j = 1; j <= 5; j++) dc[k][j] = row[k][0];
        const int lastcol = c->bw - 1;
        for (int b = 0; b <= lastcol; b++) {
            int16_t w[64];
            memcpy(w, row[2] + (size_t)b * 64, sizeof w);
            if (b == 0 && b < lastcol)
                for (int k = 0; k < 5; k++) dc[k][4] = row[k][64];
            if (b + 1 < lastcol)
                for (int k = 0; k < 5; k++) dc[k][5] = row[k][(size_t)(b + 2) * 64];
            /* DCnn of libjpeg: nn = 5*row + col, rows/cols 1-based. */
#define DC(n) ((int64_t)dc[((n) - 1) / 5][((n) - 1) % 5 + 1])
            smooth_coef(w, 1, bits[1], Q01, Q00 * (change_dc ?
                (-DC(1) - DC(2) + DC(4) + DC(5) - 3 * DC(6) + 13 * DC(7) - 13 * DC(9) +
                 3 * DC(10) - 3 * DC(11) + 38 * DC(12) - 38 * DC(14) + 3 * DC(15) -
                 3 * DC(16) + 13 * DC(17) - 13 * DC(19) + 3 * DC(20) - DC(21) - DC(22) +
                 DC(24) + DC(25)) :
                (-7 * DC(11) + 50 * DC(12) - 50 * DC(14) + 7 * DC(15))));
            smooth_coef(w, 8, bits[2], Q10, Q00 * (change_dc ?
                (-DC(1) - 3 * DC(2) - 3 * DC(3) - 3 * DC(4) - DC(5) - DC(6) + 13 * DC(7) +
                 38 * DC(8) + 13 * DC(9) - DC(10) + DC(16) - 13 * DC(17) - 38 * DC(18) -
                 13 * DC(19) + DC(20) + DC(21) + 3 * DC(22) + 3 * DC(23) + 3 * DC(24) +
                 DC(25)) :
                (-7 * DC(3) + 50 * DC(8) - 50 * DC(18) + 7 * DC(23))));
            smooth_coef(w, 16, bits[3], Q20, Q00 * (change_dc ?
                (DC(3) + 2 * DC(7) + 7 * DC(8) + 2 * DC(9) - 5 * DC(12) - 14 * DC(13) -
                 5 * DC(14) + 2 * DC(17) + 7 * DC(18) + 2 * DC(19) + DC(23)) :
                (-DC(3) + 13 * DC(8) - 24 * DC(13) + 13 * DC(18) - DC(23))));
            smooth_coef(w, 9, bits[4], Q11, Q00 * (change_dc ?
                (-DC(1) + DC(5) + 9 * DC(7) - 9 * DC(9) - 9 * DC(17) + 9 * DC(19) +
                 DC(21) - DC(25)) :
                (DC(10) + DC(16) - 10 * DC(17) + 10 * DC(19) - DC(2) - DC(20) + DC(22) -
                 DC(24) + DC(4) - DC(6) + 10 * DC(7) - 10 * DC(9))));
            smooth_coef(w, 2, bits[5], Q02, Q00 * (change_dc ?
                (2 * DC(7) - 5 * DC(8) + 2 * DC(9) + DC(11) + 7 * DC(12) - 14 * DC(13) +
                 7 * DC(14) + DC(15) + 2 * DC(17) - 5 * DC(18) + 2 * DC(19)) :
                (-DC(11) + 13 * DC(12) - 24 * DC(13) + 13 * DC(14) - DC(15))));
            if (change_dc) {
                smooth_coef(w, 3, bits[6], Q03,
                            Q00 * (DC(7) - DC(9) + 2 * DC(12) - 2 * DC(14) + DC(17) - DC(19)));
                smooth_coef(w, 10, bits[7], Q12,
                            Q00 * (DC(7) - 3 * DC(8) + DC(9) - DC(17) + 3 * DC(18) - DC(19)));
                smooth_coef(w, 17, bits[8], Q21,
                            Q00 * (DC(7) - DC(9) - 3 * DC(12) + 3 * DC(14) + DC(17) - DC(19)));
                smooth_coef(w, 24, bits[9], Q30,
                            Q00 * (DC(7) + 2 * DC(8) + DC(9) - DC(17) - 2 * DC(18) - DC(19)));
                /* The DC itself: always replaced (bits -1 forces it). */
                w[0] = 0;
                smooth_coef(w, 0, -1, Q00, Q00 *
                    (-2 * DC(1) - 6 * DC(2) - 8 * DC(3) - 6 * DC(4) - 2 * DC(5) -
                     6 * DC(6) + 6 * DC(7) + 42 * DC(8) + 6 * DC(9) - 6 * DC(10) -
                     8 * DC(11) + 42 * DC(12) + 152 * DC(13) + 42 * DC(14) - 8 * DC(15) -
                     6 * DC(16) + 6 * DC(17) + 42 * DC(18) + 6 * DC(19) - 6 * DC(20) -
                     2 * DC(21) - 6 * DC(22) - 8 * DC(23) - 6 * DC(24) - 2 * DC(25)));
            }
#undef DC
            uint8_t *o = c->plane + (size_t)((R * 8) % c->ring_rows) * c->stride + (size_t)b * 8;
            idct_islow(w, c->q, o, c->stride, d->rl);
            for (int k = 0; k < 5; k++) {
                dc[k][1] = dc[k][2];
                dc[k][2] = dc[k][3];
                dc[k][3] = dc[k][4];
                dc[k][4] = dc[k][5];
            }
        }
    }
}

/* Plain IDCT of iMCU row im of a multi-scan component. */
static void idct_imcu(jdec *d, jcomp *c, int im) {
    int r0 = im * c->v, r1 = r0 + c->v < c->bh ? r0 + c->v : c->bh;
    for (int by = r0; by < r1; by++) {
        uint8_t *o = c->plane + (size_t)((by * 8) % c->ring_rows) * c->stride;
        if (!c->latched) {
            /* No scan touched this component: libjpeg's IDCT multiplier
             * table is still zeroed, so every sample is mid-grey. */
            memset(o, 128, c->stride * 8);
            continue;
        }
        for (int bx = 0; bx < c->bw; bx++) {
            const int16_t *b = c->coef + ((size_t)by * (size_t)c->bwp + (size_t)bx) * 64;
            idct_islow(b, c->q, o + (size_t)bx * 8, c->stride, d->rl);
        }
    }
}

/* Output of a multi-scan file, one iMCU row at a time through the rings. */
static void output_multi(jdec *d, fdd_image *out) {
    bool smooth = d->progressive && smoothing_needed(d);
    int oh = 8 * d->maxv;
    for (int im = 0; im < d->mcuy; im++) {
        for (int i = 0; i < d->ncomp; i++) {
            if (smooth) idct_smooth(d, &d->comp[i], im);
            else idct_imcu(d, &d->comp[i], im);
        }
        if (im > 0) emit_rows(d, out, (im - 1) * oh, im * oh);
        if (im == d->mcuy - 1) emit_rows(d, out, im * oh, d->height);
    }
}

/* ------------------------------------------------- upsampling and colour */

/* Output row y of component c at full resolution, in tmp (or the plane). */
static inline const uint8_t *prow(const jcomp *c, int r) {
    return c->plane + (size_t)(r % c->ring_rows) * c->stride;
}

static const uint8_t *comp_row(const jcomp *c, int y, uint8_t *tmp) {
    const int dw = c->dw;
    switch (c->up) {
    case UP_NONE:
        return prow(c, y);
    case UP_H2V1: {
        const uint8_t *in = prow(c, y);
        uint8_t *o = tmp;
        o[0] = in[0];
        o[1] = (uint8_t)((in[0] * 3 + in[1] + 2) >> 2);
        int i = 1;
#ifdef __SSE2__
        {
            const __m128i z = _mm_setzero_si128(), k3 = _mm_set1_epi16(3);
            const __m128i k1 = _mm_set1_epi16(1), k2 = _mm_set1_epi16(2);
            for (; jpeg_simd && i + 9 <= dw - 1; i += 8) { /* reads columns i-1..i+8 */
                __m128i cm = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(in + i - 1)), z);
                __m128i c0 = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(in + i)), z);
                __m128i cp = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(in + i + 1)), z);
                __m128i c3 = _mm_mullo_epi16(c0, k3);
                __m128i ev = _mm_srli_epi16(_mm_add_epi16(_mm_add_epi16(c3, cm), k1), 2);
                __m128i od = _mm_srli_epi16(_mm_add_epi16(_mm_add_epi16(c3, cp), k2), 2);
                __m128i p = _mm_packus_epi16(ev, od);
                _mm_storeu_si128((__m128i *)(o + 2 * i), _mm_unpacklo_epi8(p, _mm_srli_si128(p, 8)));
            }
        }
#endif
        for (; i < dw - 1; i++) {
            int v = in[i] * 3;
            o[2 * i] = (uint8_t)((v + in[i - 1] + 1) >> 2);
            o[2 * i + 1] = (uint8_t)((v + in[i + 1] + 2) >> 2);
        }
        o[2 * dw - 2] = (uint8_t)((in[dw - 1] * 3 + in[dw - 2] + 1) >> 2);
        o[2 * dw - 1] = in[dw - 1];
        return tmp;
    }
    case UP_H2V2: {
        int r = y >> 1;
        int f = (y & 1) ? (r + 1 < c->dh ? r + 1 : c->dh - 1) : (r > 0 ? r - 1 : 0);
        const uint8_t *n = prow(c, r), *fa = prow(c, f);
        uint8_t *o = tmp;
        int last = n[0] * 3 + fa[0], cur = last, next;
        next = n[1] * 3 + fa[1];
        o[0] = (uint8_t)((cur * 4 + 8) >> 4);
        o[1] = (uint8_t)((cur * 3 + next + 7) >> 4);
        last = cur;
        cur = next;
        int i = 1;
#ifdef __SSE2__
        /* Output pairs i..i+7 need input columns i-1..i+8. */
        if (jpeg_simd && dw > 10) {
            const __m128i z = _mm_setzero_si128(), k3 = _mm_set1_epi16(3);
            const __m128i k8 = _mm_set1_epi16(8), k7 = _mm_set1_epi16(7);
            for (; i + 9 <= dw - 1; i += 8) {
                __m128i cm = _mm_add_epi16(_mm_mullo_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(n + i - 1)), z), k3),
                                           _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(fa + i - 1)), z));
                __m128i c0 = _mm_add_epi16(_mm_mullo_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(n + i)), z), k3),
                                           _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(fa + i)), z));
                __m128i cp = _mm_add_epi16(_mm_mullo_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(n + i + 1)), z), k3),
                                           _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(fa + i + 1)), z));
                __m128i c3 = _mm_mullo_epi16(c0, k3);
                __m128i ev = _mm_srli_epi16(_mm_add_epi16(_mm_add_epi16(c3, cm), k8), 4);
                __m128i od = _mm_srli_epi16(_mm_add_epi16(_mm_add_epi16(c3, cp), k7), 4);
                __m128i p = _mm_packus_epi16(ev, od); /* 8 even then 8 odd outputs */
                _mm_storeu_si128((__m128i *)(o + 2 * i), _mm_unpacklo_epi8(p, _mm_srli_si128(p, 8)));
            }
            last = n[i - 1] * 3 + fa[i - 1];
            cur = n[i] * 3 + fa[i];
        }
#endif
        for (; i < dw - 1; i++) {
            next = n[i + 1] * 3 + fa[i + 1];
            o[2 * i] = (uint8_t)((cur * 3 + last + 8) >> 4);
            o[2 * i + 1] = (uint8_t)((cur * 3 + next + 7) >> 4);
            last = cur;
            cur = next;
        }
        o[2 * dw - 2] = (uint8_t)((cur * 3 + last + 8) >> 4);
        o[2 * dw - 1] = (uint8_t)((cur * 4 + 7) >> 4);
        return tmp;
    }
    case UP_H1V2: {
        int r = y >> 1, bias = (y & 1) ? 2 : 1;
        int f = (y & 1) ? (r + 1 < c->dh ? r + 1 : c->dh - 1) : (r > 0 ? r - 1 : 0);
        const uint8_t *n = prow(c, r), *fa = prow(c, f);
        for (int i = 0; i < dw; i++) tmp[i] = (uint8_t)((n[i] * 3 + fa[i] + bias) >> 2);
        return tmp;
    }
    default: {
        const uint8_t *in = prow(c, y / c->vf);
        if (c->hf == 1) return in;
        uint8_t *o = tmp;
        for (int i = 0; i < dw; i++)
            for (int k = 0; k < c->hf; k++) *o++ = in[i];
        return tmp;
    }
    }
}

static inline uint8_t clamp255(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* Colour space (libjpeg-turbo's guess, jdapimin.c) and jdcolor.c tables. */
static void color_setup(jdec *d) {
    if (d->ncomp == 1) d->cs = CS_GRAY;
    else if (d->ncomp == 3) {
        if (d->jfif) d->cs = CS_YCC;
        else if (d->adobe) d->cs = d->adobe_transform == 0 ? CS_RGB : CS_YCC;
        else if (d->comp[0].id == 82 && d->comp[1].id == 71 && d->comp[2].id == 66) d->cs = CS_RGB;
        else d->cs = CS_YCC;
    } else {
        d->cs = d->adobe ? (d->adobe_transform == 0 ? CS_CMYK : CS_YCCK) : CS_CMYK;
    }
    for (int i = 0; i < 256; i++) {
        int x = i - 128;
        d->crr[i] = (int)((91881 * (int64_t)x + 32768) >> 16);
        d->cbb[i] = (int)((116130 * (int64_t)x + 32768) >> 16);
        d->crg[i] = -46802 * x;
        d->cbg[i] = -22554 * x + 32768;
    }
}

/* YCbCr->RGB of jdcolor.c without tables: with x = Cr-128 and z = Cb-128,
 * Cr_r = (91881x + 32768) >> 16 = x + ((26345x + 32768) >> 16) and likewise
 * Cb_b = 2z + ((-14942z + 32768) >> 16), G's term = -x + ((-22554z + 18734x
 * + 32768) >> 16): the remainders fit pmaddwd's 16-bit factors, and packus
 * is the clamp.  16 pixels per step; returns the number of pixels done. */
static int ycc_simd(const uint8_t *Y, const uint8_t *Cb, const uint8_t *Cr, uint8_t *o, int w) {
    int x = 0;
#ifdef __SSE2__
    const __m128i z = _mm_setzero_si128(), k128 = _mm_set1_epi16(128), k2 = _mm_set1_epi16(2);
    const __m128i fr = _mm_set1_epi32(26345 | (16384 << 16)), fb = _mm_set1_epi32((uint16_t)-14942 | (16384 << 16));
    const __m128i fg = _mm_set1_epi32((uint16_t)-22554 | (18734 << 16)), half = _mm_set1_epi32(32768);
    const __m128i lo24 = _mm_set_epi32(0, 0xFFFFFF, 0, 0xFFFFFF), hi24 = _mm_set_epi32(0xFFFF, 0xFF000000, 0xFFFF, 0xFF000000);
    /* The last step's 8-byte stores reach 2 bytes past its 48: stay 2 short. */
    for (; jpeg_simd && x + 16 <= w && 3 * (x + 16) + 2 <= 3 * w; x += 16) {
        __m128i vy = _mm_loadu_si128((const __m128i *)(Y + x));
        __m128i vb = _mm_loadu_si128((const __m128i *)(Cb + x));
        __m128i vr = _mm_loadu_si128((const __m128i *)(Cr + x));
        __m128i rgb8[3];
        __m128i res[3][2];
        for (int h = 0; h < 2; h++) {
            __m128i y16 = h ? _mm_unpackhi_epi8(vy, z) : _mm_unpacklo_epi8(vy, z);
            __m128i b16 = _mm_sub_epi16(h ? _mm_unpackhi_epi8(vb, z) : _mm_unpacklo_epi8(vb, z), k128);
            __m128i r16 = _mm_sub_epi16(h ? _mm_unpackhi_epi8(vr, z) : _mm_unpacklo_epi8(vr, z), k128);
            __m128i r2l = _mm_unpacklo_epi16(r16, k2), r2h = _mm_unpackhi_epi16(r16, k2);
            __m128i b2l = _mm_unpacklo_epi16(b16, k2), b2h = _mm_unpackhi_epi16(b16, k2);
            __m128i brl = _mm_unpacklo_epi16(b16, r16), brh = _mm_unpackhi_epi16(b16, r16);
            __m128i tr = _mm_packs_epi32(_mm_srai_epi32(_mm_madd_epi16(r2l, fr), 16),
                                         _mm_srai_epi32(_mm_madd_epi16(r2h, fr), 16));
            __m128i tb = _mm_packs_epi32(_mm_srai_epi32(_mm_madd_epi16(b2l, fb), 16),
                                         _mm_srai_epi32(_mm_madd_epi16(b2h, fb), 16));
            __m128i tg = _mm_packs_epi32(_mm_srai_epi32(_mm_add_epi32(_mm_madd_epi16(brl, fg), half), 16),
                                         _mm_srai_epi32(_mm_add_epi32(_mm_madd_epi16(brh, fg), half), 16));
            res[0][h] = _mm_add_epi16(_mm_add_epi16(y16, r16), tr);
            res[1][h] = _mm_add_epi16(_mm_sub_epi16(y16, r16), tg);
            res[2][h] = _mm_add_epi16(_mm_add_epi16(y16, _mm_add_epi16(b16, b16)), tb);
        }
        for (int c = 0; c < 3; c++) rgb8[c] = _mm_packus_epi16(res[c][0], res[c][1]);
        /* Interleave: (R,G,B,0) words, then 6 bytes per 64-bit lane. */
        __m128i rg[2] = {_mm_unpacklo_epi8(rgb8[0], rgb8[1]), _mm_unpackhi_epi8(rgb8[0], rgb8[1])};
        __m128i b0[2] = {_mm_unpacklo_epi8(rgb8[2], z), _mm_unpackhi_epi8(rgb8[2], z)};
        uint8_t *d = o + 3 * x;
        for (int q = 0; q < 4; q++) {
            __m128i px = (q & 1) ? _mm_unpackhi_epi16(rg[q >> 1], b0[q >> 1]) : _mm_unpacklo_epi16(rg[q >> 1], b0[q >> 1]);
            px = _mm_or_si128(_mm_and_si128(px, lo24), _mm_and_si128(_mm_srli_epi64(px, 8), hi24));
            _mm_storel_epi64((__m128i *)(d + 12 * q), px);
            _mm_storel_epi64((__m128i *)(d + 12 * q + 6), _mm_srli_si128(px, 8));
        }
    }
#else
    (void)Y; (void)Cb; (void)Cr; (void)o; (void)w;
#endif
    return x;
}

/* Upsamples and converts output rows y0..y1-1 into the RGB image. */
static void emit_rows(jdec *d, fdd_image *out, int y0, int y1) {
    const int w = d->width;
    const int *crr = d->crr, *cbb = d->cbb;
    const int32_t *crg = d->crg, *cbg = d->cbg;
    for (int y = y0; y < y1; y++) {
        const uint8_t *r[MAXC];
        for (int i = 0; i < d->ncomp; i++) r[i] = comp_row(&d->comp[i], y, d->rowbuf + d->rowbuf_stride * (size_t)i);
        uint8_t *o = out->rgb + (size_t)y * (size_t)w * 3;
        switch (d->cs) {
        case CS_GRAY:
            for (int x = 0; x < w; x++) o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = r[0][x];
            break;
        case CS_RGB:
            for (int x = 0; x < w; x++) {
                o[3 * x] = r[0][x];
                o[3 * x + 1] = r[1][x];
                o[3 * x + 2] = r[2][x];
            }
            break;
        case CS_YCC:
            for (int x = ycc_simd(r[0], r[1], r[2], o, w); x < w; x++) {
                int Y = r[0][x], cb = r[1][x], cr = r[2][x];
                o[3 * x] = clamp255(Y + crr[cr]);
                o[3 * x + 1] = clamp255(Y + ((cbg[cb] + crg[cr]) >> 16));
                o[3 * x + 2] = clamp255(Y + cbb[cb]);
            }
            break;
        default:
            for (int x = 0; x < w; x++) {
                int cmyk[4];
                if (d->cs == CS_YCCK) {
                    int Y = r[0][x], cb = r[1][x], cr = r[2][x];
                    cmyk[0] = clamp255(255 - (Y + crr[cr]));
                    cmyk[1] = clamp255(255 - (Y + ((cbg[cb] + crg[cr]) >> 16)));
                    cmyk[2] = clamp255(255 - (Y + cbb[cb]));
                } else {
                    cmyk[0] = r[0][x];
                    cmyk[1] = r[1][x];
                    cmyk[2] = r[2][x];
                }
                /* Pillow unpacks "CMYK;I" (inverting), then Convert.c cmyk2rgb:
                 * nk = 255 - K' = K, R = nk - MULDIV255(C', nk) with C' = 255 - C. */
                int nk = r[3][x];
                for (int k = 0; k < 3; k++) {
                    int t = (255 - cmyk[k]) * nk + 128;
                    o[3 * x + k] = clamp255(nk - (((t >> 8) + t) >> 8));
                }
            }
            break;
        }
    }
}

/* ------------------------------------------------------------------ driver */

static int decode(jdec *d, fdd_image *out) {
    if (d->end - d->p < 2 || d->p[0] != 0xFF || d->p[1] != 0xD8) return JFAIL(d, FDD_E_FORMAT, "not a JPEG file");
    d->p += 2;
    d->saw_soi = true;
    int r = read_markers(d);
    if (r == 0) return 0;
    if (r == RM_EOF) return truncated(d);
    if (r == RM_EOI) return JFAIL(d, FDD_E_FORMAT, "JPEG file has no image (EOI before SOS)");
    if (!setup_frame(d, out)) return 0;
    color_setup(d);
    d->seen_sos = true;
    for (;;) {
        if (!start_scan(d) || !decode_scan(d, out)) return 0;
        r = read_markers(d);
        if (r == 0) return 0;
        if (!d->multi) {
            /* jpeg_finish_decompress: an error after the image still fails in
             * Pillow, running out of data there does not. */
            if (r == RM_SOS) return JFAIL(d, FDD_E_FORMAT, "unexpected second scan (EOI expected)");
            break;
        }
        if (r == RM_EOF) return truncated(d);
        if (r == RM_EOI) break;
    }
    if (d->multi) output_multi(d, out);
    return 1;
}

fdd_status fdd_decode_jpeg(const uint8_t *data, size_t len, const char *name, fdd_image *out,
                           fdd_error *err) {
    memset(out, 0, sizeof *out);
    jdec *d = fdd_calloc(1, sizeof *d);
    if (!d) return fdd_fail(err, FDD_E_NOMEM, "%s: cannot allocate JPEG decoder", name);
    fdd_error local;
    d->name = name;
    d->err = err ? err : &local;
    d->p = data;
    d->end = data + len;
    int ok = decode(d, out);
    fdd_status st = ok ? FDD_OK : d->err->status;
    if (st == FDD_OK && !ok) st = FDD_E_FORMAT;
    for (int i = 0; i < MAXC; i++) {
        fdd_free(d->comp[i].coef);
        fdd_free(d->comp[i].plane);
    }
    fdd_free(d->rowbuf);
    fdd_free(d);
    if (st != FDD_OK) fdd_image_free(out);
    return st;
}

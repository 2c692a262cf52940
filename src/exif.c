/* exif.c — the EXIF Orientation tag (0x0112) where Pillow 9.4's
 * Image.getexif() finds it, and the transposes ImageOps.exif_transpose
 * applies for it.
 *
 *   JPEG  the first APP1 segment starting "Exif\0" (before the scan);
 *   PNG   the last eXIf chunk before IDAT (Pillow's info dict keeps the last
 *         one read), or if there is none, the last one after IDAT, which
 *         getexif() reads by loading the image (no CRC checks there);
 *   WebP  the first EXIF chunk of an extended (VP8X) file whose EXIF flag is
 *         set;
 *   TIFF  IFD0 of the file itself.
 *
 * The IFD is read like ImageFileDirectory_v2.load: entries of unknown type,
 * count 0, or data past the end are skipped; a later duplicate replaces an
 * earlier one; a cut-off directory keeps the entries read so far.  The value
 * is the first element (Orientation is a one-value tag) and matches 2..8 when
 * it compares equal to the integer, as in Python: integer types, rationals
 * n/d and floats alike; BYTE, ASCII and UNDEFINED values never match.  Where
 * Pillow raises instead (no TIFF header after "Exif\0\0", a header too short
 * to hold the IFD offset, BigTIFF EXIF) the orientation is ignored: a broken
 * EXIF block never fails a decode here.  (A JPEG whose EXIF header already
 * makes Pillow's open fail is refused by the decoder, src/jpeg.c get_app.)
 * Not read: PNG text chunks ("Raw profile type exif", XMP tiff:Orientation). */
#include "image.h"

typedef struct exif_tiff {
    const uint8_t *d;
    size_t len;
    bool be;
} exif_tiff;

static uint32_t x16(const exif_tiff *t, size_t at) {
    return t->be ? fdd_be16(t->d + at) : fdd_le16(t->d + at);
}
static uint32_t x32(const exif_tiff *t, size_t at) {
    return t->be ? fdd_be32(t->d + at) : fdd_le32(t->d + at);
}

/* Value of the first element as Python compares it with 2..8: returns that
 * integer, or 0 when it is not one. */
static int orientation_value(const exif_tiff *t, uint32_t type, size_t at) {
    int64_t v;
    switch (type) {
    case 3: v = x16(t, at); break;                              /* SHORT */
    case 8: v = (int16_t)x16(t, at); break;                     /* SSHORT */
    case 4: case 13: v = x32(t, at); break;                     /* LONG, IFD */
    case 9: v = (int32_t)x32(t, at); break;                     /* SLONG */
    case 6: v = (int8_t)t->d[at]; break;                        /* SBYTE */
    case 16: /* LONG8: only the low word can be 1..8 */
        if ((t->be ? x32(t, at) : x32(t, at + 4)) != 0) return 0;
        v = t->be ? x32(t, at + 4) : x32(t, at);
        break;
    case 5: case 10: { /* (S)RATIONAL: IFDRational(n, d) == k when n == k*d */
        int64_t n = type == 5 ? (int64_t)x32(t, at) : (int32_t)x32(t, at);
        int64_t d = type == 5 ? (int64_t)x32(t, at + 4) : (int32_t)x32(t, at + 4);
        if (d == 0 || n % d != 0) return 0;
        v = n / d;
        break;
    }
    case 11: { /* FLOAT */
        uint32_t u = x32(t, at);
        float f;
        memcpy(&f, &u, 4);
        if (!(f >= 1 && f <= 8) || f != (float)(int)f) return 0;
        v = (int)f;
        break;
    }
    case 12: { /* DOUBLE */
        uint64_t u = t->be ? ((uint64_t)x32(t, at) << 32 | x32(t, at + 4))
                           : ((uint64_t)x32(t, at + 4) << 32 | x32(t, at));
        double f;
        memcpy(&f, &u, 8);
        if (!(f >= 1 && f <= 8) || f != (double)(int)f) return 0;
        v = (int)f;
        break;
    }
    default: return 0; /* BYTE (bytes), ASCII (str), UNDEFINED (bytes) */
    }
    return v >= 1 && v <= 8 ? (int)v : 0;
}

static unsigned exif_type_size(uint32_t type) {
    switch (type) {
    case 1: case 2: case 6: case 7: return 1;
    case 3: case 8: return 2;
    case 4: case 9: case 11: case 13: return 4;
    case 5: case 10: case 12: case 16: return 8;
    default: return 0;
    }
}

/* Orientation in the TIFF structure d[0..len) (a TIFF file, or EXIF data
 * after "Exif\0\0"): IFD0 at the header's offset, offsets relative to d. */
static int tiff_orientation(const uint8_t *d, size_t len) {
    if (len < 8) return 0;
    exif_tiff t = {d, len, d[0] == 'M'};
    /* ImageFileDirectory_v2 accepts these four non-BigTIFF prefixes. */
    if (memcmp(d, "MM\0*", 4) && memcmp(d, "II*\0", 4) && memcmp(d, "MM*\0", 4) &&
        memcmp(d, "II\0*", 4))
        return 0;
    size_t ifd = x32(&t, 4);
    if (ifd > len || len - ifd < 2) return 0;
    size_t n = x16(&t, ifd), pos = ifd + 2;
    int found = 0;
    for (size_t i = 0; i < n && len - pos >= 12; i++, pos += 12) {
        if (x16(&t, pos) != 0x0112) continue;
        uint32_t type = x16(&t, pos + 2), count = x32(&t, pos + 4);
        unsigned ts = exif_type_size(type);
        if (!ts || count == 0) continue; /* unknown type, or no data: skipped */
        uint64_t size = (uint64_t)ts * count;
        size_t at = pos + 8;
        if (size > 4) {
            size_t off = x32(&t, pos + 8);
            if (off > len || size > len - off) continue; /* "possibly corrupt": skipped */
            at = off;
        }
        found = orientation_value(&t, type, at); /* a later entry replaces it */
    }
    return found;
}

/* EXIF payload as Pillow's Exif.load takes it: "Exif\0\0" stripped. */
static int payload_orientation(const uint8_t *p, size_t n) {
    if (n >= 6 && memcmp(p, "Exif\0\0", 6) == 0) {
        p += 6;
        n -= 6;
    }
    return tiff_orientation(p, n);
}

static int jpeg_orientation(const uint8_t *d, size_t len) {
    size_t pos = 2;
    while (pos < len) {
        if (d[pos] != 0xFF) { /* Pillow's marker loop skips stray bytes */
            pos++;
            continue;
        }
        while (pos < len && d[pos] == 0xFF) pos++; /* fill bytes */
        if (pos >= len) return 0;
        uint8_t m = d[pos++];
        if (m == 0 || m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue; /* no length */
        if (m == 0xDA || m == 0xD9 || len - pos < 2) return 0;
        size_t seg = fdd_be16(d + pos);
        if (seg < 2 || seg > len - pos) return 0;
        if (m == 0xE1 && seg - 2 >= 5 && memcmp(d + pos + 2, "Exif\0", 5) == 0)
            return payload_orientation(d + pos + 2, seg - 2); /* the first one only */
        pos += seg;
    }
    return 0;
}

static bool png_cid(const uint8_t *c) {
    for (int i = 0; i < 4; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
              (c[i] >= '0' && c[i] <= '9') || c[i] == '_'))
            return false;
    return true;
}

static int png_orientation(const uint8_t *d, size_t len) {
    size_t pos = 8;
    int found = 0;
    bool seen_before_idat = false, after_idat = false;
    while (len - pos >= 12) {
        size_t n = fdd_be32(d + pos);
        const uint8_t *cid = d + pos + 4;
        if (!png_cid(cid) || memcmp(cid, "IEND", 4) == 0 || n > len - pos - 12) break;
        if (memcmp(cid, "IDAT", 4) == 0) {
            after_idat = true;
            if (seen_before_idat) break; /* getexif() then has it without loading */
        }
        if (memcmp(cid, "eXIf", 4) == 0) {
            found = payload_orientation(d + pos + 8, n);
            seen_before_idat = !after_idat;
        }
        pos += 12 + n;
    }
    return found;
}

static int webp_orientation(const uint8_t *d, size_t len) {
    /* libwebp's demuxer reports the chunk only with the VP8X EXIF flag set. */
    if (len < 21 || memcmp(d + 12, "VP8X", 4) != 0 || !(d[20] & 0x08)) return 0;
    size_t pos = 12;
    while (len - pos >= 8) {
        size_t n = fdd_le32(d + pos + 4);
        if (n > len - pos - 8) return 0;
        if (memcmp(d + pos, "EXIF", 4) == 0) return payload_orientation(d + pos + 8, n);
        pos += 8 + n + (n & 1);
        if (pos > len) return 0;
    }
    return 0;
}

int fdd_image_exif_orientation(const uint8_t *d, size_t len) {
    if (!d) return 0;
    if (len >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return png_orientation(d, len);
    if (len >= 3 && memcmp(d, "\xff\xd8\xff", 3) == 0) return jpeg_orientation(d, len);
    if (len >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0))
        return tiff_orientation(d, len);
    if (len >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
        return webp_orientation(d, len);
    return 0;
}

/* Image.transpose for the Orientation values: 2 FLIP_LEFT_RIGHT,
 * 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270, 7 TRANSVERSE,
 * 8 ROTATE_90 (Pillow's angles are counter-clockwise).  Pure pixel moves. */
fdd_status fdd_image_orient(fdd_image *img, int orientation, fdd_error *err) {
    if (orientation < 2 || orientation > 8 || !img->rgb) return FDD_OK;
    size_t w = (size_t)img->width, h = (size_t)img->height;
    bool swap = orientation >= 5;
    size_t ow = swap ? h : w, oh = swap ? w : h;
    uint8_t *o = fdd_malloc(w * h * 3); /* w * h * 3 was allocated already: no overflow */
    if (!o) return fdd_fail(err, FDD_E_NOMEM, "cannot allocate %zux%zu pixels to transpose", ow, oh);
    const uint8_t *s = img->rgb;
    for (size_t y = 0; y < oh; y++) {
        uint8_t *row = o + y * ow * 3;
        for (size_t x = 0; x < ow; x++) {
            size_t sx, sy;
            switch (orientation) {
            case 2: sx = w - 1 - x; sy = y; break;
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;
            case 4: sx = x; sy = h - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = h - 1 - x; break;
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;
            default: sx = w - 1 - y; sy = x; break;
            }
            memcpy(row + 3 * x, s + 3 * (sy * w + sx), 3);
        }
    }
    fdd_free(img->rgb);
    img->rgb = o;
    img->width = (int)ow;
    img->height = (int)oh;
    return FDD_OK;
}

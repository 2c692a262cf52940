/* image.c — format recognition by content, pixel allocation, file loading.
 * The decoders themselves live in one file per format (png.c, jpeg.c, ...). */
#include "image.h"

#include <stdlib.h>

/* Refuse before allocating: whole-file reads are capped here. */
#define FDD_IMAGE_MAX_FILE ((size_t)1 << 31)

fdd_status fdd_image_alloc(fdd_image *img, uint64_t width, uint64_t height, const char *name,
                           fdd_error *err) {
    memset(img, 0, sizeof *img);
    if (width == 0 || height == 0)
        return fdd_fail(err, FDD_E_FORMAT, "%s: image has zero width or height", name);
    uint64_t px;
    if (!fdd_mul64_ok(width, height, &px) || px > FDD_IMAGE_MAX_PIXELS || width > INT32_MAX ||
        height > INT32_MAX)
        return fdd_fail(err, FDD_E_NOMEM,
                        "%s: image of %llux%llu pixels exceeds the decompression-bomb limit "
                        "(%llu pixels)",
                        name, (unsigned long long)width, (unsigned long long)height,
                        (unsigned long long)FDD_IMAGE_MAX_PIXELS);
    img->rgb = fdd_malloc((size_t)px * 3);
    if (!img->rgb)
        return fdd_fail(err, FDD_E_NOMEM, "%s: cannot allocate %llux%llu pixels", name,
                        (unsigned long long)width, (unsigned long long)height);
    img->width = (int)width;
    img->height = (int)height;
    return FDD_OK;
}

void fdd_image_free(fdd_image *img) {
    if (!img) return;
    fdd_free(img->rgb);
    memset(img, 0, sizeof *img);
}

static bool starts(const uint8_t *d, size_t len, const char *magic, size_t n) {
    return len >= n && memcmp(d, magic, n) == 0;
}

fdd_status fdd_image_decode(const uint8_t *d, size_t len, const char *name, fdd_image *out,
                            fdd_error *err) {
    memset(out, 0, sizeof *out);
    if (!name) name = "<memory>";
    if (starts(d, len, "\x89PNG\r\n\x1a\n", 8)) return fdd_decode_png(d, len, name, out, err);
    if (starts(d, len, "\xff\xd8\xff", 3)) return fdd_decode_jpeg(d, len, name, out, err);
    if (starts(d, len, "BM", 2)) return fdd_decode_bmp(d, len, name, out, err);
    if (starts(d, len, "GIF8", 4)) return fdd_decode_gif(d, len, name, out, err);
    if (len >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6')
        return fdd_decode_pnm(d, len, name, out, err);
    if (starts(d, len, "II*\0", 4) || starts(d, len, "MM\0*", 4))
        return fdd_decode_tiff(d, len, name, out, err);
    if (len >= 12 && starts(d, len, "RIFF", 4) && memcmp(d + 8, "WEBP", 4) == 0)
        return fdd_decode_webp(d, len, name, out, err);
    return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unsupported format: not a recognised image file",
                    name);
}

fdd_status fdd_image_decode_ex(const uint8_t *d, size_t len, const char *name, unsigned flags,
                               fdd_image *out, fdd_error *err) {
    fdd_status s = fdd_image_decode(d, len, name, out, err);
    if (s || !(flags & FDD_DECODE_EXIF_TRANSPOSE)) return s;
    s = fdd_image_orient(out, fdd_image_exif_orientation(d, len), err);
    if (s) {
        fdd_image_free(out);
        return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory for the EXIF transpose",
                        name ? name : "<memory>");
    }
    return FDD_OK;
}

fdd_status fdd_image_load_ex(const char *path, unsigned flags, fdd_image *out, fdd_error *err) {
    uint8_t *data;
    size_t len;
    memset(out, 0, sizeof *out);
    fdd_status s = fdd_read_file(path, FDD_IMAGE_MAX_FILE, &data, &len, err);
    if (s) return s;
    s = fdd_image_decode_ex(data, len, path, flags, out, err);
    fdd_free(data);
    return s;
}

fdd_status fdd_image_load(const char *path, fdd_image *out, fdd_error *err) {
    return fdd_image_load_ex(path, 0, out, err);
}

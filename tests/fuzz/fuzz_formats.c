/* fuzz_formats.c — libFuzzer entry for the PNM (plain and binary), BMP, GIF
 * and TIFF decoders (src/formats.c, src/tiff.c) and the EXIF orientation
 * finder and transposes (src/exif.c), seeded with tests/data/formats.  The
 * first byte picks the decoder so that mutations stay past the magic check;
 * any other input (the JPEG, PNG and WebP EXIF seeds) goes through
 * fdd_image_decode_ex with FDD_DECODE_EXIF_TRANSPOSE.  Build and run:
 * make fuzz (or FUZZ_SECONDS=60 make fuzz).  Any input must give an image or
 * a one-line error naming the file; sanitizers catch the rest. */
#include "image.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    fdd_image im;
    fdd_error err;
    fdd_status s;
    switch (data[0]) {
    case 'P': s = fdd_decode_pnm(data, size, "f", &im, &err); break;
    case 'B': s = fdd_decode_bmp(data, size, "f", &im, &err); break;
    case 'G': s = fdd_decode_gif(data, size, "f", &im, &err); break;
    case 'I': case 'M': s = fdd_decode_tiff(data, size, "f", &im, &err); break;
    default:
        if (fdd_image_exif_orientation(data, size) > 8) __builtin_trap();
        s = fdd_image_decode_ex(data, size, "f", FDD_DECODE_EXIF_TRANSPOSE, &im, &err);
        break;
    }
    if (s == FDD_OK) {
        volatile uint8_t sink = 0; /* read the pixels back */
        for (size_t i = 0; i < (size_t)im.width * im.height * 3; i += 61) sink ^= im.rgb[i];
        fdd_image_free(&im);
    } else if (strncmp(err.msg, "f: ", 3) != 0 || strchr(err.msg, '\n')) {
        __builtin_trap();
    }
    return 0;
}

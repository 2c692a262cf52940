/* fuzz_jpeg.c — libFuzzer entry for the image decoders, seeded with JPEGs.
 * Build (from the repository root) with every library source except cli.c:
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc tests/fuzz/fuzz_jpeg.c SRCS -lm -pthread
 * and run ./a.out -jobs=1 -max_total_time=600 CORPUS_DIR tests/data/jpeg
 * Any input must give an image or a clean error; sanitizers catch the rest. */
#include "image.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fdd_image im;
    fdd_error err;
    /* Keep every input on the JPEG path: force the SOI prefix. */
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8) return 0;
    /* Skip frames over 4 Mpixels: legal up to the bomb limit, but decoding
     * them (zero-filled after a premature marker) only slows the search. */
    for (size_t i = 2; i + 9 <= size; i++)
        if (data[i] == 0xFF && data[i + 1] >= 0xC0 && data[i + 1] <= 0xC2) {
            uint64_t h = (uint64_t)(data[i + 5] << 8 | data[i + 6]), w = (uint64_t)(data[i + 7] << 8 | data[i + 8]);
            if (w * h > (4u << 20)) return 0;
            break;
        }
    fdd_status s = fdd_image_decode(data, size, "fuzz.jpg", &im, &err);
    if (s == FDD_OK) {
        /* Touch every output byte so that a short buffer would be noticed. */
        unsigned sum = 0;
        for (size_t i = 0; i < (size_t)im.width * (size_t)im.height * 3; i++) sum += im.rgb[i];
        if (sum == 0xFFFFFFFFu) fputc('\n', stderr);
        fdd_image_free(&im);
    } else if (strncmp(err.msg, "fuzz.jpg: ", 10) != 0) {
        fprintf(stderr, "bad error message: %s\n", err.msg);
        __builtin_trap();
    }
    return 0;
}

/* fuzz_png.c — libFuzzer harness for fdd_image_decode (PNG and whatever
 * else it recognises by content).  Build against library sources compiled
 * with the same sanitizers, e.g. from the top of the tree:
 *
 *   clang -std=c11 -O1 -g -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc -pthread \
 *         -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         tests/fuzz/fuzz_png.c src/png.c src/inflate.c src/image.c src/core.c \
 *         src/sha256.c src/jpeg.c <gemm objects> -lm -o build/fuzz_png
 *
 * (the gemm_avx2/avx512 files need their -m flags, as in the Makefile) and
 * run on one core, seeded with the committed corpus:
 *
 *   mkdir -p build/fuzz-png && build/fuzz_png -jobs=1 -max_len=65536 \
 *         -max_total_time=600 build/fuzz-png tests/data/png
 *
 * Any crash, sanitizer report, hang, or failure without a message is a bug. */
#include "fdd.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fdd_image im;
    fdd_error err;
    if (fdd_image_decode(data, size, "fuzz", &im, &err) == FDD_OK) {
        /* Touch every pixel so ASan checks the whole buffer. */
        unsigned sum = 0;
        size_t n = (size_t)im.width * (size_t)im.height * 3;
        for (size_t i = 0; i < n; i++) sum += im.rgb[i];
        if (im.width <= 0 || im.height <= 0 || (sum & 0x80000000u && n < 1000)) abort();
        fdd_image_free(&im);
    } else if (err.msg[0] == '\0') {
        abort(); /* every failure must explain itself */
    }
    return 0;
}

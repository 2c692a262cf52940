/* fuzz_webp.c — libFuzzer harness for the WebP decoder (RIFF container,
 * VP8L, and the VP8 path through fdd_vp8_decode).  `make fuzz` builds it
 * with the library sources and seeds it with tests/data/webp; by hand, from
 * the top of the tree (the gemm_avx2/avx512 files need their -m flags, as in
 * the Makefile):
 *
 *   clang -std=c11 -O1 -g -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc -pthread \
 *         -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         -mavx2 -mfma -mavx512f tests/fuzz/fuzz_webp.c (every src .c file but cli.c) -lm \
 *         -o build/fuzz/fuzz_webp
 *   mkdir -p build/fuzz/corpus-webp && build/fuzz/fuzz_webp -jobs=1 \
 *         -max_len=262144 -max_total_time=600 build/fuzz/corpus-webp tests/data/webp
 *
 * Inputs that do not start as WebP are turned into one (the RIFF header is
 * written over the first 12 bytes with a RIFF size that fits), so the time
 * goes into the container and bitstream parsers.  Any crash, sanitizer
 * report, hang, or failure without a message is a bug. */
#include "fdd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode(const uint8_t *d, size_t n) {
    fdd_image im;
    fdd_error err;
    if (fdd_image_decode(d, n, "fuzz", &im, &err) == FDD_OK) {
        /* Touch every pixel so ASan checks the whole buffer. */
        unsigned sum = 0;
        size_t px = (size_t)im.width * (size_t)im.height * 3;
        for (size_t i = 0; i < px; i++) sum += im.rgb[i];
        if (im.width <= 0 || im.height <= 0 || (sum & 0x80000000u && px < 1000)) abort();
        fdd_image_free(&im);
    } else if (err.msg[0] == '\0') {
        abort(); /* every failure must explain itself */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0) {
        decode(data, size);
        return 0;
    }
    if (size > (1u << 20)) return 0;
    uint8_t *t = malloc(size + 12); /* exact size: ASan sees over-reads */
    if (!t) return 0;
    memcpy(t, "RIFF", 4);
    uint32_t riff = (uint32_t)(size + 4);
    t[4] = (uint8_t)riff; t[5] = (uint8_t)(riff >> 8); t[6] = (uint8_t)(riff >> 16); t[7] = (uint8_t)(riff >> 24);
    memcpy(t + 8, "WEBP", 4);
    memcpy(t + 12, data, size);
    decode(t, size + 12);
    free(t);
    return 0;
}

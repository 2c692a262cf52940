/* fuzz_npy.c — libFuzzer harness for the .npy parser behind statistics and
 * feature files (fdd_npy_parse); .npz members go through the same parser.
 * Build and run: make fuzz. */
#include "stats.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fdd_npy_array a;
    fdd_error err;
    err.msg[0] = 0;
    if (fdd_npy_parse(data, size, "fuzz.npy", &a, &err) == FDD_OK) {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < a.count * fdd_npy_type_size(a.type); i++) sink ^= ((const uint8_t *)a.data)[i];
        fdd_npy_array_free(&a);
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}

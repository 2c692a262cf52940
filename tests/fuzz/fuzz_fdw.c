/* fuzz_fdw.c — libFuzzer harness for the .fdw loader (fdd_weights_open).
 * The loader maps a path, so each input goes through a file in /dev/shm.
 * Every byte of every tensor it accepts is read, and a bind is attempted.
 * Build and run: make fuzz (or FUZZ_SECONDS=60 make fuzz). */
#include "fdd.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/dev/shm/fuzz-fdw.%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    fdd_weights *w;
    fdd_error err;
    if (fdd_weights_open(path, &w, &err) == FDD_OK) {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < fdd_weights_count(w); i++) {
            const fdd_tensor_info *t = fdd_weights_at(w, i);
            for (uint64_t b = 0; b < t->nbytes; b++) sink ^= ((const uint8_t *)t->data)[b];
        }
        if (fdd_weights_count(w)) {
            const fdd_tensor_info *t = fdd_weights_at(w, 0);
            const float *p;
            fdd_tensor_spec sp = {t->name, t->ndim, {0}, &p};
            for (int d = 0; d < t->ndim; d++) sp.dims[d] = t->dims[d];
            fdd_weights_bind(w, &sp, 1, &err);
        }
        fdd_weights_close(w);
    } else if (!err.msg[0]) {
        abort();   /* every failure must say why */
    }
    return 0;
}

/* stats.h — private interface of the statistics files: the .npy/.npz reader
 * and writer (src/npy.c) that src/stats.c builds its files on.  Public API:
 * the statistics section of include/fdd.h. */
#ifndef FDD_STATS_H
#define FDD_STATS_H

#include "internal.h"

/* The element types fdd reads and writes.  Anything else in a file is
 * refused with a message naming the file and the key. */
typedef enum fdd_npy_type {
    FDD_NPY_F4 = 0,   /* '<f4' / '>f4' */
    FDD_NPY_F8,       /* '<f8' / '>f8' */
    FDD_NPY_I8,       /* '<i8' / '>i8' (fdd's exact sums) */
    FDD_NPY_U1        /* '|u1' (fdd's identity strings, as bytes) */
} fdd_npy_type;

#define FDD_NPY_MAX_DIMS 4

/* One array, converted to host byte order and C (row-major) order. */
typedef struct fdd_npy_array {
    fdd_npy_type type;
    int ndim;
    uint64_t shape[FDD_NPY_MAX_DIMS];
    size_t count;         /* product of shape (1 for a 0-d array) */
    void *data;           /* float / double / int64_t / uint8_t; fdd_malloc'ed */
} fdd_npy_array;

size_t fdd_npy_type_size(fdd_npy_type t);
void fdd_npy_array_free(fdd_npy_array *a);

/* Parses one whole .npy image (buf[0..len)).  name is "<file>" or
 * "<file>: <key>" and starts every error message. */
fdd_status fdd_npy_parse(const uint8_t *buf, size_t len, const char *name, fdd_npy_array *out,
                         fdd_error *err);

/* A .npz opened for reading: the whole file in memory plus its member list. */
typedef struct fdd_npz fdd_npz;
fdd_status fdd_npz_open(const char *path, fdd_npz **out, fdd_error *err);
void fdd_npz_close(fdd_npz *z);
const char *fdd_npz_path(const fdd_npz *z);
/* Whether the archive has member "<key>.npy". */
int fdd_npz_has(const fdd_npz *z, const char *key);
/* Decodes member "<key>.npy" (stored or deflate).  A missing key is an
 * FDD_E_FORMAT "<file>: no array '<key>'". */
fdd_status fdd_npz_get(const fdd_npz *z, const char *key, fdd_npy_array *out, fdd_error *err);

/* An array to write: data in host order, C order, of type `type`. */
typedef struct fdd_npy_out {
    const char *key;      /* member name without ".npy" */
    fdd_npy_type type;
    int ndim;
    uint64_t shape[FDD_NPY_MAX_DIMS];
    const void *data;
} fdd_npy_out;

/* Writes a .npz of stored (uncompressed) members, atomically. */
fdd_status fdd_npz_write(const char *path, const fdd_npy_out *arrays, size_t n, fdd_error *err);
/* Writes one .npy file atomically. */
fdd_status fdd_npy_write(const char *path, const fdd_npy_out *array, fdd_error *err);
/* Reads a whole .npy file. */
fdd_status fdd_npy_read(const char *path, fdd_npy_array *out, fdd_error *err);

#endif

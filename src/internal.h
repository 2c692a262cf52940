/* internal.h — private declarations shared by the files of src/.
 * Public API: include/fdd.h.  Nothing here is installed. */
#ifndef FDD_INTERNAL_H
#define FDD_INTERNAL_H

#include "fdd.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define FDD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define FDD_UNUSED __attribute__((unused))
#else
#define FDD_PRINTF(a, b)
#define FDD_UNUSED
#endif

/* ------------------------------------------------------------------ errors */

/* Sets err (if non-NULL) and returns code, so callers can write
 *   return fdd_fail(err, FDD_E_FORMAT, "%s: truncated header", path); */
fdd_status fdd_fail(fdd_error *err, fdd_status code, const char *fmt, ...) FDD_PRINTF(3, 4);

/* Internal invariant broken: a bug in fdd, not bad input.  Prints and aborts. */
#define FDD_ASSERT(c) \
    do { if (!(c)) fdd_assert_fail(#c, __FILE__, __LINE__); } while (0)
void fdd_assert_fail(const char *cond, const char *file, int line);

/* ------------------------------------------------------ checked arithmetic */

/* Return false on overflow; *r is then unspecified. */
static inline bool fdd_mul_ok(size_t a, size_t b, size_t *r) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *r = a * b;
    return true;
}
static inline bool fdd_add_ok(size_t a, size_t b, size_t *r) {
    if (b > SIZE_MAX - a) return false;
    *r = a + b;
    return true;
}
static inline bool fdd_mul64_ok(uint64_t a, uint64_t b, uint64_t *r) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    *r = a * b;
    return true;
}
static inline bool fdd_add64_ok(uint64_t a, uint64_t b, uint64_t *r) {
    if (b > UINT64_MAX - a) return false;
    *r = a + b;
    return true;
}

/* Little-endian loads and stores, independent of the host's byte order. */
static inline uint16_t fdd_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t fdd_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t fdd_le64(const uint8_t *p) {
    return (uint64_t)fdd_le32(p) | ((uint64_t)fdd_le32(p + 4) << 32);
}
static inline uint16_t fdd_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t fdd_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline void fdd_put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void fdd_put_le64(uint8_t *p, uint64_t v) {
    fdd_put_le32(p, (uint32_t)v);
    fdd_put_le32(p + 4, (uint32_t)(v >> 32));
}

/* -------------------------------------------------------------- allocation */

/* All heap allocations of the library go through these, so that tests can
 * make the N-th allocation fail (fdd_alloc_fail_at) and check for a clean
 * error.  Aligned blocks are 64-byte aligned; free them with fdd_free. */
void *fdd_malloc(size_t n);
void *fdd_calloc(size_t n, size_t size);
void *fdd_realloc(void *p, size_t n);
void *fdd_aligned_alloc(size_t n);
void fdd_aligned_free(void *p);
void fdd_free(void *p);
/* Test hook: the n-th allocation from now fails (n >= 1); 0 disables. */
void fdd_alloc_fail_at(long n);

/* Arena: one block, bump allocation in 64-byte aligned pieces.  A forward
 * pass sizes it once (a dry run with base == NULL counts the bytes), then
 * allocates nothing else. */
typedef struct fdd_arena {
    uint8_t *base;
    size_t size, used, peak;
    bool borrowed;   /* base is ctx's activation block, not ours to free */
} fdd_arena;

/* With a ctx, the block is the context's activation block, kept between
 * passes (grown, never shrunk): fresh pages cost a page fault each, which on
 * some VMs is tens of microseconds, and a pass touches hundreds of MB.  One
 * pass per ctx at a time.  Without a ctx the block is allocated here. */
fdd_status fdd_arena_init(fdd_arena *a, fdd_ctx *ctx, size_t size, fdd_error *err);
void fdd_arena_free(fdd_arena *a);
/* Returns NULL in counting mode (base == NULL) or when the arena is full
 * (a sizing bug: callers assert).  Bytes are not cleared. */
void *fdd_arena_alloc(fdd_arena *a, size_t n);
static inline size_t fdd_arena_mark(const fdd_arena *a) { return a->used; }
static inline void fdd_arena_reset(fdd_arena *a, size_t mark) { a->used = mark; }

/* ------------------------------------------------------------- thread pool */

/* Runs fn(arg, task, thread) for task = 0..ntasks-1 on the context's threads
 * (the caller is thread 0).  Tasks are taken in any order, so each task must
 * write outputs that no other task writes: results never depend on which
 * thread ran what. */
typedef void (*fdd_task_fn)(void *arg, size_t task, int thread);
void fdd_parallel(fdd_ctx *ctx, fdd_task_fn fn, void *arg, size_t ntasks);
/* A 64-byte aligned scratch block owned by ctx, at least `bytes` long, valid
 * until the next call (grown, never shrunk).  For one user at a time: the
 * GEMM driver's packing buffers.  NULL if the allocation fails. */
void *fdd_ctx_scratch(fdd_ctx *ctx, size_t bytes);

/* ------------------------------------------------------------------- files */

/* Reads a whole file (at most max_bytes) into a malloc'ed buffer. */
fdd_status fdd_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len,
                         fdd_error *err);

/* Atomic output: write to "<path>.tmp.<pid>", then rename over path. */
typedef struct fdd_outfile {
    void *fp;              /* FILE* */
    char *path, *tmp;
} fdd_outfile;
fdd_status fdd_outfile_open(fdd_outfile *o, const char *path, fdd_error *err);
fdd_status fdd_outfile_write(fdd_outfile *o, const void *data, size_t len, fdd_error *err);
fdd_status fdd_outfile_commit(fdd_outfile *o, fdd_error *err);   /* flush, fsync, rename */
void fdd_outfile_abort(fdd_outfile *o);                           /* remove the temp file */

/* Deterministic math over arrays (src/detmath.c): in place, the same bits
 * as the scalar fdd_expf / fdd_geluf on every ISA; AVX-512 vector loops when
 * isa says so. */
float fdd_geluf(float x);
void fdd_expf_n(fdd_isa isa, float *p, size_t n);
void fdd_gelu_n(fdd_isa isa, float *p, size_t n);

/* Kernel table lookup (src/gemm.c); the GEMM internals are in src/gemm.h. */
typedef struct fdd_gemm_kernel fdd_gemm_kernel;
const fdd_gemm_kernel *fdd_gemm_kernel_for(fdd_isa isa);

#endif

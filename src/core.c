/* core.c — the runtime every other file leans on: errors, allocation with a
 * failure-injection hook, the arena, CPU feature detection and ISA choice,
 * the thread pool, whole-file reads and atomic output files. */
#define _DEFAULT_SOURCE 1   /* madvise */
#include "gemm.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ errors */

const char *fdd_status_name(fdd_status s) {
    switch (s) {
    case FDD_OK: return "ok";
    case FDD_E_IO: return "i/o error";
    case FDD_E_FORMAT: return "malformed input";
    case FDD_E_UNSUPPORTED: return "unsupported";
    case FDD_E_NOMEM: return "out of memory";
    case FDD_E_ARG: return "bad argument";
    case FDD_E_MISMATCH: return "mismatch";
    case FDD_E_NUMERIC: return "numerical failure";
    }
    return "unknown status";
}

fdd_status fdd_fail(fdd_error *err, fdd_status code, const char *fmt, ...) {
    if (err) {
        err->status = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void fdd_assert_fail(const char *cond, const char *file, int line) {
    fprintf(stderr, "fdd: internal error: %s (%s:%d)\n", cond, file, line);
    abort();
}

/* -------------------------------------------------------------- allocation */

static _Atomic long alloc_countdown;   /* test hook only */

void fdd_alloc_fail_at(long n) { atomic_store(&alloc_countdown, n); }

static bool alloc_should_fail(void) {
    long c = atomic_load(&alloc_countdown);
    if (c <= 0) return false;
    c = atomic_fetch_sub(&alloc_countdown, 1);
    return c == 1;
}

void *fdd_malloc(size_t n) { return alloc_should_fail() ? NULL : malloc(n ? n : 1); }
void *fdd_calloc(size_t n, size_t size) {
    return alloc_should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1);
}
void *fdd_realloc(void *p, size_t n) { return alloc_should_fail() ? NULL : realloc(p, n ? n : 1); }
void fdd_free(void *p) { free(p); }

void *fdd_aligned_alloc(size_t n) {
    if (alloc_should_fail()) return NULL;
    void *p = NULL;
    /* 64 bytes of tail padding so vector loads may run past the end. */
    size_t m;
    if (!fdd_add_ok(n, 64, &m)) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    /* Large blocks on 2 MiB pages where the kernel offers them on request:
     * the first touch of a 4 KiB page costs 15-40 µs on the VMs measured
     * here, 0.12 s for the 32 MiB of a d = 2048 matrix.  Placement never
     * changes a result. */
    if (m >= ((size_t)4 << 20)) {
        size_t big = (m + ((size_t)2 << 20) - 1) & ~(((size_t)2 << 20) - 1);
        if (posix_memalign(&p, (size_t)2 << 20, big) != 0) return NULL;
        (void)madvise(p, big, MADV_HUGEPAGE);
        return p;
    }
#endif
    if (posix_memalign(&p, 64, m) != 0) return NULL;
    return p;
}
void fdd_aligned_free(void *p) { free(p); }

/* ------------------------------------------------------------------- arena */

static void *ctx_act(fdd_ctx *c, size_t bytes);

fdd_status fdd_arena_init(fdd_arena *a, fdd_ctx *ctx, size_t size, fdd_error *err) {
    memset(a, 0, sizeof *a);
    a->borrowed = ctx != NULL;
    a->base = ctx ? ctx_act(ctx, size) : fdd_aligned_alloc(size);
    if (!a->base) return fdd_fail(err, FDD_E_NOMEM, "cannot allocate %zu bytes of activations", size);
    a->size = size;
    return FDD_OK;
}

void fdd_arena_free(fdd_arena *a) {
    if (!a->borrowed) fdd_aligned_free(a->base);
    memset(a, 0, sizeof *a);
}

void *fdd_arena_alloc(fdd_arena *a, size_t n) {
    size_t rounded, end;
    if (!fdd_add_ok(n, 63, &rounded)) return NULL;
    rounded &= ~(size_t)63;
    if (!fdd_add_ok(a->used, rounded, &end)) return NULL;
    if (a->base == NULL) {               /* counting pass */
        a->used = end;
        if (end > a->peak) a->peak = end;
        return NULL;
    }
    if (end > a->size) return NULL;
    void *p = a->base + a->used;
    a->used = end;
    if (end > a->peak) a->peak = end;
    return p;
}

/* ------------------------------------------------------------------- ISAs */

const char *fdd_isa_name(fdd_isa isa) {
    switch (isa) {
    case FDD_ISA_AUTO: return "auto";
    case FDD_ISA_SCALAR: return "scalar";
    case FDD_ISA_AVX2: return "avx2";
    case FDD_ISA_AVX512: return "avx512";
    case FDD_ISA_NEON: return "neon";
    default: return "?";
    }
}

fdd_isa fdd_isa_parse(const char *name) {
    for (int i = FDD_ISA_AUTO; i < FDD_ISA_COUNT; i++)
        if (strcmp(name, fdd_isa_name((fdd_isa)i)) == 0) return (fdd_isa)i;
    return FDD_ISA_COUNT;
}

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
static bool cpu_has(fdd_isa isa) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return false;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return false;            /* XMM and YMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    bool avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    if (isa == FDD_ISA_AVX2) return avx2 && fma;
    if (isa == FDD_ISA_AVX512) return avx512f && (xcr0 & 0xe6) == 0xe6; /* opmask, ZMM */
    return false;
}
#else
static bool cpu_has(fdd_isa isa) {
#if defined(__aarch64__)
    return isa == FDD_ISA_NEON;    /* Advanced SIMD is mandatory on AArch64 */
#else
    (void)isa;
    return false;
#endif
}
#endif

int fdd_isa_available(fdd_isa isa) {
    if (isa == FDD_ISA_SCALAR) return 1;
    if (isa <= FDD_ISA_AUTO || isa >= FDD_ISA_COUNT) return 0;
    const fdd_gemm_kernel *k = fdd_gemm_kernel_for(isa);
    return k && k->fn && cpu_has(isa);
}

fdd_isa fdd_isa_best(void) {
    static const fdd_isa order[] = {FDD_ISA_AVX512, FDD_ISA_AVX2, FDD_ISA_NEON};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (fdd_isa_available(order[i])) return order[i];
    return FDD_ISA_SCALAR;
}

/* ------------------------------------------------------------- thread pool */

struct fdd_ctx {
    int nthreads;
    fdd_isa isa;
    pthread_t *workers;            /* nthreads - 1 of them */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    unsigned long generation;      /* bumped for every job */
    int busy;                      /* workers still inside the current job */
    bool quit;
    /* the current job */
    fdd_task_fn fn;
    void *arg;
    size_t ntasks;
    _Atomic size_t next;
    /* scratch for the GEMM's packing buffers, kept between calls so a
     * forward pass does not fault in fresh pages for every layer */
    void *scratch;
    size_t scratch_size;
    void *act;          /* the forward pass's arena block, kept likewise */
    size_t act_size;
};

struct worker_arg { fdd_ctx *ctx; int id; };

static void run_tasks(fdd_ctx *c, int id) {
    for (;;) {
        size_t t = atomic_fetch_add(&c->next, 1);
        if (t >= c->ntasks) break;
        c->fn(c->arg, t, id);
    }
}

static void *worker_main(void *p) {
    struct worker_arg wa = *(struct worker_arg *)p;
    fdd_free(p);
    fdd_ctx *c = wa.ctx;
    unsigned long seen = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->quit && c->generation == seen) pthread_cond_wait(&c->wake, &c->mu);
        if (c->quit) break;
        seen = c->generation;
        pthread_mutex_unlock(&c->mu);
        run_tasks(c, wa.id);
        pthread_mutex_lock(&c->mu);
        if (--c->busy == 0) pthread_cond_signal(&c->done);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

void fdd_parallel(fdd_ctx *c, fdd_task_fn fn, void *arg, size_t ntasks) {
    if (ntasks == 0) return;
    if (c == NULL || c->nthreads <= 1 || ntasks == 1) {
        for (size_t t = 0; t < ntasks; t++) fn(arg, t, 0);
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->fn = fn;
    c->arg = arg;
    c->ntasks = ntasks;
    atomic_store(&c->next, 0);
    c->busy = c->nthreads - 1;
    c->generation++;
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->mu);
    run_tasks(c, 0);
    pthread_mutex_lock(&c->mu);
    while (c->busy > 0) pthread_cond_wait(&c->done, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

static int env_threads(void) {
    const char *s = getenv("FDD_THREADS");
    if (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end == 0 && v > 0 && v <= 1024) return (int)v;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n > 1024 ? 1024 : n) : 1;
}

fdd_status fdd_ctx_create(fdd_ctx **out, int nthreads, fdd_isa isa, fdd_error *err) {
    *out = NULL;
    if (isa == FDD_ISA_AUTO) {
        const char *s = getenv("FDD_ISA");
        if (s && *s && strcmp(s, "auto") != 0) {
            isa = fdd_isa_parse(s);
            if (isa == FDD_ISA_COUNT)
                return fdd_fail(err, FDD_E_ARG, "FDD_ISA=%s: unknown ISA (scalar, avx2, avx512, neon, auto)", s);
        }
        if (isa == FDD_ISA_AUTO) isa = fdd_isa_best();
    }
    if (isa < 0 || isa >= FDD_ISA_COUNT)
        return fdd_fail(err, FDD_E_ARG, "unknown ISA %d", (int)isa);
    if (!fdd_isa_available(isa))
        return fdd_fail(err, FDD_E_UNSUPPORTED, "ISA %s is not available on this CPU or in this build",
                        fdd_isa_name(isa));
    if (nthreads <= 0) nthreads = env_threads();
    if (nthreads > 1024) return fdd_fail(err, FDD_E_ARG, "too many threads: %d", nthreads);

    fdd_ctx *c = fdd_calloc(1, sizeof *c);
    if (!c) return fdd_fail(err, FDD_E_NOMEM, "cannot allocate the runtime context");
    c->nthreads = nthreads;
    c->isa = isa;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->wake, NULL);
    pthread_cond_init(&c->done, NULL);
    if (nthreads > 1) {
        c->workers = fdd_calloc((size_t)nthreads - 1, sizeof(pthread_t));
        if (!c->workers) { fdd_ctx_free(c); return fdd_fail(err, FDD_E_NOMEM, "cannot allocate threads"); }
        for (int i = 1; i < nthreads; i++) {
            struct worker_arg *wa = fdd_malloc(sizeof *wa);
            if (wa) *wa = (struct worker_arg){c, i};
            if (!wa || pthread_create(&c->workers[i - 1], NULL, worker_main, wa) != 0) {
                fdd_free(wa);
                c->nthreads = i;   /* only the started ones are joined */
                fdd_ctx_free(c);
                return fdd_fail(err, FDD_E_NOMEM, "cannot start thread %d of %d", i + 1, nthreads);
            }
        }
    }
    *out = c;
    return FDD_OK;
}

static void *ctx_block(void **blk, size_t *have, size_t bytes) {
    if (bytes <= *have) return *blk;
    void *p = fdd_aligned_alloc(bytes);
    if (!p) return NULL;
    fdd_aligned_free(*blk);
    *blk = p;
    *have = bytes;
    return p;
}

static void *ctx_act(fdd_ctx *c, size_t bytes) { return ctx_block(&c->act, &c->act_size, bytes); }

void *fdd_ctx_scratch(fdd_ctx *c, size_t bytes) {
    return ctx_block(&c->scratch, &c->scratch_size, bytes);
}

void fdd_ctx_free(fdd_ctx *c) {
    if (!c) return;
    fdd_aligned_free(c->scratch);
    fdd_aligned_free(c->act);
    if (c->workers) {
        pthread_mutex_lock(&c->mu);
        c->quit = true;
        pthread_cond_broadcast(&c->wake);
        pthread_mutex_unlock(&c->mu);
        for (int i = 1; i < c->nthreads; i++) pthread_join(c->workers[i - 1], NULL);
        fdd_free(c->workers);
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->done);
    fdd_free(c);
}

int fdd_ctx_threads(const fdd_ctx *c) { return c ? c->nthreads : 1; }
fdd_isa fdd_ctx_isa(const fdd_ctx *c) { return c ? c->isa : FDD_ISA_SCALAR; }

/* ------------------------------------------------------------------- files */

fdd_status fdd_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len,
                         fdd_error *err) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fdd_fail(err, FDD_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return fdd_fail(err, FDD_E_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return fdd_fail(err, FDD_E_NOMEM, "%s: file too large (%lld bytes, limit %zu)", path,
                        (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = fdd_malloc(n + 1);
    if (!buf) {
        fclose(f);
        return fdd_fail(err, FDD_E_NOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != n) {
        fdd_free(buf);
        return fdd_fail(err, FDD_E_IO, "%s: read error", path);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return FDD_OK;
}

fdd_status fdd_outfile_open(fdd_outfile *o, const char *path, fdd_error *err) {
    memset(o, 0, sizeof *o);
    size_t n = strlen(path);
    o->path = fdd_malloc(n + 1);
    o->tmp = fdd_malloc(n + 32);
    if (!o->path || !o->tmp) {
        fdd_outfile_abort(o);
        return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path);
    }
    memcpy(o->path, path, n + 1);
    snprintf(o->tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
    o->fp = fopen(o->tmp, "wb");
    if (!o->fp) {
        fdd_status s = fdd_fail(err, FDD_E_IO, "%s: cannot create: %s", o->tmp, strerror(errno));
        fdd_outfile_abort(o);
        return s;
    }
    return FDD_OK;
}

fdd_status fdd_outfile_write(fdd_outfile *o, const void *data, size_t len, fdd_error *err) {
    if (len && fwrite(data, 1, len, (FILE *)o->fp) != len)
        return fdd_fail(err, FDD_E_IO, "%s: write error: %s", o->path, strerror(errno));
    return FDD_OK;
}

fdd_status fdd_outfile_commit(fdd_outfile *o, fdd_error *err) {
    FILE *f = o->fp;
    o->fp = NULL;
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(o->tmp, o->path) != 0) {
        fdd_status s = fdd_fail(err, FDD_E_IO, "%s: cannot write: %s", o->path, strerror(errno));
        fdd_outfile_abort(o);
        return s;
    }
    fdd_free(o->path);
    fdd_free(o->tmp);
    memset(o, 0, sizeof *o);
    return FDD_OK;
}

void fdd_outfile_abort(fdd_outfile *o) {
    if (o->fp) fclose((FILE *)o->fp);
    if (o->tmp) remove(o->tmp);
    fdd_free(o->path);
    fdd_free(o->tmp);
    memset(o, 0, sizeof *o);
}

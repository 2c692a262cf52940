/* stats.c — exact, mergeable feature statistics (docs/reproducibility.md,
 * "Statistics").
 *
 * Every float32 feature x is quantised once to the integer x_q = round(x·2^40)
 * (exact for |x| >= 2^-17, absolute error <= 2^-41 below; |x| < 2^22 so
 * |x_q| < 2^62).  The accumulator keeps the count N, Σx_q per dimension in
 * 128-bit integers and Σx_q·y_q for the upper triangle in 192-bit integers.
 * Integer addition is associative, so any order of images, any split into
 * shards and any thread count give the same bits.  mu and sigma (unbiased,
 * N-1, as numpy.cov) are computed from the integers with one rounding each:
 *   mu_i      = S_i / (N·2^40)
 *   sigma_ij  = (N·S_ij - S_i·S_j) / (N·(N-1)·2^80).
 * N is capped at 2^60: |S_i| < 2^122 and |S_ij| < 2^184 never overflow. */
#include "stats.h"

#include <math.h>
#include <stdio.h>

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

#define FRAC_BITS 40
#define MAX_ABS_FEATURE 4194304.0            /* 2^22 */
#define MAX_COUNT ((uint64_t)1 << 60)
#define MAX_DIM 16384                       /* sumsq: 3.2 GB at the cap */
#define FORMAT_VERSION 1
#define BATCH 32                            /* images quantised per pass */
#define ID_MAX 256

struct fdd_stats {
    size_t dim;
    uint64_t count;
    int exact;               /* sums present (else mu/sigma only, from a foreign file) */
    uint64_t *sum;           /* dim x 2 limbs: 128-bit two's complement, low limb first */
    uint64_t *sumsq;         /* tri(dim) x 3 limbs: 192-bit, row-major upper triangle */
    double *mu, *sigma;      /* foreign files only */
    char model[ID_MAX], profile[ID_MAX];
};

static size_t tri_size(size_t d) { return d * (d + 1) / 2; }
static size_t tri_row(size_t i, size_t d) { return i * d - i * (i - 1) / 2; }

size_t fdd_stats_dim(const fdd_stats *s) { return s->dim; }
uint64_t fdd_stats_count(const fdd_stats *s) { return s->count; }
int fdd_stats_is_exact(const fdd_stats *s) { return s->exact; }
const char *fdd_stats_model(const fdd_stats *s) { return s->model; }
const char *fdd_stats_profile(const fdd_stats *s) { return s->profile; }

fdd_status fdd_stats_set_identity(fdd_stats *s, const char *model, const char *profile,
                                  fdd_error *err) {
    if ((model && strlen(model) >= ID_MAX) || (profile && strlen(profile) >= ID_MAX))
        return fdd_fail(err, FDD_E_ARG, "model or profile name longer than %d bytes", ID_MAX - 1);
    snprintf(s->model, sizeof s->model, "%s", model ? model : "");
    snprintf(s->profile, sizeof s->profile, "%s", profile ? profile : "");
    return FDD_OK;
}

void fdd_stats_free(fdd_stats *s) {
    if (!s) return;
    fdd_free(s->sum);
    fdd_free(s->sumsq);
    fdd_free(s->mu);
    fdd_free(s->sigma);
    fdd_free(s);
}

static fdd_status stats_alloc(fdd_stats **out, size_t dim, int exact, fdd_error *err) {
    *out = NULL;
    if (dim == 0 || dim > MAX_DIM)
        return fdd_fail(err, FDD_E_ARG, "feature dimension %zu out of range (1..%d)", dim, MAX_DIM);
    fdd_stats *s = fdd_calloc(1, sizeof *s);
    if (!s) return fdd_fail(err, FDD_E_NOMEM, "cannot allocate statistics");
    s->dim = dim;
    s->exact = exact;
    if (exact) {
        s->sum = fdd_calloc(dim * 2, sizeof(uint64_t));
        s->sumsq = fdd_calloc(tri_size(dim) * 3, sizeof(uint64_t));
        if (!s->sum || !s->sumsq) {
            fdd_stats_free(s);
            return fdd_fail(err, FDD_E_NOMEM, "cannot allocate statistics for dimension %zu", dim);
        }
    } else {
        s->mu = fdd_malloc(dim * sizeof(double));
        s->sigma = fdd_malloc(dim * dim * sizeof(double));
        if (!s->mu || !s->sigma) {
            fdd_stats_free(s);
            return fdd_fail(err, FDD_E_NOMEM, "cannot allocate statistics for dimension %zu", dim);
        }
    }
    *out = s;
    return FDD_OK;
}

fdd_status fdd_stats_create(fdd_stats **out, size_t dim, fdd_error *err) {
    return stats_alloc(out, dim, 1, err);
}

/* ------------------------------------------------------------ accumulate */

static inline i128 get128(const uint64_t *p) { return (i128)(((u128)p[1] << 64) | p[0]); }
static inline void put128(uint64_t *p, i128 v) {
    p[0] = (uint64_t)(u128)v;
    p[1] = (uint64_t)((u128)v >> 64);
}

typedef struct accum_job {
    fdd_stats *s;
    const int64_t *xq;       /* dim x BATCH, quantised, zero padded */
} accum_job;

/* Adds row i of the batch's Σ x_i·x_j (j >= i) into the triangle.  Groups of
 * 8 products are summed in 128 bits: each |product| < 2^124, so 8 of them
 * stay below 2^127; the group sum then goes into the 192-bit total. */
static void accum_row(fdd_stats *s, const int64_t *xq, size_t i) {
    size_t d = s->dim;
    const int64_t *xi = xq + i * BATCH;
    uint64_t *dst = s->sumsq + tri_row(i, d) * 3;
    for (size_t j = i; j < d; j++, dst += 3) {
        const int64_t *xj = xq + j * BATCH;
        u128 lo = 0;
        uint64_t hi = 0;
        for (int g = 0; g < BATCH; g += 8) {
            i128 t = 0;
            for (int b = g; b < g + 8; b++) t += (i128)xi[b] * xj[b];
            u128 old = lo;
            lo += (u128)t;
            hi += (uint64_t)(t < 0 ? -1 : 0) + (uint64_t)(lo < old);
        }
        u128 cur = ((u128)dst[1] << 64) | dst[0];
        u128 nlo = cur + lo;
        dst[2] += hi + (uint64_t)(nlo < cur);
        dst[0] = (uint64_t)nlo;
        dst[1] = (uint64_t)(nlo >> 64);
    }
}

/* Task t covers rows t and d-1-t, so every task does about the same work. */
static void accum_task(void *arg, size_t t, int thread) {
    (void)thread;
    accum_job *j = arg;
    size_t d = j->s->dim;
    accum_row(j->s, j->xq, t);
    if (d - 1 - t != t) accum_row(j->s, j->xq, d - 1 - t);
}

fdd_status fdd_stats_add(fdd_stats *s, fdd_ctx *ctx, const float *feats, size_t n, fdd_error *err) {
    if (!s->exact)
        return fdd_fail(err, FDD_E_ARG, "statistics loaded without exact sums cannot be extended");
    size_t d = s->dim;
    if (n > MAX_COUNT - s->count)
        return fdd_fail(err, FDD_E_NOMEM, "more than 2^60 images in one statistics set");
    /* Check everything first: a refused batch leaves the statistics unchanged. */
    for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < d; c++) {
            float x = feats[r * d + c];
            if (!isfinite(x))
                return fdd_fail(err, FDD_E_NUMERIC, "features: image %zu, dimension %zu: non-finite value", r, c);
            if (fabs((double)x) >= MAX_ABS_FEATURE)
                return fdd_fail(err, FDD_E_NUMERIC,
                                "features: image %zu, dimension %zu: |%g| >= 2^22 is outside the exact range", r,
                                c, (double)x);
        }
    int64_t *xq = fdd_malloc(d * BATCH * sizeof(int64_t));
    if (!xq) return fdd_fail(err, FDD_E_NOMEM, "cannot allocate the quantisation buffer");
    for (size_t r0 = 0; r0 < n; r0 += BATCH) {
        size_t nb = n - r0 < BATCH ? n - r0 : BATCH;
        for (size_t c = 0; c < d; c++) {
            i128 acc = 0;
            for (size_t b = 0; b < BATCH; b++) {
                /* x·2^40 is exact in double; llrint rounds half to even. */
                int64_t q = b < nb ? (int64_t)llrint((double)feats[(r0 + b) * d + c] * 0x1p40) : 0;
                xq[c * BATCH + b] = q;
                acc += q;
            }
            put128(s->sum + 2 * c, get128(s->sum + 2 * c) + acc);
        }
        accum_job job = {s, xq};
        fdd_parallel(ctx, accum_task, &job, (d + 1) / 2);
    }
    fdd_free(xq);
    s->count += n;
    return FDD_OK;
}

fdd_status fdd_stats_merge(fdd_stats *into, const fdd_stats *other, fdd_error *err) {
    if (!into->exact || !other->exact)
        return fdd_fail(err, FDD_E_ARG, "only statistics with exact sums (written by fdd) can be merged");
    if (into->dim != other->dim)
        return fdd_fail(err, FDD_E_MISMATCH, "cannot merge statistics of dimension %zu and %zu", into->dim,
                        other->dim);
    if (strcmp(into->model, other->model) != 0 || strcmp(into->profile, other->profile) != 0)
        return fdd_fail(err, FDD_E_MISMATCH, "cannot merge statistics of model/profile '%s'/'%s' and '%s'/'%s'",
                        into->model, into->profile, other->model, other->profile);
    if (other->count > MAX_COUNT - into->count)
        return fdd_fail(err, FDD_E_NOMEM, "more than 2^60 images in one statistics set");
    for (size_t i = 0; i < into->dim; i++)
        put128(into->sum + 2 * i, get128(into->sum + 2 * i) + get128(other->sum + 2 * i));
    size_t t = tri_size(into->dim);
    for (size_t k = 0; k < t; k++) {
        uint64_t *a = into->sumsq + 3 * k;
        const uint64_t *b = other->sumsq + 3 * k;
        u128 lo = ((u128)a[1] << 64) | a[0], blo = ((u128)b[1] << 64) | b[0];
        u128 n = lo + blo;
        a[2] = a[2] + b[2] + (uint64_t)(n < lo);
        a[0] = (uint64_t)n;
        a[1] = (uint64_t)(n >> 64);
    }
    into->count += other->count;
    return FDD_OK;
}

/* --------------------------------------------------------------- moments */

/* 256-bit magnitudes, little-endian limbs. */
typedef struct u256 { uint64_t w[4]; } u256;

static int u256_bitlen(const u256 *a) {
    for (int k = 3; k >= 0; k--)
        if (a->w[k]) return 64 * k + 64 - __builtin_clzll(a->w[k]);
    return 0;
}

static void u256_shl(u256 *a, int sh) {
    int limbs = sh / 64, bits = sh % 64;
    for (int k = 3; k >= 0; k--) {
        uint64_t v = k - limbs >= 0 ? a->w[k - limbs] << bits : 0;
        if (bits && k - limbs - 1 >= 0) v |= a->w[k - limbs - 1] >> (64 - bits);
        a->w[k] = v;
    }
}

/* a /= d; returns whether the remainder was non-zero. */
static int u256_div(u256 *a, uint64_t d) {
    u128 r = 0;
    for (int k = 3; k >= 0; k--) {
        u128 cur = (r << 64) | a->w[k];
        a->w[k] = (uint64_t)(cur / d);
        r = cur % d;
    }
    return r != 0;
}

/* The double nearest (ties to even) to ±mag / (d1·d2) · 2^e2.  mag < 2^255;
 * results are far from the subnormal range for every input fdd accepts. */
static double ratio_to_double(int neg, u256 mag, uint64_t d1, uint64_t d2, int e2) {
    int len = u256_bitlen(&mag);
    if (len == 0) return 0.0;
    int sh = 255 - len;                /* top bit to 254: quotient keeps >= 126 bits */
    u256_shl(&mag, sh);
    int sticky = 0;
    if (d2 <= UINT64_MAX / d1) {
        sticky |= u256_div(&mag, d1 * d2);
    } else {
        sticky |= u256_div(&mag, d1);
        sticky |= u256_div(&mag, d2);
    }
    int ql = u256_bitlen(&mag);        /* >= 126 */
    /* Top 64 bits of the quotient, the rest folded into sticky. */
    int drop = ql - 64;
    u256 top = mag;
    uint64_t m64;
    {
        int limbs = drop / 64, bits = drop % 64;
        m64 = top.w[limbs] >> bits;
        if (bits && limbs + 1 < 4) m64 |= top.w[limbs + 1] << (64 - bits);
        for (int k = 0; k < limbs; k++) sticky |= top.w[k] != 0;
        if (bits) sticky |= (top.w[limbs] & (((uint64_t)1 << bits) - 1)) != 0;
    }
    uint64_t m = m64 >> 11, rest = m64 & 0x7FF;
    if (rest > 0x400 || (rest == 0x400 && (sticky || (m & 1)))) m++;
    double v = ldexp((double)m, drop + 11 - sh + e2);
    return neg ? -v : v;
}

static void set_mag_from_i128(i128 v, int *neg, u256 *mag) {
    *neg = v < 0;
    u128 m = v < 0 ? (u128)0 - (u128)v : (u128)v;
    mag->w[0] = (uint64_t)m;
    mag->w[1] = (uint64_t)(m >> 64);
    mag->w[2] = mag->w[3] = 0;
}

/* Signed 256-bit two's complement helpers for N·S_ij - S_i·S_j. */
typedef struct s256 { uint64_t w[4]; } s256;

static s256 mul_u64_s192(uint64_t n, const uint64_t *s) {
    s256 r;
    int neg = (int64_t)s[2] < 0;
    uint64_t m[3] = {s[0], s[1], s[2]};
    if (neg) {            /* magnitude of a 192-bit negative */
        u128 c = 1;
        for (int k = 0; k < 3; k++) {
            c += (u128)(uint64_t)~m[k];
            m[k] = (uint64_t)c;
            c >>= 64;
        }
    }
    u128 carry = 0;
    for (int k = 0; k < 3; k++) {
        u128 p = (u128)m[k] * n + carry;
        r.w[k] = (uint64_t)p;
        carry = p >> 64;
    }
    r.w[3] = (uint64_t)carry;
    if (neg) {
        u128 c = 1;
        for (int k = 0; k < 4; k++) {
            c += (u128)(uint64_t)~r.w[k];
            r.w[k] = (uint64_t)c;
            c >>= 64;
        }
    }
    return r;
}

static s256 mul_s128(i128 a, i128 b) {
    int neg = (a < 0) != (b < 0);
    u128 ma = a < 0 ? (u128)0 - (u128)a : (u128)a, mb = b < 0 ? (u128)0 - (u128)b : (u128)b;
    uint64_t a0 = (uint64_t)ma, a1 = (uint64_t)(ma >> 64), b0 = (uint64_t)mb, b1 = (uint64_t)(mb >> 64);
    u128 p00 = (u128)a0 * b0, p01 = (u128)a0 * b1, p10 = (u128)a1 * b0, p11 = (u128)a1 * b1;
    s256 r;
    r.w[0] = (uint64_t)p00;
    u128 mid = (p00 >> 64) + (uint64_t)p01 + (uint64_t)p10;
    r.w[1] = (uint64_t)mid;
    u128 hi = (mid >> 64) + (p01 >> 64) + (p10 >> 64) + (uint64_t)p11;
    r.w[2] = (uint64_t)hi;
    r.w[3] = (uint64_t)((hi >> 64) + (p11 >> 64));
    if (neg) {
        u128 c = 1;
        for (int k = 0; k < 4; k++) {
            c += (u128)(uint64_t)~r.w[k];
            r.w[k] = (uint64_t)c;
            c >>= 64;
        }
    }
    return r;
}

typedef struct moments_job {
    const fdd_stats *s;
    double *sigma;
} moments_job;

static void moments_row(const fdd_stats *s, double *sigma, size_t i) {
    size_t d = s->dim;
    uint64_t n = s->count;
    i128 si = get128(s->sum + 2 * i);
    const uint64_t *row = s->sumsq + tri_row(i, d) * 3;
    for (size_t j = i; j < d; j++, row += 3) {
        s256 a = mul_u64_s192(n, row), b = mul_s128(si, get128(s->sum + 2 * j));
        /* a - b, both below 2^245 in magnitude: no overflow in 256 bits. */
        u256 mag;
        u128 borrow = 0;
        for (int k = 0; k < 4; k++) {
            u128 t = (u128)a.w[k] - b.w[k] - borrow;
            mag.w[k] = (uint64_t)t;
            borrow = (t >> 64) ? 1 : 0;
        }
        int neg = (int64_t)mag.w[3] < 0;
        if (neg) {
            u128 c = 1;
            for (int k = 0; k < 4; k++) {
                c += (u128)(uint64_t)~mag.w[k];
                mag.w[k] = (uint64_t)c;
                c >>= 64;
            }
        }
        double v = ratio_to_double(neg, mag, n, n - 1, -2 * FRAC_BITS);
        sigma[i * d + j] = v;
        sigma[j * d + i] = v;
    }
}

static void moments_task(void *arg, size_t t, int thread) {
    (void)thread;
    moments_job *j = arg;
    size_t d = j->s->dim;
    moments_row(j->s, j->sigma, t);
    if (d - 1 - t != t) moments_row(j->s, j->sigma, d - 1 - t);
}

fdd_status fdd_stats_moments(const fdd_stats *s, fdd_ctx *ctx, double *mu, double *sigma,
                             fdd_error *err) {
    size_t d = s->dim;
    if (!s->exact) {
        if (mu) memcpy(mu, s->mu, d * sizeof(double));
        if (sigma) memcpy(sigma, s->sigma, d * d * sizeof(double));
        return FDD_OK;
    }
    if (s->count < 1 || (sigma && s->count < 2))
        return fdd_fail(err, FDD_E_ARG, "statistics of %llu image(s): need at least 2 for a covariance",
                        (unsigned long long)s->count);
    if (mu)
        for (size_t i = 0; i < d; i++) {
            int neg;
            u256 mag;
            set_mag_from_i128(get128(s->sum + 2 * i), &neg, &mag);
            mu[i] = ratio_to_double(neg, mag, s->count, 1, -FRAC_BITS);
        }
    if (sigma) {
        moments_job job = {s, sigma};
        fdd_parallel(ctx, moments_task, &job, (d + 1) / 2);
    }
    return FDD_OK;
}

/* ------------------------------------------------------------------ files */

fdd_status fdd_stats_save(const fdd_stats *s, fdd_ctx *ctx, const char *path, int with_sums,
                          fdd_error *err) {
    size_t d = s->dim;
    double *mu = s->mu, *sigma = s->sigma;
    fdd_status st = FDD_OK;
    if (s->exact) {
        mu = fdd_malloc(d * sizeof(double));
        sigma = fdd_malloc(d * d * sizeof(double));
        if (!mu || !sigma) {
            st = fdd_fail(err, FDD_E_NOMEM, "%s: cannot allocate mu/sigma", path);
            goto done;
        }
        if ((st = fdd_stats_moments(s, ctx, mu, sigma, err))) {
            char m[sizeof err->msg];
            snprintf(m, sizeof m, "%s", err ? err->msg : "");
            fdd_fail(err, st, "%s: %s", path, m);
            goto done;
        }
    }
    {
        int64_t count = (int64_t)s->count;
        int64_t format[2] = {FORMAT_VERSION, FRAC_BITS};
        fdd_npy_out a[8] = {
            {"mu", FDD_NPY_F8, 1, {d}, mu},
            {"sigma", FDD_NPY_F8, 2, {d, d}, sigma},
        };
        size_t n = 2;
        const fdd_npy_out model = {"fdd_model", FDD_NPY_U1, 1, {strlen(s->model)}, s->model};
        const fdd_npy_out profile = {"fdd_profile", FDD_NPY_U1, 1, {strlen(s->profile)}, s->profile};
        if (s->model[0]) a[n++] = model;
        if (s->profile[0]) a[n++] = profile;
        if (s->exact && with_sums) {
            const fdd_npy_out sums[4] = {
                {"fdd_format", FDD_NPY_I8, 1, {2}, format},
                {"fdd_count", FDD_NPY_I8, 1, {1}, &count},
                {"fdd_sum", FDD_NPY_I8, 2, {d, 2}, s->sum},
                {"fdd_sumsq", FDD_NPY_I8, 2, {tri_size(d), 3}, s->sumsq},
            };
            for (int k = 0; k < 4; k++) a[n++] = sums[k];
        }
        st = fdd_npz_write(path, a, n, err);
    }
done:
    if (s->exact) {
        fdd_free(mu);
        fdd_free(sigma);
    }
    return st;
}

static fdd_status load_string(const fdd_npz *z, const char *key, char *dst, fdd_error *err) {
    dst[0] = 0;
    if (!fdd_npz_has(z, key)) return FDD_OK;
    fdd_npy_array a;
    fdd_status st = fdd_npz_get(z, key, &a, err);
    if (st) return st;
    if (a.type != FDD_NPY_U1 || a.ndim != 1 || a.count >= ID_MAX || memchr(a.data, 0, a.count)) {
        fdd_npy_array_free(&a);
        return fdd_fail(err, FDD_E_FORMAT, "%s: %s: expected a uint8 string of < %d bytes", fdd_npz_path(z),
                        key, ID_MAX);
    }
    memcpy(dst, a.data, a.count);
    dst[a.count] = 0;
    fdd_npy_array_free(&a);
    return FDD_OK;
}

/* Reads key as an int64 array of exactly `count` elements and ndim dims. */
static fdd_status load_i64(const fdd_npz *z, const char *key, int ndim, uint64_t d0, uint64_t d1,
                           fdd_npy_array *a, fdd_error *err) {
    fdd_status st = fdd_npz_get(z, key, a, err);
    if (st) return st;
    if (a->type != FDD_NPY_I8 || a->ndim != ndim || a->shape[0] != d0 || (ndim > 1 && a->shape[1] != d1)) {
        fdd_npy_array_free(a);
        return fdd_fail(err, FDD_E_FORMAT, "%s: %s: wrong dtype or shape (int64 expected)", fdd_npz_path(z), key);
    }
    return FDD_OK;
}

static fdd_status load_exact(fdd_npz *z, fdd_stats **out, fdd_error *err) {
    const char *path = fdd_npz_path(z);
    fdd_npy_array fmt = {0}, cnt = {0}, sum = {0}, sq = {0}, mu = {0};
    fdd_stats *s = NULL;
    fdd_status st;
    if ((st = load_i64(z, "fdd_format", 1, 2, 0, &fmt, err))) goto done;
    const int64_t *f = fmt.data;
    if (f[0] != FORMAT_VERSION || f[1] != FRAC_BITS) {
        st = fdd_fail(err, FDD_E_UNSUPPORTED, "%s: fdd_format: version %lld with %lld fraction bits not supported",
                      path, (long long)f[0], (long long)f[1]);
        goto done;
    }
    if ((st = load_i64(z, "fdd_count", 1, 1, 0, &cnt, err))) goto done;
    int64_t n = *(const int64_t *)cnt.data;
    if (n < 0 || (uint64_t)n > MAX_COUNT) {
        st = fdd_fail(err, FDD_E_FORMAT, "%s: fdd_count: %lld out of range", path, (long long)n);
        goto done;
    }
    /* The dimension comes from mu (always present in fdd files). */
    if ((st = fdd_npz_get(z, "mu", &mu, err))) goto done;
    if (mu.ndim != 1 || mu.shape[0] == 0 || mu.shape[0] > MAX_DIM) {
        st = fdd_fail(err, FDD_E_FORMAT, "%s: mu: expected a vector of 1..%d values", path, MAX_DIM);
        goto done;
    }
    size_t d = (size_t)mu.shape[0];
    if ((st = load_i64(z, "fdd_sum", 2, d, 2, &sum, err))) goto done;
    if ((st = load_i64(z, "fdd_sumsq", 2, tri_size(d), 3, &sq, err))) goto done;
    if ((st = stats_alloc(&s, d, 1, err))) goto done;
    s->count = (uint64_t)n;
    memcpy(s->sum, sum.data, d * 2 * sizeof(uint64_t));
    memcpy(s->sumsq, sq.data, tri_size(d) * 3 * sizeof(uint64_t));
    /* Bounds that hold for any real accumulation (|x_q| < 2^62): they keep
     * later merges and moments free of overflow whatever the file says. */
    for (size_t i = 0; i < d; i++) {
        i128 v = get128(s->sum + 2 * i);
        u128 m = v < 0 ? (u128)0 - (u128)v : (u128)v;
        if ((m >> 62) > (u128)n) {
            st = fdd_fail(err, FDD_E_FORMAT, "%s: fdd_sum[%zu] exceeds what %lld images can give", path, i,
                          (long long)n);
            goto done;
        }
    }
    for (size_t k = 0; k < tri_size(d); k++) {
        const uint64_t *e = s->sumsq + 3 * k;
        /* |S_ij| <= n·2^124 <= 2^184: the top limb must be a sign extension of bit 183. */
        int64_t top = (int64_t)e[2];
        if (top >= ((int64_t)1 << 56) || top < -((int64_t)1 << 56)) {
            st = fdd_fail(err, FDD_E_FORMAT, "%s: fdd_sumsq entry %zu out of range", path, k);
            goto done;
        }
    }
    if ((st = load_string(z, "fdd_model", s->model, err))) goto done;
    if ((st = load_string(z, "fdd_profile", s->profile, err))) goto done;
    *out = s;
    s = NULL;
done:
    fdd_stats_free(s);
    fdd_npy_array_free(&fmt);
    fdd_npy_array_free(&cnt);
    fdd_npy_array_free(&sum);
    fdd_npy_array_free(&sq);
    fdd_npy_array_free(&mu);
    return st;
}

/* mu/sigma as float32 or float64 (pytorch-fid, clean-fid, TTUR). */
static fdd_status load_plain(fdd_npz *z, fdd_stats **out, fdd_error *err) {
    const char *path = fdd_npz_path(z);
    fdd_npy_array mu = {0}, sg = {0};
    fdd_stats *s = NULL;
    fdd_status st;
    if ((st = fdd_npz_get(z, "mu", &mu, err)) || (st = fdd_npz_get(z, "sigma", &sg, err))) goto done;
    if (mu.type != FDD_NPY_F4 && mu.type != FDD_NPY_F8) {
        st = fdd_fail(err, FDD_E_FORMAT, "%s: mu: float32 or float64 expected", path);
        goto done;
    }
    if (sg.type != FDD_NPY_F4 && sg.type != FDD_NPY_F8) {
        st = fdd_fail(err, FDD_E_FORMAT, "%s: sigma: float32 or float64 expected", path);
        goto done;
    }
    if (mu.ndim != 1 || mu.shape[0] == 0 || mu.shape[0] > MAX_DIM) {
        st = fdd_fail(err, FDD_E_FORMAT, "%s: mu: expected a vector of 1..%d values", path, MAX_DIM);
        goto done;
    }
    size_t d = (size_t)mu.shape[0];
    if (sg.ndim != 2 || sg.shape[0] != d || sg.shape[1] != d) {
        st = fdd_fail(err, FDD_E_FORMAT, "%s: sigma: expected shape (%zu, %zu) to match mu", path, d, d);
        goto done;
    }
    if ((st = stats_alloc(&s, d, 0, err))) goto done;
    for (size_t i = 0; i < d; i++)
        s->mu[i] = mu.type == FDD_NPY_F4 ? (double)((const float *)mu.data)[i] : ((const double *)mu.data)[i];
    for (size_t i = 0; i < d * d; i++)
        s->sigma[i] = sg.type == FDD_NPY_F4 ? (double)((const float *)sg.data)[i] : ((const double *)sg.data)[i];
    for (size_t i = 0; i < d * d; i++)
        if (!isfinite(s->sigma[i]) || (i < d && !isfinite(s->mu[i]))) {
            st = fdd_fail(err, FDD_E_FORMAT, "%s: non-finite value in mu or sigma", path);
            goto done;
        }
    if ((st = load_string(z, "fdd_model", s->model, err))) goto done;
    if ((st = load_string(z, "fdd_profile", s->profile, err))) goto done;
    *out = s;
    s = NULL;
done:
    fdd_stats_free(s);
    fdd_npy_array_free(&mu);
    fdd_npy_array_free(&sg);
    return st;
}

fdd_status fdd_stats_load(const char *path, fdd_stats **out, fdd_error *err) {
    *out = NULL;
    fdd_npz *z;
    fdd_status st = fdd_npz_open(path, &z, err);
    if (st) return st;
    if (fdd_npz_has(z, "fdd_sumsq")) st = load_exact(z, out, err);
    else st = load_plain(z, out, err);
    fdd_npz_close(z);
    return st;
}

/* resize.c — the reference resizes of the FID pipelines: Pillow's
 * convolution resampler (8-bit and float "F" paths), clean-fid's per-channel
 * float bicubic, torch F.interpolate bilinear, TF1 resize_bilinear, and
 * torchvision's Resize(shorter side) + CenterCrop.
 * Spec: ../shared/specs/imaging.md §5–§8.  Every double and float
 * expression is written in the reference's evaluation order; the build's
 * -ffp-contract=off keeps the compiler from fusing them. */
#include "image.h"

#include <math.h>

#define PIL_PI 3.14159265358979323846 /* M_PI, which strict C11 lacks */
#define PRECISION_BITS (32 - 8 - 2)   /* Pillow's 8-bit fixed point */

/* ----------------------------------------------------------- filters */

static double filter_box(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

static double filter_bilinear(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double filter_hamming(double x) {
    if (x < 0.0) x = -x;
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x = x * PIL_PI;
    /* Pillow writes the constants as float literals; they widen to double. */
    return sin(x) / x * ((double)0.54f + (double)0.46f * cos(x));
}

static double filter_bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x) {
    if (x == 0.0) return 1.0;
    x = x * PIL_PI;
    return sin(x) / x;
}

static double filter_lanczos(double x) {
    /* Half-open and without abs(), as Pillow has it. */
    return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0;
}

static const struct {
    double (*fn)(double);
    double support;
} FILTERS[FDD_PIL_FILTER_COUNT] = {
    [FDD_PIL_BOX] = {filter_box, 0.5},         [FDD_PIL_BILINEAR] = {filter_bilinear, 1.0},
    [FDD_PIL_HAMMING] = {filter_hamming, 1.0}, [FDD_PIL_BICUBIC] = {filter_bicubic, 2.0},
    [FDD_PIL_LANCZOS] = {filter_lanczos, 3.0},
};

/* malloc(a * b * c) with the product checked (intermediate images can be far
 * larger than the input or the output). */
static void *alloc3(size_t a, size_t b, size_t c) {
    size_t n;
    if (!fdd_mul_ok(a, b, &n) || !fdd_mul_ok(n, c, &n)) return NULL;
    return fdd_malloc(n);
}

/* ------------------------------------------------------ coefficients */

/* One axis of Pillow's resampling: for output i, taps bounds[2i] ..
 * bounds[2i] + bounds[2i+1] - 1 of the input with weights k[i*ksize + t]
 * (double, normalised) or ki[...] (22-bit fixed point). */
typedef struct axis {
    int out;
    size_t ksize;
    int *bounds;
    double *k;
    int32_t *ki;
} axis;

static void axis_free(axis *a) {
    fdd_free(a->bounds);
    fdd_free(a->k);
    fdd_free(a->ki);
    memset(a, 0, sizeof *a);
}

static fdd_status axis_make(axis *a, int in, int out, fdd_pil_filter f, bool fixed,
                            fdd_error *err) {
    memset(a, 0, sizeof *a);
    /* Pillow: (double)(in1 - in0) / out with the box edges as floats. */
    double scale = (double)((float)in - 0.0f) / out;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = FILTERS[f].support * filterscale;
    double half = ceil(support); /* <= 3 * INT_MAX: exact in double */
    size_t ksize, n, bytes;
    if (half > (double)(SIZE_MAX / 4) || !fdd_mul_ok((size_t)out, ksize = (size_t)half * 2 + 1, &n) ||
        !fdd_mul_ok(n, sizeof(double), &bytes))
        return fdd_fail(err, FDD_E_NOMEM, "resize: %d -> %d coefficient table too large", in, out);
    a->out = out;
    a->ksize = ksize;
    a->bounds = alloc3((size_t)out, 2, sizeof(int));
    a->k = fdd_malloc(bytes);
    if (fixed) a->ki = alloc3(n, 1, sizeof(int32_t));
    if (!a->bounds || !a->k || (fixed && !a->ki)) {
        axis_free(a);
        return fdd_fail(err, FDD_E_NOMEM, "resize: cannot allocate %zu coefficients", n);
    }
    double (*fn)(double) = FILTERS[f].fn;
    double ss = 1.0 / filterscale; /* multiplied per tap, never divided */
    for (int xx = 0; xx < out; xx++) {
        double center = (xx + 0.5) * scale; /* in0 = 0 */
        double ww = 0.0;
        /* C casts (trunc) of doubles within +-3*INT_MAX; clamped at once. */
        double lo = center - support + 0.5, hi = center + support + 0.5;
        int xmin = lo < 0.0 ? 0 : (int)lo;
        int xmax = hi >= (double)in ? in : (int)hi;
        xmax -= xmin;
        double *k = a->k + (size_t)xx * ksize;
        for (int x = 0; x < xmax; x++) {
            double w = fn((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        if (ww != 0.0)
            for (int x = 0; x < xmax; x++) k[x] /= ww;
        for (size_t x = (size_t)(xmax > 0 ? xmax : 0); x < ksize; x++) k[x] = 0.0;
        a->bounds[2 * xx] = xmin;
        a->bounds[2 * xx + 1] = xmax;
        if (fixed) {
            int32_t *ki = a->ki + (size_t)xx * ksize;
            for (size_t x = 0; x < ksize; x++) {
                /* Round half away from zero by a C cast, as Pillow; the clamp
                 * only matters where Pillow's cast would be undefined. */
                double v = k[x] < 0 ? -0.5 + k[x] * (1 << PRECISION_BITS)
                                    : 0.5 + k[x] * (1 << PRECISION_BITS);
                ki[x] = v >= 2147483647.0 ? INT32_MAX : v <= -2147483648.0 ? INT32_MIN : (int32_t)v;
            }
        }
    }
    return FDD_OK;
}

/* ---------------------------------------------------------- argument checks */

static fdd_status check_dims(const char *what, int w, int h, fdd_error *err) {
    if (w < 1 || h < 1)
        return fdd_fail(err, FDD_E_ARG, "resize: %s size %dx%d must be at least 1x1", what, w, h);
    uint64_t px;
    if (!fdd_mul64_ok((uint64_t)w, (uint64_t)h, &px) || px > FDD_IMAGE_MAX_PIXELS)
        return fdd_fail(err, FDD_E_ARG, "resize: %s size %dx%d exceeds %llu pixels", what, w, h,
                        (unsigned long long)FDD_IMAGE_MAX_PIXELS);
    return FDD_OK;
}

static fdd_status check_image(const fdd_image *src, fdd_error *err) {
    if (!src || !src->rgb) return fdd_fail(err, FDD_E_ARG, "resize: no source image");
    return check_dims("source", src->width, src->height, err);
}

/* ------------------------------------------------------------ 8-bit path */

/* Sums are kept in uint32_t: they fit in int32 for every kernel (at most
 * 1.58 x 2^22 x 255 + 2^21 measured, Lanczos on tiny inputs), and should one
 * ever not, the unsigned sum wraps the way Pillow's int32 does in practice
 * instead of being undefined.  clip8 reads it back as int32: floor(v / 2^22)
 * clamped to 0..255, v < 0 exactly when the floor is. */
static inline uint8_t clip8(uint32_t u) {
    int32_t v = u <= INT32_MAX ? (int32_t)u : -(int32_t)~u - 1;
    if (v < 0) return 0;
    v >>= PRECISION_BITS;
    return v > 255 ? 255 : (uint8_t)v;
}

/* Rows y0 .. y0+rows-1 of an RGB image w wide into out_w wide rows of tmp. */
static void horiz_u8(const uint8_t *src, int w, int y0, int rows, uint8_t *tmp, const axis *a) {
    const size_t in_stride = (size_t)w * 3, out_stride = (size_t)a->out * 3;
    int y = 0;
    /* Two rows at a time share the coefficient loads. */
    for (; y + 1 < rows; y += 2) {
        const uint8_t *in0 = src + (size_t)(y0 + y) * in_stride;
        uint8_t *o0 = tmp + (size_t)y * out_stride, *o1 = o0 + out_stride;
        for (int xx = 0; xx < a->out; xx++) {
            const uint8_t *p = in0 + (size_t)a->bounds[2 * xx] * 3, *q = p + in_stride;
            const int32_t *k = a->ki + (size_t)xx * a->ksize;
            int n = a->bounds[2 * xx + 1];
            uint32_t s0 = 1u << (PRECISION_BITS - 1), s1 = s0, s2 = s0, u0 = s0, u1 = s0, u2 = s0;
            for (int t = 0; t < n; t++) {
                uint32_t kt = (uint32_t)k[t];
                s0 += p[3 * t + 0] * kt;
                s1 += p[3 * t + 1] * kt;
                s2 += p[3 * t + 2] * kt;
                u0 += q[3 * t + 0] * kt;
                u1 += q[3 * t + 1] * kt;
                u2 += q[3 * t + 2] * kt;
            }
            o0[3 * xx + 0] = clip8(s0);
            o0[3 * xx + 1] = clip8(s1);
            o0[3 * xx + 2] = clip8(s2);
            o1[3 * xx + 0] = clip8(u0);
            o1[3 * xx + 1] = clip8(u1);
            o1[3 * xx + 2] = clip8(u2);
        }
    }
    for (; y < rows; y++) {
        const uint8_t *in = src + (size_t)(y0 + y) * in_stride;
        uint8_t *o = tmp + (size_t)y * out_stride;
        for (int xx = 0; xx < a->out; xx++) {
            const uint8_t *p = in + (size_t)a->bounds[2 * xx] * 3;
            const int32_t *k = a->ki + (size_t)xx * a->ksize;
            int n = a->bounds[2 * xx + 1];
            uint32_t s0 = 1u << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int t = 0; t < n; t++) {
                s0 += p[3 * t + 0] * (uint32_t)k[t];
                s1 += p[3 * t + 1] * (uint32_t)k[t];
                s2 += p[3 * t + 2] * (uint32_t)k[t];
            }
            o[3 * xx + 0] = clip8(s0);
            o[3 * xx + 1] = clip8(s1);
            o[3 * xx + 2] = clip8(s2);
        }
    }
}

/* acc[i] += r0[i]*k0 + r1[i]*k1 over a row.  The main loop's trip count is a
 * multiple of 16 and the pointers are restrict, which is what GCC's -O2
 * vectoriser needs; integer sums are exact, so the grouping is free. */
static void mac2_u8(uint32_t *restrict acc, const uint8_t *restrict r0,
                    const uint8_t *restrict r1, int32_t k0, int32_t k1, size_t n) {
    size_t nb = n & ~(size_t)15, i;
    const uint32_t u0 = (uint32_t)k0, u1 = (uint32_t)k1; /* two's complement products */
    for (i = 0; i < nb; i++) acc[i] += r0[i] * u0 + r1[i] * u1;
    for (; i < n; i++) acc[i] += r0[i] * u0 + r1[i] * u1;
}

/* Columns of tmp (rows of `bytes` bytes) into dst rows; acc is scratch.
 * Accumulating whole rows per tap (contiguous, vectorisable) gives Pillow's
 * per-pixel results because the sums are exact. */
static void vert_u8(const uint8_t *tmp, size_t bytes, uint8_t *dst, const axis *a, uint32_t *acc) {
    for (int yy = 0; yy < a->out; yy++) {
        const int32_t *k = a->ki + (size_t)yy * a->ksize;
        int ymin = a->bounds[2 * yy], n = a->bounds[2 * yy + 1];
        for (size_t i = 0; i < bytes; i++) acc[i] = 1u << (PRECISION_BITS - 1);
        int t = 0;
        for (; t + 1 < n; t += 2)
            mac2_u8(acc, tmp + (size_t)(ymin + t) * bytes, tmp + (size_t)(ymin + t + 1) * bytes,
                    k[t], k[t + 1], bytes);
        if (t < n) /* odd tap count: the second row is the first, weight 0 */
            mac2_u8(acc, tmp + (size_t)(ymin + t) * bytes, tmp + (size_t)(ymin + t) * bytes, k[t],
                    0, bytes);
        uint8_t *o = dst + (size_t)yy * bytes;
        for (size_t i = 0; i < bytes; i++) o[i] = clip8(acc[i]);
    }
}

fdd_status fdd_resize_pillow_u8(const fdd_image *src, int out_w, int out_h, fdd_pil_filter filter,
                                fdd_image *dst, fdd_error *err) {
    fdd_status s;
    if (dst) memset(dst, 0, sizeof *dst);
    if (!dst) return fdd_fail(err, FDD_E_ARG, "resize: no destination image");
    if ((s = check_image(src, err)) || (s = check_dims("output", out_w, out_h, err))) return s;
    if ((unsigned)filter >= FDD_PIL_FILTER_COUNT)
        return fdd_fail(err, FDD_E_ARG, "resize: unknown filter %d", (int)filter);
    const int w = src->width, h = src->height;
    if ((s = fdd_image_alloc(dst, (uint64_t)out_w, (uint64_t)out_h, "resize", err))) return s;
    if (w == out_w && h == out_h) { /* Pillow returns a copy */
        memcpy(dst->rgb, src->rgb, (size_t)w * h * 3);
        return FDD_OK;
    }
    axis ax = {0}, ay = {0};
    uint8_t *tmp = NULL;
    uint32_t *acc = NULL;
    const bool need_h = out_w != w, need_v = out_h != h;
    if ((s = axis_make(&ay, h, out_h, filter, true, err))) goto done;
    if (need_h && (s = axis_make(&ax, w, out_w, filter, true, err))) goto done;
    /* Source rows the vertical pass reads: [first, last). */
    int first = ay.bounds[0], last = ay.bounds[2 * out_h - 2] + ay.bounds[2 * out_h - 1];
    const uint8_t *vin = src->rgb;
    if (need_h) {
        if (!need_v) { /* the window is then the whole image */
            FDD_ASSERT(first == 0 && last == h);
            horiz_u8(src->rgb, w, 0, h, dst->rgb, &ax);
            goto done;
        }
        tmp = alloc3((size_t)(last - first), (size_t)out_w, 3);
        if (!tmp) {
            s = fdd_fail(err, FDD_E_NOMEM, "resize: cannot allocate the intermediate image");
            goto done;
        }
        horiz_u8(src->rgb, w, first, last - first, tmp, &ax);
        for (int i = 0; i < out_h; i++) ay.bounds[2 * i] -= first;
        vin = tmp;
    }
    acc = alloc3((size_t)out_w, 3, sizeof *acc);
    if (!acc) {
        s = fdd_fail(err, FDD_E_NOMEM, "resize: cannot allocate a row accumulator");
        goto done;
    }
    vert_u8(vin, (size_t)out_w * 3, dst->rgb, &ay, acc);
done:
    fdd_free(acc);
    fdd_free(tmp);
    axis_free(&ax);
    axis_free(&ay);
    if (s) fdd_image_free(dst);
    return s;
}

fdd_status fdd_resize_pillow_bicubic_u8(const fdd_image *src, int out_w, int out_h,
                                        fdd_image *dst, fdd_error *err) {
    return fdd_resize_pillow_u8(src, out_w, out_h, FDD_PIL_BICUBIC, dst, err);
}

/* ----------------------------------------------------- float ("F") path */

/* Rows y0 .. y0+rows-1 of a float plane w wide into out_w wide rows of tmp;
 * each output is a double sum in tap order, stored as float. */
static void horiz_f32(const float *src, int w, int y0, int rows, float *tmp, const axis *a) {
    int y = 0;
    /* Two rows at a time: two independent sum chains hide the add latency;
     * each chain still adds its taps in Pillow's order. */
    for (; y + 1 < rows; y += 2) {
        const float *in0 = src + (size_t)(y0 + y) * w, *in1 = in0 + w;
        float *o0 = tmp + (size_t)y * a->out, *o1 = o0 + a->out;
        for (int xx = 0; xx < a->out; xx++) {
            int x0 = a->bounds[2 * xx], n = a->bounds[2 * xx + 1];
            const double *k = a->k + (size_t)xx * a->ksize;
            double s0 = 0.0, s1 = 0.0;
            for (int t = 0; t < n; t++) {
                s0 += in0[x0 + t] * k[t];
                s1 += in1[x0 + t] * k[t];
            }
            o0[xx] = (float)s0;
            o1[xx] = (float)s1;
        }
    }
    for (; y < rows; y++) {
        const float *in = src + (size_t)(y0 + y) * w;
        float *o = tmp + (size_t)y * a->out;
        for (int xx = 0; xx < a->out; xx++) {
            const float *p = in + a->bounds[2 * xx];
            const double *k = a->k + (size_t)xx * a->ksize;
            int n = a->bounds[2 * xx + 1];
            double ss = 0.0;
            for (int t = 0; t < n; t++) ss += p[t] * k[t];
            o[xx] = (float)ss;
        }
    }
}

/* acc[i] = (acc[i] + r0[i]*k0) + r1[i]*k1: two taps in Pillow's order. */
static void mac2_f32(double *restrict acc, const float *restrict r0, const float *restrict r1,
                     double k0, double k1, size_t n) {
    size_t nb = n & ~(size_t)7, i;
    for (i = 0; i < nb; i++) acc[i] = (acc[i] + r0[i] * k0) + r1[i] * k1;
    for (; i < n; i++) acc[i] = (acc[i] + r0[i] * k0) + r1[i] * k1;
}

static void mac1_f32(double *restrict acc, const float *restrict r0, double k0, size_t n) {
    size_t nb = n & ~(size_t)7, i;
    for (i = 0; i < nb; i++) acc[i] += r0[i] * k0;
    for (; i < n; i++) acc[i] += r0[i] * k0;
}

/* Per output pixel the taps are summed in order from 0.0, as Pillow does;
 * only the loop nest is swapped so that rows are read contiguously. */
static void vert_f32(const float *tmp, int width, float *dst, const axis *a, double *acc) {
    const size_t wd = (size_t)width;
    for (int yy = 0; yy < a->out; yy++) {
        const double *k = a->k + (size_t)yy * a->ksize;
        int ymin = a->bounds[2 * yy], n = a->bounds[2 * yy + 1];
        for (size_t i = 0; i < wd; i++) acc[i] = 0.0;
        int t = 0;
        for (; t + 1 < n; t += 2)
            mac2_f32(acc, tmp + (size_t)(ymin + t) * wd, tmp + (size_t)(ymin + t + 1) * wd, k[t],
                     k[t + 1], wd);
        if (t < n) mac1_f32(acc, tmp + (size_t)(ymin + t) * wd, k[t], wd);
        float *o = dst + (size_t)yy * wd;
        for (size_t i = 0; i < wd; i++) o[i] = (float)acc[i];
    }
}

fdd_status fdd_resize_pillow_f32(const float *src, int w, int h, float *dst, int out_w,
                                 int out_h, fdd_pil_filter filter, fdd_error *err) {
    fdd_status s;
    if (!src || !dst) return fdd_fail(err, FDD_E_ARG, "resize: no source or destination plane");
    if ((s = check_dims("source", w, h, err)) || (s = check_dims("output", out_w, out_h, err)))
        return s;
    if ((unsigned)filter >= FDD_PIL_FILTER_COUNT)
        return fdd_fail(err, FDD_E_ARG, "resize: unknown filter %d", (int)filter);
    if (w == out_w && h == out_h) {
        memcpy(dst, src, (size_t)w * h * sizeof *dst);
        return FDD_OK;
    }
    axis ax = {0}, ay = {0};
    float *tmp = NULL;
    double *acc = NULL;
    const bool need_h = out_w != w, need_v = out_h != h;
    if ((s = axis_make(&ay, h, out_h, filter, false, err))) goto done;
    if (need_h && (s = axis_make(&ax, w, out_w, filter, false, err))) goto done;
    int first = ay.bounds[0], last = ay.bounds[2 * out_h - 2] + ay.bounds[2 * out_h - 1];
    const float *vin = src;
    if (need_h) {
        if (!need_v) {
            FDD_ASSERT(first == 0 && last == h);
            horiz_f32(src, w, 0, h, dst, &ax);
            goto done;
        }
        tmp = alloc3((size_t)(last - first), (size_t)out_w, sizeof *tmp);
        if (!tmp) {
            s = fdd_fail(err, FDD_E_NOMEM, "resize: cannot allocate the intermediate image");
            goto done;
        }
        horiz_f32(src, w, first, last - first, tmp, &ax);
        for (int i = 0; i < out_h; i++) ay.bounds[2 * i] -= first;
        vin = tmp;
    }
    acc = alloc3((size_t)out_w, 1, sizeof *acc);
    if (!acc) {
        s = fdd_fail(err, FDD_E_NOMEM, "resize: cannot allocate a row accumulator");
        goto done;
    }
    vert_f32(vin, out_w, dst, &ay, acc);
done:
    fdd_free(acc);
    fdd_free(tmp);
    axis_free(&ax);
    axis_free(&ay);
    return s;
}

fdd_status fdd_resize_pillow_bicubic_f32(const float *src, int w, int h, float *dst,
                                         int out_w, int out_h, fdd_error *err) {
    return fdd_resize_pillow_f32(src, w, h, dst, out_w, out_h, FDD_PIL_BICUBIC, err);
}

fdd_status fdd_resize_cleanfid(const fdd_image *src, int out_w, int out_h, float *dst,
                               fdd_error *err) {
    fdd_status s;
    if (!dst) return fdd_fail(err, FDD_E_ARG, "resize: no destination plane");
    if ((s = check_image(src, err)) || (s = check_dims("output", out_w, out_h, err))) return s;
    const size_t np = (size_t)src->width * src->height, no = (size_t)out_w * out_h;
    float *plane = alloc3(np, 1, sizeof *plane), *res = alloc3(no, 1, sizeof *res);
    if (!plane || !res) {
        s = fdd_fail(err, FDD_E_NOMEM, "resize: cannot allocate channel planes");
        goto done;
    }
    for (int c = 0; c < 3; c++) {
        for (size_t i = 0; i < np; i++) plane[i] = src->rgb[3 * i + c];
        s = fdd_resize_pillow_f32(plane, src->width, src->height, res, out_w, out_h,
                                  FDD_PIL_BICUBIC, err);
        if (s) goto done;
        /* np.clip(0, 255): NaN cannot arise from 8-bit input. */
        for (size_t i = 0; i < no; i++) {
            float v = res[i];
            dst[3 * i + c] = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
        }
    }
done:
    fdd_free(plane);
    fdd_free(res);
    return s;
}

/* ------------------------------------------------------ bilinear (torch, TF1) */

/* One axis of a 2-tap linear interpolation: out[i] = w0*x[i0] + w1*x[i1]. */
typedef struct lin_axis {
    int *i0, *i1;
    float *w0, *w1;
} lin_axis;

static void lin_free(lin_axis *a) {
    fdd_free(a->i0);
    fdd_free(a->i1);
    fdd_free(a->w0);
    fdd_free(a->w1);
}

static bool lin_alloc(lin_axis *a, int out) {
    a->i0 = alloc3((size_t)out, 1, sizeof(int));
    a->i1 = alloc3((size_t)out, 1, sizeof(int));
    a->w0 = alloc3((size_t)out, 1, sizeof(float));
    a->w1 = alloc3((size_t)out, 1, sizeof(float));
    return a->i0 && a->i1 && a->w0 && a->w1;
}

/* PyTorch 1.13 CPU: scale = float(in)/out in float32, the source index in
 * double (acc_type of float on CPU), lambda1 = float(s - i0), lambda0 =
 * 1 - lambda1 in float32.  Equal sizes give the exact identity.  The sums
 * are fma(x0, l0, x1 * l1) along W, then the same along H: the rounding of
 * torch's AVX2 kernel for C >= 2 channels (measured bit-exact; the C == 1
 * kernel of 1.13 rounds differently, within 2 ulp on [0,1] data). */
static void torch_axis(lin_axis *a, int in, int out) {
    float scale = (float)in / (float)out;
    for (int d = 0; d < out; d++) {
        if (in == out) {
            a->i0[d] = a->i1[d] = d;
            a->w0[d] = 1.0f;
            a->w1[d] = 0.0f;
            continue;
        }
        double s = (double)scale * (d + 0.5) - 0.5;
        if (s < 0.0) s = 0.0;
        int i0 = (int)s;
        if (i0 > in - 1) i0 = in - 1; /* never read past the edge */
        a->i0[d] = i0;
        a->i1[d] = i0 < in - 1 ? i0 + 1 : i0;
        a->w1[d] = (float)(s - i0);
        a->w0[d] = 1.0f - a->w1[d];
    }
}

/* torch-fidelity's TF1 emulation: float32 throughout.  Here w1 holds the
 * fraction f; w0 is unused. */
static void tf1_axis(lin_axis *a, int in, int out) {
    float scale = (float)((double)in / (double)out);
    for (int d = 0; d < out; d++) {
        float s = (float)d * scale;
        int lo = (int)s;
        if (lo > in - 1) lo = in - 1;
        a->i0[d] = lo;
        a->i1[d] = lo + 1 < in ? lo + 1 : in - 1;
        a->w1[d] = s - (float)lo;
        a->w0[d] = 0.0f;
    }
}

static fdd_status bilinear(const float *src, int w, int h, float *dst, int out_w, int out_h,
                           bool tf1, fdd_error *err) {
    fdd_status s;
    if (!src || !dst) return fdd_fail(err, FDD_E_ARG, "resize: no source or destination plane");
    if ((s = check_dims("source", w, h, err)) || (s = check_dims("output", out_w, out_h, err)))
        return s;
    lin_axis ax = {0}, ay = {0};
    if (!lin_alloc(&ax, out_w) || !lin_alloc(&ay, out_h)) {
        s = fdd_fail(err, FDD_E_NOMEM, "resize: cannot allocate interpolation tables");
        goto done;
    }
    if (tf1) {
        tf1_axis(&ax, w, out_w);
        tf1_axis(&ay, h, out_h);
    } else {
        torch_axis(&ax, w, out_w);
        torch_axis(&ay, h, out_h);
    }
    for (int y = 0; y < out_h; y++) {
        const float *r0 = src + (size_t)ay.i0[y] * w, *r1 = src + (size_t)ay.i1[y] * w;
        float *o = dst + (size_t)y * out_w;
        if (tf1) {
            const float fy = ay.w1[y];
            for (int x = 0; x < out_w; x++) {
                int j0 = ax.i0[x], j1 = ax.i1[x];
                float fx = ax.w1[x];
                float top = r0[j0] + (r0[j1] - r0[j0]) * fx;
                float bot = r1[j0] + (r1[j1] - r1[j0]) * fx;
                o[x] = top + (bot - top) * fy;
            }
        } else {
            const float h0 = ay.w0[y], h1 = ay.w1[y];
            for (int x = 0; x < out_w; x++) {
                int j0 = ax.i0[x], j1 = ax.i1[x];
                float w0 = ax.w0[x], w1 = ax.w1[x];
                float t0 = fmaf(r0[j0], w0, r0[j1] * w1);
                float t1 = fmaf(r1[j0], w0, r1[j1] * w1);
                o[x] = fmaf(t0, h0, t1 * h1);
            }
        }
    }
done:
    lin_free(&ax);
    lin_free(&ay);
    return s;
}

fdd_status fdd_resize_torch_bilinear(const float *src, int w, int h, float *dst, int out_w,
                                     int out_h, fdd_error *err) {
    return bilinear(src, w, h, dst, out_w, out_h, false, err);
}

fdd_status fdd_resize_tf1_bilinear(const float *src, int w, int h, float *dst, int out_w,
                                   int out_h, fdd_error *err) {
    return bilinear(src, w, h, dst, out_w, out_h, true, err);
}

/* ------------------------------------------------- torchvision Resize + crop */

int fdd_shorter_side_dims(int w, int h, int size, int *out_w, int *out_h) {
    if (w < 1 || h < 1 || size < 1) return -1;
    int shrt = w <= h ? w : h, lng = w <= h ? h : w;
    /* Python: int(size * long / short); the product is exact in double. */
    double nl = (double)((int64_t)size * lng) / (double)shrt;
    if (nl >= 2147483648.0) return -1;
    int new_long = (int)nl;
    if (new_long < 1) return -1;
    *out_w = w <= h ? size : new_long;
    *out_h = w <= h ? new_long : size;
    return 0;
}

fdd_status fdd_resize_shorter_side(const fdd_image *src, int size, fdd_image *dst,
                                   fdd_error *err) {
    fdd_status s;
    if (dst) memset(dst, 0, sizeof *dst);
    if (!dst) return fdd_fail(err, FDD_E_ARG, "resize: no destination image");
    if ((s = check_image(src, err))) return s;
    int ow, oh;
    if (fdd_shorter_side_dims(src->width, src->height, size, &ow, &oh))
        return fdd_fail(err, FDD_E_ARG, "resize: cannot resize %dx%d to shorter side %d",
                        src->width, src->height, size);
    return fdd_resize_pillow_u8(src, ow, oh, FDD_PIL_BICUBIC, dst, err);
}

/* Python's int(round(d / 2.0)) for d >= 0: halves go to the even neighbour. */
static int half_even(int d) {
    int q = d / 2;
    return (d & 1) && (q & 1) ? q + 1 : q;
}

fdd_status fdd_center_crop(const fdd_image *src, int crop_w, int crop_h, fdd_image *dst,
                           fdd_error *err) {
    fdd_status s;
    if (dst) memset(dst, 0, sizeof *dst);
    if (!dst) return fdd_fail(err, FDD_E_ARG, "crop: no destination image");
    if ((s = check_image(src, err))) return s;
    if (crop_w < 1 || crop_h < 1)
        return fdd_fail(err, FDD_E_ARG, "crop: size %dx%d must be at least 1x1", crop_w, crop_h);
    const int w = src->width, h = src->height;
    /* Padding first (only along a side the crop exceeds), then the crop
     * offsets within the padded image: x_src = x_out + left - pad_left. */
    int pad_l = crop_w > w ? (crop_w - w) / 2 : 0, pad_t = crop_h > h ? (crop_h - h) / 2 : 0;
    int pw = crop_w > w ? crop_w : w, ph = crop_h > h ? crop_h : h;
    int left = half_even(pw - crop_w), top = half_even(ph - crop_h);
    if ((s = fdd_image_alloc(dst, (uint64_t)crop_w, (uint64_t)crop_h, "crop", err))) return s;
    int x0 = left - pad_l, y0 = top - pad_t; /* source of output (0, 0) */
    int xa = x0 < 0 ? -x0 : 0, xb = x0 + crop_w > w ? w - x0 : crop_w; /* copied columns */
    for (int y = 0; y < crop_h; y++) {
        uint8_t *o = dst->rgb + (size_t)y * crop_w * 3;
        int sy = y0 + y;
        if (sy < 0 || sy >= h || xb <= xa) {
            memset(o, 0, (size_t)crop_w * 3);
            continue;
        }
        memset(o, 0, (size_t)xa * 3);
        memcpy(o + (size_t)xa * 3, src->rgb + ((size_t)sy * w + (size_t)(x0 + xa)) * 3,
               (size_t)(xb - xa) * 3);
        memset(o + (size_t)xb * 3, 0, (size_t)(crop_w - xb) * 3);
    }
    return FDD_OK;
}

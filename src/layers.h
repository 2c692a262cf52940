/* layers.h — CNN layers for the convolutional feature extractors
 * (src/inception.c): convolution with folded BatchNorm as an implicit GEMM,
 * pooling, global average pool, fully connected.
 *
 * Every output element is one fixed sequence of float operations that
 * depends only on its own image: convolutions are one fmaf chain over
 * (cin, ky, kx) in that order (the foundation GEMM's canonical arithmetic)
 * then + bias, ReLU; pools are sequential over the window rows then columns.
 * So results are the same bits for any ISA, thread count and batch. */
#ifndef FDD_LAYERS_H
#define FDD_LAYERS_H

#include "internal.h"

/* A batch of feature maps: element (channel c, image i, row y, column x) is
 * d[c*cs + i*ns + y*w + x].  Channel-major with the batch inside
 * (cs = n*h*w, ns = h*w) is what layers write; inputs may also be image-major
 * (the caller's n x 3 x H x W array: cs = h*w, ns = c*h*w). */
typedef struct fdd_fmap {
    float *d;
    size_t c, n, h, w;
    size_t cs, ns;
} fdd_fmap;

/* Channel-major map of c channels, n images of h x w at d. */
static inline fdd_fmap fdd_fmap_cm(float *d, size_t c, size_t n, size_t h, size_t w) {
    fdd_fmap m = {d, c, n, h, w, n * h * w, h * w};
    return m;
}
/* Channels [off, off+c) of a channel-major map (a branch's slot in a
 * concatenation). */
static inline fdd_fmap fdd_fmap_slice(const fdd_fmap *m, size_t off, size_t c) {
    fdd_fmap s = *m;
    s.d = m->d ? m->d + off * m->cs : NULL;
    s.c = c;
    return s;
}

/* Convolution (groups 1, no dilation) with its BatchNorm folded in:
 * y = relu(sum w'·x + b'), w' = w·s, b' = beta − mean·s,
 * s = gamma / sqrt(var + eps), all in float32. */
typedef struct fdd_conv {
    size_t cin, cout, kh, kw, sh, sw, ph, pw;
    float *w;       /* cout x (cin*kh*kw), row-major, owned */
    float *b;       /* cout, owned */
} fdd_conv;

fdd_status fdd_conv_init_bn(fdd_conv *cv, size_t cin, size_t cout, size_t kh, size_t kw,
                            size_t sh, size_t sw, size_t ph, size_t pw, const float *w,
                            const float *gamma, const float *beta, const float *mean,
                            const float *var, float eps, fdd_error *err);
void fdd_conv_free(fdd_conv *cv);
/* Output size along one axis (0 if the input is too small). */
size_t fdd_conv_out(size_t in, size_t k, size_t s, size_t p);
/* out (channel-major, cout channels, the output size) = conv(in), ReLU if
 * relu.  out may be a slice of a larger map. */
fdd_status fdd_conv_run(fdd_ctx *ctx, const fdd_conv *cv, const fdd_fmap *in, const fdd_fmap *out,
                        bool relu, fdd_error *err);

/* k x k pools with stride s and padding p, out channel-major of the output
 * size.  Max: padded positions never win.  Average: count_include_pad=False
 * (the sum over in-bounds elements divided by their number). */
void fdd_maxpool(fdd_ctx *ctx, const fdd_fmap *in, const fdd_fmap *out, size_t k, size_t s,
                 size_t p);
void fdd_avgpool(fdd_ctx *ctx, const fdd_fmap *in, const fdd_fmap *out, size_t k, size_t s,
                 size_t p);
/* feat[i*c + ch] = mean over the h*w positions of image i, channel ch. */
void fdd_global_avgpool(fdd_ctx *ctx, const fdd_fmap *in, float *feat);

/* y[i][o] = sum_k x[i][k]·W[o][k] + b[o] for n rows of x (n x in), W is
 * out x in (PyTorch Linear), y is n x out. */
fdd_status fdd_linear(fdd_ctx *ctx, const float *x, size_t n, size_t in, const float *W,
                      const float *b, size_t out, float *y, fdd_error *err);

#endif

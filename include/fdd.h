/* fdd.h — the one public header of fdd, a pure-C, bit-reproducible engine for
 * Fréchet distances (FID, FDD, ...) between image sets.
 *
 * Conventions
 *  - Every fallible call returns fdd_status and, when it fails, fills the
 *    caller's fdd_error with a one-line message that names the file (or
 *    object) and the reason.  The library never calls exit() or abort() on
 *    bad input.
 *  - Handles are opaque; each *_open / *_create has its *_close / *_free.
 *  - Results are bit-identical for a given binary whatever the thread count,
 *    ISA path, batch size or input order (docs/reproducibility.md).
 */
#ifndef FDD_H
#define FDD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FDD_VERSION "0.1.0"

/* ------------------------------------------------------------------ errors */

typedef enum fdd_status {
    FDD_OK = 0,
    FDD_E_IO,          /* cannot open / read / write a file */
    FDD_E_FORMAT,      /* malformed or truncated input */
    FDD_E_UNSUPPORTED, /* valid input that fdd does not handle */
    FDD_E_NOMEM,       /* allocation failed or a size limit was hit */
    FDD_E_ARG,         /* bad argument from the caller */
    FDD_E_MISMATCH,    /* inputs that cannot be combined (dims, profiles) */
    FDD_E_NUMERIC      /* a numerical method did not converge */
} fdd_status;

typedef struct fdd_error {
    fdd_status status;
    char msg[512];
} fdd_error;

const char *fdd_status_name(fdd_status s);

/* ----------------------------------------------------------------- runtime */

typedef enum fdd_isa {
    FDD_ISA_AUTO = -1,   /* FDD_ISA environment variable, else the best available */
    FDD_ISA_SCALAR = 0,  /* portable C with fmaf: the oracle for the others */
    FDD_ISA_AVX2,        /* x86-64 AVX2 + FMA */
    FDD_ISA_AVX512,      /* x86-64 AVX-512F */
    FDD_ISA_NEON,        /* AArch64 Advanced SIMD */
    FDD_ISA_COUNT
} fdd_isa;

const char *fdd_isa_name(fdd_isa isa);
/* Parses "scalar", "avx2", "avx512", "neon", "auto".  Returns FDD_ISA_COUNT if unknown. */
fdd_isa fdd_isa_parse(const char *name);
/* Whether this binary has the kernel and this CPU/OS can run it. */
int fdd_isa_available(fdd_isa isa);
fdd_isa fdd_isa_best(void);

/* A context carries the thread pool and the ISA choice.  nthreads <= 0 means
 * FDD_THREADS from the environment, else the number of online CPUs. */
typedef struct fdd_ctx fdd_ctx;
fdd_status fdd_ctx_create(fdd_ctx **out, int nthreads, fdd_isa isa, fdd_error *err);
void fdd_ctx_free(fdd_ctx *ctx);
int fdd_ctx_threads(const fdd_ctx *ctx);
fdd_isa fdd_ctx_isa(const fdd_ctx *ctx);

/* ------------------------------------------------------------------- GEMM */

/* C[MxN] = op(A)[MxK] · op(B)[KxN], row-major with leading dimensions.
 * op(A) = A (transA = 0, A is MxK) or Aᵀ (transA = 1, A is KxM); same for B.
 * Each C element is the sequential chain acc = fmaf(a[i][k], b[k][j], acc)
 * for k = 0..K-1 starting from acc = 0, on every ISA path and thread count. */
void fdd_gemm(fdd_ctx *ctx, int transA, int transB, size_t M, size_t N, size_t K,
              const float *A, size_t lda, const float *B, size_t ldb,
              float *C, size_t ldc);

/* ------------------------------------------------ deterministic math (f32) */

/* The project's own transcendental functions: same bits on every platform. */
float fdd_expf(float x);
float fdd_erff(float x);
float fdd_tanhf(float x);

/* ------------------------------------------------------------------ SHA-256 */

typedef struct fdd_sha256 {
    uint32_t h[8];
    uint64_t nbytes;
    uint8_t buf[64];
    size_t nbuf;
} fdd_sha256;

void fdd_sha256_init(fdd_sha256 *s);
void fdd_sha256_update(fdd_sha256 *s, const void *data, size_t len);
void fdd_sha256_final(fdd_sha256 *s, uint8_t out[32]);
void fdd_sha256_hex(const uint8_t digest[32], char hex[65]);

/* ------------------------------------------------ weight files (.fdw) */

/* docs/format.md describes the file.  Opening maps it read-only, validates
 * every structural field and checks the SHA-256 of everything after the
 * header; any inconsistency is an FDD_E_FORMAT naming the file and tensor. */
typedef struct fdd_weights fdd_weights;

typedef enum fdd_dtype { FDD_F32 = 0, FDD_F16 = 1, FDD_BF16 = 2, FDD_DTYPE_COUNT } fdd_dtype;

#define FDD_MAX_DIMS 8

typedef struct fdd_tensor_info {
    const char *name;            /* NUL-terminated, owned by the weights handle */
    fdd_dtype dtype;
    int ndim;
    uint64_t dims[FDD_MAX_DIMS];
    uint64_t numel;
    uint64_t offset;             /* absolute file offset, 64-byte aligned */
    uint64_t nbytes;
    const void *data;            /* in the mapping */
} fdd_tensor_info;

fdd_status fdd_weights_open(const char *path, fdd_weights **out, fdd_error *err);
void fdd_weights_close(fdd_weights *w);
const char *fdd_weights_path(const fdd_weights *w);
/* Metadata value for key, or NULL. */
const char *fdd_weights_meta(const fdd_weights *w, const char *key);
size_t fdd_weights_meta_count(const fdd_weights *w);
void fdd_weights_meta_at(const fdd_weights *w, size_t i, const char **key, const char **value);
size_t fdd_weights_count(const fdd_weights *w);
const fdd_tensor_info *fdd_weights_at(const fdd_weights *w, size_t i);
const fdd_tensor_info *fdd_weights_find(const fdd_weights *w, const char *name);
/* Hex SHA-256 of the checked region (the file's identity for provenance). */
const char *fdd_weights_sha256(const fdd_weights *w);

/* Expected tensor list of an architecture: binds every spec to float32 data
 * (converting f16/bf16 into an owned copy) and fails on a missing tensor, a
 * wrong shape, or a tensor in the file that no spec names. */
typedef struct fdd_tensor_spec {
    const char *name;
    int ndim;
    uint64_t dims[FDD_MAX_DIMS];
    const float **dest;          /* receives the float32 data */
} fdd_tensor_spec;

fdd_status fdd_weights_bind(fdd_weights *w, const fdd_tensor_spec *specs, size_t n,
                            fdd_error *err);

/* ---------------------------------------- statistics and Fréchet distance */
/* (section owned by src/stats.c, src/npy.c, src/frechet.c) */

/* Exact, mergeable feature statistics: bit-identical results under any
 * order of images, any split into shards merged in any order, and any
 * thread count (docs/reproducibility.md, "Statistics"). */
typedef struct fdd_stats fdd_stats;

/* dim in 1..16384.  A new accumulator has count 0 and empty identity. */
fdd_status fdd_stats_create(fdd_stats **out, size_t dim, fdd_error *err);
void fdd_stats_free(fdd_stats *s);
/* Adds n feature rows (n x dim, row-major float32).  Every value must be
 * finite with |x| < 2^22; otherwise nothing is added and FDD_E_NUMERIC names
 * the image and dimension.  ctx may be NULL (one thread). */
fdd_status fdd_stats_add(fdd_stats *s, fdd_ctx *ctx, const float *feats, size_t n, fdd_error *err);
/* into += other.  Both need exact sums, the same dim, model and profile. */
fdd_status fdd_stats_merge(fdd_stats *into, const fdd_stats *other, fdd_error *err);
/* mu (dim) and sigma (dim x dim, unbiased N-1 like numpy.cov), each value
 * the correctly rounded exact result; either pointer may be NULL.  Stats
 * loaded from a foreign file return their stored values. */
fdd_status fdd_stats_moments(const fdd_stats *s, fdd_ctx *ctx, double *mu, double *sigma,
                             fdd_error *err);
size_t fdd_stats_dim(const fdd_stats *s);
uint64_t fdd_stats_count(const fdd_stats *s);       /* 0 if unknown (foreign file) */
int fdd_stats_is_exact(const fdd_stats *s);         /* has the exact sums */
/* Identity strings recorded in files and checked by merge ("" if unset). */
fdd_status fdd_stats_set_identity(fdd_stats *s, const char *model, const char *profile,
                                  fdd_error *err);
const char *fdd_stats_model(const fdd_stats *s);
const char *fdd_stats_profile(const fdd_stats *s);
/* Writes an .npz (atomically) with float64 `mu`, `sigma` (readable by numpy,
 * pytorch-fid, clean-fid), the identity as `fdd_model`/`fdd_profile`, and
 * with with_sums also the exact sums for merging: `fdd_format` [version,
 * fraction bits], `fdd_count`, `fdd_sum` (dim x 2 int64 limbs), `fdd_sumsq`
 * (dim(dim+1)/2 x 3 int64 limbs). */
fdd_status fdd_stats_save(const fdd_stats *s, fdd_ctx *ctx, const char *path, int with_sums,
                          fdd_error *err);
/* Reads an fdd file (exact if it has the sums) or a plain mu/sigma .npz from
 * TTUR, pytorch-fid or clean-fid (float32/float64, stored or deflated). */
fdd_status fdd_stats_load(const char *path, fdd_stats **out, fdd_error *err);

/* Features as .npy: float32 [n, dim], C order.  Reading also accepts
 * float64 (converted) and Fortran order; *feats is malloc'ed (free()). */
fdd_status fdd_features_write_npy(const char *path, const float *feats, size_t n, size_t dim,
                                  fdd_error *err);
fdd_status fdd_features_read_npy(const char *path, float **feats, size_t *n, size_t *dim,
                                 fdd_error *err);

/* Fréchet distance  fd = mean_term + trace1 + trace2 - 2·sqrt_trace  with
 * mean_term = |mu1-mu2|^2, trace_k = tr(S_k), sqrt_trace = tr((S1·S2)^(1/2)),
 * in float64 by pivoted Cholesky factors and one-sided Jacobi singular values
 * (docs/reproducibility.md, "Fréchet distance").  Only the lower triangles of
 * s1, s2 (d x d, row-major) are read.  Same bits with any thread count. */
typedef struct fdd_fd_result {
    double fd, mean_term, trace1, trace2, sqrt_trace;
    int rank1, rank2;        /* numerical ranks of the Cholesky factors */
    /* How the iteration went (docs/reproducibility.md): Jacobi sweeps,
     * LQ steps of the preconditioner after the first LQ, passes over the
     * hot pairs of the Gram matrix after a failed stopping test, and tasks
     * left unrotated because their cosines were far below the previous
     * sweep's. */
    int sweeps, lq_steps, gram_passes, skipped_tasks;
} fdd_fd_result;

fdd_status fdd_frechet(fdd_ctx *ctx, size_t d, const double *mu1, const double *s1,
                       const double *mu2, const double *s2, fdd_fd_result *out, fdd_error *err);
/* The same from the features themselves (n1 x d and n2 x d, float32): the
 * trace term comes from the singular values of the product of the centred
 * feature matrices, which avoids the square root of rounding noise when
 * n < d.  Covariances use N-1 as numpy.cov. */
fdd_status fdd_frechet_features(fdd_ctx *ctx, size_t d, const float *x1, size_t n1,
                                const float *x2, size_t n2, fdd_fd_result *out, fdd_error *err);

/* ------------------------------------------------------------------ images */

/* Decoded image, always 8-bit RGB interleaved (Pillow's convert("RGB")). */
typedef struct fdd_image {
    int width, height;
    uint8_t *rgb;                /* width*height*3 bytes, malloc'ed */
} fdd_image;

/* Pillow's decompression-bomb error threshold: 2 x 89,478,485 pixels. */
#define FDD_IMAGE_MAX_PIXELS (2ull * 89478485ull)

/* Decodes any supported format, recognised by its bytes.  name is used in
 * error messages only (typically the path). */
fdd_status fdd_image_decode(const uint8_t *data, size_t len, const char *name,
                            fdd_image *out, fdd_error *err);
fdd_status fdd_image_load(const char *path, fdd_image *out, fdd_error *err);

/* Decode flags.  Default (0) is Image.open(f).convert("RGB"): the EXIF
 * orientation is ignored, except that TIFF files, as in Pillow, are
 * transposed by their Orientation tag on load.  FDD_DECODE_EXIF_TRANSPOSE
 * gives ImageOps.exif_transpose(Image.open(f)).convert("RGB") (so a TIFF
 * with an Orientation tag is transposed twice, as in Pillow 9.4); broken
 * EXIF data is ignored, never an error. */
#define FDD_DECODE_EXIF_TRANSPOSE 1u
fdd_status fdd_image_decode_ex(const uint8_t *data, size_t len, const char *name, unsigned flags,
                               fdd_image *out, fdd_error *err);
fdd_status fdd_image_load_ex(const char *path, unsigned flags, fdd_image *out, fdd_error *err);
/* The EXIF Orientation (1..8) of a JPEG, PNG, WebP or TIFF file as Pillow's
 * Image.getexif() reads it; 0 if absent or unusable (src/exif.c). */
int fdd_image_exif_orientation(const uint8_t *data, size_t len);
/* Transposes img in place as exif_transpose does for orientation 2..8
 * (other values: no change). */
fdd_status fdd_image_orient(fdd_image *img, int orientation, fdd_error *err);
void fdd_image_free(fdd_image *img);


/* ------------------------------------------------------------------ models */

/* A feature extractor: a .fdw file bound to its architecture (src/model.c
 * dispatches on the `arch` metadata key: inception-fid, vit, ...). */
typedef struct fdd_model fdd_model;

fdd_status fdd_model_open(const char *path, fdd_model **out, fdd_error *err);
void fdd_model_close(fdd_model *m);
const char *fdd_model_arch(const fdd_model *m);
const fdd_weights *fdd_model_weights(const fdd_model *m);
/* Length of one feature vector (2048 for the FID Inception). */
size_t fdd_model_dim(const fdd_model *m);
/* Number of logits (1008 for the FID Inception), 0 if the model has none. */
size_t fdd_model_logits(const fdd_model *m);

/* Preprocessing: the exact float tensor (3 x H x W, channel-major) the
 * network receives.  Profiles (docs/profiles.md): "pytorch-fid", "tf1",
 * "clean" for Inception; "dino", "dgm-eval" for ViTs.  NULL = the model's
 * default (metadata `preprocess.profile`). */
typedef struct fdd_preprocess {
    char profile[32];
    int resize_w, resize_h;      /* resize target; resize_h = 0: shorter side -> resize_w */
    int crop_w, crop_h;          /* centre crop after the resize, 0 = none */
    int out_w, out_h;            /* network input size */
    float mean[3], std[3];       /* out = (x/255 - mean) / std for the ViT profiles */
} fdd_preprocess;

fdd_status fdd_model_preprocess_config(const fdd_model *m, const char *profile,
                                       fdd_preprocess *cfg, fdd_error *err);
fdd_status fdd_preprocess_image(const fdd_preprocess *cfg, const fdd_image *img, float *out,
                                fdd_error *err);

/* Runs n preprocessed inputs (each 3 x out_h x out_w floats, back to back)
 * and writes n x dim features and, if logits != NULL, n x fdd_model_logits
 * logits.  Every output row depends only on its own input: the same bits
 * whatever n, the batch neighbours, the thread count or the ISA. */
fdd_status fdd_model_forward(fdd_model *m, fdd_ctx *ctx, const fdd_preprocess *cfg,
                             const float *inputs, size_t n, float *features, float *logits,
                             fdd_error *err);
/* Which feature a ViT outputs (src/vit.c): "cls" (default: CLS token after
 * the final norm), "mean" (mean of the normed patch tokens), "cls+mean"
 * ([cls, mean], 2·D), "head-hidden" / "head-hidden-linear" (DINO training
 * checkpoints: the head's 2nd hidden layer after / before its GELU).
 * fdd_model_dim changes accordingly.  "default" is accepted by every model. */
fdd_status fdd_model_set_feature(fdd_model *m, const char *name, fdd_error *err);

#ifdef __cplusplus
}
#endif
#endif

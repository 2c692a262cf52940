/* image.h — private interface of the image pipeline: the per-format decoders
 * behind fdd_image_decode (src/image.c), inflate (shared by PNG, TIFF and
 * .npz), and the reference resizes.  Specs: ../shared/specs/imaging.md. */
#ifndef FDD_IMAGE_H
#define FDD_IMAGE_H

#include "internal.h"

/* ---------------------------------------------------------------- decoders */

/* Every decoder: data/len is the whole file, name is for messages only.  On
 * success out->rgb is a malloc'ed width*height*3 buffer holding exactly what
 * Pillow's Image.open(...).convert("RGB") gives.  On failure out is zeroed
 * and err says "<name>: <reason>".  Never reads outside data[0..len). */
fdd_status fdd_decode_png(const uint8_t *data, size_t len, const char *name, fdd_image *out,
                          fdd_error *err);
fdd_status fdd_decode_jpeg(const uint8_t *data, size_t len, const char *name, fdd_image *out,
                           fdd_error *err);
/* Test hook: 0 makes jpeg.c use only its scalar code (the oracle its SIMD
 * paths are tested against), 1 (the default) restores SIMD.  Not thread-safe. */
void fdd_jpeg_set_simd(int on);
/* src/formats.c: PNM (plain P1-P3 and binary P4-P6, 8/16-bit), BMP (raw,
 * bitfields, RLE4/RLE8), GIF (first frame). */
fdd_status fdd_decode_pnm(const uint8_t *data, size_t len, const char *name, fdd_image *out,
                          fdd_error *err);
fdd_status fdd_decode_bmp(const uint8_t *data, size_t len, const char *name, fdd_image *out,
                          fdd_error *err);
/* src/tiff.c: TIFF (1/2/4/8/16-bit gray and palette, 8/16-bit RGB/RGBA;
 * strips or tiles; none, PackBits, LZW, Deflate; predictor 2; FillOrder 2),
 * turned by its Orientation tag as Pillow's TIFF loader does. */
fdd_status fdd_decode_tiff(const uint8_t *data, size_t len, const char *name, fdd_image *out,
                           fdd_error *err);
fdd_status fdd_decode_gif(const uint8_t *data, size_t len, const char *name, fdd_image *out,
                          fdd_error *err);
/* src/webp.c: RIFF WebP -- simple lossy (VP8 via fdd_vp8_decode), lossless
 * (VP8L), extended (VP8X; animations give their first frame). */
fdd_status fdd_decode_webp(const uint8_t *data, size_t len, const char *name, fdd_image *out,
                           fdd_error *err);

/* src/vp8.c: the payload of a WebP `VP8 ` chunk (a VP8 keyframe) decoded into
 * rgb (caller's, width*height*3) as libwebp's default path gives it: fancy
 * chroma upsampling and 14-bit fixed-point YUV->RGB.  Fails when the frame
 * header's size is not width x height. */
fdd_status fdd_vp8_decode(const uint8_t *vp8, size_t len, int width, int height, const char *name,
                          uint8_t *rgb, fdd_error *err);

/* Checks width x height against Pillow's bomb limit and allocates the RGB
 * buffer; the one place decoders get pixel memory from. */
fdd_status fdd_image_alloc(fdd_image *img, uint64_t width, uint64_t height, const char *name,
                           fdd_error *err);

/* ------------------------------------------------------- zlib / inflate */

uint32_t fdd_crc32(uint32_t crc, const uint8_t *p, size_t n);     /* start with crc = 0 */
uint32_t fdd_adler32(uint32_t adler, const uint8_t *p, size_t n); /* start with adler = 1 */

/* Raw DEFLATE (RFC 1951) into out[0..cap).  Fails (FDD_E_FORMAT) on corrupt
 * data and when the output would exceed cap; *consumed and *produced report
 * the bytes read and written.  name is for messages. */
fdd_status fdd_inflate(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                       size_t *consumed, size_t *produced, const char *name, fdd_error *err);
/* zlib stream (RFC 1950): header, DEFLATE data, Adler-32 checked. */
fdd_status fdd_zlib_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                               size_t *produced, const char *name, fdd_error *err);
/* zlib stream whose expected output size is known, decoded the way zlib
 * inside Pillow's PNG reader sees it: succeeds once cap bytes are produced;
 * after that only the input zlib would already hold is examined --
 * window(ctx, bytes used) bytes from the start of in, or all of it if window
 * is NULL -- where corrupt data or a wrong Adler-32 is still an error.  Fails
 * if the stream ends or breaks before cap bytes.  *consumed: bytes used. */
fdd_status fdd_zlib_decompress_prefix(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                                      size_t (*window)(void *ctx, size_t used), void *ctx,
                                      size_t *consumed, const char *name, fdd_error *err);

/* --------------------------------------------------------------- resizes */

/* Pillow's resampling filters (Image.Resampling values in the comments).
 * NEAREST is not a convolution in Pillow and is not provided. */
typedef enum fdd_pil_filter {
    FDD_PIL_BOX,      /* 4 */
    FDD_PIL_BILINEAR, /* 2 */
    FDD_PIL_HAMMING,  /* 5 */
    FDD_PIL_BICUBIC,  /* 3 */
    FDD_PIL_LANCZOS,  /* 1 */
    FDD_PIL_FILTER_COUNT
} fdd_pil_filter;

/* Pillow 9.4 Image.resize((out_w, out_h), filter) on an 8-bit RGB image
 * (imaging.md §5): support scaled when downsampling, 22-bit fixed-point
 * coefficients, horizontal pass (uint8 temp) then vertical, an axis of
 * unchanged size is not filtered.  Bit-exact.  Horizontal-first holds for
 * every shape in 9.4 (checked on 2x3000 -> 299x299); imaging.md §5.1's
 * "vertical first when height > 100 x width" is not in 9.4's Image.resize
 * and is not implemented.  dst is allocated (free it with
 * fdd_image_free); on failure it is zeroed.  Sizes must be >= 1 and the
 * output within FDD_IMAGE_MAX_PIXELS, else FDD_E_ARG. */
fdd_status fdd_resize_pillow_u8(const fdd_image *src, int out_w, int out_h, fdd_pil_filter filter,
                                fdd_image *dst, fdd_error *err);
/* The same with BICUBIC. */
fdd_status fdd_resize_pillow_bicubic_u8(const fdd_image *src, int out_w, int out_h,
                                        fdd_image *dst, fdd_error *err);

/* Pillow resize of one float channel (mode "F", imaging.md §5.5): double
 * weights and accumulation, float32 between the passes and at the output.
 * src is w x h, dst (caller's, out_w*out_h floats) may not overlap src.
 * Bit-exact with Pillow on IEEE hosts without FMA contraction.  BOX,
 * BILINEAR and BICUBIC use + - * / only, so they are the same on every
 * platform; LANCZOS and HAMMING call libm sin/cos (as Pillow does), so they
 * follow the platform's libm. */
fdd_status fdd_resize_pillow_f32(const float *src, int w, int h, float *dst, int out_w,
                                 int out_h, fdd_pil_filter filter, fdd_error *err);
fdd_status fdd_resize_pillow_bicubic_f32(const float *src, int w, int h, float *dst,
                                         int out_w, int out_h, fdd_error *err);

/* clean-fid "clean" mode (imaging.md §6.1): each channel of src as a mode
 * "F" image resized BICUBIC to out_w x out_h, then clipped to [0, 255].
 * dst (caller's) receives out_w*out_h*3 floats, interleaved HWC like
 * clean-fid's array.  Input already at the size is copied. */
fdd_status fdd_resize_cleanfid(const fdd_image *src, int out_w, int out_h, float *dst,
                               fdd_error *err);

/* torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
 * antialias=False) on one float plane, as PyTorch 1.13 CPU (imaging.md §7):
 * float32 scale, source coordinate in double, float32 weights, sums as
 * fma(x0, w0, x1 * w1) along W then H.  That is bit-exact with torch 1.13's
 * CPU (AVX2) kernel for inputs of >= 2 channels, as pytorch-fid and clean-fid
 * legacy_pytorch call it (tests/test_resize.c reports the ulp figure); its
 * 1-channel kernel rounds differently, within 2 ulp on [0,1] data. */
fdd_status fdd_resize_torch_bilinear(const float *src, int w, int h, float *dst, int out_w,
                                     int out_h, fdd_error *err);

/* TensorFlow-1 tf.image.resize_bilinear with align_corners=False and no
 * half-pixel centres, in torch-fidelity's float32 op order: scale =
 * float(in/out), s = float(d)*scale, lo = trunc(s), hi = min(lo+1, in-1),
 * f = s - lo; lerp a + (b - a)*f along x, then along y. */
fdd_status fdd_resize_tf1_bilinear(const float *src, int w, int h, float *dst, int out_w,
                                   int out_h, fdd_error *err);

/* torchvision 0.14 Resize(size) on a PIL image: the shorter side becomes
 * `size`, the longer one int(size * long / short) (imaging.md §8), then Pillow
 * BICUBIC (antialias is implicit for PIL input); an image already at that
 * size is copied.  DINO passes interpolation=3 (BICUBIC). */
fdd_status fdd_resize_shorter_side(const fdd_image *src, int size, fdd_image *dst, fdd_error *err);
/* The (width, height) that Resize(size) gives for a w x h image; 0 on
 * success, -1 if the result does not fit an int or a size is < 1. */
int fdd_shorter_side_dims(int w, int h, int size, int *out_w, int *out_h);
/* torchvision CenterCrop((crop_h, crop_w)): offsets int(round((H - crop)/2.0))
 * with round-half-even; a crop larger than the image pads with zeros first
 * (left (cw - W)//2, right (cw - W + 1)//2, same for top/bottom). */
fdd_status fdd_center_crop(const fdd_image *src, int crop_w, int crop_h, fdd_image *dst,
                           fdd_error *err);

#endif

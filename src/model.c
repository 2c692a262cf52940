/* model.c — fdd_model: opens a .fdw, dispatches to its architecture, and
 * turns decoded images into the exact float tensors the networks receive
 * (the preprocessing profiles of pytorch-fid, torch-fidelity/TTUR, clean-fid,
 * DINO and dgm-eval). */
#include "model.h"
#include "image.h"

#include <errno.h>
#include <stdlib.h>

static const fdd_arch *const ARCHS[] = {&fdd_arch_inception, &fdd_arch_vit};

fdd_status fdd_meta_int(const fdd_weights *w, const char *key, long lo, long hi, long *out,
                        fdd_error *err) {
    const char *v = fdd_weights_meta(w, key);
    if (!v) return fdd_fail(err, FDD_E_FORMAT, "%s: metadata key '%s' is missing", fdd_weights_path(w), key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return fdd_fail(err, FDD_E_FORMAT, "%s: metadata %s=%s is not an integer in [%ld, %ld]",
                        fdd_weights_path(w), key, v, lo, hi);
    *out = x;
    return FDD_OK;
}

fdd_status fdd_meta_float(const fdd_weights *w, const char *key, double *out, fdd_error *err) {
    const char *v = fdd_weights_meta(w, key);
    if (!v) return fdd_fail(err, FDD_E_FORMAT, "%s: metadata key '%s' is missing", fdd_weights_path(w), key);
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || x != x)
        return fdd_fail(err, FDD_E_FORMAT, "%s: metadata %s=%s is not a number", fdd_weights_path(w), key, v);
    *out = x;
    return FDD_OK;
}

fdd_status fdd_model_open(const char *path, fdd_model **out, fdd_error *err) {
    *out = NULL;
    fdd_weights *w;
    fdd_status s = fdd_weights_open(path, &w, err);
    if (s) return s;
    const char *arch = fdd_weights_meta(w, "arch");
    const fdd_arch *a = NULL;
    for (size_t i = 0; arch && i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (!strcmp(ARCHS[i]->name, arch)) a = ARCHS[i];
    if (!a) {
        s = fdd_fail(err, FDD_E_UNSUPPORTED, "%s: unknown architecture '%s' (this fdd runs inception-fid, vit)",
                     path, arch ? arch : "(no arch key)");
        fdd_weights_close(w);
        return s;
    }
    fdd_model *m = fdd_calloc(1, sizeof *m);
    if (!m) {
        fdd_weights_close(w);
        return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory", path);
    }
    m->w = w;
    m->arch = a;
    if ((s = a->open(m, err))) {
        fdd_model_close(m);
        return s;
    }
    *out = m;
    return FDD_OK;
}

void fdd_model_close(fdd_model *m) {
    if (!m) return;
    if (m->impl && m->arch->close) m->arch->close(m);
    fdd_weights_close(m->w);
    fdd_free(m);
}

const char *fdd_model_arch(const fdd_model *m) { return m->arch->name; }
const fdd_weights *fdd_model_weights(const fdd_model *m) { return m->w; }
size_t fdd_model_dim(const fdd_model *m) { return m->dim; }
size_t fdd_model_logits(const fdd_model *m) { return m->nlogits; }

fdd_status fdd_model_set_feature(fdd_model *m, const char *name, fdd_error *err) {
    if (!m || !name) return fdd_fail(err, FDD_E_ARG, "fdd_model_set_feature: NULL argument");
    if (m->arch->set_feature) return m->arch->set_feature(m, name, err);
    if (!strcmp(name, "default")) return FDD_OK;
    return fdd_fail(err, FDD_E_UNSUPPORTED, "%s: arch %s has only its default feature, not '%s'",
                    fdd_weights_path(m->w), m->arch->name, name);
}

fdd_status fdd_model_preprocess_config(const fdd_model *m, const char *profile, fdd_preprocess *cfg,
                                       fdd_error *err) {
    memset(cfg, 0, sizeof *cfg);
    return m->arch->preprocess_config(m, profile, cfg, err);
}

fdd_status fdd_model_forward(fdd_model *m, fdd_ctx *ctx, const fdd_preprocess *cfg, const float *inputs,
                             size_t n, float *features, float *logits, fdd_error *err) {
    if (n == 0) return FDD_OK;
    return m->arch->forward(m, ctx, cfg, inputs, n, features, logits, err);
}

/* ----------------------------------------------------------- preprocessing */

/* Planar float channels of an RGB8 image, optionally divided by 255 (a
 * division, so x/255 is correctly rounded like torchvision's ToTensor). */
static float *planes(const fdd_image *img, bool div255) {
    size_t hw = (size_t)img->width * (size_t)img->height;
    float *p = fdd_malloc(hw * 3 * sizeof(float));
    if (!p) return NULL;
    for (size_t i = 0; i < hw; i++)
        for (int c = 0; c < 3; c++) {
            float v = (float)img->rgb[3 * i + (size_t)c];
            p[(size_t)c * hw + i] = div255 ? v / 255.0f : v;
        }
    return p;
}

fdd_status fdd_preprocess_image(const fdd_preprocess *cfg, const fdd_image *img, float *out, fdd_error *err) {
    const int ow = cfg->out_w, oh = cfg->out_h;
    const size_t ohw = (size_t)ow * (size_t)oh;
    fdd_status s = FDD_OK;
    if (ow <= 0 || oh <= 0) return fdd_fail(err, FDD_E_ARG, "preprocess: bad output size %dx%d", ow, oh);

    if (!strcmp(cfg->profile, "pytorch-fid") || !strcmp(cfg->profile, "tf1")) {
        bool torch = cfg->profile[0] == 'p';
        /* pytorch-fid: ToTensor (x/255), bilinear (half-pixel centres), 2x-1.
         * tf1: values 0..255, TF1 bilinear (no half-pixel centres), (x-128)/128. */
        float *src = planes(img, torch);
        if (!src) return fdd_fail(err, FDD_E_NOMEM, "preprocess: out of memory");
        size_t hw = (size_t)img->width * (size_t)img->height;
        for (int c = 0; c < 3 && !s; c++)
            s = torch ? fdd_resize_torch_bilinear(src + (size_t)c * hw, img->width, img->height, out + (size_t)c * ohw, ow, oh, err)
                      : fdd_resize_tf1_bilinear(src + (size_t)c * hw, img->width, img->height, out + (size_t)c * ohw, ow, oh, err);
        fdd_free(src);
        if (s) return s;
        for (size_t i = 0; i < 3 * ohw; i++)
            out[i] = torch ? 2.0f * out[i] - 1.0f : (out[i] - 128.0f) / 128.0f;
        return FDD_OK;
    }
    if (!strcmp(cfg->profile, "clean")) {
        /* clean-fid: per-channel float bicubic to 299, clipped, (x-128)/128. */
        float *hwc = fdd_malloc(ohw * 3 * sizeof(float));
        if (!hwc) return fdd_fail(err, FDD_E_NOMEM, "preprocess: out of memory");
        s = fdd_resize_cleanfid(img, ow, oh, hwc, err);
        if (!s)
            for (size_t i = 0; i < ohw; i++)
                for (int c = 0; c < 3; c++) out[(size_t)c * ohw + i] = (hwc[3 * i + (size_t)c] - 128.0f) / 128.0f;
        fdd_free(hwc);
        return s;
    }
    /* ViT profiles: Pillow bicubic on uint8 (shorter side when resize_h == 0,
     * else both sides), centre crop, ToTensor, Normalize(mean, std). */
    fdd_image resized = {0}, cropped = {0};
    const fdd_image *cur = img;
    if (cfg->resize_w > 0) {
        s = cfg->resize_h > 0 ? fdd_resize_pillow_bicubic_u8(img, cfg->resize_w, cfg->resize_h, &resized, err)
                              : fdd_resize_shorter_side(img, cfg->resize_w, &resized, err);
        if (s) return s;
        cur = &resized;
    }
    if (cfg->crop_w > 0) {
        s = fdd_center_crop(cur, cfg->crop_w, cfg->crop_h > 0 ? cfg->crop_h : cfg->crop_w, &cropped, err);
        if (s) { fdd_image_free(&resized); return s; }
        cur = &cropped;
    }
    if (cur->width != ow || cur->height != oh) {
        s = fdd_fail(err, FDD_E_ARG, "preprocess: profile %s gives %dx%d, the network input is %dx%d",
                     cfg->profile, cur->width, cur->height, ow, oh);
    } else {
        for (size_t i = 0; i < ohw; i++)
            for (int c = 0; c < 3; c++) {
                float x = (float)cur->rgb[3 * i + (size_t)c] / 255.0f;
                out[(size_t)c * ohw + i] = (x - cfg->mean[c]) / cfg->std[c];
            }
    }
    fdd_image_free(&resized);
    fdd_image_free(&cropped);
    return s;
}

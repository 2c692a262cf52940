/* model.h — how an architecture plugs into fdd_model (src/model.c).
 * Each architecture file (inception.c, vit.c) defines one fdd_arch. */
#ifndef FDD_MODEL_H
#define FDD_MODEL_H

#include "internal.h"

typedef struct fdd_arch {
    const char *name;   /* the `arch` metadata value */
    /* Reads hyperparameters from the metadata, binds every tensor
     * (fdd_weights_bind), prepares derived weights (e.g. folded BatchNorm),
     * sets m->dim, m->nlogits, m->impl. */
    fdd_status (*open)(fdd_model *m, fdd_error *err);
    void (*close)(fdd_model *m);
    /* The architecture's default preprocessing for a profile name (NULL =
     * its default profile). */
    fdd_status (*preprocess_config)(const fdd_model *m, const char *profile, fdd_preprocess *cfg,
                                    fdd_error *err);
    /* Forward pass over n inputs; one arena per call, sized up front. */
    fdd_status (*forward)(fdd_model *m, fdd_ctx *ctx, const fdd_preprocess *cfg,
                          const float *inputs, size_t n, float *features, float *logits,
                          fdd_error *err);
    /* Selects the output feature by name (sets m->dim); NULL if the
     * architecture has only its default feature. */
    fdd_status (*set_feature)(fdd_model *m, const char *name, fdd_error *err);
} fdd_arch;

struct fdd_model {
    fdd_weights *w;
    const fdd_arch *arch;
    void *impl;              /* the architecture's own state */
    size_t dim, nlogits;
};

extern const fdd_arch fdd_arch_inception;
extern const fdd_arch fdd_arch_vit;

/* Metadata helpers for architectures: integer/float values with errors that
 * name the file and key. */
fdd_status fdd_meta_int(const fdd_weights *w, const char *key, long lo, long hi, long *out,
                        fdd_error *err);
fdd_status fdd_meta_float(const fdd_weights *w, const char *key, double *out, fdd_error *err);

#endif

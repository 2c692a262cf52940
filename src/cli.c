/* cli.c — the fdd command: a thin layer over include/fdd.h.
 *
 *   fdd compare A B [--model M[,M2...]] [--profile P] [--feature F] [--threads N] [--batch N] [--json] [--force] [--skip-bad] [--exif-transpose]
 *   fdd stats DIR -o OUT.npz [--model M] [--profile P]
 *   fdd merge PART.npz... -o OUT.npz
 *   fdd features DIR -o OUT.npy [--model M] [--profile P]
 *   fdd info FILE.fdw | fdd isa | fdd decode IMAGE -o OUT.ppm | fdd preprocess IMAGE -o OUT.npy --model M
 *
 * Errors: one line on stderr "fdd: <file>: <reason>", exit 1 (2 for usage). */
#include "fdd.h"
#include "internal.h"
#include "stats.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_MODELS 8

typedef struct opts {
    const char *models;      /* comma-separated */
    const char *profile;
    const char *feature;     /* ViT output: cls, mean, cls+mean, head-hidden, ... */
    const char *resize, *crop;   /* ViT preprocessing overrides: N (shorter side) or WxH; N or WxH */
    const char *out;
    int threads, batch;
    bool json, force, skip_bad;
    bool exif_transpose;     /* --exif-transpose: ImageOps.exif_transpose before preprocessing */
    const char *pos[64];
    int npos;
} opts;

static int fail_msg(const fdd_error *err) {
    fprintf(stderr, "fdd: %s\n", err->msg);
    return 1;
}

static int usage(void) {
    fputs("usage:\n"
          "  fdd compare A B [--model M[,M...]] [--profile P] [--threads N] [--batch N] [--json] [--force] [--skip-bad]\n"
          "      A, B: image folders (searched recursively) or .npz statistics\n"
          "  fdd stats DIR -o OUT.npz [--model M] [--profile P]   exact, mergeable statistics\n"
          "  fdd merge PART.npz... -o OUT.npz                     bit-identical to one run over all images\n"
          "  fdd features DIR -o OUT.npy [--model M] [--profile P]\n"
          "  fdd info FILE.fdw          metadata and tensor table of a weight file\n"
          "  fdd isa                    the SIMD paths this CPU can run\n"
          "  fdd decode IMAGE -o OUT.ppm\n"
          "  fdd preprocess IMAGE -o OUT.npy [--model M] [--profile P]\n"
          "models: a .fdw path or a name in weights/ (inception -> weights/inception-fid.fdw); default inception.\n"
          "profiles: pytorch-fid (default for inception), tf1, clean; dino, dgm-eval for ViTs.\n"
          "--feature (ViTs): cls (default), mean, cls+mean, head-hidden, head-hidden-linear.\n"
          "--resize N|WxH, --crop N|WxH (ViTs): override the profile's Pillow bicubic resize and centre crop.\n"
          "--exif-transpose (compare, stats, features, decode, preprocess): turn images by their EXIF\n"
          "    orientation, as PIL.ImageOps.exif_transpose; default: as Image.open (not turned, except TIFF).\n"
          "environment: FDD_THREADS, FDD_ISA=scalar|avx2|avx512|neon, FDD_WEIGHTS (weights folder).\n",
          stderr);
    return 2;
}

static int parse_opts(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->batch = 16;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) o->json = true;
        else if (!strcmp(a, "--force")) o->force = true;
        else if (!strcmp(a, "--skip-bad")) o->skip_bad = true;
        else if (!strcmp(a, "--exif-transpose")) o->exif_transpose = true;
        else if ((!strcmp(a, "--model") || !strcmp(a, "-m")) && next) o->models = argv[++i];
        else if (!strcmp(a, "--profile") && next) o->profile = argv[++i];
        else if (!strcmp(a, "--feature") && next) o->feature = argv[++i];
        else if (!strcmp(a, "--resize") && next) o->resize = argv[++i];
        else if (!strcmp(a, "--crop") && next) o->crop = argv[++i];
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && next) o->out = argv[++i];
        else if (!strcmp(a, "--threads") && next) o->threads = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && next) o->batch = atoi(argv[++i]);
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "fdd: unknown option %s\n", a); return -1; }
        else if (o->npos < 64) o->pos[o->npos++] = a;
    }
    if (o->batch < 1 || o->batch > 4096) { fprintf(stderr, "fdd: --batch must be 1..4096\n"); return -1; }
    if (o->threads < 0 || o->threads > 1024) { fprintf(stderr, "fdd: --threads must be 1..1024\n"); return -1; }
    return 0;
}

/* ----------------------------------------------------------------- models */

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}
static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static fdd_status resolve_model(const char *name, char *path, size_t cap, fdd_error *err) {
    size_t n = strlen(name);
    if (strchr(name, '/') || (n > 4 && !strcmp(name + n - 4, ".fdw"))) {
        snprintf(path, cap, "%s", name);
        if (is_file(path)) return FDD_OK;
        return fdd_fail(err, FDD_E_IO, "%s: weight file not found (see weights/README.md to get and convert it)", path);
    }
    const char *dir = getenv("FDD_WEIGHTS");
    if (!dir || !*dir) dir = "weights";
    const char *file = !strcmp(name, "inception") ? "inception-fid" : name;
    snprintf(path, cap, "%s/%s.fdw", dir, file);
    if (is_file(path)) return FDD_OK;
    return fdd_fail(err, FDD_E_IO,
                    "model '%s': %s not found; the weights are not shipped: get them with `weights/fetch %s` on a "
                    "machine with internet, or convert the checkpoint with convert/fdd-convert (weights/README.md)",
                    name, path, file);
}

/* "N" or "WxH", each 1..8192; h = 0 for a single number. */
static bool parse_size(const char *s, int *w, int *h) {
    char *end;
    long a = strtol(s, &end, 10), b = 0;
    if (*end == 'x') b = strtol(end + 1, &end, 10);
    if (*end || a < 1 || a > 8192 || b < 0 || b > 8192 || (end[-1] == 'x')) return false;
    *w = (int)a;
    *h = (int)b;
    return true;
}

/* --resize / --crop replace the profile's Pillow resize and centre crop
 * (ViT profiles; the Inception profiles always feed 299x299). */
static fdd_status apply_overrides(const opts *o, const fdd_model *m, fdd_preprocess *c, fdd_error *err) {
    if (!o->resize && !o->crop) return FDD_OK;
    if (strcmp(fdd_model_arch(m), "vit"))
        return fdd_fail(err, FDD_E_ARG, "--resize/--crop apply to ViT models; profile %s fixes its input size",
                        c->profile);
    int w, h;
    if (o->resize) {
        if (!parse_size(o->resize, &w, &h)) return fdd_fail(err, FDD_E_ARG, "--resize %s: want N or WxH", o->resize);
        c->resize_w = w;
        c->resize_h = h;
        c->crop_w = c->crop_h = 0;
        c->out_w = w;
        c->out_h = h;
    }
    if (o->crop) {
        if (!parse_size(o->crop, &w, &h)) return fdd_fail(err, FDD_E_ARG, "--crop %s: want N or WxH", o->crop);
        c->crop_w = w;
        c->crop_h = h ? h : w;
        c->out_w = c->crop_w;
        c->out_h = c->crop_h;
    } else if (c->resize_h == 0) {
        return fdd_fail(err, FDD_E_ARG, "--resize %s keeps the aspect ratio, so the input size varies: add --crop",
                        o->resize);
    }
    snprintf(c->profile, sizeof c->profile, "r%dx%d-c%dx%d", c->resize_w, c->resize_h, c->crop_w, c->crop_h);
    return FDD_OK;
}

typedef struct model_run {
    fdd_model *m;
    char path[1024];
    fdd_preprocess cfg;
    char identity[160];      /* arch:sha256 prefix, recorded in statistics */
} model_run;

static void model_runs_close(model_run *r, int n) {
    for (int i = 0; i < n; i++) fdd_model_close(r[i].m);
}

static fdd_status open_models(const opts *o, model_run *runs, int *nruns, fdd_error *err) {
    char list[1024];
    snprintf(list, sizeof list, "%s", o->models ? o->models : "inception");
    *nruns = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (*nruns == MAX_MODELS) return fdd_fail(err, FDD_E_ARG, "at most %d models at once", MAX_MODELS);
        model_run *r = &runs[*nruns];
        memset(r, 0, sizeof *r);
        fdd_status s = resolve_model(tok, r->path, sizeof r->path, err);
        if (!s) s = fdd_model_open(r->path, &r->m, err);
        if (!s && o->feature) s = fdd_model_set_feature(r->m, o->feature, err);
        if (!s) s = fdd_model_preprocess_config(r->m, o->profile, &r->cfg, err);
        if (!s) s = apply_overrides(o, r->m, &r->cfg, err);
        if (s) { model_runs_close(runs, *nruns + (r->m != NULL)); return s; }
        snprintf(r->identity, sizeof r->identity, "%s:%.16s%s%s", fdd_model_arch(r->m),
                 fdd_weights_sha256(fdd_model_weights(r->m)), o->feature ? ":" : "",
                 o->feature ? o->feature : "");
        (*nruns)++;
    }
    return FDD_OK;
}

/* ------------------------------------------------------------ image lists */

typedef struct path_list {
    char **p;
    size_t n, cap;
} path_list;

static void paths_free(path_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->p[i]);
    free(l->p);
    memset(l, 0, sizeof *l);
}

static bool image_ext(const char *name) {
    static const char *ext[] = {"bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp"};
    const char *dot = strrchr(name, '.');
    if (!dot) return false;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        const char *a = dot + 1, *b = ext[i];
        while (*a && *b && (*a | 0x20) == *b) a++, b++;
        if (!*a && !*b) return true;
    }
    return false;
}

static fdd_status walk(const char *dir, path_list *l, int depth, fdd_error *err) {
    if (depth > 64) return fdd_fail(err, FDD_E_IO, "%s: folders nested too deeply", dir);
    DIR *d = opendir(dir);
    if (!d) return fdd_fail(err, FDD_E_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    fdd_status s = FDD_OK;
    while (!s && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;   /* ., .., hidden files */
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (!p) { s = fdd_fail(err, FDD_E_NOMEM, "out of memory"); break; }
        snprintf(p, n, "%s/%s", dir, e->d_name);
        if (is_dir(p)) {
            s = walk(p, l, depth + 1, err);
            free(p);
        } else if (image_ext(e->d_name) && is_file(p)) {
            if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 256;
                char **q = realloc(l->p, cap * sizeof *q);
                if (!q) { free(p); s = fdd_fail(err, FDD_E_NOMEM, "out of memory"); break; }
                l->p = q;
                l->cap = cap;
            }
            l->p[l->n++] = p;
        } else {
            free(p);
        }
    }
    closedir(d);
    return s;
}

/* Path order as Python's sorted(Path...): component by component, so '/'
 * sorts before every other byte. */
static int path_cmp(const void *a, const void *b) {
    const unsigned char *x = *(const unsigned char *const *)a, *y = *(const unsigned char *const *)b;
    for (;; x++, y++) {
        int cx = *x == '/' ? 1 : (*x ? *x + 1 : 0), cy = *y == '/' ? 1 : (*y ? *y + 1 : 0);
        if (cx != cy || !cx) return cx - cy;
    }
}

static fdd_status list_images(const char *dir, path_list *l, fdd_error *err) {
    memset(l, 0, sizeof *l);
    fdd_status s = walk(dir, l, 0, err);
    if (s) { paths_free(l); return s; }
    if (l->n == 0) { paths_free(l); return fdd_fail(err, FDD_E_IO, "%s: no images found (extensions: bmp jpg jpeg pgm png ppm tif tiff webp)", dir); }
    qsort(l->p, l->n, sizeof *l->p, path_cmp);
    return FDD_OK;
}

/* ---------------------------------------------------------- the pipeline */

typedef struct pass {
    model_run *runs;
    int nruns;
    fdd_ctx *ctx;
    bool skip_bad;
    unsigned load_flags;  /* fdd_image_load_ex flags */
    /* batch work, filled by decode tasks */
    const char **paths;
    float *inputs[MAX_MODELS];
    fdd_status *st;
    fdd_error *errs;
} pass;

static unsigned load_flags(const opts *o) {
    return o->exif_transpose ? FDD_DECODE_EXIF_TRANSPOSE : 0u;
}

static void decode_task(void *arg, size_t i, int thread) {
    (void)thread;
    pass *p = arg;
    fdd_image img;
    p->st[i] = fdd_image_load_ex(p->paths[i], p->load_flags, &img, &p->errs[i]);
    for (int r = 0; r < p->nruns && !p->st[i]; r++) {
        const fdd_preprocess *c = &p->runs[r].cfg;
        p->st[i] = fdd_preprocess_image(c, &img, p->inputs[r] + i * 3 * (size_t)c->out_w * (size_t)c->out_h,
                                        &p->errs[i]);
        if (p->st[i]) {   /* name the image in preprocessing errors too */
            char tmp[2 * sizeof p->errs[i].msg];
            snprintf(tmp, sizeof tmp, "%s: %s", p->paths[i], p->errs[i].msg);
            snprintf(p->errs[i].msg, sizeof p->errs[i].msg, "%.*s", (int)sizeof p->errs[i].msg - 1, tmp);
        }
    }
    fdd_image_free(&img);   /* zeroed when loading failed */
}

typedef struct progress { double t0, last; size_t total; bool on; } progress;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void progress_show(progress *pr, size_t done, const char *label, bool final) {
    if (!pr->on) return;
    double t = now_s();
    if (!final && t - pr->last < 0.5) return;
    pr->last = t;
    double rate = done / (t - pr->t0 + 1e-9);
    double eta = rate > 0 ? (double)(pr->total - done) / rate : 0;
    fprintf(stderr, "\r%s: %zu/%zu images, %.1f images/s, ETA %.0fs   %s", label, done, pr->total, rate, eta,
            final ? "\n" : "");
}

/* Runs every model over the images; feeds stats[r] and, if feats, stores the
 * features row by row in path order (rows of skipped images are dropped). */
static fdd_status run_images(const opts *o, pass *p, const path_list *l, fdd_stats **stats, float **feats,
                             size_t *nkept, const char *label, fdd_error *err) {
    size_t B = (size_t)o->batch;
    fdd_status s = FDD_OK;
    float *out[MAX_MODELS] = {0};
    p->st = calloc(B, sizeof *p->st);
    p->errs = calloc(B, sizeof *p->errs);
    p->paths = calloc(B, sizeof *p->paths);
    if (!p->st || !p->errs || !p->paths) s = fdd_fail(err, FDD_E_NOMEM, "out of memory");
    for (int r = 0; r < p->nruns && !s; r++) {
        const fdd_preprocess *c = &p->runs[r].cfg;
        p->inputs[r] = fdd_aligned_alloc(B * 3 * (size_t)c->out_w * (size_t)c->out_h * sizeof(float));
        out[r] = fdd_aligned_alloc(B * fdd_model_dim(p->runs[r].m) * sizeof(float));
        if (!p->inputs[r] || !out[r]) s = fdd_fail(err, FDD_E_NOMEM, "out of memory for a batch of %zu", B);
        if (feats && !s) {
            feats[r] = malloc(l->n * fdd_model_dim(p->runs[r].m) * sizeof(float));
            if (!feats[r]) s = fdd_fail(err, FDD_E_NOMEM, "out of memory for %zu features", l->n);
        }
    }
    progress pr = {now_s(), 0, l->n, isatty(2) != 0};
    size_t kept = 0;
    for (size_t b0 = 0; b0 < l->n && !s; b0 += B) {
        size_t nb = l->n - b0 < B ? l->n - b0 : B;
        for (size_t i = 0; i < nb; i++) p->paths[i] = l->p[b0 + i];
        fdd_parallel(p->ctx, decode_task, p, nb);
        /* compact: drop bad images (or stop at the first one) */
        size_t good = 0;
        for (size_t i = 0; i < nb; i++) {
            if (p->st[i]) {
                if (!p->skip_bad) { *err = p->errs[i]; s = p->st[i]; break; }
                fprintf(stderr, "fdd: skipped: %s\n", p->errs[i].msg);
                continue;
            }
            if (good != i)
                for (int r = 0; r < p->nruns; r++) {
                    size_t sz = 3 * (size_t)p->runs[r].cfg.out_w * (size_t)p->runs[r].cfg.out_h;
                    memmove(p->inputs[r] + good * sz, p->inputs[r] + i * sz, sz * sizeof(float));
                }
            good++;
        }
        for (int r = 0; r < p->nruns && !s && good; r++) {
            size_t d = fdd_model_dim(p->runs[r].m);
            s = fdd_model_forward(p->runs[r].m, p->ctx, &p->runs[r].cfg, p->inputs[r], good, out[r], NULL, err);
            if (!s && stats) s = fdd_stats_add(stats[r], p->ctx, out[r], good, err);
            if (!s && feats) memcpy(feats[r] + kept * d, out[r], good * d * sizeof(float));
        }
        kept += good;
        progress_show(&pr, b0 + nb, label, false);
    }
    if (!s) progress_show(&pr, l->n, label, true);
    if (!s && kept == 0) s = fdd_fail(err, FDD_E_IO, "%s: every image was skipped", label);
    for (int r = 0; r < p->nruns; r++) { fdd_aligned_free(p->inputs[r]); fdd_aligned_free(out[r]); }
    free(p->st); free(p->errs); free(p->paths);
    if (nkept) *nkept = kept;
    return s;
}

/* The profile recorded in statistics: the preprocessing profile, plus
 * "+exif-transpose" when images were turned, so that statistics of turned
 * and unturned images are not merged or compared without --force. */
static fdd_status stats_for_runs(const opts *o, model_run *runs, int nruns, fdd_stats **st, fdd_error *err) {
    for (int r = 0; r < nruns; r++) {
        char prof[64];
        snprintf(prof, sizeof prof, "%s%s", runs[r].cfg.profile, o->exif_transpose ? "+exif-transpose" : "");
        fdd_status s = fdd_stats_create(&st[r], fdd_model_dim(runs[r].m), err);
        if (!s) s = fdd_stats_set_identity(st[r], runs[r].identity, prof, err);
        if (s) return s;
    }
    return FDD_OK;
}

static fdd_status stats_of_dir(const opts *o, fdd_ctx *ctx, model_run *runs, int nruns, const char *dir,
                               fdd_stats **st, size_t *count, fdd_error *err) {
    path_list l;
    fdd_status s = list_images(dir, &l, err);
    if (s) return s;
    s = stats_for_runs(o, runs, nruns, st, err);
    pass p = {.runs = runs, .nruns = nruns, .ctx = ctx, .skip_bad = o->skip_bad, .load_flags = load_flags(o)};
    if (!s) s = run_images(o, &p, &l, st, NULL, count, dir, err);
    paths_free(&l);
    return s;
}

/* ---------------------------------------------------------------- commands */

static fdd_status make_ctx(const opts *o, fdd_ctx **ctx, fdd_error *err) {
    return fdd_ctx_create(ctx, o->threads, FDD_ISA_AUTO, err);
}

static int cmd_compare(const opts *o) {
    if (o->npos != 2) return usage();
    fdd_error err;
    fdd_ctx *ctx = NULL;
    model_run runs[MAX_MODELS];
    int nruns = 0;
    bool npz[2] = {is_file(o->pos[0]), is_file(o->pos[1])};
    fdd_stats *st[2][MAX_MODELS] = {{0}};
    size_t count[2] = {0, 0};
    int rc = 1;
    fdd_status s = make_ctx(o, &ctx, &err);
    if (!s && (!npz[0] || !npz[1] || o->models)) s = open_models(o, runs, &nruns, &err);
    if (!s && npz[0] && npz[1] && !o->models) nruns = 0;
    int nspaces = nruns ? nruns : 1;
    for (int side = 0; side < 2 && !s; side++) {
        if (npz[side]) {
            if (nspaces > 1) { s = fdd_fail(&err, FDD_E_ARG, "%s: statistics files hold one feature space; give one --model", o->pos[side]); break; }
            s = fdd_stats_load(o->pos[side], &st[side][0], &err);
            if (!s) count[side] = fdd_stats_count(st[side][0]);
        } else if (is_dir(o->pos[side])) {
            s = stats_of_dir(o, ctx, runs, nruns, o->pos[side], st[side], &count[side], &err);
        } else {
            s = fdd_fail(&err, FDD_E_IO, "%s: neither a folder of images nor a statistics file", o->pos[side]);
        }
    }
    if (o->json && !s) printf("[");
    for (int r = 0; r < nspaces && !s; r++) {
        fdd_stats *a = st[0][r], *b = st[1][r];
        if (fdd_stats_dim(a) != fdd_stats_dim(b)) {
            s = fdd_fail(&err, FDD_E_MISMATCH, "%s and %s have %zu- and %zu-dimensional features", o->pos[0], o->pos[1],
                         fdd_stats_dim(a), fdd_stats_dim(b));
            break;
        }
        const char *ma = fdd_stats_model(a), *mb = fdd_stats_model(b), *pa = fdd_stats_profile(a), *pb = fdd_stats_profile(b);
        bool known = *ma && *mb;
        if (known && (strcmp(ma, mb) || strcmp(pa, pb)) && !o->force) {
            s = fdd_fail(&err, FDD_E_MISMATCH, "%s (model %s, profile %s) and %s (model %s, profile %s) were made "
                         "differently; their distance is meaningless (use --force to compare anyway)",
                         o->pos[0], ma, pa, o->pos[1], mb, pb);
            break;
        }
        if (!known && !o->json)
            fprintf(stderr, "fdd: note: a statistics file records no model/profile (pytorch-fid or clean-fid file); "
                            "make sure both sides used the same network and preprocessing\n");
        size_t d = fdd_stats_dim(a);
        double *mu1 = malloc(d * sizeof(double)), *mu2 = malloc(d * sizeof(double));
        double *s1 = malloc(d * d * sizeof(double)), *s2 = malloc(d * d * sizeof(double));
        fdd_fd_result res;
        if (!mu1 || !mu2 || !s1 || !s2) s = fdd_fail(&err, FDD_E_NOMEM, "out of memory (d = %zu)", d);
        if (!s) s = fdd_stats_moments(a, ctx, mu1, s1, &err);
        if (!s) s = fdd_stats_moments(b, ctx, mu2, s2, &err);
        if (!s) s = fdd_frechet(ctx, d, mu1, s1, mu2, s2, &res, &err);
        free(mu1); free(mu2); free(s1); free(s2);
        if (s) break;
        const char *model = r < nruns ? fdd_model_arch(runs[r].m) : (*ma ? ma : "unknown");
        const char *profile = r < nruns ? runs[r].cfg.profile : (*pa ? pa : "unknown");
        const char *label = !strncmp(model, "inception", 9) ? "FID" : "FD";
        double trace = res.trace1 + res.trace2 - 2 * res.sqrt_trace;
        if (o->json) {
            printf("%s{\"metric\": \"%s\", \"fd\": %.17g, \"fd_hex\": \"%a\", \"mean_term\": %.17g, \"trace_term\": %.17g, "
                   "\"trace1\": %.17g, \"trace2\": %.17g, \"sqrt_trace\": %.17g, \"model\": \"%s\", \"weights_sha256\": \"%s\", "
                   "\"profile\": \"%s\", \"exif_transpose\": %s, \"n1\": %llu, \"n2\": %llu, \"dim\": %zu, \"fdd_version\": \"%s\", "
                   "\"isa\": \"%s\", \"threads\": %d, \"jacobi_sweeps\": %d, \"gram_passes\": %d}",
                   r ? ", " : "", label, res.fd, res.fd, res.mean_term, trace, res.trace1, res.trace2, res.sqrt_trace,
                   model, r < nruns ? fdd_weights_sha256(fdd_model_weights(runs[r].m)) : "", profile,
                   o->exif_transpose ? "true" : "false", (unsigned long long)count[0], (unsigned long long)count[1], d, FDD_VERSION,
                   fdd_isa_name(fdd_ctx_isa(ctx)), fdd_ctx_threads(ctx), res.sweeps, res.gram_passes);
        } else {
            printf("%s %.6f  (%s, profile %s; %llu vs %llu images)\n", label, res.fd, model, profile,
                   (unsigned long long)count[0], (unsigned long long)count[1]);
            printf("  mean term  |mu1-mu2|^2             %.9g\n", res.mean_term);
            printf("  trace term tr S1 + tr S2 - 2 tr sqrt %.9g\n", trace);
        }
    }
    if (o->json && !s) printf("]\n");
    if (!s) rc = 0; else fail_msg(&err);
    for (int side = 0; side < 2; side++)
        for (int r = 0; r < MAX_MODELS; r++) fdd_stats_free(st[side][r]);
    model_runs_close(runs, nruns);
    fdd_ctx_free(ctx);
    return rc;
}

static int cmd_stats(const opts *o) {
    if (o->npos != 1 || !o->out) return usage();
    fdd_error err;
    fdd_ctx *ctx = NULL;
    model_run runs[MAX_MODELS];
    int nruns = 0;
    fdd_stats *st[MAX_MODELS] = {0};
    size_t count = 0;
    fdd_status s = make_ctx(o, &ctx, &err);
    if (!s) s = open_models(o, runs, &nruns, &err);
    if (!s && nruns != 1) s = fdd_fail(&err, FDD_E_ARG, "fdd stats takes one model");
    if (!s) s = stats_of_dir(o, ctx, runs, nruns, o->pos[0], st, &count, &err);
    if (!s) s = fdd_stats_save(st[0], ctx, o->out, 1, &err);
    if (!s) fprintf(stderr, "fdd: %s: statistics of %zu images (%s, profile %s)\n", o->out, count,
                    runs[0].identity, runs[0].cfg.profile);
    fdd_stats_free(st[0]);
    model_runs_close(runs, nruns);
    fdd_ctx_free(ctx);
    return s ? fail_msg(&err) : 0;
}

static int cmd_merge(const opts *o) {
    if (o->npos < 1 || !o->out) return usage();
    fdd_error err;
    fdd_stats *acc = NULL;
    fdd_status s = fdd_stats_load(o->pos[0], &acc, &err);
    for (int i = 1; i < o->npos && !s; i++) {
        fdd_stats *part;
        s = fdd_stats_load(o->pos[i], &part, &err);
        if (!s) s = fdd_stats_merge(acc, part, &err);
        if (!s) fdd_stats_free(part);
    }
    if (!s) s = fdd_stats_save(acc, NULL, o->out, 1, &err);
    if (!s) fprintf(stderr, "fdd: %s: merged %d files, %llu images\n", o->out, o->npos,
                    (unsigned long long)fdd_stats_count(acc));
    fdd_stats_free(acc);
    return s ? fail_msg(&err) : 0;
}

static int cmd_features(const opts *o) {
    if (o->npos != 1 || !o->out) return usage();
    fdd_error err;
    fdd_ctx *ctx = NULL;
    model_run runs[MAX_MODELS];
    int nruns = 0;
    path_list l = {0};
    float *feats[MAX_MODELS] = {0};
    size_t kept = 0;
    fdd_status s = make_ctx(o, &ctx, &err);
    if (!s) s = open_models(o, runs, &nruns, &err);
    if (!s && nruns != 1) s = fdd_fail(&err, FDD_E_ARG, "fdd features takes one model");
    if (!s) s = list_images(o->pos[0], &l, &err);
    pass p = {.runs = runs, .nruns = nruns, .ctx = ctx, .skip_bad = false, .load_flags = load_flags(o)};
    if (!s) s = run_images(o, &p, &l, NULL, feats, &kept, o->pos[0], &err);
    if (!s) s = fdd_features_write_npy(o->out, feats[0], kept, fdd_model_dim(runs[0].m), &err);
    if (!s) {   /* sidecar: one path per row */
        char side[1100];
        snprintf(side, sizeof side, "%s.paths.txt", o->out);
        fdd_outfile of;
        s = fdd_outfile_open(&of, side, &err);
        for (size_t i = 0; i < l.n && !s; i++) {
            s = fdd_outfile_write(&of, l.p[i], strlen(l.p[i]), &err);
            if (!s) s = fdd_outfile_write(&of, "\n", 1, &err);
        }
        if (!s) s = fdd_outfile_commit(&of, &err); else if (of.fp) fdd_outfile_abort(&of);
    }
    free(feats[0]);
    paths_free(&l);
    model_runs_close(runs, nruns);
    fdd_ctx_free(ctx);
    return s ? fail_msg(&err) : 0;
}

static int cmd_info(const opts *o) {
    if (o->npos != 1) return usage();
    fdd_error err;
    fdd_weights *w;
    if (fdd_weights_open(o->pos[0], &w, &err)) return fail_msg(&err);
    static const char *dt[] = {"f32", "f16", "bf16"};
    printf("file     %s\nsha256   %s\n\nmetadata\n", o->pos[0], fdd_weights_sha256(w));
    for (size_t i = 0; i < fdd_weights_meta_count(w); i++) {
        const char *k, *v;
        fdd_weights_meta_at(w, i, &k, &v);
        printf("  %-28s %s\n", k, v);
    }
    uint64_t total = 0;
    printf("\ntensors (%zu)\n", fdd_weights_count(w));
    for (size_t i = 0; i < fdd_weights_count(w); i++) {
        const fdd_tensor_info *t = fdd_weights_at(w, i);
        char shape[160];
        int k = snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < t->ndim && k < (int)sizeof shape; d++)
            k += snprintf(shape + k, sizeof shape - (size_t)k, d ? ", %llu" : "%llu", (unsigned long long)t->dims[d]);
        if (k < (int)sizeof shape) snprintf(shape + k, sizeof shape - (size_t)k, "]");
        printf("  %-48s %-5s %-22s @%llu\n", t->name, dt[t->dtype], shape, (unsigned long long)t->offset);
        total += t->numel;
    }
    printf("\n%llu parameters\n", (unsigned long long)total);
    fdd_weights_close(w);
    return 0;
}

static int cmd_isa(void) {
    for (int i = 0; i < FDD_ISA_COUNT; i++)
        printf("%-7s %s\n", fdd_isa_name((fdd_isa)i), fdd_isa_available((fdd_isa)i) ? "available" : "-");
    printf("selected: %s (override with FDD_ISA)\n", fdd_isa_name(fdd_isa_best()));
    return 0;
}

static int cmd_decode(const opts *o) {
    if (o->npos != 1 || !o->out) return usage();
    fdd_error err;
    fdd_image img;
    if (fdd_image_load_ex(o->pos[0], load_flags(o), &img, &err)) return fail_msg(&err);
    fdd_outfile of;
    char hdr[64];
    int n = snprintf(hdr, sizeof hdr, "P6\n%d %d\n255\n", img.width, img.height);
    fdd_status s = fdd_outfile_open(&of, o->out, &err);
    if (!s) s = fdd_outfile_write(&of, hdr, (size_t)n, &err);
    if (!s) s = fdd_outfile_write(&of, img.rgb, (size_t)img.width * (size_t)img.height * 3, &err);
    if (!s) s = fdd_outfile_commit(&of, &err); else if (of.fp) fdd_outfile_abort(&of);
    fdd_image_free(&img);
    return s ? fail_msg(&err) : 0;
}

static int cmd_preprocess(const opts *o) {
    if (o->npos != 1 || !o->out) return usage();
    fdd_error err;
    model_run runs[MAX_MODELS];
    int nruns = 0;
    fdd_image img = {0};
    float *x = NULL;
    fdd_status s = open_models(o, runs, &nruns, &err);
    if (!s && nruns != 1) s = fdd_fail(&err, FDD_E_ARG, "fdd preprocess takes one model");
    if (!s) s = fdd_image_load_ex(o->pos[0], load_flags(o), &img, &err);
    if (!s) {
        const fdd_preprocess *c = &runs[0].cfg;
        x = malloc(3 * (size_t)c->out_w * (size_t)c->out_h * sizeof(float));
        if (!x) s = fdd_fail(&err, FDD_E_NOMEM, "out of memory");
        if (!s) s = fdd_preprocess_image(c, &img, x, &err);
        fdd_npy_out a = {"x", FDD_NPY_F4, 3, {3, (uint64_t)c->out_h, (uint64_t)c->out_w}, x};
        if (!s) s = fdd_npy_write(o->out, &a, &err);
        if (!s) fprintf(stderr, "fdd: %s: 3x%dx%d input, profile %s\n", o->out, c->out_h, c->out_w, c->profile);
    }
    free(x);
    fdd_image_free(&img);
    model_runs_close(runs, nruns);
    return s ? fail_msg(&err) : 0;
}

int main(int argc, char **argv) {
#ifdef __GLIBC__
    /* Keep freed image and activation buffers in the heap instead of
     * returning them to the kernel: each fresh page is a page fault, tens of
     * microseconds on some VMs, and every image allocates megabytes.  glibc's
     * mallopt, declared here (its header is not C/POSIX): M_TRIM_THRESHOLD
     * is -1, M_MMAP_THRESHOLD -3 in every glibc. */
    extern int mallopt(int param, int value);
    mallopt(-3, 32 << 20);
    mallopt(-1, 256 << 20);
#endif
    if (argc < 2) return usage();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) { printf("fdd %s\n", FDD_VERSION); return 0; }
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) { usage(); return 0; }
    opts o;
    if (parse_opts(argc - 2, argv + 2, &o)) return 2;
    if (!strcmp(cmd, "compare")) return cmd_compare(&o);
    if (!strcmp(cmd, "stats")) return cmd_stats(&o);
    if (!strcmp(cmd, "merge")) return cmd_merge(&o);
    if (!strcmp(cmd, "features")) return cmd_features(&o);
    if (!strcmp(cmd, "info")) return cmd_info(&o);
    if (!strcmp(cmd, "isa")) return cmd_isa();
    if (!strcmp(cmd, "decode")) return cmd_decode(&o);
    if (!strcmp(cmd, "preprocess")) return cmd_preprocess(&o);
    fprintf(stderr, "fdd: unknown command '%s'\n", cmd);
    return usage();
}

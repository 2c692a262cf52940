/* bench_decode.c — decode speed of fdd_image_decode against libjpeg-turbo
 * (djpeg, and its TurboJPEG API in one process) and Pillow 9.4, side by side
 * on 8 photos of 1024x1024 per format: baseline JPEG 4:2:0 q90, progressive
 * JPEG, 4:4:4 JPEG and PNG.  The set is built into DIR (default
 * build/bench-decode) by bench/make_decode_set.py when DIR/SET_OK is missing.
 *
 * Everything runs on one thread with the files already in memory, except
 * djpeg, which can only be run once per file: its time is the wall time of
 * fork+exec+wait of `djpeg -outfile /dev/null FILE`, minus the same for a
 * 16x16 JPEG (process start-up) measured in the same round.  The machine is
 * shared: each round runs every contender once per format, in an order that
 * rotates from round to round, and the figures are medians over rounds (one
 * extra warm-up round is discarded).  Ratios are their time / fdd's time
 * (> 1: fdd is faster).  The tables go to stdout and DIR/result.txt.
 *
 * Two tables: allocators as installed, then a "warm allocator" where glibc
 * keeps freed memory for everyone (mallopt here, GLIBC_TUNABLES in the
 * Python co-process).  They differ because each decode's multi-megabyte
 * buffers are fresh mmaps by default, and first-touch page faults are very
 * expensive on some VMs (bench/README.md).
 *
 *   build/bench/bench_decode [DIR]          FDD_BENCH_REPS rounds (default 7)
 *   build/bench/bench_decode --tile-ppm OUT.ppm A B C D
 *        (used by make_decode_set.py without Pillow: 2x2 tile of four
 *        images resized to 512x512 with fdd's Pillow-exact LANCZOS)
 *   build/bench/bench_decode --fdd-only DIR KIND PASSES   (fdd alone, for perf) */
#include "fdd.h"
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallopt: the "warm allocator" regime */
#endif

#define MAXF 64
#define MAXR 101

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double s[MAXR];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct {
    const char *kind, *ext, *label;
    int jpeg;
    int n;
    char *path[MAXF];
    uint8_t *data[MAXF];
    size_t len[MAXF];
} fileset;

static fileset sets[] = {
    {"baseline", "jpg", "JPEG baseline 4:2:0", 1, 0, {0}, {0}, {0}},
    {"progressive", "jpg", "JPEG progressive 4:2:0", 1, 0, {0}, {0}, {0}},
    {"yuv444", "jpg", "JPEG baseline 4:4:4", 1, 0, {0}, {0}, {0}},
    {"png", "png", "PNG (Pillow default)", 0, 0, {0}, {0}, {0}},
};
enum { NSETS = sizeof sets / sizeof sets[0] };

/* Reads every file DIR/KIND/NAME.EXT, sorted by name. */
static int load_set(const char *dir, fileset *s) {
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/%s", dir, s->kind);
    DIR *dp = opendir(sub);
    if (!dp) return 0;
    struct dirent *de;
    size_t el = strlen(s->ext);
    while ((de = readdir(dp)) && s->n < MAXF) {
        size_t l = strlen(de->d_name);
        if (l <= el + 1 || de->d_name[l - el - 1] != '.' || strcmp(de->d_name + l - el, s->ext)) continue;
        char *p = malloc(strlen(sub) + l + 2);
        sprintf(p, "%s/%s", sub, de->d_name);
        s->path[s->n++] = p;
    }
    closedir(dp);
    qsort(s->path, (size_t)s->n, sizeof s->path[0], cmp_str);
    for (int i = 0; i < s->n; i++) {
        fdd_error e;
        if (fdd_read_file(s->path[i], (size_t)1 << 30, &s->data[i], &s->len[i], &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return -1;
        }
    }
    return 0;
}

/* One pass of fdd over a set; the digest (optional) covers every RGB output. */
static double fdd_pass(const fileset *s, uint8_t digest[32]) {
    fdd_sha256 h;
    fdd_sha256_init(&h);
    double t0 = now();
    for (int i = 0; i < s->n; i++) {
        fdd_image img;
        fdd_error e;
        if (fdd_image_decode(s->data[i], s->len[i], s->path[i], &img, &e)) {
            fprintf(stderr, "bench_decode: fdd failed: %s\n", e.msg);
            exit(1);
        }
        if (digest) fdd_sha256_update(&h, img.rgb, (size_t)img.width * img.height * 3);
        fdd_image_free(&img);
    }
    double t = now() - t0;
    if (digest) fdd_sha256_final(&h, digest);
    return t;
}

/* Runs argv with stdout/stderr to /dev/null; exit status, or -1. */
static int run_quiet(char *const argv[]) {
    pid_t p = fork();
    if (p < 0) return -1;
    if (p == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(p, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double djpeg_file(const char *path) {
    char *argv[] = {"djpeg", "-outfile", "/dev/null", (char *)path, NULL};
    double t0 = now();
    if (run_quiet(argv) != 0) {
        fprintf(stderr, "bench_decode: djpeg failed on %s\n", path);
        exit(1);
    }
    return now() - t0;
}

/* The Python co-process (bench/decode_pillow.py). */
static FILE *co_in, *co_out;
static pid_t co_pid;

static int co_start(const char *py, const char *dir) {
    int a[2], b[2];
    if (pipe(a) || pipe(b)) return -1;
    co_pid = fork();
    if (co_pid < 0) return -1;
    if (co_pid == 0) {
        dup2(a[0], 0);
        dup2(b[1], 1);
        close(a[0]), close(a[1]), close(b[0]), close(b[1]);
        char arg[NSETS][64];
        char *argv[4 + NSETS] = {(char *)py, "bench/decode_pillow.py", (char *)dir};
        for (int k = 0; k < (int)NSETS; k++) {
            snprintf(arg[k], sizeof arg[k], "%s:%s", sets[k].kind, sets[k].ext);
            argv[3 + k] = arg[k];
        }
        argv[3 + NSETS] = NULL;
        execvp(py, argv);
        _exit(127);
    }
    close(a[0]), close(b[1]);
    fcntl(a[1], F_SETFD, FD_CLOEXEC);   /* djpeg children must not hold them */
    fcntl(b[0], F_SETFD, FD_CLOEXEC);
    co_in = fdopen(a[1], "w");
    co_out = fdopen(b[0], "r");
    return co_in && co_out ? 0 : -1;
}

static int co_ask(const char *cmd, const char *kind, char *line, size_t cap) {
    fprintf(co_in, "%s %s\n", cmd, kind);
    fflush(co_in);
    return fgets(line, (int)cap, co_out) ? 0 : -1;
}

static double co_time(const char *cmd, const char *kind) {
    char line[256];
    double t;
    if (co_ask(cmd, kind, line, sizeof line) || sscanf(line, "T %lf", &t) != 1) {
        fprintf(stderr, "bench_decode: decode_pillow.py failed (%s %s)\n", cmd, kind);
        exit(1);
    }
    return t;
}

/* Prints to stdout and to the result file. */
static FILE *res;
static void out(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (res) {
        va_start(ap, fmt);
        vfprintf(res, fmt, ap);
        va_end(ap);
    }
}

static void read_line(const char *path, const char *key, char *buf, size_t cap) {
    snprintf(buf, cap, "?");
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (key && strncmp(line, key, strlen(key))) continue;
        char *p = key ? strchr(line, ':') : line;
        if (!p) continue;
        p += key ? 2 : 0;
        p[strcspn(p, "\n")] = 0;
        snprintf(buf, cap, "%s", p);
        break;
    }
    fclose(f);
}

static int tile_ppm(int argc, char **argv) {
    if (argc != 7) return fprintf(stderr, "usage: bench_decode --tile-ppm OUT.ppm A B C D\n"), 2;
    uint8_t *t = calloc(1024 * 1024, 3);
    for (int k = 0; k < 4; k++) {
        fdd_image a, r;
        fdd_error e;
        if (fdd_image_load(argv[3 + k], &a, &e) ||
            fdd_resize_pillow_u8(&a, 512, 512, FDD_PIL_LANCZOS, &r, &e))
            return fprintf(stderr, "%s\n", e.msg), 1;
        for (int y = 0; y < 512; y++)
            memcpy(t + ((size_t)(512 * (k / 2) + y) * 1024 + 512 * (k % 2)) * 3, r.rgb + (size_t)y * 512 * 3,
                   512 * 3);
        fdd_image_free(&a);
        fdd_image_free(&r);
    }
    FILE *f = fopen(argv[2], "wb");
    if (!f) return perror(argv[2]), 1;
    fprintf(f, "P6\n1024 1024\n255\n");
    int bad = fwrite(t, 3, 1024 * 1024, f) != 1024 * 1024;
    bad |= fclose(f) != 0;
    free(t);
    return bad;
}

enum { C_FDD, C_TJ, C_PIL, C_DJPEG, NC };

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--tile-ppm")) return tile_ppm(argc, argv);
    if (argc == 5 && !strcmp(argv[1], "--fdd-only")) {   /* for perf: fdd alone */
        for (int k = 0; k < (int)NSETS; k++) {
            if (strcmp(sets[k].kind, argv[3])) continue;
            if (load_set(argv[2], &sets[k]) || !sets[k].n) return 1;
            double t[MAXR];
            int n = atoi(argv[4]) < 1 ? 1 : atoi(argv[4]) > MAXR ? MAXR : atoi(argv[4]);
            for (int i = 0; i < n; i++) t[i] = fdd_pass(&sets[k], NULL);
            double med = median(t, n);
            qsort(t, (size_t)n, sizeof *t, cmp_double);
            printf("fdd %s: median %.2f, best %.2f ms per image\n", argv[3], 1e3 * med / sets[k].n,
                   1e3 * t[0] / sets[k].n);
            return 0;
        }
        return 2;
    }
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: bench_decode [DIR] | --fdd-only DIR KIND PASSES | --tile-ppm OUT.ppm A B C D\n");
        return 2;
    }
    const char *dir = argc > 1 ? argv[1] : "build/bench-decode";
    int rounds = getenv("FDD_BENCH_REPS") ? atoi(getenv("FDD_BENCH_REPS")) : 7;
    if (rounds < 1 || rounds > MAXR - 1) rounds = 7;
    const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";

    char path[1100], cmd[3072];
    snprintf(path, sizeof path, "%s/SET_OK", dir);
    if (access(path, R_OK) != 0) {
        snprintf(cmd, sizeof cmd, "%s bench/make_decode_set.py '%s' '%s'", py, dir, argv[0]);
        if (system(cmd) != 0 || access(path, R_OK) != 0) {
            printf("bench_decode: skipped: no test set (bench/make_decode_set.py failed, see above)\n");
            return 0;
        }
    }
    for (int k = 0; k < (int)NSETS; k++)
        if (load_set(dir, &sets[k])) return 1;

    /* Results go to stdout and DIR/result.txt. */
    char rpath[1100];
    snprintf(rpath, sizeof rpath, "%s/result.txt", dir);
    res = fopen(rpath, "w");
    char cpu[256], load[128], date[64];
    read_line("/proc/cpuinfo", "model name", cpu, sizeof cpu);
    read_line("/proc/loadavg", NULL, load, sizeof load);
    time_t now_t = time(NULL);
    struct tm tm;
    gmtime_r(&now_t, &tm);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
    out("decode speed, 1024x1024 photos, ms per image, median of %d rounds, 1 thread\n(%s; %s; loadavg at start %s)\n",
        rounds, date, cpu, load);
    out("djpeg = fork+exec of `djpeg -outfile /dev/null` per file minus the same on a 16x16 JPEG;\n"
        "tj = libjpeg-turbo's TurboJPEG API in one process, reused output buffer;\n"
        "ratio = their time / fdd's (> 1: fdd is faster)\n");

    /* Two memory regimes.  "as installed": every allocator as it comes;
     * fresh multi-megabyte buffers are mmap'ed and page-faulted on each
     * image, which costs a lot on some VMs.  "warm allocator": glibc keeps
     * freed memory (the same thresholds for everyone: GLIBC_TUNABLES in the
     * co-process, mallopt here), i.e. decoder against decoder.  djpeg runs in
     * the first regime only: a fresh process always faults its memory in. */
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 1) {
#ifdef __GLIBC__
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, 1 << 30);
            setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824", 1);
#else
            break;
#endif
        }
        int have[NC] = {1, 0, 0, 0};
        char why[512] = "";
        if (co_start(py, dir) == 0) {
            char line[512];
            if (fgets(line, sizeof line, co_out)) {
                int p = 0, t = 0;
                if (sscanf(line, "READY pillow=%d tj=%d", &p, &t) == 2) have[C_PIL] = p, have[C_TJ] = t;
                char *r = strstr(line, "tj=");
                if (r && strchr(r, ' ')) snprintf(why, sizeof why, "%s", strchr(r, ' ') + 1);
                why[strcspn(why, "\n")] = 0;
            } else {
                snprintf(why, sizeof why, "%s bench/decode_pillow.py did not start", py);
            }
        }
        char tiny_path[1100];
        snprintf(tiny_path, sizeof tiny_path, "%s/tiny.jpg", dir);
        char *tiny[] = {"djpeg", "-outfile", "/dev/null", tiny_path, NULL};
        if (mode == 0) {
            have[C_DJPEG] = run_quiet(tiny) == 0;
            out("contenders: fdd; %s; djpeg %s\n", why,
                have[C_DJPEG] ? "(libjpeg-turbo-progs)" : "MISSING (apt install libjpeg-turbo-progs): skipped");
            if (!have[C_PIL]) out("Pillow contender skipped: %s\n", why);
            if (!have[C_TJ]) out("TurboJPEG in-process contender skipped: %s\n", why);
        }

        /* Same pixels as Pillow?  (fdd's contract is bit-exactness.) */
        if (mode == 0 && have[C_PIL]) {
            out("fdd output == Pillow output:");
            for (int k = 0; k < (int)NSETS; k++) {
                if (!sets[k].n) continue;
                uint8_t dg[32];
                char hex[65], line[256], want[128] = "";
                fdd_pass(&sets[k], dg);
                fdd_sha256_hex(dg, hex);
                if (co_ask("hash", sets[k].kind, line, sizeof line) == 0) sscanf(line, "HASH %*s %127s", want);
                out(" %s %s", sets[k].kind, strcmp(hex, want) ? "DIFFERENT" : "yes");
            }
            out("\n");
        }

        /* t[contender][set][round]: seconds for one pass; dj0: djpeg start-up. */
        static double t[NC][NSETS][MAXR], dj0[NSETS][MAXR];
        for (int r = 0; r <= rounds; r++) {
            int slot = r ? r - 1 : 0;   /* round 0 warms up and is overwritten */
            for (int k = 0; k < (int)NSETS; k++) {
                fileset *s = &sets[k];
                if (!s->n) continue;
                for (int j = 0; j < NC; j++) {
                    int c = (j + r) % NC;
                    if (!have[c] || (!s->jpeg && (c == C_TJ || c == C_DJPEG))) continue;
                    if (c == C_FDD) t[c][k][slot] = fdd_pass(s, NULL);
                    if (c == C_TJ) t[c][k][slot] = co_time("tj", s->kind);
                    if (c == C_PIL) t[c][k][slot] = co_time("pillow", s->kind);
                    if (c == C_DJPEG) {
                        double a = 0, b = 0;
                        for (int i = 0; i < s->n; i++) {
                            a += djpeg_file(s->path[i]);
                            b += djpeg_file(tiny_path);
                        }
                        t[c][k][slot] = a - b;
                        dj0[k][slot] = b;
                    }
                }
            }
        }
        if (co_in) {
            fprintf(co_in, "quit\n");
            fclose(co_in);
            fclose(co_out);
            waitpid(co_pid, NULL, 0);
            co_in = co_out = NULL;
        }

        out("\n%s\n\n", mode == 0 ? "As installed (default allocators):"
                                  : "Warm allocator (glibc keeps freed memory; no djpeg):");
        out("| format | files | fdd | djpeg (net) | tj | Pillow | djpeg/fdd | tj/fdd | Pillow/fdd |\n");
        out("|---|---|---|---|---|---|---|---|---|\n");
        double ms[NC][NSETS], start = 0;
        for (int k = 0; k < (int)NSETS; k++) {
            fileset *s = &sets[k];
            if (!s->n) {
                out("| %s | 0 | (not in the set) | | | | | | |\n", s->label);
                continue;
            }
            char cell[NC][32], rat[NC][32];
            for (int c = 0; c < NC; c++) {
                int on = have[c] && (s->jpeg || c == C_FDD || c == C_PIL);
                ms[c][k] = on ? 1e3 * median(t[c][k], rounds) / s->n : -1;
                snprintf(cell[c], sizeof cell[c], on ? "%.2f" : "-", ms[c][k]);
                snprintf(rat[c], sizeof rat[c], on ? "%.2f" : "-", ms[c][k] / ms[C_FDD][k]);
            }
            if (have[C_DJPEG] && s->jpeg) start = 1e3 * median(dj0[k], rounds) / s->n;
            out("| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", s->label, s->n, cell[C_FDD],
                cell[C_DJPEG], cell[C_TJ], cell[C_PIL], rat[C_DJPEG], rat[C_TJ], rat[C_PIL]);
        }
        if (have[C_DJPEG]) out("\ndjpeg process start-up (subtracted): %.2f ms per run\n", start);
        out("targets (issue 5):\n");
        int lj = have[C_TJ] ? C_TJ : have[C_DJPEG] ? C_DJPEG : -1;
        if (lj >= 0 && sets[0].n)
            out("  baseline JPEG within 2x of libjpeg-turbo (%s): fdd takes %.2fx its time -> %s\n",
                lj == C_TJ ? "tj" : "djpeg", ms[C_FDD][0] / ms[lj][0],
                ms[C_FDD][0] <= 2 * ms[lj][0] ? "MET" : "NOT MET");
        else
            out("  baseline JPEG vs libjpeg-turbo: not measured (no djpeg, no libturbojpeg)\n");
        if (have[C_PIL] && sets[3].n)
            out("  PNG faster than Pillow: Pillow/fdd = %.2f -> %s\n", ms[C_PIL][3] / ms[C_FDD][3],
                ms[C_FDD][3] < ms[C_PIL][3] ? "MET" : "NOT MET");
        else
            out("  PNG vs Pillow: not measured (%s)\n", have[C_PIL] ? "no PNG files in the set" : "no Pillow");
        fflush(stdout);
    }
    read_line("/proc/loadavg", NULL, load, sizeof load);
    out("\nloadavg at the end %s\n", load);
    if (res) fclose(res);
    printf("(written to %s)\n", rpath);
    for (int k = 0; k < (int)NSETS; k++)
        for (int i = 0; i < sets[k].n; i++) fdd_free(sets[k].data[i]), free(sets[k].path[i]);
    return 0;
}

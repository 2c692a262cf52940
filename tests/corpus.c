/* corpus.c — checks fdd's decoders against Pillow on a folder of real files.
 *
 *   corpus DIGESTS ROOT [-v] [--known FILE]
 *
 * DIGESTS comes from tests/reference/pillow_digests.py (lines
 * "<path> <w> <h> <sha256>" or "<path> ERROR <class>", paths relative to ROOT).
 * Every listed file is decoded with fdd_image_decode; the format is taken
 * from the file's first bytes.  Prints, per format, the bit-exact matches,
 * mismatches, files Pillow decoded but fdd refused (unsupported / error),
 * files both refused, and files fdd decoded but Pillow refused.  Exit status
 * 1 on any pixel mismatch (a decoded image that differs from Pillow's), 2 on
 * usage or I/O problems.  -v lists every file that is not a match.
 * --known FILE lists mismatches that are understood and accepted (one path
 * per line, then '#' and the reason); they are reported, not failed.
 *
 * Built against libfdd: cc -Iinclude -Isrc tests/corpus.c libfdd.a -lm -pthread */
#include "fdd.h"
#include "test_image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MATCH, MISMATCH, REFUSED_UNSUPPORTED, REFUSED_ERROR, BOTH_ERROR, EXTRA_OK, KNOWN_DIFF, NCAT };
static const char *cat_name[NCAT] = {"bit-exact",         "MISMATCH",           "refused (unsupported)",
                                     "refused (error)",   "both errored",       "fdd decoded, Pillow errored",
                                     "known difference"};

static char known[64][512];
static int nknown;

static void load_known(const char *path) {
    FILE *f = fopen(path, "r");
    char line[1024];
    if (!f) { fprintf(stderr, "%s: cannot open\n", path); exit(2); }
    while (nknown < 64 && fgets(line, sizeof line, f))
        if (line[0] != '#' && sscanf(line, "%511s", known[nknown]) == 1) nknown++;
    fclose(f);
}

static int is_known(const char *rel) {
    for (int i = 0; i < nknown; i++)
        if (!strcmp(known[i], rel)) return 1;
    return 0;
}
enum { F_PNG, F_JPEG, F_OTHER, NFMT };
static const char *fmt_name[NFMT] = {"PNG", "JPEG", "other"};

static int format_of(const uint8_t *d, size_t n) {
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return F_PNG;
    if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff) return F_JPEG;
    return F_OTHER;
}

/* Undo pillow_digests.py's escaping of '%' and ' '. */
static void unescape(char *s) {
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '%' && s[1] == '2' && (s[2] == '0' || s[2] == '5')) {
            *o++ = s[2] == '0' ? ' ' : '%';
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DIGESTS ROOT [-v] [--known FILE]\n", argv[0]);
        return 2;
    }
    int verbose = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) verbose = 1;
        else if (!strcmp(argv[i], "--known") && i + 1 < argc) load_known(argv[++i]);
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", argv[1]);
        return 2;
    }
    int count[NFMT][NCAT] = {{0}}, missing = 0, shown = 0;
    char line[4096], rel[2048], a[64], b[64], c[128], path[4200];
    while (fgets(line, sizeof line, f)) {
        int k = sscanf(line, "%2047s %63s %63s %127s", rel, a, b, c);
        if (k < 3) continue;
        unescape(rel);
        int pillow_ok = strcmp(a, "ERROR") != 0;
        snprintf(path, sizeof path, "%s/%s", argv[2], rel);
        size_t n;
        uint8_t *d = test_read_all(path, &n);
        if (!d) {
            missing++;
            continue;
        }
        int fmt = format_of(d, n);
        fdd_image im;
        fdd_error err;
        memset(&err, 0, sizeof err);
        fdd_status s = fdd_image_decode(d, n, rel, &im, &err);
        free(d);
        int cat;
        char detail[700] = "";
        if (s == FDD_OK) {
            if (!pillow_ok) {
                cat = EXTRA_OK;
                snprintf(detail, sizeof detail, "Pillow: %s", b);
            } else {
                char hex[65];
                test_image_sha(&im, hex);
                int same = im.width == atoi(a) && im.height == atoi(b) && strcmp(hex, c) == 0;
                cat = same ? MATCH : is_known(rel) ? KNOWN_DIFF : MISMATCH;
                if (!same)
                    snprintf(detail, sizeof detail, "fdd %dx%d, Pillow %sx%s", im.width, im.height, a, b);
            }
            fdd_image_free(&im);
        } else if (pillow_ok) {
            cat = s == FDD_E_UNSUPPORTED ? REFUSED_UNSUPPORTED : REFUSED_ERROR;
            snprintf(detail, sizeof detail, "%s", err.msg);
        } else {
            cat = BOTH_ERROR;
        }
        count[fmt][cat]++;
        if (cat != MATCH && cat != BOTH_ERROR && cat != REFUSED_UNSUPPORTED &&
            (verbose || shown < 40)) {
            printf("  %-28s %s%s%s\n", cat_name[cat], rel, detail[0] ? ": " : "", detail);
            shown++;
        } else if (verbose && cat != MATCH) {
            printf("  %-28s %s%s%s\n", cat_name[cat], rel, detail[0] ? ": " : "", detail);
        }
    }
    fclose(f);
    int mismatches = 0;
    for (int fm = 0; fm < NFMT; fm++) {
        int total = 0;
        for (int ct = 0; ct < NCAT; ct++) total += count[fm][ct];
        if (!total) continue;
        printf("%-5s %5d files:", fmt_name[fm], total);
        for (int ct = 0; ct < NCAT; ct++)
            if (count[fm][ct]) printf("  %s %d", cat_name[ct], count[fm][ct]);
        printf("\n");
        mismatches += count[fm][MISMATCH];
    }
    if (missing) printf("%d listed files are missing under %s\n", missing, argv[2]);
    return mismatches ? 1 : 0;
}

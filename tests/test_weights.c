/* test_weights.c — SHA-256 against FIPS 180-4 vectors, the .fdw reader:
 * round trip, every rejection with its message, binding, f16/bf16, a
 * corruption fuzz loop, and allocation-failure injection. */
#include "test.h"
#include "fdw_write.h"
#include "internal.h"

#include <math.h>
#include <unistd.h>

static char tmpdir[256];

static void sha_hex(const void *d, size_t n, char hex[65]) {
    fdd_sha256 s;
    uint8_t out[32];
    fdd_sha256_init(&s);
    fdd_sha256_update(&s, d, n);
    fdd_sha256_final(&s, out);
    fdd_sha256_hex(out, hex);
}

static void test_sha256_vectors(void) {
    char hex[65];
    sha_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "abc: %s", hex);
    sha_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "empty: %s", hex);
    const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha_hex(m2, strlen(m2), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "448-bit: %s", hex);
    const char *m3 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    sha_hex(m3, strlen(m3), hex);
    CHECK(!strcmp(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"), "896-bit: %s", hex);
    /* one million 'a', fed in uneven pieces */
    static char a[1000000];
    memset(a, 'a', sizeof a);
    fdd_sha256 s;
    uint8_t out[32];
    fdd_sha256_init(&s);
    for (size_t off = 0, step = 1; off < sizeof a; off += step, step = step * 7 % 1000 + 1)
        fdd_sha256_update(&s, a + off, step < sizeof a - off ? step : sizeof a - off);
    fdd_sha256_final(&s, out);
    fdd_sha256_hex(out, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "million a: %s", hex);
}

/* A small valid file: three tensors. */
static float w1[6] = {1, 2, 3, 4, 5, 6}, b1[3] = {-1, 0, 1}, sc[1] = {42};
static const tw_tensor tensors[] = {
    {"layer.weight", 2, {3, 2}, w1},
    {"layer.bias", 1, {3}, b1},
    {"scale", 0, {0}, sc},
};
static const char *meta = "arch=test\nconverter=test 1\nsource.file=x.pth\nsource.sha256=00\n";

static void build(uint8_t **f, size_t *len) { tw_build_fdw(meta, tensors, 3, f, len); }

static fdd_status open_bytes(const uint8_t *f, size_t len, fdd_weights **w, fdd_error *err) {
    char path[300];
    snprintf(path, sizeof path, "%s/t.fdw", tmpdir);
    tw_write_file(path, f, len);
    return fdd_weights_open(path, w, err);
}

static void test_round_trip(void) {
    uint8_t *f;
    size_t len;
    build(&f, &len);
    fdd_weights *w;
    fdd_error err;
    REQUIRE(open_bytes(f, len, &w, &err) == FDD_OK, "%s", err.msg);
    CHECK(fdd_weights_count(w) == 3, "count");
    CHECK(!strcmp(fdd_weights_meta(w, "arch"), "test"), "meta arch");
    CHECK(fdd_weights_meta(w, "nope") == NULL, "absent key");
    CHECK(fdd_weights_meta_count(w) == 4, "meta count");
    const fdd_tensor_info *t = fdd_weights_find(w, "layer.weight");
    REQUIRE(t != NULL, "find");
    CHECK(t->ndim == 2 && t->dims[0] == 3 && t->dims[1] == 2 && t->numel == 6 && t->offset % 64 == 0, "shape");
    CHECK(!memcmp(t->data, w1, sizeof w1), "data");
    t = fdd_weights_find(w, "scale");
    CHECK(t && t->ndim == 0 && t->numel == 1, "scalar");
    char hex[65];
    sha_hex(f + 128, len - 128, hex);
    CHECK(!strcmp(hex, fdd_weights_sha256(w)), "sha hex");

    const float *pw = NULL, *pb = NULL, *ps = NULL;
    fdd_tensor_spec specs[] = {
        {"layer.weight", 2, {3, 2}, &pw}, {"layer.bias", 1, {3}, &pb}, {"scale", 0, {0}, &ps}};
    CHECK(fdd_weights_bind(w, specs, 3, &err) == FDD_OK, "%s", err.msg);
    CHECK(pw && pw[5] == 6 && pb && pb[0] == -1 && ps && ps[0] == 42, "bound data");
    CHECK(((uintptr_t)pw & 63) == 0, "tensors are 64-byte aligned in memory");

    /* missing, wrong shape, unexpected */
    fdd_tensor_spec missing[] = {{"layer.weight", 2, {3, 2}, NULL}, {"layer.bias", 1, {3}, NULL},
                                 {"scale", 0, {0}, NULL}, {"other", 1, {1}, NULL}};
    CHECK(fdd_weights_bind(w, missing, 4, &err) == FDD_E_FORMAT && strstr(err.msg, "missing tensor 'other'") &&
              strstr(err.msg, "t.fdw"), "missing: %s", err.msg);
    fdd_tensor_spec wrong[] = {{"layer.weight", 2, {2, 3}, NULL}, {"layer.bias", 1, {3}, NULL}, {"scale", 0, {0}, NULL}};
    CHECK(fdd_weights_bind(w, wrong, 3, &err) == FDD_E_FORMAT && strstr(err.msg, "'layer.weight' has shape [3, 2]") &&
              strstr(err.msg, "needs [2, 3]"), "shape: %s", err.msg);
    CHECK(fdd_weights_bind(w, specs, 2, &err) == FDD_E_FORMAT && strstr(err.msg, "unexpected tensor 'scale'"),
          "unexpected: %s", err.msg);
    fdd_weights_close(w);
    free(f);
}

/* Edits a valid file, optionally reseals the checksum, and expects an error
 * whose message contains `want`. */
typedef void (*edit_fn)(uint8_t *f, size_t *len);
static void expect_reject(const char *what, edit_fn edit, bool reseal, const char *want) {
    uint8_t *f;
    size_t len;
    build(&f, &len);
    f = realloc(f, len + 256);
    edit(f, &len);
    if (reseal) tw_reseal(f, len);
    fdd_weights *w = NULL;
    fdd_error err = {0};
    fdd_status s = open_bytes(f, len, &w, &err);
    CHECK(s != FDD_OK && w == NULL, "%s: accepted", what);
    fdd_weights_close(w);
    CHECK(strstr(err.msg, want) != NULL && strstr(err.msg, "t.fdw") != NULL, "%s: message '%s' lacks '%s'", what,
          err.msg, want);
    free(f);
}

static size_t table_off(const uint8_t *f) { return (size_t)fdd_le64(f + 40); }
static void e_magic(uint8_t *f, size_t *n) { (void)n; f[1] = 'X'; }
static void e_version(uint8_t *f, size_t *n) { (void)n; f[8] = 2; }
static void e_trunc(uint8_t *f, size_t *n) { (void)f; *n -= 1; }
static void e_trailing(uint8_t *f, size_t *n) { f[(*n)++] = 0; }
static void e_tiny(uint8_t *f, size_t *n) { (void)f; *n = 100; }
static void e_data(uint8_t *f, size_t *n) { f[*n - 1] ^= 1; }
static void e_dtype(uint8_t *f, size_t *n) { (void)n; f[table_off(f) + 2 + 12] = 7; }
static void e_ndim(uint8_t *f, size_t *n) { (void)n; f[table_off(f) + 2 + 12 + 1] = 9; }
static void e_name_len(uint8_t *f, size_t *n) { (void)n; f[table_off(f)] = 0; }
static void e_name_byte(uint8_t *f, size_t *n) { (void)n; f[table_off(f) + 2] = 0x01; }
static size_t first_offset_pos(const uint8_t *f) { return table_off(f) + 2 + 12 + 2 + 16; }
static void e_misalign(uint8_t *f, size_t *n) {
    (void)n; uint8_t *p = f + first_offset_pos(f); fdd_put_le64(p, fdd_le64(p) + 4);
}
static void e_oob(uint8_t *f, size_t *n) {
    (void)n; fdd_put_le64(f + first_offset_pos(f), (uint64_t)1 << 40);
}
static void e_nbytes(uint8_t *f, size_t *n) { (void)n; uint8_t *p = f + first_offset_pos(f) + 8; p[0] += 4; }
static void e_overflow(uint8_t *f, size_t *n) {
    (void)n; fdd_put_le64(f + table_off(f) + 2 + 12 + 2, (uint64_t)1 << 62);
    fdd_put_le64(f + table_off(f) + 2 + 12 + 2 + 8, (uint64_t)1 << 62);
}
static void e_overlap(uint8_t *f, size_t *n) {
    (void)n;
    size_t second = first_offset_pos(f) + 16 + 2 + 10 + 2 + 8;   /* "layer.bias", 1 dim */
    fdd_put_le64(f + second, fdd_le64(f + first_offset_pos(f)));
}
static void e_meta_order(uint8_t *f, size_t *n) { (void)n; memcpy(f + 128, "zrch", 4); }
static void e_meta_line(uint8_t *f, size_t *n) { (void)n; f[128 + 4] = '\n'; }
static void e_header_sizes(uint8_t *f, size_t *n) { (void)n; f[56] += 64; }
static void e_reserved(uint8_t *f, size_t *n) { (void)n; f[120] = 1; }
static void e_count(uint8_t *f, size_t *n) { (void)n; f[20] = 2; }

static void test_rejections(void) {
    expect_reject("bad magic", e_magic, false, "bad magic");
    expect_reject("version", e_version, false, "version 2");
    expect_reject("truncated", e_trunc, false, "truncated");
    expect_reject("trailing", e_trailing, false, "trailing bytes");
    expect_reject("shorter than a header", e_tiny, false, "truncated");
    expect_reject("data bit flip", e_data, false, "SHA-256 mismatch");
    expect_reject("unknown dtype", e_dtype, true, "'layer.weight': unknown dtype 7");
    expect_reject("too many dims", e_ndim, true, "9 dimensions");
    expect_reject("zero name length", e_name_len, true, "bad name length");
    expect_reject("control char in name", e_name_byte, true, "non-printable");
    expect_reject("misaligned", e_misalign, true, "not 64-byte aligned");
    expect_reject("out of bounds", e_oob, true, "outside the data region");
    expect_reject("byte length", e_nbytes, true, "does not match its shape");
    expect_reject("shape overflow", e_overflow, true, "overflows");
    expect_reject("overlap", e_overlap, true, "overlaps");
    expect_reject("metadata order", e_meta_order, true, "out of order");
    expect_reject("metadata line", e_meta_line, true, "not key=value");
    expect_reject("header sizes", e_header_sizes, false, "inconsistent section");
    expect_reject("reserved", e_reserved, false, "reserved");
    expect_reject("tensor count", e_count, true, "tensor table");
    /* two tensors with one name */
    tw_tensor dup[2] = {tensors[1], tensors[1]};
    uint8_t *f;
    size_t len;
    tw_build_fdw(meta, dup, 2, &f, &len);
    fdd_weights *w = NULL;
    fdd_error err;
    CHECK(open_bytes(f, len, &w, &err) == FDD_E_FORMAT && strstr(err.msg, "'layer.bias' appears twice"),
          "duplicate: %s", err.msg);
    fdd_weights_close(w);
    free(f);
    CHECK(fdd_weights_open("/nonexistent/x.fdw", &w, &err) == FDD_E_IO && strstr(err.msg, "/nonexistent/x.fdw"),
          "missing file: %s", err.msg);
}

static void test_f16_bf16(void) {
    /* A 4-float tensor reinterpreted as 8 halves, then as 8 bfloat16s. */
    float raw[4];
    const uint16_t h[8] = {0x3c00, 0xc000, 0x0001, 0x7bff, 0x8000, 0x3555, 0x0400, 0x7c00};
    memcpy(raw, h, sizeof h);
    tw_tensor t = {"h", 1, {4}, raw};
    uint8_t *f;
    size_t len;
    tw_build_fdw("arch=t\n", &t, 1, &f, &len);
    size_t dt = fdd_le64(f + 40) + 2 + 1;
    f[dt] = 1;                                   /* dtype f16 */
    fdd_put_le64(f + dt + 2, 8);                 /* dims[0] = 8 */
    tw_reseal(f, len);
    fdd_weights *w;
    fdd_error err;
    REQUIRE(open_bytes(f, len, &w, &err) == FDD_OK, "%s", err.msg);
    const float *p;
    fdd_tensor_spec sp = {"h", 1, {8}, &p};
    REQUIRE(fdd_weights_bind(w, &sp, 1, &err) == FDD_OK, "%s", err.msg);
    const float want[8] = {1.0f, -2.0f, 0x1p-24f, 65504.0f, -0.0f, 0x1.554p-2f, 0x1p-14f, INFINITY};
    CHECK(!memcmp(p, want, sizeof want), "f16: %g %g %g %g %g %g %g %g", p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
    fdd_weights_close(w);
    f[dt] = 2;                                   /* dtype bf16 */
    tw_reseal(f, len);
    REQUIRE(open_bytes(f, len, &w, &err) == FDD_OK, "%s", err.msg);
    REQUIRE(fdd_weights_bind(w, &sp, 1, &err) == FDD_OK, "%s", err.msg);
    uint32_t b0;
    memcpy(&b0, &p[0], 4);
    CHECK(b0 == 0x3c000000u, "bf16 widening: %08x", b0);
    fdd_weights_close(w);
    free(f);
}

static void test_fuzz(void) {
    uint8_t *orig;
    size_t len;
    build(&orig, &len);
    uint8_t *f = malloc(len + 64);
    uint64_t seed = 7;
    int accepted = 0, n = 3000;
    for (int i = 0; i < n; i++) {
        memcpy(f, orig, len);
        size_t l = len;
        int kind = (int)(test_rng_next(&seed) % 4);
        int flips = 1 + (int)(test_rng_next(&seed) % 8);
        for (int k = 0; k < flips; k++) {
            size_t pos = (size_t)(test_rng_next(&seed) % l);
            if (kind == 3 && pos < 128) pos = 128 + pos % (l - 128);
            f[pos] = (uint8_t)test_rng_next(&seed);
        }
        if (kind == 1) l = (size_t)(test_rng_next(&seed) % (len + 1));
        if (kind >= 2) tw_reseal(f, l);          /* reach the parsers behind the checksum */
        fdd_weights *w = NULL;
        fdd_error err;
        if (open_bytes(f, l, &w, &err) == FDD_OK) {
            accepted++;
            for (size_t j = 0; j < fdd_weights_count(w); j++) {   /* touch every byte handed out */
                const fdd_tensor_info *t = fdd_weights_at(w, j);
                volatile uint8_t sink = 0;
                for (uint64_t b = 0; b < t->nbytes; b++) sink ^= ((const uint8_t *)t->data)[b];
                (void)sink;
            }
            fdd_weights_close(w);
        } else {
            CHECK(strstr(err.msg, "t.fdw") != NULL, "message names the file: %s", err.msg);
        }
    }
    fprintf(stderr, "  weights: fuzz: %d corrupted files, %d still valid (flips in names/padding)\n", n, accepted);
    free(f);
    free(orig);
}

static void test_alloc_failures(void) {
    uint8_t *f;
    size_t len;
    build(&f, &len);
    int fails = 0;
    for (long n = 1; n < 200; n++) {
        fdd_weights *w = NULL;
        fdd_error err;
        char path[300];
        snprintf(path, sizeof path, "%s/t.fdw", tmpdir);
        tw_write_file(path, f, len);
        fdd_alloc_fail_at(n);
        fdd_status s = fdd_weights_open(path, &w, &err);
        fdd_alloc_fail_at(0);
        if (s == FDD_OK) { fdd_weights_close(w); break; }
        fails++;
        CHECK(s == FDD_E_NOMEM, "allocation %ld: status %d (%s)", n, (int)s, err.msg);
    }
    CHECK(fails > 3, "the loader allocates");
    free(f);
}

int main(void) {
    /* memory-backed when the system has it: thousands of small files */
    snprintf(tmpdir, sizeof tmpdir, "%s/fdd-test-weights.%ld", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
             (long)getpid());
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmpdir);
    if (system(cmd) != 0) return 1;
    RUN(test_sha256_vectors);
    RUN(test_round_trip);
    RUN(test_rejections);
    RUN(test_f16_bf16);
    RUN(test_fuzz);
    RUN(test_alloc_failures);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) return 1;
    return test_summary("weights");
}

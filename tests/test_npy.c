/* test_npy.c — .npy/.npz reading and writing: numpy's own files (Fortran
 * order, big-endian, deflate, ZIP64 extras), round trips, and refusal of
 * malformed input with "<file>: <key>: reason" messages. */
#include "test.h"
#include "fdd.h"
#include "stats.h"

static void test_fortran_big_endian(void) {
    fdd_npy_array a;
    fdd_error e;
    REQUIRE(fdd_npy_read("tests/data/fd/fortran_be.npy", &a, &e) == FDD_OK, "%s", e.msg);
    CHECK(a.type == FDD_NPY_F8 && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3, "shape");
    const double *v = a.data;
    for (int i = 0; i < 6; i++) CHECK(v[i] == i, "element %d = %g", i, v[i]);
    fdd_npy_array_free(&a);
}

static void test_round_trip(void) {
    float f[6] = {1.5f, -2, 3, 4, 5, 6.25f};
    fdd_error e;
    REQUIRE(fdd_features_write_npy("build/test_npy_f.npy", f, 2, 3, &e) == FDD_OK, "%s", e.msg);
    float *g;
    size_t n, d;
    REQUIRE(fdd_features_read_npy("build/test_npy_f.npy", &g, &n, &d, &e) == FDD_OK, "%s", e.msg);
    CHECK(n == 2 && d == 3 && memcmp(f, g, sizeof f) == 0, "features changed");
    free(g);
    int64_t iv[3] = {-1, 0, INT64_MAX};
    uint8_t s[2] = {'o', 'k'};
    fdd_npy_out arr[2] = {{"ints", FDD_NPY_I8, 1, {3}, iv}, {"str", FDD_NPY_U1, 1, {2}, s}};
    REQUIRE(fdd_npz_write("build/test_npy.npz", arr, 2, &e) == FDD_OK, "%s", e.msg);
    fdd_npz *z;
    REQUIRE(fdd_npz_open("build/test_npy.npz", &z, &e) == FDD_OK, "%s", e.msg);
    fdd_npy_array a;
    CHECK(fdd_npz_get(z, "ints", &a, &e) == FDD_OK && a.count == 3 && memcmp(a.data, iv, sizeof iv) == 0, "ints");
    fdd_npy_array_free(&a);
    CHECK(fdd_npz_get(z, "nope", &a, &e) == FDD_E_FORMAT && strstr(e.msg, "no array 'nope'"), "%s", e.msg);
    fdd_npz_close(z);
    remove("build/test_npy_f.npy");
    remove("build/test_npy.npz");
}

static fdd_status parse(const char *hdr, size_t data_bytes, fdd_error *e) {
    uint8_t buf[512] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    size_t hl = strlen(hdr);
    buf[8] = (uint8_t)hl;
    buf[9] = 0;
    memcpy(buf + 10, hdr, hl);
    fdd_npy_array a;
    fdd_status st = fdd_npy_parse(buf, 10 + hl + data_bytes, "x.npy", &a, e);
    fdd_npy_array_free(&a);
    return st;
}

static void test_malformed_headers(void) {
    fdd_error e;
    CHECK(parse("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", 16, &e) == FDD_OK, "%s", e.msg);
    CHECK(parse("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n", 16, &e) == FDD_E_FORMAT &&
          strstr(e.msg, "x.npy: truncated"), "%s", e.msg);
    CHECK(parse("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }\n", 16, &e) == FDD_E_UNSUPPORTED, "c16");
    CHECK(parse("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }\n", 16, &e) != FDD_OK, "structured");
    CHECK(parse("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }\n", 0, &e) ==
          FDD_E_FORMAT, "overflowing shape");
    CHECK(parse("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }\n", 0, &e) ==
          FDD_E_FORMAT, "product overflow");
    CHECK(parse("{'descr': '<f8', 'shape': (1,), }\n", 8, &e) == FDD_E_FORMAT, "missing key");
    CHECK(parse("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (1,)}\n", 8, &e) == FDD_E_FORMAT,
          "repeated key");
    CHECK(parse("{'descr': '<f8', 'fortran_order': False, 'shape': (1,", 8, &e) == FDD_E_FORMAT, "unterminated");
    CHECK(parse("", 0, &e) == FDD_E_FORMAT, "empty");
}

/* Every truncation and many byte flips of a real numpy .npz: never a crash,
 * always a status (checked under ASan/UBSan by make test-san). */
static void test_corruption(void) {
    uint8_t *buf;
    size_t len;
    fdd_error e;
    REQUIRE(fdd_read_file("tests/data/fd/clean_fid.npz", 1 << 20, &buf, &len, &e) == FDD_OK, "%s", e.msg);
    const char *tmp = "build/test_npy_corrupt.npz";
    uint64_t seed = 5;
    int ok = 0, bad = 0;
    for (size_t trial = 0; trial < 600; trial++) {
        uint8_t *c = malloc(len);
        memcpy(c, buf, len);
        size_t n = len;
        if (trial < len) n = trial;             /* truncations */
        else c[test_rng_next(&seed) % len] ^= (uint8_t)(1 + test_rng_next(&seed) % 255);
        FILE *f = fopen(tmp, "wb");
        fwrite(c, 1, n, f);
        fclose(f);
        free(c);
        fdd_stats *s;
        if (fdd_stats_load(tmp, &s, &e) == FDD_OK) { ok++; fdd_stats_free(s); }
        else { bad++; CHECK(strncmp(e.msg, tmp, strlen(tmp)) == 0, "message without file name: %s", e.msg); }
    }
    CHECK(bad > 0, "no corruption detected");
    free(buf);
    remove(tmp);
}

int main(void) {
    RUN(test_fortran_big_endian);
    RUN(test_round_trip);
    RUN(test_malformed_headers);
    RUN(test_corruption);
    return test_summary("npy");
}

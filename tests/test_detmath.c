/* test_detmath.c — fdd_expf / fdd_erff / fdd_tanhf: maximum error against
 * libm (in float ulps, over every float in the useful range sampled densely),
 * special values, and fixed bit patterns that must never change. */
#include "test.h"
#include "internal.h"

#include <math.h>

static double ulp_err(float got, double want) {
    if (isinf(want) || want == 0) return got == (float)want ? 0 : 1e9;
    float w = (float)want;
    double ulp = fabs((double)nextafterf(w, INFINITY) - (double)w);
    if (ulp == 0) ulp = 1e-45;
    return fabs((double)got - want) / ulp;
}

static void scan(const char *name, float (*f)(float), double (*ref)(double), float lo, float hi) {
    double worst = 0;
    float worst_x = 0;
    long n = 0;
    /* every 1024th float between lo and hi, both signs handled by the range */
    for (float x = lo; x < hi; n++) {
        double e = ulp_err(f(x), ref((double)x));
        if (e > worst) { worst = e; worst_x = x; }
        uint32_t b;
        memcpy(&b, &x, 4);
        if (!signbit(x)) b += 1024; else if (b - 1024 > 0x80000000u) b -= 1024; else { x = 0; continue; }
        memcpy(&x, &b, 4);
    }
    fprintf(stderr, "  detmath: %s max error %.3f ulp vs libm (at %.9g, %ld points)\n", name, worst,
            worst_x, n);
    CHECK(worst <= 0.5 + 1e-3, "%s: %.3f ulp at %.9g", name, worst, worst_x);
}

static void test_exp(void) { scan("expf", fdd_expf, exp, -103.9f, 88.7f); }
static void test_erf(void) { scan("erff", fdd_erff, erf, -6.0f, 6.0f); }
static void test_tanh(void) { scan("tanhf", fdd_tanhf, tanh, -12.0f, 12.0f); }

static void test_special(void) {
    CHECK(fdd_expf(0.0f) == 1.0f, "exp(0)");
    CHECK(fdd_expf(-INFINITY) == 0.0f, "exp(-inf)");
    CHECK(isinf(fdd_expf(INFINITY)), "exp(inf)");
    CHECK(isinf(fdd_expf(89.0f)), "exp overflow");
    CHECK(fdd_expf(-200.0f) == 0.0f, "exp underflow");
    CHECK(isnan(fdd_expf(NAN)) && isnan(fdd_erff(NAN)) && isnan(fdd_tanhf(NAN)), "NaN in, NaN out");
    CHECK(fdd_erff(INFINITY) == 1.0f && fdd_erff(-INFINITY) == -1.0f, "erf(+-inf)");
    CHECK(fdd_tanhf(-INFINITY) == -1.0f, "tanh(-inf)");
    CHECK(fdd_erff(1e-30f) == (float)(1e-30 * 1.1283791670955126), "erf tiny");
    CHECK(signbit(fdd_erff(-0.0f)) && signbit(fdd_tanhf(-0.0f)), "odd at -0");
}

/* Golden bits: any change to the algorithms shows up here. */
static void test_golden_bits(void) {
    uint64_t seed = 42, h = 1469598103934665603ull;
    for (int i = 0; i < 100000; i++) {
        float x = test_rng_float(&seed) * 20.0f;
        float v[3] = {fdd_expf(x), fdd_erff(x), fdd_tanhf(x)};
        uint32_t b[3];
        memcpy(b, v, sizeof b);
        for (int j = 0; j < 3; j++) h = (h ^ b[j]) * 1099511628211ull;
    }
    fprintf(stderr, "  detmath: golden hash %016llx\n", (unsigned long long)h);
    CHECK(h == 0x41fef826a9e20a17ull, "the functions changed: hash %016llx", (unsigned long long)h);
}

/* The array versions (vector loops on AVX-512) give the scalar bits. */
static void test_arrays(void) {
    enum { N = 100003 };
    static float x[N], a[N], b[N];
    uint64_t seed = 9;
    for (int i = 0; i < N; i++) x[i] = test_rng_float(&seed) * (i % 7 == 0 ? 120.0f : 12.0f);
    x[0] = NAN; x[1] = INFINITY; x[2] = -INFINITY; x[3] = -0.0f; x[4] = 88.8f; x[5] = -104.5f;
    for (int isa = 0; isa < FDD_ISA_COUNT; isa++) {
        if (!fdd_isa_available((fdd_isa)isa)) continue;
        memcpy(a, x, sizeof x);
        fdd_expf_n((fdd_isa)isa, a, N);
        for (int i = 0; i < N; i++) b[i] = fdd_expf(x[i]);
        CHECK(!memcmp(a, b, sizeof a), "expf_n on %s differs from fdd_expf", fdd_isa_name((fdd_isa)isa));
        memcpy(a, x, sizeof x);
        fdd_gelu_n((fdd_isa)isa, a, N);
        for (int i = 0; i < N; i++) b[i] = fdd_geluf(x[i]);
        CHECK(!memcmp(a, b, sizeof a), "gelu_n on %s differs from fdd_geluf", fdd_isa_name((fdd_isa)isa));
    }
}

int main(void) {
    RUN(test_special);
    RUN(test_exp);
    RUN(test_erf);
    RUN(test_tanh);
    RUN(test_golden_bits);
    RUN(test_arrays);
    return test_summary("detmath");
}

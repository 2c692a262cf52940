/* test.h — the tiny test harness shared by every tests/test_*.c program.
 *
 *   static void test_something(void) { CHECK(x == 1, "x is %d", x); }
 *   int main(void) { RUN(test_something); return test_summary("something"); }
 *
 * A test passes when none of its CHECKs fail.  Each program ends with a line
 * "RESULT <name> <passed> <failed>" that tests/run.sh adds up. */
#ifndef FDD_TEST_H
#define FDD_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

static int test_passed_, test_failed_, test_cur_failed_;
static const char *test_cur_;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            if (test_cur_failed_ < 5) {                                           \
                fprintf(stderr, "FAIL %s (%s:%d): %s: ", test_cur_, __FILE__,     \
                        __LINE__, #cond);                                         \
                fprintf(stderr, __VA_ARGS__);                                     \
                fputc('\n', stderr);                                              \
            }                                                                     \
            test_cur_failed_++;                                                   \
        }                                                                         \
    } while (0)

/* CHECK that returns from the test at once (when going on would crash). */
#define REQUIRE(cond, ...)                                                        \
    do {                                                                          \
        int before_ = test_cur_failed_;                                           \
        CHECK(cond, __VA_ARGS__);                                                 \
        if (test_cur_failed_ != before_) return;                                  \
    } while (0)

#define RUN(fn) test_run_(#fn, fn)

static void test_run_(const char *name, void (*fn)(void)) {
    test_cur_ = name;
    test_cur_failed_ = 0;
    fn();
    if (test_cur_failed_) {
        test_failed_++;
        fprintf(stderr, "FAIL %s (%d checks failed)\n", name, test_cur_failed_);
    } else {
        test_passed_++;
        if (getenv("TEST_VERBOSE")) fprintf(stderr, "ok   %s\n", name);
    }
}

static int test_summary(const char *name) {
    printf("RESULT %s %d %d\n", name, test_passed_, test_failed_);
    return test_failed_ ? 1 : 0;
}

/* Deterministic test data: SplitMix64, the PRNG the reference scripts in
 * tests/reference/ implement too. */
static inline uint64_t test_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Uniform float in [-1, 1) with 24 random bits. */
static inline float test_rng_float(uint64_t *s) {
    return (float)((int32_t)(test_rng_next(s) >> 40) - (1 << 23)) / (float)(1 << 23);
}

#endif

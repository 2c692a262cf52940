# fdd — plain Makefile.  `make` builds ./fdd and ./libfdd.a; `make test` runs
# every test; `make test-san` the same under ASan+UBSan; `make bench` the
# benchmarks (never part of the tests); `make fuzz` the libFuzzer harnesses.
CC      ?= cc
OPT     ?= -O2
BUILD   ?= build
# -ffp-contract=off: a fused multiply-add happens only where the code calls
# fmaf or an FMA intrinsic, never by the compiler's choice (reproducibility).
CFLAGS_BASE = -std=c11 $(OPT) -g -Wall -Wextra -ffp-contract=off -fno-fast-math \
              -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc -pthread
CFLAGS  ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS)
LDLIBS  = -lm -pthread

MACHINE := $(shell $(CC) -dumpmachine)
# ISA flags go on the kernel files only: the rest of the code must run on any
# CPU of the architecture; the kernels are chosen at run time by CPUID.
ifneq (,$(findstring x86_64,$(MACHINE)))
ISA_avx2   = -mavx2 -mfma
ISA_avx512 = -mavx512f -mfma
endif

LIB_SRC  := $(filter-out src/cli.c,$(wildcard src/*.c))
LIB_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
HDRS     := include/fdd.h $(wildcard src/*.h)

.PHONY: all run-tests test test-san test-corpus bench bench-gemm fuzz clean print-isa
all: fdd libfdd.a

$(BUILD)/obj/%.o: src/%.c $(HDRS) | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) $(ISA_$(patsubst gemm_%,%,$*)) -c $< -o $@

$(BUILD)/obj $(BUILD)/tests $(BUILD)/bench:
	mkdir -p $@

LIB := $(BUILD)/libfdd.a
$(LIB): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/fdd: $(BUILD)/obj/cli.o $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

# The default build's products also sit at the top of the tree.
fdd: $(BUILD)/fdd
	cp $< $@
libfdd.a: $(LIB)
	cp $< $@

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(LIB) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB) | $(BUILD)/bench
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Tests run from the top of the tree; FDD_BIN is the CLI under test.
run-tests: $(BUILD)/fdd $(TEST_BIN)
	@FDD_BIN=$(BUILD)/fdd sh tests/run.sh $(BUILD)/tests

test: all
	@$(MAKE) --no-print-directory run-tests

# The same tests in a separate build tree under AddressSanitizer and UBSan.
test-san:
	@$(MAKE) --no-print-directory BUILD=build/san OPT=-O1 \
	  CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  run-tests

# Every decodable image under ../shared/data against Pillow's digests
# (tests/reference/pillow_digests.py made tests/data/corpus-digests.txt).
SHARED_DATA ?= ../shared/data
$(BUILD)/corpus: tests/corpus.c tests/test_image.h $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)
test-corpus: $(BUILD)/corpus
	@if [ -d "$(SHARED_DATA)" ]; then $(BUILD)/corpus tests/data/corpus-digests.txt $(SHARED_DATA) --known tests/data/corpus-known.txt; \
	 else echo "test-corpus: skipped: $(SHARED_DATA) is absent"; fi

# Benchmarks: never part of the tests.  Medians and side-by-side ratios.
bench: $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done
bench-gemm: $(BUILD)/bench/bench_gemm
	$(BUILD)/bench/bench_gemm
# Decode speed vs libjpeg-turbo and Pillow; the photo set is built on first
# use into build/bench-decode (bench/make_decode_set.py), never committed.
.PHONY: bench-decode
bench-decode: $(BUILD)/bench/bench_decode
	$(BUILD)/bench/bench_decode $(BUILD)/bench-decode

# libFuzzer harnesses (clang), one per parser, FUZZ_SECONDS each, one core.
FUZZ_SECONDS ?= 600
FUZZ_CC ?= clang
FUZZ_FLAGS = -std=c11 -O1 -g -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc -pthread \
             -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
build/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(HDRS)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -mavx2 -mfma -mavx512f -o $@ $< $(LIB_SRC) -lm
# FUZZ_TARGETS="fuzz_webp fuzz_jpeg" picks harnesses (default: all).
FUZZ_TARGETS ?= $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC))
fuzz: $(addprefix build/fuzz/,$(FUZZ_TARGETS))
	@for f in $^; do n=$$(basename $$f); seeds=tests/data/$${n#fuzz_}; [ -d $$seeds ] || seeds=; mkdir -p build/fuzz/corpus-$$n; \
	  echo "== $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_len=262144 -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build/fuzz/$$n- build/fuzz/corpus-$$n $$seeds \
	    > build/fuzz/$$n.log 2>&1; rc=$$?; tail -n 3 build/fuzz/$$n.log; [ $$rc = 0 ] || exit 1; done

print-isa: fdd
	./fdd isa

clean:
	rm -rf build fdd libfdd.a

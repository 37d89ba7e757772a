# attnd — one entry point.  `make` builds the library and tools; `make test`
# and `make run` install the Debian packages they need first (make deps).
CC      ?= cc
BUILD   ?= build
PKGS     = openblas jansson
SERVER_PKGS = libmicrohttpd libuv
TEST_PKGS = cmocka

OPT     ?= -O2 -march=native
ifdef PORTABLE
OPT      = -O2
endif
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter -Wno-pass-failed
CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -fPIC -fopenmp-simd -g $(OPT) $(WARN) -Icore/include -Icore \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(SAN)
LDFLAGS += $(SAN)
LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

ifdef ASAN
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
BUILD    = build/asan
endif

CORE_SRC   = $(sort $(wildcard core/*.c core/kernels/*.c core/mech/*.c))
CORE_OBJ   = $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
SERVER_SRC = $(sort $(wildcard server/*.c))
SERVER_OBJ = $(SERVER_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC   = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN   = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

TOOLS = $(BUILD)/attn $(BUILD)/golden
ifneq ($(SERVER_SRC),)
TOOLS += $(BUILD)/attnd
endif

.PHONY: all deps test-deps test unit golden run asan clean bench fuzz fuzz-build install soak
all: $(BUILD)/libattn.a $(BUILD)/libattn.so $(TOOLS)

deps:
	@bash scripts/deps.sh

# What the integration, client and deployment tests need besides the build.
test-deps:
	@bash scripts/deps.sh --test

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"; $(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libattn.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libattn.so: $(CORE_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LIBS)

# Tools link the whole archive so that every mechanism object is present.
WHOLE = -Wl,--whole-archive $(BUILD)/libattn.a -Wl,--no-whole-archive

$(BUILD)/attn: $(BUILD)/obj/tools/attn.o $(BUILD)/libattn.a
	$(CC) $(LDFLAGS) -o $@ $< $(WHOLE) $(LIBS)

$(BUILD)/golden: $(BUILD)/obj/tests/golden/golden.o $(BUILD)/libattn.a
	$(CC) $(LDFLAGS) -o $@ $< $(WHOLE) $(LIBS)

$(BUILD)/attnd: $(SERVER_OBJ) $(BUILD)/libattn.a
	$(CC) $(LDFLAGS) -o $@ $(SERVER_OBJ) $(WHOLE) $(LIBS) \
	    $(shell pkg-config --libs $(SERVER_PKGS) 2>/dev/null)

$(BUILD)/obj/server/%.o: CFLAGS += $(shell pkg-config --cflags $(SERVER_PKGS) 2>/dev/null)
# The fused attention kernel is written for fused multiply-adds (-std=c11 turns contraction off).
$(BUILD)/obj/core/mech/full_fused.o $(BUILD)/obj/core/kernels/gemm.o: CFLAGS += -ffp-contract=fast

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libattn.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(WHOLE) $(LIBS) $(shell pkg-config --libs $(TEST_PKGS))

# Unit tests of server code link the server objects they test.
$(BUILD)/tests/test_json_num: $(BUILD)/obj/server/json_num.o

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

golden: $(BUILD)/attn $(BUILD)/golden
	@bash tests/golden/run.sh $(BUILD)

# Every tests/integration/run.sh, clients/*/test.sh and deploy/test.sh is
# called with the build directory; each starts what it needs on loopback.
# So are tests/hostile (bad input), tests/faults (disconnects, slow clients,
# SIGTERM, kill -9, full queue) and tests/soak (30 s of mixed load).
SUITES = $(wildcard tests/integration/run.sh tests/hostile/run.sh tests/faults/run.sh tests/soak/run.sh \
                    clients/*/test.sh deploy/test.sh proto/test.sh)
# The server suites that run against the sanitizer build too (make asan).
ASAN_SUITES = $(wildcard tests/integration/run.sh tests/hostile/run.sh tests/faults/run.sh)

test: deps test-deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit golden
	@bash bench/smoke.sh $(BUILD)
	@set -e; for s in $(SUITES); do echo "== $$s"; bash $$s $(BUILD); done
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

asan: deps test-deps
	@$(MAKE) --no-print-directory ASAN=1 OPT=-O1 all unit golden
	@set -e; for s in $(ASAN_SUITES); do echo "== $$s (asan)"; ASAN_OPTIONS=detect_leaks=1 bash $$s build/asan; done

# Five minutes of mixed load from wrk (no error but 503, RSS growth under 5%
# after the warm-up), then a few hundred requests under valgrind memcheck on
# a build without -march=native.  Not part of `make test`.
SOAK_SECONDS ?= 300
SOAK_VALGRIND_REQUESTS ?= 300
soak: deps test-deps
	@ATTND_DEPS_EXTRA="wrk valgrind" bash scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=build/valgrind PORTABLE=1 build/valgrind/attnd
	@bash tests/soak/run.sh $(BUILD) $(SOAK_SECONDS)
	@/usr/bin/python3 -B tests/soak/soak.py valgrind build/valgrind $(SOAK_VALGRIND_REQUESTS)

# Benchmarks (issue 6): results in bench/results/<date>.md, summary in BENCHMARKS.md.
bench: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -f bench/Makefile BUILD=$(BUILD) run
	@bash bench/server/run.sh $(BUILD)

run: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/run.sh $(BUILD)

# ---- fuzzing (clang + libFuzzer, Debian libclang-rt-14-dev) ----
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_SRC  = $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN  = $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SAN  = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

# tests/fuzz/fuzz_server_*.c link every server object but main.o; the
# globals they need (svc_cfg, svc_ready, svc_draining) live in config.o.
fuzz-build: deps
	@ATTND_DEPS_EXTRA="clang libclang-rt-14-dev" bash scripts/deps.sh
	@$(MAKE) --no-print-directory CC=clang BUILD=build/fuzz OPT=-O1 \
	    SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" build/fuzz/libattn.a $(if $(filter tests/fuzz/fuzz_server_%,$(FUZZ_SRC)),build/fuzz/server-objs)
	@set -e; for src in $(FUZZ_SRC); do t=$$(basename $$src .c); \
	  extra=""; case $$t in fuzz_server_*) extra="$(filter-out build/fuzz/obj/server/main.o,$(SERVER_SRC:%.c=build/fuzz/obj/%.o)) $$(pkg-config --libs $(SERVER_PKGS))";; esac; \
	  clang -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer -Icore/include -Icore -Iserver $$src $$extra \
	    -Wl,--whole-archive build/fuzz/libattn.a -Wl,--no-whole-archive $(LIBS) -o build/fuzz/$$t; done

build/fuzz/server-objs: $(SERVER_SRC:%.c=build/fuzz/obj/%.o)
	@touch $@

# Runs every target for FUZZ_SECONDS on a scratch copy of its committed corpus.
fuzz: fuzz-build
	@set -e; for src in $(FUZZ_SRC); do t=$$(basename $$src .c); c=$${t#fuzz_}; \
	  mkdir -p build/fuzz/corpus/$$c build/fuzz/crashes; \
	  if [ -d tests/fuzz/corpus/$$c ]; then cp -r tests/fuzz/corpus/$$c/. build/fuzz/corpus/$$c/; fi; \
	  echo "== $$t ($(FUZZ_SECONDS)s)"; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 \
	    -artifact_prefix=build/fuzz/crashes/$$t- -print_final_stats=0 build/fuzz/corpus/$$c 2>build/fuzz/$$t.log \
	    || { tail -40 build/fuzz/$$t.log; exit 1; }; \
	  grep -E "^#[0-9]+.*(DONE|pulse)" build/fuzz/$$t.log | tail -1; done

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

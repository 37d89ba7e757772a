# attnd — one entry point.  `make` builds the library and tools; `make test`
# and `make run` install the Debian packages they need first (make deps).
CC      ?= cc
BUILD   ?= build
PKGS     = openblas jansson
SERVER_PKGS = libmicrohttpd libuv zlib libnghttp2 libprotobuf-c
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
# Run-time kernel selection (core/cpu.c): these sources are built once per
# instruction-set variant, the variant's name suffixed to their symbols, with
# the variant's flags instead of OPT's -march (so PORTABLE=1 has them too).
VARIANT_SRC = core/mech/full_fused.c core/kernels/gemm.c core/kernels/softmax.c core/kernels/half.c \
              core/kernels/conv_wino.c core/kernels/rowops.c
ifneq ($(findstring x86_64,$(shell $(CC) -dumpmachine)),)
VARIANTS   = avx512 avx2 generic
VFLAGS_avx512  = -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c -mpopcnt
VFLAGS_avx2    = -mavx2 -mfma -mf16c -mpopcnt
VFLAGS_generic = -march=x86-64
else
VARIANTS   = generic
endif
# -fno-trapping-math: without AVX-512's masks GCC vectorises the softmax
# loops' selects only when comparisons may not trap (no value changes: FP
# exceptions are never read).
VCFLAGS    = $(filter-out -march=% -mtune=% -mcpu=% -mavx% -mfma -mf16c -msse%,$(CFLAGS)) -fno-trapping-math
CORE_OBJ   = $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out $(VARIANT_SRC),$(CORE_SRC))) \
             $(foreach v,$(VARIANTS),$(VARIANT_SRC:%.c=$(BUILD)/obj/%.$(v).o))
SERVER_SRC = $(sort $(wildcard server/*.c))
# The gRPC messages: C generated from proto/grpc/grpc_service.proto at build
# time by protoc-c (Debian protobuf-c-compiler) into $(BUILD)/gen.
GRPC_PROTO = proto/grpc/grpc_service.proto
SERVER_OBJ = $(SERVER_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/grpc_service.pb-c.o
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

# The core exports only what attn.h marks ATTN_API.  The registry refers to
# every mechanism, so a plain link of the archive gets all of them.
$(BUILD)/obj/core/%.o: CFLAGS += -fvisibility=hidden
LIBATTN = $(BUILD)/libattn.a

$(BUILD)/attn: $(BUILD)/obj/tools/attn.o $(BUILD)/libattn.a
	$(CC) $(LDFLAGS) -o $@ $< $(LIBATTN) $(LIBS)

$(BUILD)/golden: $(BUILD)/obj/tests/golden/golden.o $(BUILD)/libattn.a
	$(CC) $(LDFLAGS) -o $@ $< $(LIBATTN) $(LIBS)

$(BUILD)/attnd: $(SERVER_OBJ) $(BUILD)/libattn.a
	$(CC) $(LDFLAGS) -o $@ $(SERVER_OBJ) $(LIBATTN) $(LIBS) \
	    $(shell pkg-config --libs $(SERVER_PKGS) 2>/dev/null)

$(BUILD)/obj/server/%.o: CFLAGS += $(shell pkg-config --cflags $(SERVER_PKGS) 2>/dev/null) -I$(BUILD)/gen
$(SERVER_SRC:%.c=$(BUILD)/obj/%.o): | $(BUILD)/gen/grpc_service.pb-c.h

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/grpc/%.proto
	@mkdir -p $(BUILD)/gen
	@echo "  PROTOC-C $<"; protoc-c --c_out=$(BUILD)/gen -Iproto/grpc $<
# Generated code: the project's warnings are not its author's.
$(BUILD)/obj/gen/grpc_service.pb-c.o: $(BUILD)/gen/grpc_service.pb-c.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"; $(CC) $(CPPFLAGS) $(filter-out -Werror -Wshadow -Wstrict-prototypes,$(CFLAGS)) \
	    $(shell pkg-config --cflags libprotobuf-c 2>/dev/null) -I$(BUILD)/gen -c $< -o $@

# The explorer page (ui/) compiled into attnd: server/ui.c includes the
# generated header of its files.
UI_FILES = $(sort $(wildcard ui/*.html ui/*.js ui/*.css))
$(BUILD)/gen/ui_files.h: $(UI_FILES) scripts/embed_ui.sh
	@mkdir -p $(dir $@)
	@echo "  GEN $@"; bash scripts/embed_ui.sh $@ $(UI_FILES)
$(BUILD)/obj/server/ui.o: $(BUILD)/gen/ui_files.h
$(BUILD)/obj/server/ui.o: CPPFLAGS += -I$(BUILD)/gen

define variant_rule
$(BUILD)/obj/%.$(1).o: %.c
	@mkdir -p $$(dir $$@)
	@echo "  CC $$< [$(1)]"; $$(CC) $$(CPPFLAGS) $$(VCFLAGS) $$(VFLAGS_$(1)) -DATTN_VARIANT=$(1) -MMD -MP -c $$< -o $$@
endef
$(foreach v,$(VARIANTS),$(eval $(call variant_rule,$(v))))
# The fused attention kernel and the sgemm are written for fused multiply-adds
# (-std=c11 turns contraction off).
$(foreach v,$(VARIANTS),$(BUILD)/obj/core/mech/full_fused.$(v).o $(BUILD)/obj/core/kernels/gemm.$(v).o $(BUILD)/obj/core/kernels/conv_wino.$(v).o): \
    CFLAGS += -ffp-contract=fast

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libattn.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBATTN) $(LIBS) $(shell pkg-config --libs $(TEST_PKGS))

# full's forward allocates nothing: the archive's calls to the allocator are
# wrapped and counted by the test (tests/unit/test_full_workspace.c).
comma := ,
$(BUILD)/tests/test_full_workspace: LDFLAGS += $(addprefix -Wl$(comma)--wrap=,malloc calloc realloc aligned_alloc posix_memalign mmap)

# Unit tests of server code link the server objects they test.
$(BUILD)/tests/test_json_num: $(BUILD)/obj/server/json_num.o
# The scheduler alone: no http.o, no libmicrohttpd.
$(BUILD)/tests/test_sched: $(addprefix $(BUILD)/obj/server/,sched.o config.o buf.o reply.o err.o)
$(BUILD)/tests/test_sched: LIBS += $(shell pkg-config --libs libuv 2>/dev/null)
$(BUILD)/obj/tests/unit/test_sched.o: CFLAGS += $(shell pkg-config --cflags libuv 2>/dev/null)
# The wire codec alone.
$(BUILD)/tests/test_codec: $(addprefix $(BUILD)/obj/server/,codec_json.o codec_binary.o json_scan.o json_num.o config.o buf.o reply.o err.o log.o)
# Bearer tokens alone.
$(BUILD)/tests/test_auth: $(addprefix $(BUILD)/obj/server/,auth.o config.o buf.o reply.o err.o log.o)
# The sequence table alone.
$(BUILD)/tests/test_seqstore: $(addprefix $(BUILD)/obj/server/,seqstore.o config.o buf.o reply.o err.o)
# The model table and repository folder alone (svc_metrics_model stubbed by the test).
$(BUILD)/tests/test_repo: $(addprefix $(BUILD)/obj/server/,repo.o names.o config.o buf.o reply.o err.o log.o)
# The route table without a socket: every server object but main.o.
$(BUILD)/tests/test_router: $(filter-out %/main.o,$(SERVER_OBJ))
$(BUILD)/tests/test_router: LIBS += $(shell pkg-config --libs $(SERVER_PKGS) 2>/dev/null)
$(BUILD)/obj/tests/unit/test_router.o: CFLAGS += $(shell pkg-config --cflags $(SERVER_PKGS) 2>/dev/null) -I$(BUILD)/gen

# tests/link: the archive linked by a plain program, and the .so's exports.
$(BUILD)/tests/registry_link: tests/link/registry_link.c $(BUILD)/libattn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libattn.a $(LIBS)

unit: $(UNIT_BIN) $(BUILD)/tests/registry_link $(BUILD)/libattn.so
	@set -e; for t in $(UNIT_BIN) $(BUILD)/tests/registry_link; do echo "== $$t"; $$t; done
	@bash tests/link/exports.sh $(BUILD)/libattn.so core/include/attn.h

golden: $(BUILD)/attn $(BUILD)/golden
	@bash tests/golden/run.sh $(BUILD)

# `make test` = `all`, then these parts in this order; each also runs alone
# (after `make deps test-deps` once).  Every suite script is called with the
# build directory and starts what it needs on loopback.  The scripts are
# prerequisites, so a missing one stops make ("No rule to make target").
#   test-unit    every tests/unit/test_*.c (cmocka)          (alias: unit)
#   test-golden  tests/golden/run.sh: every golden case      (alias: golden)
#   test-bench   bench/smoke.sh: each mechanism at a tiny size, against PyTorch
#   test-server  tests/integration, tests/hostile (bad input), tests/faults
#                (disconnects, slow clients, SIGTERM, kill -9, full queue) and
#                tests/soak (30 s of mixed load)
#   test-clients clients/*/test.sh (C, JavaScript, Python)
#   test-deploy  deploy/test.sh
#   test-proto   proto/test.sh
#   test-ui      ui/test.sh: the explorer page in headless chromium
#   test-fuzz    every fuzz target for FUZZ_SMOKE_SECONDS
TEST_PARTS    = test-unit test-golden test-bench test-server test-clients test-deploy test-proto test-ui test-fuzz
.PHONY: $(TEST_PARTS)
# The server suites that run against the sanitizer build too (make asan).
ASAN_SUITES   = tests/integration/run.sh tests/hostile/run.sh tests/faults/run.sh
SERVER_SUITES = $(ASAN_SUITES) tests/soak/run.sh
CLIENT_SUITES = clients/c/test.sh clients/js/test.sh clients/python/test.sh
SUITES        = $(SERVER_SUITES) $(CLIENT_SUITES) deploy/test.sh proto/test.sh ui/test.sh
# $(call run_suites,scripts,build dir[,environment]): each script in turn, stops at the first failure.
run_suites = set -e; for s in $(1); do echo "== $$s"; $(3) bash $$s $(2); done

test: $(SUITES) bench/smoke.sh tests/golden/run.sh deps test-deps
	@$(MAKE) --no-print-directory all
	@set -e; for t in $(TEST_PARTS); do $(MAKE) --no-print-directory $$t; done

test-unit: unit
test-golden: golden
test-bench: bench/smoke.sh all
	@bash bench/smoke.sh $(BUILD)
test-server: $(SERVER_SUITES) all
	@$(call run_suites,$(SERVER_SUITES),$(BUILD))
test-clients: $(CLIENT_SUITES) all
	@$(call run_suites,$(CLIENT_SUITES),$(BUILD))
test-deploy: deploy/test.sh all
	@$(call run_suites,deploy/test.sh,$(BUILD))
test-proto: proto/test.sh all
	@$(call run_suites,proto/test.sh,$(BUILD))
test-ui: ui/test.sh all
	@$(call run_suites,ui/test.sh,$(BUILD))
test-fuzz:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

# The sanitizer build (build/asan, -O1): test-unit, test-golden and the
# ASAN_SUITES against it, with leak detection.
asan: $(ASAN_SUITES) deps test-deps
	@$(MAKE) --no-print-directory ASAN=1 OPT=-O1 all unit golden
	@$(call run_suites,$(ASAN_SUITES),build/asan,ASAN_OPTIONS=detect_leaks=1)

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
	  extra=""; case $$t in fuzz_server_*) extra="$(filter-out build/fuzz/obj/server/main.o,$(SERVER_SRC:%.c=build/fuzz/obj/%.o)) build/fuzz/obj/gen/grpc_service.pb-c.o $$(pkg-config --libs $(SERVER_PKGS))";; esac; \
	  clang -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer -Icore/include -Icore -Iserver -Ibuild/fuzz/gen $$src $$extra \
	    -Wl,--whole-archive build/fuzz/libattn.a -Wl,--no-whole-archive $(LIBS) -o build/fuzz/$$t; done

build/fuzz/server-objs: $(SERVER_SRC:%.c=build/fuzz/obj/%.o) build/fuzz/obj/gen/grpc_service.pb-c.o
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

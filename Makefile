# Thin wrapper over CMake for the README's commands.
#   make run        build, then run fleet's main job, `fleet bench`, on the default backend
#   make demo       build, then run the parallel demo on the default backend
#   make test       build, then run the whole test suite (CTest)
#   make test-tsan  the suite under ThreadSanitizer
#   make test-asan  the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make static     clang thread-safety analysis, cppcheck, gcc -fanalyzer
#   make spin       model-check the concurrent protocols (verify/*.pml)
#   make fuzz       fuzz the safetensors and ONNX readers (libFuzzer, FUZZ_SECONDS each, default 60)
#   make soak       16 threads of mixed work under a 32M memory limit for
#                   SOAK_SECONDS (default 300), every value checked
#   make verify     the whole verification suite, writes verify-report.md
#                   (VERIFY_FLAGS=--quick: shorter fuzzing and bench, as CI runs it)
#   make bench      alias of make run (BENCH_FLAGS passes options, e.g. --quick)
#   make onnx-models  real exported models (BERTs, GPT-2, ResNet-50) against onnxruntime
#   make bench-alloc  the allocator micro-benchmark
#   make bench-step   host time per model step (tiny models, one thread)
#   make install    install into PREFIX (default /usr/local)
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
BUILD   ?= build
PREFIX  ?= /usr/local
CMAKE_FLAGS ?=
# Sanitizer builds scale the stress tests down (see tests/harness.h).
SAN_SCALE ?= 0.25
FUZZ_SECONDS ?= 60
SOAK_SECONDS ?= 300
BENCH_FLAGS ?=
VERIFY_FLAGS ?=

.PHONY: all deps build demo run test test-tsan test-asan static spin fuzz soak verify bench bench-alloc bench-step onnx-models install clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run bench: build
	./$(BUILD)/fleet bench $(BENCH_FLAGS)

demo: build
	./$(BUILD)/fleet demo

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-tsan: deps
	cmake -S . -B build-tsan -DFLEET_SANITIZE=thread $(CMAKE_FLAGS) >/dev/null
	cmake --build build-tsan -j $(JOBS)
	FLEET_TEST_SCALE=$(SAN_SCALE) TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  ctest --test-dir build-tsan --output-on-failure -j $(JOBS)

test-asan: deps
	cmake -S . -B build-asan -DFLEET_SANITIZE=address $(CMAKE_FLAGS) >/dev/null
	cmake --build build-asan -j $(JOBS)
	FLEET_TEST_SCALE=$(SAN_SCALE) ASAN_OPTIONS="detect_leaks=1 abort_on_error=1" \
	  UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1" \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS)

static:
	@./scripts/install-deps.sh clang cppcheck
	./scripts/static-checks.sh

spin:
	@./scripts/install-deps.sh spin
	./verify/run-spin.sh

fuzz:
	./scripts/fuzz.sh $(FUZZ_SECONDS)

soak: build
	./$(BUILD)/tests/fleet-soak $(SOAK_SECONDS)

verify: deps
	@./scripts/install-deps.sh spin clang cppcheck python3
	python3 ./scripts/verify.py $(VERIFY_FLAGS)

onnx-models: build
	./scripts/onnx-models.sh $(BUILD)

bench-alloc: build
	./$(BUILD)/bench_alloc

bench-step: build
	./$(BUILD)/bench_step

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-tsan build-asan build-tsan-cpu build-asan-cpu build-verify-logs build-fuzz

# Thin wrapper: CMake + Ninja do the work. `make` builds build/switchyard.
BUILD      ?= build
BUILD_TYPE ?= Release
JOBS       ?= $(shell nproc)

# Debian 12 packages the build, the tests and the demo need.
DEPS := cmake ninja-build g++ ccache pkg-config python3 curl procps \
        libboost1.81-dev libboost-json1.81-dev libyaml-cpp-dev libspdlog-dev \
        prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev \
        clang libclang-rt-14-dev libhttp-parser-dev \
        prometheus wrk chromium docker-compose libssl-dev openssl \
        libnghttp2-dev nghttp2-client python3-grpcio python3-h2 libc-ares-dev dnsmasq-base

.PHONY: all build deps run test unit integration bench asan tsan fuzz fuzz-build clean test-container container-deps
FUZZ_RUNS ?= 10000000

all: build

deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Starts four demo backends in two regions and switchyard on config/switchyard.yaml.
run: build
	@config/run-demo.sh $(BUILD)

# The fuzz smoke runs first so that ctest's summary is the last thing printed: 20,000 inputs
# through each target. New inputs it finds go to build-fuzz/smoke-<target> (libFuzzer writes to
# the first directory), never into the seed corpus in the source tree.
FUZZERS := request_fuzz load_report_fuzz h2_fuzz config_fuzz admin_query_fuzz identity_fuzz
test: build fuzz-build
	@for f in $(FUZZERS); do \
	  echo "fuzz smoke: 20000 inputs through $$f"; \
	  mkdir -p build-fuzz/smoke-$$f; \
	  build-fuzz/$$f -runs=20000 -seed=1 build-fuzz/smoke-$$f tests/fuzz/$${f}_corpus \
	    > build-fuzz/smoke-$$f.log 2>&1 || { tail -40 build-fuzz/smoke-$$f.log; exit 1; }; \
	  tail -1 build-fuzz/smoke-$$f.log; \
	done
	cd $(BUILD) && ctest --output-on-failure -j 2 --timeout 600

# libFuzzer target, built with clang in its own tree (coverage + ASan + UBSan).
fuzz-build: deps
	@[ -f build-fuzz/build.ninja ] || cmake -S . -B build-fuzz -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DSWITCHYARD_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS) --target $(FUZZERS)

# FUZZ_RUNS inputs through each target (10 million by default), new inputs in
# build-fuzz/corpus-<target>; the final stats line of each run is printed.
fuzz: fuzz-build
	@for f in $(FUZZERS); do \
	  mkdir -p build-fuzz/corpus-$$f; \
	  echo "== $$f: $(FUZZ_RUNS) runs"; \
	  build-fuzz/$$f -runs=$(FUZZ_RUNS) -print_final_stats=1 build-fuzz/corpus-$$f \
	    tests/fuzz/$${f}_corpus > build-fuzz/$$f.log 2>&1 || { tail -60 build-fuzz/$$f.log; exit 1; }; \
	  grep -E "stat::(number_of_executed_units|new_units_added)|Done " build-fuzz/$$f.log; \
	done

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

integration: build
	cd $(BUILD) && ctest --output-on-failure -L integration

bench: build
	$(BUILD)/tests/switchyard_bench

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer.
asan: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSWITCHYARD_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j 2 --timeout 900

# The integration suite (and the unit tests) under ThreadSanitizer in build-tsan/: every
# report fails the test that caused it, except those tests/tsan.supp suppresses (each with
# its reason). Not part of `make test` (TSan multiplies run times by 5-15).
tsan: deps
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWITCHYARD_TSAN=ON
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  ctest --output-on-failure -j 2 --timeout 1800 -L "unit|integration"

# The image (docker/Dockerfile) built and run with the demo backends, on a Docker engine this
# starts itself if none is running (tests/container/run.sh). Not part of `make test`: the image
# build compiles switchyard once more inside it (several minutes on two cores).
CONTAINER_DEPS := docker.io docker-compose debootstrap
container-deps:
	@$(MAKE) --no-print-directory deps DEPS="$(CONTAINER_DEPS) curl python3"

# Exits 77 (make reports an error) when the machine has no Docker engine to be had.
test-container: container-deps
	tests/container/run.sh

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz

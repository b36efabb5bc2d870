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
        libnghttp2-dev nghttp2-client python3-grpcio

.PHONY: all build deps run test unit integration bench asan fuzz fuzz-build clean test-container
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

# The fuzz smoke runs first so that ctest's summary is the last thing printed. New inputs it
# finds go to build-fuzz/smoke-corpus (libFuzzer writes to the first directory), never into
# the seed corpus in the source tree.
test: build fuzz-build
	@echo "fuzz smoke: 20000 inputs through the request parser and normalisation"
	@mkdir -p build-fuzz/smoke-corpus
	@build-fuzz/request_fuzz -runs=20000 -seed=1 build-fuzz/smoke-corpus \
	  tests/fuzz/request_fuzz_corpus > build-fuzz/smoke.log 2>&1 \
	  || { tail -40 build-fuzz/smoke.log; exit 1; }
	@tail -1 build-fuzz/smoke.log
	@echo "fuzz smoke: 20000 inputs through the load-report parser"
	@mkdir -p build-fuzz/smoke-corpus-load-report
	@build-fuzz/load_report_fuzz -runs=20000 -seed=1 build-fuzz/smoke-corpus-load-report \
	  tests/fuzz/load_report_fuzz_corpus > build-fuzz/smoke-load-report.log 2>&1 \
	  || { tail -40 build-fuzz/smoke-load-report.log; exit 1; }
	@tail -1 build-fuzz/smoke-load-report.log
	@echo "fuzz smoke: 20000 inputs through HTTP/2 frames and HPACK"
	@mkdir -p build-fuzz/smoke-corpus-h2
	@build-fuzz/h2_fuzz -runs=20000 -seed=1 build-fuzz/smoke-corpus-h2 \
	  tests/fuzz/h2_fuzz_corpus > build-fuzz/smoke-h2.log 2>&1 \
	  || { tail -40 build-fuzz/smoke-h2.log; exit 1; }
	@tail -1 build-fuzz/smoke-h2.log
	cd $(BUILD) && ctest --output-on-failure -j 2 --timeout 600

# libFuzzer target, built with clang in its own tree (coverage + ASan + UBSan).
fuzz-build: deps
	@[ -f build-fuzz/build.ninja ] || cmake -S . -B build-fuzz -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DSWITCHYARD_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS) --target request_fuzz load_report_fuzz h2_fuzz

fuzz: fuzz-build
	mkdir -p build-fuzz/corpus
	build-fuzz/request_fuzz -runs=$(FUZZ_RUNS) -print_final_stats=1 build-fuzz/corpus tests/fuzz/request_fuzz_corpus
	mkdir -p build-fuzz/corpus-load-report
	build-fuzz/load_report_fuzz -runs=$(FUZZ_RUNS) -print_final_stats=1 build-fuzz/corpus-load-report tests/fuzz/load_report_fuzz_corpus
	mkdir -p build-fuzz/corpus-h2
	build-fuzz/h2_fuzz -runs=$(FUZZ_RUNS) -print_final_stats=1 build-fuzz/corpus-h2 tests/fuzz/h2_fuzz_corpus

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

# The image (docker/Dockerfile) built and run with the demo backends, on a Docker engine this
# starts itself if none is running (tests/container/run.sh). Not part of `make test`: the image
# build compiles switchyard once more inside it (several minutes on two cores).
CONTAINER_DEPS := docker.io debootstrap
test-container:
	@$(MAKE) --no-print-directory deps DEPS="$(CONTAINER_DEPS) curl python3"
	tests/container/run.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz

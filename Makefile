# Thin wrapper around CMake. `make` builds into build/ (binaries in build/bin/),
# `make test` installs missing Debian packages, builds and runs every test through ctest;
# `make demo` runs the whole pipeline on loopback with progress and a report.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?= --output-on-failure -j$(JOBS)
SOURCES     = $(shell git ls-files '*.c' '*.cc' '*.h' 2>/dev/null || find common producer worker tests -name '*.[ch]' -o -name '*.cc')

.PHONY: all build deps test demo asan valgrind format format-check clean

all: build

deps:
	@sh deploy/deps-debian.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

test: deps
	$(MAKE) build
	cd $(BUILD) && ctest $(CTEST_ARGS)

# The whole pipeline on loopback with live progress and a report (tests/demo/demo.py).
demo: deps
	$(MAKE) build
	VMH_BIN_DIR=$(CURDIR)/$(BUILD)/bin python3 tests/demo/demo.py

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DVMH_SANITIZE=ON

asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ctest $(CTEST_ARGS)

# Unit tests under valgrind's memcheck (also part of `make test`).
valgrind: deps
	$(MAKE) build
	cd $(BUILD) && ctest -L valgrind $(CTEST_ARGS)

format:
	clang-format -i $(SOURCES)

format-check:
	clang-format --dry-run -Werror $(SOURCES)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# Thin wrapper around CMake. `make` builds into build/ (binaries in build/bin/),
# `make test` installs missing Debian packages, builds and runs every test through ctest;
# `make demo` runs the whole pipeline on loopback with progress and a report; `make chaos` the
# chaos run at full size.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?= --output-on-failure -j$(JOBS)
SOURCES     = $(shell git ls-files '*.c' '*.cc' '*.h' 2>/dev/null || find common producer worker ctl tests -name '*.[ch]' -o -name '*.cc')

.PHONY: all build deps test demo chaos asan valgrind format format-check clean

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

# The chaos run at full size (tests/chaos/chaos.py: 1000 parties, 3 minutes of people editing
# both systems under faults, kills, a Redis crash and a broker outage; CHAOS_* variables change
# it). ctest -L chaos runs a smaller one.
chaos: deps
	$(MAKE) build
	VMH_BIN_DIR=$(CURDIR)/$(BUILD)/bin python3 tests/chaos/chaos.py --size big

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DVMH_SANITIZE=ON

# The suite under ASan+UBSan, but the chaos run and the deployment checks only once, in `make
# test` (a stress test of the whole pipeline and static checks: nothing for the sanitizers that
# the other tests do not reach; keeps `make test` + `make asan` within CI's budget).
asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ctest $(CTEST_ARGS) -LE 'chaos|deploy'

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

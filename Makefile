# KeyVal build, test and demo. The two commands a newcomer needs:
#   make demo   - the main job (see README)
#   make test   - everything CI checks
# Each target is a few lines; the steps live in scripts/ (shell) and
# xtask/ (Rust). Only the install-* targets install tools.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
# PROFILE=release-debug keeps full debug info (see Cargo.toml).
PROFILE ?= release
export CARGO PROFILE
REL := target/$(PROFILE)
PYENV := target/py-venv
# Every release-profile step builds this one package set, so cargo unifies
# features the same way each time and compiles `keyval` once (with the C
# ABI: feature capi).
RELEASE_PKGS := -p keyval -p keyval-cli -p raft-cluster --features keyval/capi
# The same for the test profile.
TEST_PKGS := -p keyval -p keyval-cli -p keyval-openraft

.PHONY: all build header header-check layers lint rust-test crashtest c-test c-example \
	install uninstall c-install-test go-test go-module-test py-wheel py-install py-test \
	py-sdist-test raft-example jepsen-bins jepsen-test jepsen test demo soak bench bigbench \
	bench-quick bench-tools raftbench docbench coverage fuzz clean \
	install-docbench-tools install-coverage-tools install-fuzz-tools

all: build

# The library (shared, static; SONAME libkeyval.so.0), the CLI, the Raft
# example, and target/pkgconfig/keyval.pc for the Go binding in this tree.
build:
	$(CARGO) build --profile $(PROFILE) --locked $(RELEASE_PKGS)
	scripts/c_lib.sh pc-dev

# Regenerate include/keyval.h from src/ffi/ (cbindgen, through xtask);
# header-check fails if the committed header is stale or exports a name
# outside kv_/KV_.
header:
	$(CARGO) run --locked -q -p xtask -- header
header-check:
	$(CARGO) run --locked -q -p xtask -- header --check

# The modules of src/ import only from layers below them (docs/design.md).
layers:
	python3 scripts/layers.py

lint: layers
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --exclude keyval-bench --exclude keyval-bench-polodb \
	  --all-targets --features keyval/capi,keyval/testing -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --no-deps -p keyval --features capi

# The engine's tests, then openraft's storage suite and the reopen/SIGKILL
# tests of the openraft adapter. The long-lived crash test runs on its own,
# bounded (KEYVAL_CRASHTEST_SECS per store kind, both at once).
CRASHTEST_TEST_SECS ?= 25
rust-test:
	$(CARGO) test --locked $(TEST_PKGS) -- --skip long_lived_
	KEYVAL_CRASHTEST_SECS=$(CRASHTEST_TEST_SECS) $(CARGO) test --locked $(TEST_PKGS) --test crashtest -- --nocapture

# The long-lived crash test for CRASHTEST_SECS (default 10 minutes), release
# build. KEYVAL_CRASHTEST_SEED=N replays a seed.
CRASHTEST_SECS ?= 600
crashtest:
	KEYVAL_CRASHTEST_SECS=$(CRASHTEST_SECS) $(CARGO) test --release --locked --test crashtest -- --nocapture

# C tests under valgrind, shared and static (scripts/c_test.sh).
c-test: build
	scripts/c_test.sh
c-example: build
	scripts/c_test.sh example

# Install the C library as distributions lay it out (PREFIX, LIBDIR,
# INCLUDEDIR, DESTDIR; see scripts/c_lib.sh), and check it as a user
# outside this repository would (pkg-config, --static, CMake).
install: build
	scripts/c_lib.sh install
uninstall:
	scripts/c_lib.sh uninstall
c-install-test: build
	bash tests/packaging/c_install.sh

# Go binding: cgo finds the library through target/pkgconfig/keyval.pc
# (written by `build`); go.work ties the three modules together. Then the
# modules as a user fetches them, from a file GOPROXY.
export PKG_CONFIG_PATH := $(CURDIR)/target/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))
go-test: build
	for m in . raftstore keyvalcollector; do \
	  (cd bindings/go/$$m && go vet ./... && go test -race -count=1 ./...); done
go-module-test: build go-test
	bash tests/packaging/go_module.sh

# Python binding: the published wheel, installed into target/py-venv; the
# sdist installed into a fresh venv outside the repository.
$(PYENV)/.deps: scripts/py_wheel.sh
	scripts/py_wheel.sh venv
py-wheel: $(PYENV)/.deps
	scripts/py_wheel.sh wheel
py-install: py-wheel
	scripts/py_wheel.sh install
py-test: py-install
	$(PYENV)/bin/mypy --strict bindings/python/keyval examples/demo/demo.py
	$(PYENV)/bin/pytest -q bindings/python/tests
py-sdist-test: $(PYENV)/.deps
	bash tests/packaging/python_sdist.sh

# Three openraft nodes on KeyVal over loopback TCP: failover, restart of
# the old leader from its directories, every acknowledged key everywhere.
raft-example: build
	$(REL)/raft-cluster

# Replicated KeyVal under faults with a linearizability check
# (scripts/jepsen.sh): the bounded run of make test, and the long one
# (make jepsen DURATION=30m).
JEPSEN_TEST_SECS ?= 60
DURATION ?= 30m
jepsen-bins: build
	scripts/jepsen.sh bins
jepsen-test: jepsen-bins
	scripts/jepsen.sh test $(JEPSEN_TEST_SECS)
jepsen: jepsen-bins
	scripts/jepsen.sh long $(DURATION)

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
# fdatasync ceiling, N = 1M; results, table and chart in docs/bench/. Then
# documents (vs SQLite JSON1 and PoloDB), the engine's own figures and
# hashicorp's raftbench. bench-quick: about a minute, N = 100k.
BENCH_N ?= 1000000
DOCBENCH_N ?= 100000
bench: build raftbench bench-tools docbench
	$(CARGO) run --release --locked -p keyval-bench --bin keyval-bench -- --n $(BENCH_N)
	$(PYENV)/bin/python bench/chart.py docs/bench/results.json docs/bench/results.png
	$(PYENV)/bin/python bench/python_bench.py docs/bench/results.md
	cd bindings/go && go test -run '^$$' -bench 'BenchmarkGet' -benchtime 2s . | tee $(CURDIR)/target/gobench.txt
	for e in engine_bench recovery_bench checkpoint_bench; do $(CARGO) run --release --locked --example $$e; done
	$(CARGO) run --release --locked -p keyval-bench --bin getbench
	$(CARGO) run --release --locked -p keyval-bench --bin txnbench -- --n $(BENCH_N)
	$(CARGO) run --release --locked -p keyval-bench --bin warmbench
	$(MAKE) bigbench
# Data larger than memory (bench/src/bin/bigbench.rs): every engine in its
# own memory cgroup (v1, as root) smaller than the data. The bounded size
# (1M keys of 4 KiB, 4.1 GB, under 512 MiB) takes about 8 minutes here;
# BIGBENCH_ARGS="--keys 4000000 --budget 1610612736" is the 16 GB dataset.
BIGBENCH_ARGS ?= --keys 1000000 --value-size 4096 --budget 536870912
bigbench: build
	$(CARGO) run --release --locked -p keyval-bench --bin bigbench -- $(BIGBENCH_ARGS) --out docs/bench/bigbench.md
bench-quick: build bench-tools
	$(CARGO) run --release --locked -p keyval-bench --bin keyval-bench -- --quick
	$(PYENV)/bin/python bench/chart.py docs/bench/results.json docs/bench/results.png
	$(PYENV)/bin/python bench/python_bench.py docs/bench/results.md --quick
bench-tools: py-install
	$(PYENV)/bin/pip install -q matplotlib lmdb rocksdict
raftbench: build
	cd bindings/go/raftstore && go test -run '^$$' -bench . -benchtime 1s | tee $(CURDIR)/target/raftbench.txt || true
	python3 bench/raftbench_table.py target/raftbench.txt > docs/bench/raftbench.md
	cat docs/bench/raftbench.md
# PoloDB builds RocksDB from source (about 15 minutes the first time),
# which needs libclang: make install-docbench-tools.
docbench:
	@ldconfig -p | grep -q libclang || { echo "docbench needs libclang: make install-docbench-tools"; exit 1; }
	$(CARGO) build --release --locked -p keyval-bench-polodb
	$(CARGO) run --release --locked -p keyval-bench --bin docbench -- --n $(DOCBENCH_N) --polodb target/release/docbench-polodb

# Coverage (scripts/coverage.sh) and fuzzing (scripts/fuzz.sh; FUZZ_CASES,
# FUZZ_SECONDS).
coverage:
	scripts/coverage.sh
fuzz:
	scripts/fuzz.sh

# The targets that install tools (as root for apt).
install-docbench-tools:
	apt-get update -qq && apt-get install -y -qq libclang-dev clang
install-coverage-tools:
	command -v cargo-llvm-cov >/dev/null || $(CARGO) install cargo-llvm-cov --locked
	rustup toolchain install nightly --profile minimal --component llvm-tools-preview
install-fuzz-tools:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	rustup toolchain install nightly --profile minimal

clean:
	$(CARGO) clean
	rm -rf target/c demo-data

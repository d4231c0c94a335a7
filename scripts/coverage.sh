#!/usr/bin/env bash
# Line and branch coverage of the engine under the Rust suite plus a short
# crash-test run (cargo-llvm-cov; branch coverage needs nightly: `make
# install-coverage-tools`). Prints the summary and the lines of the
# recovery code no test reaches; the figures are published in
# docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
if ! command -v cargo-llvm-cov >/dev/null || ! rustup toolchain list | grep -q nightly; then
  echo "coverage: needs cargo-llvm-cov and nightly: make install-coverage-tools" >&2
  exit 1
fi
files='wal/|kv/recovery.rs|kv/checkpoint.rs|raft/|tools/verify.rs|TOTAL'
$CARGO +nightly llvm-cov clean --workspace
$CARGO +nightly llvm-cov --branch --no-report --locked -- --skip long_lived_
KEYVAL_CRASHTEST_SECS=20 $CARGO +nightly llvm-cov --branch --no-report --locked --test crashtest
$CARGO +nightly llvm-cov report --branch --summary-only > target/coverage-summary.txt
$CARGO +nightly llvm-cov report --branch --show-missing-lines > target/coverage-missing.txt
head -3 target/coverage-summary.txt | tail -1
grep -E "$files" target/coverage-summary.txt
grep -E '^/.*(wal/|kv/recovery.rs|kv/checkpoint.rs|raft/)' target/coverage-missing.txt || true

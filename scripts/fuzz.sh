#!/usr/bin/env bash
# Fuzzing, longer than `make test` runs it. First the structure-aware
# property targets on stable Rust (documents: filters, updates, sorts,
# projections of arbitrary deep and wide JSON; the Raft log against a
# model; restore and docs-load input), FUZZ_CASES cases each; failing seeds
# land in the tests' *.proptest-regressions files, which `make test`
# replays. Then, if nightly and cargo-fuzz are there (`make
# install-fuzz-tools`), coverage-guided fuzzing, FUZZ_SECONDS per target;
# new findings land in fuzz/corpus, which plain `cargo test` replays.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cases=${FUZZ_CASES:-20000}
secs=${FUZZ_SECONDS:-60}
PROPTEST_CASES=$cases $CARGO test --locked --release -p keyval --test hostile_documents \
  --test raft_model -- fuzz raft_log_matches_model
PROPTEST_CASES=$((cases / 100)) $CARGO test --locked --release -p keyval-cli --test cli -- hostile_restore
if ! command -v cargo-fuzz >/dev/null || ! rustup toolchain list | grep -q nightly; then
  echo "fuzz: cargo-fuzz or nightly missing (make install-fuzz-tools); coverage-guided fuzzing skipped" >&2
  exit 0
fi
cd fuzz
for t in wal_segment snapshot_file ops_with_crash; do
  cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs"
done

#!/usr/bin/env bash
# Replicated KeyVal under faults (tests/jepsen, docs/raft.md): three node
# processes per engine (hashicorp/raft on raftstore, openraft on
# keyval-openraft), concurrent clients, a nemesis that kills, restarts,
# pauses and partitions them, and porcupine's linearizability check.
# Logs, histories and summaries land in target/jepsen/.
#   scripts/jepsen.sh bins          build the checker and the hashicorp node
#   scripts/jepsen.sh test SECS     the checker's self-check (nodes that serve
#                                   stale reads must be caught) and one bounded
#                                   run per engine, all at once
#   scripts/jepsen.sh long DURATION one long run per engine, then a summary
# JEPSEN_ENGINES (default "hashicorp openraft") picks the engines.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
DIR=target/jepsen
ENGINES=${JEPSEN_ENGINES:-hashicorp openraft}

node_bin() { if [ "$1" = hashicorp ]; then echo "$DIR/raftkv-node"; else echo "$REL/raft-node"; fi; }
# run ENGINE DURATION OUT [extra flags...]
run() {
  local engine=$1 duration=$2 out=$3; shift 3
  rm -rf "$out"
  "$DIR/jepsen" --engine "$engine" --node-bin "$(node_bin "$engine")" \
    --keyval-bin "$REL/keyval" --duration "$duration" --out "$out" "$@"
}

# big_state ENGINE: for openraft, a state machine larger than its Db's
# memory budget (4 KiB one-time values, a 64 KiB value cache), so that
# snapshots stream values kept in the WAL segments under faults.
big_state() { if [ "$1" = openraft ]; then echo "--unique-value-bytes 4096 --node-args --memory-budget=65536"; fi; }

case "${1:-}" in
  bins)
    (cd tests/jepsen && go vet ./... && go test -count=1 ./... && go build -o "$OLDPWD/$DIR/jepsen" .)
    (cd bindings/go/raftstore && go build -o "$OLDPWD/$DIR/raftkv-node" ./cmd/raftkv-node)
    ;;
  test)
    secs=${2:-60}
    pids=()
    run hashicorp 15s "$DIR/selfcheck" --node-args --stale-reads \
      --faults isolate-follower,isolate-leader --min-events 1 --min-leader-kills 0 \
      --expect-illegal & pids+=($!)
    for e in $ENGINES; do run "$e" "${secs}s" "$DIR/test-$e" $(big_state "$e") & pids+=($!); done
    rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done; exit $rc
    ;;
  long)
    for e in $ENGINES; do run "$e" "${2:-30m}" "$DIR/run-$e" $(big_state "$e"); done
    for e in $ENGINES; do cat "$DIR/run-$e/summary.md"; done > "$DIR/summary.md"
    echo "summary: $DIR/summary.md"
    ;;
  *) echo "usage: scripts/jepsen.sh bins|test SECS|long DURATION" >&2; exit 2 ;;
esac

#!/usr/bin/env python3
"""Turn `go test -bench` output of bindings/go/raftstore (raftbench against
KeyVal, raft-boltdb and raft-wal) into a Markdown table.

Usage: raftbench_table.py BENCH_OUTPUT > docs/bench/raftbench.md
"""
from __future__ import annotations

import re
import sys
from collections import defaultdict

STORES = ["KeyVal", "BoltDB", "WAL"]
LINE = re.compile(r"^Benchmark(\w+)/(\w+)-\d+\s+\d+\s+([\d.]+) ns/op")
FAIL = re.compile(r"^--- FAIL: Benchmark(\w+)/(\w+)")


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def main(path: str) -> None:
    results: dict[str, dict[str, float | None]] = defaultdict(dict)
    order: list[str] = []
    header: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(("goos:", "goarch:", "cpu:")):
                header.append(line.strip())
            m = LINE.match(line) or FAIL.match(line)
            if not m:
                continue
            name, store = m.group(1), m.group(2)
            if name not in order:
                order.append(name)
            results[name][store] = float(m.group(3)) if m.re is LINE else None
    print("# raftbench: KeyVal vs raft-boltdb vs raft-wal\n")
    print("`github.com/hashicorp/raft/bench` run against the three stores side by side,")
    print("in one `go test -bench` run (`make raftbench`), each with its default")
    print("durability (every write fsynced). Time per operation; lower is better.")
    print("The ratio is the peer's time divided by KeyVal's (above 1: KeyVal faster).\n")
    if header:
        print("Machine: " + ", ".join(header) + "\n")
    print("| benchmark | KeyVal | raft-boltdb | ratio | raft-wal | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in order:
        r = results[name]
        kv = r.get("KeyVal")
        cells = [name, fmt_ns(kv) if kv else "failed"]
        for peer in STORES[1:]:
            v = r.get(peer)
            if v is None:
                cells += ["n/a", ""]
            else:
                cells += [fmt_ns(v), f"{v / kv:.2f}×" if kv else ""]
        print("| " + " | ".join(cells) + " |")
    print(
        "\nn/a: raftbench.StoreLog writes index 0 first, and raft-wal refuses it"
        " (StoreLogFrom1 is the same loop from index 1). raftbench.DeleteRange"
        " writes non-contiguous indexes, which monotonic stores (KeyVal, raft-wal)"
        " refuse by design, so it is not run; DeletePrefix measures the"
        " compaction Raft performs instead."
    )


if __name__ == "__main__":
    main(sys.argv[1])

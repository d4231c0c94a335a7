#!/usr/bin/env python3
"""KeyVal demo: load a real corpus durably, kill the loader, prove what survived.

1. The `keyval` CLI loads the Python standard library's .py files, one record
   per line (key "path:line"), under Sync durability, printing "ACK n" after
   every durable batch. It is killed with SIGKILL part-way.
2. The directory is reopened (recovery runs); every acknowledged record must
   be present and byte-identical to its source line, and nothing may appear
   that was never written.
3. `keyval verify` checks every checksum.

Exits non-zero if anything is missing or wrong.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "target" / "release" / "keyval"
DATA = ROOT / "demo-data"


def corpus() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.glob("*.py") if p.is_file())
    return files


def records(files: list[Path]) -> list[tuple[bytes, bytes]]:
    """The same splitting rule as `keyval load`: '\\n'-separated lines, a
    final newline does not start an extra line, keys are 'path:lineno'."""
    out = []
    for f in files:
        data = f.read_bytes()
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()
        for i, line in enumerate(lines, 1):
            out.append((f"{f}:{i}".encode(), line))
    return out


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, check=check)


def main() -> int:
    if not CLI.exists():
        print(f"missing {CLI}: run `make build` first", file=sys.stderr)
        return 2
    shutil.rmtree(DATA, ignore_errors=True)
    files = corpus()
    expected = records(files)
    print(f"corpus: {len(files)} files, {len(expected)} lines from {files[0].parent}")

    # 1. Load with Sync durability and kill it part-way.
    target = len(expected) // 2
    proc = subprocess.Popen(
        [str(CLI), "--durability", "sync", str(DATA), "load", "--acks", "--batch", "500", *map(str, files)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    acked = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ACK "):
            acked = int(line.split()[1])
            if acked >= target:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait()
    killed = proc.returncode == -signal.SIGKILL
    print(f"loader: {acked} records acknowledged, then {'killed with SIGKILL' if killed else 'finished'}")

    # 2. Reopen: recovery runs; read the recovery facts and every pair.
    stats = json.loads(run(str(DATA), "stats", "--json").stdout)
    rec = stats["recovery"]
    t = rec["truncation"]
    print(
        f"recovery: snapshot LSN {rec['snapshot_lsn']}, {rec['records_replayed']} WAL records "
        f"({rec['bytes_replayed']} bytes) replayed in {rec['duration_micros'] / 1000:.1f} ms; "
        + (f"torn tail truncated at offset {t['offset']}" if t else "no torn tail")
    )
    scan = run("--hex", str(DATA), "scan").stdout.splitlines()
    stored = {}
    for line in scan:
        k, _, v = line.partition("\t")
        stored[bytes.fromhex(k)] = bytes.fromhex(v)
    source = dict(expected)
    missing = [k for k, _ in expected[:acked] if k not in stored]
    wrong = [k for k, v in stored.items() if source.get(k) != v]
    print(f"verify: {len(stored)} records present, {acked} acknowledged, "
          f"{len(missing)} acknowledged missing, {len(wrong)} wrong or unknown")

    # 3. Every checksum.
    v = run(str(DATA), "verify", check=False)
    print("checksums: " + v.stdout.strip().splitlines()[-1])
    ok = killed and not missing and not wrong and v.returncode == 0 and len(stored) >= acked
    print("DEMO " + ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

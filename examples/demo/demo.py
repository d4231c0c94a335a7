#!/usr/bin/env python3
"""KeyVal demo: one data directory, three languages, real input.

1. The `keyval` CLI (Rust) loads the Python standard library's .py files, one
   record per line (key "path:line"), under Sync durability, printing "ACK n"
   after every durable batch. It is killed with SIGKILL part-way.
2. Python (the ctypes binding) reopens the directory; recovery runs. Every
   acknowledged record must be present and byte-identical to its source line,
   and nothing may appear that was never written.
3. Go (the cgo binding) reopens it, runs a range scan and a batch,
   checkpoints and closes.
4. `keyval verify` checks every CRC and SHA-256.

Prints a short report; exits non-zero if anything is missing or wrong.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import keyval

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "target" / "release" / "keyval"
DATA = ROOT / "demo-data"


def corpus() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in stdlib.glob("*.py") if p.is_file())


def records(files: list[Path]) -> list[tuple[bytes, bytes]]:
    """The splitting rule of `keyval load`: '\\n'-separated lines, a final
    newline does not start an extra line, keys are 'path:lineno'."""
    out = []
    for f in files:
        data = f.read_bytes()
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()
        out.extend((f"{f}:{i}".encode(), line) for i, line in enumerate(lines, 1))
    return out


def step(n: int, text: str) -> None:
    print(f"\n[{n}] {text}")


def main() -> int:
    shutil.rmtree(DATA, ignore_errors=True)
    files = corpus()
    expected = records(files)
    failures: list[str] = []

    step(1, f"Rust CLI loads {len(files)} files ({len(expected)} lines) from {files[0].parent} with Sync durability")
    target = len(expected) // 2
    proc = subprocess.Popen(
        [str(CLI), "--durability", "sync", str(DATA), "load", "--acks", "--batch", "500", *map(str, files)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    acked, acks = 0, 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ACK "):
            acked, acks = int(line.split()[1]), acks + 1
            if acks % 40 == 0:
                print(f"    acknowledged {acked}")
            if acked >= target:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait()
    killed = proc.returncode == -signal.SIGKILL
    print(f"    {acked} records acknowledged, then {'killed with SIGKILL' if killed else 'it finished (not killed!)'}")
    if not killed:
        failures.append("the loader was not killed part-way")

    step(2, "Python reopens the directory (recovery runs) and checks every acknowledged record")
    with keyval.open(DATA) as db:
        r = db.stats()["recovery"]
        print(f"    recovery: snapshot LSN {r['snapshot_lsn']}, {r['records_replayed']} WAL records "
              f"({r['bytes_replayed']} bytes) replayed in {r['micros'] / 1000:.1f} ms, "
              + (f"torn tail of {r['truncated_bytes']} bytes truncated" if r["truncated"] else "no torn tail"))
        missing = [k for k, v in expected[:acked] if db.get(k) != v]
        source = dict(expected)
        present = 0
        wrong = []
        for k, v in db.items():
            present += 1
            if source.get(k) != v:
                wrong.append(k)
        print(f"    {present} records present: {acked} acknowledged, {len(missing)} of them missing or different, "
              f"{len(wrong)} present but never written")
        if missing or wrong:
            failures.append(f"{len(missing)} acknowledged records missing, {len(wrong)} wrong")

    step(3, "Go reopens it: range scan, batch, checkpoint, close")
    prefix = f"{files[0]}:"
    go = subprocess.run(["go", "run", "./cmd/kvdemo", str(DATA), prefix], cwd=ROOT / "bindings" / "go",
                        capture_output=True, text=True)
    print("    " + go.stdout.strip().replace("\n", "\n    "))
    if go.returncode != 0:
        failures.append("go step failed: " + go.stderr.strip())

    step(4, "keyval verify checks every checksum")
    v = subprocess.run([str(CLI), str(DATA), "verify"], capture_output=True, text=True)
    print("    " + v.stdout.strip().replace("\n", "\n    "))
    if v.returncode != 0:
        failures.append(f"verify exited {v.returncode}")
    with keyval.open(DATA) as db:
        if db.get(b"demo:go:done") != b"yes":
            failures.append("Go's batch is not visible")

    print("\nDEMO " + ("PASSED" if not failures else "FAILED: " + "; ".join(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())

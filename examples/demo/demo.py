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
4. Documents: one per Go standard-library package (`go list -json std`),
   with nested fields and an array, go into the "packages" collection
   with three indexes (one of them multikey); the CLI loader is killed
   with SIGKILL part-way again.
5. Python reopens: every acknowledged document is present and identical,
   the store holds whole batches in file order and nothing else; it
   finishes the load and pages through sorted, filtered queries.
6. Go queries the collection: a filter sorted by a nested field, paged
   with cursors to the end, and a multikey match, with their plans.
7. `keyval verify` checks every CRC and SHA-256 and that every index
   agrees with its documents.

Prints a short report; exits non-zero if anything is missing or wrong.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

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
    out: list[tuple[bytes, bytes]] = []
    for f in files:
        data = f.read_bytes()
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()
        out.extend((f"{f}:{i}".encode(), line) for i, line in enumerate(lines, 1))
    return out


def packages() -> list[dict[str, Any]]:
    """One document per standard-library package, from `go list -json std`
    (a stream of JSON objects)."""
    text = subprocess.run(["go", "list", "-json", "std"], capture_output=True, text=True, check=True).stdout
    dec, i = json.JSONDecoder(), 0
    docs: list[dict[str, Any]] = []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return docs
        p, i = dec.raw_decode(text, i)
        imports = p.get("Imports", [])
        docs.append({
            "_id": p["ImportPath"],
            "name": p["Name"],
            "doc": p.get("Doc", ""),
            "internal": "internal" in p["ImportPath"].split("/"),
            "Imports": imports,
            "stats": {"go_files": len(p.get("GoFiles", [])), "imports": len(imports),
                      "deps": len(p.get("Deps", []))},
        })


def kill_after(cmd: list[str], target: int) -> tuple[int, bool]:
    """Run a loader that prints "ACK n"; SIGKILL it once n >= target.
    Returns the last acknowledged n and whether it was killed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    acked = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ACK "):
            acked = int(line.split()[1])
            if acked >= target:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait()
    return acked, proc.returncode == -signal.SIGKILL


def documents(failures: list[str]) -> None:
    """Steps 4 to 6: documents."""
    docs = packages()
    jsonl = ROOT / "target" / "demo-packages.jsonl"
    jsonl.write_text("".join(json.dumps(d) + "\n" for d in docs))
    step(4, f"Rust CLI loads {len(docs)} package documents (`go list -json std`) into collection "
            "\"packages\", 4 per durable batch")
    for path in ("stats.deps", "Imports", "name"):
        subprocess.run([str(CLI), str(DATA), "docs", "packages", "index", path], check=True,
                       stdout=subprocess.DEVNULL)
    acked, killed = kill_after([str(CLI), "--durability", "sync", str(DATA), "docs", "packages", "load",
                                str(jsonl), "--batch", "4", "--acks"], len(docs) // 2)
    print(f"    indexes on stats.deps, Imports (multikey), name; {acked} documents acknowledged, then "
          + ("killed with SIGKILL" if killed else "it finished (not killed!)"))
    if not killed:
        failures.append("the document loader was not killed part-way")

    step(5, "Python reopens: acknowledged documents, whole batches, then the rest of the load and queries")
    with keyval.open(DATA) as db:
        pkgs = db.collection("packages")
        present = {d["_id"]: d for d in pkgs.find_iter()}
        k = len(present)
        lost = [d["_id"] for d in docs[:acked] if present.get(d["_id"]) != d]
        prefix_ok = all(present.get(d["_id"]) == d for d in docs[:k]) and (k % 4 == 0 or k == len(docs))
        print(f"    {k} documents present: {acked} acknowledged, {len(lost)} of them missing or different; "
              f"{'whole batches in file order' if prefix_ok else 'NOT a prefix of whole batches'}")
        if lost or not prefix_ok:
            failures.append(f"documents: {len(lost)} acknowledged lost, prefix of whole batches: {prefix_ok}")
        pkgs.insert_many(docs[k:])
        total = pkgs.count()
        print(f"    loaded the other {len(docs) - k}; {total} documents, stats {pkgs.stats()}")
        if total != len(docs):
            failures.append(f"{total} documents after finishing the load, not {len(docs)}")
        # Every package by name, 50 per page, following cursors.
        seen, pages, after = 0, 0, None
        while True:
            page = pkgs.find(sort=["name"], limit=50, after=after, projection={"name": 1})
            seen, pages = seen + len(page.docs), pages + 1
            if not page.has_next:
                break
            after = page.next_cursor
        plan = pkgs.explain(sort=["name"])
        print(f"    by name: {seen} documents in {pages} pages of 50 (plan: sort {plan.sort} on {plan.index!r})")
        if seen != len(docs):
            failures.append(f"paging by name visited {seen} of {len(docs)}")
        crypto = pkgs.find({"_id": {"$gte": "crypto/", "$lt": "crypto0"}, "internal": False},
                           sort=["-stats.imports"], limit=3)
        print("    crypto/ packages importing the most: "
              + ", ".join(f"{d['_id']} ({d['stats']['imports']})" for d in crypto.docs)
              + f" of {crypto.total}")
        want_deps40 = sum(1 for d in docs if d["stats"]["deps"] >= 40)
        want_http = sum(1 for d in docs if "net/http" in d["Imports"])

    step(6, "Go queries the collection: sorted by a nested field, paged with cursors; multikey match")
    go = subprocess.run(["go", "run", "./cmd/docdemo", str(DATA)], cwd=ROOT / "bindings" / "go",
                        capture_output=True, text=True)
    print("    " + go.stdout.strip().replace("\n", "\n    "))
    if go.returncode != 0:
        failures.append("go documents step failed: " + go.stderr.strip())
    with keyval.open(DATA) as db:
        seen_by_go = db.collection("demo").get("go") or {}
    if (seen_by_go.get("deps40"), seen_by_go.get("imports_net_http")) != (want_deps40, want_http):
        failures.append(f"Go saw {seen_by_go}, the corpus has deps40={want_deps40}, "
                        f"imports_net_http={want_http}")


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

    documents(failures)

    step(7, "keyval verify checks every checksum, and every index against its documents")
    ver = subprocess.run([str(CLI), str(DATA), "verify"], capture_output=True, text=True)
    print("    " + ver.stdout.strip().replace("\n", "\n    "))
    if ver.returncode != 0:
        failures.append(f"verify exited {ver.returncode}")
    with keyval.open(DATA) as db:
        if db.get(b"demo:go:done") != b"yes":
            failures.append("Go's batch is not visible")

    print("\nDEMO " + ("PASSED" if not failures else "FAILED: " + "; ".join(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())

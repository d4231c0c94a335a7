#!/usr/bin/env python3
"""Python side by side: keyval vs py-lmdb, sqlite3 (WAL, synchronous=FULL)
and rocksdict, in one run. 24-byte keys, 150-byte values, seeded RNG.
Measures random gets (one key per call, and 100 keys per call: keyval's
get_many, py-lmdb's faster of Cursor.getmulti and a loop of txn.get,
sqlite3's IN (...), rocksdict's list get; rated per key), durable sets
(fsync per write) and no-sync sets. For keyval it also times a bare ctypes
call of kv_get_into on the same keys, to show what the binding adds.
Appends a table to docs/bench/results.md (run by `make bench`).

Usage: python_bench.py OUTPUT_MD [--quick]
"""
from __future__ import annotations

import ctypes
import os
import random
import sqlite3
import sys
import tempfile
import time
from typing import Callable

import keyval
import lmdb
import rocksdict

QUICK = "--quick" in sys.argv
N = 20_000 if QUICK else 100_000
DURABLE = 300 if QUICK else 1_000
GETS = 50_000 if QUICK else 300_000

rng = random.Random(42)
pairs = [(rng.randbytes(24), rng.randbytes(150)) for _ in range(N + DURABLE * 2 + GETS)]
load, extra = pairs[:N], pairs[N:]
probe = [load[rng.randrange(N)][0] for _ in range(GETS)]


def rate(n: int, f: Callable[[int], object]) -> float:
    t = time.perf_counter()
    for i in range(n):
        f(i)
    return n / (time.perf_counter() - t)


BATCH = 100
batches = [probe[i:i + BATCH] for i in range(0, GETS, BATCH)]


def per_key(f: Callable[[list[bytes]], object]) -> float:
    """Keys per second when f looks up one batch of BATCH keys per call."""
    return rate(len(batches), lambda i: f(batches[i])) * BATCH


def bench_keyval(d: str) -> dict[str, float]:
    r = {}
    with keyval.open(os.path.join(d, "kv")) as db:
        with db.batch() as b:
            for k, v in load:
                b.put(k, v)
        r["get"] = rate(GETS, lambda i: db[probe[i]])
        r["get, 100 per call"] = per_key(db.get_many)
        # The floor under any ctypes binding: the same C function called
        # directly, with a preallocated buffer and no error handling.
        from keyval import _native
        h, buf, n = db._handle.ptr, ctypes.create_string_buffer(4096), ctypes.c_size_t()  # noqa: SLF001
        fn, ref = _native.lib.kv_get_into, ctypes.byref
        r["bare ctypes kv_get_into"] = rate(GETS, lambda i: fn(h, probe[i], 24, buf, 4096, ref(n)))
        r["durable set"] = rate(DURABLE, lambda i: db.__setitem__(*extra[i]))
    with keyval.open(os.path.join(d, "kv-nosync"), durability="buffered") as db:
        r["no-sync set"] = rate(GETS // 5, lambda i: db.__setitem__(*extra[i % len(extra)]))
    return r


def bench_lmdb(d: str) -> dict[str, float]:
    r = {}
    env = lmdb.open(os.path.join(d, "lmdb"), map_size=4 << 30)
    with env.begin(write=True) as t:
        for k, v in load:
            t.put(k, v)
    with env.begin() as t:
        r["get"] = rate(GETS, lambda i: t.get(probe[i]))
        cur = t.cursor()
        multi = per_key(lambda ks: cur.getmulti(ks))
        loop = per_key(lambda ks: [t.get(k) for k in ks])
        r["get, 100 per call"] = max(multi, loop)

    def put(i: int) -> None:
        with env.begin(write=True) as t:
            t.put(*extra[i])

    r["durable set"] = rate(DURABLE, put)
    env.close()
    env = lmdb.open(os.path.join(d, "lmdb-nosync"), map_size=4 << 30, sync=False)

    def put_ns(i: int) -> None:
        with env.begin(write=True) as t:
            t.put(*extra[i % len(extra)])

    r["no-sync set"] = rate(GETS // 5, put_ns)
    env.close()
    return r


def bench_sqlite(d: str) -> dict[str, float]:
    r = {}
    c = sqlite3.connect(os.path.join(d, "s.db"), isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    c.execute("CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")
    c.execute("BEGIN")
    c.executemany("INSERT INTO kv VALUES (?, ?)", load)
    c.execute("COMMIT")
    r["get"] = rate(GETS, lambda i: c.execute("SELECT v FROM kv WHERE k = ?", (probe[i],)).fetchone())
    q = "SELECT k, v FROM kv WHERE k IN (" + ",".join("?" * BATCH) + ")"
    r["get, 100 per call"] = per_key(lambda ks: c.execute(q, ks).fetchall())
    r["durable set"] = rate(DURABLE, lambda i: c.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", extra[i]))
    c.execute("PRAGMA synchronous=OFF")
    r["no-sync set"] = rate(GETS // 5, lambda i: c.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)",
                                                             extra[i % len(extra)]))
    c.close()
    return r


def bench_rocksdict(d: str) -> dict[str, float]:
    r = {}
    db = rocksdict.Rdict(os.path.join(d, "rocks"))
    wb = rocksdict.WriteBatch()
    for k, v in load:
        wb.put(k, v)
    db.write(wb)
    r["get"] = rate(GETS, lambda i: db[probe[i]])
    r["get, 100 per call"] = per_key(db.get)
    sync = rocksdict.WriteOptions()
    sync.sync = True
    db.set_write_options(sync)
    r["durable set"] = rate(DURABLE, lambda i: db.put(*extra[i]))
    nosync = rocksdict.WriteOptions()
    nosync.sync = False
    db.set_write_options(nosync)
    r["no-sync set"] = rate(GETS // 5, lambda i: db.put(*extra[i % len(extra)]))
    db.close()
    return r


def main() -> None:
    out = sys.argv[1]
    res: dict[str, dict[str, float]] = {}
    for name, f in [("keyval", bench_keyval), ("py-lmdb", bench_lmdb), ("sqlite3 WAL", bench_sqlite),
                    ("rocksdict", bench_rocksdict)]:
        with tempfile.TemporaryDirectory(dir="target") as d:
            res[name] = f(d)
            print(name, {k: round(v) for k, v in res[name].items()}, flush=True)
    lines = ["", "## Python, same run", "",
             f"{N:,} pairs loaded; rates per second; ratio = keyval ÷ peer.", "",
             "| | keyval | py-lmdb | sqlite3 WAL | rocksdict | vs py-lmdb | vs sqlite3 WAL | vs rocksdict |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for phase in ["get", "get, 100 per call", "durable set", "no-sync set"]:
        row = [phase] + [f"{res[n][phase]:,.0f}" for n in res]
        row += [f"{res['keyval'][phase] / res[n][phase]:.2f}×" for n in ["py-lmdb", "sqlite3 WAL", "rocksdict"]]
        lines.append("| " + " | ".join(row) + " |")
    bare = res["keyval"]["bare ctypes kv_get_into"]
    lines += ["", f"keyval `Store[key]` takes {bare / res['keyval']['get']:.2f}× the time of a bare ctypes "
              f"call of `kv_get_into` on the same keys ({bare:,.0f}/s), in the same run."]
    with open(out, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

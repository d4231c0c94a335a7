"""Every function, error path and exception of the Python binding."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path

import pytest

import keyval


def test_version_and_types(db: keyval.Store) -> None:
    assert keyval.version() == keyval.__version__
    assert keyval.__version__.count(".") == 2
    assert isinstance(db, MutableMapping)
    assert "closed" not in repr(db)


def test_mapping_basics(db: keyval.Store) -> None:
    db[b"a"] = b"1"
    db[bytearray(b"b")] = memoryview(b"2")
    db[b"empty"] = b""
    assert db[b"a"] == b"1" and db[b"b"] == b"2" and db[b"empty"] == b""
    assert db.get(b"a") == b"1"
    assert db.get(b"zz") is None
    assert db.get(b"zz", b"dflt") == b"dflt"
    assert b"a" in db and b"zz" not in db
    assert len(db) == 3
    with pytest.raises(KeyError):
        db[b"zz"]
    with pytest.raises(keyval.NotFoundError):
        db[b"zz"]
    del db[b"a"]
    with pytest.raises(KeyError):
        del db[b"a"]
    db.discard(b"a")  # absent: fine
    assert list(db) == [b"b", b"empty"]
    assert list(db.keys()) == [b"b", b"empty"]
    assert list(db.values()) == [b"2", b""]
    db.update({b"x": b"9"})
    assert db.pop(b"x") == b"9"
    assert db.setdefault(b"y", b"8") == b"8"


def test_str_is_rejected(db: keyval.Store) -> None:
    with pytest.raises(TypeError):
        db["text"] = b"v"  # type: ignore[index]
    with pytest.raises(TypeError):
        db[b"k"] = "text"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        db["text"]  # type: ignore[index]
    with pytest.raises(TypeError):
        "text" in db
    assert len(db) == 0


def test_invalid_arguments_change_nothing(tmp_path: Path) -> None:
    with keyval.open(tmp_path / "d", max_key_size=8, max_value_size=16, segment_size=64 << 10) as db:
        db[b"keep"] = b"me"
        for bad in (lambda: db.__setitem__(b"", b"v"),
                    lambda: db.__setitem__(b"123456789", b"v"),
                    lambda: db.__setitem__(b"k", b"x" * 17)):
            with pytest.raises(keyval.InvalidArgumentError) as e:
                bad()
            assert isinstance(e.value, ValueError) and e.value.code == 3 and e.value.message
        with pytest.raises(keyval.InvalidArgumentError):
            with db.batch() as b:
                b[b"good"] = b"1"
                b[b"way-too-long-key"] = b"1"
        assert b"good" not in db
        assert dict(db.items()) == {b"keep": b"me"}


def test_open_errors(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_bytes(b"x")
    with pytest.raises(keyval.InvalidArgumentError):
        keyval.open(f)
    with pytest.raises(keyval.IoError) as e:
        keyval.open(f / "sub")
    assert "file" in e.value.message
    with pytest.raises(keyval.InvalidArgumentError):
        keyval.open(tmp_path / "missing", create_if_missing=False)
    with pytest.raises(keyval.InvalidArgumentError):
        keyval.open(tmp_path / "x", durability="fast")
    with pytest.raises(keyval.InvalidArgumentError):
        keyval.open(tmp_path / "x", segment_size=1)
    with pytest.raises(keyval.InvalidArgumentError):
        keyval.open(tmp_path / "x", recovery_mode="yolo")
    with pytest.raises(keyval.InvalidArgumentError):
        keyval.open("bad\0path")
    # Options beyond their C field's range are refused, never wrapped (a
    # 2**32 + 16 key limit once opened with a 16-byte limit).
    for name, value in [("max_key_size", 2**32 + 16), ("max_value_size", 2**32),
                        ("keep_snapshots", 2**32 + 1), ("segment_size", 2**64),
                        ("max_wal_size", 2**64 + 5), ("max_key_size", -1)]:
        with pytest.raises(keyval.InvalidArgumentError) as e:
            keyval.open(tmp_path / "range", **{name: value})
        assert name in e.value.message
    assert not (tmp_path / "range").exists()
    with pytest.raises(keyval.InvalidArgumentError):
        keyval.RaftLog(tmp_path / "raft-range", segment_size=2**64)
    # Invalid UTF-8 in a path is just bytes to the library.
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/\xff\xfe")
    with keyval.open(odd, segment_size=64 << 10) as db:
        db[b"k"] = b"v"


def test_locked_and_closed(tmp_path: Path) -> None:
    d = tmp_path / "d"
    db = keyval.open(d, segment_size=64 << 10)
    with pytest.raises(keyval.LockedError):
        keyval.open(d)
    db[b"k"] = b"v"
    it = db.items()
    db.close()
    db.close()  # safe twice
    assert db.closed and "closed" in repr(db)
    for op in (lambda: db[b"k"], lambda: db.__setitem__(b"k", b"v"), lambda: len(db), lambda: b"k" in db,
               db.sync, db.checkpoint, db.stats, lambda: list(db.items()), lambda: db.discard(b"k"),
               lambda: db.batch().commit()):
        with pytest.raises(keyval.ClosedError):
            op()
    with pytest.raises(keyval.ClosedError):
        list(it)  # an iterator positioned before close raises when it moves on
    with keyval.open(d, segment_size=64 << 10) as db2:
        assert db2[b"k"] == b"v"
        assert db2.stats()["recovery"]["records_replayed"] == 0


def test_items_ranges_and_prefixes(db: keyval.Store) -> None:
    with db.batch() as b:
        for i in range(700):
            b[b"user:%04d" % i] = b"%d" % i
            b[b"item:%04d" % i] = b"%d" % i
        assert len(b) == 1400
    assert len(db) == 1400
    users = list(db.items(prefix=b"user:"))
    assert len(users) == 700 and users == sorted(users)
    assert [k for k, _ in db.items(start=b"item:0100", end=b"item:0103")] == [b"item:0100", b"item:0101", b"item:0102"]
    assert len(list(db.items(start=b"user:0690"))) == 10
    assert len(list(db.items(end=b"item:0010"))) == 10
    assert len(list(db.keys(prefix=b"item:00"))) == 100
    with pytest.raises(keyval.InvalidArgumentError):
        db.items(prefix=b"a", start=b"b")


def test_batch_raising_applies_nothing(db: keyval.Store) -> None:
    db[b"a"] = b"1"
    with pytest.raises(RuntimeError):
        with db.batch() as b:
            b[b"a"] = b"2"
            b.delete(b"a")
            b[b"c"] = b"3"
            raise RuntimeError("abort")
    assert db[b"a"] == b"1" and b"c" not in db
    b = db.batch()
    b.put(b"z", b"26")
    b.commit()
    with pytest.raises(keyval.ClosedError):
        b.commit()
    b.discard()
    assert db[b"z"] == b"26"


def test_sync_checkpoint_stats(db: keyval.Store) -> None:
    for i in range(100):
        db[b"%d" % i] = b"v"
    db.sync()
    db.checkpoint()
    s = db.stats()
    assert s["keys"] == 100 and s["checkpoints"] == 1 and s["snapshots"] >= 1
    assert s["disk_bytes"] == s["wal_bytes"] + s["snapshot_bytes"]
    assert s["poisoned"] is False and s["recovery"]["truncated"] is False


@pytest.mark.parametrize("durability", ["buffered", "os", "sync"])
def test_reopen_every_durability(tmp_path: Path, durability: str) -> None:
    with keyval.open(tmp_path / "d", durability=durability, segment_size=64 << 10) as db:
        for i in range(200):
            db[b"k%d" % i] = b"v%d" % i
    with keyval.open(tmp_path / "d", durability=durability) as db:
        assert len(db) == 200 and db[b"k199"] == b"v199"


def test_threads_share_a_store(db: keyval.Store) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(100):
                k = b"t%d-%d" % (t, i)
                db[k] = k
                assert db[k] == k
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(db) == 800
    s = db.stats()
    assert s["commit_groups"] < s["writes"], "writers from several threads should share fsyncs"


def test_values_of_every_size_from_many_threads(db: keyval.Store) -> None:
    # Store[k] reads into a 4 KiB per-thread buffer and falls back to a
    # library-allocated copy for larger values: check both sides of the
    # boundary, with threads whose reads interleave.
    sizes = [0, 1, 150, 4095, 4096, 4097, 65536, 1 << 20]
    want = {b"v%d" % n: os.urandom(n) for n in sizes}
    for k, v in want.items():
        db[k] = v
    errors: list[BaseException] = []

    def read(t: int) -> None:
        try:
            for i in range(200):
                k = b"v%d" % sizes[(t + i) % len(sizes)]
                assert db[k] == want[k]
                assert db.get(k) == want[k]
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=read, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # A value that grows past the buffer between two reads of the same key.
    db[b"grow"] = b"x" * 10
    assert db[b"grow"] == b"x" * 10
    db[b"grow"] = b"y" * 5000
    assert db[b"grow"] == b"y" * 5000


def test_close_while_other_threads_work(tmp_path: Path) -> None:
    db = keyval.open(tmp_path / "d", segment_size=64 << 10)
    stop = threading.Event()
    seen: list[str] = []

    def hammer() -> None:
        while not stop.is_set():
            try:
                db[b"k"] = b"v"
                db.get(b"k")
            except keyval.ClosedError:
                seen.append("closed")
                return

    ts = [threading.Thread(target=hammer) for _ in range(4)]
    for t in ts:
        t.start()
    db.close()
    stop.set()
    for t in ts:
        t.join()
    assert seen.count("closed") == 4
    with keyval.open(tmp_path / "d") as db2:
        assert db2[b"k"] == b"v"


def test_corruption_is_raised(tmp_path: Path) -> None:
    d = tmp_path / "d"
    with keyval.open(d, segment_size=64 << 10) as db:
        for i in range(20):
            db[b"k%02d" % i] = b"value"
    seg = d / "00000000000000000001.wal"
    data = bytearray(seg.read_bytes())
    data[4096 + 50] ^= 0xFF
    seg.write_bytes(bytes(data))
    for snap in d.glob("snap-*.kvs"):
        snap.unlink()
    with pytest.raises(keyval.CorruptionError) as e:
        keyval.open(d)
    assert "00000000000000000001.wal" in e.value.message and "offset 4096" in e.value.message
    with keyval.open(d, recovery_mode="tolerate_any") as db:
        assert len(db) == 19
        rec = db.stats()["recovery"]
        assert rec["records_skipped"] == 1 and rec["bytes_skipped"] > 0


def test_salvage_reports_a_deleted_segment(tmp_path: Path) -> None:
    """Issue 29: a deleted segment is named, and salvage reports it in
    stats (segments_missing reaches C, Go and Python)."""
    d = tmp_path / "d"
    with keyval.open(d, segment_size=64 << 10, max_wal_size=0) as db:
        db.checkpoint()
        for i in range(300):
            db[b"k%04d" % i] = bytes(1024)
    # The close checkpointed: drop the snapshots so the WAL is needed.
    for snap in d.glob("snap-*.kvs"):
        snap.unlink()
    segs = sorted(d.glob("*.wal"))
    assert len(segs) >= 3
    segs[1].unlink()
    with pytest.raises(keyval.CorruptionError) as e:
        keyval.open(d)
    assert segs[1].name in e.value.message and "missing" in e.value.message
    with keyval.open(d, recovery_mode="tolerate_any") as db:
        rec = db.stats()["recovery"]
        assert rec["segments_missing"] == 1 and rec["records_skipped"] > 0
        kept = len(db)
    with keyval.open(d) as db:
        assert len(db) == kept


def test_full_disk_poisons_and_keeps_acknowledged_writes(tmp_path: Path) -> None:
    """ENOSPC on a 1 MiB tmpfs (needs root to mount)."""
    import subprocess

    small = tmp_path / "small"
    small.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)]).returncode:
        pytest.skip("needs root to mount a tmpfs")
    try:
        db = keyval.open(small / "db", segment_size=64 << 10, max_wal_size=0)
        acked = 0
        with pytest.raises(keyval.IoError) as e:
            while True:
                db[b"k%06d" % acked] = b"v" * 400
                acked += 1
        assert "os error 28" in e.value.message
        with pytest.raises(keyval.PoisonedError):
            db[b"after"] = b"x"
        assert db[b"k000000"] == b"v" * 400
        assert db.stats()["poisoned"] is True
        with pytest.raises(keyval.PoisonedError):
            db.close()
        db = keyval.open(small / "db", segment_size=64 << 10, max_wal_size=0)
        assert acked > 0 and all(b"k%06d" % i in db for i in range(acked))
        try:
            db.close()
        except keyval.IoError:
            pass  # the final checkpoint may not fit on the full disk
    finally:
        subprocess.run(["umount", str(small)])


def test_locked_by_another_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    d = tmp_path / "d"
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, keyval; db = keyval.open(sys.argv[1]); print('OPEN', flush=True); sys.stdin.read()", str(d)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "OPEN"
        with pytest.raises(keyval.LockedError):
            keyval.open(d)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
    with keyval.open(d) as db:  # free once the other process is gone
        assert len(db) == 0


def test_directory_with_garbage_files(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "notes.txt").write_bytes(b"unrelated files are ignored")
    with keyval.open(d, segment_size=64 << 10) as db:
        db[b"k"] = b"v"
    (d / "00000000000000000042.wal").write_bytes(os.urandom(8192))
    with pytest.raises(keyval.CorruptionError) as e:
        keyval.open(d)
    assert "00000000000000000042.wal" in e.value.message
    (d / "00000000000000000042.wal").unlink()
    with keyval.open(d) as db:
        assert db[b"k"] == b"v"


def test_metrics(db: keyval.Store) -> None:
    for i in range(25):
        db[b"k%02d" % i] = b"v"
    assert db.get(b"k01") == b"v" and db.get(b"zz") is None
    with pytest.raises(keyval.InvalidArgumentError):
        db[b""] = b"v"
    m = db.metrics()
    assert (m["puts"], m["writes"], m["gets"], m["get_hits"]) == (25, 26, 2, 1)
    assert m["errors"]["InvalidArgumentError"] == 1 and m["errors"]["IoError"] == 0
    lat = m["write_latency"]
    assert lat["count"] == 26 and 0 < lat["p50"] <= lat["p99"] <= lat["max"]
    assert m["fsyncs"] >= 25 and m["keys"] == 25
    assert "keyval_puts_total{db=" in db.prometheus_metrics()
    db.reset_metrics()
    m = db.metrics()
    assert m["puts"] == 0 and m["write_latency"]["count"] == 0 and m["keys"] == 25


def test_status_codes_match_the_header() -> None:
    """One status table: every kv_status in include/keyval.h has the exception
    class with the same code, and the module's constants agree with it."""
    import re
    from keyval import _native
    from keyval.errors import _ERRORS
    header = (Path(__file__).resolve().parents[3] / "include" / "keyval.h").read_text()
    enum = header[:header.index("} kv_status;")]
    enum = enum[enum.rindex("typedef enum"):]
    codes = {name: int(v) for name, v in re.findall(r"(KV_[A-Z_]+) = (\d+)", enum)}
    assert codes["KV_OK"] == _native.KV_OK == 0
    assert codes["KV_NOT_FOUND"] == _native.KV_NOT_FOUND
    assert codes["KV_BUFFER_TOO_SMALL"] == _native.KV_BUFFER_TOO_SMALL
    nonzero = {v for k, v in codes.items() if k != "KV_OK"}
    assert nonzero == set(_ERRORS), (nonzero, sorted(_ERRORS))
    for code, cls in _ERRORS.items():
        assert cls.code == code
        # The C library's description of the code is the class's subject.
        desc = _native.lib.kv_strerror(code).decode()
        assert desc and desc != "unknown status", (code, desc)
    assert _native.lib.kv_strerror(max(nonzero) + 1) == b"unknown status"


def test_checkpoint_interval(tmp_path: Path) -> None:
    """An idle store that was written to is checkpointed by time alone."""
    with keyval.open(tmp_path / "db", max_wal_size=0, checkpoint_interval=0.02) as s:
        s[b"a"] = b"1"
        deadline = time.monotonic() + 60
        while s.stats()["checkpoints"] == 0:
            assert time.monotonic() < deadline, "no time-based checkpoint in 60 s"
            time.sleep(0.01)
    for bad in (0, -1.0, 0.001):
        with pytest.raises(keyval.InvalidArgumentError):
            keyval.open(tmp_path / "other", checkpoint_interval=bad)


def test_read_only(tmp_path: Path) -> None:
    """A second handle without the lock, beside the writer."""
    with keyval.open(tmp_path / "db") as w:
        w[b"k"] = b"v"
        with keyval.open(tmp_path / "db", read_only=True) as r:
            assert r[b"k"] == b"v"
            with pytest.raises(keyval.InvalidArgumentError):
                r[b"k"] = b"w"
            with pytest.raises(keyval.LockedError):
                keyval.open(tmp_path / "db")
        w[b"k2"] = b"x"
    with pytest.raises(keyval.InvalidArgumentError):
        keyval.open(tmp_path / "missing", read_only=True)


def test_backup_while_a_thread_writes(tmp_path: Path) -> None:
    """A backup taken beside a writer thread holds every write made before
    it began, a prefix of the writer's history, and opens as a store."""
    acked = [-1]
    stop = threading.Event()
    with keyval.open(tmp_path / "db", segment_size=64 << 10) as db:

        def writer() -> None:
            i = 0
            while not stop.is_set() or i < 50:
                db[b"k%06d" % i] = b"v" * 100
                acked[0] = i
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        while acked[0] < 20:
            time.sleep(0.001)
        before = acked[0]
        lsn = db.backup(tmp_path / "copy")
        stop.set()
        t.join()
        with pytest.raises(keyval.InvalidArgumentError):
            db.backup(tmp_path / "copy")
        with pytest.raises(keyval.InvalidArgumentError):
            db.backup(tmp_path / "missing" / "copy")
    with keyval.open(tmp_path / "copy") as b:
        n = len(b)
        assert n > before
        assert all(b.get(b"k%06d" % i) == b"v" * 100 for i in range(n))
        assert b.stats()["last_lsn"] == lsn


def test_per_write_durability(tmp_path: Path) -> None:
    with keyval.open(tmp_path / "d", durability="buffered") as db:
        def fsyncs() -> int:
            n: int = db.stats()["fsyncs"]
            return n
        db[b"a"] = b"1"
        db.set(b"x", b"1")
        assert fsyncs() == 0
        db.set(b"b", b"2", durability="sync")
        assert fsyncs() == 1
        db.discard(b"a", durability="sync")
        assert fsyncs() == 2
        with db.batch(durability="sync") as b:
            b[b"c"] = b"3"
        assert fsyncs() == 3
        b2 = db.batch()
        b2[b"d"] = b"4"
        b2.commit(durability="sync")
        assert fsyncs() == 4
        with pytest.raises(keyval.InvalidArgumentError):
            db.set(b"e", b"5", durability="fast")
        with pytest.raises(keyval.InvalidArgumentError):
            db.batch(durability="fast")
        assert sorted(db.keys()) == [b"b", b"c", b"d", b"x"]


def test_get_many(db: keyval.Store) -> None:
    db[b"a"] = b"1"
    db[b"e"] = b""
    db[b"c"] = b"three"
    got = db.get_many([b"a", b"zz", bytearray(b"e"), memoryview(b"c"), b"a"])
    assert got == [b"1", None, b"", b"three", b"1"]
    assert db.get_many([]) == []
    assert db.get_many(iter([b"c"])) == [b"three"]
    with pytest.raises(keyval.InvalidArgumentError):
        db.get_many([b"a", b""])
    with pytest.raises(TypeError):
        db.get_many(["a"])  # type: ignore[list-item]
    m = db.metrics()
    assert m["gets"] == 6 and m["get_hits"] == 5
    db.close()
    with pytest.raises(keyval.ClosedError):
        db.get_many([b"a"])
    with pytest.raises(keyval.ClosedError):
        db.get_many([])

"""Snapshots, reverse iteration and serializable transactions from Python:
the anomalies that matter most (lost update, write skew, a phantom, read
skew), commit-on-exit and rollback-on-exception, and update() retries."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import keyval


def test_lost_update_conflicts_and_writes_nothing(db: keyval.Store) -> None:
    db[b"x"] = b"10"
    t1, t2 = db.transaction(), db.transaction()
    assert t1[b"x"] == b"10" and t2[b"x"] == b"10"
    t1[b"x"] = b"11"
    t2[b"x"] = b"12"
    t2[b"y"] = b"from t2"
    t1.commit()
    with pytest.raises(keyval.ConflictError) as e:
        t2.commit()
    assert e.value.code == 13
    assert db[b"x"] == b"11" and b"y" not in db


def test_write_skew_and_phantom_conflict(db: keyval.Store) -> None:
    db[b"doctor/alice"] = b"on"
    db[b"doctor/bob"] = b"on"
    t1, t2 = db.transaction(), db.transaction()
    for t in (t1, t2):
        assert [k for k, v in t.items(prefix=b"doctor/") if v == b"on"] == [b"doctor/alice", b"doctor/bob"]
    t1[b"doctor/alice"] = b"off"
    t2[b"doctor/bob"] = b"off"
    t1.commit()
    with pytest.raises(keyval.ConflictError):
        t2.commit()
    # A phantom: both read an empty range and insert into it.
    t1, t2 = db.transaction(), db.transaction()
    assert t1.items(start=b"slot/1", end=b"slot/2") == []
    assert t2.items(start=b"slot/1", end=b"slot/2", reverse=True, limit=1) == []
    t1[b"slot/10"] = b"a"
    t2[b"slot/15"] = b"b"
    t1.commit()
    with pytest.raises(keyval.ConflictError):
        t2.commit()


def test_read_skew_is_prevented_by_the_snapshot(db: keyval.Store) -> None:
    db[b"x"], db[b"y"] = b"50", b"50"
    with db.snapshot() as s:
        assert s[b"x"] == b"50"
        with db.transaction() as tx:
            tx[b"x"], tx[b"y"] = b"0", b"100"
        assert s[b"y"] == b"50"  # not 100: one moment
        assert s.get_many([b"x", b"y", b"z"]) == [b"50", b"50", None]
        assert len(s) == 2 and s.lsn > 0
    assert db[b"y"] == b"100"


def test_context_manager_commits_or_rolls_back(db: keyval.Store) -> None:
    ks = db.keyspace("other")
    with db.transaction() as tx:
        tx[b"a"] = b"1"
        tx.set(b"b", b"2", keyspace=ks)
        assert tx[b"a"] == b"1"  # own writes
        assert tx.get(b"b", keyspace=ks) == b"2"
    assert db[b"a"] == b"1" and ks[b"b"] == b"2"
    with pytest.raises(RuntimeError):
        with db.transaction() as tx:
            tx[b"c"] = b"3"
            raise RuntimeError("boom")
    assert b"c" not in db
    with pytest.raises(keyval.InvalidArgumentError):
        tx.commit()  # finished


def test_update_retries_every_increment_in(db: keyval.Store) -> None:
    def incr(tx: keyval.Transaction) -> int:
        n = int(tx.get(b"counter") or b"0") + 1
        tx[b"counter"] = str(n).encode()
        return n

    threads = [threading.Thread(target=lambda: [db.update(incr) for _ in range(25)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db[b"counter"] == b"100"
    assert db.view(lambda s: s[b"counter"]) == b"100"


def test_reverse_items_and_snapshot_iterators(db: keyval.Store) -> None:
    for i in range(20):
        db[b"k%02d" % i] = b"old"
    it = db.items(prefix=b"k", reverse=True)
    assert next(it) == (b"k19", b"old")
    db[b"k05"] = b"new"  # after the iterator started
    rest = list(it)
    assert [k for k, _ in rest] == [b"k%02d" % i for i in range(18, -1, -1)]
    assert all(v == b"old" for _, v in rest)
    with db.snapshot() as s:
        db[b"k99"] = b"later"
        assert [k for k, _ in s.items(start=b"k17")] == [b"k17", b"k18", b"k19"]
        assert list(s.items(prefix=b"k1", reverse=True))[0][0] == b"k19"


def test_snapshot_age_limit(tmp_path: Path) -> None:
    with keyval.open(tmp_path / "aged", max_snapshot_age=0.05) as db:
        db[b"k"] = b"v"
        s = db.snapshot()
        assert s[b"k"] == b"v"
        time.sleep(0.12)
        with pytest.raises(keyval.SnapshotExpiredError):
            s[b"k"]
        s.close()
    with pytest.raises(keyval.InvalidArgumentError):
        keyval.open(tmp_path / "bad", max_snapshot_age=0)

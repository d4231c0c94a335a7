"""Values kept in the WAL segments: a store several times its memory budget."""
import pathlib

import pytest

import keyval


def big(i: int, version: int) -> bytes:
    head = f"k{i}-v{version}-".encode()
    return head + bytes((97 + (j + i + version) % 26) for j in range(4096 - len(head)))


def test_store_larger_than_its_budget(tmp_path: pathlib.Path) -> None:
    opts = dict(memory_budget=64 << 10, segment_size=256 << 10, max_wal_size=0)
    n = 300
    with keyval.open(tmp_path / "db", **opts) as db:
        for version in range(3):
            for i in range(n):
                db[f"key{i}".encode()] = big(i, version)
        m = db.metrics()
        assert m["separated_values"] == n
        assert m["separated_bytes"] == n * 4096
        assert m["memory_bytes"] < m["separated_bytes"] // 4
        db.checkpoint()
        segments, moved = db.reclaim()
        assert segments > 0 and moved > 0
    with keyval.open(tmp_path / "db", **opts) as db:
        for i in range(n):
            assert db[f"key{i}".encode()] == big(i, 2)
        assert [k for k, _ in db.items()][:2] == [b"key0", b"key1"]
        m = db.metrics()
        assert m["value_reads"] > 0
        assert m["value_cache_bytes"] <= 64 << 10


def test_separation_off_and_bad_values(tmp_path: pathlib.Path) -> None:
    with keyval.open(tmp_path / "off", separate_values=False) as db:
        db[b"k"] = big(1, 1)
        assert db.metrics()["separated_values"] == 0
    with pytest.raises(keyval.InvalidArgumentError):
        keyval.open(tmp_path / "bad", value_separation_threshold=10)
    with pytest.raises(keyval.InvalidArgumentError):
        keyval.open(tmp_path / "bad2", memory_budget=-1)

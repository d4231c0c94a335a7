"""keyval.RaftLog: entries, hard state, truncation, snapshots, errors,
threads and recovery after SIGKILL."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import keyval
from keyval import Entry, HardState, RaftLog, SnapshotMeta


def payload(i: int) -> bytes:
    return b"entry-%d" % i


def fill(log: RaftLog, lo: int, hi: int, term: int) -> None:
    log.append([Entry(i, term, payload(i)) for i in range(lo, hi + 1)])


def test_entries_hard_state_truncation_and_snapshot(tmp_path: Path) -> None:
    d = tmp_path / "log"
    with RaftLog(d, segment_size=64 << 10) as log:
        assert log.first_index == 1 and log.last_index is None
        assert log.hard_state() is None and log.snapshot() is None and log.last_purged is None
        with pytest.raises(keyval.OutOfRangeError):
            log.entry(1)
        fill(log, 1, 300, 1)
        log.append([Entry(301, 2, b"")])
        assert log.last_index == 301
        assert log.entry(150) == Entry(150, 1, payload(150))
        assert log.entry(301).data == b""
        assert log.term(301) == 2
        got = log.entries(10, 20)
        assert [e.index for e in got] == list(range(10, 20))
        assert all(e.data == payload(e.index) for e in got)
        assert len(log.entries(1, 300, max_bytes=1)) == 1
        assert log.entries(5, 5) == []
        with pytest.raises(keyval.InvalidArgumentError):
            log.append([Entry(303, 2, b"gap")])
        with pytest.raises(TypeError):
            log.append([Entry(302, 2, "text")])  # type: ignore[arg-type]
        log.save_hard_state(HardState(term=2, vote=b"n\x00de", commit=250))
        log.truncate_suffix(280)
        with pytest.raises(keyval.OutOfRangeError):
            log.entry(280)
        fill(log, 280, 290, 3)
        log.save_snapshot(SnapshotMeta(200, 1, b"cfg"), b"S" * 100_000)
        log.truncate_prefix(200)
        with pytest.raises(keyval.CompactedError):
            log.entry(200)
        assert log.first_index == 201 and log.last_purged == (200, 1)
    with pytest.raises(keyval.ClosedError):
        log.entry(201)
    log.close()  # twice is fine

    with RaftLog(d) as log:
        assert (log.first_index, log.last_index) == (201, 290)
        assert log.entry(285) == Entry(285, 3, payload(285))
        assert log.hard_state() == HardState(2, b"n\x00de", 250)
        snap = log.snapshot()
        assert snap is not None
        meta, data = snap
        assert meta == SnapshotMeta(200, 1, b"cfg") and data == b"S" * 100_000


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(keyval.InvalidArgumentError):
        RaftLog(tmp_path / "b", durability="buffered")
    with pytest.raises(keyval.InvalidArgumentError):
        RaftLog(tmp_path / "x", durability="always")
    log = RaftLog(tmp_path / "l")
    with pytest.raises(keyval.LockedError):
        RaftLog(tmp_path / "l")
    log.close()
    with pytest.raises(keyval.InvalidArgumentError):
        RaftLog(tmp_path / "missing", create_if_missing=False)


def test_threads_share_a_log(tmp_path: Path) -> None:
    with RaftLog(tmp_path / "log") as log:
        lock = threading.Lock()
        nxt = [1]
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(50):
                    with lock:
                        i = nxt[0]
                        log.append([Entry(i, 1, payload(i))])
                        nxt[0] += 1
                    assert log.entry(i).data == payload(i)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        ts = [threading.Thread(target=work) for _ in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors
        assert log.last_index == 300


CHILD = """
import sys, keyval
log = keyval.RaftLog(sys.argv[1])
i = (log.last_index or 0) + 1
while True:
    log.append([keyval.Entry(i, 1, b"entry-%d" % i)])
    print(i, flush=True)
    i += 1
"""


def test_sigkill_child_appender(tmp_path: Path) -> None:
    d = tmp_path / "log"
    acked = 0
    for _ in range(2):
        p = subprocess.Popen([sys.executable, "-c", CHILD, str(d)], stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        for line in p.stdout:
            acked = int(line)
            if acked % 400 == 0:
                break
        p.send_signal(signal.SIGKILL)
        p.wait()
        with RaftLog(d) as log:
            last = log.last_index
            assert last is not None and last >= acked
            for i in range(1, acked + 1):
                assert log.entry(i).data == payload(i)


def test_symmetric_open(tmp_path: Path) -> None:
    """A Raft log opens the way a store does: keyval.open_raft_log(path) and
    RaftLog.open(path), each a context manager."""
    import keyval
    with keyval.open_raft_log(tmp_path / "a", segment_size=64 << 10) as log:
        log.append([Entry(1, 1, b"x")])
    with RaftLog.open(tmp_path / "a", segment_size=64 << 10) as log:
        assert log.entry(1).data == b"x"
    with keyval.open(tmp_path / "s") as db:
        db[b"k"] = b"v"


def test_raft_backup(tmp_path: Path) -> None:
    """A Raft log backup opens with the same entries and hard state."""
    with RaftLog.open(tmp_path / "log") as log:
        log.append([Entry(i, 1, b"e%d" % i) for i in range(1, 11)])
        log.save_hard_state(HardState(term=1, vote=b"n1", commit=10))
        assert log.backup(tmp_path / "copy") >= 2
        with pytest.raises(keyval.InvalidArgumentError):
            log.backup(tmp_path / "copy")
    with RaftLog.open(tmp_path / "copy") as b:
        assert b.entry(10).data == b"e10"
        assert b.hard_state() == HardState(term=1, vote=b"n1", commit=10)


def test_metrics(tmp_path: Path) -> None:
    with RaftLog(tmp_path / "log", segment_size=64 << 10) as log:
        fill(log, 1, 100, 1)
        log.truncate_suffix(91)
        log.truncate_prefix(40)
        m = log.metrics()
        assert m["entries_appended"] == 100
        assert (m["truncations_suffix"], m["truncations_prefix"]) == (1, 1)
        assert (m["first_index"], m["last_index"]) == (41, 90)
        assert m["append_latency"]["count"] == m["appends"]
        assert m["poisoned"] is False
        text = log.prometheus_metrics("n1")
        assert 'keyval_raft_first_index{log="n1"} 41\n' in text
        assert "# TYPE keyval_raft_operation_duration_seconds histogram" in text
        assert str(tmp_path) in log.prometheus_metrics()
    with pytest.raises(keyval.ClosedError):
        log.metrics()

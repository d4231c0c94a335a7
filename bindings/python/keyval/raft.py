"""``keyval.RaftLog``: the durable Raft log store (``kv_raft_*`` in the C ABI).

    log = keyval.RaftLog("node1/log")
    log.append([keyval.Entry(1, 1, b"cmd")])   # durable on return
    log.save_hard_state(keyval.HardState(term=1, vote=b"node1", commit=1))
    log.entry(1).data == b"cmd"

Entries, the hard state (the vote is opaque bytes) and snapshots live in a
directory of their own. Threads: a RaftLog may be shared; ctypes releases the
GIL during each call, so concurrent appenders share fsyncs. Appends must be
ordered by the caller (they must continue the log).
"""
from __future__ import annotations

import ctypes
import json
import os
from ctypes import byref, c_size_t, c_uint64, c_void_p
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

from . import _native
from ._handle import BytesLike, _b, _Handle, _Native, _options, _path
from .errors import _check
from ._native import lib


@dataclass(frozen=True)
class Entry:
    """One log entry: its index, the term it was created in, its payload."""
    index: int
    term: int
    data: bytes


@dataclass(frozen=True)
class HardState:
    """Raft's hard state: current term, vote (opaque bytes, empty = none),
    commit index."""
    term: int
    vote: bytes
    commit: int


@dataclass(frozen=True)
class SnapshotMeta:
    """The last index and term a snapshot covers, and opaque configuration
    (membership) bytes."""
    last_index: int
    last_term: int
    config: bytes


def _take(p: Any, n: int) -> bytes:
    """Copy n bytes out of library memory and free it."""
    try:
        return ctypes.string_at(p, n)
    finally:
        lib.kv_free(p)


class RaftLog(_Native):
    """A durable Raft log in directory ``path``, opened (and recovered) on
    construction; ``durability`` is ``"sync"`` (default) or ``"os"``.

    Raises LockedError (open elsewhere), CorruptionError, InvalidArgumentError
    (including ``durability="buffered"``), IoError. Reads of a compacted index
    raise CompactedError, beyond the end OutOfRangeError; every method raises
    ClosedError after :meth:`close`.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"], *, durability: str = "sync",
                 recovery_mode: str = "tolerate_tail", segment_size: Optional[int] = None,
                 max_value_size: Optional[int] = None, create_if_missing: bool = True) -> None:
        o = _options(durability, recovery_mode, create_if_missing=create_if_missing,
                     segment_size=segment_size, max_value_size=max_value_size)
        p = _path(path)
        h = c_void_p()
        _check(lib.kv_raft_open(p, byref(o), byref(h)))
        self._handle = _Handle(h)
        self.path = os.fsdecode(p)

    @classmethod
    def open(cls, path: Union[str, "os.PathLike[str]"], **options: Any) -> "RaftLog":
        """The same as ``RaftLog(path, **options)``, spelled like
        :func:`keyval.open` and :func:`keyval.open_raft_log`."""
        return cls(path, **options)

    def _close_native(self, h: int) -> int:
        status: int = lib.kv_raft_close(h)
        return status

    def append(self, entries: Sequence[Entry]) -> None:
        """Append entries with consecutive indexes continuing the log (any
        index for a new log); durable on return. Raises InvalidArgumentError
        (a gap, a payload over max_value_size), PoisonedError, IoError."""
        n = len(entries)
        if n == 0:
            return
        arr = (_native.KvRaftEntry * n)()
        keep = []
        for i, e in enumerate(entries):
            d = _b(e.data, "entry data")
            buf = ctypes.create_string_buffer(d, len(d)) if d else None
            keep.append(buf)
            arr[i].index, arr[i].term, arr[i].data_len = e.index, e.term, len(d)
            arr[i].data = ctypes.cast(buf, _native._u8p) if buf is not None else None
        _check(self._call(lib.kv_raft_append, arr, n))

    def entry(self, index: int) -> Entry:
        """The entry at ``index``. Raises CompactedError, OutOfRangeError,
        CorruptionError (the stored entry fails its CRC), IoError."""
        term = c_uint64()
        p = _native._u8p()
        n = c_size_t()
        _check(self._call(lib.kv_raft_entry_get, index, byref(term), byref(p), byref(n)))
        return Entry(index, term.value, _take(p, n.value))

    def entries(self, lo: int, hi: int, max_bytes: int = 2**64 - 1) -> list[Entry]:
        """Entries with ``lo <= index < hi``, stopping after the one that
        brings the payload total to ``max_bytes`` (at least one if lo < hi)."""
        arr = ctypes.POINTER(_native.KvRaftEntry)()
        n = c_size_t()
        _check(self._call(lib.kv_raft_entries, lo, hi, max_bytes, byref(arr), byref(n)))
        if n.value == 0:
            return []
        try:
            return [Entry(arr[i].index, arr[i].term, ctypes.string_at(arr[i].data, arr[i].data_len))
                    for i in range(n.value)]
        finally:
            lib.kv_free(ctypes.cast(arr, _native._u8p))

    def term(self, index: int) -> int:
        """The term of the entry at ``index`` (no disk access)."""
        t = c_uint64()
        _check(self._call(lib.kv_raft_term, index, byref(t)))
        return t.value

    @property
    def first_index(self) -> int:
        """The first index held (1 for a new log; after compaction, the one
        after the last purged index)."""
        f = c_uint64()
        _check(self._call(lib.kv_raft_bounds, byref(f), None))
        return f.value

    @property
    def last_index(self) -> Optional[int]:
        """The last index held, or None if the log holds no entry."""
        f, la = c_uint64(), c_uint64()
        _check(self._call(lib.kv_raft_bounds, byref(f), byref(la)))
        return la.value if la.value >= f.value else None

    @property
    def last_purged(self) -> Optional[tuple[int, int]]:
        """(index, term) of the last entry removed by truncate_prefix, or None."""
        i, t = c_uint64(), c_uint64()
        st = self._call(lib.kv_raft_last_purged, byref(i), byref(t))
        if st == _native.KV_NOT_FOUND:
            return None
        _check(st)
        return i.value, t.value

    def truncate_suffix(self, from_index: int) -> None:
        """Remove every entry with index >= ``from_index``, durably."""
        _check(self._call(lib.kv_raft_truncate_suffix, from_index))

    def truncate_prefix(self, upto: int) -> None:
        """Remove every entry with index <= ``upto`` durably and reclaim
        whole WAL segments; the first index becomes ``upto + 1``."""
        _check(self._call(lib.kv_raft_truncate_prefix, upto))

    def backup(self, dest: Union[str, "os.PathLike[str]"]) -> int:
        """Copy the log (entries, hard state, truncations, snapshot) into the
        new directory ``dest`` while appends go on; return the last sequence
        number copied. ``dest`` opens with :meth:`RaftLog.open`. Same staging
        and crash rules as :meth:`keyval.Store.backup`."""
        lsn = c_uint64(0)
        _check(self._call(lib.kv_raft_backup, _path(dest), byref(lsn)))
        return lsn.value

    def save_hard_state(self, hs: HardState) -> None:
        """Save the hard state durably."""
        v = _b(hs.vote, "vote")
        _check(self._call(lib.kv_raft_save_hard_state, hs.term, v, len(v), hs.commit))

    def hard_state(self) -> Optional[HardState]:
        """The last saved hard state, or None if none was saved."""
        term, commit = c_uint64(), c_uint64()
        p = _native._u8p()
        n = c_size_t()
        st = self._call(lib.kv_raft_hard_state, byref(term), byref(p), byref(n), byref(commit))
        if st == _native.KV_NOT_FOUND:
            return None
        _check(st)
        return HardState(term.value, _take(p, n.value), commit.value)

    def save_snapshot(self, meta: SnapshotMeta, data: BytesLike) -> None:
        """Save a snapshot atomically (SHA-256 checked on load). Does not
        truncate the log. Raises IoError (the previous snapshot stays)."""
        c, d = _b(meta.config, "config"), _b(data, "data")
        _check(self._call(lib.kv_raft_save_snapshot, meta.last_index, meta.last_term, c, len(c), d, len(d)))

    def snapshot(self) -> Optional[tuple[SnapshotMeta, bytes]]:
        """The latest snapshot and its data, verified, or None. Raises
        CorruptionError if it fails its checksum."""
        li, lt = c_uint64(), c_uint64()
        cp, dp = _native._u8p(), _native._u8p()
        cn, dn = c_size_t(), c_size_t()
        st = self._call(lib.kv_raft_snapshot, byref(li), byref(lt), byref(cp), byref(cn), byref(dp), byref(dn))
        if st == _native.KV_NOT_FOUND:
            return None
        _check(st)
        config = _take(cp, cn.value)
        return SnapshotMeta(li.value, lt.value, config), _take(dp, dn.value)

    def _text_out(self, fn: Any, *args: Any) -> str:
        """Call a kv_raft_ function that returns a malloc'd string."""
        p = _native._u8p()
        n = c_size_t()
        _check(self._call(fn, *args, byref(p), byref(n)))
        try:
            return ctypes.string_at(p, n.value).decode()
        finally:
            lib.kv_free(p)

    def metrics(self) -> dict[str, Any]:
        """Counters since open (``appends``, ``entries_appended``,
        ``bytes_appended``, ``hard_state_saves``, ``truncations_suffix``,
        ``truncations_prefix``, ``segment_rotations``, ``segments_reclaimed``,
        ``snapshots_saved``, ``fsyncs``, ``commit_groups``, ``errors``), gauges
        (``first_index``, ``last_index`` (0: none), ``wal_segments``,
        ``wal_disk_bytes``, ``poisoned``) and latencies (``append_latency``,
        ``hard_state_latency``, ``truncate_latency``, ``snapshot_latency``: dicts
        of count, p50, p95, p99, max, mean in microseconds). ClosedError."""
        m: dict[str, Any] = json.loads(self._text_out(lib.kv_raft_metrics_json))
        return m

    def prometheus_metrics(self, label: Optional[str] = None) -> str:
        """The metrics in Prometheus text exposition format, names starting
        ``keyval_raft_``, labelled ``log="<label>"`` (the directory by default)."""
        return self._text_out(lib.kv_raft_metrics_prometheus, None if label is None else label.encode())

    def __repr__(self) -> str:
        return f"keyval.RaftLog({self.path!r}{', closed' if self.closed else ''})"


__all__ = ["RaftLog", "Entry", "HardState", "SnapshotMeta"]


def open_raft_log(path: Union[str, "os.PathLike[str]"], *, durability: str = "sync",
                  recovery_mode: str = "tolerate_tail", segment_size: Optional[int] = None,
                  max_value_size: Optional[int] = None, create_if_missing: bool = True) -> RaftLog:
    """Open (creating if allowed, then recovering) the Raft log in directory
    ``path``: the counterpart of :func:`keyval.open` for a key-value store.
    Options and errors as :class:`RaftLog`."""
    return RaftLog(path, durability=durability, recovery_mode=recovery_mode,
                   segment_size=segment_size, max_value_size=max_value_size,
                   create_if_missing=create_if_missing)

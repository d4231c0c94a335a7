"""The key-value store: :func:`open`, :class:`Store` (a MutableMapping of
bytes) and :class:`Batch`."""
from __future__ import annotations

import ctypes
import os
import threading
from array import array
from collections.abc import Iterable, Iterator, MutableMapping
from itertools import accumulate
from ctypes import byref, c_int32, c_size_t, c_uint64, c_void_p
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Type, TypeVar, Union, overload

from . import _native
from ._handle import BytesLike, _b, _durability, _Handle, _json_out, _Native, _options, _path
from .documents import Collection
from .keyspace import Keyspace
from ._native import lib
from .errors import _ERRORS, ClosedError, InvalidArgumentError, NotFoundError, _check
from . import txn as _txn
from .txn import Snapshot, Transaction

T = TypeVar("T")



def version() -> str:
    """The native library's version, e.g. ``"0.1.0"``."""
    v: bytes = lib.kv_version()
    return v.decode()


def open(path: Union[str, "os.PathLike[str]"], *, durability: str = "sync", recovery_mode: str = "tolerate_tail",
         segment_size: Optional[int] = None, max_wal_size: Optional[int] = None,
         keep_snapshots: Optional[int] = None, max_key_size: Optional[int] = None,
         max_value_size: Optional[int] = None, create_if_missing: bool = True,
         checkpoint_interval: Optional[float] = None, read_only: bool = False,
         max_snapshot_age: Optional[float] = None, memory_budget: Optional[int] = None,
         value_separation_threshold: Optional[int] = None, separate_values: bool = True) -> "Store":
    """Open (creating if allowed, then recovering) the store in directory ``path``.

    ``durability``: ``"sync"`` (fdatasync before a write returns; survives power
    loss; the default), ``"os"`` (handed to the OS; survives a process crash) or
    ``"buffered"`` (in-process buffer). ``recovery_mode``: ``"tolerate_tail"``
    (default: truncate a torn tail, fail on other damage), ``"absolute"`` or
    ``"tolerate_any"``. Sizes are in bytes; ``None`` keeps the library default.
    ``checkpoint_interval`` (seconds, at least 0.01): also checkpoint in the
    background that long after the last checkpoint if anything was written
    since; ``None`` (the default) checkpoints by WAL size only.
    ``read_only=True`` opens without the directory lock, beside a writer,
    changing nothing on disk: writes raise InvalidArgumentError, and an open
    that keeps racing the writer's rotations raises IoError (retry it).
    ``max_snapshot_age`` (seconds, at least 0.001): reads of a snapshot,
    transaction or iterator older than this raise SnapshotExpiredError, so a
    forgotten one cannot pin old versions in memory; ``None``: no limit.
    ``value_separation_threshold`` (bytes, at least 64; default 1024): values
    this long or longer stay in the WAL segments where they were written, and
    memory holds only the key and a 24-byte pointer; ``separate_values=False``
    keeps every value in memory. ``memory_budget`` (bytes; default 256 MiB):
    the value cache for those values (the index of keys is not part of it).

    Raises LockedError, CorruptionError, InvalidArgumentError, IoError.
    """
    o = _options(durability, recovery_mode, segment_size=segment_size, max_wal_size=max_wal_size,
                 keep_snapshots=keep_snapshots, max_key_size=max_key_size, max_value_size=max_value_size,
                 create_if_missing=create_if_missing,
                 checkpoint_interval_ms=_millis(checkpoint_interval))
    o.read_only = 1 if read_only else 0
    if max_snapshot_age is not None:
        if isinstance(max_snapshot_age, bool) or not isinstance(max_snapshot_age, (int, float)) \
                or not max_snapshot_age > 0:
            raise InvalidArgumentError(
                f"max_snapshot_age must be a positive number of seconds, not {max_snapshot_age!r}")
        o.max_snapshot_age_ms = max(1, round(max_snapshot_age * 1000))
    for name, v in (("memory_budget", memory_budget), ("value_separation_threshold", value_separation_threshold)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InvalidArgumentError(f"{name} must be a positive number of bytes, not {v!r}")
    if memory_budget is not None:
        o.memory_budget = memory_budget
    if value_separation_threshold is not None:
        if value_separation_threshold >= 2**32 - 1:
            raise InvalidArgumentError("value_separation_threshold must be below 2**32 - 1")
        o.value_separation_threshold = value_separation_threshold
    if not separate_values:
        o.value_separation_threshold = 2**32 - 1
    p = _path(path)
    h = c_void_p()
    _check(lib.kv_open(p, byref(o), byref(h)))
    return Store(h, os.fsdecode(p))


def _millis(seconds: Optional[float]) -> Optional[int]:
    """Seconds to whole milliseconds for kv_options (None stays None)."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise InvalidArgumentError(f"checkpoint_interval must be a positive number of seconds, not {seconds!r}")
    return max(1, round(seconds * 1000))


class Store(_Native, Keyspace):
    """An open KeyVal store; create it with :func:`keyval.open`. It is its
    default keyspace: every :class:`Keyspace` operation (``store[k]``,
    ``set``, ``get_many``, ``discard``, ``items``, ...) works on it, except
    that :meth:`stats` is the store's."""

    def __init__(self, h: c_void_p, path: str) -> None:
        # The default keyspace's handle first: if it fails, the store is
        # closed here, before any _handle exists for close() to close again.
        ks = c_void_p()
        st = lib.kv_keyspace_default(h, byref(ks))
        if st != _native.KV_OK:
            lib.kv_close(h)
            _check(st)
        self._handle = _Handle(h)
        self.path = path
        self._bind(self, "", ks)

    def _close_native(self, h: int) -> int:
        status: int = lib.kv_close(h)
        # No call is in flight (close waited) and later ones raise
        # ClosedError before they reach the handle.
        self._free_keyspace()
        return status

    def __del__(self) -> None:
        _Native.__del__(self)

    # -- collections and keyspaces ----------------------------------------
    def collection(self, name: str) -> "Collection":
        """The document collection ``name`` (created by its first write)."""
        return Collection(self, name)

    def create_collection(self, name: str) -> "Collection":
        """Create collection ``name`` now if it does not exist (idempotent)
        and return it; :meth:`collection` instead creates it on its first
        successful write. Raises ``InvalidArgument`` for a name of 0 or
        more than 200 bytes."""
        n = name.encode()
        _check(self._call(lib.kv_coll_create, n, len(n)))
        return Collection(self, name)

    def list_collections(self) -> List[str]:
        """The collections' names, sorted (the same as :meth:`collections`)."""
        return self.collections()

    def collections(self) -> List[str]:
        """The collections' names, sorted."""
        names: List[str] = _json_out(self, lib.kv_coll_list)
        return names

    def drop_collection(self, name: str) -> bool:
        """Drop collection ``name`` with its documents and indexes."""
        n = name.encode()
        existed = c_int32()
        _check(self._call(lib.kv_coll_drop, n, len(n), byref(existed)))
        return bool(existed.value)

    def keyspace(self, name: str) -> "Keyspace":
        """The keyspace ``name`` (1-255 bytes of UTF-8), created if missing."""
        return Keyspace(self, name)

    def keyspaces(self) -> List[str]:
        """The named keyspaces, sorted."""
        names: List[str] = _json_out(self, lib.kv_keyspace_list)
        return names

    def drop_keyspace(self, name: str) -> bool:
        """Drop keyspace ``name`` and every key in it, atomically and durably."""
        n = name.encode()
        existed = c_int32()
        _check(self._call(lib.kv_keyspace_drop, n, len(n), byref(existed)))
        return bool(existed.value)

    # -- snapshots and transactions ----------------------------------------
    def snapshot(self) -> "Snapshot":
        """A consistent read view of the store at this moment (``with
        store.snapshot() as s:``); see :class:`Snapshot`."""
        return _txn.snapshot(self)

    def transaction(self, *, durability: Optional[str] = None) -> "Transaction":
        """A serializable read-write transaction (``with store.transaction()
        as tx:`` commits when the block ends, rolls back if it raises),
        committed at ``durability`` when given; see :class:`Transaction`."""
        return _txn.begin(self, durability)

    @overload
    def update(self, fn: Callable[["Transaction"], T], /) -> T: ...

    @overload
    def update(self, other: Any = (), /, **kwargs: bytes) -> None: ...

    def update(self, fn: Any = (), /, **kwargs: Any) -> Any:
        """With a function: run ``fn(tx)`` in a transaction and commit it, as
        bbolt's ``Update``: if ``fn`` raises, nothing is written; if the
        commit conflicts, ``fn`` runs again in a new transaction (at most
        ``UPDATE_MAX_ATTEMPTS`` times). Returns ``fn``'s result. With a
        mapping or pairs (or keywords): ``MutableMapping.update``, one set
        per pair."""
        if callable(fn) and not kwargs and not hasattr(fn, "keys"):
            return _txn.update(self, fn)
        MutableMapping.update(self, fn, **kwargs)
        return None

    def view(self, fn: Callable[["Snapshot"], T]) -> T:
        """Run ``fn(snapshot)`` and release the snapshot; returns its result."""
        with self.snapshot() as s:
            return fn(s)

    # -- batches and maintenance ------------------------------------------
    def batch(self, *, durability: Optional[str] = None) -> "Batch":
        """A write batch, applied atomically when its ``with`` block ends without
        an exception (nothing is applied if the block raises); committed at
        ``durability`` as for :meth:`set` when given."""
        return Batch(self, durability=durability)

    def sync(self) -> None:
        """Make every acknowledged write durable (needed under "os"/"buffered")."""
        _check(self._call(lib.kv_sync))

    def backup(self, dest: Union[str, "os.PathLike[str]"]) -> int:
        """Write a consistent copy of the store into the new directory
        ``dest`` while other threads keep writing; return the LSN it reached.

        The copy opens with :func:`keyval.open` and holds every write
        acknowledged before the call and no part of a later one. It is
        built in ``.<name>.backup-tmp.<unique>`` next to ``dest`` and renamed into
        place when complete: after a crash or kill ``dest`` is missing, or
        opening it raises :class:`CorruptionError` ("unfinished backup").
        A store opened with ``read_only=True`` backs up its view, which is
        how another process backs up a live store.

        Raises :class:`InvalidArgumentError` (``dest`` exists, its parent is
        missing), :class:`ClosedError`, :class:`IoError` (the store is
        unaffected).
        """
        lsn = c_uint64(0)
        _check(self._call(lib.kv_backup, _path(dest), byref(lsn)))
        return lsn.value

    def checkpoint(self) -> None:
        """Write a snapshot and drop the WAL it covers."""
        _check(self._call(lib.kv_checkpoint))

    def reclaim(self) -> tuple[int, int]:
        """Move the live values out of every closed WAL segment that is less
        than 67% live, then checkpoint, so that those segments are deleted
        (it also runs by itself after automatic checkpoints). Returns
        ``(segments, value_bytes_moved)``. Raises ClosedError, PoisonedError,
        IoError, CorruptionError (a value to move fails its CRC)."""
        segs, moved = c_uint64(), c_uint64()
        _check(self._call(lib.kv_reclaim, byref(segs), byref(moved)))
        return segs.value, moved.value

    def stats(self) -> dict[str, Any]:
        """Counts, sizes (bytes) and the last recovery's facts, as a dict."""
        s = _native.KvStats()
        _check(self._call(lib.kv_stats_get, byref(s)))
        d: dict[str, Any] = {n: getattr(s, n) for n in _native.STATS_FIELDS + _native.STATS_TAIL_FIELDS}
        d["poisoned"] = bool(s.poisoned)
        d["recovery"] = {n[len("recovery_"):]: getattr(s, n)
                         for n in _native.RECOVERY_FIELDS + _native.RECOVERY_TAIL_FIELDS}
        d["recovery"]["truncated"] = bool(s.recovery_truncated)
        return d

    def metrics(self) -> dict[str, Any]:
        """Operation counters and latency summaries since open or the last
        :meth:`reset_metrics`, plus gauges, as a dict. Latencies are in
        microseconds: ``m["get_latency"]["p99"]`` (gets are timed one in 32;
        ``m["gets"]`` counts them all); ``m["errors"]`` maps error kind names
        to counts."""
        m = _native.KvMetrics()
        _check(self._call(lib.kv_metrics_get, byref(m)))
        d: dict[str, Any] = {"seconds": m.seconds}
        d.update({n: getattr(m, n) for n in _native.METRIC_COUNTERS + _native.METRIC_GAUGES})
        for n in _native.METRIC_SUMMARIES:
            s = getattr(m, n)
            d[n] = {f: getattr(s, f) for f in ("count", "p50", "p95", "p99", "max", "mean")}
        tail = {13: m.errors_conflict, 14: m.errors_snapshot_expired}
        d["errors"] = {c.__name__: m.errors[code] if code < 13 else tail[code] for code, c in _ERRORS.items()}
        d.update({n: getattr(m, n) for n in _native.METRIC_TAIL_FIELDS[2:]})
        return d

    def reset_metrics(self) -> None:
        """Zero the counters and latency summaries (gauges are kept)."""
        _check(self._call(lib.kv_metrics_reset))

    def prometheus_metrics(self) -> str:
        """The metrics in Prometheus text exposition format."""
        p = _native._u8p()
        n = c_size_t()
        _check(self._call(lib.kv_metrics_prometheus, byref(p), byref(n)))
        try:
            return ctypes.string_at(p, n.value).decode()
        finally:
            lib.kv_free(p)

    def __repr__(self) -> str:
        return f"<keyval.Store {self.path!r}{' closed' if self.closed else ''}>"


class Batch:
    """Sets and deletes applied atomically by :meth:`commit` (or at the end of a
    ``with`` block). Not thread-safe."""

    def __init__(self, store: Store, *, durability: Optional[str] = None) -> None:
        self._b: Optional[int] = None  # before anything can raise: __del__ reads it
        self._store = store
        self._durability = None if durability is None else _durability(durability)
        self._b = lib.kv_batch_new()
        if not self._b:
            raise MemoryError("kv_batch_new failed")

    def _h(self) -> int:
        if self._b is None:
            raise ClosedError("the batch was already committed or discarded")
        return self._b

    def put(self, key: BytesLike, value: BytesLike, keyspace: Optional["Keyspace"] = None) -> None:
        """Add "set key to value", in ``keyspace`` if given (one batch may write
        the default keyspace and several named ones, atomically)."""
        k, v = _b(key), _b(value, "value")
        if keyspace is None:
            _check(lib.kv_batch_put(self._h(), k, len(k), v, len(v)))
        else:
            _check(lib.kv_batch_put_in(self._h(), keyspace._handle_for_batch(), k, len(k), v, len(v)))

    __setitem__ = put

    def delete(self, key: BytesLike, keyspace: Optional["Keyspace"] = None) -> None:
        """Add "remove key", from ``keyspace`` if given."""
        k = _b(key)
        if keyspace is None:
            _check(lib.kv_batch_delete(self._h(), k, len(k)))
        else:
            _check(lib.kv_batch_delete_in(self._h(), keyspace._handle_for_batch(), k, len(k)))

    __delitem__ = delete

    def __len__(self) -> int:
        return int(lib.kv_batch_count(self._b)) if self._b else 0

    def commit(self, *, durability: Optional[str] = None) -> None:
        """Apply every operation atomically, then release the batch. If any key
        or value is invalid, nothing is applied (InvalidArgumentError).
        ``durability`` (or the one given to :meth:`Store.batch`) as for
        :meth:`Store.set`."""
        b = self._h()
        d = self._durability if durability is None else _durability(durability)
        try:
            if d is None:
                _check(self._store._call(lib.kv_batch_commit, b))
            else:
                _check(self._store._call(lib.kv_batch_commit_with, b, d))
        finally:
            self.discard()

    def discard(self) -> None:
        """Release the batch without applying it. Safe to call twice."""
        if self._b is not None:
            lib.kv_batch_free(self._b)
            self._b = None

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, et: Optional[Type[BaseException]], ev: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if et is None:
            self.commit()
        else:
            self.discard()

    def __del__(self) -> None:
        self.discard()

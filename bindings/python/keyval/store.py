"""The key-value store: :func:`open`, :class:`Store` (a MutableMapping of
bytes) and :class:`Batch`."""
from __future__ import annotations

import ctypes
import os
import threading
from array import array
from collections.abc import Iterable, Iterator
from itertools import accumulate
from ctypes import byref, c_int32, c_size_t, c_uint64, c_void_p
from types import TracebackType
from typing import TYPE_CHECKING, Any, List, Optional, Type, Union

from . import _native
from ._handle import (BytesLike, _b, _durability, _Handle, _Native, _OrderedBytesMap, _options, _path, _range_args,
                      _walk)
from ._native import lib
from .errors import _ERRORS, ClosedError, InvalidArgumentError, NotFoundError, _check

if TYPE_CHECKING:  # pragma: no cover
    from .documents import Collection, Keyspace

_get_into = _native.kv_get_into_addr


def version() -> str:
    """The native library's version, e.g. ``"0.1.0"``."""
    v: bytes = lib.kv_version()
    return v.decode()


def open(path: Union[str, "os.PathLike[str]"], *, durability: str = "sync", recovery_mode: str = "tolerate_tail",
         segment_size: Optional[int] = None, max_wal_size: Optional[int] = None,
         keep_snapshots: Optional[int] = None, max_key_size: Optional[int] = None,
         max_value_size: Optional[int] = None, create_if_missing: bool = True,
         checkpoint_interval: Optional[float] = None, read_only: bool = False) -> "Store":
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

    Raises LockedError, CorruptionError, InvalidArgumentError, IoError.
    """
    o = _options(durability, recovery_mode, segment_size=segment_size, max_wal_size=max_wal_size,
                 keep_snapshots=keep_snapshots, max_key_size=max_key_size, max_value_size=max_value_size,
                 create_if_missing=create_if_missing,
                 checkpoint_interval_ms=_millis(checkpoint_interval))
    o.read_only = 1 if read_only else 0
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


class _GetBuffer(threading.local):
    """This thread's buffer for ``kv_get_into``: a value that fits is copied
    once by the library into it and once from it into the returned bytes,
    with no malloc/free round trip. Larger values take the kv_get path."""

    def __init__(self) -> None:
        self.cap = 4096
        self.buf = ctypes.create_string_buffer(self.cap)
        self.n = c_size_t()
        self.addr = ctypes.addressof(self.buf)
        self.n_addr = ctypes.addressof(self.n)


_getbuf = _GetBuffer()


class Store(_Native, _OrderedBytesMap):
    """An open KeyVal store; create it with :func:`keyval.open`."""

    def __init__(self, h: c_void_p, path: str) -> None:
        self._handle = _Handle(h)
        self.path = path

    def _close_native(self, h: int) -> int:
        status: int = lib.kv_close(h)
        return status

    # -- collections and keyspaces ----------------------------------------
    def collection(self, name: str) -> "Collection":
        """The document collection ``name`` (created by its first write)."""
        from .documents import Collection
        return Collection(self, name)

    def create_collection(self, name: str) -> "Collection":
        """Create collection ``name`` now if it does not exist (idempotent)
        and return it; :meth:`collection` instead creates it on its first
        successful write. Raises ``InvalidArgument`` for a name of 0 or
        more than 200 bytes."""
        from .documents import Collection
        n = name.encode()
        _check(self._call(lib.kv_coll_create, n, len(n)))
        return Collection(self, name)

    def list_collections(self) -> List[str]:
        """The collections' names, sorted (the same as :meth:`collections`)."""
        return self.collections()

    def collections(self) -> List[str]:
        """The collections' names, sorted."""
        from .documents import _json_out
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
        from .documents import Keyspace
        return Keyspace(self, name)

    def keyspaces(self) -> List[str]:
        """The named keyspaces, sorted."""
        from .documents import _json_out
        names: List[str] = _json_out(self, lib.kv_keyspace_list)
        return names

    def drop_keyspace(self, name: str) -> bool:
        """Drop keyspace ``name`` and every key in it, atomically and durably."""
        n = name.encode()
        existed = c_int32()
        _check(self._call(lib.kv_keyspace_drop, n, len(n), byref(existed)))
        return bool(existed.value)

    # -- mapping ---------------------------------------------------------
    def __setitem__(self, key: BytesLike, value: BytesLike) -> None:
        k, v = _b(key), _b(value, "value")
        _check(self._call(lib.kv_set, k, len(k), v, len(v)))

    def set(self, key: BytesLike, value: BytesLike, *, durability: Optional[str] = None) -> None:
        """``store[key] = value``, acknowledged at ``durability`` (``"buffered"``,
        ``"os"`` or ``"sync"``) instead of the store's level when given.
        Concurrent writes share a commit group brought to the strongest level
        any of them asked for, so a write is never made less durable than it
        asked, and a ``"sync"`` write also makes every earlier write durable.
        InvalidArgumentError for an unknown level (nothing is written)."""
        if durability is None:
            self[key] = value
            return
        d = _durability(durability)
        k, v = _b(key), _b(value, "value")
        _check(self._call(lib.kv_set_with, k, len(k), v, len(v), d))

    def __getitem__(self, key: BytesLike) -> bytes:
        # The hot path: one library call into this thread's buffer.
        k = key if type(key) is bytes else _b(key)
        g = _getbuf
        # _Handle.acquire and release, inlined: the two method calls cost
        # about 40 ns of this path's 2 us. Register the call, then read
        # the handle, in that order (see _Handle).
        handle = self._handle
        calls = handle._calls
        calls.append(None)
        try:
            if handle._h is None:
                raise ClosedError("the store is closed")
            st = _get_into(handle.ptr, k, len(k), g.addr, g.cap, g.n_addr)
        finally:
            calls.pop()
        if st == _native.KV_OK:
            # Slicing a c_char array gives bytes (typeshed says list[bytes]).
            value: bytes = g.buf[: g.n.value]  # type: ignore[assignment]
            return value
        if st == _native.KV_NOT_FOUND:
            raise NotFoundError(repr(k))
        if st != _native.KV_BUFFER_TOO_SMALL:
            _check(st)
        return self._get_copy(k)

    def _get_copy(self, k: bytes) -> bytes:
        """kv_get: the library mallocs a copy of any size; freed here."""
        out = _native._u8p()
        n = c_size_t()
        st = self._call(lib.kv_get, k, len(k), byref(out), byref(n))
        if st == _native.KV_NOT_FOUND:
            raise NotFoundError(repr(k))
        _check(st)
        try:
            return ctypes.string_at(out, n.value)
        finally:
            lib.kv_free(out)

    def get_many(self, keys: Iterable[BytesLike]) -> list[Optional[bytes]]:
        """The values of ``keys`` in one library call (``kv_get_many``): a
        list in the same order, with ``None`` for an absent key. All keys
        are read at one point in the write order, so the values are
        consistent with each other. Raises :class:`InvalidArgumentError`
        for any empty or oversized key (nothing is returned)."""
        ks = keys if type(keys) is list else list(keys)
        if not all(type(k) is bytes for k in ks):
            ks = [_b(k) for k in ks]
        n = len(ks)
        out = c_void_p()
        if n == 0:  # still reports a closed store
            _check(self._call(lib.kv_get_many, None, None, 0, byref(out)))
            return []
        lens = array(_native.SIZE_T_CODE, map(len, ks)).tobytes()
        _check(self._call(lib.kv_get_many, b"".join(ks), lens, n, byref(out)))
        base = out.value
        assert base is not None
        try:
            # n (pointer, length) pairs, then the values back to back in key
            # order (an absent key has pointer 0 and length 0): two reads,
            # then slices, with no Python loop over the keys unless some are
            # absent.
            head = n * _native.KV_VALUE_SIZE
            pairs = memoryview(ctypes.string_at(base, head)).cast("P")  # pointer-sized, as size_t
            ends = list(accumulate(pairs[1::2].tolist()))
            blob = ctypes.string_at(base + head, ends[-1])
            values: list[Optional[bytes]] = list(map(blob.__getitem__, map(slice, [0, *ends[:-1]], ends)))
            ptrs = pairs[0::2].tolist()
            if 0 in ptrs:
                for i, p in enumerate(ptrs):
                    if not p:
                        values[i] = None
            return values
        finally:
            lib.kv_free(out)

    def get(self, key: BytesLike, default: Optional[bytes] = None) -> Optional[bytes]:  # type: ignore[override]
        """The value of ``key``, or ``default`` if absent."""
        try:
            return self[key]
        except NotFoundError:
            return default

    def discard(self, key: BytesLike, *, durability: Optional[str] = None) -> None:
        """Delete ``key`` whether or not it exists (an absent key writes
        nothing). ``durability`` as for :meth:`set`."""
        k = _b(key)
        if durability is None:
            _check(self._call(lib.kv_delete, k, len(k)))
        else:
            _check(self._call(lib.kv_delete_with, k, len(k), _durability(durability)))

    def __contains__(self, key: object) -> bool:
        k = _b(key)
        out = c_int32()
        _check(self._call(lib.kv_contains, k, len(k), byref(out)))
        return bool(out.value)

    def __len__(self) -> int:
        n = c_uint64()
        _check(self._call(lib.kv_len, byref(n)))
        return n.value

    def items(self, prefix: Optional[BytesLike] = None, start: Optional[BytesLike] = None,  # type: ignore[override]
              end: Optional[BytesLike] = None) -> Iterator[tuple[bytes, bytes]]:
        """Pairs in key order: those whose key starts with ``prefix``, or with
        ``start <= key < end`` (either bound may be None). The iteration holds no
        lock and is not a snapshot: concurrent writes may or may not be seen,
        each key comes once. Raises ClosedError if the store closes meanwhile."""
        it = c_void_p()
        is_prefix, s, e = _range_args(prefix, start, end)
        if is_prefix:
            _check(self._call(lib.kv_iter_prefix, s, len(s or b""), byref(it)))
        else:
            _check(self._call(lib.kv_iter_range, s, len(s or b""), e, len(e or b""), byref(it)))
        return _walk(it)

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
        d["errors"] = {c.__name__: m.errors[code] for code, c in _ERRORS.items()}
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
            _check(lib.kv_batch_put_in(self._h(), keyspace._handle(), k, len(k), v, len(v)))

    __setitem__ = put

    def delete(self, key: BytesLike, keyspace: Optional["Keyspace"] = None) -> None:
        """Add "remove key", from ``keyspace`` if given."""
        k = _b(key)
        if keyspace is None:
            _check(lib.kv_batch_delete(self._h(), k, len(k)))
        else:
            _check(lib.kv_batch_delete_in(self._h(), keyspace._handle(), k, len(k)))

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

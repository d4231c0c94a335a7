"""KeyVal: a durable embedded key-value store on a checksummed write-ahead log.

    import keyval
    with keyval.open("my-db") as db:       # durability="sync": fdatasync before returning
        db[b"k"] = b"v"
        assert db[b"k"] == b"v"

A :class:`Store` is a :class:`collections.abc.MutableMapping` from ``bytes`` to
``bytes`` that keeps its keys in order. Keys and values may be ``bytes``,
``bytearray`` or ``memoryview``; ``str`` is rejected with ``TypeError`` so that
no text encoding is ever guessed.

Threads: a Store may be shared by many threads. ctypes releases the GIL during
every library call, so reads run in parallel and concurrent writers share
fsyncs (group commit). ``close()`` waits for calls in progress on other threads;
any use after close raises :class:`ClosedError`.
"""
from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Iterator, MutableMapping
from ctypes import byref, c_int32, c_size_t, c_uint64, c_void_p
from types import TracebackType
from typing import Any, Optional, Type, TypeVar, Union

from . import _native
from ._native import lib

_get_into = _native.kv_get_into_addr

__all__ = [
    "open", "Store", "Batch", "Error", "IoError", "CorruptionError", "InvalidArgumentError",
    "LockedError", "PoisonedError", "ClosedError", "NotFoundError", "BufferTooSmallError",
    "PanicError", "CompactedError", "OutOfRangeError", "version", "RaftLog", "Entry", "HardState",
    "SnapshotMeta",
]

BytesLike = Union[bytes, bytearray, memoryview]


class Error(Exception):
    """Base of every KeyVal error. ``code`` is the C status code, ``message`` the
    library's detail (file, offset and OS error where known)."""

    code: int = -1

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class IoError(Error):
    """An OS call failed (KV_IO). After a failed write or fsync the store is poisoned."""
    code = 1


class CorruptionError(Error):
    """Stored data failed verification (KV_CORRUPTION); the message names file and offset."""
    code = 2


class InvalidArgumentError(Error, ValueError):
    """Empty or oversized key, oversized value, bad option (KV_INVALID_ARGUMENT)."""
    code = 3


class LockedError(Error):
    """The directory is open in another handle or process (KV_LOCKED)."""
    code = 4


class PoisonedError(Error):
    """An earlier write or fsync failed; close and reopen (KV_POISONED)."""
    code = 5


class ClosedError(Error):
    """The store was closed (KV_CLOSED)."""
    code = 6


class NotFoundError(Error, KeyError):
    """The key is absent (KV_NOT_FOUND); also a KeyError."""
    code = 7


class BufferTooSmallError(Error):
    """KV_BUFFER_TOO_SMALL (not raised by this binding, listed for completeness)."""
    code = 8


class PanicError(Error):
    """A bug in KeyVal: a Rust panic was caught at the C boundary (KV_PANIC)."""
    code = 9


class CompactedError(Error):
    """Raft log index was compacted (KV_COMPACTED)."""
    code = 10


class OutOfRangeError(Error):
    """Raft log index beyond the end (KV_OUT_OF_RANGE)."""
    code = 11


_ERRORS: dict[int, Type[Error]] = {
    c.code: c
    for c in (IoError, CorruptionError, InvalidArgumentError, LockedError, PoisonedError, ClosedError,
              NotFoundError, BufferTooSmallError, PanicError, CompactedError, OutOfRangeError)
}


def _raise(status: int) -> None:
    msg = (lib.kv_last_error_message() or b"").decode("utf-8", "replace")
    if not msg:
        msg = (lib.kv_strerror(status) or b"").decode()
    cls = _ERRORS.get(status, Error)
    raise cls(msg, status)


def _check(status: int) -> None:
    if status != _native.KV_OK:
        _raise(status)


def _b(x: Any, what: str = "key") -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    raise TypeError(f"{what} must be bytes, bytearray or memoryview, not {type(x).__name__} "
                    "(encode str explicitly, e.g. s.encode())")


def version() -> str:
    """The native library's version, e.g. ``"0.1.0"``."""
    v: bytes = lib.kv_version()
    return v.decode()


_DURABILITY = {"buffered": 0, "os": 1, "sync": 2}
_RECOVERY = {"absolute": 0, "tolerate_tail": 1, "tolerate_any": 2}


def open(path: Union[str, "os.PathLike[str]"], *, durability: str = "sync", recovery_mode: str = "tolerate_tail",
         segment_size: Optional[int] = None, max_wal_size: Optional[int] = None,
         keep_snapshots: Optional[int] = None, max_key_size: Optional[int] = None,
         max_value_size: Optional[int] = None, create_if_missing: bool = True) -> "Store":
    """Open (creating if allowed, then recovering) the store in directory ``path``.

    ``durability``: ``"sync"`` (fdatasync before a write returns; survives power
    loss; the default), ``"os"`` (handed to the OS; survives a process crash) or
    ``"buffered"`` (in-process buffer). ``recovery_mode``: ``"tolerate_tail"``
    (default: truncate a torn tail, fail on other damage), ``"absolute"`` or
    ``"tolerate_any"``. Sizes are in bytes; ``None`` keeps the library default.

    Raises LockedError, CorruptionError, InvalidArgumentError, IoError.
    """
    o = _options(durability, recovery_mode, segment_size=segment_size, max_wal_size=max_wal_size,
                 keep_snapshots=keep_snapshots, max_key_size=max_key_size, max_value_size=max_value_size,
                 create_if_missing=create_if_missing)
    p = _path(path)
    h = c_void_p()
    _check(lib.kv_open(p, byref(o), byref(h)))
    return Store(h, os.fsdecode(p))


def _options(durability: str, recovery_mode: str, *, create_if_missing: bool = True,
             **sizes: Optional[int]) -> _native.KvOptions:
    """Build kv_options from keyword arguments (None keeps the default)."""
    if durability not in _DURABILITY:
        raise InvalidArgumentError(f"durability must be one of {sorted(_DURABILITY)}", 3)
    if recovery_mode not in _RECOVERY:
        raise InvalidArgumentError(f"recovery_mode must be one of {sorted(_RECOVERY)}", 3)
    o: _native.KvOptions = lib.kv_options_default()
    o.durability = _DURABILITY[durability]
    o.recovery_mode = _RECOVERY[recovery_mode]
    widths = {f[0]: ctypes.sizeof(f[1]) for f in _native.KvOptions._fields_}
    for name, val in sizes.items():
        if val is not None:
            if isinstance(val, bool) or not isinstance(val, int):
                raise InvalidArgumentError(f"{name} must be an int, not {type(val).__name__}", 3)
            limit = (1 << (8 * widths[name])) - 1
            if not 0 <= val <= limit:
                # ctypes would silently keep only the low bits.
                raise InvalidArgumentError(f"{name} must be between 0 and {limit}, not {val}", 3)
            setattr(o, name, val)
    o.create_if_missing = 1 if create_if_missing else 0
    return o


def _path(path: Union[str, "os.PathLike[str]"]) -> bytes:
    p = os.fsencode(path)
    if b"\0" in p:
        raise InvalidArgumentError("path contains a NUL byte", 3)
    return p


class _Handle:
    """A managed native handle: tracks calls in flight so that close() never
    frees it under a running call, and raises ClosedError after close.

    A call registers itself by appending to ``_calls`` *before* it reads the
    handle; close() clears the handle *before* it waits for ``_calls`` to
    drain. So either close() sees the call and waits for it, or the call sees
    the cleared handle and raises. ``list.append``/``list.pop`` are atomic
    (under the GIL, and per object in free-threaded builds), which makes this
    several times cheaper per call than a lock plus a condition variable."""

    def __init__(self, h: c_void_p) -> None:
        self._h: Optional[int] = h.value
        # The argument passed to every call: a prebuilt c_void_p converts
        # faster than an int.
        self.ptr = c_void_p(h.value)
        self._calls: list[None] = []
        self._closing = threading.Lock()

    def acquire(self) -> c_void_p:
        self._calls.append(None)
        if self._h is None:
            self._calls.pop()
            raise ClosedError("the store is closed", 6)
        return self.ptr

    def release(self) -> None:
        self._calls.pop()

    def take_for_close(self) -> Optional[int]:
        with self._closing:
            h, self._h = self._h, None
            # Calls in flight finish in native code: microseconds, or as long
            # as a sync or checkpoint takes.
            while self._calls:
                time.sleep(0.0002)
            return h

    @property
    def closed(self) -> bool:
        return self._h is None


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


_N = TypeVar("_N", bound="_Native")


class _Native:
    """Lifetime shared by Store and RaftLog: a managed native handle, the
    context-manager protocol, close on garbage collection as a safety net."""

    _handle: _Handle

    def _close_native(self, h: int) -> int:
        raise NotImplementedError

    def __enter__(self: _N) -> _N:
        return self

    def __exit__(self, et: Optional[Type[BaseException]], ev: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def close(self) -> None:
        """Wait for calls in progress on other threads, make everything
        durable (a Store also writes a final checkpoint) and release the
        directory. Safe to call twice. Raises PoisonedError or IoError if the
        final sync or checkpoint failed (the handle is released all the same)."""
        handle = getattr(self, "_handle", None)
        if handle is None:
            return
        h = handle.take_for_close()
        if h is not None:
            _check(self._close_native(h))

    @property
    def closed(self) -> bool:
        """Whether close() has been called."""
        return self._handle.closed

    def _call(self, fn: Any, *args: Any) -> int:
        handle = self._handle
        h = handle.acquire()
        try:
            status: int = fn(h, *args)
            return status
        finally:
            handle.release()


class Store(_Native, MutableMapping[bytes, bytes]):
    """An open KeyVal store; create it with :func:`keyval.open`."""

    def __init__(self, h: c_void_p, path: str) -> None:
        self._handle = _Handle(h)
        self.path = path

    def _close_native(self, h: int) -> int:
        status: int = lib.kv_close(h)
        return status

    # -- mapping ---------------------------------------------------------
    def __setitem__(self, key: BytesLike, value: BytesLike) -> None:
        k, v = _b(key), _b(value, "value")
        _check(self._call(lib.kv_set, k, len(k), v, len(v)))

    def __getitem__(self, key: BytesLike) -> bytes:
        # The hot path: one library call into this thread's buffer.
        k = key if type(key) is bytes else _b(key)
        g = _getbuf
        handle = self._handle
        h = handle.acquire()
        try:
            st = _get_into(h, k, len(k), g.addr, g.cap, g.n_addr)
        finally:
            handle.release()
        if st == _native.KV_OK:
            # Slicing a c_char array gives bytes (typeshed says list[bytes]).
            value: bytes = g.buf[: g.n.value]  # type: ignore[assignment]
            return value
        if st == _native.KV_NOT_FOUND:
            raise NotFoundError(repr(k), 7)
        if st != _native.KV_BUFFER_TOO_SMALL:
            _check(st)
        return self._get_copy(k)

    def _get_copy(self, k: bytes) -> bytes:
        """kv_get: the library mallocs a copy of any size; freed here."""
        out = _native._u8p()
        n = c_size_t()
        st = self._call(lib.kv_get, k, len(k), byref(out), byref(n))
        if st == _native.KV_NOT_FOUND:
            raise NotFoundError(repr(k), 7)
        _check(st)
        try:
            return ctypes.string_at(out, n.value)
        finally:
            lib.kv_free(out)

    def get(self, key: BytesLike, default: Optional[bytes] = None) -> Optional[bytes]:  # type: ignore[override]
        """The value of ``key``, or ``default`` if absent."""
        try:
            return self[key]
        except NotFoundError:
            return default

    def __delitem__(self, key: BytesLike) -> None:
        """Delete ``key``; raises KeyError if it is absent (mapping semantics).
        Use :meth:`discard` to delete without checking."""
        if key not in self:
            raise NotFoundError(repr(_b(key)), 7)
        self.discard(key)

    def discard(self, key: BytesLike) -> None:
        """Delete ``key`` whether or not it exists (one durable write)."""
        k = _b(key)
        _check(self._call(lib.kv_delete, k, len(k)))

    def __contains__(self, key: object) -> bool:
        k = _b(key)
        out = c_int32()
        _check(self._call(lib.kv_contains, k, len(k), byref(out)))
        return bool(out.value)

    def __len__(self) -> int:
        n = c_uint64()
        _check(self._call(lib.kv_len, byref(n)))
        return n.value

    def __iter__(self) -> Iterator[bytes]:
        for k, _ in self.items():
            yield k

    def items(self, prefix: Optional[BytesLike] = None, start: Optional[BytesLike] = None,  # type: ignore[override]
              end: Optional[BytesLike] = None) -> Iterator[tuple[bytes, bytes]]:
        """Pairs in key order: those whose key starts with ``prefix``, or with
        ``start <= key < end`` (either bound may be None). The iteration holds no
        lock and is not a snapshot: concurrent writes may or may not be seen,
        each key comes once. Raises ClosedError if the store closes meanwhile."""
        it = c_void_p()
        if prefix is not None:
            if start is not None or end is not None:
                raise InvalidArgumentError("give either prefix or start/end", 3)
            p = _b(prefix, "prefix")
            _check(self._call(lib.kv_iter_prefix, p, len(p), byref(it)))
        else:
            s = None if start is None else _b(start, "start")
            e = None if end is None else _b(end, "end")
            _check(self._call(lib.kv_iter_range, s, len(s or b""), e, len(e or b""), byref(it)))
        return self._walk(it)

    def _walk(self, it: c_void_p) -> Iterator[tuple[bytes, bytes]]:
        kp, vp = _native._u8p(), _native._u8p()
        kn, vn = c_size_t(), c_size_t()
        try:
            while lib.kv_iter_valid(it):
                _check(lib.kv_iter_key(it, byref(kp), byref(kn)))
                _check(lib.kv_iter_value(it, byref(vp), byref(vn)))
                pair = (ctypes.string_at(kp, kn.value), ctypes.string_at(vp, vn.value))
                yield pair
                _check(lib.kv_iter_next(it))
        finally:
            lib.kv_iter_free(it)

    def keys(self, prefix: Optional[BytesLike] = None) -> Iterator[bytes]:  # type: ignore[override]
        """Keys in order (optionally only those starting with ``prefix``)."""
        for k, _ in self.items(prefix=prefix):
            yield k

    def values(self) -> Iterator[bytes]:  # type: ignore[override]
        """Values in key order."""
        for _, v in self.items():
            yield v

    # -- batches and maintenance ------------------------------------------
    def batch(self) -> "Batch":
        """A write batch, applied atomically when its ``with`` block ends without
        an exception (nothing is applied if the block raises)."""
        return Batch(self)

    def sync(self) -> None:
        """Make every acknowledged write durable (needed under "os"/"buffered")."""
        _check(self._call(lib.kv_sync))

    def checkpoint(self) -> None:
        """Write a snapshot and drop the WAL it covers."""
        _check(self._call(lib.kv_checkpoint))

    def stats(self) -> dict[str, Any]:
        """Counts, sizes (bytes) and the last recovery's facts, as a dict."""
        s = _native.KvStats()
        _check(self._call(lib.kv_stats_get, byref(s)))
        d: dict[str, Any] = {n: getattr(s, n) for n in _native.STATS_FIELDS}
        d["poisoned"] = bool(s.poisoned)
        d["recovery"] = {n[len("recovery_"):]: getattr(s, n) for n in _native.RECOVERY_FIELDS}
        d["recovery"]["truncated"] = bool(s.recovery_truncated)
        return d

    def metrics(self) -> dict[str, Any]:
        """Operation counters and latency summaries since open or the last
        :meth:`reset_metrics`, plus gauges, as a dict. Latencies are in
        microseconds: ``m["get_latency"]["p99"]``; ``m["errors"]`` maps error
        kind names to counts."""
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

    def __init__(self, store: Store) -> None:
        self._store = store
        self._b: Optional[int] = lib.kv_batch_new()
        if not self._b:
            raise MemoryError("kv_batch_new failed")

    def _h(self) -> int:
        if self._b is None:
            raise ClosedError("the batch was already committed or discarded", 6)
        return self._b

    def put(self, key: BytesLike, value: BytesLike) -> None:
        """Add "set key to value"."""
        k, v = _b(key), _b(value, "value")
        _check(lib.kv_batch_put(self._h(), k, len(k), v, len(v)))

    __setitem__ = put

    def delete(self, key: BytesLike) -> None:
        """Add "remove key"."""
        k = _b(key)
        _check(lib.kv_batch_delete(self._h(), k, len(k)))

    __delitem__ = delete

    def __len__(self) -> int:
        return int(lib.kv_batch_count(self._b)) if self._b else 0

    def commit(self) -> None:
        """Apply every operation atomically, then release the batch. If any key
        or value is invalid, nothing is applied (InvalidArgumentError)."""
        b = self._h()
        try:
            _check(self._store._call(lib.kv_batch_commit, b))
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


from .raft import Entry, HardState, RaftLog, SnapshotMeta  # noqa: E402  (uses the helpers above)

"""What every native object shares: argument conversion (bytes, options,
paths) and the managed-handle base class (close once, calls in flight,
context manager, ``__del__`` as a safety net)."""
from __future__ import annotations

import ctypes
import json
import os
import threading
import time
from collections.abc import MutableMapping
from itertools import accumulate
from types import TracebackType
from ctypes import byref, c_void_p
from typing import Any, Iterator, Optional, Protocol, Type, TypeVar, Union

from . import _native
from ._native import lib
from .errors import ClosedError, InvalidArgumentError, NotFoundError, _check

BytesLike = Union[bytes, bytearray, memoryview]


def _b(x: Any, what: str = "key") -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    raise TypeError(f"{what} must be bytes, bytearray or memoryview, not {type(x).__name__} "
                    "(encode str explicitly, e.g. s.encode())")


def _walk(it: c_void_p, reverse: bool = False) -> "Iterator[tuple[bytes, bytes]]":
    """The pairs of a kv_iter in key order (descending if ``reverse``: from
    its last pair backwards); frees it when done (or abandoned)."""
    kp, vp = _native._u8p(), _native._u8p()
    kn, vn = ctypes.c_size_t(), ctypes.c_size_t()
    step = lib.kv_iter_prev if reverse else lib.kv_iter_next
    try:
        if reverse:
            _check(lib.kv_iter_seek_last(it))
        while lib.kv_iter_valid(it):
            _check(lib.kv_iter_key(it, ctypes.byref(kp), ctypes.byref(kn)))
            _check(lib.kv_iter_value(it, ctypes.byref(vp), ctypes.byref(vn)))
            pair = (ctypes.string_at(kp, kn.value), ctypes.string_at(vp, vn.value))
            yield pair
            _check(step(it))
    finally:
        lib.kv_iter_free(it)


def _bounds(prefix: Optional[BytesLike], start: Optional[BytesLike],
            end: Optional[BytesLike]) -> "tuple[Optional[bytes], Optional[bytes]]":
    """(start, end) of a range given as a prefix or as bounds (None:
    unbounded)."""
    is_prefix, s, e = _range_args(prefix, start, end)
    if not is_prefix:
        return s, e
    assert s is not None
    succ = bytearray(s)
    while succ and succ[-1] == 0xFF:
        succ.pop()
    if not succ:
        return s or None, None
    succ[-1] += 1
    return s or None, bytes(succ)


def _get_many_block(base: int, n: int) -> "list[Optional[bytes]]":
    """The n values of a kv_get_many result block at address ``base``
    (n (pointer, length) pairs, then the values back to back in key order;
    an absent key has pointer 0), read with two copies and sliced."""
    head = n * _native.KV_VALUE_SIZE
    pairs = memoryview(ctypes.string_at(base, head)).cast("P")  # pointer-sized, as size_t
    ends = list(accumulate(pairs[1::2].tolist()))
    blob = ctypes.string_at(base + head, ends[-1])
    values: "list[Optional[bytes]]" = list(map(blob.__getitem__, map(slice, [0, *ends[:-1]], ends)))
    ptrs = pairs[0::2].tolist()
    if 0 in ptrs:
        for i, p in enumerate(ptrs):
            if not p:
                values[i] = None
    return values


def _range_args(prefix: Optional[BytesLike], start: Optional[BytesLike],
                end: Optional[BytesLike]) -> "tuple[bool, Optional[bytes], Optional[bytes]]":
    """(is a prefix, first bytes, end bytes) for kv_iter_prefix/kv_iter_range."""
    if prefix is not None:
        if start is not None or end is not None:
            raise InvalidArgumentError("give either prefix or start/end")
        return True, _b(prefix, "prefix"), None
    return False, None if start is None else _b(start, "start"), None if end is None else _b(end, "end")


class _OrderedBytesMap(MutableMapping[bytes, bytes]):
    """The mapping methods :class:`Store` and :class:`Keyspace` share, in
    terms of their own ``items()`` (pairs in key order) and ``discard()``."""

    def items(self, prefix: Optional[BytesLike] = None, start: Optional[BytesLike] = None,  # type: ignore[override]
              end: Optional[BytesLike] = None) -> Iterator[tuple[bytes, bytes]]:
        raise NotImplementedError

    def discard(self, key: BytesLike) -> None:
        """Delete ``key`` whether or not it exists."""
        raise NotImplementedError

    def __delitem__(self, key: BytesLike) -> None:
        """Delete ``key``; raises NotFoundError (a KeyError) if it is absent
        (mapping semantics). Use :meth:`discard` to delete without checking."""
        if key not in self:
            raise NotFoundError(repr(_b(key)))
        self.discard(key)

    def __iter__(self) -> Iterator[bytes]:
        for k, _ in self.items():
            yield k

    def keys(self, prefix: Optional[BytesLike] = None) -> Iterator[bytes]:  # type: ignore[override]
        """Keys in order (optionally only those starting with ``prefix``)."""
        for k, _ in self.items(prefix=prefix):
            yield k

    def values(self) -> Iterator[bytes]:  # type: ignore[override]
        """Values in key order."""
        for _, v in self.items():
            yield v


_DURABILITY = {"buffered": 0, "os": 1, "sync": 2}
_RECOVERY = {"absolute": 0, "tolerate_tail": 1, "tolerate_any": 2}


def _durability(durability: str) -> int:
    """The KV_DURABILITY_* value of ``"buffered"``, ``"os"`` or ``"sync"``;
    InvalidArgumentError for anything else."""
    if durability not in _DURABILITY:
        raise InvalidArgumentError(f"durability must be one of {sorted(_DURABILITY)}")
    return _DURABILITY[durability]



def _options(durability: str, recovery_mode: str, *, create_if_missing: bool = True,
             **sizes: Optional[int]) -> _native.KvOptions:
    """Build kv_options from keyword arguments (None keeps the default)."""
    d = _durability(durability)
    if recovery_mode not in _RECOVERY:
        raise InvalidArgumentError(f"recovery_mode must be one of {sorted(_RECOVERY)}")
    o = _native.KvOptions()
    _check(lib.kv_options_init(byref(o)))
    o.durability = d
    o.recovery_mode = _RECOVERY[recovery_mode]
    widths = {f[0]: ctypes.sizeof(f[1]) for f in _native.KvOptions._fields_}
    for name, val in sizes.items():
        if val is not None:
            if isinstance(val, bool) or not isinstance(val, int):
                raise InvalidArgumentError(f"{name} must be an int, not {type(val).__name__}")
            limit = (1 << (8 * widths[name])) - 1
            if not 0 <= val <= limit:
                # ctypes would silently keep only the low bits.
                raise InvalidArgumentError(f"{name} must be between 0 and {limit}, not {val}")
            setattr(o, name, val)
    o.create_if_missing = 1 if create_if_missing else 0
    return o


def _path(path: Union[str, "os.PathLike[str]"]) -> bytes:
    p = os.fsencode(path)
    if b"\0" in p:
        raise InvalidArgumentError("path contains a NUL byte")
    return p


class _Handle:
    """A managed native handle: tracks calls in flight so that close() never
    frees it under a running call, and raises ClosedError after close.

    A call registers itself by appending to ``_calls`` *before* it reads the
    handle; close() clears the handle *before* it waits for ``_calls`` to
    drain. So either close() sees the call and waits for it, or the call sees
    the cleared handle and raises. ``list.append``/``list.pop`` are atomic
    (under the GIL, and per object in free-threaded builds), which makes this
    several times cheaper per call than a lock plus a condition variable.
    Store.__getitem__ inlines acquire and release (its hot path): change
    the protocol there too."""

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
            raise ClosedError("the store is closed")
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


class _Calls(Protocol):
    """What a keyspace or a collection needs of its store: the managed
    handle and a call that keeps the store open while it runs."""

    _handle: _Handle

    def _call(self, fn: Any, *args: Any) -> int: ...


def _json_out(store: _Calls, fn: Any, *args: Any) -> Any:
    """Call a kv_ function that returns a JSON buffer and decode it."""
    out = _native._u8p()
    n = ctypes.c_size_t()
    _check(store._call(fn, *args, byref(out), byref(n)))
    try:
        raw = bytes(bytearray(out[: n.value])) if n.value else b""
    finally:
        lib.kv_free(out)
    return json.loads(raw) if raw else None

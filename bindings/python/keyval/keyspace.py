"""Keyspaces: :class:`Keyspace`, an ordered mapping of ``bytes`` to
``bytes`` with every key operation. A :class:`~keyval.Store` is the keyspace
of its default keyspace, so each operation is written once, here, on the
library's ``kv_keyspace_*`` functions."""
from __future__ import annotations

import ctypes
import threading
from array import array
from collections.abc import Iterable, Iterator
from ctypes import byref, c_int32, c_size_t, c_uint64, c_void_p
from typing import Dict, Optional

from . import _native
from ._handle import (BytesLike, _b, _Calls, _durability, _get_many_block, _json_out, _OrderedBytesMap,
                      _range_args, _walk)
from ._native import lib
from .errors import ClosedError, NotFoundError, _check

_get_into = _native.kv_keyspace_get_into_addr


class _GetBuffer(threading.local):
    """This thread's buffer for ``kv_keyspace_get_into``: a value that fits
    is copied once by the library into it and once from it into the
    returned bytes, with no malloc/free round trip. Larger values take the
    ``kv_keyspace_get`` path."""

    def __init__(self) -> None:
        self.cap = 4096
        self.buf = ctypes.create_string_buffer(self.cap)
        self.n = c_size_t()
        self.addr = ctypes.addressof(self.buf)
        self.n_addr = ctypes.addressof(self.n)


_getbuf = _GetBuffer()


class Keyspace(_OrderedBytesMap):
    """A keyspace of a Store: an independent ordered key space with bytes
    keys and values, a mutable mapping. Get a named one with
    :meth:`Store.keyspace`; the Store itself is its default keyspace (name
    ``""``). Write several keyspaces atomically with ``Batch.put(key,
    value, keyspace=ks)``. After a named keyspace is dropped its methods
    raise NotFoundError; after the store is closed, ClosedError.
    Thread-safe like its Store."""

    name: str
    _store: _Calls
    _ks: Optional[c_void_p]

    def _bind(self, store: _Calls, name: str, handle: c_void_p) -> None:
        self._store = store
        self.name = name
        self._ks = handle

    def __init__(self, store: _Calls, name: str) -> None:
        n = name.encode()
        h = c_void_p()
        _check(store._call(lib.kv_keyspace_open, n, len(n), 1, byref(h)))
        self._bind(store, name, h)

    def _free_keyspace(self) -> None:
        h = getattr(self, "_ks", None)
        if h is not None and h.value:
            self._ks = None
            lib.kv_keyspace_free(h)

    def __del__(self) -> None:
        self._free_keyspace()

    def __repr__(self) -> str:
        return f"<keyval.Keyspace {self.name!r}>"

    def _handle_for_batch(self) -> c_void_p:
        assert self._ks is not None
        return self._ks

    def _k(self, fn: object, *args: object) -> int:
        """Call ``fn(keyspace handle, *args)`` while the store is held open
        (ClosedError once it is closed)."""
        handle = self._store._handle
        handle.acquire()
        try:
            status: int = fn(self._ks, *args)  # type: ignore[operator]
            return status
        finally:
            handle.release()

    # -- writes ------------------------------------------------------------
    def __setitem__(self, key: BytesLike, value: BytesLike) -> None:
        k, v = _b(key), _b(value, "value")
        _check(self._k(lib.kv_keyspace_set, k, len(k), v, len(v)))

    def set(self, key: BytesLike, value: BytesLike, *, durability: Optional[str] = None) -> None:
        """``ks[key] = value``, acknowledged at ``durability`` (``"buffered"``,
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
        _check(self._k(lib.kv_keyspace_set_with, k, len(k), v, len(v), d))

    def discard(self, key: BytesLike, *, durability: Optional[str] = None) -> None:
        """Delete ``key`` whether or not it exists (an absent key writes
        nothing). ``durability`` as for :meth:`set`."""
        k = _b(key)
        if durability is None:
            _check(self._k(lib.kv_keyspace_delete, k, len(k)))
        else:
            _check(self._k(lib.kv_keyspace_delete_with, k, len(k), _durability(durability)))

    # -- reads -------------------------------------------------------------
    def __getitem__(self, key: BytesLike) -> bytes:
        # The hot path: one library call into this thread's buffer.
        k = key if type(key) is bytes else _b(key)
        g = _getbuf
        # _Handle.acquire and release, inlined: the two method calls cost
        # about 40 ns of this path's 2 us. Register the call, then read
        # the handle, in that order (see _Handle).
        handle = self._store._handle
        calls = handle._calls
        calls.append(None)
        try:
            if handle._h is None:
                raise ClosedError("the store is closed")
            st = _get_into(self._ks, k, len(k), g.addr, g.cap, g.n_addr)
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
        """kv_keyspace_get: the library mallocs a copy of any size; freed here."""
        out = _native._u8p()
        n = c_size_t()
        st = self._k(lib.kv_keyspace_get, k, len(k), byref(out), byref(n))
        if st == _native.KV_NOT_FOUND:
            raise NotFoundError(repr(k))
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

    def get_many(self, keys: Iterable[BytesLike]) -> list[Optional[bytes]]:
        """The values of ``keys`` in one library call (``kv_keyspace_get_many``):
        a list in the same order, with ``None`` for an absent key. All keys
        are read at one point in the write order, so the values are
        consistent with each other. Raises :class:`InvalidArgumentError`
        for any empty or oversized key (nothing is returned)."""
        ks = keys if type(keys) is list else list(keys)
        if not all(type(k) is bytes for k in ks):
            ks = [_b(k) for k in ks]
        n = len(ks)
        out = c_void_p()
        if n == 0:  # still reports a closed store
            _check(self._k(lib.kv_keyspace_get_many, None, None, 0, byref(out)))
            return []
        lens = array(_native.SIZE_T_CODE, map(len, ks)).tobytes()
        _check(self._k(lib.kv_keyspace_get_many, b"".join(ks), lens, n, byref(out)))
        base = out.value
        assert base is not None
        try:
            return _get_many_block(base, n)
        finally:
            lib.kv_free(out)

    def __contains__(self, key: object) -> bool:
        k = _b(key)
        out = c_int32()
        _check(self._k(lib.kv_keyspace_contains, k, len(k), byref(out)))
        return bool(out.value)

    def __len__(self) -> int:
        n = c_uint64()
        _check(self._k(lib.kv_keyspace_len, byref(n)))
        return n.value

    def stats(self) -> Dict[str, int]:
        """``{"keys", "key_bytes", "value_bytes"}``: live keys and the bytes of
        their keys and values. Raises NotFoundError once dropped. (On a
        Store, ``stats()`` is the store's: its ``keys``, ``key_bytes`` and
        ``value_bytes`` are the default keyspace's.)"""
        r: Dict[str, int] = _json_out(self._store, lambda _db, *a: lib.kv_keyspace_stats(self._ks, *a))
        return r

    def items(self, prefix: Optional[BytesLike] = None, start: Optional[BytesLike] = None,  # type: ignore[override]
              end: Optional[BytesLike] = None, *, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Pairs in key order (descending with ``reverse=True``): those whose
        key starts with ``prefix``, or with ``start <= key < end`` (either
        bound may be None). The iteration reads one snapshot taken when it
        starts: it sees exactly the pairs present then, none of the writes
        made while it runs, and holds no lock. Raises ClosedError if the
        store closes meanwhile."""
        it = c_void_p()
        is_prefix, s, e = _range_args(prefix, start, end)
        if is_prefix:
            _check(self._k(lib.kv_keyspace_iter_prefix, s, len(s or b""), byref(it)))
        else:
            _check(self._k(lib.kv_keyspace_iter_range, s, len(s or b""), e, len(e or b""), byref(it)))
        return _walk(it, reverse)

"""Snapshots and transactions: :class:`Snapshot`, a read view of the store at
one moment, and :class:`Transaction`, a serializable read-write
transaction. Get them from :meth:`Store.snapshot` and
:meth:`Store.transaction` (or :meth:`Store.view` and :meth:`Store.update`)."""
from __future__ import annotations

import ctypes
import random
import time
from array import array
from collections.abc import Iterable, Iterator
from ctypes import byref, c_int32, c_uint64, c_void_p
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, Type, TypeVar

from . import _native
from ._handle import BytesLike, _b, _bounds, _durability, _get_many_block, _walk
from ._native import lib
from .errors import ConflictError, InvalidArgumentError, NotFoundError, _check

if TYPE_CHECKING:
    from .keyspace import Keyspace
    from .store import Store

T = TypeVar("T")

#: How many times :meth:`Store.update` runs its function before it lets the
#: last :class:`ConflictError` through.
UPDATE_MAX_ATTEMPTS = 100


def _opt_len(b: Optional[bytes]) -> int:
    return len(b) if b is not None else 0


def _values(base: Optional[int], n: int) -> "list[Optional[bytes]]":
    assert base is not None
    try:
        return _get_many_block(base, n)
    finally:
        lib.kv_free(c_void_p(base))


def _packed(keys: Iterable[BytesLike]) -> "tuple[list[bytes], bytes, bytes]":
    ks = [_b(k) for k in keys]
    return ks, b"".join(ks), array(_native.SIZE_T_CODE, map(len, ks)).tobytes()


class Snapshot:
    """A consistent read view of the store: every read sees exactly the
    writes applied before it was taken, in every keyspace, however long it
    is kept; writers never wait for it. Use it as a context manager (``with
    store.snapshot() as s:``) or call :meth:`close`: while it lives, values
    it can see that are overwritten or deleted stay in memory. Reads address
    the default keyspace, or ``keyspace=ks``. Thread-safe."""

    def __init__(self, handle: c_void_p) -> None:
        self._h: Optional[c_void_p] = handle
        # id(keyspace) -> (the keyspace, its view); holding the keyspace
        # keeps its id from being reused while the view is cached.
        self._views: "dict[int, tuple[Keyspace, c_void_p]]" = {}

    def _for(self, keyspace: "Optional[Keyspace]") -> c_void_p:
        if self._h is None:
            raise InvalidArgumentError("the snapshot is closed")
        if keyspace is None:
            return self._h
        cached = self._views.get(id(keyspace))
        if cached is not None:
            return cached[1]
        h = c_void_p()
        _check(keyspace._k(lambda ks: lib.kv_snapshot_keyspace(self._h, ks, byref(h))))
        self._views[id(keyspace)] = (keyspace, h)
        return h

    @property
    def lsn(self) -> int:
        """The sequence number of the last write this snapshot sees."""
        n = c_uint64()
        _check(lib.kv_snapshot_lsn(self._for(None), byref(n)))
        return n.value

    def get(self, key: BytesLike, default: Optional[bytes] = None, *,
            keyspace: "Optional[Keyspace]" = None) -> Optional[bytes]:
        """The value of ``key`` at the snapshot, or ``default``."""
        try:
            return self._get(key, keyspace)
        except NotFoundError:
            return default

    def __getitem__(self, key: BytesLike) -> bytes:
        return self._get(key, None)

    def _get(self, key: BytesLike, keyspace: "Optional[Keyspace]") -> bytes:
        k = _b(key)
        p, n = _native._u8p(), ctypes.c_size_t()
        _check(lib.kv_snapshot_get(self._for(keyspace), k, len(k), byref(p), byref(n)))
        try:
            return ctypes.string_at(p, n.value)
        finally:
            lib.kv_free(p)

    def get_many(self, keys: Iterable[BytesLike], *,
                 keyspace: "Optional[Keyspace]" = None) -> "list[Optional[bytes]]":
        """The values of ``keys`` at the snapshot (``None`` when absent)."""
        ks, packed, lens = _packed(keys)
        if not ks:
            return []
        out = c_void_p()
        _check(lib.kv_snapshot_get_many(self._for(keyspace), packed, lens, len(ks), byref(out)))
        return _values(out.value, len(ks))

    def __contains__(self, key: object) -> bool:
        k = _b(key)
        out = c_int32()
        _check(lib.kv_snapshot_contains(self._for(None), k, len(k), byref(out)))
        return bool(out.value)

    def __len__(self) -> int:
        return self.len()

    def len(self, *, keyspace: "Optional[Keyspace]" = None) -> int:
        """Number of keys at the snapshot (O(1))."""
        n = c_uint64()
        _check(lib.kv_snapshot_len(self._for(keyspace), byref(n)))
        return n.value

    def items(self, prefix: Optional[BytesLike] = None, start: Optional[BytesLike] = None,
              end: Optional[BytesLike] = None, *, reverse: bool = False,
              keyspace: "Optional[Keyspace]" = None) -> Iterator[tuple[bytes, bytes]]:
        """Pairs at the snapshot in key order (descending with ``reverse``),
        selected as :meth:`Keyspace.items`."""
        s, e = _bounds(prefix, start, end)
        it = c_void_p()
        _check(lib.kv_snapshot_iter_range(self._for(keyspace), s, _opt_len(s), e, _opt_len(e), byref(it)))
        return _walk(it, reverse)

    def __iter__(self) -> Iterator[bytes]:
        return (k for k, _ in self.items())

    def close(self) -> None:
        """Release the snapshot; safe to call twice."""
        for _, h in self._views.values():
            lib.kv_snapshot_free(h)
        self._views.clear()
        if self._h is not None:
            lib.kv_snapshot_free(self._h)
            self._h = None

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> "Snapshot":
        return self

    def __exit__(self, t: Optional[Type[BaseException]], v: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()


class Transaction:
    """A serializable read-write transaction (optimistic): it reads one
    snapshot plus its own writes and buffers its writes; :meth:`commit`
    applies them all or none (one WAL record, across keyspaces) if and only
    if no other commit since its snapshot wrote a key it read or a key in a
    range it read; otherwise it raises :class:`ConflictError` and writes
    nothing. As a context manager it commits when the block ends and rolls
    back if the block raises. :meth:`Store.update` retries on conflict.
    Not for concurrent use from several threads."""

    def __init__(self, store: "Store", handle: c_void_p) -> None:
        self._store = store
        self._h: Optional[c_void_p] = handle

    def _t(self) -> c_void_p:
        if self._h is None:
            raise InvalidArgumentError("the transaction is finished")
        return self._h

    @staticmethod
    def _ks(keyspace: "Optional[Keyspace]") -> Optional[c_void_p]:
        return None if keyspace is None else keyspace._handle_for_batch()

    def get(self, key: BytesLike, default: Optional[bytes] = None, *,
            keyspace: "Optional[Keyspace]" = None) -> Optional[bytes]:
        """The value of ``key`` (own write first, then the snapshot's), or
        ``default``; recorded as read."""
        try:
            return self._get(key, keyspace)
        except NotFoundError:
            return default

    def __getitem__(self, key: BytesLike) -> bytes:
        return self._get(key, None)

    def _get(self, key: BytesLike, keyspace: "Optional[Keyspace]") -> bytes:
        k = _b(key)
        p, n = _native._u8p(), ctypes.c_size_t()
        _check(lib.kv_txn_get(self._t(), self._ks(keyspace), k, len(k), byref(p), byref(n)))
        try:
            return ctypes.string_at(p, n.value)
        finally:
            lib.kv_free(p)

    def get_many(self, keys: Iterable[BytesLike], *,
                 keyspace: "Optional[Keyspace]" = None) -> "list[Optional[bytes]]":
        """The values of ``keys`` in one call (``None`` when absent)."""
        ks, packed, lens = _packed(keys)
        if not ks:
            return []
        out = c_void_p()
        _check(lib.kv_txn_get_many(self._t(), self._ks(keyspace), packed, lens, len(ks), byref(out)))
        return _values(out.value, len(ks))

    def __contains__(self, key: object) -> bool:
        return self.get(_b(key)) is not None

    def set(self, key: BytesLike, value: BytesLike, *, keyspace: "Optional[Keyspace]" = None) -> None:
        """Set ``key`` to ``value`` when the transaction commits."""
        k, v = _b(key), _b(value, "value")
        _check(lib.kv_txn_put(self._t(), self._ks(keyspace), k, len(k), v, len(v)))

    def __setitem__(self, key: BytesLike, value: BytesLike) -> None:
        self.set(key, value)

    def delete(self, key: BytesLike, *, keyspace: "Optional[Keyspace]" = None) -> None:
        """Delete ``key`` when the transaction commits."""
        k = _b(key)
        _check(lib.kv_txn_delete(self._t(), self._ks(keyspace), k, len(k)))

    def __delitem__(self, key: BytesLike) -> None:
        self.delete(key)

    def items(self, prefix: Optional[BytesLike] = None, start: Optional[BytesLike] = None,
              end: Optional[BytesLike] = None, *, reverse: bool = False, limit: int = 0,
              keyspace: "Optional[Keyspace]" = None) -> "list[tuple[bytes, bytes]]":
        """Pairs selected as :meth:`Keyspace.items`, own writes included, in
        key order (descending with ``reverse``), at most ``limit`` (0: all).
        The range is recorded as read: a commit conflicts if another commit
        since the snapshot added, changed or removed a key in it."""
        s, e = _bounds(prefix, start, end)
        it = c_void_p()
        _check(lib.kv_txn_iter_range(self._t(), self._ks(keyspace), s, _opt_len(s), e, _opt_len(e),
                                     1 if reverse else 0, limit, byref(it)))
        return list(_walk(it))

    def commit(self) -> None:
        """Apply every write atomically. Raises ConflictError (nothing was
        written: run it again), NotFoundError (a keyspace it writes was
        dropped), ClosedError, PoisonedError, IoError. The transaction is
        finished either way."""
        h = self._t()
        self._h = None
        _check(lib.kv_txn_commit(h))

    def rollback(self) -> None:
        """Discard every write; safe after commit and twice."""
        if self._h is not None:
            lib.kv_txn_abort(self._h)
            self._h = None

    def __del__(self) -> None:
        self.rollback()

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, t: Optional[Type[BaseException]], v: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if t is None:
            self.commit()
        else:
            self.rollback()


def begin(store: "Store", durability: Optional[str]) -> Transaction:
    """A new transaction on ``store`` (see :meth:`Store.transaction`)."""
    h = c_void_p()
    if durability is None:
        _check(store._call(lib.kv_txn_begin, byref(h)))
    else:
        d = _durability(durability)
        _check(store._call(lib.kv_txn_begin_with, d, byref(h)))
    return Transaction(store, h)


def snapshot(store: "Store") -> Snapshot:
    """A new snapshot of ``store`` (see :meth:`Store.snapshot`)."""
    h = c_void_p()
    _check(store._call(lib.kv_snapshot_open, byref(h)))
    return Snapshot(h)


def update(store: "Store", fn: Callable[[Transaction], T]) -> T:
    """See :meth:`Store.update`."""
    for attempt in range(1, UPDATE_MAX_ATTEMPTS + 1):
        tx = begin(store, None)
        try:
            result = fn(tx)
        except BaseException:
            tx.rollback()
            raise
        try:
            tx.commit()
            return result
        except ConflictError:
            if attempt == UPDATE_MAX_ATTEMPTS:
                raise
            time.sleep(random.random() * min(2 ** attempt, 1024) / 1e6)
    raise AssertionError("unreachable")



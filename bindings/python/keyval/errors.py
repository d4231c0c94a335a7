"""Exceptions: one class per C status code (each carries its own ``code``),
and the check that turns a status into the matching exception with the
library's message for the calling thread."""
from __future__ import annotations

from typing import Optional, Type

from . import _native
from ._native import lib

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
    """The key, keyspace, collection or document is absent (KV_NOT_FOUND); also a KeyError."""
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


class DuplicateKeyError(Error):
    """A document ``_id`` that exists, or a value already in a unique index
    (KV_DUPLICATE_KEY). Nothing was written."""
    code = 12


class ConflictError(Error):
    """A transaction's commit found that a key or range it read was written by
    another commit since its snapshot (KV_CONFLICT). Nothing was written: run
    the transaction again (``Store.update`` does)."""
    code = 13


class SnapshotExpiredError(Error):
    """A read of a snapshot, transaction or iterator older than the store's
    ``max_snapshot_age`` (KV_SNAPSHOT_EXPIRED). Take a new one."""
    code = 14


_ERRORS: dict[int, Type[Error]] = {
    c.code: c
    for c in (IoError, CorruptionError, InvalidArgumentError, LockedError, PoisonedError, ClosedError,
              NotFoundError, BufferTooSmallError, PanicError, CompactedError, OutOfRangeError,
              DuplicateKeyError, ConflictError, SnapshotExpiredError)
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

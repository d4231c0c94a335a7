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

#: The package's version; the bundled library reports the same
#: (:func:`version`), and the tests check that they agree.
__version__ = "0.1.0"

from ._handle import BytesLike
from .documents import Collection, IndexInfo, Page, Plan
from .keyspace import Keyspace
from .errors import (BufferTooSmallError, ClosedError, CompactedError, ConflictError, CorruptionError,
                     DuplicateKeyError, Error, InvalidArgumentError, IoError, LockedError,
                     NotFoundError, OutOfRangeError, PanicError, PoisonedError, SnapshotExpiredError)
from .txn import UPDATE_MAX_ATTEMPTS, Snapshot, Transaction
from .raft import Entry, HardState, RaftLog, SnapshotMeta, open_raft_log
from .store import Batch, Store, open, version

__all__ = [
    "__version__", "open", "Store", "Batch", "Snapshot", "Transaction", "UPDATE_MAX_ATTEMPTS",
    "ConflictError", "SnapshotExpiredError", "Error", "IoError", "CorruptionError", "InvalidArgumentError",
    "LockedError", "PoisonedError", "ClosedError", "NotFoundError", "BufferTooSmallError",
    "PanicError", "CompactedError", "OutOfRangeError", "version", "RaftLog", "Entry", "HardState",
    "SnapshotMeta", "BytesLike", "open_raft_log", "DuplicateKeyError", "Collection", "Keyspace",
    "Page", "Plan", "IndexInfo",
]

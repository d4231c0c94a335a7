"""ctypes declarations of the C ABI (include/keyval.h). Every function used
gets its argtypes and restype. Memory returned by the library (kv_get) is
read with string_at and released with kv_free, never through c_char_p."""
from __future__ import annotations

import ctypes
import os
import sys
from array import array
from ctypes import POINTER, Structure, c_char_p, c_int32, c_size_t, c_uint32, c_uint64, c_uint8, c_void_p
from pathlib import Path
from typing import Any

KV_OK = 0
KV_NOT_FOUND = 7
KV_BUFFER_TOO_SMALL = 8


class _Growable(Structure):
    """A struct whose first field is ``size_t struct_size`` (keyval.h,
    convention 10): every instance starts with it set to this layout's size,
    so the library reads and writes only the fields this module knows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.struct_size = ctypes.sizeof(self)


class KvOptions(_Growable):
    _fields_ = [
        ("struct_size", c_size_t),
        ("durability", c_uint32),
        ("recovery_mode", c_uint32),
        ("segment_size", c_uint64),
        ("max_wal_size", c_uint64),
        ("keep_snapshots", c_uint32),
        ("max_key_size", c_uint32),
        ("max_value_size", c_uint32),
        ("create_if_missing", c_uint32),
        ("checkpoint_interval_ms", c_uint64),
        ("read_only", c_uint32),
        ("max_snapshot_age_ms", c_uint64),
        ("value_separation_threshold", c_uint32),
        ("memory_budget", c_uint64),
    ]


STATS_FIELDS = [
    "keys", "key_bytes", "value_bytes", "memory_bytes", "wal_segments", "wal_bytes",
    "wal_bytes_since_checkpoint", "snapshots", "snapshot_bytes", "disk_bytes", "last_lsn",
    "synced_lsn", "snapshot_lsn", "writes", "commit_groups", "fsyncs", "checkpoints",
]
STATS_TAIL_FIELDS = ["keyspaces", "collections"]
# Added after the tail fields (the struct only grows at its end).
RECOVERY_TAIL_FIELDS = [
    "recovery_bytes_skipped", "recovery_segments_missing", "recovery_segments_scanned",
    "recovery_segments_skipped", "recovery_snapshot_entries", "recovery_last_lsn",
]
RECOVERY_FIELDS = [
    "recovery_snapshot_lsn", "recovery_snapshots_rejected", "recovery_records_replayed",
    "recovery_bytes_replayed", "recovery_truncated_bytes", "recovery_truncated_offset",
    "recovery_records_skipped", "recovery_micros",
]


class KvStats(_Growable):
    _fields_ = (
        [("struct_size", c_size_t)]
        + [(n, c_uint64) for n in STATS_FIELDS]
        + [("poisoned", c_uint32), ("recovery_truncated", c_uint32)]
        + [(n, c_uint64) for n in RECOVERY_FIELDS]
        + [(n, c_uint64) for n in STATS_TAIL_FIELDS]
        + [(n, c_uint64) for n in RECOVERY_TAIL_FIELDS]
    )


LIB_NAME = "libkeyval.dylib" if sys.platform == "darwin" else "libkeyval.so"


def _find_library() -> str:
    """KEYVAL_LIBRARY if set (for a system-wide install of the C library),
    else the library bundled in this package by the build."""
    env = os.environ.get("KEYVAL_LIBRARY")
    if env:
        return env
    bundled = Path(__file__).resolve().parent / LIB_NAME
    if bundled.is_file():
        return str(bundled)
    raise ImportError(
        f"keyval: the native library is missing ({bundled}); install the package with pip "
        f"(which builds it, and needs Rust) or point KEYVAL_LIBRARY at {LIB_NAME}"
    )


lib = ctypes.CDLL(_find_library())

_u8p = POINTER(c_uint8)
_status = c_int32


def _decl(name: str, restype: object, *argtypes: object) -> None:
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)


_decl("kv_strerror", c_char_p, _status)
_decl("kv_last_error_message", c_char_p)
_decl("kv_free", None, c_void_p)
_decl("kv_options_init", _status, POINTER(KvOptions))
_decl("kv_version", c_char_p)
_decl("kv_version_number", c_uint32)
_decl("kv_open", _status, c_char_p, POINTER(KvOptions), POINTER(c_void_p))
_decl("kv_close", _status, c_void_p)
_decl("kv_set", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t)
_decl("kv_delete", _status, c_void_p, c_char_p, c_size_t)
_decl("kv_set_with", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, c_uint32)
_decl("kv_delete_with", _status, c_void_p, c_char_p, c_size_t, c_uint32)
_decl("kv_get", _status, c_void_p, c_char_p, c_size_t, POINTER(_u8p), POINTER(c_size_t))
#: kv_value: the (pointer, length) pair of one kv_get_many result.
KV_VALUE_SIZE = 2 * ctypes.sizeof(c_size_t)
#: The array module's type code of size_t, for packing key lengths.
SIZE_T_CODE = next(c for c in "LQI" if array(c).itemsize == ctypes.sizeof(c_size_t))
# key_lens is passed as the bytes of an array of size_t.
_decl("kv_get_many", _status, c_void_p, c_char_p, c_char_p, c_size_t, POINTER(c_void_p))
_decl("kv_get_into", _status, c_void_p, c_char_p, c_size_t, c_void_p, c_size_t, POINTER(c_size_t))
# The same function for Store.__getitem__'s hot path, with the buffer and the
# length slot passed as plain addresses: converting ints is cheaper than
# converting a ctypes array and a byref() (measured: 1.69 vs 1.88 us a call).
kv_get_into_addr = lib["kv_get_into"]  # a second function object, own argtypes
kv_get_into_addr.restype = _status
kv_get_into_addr.argtypes = [c_void_p, c_char_p, c_size_t, c_void_p, c_size_t, c_void_p]
_decl("kv_contains", _status, c_void_p, c_char_p, c_size_t, POINTER(c_int32))
_decl("kv_len", _status, c_void_p, POINTER(c_uint64))
_decl("kv_sync", _status, c_void_p)
_decl("kv_checkpoint", _status, c_void_p)
_decl("kv_reclaim", _status, c_void_p, POINTER(c_uint64), POINTER(c_uint64))
_decl("kv_backup", _status, c_void_p, c_char_p, POINTER(c_uint64))
_decl("kv_stats_get", _status, c_void_p, POINTER(KvStats))
_decl("kv_batch_new", c_void_p)
_decl("kv_batch_free", None, c_void_p)
_decl("kv_batch_put", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t)
_decl("kv_batch_delete", _status, c_void_p, c_char_p, c_size_t)
_decl("kv_batch_clear", _status, c_void_p)
_decl("kv_batch_count", c_size_t, c_void_p)
_decl("kv_batch_commit", _status, c_void_p, c_void_p)
_decl("kv_batch_commit_with", _status, c_void_p, c_void_p, c_uint32)
_decl("kv_iter_range", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_void_p))
_decl("kv_iter_prefix", _status, c_void_p, c_char_p, c_size_t, POINTER(c_void_p))
_decl("kv_iter_valid", c_int32, c_void_p)
_decl("kv_iter_next", _status, c_void_p)
_decl("kv_iter_key", _status, c_void_p, POINTER(_u8p), POINTER(c_size_t))
_decl("kv_iter_value", _status, c_void_p, POINTER(_u8p), POINTER(c_size_t))
_decl("kv_iter_free", None, c_void_p)

# Keyspaces and documents (JSON in and out; see docs/documents.md).
_decl("kv_keyspace_open", _status, c_void_p, c_char_p, c_size_t, c_int32, POINTER(c_void_p))
_decl("kv_keyspace_free", None, c_void_p)
_decl("kv_keyspace_drop", _status, c_void_p, c_char_p, c_size_t, POINTER(c_int32))
_decl("kv_keyspace_list", _status, c_void_p, POINTER(_u8p), POINTER(c_size_t))
_decl("kv_keyspace_set", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t)
_decl("kv_keyspace_delete", _status, c_void_p, c_char_p, c_size_t)
_decl("kv_keyspace_get", _status, c_void_p, c_char_p, c_size_t, POINTER(_u8p), POINTER(c_size_t))
_decl("kv_keyspace_len", _status, c_void_p, POINTER(c_uint64))
_decl("kv_keyspace_stats", _status, c_void_p, POINTER(_u8p), POINTER(c_size_t))
_decl("kv_keyspace_iter_range", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_void_p))
_decl("kv_keyspace_iter_prefix", _status, c_void_p, c_char_p, c_size_t, POINTER(c_void_p))
_decl("kv_keyspace_default", _status, c_void_p, POINTER(c_void_p))
_decl("kv_keyspace_set_with", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, c_uint32)
_decl("kv_keyspace_delete_with", _status, c_void_p, c_char_p, c_size_t, c_uint32)
_decl("kv_keyspace_get_many", _status, c_void_p, c_char_p, c_char_p, c_size_t, POINTER(c_void_p))
_decl("kv_keyspace_contains", _status, c_void_p, c_char_p, c_size_t, POINTER(c_int32))
# Keyspace.__getitem__'s hot path, with plain addresses (see kv_get_into_addr).
kv_keyspace_get_into_addr = lib["kv_keyspace_get_into"]
kv_keyspace_get_into_addr.restype = _status
kv_keyspace_get_into_addr.argtypes = [c_void_p, c_char_p, c_size_t, c_void_p, c_size_t, c_void_p]
_decl("kv_batch_put_in", _status, c_void_p, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t)
_decl("kv_batch_delete_in", _status, c_void_p, c_void_p, c_char_p, c_size_t)
_JSON_OUT = (POINTER(_u8p), POINTER(c_size_t))
_decl("kv_coll_create", _status, c_void_p, c_char_p, c_size_t)
_decl("kv_coll_drop", _status, c_void_p, c_char_p, c_size_t, POINTER(c_int32))
_decl("kv_coll_list", _status, c_void_p, *_JSON_OUT)
_decl("kv_coll_stats", _status, c_void_p, c_char_p, c_size_t, *_JSON_OUT)
_decl("kv_coll_create_index", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, c_int32)
_decl("kv_coll_drop_index", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_int32))
_decl("kv_coll_list_indexes", _status, c_void_p, c_char_p, c_size_t, *_JSON_OUT)
_decl("kv_doc_insert", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, *_JSON_OUT)
_decl("kv_doc_get", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, *_JSON_OUT)
_decl("kv_doc_delete", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_int32))
_decl("kv_doc_update", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, c_char_p, c_size_t,
      c_uint32, *_JSON_OUT)
_decl("kv_doc_update_many", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t)
_decl("kv_doc_find", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, c_char_p, c_size_t,
      *_JSON_OUT)
_decl("kv_doc_explain", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, c_char_p, c_size_t,
      *_JSON_OUT)
_decl("kv_doc_count", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_uint64))


class KvRaftEntry(Structure):
    _fields_ = [("index", c_uint64), ("term", c_uint64), ("data", _u8p), ("data_len", c_size_t)]


_u64p = POINTER(c_uint64)
_decl("kv_raft_open", _status, c_char_p, POINTER(KvOptions), POINTER(c_void_p))
_decl("kv_raft_close", _status, c_void_p)
_decl("kv_raft_append", _status, c_void_p, POINTER(KvRaftEntry), c_size_t)
_decl("kv_raft_entry_get", _status, c_void_p, c_uint64, _u64p, POINTER(_u8p), POINTER(c_size_t))
_decl("kv_raft_entries", _status, c_void_p, c_uint64, c_uint64, c_uint64, POINTER(POINTER(KvRaftEntry)),
      POINTER(c_size_t))
_decl("kv_raft_term", _status, c_void_p, c_uint64, _u64p)
_decl("kv_raft_bounds", _status, c_void_p, _u64p, _u64p)
_decl("kv_raft_last_purged", _status, c_void_p, _u64p, _u64p)
_decl("kv_raft_truncate_suffix", _status, c_void_p, c_uint64)
_decl("kv_raft_truncate_prefix", _status, c_void_p, c_uint64)
_decl("kv_raft_backup", _status, c_void_p, c_char_p, POINTER(c_uint64))
_decl("kv_raft_metrics_json", _status, c_void_p, POINTER(_u8p), POINTER(c_size_t))
_decl("kv_raft_metrics_prometheus", _status, c_void_p, c_char_p, POINTER(_u8p), POINTER(c_size_t))
_decl("kv_raft_save_hard_state", _status, c_void_p, c_uint64, c_char_p, c_size_t, c_uint64)
_decl("kv_raft_hard_state", _status, c_void_p, _u64p, POINTER(_u8p), POINTER(c_size_t), _u64p)
_decl("kv_raft_save_snapshot", _status, c_void_p, c_uint64, c_uint64, c_char_p, c_size_t, c_char_p, c_size_t)
_decl("kv_raft_snapshot", _status, c_void_p, _u64p, _u64p, POINTER(_u8p), POINTER(c_size_t), POINTER(_u8p),
      POINTER(c_size_t))


class KvSummary(Structure):
    _fields_ = [("count", c_uint64), ("p50", ctypes.c_double), ("p95", ctypes.c_double),
                ("p99", ctypes.c_double), ("max", ctypes.c_double), ("mean", ctypes.c_double)]


METRIC_COUNTERS = ["puts", "deletes", "writes", "gets", "get_hits", "scanned_pairs", "bytes_written",
                   "bytes_read", "fsyncs", "commit_groups", "checkpoints"]
METRIC_SUMMARIES = ["group_size", "write_latency", "get_latency", "scan_latency", "sync_latency",
                    "checkpoint_latency"]
METRIC_GAUGES = ["keys", "memory_bytes", "wal_disk_bytes", "snapshot_disk_bytes", "recovery_records_replayed",
                 "recovery_truncated_bytes"]
# Added after the gauges (the struct only grows at its end): the error
# counts of the codes past the fixed `errors` array, then snapshot gauges.
METRIC_TAIL_FIELDS = ["errors_conflict", "errors_snapshot_expired", "open_snapshots", "open_transactions",
                      "oldest_snapshot_age_micros", "snapshot_pinned_bytes",
                      # Values kept in the WAL segments, the value cache, reclaim.
                      "separated_values", "separated_bytes", "value_cache_bytes", "value_cache_hits",
                      "value_cache_misses", "value_reads", "reclaimed_bytes"]


class KvMetrics(_Growable):
    _fields_ = (
        [("struct_size", c_size_t)]
        + [("seconds", ctypes.c_double)]
        + [(n, c_uint64) for n in METRIC_COUNTERS]
        + [(n, KvSummary) for n in METRIC_SUMMARIES]
        + [("errors", c_uint64 * 13)]
        + [(n, c_uint64) for n in METRIC_GAUGES]
        + [(n, c_uint64) for n in METRIC_TAIL_FIELDS]
    )


_decl("kv_metrics_get", _status, c_void_p, POINTER(KvMetrics))
# Iterators in both directions, snapshots and transactions.
_decl("kv_iter_prev", _status, c_void_p)
_decl("kv_iter_seek", _status, c_void_p, c_char_p, c_size_t)
_decl("kv_iter_seek_for_prev", _status, c_void_p, c_char_p, c_size_t)
_decl("kv_iter_seek_first", _status, c_void_p)
_decl("kv_iter_seek_last", _status, c_void_p)
_decl("kv_snapshot_open", _status, c_void_p, POINTER(c_void_p))
_decl("kv_snapshot_keyspace", _status, c_void_p, c_void_p, POINTER(c_void_p))
_decl("kv_snapshot_lsn", _status, c_void_p, POINTER(c_uint64))
_decl("kv_snapshot_get", _status, c_void_p, c_char_p, c_size_t, POINTER(_u8p), POINTER(c_size_t))
_decl("kv_snapshot_get_many", _status, c_void_p, c_char_p, c_char_p, c_size_t, POINTER(c_void_p))
_decl("kv_snapshot_contains", _status, c_void_p, c_char_p, c_size_t, POINTER(c_int32))
_decl("kv_snapshot_len", _status, c_void_p, POINTER(c_uint64))
_decl("kv_snapshot_iter_range", _status, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_void_p))
_decl("kv_snapshot_free", None, c_void_p)
_decl("kv_txn_begin", _status, c_void_p, POINTER(c_void_p))
_decl("kv_txn_begin_with", _status, c_void_p, c_uint32, POINTER(c_void_p))
_decl("kv_txn_get", _status, c_void_p, c_void_p, c_char_p, c_size_t, POINTER(_u8p), POINTER(c_size_t))
_decl("kv_txn_get_many", _status, c_void_p, c_void_p, c_char_p, c_char_p, c_size_t, POINTER(c_void_p))
_decl("kv_txn_put", _status, c_void_p, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t)
_decl("kv_txn_delete", _status, c_void_p, c_void_p, c_char_p, c_size_t)
_decl("kv_txn_iter_range", _status, c_void_p, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t,
      c_int32, c_size_t, POINTER(c_void_p))
_decl("kv_txn_commit", _status, c_void_p)
_decl("kv_txn_abort", None, c_void_p)
_decl("kv_metrics_reset", _status, c_void_p)
_decl("kv_metrics_prometheus", _status, c_void_p, POINTER(_u8p), POINTER(c_size_t))

//! `kv_db`: open, close, reads, writes, maintenance.

use super::{close_handle, invalid, kv_status, open_handle, ops, with_handle, Fail};
use crate::{Db, Durability, Options, RecoveryMode, WriteOptions};
use std::ffi::c_char;
use std::sync::Arc;

/// `kv_options.durability`: acknowledged from an in-process buffer; lost
/// on process crash.
pub const KV_DURABILITY_BUFFERED: u32 = 0;
/// `kv_options.durability`: written to the OS before acknowledging;
/// survives a process crash.
pub const KV_DURABILITY_OS: u32 = 1;
/// `kv_options.durability`: fdatasync before acknowledging; survives power
/// loss. The default.
pub const KV_DURABILITY_SYNC: u32 = 2;
/// `kv_options.recovery_mode`: any damage, even a torn tail, fails open.
pub const KV_RECOVERY_ABSOLUTE_CONSISTENCY: u32 = 0;
/// `kv_options.recovery_mode`: truncate a torn tail (reported in stats);
/// any other damage fails open with `KV_CORRUPTION`. The default.
pub const KV_RECOVERY_TOLERATE_TAIL_CORRUPTION: u32 = 1;
/// `kv_options.recovery_mode`: salvage every valid record, report skips.
pub const KV_RECOVERY_TOLERATE_ANY_CORRUPTION: u32 = 2;

/// Options for `kv_open` and `kv_raft_open`; every field of the Rust
/// `Options` is here. Sizes are in bytes. Set `struct_size` and fill the
/// defaults with `kv_options_init`, then change fields:
///
/// ```c
/// kv_options o = { .struct_size = sizeof o };
/// kv_options_init(&o);
/// o.durability = KV_DURABILITY_OS;
/// ```
///
/// Growth rule (convention 10): later versions add fields only at the end.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kv_options {
    /// `sizeof(kv_options)` as compiled by the caller, set before the
    /// struct is passed to the library.
    pub struct_size: usize,
    /// `KV_DURABILITY_*`. Default `KV_DURABILITY_SYNC`.
    pub durability: u32,
    /// `KV_RECOVERY_*`. Default `KV_RECOVERY_TOLERATE_TAIL_CORRUPTION`.
    pub recovery_mode: u32,
    /// Largest WAL segment size in bytes (preallocated; segments start at
    /// 1 MiB and double up to it). Default 64 MiB, min 64 KiB.
    pub segment_size: u64,
    /// WAL bytes since the last snapshot that trigger an automatic
    /// checkpoint. Default 256 MiB; 0 disables.
    pub max_wal_size: u64,
    /// Snapshots kept (at least 1). Default 2.
    pub keep_snapshots: u32,
    /// Largest key in bytes. Default 65536; at most 16 MiB.
    pub max_key_size: u32,
    /// Largest value in bytes. Default 64 MiB; at most 1 GiB.
    pub max_value_size: u32,
    /// Non-zero: create the directory if missing. Default 1.
    pub create_if_missing: u32,
    /// Milliseconds after the last checkpoint at which a background
    /// checkpoint runs if anything was written since (bounds recovery by
    /// time as `max_wal_size` bounds it by size). Default 0: off. If set,
    /// at least 10.
    pub checkpoint_interval_ms: u64,
    /// Non-zero: open read-only, without the directory lock, beside a
    /// writer; nothing on disk is changed, writes fail with
    /// `KV_INVALID_ARGUMENT`, and an open that keeps racing a writer's
    /// rotation fails with `KV_IO` (retry it). Default 0.
    pub read_only: u32,
    /// Milliseconds after which reads of a snapshot, transaction or
    /// iterator fail with `KV_SNAPSHOT_EXPIRED` (a forgotten snapshot pins
    /// old versions in memory). Default 0: no limit. Added in 0.2; a
    /// caller compiled against an older header gets 0.
    pub max_snapshot_age_ms: u64,
    /// Values of at least this many bytes stay in the WAL segments where
    /// they were written; the index keeps the key and a 24-byte pointer,
    /// and a read of such a value is one positioned read of its segment
    /// (or a hit in the value cache). Default 1024; at least 64;
    /// `UINT32_MAX` keeps every value in memory. 0 (a caller compiled
    /// against a header before 0.3) means the default. Added in 0.3.
    pub value_separation_threshold: u32,
    /// Bytes of separated values the value cache keeps in memory (each
    /// counted with 64 bytes of bookkeeping); the index of keys is not
    /// part of it. Default 256 MiB. 0 (a caller compiled against an
    /// older header) means the default; 1 effectively disables the cache.
    /// Added in 0.3.
    pub memory_budget: u64,
}

/// Fill `*opts` with the default options (see each field of `kv_options`).
/// `opts->struct_size` must be set to `sizeof(kv_options)` first; fields
/// past what this library knows are set to zero, fields past
/// `struct_size` are not touched.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL `opts`, or `struct_size` smaller
/// than the first released `kv_options`).
#[no_mangle]
pub unsafe extern "C" fn kv_options_init(opts: *mut kv_options) -> kv_status {
    // Safety: `opts` is NULL or points to `struct_size` writable bytes
    // whose first field is `struct_size` (the header's contract).
    super::guard(|| super::finish(unsafe { super::write_sized(opts, default_options()) }))
}

/// The library's defaults as a `kv_options` of this version's size.
pub(crate) fn default_options() -> kv_options {
    let o = Options::default();
    kv_options {
        struct_size: std::mem::size_of::<kv_options>(),
        durability: o.durability as u32,
        recovery_mode: o.recovery_mode as u32,
        segment_size: o.segment_size,
        max_wal_size: o.max_wal_size,
        keep_snapshots: o.keep_snapshots,
        max_key_size: o.max_key_size,
        max_value_size: o.max_value_size,
        create_if_missing: o.create_if_missing as u32,
        checkpoint_interval_ms: o.checkpoint_interval.map_or(0, |d| d.as_millis() as u64),
        read_only: o.read_only as u32,
        max_snapshot_age_ms: o.max_snapshot_age.map_or(0, |d| d.as_millis() as u64),
        value_separation_threshold: o.value_separation_threshold.unwrap_or(u32::MAX),
        memory_budget: o.memory_budget,
    }
}

/// `KV_DURABILITY_*` to the level. Errors: `KV_INVALID_ARGUMENT` for any
/// other value.
pub(crate) fn to_durability(d: u32) -> Result<Durability, Fail> {
    match d {
        KV_DURABILITY_BUFFERED => Ok(Durability::Buffered),
        KV_DURABILITY_OS => Ok(Durability::Os),
        KV_DURABILITY_SYNC => Ok(Durability::Sync),
        d => Err(invalid(&format!("unknown durability {d}"))),
    }
}

/// Per-write options asking for `KV_DURABILITY_*` level `d`.
pub(crate) fn write_options(d: u32) -> Result<WriteOptions, Fail> {
    Ok(WriteOptions::with_durability(to_durability(d)?))
}

pub(crate) fn to_options(c: &kv_options) -> Result<Options, Fail> {
    let durability = to_durability(c.durability)?;
    let recovery_mode = match c.recovery_mode {
        KV_RECOVERY_ABSOLUTE_CONSISTENCY => RecoveryMode::AbsoluteConsistency,
        KV_RECOVERY_TOLERATE_TAIL_CORRUPTION => RecoveryMode::TolerateTailCorruption,
        KV_RECOVERY_TOLERATE_ANY_CORRUPTION => RecoveryMode::TolerateAnyCorruption,
        m => return Err(invalid(&format!("unknown recovery mode {m}"))),
    };
    Ok(Options {
        durability,
        recovery_mode,
        segment_size: c.segment_size,
        max_wal_size: c.max_wal_size,
        keep_snapshots: c.keep_snapshots,
        max_key_size: c.max_key_size,
        max_value_size: c.max_value_size,
        create_if_missing: c.create_if_missing != 0,
        checkpoint_interval: (c.checkpoint_interval_ms != 0)
            .then(|| std::time::Duration::from_millis(c.checkpoint_interval_ms)),
        read_only: c.read_only != 0,
        max_snapshot_age: (c.max_snapshot_age_ms != 0)
            .then(|| std::time::Duration::from_millis(c.max_snapshot_age_ms)),
        value_separation_threshold: match c.value_separation_threshold {
            0 => Options::default().value_separation_threshold,
            u32::MAX => None,
            t => Some(t),
        },
        memory_budget: match c.memory_budget {
            0 => Options::default().memory_budget,
            b => b,
        },
    })
}

/// An open database. Opaque; create with `kv_open`, release with
/// `kv_close`. Safe to use from many threads at once.
pub struct kv_db {
    pub(crate) db: Db,
}

/// Run `f` on the database behind `db` (see `with_handle`).
pub(crate) fn with_db(
    db: *const kv_db,
    f: impl FnOnce(&Arc<kv_db>) -> Result<(), Fail>,
) -> kv_status {
    with_handle(db, "db", f)
}

/// Open (creating if allowed, then recovering) the database in directory
/// `path`, a NUL-terminated byte string (any bytes but NUL; not required to
/// be UTF-8). `opts` may be NULL for the defaults. On success stores a new
/// handle in `*out`.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL path or out, empty path, bad
/// options, not a directory, missing and create_if_missing is 0),
/// `KV_LOCKED` (open elsewhere, in this or another process),
/// `KV_CORRUPTION` (damage not tolerated by the recovery mode; nothing on
/// disk changed), `KV_IO` (permission denied, no space, ...).
#[no_mangle]
pub unsafe extern "C" fn kv_open(
    path: *const c_char,
    opts: *const kv_options,
    out: *mut *mut kv_db,
) -> kv_status {
    // Safety: the arguments are as documented above.
    unsafe {
        open_handle(path, opts, out, |p, o| {
            Db::open(p, o).map(|db| kv_db { db })
        })
    }
}

/// Close the database: wait for calls in progress on other threads, make
/// every write durable, write a final checkpoint, release the lock, free
/// the handle. `db` must not be used afterwards (undefined behaviour, as
/// with any freed pointer); calls already in progress on other threads
/// finish or return `KV_CLOSED`. `kv_close(NULL)` is a no-op returning
/// `KV_OK`.
///
/// Errors (the handle is freed all the same): `KV_POISONED` (an earlier
/// write failed; no final checkpoint), `KV_IO` (final sync or checkpoint
/// failed; the WAL still holds every acknowledged write).
#[no_mangle]
pub unsafe extern "C" fn kv_close(db: *mut kv_db) -> kv_status {
    // Safety: `db` is NULL or came from kv_open, as documented above.
    unsafe { close_handle(db, |h| h.db.close()) }
}

/// Set `key` (`key_len` bytes, at least 1) to `val` (`val_len` bytes; `val`
/// may be NULL only when `val_len` is 0). Returns once the write has
/// reached the durability level. The library copies both buffers.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db/key, empty or oversized key,
/// oversized value), `KV_CLOSED`, `KV_POISONED`, `KV_IO` (the store is now
/// poisoned; the write may or may not be on disk).
#[no_mangle]
pub unsafe extern "C" fn kv_set(
    db: *const kv_db,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
) -> kv_status {
    // Safety: forwarded from the caller, as documented above.
    with_db(db, |h| unsafe {
        ops::set(&h.db, key, key_len, val, val_len, None)
    })
}

/// `kv_set` acknowledged at `durability` (`KV_DURABILITY_*`) instead of the
/// store's level. Concurrent writes share one commit group, which is
/// brought to the strongest level any of them asked for: a write is never
/// made less durable than it asked, and one at `KV_DURABILITY_SYNC` also
/// makes every earlier write durable (the WAL is one ordered log).
///
/// Errors as `kv_set`, plus `KV_INVALID_ARGUMENT` for an unknown
/// `durability` (nothing is written).
#[no_mangle]
pub unsafe extern "C" fn kv_set_with(
    db: *const kv_db,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
    durability: u32,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_set.
    with_db(db, |h| unsafe {
        ops::set(&h.db, key, key_len, val, val_len, Some(durability))
    })
}

/// Remove `key` (succeeds whether or not it existed). Errors as `kv_set`.
#[no_mangle]
pub unsafe extern "C" fn kv_delete(db: *const kv_db, key: *const u8, key_len: usize) -> kv_status {
    // Safety: forwarded from the caller, as documented.
    with_db(db, |h| unsafe { ops::delete(&h.db, key, key_len, None) })
}

/// `kv_delete` acknowledged at `durability` (`KV_DURABILITY_*`); see
/// `kv_set_with`. Errors as `kv_set_with`.
#[no_mangle]
pub unsafe extern "C" fn kv_delete_with(
    db: *const kv_db,
    key: *const u8,
    key_len: usize,
    durability: u32,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_delete.
    with_db(db, |h| unsafe {
        ops::delete(&h.db, key, key_len, Some(durability))
    })
}

/// Look up `key`. On success stores a newly allocated copy of the value in
/// `*val` (never NULL, even for an empty value) and its length in
/// `*val_len`; free it with `kv_free`. A value shorter than
/// `kv_options.value_separation_threshold` is copied from memory; a longer
/// one is read from the value cache or with one positioned read of the WAL
/// segment that holds it, checked against its CRC-32.
///
/// Errors: `KV_NOT_FOUND` (outputs untouched), `KV_INVALID_ARGUMENT` (NULL
/// db/key/val/val_len, empty or oversized key), `KV_CLOSED`,
/// `KV_CORRUPTION` (a value kept in a segment fails its CRC, or its segment
/// is missing; the message names the file and offset), `KV_IO`.
#[no_mangle]
pub unsafe extern "C" fn kv_get(
    db: *const kv_db,
    key: *const u8,
    key_len: usize,
    val: *mut *mut u8,
    val_len: *mut usize,
) -> kv_status {
    // Safety: forwarded from the caller, as documented above.
    with_db(db, |h| unsafe {
        ops::get(&*h.db, key, key_len, val, val_len)
    })
}

/// Look up `key` and copy the value into the caller's buffer `buf` of
/// `cap` bytes (`buf` may be NULL when `cap` is 0). On success stores the
/// value's length in `*val_len`. If the value is longer than `cap`, returns
/// `KV_BUFFER_TOO_SMALL`, stores the needed length in `*val_len` and writes
/// nothing to `buf`. No allocation.
///
/// Errors: `KV_NOT_FOUND`, `KV_BUFFER_TOO_SMALL`, `KV_INVALID_ARGUMENT`
/// (NULL db/key/val_len, NULL buf with cap > 0, bad key), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_get_into(
    db: *const kv_db,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    cap: usize,
    val_len: *mut usize,
) -> kv_status {
    // Safety: forwarded from the caller, as documented above.
    with_db(db, |h| unsafe {
        ops::get_into(&*h.db, key, key_len, buf, cap, val_len)
    })
}

/// One value in the result of `kv_get_many`: `value` points to `value_len`
/// bytes inside the result block, or is NULL (and `value_len` 0) when the
/// key is absent. A present empty value has a non-NULL `value`. Frozen: an
/// array element, it never changes (convention 10).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kv_value {
    /// The value's bytes, or NULL for an absent key.
    pub value: *const u8,
    /// The value's length in bytes (0 for an absent key).
    pub value_len: usize,
}

/// Look up `n` keys in one call. The keys are packed: `keys` holds them
/// back to back, key `i` being the `key_lens[i]` bytes after keys
/// `0..i` (so `keys` holds the sum of `key_lens` bytes; it may be NULL only
/// when that sum is 0). All are read under one read lock, so the values are
/// consistent with each other as of one point in the write order.
///
/// On success `*out` is one `malloc` block: an array of `n` `kv_value`
/// (value `i` for key `i`) followed by the values' bytes, which the array's
/// pointers point into; release everything with one `kv_free(*out)`. With
/// `n == 0`, `*out` is NULL. An absent key is not an error: its `value` is
/// NULL. Each key counts as one point read in `kv_metrics`.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db/out, NULL keys with a non-zero
/// total, NULL key_lens with n > 0, an empty or oversized key: nothing is
/// returned), `KV_IO` (out of memory), `KV_CLOSED`. `*out` is untouched on
/// error.
#[no_mangle]
pub unsafe extern "C" fn kv_get_many(
    db: *const kv_db,
    keys: *const u8,
    key_lens: *const usize,
    n: usize,
    out: *mut *mut kv_value,
) -> kv_status {
    // Safety: forwarded from the caller, as documented above.
    with_db(db, |h| unsafe {
        ops::get_many(&*h.db, keys, key_lens, n, out)
    })
}

/// Store 1 in `*out` if `key` is present, else 0.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db/key/out, bad key), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_contains(
    db: *const kv_db,
    key: *const u8,
    key_len: usize,
    out: *mut i32,
) -> kv_status {
    // Safety: forwarded from the caller, as documented above.
    with_db(db, |h| unsafe { ops::contains(&*h.db, key, key_len, out) })
}

/// Store the number of live keys in `*out`.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db/out), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_len(db: *const kv_db, out: *mut u64) -> kv_status {
    // Safety: forwarded from the caller, as documented above.
    with_db(db, |h| unsafe { ops::len(&*h.db, out) })
}

/// Make every acknowledged write durable (flush + fdatasync). Needed only
/// under `KV_DURABILITY_BUFFERED` or `KV_DURABILITY_OS`.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db), `KV_CLOSED`, `KV_POISONED`,
/// `KV_IO` (the store is then poisoned).
#[no_mangle]
pub unsafe extern "C" fn kv_sync(db: *const kv_db) -> kv_status {
    with_db(db, |h| Ok(h.db.sync()?))
}

/// Write a snapshot and drop the WAL it covers. Readers and writers keep
/// running meanwhile. Errors as `kv_sync`.
#[no_mangle]
pub unsafe extern "C" fn kv_checkpoint(db: *const kv_db) -> kv_status {
    with_db(db, |h| Ok(h.db.checkpoint()?))
}

/// Reclaim space now: move the live separated values out of every closed
/// WAL segment that is less than 67% live, then checkpoint, so that the
/// segments are deleted (once no open snapshot older than that checkpoint
/// needs them). Also runs by itself after automatic checkpoints. If
/// `segments` / `bytes` are not NULL, stores how many segments were
/// reclaimed and how many value bytes moved.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db, read-only store), `KV_CLOSED`,
/// `KV_POISONED`, `KV_IO` (the store is then poisoned), `KV_CORRUPTION`
/// (a live value to move fails its CRC; the store is not poisoned).
#[no_mangle]
pub unsafe extern "C" fn kv_reclaim(
    db: *const kv_db,
    segments: *mut u64,
    bytes: *mut u64,
) -> kv_status {
    with_db(db, |h| {
        let r = h.db.reclaim()?;
        // Safety: each output is NULL or points to a writable u64 (the
        // header's contract).
        unsafe {
            if !segments.is_null() {
                segments.write(r.segments);
            }
            if !bytes.is_null() {
                bytes.write(r.bytes);
            }
        }
        Ok(())
    })
}

/// Online backup: write a consistent copy of the store into the new
/// directory `dest` (NUL-terminated) while other threads keep writing;
/// `dest` then opens with `kv_open`. It holds every write acknowledged
/// before the call and no part of a later one (the state at one LSN,
/// stored in `*lsn` if `lsn` is not NULL). It is written from a snapshot of
/// the index (O(1) to take), so writers do not pause for it. It is built in `.<name>.backup-tmp.<unique>` next to
/// `dest` and renamed into place when complete: after a crash or kill,
/// `dest` is missing, or `kv_open` on it fails with `KV_CORRUPTION`
/// ("unfinished backup"); never a store that opens with data missing.
/// Works on a handle opened with `read_only` (it backs up that view),
/// which is how another process backs up a live store.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db or dest; `dest` exists; its
/// parent is missing), `KV_CLOSED`, `KV_IO` (the store is unaffected).
#[no_mangle]
pub unsafe extern "C" fn kv_backup(
    db: *const kv_db,
    dest: *const c_char,
    lsn: *mut u64,
) -> kv_status {
    // Safety: `dest` and `lsn` are as documented above.
    with_db(db, |h| unsafe {
        super::backup_to(dest, lsn, |p| h.db.backup(p))
    })
}

/// Statistics filled in by `kv_stats_get`. Byte counts are in bytes.
/// Initialise as `kv_stats st = { .struct_size = sizeof st };`
/// (convention 10).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct kv_stats {
    /// `sizeof(kv_stats)` as compiled by the caller, set before the call.
    pub struct_size: usize,
    /// Live keys.
    pub keys: u64,
    /// Bytes of live keys.
    pub key_bytes: u64,
    /// Bytes of live values.
    pub value_bytes: u64,
    /// Estimated memory of the in-memory index.
    pub memory_bytes: u64,
    /// WAL segment files.
    pub wal_segments: u64,
    /// Bytes of WAL segment files (preallocated size).
    pub wal_bytes: u64,
    /// WAL bytes appended since the newest snapshot.
    pub wal_bytes_since_checkpoint: u64,
    /// Snapshot files.
    pub snapshots: u64,
    /// Bytes of snapshot files.
    pub snapshot_bytes: u64,
    /// WAL + snapshot bytes.
    pub disk_bytes: u64,
    /// Sequence number (LSN) of the last applied write.
    pub last_lsn: u64,
    /// Highest LSN known durable.
    pub synced_lsn: u64,
    /// LSN covered by the newest snapshot (0: none).
    pub snapshot_lsn: u64,
    /// Writes committed since open.
    pub writes: u64,
    /// Commit groups since open (writes / groups = average group size).
    pub commit_groups: u64,
    /// WAL fdatasync calls since open.
    pub fsyncs: u64,
    /// Checkpoints since open.
    pub checkpoints: u64,
    /// 1 if the store is poisoned.
    pub poisoned: u32,
    /// 1 if the last recovery truncated a torn tail.
    pub recovery_truncated: u32,
    /// Last recovery: LSN of the snapshot loaded.
    pub recovery_snapshot_lsn: u64,
    /// Last recovery: newer snapshots rejected by their SHA-256 check.
    pub recovery_snapshots_rejected: u64,
    /// Last recovery: WAL records replayed.
    pub recovery_records_replayed: u64,
    /// Last recovery: WAL bytes replayed.
    pub recovery_bytes_replayed: u64,
    /// Last recovery: bytes zeroed by the tail truncation.
    pub recovery_truncated_bytes: u64,
    /// Last recovery: offset of the truncation in its segment.
    pub recovery_truncated_offset: u64,
    /// Last recovery (salvage mode): records lost to damage.
    pub recovery_records_skipped: u64,
    /// Last recovery: duration in microseconds.
    pub recovery_micros: u64,
    /// Named keyspaces (collections' keyspaces included).
    pub keyspaces: u64,
    /// Document collections.
    pub collections: u64,
    /// Last recovery (salvage mode): bytes of damage skipped (damaged
    /// records, damaged segment headers, cut-off file ends).
    pub recovery_bytes_skipped: u64,
    /// Last recovery (salvage mode): WAL segments the log says must exist
    /// but were missing (deleted files).
    pub recovery_segments_missing: u64,
    /// Last recovery: WAL segments read.
    pub recovery_segments_scanned: u64,
    /// Last recovery: WAL segments passed over because the snapshot
    /// covers them.
    pub recovery_segments_skipped: u64,
    /// Last recovery: entries loaded from the snapshot.
    pub recovery_snapshot_entries: u64,
    /// Last recovery: last LSN recovered.
    pub recovery_last_lsn: u64,
}

/// Fill `*out` with the store's statistics. `out->struct_size` must be
/// set; only the fields that fit in it are written (convention 10).
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db/out, `struct_size` smaller than
/// the first released `kv_stats`), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_stats_get(db: *const kv_db, out: *mut kv_stats) -> kv_status {
    with_db(db, |h| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let s = h.db.stats()?;
        // Collections are the documents layer's: counted beside the
        // engine's figures (a collection created in between may or may
        // not be counted).
        let collections = h.db.list_collections()?.len() as u64;
        let r = &s.recovery;
        let st = kv_stats {
            struct_size: std::mem::size_of::<kv_stats>(),
            keys: s.keys,
            key_bytes: s.key_bytes,
            value_bytes: s.value_bytes,
            memory_bytes: s.memory_bytes,
            wal_segments: s.wal_segments,
            wal_bytes: s.wal_bytes,
            wal_bytes_since_checkpoint: s.wal_bytes_since_checkpoint,
            snapshots: s.snapshots,
            snapshot_bytes: s.snapshot_bytes,
            disk_bytes: s.disk_bytes,
            last_lsn: s.last_lsn,
            synced_lsn: s.synced_lsn,
            snapshot_lsn: s.snapshot_lsn,
            writes: s.writes,
            commit_groups: s.commit_groups,
            fsyncs: s.fsyncs,
            checkpoints: s.checkpoints,
            poisoned: s.poisoned.is_some() as u32,
            recovery_truncated: r.truncation.is_some() as u32,
            recovery_snapshot_lsn: r.snapshot_lsn,
            recovery_snapshots_rejected: r.snapshots_rejected,
            recovery_records_replayed: r.records_replayed,
            recovery_bytes_replayed: r.bytes_replayed,
            recovery_truncated_bytes: r.truncation.as_ref().map_or(0, |t| t.bytes),
            recovery_truncated_offset: r.truncation.as_ref().map_or(0, |t| t.offset),
            recovery_records_skipped: r.records_skipped,
            recovery_micros: r.duration_micros,
            keyspaces: s.keyspaces,
            collections,
            recovery_bytes_skipped: r.bytes_skipped,
            recovery_segments_missing: r.segments_missing,
            recovery_segments_scanned: r.segments_scanned,
            recovery_segments_skipped: r.segments_skipped,
            recovery_snapshot_entries: r.snapshot_entries,
            recovery_last_lsn: r.last_lsn,
        };
        // Safety: `out` is non-NULL and points to `struct_size` writable
        // bytes (the header's contract).
        unsafe { super::write_sized(out, st) }
    })
}

/// One latency (or size) distribution in `kv_metrics`. Latencies are in
/// microseconds; percentiles are upper bounds of log-linear buckets (at
/// most 25% above the true value).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct kv_summary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// Operation metrics, filled by `kv_metrics_get`. Counters and summaries
/// cover `seconds` (since open or the last `kv_metrics_reset`); gauges are
/// current values. Initialise as `kv_metrics m = { .struct_size = sizeof m };`
/// (convention 10: fields are added only at the end).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct kv_metrics {
    /// `sizeof(kv_metrics)` as compiled by the caller, set before the call.
    pub struct_size: usize,
    /// Seconds covered by the counters.
    pub seconds: f64,
    /// Put operations (including inside batches).
    pub puts: u64,
    /// Delete operations (including inside batches).
    pub deletes: u64,
    /// Write calls (kv_set, kv_delete, kv_batch_commit).
    pub writes: u64,
    /// Point reads (kv_get, kv_get_into, kv_contains).
    pub gets: u64,
    /// Point reads that found their key.
    pub get_hits: u64,
    /// Pairs returned by iterators.
    pub scanned_pairs: u64,
    /// WAL payload bytes written.
    pub bytes_written: u64,
    /// Key and value bytes returned.
    pub bytes_read: u64,
    /// WAL fdatasync calls.
    pub fsyncs: u64,
    /// Group-commit groups written.
    pub commit_groups: u64,
    /// Checkpoints completed.
    pub checkpoints: u64,
    /// Writes per commit group (a count, not microseconds).
    pub group_size: kv_summary,
    /// Latency of write calls, microseconds.
    pub write_latency: kv_summary,
    /// Latency of point reads, microseconds, sampled: one kv_get,
    /// kv_get_into or kv_keyspace_get in 32 is timed (the store's first
    /// included), because reading the clock on every get halved their
    /// rate; `count` is the number of samples (`gets` counts every get). A
    /// kv_get_many call is one sample, always taken.
    pub get_latency: kv_summary,
    /// Latency of starting an iterator (its snapshot and seek) or of a
    /// whole scan, microseconds.
    pub scan_latency: kv_summary,
    /// Latency of kv_sync, microseconds.
    pub sync_latency: kv_summary,
    /// Latency of checkpoints, microseconds.
    pub checkpoint_latency: kv_summary,
    /// Errors returned, indexed by kv_status up to `KV_DUPLICATE_KEY`
    /// (later codes have fields below; entries 0, 8 and 9 stay 0;
    /// 7 counts missing keyspaces, collections and documents, not get
    /// misses).
    pub errors: [u64; 13],
    /// Live keys (gauge).
    pub keys: u64,
    /// Estimated memory of the index in bytes (gauge).
    pub memory_bytes: u64,
    /// Bytes of WAL segment files on disk (gauge).
    pub wal_disk_bytes: u64,
    /// Bytes of snapshot files on disk (gauge).
    pub snapshot_disk_bytes: u64,
    /// Records replayed by the recovery at open.
    pub recovery_records_replayed: u64,
    /// Torn-tail bytes truncated by the recovery at open.
    pub recovery_truncated_bytes: u64,
    /// `KV_CONFLICT` errors returned (transaction commits that conflicted;
    /// the `errors` array predates this code). Added in 0.2, as are the
    /// fields below.
    pub errors_conflict: u64,
    /// `KV_SNAPSHOT_EXPIRED` errors returned.
    pub errors_snapshot_expired: u64,
    /// Snapshots open now: `kv_snapshot`s, iterators and transactions
    /// (gauge).
    pub open_snapshots: u64,
    /// Transactions open now (gauge).
    pub open_transactions: u64,
    /// Age of the oldest open snapshot in microseconds (gauge; 0: none).
    pub oldest_snapshot_age_micros: u64,
    /// Bytes held only by open snapshots: old versions of pairs and index
    /// nodes, and the write sets kept to validate open transactions
    /// (gauge, measured).
    pub snapshot_pinned_bytes: u64,
    /// Separated values (kept in the WAL segments) the index points at
    /// (gauge). Added in 0.3, as are the fields below.
    pub separated_values: u64,
    /// Their bytes (gauge; not part of `memory_bytes`).
    pub separated_bytes: u64,
    /// Bytes the value cache holds (gauge; at most
    /// `kv_options.memory_budget`).
    pub value_cache_bytes: u64,
    /// Separated-value reads answered by the value cache, since open.
    pub value_cache_hits: u64,
    /// Separated-value reads that missed the cache, since open.
    pub value_cache_misses: u64,
    /// Positioned reads of segment files for separated values, since
    /// open (one per miss).
    pub value_reads: u64,
    /// Bytes of separated values moved by reclaim, since open.
    pub reclaimed_bytes: u64,
}

fn summary(s: &crate::engine::metrics::Summary) -> kv_summary {
    kv_summary {
        count: s.count,
        p50: s.p50,
        p95: s.p95,
        p99: s.p99,
        max: s.max,
        mean: s.mean,
    }
}

/// Fill `*out` with the store's metrics. `out->struct_size` must be set;
/// only the fields that fit in it are written (convention 10).
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db/out, `struct_size` smaller than
/// the first released `kv_metrics`), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_metrics_get(db: *const kv_db, out: *mut kv_metrics) -> kv_status {
    with_db(db, |h| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let m = h.db.metrics()?;
        let c = kv_metrics {
            struct_size: std::mem::size_of::<kv_metrics>(),
            seconds: m.seconds,
            puts: m.puts,
            deletes: m.deletes,
            writes: m.writes,
            gets: m.gets,
            get_hits: m.get_hits,
            scanned_pairs: m.scanned_pairs,
            bytes_written: m.bytes_written,
            bytes_read: m.bytes_read,
            fsyncs: m.fsyncs,
            commit_groups: m.commit_groups,
            checkpoints: m.checkpoints,
            group_size: summary(&m.group_size),
            write_latency: summary(&m.write_latency),
            get_latency: summary(&m.get_latency),
            scan_latency: summary(&m.scan_latency),
            sync_latency: summary(&m.sync_latency),
            checkpoint_latency: summary(&m.checkpoint_latency),
            errors: {
                // Indexed by status code (the ABI's layout).
                let mut by_code = [0u64; 13];
                for (kind, n) in m.errors.iter() {
                    if let Some(slot) = by_code.get_mut(kind.code() as usize) {
                        *slot = n;
                    }
                }
                by_code
            },
            errors_conflict: m.errors.get(crate::ErrorKind::Conflict),
            errors_snapshot_expired: m.errors.get(crate::ErrorKind::SnapshotExpired),
            open_snapshots: m.stats.open_snapshots,
            open_transactions: m.stats.open_transactions,
            oldest_snapshot_age_micros: m.stats.oldest_snapshot_age_micros,
            snapshot_pinned_bytes: m.stats.snapshot_pinned_bytes,
            separated_values: m.stats.separated_values,
            separated_bytes: m.stats.separated_bytes,
            value_cache_bytes: m.stats.value_cache_bytes,
            value_cache_hits: m.stats.value_cache_hits,
            value_cache_misses: m.stats.value_cache_misses,
            value_reads: m.stats.value_reads,
            reclaimed_bytes: m.stats.reclaimed_bytes,
            keys: m.stats.keys,
            memory_bytes: m.stats.memory_bytes,
            wal_disk_bytes: m.stats.wal_bytes,
            snapshot_disk_bytes: m.stats.snapshot_bytes,
            recovery_records_replayed: m.stats.recovery.records_replayed,
            recovery_truncated_bytes: m.stats.recovery.truncation.as_ref().map_or(0, |t| t.bytes),
        };
        // Safety: `out` is non-NULL and points to `struct_size` writable
        // bytes (the header's contract).
        unsafe { super::write_sized(out, c) }
    })
}

/// Zero the counters and summaries of `kv_metrics_get` (gauges and the
/// recovery figures are kept).
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_metrics_reset(db: *const kv_db) -> kv_status {
    with_db(db, |h| Ok(h.db.reset_metrics()?))
}

/// The metrics in Prometheus text exposition format, every sample labelled
/// `db="<the directory path>"`: a newly allocated NUL-terminated string in
/// `*text` (free with `kv_free`) and its length without the NUL in `*len`.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db/text/len), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_metrics_prometheus(
    db: *const kv_db,
    text: *mut *mut c_char,
    len: *mut usize,
) -> kv_status {
    with_db(db, |h| {
        if text.is_null() || len.is_null() {
            return Err(invalid("text and len must not be NULL"));
        }
        let m = h.db.metrics()?;
        let s = m.to_prometheus(&h.db.path().to_string_lossy());
        // Safety: outputs as documented above.
        unsafe { super::put_text(text, len, s) }
    })
}

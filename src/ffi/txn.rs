//! `kv_snapshot` (a consistent read view) and `kv_txn` (a serializable
//! read-write transaction).

use super::db::{kv_value, write_options};
use super::iter::{kv_iter, publish, publish_list, range_args};
use super::keyspace::kv_keyspace;
use super::ops;
use super::{bytes, finish, guard, invalid, kv_db, kv_status, put_bytes, with_db, Fail};
use crate::{Keyspace, Snapshot, Transaction, WriteOptions};
use parking_lot::Mutex;

/// A read view of every keyspace fixed at one moment (LSN): its reads see
/// exactly the writes applied before it was taken, however long it is
/// kept. Opaque; create with `kv_snapshot_open` (reads address the default
/// keyspace) or `kv_snapshot_keyspace` (another keyspace at the same
/// moment), free with `kv_snapshot_free`.
///
/// Cost: taking one is O(1) and never blocks writers; while it lives,
/// pairs it can see that are overwritten or deleted stay in memory
/// (`kv_stats` does not show it; `kv_metrics_prometheus` reports
/// `keyval_snapshot_pinned_bytes`). Free it promptly, or set
/// `kv_options.max_snapshot_age_ms`.
///
/// Thread safety: a snapshot may be used from many threads at once. It
/// must be freed before or after `kv_close`; after close its reads return
/// `KV_CLOSED`.
pub struct kv_snapshot {
    snap: Snapshot,
}

fn with_snap(s: *const kv_snapshot, f: impl FnOnce(&Snapshot) -> Result<(), Fail>) -> kv_status {
    guard(|| {
        if s.is_null() {
            return finish(Err(invalid("snapshot is NULL")));
        }
        // Safety: non-NULL handle from kv_snapshot_open, not freed while a
        // call is in flight (documented); shared access only.
        finish(f(unsafe { &(*s).snap }))
    })
}

fn publish_snap(out: *mut *mut kv_snapshot, snap: Snapshot) -> Result<(), Fail> {
    if out.is_null() {
        return Err(invalid("out is NULL"));
    }
    // Safety: `out` is non-NULL and writable.
    unsafe { *out = Box::into_raw(Box::new(kv_snapshot { snap })) };
    Ok(())
}

/// Take a snapshot of `db` and store it in `*out`; its reads address the
/// default keyspace.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db/out), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_snapshot_open(
    db: *const kv_db,
    out: *mut *mut kv_snapshot,
) -> kv_status {
    with_db(db, |h| publish_snap(out, h.db.snapshot()?))
}

/// A view of keyspace `ks` at the moment of snapshot `s` (sharing it),
/// stored in `*out` (free it with `kv_snapshot_free` too).
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL argument, `ks` of another store),
/// `KV_NOT_FOUND` (`ks` did not exist at that moment), `KV_CLOSED`,
/// `KV_SNAPSHOT_EXPIRED`.
#[no_mangle]
pub unsafe extern "C" fn kv_snapshot_keyspace(
    s: *const kv_snapshot,
    ks: *const kv_keyspace,
    out: *mut *mut kv_snapshot,
) -> kv_status {
    with_snap(s, |snap| {
        if ks.is_null() {
            return Err(invalid("keyspace is NULL"));
        }
        // Safety: non-NULL keyspace handle, live for the call (documented).
        let k = unsafe { super::keyspace::inner(ks) };
        publish_snap(out, snap.keyspace(k)?)
    })
}

/// The LSN of the last write the snapshot sees, in `*out`.
/// Errors: `KV_INVALID_ARGUMENT` (NULL).
#[no_mangle]
pub unsafe extern "C" fn kv_snapshot_lsn(s: *const kv_snapshot, out: *mut u64) -> kv_status {
    with_snap(s, |snap| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // Safety: `out` is non-NULL and writable.
        unsafe { *out = snap.lsn() };
        Ok(())
    })
}

/// The value of `key` at the snapshot, as `kv_get` (free it with
/// `kv_free`). Errors as `kv_get`, plus `KV_SNAPSHOT_EXPIRED`.
#[no_mangle]
pub unsafe extern "C" fn kv_snapshot_get(
    s: *const kv_snapshot,
    key: *const u8,
    key_len: usize,
    val: *mut *mut u8,
    val_len: *mut usize,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_get.
    with_snap(s, |snap| unsafe {
        ops::get(snap, key, key_len, val, val_len)
    })
}

/// The value of `key` at the snapshot copied into `buf`, as
/// `kv_get_into`. Errors as `kv_get_into`, plus `KV_SNAPSHOT_EXPIRED`.
#[no_mangle]
pub unsafe extern "C" fn kv_snapshot_get_into(
    s: *const kv_snapshot,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    cap: usize,
    val_len: *mut usize,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_get_into.
    with_snap(s, |snap| unsafe {
        ops::get_into(snap, key, key_len, buf, cap, val_len)
    })
}

/// The values of `n` keys at the snapshot in one call, as `kv_get_many`
/// (same packing and result block, freed with `kv_free`).
#[no_mangle]
pub unsafe extern "C" fn kv_snapshot_get_many(
    s: *const kv_snapshot,
    keys: *const u8,
    key_lens: *const usize,
    n: usize,
    out: *mut *mut kv_value,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_get_many.
    with_snap(s, |snap| unsafe {
        ops::get_many(snap, keys, key_lens, n, out)
    })
}

/// 1 in `*out` if `key` is present at the snapshot, else 0.
#[no_mangle]
pub unsafe extern "C" fn kv_snapshot_contains(
    s: *const kv_snapshot,
    key: *const u8,
    key_len: usize,
    out: *mut i32,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_contains.
    with_snap(s, |snap| unsafe { ops::contains(snap, key, key_len, out) })
}

/// Number of keys at the snapshot (O(1)), in `*out`.
#[no_mangle]
pub unsafe extern "C" fn kv_snapshot_len(s: *const kv_snapshot, out: *mut u64) -> kv_status {
    // Safety: `out` is NULL or writable (checked inside).
    with_snap(s, |snap| unsafe { ops::len(snap, out) })
}

/// An iterator over the snapshot's keys `k` with `start <= k < end` (NULL
/// bounds: unbounded), as `kv_iter_range`.
#[no_mangle]
pub unsafe extern "C" fn kv_snapshot_iter_range(
    s: *const kv_snapshot,
    start: *const u8,
    start_len: usize,
    end: *const u8,
    end_len: usize,
    out: *mut *mut kv_iter,
) -> kv_status {
    with_snap(s, |snap| {
        // Safety: pointer/length pairs as documented.
        let r = unsafe { range_args(start, start_len, end, end_len)? };
        publish(out, snap.range::<&[u8], _>(r))
    })
}

/// Free a snapshot (what only it held is released). NULL is a no-op.
///
/// # Safety
/// `s` must be NULL or a snapshot not freed yet, with no call on it in
/// flight.
#[no_mangle]
pub unsafe extern "C" fn kv_snapshot_free(s: *mut kv_snapshot) {
    if !s.is_null() {
        // Safety: `s` came from Box::into_raw in `publish_snap`.
        drop(unsafe { Box::from_raw(s) });
    }
}

/// A read-write transaction: it reads one snapshot plus its own writes,
/// buffers its writes, and `kv_txn_commit` applies them all or none
/// (one WAL record, across keyspaces) if and only if that is
/// serializable: if another commit since its snapshot wrote a key it read
/// or a key inside a range it read, the commit returns `KV_CONFLICT` and
/// writes nothing (run it again). `kv_txn_commit` and `kv_txn_abort`
/// free the handle.
///
/// Thread safety: one thread at a time per transaction (calls on one
/// `kv_txn` are serialized by a lock inside); many transactions may run
/// at once on one store, and none waits for another.
pub struct kv_txn {
    tx: Mutex<Option<Transaction>>,
}

/// Begin a transaction on `db` whose commit uses the store's durability;
/// store it in `*out`.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db/out, a read-only store),
/// `KV_CLOSED`, `KV_POISONED`.
#[no_mangle]
pub unsafe extern "C" fn kv_txn_begin(db: *const kv_db, out: *mut *mut kv_txn) -> kv_status {
    // Safety: forwarded.
    unsafe { begin(db, None, out) }
}

/// `kv_txn_begin` whose commit uses durability `durability`
/// (`KV_DURABILITY_*`). Errors: as `kv_txn_begin`, and
/// `KV_INVALID_ARGUMENT` for an unknown level.
#[no_mangle]
pub unsafe extern "C" fn kv_txn_begin_with(
    db: *const kv_db,
    durability: u32,
    out: *mut *mut kv_txn,
) -> kv_status {
    // Safety: forwarded.
    unsafe { begin(db, Some(durability), out) }
}

/// Safety: as documented for `kv_txn_begin`.
unsafe fn begin(db: *const kv_db, durability: Option<u32>, out: *mut *mut kv_txn) -> kv_status {
    with_db(db, |h| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let wo = durability
            .map(write_options)
            .transpose()?
            .unwrap_or_else(WriteOptions::default);
        let tx = h.db.transaction_opt(&wo)?;
        // Safety: `out` is non-NULL and writable.
        unsafe {
            *out = Box::into_raw(Box::new(kv_txn {
                tx: Mutex::new(Some(tx)),
            }))
        };
        Ok(())
    })
}

/// Run `f` on the open transaction `t` and the keyspace `ks` (NULL: the
/// default keyspace).
fn with_txn(
    t: *const kv_txn,
    ks: *const kv_keyspace,
    f: impl FnOnce(&mut Transaction, Option<&Keyspace>) -> Result<(), Fail>,
) -> kv_status {
    guard(|| {
        if t.is_null() {
            return finish(Err(invalid("transaction is NULL")));
        }
        // Safety: non-NULL handle from kv_txn_begin, not freed while a call
        // is in flight (documented).
        let mut g = unsafe { &(*t).tx }.lock();
        let Some(tx) = g.as_mut() else {
            return finish(Err(invalid("transaction is already finished")));
        };
        // Safety: `ks` is NULL or a live keyspace handle (documented).
        let k = (!ks.is_null()).then(|| unsafe { super::keyspace::inner(ks) });
        finish(f(tx, k))
    })
}

/// The value of `key` in keyspace `ks` (NULL: the default keyspace): the
/// transaction's own write, or its snapshot's; malloc'd into
/// `*val`/`*val_len`, free with `kv_free`. The read is recorded for the
/// commit's check.
///
/// Errors: `KV_NOT_FOUND` (absent), `KV_INVALID_ARGUMENT` (NULL
/// argument, bad key, `ks` of another store), `KV_CLOSED`,
/// `KV_SNAPSHOT_EXPIRED`.
#[no_mangle]
pub unsafe extern "C" fn kv_txn_get(
    t: *const kv_txn,
    ks: *const kv_keyspace,
    key: *const u8,
    key_len: usize,
    val: *mut *mut u8,
    val_len: *mut usize,
) -> kv_status {
    with_txn(t, ks, |tx, k| {
        if key.is_null() {
            return Err(invalid("key is NULL"));
        }
        // Safety: pointer/length pair as documented.
        let key = unsafe { bytes(key, key_len, "key") }?;
        let v = match k {
            Some(k) => tx.get_in(k, key)?,
            None => tx.get(key)?,
        };
        match v {
            // Safety: outputs checked inside.
            Some(v) => unsafe { put_bytes(val, val_len, &v) },
            None => Err(Fail::Status(kv_status::KV_NOT_FOUND, c"key not found")),
        }
    })
}

/// The values of `n` keys of keyspace `ks` (NULL: default) in one call,
/// packed and returned as `kv_get_many` does (own writes included; every
/// key recorded as read). Errors as `kv_txn_get` (no `KV_NOT_FOUND`:
/// absent keys have NULL values).
#[no_mangle]
pub unsafe extern "C" fn kv_txn_get_many(
    t: *const kv_txn,
    ks: *const kv_keyspace,
    keys: *const u8,
    key_lens: *const usize,
    n: usize,
    out: *mut *mut kv_value,
) -> kv_status {
    with_txn(t, ks, |tx, k| {
        // Safety: as documented for kv_get_many.
        let list = unsafe { ops::unpack_keys(keys, key_lens, n, out) }?;
        let Some(list) = list else { return Ok(()) };
        let vals = match k {
            Some(k) => tx.get_many_in(k, &list)?,
            None => tx.get_many(&list)?,
        };
        // Safety: `out` is non-NULL and writable (checked by unpack_keys).
        unsafe { ops::publish_values(vals.iter().map(|v| v.as_deref()), out) }
    })
}

/// Set `key` to `val` in keyspace `ks` (NULL: default) when the
/// transaction commits (both copied).
/// Errors: `KV_INVALID_ARGUMENT` (NULL argument, bad key or value size,
/// `ks` of another store), `KV_NOT_FOUND` (`ks` did not exist at the
/// snapshot), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_txn_put(
    t: *const kv_txn,
    ks: *const kv_keyspace,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
) -> kv_status {
    with_txn(t, ks, |tx, k| {
        if key.is_null() {
            return Err(invalid("key is NULL"));
        }
        // Safety: pointer/length pairs as documented.
        let (key, v) = unsafe { (bytes(key, key_len, "key")?, bytes(val, val_len, "value")?) };
        match k {
            Some(k) => tx.set_in(k, key, v)?,
            None => tx.set(key, v)?,
        }
        Ok(())
    })
}

/// Delete `key` in keyspace `ks` (NULL: default) when the transaction
/// commits. Errors as `kv_txn_put`.
#[no_mangle]
pub unsafe extern "C" fn kv_txn_delete(
    t: *const kv_txn,
    ks: *const kv_keyspace,
    key: *const u8,
    key_len: usize,
) -> kv_status {
    with_txn(t, ks, |tx, k| {
        if key.is_null() {
            return Err(invalid("key is NULL"));
        }
        // Safety: pointer/length pair as documented.
        let key = unsafe { bytes(key, key_len, "key") }?;
        match k {
            Some(k) => tx.delete_in(k, key)?,
            None => tx.delete(key)?,
        }
        Ok(())
    })
}

/// An iterator over the pairs of keyspace `ks` (NULL: default) with
/// `start <= k < end` (NULL bounds: unbounded), own writes included, in
/// key order (descending if `reverse` is non-zero), at most `limit` pairs
/// (0: no limit). The range is recorded as read (up to the last pair when
/// `limit` cut it): a commit fails with `KV_CONFLICT` if another commit
/// since the snapshot added, changed or removed a key in it. The iterator
/// holds the pairs it returns (it moves forward only); free it with
/// `kv_iter_free`. Errors as `kv_txn_get` (no `KV_NOT_FOUND`).
#[no_mangle]
pub unsafe extern "C" fn kv_txn_iter_range(
    t: *const kv_txn,
    ks: *const kv_keyspace,
    start: *const u8,
    start_len: usize,
    end: *const u8,
    end_len: usize,
    reverse: i32,
    limit: usize,
    out: *mut *mut kv_iter,
) -> kv_status {
    with_txn(t, ks, |tx, k| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // Safety: pointer/length pairs as documented.
        let r = unsafe { range_args(start, start_len, end, end_len)? };
        let limit = if limit == 0 { usize::MAX } else { limit };
        let pairs = match k {
            Some(k) => tx.range_in::<&[u8], _>(k, r, reverse != 0, limit)?,
            None => tx.range::<&[u8], _>(r, reverse != 0, limit)?,
        };
        publish_list(out, pairs)
    })
}

/// Take the transaction out of `t` and free the handle.
///
/// Safety: `t` is NULL or a live transaction handle.
unsafe fn take(t: *mut kv_txn) -> Option<Transaction> {
    if t.is_null() {
        return None;
    }
    // Safety: `t` came from Box::into_raw in `begin`.
    let b = unsafe { Box::from_raw(t) };
    b.tx.into_inner()
}

/// Commit the transaction and free `t` (whatever the outcome: do not use
/// it again). On `KV_OK` every write is applied atomically at the
/// transaction's durability.
///
/// Errors: `KV_CONFLICT` (a key or range it read was written by a later
/// commit; nothing was written: begin again and retry), `KV_NOT_FOUND` (a
/// keyspace it writes was dropped), `KV_INVALID_ARGUMENT` (NULL),
/// `KV_CLOSED`, `KV_POISONED`, `KV_IO`.
#[no_mangle]
pub unsafe extern "C" fn kv_txn_commit(t: *mut kv_txn) -> kv_status {
    guard(|| {
        // Safety: as documented.
        match unsafe { take(t) } {
            None => finish(Err(invalid("transaction is NULL"))),
            Some(tx) => finish(tx.commit().map_err(Fail::from)),
        }
    })
}

/// Discard the transaction's writes and free `t`. NULL is a no-op.
///
/// # Safety
/// `t` must be NULL or a transaction not committed or aborted yet.
#[no_mangle]
pub unsafe extern "C" fn kv_txn_abort(t: *mut kv_txn) {
    // Safety: as documented.
    drop(unsafe { take(t) });
}

//! `kv_batch`: an atomic group of sets and deletes.

use super::db::write_options;
use super::{bytes, finish, guard, invalid, kv_db, kv_status, with_db, Fail};
use crate::WriteBatch;

/// A write batch. Opaque; create with `kv_batch_new`, free with
/// `kv_batch_free`. Not thread-safe: use one batch from one thread at a
/// time. It does not belong to any database until committed.
pub struct kv_batch {
    batch: WriteBatch,
}

/// A new, empty batch, or NULL if out of memory. Free with `kv_batch_free`.
#[no_mangle]
pub extern "C" fn kv_batch_new() -> *mut kv_batch {
    std::panic::catch_unwind(|| {
        Box::into_raw(Box::new(kv_batch {
            batch: WriteBatch::new(),
        }))
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Free a batch. NULL is a no-op.
///
/// # Safety
/// `b` must be NULL or a batch from `kv_batch_new` not freed yet.
#[no_mangle]
pub unsafe extern "C" fn kv_batch_free(b: *mut kv_batch) {
    if !b.is_null() {
        // Safety: `b` came from Box::into_raw in kv_batch_new.
        drop(unsafe { Box::from_raw(b) });
    }
}

fn with_batch(b: *mut kv_batch, f: impl FnOnce(&mut WriteBatch) -> Result<(), Fail>) -> kv_status {
    // Safety: `b` is passed on under the same contract.
    guard(|| finish(unsafe { batch_mut(b, f) }))
}

/// Run `f` on the batch behind `b` (NULL: `KV_INVALID_ARGUMENT`), inside
/// the caller's panic guard.
///
/// Safety: `b` is NULL or a batch from `kv_batch_new`, used by one thread
/// at a time.
pub(crate) unsafe fn batch_mut(
    b: *mut kv_batch,
    f: impl FnOnce(&mut WriteBatch) -> Result<(), Fail>,
) -> Result<(), Fail> {
    if b.is_null() {
        return Err(invalid("batch is NULL"));
    }
    // Safety: non-NULL batch from kv_batch_new, used by one thread at a
    // time (documented), so this is the only reference.
    f(unsafe { &mut (*b).batch })
}

/// Add "set `key` to `val`" to the batch (both copied). Key and value
/// sizes are checked at commit.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL batch or key, NULL val with
/// val_len > 0).
#[no_mangle]
pub unsafe extern "C" fn kv_batch_put(
    b: *mut kv_batch,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
) -> kv_status {
    with_batch(b, |batch| {
        if key.is_null() {
            return Err(invalid("key is NULL"));
        }
        // Safety: pointer/length pairs as documented.
        let (k, v) = unsafe { (bytes(key, key_len, "key")?, bytes(val, val_len, "value")?) };
        batch.put(k, v);
        Ok(())
    })
}

/// Add "remove `key`" to the batch.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL batch or key).
#[no_mangle]
pub unsafe extern "C" fn kv_batch_delete(
    b: *mut kv_batch,
    key: *const u8,
    key_len: usize,
) -> kv_status {
    with_batch(b, |batch| {
        if key.is_null() {
            return Err(invalid("key is NULL"));
        }
        // Safety: pointer/length pair as documented.
        batch.delete(unsafe { bytes(key, key_len, "key")? });
        Ok(())
    })
}

/// Remove every operation from the batch, so it can be reused.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL batch).
#[no_mangle]
pub unsafe extern "C" fn kv_batch_clear(b: *mut kv_batch) -> kv_status {
    with_batch(b, |batch| {
        batch.clear();
        Ok(())
    })
}

/// Number of operations in the batch (0 for NULL).
///
/// # Safety
/// `b` must be NULL or a live batch.
#[no_mangle]
pub unsafe extern "C" fn kv_batch_count(b: *const kv_batch) -> usize {
    if b.is_null() {
        return 0;
    }
    // Safety: non-NULL live batch.
    unsafe { (*b).batch.len() }
}

/// Apply every operation of the batch atomically (all or nothing, also
/// across a crash), in order; returns once durable at the store's
/// durability level. The batch is left unchanged: clear it or free it.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db or batch; an empty or oversized
/// key or oversized value anywhere in the batch, in which case nothing is
/// applied), `KV_CLOSED`, `KV_POISONED`, `KV_IO`.
#[no_mangle]
pub unsafe extern "C" fn kv_batch_commit(db: *const kv_db, b: *const kv_batch) -> kv_status {
    // Safety: forwarded from the caller, as documented above.
    unsafe { commit_at(db, b, None) }
}

/// `kv_batch_commit` (`durability` None: the store's level) and
/// `kv_batch_commit_with`.
///
/// Safety: as documented for `kv_batch_commit`.
unsafe fn commit_at(db: *const kv_db, b: *const kv_batch, durability: Option<u32>) -> kv_status {
    with_db(db, |h| {
        let wo = durability
            .map(write_options)
            .transpose()?
            .unwrap_or_default();
        if b.is_null() {
            return Err(invalid("batch is NULL"));
        }
        // Safety: non-NULL live batch, not used concurrently (documented).
        let batch = unsafe { (*b).batch.clone() };
        Ok(h.db.write_opt(batch, &wo)?)
    })
}

/// `kv_batch_commit` acknowledged at `durability` (`KV_DURABILITY_*`)
/// instead of the store's level; see `kv_set_with` for how levels combine
/// under group commit. Errors as `kv_batch_commit`, plus
/// `KV_INVALID_ARGUMENT` for an unknown `durability` (nothing is applied).
#[no_mangle]
pub unsafe extern "C" fn kv_batch_commit_with(
    db: *const kv_db,
    b: *const kv_batch,
    durability: u32,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_batch_commit.
    unsafe { commit_at(db, b, Some(durability)) }
}

/// Apply a packed batch atomically in one call, without a `kv_batch`:
/// `data` holds `len` bytes laid out as the WAL's key-value batch payload
/// (docs/format.md), all integers little-endian:
///
/// ```text
/// u32 operation count
/// then per operation:
///   u8  kind: 1 = put, 2 = delete (the default keyspace),
///             3 = put, 4 = delete in a named keyspace
///   u32 keyspace id (kinds 3 and 4 only; from kv_keyspace_id)
///   u32 key length
///   u32 value length (puts only)
///   key bytes, then value bytes (puts only)
/// ```
///
/// Returns once the write has reached the durability level. The library
/// copies `data`.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db, NULL data with len > 0, a
/// payload that does not decode exactly, another kind, an empty or
/// oversized key, an oversized value: nothing is applied), `KV_NOT_FOUND`
/// (a keyspace id that is not live: nothing is applied), `KV_CLOSED`,
/// `KV_POISONED`, `KV_IO` (the store is now poisoned).
#[no_mangle]
pub unsafe extern "C" fn kv_write_packed(
    db: *const kv_db,
    data: *const u8,
    len: usize,
) -> kv_status {
    // Safety: forwarded from the caller, as documented above.
    unsafe { write_packed_at(db, data, len, None) }
}

/// `kv_write_packed` (`durability` None: the store's level) and
/// `kv_write_packed_with`.
///
/// Safety: as documented for `kv_write_packed`.
unsafe fn write_packed_at(
    db: *const kv_db,
    data: *const u8,
    len: usize,
    durability: Option<u32>,
) -> kv_status {
    with_db(db, |h| {
        let wo = durability
            .map(write_options)
            .transpose()?
            .unwrap_or_default();
        // Safety: pointer/length pair as documented for kv_write_packed.
        let payload = unsafe { bytes(data, len, "data")? }.to_vec();
        Ok(h.db.write_opt(WriteBatch::from_payload(payload)?, &wo)?)
    })
}

/// `kv_write_packed` acknowledged at `durability` (`KV_DURABILITY_*`)
/// instead of the store's level; see `kv_set_with`. Errors as
/// `kv_write_packed`, plus `KV_INVALID_ARGUMENT` for an unknown
/// `durability` (nothing is applied).
#[no_mangle]
pub unsafe extern "C" fn kv_write_packed_with(
    db: *const kv_db,
    data: *const u8,
    len: usize,
    durability: u32,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_write_packed.
    unsafe { write_packed_at(db, data, len, Some(durability)) }
}

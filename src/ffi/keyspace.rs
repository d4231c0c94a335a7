//! `kv_keyspace`: named keyspaces of a `kv_db`, and batches across them.

use super::db::kv_value;
use super::iter::{kv_iter, publish, range_args};
use super::{
    batch_mut, bytes, guard, invalid, kv_db, kv_status, ops, put_bytes, text, with_db, Fail,
};
use crate::Keyspace;

/// A named keyspace of an open database: an independent ordered key space
/// (like a Bolt bucket), or the default keyspace. Opaque; get one with
/// `kv_keyspace_open` or `kv_keyspace_default`, free it
/// with `kv_keyspace_free` (before or after `kv_close`; calls on it after
/// `kv_close` return `KV_CLOSED`, after a drop `KV_NOT_FOUND`). Safe to use
/// from many threads at once.
pub struct kv_keyspace {
    ks: Keyspace,
}

/// Open keyspace `name` (UTF-8, 1-255 bytes) of `db`, creating it (durably)
/// if `create` is non-zero, and store a new handle in `*out`.
///
/// Errors: `KV_NOT_FOUND` (missing and `create` is 0),
/// `KV_INVALID_ARGUMENT` (NULL db/out, a name that is not UTF-8 or not
/// 1-255 bytes), `KV_CLOSED`, `KV_POISONED`, `KV_IO`.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_open(
    db: *const kv_db,
    name: *const u8,
    name_len: usize,
    create: i32,
    out: *mut *mut kv_keyspace,
) -> kv_status {
    with_db(db, |h| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // Safety: documented pointer/length pair.
        let n = unsafe { text(name, name_len, "name") }?;
        let ks = if create != 0 {
            h.db.keyspace(n)?
        } else {
            h.db.open_keyspace(n)?
        };
        // Safety: `out` is non-NULL and writable.
        unsafe { *out = Box::into_raw(Box::new(kv_keyspace { ks })) };
        Ok(())
    })
}

/// Store in `*out` a new handle on the default keyspace of `db` (id 0,
/// name ""): the keyspace `kv_get`, `kv_set` and the other `kv_*` key
/// functions address. Every `kv_keyspace_*` function works on it, so code
/// written against a keyspace handle serves the default keyspace too.
/// Free it with `kv_keyspace_free`.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db/out), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_default(
    db: *const kv_db,
    out: *mut *mut kv_keyspace,
) -> kv_status {
    with_db(db, |h| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        h.db.len()?; // KV_CLOSED once closed
        let handle = Box::new(kv_keyspace {
            ks: Keyspace::clone(&h.db),
        });
        // Safety: `out` is non-NULL and writable.
        unsafe { *out = Box::into_raw(handle) };
        Ok(())
    })
}
/// Free a keyspace handle (the keyspace and its data stay). NULL is a
/// no-op.
///
/// # Safety
/// `ks` must be NULL or a handle from `kv_keyspace_open` not freed yet,
/// with no call on it in flight.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_free(ks: *mut kv_keyspace) {
    if !ks.is_null() {
        // Safety: from Box::into_raw in kv_keyspace_open, per the contract.
        drop(unsafe { Box::from_raw(ks) });
    }
}

/// The keyspace behind a handle.
///
/// Safety: `ks` is a non-NULL live handle from `kv_keyspace_open`, not
/// freed while the returned borrow is used.
pub(crate) unsafe fn inner<'a>(ks: *const kv_keyspace) -> &'a Keyspace {
    // Safety: as documented.
    unsafe { &(*ks).ks }
}

fn with_ks(ks: *const kv_keyspace, f: impl FnOnce(&Keyspace) -> Result<(), Fail>) -> kv_status {
    guard(|| {
        if ks.is_null() {
            return super::finish(Err(invalid("keyspace is NULL")));
        }
        // Safety: non-NULL handle from kv_keyspace_open, not freed while a
        // call is in flight (documented); shared access only.
        super::finish(f(unsafe { &(*ks).ks }))
    })
}

/// Drop keyspace `name` and every key in it, atomically and durably;
/// `*existed` (may be NULL) is set to 1 if it existed. Errors as
/// `kv_keyspace_open`.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_drop(
    db: *const kv_db,
    name: *const u8,
    name_len: usize,
    existed: *mut i32,
) -> kv_status {
    with_db(db, |h| {
        // Safety: documented pointer/length pair.
        let e =
            h.db.drop_keyspace(unsafe { text(name, name_len, "name") }?)?;
        if !existed.is_null() {
            // Safety: non-NULL and writable per the contract.
            unsafe { *existed = e as i32 };
        }
        Ok(())
    })
}

/// The names of every named keyspace as a JSON array of strings, sorted,
/// in a fresh buffer (`*out`, `*out_len`; free with `kv_free`).
/// Errors: `KV_INVALID_ARGUMENT` (NULL argument), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_list(
    db: *const kv_db,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> kv_status {
    with_db(db, |h| {
        if out.is_null() || out_len.is_null() {
            return Err(invalid("out and out_len must not be NULL"));
        }
        let s = serde_json::Value::from(h.db.list_keyspaces()?).to_string();
        // Safety: both non-NULL and writable per the contract.
        unsafe { put_bytes(out, out_len, s.as_bytes()) }
    })
}

/// Set `key` to `val` in keyspace `ks` (as `kv_set`). Errors as `kv_set`,
/// plus `KV_NOT_FOUND` if the keyspace was dropped.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_set(
    ks: *const kv_keyspace,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_set.
    with_ks(ks, |k| unsafe {
        ops::set(k, key, key_len, val, val_len, None)
    })
}

/// `kv_keyspace_set` acknowledged at `durability` (`KV_DURABILITY_*`), as
/// `kv_set_with`. Errors as `kv_set_with`, plus `KV_NOT_FOUND` (dropped).
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_set_with(
    ks: *const kv_keyspace,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
    durability: u32,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_set.
    with_ks(ks, |k| unsafe {
        ops::set(k, key, key_len, val, val_len, Some(durability))
    })
}

/// Remove `key` from keyspace `ks` (as `kv_delete`). Errors as
/// `kv_keyspace_set`.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_delete(
    ks: *const kv_keyspace,
    key: *const u8,
    key_len: usize,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_delete.
    with_ks(ks, |k| unsafe { ops::delete(k, key, key_len, None) })
}

/// `kv_keyspace_delete` acknowledged at `durability`, as
/// `kv_delete_with`. Errors as `kv_keyspace_set_with`.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_delete_with(
    ks: *const kv_keyspace,
    key: *const u8,
    key_len: usize,
    durability: u32,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_delete.
    with_ks(ks, |k| unsafe {
        ops::delete(k, key, key_len, Some(durability))
    })
}

/// The value of `key` in keyspace `ks`, in a fresh buffer (as `kv_get`).
/// Errors: `KV_NOT_FOUND` (no such key, or the keyspace was dropped),
/// `KV_INVALID_ARGUMENT`, `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_get(
    ks: *const kv_keyspace,
    key: *const u8,
    key_len: usize,
    val: *mut *mut u8,
    val_len: *mut usize,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_get.
    with_ks(ks, |k| unsafe { ops::get(k, key, key_len, val, val_len) })
}

/// The value of `key` in keyspace `ks` copied into the caller's buffer, as
/// `kv_get_into`. Errors as `kv_get_into`; `KV_NOT_FOUND` also when the
/// keyspace was dropped.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_get_into(
    ks: *const kv_keyspace,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    cap: usize,
    val_len: *mut usize,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_get_into.
    with_ks(ks, |k| unsafe {
        ops::get_into(k, key, key_len, buf, cap, val_len)
    })
}

/// The values of `n` keys of keyspace `ks` in one call, as `kv_get_many`
/// (same packing, result block and consistency). Errors as `kv_get_many`,
/// plus `KV_NOT_FOUND` if the keyspace was dropped.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_get_many(
    ks: *const kv_keyspace,
    keys: *const u8,
    key_lens: *const usize,
    n: usize,
    out: *mut *mut kv_value,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_get_many.
    with_ks(ks, |k| unsafe { ops::get_many(k, keys, key_lens, n, out) })
}

/// Store 1 in `*out` if `key` is present in keyspace `ks`, else 0. Errors
/// as `kv_contains`, plus `KV_NOT_FOUND` (dropped).
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_contains(
    ks: *const kv_keyspace,
    key: *const u8,
    key_len: usize,
    out: *mut i32,
) -> kv_status {
    // Safety: forwarded from the caller, as documented for kv_contains.
    with_ks(ks, |k| unsafe { ops::contains(k, key, key_len, out) })
}

/// The number of live keys of keyspace `ks` in `*out`. Errors:
/// `KV_NOT_FOUND` (dropped), `KV_INVALID_ARGUMENT`, `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_len(ks: *const kv_keyspace, out: *mut u64) -> kv_status {
    // Safety: forwarded from the caller, as documented.
    with_ks(ks, |k| unsafe { ops::len(k, out) })
}

/// Counters of keyspace `ks` as JSON in a fresh buffer (free with
/// `kv_free`): `{"keys": n, "key_bytes": n, "value_bytes": n}` (live keys,
/// and their keys' and values' bytes).
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL ks/out/out_len), `KV_NOT_FOUND`
/// (dropped), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_stats(
    ks: *const kv_keyspace,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> kv_status {
    with_ks(ks, |k| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let s = k.stats()?;
        let v = serde_json::json!({"keys": s.keys, "key_bytes": s.key_bytes,
            "value_bytes": s.value_bytes});
        // Safety: out checked, out_len documented writable.
        unsafe { put_bytes(out, out_len, v.to_string().as_bytes()) }
    })
}

/// The keyspace's id in `*out`: the number that names it in a packed batch
/// for `kv_write_packed` (operation kinds 3 and 4). Ids are never reused,
/// so a packed batch built for a keyspace that is dropped meanwhile fails
/// with `KV_NOT_FOUND` instead of writing elsewhere.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL ks/out).
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_id(ks: *const kv_keyspace, out: *mut u32) -> kv_status {
    with_ks(ks, |k| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // Safety: `out` is non-NULL and writable.
        unsafe { *out = k.id() };
        Ok(())
    })
}

/// Create an iterator over the keys `k` of keyspace `ks` with `start <= k
/// < end` (NULL bounds unbounded), positioned at the first; used and freed
/// like one from `kv_iter_range` (if the keyspace is dropped meanwhile,
/// the iteration ends).
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL ks/out, NULL bound with non-zero
/// length), `KV_NOT_FOUND` (dropped), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_iter_range(
    ks: *const kv_keyspace,
    start: *const u8,
    start_len: usize,
    end: *const u8,
    end_len: usize,
    out: *mut *mut kv_iter,
) -> kv_status {
    with_ks(ks, |k| {
        k.stats()?; // KV_NOT_FOUND once dropped
                    // Safety: pointer/length pairs as documented.
        let r = unsafe { range_args(start, start_len, end, end_len)? };
        publish(out, k.range::<&[u8], _>(r))
    })
}

/// Create an iterator over the keys of keyspace `ks` that start with
/// `prefix` (NULL or length 0: every key). Errors: as
/// `kv_keyspace_iter_range`.
#[no_mangle]
pub unsafe extern "C" fn kv_keyspace_iter_prefix(
    ks: *const kv_keyspace,
    prefix: *const u8,
    prefix_len: usize,
    out: *mut *mut kv_iter,
) -> kv_status {
    with_ks(ks, |k| {
        k.stats()?; // KV_NOT_FOUND once dropped
                    // Safety: pointer/length pair as documented.
        let p = unsafe { bytes(prefix, prefix_len, "prefix")? };
        publish(out, k.prefix(p))
    })
}

/// Add "set `key` to `val` in keyspace `ks`" to batch `b` (copied). A batch
/// may write several keyspaces and the default one; `kv_batch_commit` applies it
/// atomically (`KV_NOT_FOUND` if a keyspace was dropped meanwhile).
/// Errors: `KV_INVALID_ARGUMENT` (NULL batch, keyspace or key).
#[no_mangle]
pub unsafe extern "C" fn kv_batch_put_in(
    b: *mut super::kv_batch,
    ks: *const kv_keyspace,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
) -> kv_status {
    with_ks(ks, |k| {
        // Safety: documented pointer/length pairs; `b` per kv_batch rules.
        unsafe {
            let (key, val) = (bytes(key, key_len, "key")?, bytes(val, val_len, "val")?);
            batch_mut(b, |batch| {
                batch.put_in(k, key, val);
                Ok(())
            })
        }
    })
}

/// Add "remove `key` from keyspace `ks`" to batch `b`. Errors as
/// `kv_batch_put_in`.
#[no_mangle]
pub unsafe extern "C" fn kv_batch_delete_in(
    b: *mut super::kv_batch,
    ks: *const kv_keyspace,
    key: *const u8,
    key_len: usize,
) -> kv_status {
    with_ks(ks, |k| {
        // Safety: documented pointer/length pair; `b` per kv_batch rules.
        unsafe {
            let key = bytes(key, key_len, "key")?;
            batch_mut(b, |batch| {
                batch.delete_in(k, key);
                Ok(())
            })
        }
    })
}

//! `kv_coll_*` and `kv_doc_*`: document collections, with JSON in and out.
//!
//! Conventions of this group: a collection is named by a UTF-8 byte string
//! (`coll`, `coll_len`; 1-200 bytes) and created by the first write to it;
//! documents, filters, options and results are UTF-8 JSON passed as
//! pointer + length; JSON results are returned in a fresh buffer (`*out`,
//! `*out_len`, not NUL-terminated) that the caller frees with `kv_free`.
//! See `docs/documents.md` for the filter, update and option languages.

use super::{bytes, invalid, kv_db, kv_status, put_bytes, text, with_db, Fail};
use crate::docs::{Collection, FindOptions};
use serde_json::Value;

/// Parse a JSON argument; NULL with length 0 is `null`.
///
/// Safety: as [`bytes`].
unsafe fn json(p: *const u8, len: usize, what: &str) -> Result<Value, Fail> {
    if len == 0 {
        return Ok(Value::Null);
    }
    // Safety: forwarded contract.
    let b = unsafe { bytes(p, len, what) }?;
    serde_json::from_slice(b).map_err(|e| invalid(&format!("{what} is not valid JSON: {e}")))
}

/// Store `v` as a fresh JSON buffer in `*out`/`*out_len`, if `out` is not
/// NULL.
///
/// Safety: `out` and `out_len` are NULL or writable.
unsafe fn put_json(out: *mut *mut u8, out_len: *mut usize, v: &Value) -> Result<(), Fail> {
    if out.is_null() {
        return Ok(());
    }
    // Safety: forwarded contract.
    unsafe { put_bytes(out, out_len, v.to_string().as_bytes()) }
}

/// Store a flag in `*out` if it is not NULL.
///
/// Safety: `out` is NULL or writable.
unsafe fn put_flag(out: *mut i32, v: bool) {
    if !out.is_null() {
        // Safety: non-NULL and writable per the contract.
        unsafe { *out = v as i32 };
    }
}

/// Run `f` on collection `coll` of `db` (created if `create`).
///
/// Safety: `coll` points to `coll_len` readable bytes.
unsafe fn with_coll(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    create: bool,
    f: impl FnOnce(&Collection) -> Result<(), Fail>,
) -> kv_status {
    with_db(db, |h| {
        // Safety: pointer/length pair as documented.
        let name = unsafe { text(coll, coll_len, "coll") }?;
        let c = if create {
            h.db.collection(name)?
        } else {
            h.db.open_collection(name)?
        };
        f(&c)
    })
}

/// Create collection `coll` if it does not exist (idempotent).
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db, a name that is not UTF-8 or not
/// 1-200 bytes), `KV_CLOSED`, `KV_POISONED`, `KV_IO`.
#[no_mangle]
pub unsafe extern "C" fn kv_coll_create(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
) -> kv_status {
    // Safety: documented pointer/length pair.
    unsafe { with_coll(db, coll, coll_len, true, |_| Ok(())) }
}

/// Drop collection `coll` with its documents and indexes; `*existed`
/// (may be NULL) is set to 1 if it existed. Errors as `kv_coll_create`.
#[no_mangle]
pub unsafe extern "C" fn kv_coll_drop(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    existed: *mut i32,
) -> kv_status {
    with_db(db, |h| {
        // Safety: documented pointer/length pair; `existed` NULL or writable.
        unsafe {
            let name = text(coll, coll_len, "coll")?;
            put_flag(existed, h.db.drop_collection(name)?);
        }
        Ok(())
    })
}

/// The collections' names as a JSON array of strings, sorted, in a fresh
/// buffer. Errors: `KV_INVALID_ARGUMENT` (NULL db, out or out_len),
/// `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_coll_list(
    db: *const kv_db,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> kv_status {
    with_db(db, |h| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let names = h.db.list_collections()?;
        // Safety: out/out_len checked or documented writable.
        unsafe { put_json(out, out_len, &Value::from(names)) }
    })
}

/// Counters of collection `coll` as JSON: `{"documents": n, "bytes": n,
/// "indexes": n, "index_entries": n}` (bytes of stored JSON text).
/// Errors: `KV_NOT_FOUND` (no such collection), and as `kv_coll_list`.
#[no_mangle]
pub unsafe extern "C" fn kv_coll_stats(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> kv_status {
    // Safety: documented pointers.
    unsafe {
        with_coll(db, coll, coll_len, false, |c| {
            if out.is_null() {
                return Err(invalid("out is NULL"));
            }
            let s = c.stats()?;
            let v = serde_json::json!({"documents": s.documents, "bytes": s.bytes,
                "indexes": s.indexes, "index_entries": s.index_entries});
            put_json(out, out_len, &v)
        })
    }
}

/// Create an index on the dotted `path` (UTF-8) of collection `coll`,
/// unique if `unique` is non-zero; idempotent for the same index.
///
/// Errors: `KV_DUPLICATE_KEY` (unique, and two documents share a value:
/// nothing written), `KV_INVALID_ARGUMENT` (bad path, `_id`, the index
/// exists with the other uniqueness), `KV_CLOSED`, `KV_POISONED`, `KV_IO`.
#[no_mangle]
pub unsafe extern "C" fn kv_coll_create_index(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    path: *const u8,
    path_len: usize,
    unique: i32,
) -> kv_status {
    // Safety: documented pointer/length pairs.
    unsafe {
        with_coll(db, coll, coll_len, true, |c| {
            c.create_index(text(path, path_len, "path")?, unique != 0)?;
            Ok(())
        })
    }
}

/// Drop the index on `path`; `*existed` (may be NULL) is set to 1 if it
/// existed. Errors: `KV_NOT_FOUND` (no such collection), and as
/// `kv_coll_create_index`.
#[no_mangle]
pub unsafe extern "C" fn kv_coll_drop_index(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    path: *const u8,
    path_len: usize,
    existed: *mut i32,
) -> kv_status {
    // Safety: documented pointers.
    unsafe {
        with_coll(db, coll, coll_len, false, |c| {
            put_flag(existed, c.drop_index(text(path, path_len, "path")?)?);
            Ok(())
        })
    }
}

/// The indexes of `coll` as JSON: `[{"path": "_id", "unique": true,
/// "multikey": false}, ...]`, `_id` first. Errors as `kv_coll_stats`.
#[no_mangle]
pub unsafe extern "C" fn kv_coll_list_indexes(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> kv_status {
    // Safety: documented pointers.
    unsafe {
        with_coll(db, coll, coll_len, false, |c| {
            if out.is_null() {
                return Err(invalid("out is NULL"));
            }
            let v: Vec<Value> = c
                .list_indexes()?
                .into_iter()
                .map(|i| serde_json::json!({"path": i.path, "unique": i.unique, "multikey": i.multikey}))
                .collect();
            put_json(out, out_len, &Value::from(v))
        })
    }
}

/// Insert the document `doc` (a JSON object) into `coll`, creating the
/// collection if needed. The id (its `_id`, or the next automatic id) is
/// returned in a fresh buffer in `*id`/`*id_len` (not NUL-terminated; may
/// be NULL if not wanted). `doc` may also be a JSON array of objects: then
/// all are inserted atomically (or none) and `*id` gets a JSON array of
/// the ids.
///
/// Errors: `KV_DUPLICATE_KEY` (the `_id` exists or a unique index holds a
/// value), `KV_INVALID_ARGUMENT` (NULL db, bad JSON, not an object, an
/// `_id` that is not a non-empty string), `KV_CLOSED`, `KV_POISONED`,
/// `KV_IO`. On error nothing is written.
#[no_mangle]
pub unsafe extern "C" fn kv_doc_insert(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    doc: *const u8,
    doc_len: usize,
    id: *mut *mut u8,
    id_len: *mut usize,
) -> kv_status {
    // Safety: documented pointers.
    unsafe {
        with_coll(db, coll, coll_len, true, |c| {
            let d = json(doc, doc_len, "doc")?;
            if let Value::Array(list) = d {
                let ids = c.insert_many(list)?;
                return put_json(id, id_len, &Value::from(ids));
            }
            let new_id = c.insert(d)?;
            if id.is_null() {
                return Ok(());
            }
            put_bytes(id, id_len, new_id.as_bytes())
        })
    }
}

/// The document with id `id` (UTF-8) as JSON in a fresh buffer.
///
/// Errors: `KV_NOT_FOUND` (no such document or collection),
/// `KV_INVALID_ARGUMENT` (NULL db/out/out_len, empty id), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_doc_get(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    id: *const u8,
    id_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> kv_status {
    // Safety: documented pointers.
    unsafe {
        with_coll(db, coll, coll_len, false, |c| {
            if out.is_null() {
                return Err(invalid("out is NULL"));
            }
            // The stored text is what serializing the document gives.
            match c.get_json(text(id, id_len, "id")?)? {
                Some(j) => put_bytes(out, out_len, &j),
                None => Err(Fail::Status(kv_status::KV_NOT_FOUND, c"no such document")),
            }
        })
    }
}

/// Delete document `id`; `*existed` (may be NULL) is set to 1 if it
/// existed. Errors: `KV_NOT_FOUND` (no such collection),
/// `KV_INVALID_ARGUMENT`, `KV_CLOSED`, `KV_POISONED`, `KV_IO`.
#[no_mangle]
pub unsafe extern "C" fn kv_doc_delete(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    id: *const u8,
    id_len: usize,
    existed: *mut i32,
) -> kv_status {
    // Safety: documented pointers.
    unsafe {
        with_coll(db, coll, coll_len, false, |c| {
            put_flag(existed, c.delete(text(id, id_len, "id")?)?);
            Ok(())
        })
    }
}

/// Update document `id` with `change` (JSON) and return the new document
/// in `*out` (may be NULL if not wanted). `mode` 0: `change` is a JSON
/// merge patch (RFC 7396); 1: update operators (`{"$set": {...}, "$inc":
/// {...}}`); 2: a replacement document; 3: a replacement document, inserted
/// if missing (upsert).
///
/// Errors: `KV_NOT_FOUND` (no such document, except mode 3),
/// `KV_INVALID_ARGUMENT` (bad JSON, unknown mode, changing `_id`, an
/// operator on the wrong type), `KV_DUPLICATE_KEY` (a unique index),
/// `KV_CLOSED`, `KV_POISONED`, `KV_IO`. On error nothing is written.
#[no_mangle]
pub unsafe extern "C" fn kv_doc_update(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    id: *const u8,
    id_len: usize,
    change: *const u8,
    change_len: usize,
    mode: u32,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> kv_status {
    // Safety: documented pointers.
    unsafe {
        with_coll(db, coll, coll_len, mode == 3, |c| {
            let id = text(id, id_len, "id")?;
            let ch = json(change, change_len, "change")?;
            let new = match mode {
                0 => c.update(id, &ch)?,
                1 => c.update_with(id, &ch)?,
                2 | 3 => {
                    c.replace(id, ch, mode == 3)?;
                    c.get(id)?.unwrap_or(Value::Null)
                }
                m => return Err(invalid(&format!("unknown update mode {m}"))),
            };
            put_json(out, out_len, &new)
        })
    }
}

/// Merge-patch several documents atomically: `pairs` is a JSON array of
/// `[id, patch]` pairs. Every id is checked first; one missing id fails the
/// whole call (`KV_NOT_FOUND`) and changes nothing. Errors as
/// `kv_doc_update`.
#[no_mangle]
pub unsafe extern "C" fn kv_doc_update_many(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    pairs: *const u8,
    pairs_len: usize,
) -> kv_status {
    // Safety: documented pointers.
    unsafe {
        with_coll(db, coll, coll_len, false, |c| {
            let Value::Array(list) = json(pairs, pairs_len, "pairs")? else {
                return Err(invalid("pairs is a JSON array of [id, patch]"));
            };
            let mut v = Vec::with_capacity(list.len());
            for p in list {
                match p {
                    Value::Array(mut a) if a.len() == 2 => {
                        let patch = a.pop().unwrap_or(Value::Null);
                        let Some(Value::String(id)) = a.pop() else {
                            return Err(invalid("an id is a string"));
                        };
                        v.push((id, patch));
                    }
                    _ => return Err(invalid("pairs is a JSON array of [id, patch]")),
                }
            }
            c.update_many(&v)?;
            Ok(())
        })
    }
}

/// One page of the documents of `coll` matching `filter` (JSON; NULL/0 or
/// `{}` for all) under `options` (JSON; NULL/0 for defaults: `{"sort":
/// ["-age", "name"], "projection": {...}, "limit": 50, "offset": 0,
/// "after": cursor, "before": cursor}`), as JSON in a fresh buffer:
/// `{"docs": [...], "total": n, "has_next": b, "has_prev": b,
/// "next_cursor": s|null, "prev_cursor": s|null}`. A missing collection is
/// an empty result.
///
/// Errors: `KV_INVALID_ARGUMENT` (bad JSON, filter or options: a negative
/// offset, a limit over 1000, a cursor with an offset, a cursor of another
/// sort), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_doc_find(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    filter: *const u8,
    filter_len: usize,
    options: *const u8,
    options_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> kv_status {
    // Safety: documented pointers.
    unsafe {
        query(
            db,
            coll,
            coll_len,
            filter,
            filter_len,
            options,
            options_len,
            out,
            out_len,
            false,
        )
    }
}

/// How `kv_doc_find` would run: `{"plan": "index"|"collection_scan",
/// "index": path|null, "ranges": n, "entries": n, "sort": "_id"|"memory"}`.
/// Arguments and errors as `kv_doc_find`.
#[no_mangle]
pub unsafe extern "C" fn kv_doc_explain(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    filter: *const u8,
    filter_len: usize,
    options: *const u8,
    options_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> kv_status {
    // Safety: documented pointers.
    unsafe {
        query(
            db,
            coll,
            coll_len,
            filter,
            filter_len,
            options,
            options_len,
            out,
            out_len,
            true,
        )
    }
}

/// The body of `kv_doc_find` and `kv_doc_explain`.
///
/// Safety: documented pointers.
#[allow(clippy::too_many_arguments)]
unsafe fn query(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    filter: *const u8,
    filter_len: usize,
    options: *const u8,
    options_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
    explain: bool,
) -> kv_status {
    // Safety: forwarded contract.
    unsafe {
        with_db(db, |h| {
            if out.is_null() {
                return Err(invalid("out is NULL"));
            }
            let name = text(coll, coll_len, "coll")?;
            let f = json(filter, filter_len, "filter")?;
            let o = FindOptions::from_json(&json(options, options_len, "options")?)?;
            let v = match h.db.open_collection(name) {
                Ok(c) if explain => c.explain(&f, &o)?.to_json(),
                Ok(c) => c.find(&f, &o)?.to_json(),
                // A missing collection is empty; a query creates nothing.
                Err(crate::Error::NotFound(_)) => {
                    crate::docs::filter::parse(&f)?;
                    if explain {
                        serde_json::json!({"plan": "collection_scan", "index": null,
                            "ranges": 0, "entries": 0, "sort": "_id"})
                    } else {
                        serde_json::json!({"docs": [], "total": 0, "has_next": false,
                            "has_prev": false, "next_cursor": null, "prev_cursor": null})
                    }
                }
                Err(e) => return Err(e.into()),
            };
            put_json(out, out_len, &v)
        })
    }
}

/// The number of documents of `coll` matching `filter` (JSON; NULL/0 for
/// all) in `*out`. Errors: `KV_NOT_FOUND` (no such collection),
/// `KV_INVALID_ARGUMENT` (NULL out, a bad filter), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_doc_count(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    filter: *const u8,
    filter_len: usize,
    out: *mut u64,
) -> kv_status {
    // Safety: documented pointers.
    unsafe {
        with_coll(db, coll, coll_len, false, |c| {
            if out.is_null() {
                return Err(invalid("out is NULL"));
            }
            *out = c.count(&json(filter, filter_len, "filter")?)?;
            Ok(())
        })
    }
}

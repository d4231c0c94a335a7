//! `kv_coll_*` and `kv_doc_*`: document collections, with JSON in and out.
//!
//! Conventions of this group: a collection is named by a UTF-8 byte string
//! (`coll`, `coll_len`; 1-200 bytes) and created by the first write to it;
//! documents, filters, options and results are UTF-8 JSON passed as
//! pointer + length; JSON results are returned in a fresh buffer (`*out`,
//! `*out_len`, not NUL-terminated) that the caller frees with `kv_free`.
//! See `docs/documents.md` for the filter, update and option languages.

use super::{bytes, invalid, kv_db, kv_status, put_bytes, text, with_db, Fail};
use crate::documents::{Collection, FindOptions};
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

/// Deepest nesting of a stored document, in levels (the document object
/// is level 1; each object or array inside it adds one). A document or an
/// update result nested deeper is refused with `KV_INVALID_ARGUMENT`, as
/// is a filter nested deeper. (MongoDB's limit; the JSON parser stops at
/// 128, so every stored document stays readable.)
#[allow(dead_code)] // for include/keyval.h (cbindgen)
pub const KV_DOC_MAX_DEPTH: u32 = 100;
/// Most segments in a dotted field path (filters, updates, sorts,
/// projections, indexes); more is `KV_INVALID_ARGUMENT`. Segments must be
/// non-empty (`a..b` is refused everywhere) and may not start with `$`;
/// stored documents may not have member names starting with `$`.
#[allow(dead_code)] // for include/keyval.h (cbindgen)
pub const KV_DOC_MAX_PATH_SEGMENTS: u32 = 100;
/// Longest field path in a filter, update, sort or projection, in bytes
/// (an index path: 200 bytes); longer is `KV_INVALID_ARGUMENT`.
#[allow(dead_code)] // for include/keyval.h (cbindgen)
pub const KV_DOC_MAX_PATH_BYTES: u32 = 4096;
/// Most field paths one update may name (every operator's paths and
/// `$rename` targets together); more is `KV_INVALID_ARGUMENT`. Two paths
/// that are equal or where one is a parent of the other also are.
#[allow(dead_code)] // for include/keyval.h (cbindgen)
pub const KV_DOC_MAX_UPDATE_PATHS: u32 = 10000;
/// Most values in one `$in` or `$nin` list; more is `KV_INVALID_ARGUMENT`.
#[allow(dead_code)] // for include/keyval.h (cbindgen)
pub const KV_DOC_MAX_IN_VALUES: u32 = 10000;

/// Run `f` on collection `coll` of `db`. With `create` (a write) the
/// collection is created if missing, and dropped again if `f` fails while
/// it is still empty, so a failed write leaves nothing behind. Without it
/// (a read, or a write that only removes) a missing collection is
/// `KV_NOT_FOUND`; callers that answer it as an empty collection use
/// [`with_coll_or`].
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
        if !create {
            return f(&h.db.open_collection(name)?);
        }
        let (c, created) = crate::documents::collection_for_write(&h.db, name)?;
        let r = f(&c);
        if r.is_err() && created {
            // Best effort: the write's own error is what the caller needs.
            let _ = h.db.drop_collection_if_empty(name);
        }
        r
    })
}

/// [`with_coll`] for a read: `prepare` checks and decodes the arguments,
/// then `f` runs on the collection, or `missing` answers for a missing one
/// as an empty collection would (one rule for every read: see
/// docs/documents.md).
///
/// Safety: `coll` points to `coll_len` readable bytes.
unsafe fn with_coll_or<P>(
    db: *const kv_db,
    coll: *const u8,
    coll_len: usize,
    prepare: impl FnOnce() -> Result<P, Fail>,
    f: impl FnOnce(&Collection, P) -> Result<(), Fail>,
    missing: impl FnOnce(P) -> Result<(), Fail>,
) -> kv_status {
    with_db(db, |h| {
        // Safety: pointer/length pair as documented.
        let name = unsafe { text(coll, coll_len, "coll") }?;
        let args = prepare()?;
        match h.db.open_collection(name) {
            Ok(c) => f(&c, args),
            Err(crate::Error::NotFound(_)) => missing(args),
            Err(e) => Err(e.into()),
        }
    })
}

/// `Ok(())` if `out` is not NULL.
fn need_out<T>(out: *mut T) -> Result<(), Fail> {
    if out.is_null() {
        return Err(invalid("out is NULL"));
    }
    Ok(())
}

/// A non-empty document id (UTF-8).
///
/// Safety: `id` points to `id_len` readable bytes.
unsafe fn doc_id<'a>(id: *const u8, id_len: usize) -> Result<&'a str, Fail> {
    // Safety: forwarded contract.
    match unsafe { text(id, id_len, "id") }? {
        "" => Err(invalid("empty document id")),
        id => Ok(id),
    }
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
/// "indexes": n, "index_entries": n}` (bytes of stored JSON text); all 0
/// for a missing collection (it reads as empty). Errors as `kv_coll_list`.
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
        let put = |s: crate::documents::CollectionStats| {
            let v = serde_json::json!({"documents": s.documents, "bytes": s.bytes,
                "indexes": s.indexes, "index_entries": s.index_entries});
            put_json(out, out_len, &v)
        };
        with_coll_or(
            db,
            coll,
            coll_len,
            || need_out(out),
            |c, ()| put(c.stats()?),
            |()| put(Default::default()),
        )
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
/// existed (0 for a missing collection). Errors as
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
        with_coll_or(
            db,
            coll,
            coll_len,
            || text(path, path_len, "path"),
            |c, path| {
                put_flag(existed, c.drop_index(path)?);
                Ok(())
            },
            |_| {
                put_flag(existed, false);
                Ok(())
            },
        )
    }
}

/// The indexes of `coll` as JSON: `[{"path": "_id", "unique": true,
/// "multikey": false}, ...]`, `_id` first (only `_id` for a missing
/// collection). Errors as `kv_coll_stats`.
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
        let put = |list: Vec<crate::documents::IndexInfo>| {
            let v: Vec<Value> = list
                .into_iter()
                .map(|i| serde_json::json!({"path": i.path, "unique": i.unique, "multikey": i.multikey}))
                .collect();
            put_json(out, out_len, &Value::from(v))
        };
        with_coll_or(
            db,
            coll,
            coll_len,
            || need_out(out),
            |c, ()| put(c.list_indexes()?),
            |()| put(vec![crate::documents::IndexInfo::primary()]),
        )
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
        let none = || Err(Fail::Status(kv_status::KV_NOT_FOUND, c"no such document"));
        with_coll_or(
            db,
            coll,
            coll_len,
            || need_out(out).and_then(|()| doc_id(id, id_len)),
            // The stored text is what serializing the document gives.
            |c, id| match c.get_json(id)? {
                Some(j) => put_bytes(out, out_len, &j),
                None => none(),
            },
            |_| none(),
        )
    }
}

/// Delete document `id`; `*existed` (may be NULL) is set to 1 if it
/// existed (0 in a missing collection, which this does not create).
/// Errors: `KV_INVALID_ARGUMENT`, `KV_CLOSED`, `KV_POISONED`, `KV_IO`.
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
        with_coll_or(
            db,
            coll,
            coll_len,
            || doc_id(id, id_len),
            |c, id| {
                put_flag(existed, c.delete(id)?);
                Ok(())
            },
            |_| {
                put_flag(existed, false);
                Ok(())
            },
        )
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
                    crate::documents::check_filter(&f)?;
                    if explain {
                        crate::documents::Plan::empty().to_json()
                    } else {
                        crate::documents::Page::empty().to_json()
                    }
                }
                Err(e) => return Err(e.into()),
            };
            put_json(out, out_len, &v)
        })
    }
}

/// The number of documents of `coll` matching `filter` (JSON; NULL/0 for
/// all) in `*out` (0 for a missing collection). Errors:
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
        with_coll_or(
            db,
            coll,
            coll_len,
            || need_out(out).and_then(|()| json(filter, filter_len, "filter")),
            |c, f| {
                *out = c.count(&f)?;
                Ok(())
            },
            |f| {
                crate::documents::check_filter(&f)?;
                *out = 0;
                Ok(())
            },
        )
    }
}

#[cfg(test)]
mod limit_tests {
    use crate::documents::limits;

    #[test]
    fn header_limits_are_the_engine_limits() {
        assert_eq!(super::KV_DOC_MAX_DEPTH as usize, limits::MAX_DEPTH);
        assert_eq!(
            super::KV_DOC_MAX_PATH_SEGMENTS as usize,
            limits::MAX_PATH_SEGMENTS
        );
        assert_eq!(
            super::KV_DOC_MAX_PATH_BYTES as usize,
            limits::MAX_PATH_BYTES
        );
        assert_eq!(
            super::KV_DOC_MAX_UPDATE_PATHS as usize,
            limits::MAX_UPDATE_PATHS
        );
        assert_eq!(super::KV_DOC_MAX_IN_VALUES as usize, limits::MAX_IN_VALUES);
    }
}

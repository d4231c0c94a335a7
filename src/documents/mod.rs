//! Document collections: JSON objects with ids, filtered and paginated
//! queries, update operators and persistent secondary indexes, on
//! keyspaces. See `docs/documents.md`.
//!
//! A collection `C` lives in three keyspaces:
//!
//! ```text
//! doc:C        id key            -> the document, as JSON text (with "_id")
//! doc.idx:C    path ++ value ++ id key -> the id (one entry per indexed value)
//! doc.meta:C   "next_id"         -> u64 LE, the next automatic id to try
//!              "index/" ++ path  -> {"unique": bool, "multikey": bool}
//! ```
//!
//! - The id key orders ids: a canonical decimal id (`"0"`, `"17"`, no
//!   leading zeros, below 2^64) is 0x01 then its value as 8 bytes
//!   big-endian; any other id is 0x02 then its UTF-8. So automatic ids
//!   (`"1"`, `"2"`, ...) list in insertion order, before other ids, and
//!   other ids list bytewise.
//! - In an index key, `path` is a string payload and `value` a value
//!   encoding (both in [`order`]); every value an index holds for a
//!   document is one entry (array elements each; a missing field once, as
//!   the missing marker), so an index covers every document.
//!
//! Every operation writes its documents, its index entries and its
//! counters in one [`crate::WriteBatch`] across these keyspaces: a crash
//! never leaves an index and its documents disagreeing. Writes to the
//! collections of one store are serialized by one lock (reads are not).
//!
//! Thread safety: [`Collection`] is `Send + Sync` and cheap to clone.

pub mod filter;
pub mod limits;
pub mod order;
mod query;
pub mod update;

pub use query::{FindOptions, Page, Plan, SortOrder};

use crate::error::{Error, Result};
use crate::kv::batch::WriteBatch;
use crate::kv::keyspace::Keyspace;
use crate::kv::Db;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Longest collection name, in bytes.
pub const MAX_COLLECTION_NAME: usize = 200;
/// Longest indexed path, in bytes.
pub const MAX_INDEX_PATH: usize = 200;
/// Prefix of a collection's documents keyspace (see the module docs).
pub(crate) const DOCS: &str = "doc:";
/// Prefix of a collection's index keyspace.
pub(crate) const INDEX: &str = "doc.idx:";
/// Prefix of a collection's counters keyspace.
pub(crate) const META: &str = "doc.meta:";
const NEXT_ID: &[u8] = b"next_id";
/// Prefix of an index's description in the counters keyspace.
pub(crate) const INDEX_META: &str = "index/";

/// The key of document id `id` in a collection's document keyspace (see
/// the module docs).
pub fn id_key(id: &str) -> Vec<u8> {
    let canonical = !id.is_empty()
        && id.len() <= 20
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    if let (true, Ok(n)) = (canonical, id.parse::<u64>()) {
        let mut k = vec![0x01];
        k.extend_from_slice(&n.to_be_bytes());
        return k;
    }
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(0x02);
    k.extend_from_slice(id.as_bytes());
    k
}

/// One secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    /// The dotted path it indexes (`_id` for the primary index).
    pub path: String,
    /// Whether two documents may not share a value (missing and null
    /// values are exempt).
    pub unique: bool,
    /// Whether some document had several values at the path (an array, or
    /// a path through arrays); such an index is not used for sorting.
    pub multikey: bool,
}

impl IndexInfo {
    /// The primary index: `_id`, unique, never multikey.
    pub fn primary() -> IndexInfo {
        IndexInfo {
            path: "_id".into(),
            unique: true,
            multikey: false,
        }
    }
}

/// Check that `filter` is a valid filter (see `docs/documents.md`) without
/// running it: what `find` and `count` refuse, this refuses, with the same
/// [`Error::InvalidArgument`].
pub fn check_filter(filter: &Value) -> Result<()> {
    filter::parse(filter).map(|_| ())
}

/// Collection `name` for a write, created if missing; also says whether
/// this call created it (see [`Db::drop_collection_if_empty`]).
///
/// Errors: as [`Db::collection`].
pub(crate) fn collection_for_write(db: &Db, name: &str) -> Result<(Collection, bool)> {
    Collection::open(db, name, true)
}

/// The documents layer's state in one store ([`Db::attached`]): writes to
/// the collections of one store are serialized by this lock (read, check,
/// write of one operation), so unique checks and automatic ids see every
/// earlier write. Reads do not take it.
#[derive(Default)]
struct WriteLock(Mutex<()>);

/// Counters of one collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectionStats {
    /// Documents.
    pub documents: u64,
    /// Bytes of the stored documents (JSON text).
    pub bytes: u64,
    /// Secondary indexes (the `_id` index not counted).
    pub indexes: u64,
    /// Entries in the secondary indexes.
    pub index_entries: u64,
}

fn check_collection_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_COLLECTION_NAME {
        return Err(Error::InvalidArgument(format!(
            "collection name of {} bytes (1 to {MAX_COLLECTION_NAME} allowed)",
            name.len()
        )));
    }
    Ok(())
}

/// An index path: a field path (see [`limits::check_field_path`]) of at
/// most [`MAX_INDEX_PATH`] bytes.
fn check_path(path: &str) -> Result<()> {
    if path.len() > MAX_INDEX_PATH {
        return Err(Error::InvalidArgument(format!(
            "index: a field path of {} bytes (1 to {MAX_INDEX_PATH} allowed)",
            path.len()
        )));
    }
    limits::check_field_path(path, "index")
}

fn parse_doc(bytes: &[u8]) -> Result<Value> {
    // One UTF-8 check of the whole text, then the parser need not check
    // each string.
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::InvalidArgument(format!("a stored document is not UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(not_json)
}

fn not_json(e: serde_json::Error) -> Error {
    Error::InvalidArgument(format!("a stored document is not valid JSON: {e}"))
}

/// A stored document with only the top-level members named in `fields`
/// parsed into values; the others are skipped without building anything.
/// Filters and sorts that read a few fields of large documents decide on
/// this, and only the documents they return are parsed whole (see the
/// stored-encoding measurement in docs/documents.md).
fn parse_fields(bytes: &[u8], fields: &BTreeSet<String>) -> Result<Value> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Only<'a>(&'a BTreeSet<String>);
    impl<'de> Visitor<'de> for Only<'_> {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> std::result::Result<Value, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some(k) = m.next_key_seed(Key(self.0))? {
                match k {
                    Some(k) => {
                        out.insert(k, m.next_value::<Value>()?);
                    }
                    None => {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(Value::Object(out))
        }
    }
    /// A member name: `Some` (copied) if wanted, else `None` without
    /// allocating.
    struct Key<'a>(&'a BTreeSet<String>);
    impl<'de> Visitor<'de> for Key<'_> {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a member name")
        }
        fn visit_str<E: serde::de::Error>(self, k: &str) -> std::result::Result<Self::Value, E> {
            Ok(self.0.contains(k).then(|| k.to_string()))
        }
    }
    impl<'de> DeserializeSeed<'de> for Key<'_> {
        type Value = Option<String>;
        fn deserialize<D: Deserializer<'de>>(
            self,
            d: D,
        ) -> std::result::Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl<'de> DeserializeSeed<'de> for Only<'_> {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Only(fields).deserialize(&mut de).map_err(not_json)?;
    de.end().map_err(not_json)?;
    Ok(v)
}

impl Db {
    /// The collection `name`, created if it does not exist (writing to a
    /// collection creates it, so this is also how one is created).
    ///
    /// Errors: [`Error::InvalidArgument`] (a name of 0 or more than 200
    /// bytes), [`Error::Closed`], [`Error::Poisoned`], [`Error::Io`].
    pub fn collection(&self, name: &str) -> Result<Collection> {
        Collection::open(self, name, true).map(|(c, _)| c)
    }

    /// Create the collection `name` if missing (idempotent); the same as
    /// [`Db::collection`].
    pub fn create_collection(&self, name: &str) -> Result<Collection> {
        self.collection(name)
    }

    /// The existing collection `name`. Errors: [`Error::NotFound`], and as
    /// [`Db::collection`].
    pub fn open_collection(&self, name: &str) -> Result<Collection> {
        Collection::open(self, name, false).map(|(c, _)| c)
    }

    /// The names of every collection, sorted bytewise.
    /// Errors: [`Error::Closed`].
    pub fn list_collections(&self) -> Result<Vec<String>> {
        Ok(self
            .list_keyspaces()?
            .into_iter()
            .filter_map(|k| k.strip_prefix(DOCS).map(str::to_string))
            .collect())
    }

    /// Drop collection `name` if it exists and holds no document (its
    /// indexes and counters go with it); returns whether it was dropped.
    /// For a caller whose write created the collection and then failed:
    /// calling this leaves nothing behind. It runs under the document write
    /// lock, so a document another thread inserted meanwhile keeps the
    /// collection. (The C, Go and Python writes do this themselves.)
    ///
    /// Errors: as [`Db::drop_collection`].
    pub fn drop_collection_if_empty(&self, name: &str) -> Result<bool> {
        self.drop_collection_where(name, |docs| Ok(docs.len()? == 0))
    }

    /// Drop the collection `name`: its documents, indexes and counters.
    /// Returns whether it existed. The documents disappear atomically (one
    /// keyspace drop); its index and counter keyspaces are dropped next,
    /// and any a crash left behind are dropped when a collection of that
    /// name is created again. Handles to it fail with [`Error::NotFound`].
    ///
    /// Errors: [`Error::InvalidArgument`] (bad name), [`Error::Closed`],
    /// [`Error::Poisoned`], [`Error::Io`].
    pub fn drop_collection(&self, name: &str) -> Result<bool> {
        self.drop_collection_where(name, |_| Ok(true))
    }

    /// Drop collection `name` if it exists and `keep_going` says so of its
    /// documents keyspace, under the document write lock; returns whether
    /// it was dropped.
    fn drop_collection_where(
        &self,
        name: &str,
        keep_going: impl FnOnce(&Keyspace) -> Result<bool>,
    ) -> Result<bool> {
        check_collection_name(name)?;
        let lock = self.attached::<WriteLock>();
        let _w = lock.0.lock();
        let docs_name = format!("{DOCS}{name}");
        let go = match self.open_keyspace(&docs_name) {
            Ok(docs) => keep_going(&docs)?,
            // Missing: still drop what an interrupted drop left behind.
            Err(_) => true,
        };
        if !go {
            return Ok(false);
        }
        let existed = self.drop_keyspace(&docs_name)?;
        self.drop_keyspace(&format!("{INDEX}{name}"))?;
        self.drop_keyspace(&format!("{META}{name}"))?;
        Ok(existed)
    }
}

/// A collection of JSON documents in a [`Db`]. Get one with
/// [`Db::collection`].
///
/// Documents are JSON objects with a string `_id` (assigned from a durable
/// per-collection counter when absent: `"1"`, `"2"`, ...). Every write is
/// one atomic batch with its index entries and follows the store's
/// durability level.
///
/// Errors common to every method: [`Error::Closed`]; [`Error::NotFound`]
/// once the collection is dropped; for writes [`Error::Poisoned`] and
/// [`Error::Io`] as for [`Keyspace::set`].
#[derive(Clone)]
pub struct Collection {
    db: Db,
    lock: Arc<WriteLock>,
    name: Arc<str>,
    docs: Keyspace,
    idx: Keyspace,
    meta: Keyspace,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("name", &self.name)
            .finish()
    }
}

impl Collection {
    /// The collection, and whether this call created it.
    fn open(db: &Db, name: &str, create: bool) -> Result<(Collection, bool)> {
        check_collection_name(name)?;
        let docs_name = format!("{DOCS}{name}");
        let (idx_name, meta_name) = (format!("{INDEX}{name}"), format!("{META}{name}"));
        let open = |docs: Keyspace| -> Result<Collection> {
            Ok(Collection {
                db: db.clone(),
                lock: db.attached::<WriteLock>(),
                name: name.into(),
                docs,
                idx: db.keyspace(&idx_name)?,
                meta: db.keyspace(&meta_name)?,
            })
        };
        if let Ok(docs) = db.open_keyspace(&docs_name) {
            return Ok((open(docs)?, false));
        }
        if !create {
            return Err(Error::NotFound(format!("no collection named {name:?}")));
        }
        let lock = db.attached::<WriteLock>();
        let _w = lock.0.lock();
        if let Ok(docs) = db.open_keyspace(&docs_name) {
            return Ok((open(docs)?, false));
        }
        // Leftovers of a drop that a crash interrupted start over empty.
        db.drop_keyspace(&idx_name)?;
        db.drop_keyspace(&meta_name)?;
        db.keyspace(&idx_name)?;
        db.keyspace(&meta_name)?;
        // The documents keyspace last: the collection exists once it does.
        let docs = db.keyspace(&docs_name)?;
        Ok((open(docs)?, true))
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The document with id `id`, or `None`.
    ///
    /// Errors: [`Error::InvalidArgument`] (an empty id), and the common
    /// ones.
    pub fn get(&self, id: &str) -> Result<Option<Value>> {
        if id.is_empty() {
            return Err(Error::InvalidArgument("empty document id".into()));
        }
        self.docs
            .get_with(id_key(id), |b| b.map(parse_doc).transpose())?
    }

    /// Document `id` as its stored JSON text (compact, as `serde_json`
    /// writes it), without parsing it: for callers that pass JSON on (the
    /// C, Go and Python `get` return these bytes). Errors as
    /// [`Collection::get`].
    pub fn get_json(&self, id: &str) -> Result<Option<Vec<u8>>> {
        if id.is_empty() {
            return Err(Error::InvalidArgument("empty document id".into()));
        }
        self.docs.get(id_key(id))
    }

    /// Insert `doc` (a JSON object) and return its id: its `_id` (a
    /// string), or the next automatic id.
    ///
    /// Errors: [`Error::DuplicateKey`] (the `_id` exists, or a unique index
    /// already holds one of its values), [`Error::InvalidArgument`] (not an
    /// object, an `_id` that is not a non-empty string, a document larger
    /// than the store's `max_value_size`), and the common ones. On error
    /// nothing is written.
    pub fn insert(&self, doc: Value) -> Result<String> {
        let mut ids = self.insert_many(vec![doc])?;
        Ok(ids.pop().unwrap_or_default())
    }

    /// Insert every document of `docs` in one atomic batch, or none of
    /// them; returns their ids in order. Errors as [`Collection::insert`]
    /// (also for two documents of the call that collide).
    pub fn insert_many(&self, docs: Vec<Value>) -> Result<Vec<String>> {
        let _w = self.lock.0.lock();
        let mut tx = Txn::begin(self)?;
        let mut ids = Vec::with_capacity(docs.len());
        for mut doc in docs {
            let Value::Object(o) = &mut doc else {
                return Err(Error::InvalidArgument("a document is a JSON object".into()));
            };
            let id = match o.get("_id") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(_) => {
                    return Err(Error::InvalidArgument(
                        "_id must be a non-empty string".into(),
                    ))
                }
                None => {
                    let id = tx.next_auto_id()?;
                    o.insert("_id".into(), Value::String(id.clone()));
                    id
                }
            };
            if tx.exists(&id)? {
                return Err(Error::DuplicateKey(format!(
                    "a document with _id {id:?} exists in {:?}",
                    self.name
                )));
            }
            tx.put(&id, None, Some(doc))?;
            ids.push(id);
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Delete the document `id`; returns whether it existed.
    /// Errors: [`Error::InvalidArgument`] (empty id), and the common ones.
    pub fn delete(&self, id: &str) -> Result<bool> {
        let _w = self.lock.0.lock();
        let mut tx = Txn::begin(self)?;
        let Some(old) = tx.current(id)? else {
            return Ok(false);
        };
        tx.put(id, Some(&old), None)?;
        tx.commit()?;
        Ok(true)
    }

    /// Apply the JSON merge patch (RFC 7396) `patch` to document `id` and
    /// return the new document.
    ///
    /// Errors: [`Error::NotFound`] (no such document),
    /// [`Error::InvalidArgument`] (the patch is not an object, or changes
    /// `_id`), [`Error::DuplicateKey`] (a unique index), and the common
    /// ones. On error nothing is written.
    pub fn update(&self, id: &str, patch: &Value) -> Result<Value> {
        let mut out = self.update_many(&[(id.to_string(), patch.clone())])?;
        Ok(out.pop().unwrap_or(Value::Null))
    }

    /// Apply the update operators `ops` (`$set $unset $inc $mul $min $max
    /// $rename $push $pull`, see `docs/documents.md`) to document `id` and return
    /// the new document. Errors as [`Collection::update`].
    pub fn update_with(&self, id: &str, ops: &Value) -> Result<Value> {
        let _w = self.lock.0.lock();
        let mut tx = Txn::begin(self)?;
        let old = tx.existing(id)?;
        let mut doc = old.clone();
        update::apply_ops(&mut doc, ops)?;
        tx.put(id, Some(&old), Some(doc.clone()))?;
        tx.commit()?;
        Ok(doc)
    }

    /// Merge-patch several documents in one atomic batch: every id is
    /// checked first; one missing id or bad patch fails the whole call and
    /// changes nothing. Returns the new documents in order.
    /// Errors as [`Collection::update`].
    pub fn update_many(&self, patches: &[(String, Value)]) -> Result<Vec<Value>> {
        let _w = self.lock.0.lock();
        let mut tx = Txn::begin(self)?;
        let mut out = Vec::with_capacity(patches.len());
        for (id, patch) in patches {
            if !patch.is_object() {
                return Err(Error::InvalidArgument(
                    "a merge patch is a JSON object".into(),
                ));
            }
            let old = tx.existing(id)?;
            let mut doc = old.clone();
            update::merge_patch(&mut doc, patch);
            if doc.get("_id") != Some(&Value::String(id.clone())) {
                return Err(Error::InvalidArgument("_id cannot be changed".into()));
            }
            tx.put(id, Some(&old), Some(doc.clone()))?;
            out.push(doc);
        }
        tx.commit()?;
        Ok(out)
    }

    /// Replace document `id` with `doc` (its `_id`, if present, must equal
    /// `id`). Without `upsert` the document must exist
    /// ([`Error::NotFound`]); with it, a missing one is inserted. Returns
    /// whether a document was replaced (false: inserted). Errors as
    /// [`Collection::update`].
    pub fn replace(&self, id: &str, mut doc: Value, upsert: bool) -> Result<bool> {
        let Value::Object(o) = &mut doc else {
            return Err(Error::InvalidArgument("a document is a JSON object".into()));
        };
        match o.get("_id") {
            None => {
                o.insert("_id".into(), Value::String(id.to_string()));
            }
            Some(Value::String(s)) if s == id => {}
            Some(_) => return Err(Error::InvalidArgument("_id cannot be changed".into())),
        }
        let _w = self.lock.0.lock();
        let mut tx = Txn::begin(self)?;
        let old = tx.current(id)?;
        let existed = old.is_some();
        if !existed && !upsert {
            return Err(Error::NotFound(format!("no document with _id {id:?}")));
        }
        tx.put(id, old.as_ref(), Some(doc))?;
        tx.commit()?;
        Ok(existed)
    }

    /// Create an index on the dotted `path` over the existing documents,
    /// in one atomic batch; idempotent if the same index exists.
    ///
    /// Errors: [`Error::DuplicateKey`] (`unique` and two documents share a
    /// value: nothing is written), [`Error::InvalidArgument`] (a bad path,
    /// `_id`, or an index of the path exists with the other `unique`
    /// setting), and the common ones.
    pub fn create_index(&self, path: &str, unique: bool) -> Result<()> {
        check_path(path)?;
        if path == "_id" {
            return Err(Error::InvalidArgument("_id is always indexed".into()));
        }
        let _w = self.lock.0.lock();
        if let Some(i) = self.index_info(path)? {
            if i.unique == unique {
                return Ok(());
            }
            return Err(Error::InvalidArgument(format!(
                "an index on {path:?} exists with unique = {}",
                i.unique
            )));
        }
        let mut batch = WriteBatch::new();
        let mut multikey = false;
        let mut seen: HashMap<Vec<u8>, String> = HashMap::new();
        for item in self.docs.iter() {
            let (_, bytes) = item?;
            let doc = parse_doc(&bytes)?;
            let id = doc_id(&doc)?;
            let (vals, multi) = order::index_values(&doc, path);
            multikey |= multi;
            for v in vals {
                if unique && is_unique_checked(&v) {
                    if let Some(other) = seen.insert(v.clone(), id.clone()) {
                        return Err(Error::DuplicateKey(format!(
                            "documents {other:?} and {id:?} share a value at {path:?}"
                        )));
                    }
                }
                batch.put_in(&self.idx, index_key(path, &v, &id), id.as_bytes());
            }
        }
        let info = IndexInfo {
            path: path.to_string(),
            unique,
            multikey,
        };
        batch.put_in(&self.meta, index_meta_key(path), index_meta_value(&info));
        self.db.write(batch)
    }

    /// Drop the index on `path` and its entries in one atomic batch;
    /// returns whether it existed. Errors: [`Error::InvalidArgument`] (bad
    /// path or `_id`), and the common ones.
    pub fn drop_index(&self, path: &str) -> Result<bool> {
        check_path(path)?;
        if path == "_id" {
            return Err(Error::InvalidArgument(
                "the _id index cannot be dropped".into(),
            ));
        }
        let _w = self.lock.0.lock();
        if self.index_info(path)?.is_none() {
            return Ok(false);
        }
        let mut batch = WriteBatch::new();
        for item in self.idx.prefix(index_prefix(path)) {
            let (k, _) = item?;
            batch.delete_in(&self.idx, k);
        }
        batch.delete_in(&self.meta, index_meta_key(path));
        self.db.write(batch)?;
        Ok(true)
    }

    /// Every index, `_id` first, then by path.
    pub fn list_indexes(&self) -> Result<Vec<IndexInfo>> {
        let mut out = vec![IndexInfo::primary()];
        out.extend(self.secondary_indexes()?);
        Ok(out)
    }

    fn secondary_indexes(&self) -> Result<Vec<IndexInfo>> {
        let mut out = Vec::new();
        for item in self.meta.prefix(INDEX_META) {
            let (k, v) = item?;
            let path = String::from_utf8_lossy(&k[INDEX_META.len()..]).into_owned();
            out.push(parse_index_meta(path, &v)?);
        }
        Ok(out)
    }

    fn index_info(&self, path: &str) -> Result<Option<IndexInfo>> {
        match self.meta.get(index_meta_key(path))? {
            Some(v) => parse_index_meta(path.to_string(), &v).map(Some),
            None => Ok(None),
        }
    }

    /// Documents, bytes, indexes and index entries.
    pub fn stats(&self) -> Result<CollectionStats> {
        let d = self.docs.stats()?;
        Ok(CollectionStats {
            documents: d.keys,
            bytes: d.value_bytes,
            indexes: self.secondary_indexes()?.len() as u64,
            index_entries: self.idx.len()?,
        })
    }

    /// Check every index against the documents: each document has exactly
    /// its entries in every index, and every entry points at a document
    /// with that value. Returns the problems found (empty: consistent).
    /// Errors: the common ones.
    pub fn check(&self) -> Result<Vec<String>> {
        let indexes = self.secondary_indexes()?;
        agreement(
            &indexes,
            self.docs.iter(),
            self.idx.iter().map(|i| i.map(|(k, _)| k)),
        )
    }
}

/// The check of [`Collection::check`] over a collection's documents (id
/// key, JSON text) and index keys, each in key order.
pub(crate) fn agreement(
    indexes: &[IndexInfo],
    docs: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
    index_keys: impl Iterator<Item = Result<Vec<u8>>>,
) -> Result<Vec<String>> {
    let mut want: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut problems = Vec::new();
    for item in docs {
        let (k, bytes) = item?;
        let (id, doc) = match parse_doc(&bytes).and_then(|d| Ok((doc_id(&d)?, d))) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("document at key {}: {e}", hex(&k)));
                continue;
            }
        };
        if id_key(&id) != k {
            problems.push(format!("document {id:?} is stored under another id's key"));
        }
        for ix in indexes {
            for v in order::index_values(&doc, &ix.path).0 {
                want.insert(index_key(&ix.path, &v, &id));
            }
        }
    }
    let mut have = BTreeSet::new();
    for k in index_keys {
        have.insert(k?);
    }
    for k in want.difference(&have) {
        problems.push(format!("index entry missing: {}", hex(k)));
    }
    for k in have.difference(&want) {
        problems.push(format!(
            "index entry without its document value: {}",
            hex(k)
        ));
    }
    Ok(problems)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn doc_id(doc: &Value) -> Result<String> {
    match doc.get("_id") {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(Error::InvalidArgument(
            "a stored document has no string _id".into(),
        )),
    }
}

/// Whether a unique index checks this value (missing and null are exempt).
fn is_unique_checked(v: &[u8]) -> bool {
    v != order::encode(None) && v != order::encode(Some(&Value::Null))
}

/// `path` as a string payload: the prefix of its index's entries.
fn index_prefix(path: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(path.len() + 2);
    order::push_string(&mut p, path.as_bytes());
    p
}

fn index_key(path: &str, value: &[u8], id: &str) -> Vec<u8> {
    let mut k = index_prefix(path);
    k.extend_from_slice(value);
    k.extend_from_slice(&id_key(id));
    k
}

fn index_meta_key(path: &str) -> Vec<u8> {
    format!("{INDEX_META}{path}").into_bytes()
}

fn index_meta_value(i: &IndexInfo) -> Vec<u8> {
    serde_json::json!({"unique": i.unique, "multikey": i.multikey})
        .to_string()
        .into_bytes()
}

pub(crate) fn parse_index_meta(path: String, v: &[u8]) -> Result<IndexInfo> {
    let m: Value = serde_json::from_slice(v)
        .map_err(|e| Error::InvalidArgument(format!("index metadata of {path:?}: {e}")))?;
    Ok(IndexInfo {
        unique: m.get("unique").and_then(Value::as_bool).unwrap_or(false),
        multikey: m.get("multikey").and_then(Value::as_bool).unwrap_or(false),
        path,
    })
}

/// One write operation of a collection under its write lock: the batch
/// being built, the documents it changes, and the unique values it claims.
struct Txn<'a> {
    coll: &'a Collection,
    batch: WriteBatch,
    indexes: Vec<IndexInfo>,
    /// New versions of the documents this operation writes (None: deleted).
    pending: HashMap<String, Option<Value>>,
    /// Unique index values claimed by pending documents: (index, value) -> id.
    claimed: HashMap<(usize, Vec<u8>), String>,
    /// The same claims by document, so a document written twice in one
    /// operation releases its own claims without a scan of all of them.
    claims_of: HashMap<String, Vec<(usize, Vec<u8>)>>,
    next_id: Option<u64>,
    multikey_changed: bool,
}

impl<'a> Txn<'a> {
    fn begin(coll: &'a Collection) -> Result<Txn<'a>> {
        Ok(Txn {
            coll,
            batch: WriteBatch::new(),
            indexes: coll.secondary_indexes()?,
            pending: HashMap::new(),
            claimed: HashMap::new(),
            claims_of: HashMap::new(),
            next_id: None,
            multikey_changed: false,
        })
    }

    /// The document as this operation sees it.
    fn current(&self, id: &str) -> Result<Option<Value>> {
        if id.is_empty() {
            return Err(Error::InvalidArgument("empty document id".into()));
        }
        match self.pending.get(id) {
            Some(d) => Ok(d.clone()),
            None => self.coll.get(id),
        }
    }

    /// Whether document `id` exists as this operation sees it (without
    /// reading it).
    fn exists(&self, id: &str) -> Result<bool> {
        if id.is_empty() {
            return Err(Error::InvalidArgument("empty document id".into()));
        }
        match self.pending.get(id) {
            Some(d) => Ok(d.is_some()),
            None => self.coll.docs.contains(id_key(id)),
        }
    }

    fn existing(&self, id: &str) -> Result<Value> {
        self.current(id)?
            .ok_or_else(|| Error::NotFound(format!("no document with _id {id:?}")))
    }

    /// The next automatic id: the counter, skipping ids already taken.
    fn next_auto_id(&mut self) -> Result<String> {
        let mut n = match self.next_id {
            Some(n) => n,
            None => match self.coll.meta.get(NEXT_ID)? {
                Some(b) if b.len() == 8 => u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])),
                _ => 1,
            },
        };
        loop {
            let id = n.to_string();
            n += 1;
            if !self.exists(&id)? {
                self.next_id = Some(n);
                return Ok(id);
            }
        }
    }

    /// Write `new` as document `id` (None: delete) over `old` (what
    /// [`Txn::current`] returned for it), with its index changes.
    fn put(&mut self, id: &str, old: Option<&Value>, new: Option<Value>) -> Result<()> {
        let c = self.coll;
        if let Some(d) = &new {
            limits::check_document(d)?;
        }
        for k in self.claims_of.remove(id).unwrap_or_default() {
            self.claimed.remove(&k);
        }
        for (i, ix) in self.indexes.iter_mut().enumerate() {
            let (old_vals, _) = match old {
                Some(d) => order::index_values(d, &ix.path),
                None => (Vec::new(), false),
            };
            let (new_vals, multi) = match &new {
                Some(d) => order::index_values(d, &ix.path),
                None => (Vec::new(), false),
            };
            if multi && !ix.multikey {
                ix.multikey = true;
                self.multikey_changed = true;
            }
            // Sets, not list scans: an indexed array of 40k elements costs
            // O(n), not O(n^2), under the document write lock.
            let old_set: HashSet<&[u8]> = old_vals.iter().map(Vec::as_slice).collect();
            for v in &new_vals {
                if ix.unique && is_unique_checked(v) {
                    if let Some(other) = self.claimed.get(&(i, v.clone())) {
                        return Err(duplicate(&ix.path, other, id));
                    }
                    for item in c.idx.prefix([index_prefix(&ix.path), v.clone()].concat()) {
                        let (_, owner) = item?;
                        let owner = String::from_utf8_lossy(&owner).into_owned();
                        if owner != id && !self.pending.contains_key(&owner) {
                            return Err(duplicate(&ix.path, &owner, id));
                        }
                    }
                    self.claimed.insert((i, v.clone()), id.to_string());
                    self.claims_of
                        .entry(id.to_string())
                        .or_default()
                        .push((i, v.clone()));
                }
                if !old_set.contains(v.as_slice()) {
                    self.batch
                        .put_in(&c.idx, index_key(&ix.path, v, id), id.as_bytes());
                }
            }
            let new_set: HashSet<&[u8]> = new_vals.iter().map(Vec::as_slice).collect();
            for v in old_vals.iter().filter(|v| !new_set.contains(v.as_slice())) {
                self.batch.delete_in(&c.idx, index_key(&ix.path, v, id));
            }
        }
        match &new {
            Some(d) => {
                let bytes = serde_json::to_vec(d)
                    .map_err(|e| Error::InvalidArgument(format!("document: {e}")))?;
                self.batch.put_in(&c.docs, id_key(id), bytes)
            }
            None => self.batch.delete_in(&c.docs, id_key(id)),
        };
        self.pending.insert(id.to_string(), new);
        Ok(())
    }

    fn commit(mut self) -> Result<()> {
        let c = self.coll;
        if let Some(n) = self.next_id {
            self.batch.put_in(&c.meta, NEXT_ID, n.to_le_bytes());
        }
        if self.multikey_changed {
            for ix in &self.indexes {
                self.batch
                    .put_in(&c.meta, index_meta_key(&ix.path), index_meta_value(ix));
            }
        }
        c.db.write(self.batch)
    }
}

fn duplicate(path: &str, other: &str, id: &str) -> Error {
    Error::DuplicateKey(format!(
        "unique index {path:?}: document {id:?} has a value document {other:?} already has"
    ))
}

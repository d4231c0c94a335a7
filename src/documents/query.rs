//! `find`, `count`, `find_iter` and `explain`: planning (an index or a
//! collection scan), sorting, projection and pagination with cursors.

use super::filter::{self, Cond, Filter, Ranges};
use super::order;
use super::{id_key, index_prefix, parse_doc, parse_fields, Collection, IndexInfo};
use crate::error::{Error, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::ops::Bound;

/// Default page size of [`Collection::find`].
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
pub const MAX_LIMIT: i64 = 1000;

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Smallest first, in the order of `docs/documents.md` ("Order of values").
    Asc,
    /// Largest first.
    Desc,
}

/// Options of [`Collection::find`].
///
/// JSON form (for C, Go, Python and the CLI), every member optional:
/// `{"sort": ["-age", "name"] | [["age", -1]] | {"age": -1}, "projection":
/// {"name": 1} | {"big": 0}, "limit": 50, "offset": 0, "after": cursor,
/// "before": cursor}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindOptions {
    /// Sort fields, most significant first; ties (and an empty list) go
    /// by `_id`.
    pub sort: Vec<(String, SortOrder)>,
    /// Fields to include (`{"a": 1}`, `_id` kept unless `"_id": 0`) or to
    /// exclude (`{"a": 0}`); dotted paths allowed.
    pub projection: Option<Value>,
    /// Page size: default 50, 0 to 1000.
    pub limit: Option<i64>,
    /// Matches to skip before the page (not with a cursor).
    pub offset: Option<i64>,
    /// Return the page after this cursor (a `next_cursor`).
    pub after: Option<String>,
    /// Return the page before this cursor (a `prev_cursor`).
    pub before: Option<String>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

impl FindOptions {
    /// Parse the JSON form (see the type's docs; `null` is the default).
    /// Errors: [`Error::InvalidArgument`] for anything else.
    pub fn from_json(v: &Value) -> Result<FindOptions> {
        let mut o = FindOptions::default();
        let m = match v {
            Value::Null => return Ok(o),
            Value::Object(m) => m,
            _ => return Err(bad("find options are a JSON object")),
        };
        for (k, v) in m {
            match k.as_str() {
                "sort" => o.sort = parse_sort(v)?,
                "projection" => o.projection = Some(v.clone()),
                "limit" | "offset" => {
                    let n = v
                        .as_i64()
                        .ok_or_else(|| bad(format!("{k} is an integer")))?;
                    if k == "limit" {
                        o.limit = Some(n);
                    } else {
                        o.offset = Some(n);
                    }
                }
                "after" | "before" => {
                    let s = v
                        .as_str()
                        .ok_or_else(|| bad(format!("{k} is a cursor string")))?
                        .to_string();
                    if k == "after" {
                        o.after = Some(s);
                    } else {
                        o.before = Some(s);
                    }
                }
                other => return Err(bad(format!("unknown find option {other:?}"))),
            }
        }
        Ok(o)
    }

    /// Sort by `path` in `order` after the fields already given.
    pub fn sort_by(mut self, path: &str, order: SortOrder) -> FindOptions {
        self.sort.push((path.to_string(), order));
        self
    }

    /// Set the page size.
    pub fn limit(mut self, n: i64) -> FindOptions {
        self.limit = Some(n);
        self
    }

    /// Set the offset.
    pub fn offset(mut self, n: i64) -> FindOptions {
        self.offset = Some(n);
        self
    }

    /// Set the `after` cursor.
    pub fn after(mut self, cursor: &str) -> FindOptions {
        self.after = Some(cursor.to_string());
        self
    }

    /// Set the `before` cursor.
    pub fn before(mut self, cursor: &str) -> FindOptions {
        self.before = Some(cursor.to_string());
        self
    }

    /// Set the projection.
    pub fn projection(mut self, p: Value) -> FindOptions {
        self.projection = Some(p);
        self
    }

    fn check(&self) -> Result<(usize, usize)> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        let offset = self.offset.unwrap_or(0);
        if !(0..=MAX_LIMIT).contains(&limit) {
            return Err(bad(format!("limit {limit} (0 to {MAX_LIMIT} allowed)")));
        }
        if offset < 0 {
            return Err(bad(format!("negative offset {offset}")));
        }
        if (self.after.is_some() || self.before.is_some()) && offset > 0 {
            return Err(bad("a cursor and an offset cannot be combined"));
        }
        if self.after.is_some() && self.before.is_some() {
            return Err(bad("give `after` or `before`, not both"));
        }
        for (p, _) in &self.sort {
            super::limits::check_field_path(p, "sort")?;
        }
        if let Some(p) = &self.projection {
            projection_mode(p)?;
        }
        Ok((limit as usize, offset as usize))
    }

    /// A fingerprint of the sort, carried in cursors so that a cursor is
    /// refused under another sort.
    fn sort_tag(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        for (p, o) in &self.sort {
            h.update(p.as_bytes());
            h.update(&[0, (*o == SortOrder::Desc) as u8]);
        }
        h.finalize()
    }
}

fn parse_sort(v: &Value) -> Result<Vec<(String, SortOrder)>> {
    let dir = |n: &Value| match n.as_i64() {
        Some(1) => Ok(SortOrder::Asc),
        Some(-1) => Ok(SortOrder::Desc),
        _ => Err(bad("a sort direction is 1 or -1")),
    };
    let one = |v: &Value| -> Result<(String, SortOrder)> {
        match v {
            Value::String(s) => Ok(match s.strip_prefix('-') {
                Some(p) => (p.to_string(), SortOrder::Desc),
                None => (s.trim_start_matches('+').to_string(), SortOrder::Asc),
            }),
            Value::Array(a) if a.len() == 2 => match &a[0] {
                Value::String(p) => Ok((p.clone(), dir(&a[1])?)),
                _ => Err(bad("a sort pair is [path, 1 or -1]")),
            },
            _ => Err(bad("a sort field is \"path\", \"-path\" or [path, -1]")),
        }
    };
    match v {
        Value::Array(a) => a.iter().map(one).collect(),
        Value::Object(o) if o.len() <= 1 => {
            o.iter().map(|(p, d)| Ok((p.clone(), dir(d)?))).collect()
        }
        Value::Object(_) => Err(bad(
            "sort by several fields is a list: [\"-age\", \"name\"] (object members have no order)",
        )),
        Value::String(_) => Ok(vec![one(v)?]),
        _ => Err(bad("sort is a list of fields")),
    }
}

/// A page of [`Collection::find`] results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The documents of this page, in sort order, projected.
    pub docs: Vec<Value>,
    /// Matching documents in all.
    pub total: u64,
    /// Whether matches follow this page.
    pub has_next: bool,
    /// Whether matches precede this page.
    pub has_prev: bool,
    /// Pass as `after` for the next page (set when `has_next`).
    pub next_cursor: Option<String>,
    /// Pass as `before` for the previous page (set when `has_prev`).
    pub prev_cursor: Option<String>,
}

impl Page {
    /// The page every query of a collection that does not exist returns:
    /// no documents, nothing before or after.
    pub fn empty() -> Page {
        Page {
            docs: Vec::new(),
            total: 0,
            has_next: false,
            has_prev: false,
            next_cursor: None,
            prev_cursor: None,
        }
    }

    /// The JSON form: `{"docs": [...], "total": n, "has_next": b,
    /// "has_prev": b, "next_cursor": s|null, "prev_cursor": s|null}`.
    pub fn to_json(&self) -> Value {
        json!({
            "docs": self.docs,
            "total": self.total,
            "has_next": self.has_next,
            "has_prev": self.has_prev,
            "next_cursor": self.next_cursor,
            "prev_cursor": self.prev_cursor,
        })
    }
}

/// How [`Collection::find`] will run a query (from
/// [`Collection::explain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The index used to narrow the filter, or `None` for a collection
    /// scan.
    pub index: Option<String>,
    /// Key ranges read in that index.
    pub ranges: usize,
    /// Entries it will read: index entries, or documents for a scan.
    pub entries: u64,
    /// `"_id"` when results come in `_id` order without sorting,
    /// `"index"` when the index lists the matches in the sort's order
    /// (only the page's documents are read), `"memory"` when the matches
    /// are sorted after the filter.
    pub sort: &'static str,
}

impl Plan {
    /// The plan of any query of a collection that does not exist: a scan
    /// of no documents, in `_id` order.
    pub fn empty() -> Plan {
        Plan {
            index: None,
            ranges: 0,
            entries: 0,
            sort: "_id",
        }
    }

    /// The JSON form: `{"plan": "index"|"collection_scan", "index":
    /// path|null, "ranges": n, "entries": n, "sort": "_id"|"index"|"memory"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "plan": if self.index.is_some() { "index" } else { "collection_scan" },
            "index": self.index,
            "ranges": self.ranges,
            "entries": self.entries,
            "sort": self.sort,
        })
    }
}

enum Source {
    /// An index narrows the filter: the id keys of its entries in the
    /// filter's ranges (each once, in id order).
    Index(IndexInfo, usize, Vec<Vec<u8>>),
    Scan,
}

/// A result row of `find`: sort key, id key, and the stored text if the
/// plan already read it.
type Row = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);

/// A matching document: its id key, its stored JSON text, and the members
/// the filter and sort read (see `parse_fields`).
struct Match {
    key: Vec<u8>,
    raw: Vec<u8>,
    fields: Value,
}

fn key_bounds(
    prefix: &[u8],
    r: &(Bound<Vec<u8>>, Bound<Vec<u8>>),
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let cat = |e: &[u8]| [prefix, e].concat();
    let succ = |k: Vec<u8>| crate::kv::prefix_successor(&k).unwrap_or(k);
    let lo = match &r.0 {
        Bound::Included(e) => Bound::Included(cat(e)),
        Bound::Excluded(e) => Bound::Included(succ(cat(e))),
        Bound::Unbounded => Bound::Included(prefix.to_vec()),
    };
    let hi = match &r.1 {
        Bound::Included(e) => Bound::Excluded(succ(cat(e))),
        Bound::Excluded(e) => Bound::Excluded(cat(e)),
        Bound::Unbounded => Bound::Excluded(succ(prefix.to_vec())),
    };
    (lo, hi)
}

fn as_slices(b: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (b.0.as_ref().map(|v| &v[..]), b.1.as_ref().map(|v| &v[..]))
}

/// The top-level members a filter or sort reads (the first segment of
/// each path).
fn top_fields(f: &Filter, sort: &[(String, SortOrder)], out: &mut BTreeSet<String>) {
    let mut add = |p: &str| {
        out.insert(p.split('.').next().unwrap_or(p).to_string());
    };
    for (p, _) in sort {
        add(p);
    }
    fn walk(f: &Filter, add: &mut dyn FnMut(&str)) {
        match f {
            Filter::And(l) | Filter::Or(l) => l.iter().for_each(|f| walk(f, add)),
            Filter::Not(f) => walk(f, add),
            Filter::Path(p, _) => add(p),
        }
    }
    walk(f, &mut add);
}

/// The index ranges that hold exactly the documents `f` matches, when `f`
/// only has conditions on `path` that an index answers exactly (one
/// equality, one `$in`, or range operators, on booleans, numbers or
/// strings; on a `multikey` index, one condition only), or no condition at
/// all. An index on `path` that is not multikey then lists exactly the
/// matches, in sort order.
fn exact_ranges(f: &Filter, path: &str, multikey: bool) -> Option<Ranges> {
    let conjuncts: Vec<&Filter> = match f {
        Filter::And(list) => list.iter().collect(),
        other => vec![other],
    };
    let mut conds = Vec::new();
    for c in conjuncts {
        match c {
            Filter::Path(p, cs) if p == path => conds.extend(cs.iter().cloned()),
            _ => return None,
        }
    }
    if conds.is_empty() {
        return Some(vec![(Bound::Unbounded, Bound::Unbounded)]);
    }
    let exact = match conds.as_slice() {
        [Cond::Eq(v)] => filter::indexable(v),
        [Cond::In(vs)] => vs.iter().all(filter::indexable),
        // Several ranges bound one value only where each document has one
        // (see `filter::index_ranges`).
        cs if multikey && cs.len() > 1 => false,
        cs => cs.iter().all(|c| match c {
            Cond::Gt(v) | Cond::Gte(v) | Cond::Lt(v) | Cond::Lte(v) => filter::indexable(v),
            _ => false,
        }),
    };
    if exact {
        filter::index_ranges(&conds, multikey)
    } else {
        None
    }
}

/// The one path all of `f`'s conditions are on, if they are all on one.
fn single_path(f: &Filter) -> Option<&str> {
    match f {
        Filter::Path(p, _) => Some(p),
        Filter::And(list) => {
            let first = single_path(list.first()?)?;
            list.iter()
                .all(|c| matches!(c, Filter::Path(p, _) if p == first))
                .then_some(first)
        }
        _ => None,
    }
}

impl Collection {
    /// The index that narrows `f` to the fewest entries, with the id keys
    /// of those entries, or a collection scan.
    fn plan(&self, f: &Filter) -> Result<(Source, u64)> {
        let docs = self.docs.len()?;
        let conjuncts: Vec<&Filter> = match f {
            Filter::And(list) => list.iter().collect(),
            other => vec![other],
        };
        // The primary index: `_id` equality or `$in` names the documents
        // themselves (ids are strings, so other values match nothing).
        for c in &conjuncts {
            let Filter::Path(path, conds) = c else {
                continue;
            };
            if path != "_id" {
                continue;
            }
            let ids: Option<Vec<&Value>> = match conds.as_slice() {
                [Cond::Eq(v)] => Some(vec![v]),
                [Cond::In(vs)] => Some(vs.iter().collect()),
                _ => None,
            };
            let Some(ids) = ids else {
                continue;
            };
            let mut keys: Vec<Vec<u8>> = ids
                .iter()
                .filter_map(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(id_key)
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let n = keys.len() as u64;
            return Ok((Source::Index(IndexInfo::primary(), n as usize, keys), n));
        }
        let indexes = self.secondary_indexes()?;
        let mut best: Option<(Source, u64)> = None;
        for c in conjuncts {
            let Filter::Path(path, conds) = c else {
                continue;
            };
            let Some(ix) = indexes.iter().find(|i| &i.path == path) else {
                continue;
            };
            let Some(ranges) = filter::index_ranges(conds, ix.multikey) else {
                continue;
            };
            let prefix = index_prefix(path);
            // Read no further than the cheapest plan so far (or a scan):
            // a candidate that reaches it has lost, however many it has.
            let cap = best.as_ref().map_or(docs, |(_, m)| *m);
            let (mut n, mut ids) = (0u64, Vec::new());
            for r in &ranges {
                let b = key_bounds(&prefix, r);
                self.idx.scan::<[u8], _>(as_slices(&b), |_, id| {
                    n += 1;
                    ids.push(id_key(&String::from_utf8_lossy(id)));
                    n <= cap
                })?;
                if n > cap {
                    break;
                }
            }
            if best.as_ref().is_none_or(|(_, m)| n < *m) {
                ids.sort_unstable();
                ids.dedup();
                best = Some((Source::Index(ix.clone(), ranges.len(), ids), n));
            }
        }
        Ok(match best {
            Some((s, n)) if n <= docs => (s, n),
            _ => (Source::Scan, docs),
        })
    }

    /// Every document matching `f`, in `_id` order, with the members
    /// `fields` names parsed. Documents are decided on where they are
    /// stored (a scan visits them under the store's read lock, released
    /// every few hundred); only matches are copied.
    fn matching(&self, f: &Filter, fields: &BTreeSet<String>) -> Result<Vec<Match>> {
        let mut out = Vec::new();
        let mut consider = |key: &[u8], raw: &[u8]| -> Result<()> {
            let fields = parse_fields(raw, fields)?;
            if filter::matches(f, &fields) {
                out.push(Match {
                    key: key.to_vec(),
                    raw: raw.to_vec(),
                    fields,
                });
            }
            Ok(())
        };
        match self.plan(f)?.0 {
            Source::Scan => {
                let mut err = None;
                self.docs
                    .scan::<[u8], _>(.., |k, raw| match consider(k, raw) {
                        Ok(()) => true,
                        Err(e) => {
                            err = Some(e);
                            false
                        }
                    })?;
                if let Some(e) = err {
                    return Err(e);
                }
            }
            Source::Index(_, _, ids) => {
                for k in ids {
                    self.docs
                        .get_with(&k, |raw| raw.map_or(Ok(()), |r| consider(&k, r)))??;
                }
            }
        }
        Ok(out)
    }

    /// The index that lists exactly `f`'s matches, so that no document
    /// is read to know them: under a filter that index answers exactly
    /// (see `exact_ranges`; no filter at all counts), either a sort by its
    /// one field (the index must not be multikey: it then lists the
    /// matches in sort order) or no sort (`_id` order; any index on the
    /// filter's one path).
    fn listed_plan(
        &self,
        f: &Filter,
        sort: &[(String, SortOrder)],
    ) -> Result<Option<(IndexInfo, Option<SortOrder>, Ranges)>> {
        let (path, dir) = match sort {
            [(path, dir)] => (path.as_str(), Some(*dir)),
            [] => match single_path(f) {
                Some(p) => (p, None),
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        let Some(ix) = self
            .index_info(path)?
            .filter(|ix| dir.is_none() || !ix.multikey)
        else {
            return Ok(None);
        };
        Ok(exact_ranges(f, path, ix.multikey).map(|ranges| (ix, dir, ranges)))
    }

    /// The rows of a listed plan: (sort key, id key), sorted, each
    /// document once.
    fn listed_rows(
        &self,
        ix: &IndexInfo,
        dir: Option<SortOrder>,
        ranges: &Ranges,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        match dir {
            Some(d) => {
                let mut rows = self.index_rows(ix, d, ranges)?;
                if d == SortOrder::Desc {
                    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                }
                Ok(rows)
            }
            None => {
                let mut ids: Vec<Vec<u8>> = self
                    .index_rows(ix, SortOrder::Asc, ranges)?
                    .into_iter()
                    .map(|(_, k)| k)
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                Ok(ids.into_iter().map(|k| (k.clone(), k)).collect())
            }
        }
    }

    /// For a sort plan: every entry in the ranges as (sort key, id key),
    /// without reading a document.
    fn index_rows(
        &self,
        ix: &IndexInfo,
        dir: SortOrder,
        ranges: &Ranges,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let prefix = index_prefix(&ix.path);
        let mut rows = Vec::new();
        for r in ranges {
            let b = key_bounds(&prefix, r);
            self.idx.scan::<[u8], _>(as_slices(&b), |k, id| {
                let idk = id_key(&String::from_utf8_lossy(id));
                let value = &k[prefix.len()..k.len().saturating_sub(idk.len())];
                let mut sk: Vec<u8> = match dir {
                    SortOrder::Asc => value.to_vec(),
                    SortOrder::Desc => value.iter().map(|b| !b).collect(),
                };
                sk.extend_from_slice(&idk);
                rows.push((sk, idk));
                true
            })?;
        }
        Ok(rows)
    }

    /// The matching documents, a page at a time.
    ///
    /// `filter` is the JSON filter of `docs/documents.md` (`{}` or `null`
    /// for all). Results come sorted by `opts.sort` then `_id`; `total`
    /// counts every match. Cursors identify a position in that order (the
    /// sort values and `_id` of a document), so following `next_cursor`
    /// from the first page visits every matching document exactly once,
    /// also when other documents are written between pages (a document
    /// whose sort values change between pages may be seen again or not at
    /// all, as in any keyset pagination).
    ///
    /// Plans (see [`Collection::explain`]): a sort by one field with a
    /// (non-multikey) index, under a filter that index answers exactly (or
    /// none), reads the index in order and only the page's documents.
    /// Otherwise the narrowest index (or a scan) finds the matches, which
    /// are sorted in memory; only the members the filter and sort read are
    /// parsed until a document is on the page.
    ///
    /// Errors: [`Error::InvalidArgument`] (a bad filter or options: a
    /// negative offset, a limit over 1000, a cursor with an offset, a
    /// cursor from another sort), and the common ones.
    pub fn find(&self, filter: &Value, opts: &FindOptions) -> Result<Page> {
        let f = filter::parse(filter)?;
        let (limit, offset) = opts.check()?;
        let tag = opts.sort_tag();
        let mut rows: Vec<Row> = match self.listed_plan(&f, &opts.sort)? {
            Some((ix, dir, ranges)) => self
                .listed_rows(&ix, dir, &ranges)?
                .into_iter()
                .map(|(sk, k)| (sk, k, None))
                .collect(),
            None => {
                let mut fields = BTreeSet::new();
                top_fields(&f, &opts.sort, &mut fields);
                let mut rows: Vec<_> = self
                    .matching(&f, &fields)?
                    .into_iter()
                    .map(|m| {
                        let sk = composite_key(&m.fields, &opts.sort, &m.key);
                        (sk, m.key, Some(m.raw))
                    })
                    .collect();
                if !opts.sort.is_empty() {
                    rows.sort_by(|a, b| a.0.cmp(&b.0));
                }
                rows
            }
        };
        let total = rows.len();
        let (start, end) = if let Some(c) = &opts.after {
            let c = decode_cursor(c, tag)?;
            let s = rows.partition_point(|r| r.0 <= c);
            (s, (s + limit).min(total))
        } else if let Some(c) = &opts.before {
            let c = decode_cursor(c, tag)?;
            let e = rows.partition_point(|r| r.0 < c);
            (e.saturating_sub(limit), e)
        } else {
            let s = offset.min(total);
            (s, (s + limit).min(total))
        };
        let has_prev = start > 0;
        let has_next = end < total;
        let next_cursor = (has_next && end > start).then(|| encode_cursor(tag, &rows[end - 1].0));
        let prev_cursor = has_prev.then(|| match rows.get(start) {
            Some(r) if end > start => encode_cursor(tag, &r.0),
            // An empty page past the end (or of limit 0): the page before
            // it ends with row `start - 1`; the smallest key above that row.
            _ => {
                let mut k = rows[start - 1].0.clone();
                k.push(0);
                encode_cursor(tag, &k)
            }
        });
        let next_cursor = next_cursor.or_else(|| {
            // An empty page in the middle (limit 0): continue from its start.
            (has_next && start > 0).then(|| encode_cursor(tag, &rows[start - 1].0))
        });
        let mut docs = Vec::with_capacity(end - start);
        for (_, key, raw) in rows.drain(start..end) {
            let doc = match raw {
                Some(r) => parse_doc(&r)?,
                // Listed by the index a moment ago; deleted since: skipped.
                None => match self.docs.get_with(&key, |r| r.map(parse_doc))? {
                    Some(d) => d?,
                    None => continue,
                },
            };
            docs.push(project(doc, opts.projection.as_ref())?);
        }
        Ok(Page {
            docs,
            total: total as u64,
            has_next,
            has_prev,
            next_cursor,
            prev_cursor,
        })
    }

    /// The number of matching documents. Errors: [`Error::InvalidArgument`]
    /// (a bad filter), and the common ones.
    pub fn count(&self, filter: &Value) -> Result<u64> {
        let f = filter::parse(filter)?;
        if f == Filter::And(Vec::new()) {
            return self.docs.len();
        }
        if let Some((ix, dir, ranges)) = self.listed_plan(&f, &[])? {
            return Ok(self.listed_rows(&ix, dir, &ranges)?.len() as u64);
        }
        let mut fields = BTreeSet::new();
        top_fields(&f, &[], &mut fields);
        Ok(self.matching(&f, &fields)?.len() as u64)
    }

    /// How [`Collection::find`] would run `filter` with `opts`.
    /// Errors as [`Collection::find`].
    pub fn explain(&self, filter: &Value, opts: &FindOptions) -> Result<Plan> {
        let f = filter::parse(filter)?;
        opts.check()?;
        if let Some((ix, dir, ranges)) = self.listed_plan(&f, &opts.sort)? {
            return Ok(Plan {
                entries: self
                    .index_rows(&ix, dir.unwrap_or(SortOrder::Asc), &ranges)?
                    .len() as u64,
                index: Some(ix.path),
                ranges: ranges.len(),
                sort: if dir.is_some() { "index" } else { "_id" },
            });
        }
        let (src, entries) = self.plan(&f)?;
        let sort = if opts.sort.is_empty() {
            "_id"
        } else {
            "memory"
        };
        Ok(match src {
            Source::Scan => Plan {
                index: None,
                ranges: 0,
                entries,
                sort,
            },
            Source::Index(ix, ranges, _) => Plan {
                index: Some(ix.path),
                ranges,
                entries,
                sort,
            },
        })
    }

    /// Every matching document in `_id` order, streamed: the documents are
    /// read in chunks without holding a lock across the scan (each one was
    /// the stored version at some moment; ids come in increasing order,
    /// each at most once). Errors: [`Error::InvalidArgument`] (a bad
    /// filter); the iterator yields the common errors.
    pub fn find_iter(&self, filter: &Value) -> Result<DocIter> {
        let filter = filter::parse(filter)?;
        let mut fields = BTreeSet::new();
        top_fields(&filter, &[], &mut fields);
        Ok(DocIter {
            filter,
            fields,
            docs: self.docs.clone(),
            resume: None,
            buf: std::collections::VecDeque::new(),
            done: false,
        })
    }
}

/// Iterator from [`Collection::find_iter`].
pub struct DocIter {
    filter: Filter,
    fields: BTreeSet<String>,
    docs: crate::Keyspace,
    /// The last document visited (the next chunk starts after it).
    resume: Option<Vec<u8>>,
    buf: std::collections::VecDeque<Value>,
    done: bool,
}

impl std::fmt::Debug for DocIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocIter")
            .field("filter", &self.filter)
            .finish()
    }
}

/// Documents [`DocIter`] visits per chunk.
const ITER_VISIT: usize = 256;

impl DocIter {
    /// Visit the next chunk of documents, keeping the matches.
    fn fill(&mut self) -> Result<()> {
        let from = match &self.resume {
            Some(k) => Bound::Excluded(&k[..]),
            None => Bound::Unbounded,
        };
        let (mut visited, mut last, mut err) = (0, None, None);
        let (filter, fields, buf) = (&self.filter, &self.fields, &mut self.buf);
        self.docs
            .scan::<[u8], _>((from, Bound::Unbounded), |k, raw| {
                visited += 1;
                let keep = parse_fields(raw, fields)
                    .map(|d| filter::matches(filter, &d))
                    .and_then(|m| {
                        if m {
                            parse_doc(raw).map(Some)
                        } else {
                            Ok(None)
                        }
                    });
                match keep {
                    Ok(Some(d)) => buf.push_back(d),
                    Ok(None) => {}
                    Err(e) => {
                        err = Some(e);
                        return false;
                    }
                }
                if visited == ITER_VISIT {
                    last = Some(k.to_vec());
                    return false;
                }
                true
            })?;
        if let Some(e) = err {
            return Err(e);
        }
        match last {
            Some(k) => self.resume = Some(k),
            None => self.done = true,
        }
        Ok(())
    }
}

impl Iterator for DocIter {
    type Item = Result<Value>;

    fn next(&mut self) -> Option<Result<Value>> {
        loop {
            if let Some(d) = self.buf.pop_front() {
                return Some(Ok(d));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}

/// The bytes a document sorts by: each sort field's value encoding
/// (inverted for descending), then its id key.
fn composite_key(doc: &Value, sort: &[(String, SortOrder)], id_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::new();
    for (path, dir) in sort {
        let e = if path == "_id" {
            id_sort_key(id_key)
        } else {
            order::sort_key(doc, path)
        };
        match dir {
            SortOrder::Asc => k.extend_from_slice(&e),
            SortOrder::Desc => k.extend(e.iter().map(|b| !b)),
        }
    }
    k.extend_from_slice(id_key);
    k
}

/// `_id` sorts in id-key order, the order of the primary index (and of
/// results without a sort): canonical decimal ids by value, before every
/// other id, bytewise. The id key's string form is made self-delimiting
/// (the value encoding of a string) so a later sort field cannot reorder
/// it.
fn id_sort_key(id_key: &[u8]) -> Vec<u8> {
    match id_key.split_first() {
        Some((0x02, rest)) => {
            let mut k = vec![0x02];
            k.extend(order::encode(Some(&Value::String(
                String::from_utf8_lossy(rest).into_owned(),
            ))));
            k
        }
        _ => id_key.to_vec(),
    }
}

fn encode_cursor(tag: u32, key: &[u8]) -> String {
    let mut s = format!("{tag:08x}");
    for b in key {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn decode_cursor(c: &str, tag: u32) -> Result<Vec<u8>> {
    let bytes = (0..c.len())
        .step_by(2)
        .map(|i| c.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .filter(|b| b.len() >= 4 && c.len() % 2 == 0)
        .ok_or_else(|| bad("malformed cursor"))?;
    if u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) != tag {
        return Err(bad("the cursor belongs to a query with another sort"));
    }
    Ok(bytes[4..].to_vec())
}

/// Whether a projection includes (true) or excludes (false) fields.
fn projection_mode(p: &Value) -> Result<bool> {
    let Value::Object(o) = p else {
        return Err(bad("a projection is an object such as {\"name\": 1}"));
    };
    let mut mode = None;
    for (k, v) in o {
        super::limits::check_field_path(k, "projection")?;
        let on = match v {
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            _ => return Err(bad("projection values are 1/true or 0/false")),
        };
        if k == "_id" {
            continue;
        }
        if mode.is_some_and(|m| m != on) {
            return Err(bad("a projection includes or excludes fields, not both"));
        }
        mode = Some(on);
    }
    Ok(mode.unwrap_or(false))
}

fn project(doc: Value, p: Option<&Value>) -> Result<Value> {
    let Some(p) = p else {
        return Ok(doc);
    };
    let include = projection_mode(p)?;
    let Value::Object(spec) = p else {
        return Ok(doc);
    };
    let keep_id = spec
        .get("_id")
        .is_none_or(|v| v != &json!(0) && v != &json!(false));
    let Value::Object(mut src) = doc else {
        return Ok(doc);
    };
    if include {
        let mut out = Map::new();
        if keep_id {
            if let Some(id) = src.get("_id") {
                out.insert("_id".into(), id.clone());
            }
        }
        for path in spec.keys().filter(|k| *k != "_id") {
            copy_path(&src, &mut out, path);
        }
        return Ok(Value::Object(out));
    }
    for path in spec.keys().filter(|k| *k != "_id") {
        remove_path(&mut src, path);
    }
    if !keep_id {
        src.remove("_id");
    }
    Ok(Value::Object(src))
}

fn copy_path(src: &Map<String, Value>, out: &mut Map<String, Value>, path: &str) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let Some(v) = src.get(head) else {
        return;
    };
    match (rest, v) {
        (None, v) => {
            out.insert(head.to_string(), v.clone());
        }
        (Some(rest), Value::Object(inner)) => {
            let slot = out
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(o) = slot {
                copy_path(inner, o, rest);
            }
        }
        _ => {}
    }
}

fn remove_path(src: &mut Map<String, Value>, path: &str) {
    match path.split_once('.') {
        None => {
            src.remove(path);
        }
        Some((h, rest)) => {
            if let Some(Value::Object(inner)) = src.get_mut(h) {
                remove_path(inner, rest);
            }
        }
    }
}

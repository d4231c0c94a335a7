//! Document collections: every operation and error, pagination with
//! cursors, indexes used by plans, a differential property test against a
//! naive evaluator, survival of reopen and crash, and index/document
//! agreement after real SIGKILLs of a writer.
mod common;
use common::*;
use keyval::{Db, Error, FindOptions, SortOrder};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn ids(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["_id"].as_str().expect("_id").to_string())
        .collect()
}

#[test]
fn crud_and_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let c = db.collection("users").expect("collection");
    let a = c.insert(json!({"name": "ann", "age": 30})).expect("insert");
    let b = c.insert(json!({"name": "bob", "age": 25})).expect("insert");
    assert_eq!((a.as_str(), b.as_str()), ("1", "2"));
    c.insert(json!({"_id": "3", "name": "taken"}))
        .expect("explicit id");
    assert_eq!(c.insert(json!({"name": "cy"})).expect("skips 3"), "4");
    assert!(matches!(
        c.insert(json!({"_id": "1"})),
        Err(Error::DuplicateKey(_))
    ));
    for bad in [json!([1]), json!({"_id": 5}), json!({"_id": ""})] {
        assert!(matches!(c.insert(bad), Err(Error::InvalidArgument(_))));
    }
    assert_eq!(c.get("1").expect("get").expect("some")["name"], "ann");
    assert_eq!(c.get("99").expect("get"), None);
    let st = db.stats().expect("stats");
    assert_eq!(
        (db.list_collections().expect("list").len(), st.keyspaces),
        (1, 3),
        "three keyspaces per collection"
    );
    // The stored text, unparsed, is the document serialized.
    let text = c.get_json("1").expect("get_json").expect("some");
    assert_eq!(
        text,
        serde_json::to_vec(&c.get("1").expect("get").expect("some")).expect("json")
    );
    assert_eq!(c.get_json("99").expect("get_json"), None);
    assert!(matches!(c.get_json(""), Err(Error::InvalidArgument(_))));

    let d = c
        .update("1", &json!({"age": 31, "nick": "a", "name": null}))
        .expect("merge patch");
    assert_eq!(d, json!({"_id": "1", "age": 31, "nick": "a"}));
    assert!(matches!(
        c.update("99", &json!({"a": 1})),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        c.update("1", &json!({"_id": "7"})),
        Err(Error::InvalidArgument(_))
    ));
    let d = c
        .update_with("2", &json!({"$inc": {"age": 1}, "$push": {"tags": "x"}}))
        .expect("operators");
    assert_eq!(d["age"], 26);
    assert_eq!(d["tags"], json!(["x"]));

    // update_many: one missing id fails the whole call.
    let r = c.update_many(&[
        ("1".into(), json!({"v": 1})),
        ("nope".into(), json!({"v": 1})),
    ]);
    assert!(matches!(r, Err(Error::NotFound(_))));
    assert_eq!(c.get("1").expect("get").expect("doc").get("v"), None);
    c.update_many(&[("1".into(), json!({"v": 1})), ("2".into(), json!({"v": 2}))])
        .expect("update_many");
    assert_eq!(c.get("2").expect("get").expect("doc")["v"], 2);

    assert!(c
        .replace("1", json!({"only": true}), false)
        .expect("replace"));
    assert_eq!(
        c.get("1").expect("get"),
        Some(json!({"_id": "1", "only": true}))
    );
    assert!(matches!(
        c.replace("50", json!({}), false),
        Err(Error::NotFound(_))
    ));
    assert!(!c.replace("50", json!({"up": 1}), true).expect("upsert"));
    assert!(matches!(
        c.replace("50", json!({"_id": "51"}), true),
        Err(Error::InvalidArgument(_))
    ));

    // insert_many is all or nothing.
    let before = c.stats().expect("stats").documents;
    assert!(matches!(
        c.insert_many(vec![json!({"_id": "x"}), json!({"_id": "x"})]),
        Err(Error::DuplicateKey(_))
    ));
    assert_eq!(c.stats().expect("stats").documents, before);
    assert_eq!(
        c.insert_many(vec![json!({"a": 1}), json!({"_id": "y"})])
            .expect("many"),
        vec!["5".to_string(), "y".to_string()]
    );

    assert!(c.delete("2").expect("delete"));
    assert!(!c.delete("2").expect("delete again"));
    assert_eq!(db.list_collections().expect("list"), vec!["users"]);
    assert!(db.drop_collection("users").expect("drop"));
    assert!(matches!(c.get("1"), Err(Error::NotFound(_))));
    assert!(db.list_collections().expect("list").is_empty());
    assert!(matches!(
        db.open_collection("users"),
        Err(Error::NotFound(_))
    ));
    let again = db.collection("users").expect("recreate");
    assert_eq!(again.stats().expect("stats").documents, 0);
    assert_eq!(
        again.insert(json!({})).expect("insert"),
        "1",
        "counter restarts"
    );
}

#[test]
fn find_filters_sorts_projects_and_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let c = db.collection("people").expect("collection");
    let docs: Vec<Value> = (0..120)
        .map(|i| {
            let city = ["oslo", "rome", "lima"][i % 3];
            json!({"name": format!("p{i:03}"), "age": i % 40, "city": city,
                   "addr": {"zip": 1000 + i}, "tags": [format!("t{}", i % 5), "all"]})
        })
        .collect();
    c.insert_many(docs).expect("insert");
    let q = json!({"age": {"$gte": 10, "$lt": 20}, "city": {"$in": ["oslo", "rome"]}});
    let all = c
        .find(&q, &FindOptions::default().limit(1000))
        .expect("find");
    assert_eq!(all.total, all.docs.len() as u64);
    assert!(all.docs.iter().all(|d| {
        let a = d["age"].as_i64().expect("age");
        (10..20).contains(&a) && d["city"] != "lima"
    }));
    assert_eq!(c.count(&q).expect("count"), all.total);
    assert_eq!(c.count(&json!({"tags": "t3"})).expect("array element"), 24);
    assert_eq!(
        c.count(&json!({"addr.zip": {"$gt": 1100}}))
            .expect("dotted"),
        19
    );

    // Sorted pages, forward with next_cursor and back with prev_cursor.
    let opts = FindOptions::default()
        .sort_by("age", SortOrder::Desc)
        .sort_by("name", SortOrder::Asc)
        .limit(7);
    let full = c
        .find(&json!({}), &opts.clone().limit(1000))
        .expect("all sorted");
    let mut pages = vec![c.find(&json!({}), &opts).expect("first page")];
    while let Some(next) = pages.last().and_then(|p| p.next_cursor.clone()) {
        pages.push(
            c.find(&json!({}), &opts.clone().after(&next))
                .expect("page"),
        );
    }
    let walked: Vec<Value> = pages.iter().flat_map(|p| p.docs.clone()).collect();
    assert_eq!(ids(&walked), ids(&full.docs));
    assert!(!pages[0].has_prev && pages.last().is_some_and(|p| !p.has_next));
    let last = pages.last().expect("last");
    let back = c
        .find(
            &json!({}),
            &opts
                .clone()
                .before(last.prev_cursor.as_ref().expect("prev")),
        )
        .expect("back");
    assert_eq!(ids(&back.docs), ids(&pages[pages.len() - 2].docs));
    let ages: Vec<i64> = full
        .docs
        .iter()
        .map(|d| d["age"].as_i64().expect("age"))
        .collect();
    assert!(ages.windows(2).all(|w| w[0] >= w[1]));

    // Writes between pages: every document present throughout is seen once.
    let opts = FindOptions::default().limit(10);
    let mut seen = Vec::new();
    let mut page = c.find(&json!({}), &opts).expect("page");
    loop {
        seen.extend(ids(&page.docs));
        c.insert(json!({"late": true}))
            .expect("insert between pages");
        let first = page.docs.first().expect("doc")["_id"]
            .as_str()
            .expect("id")
            .to_string();
        c.delete(&first).expect("delete a seen document");
        match page.next_cursor.clone() {
            Some(n) => page = c.find(&json!({}), &opts.clone().after(&n)).expect("page"),
            None => break,
        }
    }
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), seen.len(), "no document twice");
    for i in 1..=120 {
        assert!(seen.contains(&i.to_string()), "document {i} was visited");
    }

    // Projection.
    let p = c
        .find(
            &json!({"name": "p001"}),
            &FindOptions::default().projection(json!({"name": 1, "addr.zip": 1})),
        )
        .expect("include");
    assert_eq!(
        p.docs[0],
        json!({"_id": "2", "name": "p001", "addr": {"zip": 1001}})
    );
    let p = c
        .find(
            &json!({"name": "p001"}),
            &FindOptions::default().projection(json!({"tags": 0, "addr": 0, "_id": 0})),
        )
        .expect("exclude");
    assert_eq!(p.docs[0], json!({"name": "p001", "age": 1, "city": "rome"}));

    // Bad options and filters.
    for o in [
        FindOptions::default().limit(-1),
        FindOptions::default().limit(1001),
        FindOptions::default().offset(-1),
        FindOptions::default().offset(2).after("00000000"),
        FindOptions::default().after("zz"),
        FindOptions::default().projection(json!({"a": 1, "b": 0})),
    ] {
        assert!(
            matches!(c.find(&json!({}), &o), Err(Error::InvalidArgument(_))),
            "{o:?}"
        );
    }
    let cursor = full.next_cursor.clone().unwrap_or_else(|| {
        c.find(
            &json!({}),
            &FindOptions::default()
                .sort_by("age", SortOrder::Asc)
                .limit(1),
        )
        .expect("page")
        .next_cursor
        .expect("cursor")
    });
    assert!(
        matches!(
            c.find(&json!({}), &FindOptions::default().after(&cursor)),
            Err(Error::InvalidArgument(_))
        ),
        "a cursor from another sort"
    );
    assert!(matches!(
        c.find(&json!({"$bad": 1}), &FindOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
    let o = FindOptions::from_json(
        &json!({"sort": ["-age", ["name", 1]], "limit": 3, "projection": {"name": 1}}),
    )
    .expect("json options");
    assert_eq!(
        o.sort,
        vec![
            ("age".to_string(), SortOrder::Desc),
            ("name".to_string(), SortOrder::Asc)
        ]
    );
    assert_eq!(c.find(&json!({}), &o).expect("find").docs.len(), 3);
}

#[test]
fn indexes_are_used_persistent_and_unique() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let c = db.collection("items").expect("collection");
    for i in 0..300 {
        c.insert(json!({"sku": format!("s{i}"), "price": i, "tags": [i % 7, "x"]}))
            .expect("insert");
    }
    c.create_index("price", false).expect("index");
    c.create_index("sku", true).expect("unique index");
    c.create_index("tags", false).expect("multikey index");
    assert!(matches!(
        c.create_index("price", true),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.create_index("_id", false),
        Err(Error::InvalidArgument(_))
    ));
    let paths: Vec<String> = c
        .list_indexes()
        .expect("list")
        .into_iter()
        .map(|i| i.path)
        .collect();
    assert_eq!(paths, vec!["_id", "price", "sku", "tags"]);
    assert!(c.list_indexes().expect("list")[3].multikey);

    let plan = c
        .explain(
            &json!({"price": {"$gte": 10, "$lt": 20}}),
            &FindOptions::default(),
        )
        .expect("explain");
    assert_eq!(plan.index.as_deref(), Some("price"));
    assert_eq!(plan.entries, 10);
    let plan = c
        .explain(
            &json!({"sku": {"$in": ["s1", "s2"]}}),
            &FindOptions::default(),
        )
        .expect("explain");
    assert_eq!(
        (plan.index.as_deref(), plan.entries, plan.ranges),
        (Some("sku"), 2, 2)
    );
    let plan = c
        .explain(&json!({"other": 1}), &FindOptions::default())
        .expect("explain");
    assert_eq!((plan.index, plan.entries), (None, 300));
    assert_eq!(c.count(&json!({"tags": 3})).expect("count"), 43);
    assert_eq!(
        c.explain(&json!({"tags": 3}), &FindOptions::default())
            .expect("plan")
            .entries,
        43
    );

    assert!(matches!(
        c.insert(json!({"sku": "s5"})),
        Err(Error::DuplicateKey(_))
    ));
    assert!(matches!(
        c.update("7", &json!({"sku": "s8"})),
        Err(Error::DuplicateKey(_))
    ));
    // Swapping unique values inside one update_many is allowed.
    c.update_many(&[
        ("1".into(), json!({"sku": "tmp"})),
        ("2".into(), json!({"sku": "s0"})),
        ("1".into(), json!({"sku": "s1"})),
    ])
    .expect("swap");
    assert!(
        c.insert(json!({"nosku": true})).is_ok(),
        "missing values are exempt"
    );
    assert!(c.insert(json!({"nosku": true})).is_ok());
    // A unique index over duplicates fails and leaves nothing.
    let entries = c.stats().expect("stats").index_entries;
    assert!(matches!(
        c.create_index("tags", true),
        Err(Error::InvalidArgument(_))
    ));
    c.insert(json!({"dup": 1})).expect("insert");
    c.insert(json!({"dup": 1})).expect("insert");
    assert!(matches!(
        c.create_index("dup", true),
        Err(Error::DuplicateKey(_))
    ));
    let st = c.stats().expect("stats");
    assert_eq!(st.indexes, 3);
    assert_eq!(
        st.index_entries,
        entries + 6,
        "only the two inserts' entries were added"
    );
    assert!(c.check().expect("check").is_empty());
    same_through_a_second_handle(&c, &db);
    drop(c);
    db.crash_for_testing();

    let db = Db::open(dir.path(), small_opts()).expect("reopen");
    let c = db.open_collection("items").expect("collection");
    assert_eq!(c.list_indexes().expect("list").len(), 4);
    assert_eq!(
        c.explain(&json!({"price": 5}), &FindOptions::default())
            .expect("plan")
            .entries,
        1
    );
    assert!(c.check().expect("check").is_empty());
    assert_eq!(
        c.insert(json!({})).expect("auto id"),
        "305",
        "the counter survived"
    );
    assert!(c.drop_index("tags").expect("drop index"));
    assert!(!c.drop_index("tags").expect("again"));
    assert!(c.check().expect("check").is_empty());
    db.close().expect("close");
}

/// The same data seen through a second handle of the collection.
/// Plans that know the matches from the index alone: an unsorted find
/// (or count) under a filter an index answers exactly lists each document
/// once even when it has several matching values (multikey), and a sort
/// on an indexed field pages through the index in order, ties by `_id`.
#[test]
fn index_only_plans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let c = db.collection("t").expect("collection");
    c.create_index("tags", false).expect("index");
    c.create_index("n", false).expect("index");
    c.insert(json!({"_id": "a", "tags": [1, 2, 3], "n": 5}))
        .expect("insert");
    c.insert(json!({"_id": "b", "tags": [2], "n": 5}))
        .expect("insert");
    c.insert(json!({"_id": "c", "tags": 9, "n": 1}))
        .expect("insert");
    c.insert(json!({"_id": "d", "n": 7})).expect("insert");
    let f = json!({"tags": {"$in": [1, 2, 3]}});
    let o = FindOptions::default();
    let plan = c.explain(&f, &o).expect("explain");
    assert_eq!((plan.index.as_deref(), plan.sort), (Some("tags"), "_id"));
    assert_eq!(plan.entries, 4, "a has three entries in the ranges, b one");
    let page = c.find(&f, &o).expect("find");
    assert_eq!(ids(&page.docs), ["a", "b"]);
    assert_eq!(page.total, 2);
    assert_eq!(c.count(&f).expect("count"), 2);
    assert_eq!(
        c.count(&json!({"tags": {"$in": [2, 9]}})).expect("count"),
        3
    );

    for dir_ in [SortOrder::Asc, SortOrder::Desc] {
        let o = FindOptions::default().sort_by("n", dir_).limit(1);
        let plan = c.explain(&json!({}), &o).expect("explain");
        assert_eq!((plan.index.as_deref(), plan.sort), (Some("n"), "index"));
        let mut got = Vec::new();
        let mut page = c.find(&json!({}), &o).expect("find");
        loop {
            assert_eq!(page.total, 4);
            got.extend(ids(&page.docs));
            match page.next_cursor.clone() {
                Some(n) => page = c.find(&json!({}), &o.clone().after(&n)).expect("page"),
                None => break,
            }
        }
        let expect: Vec<&str> = match dir_ {
            SortOrder::Asc => vec!["c", "a", "b", "d"],
            SortOrder::Desc => vec!["d", "a", "b", "c"],
        };
        assert_eq!(got, expect, "{dir_:?}");
        // And back again with `before`.
        let last = c.find(&json!({}), &o.clone().offset(3)).expect("last");
        let prev = c
            .find(
                &json!({}),
                &o.clone().before(last.prev_cursor.as_deref().expect("prev")),
            )
            .expect("prev page");
        assert_eq!(ids(&prev.docs), [expect[2]]);
    }
    // A multikey index does not order a sort (an array has no single
    // place in it): the sort goes to memory.
    let plan = c
        .explain(
            &json!({}),
            &FindOptions::default().sort_by("tags", SortOrder::Asc),
        )
        .expect("explain");
    assert_eq!(plan.sort, "memory");
    // A filter the index does not answer exactly reads documents.
    let plan = c
        .explain(&json!({"n": {"$ne": 5}}), &FindOptions::default())
        .expect("explain");
    assert_eq!(plan.index, None);
}

/// On an array field, each condition may be met by a different element
/// (`{"a": {"$gt": 1, "$lt": 5}}` matches `[0, 10]`), so an index on it
/// must not intersect the conditions' ranges: with the index, the same
/// documents as without.
#[test]
fn multikey_ranges_are_not_intersected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let plain = db.collection("plain").expect("c");
    let indexed = db.collection("indexed").expect("c");
    indexed.create_index("a", false).expect("index");
    for c in [&plain, &indexed] {
        c.insert(json!({"_id": "arr", "a": [0, 10]}))
            .expect("insert");
        c.insert(json!({"_id": "mixed", "a": [2, "x"]}))
            .expect("insert");
        c.insert(json!({"_id": "in", "a": 3})).expect("insert");
        c.insert(json!({"_id": "out", "a": 7})).expect("insert");
    }
    for f in [
        json!({"a": {"$gt": 1, "$lt": 5}}),
        json!({"a": {"$gte": 1, "$lte": 5}}),
        json!({"a": {"$gt": 1, "$lt": "z"}}),
        json!({"$and": [{"a": {"$gt": 1}}, {"a": {"$lt": 5}}]}),
    ] {
        let want = ids(&plain.find(&f, &FindOptions::default()).expect("find").docs);
        let got = ids(&indexed
            .find(&f, &FindOptions::default())
            .expect("find")
            .docs);
        assert_eq!(got, want, "{f}");
        assert_eq!(
            indexed.count(&f).expect("count"),
            plain.count(&f).expect("count"),
            "{f}"
        );
    }
    let want = ids(&plain
        .find(&json!({"a": {"$gt": 1, "$lt": 5}}), &FindOptions::default())
        .expect("find")
        .docs);
    assert_eq!(want, ["arr", "in", "mixed"]);
}

fn same_through_a_second_handle(c: &keyval::Collection, db: &Db) {
    let other = db.open_collection(c.name()).expect("open");
    assert_eq!(other.stats().expect("stats"), c.stats().expect("stats"));
}

// ---- differential property test ----

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-5i64..5).prop_map(Value::from),
        (-5i64..5).prop_map(|i| json!(i as f64 + 0.5)),
        (-3i64..3).prop_map(|i| json!(i as f64)),
        "[a-c]{0,2}".prop_map(Value::from),
    ]
}

fn arb_field() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => arb_scalar().prop_map(Some),
        1 => prop::collection::vec(arb_scalar(), 0..3).prop_map(|v| Some(Value::Array(v))),
        1 => Just(None),
    ]
}

fn arb_doc() -> impl Strategy<Value = Value> {
    (arb_field(), arb_field(), arb_field()).prop_map(|(a, b, n)| {
        let mut o = serde_json::Map::new();
        if let Some(a) = a {
            o.insert("a".into(), a);
        }
        if let Some(b) = b {
            o.insert("b".into(), b);
        }
        if let Some(n) = n {
            o.insert("o".into(), json!({ "n": n }));
        }
        Value::Object(o)
    })
}

fn arb_cond() -> impl Strategy<Value = (String, String, Value)> {
    (
        prop::sample::select(vec!["a", "b", "o.n"]),
        prop::sample::select(vec![
            "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists",
        ]),
        arb_scalar(),
        prop::collection::vec(arb_scalar(), 0..3),
    )
        .prop_map(|(p, op, v, vs)| {
            let arg = match op {
                "$in" | "$nin" => Value::Array(vs),
                "$exists" => Value::Bool(v.as_bool().unwrap_or(true)),
                _ => v,
            };
            (p.to_string(), op.to_string(), arg)
        })
}

/// The naive evaluator: the documented semantics, written independently.
mod naive {
    use serde_json::Value;
    use std::cmp::Ordering;

    fn class(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }

    pub fn cmp(a: &Value, b: &Value) -> Ordering {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x
                .as_f64()
                .expect("f64")
                .total_cmp(&y.as_f64().expect("f64"))
                .then(Ordering::Equal),
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
            (Value::Array(x), Value::Array(y)) => {
                for (p, q) in x.iter().zip(y) {
                    let o = cmp(p, q);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                x.len().cmp(&y.len())
            }
            _ => class(a).cmp(&class(b)),
        }
    }

    fn eq(a: &Value, b: &Value) -> bool {
        class(a) == class(b) && cmp(a, b) == Ordering::Equal
    }

    fn cands<'a>(doc: &'a Value, path: &str) -> Vec<&'a Value> {
        let v = match path.split_once('.') {
            Some((h, t)) => doc.get(h).and_then(|x| x.get(t)),
            None => doc.get(path),
        };
        let mut out = Vec::new();
        if let Some(v) = v {
            out.push(v);
            if let Value::Array(a) = v {
                out.extend(a.iter());
            }
        }
        out
    }

    pub fn holds(doc: &Value, path: &str, op: &str, arg: &Value) -> bool {
        let c = cands(doc, path);
        let is_eq = |v: &Value| (v.is_null() && c.is_empty()) || c.iter().any(|x| eq(x, v));
        let range =
            |ok: fn(Ordering) -> bool| c.iter().any(|x| class(x) == class(arg) && ok(cmp(x, arg)));
        match op {
            "$eq" => is_eq(arg),
            "$ne" => !is_eq(arg),
            "$gt" => range(Ordering::is_gt),
            "$gte" => range(Ordering::is_ge),
            "$lt" => range(Ordering::is_lt),
            "$lte" => range(Ordering::is_le),
            "$in" => arg.as_array().expect("list").iter().any(is_eq),
            "$nin" => !arg.as_array().expect("list").iter().any(is_eq),
            "$exists" => c.is_empty() != arg.as_bool().expect("bool"),
            _ => unreachable!(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn find_agrees_with_a_naive_evaluator(
        docs in prop::collection::vec(arb_doc(), 0..40),
        conds in prop::collection::vec(arb_cond(), 1..3),
        or in any::<bool>(),
        desc in any::<bool>(),
        limit in 1i64..9,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), small_opts()).expect("open");
        let plain = db.collection("plain").expect("c");
        let indexed = db.collection("indexed").expect("c");
        for p in ["a", "b", "o.n"] {
            indexed.create_index(p, false).expect("index");
        }
        plain.insert_many(docs.clone()).expect("insert");
        indexed.insert_many(docs.clone()).expect("insert");
        let parts: Vec<Value> = conds.iter().map(|(p, op, v)| json!({p.as_str(): {op.as_str(): v}})).collect();
        let filter = if or { json!({"$or": parts}) } else { json!({"$and": parts}) };
        let want: Vec<String> = docs.iter().enumerate().filter(|(_, d)| {
            let mut r = conds.iter().map(|(p, op, v)| naive::holds(d, p, op, v));
            if or { r.any(|x| x) } else { r.all(|x| x) }
        }).map(|(i, _)| (i + 1).to_string()).collect();
        let dir_ = if desc { SortOrder::Desc } else { SortOrder::Asc };
        for c in [&plain, &indexed] {
            let all = c.find(&filter, &FindOptions::default().limit(1000)).expect("find");
            prop_assert_eq!(ids(&all.docs), want.clone(), "filter {}", filter);
            prop_assert_eq!(c.count(&filter).expect("count"), want.len() as u64);
            // Cursor pages over a sorted result visit it exactly, in order.
            let opts = FindOptions::default().sort_by("a", dir_).limit(limit);
            let full = c.find(&filter, &opts.clone().limit(1000)).expect("sorted");
            let mut got = Vec::new();
            let mut page = c.find(&filter, &opts).expect("page");
            loop {
                got.extend(ids(&page.docs));
                match page.next_cursor.clone() {
                    Some(n) => page = c.find(&filter, &opts.clone().after(&n)).expect("page"),
                    None => break,
                }
            }
            prop_assert_eq!(&got, &ids(&full.docs));
            let sorted: Vec<Value> = full.docs.iter().map(|d| d.get("a").cloned().unwrap_or(Value::Null)).collect();
            for w in full.docs.windows(2) {
                let (x, y) = (w[0].get("a"), w[1].get("a"));
                if let (Some(x), Some(y)) = (x, y) {
                    let o = naive::cmp(x, y);
                    prop_assert!(if desc { o.is_ge() } else { o.is_le() }, "{:?}", sorted);
                }
            }
        }
        // The index-ordered plan (a sort on an indexed field that holds no
        // arrays, under a filter the index answers exactly, or none)
        // returns what the in-memory sort returns, page by page, both ways.
        let flat: Vec<Value> = docs.iter().map(|d| {
            let mut d = d.clone();
            if let Some(Value::Array(a)) = d.get("a").cloned() {
                match a.first() {
                    Some(x) => d["a"] = x.clone(),
                    None => { d.as_object_mut().expect("object").remove("a"); }
                }
            }
            d
        }).collect();
        let plain = db.collection("flat").expect("c");
        let indexed = db.collection("flat-indexed").expect("c");
        indexed.create_index("a", false).expect("index");
        plain.insert_many(flat.clone()).expect("insert");
        indexed.insert_many(flat).expect("insert");
        let o = FindOptions::default().sort_by("a", SortOrder::Asc);
        prop_assert_eq!(indexed.explain(&json!({}), &o).expect("explain").sort, "index");
        for f in [filter.clone(), json!({}), json!({"a": {"$gte": 0}}), json!({"a": {"$in": [1, "x", true]}})] {
            for d in [SortOrder::Asc, SortOrder::Desc] {
                let o = FindOptions::default().sort_by("a", d).limit(limit);
                let (mut p1, mut p2) = (plain.find(&f, &o).expect("find"), indexed.find(&f, &o).expect("find"));
                loop {
                    prop_assert_eq!(ids(&p1.docs), ids(&p2.docs), "filter {} {:?}", f, d);
                    prop_assert_eq!((p1.total, p1.has_next, p1.has_prev), (p2.total, p2.has_next, p2.has_prev));
                    match (p1.next_cursor.clone(), p2.next_cursor.clone()) {
                        (Some(a), Some(b)) => {
                            p1 = plain.find(&f, &o.clone().after(&a)).expect("page");
                            p2 = indexed.find(&f, &o.clone().after(&b)).expect("page");
                        }
                        (a, b) => { prop_assert_eq!(a, b); break; }
                    }
                }
            }
        }
        prop_assert!(indexed.check().expect("check").is_empty());
    }
}

// ---- crash atomicity with real kills ----

/// Child: inserts, updates and deletes documents with two indexed fields,
/// printing `ACK id` after each insert returned and `DELETING id` before
/// each delete starts.
#[test]
#[ignore = "child process entry point"]
fn docs_crash_child() {
    let Ok(dir) = std::env::var("KEYVAL_DOCS_CHILD") else {
        return;
    };
    // Background checkpoints run while it writes (16 KiB WAL threshold).
    let opts = keyval::Options {
        max_wal_size: 16 << 10,
        ..small_opts()
    };
    let db = Db::open(&dir, opts).expect("child open");
    let c = db.collection("c").expect("collection");
    c.create_index("n", false).expect("index");
    c.create_index("u", true).expect("index");
    let mut rng = Rng(std::process::id() as u64 | 1);
    println!("READY");
    loop {
        let n = rng.below(50);
        let id = c
            .insert(json!({"n": n, "u": format!("{}-{}", std::process::id(), rng.next()), "tags": [n % 3, n % 5]}))
            .expect("insert");
        println!("ACK {id}");
        std::io::stdout().flush().expect("flush");
        let other = (1 + rng.below(id.parse::<u64>().expect("auto id"))).to_string();
        match rng.below(3) {
            0 => {
                let _ = c.update_with(&other, &json!({"$inc": {"n": 1}}));
            }
            1 => {
                println!("DELETING {other}");
                std::io::stdout().flush().expect("flush");
                let _ = c.delete(&other);
            }
            _ => {
                let _ = c.update(&other, &json!({"tags": [rng.below(9)]}));
            }
        }
    }
}

#[test]
fn indexes_agree_with_documents_after_kills() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("exe");
    let mut rng = Rng(0xD0C5);
    let mut acked = Vec::new();
    let mut deleting = std::collections::BTreeSet::new();
    for round in 0..6 {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "docs_crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KEYVAL_DOCS_CHILD", dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stop_after = 20 + rng.below(200);
        let mut n = 0;
        for line in out.by_ref() {
            let line = line.expect("line");
            if let Some(id) = line.strip_prefix("DELETING ") {
                deleting.insert(id.to_string());
            }
            if let Some(id) = line.strip_prefix("ACK ") {
                acked.push(id.to_string());
                n += 1;
                if n >= stop_after {
                    break;
                }
            }
        }
        child.kill().expect("kill");
        child.wait().expect("wait");
        // What it printed between the last ACK read and its death: a delete
        // it began then may have completed.
        for line in out {
            if let Some(id) = line.expect("line").strip_prefix("DELETING ") {
                deleting.insert(id.to_string());
            }
        }
        // `verify` (read-only, before open truncates anything) checks the
        // same agreement in the recovered state.
        let rep =
            keyval::internals::verify::verify_dir(&keyval::fs::RealFs, dir.path()).expect("verify");
        assert!(
            !rep.has_corruption() && !rep.has_index_problems(),
            "round {round}: {rep:?}"
        );
        assert_eq!(rep.collections, 1, "round {round}");
        let db = Db::open(dir.path(), small_opts()).expect("reopen after kill");
        let c = db.open_collection("c").expect("collection");
        let problems = c.check().expect("check");
        assert!(problems.is_empty(), "round {round}: {problems:?}");
        // Every acknowledged insert is present unless a delete of it began.
        for id in acked.iter().filter(|id| !deleting.contains(*id)) {
            assert!(
                c.get(id).expect("get").is_some(),
                "round {round}: acknowledged {id} lost"
            );
        }
        db.close().expect("close");
    }
    eprintln!(
        "{} inserts acknowledged, {} deletes begun",
        acked.len(),
        deleting.len()
    );
    let db = Db::open(dir.path(), small_opts()).expect("final open");
    let c = db.open_collection("c").expect("collection");
    let ids: Vec<u64> = acked.iter().map(|i| i.parse().expect("id")).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "auto ids only grow across crashes"
    );
    assert!(c.check().expect("check").is_empty());
}

//! Issue 29, sections 1, 5 and 6: hostile and edge-case input to the
//! document layer. Each test was written from the issue's reproduction
//! and failed (or crashed the test process) on the old code.
mod common;
use common::*;
use keyval::{Db, Error, FindOptions, SortOrder};
use keyval::{MAX_DEPTH, MAX_IN_VALUES, MAX_PATH_SEGMENTS, MAX_UPDATE_PATHS};
use serde_json::{json, Map, Value};

fn store() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    (dir, db)
}

fn invalid<T: std::fmt::Debug>(r: keyval::Result<T>, what: &str) -> String {
    match r {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("{what}: expected InvalidArgument, got {other:?}"),
    }
}

fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!({ "a": v });
    }
    v
}

/// A 100,000-segment path (200 KB) overflowed the stack in every
/// operator; now it is refused before any work, and the document is
/// unchanged.
#[test]
fn huge_update_paths_are_refused_not_a_stack_overflow() {
    let (_d, db) = store();
    let c = db.collection("c").expect("coll");
    let id = c.insert(json!({"x": 1, "arr": []})).expect("insert");
    let path = vec!["a"; 100_000].join(".");
    for op in ["$set", "$inc", "$max", "$push", "$unset"] {
        let m = invalid(c.update_with(&id, &json!({ op: { path.clone(): 1 } })), op);
        assert!(m.contains("field path"), "{op}: {m}");
    }
    invalid(
        c.update_with(&id, &json!({"$rename": {"x": path.clone()}})),
        "$rename",
    );
    assert_eq!(
        c.get(&id).expect("get"),
        Some(json!({"_id": id, "x": 1, "arr": []}))
    );
    // A filter, sort or projection path of that size: refused too.
    invalid(
        c.find(&json!({ path.clone(): 1 }), &FindOptions::default()),
        "filter",
    );
    invalid(
        c.find(
            &json!({}),
            &FindOptions::default().sort_by(&path, SortOrder::Asc),
        ),
        "sort",
    );
    invalid(
        c.find(
            &json!({}),
            &FindOptions::default().projection(json!({ path.clone(): 1 })),
        ),
        "projection",
    );
}

/// `$set` on a 128-segment path was committed and then no query could
/// read the collection. Now an update may not produce what insert
/// refuses, and the limit (100 levels) is below the parser's (128), so
/// whatever is stored stays readable.
#[test]
fn an_update_never_stores_a_document_no_query_can_read() {
    let (_d, db) = store();
    let c = db.collection("c").expect("coll");
    let id = c.insert(json!({"x": 1})).expect("insert");
    c.create_index("x", false).expect("index");
    let deep = vec!["a"; MAX_PATH_SEGMENTS].join(".");
    // The document, 99 objects on the path, and the object set: 101 levels.
    invalid(
        c.update_with(&id, &json!({"$set": { deep.clone(): {"b": 1} }})),
        "deep $set",
    );
    let over = vec!["a"; MAX_PATH_SEGMENTS + 1].join(".");
    invalid(
        c.update_with(&id, &json!({"$set": { over: 1 }})),
        "long $set",
    );
    invalid(
        c.update_with(&id, &json!({"$set": { "y": nested(MAX_DEPTH) }})),
        "deep value",
    );
    invalid(
        c.update(&id, &json!({ "y": nested(MAX_DEPTH) })),
        "deep patch",
    );
    invalid(c.replace(&id, nested(MAX_DEPTH + 1), false), "deep replace");
    invalid(c.insert(nested(MAX_DEPTH + 1)), "deep insert");
    // At the limit: stored, and every read still works.
    c.update_with(&id, &json!({"$set": { "y": nested(MAX_DEPTH - 2) }}))
        .expect("at the limit");
    let all = json!({});
    assert_eq!(c.count(&all).expect("count"), 1);
    assert_eq!(
        c.find(&all, &FindOptions::default())
            .expect("find")
            .docs
            .len(),
        1
    );
    assert_eq!(c.find_iter(&all).expect("iter").count(), 1);
    c.create_index("y.a", false).expect("index over it");
    assert!(c.delete(&id).expect("delete"));
}

#[test]
fn update_path_count_is_bounded_and_conflicts_are_found_in_linear_time() {
    let (_d, db) = store();
    let c = db.collection("c").expect("coll");
    let id = c.insert(json!({})).expect("insert");
    let mut set = Map::new();
    for i in 0..MAX_UPDATE_PATHS {
        set.insert(format!("f{i}"), json!(i));
    }
    let doc = c
        .update_with(&id, &json!({ "$set": Value::Object(set.clone()) }))
        .expect("at the limit");
    assert_eq!(doc.as_object().expect("obj").len(), MAX_UPDATE_PATHS + 1);
    set.insert("one_more".into(), json!(0));
    invalid(
        c.update_with(&id, &json!({ "$set": Value::Object(set) })),
        "over the limit",
    );
    // Conflicts, whichever order the paths come in.
    for ops in [
        json!({"$set": {"a.b": 1}, "$unset": {"a": 1}}),
        json!({"$set": {"a": 1}, "$inc": {"a.b.c": 1}}),
        json!({"$set": {"a": 1}, "$inc": {"a": 1}}),
        json!({"$rename": {"p": "q.r"}, "$set": {"q": 1}}),
    ] {
        let m = invalid(c.update_with(&id, &ops), "conflict");
        assert!(m.contains("conflict"), "{ops}: {m}");
    }
    // Neighbours are not conflicts.
    c.update_with(&id, &json!({"$set": {"ab": 1, "a.b": 2, "a.bc": 3}}))
        .expect("no conflict");
}

/// A unique index over a 40k-document `insert_many`, and updates of a
/// document whose indexed array has 40k elements: correct results (the
/// quadratic scans are gone; speed is measured in `make bench`).
#[test]
fn big_batches_against_unique_and_multikey_indexes() {
    let (_d, db) = store();
    let c = db.collection("c").expect("coll");
    c.create_index("u", true).expect("unique");
    let docs: Vec<Value> = (0..40_000).map(|i| json!({ "u": i })).collect();
    assert_eq!(c.insert_many(docs).expect("insert_many").len(), 40_000);
    let clash = vec![json!({"u": -1}), json!({"u": -1})];
    assert!(matches!(c.insert_many(clash), Err(Error::DuplicateKey(_))));
    assert!(matches!(
        c.insert(json!({"u": 39_999})),
        Err(Error::DuplicateKey(_))
    ));
    // A document written twice in one call gives up its own claims.
    let moved = c
        .update_many(&[
            ("1".into(), json!({"u": -5})),
            ("2".into(), json!({"u": 0})),
        ])
        .expect("swap into a freed value");
    assert_eq!(moved[1]["u"], 0);

    let m = db.collection("m").expect("coll");
    m.create_index("tags", false).expect("multikey");
    let tags: Vec<i64> = (0..40_000).collect();
    let id = m.insert(json!({ "tags": tags })).expect("insert");
    m.update_with(&id, &json!({"$push": {"tags": 40_000}}))
        .expect("push");
    m.update_with(&id, &json!({"$pull": {"tags": 7}}))
        .expect("pull");
    let one = |v: i64| m.count(&json!({ "tags": v })).expect("count");
    assert_eq!((one(7), one(40_000), one(8)), (0, 1, 1));
    assert!(m.check().expect("check").is_empty());
}

#[test]
fn one_path_grammar_and_no_silent_literals() {
    let (_d, db) = store();
    let c = db.collection("c").expect("coll");
    let id = c.insert(json!({"a": {"b": 2}})).expect("insert");
    let all = FindOptions::default();
    for bad in ["a..b", ".a", "a.", "$a", "a.$b"] {
        invalid(c.find(&json!({ bad: 1 }), &all), bad);
        invalid(c.create_index(bad, false), bad);
        invalid(
            c.find(
                &json!({}),
                &FindOptions::default().sort_by(bad, SortOrder::Asc),
            ),
            bad,
        );
        invalid(c.update_with(&id, &json!({"$set": { bad: 1 }})), bad);
    }
    let m = invalid(c.find(&json!({"a": {"$gt": 1, "b": 2}}), &all), "mixed");
    assert!(m.contains("unknown operator"), "{m}");
    // A literal object without operators is still an equality.
    assert_eq!(c.count(&json!({"a": {"b": 2}})).expect("count"), 1);
    // `$`-prefixed names cannot be stored (no filter or index reaches them).
    invalid(c.insert(json!({"$where": 1})), "insert $name");
    invalid(c.insert(json!({"x": [{"$y": 1}]})), "nested $name");
    invalid(c.update(&id, &json!({"$z": 1})), "patch $name");
    invalid(
        c.update_with(&id, &json!({"$set": {"v": {"$in": 1}}})),
        "$set of an operator object",
    );
    // `$in` length.
    let many: Vec<i64> = (0..=MAX_IN_VALUES as i64).collect();
    invalid(c.find(&json!({"a": {"$in": many.clone()}}), &all), "$in");
    invalid(c.find(&json!({"a": {"$nin": many}}), &all), "$nin");
    // Filter nesting.
    let mut f = json!({"a": 1});
    for _ in 0..MAX_DEPTH {
        f = json!({ "$not": f });
    }
    invalid(c.find(&f, &all), "deep filter");
    assert_eq!(
        c.get(&id).expect("get"),
        Some(json!({"_id": id, "a": {"b": 2}}))
    );
}

#[test]
fn id_filters_use_the_primary_index_and_id_sorts_in_id_order() {
    let (_d, db) = store();
    let c = db.collection("c").expect("coll");
    for i in 0..12 {
        c.insert(json!({ "n": i })).expect("insert");
    }
    c.insert(json!({"_id": "b"})).expect("named");
    c.insert(json!({"_id": "a"})).expect("named");
    let all = FindOptions::default();
    let plan = c.explain(&json!({"_id": "7"}), &all).expect("explain");
    assert_eq!(plan.index.as_deref(), Some("_id"), "{plan:?}");
    assert_eq!(plan.entries, 1);
    let f = json!({"_id": {"$in": ["3", "11", "zz", 4]}});
    assert_eq!(
        c.explain(&f, &all).expect("explain").index.as_deref(),
        Some("_id")
    );
    let got: Vec<Value> = c
        .find(&f, &all)
        .expect("find")
        .docs
        .iter()
        .map(|d| d["_id"].clone())
        .collect();
    assert_eq!(got, vec![json!("3"), json!("11")]);
    assert_eq!(c.count(&json!({"_id": "a", "n": 1})).expect("count"), 0);
    assert_eq!(c.count(&json!({"_id": "5", "n": 4})).expect("count"), 1);

    let order = |o: &FindOptions| -> Vec<String> {
        c.find(&json!({}), o)
            .expect("find")
            .docs
            .iter()
            .map(|d| d["_id"].as_str().expect("id").to_string())
            .collect()
    };
    let default = order(&all);
    let expected: Vec<String> = (1..=12)
        .map(|i| i.to_string())
        .chain(["a".into(), "b".into()])
        .collect();
    assert_eq!(default, expected);
    assert_eq!(
        order(&FindOptions::default().sort_by("_id", SortOrder::Asc)),
        expected
    );
    let mut rev = expected.clone();
    rev.reverse();
    assert_eq!(
        order(&FindOptions::default().sort_by("_id", SortOrder::Desc)),
        rev
    );
}

#[test]
fn a_page_past_the_end_has_a_prev_cursor() {
    let (_d, db) = store();
    let c = db.collection("c").expect("coll");
    for i in 0..7 {
        c.insert(json!({ "n": i })).expect("insert");
    }
    let past = c
        .find(&json!({}), &FindOptions::default().offset(20).limit(3))
        .expect("find");
    assert!(past.docs.is_empty() && past.has_prev);
    let prev = past
        .prev_cursor
        .expect("prev_cursor on a page with has_prev");
    let back = c
        .find(&json!({}), &FindOptions::default().before(&prev).limit(3))
        .expect("find before");
    let ids: Vec<&str> = back
        .docs
        .iter()
        .map(|d| d["_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["5", "6", "7"]);
}

/// Structure-aware fuzzing of the document layer (issue 29 section 6):
/// arbitrary JSON, deep and wide, as documents, filters, updates, sorts
/// and projections. Whatever is asked, each call returns (an answer or
/// `InvalidArgument`/`DuplicateKey`/`NotFound`), nothing panics or
/// overflows the stack, and the collection stays readable and consistent
/// with its indexes. Failing seeds are kept in
/// `hostile_documents.proptest-regressions`; `make fuzz` runs it longer
/// (PROPTEST_CASES).
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec!["a", "b", "c", "_id", "tags", "n"]).prop_map(String::from),
            2 => prop::sample::select(vec![
                "a.b", "a.0", "a..b", "", ".", "$gt", "$in", "$set", "$x", "a.$b", "tags.1", "_id.x",
            ])
            .prop_map(String::from),
            1 => "[a-c$.]{0,6}",
        ]
    }

    fn json(depth: u32) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-c0-9$]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(depth, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// A value nested `n` levels, to reach past the limits.
    fn tower(n: usize, array: bool) -> Value {
        let mut v = json!(0);
        for _ in 0..n {
            v = if array { json!([v]) } else { json!({ "a": v }) };
        }
        v
    }

    fn request() -> impl Strategy<Value = (Vec<Value>, Value, Value, Value, Value)> {
        let doc = prop_oneof![
            6 => json(4),
            1 => (90usize..110, any::<bool>()).prop_map(|(n, a)| json!({ "a": tower(n, a) })),
        ];
        let filter = prop_oneof![
            4 => json(4),
            1 => (90usize..130).prop_map(|n| {
                let mut f = json!({"a": 1});
                for _ in 0..n {
                    f = json!({ "$or": [f] });
                }
                f
            }),
        ];
        let ops = prop_oneof![
            4 => (prop::sample::select(vec!["$set", "$unset", "$inc", "$mul", "$min", "$max",
                "$rename", "$push", "$pull", "$bad"]), prop::collection::vec((key(), json(3)), 0..5))
                .prop_map(|(op, kv)| json!({ op: Value::Object(kv.into_iter().collect()) })),
            1 => json(3),
            1 => (50usize..150).prop_map(|n| json!({"$set": { vec!["a"; n].join("."): 1 }})),
        ];
        let opts = (
            prop::collection::vec((key(), prop::sample::select(vec![1i64, -1])), 0..3),
            prop::option::of(prop::collection::vec((key(), any::<bool>()), 0..3)),
            prop::option::of(-2i64..30),
        )
            .prop_map(|(sort, proj, limit)| {
                let mut o = Map::new();
                o.insert(
                    "sort".into(),
                    Value::Array(sort.into_iter().map(|(k, d)| json!([k, d])).collect()),
                );
                if let Some(p) = proj {
                    o.insert(
                        "projection".into(),
                        Value::Object(p.into_iter().map(|(k, b)| (k, Value::from(b))).collect()),
                    );
                }
                if let Some(l) = limit {
                    o.insert("limit".into(), l.into());
                }
                Value::Object(o)
            });
        (prop::collection::vec(doc, 1..6), filter, ops, opts, json(2))
    }

    fn expected_error<T: std::fmt::Debug>(r: &keyval::Result<T>) -> bool {
        matches!(
            r,
            Ok(_)
                | Err(Error::InvalidArgument(_))
                | Err(Error::DuplicateKey(_))
                | Err(Error::NotFound(_))
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
            ..ProptestConfig::default()
        })]
        #[test]
        fn any_request_is_answered_or_refused_and_the_collection_stays_readable(
            (docs, filter, ops, opts, index) in request()
        ) {
            let (_d, db) = store();
            let c = db.collection("f").expect("coll");
            c.create_index("a", false).expect("index a");
            c.create_index("tags", true).expect("index tags");
            if let Some(p) = index.as_str() {
                let _ = c.create_index(p, false);
            }
            let mut ids = Vec::new();
            for d in docs {
                let r = c.insert(d);
                prop_assert!(expected_error(&r), "{:?}", r);
                if let Ok(id) = r {
                    ids.push(id);
                }
            }
            let fo = FindOptions::from_json(&opts);
            if let Ok(fo) = &fo {
                let r = c.find(&filter, fo);
                prop_assert!(expected_error(&r), "{:?}", r);
                let r = c.explain(&filter, fo);
                prop_assert!(expected_error(&r), "{:?}", r);
            }
            let r = c.count(&filter);
            prop_assert!(expected_error(&r), "{:?}", r);
            for id in &ids {
                let r = c.update_with(id, &ops);
                prop_assert!(expected_error(&r), "{:?}", r);
                let r = c.update(id, &ops);
                prop_assert!(expected_error(&r), "{:?}", r);
            }
            // Whatever was stored stays readable, and agrees with its
            // indexes.
            let all = c.find(&json!({}), &FindOptions::default().limit(1000)).expect("find all");
            prop_assert_eq!(all.docs.len() as u64, c.count(&json!({})).expect("count"));
            prop_assert_eq!(c.find_iter(&json!({})).expect("iter").count(), all.docs.len());
            prop_assert!(c.check().expect("check").is_empty());
            for d in &all.docs {
                keyval::check_document(d).expect("a stored document within the limits");
            }
        }
    }
}

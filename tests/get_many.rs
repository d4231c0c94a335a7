//! `Db::get_many` and `Keyspace::get_many`: the same answers as one `get`
//! per key, in order, with absent keys, empty values and duplicates; a bad
//! key refuses the whole call; and a concurrent writer that moves two keys
//! together is never seen half-done, because all keys are read under one
//! read lock.

use keyval::{Db, Error, Options, WriteBatch};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn small() -> Options {
    Options {
        segment_size: 64 << 10,
        ..Options::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn matches_one_get_per_key(
        puts in prop::collection::vec((0u8..40, prop::collection::vec(any::<u8>(), 0..20)), 0..80),
        dels in prop::collection::vec(0u8..40, 0..20),
        asks in prop::collection::vec(0u8..50, 0..60),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), small()).expect("open");
        let mut model = BTreeMap::new();
        for (k, v) in &puts {
            db.set([b'k', *k], v).expect("set");
            model.insert(vec![b'k', *k], v.clone());
        }
        for k in &dels {
            db.delete([b'k', *k]).expect("delete");
            model.remove(&vec![b'k', *k]);
        }
        let keys: Vec<Vec<u8>> = asks.iter().map(|k| vec![b'k', *k]).collect();
        let got = db.get_many(&keys).expect("get_many");
        prop_assert_eq!(got.len(), keys.len());
        for (k, v) in keys.iter().zip(&got) {
            prop_assert_eq!(v.as_ref(), model.get(k));
            prop_assert_eq!(v.clone(), db.get(k).expect("get"));
        }
        db.close().expect("close");
    }
}

#[test]
fn a_bad_key_refuses_the_whole_call_and_metrics_count_each_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small()).expect("open");
    db.set(b"a", b"").expect("set");
    db.set(b"b", b"2").expect("set");
    let before = db.metrics().expect("metrics");
    let got = db
        .get_many(&[&b"a"[..], b"zz", b"b", b"a"])
        .expect("get_many");
    assert_eq!(
        got,
        vec![Some(vec![]), None, Some(b"2".to_vec()), Some(vec![])]
    );
    assert!(db.get_many::<&[u8]>(&[]).expect("empty").is_empty());
    let m = db.metrics().expect("metrics");
    assert_eq!(m.gets - before.gets, 4);
    assert_eq!(m.get_hits - before.get_hits, 3);
    let err = db.get_many(&[&b"a"[..], b""]).expect_err("empty key");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let long = vec![b'x'; 70_000];
    let err = db.get_many(&[&b"a"[..], &long]).expect_err("long key");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    db.close().expect("close");
    assert!(matches!(db.get_many(&[b"a"]), Err(Error::Closed)));
}

#[test]
fn keyspaces_answer_from_their_own_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small()).expect("open");
    let ks = db.keyspace("users").expect("keyspace");
    db.set(b"k", b"default").expect("set");
    ks.set(b"k", b"users").expect("set");
    assert_eq!(
        ks.get_many(&[&b"k"[..], b"x"]).expect("get_many"),
        vec![Some(b"users".to_vec()), None]
    );
    assert_eq!(
        db.get_many(&[b"k"]).expect("get_many"),
        vec![Some(b"default".to_vec())]
    );
    db.drop_keyspace("users").expect("drop");
    assert!(matches!(ks.get_many(&[b"k"]), Err(Error::NotFound(_))));
    db.close().expect("close");
}

/// A writer moves one unit between two accounts in each batch, so the sum
/// is always 100. Every get_many of both accounts must see a sum of 100: a
/// reader that took the lock per key could see one side of a batch.
#[test]
fn values_are_read_at_one_point_in_the_write_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(Db::open(dir.path(), Options::default()).expect("open"));
    let mut b = WriteBatch::new();
    b.put(b"a", b"100").put(b"b", b"0");
    db.write(b).expect("init");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut a = 100i64;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) || i < 200 {
                a = if a == 0 { 100 } else { a - 1 };
                let mut b = WriteBatch::new();
                b.put(b"a", a.to_string()).put(b"b", (100 - a).to_string());
                db.write_opt(
                    b,
                    &keyval::WriteOptions::with_durability(keyval::Durability::Buffered),
                )
                .expect("write");
                i += 1;
            }
        })
    };
    let num = |v: &Option<Vec<u8>>| -> i64 {
        std::str::from_utf8(v.as_deref().expect("present"))
            .expect("utf8")
            .parse()
            .expect("number")
    };
    for _ in 0..20_000 {
        let got = db.get_many(&[b"a", b"b"]).expect("get_many");
        assert_eq!(num(&got[0]) + num(&got[1]), 100, "a torn read: {got:?}");
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
}

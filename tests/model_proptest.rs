//! Random operation sequences, interleaved with checkpoints, clean reopens
//! and simulated crashes, against a `BTreeMap` model. Under `Sync` every
//! acknowledged write survives a crash, so the model never forgets.
use keyval::{Db, WriteBatch};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Op {
    Set(u8, Vec<u8>),
    Delete(u8),
    Batch(Vec<(u8, Option<Vec<u8>>)>),
    Checkpoint,
    Reopen,
    Crash,
}

fn key(k: u8) -> Vec<u8> {
    format!("key-{k:03}").into_bytes()
}

fn op() -> impl Strategy<Value = Op> {
    let val = proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        10 => (0u8..40, val.clone()).prop_map(|(k, v)| Op::Set(k, v)),
        4 => (0u8..40).prop_map(Op::Delete),
        3 => proptest::collection::vec((0u8..40, proptest::option::of(val)), 1..8).prop_map(Op::Batch),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

fn check(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(), TestCaseError> {
    prop_assert_eq!(db.len().expect("len"), model.len() as u64);
    let got: Vec<(Vec<u8>, Vec<u8>)> = db.iter().map(|r| r.expect("iter")).collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    prop_assert_eq!(got, want);
    // Point reads go through the hash index, scans through the ordered one:
    // both must agree with the model, present keys and absent ones.
    for k in 0u8..40 {
        let got = db.get(key(k)).expect("get");
        prop_assert_eq!(got.as_ref(), model.get(&key(k)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn matches_a_btreemap_across_reopens_and_crashes(ops in proptest::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = keyval::Options { segment_size: 64 << 10, max_wal_size: 32 << 10, keep_snapshots: 2, ..Default::default() };
        let mut db = Db::open(dir.path(), opts.clone()).expect("open");
        let mut model = BTreeMap::new();
        for op in ops {
            match op {
                Op::Set(k, v) => { db.set(key(k), &v).expect("set"); model.insert(key(k), v); }
                Op::Delete(k) => { db.delete(key(k)).expect("delete"); model.remove(&key(k)); }
                Op::Batch(items) => {
                    let mut b = WriteBatch::new();
                    for (k, v) in &items {
                        match v { Some(v) => { b.put(key(*k), v); } None => { b.delete(key(*k)); } }
                    }
                    db.write(b).expect("batch");
                    for (k, v) in items {
                        match v { Some(v) => { model.insert(key(k), v); } None => { model.remove(&key(k)); } }
                    }
                }
                Op::Checkpoint => db.checkpoint().expect("checkpoint"),
                Op::Reopen => { db.close().expect("close"); db = Db::open(dir.path(), opts.clone()).expect("reopen"); check(&db, &model)?; }
                Op::Crash => { db.crash_for_testing(); db = Db::open(dir.path(), opts.clone()).expect("recover"); check(&db, &model)?; }
            }
        }
        check(&db, &model)?;
        for k in 0..40u8 {
            prop_assert_eq!(db.get(key(k)).expect("get"), model.get(&key(k)).cloned());
        }
    }
}

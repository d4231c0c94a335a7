//! Recovery replays the WAL in bulk mode (one sort and merge instead of a
//! B-tree search per write). These tests hold it to the same result as the
//! write path: random histories over the default keyspace and named
//! keyspaces (puts, overwrites, deletes, batches, keyspaces created,
//! dropped and re-created under the same name), with checkpoints at random
//! points so that replay merges into a loaded snapshot as well as into an
//! empty table, then a crash without a final checkpoint and a reopen. The
//! reopened store must hold exactly the model's pairs, and its counts
//! (keys, key and value bytes, per keyspace too) must equal those of the
//! store before the crash.

use keyval::{Db, Durability, Options, WriteBatch};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Step {
    Put(u8, u8, u8), // keyspace (0 = default), key, value length
    Delete(u8, u8),  // keyspace, key
    Batch(Vec<(u8, u8, Option<u8>)>),
    Create(u8),
    Drop(u8),
    Checkpoint,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..3, 0u8..24, 0u8..40).prop_map(|(s, k, l)| Step::Put(s, k, l)),
        2 => (0u8..3, 0u8..24).prop_map(|(s, k)| Step::Delete(s, k)),
        2 => prop::collection::vec((0u8..24, 0u8..40, any::<bool>()), 1..8)
            .prop_map(|v| Step::Batch(v.into_iter().map(|(k, l, d)| (0, k, (!d).then_some(l))).collect())),
        1 => (1u8..3).prop_map(Step::Create),
        1 => (1u8..3).prop_map(Step::Drop),
        1 => Just(Step::Checkpoint),
    ]
}

type Model = BTreeMap<u8, BTreeMap<Vec<u8>, Vec<u8>>>;

fn name(s: u8) -> String {
    format!("ks{s}")
}

fn contents(db: &Db, s: u8) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let it = if s == 0 {
        db.iter()
    } else {
        db.open_keyspace(&name(s)).expect("keyspace").iter()
    };
    it.map(|p| p.expect("pair")).collect()
}

fn counts(db: &Db, model: &Model) -> Vec<(u8, u64, u64, u64)> {
    let st = db.stats().expect("stats");
    let mut out = vec![(0, st.keys, st.key_bytes, st.value_bytes)];
    for &s in model.keys().filter(|&&s| s != 0) {
        let k = db
            .open_keyspace(&name(s))
            .expect("keyspace")
            .stats()
            .expect("stats");
        out.push((s, k.keys, k.key_bytes, k.value_bytes));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn replay_in_bulk_equals_the_write_path(steps in prop::collection::vec(step(), 1..120)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = Options {
            segment_size: 64 << 10,
            max_wal_size: 0,
            durability: Durability::Buffered,
            ..Options::default()
        };
        let db = Db::open(dir.path(), opts.clone()).expect("open");
        let mut model: Model = BTreeMap::from([(0, BTreeMap::new())]);
        for st in &steps {
            match st {
                Step::Put(s, k, l) => {
                    if let Some(m) = model.get_mut(s) {
                        let (key, val) = (vec![b'k', *k], vec![*k; *l as usize]);
                        if *s == 0 {
                            db.set(&key, &val).expect("set");
                        } else {
                            db.open_keyspace(&name(*s)).expect("ks").set(&key, &val).expect("set");
                        }
                        m.insert(key, val);
                    }
                }
                Step::Delete(s, k) => {
                    if let Some(m) = model.get_mut(s) {
                        let key = vec![b'k', *k];
                        if *s == 0 {
                            db.delete(&key).expect("delete");
                        } else {
                            db.open_keyspace(&name(*s)).expect("ks").delete(&key).expect("delete");
                        }
                        m.remove(&key);
                    }
                }
                Step::Batch(ops) => {
                    let mut b = WriteBatch::new();
                    let m = model.get_mut(&0).expect("default");
                    for (_, k, v) in ops {
                        let key = vec![b'k', *k];
                        match v {
                            Some(l) => {
                                let val = vec![*l; *l as usize];
                                b.put(&key, &val);
                                m.insert(key, val);
                            }
                            None => {
                                b.delete(&key);
                                m.remove(&key);
                            }
                        }
                    }
                    db.write(b).expect("batch");
                }
                Step::Create(s) => {
                    db.keyspace(&name(*s)).expect("create");
                    model.entry(*s).or_default();
                }
                Step::Drop(s) => {
                    db.drop_keyspace(&name(*s)).expect("drop");
                    model.remove(s);
                }
                Step::Checkpoint => db.checkpoint().expect("checkpoint"),
            }
        }
        db.sync().expect("sync");
        let before = counts(&db, &model);
        db.crash_for_testing();
        let db = Db::open(dir.path(), opts).expect("reopen");
        for (s, m) in &model {
            prop_assert_eq!(&contents(&db, *s), m, "keyspace {}", s);
        }
        prop_assert_eq!(counts(&db, &model), before);
        let mut names: Vec<String> = db.list_keyspaces().expect("names");
        names.sort();
        let want: Vec<String> = model.keys().filter(|&&s| s != 0).map(|&s| name(s)).collect();
        prop_assert_eq!(names, want);
        db.close().expect("close");
    }
}

/// A log that overwrites a few thousand keys with more than 64 MiB of
/// writes: replay flushes its list part-way (the memory bound) and merges
/// again at the end; the result must still be the last write of each key.
#[test]
fn a_long_log_of_overwrites_replays_with_flushes_part_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        max_wal_size: 0,
        durability: Durability::Buffered,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts.clone()).expect("open");
    let mut model = BTreeMap::new();
    let mut x = 7u64;
    for round in 0..400u64 {
        let mut b = WriteBatch::new();
        for _ in 0..100 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = format!("k{:05}", (x >> 33) % 3000).into_bytes();
            if (x >> 20) % 10 == 0 {
                b.delete(&key);
                model.remove(&key);
            } else {
                let val = vec![(round % 251) as u8; 2048];
                b.put(&key, &val);
                model.insert(key, val);
            }
        }
        db.write(b).expect("batch");
    }
    db.sync().expect("sync");
    let before = db.stats().expect("stats");
    assert!(before.wal_bytes_since_checkpoint > 70 << 20, "{before:?}");
    db.crash_for_testing();
    let db = Db::open(dir.path(), opts).expect("reopen");
    let got: BTreeMap<Vec<u8>, Vec<u8>> = db.iter().map(|p| p.expect("pair")).collect();
    assert!(
        got == model,
        "replayed contents differ from the last writes"
    );
    let after = db.stats().expect("stats");
    assert_eq!(
        (after.keys, after.key_bytes, after.value_bytes),
        (before.keys, before.key_bytes, before.value_bytes)
    );
    db.close().expect("close");
}

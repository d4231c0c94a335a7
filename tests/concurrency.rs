//! Concurrent readers and writers; group commit shares fsyncs.
mod common;
use common::*;
use keyval::Db;
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn concurrent_writers_share_fsyncs_and_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    std::thread::scope(|s| {
        for t in 0..8u32 {
            let db = &db;
            s.spawn(move || {
                for i in 0..200u32 {
                    db.set(format!("t{t}-{i}"), format!("{t}/{i}"))
                        .expect("set");
                }
            });
        }
    });
    let st = db.stats().expect("stats");
    assert_eq!(st.keys, 1600);
    assert_eq!(st.writes, 1600);
    assert!(
        st.commit_groups < st.writes,
        "no group commit happened: {st:?}"
    );
    assert!(st.fsyncs <= st.commit_groups + st.wal_segments, "{st:?}");
    db.crash_for_testing();
    let db = Db::open(dir.path(), small_opts()).expect("reopen");
    assert_eq!(db.len().expect("len"), 1600);
}

#[test]
fn readers_see_only_whole_batches_while_writers_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), opts_with(keyval::Durability::Os)).expect("open");
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..2u32 {
            let db = &db;
            s.spawn(move || {
                for round in 0..300u32 {
                    // Each batch sets a/b/c of this writer to the same round.
                    let mut b = keyval::WriteBatch::new();
                    for k in ["a", "b", "c"] {
                        b.put(format!("{t}{k}"), round.to_le_bytes());
                    }
                    db.write(b).expect("write");
                }
            });
        }
        for _ in 0..2 {
            let (db, stop) = (&db, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for t in 0..2u32 {
                        let pairs: Vec<_> = db
                            .prefix(t.to_string())
                            .map(|r| r.expect("iter").1)
                            .collect();
                        // Iteration is not a snapshot, but values only grow.
                        assert!(pairs.is_empty() || pairs.len() == 3);
                        if let Some(v) = db.get(format!("{t}a")).expect("get") {
                            assert_eq!(v.len(), 4);
                        }
                    }
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        // Writers finish on their own; then stop the readers.
        while db.len().expect("len") < 6 {
            std::thread::yield_now();
        }
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
        });
    });
    assert_eq!(
        db.get("0a").expect("get"),
        Some(299u32.to_le_bytes().to_vec())
    );
}

#[test]
fn checkpoint_runs_while_writers_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), opts_with(keyval::Durability::Os)).expect("open");
    for i in 0..20_000u32 {
        db.set(format!("base{i}"), "x").expect("set");
    }
    std::thread::scope(|s| {
        let db = &db;
        s.spawn(move || {
            for i in 0..5000u32 {
                db.set(format!("live{i}"), "y").expect("set");
                if i % 1000 == 0 {
                    db.delete(format!("base{i}")).expect("delete");
                }
            }
        });
        for _ in 0..5 {
            db.checkpoint().expect("checkpoint");
        }
    });
    db.checkpoint().expect("final checkpoint");
    let expect = 20_000 + 5000 - 5;
    assert_eq!(db.len().expect("len"), expect);
    db.crash_for_testing();
    let db = Db::open(dir.path(), small_opts()).expect("reopen");
    assert_eq!(db.len().expect("len"), expect);
    assert_eq!(db.stats().expect("stats").recovery.records_replayed, 0);
}

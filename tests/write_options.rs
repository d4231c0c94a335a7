//! Per-write durability (`WriteOptions`): a write may ask for a level other
//! than the store's, a `Sync` write makes every earlier write durable, and
//! under concurrency a group is brought to the strongest level any member
//! asked for. Checked on the simulated file system, whose crash images keep
//! only what was fsynced (a power cut) and whose `crash_for_testing` loses
//! only the in-process buffer (a killed process).
use keyval::fs::{CrashMode, FileSystem, SimFs};
use keyval::{Db, Durability, Options, WriteBatch, WriteOptions};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const DIR: &str = "/wo";

fn opts(durability: Durability) -> Options {
    Options {
        durability,
        segment_size: 64 << 10,
        max_wal_size: 0,
        ..Options::default()
    }
}

fn open(fs: &SimFs, durability: Durability) -> Db {
    fs.create_dir_all(Path::new(DIR)).expect("mkdir");
    let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
    Db::open_with_fs(DIR, opts(durability), fsa).expect("open")
}

/// Recover what a power cut now would leave.
fn power_cut(fs: &SimFs, seed: u64) -> Db {
    let image: Arc<dyn FileSystem> = Arc::new(fs.crash_image(CrashMode::DropAll, seed));
    Db::open_with_fs(DIR, opts(Durability::Sync), image).expect("recover image")
}

const SYNC: WriteOptions = WriteOptions::with_durability(Durability::Sync);

#[test]
fn a_sync_write_on_a_buffered_store_makes_every_earlier_write_durable() {
    let fs = SimFs::new();
    let db = open(&fs, Durability::Buffered);
    for i in 0..50 {
        db.set(format!("b{i:02}"), b"buffered").expect("set");
    }
    let before = db.stats().expect("stats").fsyncs;
    // Nothing buffered is durable yet: a power cut loses all of it.
    let cut = power_cut(&fs, 1);
    assert_eq!(cut.len().expect("len"), 0, "buffered writes were synced");
    cut.crash_for_testing();

    db.set_opt(
        "s",
        b"sync",
        &WriteOptions::with_durability(Durability::Sync),
    )
    .expect("sync set");
    assert_eq!(db.stats().expect("stats").fsyncs, before + 1);
    let cut = power_cut(&fs, 2);
    assert_eq!(cut.get("s").expect("get").as_deref(), Some(&b"sync"[..]));
    for i in 0..50 {
        assert!(
            cut.contains(format!("b{i:02}")).expect("contains"),
            "b{i:02} lost"
        );
    }
    cut.crash_for_testing();

    // Later writes at the store's level are again not durable, and a
    // delete and a batch can ask for Sync too.
    db.set("late", b"x").expect("set");
    let cut = power_cut(&fs, 3);
    assert!(!cut.contains("late").expect("contains"));
    cut.crash_for_testing();
    db.delete_opt("b00", &SYNC).expect("delete");
    let mut b = WriteBatch::new();
    b.put("batch", b"y");
    db.write_opt(b, &SYNC).expect("write");
    let cut = power_cut(&fs, 4);
    assert!(cut.contains("late").expect("contains"));
    assert!(!cut.contains("b00").expect("contains"));
    assert!(cut.contains("batch").expect("contains"));
    cut.crash_for_testing();
}

#[test]
fn a_buffered_write_on_a_sync_store_is_acknowledged_before_its_fsync() {
    let fs = SimFs::new();
    let db = open(&fs, Durability::Sync);
    let ks = db.keyspace("space").expect("keyspace");
    db.set("durable", b"1").expect("set");
    let before = db.stats().expect("stats").fsyncs;
    let fast = WriteOptions::with_durability(Durability::Buffered);
    for i in 0..20 {
        db.set_opt(format!("f{i:02}"), b"fast", &fast).expect("set");
        ks.set_opt(format!("k{i:02}"), b"fast", &fast).expect("set");
    }
    ks.delete_opt("k00", &fast).expect("delete");
    assert_eq!(
        db.stats().expect("stats").fsyncs,
        before,
        "a Buffered write waited for an fsync"
    );
    // Visible at once, lost by a power cut, made durable by Db::sync.
    assert!(db.contains("f19").expect("contains"));
    let cut = power_cut(&fs, 5);
    assert!(cut.contains("durable").expect("contains"));
    assert!(!cut.contains("f00").expect("contains"));
    cut.crash_for_testing();
    db.sync().expect("sync");
    let cut = power_cut(&fs, 6);
    assert!(cut.contains("f19").expect("contains"));
    let cks = cut.keyspace("space").expect("keyspace");
    assert!(!cks.contains("k00").expect("contains"));
    assert!(cks.contains("k19").expect("contains"));
    cut.crash_for_testing();
}

#[test]
fn an_os_write_survives_a_process_crash_and_carries_earlier_buffered_writes() {
    let fs = SimFs::new();
    let db = open(&fs, Durability::Buffered);
    db.set("a", b"buffered").expect("set");
    db.set_opt("b", b"os", &WriteOptions::with_durability(Durability::Os))
        .expect("set");
    db.set("c", b"buffered").expect("set");
    assert_eq!(db.stats().expect("stats").fsyncs, 0, "an Os write synced");
    db.crash_for_testing();
    let db = open(&fs, Durability::Buffered);
    assert!(db.contains("a").expect("contains"));
    assert!(db.contains("b").expect("contains"));
    assert!(
        !db.contains("c").expect("contains"),
        "a Buffered write survived a process crash: the test would not see a lost Os write"
    );
}

/// Four writers at `Buffered` and one at `Sync`, on a `Buffered` store.
/// A checker takes power-cut images: every write acknowledged before the
/// start of a `Sync` write that was itself acknowledged before the image
/// must be in it, and each writer's keys in an image form a prefix of what
/// it wrote (writes stay in WAL order).
#[test]
fn mixed_levels_under_group_commit() {
    let fs = SimFs::new();
    let db = open(&fs, Durability::Buffered);
    const N: usize = 400;
    // Keys in acknowledgement order.
    let acked: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    // Every entry of `acked` below this index is covered by a Sync write.
    let durable_upto = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let mut checks = 0u64;
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..5)
            .map(|t| {
                let (db, acked, durable_upto) = (&db, &acked, &durable_upto);
                s.spawn(move || {
                    for i in 0..N {
                        let k = format!("t{t}-{i:04}");
                        if t == 0 {
                            let covered = acked.lock().len();
                            db.set_opt(&k, b"v", &SYNC).expect("set");
                            durable_upto.fetch_max(covered, Ordering::AcqRel);
                        } else {
                            db.set(&k, b"v").expect("set");
                        }
                        acked.lock().push((t, i));
                    }
                })
            })
            .collect();
        let checker = s.spawn(|| {
            let mut n = 0;
            while !done.load(Ordering::Acquire) {
                let upto = durable_upto.load(Ordering::Acquire);
                let must: Vec<(usize, usize)> = acked.lock()[..upto].to_vec();
                let cut = power_cut(&fs, n);
                for (t, i) in &must {
                    assert!(
                        cut.contains(format!("t{t}-{i:04}")).expect("contains"),
                        "t{t}-{i:04} was acknowledged before a Sync write but is not durable"
                    );
                }
                for t in 0..5 {
                    let present: Vec<bool> = (0..N)
                        .map(|i| cut.contains(format!("t{t}-{i:04}")).expect("contains"))
                        .collect();
                    let first_missing = present.iter().position(|p| !p).unwrap_or(N);
                    assert!(
                        present[first_missing..].iter().all(|p| !p),
                        "writer {t}'s keys in a power-cut image have a hole at {first_missing}"
                    );
                }
                cut.crash_for_testing();
                n += 1;
            }
            n
        });
        for w in writers {
            w.join().expect("writer");
        }
        done.store(true, Ordering::Release);
        checks = checker.join().expect("checker");
    });
    let st = db.stats().expect("stats");
    assert_eq!(st.keys, 5 * N as u64);
    assert!(checks > 2, "the checker ran only {checks} times");
    // The Sync writer asked for N fsyncs (grouped writes may share one);
    // each segment rotation adds at most two.
    assert!(
        st.fsyncs >= 1 && st.fsyncs <= N as u64 + 2 * st.wal_segments,
        "{st:?}"
    );
    // After the last Sync write everything before it is durable.
    let cut = power_cut(&fs, 999);
    for i in 0..N {
        assert!(cut.contains(format!("t0-{i:04}")).expect("contains"));
    }
    cut.crash_for_testing();
}

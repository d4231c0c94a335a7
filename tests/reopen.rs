//! Reopening after a clean close, after drop, and after a simulated crash.
mod common;
use common::*;
use keyval::{Db, Durability, Options};

#[test]
fn clean_close_replays_no_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    for i in 0..2000u32 {
        db.set(format!("key{i:05}"), format!("value{i}"))
            .expect("set");
    }
    db.delete("key00007").expect("delete");
    db.close().expect("close");
    assert!(matches!(db.get("key00001"), Err(keyval::Error::Closed)));
    assert!(db.close().is_ok(), "second close is a no-op");

    let db = Db::open(dir.path(), small_opts()).expect("reopen");
    let st = db.stats().expect("stats");
    assert_eq!(st.recovery.records_replayed, 0, "{st:?}");
    assert_eq!(st.keys, 1999);
    assert_eq!(
        db.get("key00042").expect("get").as_deref(),
        Some(&b"value42"[..])
    );
    assert_eq!(db.get("key00007").expect("get"), None);
}

#[test]
fn drop_without_close_also_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Db::open(dir.path(), small_opts()).expect("open");
        db.set("a", "1").expect("set");
    }
    let db = Db::open(dir.path(), small_opts()).expect("reopen");
    assert_eq!(db.stats().expect("stats").recovery.records_replayed, 0);
    assert_eq!(db.get("a").expect("get").as_deref(), Some(&b"1"[..]));
}

#[test]
fn crash_replays_wal_across_segment_rotations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    for i in 0..3000u32 {
        db.set(format!("k{i}"), vec![b'x'; 100]).expect("set");
    }
    assert!(segments(dir.path()).len() > 3, "rotated");
    db.crash_for_testing();
    let db = Db::open(dir.path(), small_opts()).expect("reopen");
    let st = db.stats().expect("stats");
    assert_eq!(st.recovery.records_replayed, 3000);
    assert_eq!(st.keys, 3000);
    assert!(st.recovery.truncation.is_none());
    // Writing continues where recovery stopped.
    db.set("after", "crash").expect("set");
    db.crash_for_testing();
    let db = Db::open(dir.path(), small_opts()).expect("reopen 2");
    assert_eq!(db.len().expect("len"), 3001);
}

#[test]
fn checkpoint_removes_covered_wal_and_old_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        keep_snapshots: 2,
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts.clone()).expect("open");
    for round in 0..4u32 {
        for i in 0..1000u32 {
            db.set(format!("k{i}"), format!("{round}-{i}-{}", "v".repeat(80)))
                .expect("set");
        }
        db.checkpoint().expect("checkpoint");
    }
    assert_eq!(snapshots(dir.path()).len(), 2);
    let st = db.stats().expect("stats");
    assert_eq!(st.checkpoints, 4);
    // Only the WAL after the older kept snapshot remains (plus the active segment).
    assert!(
        st.wal_segments <= 1 + (1000 * 176 / (64 << 10)) as u64 + 2,
        "{st:?}"
    );
    db.crash_for_testing();
    let db = Db::open(dir.path(), opts).expect("reopen");
    assert_eq!(
        db.get("k999").expect("get").map(|v| v[..5].to_vec()),
        Some(b"3-999".to_vec())
    );
}

#[test]
fn automatic_checkpoint_triggers_on_wal_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        max_wal_size: 256 << 10,
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts).expect("open");
    for i in 0..5000u32 {
        db.set(format!("k{i}"), vec![1u8; 200]).expect("set");
    }
    // The checkpoint runs in the background; close waits for it.
    db.close().expect("close");
    assert!(!snapshots(dir.path()).is_empty());
    let db = Db::open(dir.path(), small_opts()).expect("reopen");
    assert_eq!(db.len().expect("len"), 5000);
}

/// `checkpoint_interval`: a store that was written to and then left idle
/// is checkpointed by time alone (the WAL-size trigger is off), so a crash
/// afterwards replays nothing; without the option, nothing checkpoints.
#[test]
fn time_based_checkpoint_runs_when_idle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        checkpoint_interval: Some(std::time::Duration::from_millis(20)),
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts.clone()).expect("open");
    for i in 0..300u32 {
        db.set(format!("k{i}"), vec![2u8; 100]).expect("set");
    }
    // Wait (bounded) for the ticker to cover the last write (it may also
    // have run during the writes); no timing is asserted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while db
        .stats()
        .map(|s| s.snapshot_lsn < s.last_lsn)
        .expect("stats")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no time-based checkpoint in 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let st = db.stats().expect("stats");
    assert_eq!(st.wal_bytes_since_checkpoint, 0, "{st:?}");
    assert!(st.snapshot_lsn >= 300, "{st:?}");
    db.crash_for_testing();
    let db = Db::open(dir.path(), opts).expect("reopen");
    let st = db.stats().expect("stats");
    assert_eq!(st.recovery.records_replayed, 0, "{st:?}");
    assert_eq!(db.len().expect("len"), 300);
    db.close().expect("close");

    // Off by default: idle stores are left alone.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    db.set("a", "1").expect("set");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(db.stats().expect("stats").checkpoints, 0);
    let bad = Options {
        checkpoint_interval: Some(std::time::Duration::from_millis(1)),
        ..small_opts()
    };
    let other = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        Db::open(other.path(), bad),
        Err(keyval::Error::InvalidArgument(_))
    ));
}

/// Writes made while a checkpoint is being written still count toward the
/// next one: whenever the newest snapshot does not cover the last write,
/// `wal_bytes_since_checkpoint` is not zero (it was reset to zero after
/// every checkpoint, so the time-based checkpoint could stop for good
/// with writes uncovered).
#[test]
fn writes_during_a_checkpoint_still_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), opts_with(Durability::Os)).expect("open");
    // A store big enough that writing its snapshot takes a while.
    for c in 0..20u32 {
        let mut b = keyval::WriteBatch::new();
        for i in 0..1000u32 {
            b.put(format!("pre{c:02}-{i:04}"), vec![1u8; 1000]);
        }
        db.write(b).expect("preload");
    }
    let mut violations = Vec::new();
    for round in 0..8u32 {
        std::thread::scope(|s| {
            // A few writes that land while the checkpoint below runs.
            s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(3));
                for i in 0..5u32 {
                    db.set(format!("r{round}k{i}"), "during").expect("set");
                }
            });
            db.checkpoint().expect("checkpoint");
        });
        let st = db.stats().expect("stats");
        if st.snapshot_lsn < st.last_lsn && st.wal_bytes_since_checkpoint == 0 {
            violations.push((round, st.snapshot_lsn, st.last_lsn));
        }
    }
    assert!(
        violations.is_empty(),
        "uncovered writes not counted: {violations:?}"
    );
}

#[test]
fn every_durability_level_survives_clean_close() {
    for d in [Durability::Buffered, Durability::Os, Durability::Sync] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), opts_with(d)).expect("open");
        for i in 0..500u32 {
            db.set(format!("k{i}"), "v").expect("set");
        }
        db.close().expect("close");
        let db = Db::open(dir.path(), opts_with(d)).expect("reopen");
        assert_eq!(db.len().expect("len"), 500, "{d:?}");
    }
}

#[test]
fn buffered_writes_are_lost_on_crash_but_os_writes_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), opts_with(Durability::Buffered)).expect("open");
    db.set("lost", "yes").expect("set");
    db.crash_for_testing();
    let db = Db::open(dir.path(), opts_with(Durability::Os)).expect("reopen");
    assert_eq!(
        db.get("lost").expect("get"),
        None,
        "buffered write should not reach the OS"
    );
    db.set("kept", "yes").expect("set");
    db.crash_for_testing();
    let db = Db::open(dir.path(), opts_with(Durability::Sync)).expect("reopen");
    assert_eq!(db.get("kept").expect("get").as_deref(), Some(&b"yes"[..]));
}

#[test]
fn iteration_by_range_and_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    for i in 0..1000u32 {
        db.set(format!("user:{i:04}"), i.to_string()).expect("set");
        db.set(format!("item:{i:04}"), i.to_string()).expect("set");
    }
    db.set([0xFFu8, 0xFF], "max").expect("set");
    let users: Vec<_> = db.prefix("user:").map(|r| r.expect("item").0).collect();
    assert_eq!(users.len(), 1000);
    assert!(users.windows(2).all(|w| w[0] < w[1]));
    let r: Vec<_> = db
        .range(b"item:0010".as_slice()..b"item:0013".as_slice())
        .map(|r| r.expect("item").0)
        .collect();
    assert_eq!(
        r,
        vec![
            b"item:0010".to_vec(),
            b"item:0011".to_vec(),
            b"item:0012".to_vec()
        ]
    );
    let r: Vec<_> = db
        .range(b"item:0998".as_slice()..=b"item:0999".as_slice())
        .map(|r| r.expect("item").0)
        .collect();
    assert_eq!(r.len(), 2);
    assert_eq!(db.prefix([0xFFu8]).count(), 1);
    assert_eq!(db.iter().count(), 2001);
    assert_eq!(db.range(b"z".as_slice()..b"a".as_slice()).count(), 0);
    let mut it = db.iter();
    db.close().expect("close");
    assert!(matches!(it.next(), Some(Err(keyval::Error::Closed))));
}

#[test]
fn bad_input_is_rejected_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        max_key_size: 16,
        max_value_size: 32,
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts).expect("open");
    db.set("ok", "fine").expect("set");
    assert!(matches!(
        db.set("", "x"),
        Err(keyval::Error::InvalidArgument(_))
    ));
    assert!(matches!(db.get(""), Err(keyval::Error::InvalidArgument(_))));
    assert!(matches!(
        db.set(vec![1u8; 17], "x"),
        Err(keyval::Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.set("k", vec![1u8; 33]),
        Err(keyval::Error::InvalidArgument(_))
    ));
    let mut b = keyval::WriteBatch::new();
    b.put("good", "1").put("", "bad");
    assert!(matches!(
        db.write(b),
        Err(keyval::Error::InvalidArgument(_))
    ));
    assert_eq!(
        db.get("good").expect("get"),
        None,
        "invalid batch applied nothing"
    );
    assert_eq!(db.len().expect("len"), 1);
    db.set(vec![1u8; 16], vec![2u8; 32])
        .expect("limits are inclusive");
}

#[test]
fn open_errors_are_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").expect("write");
    assert!(matches!(
        Db::open(&file, small_opts()),
        Err(keyval::Error::InvalidArgument(_))
    ));
    let missing = dir.path().join("missing");
    let no_create = Options {
        create_if_missing: false,
        ..small_opts()
    };
    assert!(matches!(
        Db::open(&missing, no_create),
        Err(keyval::Error::InvalidArgument(_))
    ));
    let bad = Options {
        segment_size: 10,
        ..small_opts()
    };
    assert!(matches!(
        Db::open(dir.path().join("x"), bad),
        Err(keyval::Error::InvalidArgument(_))
    ));
    // Garbage files with unknown names are ignored; the store opens.
    let d2 = dir.path().join("garbage");
    std::fs::create_dir(&d2).expect("mkdir");
    std::fs::write(d2.join("README.txt"), b"hello").expect("write");
    let db = Db::open(&d2, small_opts()).expect("open with unrelated files");
    db.set("a", "b").expect("set");
}

#[test]
fn large_values_and_batches_get_their_own_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let big = vec![7u8; 300 << 10]; // larger than a 64 KiB segment
    db.set("big", &big).expect("set big");
    let mut b = keyval::WriteBatch::new();
    for i in 0..2000u32 {
        b.put(format!("b{i}"), vec![3u8; 100]);
    }
    db.write(b).expect("big batch");
    db.crash_for_testing();
    let db = Db::open(dir.path(), small_opts()).expect("reopen");
    assert_eq!(db.get("big").expect("get").expect("present"), big);
    assert_eq!(db.len().expect("len"), 2001);
}

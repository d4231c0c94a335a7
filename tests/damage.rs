//! Torn tails are truncated and reported; damage in front of durable
//! records is a loud Corruption naming file and offset; a bad newest
//! snapshot falls back to the older one plus the WAL.
mod common;
use common::*;
use keyval::{Db, Error, Options, RecoveryMode};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Write `n` single-key records, crash, and return the only segment's path
/// and the offset just past the last record.
fn crashed_db(dir: &Path, n: u32) -> (std::path::PathBuf, u64) {
    let db = Db::open(dir, small_opts()).expect("open");
    for i in 0..n {
        db.set(format!("k{i:03}"), format!("v{i}")).expect("set");
    }
    let end = db.stats().expect("stats");
    db.crash_for_testing();
    let segs = segments(dir);
    assert_eq!(segs.len(), 1);
    let _ = end;
    let bytes = std::fs::read(&segs[0]).expect("read");
    let last_nonzero = bytes.iter().rposition(|&b| b != 0).expect("data") as u64 + 1;
    (segs[0].clone(), (last_nonzero + 7) & !7)
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).expect("open");
    f.write_all_at(bytes, offset).expect("write");
}

#[test]
fn garbage_after_the_last_record_is_truncated_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (seg, end) = crashed_db(dir.path(), 20);
    patch(&seg, end, &[0xAB; 30]); // a half-written record
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let st = db.stats().expect("stats");
    let t = st.recovery.truncation.expect("truncation reported");
    assert_eq!(t.offset, end);
    assert_eq!(t.file, seg);
    assert_eq!(st.keys, 20);
    db.set("more", "data").expect("writes continue");
    db.crash_for_testing();
    let db = Db::open(dir.path(), small_opts()).expect("reopen");
    assert!(
        db.stats().expect("stats").recovery.truncation.is_none(),
        "tail was zeroed durably"
    );
    assert_eq!(db.len().expect("len"), 21);
}

#[test]
fn half_written_last_record_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (seg, end) = crashed_db(dir.path(), 20);
    // Zero the second half of the last record: a torn write.
    patch(&seg, end - 24, &[0u8; 24]);
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let st = db.stats().expect("stats");
    assert!(st.recovery.truncation.is_some());
    assert_eq!(st.keys, 19, "only the torn record is gone");
    assert_eq!(db.get("k019").expect("get"), None);
}

#[test]
fn absolute_consistency_refuses_a_torn_tail_without_touching_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (seg, end) = crashed_db(dir.path(), 5);
    patch(&seg, end, &[0xAB; 30]);
    let before = std::fs::read(&seg).expect("read");
    let strict = Options {
        recovery_mode: RecoveryMode::AbsoluteConsistency,
        ..small_opts()
    };
    match Db::open(dir.path(), strict) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!(file, seg);
            assert_eq!(offset, Some(end));
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&seg).expect("read"),
        before,
        "nothing modified"
    );
}

#[test]
fn bit_flip_in_the_middle_is_corruption_naming_file_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (seg, _end) = crashed_db(dir.path(), 20);
    let mut bytes = std::fs::read(&seg).expect("read");
    let flip_at = 4096 + 5 * 64 + 45; // inside the sixth record's payload
    bytes[flip_at] ^= 0x10;
    std::fs::write(&seg, &bytes).expect("write");
    match Db::open(dir.path(), small_opts()) {
        Err(Error::Corruption {
            file,
            offset: Some(off),
            detail,
        }) => {
            assert_eq!(file, seg);
            assert!(
                off <= flip_at as u64 && off + 64 > flip_at as u64,
                "offset {off} near {flip_at}: {detail}"
            );
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    // Salvage mode gets everything except the damaged record.
    let salvage = Options {
        recovery_mode: RecoveryMode::TolerateAnyCorruption,
        ..small_opts()
    };
    let db = Db::open(dir.path(), salvage).expect("salvage");
    let st = db.stats().expect("stats");
    assert_eq!(st.keys, 19);
    assert_eq!(st.recovery.records_skipped, 1);
}

#[test]
fn damage_in_an_older_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    for i in 0..2000u32 {
        db.set(format!("k{i}"), vec![b'v'; 60]).expect("set");
    }
    db.crash_for_testing();
    let segs = segments(dir.path());
    assert!(segs.len() >= 2);
    let bytes = std::fs::read(&segs[0]).expect("read");
    let last = bytes.iter().rposition(|&b| b != 0).expect("data");
    patch(&segs[0], last as u64 - 10, &[0xFF]); // damage the last record of segment 1
    assert!(matches!(
        Db::open(dir.path(), small_opts()),
        Err(Error::Corruption { .. })
    ));
}

#[test]
fn corrupt_newest_snapshot_falls_back_to_older_one_plus_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    db.set("a", "1").expect("set");
    db.checkpoint().expect("checkpoint 1");
    db.set("b", "2").expect("set");
    db.checkpoint().expect("checkpoint 2");
    db.set("c", "3").expect("set");
    db.crash_for_testing();
    let snaps = snapshots(dir.path());
    assert_eq!(snaps.len(), 2);
    let newest = &snaps[1];
    let mut bytes = std::fs::read(newest).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(newest, &bytes).expect("write");
    let db = Db::open(dir.path(), small_opts()).expect("open falls back");
    let st = db.stats().expect("stats");
    assert_eq!(st.recovery.snapshots_rejected, 1);
    assert!(
        st.recovery
            .snapshot_error
            .as_deref()
            .unwrap_or("")
            .contains("snap-"),
        "{st:?}"
    );
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
        assert_eq!(db.get(k).expect("get").as_deref(), Some(v.as_bytes()));
    }
}

#[test]
fn corrupt_only_snapshot_without_full_wal_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        keep_snapshots: 1,
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts.clone()).expect("open");
    for i in 0..3000u32 {
        db.set(format!("k{i}"), vec![b'v'; 60]).expect("set");
    }
    db.checkpoint().expect("checkpoint");
    db.crash_for_testing();
    let snap = &snapshots(dir.path())[0];
    let mut bytes = std::fs::read(snap).expect("read");
    bytes[100] ^= 1;
    std::fs::write(snap, &bytes).expect("write");
    match Db::open(dir.path(), opts) {
        Err(Error::Corruption { file, .. }) => assert_eq!(&file, snap),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn a_file_that_only_looks_like_a_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, _) = crashed_db(dir.path(), 3);
    std::fs::write(
        dir.path().join("00000000000000000009.wal"),
        vec![0x55u8; 8192],
    )
    .expect("write");
    assert!(matches!(
        Db::open(dir.path(), small_opts()),
        Err(Error::Corruption { .. })
    ));
}

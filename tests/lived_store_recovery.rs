//! Recovery of stores that have lived: regression tests for the defects an
//! independent review found in stores that had lived through several
//! segments, checkpoints and crash-and-recover generations (issue 11; its
//! labels D1-D3 are in the doc comments). Each test reproduces the review's case
//! as it was described; each failed on the code before the fix.
mod common;
use common::*;
use keyval::fs::{FileSystem, RealFs};
use keyval::raft::{Entry, RaftLog};
use keyval::{Db, Durability, Error, Options, RecoveryMode};
use std::path::Path;
use std::sync::Arc;

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

fn val(i: u32, len: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(len, b'a' + (i % 26) as u8);
    v
}

fn with_mode(o: Options, m: RecoveryMode) -> Options {
    Options {
        recovery_mode: m,
        ..o
    }
}

/// Write 1 KiB values until the newest segment holds exactly one record.
/// Returns how many writes were acknowledged.
fn fill_until_new_segment_has_one_record(dir: &Path, min_segments: usize) -> u32 {
    let db = Db::open(dir, small_opts()).expect("open");
    let mut n = 0u32;
    loop {
        let before = segments(dir).len();
        db.set(key(n), val(n, 1024)).expect("set");
        n += 1;
        let after = segments(dir).len();
        if after > before && after >= min_segments {
            break;
        }
    }
    db.crash_for_testing();
    n
}

fn flip(path: &Path, offset: u64, mask: u8) {
    let mut b = std::fs::read(path).expect("read");
    b[offset as usize] ^= mask;
    std::fs::write(path, b).expect("write");
}

/// D1: one flipped bit in the LSN of the newest segment's only record made
/// replay skip the whole previous segment on the word of that unverified
/// LSN. Every record of the intact segments must survive; at most the
/// damaged record itself (indistinguishable from a torn write) is lost.
#[test]
fn flipped_lsn_in_newest_segment_never_drops_an_intact_segment() {
    for mode in [
        RecoveryMode::TolerateTailCorruption,
        RecoveryMode::TolerateAnyCorruption,
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = fill_until_new_segment_has_one_record(dir.path(), 3);
        let newest = segments(dir.path()).pop().expect("segment");
        // The LSN of the newest record is n; flip its highest set bit so
        // that it claims an LSN the previous segments already hold.
        let top = 63 - u64::from(n).leading_zeros();
        let byte = 4096 + 8 + u64::from(top / 8);
        flip(&newest, byte, 1 << (top % 8));
        let db = Db::open(dir.path(), with_mode(small_opts(), mode)).expect("reopen");
        for i in 0..n - 1 {
            assert!(
                db.get(key(i)).expect("get") == Some(val(i, 1024)),
                "{mode:?}: key {i} of {n} lost"
            );
        }
        assert_eq!(db.get(key(n - 1)).expect("get"), None, "damaged record");
        let st = db.stats().expect("stats");
        assert!(
            st.recovery.truncation.is_some() || st.recovery.records_skipped > 0,
            "{mode:?}: the damaged record must be reported: {:?}",
            st.recovery
        );
        db.close().expect("close");
        // The verdict of verify equals open's.
        let rep = keyval::internals::verify::verify_dir(&RealFs, dir.path()).expect("verify");
        assert!(!rep.has_corruption(), "{rep:?}");
    }
}

/// D2: a checkpoint wrote its snapshot beyond the durable end of the WAL;
/// a process exit under `Buffered` then left a store that never opened
/// again once one more write was made.
#[test]
fn checkpoint_under_buffered_then_exit_leaves_an_openable_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let buffered = opts_with(Durability::Buffered);
    let db = Db::open(dir.path(), buffered).expect("open");
    for i in 0..10 {
        db.set(key(i), val(i, 10)).expect("set");
    }
    db.sync().expect("sync");
    for i in 10..20 {
        db.set(key(i), val(i, 10)).expect("set");
    }
    db.checkpoint().expect("checkpoint");
    db.crash_for_testing();

    let sync = opts_with(Durability::Sync);
    let db = Db::open(dir.path(), sync.clone()).expect("reopen after exit");
    // The checkpoint made all 20 durable (it syncs the WAL first).
    assert_eq!(db.len().expect("len"), 20);
    db.set(key(100), val(100, 10)).expect("set");
    db.close().expect("close");
    let db = Db::open(dir.path(), sync.clone()).expect("reopen after clean close");
    assert_eq!(db.len().expect("len"), 21);
    db.set(key(101), val(101, 10)).expect("set");
    db.crash_for_testing();
    let db = Db::open(dir.path(), sync).expect("reopen after crash");
    assert_eq!(db.len().expect("len"), 22);
}

/// D2, on a store that an older build already left behind: the newest
/// snapshot covers LSNs the WAL does not hold. Open must succeed and later
/// writes must survive reopen.
#[test]
fn store_whose_wal_ends_before_its_checkpoint_opens_and_stays_openable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    for i in 0..10 {
        db.set(key(i), val(i, 10)).expect("set");
    }
    db.crash_for_testing();
    // A snapshot at LSN 20 holding 20 keys, as the old checkpoint wrote it
    // ahead of a WAL that only reached LSN 10.
    let seg = std::fs::read(&segments(dir.path())[0]).expect("read");
    let db_id = u64::from_le_bytes(seg[40..48].try_into().expect("8 bytes"));
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..20).map(|i| (key(i), val(i, 10))).collect();
    pairs.sort();
    keyval::internals::checkpoint::write(
        &RealFs,
        dir.path(),
        db_id,
        20,
        [keyval::internals::checkpoint::Section::from_iter(
            20,
            pairs.iter().map(|(k, v)| (&k[..], &v[..])),
        )],
        keyval::internals::checkpoint::Separated::Pointers { segments: &[] },
    )
    .expect("snapshot");
    for round in 0..3u32 {
        let db = Db::open(dir.path(), small_opts()).expect("reopen");
        assert_eq!(db.len().expect("len"), 20 + u64::from(round));
        db.set(key(1000 + round), val(round, 10)).expect("set");
        if round == 1 {
            db.close().expect("close");
        } else {
            db.crash_for_testing();
        }
    }
    let db = Db::open(dir.path(), small_opts()).expect("final reopen");
    assert_eq!(db.len().expect("len"), 23);
}

fn raft_opts() -> Options {
    Options {
        segment_size: 64 << 10,
        ..Options::default()
    }
}

fn entry(index: u64, term: u64, len: usize) -> Entry {
    Entry {
        index,
        term,
        data: vec![(index % 251) as u8; len],
    }
}

/// The review's D3 layout: entries 1..=3 of `size` bytes (one per segment
/// near the boundary), `truncate_prefix(1)`, entries 4..=10 of a new term.
fn compacted_once(dir: &Path, size: usize) -> RaftLog {
    let log = RaftLog::open(dir, raft_opts()).expect("open");
    for i in 1..=3 {
        log.append(&[entry(i, 1, size)]).expect("append");
    }
    log.truncate_prefix(1).expect("truncate 1");
    let more: Vec<Entry> = (4..=10).map(|i| entry(i, 2, 100)).collect();
    log.append(&more).expect("append 4..=10");
    log
}

/// Opening the Raft log in `dir` fails with `Corruption` in both strict
/// recovery modes.
fn raft_open_is_corruption(dir: &Path, ctx: &str) {
    for mode in [
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::TolerateTailCorruption,
    ] {
        let r = RaftLog::open(dir, with_mode(raft_opts(), mode));
        assert!(
            matches!(r, Err(Error::Corruption { .. })),
            "{ctx}, {mode:?}: {r:?}"
        );
    }
}

/// D3: after an ordinary compaction whose truncate-prefix record starts a
/// segment, the Raft log could not be reopened in any recovery mode. The
/// entry size decides where segments break; the review's case used
/// 61,372-byte entries (each filled a 64 KiB segment exactly in format
/// version 1). Sizes around that boundary, for either layout, make the
/// truncate-prefix record start a segment.
#[test]
fn raft_log_reopens_after_a_compaction_that_starts_a_segment() {
    for size in (61_300..=61_380).step_by(8) {
        for mode in [
            RecoveryMode::AbsoluteConsistency,
            RecoveryMode::TolerateTailCorruption,
            RecoveryMode::TolerateAnyCorruption,
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = compacted_once(dir.path(), size);
            log.truncate_prefix(3).expect("truncate 3");
            log.close().expect("close");
            let log = RaftLog::open(dir.path(), with_mode(raft_opts(), mode))
                .unwrap_or_else(|e| panic!("entry size {size}, {mode:?}: {e}"));
            assert_eq!(log.first_index().expect("first"), 4, "{mode:?}");
            assert_eq!(log.last_index().expect("last"), Some(10));
            assert_eq!(log.last_purged().expect("purged").map(|p| p.0), Some(3));
            for i in 4..=10 {
                assert_eq!(log.entry(i).expect("entry"), entry(i, 2, 100));
            }
            log.close().expect("close");
        }
    }
}

/// The same layout, but the segments holding entries 2 and 3 are deleted
/// by hand instead of by a second compaction: the gap is reported.
#[test]
fn raft_segments_deleted_after_a_compaction_are_reported() {
    for size in (61_300..=61_380).step_by(8) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = compacted_once(dir.path(), size);
        log.close().expect("close");
        // Delete every segment but the newest that holds no entry >= 4.
        let segs = segments(dir.path());
        let keep = segs.len() - 1;
        for s in &segs[..keep] {
            std::fs::remove_file(s).expect("remove");
        }
        raft_open_is_corruption(dir.path(), &format!("entry size {size}"));
        let log = RaftLog::open(
            dir.path(),
            with_mode(raft_opts(), RecoveryMode::TolerateAnyCorruption),
        )
        .expect("salvage opens");
        assert!(log.recovery_stats().segments_missing > 0);
    }
}

/// Salvage is a new baseline: after `TolerateAnyCorruption` opened and
/// closed a damaged store, the default mode opens it too, with the same
/// contents, and keeps every later write. Damage both in an old segment
/// and in the newest one (which no later open can skip).
#[test]
fn salvage_becomes_the_new_baseline() {
    for in_newest in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), small_opts()).expect("open");
        for i in 0..200 {
            db.set(key(i), val(i, 1024)).expect("set");
        }
        db.crash_for_testing();
        let segs = segments(dir.path());
        let victim = if in_newest {
            segs.last().expect("segment").clone()
        } else {
            segs[0].clone()
        };
        // Damage the 6th record of the segment; valid records follow it.
        flip(&victim, 4096 + 5 * 1072 + 50, 0x10);
        let err = Db::open(dir.path(), small_opts()).expect_err("default mode refuses");
        assert!(matches!(err, Error::Corruption { .. }), "{err}");
        let db = Db::open(
            dir.path(),
            with_mode(small_opts(), RecoveryMode::TolerateAnyCorruption),
        )
        .expect("salvage");
        let salvaged = db.len().expect("len");
        assert_eq!(salvaged, 199, "in_newest={in_newest}");
        db.close().expect("close");
        let db = Db::open(dir.path(), small_opts()).expect("default mode after salvage");
        assert_eq!(db.len().expect("len"), salvaged);
        db.set(key(5000), val(1, 10)).expect("set");
        db.crash_for_testing();
        let db = Db::open(dir.path(), small_opts()).expect("reopen");
        assert_eq!(db.len().expect("len"), salvaged + 1);
        db.close().expect("close");
        let rep = keyval::internals::verify::verify_dir(&RealFs, dir.path()).expect("verify");
        assert!(!rep.has_corruption(), "{rep:?}");
    }
}

/// Salvage keeps every record that verifies, even in a segment that was
/// cut short (its zero padding gone), whether or not it is the newest.
#[test]
fn salvage_keeps_every_record_of_a_shortened_segment() {
    for newest in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), small_opts()).expect("open");
        let mut n = 0;
        while segments(dir.path()).len() < 3 {
            db.set(key(n), val(n, 1024)).expect("set");
            n += 1;
        }
        db.crash_for_testing();
        let segs = segments(dir.path());
        let victim = if newest { &segs[2] } else { &segs[1] };
        // Cut the file just past its last nonzero byte.
        let b = std::fs::read(victim).expect("read");
        let end = b.iter().rposition(|&x| x != 0).expect("data") + 1;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(victim)
            .expect("open");
        f.set_len(end as u64).expect("set_len");
        drop(f);
        let strict = Db::open(dir.path(), small_opts());
        assert!(
            matches!(strict, Err(Error::Corruption { .. })),
            "newest={newest}: {strict:?}"
        );
        let db = Db::open(
            dir.path(),
            with_mode(small_opts(), RecoveryMode::TolerateAnyCorruption),
        )
        .expect("salvage");
        assert_eq!(db.len().expect("len"), u64::from(n), "newest={newest}");
        db.close().expect("close");
        let db = Db::open(dir.path(), small_opts()).expect("baseline");
        assert_eq!(db.len().expect("len"), u64::from(n));
    }
}

/// Deleting the newest WAL segment loses acknowledged writes: it must be
/// reported in every recovery mode, and by verify.
#[test]
fn deleted_newest_segment_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = fill_until_new_segment_has_one_record(dir.path(), 3);
    assert!(n > 100);
    let newest = segments(dir.path()).pop().expect("segment");
    std::fs::remove_file(&newest).expect("remove");
    for mode in [
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::TolerateTailCorruption,
    ] {
        let r = Db::open(dir.path(), with_mode(small_opts(), mode));
        assert!(
            matches!(r, Err(Error::Corruption { .. })),
            "{mode:?}: {r:?}"
        );
    }
    let rep = keyval::internals::verify::verify_dir(&RealFs, dir.path()).expect("verify");
    assert!(rep.has_corruption(), "{rep:?}");
    let db = Db::open(
        dir.path(),
        with_mode(small_opts(), RecoveryMode::TolerateAnyCorruption),
    )
    .expect("salvage opens");
    let st = db.stats().expect("stats");
    assert!(st.recovery.segments_missing > 0, "{:?}", st.recovery);
    assert_eq!(db.len().expect("len"), u64::from(n - 1));
}

/// Deleting every snapshot of a store whose old segments were reclaimed:
/// open refuses it, and verify must say so too.
#[test]
fn verify_agrees_with_open_when_every_snapshot_is_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    for round in 0..4 {
        for i in 0..100 {
            db.set(key(i), val(round * 1000 + i, 1024)).expect("set");
        }
        db.checkpoint().expect("checkpoint");
    }
    db.close().expect("close");
    for s in snapshots(dir.path()) {
        std::fs::remove_file(s).expect("remove");
    }
    let opened = Db::open(dir.path(), small_opts());
    assert!(
        matches!(opened, Err(Error::Corruption { .. })),
        "{opened:?}"
    );
    let rep = keyval::internals::verify::verify_dir(&RealFs, dir.path()).expect("verify");
    assert!(rep.has_corruption(), "{rep:?}");
}

/// Deleting the oldest segments of a Raft log that was never compacted
/// must not open as a log with a new first index.
#[test]
fn deleted_oldest_raft_segments_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = RaftLog::open(dir.path(), raft_opts()).expect("open");
    for i in 1..=300 {
        log.append(&[entry(i, 1, 1000)]).expect("append");
    }
    log.close().expect("close");
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    std::fs::remove_file(&segs[0]).expect("remove");
    raft_open_is_corruption(dir.path(), "oldest segment deleted");
}

/// After compaction reclaimed segments, the log still reopens (the
/// reclaimed segments were sanctioned), through several generations.
#[test]
fn raft_log_reopens_after_many_compactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut next = 1u64;
    for generation in 0..6u64 {
        let log = RaftLog::open(dir.path(), raft_opts()).expect("open");
        assert_eq!(
            log.last_index().expect("last"),
            (next > 1).then_some(next - 1)
        );
        for _ in 0..150 {
            log.append(&[entry(next, generation + 1, 900)])
                .expect("append");
            next += 1;
        }
        log.truncate_prefix(next - 40).expect("compact");
        assert_eq!(log.first_index().expect("first"), next - 39);
        if generation % 2 == 0 {
            log.crash_for_testing();
        } else {
            log.close().expect("close");
        }
    }
    let log = RaftLog::open(dir.path(), raft_opts()).expect("open");
    assert_eq!(log.first_index().expect("first"), next - 39);
    for i in next - 39..next {
        assert_eq!(log.entry(i).expect("entry").index, i);
    }
}

/// A failed open must not leave a preallocated `.wal.prep` behind.
#[test]
fn failed_open_leaves_no_prep_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The first segment's preallocation: its header is write 1, the
    // zero fill (one write for a 1 MiB first segment) is write 2.
    let fs = FaultyFs::new(Fault::Write, 2, true);
    let r = Db::open_with_fs(
        dir.path(),
        Options::default(),
        Arc::new(FaultyFsHandle(Arc::clone(&fs))),
    );
    assert!(r.is_err());
    assert!(fs.fired());
    let left: Vec<String> = RealFs
        .list_dir(dir.path())
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(".prep"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Deleting `LOCK` while a handle is open must not let a second handle
/// open the directory beside it.
#[test]
fn deleting_lock_file_does_not_admit_a_second_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    db.set(b"k", b"v").expect("set");
    std::fs::remove_file(dir.path().join("LOCK")).expect("remove LOCK");
    let second = Db::open(dir.path(), small_opts());
    assert!(matches!(second, Err(Error::Locked(_))), "{second:?}");
    db.close().expect("close");
    let again = Db::open(dir.path(), small_opts()).expect("open after close");
    assert_eq!(again.get(b"k").expect("get"), Some(b"v".to_vec()));
}

/// Issue 15: deleting an absent key wrote a WAL record (and an fsync) for
/// a change that changed nothing. Now it writes nothing, in the default
/// keyspace and in a named one, while its argument checks still apply.
#[test]
fn deleting_an_absent_key_writes_no_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = keyval::Db::open(dir.path(), keyval::Options::default()).expect("open");
    let ks = db.create_keyspace("ks").expect("keyspace");
    db.set("a", "1").expect("set");
    ks.set("a", "1").expect("set");
    let lsn = db.stats().expect("stats").last_lsn;
    db.delete("missing").expect("delete absent");
    ks.delete("missing").expect("delete absent");
    assert_eq!(
        db.stats().expect("stats").last_lsn,
        lsn,
        "no record written"
    );
    assert!(matches!(
        db.delete(""),
        Err(keyval::Error::InvalidArgument(_))
    ));
    db.delete("a").expect("delete present");
    ks.delete("a").expect("delete present");
    assert_eq!(db.stats().expect("stats").last_lsn, lsn + 2);
    assert_eq!(db.get("a").expect("get"), None);
    assert_eq!(ks.get("a").expect("get"), None);
    let ro = keyval::Db::open(
        dir.path(),
        keyval::Options {
            read_only: true,
            ..keyval::Options::default()
        },
    )
    .expect("read-only");
    assert!(matches!(
        ro.delete("missing"),
        Err(keyval::Error::InvalidArgument(_))
    ));
    drop(db);
    let db = keyval::Db::open(dir.path(), keyval::Options::default()).expect("reopen");
    assert_eq!(db.get("a").expect("get"), None);
}

//! Branches of the recovery decision that ordinary damage rarely reaches,
//! each built on purpose: every WAL segment gone, a snapshot renamed to
//! another LSN, a damaged snapshot under `AbsoluteConsistency`, a link
//! record too short to name a segment, and a record of the wrong store
//! kind with a valid checksum. Each must end in `Corruption` naming the
//! problem (or, in salvage mode, an open that reports the loss).
mod common;
use common::*;
use keyval::fs::RealFs;
use keyval::internals::wal::record::{self, Owner, RecordType};
use keyval::internals::wal::segment;
use keyval::{Db, Error, Options, RecoveryMode};
use std::path::Path;

fn mode(m: RecoveryMode) -> Options {
    Options {
        recovery_mode: m,
        ..small_opts()
    }
}

/// A store with two checkpoints and writes after them.
fn store(dir: &Path) -> u64 {
    let db = Db::open(dir, small_opts()).expect("open");
    for round in 0..3u32 {
        for i in 0..60u32 {
            db.set(format!("k{i:02}"), format!("r{round}-{}", "v".repeat(900)))
                .expect("set");
        }
        if round < 2 {
            db.checkpoint().expect("checkpoint");
        }
    }
    db.crash_for_testing();
    let seg = std::fs::read(&segments(dir)[0]).expect("segment");
    u64::from_le_bytes(seg[40..48].try_into().expect("8 bytes"))
}

fn corruption_mentions(r: keyval::Result<Db>, words: &str) {
    match r {
        Err(Error::Corruption { detail, .. }) => {
            assert!(detail.contains(words), "{detail}")
        }
        other => panic!("expected Corruption mentioning {words:?}, got {other:?}"),
    }
}

#[test]
fn snapshots_without_any_segment_are_corruption_and_salvage_reports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    store(dir.path());
    for s in segments(dir.path()) {
        std::fs::remove_file(s).expect("remove");
    }
    corruption_mentions(Db::open(dir.path(), small_opts()), "the WAL is missing");
    let rep = keyval::internals::verify::verify_dir(&RealFs, dir.path()).expect("verify");
    assert!(rep.has_corruption());
    let db = Db::open(dir.path(), mode(RecoveryMode::TolerateAnyCorruption)).expect("salvage");
    let st = db.stats().expect("stats");
    assert_eq!(st.recovery.segments_missing, 1);
    // The newest snapshot's contents survive; the writes after it are gone,
    // and the loss was reported.
    assert_eq!(db.len().expect("len"), 60);
    db.close().expect("close");
    Db::open(dir.path(), small_opts()).expect("salvaged state is the baseline");
}

#[test]
fn snapshot_whose_header_disagrees_with_its_name_is_passed_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    store(dir.path());
    let snaps = snapshots(dir.path());
    let newest = snaps.last().expect("snapshot");
    // Rename the newest snapshot to a higher LSN: its header still says
    // the old one.
    let renamed = dir
        .path()
        .join(keyval::internals::checkpoint::file_name(999_999));
    std::fs::rename(newest, &renamed).expect("rename");
    corruption_mentions(
        Db::open(dir.path(), mode(RecoveryMode::AbsoluteConsistency)),
        "file name says",
    );
    // The default mode passes over it; the WAL cannot reach LSN 999999, so
    // the rejected snapshot is reported as the root cause.
    corruption_mentions(Db::open(dir.path(), small_opts()), "file name says");
}

#[test]
fn damaged_snapshot_under_absolute_consistency_fails_without_fallback() {
    let dir = tempfile::tempdir().expect("tempdir");
    store(dir.path());
    let newest = snapshots(dir.path()).pop().expect("snapshot");
    let mut b = std::fs::read(&newest).expect("read");
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(&newest, b).expect("write");
    let r = Db::open(dir.path(), mode(RecoveryMode::AbsoluteConsistency));
    assert!(
        matches!(&r, Err(Error::Corruption { file, .. }) if file == &newest),
        "{r:?}"
    );
    // The default mode falls back to the older snapshot and the WAL.
    let db = Db::open(dir.path(), small_opts()).expect("fallback");
    assert_eq!(db.stats().expect("stats").recovery.snapshots_rejected, 1);
    assert_eq!(db.len().expect("len"), 60);
}

/// Append one record with a valid checksum to the newest segment, after
/// its last record, continuing the LSN sequence.
fn append_crafted(dir: &Path, db_id: u64, rtype: RecordType, payload: &[u8]) {
    append_crafted_at(dir, db_id, rtype, payload, 1);
}

/// The same, with an LSN `step` past the last one (1: in sequence).
fn append_crafted_at(dir: &Path, db_id: u64, rtype: RecordType, payload: &[u8], step: u64) {
    let seg = segments(dir).pop().expect("segment");
    let id: u64 = seg
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("id");
    let mut buf = std::fs::read(&seg).expect("read");
    let scan = keyval::internals::wal::reader::scan(
        &buf,
        Owner {
            db_id,
            segment_id: id,
        },
    );
    let last = scan.records.last().expect("records");
    let mut rec = Vec::new();
    record::encode(
        &mut rec,
        Owner {
            db_id,
            segment_id: id,
        },
        rtype,
        last.header.lsn + step,
        last.header.lsn,
        payload,
    );
    let at = scan.end as usize;
    buf[at..at + rec.len()].copy_from_slice(&rec);
    std::fs::write(&seg, buf).expect("write");
}

#[test]
fn a_link_record_too_short_to_name_a_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_id = store(dir.path());
    append_crafted(dir.path(), db_id, RecordType::SegmentLink, &[1, 2, 3]);
    corruption_mentions(Db::open(dir.path(), small_opts()), "short segment link");
}

#[test]
fn a_raft_record_in_a_key_value_log_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_id = store(dir.path());
    append_crafted(dir.path(), db_id, RecordType::RaftHardState, &[0u8; 20]);
    corruption_mentions(
        Db::open(dir.path(), small_opts()),
        "record in a key-value log",
    );
}

#[test]
fn a_segment_of_another_log_kind_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    store(dir.path());
    let seg = segments(dir.path()).pop().expect("segment");
    let mut b = std::fs::read(&seg).expect("read");
    let id = u64::from_le_bytes(b[16..24].try_into().expect("8"));
    let size = u64::from_le_bytes(b[32..40].try_into().expect("8"));
    let db_id = u64::from_le_bytes(b[40..48].try_into().expect("8"));
    let h = segment::encode_header(2, id, size, db_id);
    b[..52].copy_from_slice(&h[..52]);
    std::fs::write(&seg, b).expect("write");
    corruption_mentions(Db::open(dir.path(), small_opts()), "log kind");
}

/// Damage to records that the newest snapshot covers, in a segment replay
/// still has to read (it straddles the snapshot), is harmless in every
/// mode: open succeeds with every acknowledged write.
#[test]
fn damage_covered_by_the_snapshot_is_passed_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    for i in 0..150u32 {
        db.set(
            format!("k{:03}", i % 90),
            format!("{i}-{}", "v".repeat(700)),
        )
        .expect("set");
    }
    db.checkpoint().expect("checkpoint");
    for i in 150..170u32 {
        db.set(
            format!("k{:03}", i % 90),
            format!("{i}-{}", "v".repeat(700)),
        )
        .expect("set");
    }
    let want: Vec<(Vec<u8>, Vec<u8>)> = db.iter().map(|r| r.expect("iter")).collect();
    db.crash_for_testing();
    // Find the segment that straddles the snapshot (its first record is
    // covered, its last is not) and damage that first record.
    let snap_lsn: u64 = snapshots(dir.path())
        .pop()
        .and_then(|p| p.file_stem()?.to_str()?.strip_prefix("snap-")?.parse().ok())
        .expect("snapshot lsn");
    let mut damaged = false;
    for seg in segments(dir.path()) {
        let mut b = std::fs::read(&seg).expect("read");
        let owner = Owner {
            db_id: u64::from_le_bytes(b[40..48].try_into().expect("8")),
            segment_id: u64::from_le_bytes(b[16..24].try_into().expect("8")),
        };
        let scan = keyval::internals::wal::reader::scan(&b, owner);
        let (Some(first), Some(last)) = (scan.records.first(), scan.records.last()) else {
            continue;
        };
        if first.header.lsn <= snap_lsn && last.header.lsn > snap_lsn + 1 {
            b[first.offset as usize + 9] ^= 0x10;
            std::fs::write(&seg, b).expect("write");
            damaged = true;
            break;
        }
    }
    assert!(damaged, "no segment straddles snapshot {snap_lsn}");
    for m in [
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::TolerateTailCorruption,
        RecoveryMode::TolerateAnyCorruption,
    ] {
        let db = Db::open(dir.path(), mode(m)).unwrap_or_else(|e| panic!("{m:?}: {e}"));
        let got: Vec<(Vec<u8>, Vec<u8>)> = db.iter().map(|r| r.expect("iter")).collect();
        assert!(got == want, "{m:?}: contents differ");
        db.crash_for_testing();
    }
    let rep = keyval::internals::verify::verify_dir(&RealFs, dir.path()).expect("verify");
    assert!(!rep.has_corruption() && !rep.has_torn_tail(), "{rep:?}");
    assert!(rep
        .problems
        .iter()
        .all(|p| p.severity == keyval::internals::verify::Severity::Harmless));
}

/// A record whose checksum is valid but whose LSN does not follow its
/// predecessor (misdirected, stale or spliced) is never a torn write.
#[test]
fn a_valid_record_out_of_sequence_is_corruption_in_every_strict_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_id = store(dir.path());
    let mut b = keyval::WriteBatch::new();
    b.put("zz", "late");
    append_crafted_at(dir.path(), db_id, RecordType::KvBatch, b.payload(), 5);
    for m in [
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::TolerateTailCorruption,
    ] {
        corruption_mentions(Db::open(dir.path(), mode(m)), "follows");
    }
}

/// verify reports a torn tail as open would (TORN, not corruption) and,
/// being read-only, leaves it in place for open to truncate.
#[test]
fn verify_reports_a_torn_tail_without_touching_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    store(dir.path());
    let seg = segments(dir.path()).pop().expect("segment");
    let mut b = std::fs::read(&seg).expect("read");
    let end = b.iter().rposition(|&x| x != 0).expect("data") + 1;
    // Garbage just after the last record: an unacknowledged torn write.
    let at = (end + 7) & !7;
    b[at..at + 16].copy_from_slice(&[0xEE; 16]);
    std::fs::write(&seg, &b).expect("write");
    let rep = keyval::internals::verify::verify_dir(&RealFs, dir.path()).expect("verify");
    assert!(rep.has_torn_tail() && !rep.has_corruption(), "{rep:?}");
    assert_eq!(
        std::fs::read(&seg).expect("read"),
        b,
        "verify modified the file"
    );
    let db = Db::open(dir.path(), small_opts()).expect("open truncates");
    assert!(db.stats().expect("stats").recovery.truncation.is_some());
}

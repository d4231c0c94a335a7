//! Issue 29, section 3: salvage (`TolerateAnyCorruption`) applies every
//! record that verifies, counts what it drops, and makes its result the
//! baseline, so the next open in the default mode works; a read-only
//! salvage open shows the same without changing anything; a deleted
//! segment is named, with the sequence numbers it held.
//!
//! Each case was written first and failed on the old code (salvage kept
//! 285 of 300 keys and reported nothing; the next default open failed; the
//! read-only salvage open said "No such file or directory"; the deleted
//! segment was a bare "gap in the log").
mod common;
use common::*;
use keyval::{Db, Error, Options, RecoveryMode};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn opts(mode: RecoveryMode) -> Options {
    Options {
        recovery_mode: mode,
        ..small_opts()
    }
}

/// 300 writes of 1 KiB over several 64 KiB segments, then a crash (the
/// process dies with nothing closed). Returns what was written.
fn lived(dir: &Path) -> Model {
    let db = Db::open(dir, small_opts()).expect("open");
    let mut m = Model::new();
    for i in 0..300u32 {
        let k = format!("k{i:04}").into_bytes();
        let v = vec![(i % 251) as u8; 1024];
        db.set(&k, &v).expect("set");
        m.insert(k, v);
    }
    db.crash_for_testing();
    assert!(segments(dir).len() >= 5, "{:?}", segments(dir));
    m
}

fn contents(db: &Db) -> Model {
    db.iter().map(|r| r.expect("iter")).collect()
}

fn flip(path: &Path, at: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).expect("read");
    b[0] ^= 0x40;
    f.write_all_at(&b, at).expect("write");
    f.sync_all().expect("sync");
}

#[derive(Clone, Copy)]
enum Damage {
    Flip(u64),
    ZeroFirstPage,
}

/// Damage one segment's header, then: the default open refuses it naming
/// the file; a read-only salvage open shows every key and changes nothing;
/// a salvage open keeps every key and reports the damage; the next default
/// open works and shows the same.
fn header_damage_is_salvaged(which: impl Fn(&[std::path::PathBuf]) -> usize, damage: Damage) {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path();
    let written = lived(dir);
    let segs = segments(dir);
    let victim = segs[which(&segs)].clone();
    match damage {
        Damage::Flip(at) => flip(&victim, at),
        Damage::ZeroFirstPage => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&victim)
                .expect("open");
            f.write_all_at(&[0u8; 4096], 0).expect("zero");
            f.sync_all().expect("sync");
        }
    }

    match Db::open(dir, opts(RecoveryMode::TolerateTailCorruption)) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, victim),
        Err(e) => panic!("default open: unexpected error {e}"),
        Ok(_) => panic!("default open accepted a damaged segment header"),
    }

    let before: Vec<_> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    let ro = Db::open(
        dir,
        Options {
            read_only: true,
            ..opts(RecoveryMode::TolerateAnyCorruption)
        },
    )
    .expect("read-only salvage open");
    assert_eq!(contents(&ro), written, "read-only salvage lost records");
    drop(ro);
    let after: Vec<_> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(before, after, "a read-only open changed the directory");

    let db = Db::open(dir, opts(RecoveryMode::TolerateAnyCorruption)).expect("salvage");
    assert_eq!(
        contents(&db),
        written,
        "salvage dropped records that verify"
    );
    let rec = db.stats().expect("stats").recovery;
    assert!(
        rec.bytes_skipped > 0,
        "salvage skipped a damaged header without reporting it: {rec:?}"
    );
    db.crash_for_testing();
    assert!(
        !victim.exists(),
        "salvage kept the damaged segment {}",
        victim.display()
    );

    let db = Db::open(dir, opts(RecoveryMode::TolerateTailCorruption))
        .expect("default open after salvage");
    assert_eq!(contents(&db), written);
    db.close().expect("close");
}

#[test]
fn damaged_header_of_newest_segment() {
    header_damage_is_salvaged(|s| s.len() - 1, Damage::Flip(20));
}

#[test]
fn damaged_header_of_middle_segment() {
    header_damage_is_salvaged(|s| s.len() / 2, Damage::Flip(20));
}

#[test]
fn zeroed_first_page_of_newest_segment() {
    // The first page holds the header (and padding: records start at 4096),
    // so every record still verifies.
    header_damage_is_salvaged(|s| s.len() - 1, Damage::ZeroFirstPage);
}

#[test]
fn deleted_segment_is_named_with_its_sequence_numbers() {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path();
    let written = lived(dir);
    let segs = segments(dir);
    let victim = segs[segs.len() - 2].clone();
    std::fs::remove_file(&victim).expect("rm");
    let name = victim
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();

    match Db::open(dir, opts(RecoveryMode::TolerateTailCorruption)) {
        Err(e @ Error::Corruption { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&name), "{msg}");
            assert!(msg.contains("missing"), "{msg}");
            assert!(
                msg.contains("sequence numbers"),
                "names no sequence numbers: {msg}"
            );
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened with a segment missing"),
    }
    let db = Db::open(dir, opts(RecoveryMode::TolerateAnyCorruption)).expect("salvage");
    let got = contents(&db);
    let rec = db.stats().expect("stats").recovery;
    assert!(got.len() < written.len());
    assert_eq!(rec.segments_missing, 1, "{rec:?}");
    assert!(rec.records_skipped > 0, "{rec:?}");
    db.crash_for_testing();
    let db = Db::open(dir, opts(RecoveryMode::TolerateTailCorruption))
        .expect("default open after salvage");
    assert_eq!(contents(&db), got);
    db.close().expect("close");
}

//! Damage, exhaustively: every bit of a small WAL segment and of a small
//! snapshot is flipped, both files are truncated at every offset, segments
//! are swapped, and records are spliced in from another database. Each case
//! must end in the correct data, in a `Corruption` error naming the damaged
//! file, or in a reported tail truncation that loses only the last record
//! (a damaged final record is indistinguishable from a torn write). Never
//! wrong data, never a silent loss. Runs on SimFs, in memory.
use keyval::fs::{CrashMode, FileSystem, SimFs};
use keyval::{Db, Error, Options};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
const DIR: &str = "/d";

fn opts(keep: u32) -> Options {
    Options {
        segment_size: 64 << 10,
        max_wal_size: 0,
        keep_snapshots: keep,
        ..Options::default()
    }
}

fn open(fs: &SimFs, keep: u32) -> keyval::Result<Db> {
    let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
    Db::open_with_fs(DIR, opts(keep), fsa)
}

fn contents(db: &Db) -> Model {
    db.iter().map(|r| r.expect("iter")).collect()
}

fn copy(fs: &SimFs) -> SimFs {
    fs.crash_image(CrashMode::DropAll, 1) // everything is synced: an exact copy
}

fn files(fs: &SimFs, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs
        .list_dir(Path::new(DIR))
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(ext))
        .map(|n| Path::new(DIR).join(n))
        .collect();
    v.sort();
    v
}

/// `n` single-key writes; returns the image and the model after each prefix.
fn small_db(n: usize) -> (SimFs, Vec<Model>) {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new(DIR)).expect("mkdir");
    let db = open(&fs, 2).expect("open");
    let mut m = Model::new();
    let mut states = vec![m.clone()];
    for i in 0..n {
        let (k, v) = (
            format!("k{}", i % 7).into_bytes(),
            format!("value-{i}").into_bytes(),
        );
        db.set(&k, &v).expect("set");
        m.insert(k, v);
        states.push(m.clone());
    }
    db.crash_for_testing();
    (fs, states)
}

#[derive(Default, Debug)]
struct Tally {
    intact: u64,
    corruption: u64,
    truncated_last: u64,
}

/// Open the damaged image and judge the outcome.
fn judge(img: &SimFs, damaged: &Path, states: &[Model], keep: u32, what: &str, t: &mut Tally) {
    let n = states.len() - 1;
    match open(img, keep) {
        Ok(db) => {
            let got = contents(&db);
            let st = db.stats().expect("stats");
            if got == states[n] {
                t.intact += 1;
            } else if got == states[n - 1] && st.recovery.truncation.is_some() {
                t.truncated_last += 1;
            } else {
                panic!(
                    "{what}: wrong or missing data without an error ({} keys, truncation {:?})",
                    got.len(),
                    st.recovery.truncation
                );
            }
            db.crash_for_testing();
        }
        Err(Error::Corruption { file, .. }) => {
            assert!(
                file == damaged || file.parent() == damaged.parent(),
                "{what}: corruption names {} instead of {}",
                file.display(),
                damaged.display()
            );
            t.corruption += 1;
        }
        Err(e) => panic!("{what}: unexpected error {e}"),
    }
}

#[test]
fn every_bit_of_a_small_wal_segment() {
    let (fs, states) = small_db(10);
    let seg = files(&fs, ".wal").pop().expect("segment");
    let bytes = fs.read_file(&seg).expect("bytes");
    let end = bytes.iter().rposition(|&b| b != 0).expect("data") + 1;
    let ranges = [0..64, 4096..end + 16];
    let mut t = Tally::default();
    for r in ranges {
        for byte in r {
            for bit in 0..8 {
                let img = copy(&fs);
                let mut b = bytes.clone();
                b[byte] ^= 1 << bit;
                img.write_file(&seg, b);
                judge(
                    &img,
                    &seg,
                    &states,
                    2,
                    &format!("flip byte {byte} bit {bit}"),
                    &mut t,
                );
            }
        }
    }
    eprintln!("WAL bit flips: {t:?}");
    assert!(t.corruption > 0 && t.truncated_last > 0, "{t:?}");
}

#[test]
fn truncating_a_segment_at_every_offset_is_corruption() {
    let (fs, states) = small_db(10);
    let seg = files(&fs, ".wal").pop().expect("segment");
    let bytes = fs.read_file(&seg).expect("bytes");
    let end = bytes.iter().rposition(|&b| b != 0).expect("data") + 1;
    let mut t = Tally::default();
    for cut in (0..end + 64).chain([bytes.len() - 1]) {
        let img = copy(&fs);
        img.write_file(&seg, bytes[..cut].to_vec());
        judge(
            &img,
            &seg,
            &states,
            2,
            &format!("truncate at {cut}"),
            &mut t,
        );
    }
    eprintln!("segment truncations: {t:?}");
    assert_eq!(
        t.intact + t.truncated_last,
        0,
        "a truncated segment must never open silently: {t:?}"
    );
}

/// A database whose snapshot is needed (keep_snapshots = 1 and the WAL it
/// covers was deleted), or not (`wal_intact`: the WAL still reaches back).
fn snapshot_db(wal_intact: bool) -> (SimFs, Vec<Model>) {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new(DIR)).expect("mkdir");
    let keep = if wal_intact { 2 } else { 1 };
    let db = open(&fs, keep).expect("open");
    if !wal_intact {
        // Fill and rotate past the first segments, then delete the big key,
        // so the snapshot is small but the WAL start is gone.
        for i in 0..70 {
            db.set("big", vec![i as u8; 1500]).expect("set");
        }
        db.delete("big").expect("delete");
    }
    let mut m = Model::new();
    for i in 0..5 {
        let (k, v) = (
            format!("s{i}").into_bytes(),
            format!("snap-{i}").into_bytes(),
        );
        db.set(&k, &v).expect("set");
        m.insert(k, v);
    }
    db.checkpoint().expect("checkpoint");
    db.crash_for_testing();
    // Both the "last record lost" state and the full state are the same
    // here: the snapshot covers every record.
    (fs, vec![m.clone(), m])
}

#[test]
fn every_bit_of_a_small_snapshot() {
    for wal_intact in [true, false] {
        let (fs, states) = snapshot_db(wal_intact);
        let snap = files(&fs, ".kvs").pop().expect("snapshot");
        if !wal_intact {
            let first = files(&fs, ".wal")[0].clone();
            assert_ne!(
                first.file_name().expect("name"),
                "00000000000000000001.wal",
                "the WAL start must be gone"
            );
        }
        let bytes = fs.read_file(&snap).expect("bytes");
        let mut t = Tally::default();
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let img = copy(&fs);
                let mut b = bytes.clone();
                b[byte] ^= 1 << bit;
                img.write_file(&snap, b);
                judge(
                    &img,
                    &snap,
                    &states,
                    if wal_intact { 2 } else { 1 },
                    &format!("snapshot byte {byte} bit {bit}"),
                    &mut t,
                );
            }
        }
        for cut in 0..bytes.len() {
            let img = copy(&fs);
            img.write_file(&snap, bytes[..cut].to_vec());
            judge(
                &img,
                &snap,
                &states,
                if wal_intact { 2 } else { 1 },
                &format!("snapshot cut {cut}"),
                &mut t,
            );
        }
        eprintln!("snapshot damage (WAL intact: {wal_intact}): {t:?}");
        if wal_intact {
            assert_eq!(
                t.corruption, 0,
                "the WAL can replace a damaged snapshot: {t:?}"
            );
        } else {
            assert_eq!(t.intact, 0, "every bit of a needed snapshot matters: {t:?}");
        }
    }
}

#[test]
fn swapped_segments_are_corruption() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new(DIR)).expect("mkdir");
    let db = open(&fs, 2).expect("open");
    for i in 0..200u32 {
        db.set(format!("k{i}"), vec![b'x'; 700]).expect("set");
    }
    db.crash_for_testing();
    let segs = files(&fs, ".wal");
    assert!(segs.len() >= 3);
    let (a, b) = (
        fs.read_file(&segs[0]).expect("a"),
        fs.read_file(&segs[1]).expect("b"),
    );
    let img = copy(&fs);
    img.write_file(&segs[0], b);
    img.write_file(&segs[1], a);
    assert!(matches!(open(&img, 2), Err(Error::Corruption { .. })));
}

#[test]
fn records_spliced_from_another_database_are_corruption() {
    let (mine, _) = small_db(10);
    let (theirs, _) = small_db(10); // same keys, same LSNs, same segment id
    let seg = files(&mine, ".wal").pop().expect("segment");
    let my_bytes = mine.read_file(&seg).expect("mine");
    let their_bytes = theirs.read_file(&seg).expect("theirs");
    // Their third record, byte for byte, in place of ours. Records here are
    // 64 bytes (40-byte header, 22-byte payload, padding). Both databases
    // wrote the same keys and values at the same LSNs in segment 1, so the
    // records differ only in their checksums, which the database id seeds.
    let mut spliced = my_bytes.clone();
    let rec = 4096 + 2 * 64..4096 + 3 * 64;
    assert_ne!(my_bytes[rec.clone()], their_bytes[rec.clone()]);
    assert_eq!(
        my_bytes[rec.start + 4..rec.end],
        their_bytes[rec.start + 4..rec.end],
        "only the CRC differs"
    );
    spliced[rec.clone()].copy_from_slice(&their_bytes[rec]);
    let img = copy(&mine);
    img.write_file(&seg, spliced);
    match open(&img, 2) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, seg),
        other => panic!(
            "spliced record was accepted: {:?}",
            other.map(|db| contents(&db).len())
        ),
    }
    // A whole segment from the other database.
    let img = copy(&mine);
    img.write_file(&seg, their_bytes);
    let snapless = files(&img, ".kvs").is_empty();
    assert!(snapless);
    // Alone it is a valid database of its own; next to our snapshot it is not.
    let (with_snap, _) = snapshot_db(true);
    let seg2 = files(&with_snap, ".wal").pop().expect("segment");
    let foreign = theirs.read_file(&seg).expect("theirs");
    let img = copy(&with_snap);
    img.write_file(&seg2, foreign);
    assert!(
        matches!(open(&img, 2), Err(Error::Corruption { .. })),
        "a foreign segment next to our snapshot"
    );
}

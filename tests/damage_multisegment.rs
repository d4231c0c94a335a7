//! Damage to a store that has lived: several WAL segments, two kept
//! snapshots, three crash-and-recover generations (built on a deterministic
//! `SimFs`). Each case damages one thing and opens the store in the
//! default recovery mode and in salvage mode:
//!
//! - every byte of the record header of each segment's first record;
//! - every byte of each segment header;
//! - the padding after a record, the zero tail after the last record, and
//!   each segment's last record (the link to its successor);
//! - every segment and every snapshot deleted, one at a time;
//! - every segment shortened (padding cut, or cut inside its last record);
//! - bytes of every snapshot's header and digest.
//!
//! **Outcome per case.** Default mode: the exact final contents (the damage
//! was harmless, or a torn tail of one record that open reports), or a
//! `Corruption` error naming a file in the store. Salvage mode: the open
//! succeeds, and the contents equal the newest undamaged snapshot plus
//! every record the damage did not touch, applied in LSN order (an
//! expectation computed from the record layout, independently of the
//! recovery code), and any loss is reported. Never wrong data, never a
//! silent loss.
mod common;
use keyval::fs::{CrashMode, FileSystem, SimFs};
use keyval::internals::wal::reader;
use keyval::internals::wal::record::{Owner, RecordType};
use keyval::{Db, Error, Options, RecoveryMode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
/// Every write in order: (key, value).
type Writes = Vec<(Vec<u8>, Vec<u8>)>;
const DIR: &str = "/lived";

fn opts(mode: RecoveryMode) -> Options {
    Options {
        segment_size: 64 << 10,
        max_wal_size: 0,
        keep_snapshots: 2,
        recovery_mode: mode,
        ..Options::default()
    }
}

fn open(fs: &SimFs, mode: RecoveryMode) -> keyval::Result<Db> {
    let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
    Db::open_with_fs(DIR, opts(mode), fsa)
}

fn contents(db: &Db) -> Model {
    db.iter().map(|r| r.expect("iter")).collect()
}

/// Three generations: writes, checkpoints, crashes. Returns the image and
/// every write in order as (key, value).
fn lived_store() -> (SimFs, Writes) {
    let mut fs = SimFs::deterministic();
    fs.create_dir_all(Path::new(DIR)).expect("mkdir");
    let mut writes = Vec::new();
    let mut n = 0u64;
    let plan: [&[(u64, bool)]; 3] = [
        &[(150, true), (150, false)],
        &[(150, true), (120, false)],
        &[(100, false)],
    ];
    for gen in plan {
        let db = open(&fs, RecoveryMode::TolerateTailCorruption).expect("open");
        for &(count, checkpoint) in gen {
            for _ in 0..count {
                let k = format!("k{:03}", n % 97).into_bytes();
                let mut v = format!("v{n}-").into_bytes();
                v.resize(
                    v.len() + 300 + (n * 37 % 600) as usize,
                    b'a' + (n % 26) as u8,
                );
                db.set(&k, &v).expect("set");
                writes.push((k, v));
                n += 1;
            }
            if checkpoint {
                db.checkpoint().expect("checkpoint");
            }
        }
        db.crash_for_testing();
        fs = fs.crash_image(CrashMode::DropAll, 7);
    }
    (fs, writes)
}

/// One record of the WAL as laid out on disk.
#[derive(Debug, Clone)]
struct Rec {
    segment: PathBuf,
    offset: u64,
    /// Header + payload bytes (the checksummed part; padding excluded).
    len: u64,
    lsn: u64,
    /// Index into the writes, for a key-value record.
    write: Option<usize>,
}

struct Layout {
    segments: Vec<PathBuf>,
    /// (snapshot path, LSN it covers).
    snapshots: Vec<(PathBuf, u64)>,
    records: Vec<Rec>,
    /// LSN of each write that is in the WAL or covered by a snapshot.
    lsn_of_write: BTreeMap<usize, u64>,
}

fn files(fs: &SimFs, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs
        .list_dir(Path::new(DIR))
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .map(|n| Path::new(DIR).join(n))
        .collect();
    v.sort();
    v
}

fn layout(fs: &SimFs, writes: &[(Vec<u8>, Vec<u8>)]) -> Layout {
    let by_value: BTreeMap<&[u8], usize> = writes
        .iter()
        .enumerate()
        .map(|(i, (_, v))| (&v[..], i))
        .collect();
    let segments = files(fs, ".wal");
    let mut records = Vec::new();
    let mut lsn_of_write = BTreeMap::new();
    for seg in &segments {
        let buf = fs.read_file(seg).expect("segment");
        let id: u64 = seg
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse().ok())
            .expect("segment id");
        let db_id = u64::from_le_bytes(buf[40..48].try_into().expect("8"));
        let scan = reader::scan(
            &buf,
            Owner {
                db_id,
                segment_id: id,
            },
        );
        assert!(scan.damage.is_none(), "the lived store is already damaged");
        for r in scan.records {
            let write = (r.header.rtype == RecordType::KvBatch as u8).then(|| {
                let op = keyval::internals::batch::decode(&buf[r.payload.clone()])
                    .next()
                    .expect("one op")
                    .expect("valid op");
                match op {
                    keyval::internals::batch::Op::Put(_, v) => by_value[v],
                    _ => unreachable!("only puts written"),
                }
            });
            if let Some(w) = write {
                lsn_of_write.insert(w, r.header.lsn);
            }
            records.push(Rec {
                segment: seg.clone(),
                offset: r.offset,
                len: 40 + u64::from(r.header.len),
                lsn: r.header.lsn,
                write,
            });
        }
    }
    let snapshots = files(fs, ".kvs")
        .into_iter()
        .map(|p| {
            let lsn = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("snap-"))
                .and_then(|n| n.strip_suffix(".kvs"))
                .and_then(|n| n.parse().ok())
                .expect("snapshot lsn");
            (p, lsn)
        })
        .collect();
    Layout {
        segments,
        snapshots,
        records,
        lsn_of_write,
    }
}

/// The state after every write with LSN <= `lsn` (writes before the WAL's
/// oldest record all are: they are older than every record kept).
fn state_at(writes: &[(Vec<u8>, Vec<u8>)], l: &Layout, lsn: u64) -> Model {
    let first_in_wal = l
        .lsn_of_write
        .keys()
        .next()
        .copied()
        .unwrap_or(writes.len());
    let mut m = Model::new();
    for (i, (k, v)) in writes.iter().enumerate() {
        let included = match l.lsn_of_write.get(&i) {
            Some(&x) => x <= lsn,
            None => i < first_in_wal,
        };
        if included {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

/// What salvage must produce: the newest snapshot not in `bad_snapshots`,
/// then every record not in `lost` with a higher LSN, in LSN order.
fn salvage_expectation(
    writes: &[(Vec<u8>, Vec<u8>)],
    l: &Layout,
    bad_snapshots: &[PathBuf],
    lost: &dyn Fn(&Rec) -> bool,
) -> Model {
    let base = l
        .snapshots
        .iter()
        .rev()
        .find(|(p, _)| !bad_snapshots.contains(p))
        .map(|(_, lsn)| *lsn);
    let mut m = match base {
        Some(lsn) => state_at(writes, l, lsn),
        None => Model::new(),
    };
    let from = base.unwrap_or(0);
    for r in l.records.iter().filter(|r| r.lsn > from && !lost(r)) {
        if let Some(w) = r.write {
            m.insert(writes[w].0.clone(), writes[w].1.clone());
        }
    }
    m
}

#[derive(Debug, Default)]
struct Tally {
    cases: u64,
    intact: u64,
    truncated_tail: u64,
    corruption: u64,
    salvaged_exactly: u64,
}

/// Judge one damaged image in both modes.
fn judge(
    img: &SimFs,
    what: &str,
    final_state: &Model,
    before_last: &Model,
    salvage_expect: &Model,
    t: &mut Tally,
) {
    t.cases += 1;
    // Salvage gets its own copy: the default-mode open may zero a torn tail.
    let copy = img.crash_image(CrashMode::DropAll, 1);
    match open(img, RecoveryMode::TolerateTailCorruption) {
        Ok(db) => {
            let got = contents(&db);
            let st = db.stats().expect("stats");
            if &got == final_state {
                t.intact += 1;
            } else if &got == before_last && st.recovery.truncation.is_some() {
                t.truncated_tail += 1;
            } else {
                panic!(
                    "{what}: default mode opened with wrong or missing data and no error \
                     ({} keys, {:?})",
                    got.len(),
                    st.recovery
                );
            }
            db.crash_for_testing();
        }
        Err(Error::Corruption { file, .. }) => {
            assert!(
                file.starts_with(DIR),
                "{what}: corruption names {}",
                file.display()
            );
            t.corruption += 1;
        }
        Err(e) => panic!("{what}: unexpected error {e}"),
    }
    let db = open(&copy, RecoveryMode::TolerateAnyCorruption)
        .unwrap_or_else(|e| panic!("{what}: salvage failed to open: {e}"));
    let got = contents(&db);
    let st = db.stats().expect("stats");
    let lost = &got != final_state;
    let reported = st.recovery.records_skipped
        + st.recovery.bytes_skipped
        + st.recovery.segments_missing
        + st.recovery.snapshots_rejected
        > 0
        || st.recovery.truncation.is_some();
    assert!(
        &got == salvage_expect,
        "{what}: salvage kept {} keys, expected {} (differing keys: {:?})",
        got.len(),
        salvage_expect.len(),
        got.iter()
            .filter(|(k, v)| salvage_expect.get(*k) != Some(*v))
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .take(5)
            .collect::<Vec<_>>()
    );
    assert!(
        !lost || reported,
        "{what}: salvage lost data without reporting it: {:?}",
        st.recovery
    );
    t.salvaged_exactly += 1;
    db.crash_for_testing();
    // Salvage made its result the baseline: a later open in the default
    // mode starts from it and trips over nothing.
    let after = copy.crash_image(CrashMode::DropAll, 2);
    let db = open(&after, RecoveryMode::TolerateTailCorruption)
        .unwrap_or_else(|e| panic!("{what}: default open after salvage failed: {e}"));
    assert!(
        contents(&db) == got,
        "{what}: the open after salvage differs from what salvage kept"
    );
    db.crash_for_testing();
}

fn damaged(fs: &SimFs, path: &Path, f: impl FnOnce(&mut Vec<u8>)) -> SimFs {
    let img = fs.crash_image(CrashMode::DropAll, 1);
    let mut b = img.read_file(path).expect("file");
    f(&mut b);
    img.write_file(path, b);
    img
}

/// A copy of the store with `path` deleted (durably: the directory is
/// synced, so the deletion survives into later crash images).
fn deleted(fs: &SimFs, path: &Path) -> SimFs {
    let img = fs.crash_image(CrashMode::DropAll, 1);
    img.remove_file(path).expect("remove");
    img.sync_dir(Path::new(DIR)).expect("sync dir");
    img
}

#[test]
fn damage_across_segments_snapshots_and_generations() {
    let (fs, writes) = lived_store();
    let l = layout(&fs, &writes);
    assert!(l.segments.len() >= 4, "{} segments", l.segments.len());
    assert_eq!(l.snapshots.len(), 2);
    let final_state = state_at(&writes, &l, u64::MAX);
    let last_rec = l
        .records
        .iter()
        .rev()
        .find(|r| r.write.is_some())
        .expect("rec");
    let before_last = state_at(&writes, &l, last_rec.lsn - 1);
    let mut t = Tally::default();
    let hit = |seg: &Path, lo: u64, hi: u64| {
        let seg = seg.to_path_buf();
        move |r: &Rec| r.segment == seg && r.offset < hi && lo < r.offset + r.len
    };

    let check = |img: &SimFs, what: &str, exp: &Model, t: &mut Tally| {
        judge(img, what, &final_state, &before_last, exp, t)
    };
    for seg in &l.segments {
        let recs: Vec<&Rec> = l.records.iter().filter(|r| &r.segment == seg).collect();
        let first = recs.first().expect("record");
        // Every byte of the first record's header.
        for b in 0..40u64 {
            let at = first.offset + b;
            let img = damaged(&fs, seg, |buf| buf[at as usize] ^= 1 << (b % 8));
            let lost = hit(seg, at, at + 1);
            let exp = salvage_expectation(&writes, &l, &[], &lost);
            let what = format!("{} first record header byte {b}", seg.display());
            check(&img, &what, &exp, &mut t);
        }
        // Every byte of the segment header: default mode refuses a damaged
        // header, but salvage still finds and verifies every record of the
        // segment (each record's checksum covers its database id, segment
        // id and LSN, and the database id is known from the snapshot), so
        // nothing is lost. (Issue 29: salvage used to drop the segment.)
        for b in 0..64u64 {
            let img = damaged(&fs, seg, |buf| buf[b as usize] ^= 0x40);
            let exp = final_state.clone();
            let what = format!("{} segment header byte {b}", seg.display());
            check(&img, &what, &exp, &mut t);
        }
        // Padding after a record (unchecked: harmless).
        if let Some(r) = recs.iter().find(|r| r.len % 8 != 0) {
            let at = r.offset + r.len;
            let img = damaged(&fs, seg, |buf| buf[at as usize] ^= 0x20);
            let what = format!("{} padding at {at}", seg.display());
            check(&img, &what, &final_state, &mut t);
        }
        // The last record (for an older segment, its link to the next).
        let last = recs.last().expect("record");
        let at = last.offset + 9;
        let img = damaged(&fs, seg, |buf| buf[at as usize] ^= 0x02);
        let exp = salvage_expectation(&writes, &l, &[], &hit(seg, at, at + 1));
        let what = format!("{} last record", seg.display());
        check(&img, &what, &exp, &mut t);
        // Garbage in the zero tail after the last record.
        let size = fs.read_file(seg).expect("seg").len() as u64;
        let at = (last.offset + last.len + 4096).min(size - 1);
        let img = damaged(&fs, seg, |buf| buf[at as usize] = 0x5A);
        let what = format!("{} zero tail at {at}", seg.display());
        check(&img, &what, &final_state, &mut t);
        // Deleted.
        let img = deleted(&fs, seg);
        let s = seg.clone();
        let exp = salvage_expectation(&writes, &l, &[], &move |r: &Rec| r.segment == s);
        let what = format!("{} deleted", seg.display());
        check(&img, &what, &exp, &mut t);
        // Shortened: padding cut (records intact), and cut inside the last
        // record.
        let end = last.offset + last.len;
        let img = damaged(&fs, seg, |buf| buf.truncate((end + 8) as usize));
        let what = format!("{} cut to {}", seg.display(), end + 8);
        check(&img, &what, &final_state, &mut t);
        let cut = last.offset + last.len / 2;
        let img = damaged(&fs, seg, |buf| buf.truncate(cut as usize));
        let exp = salvage_expectation(&writes, &l, &[], &hit(seg, cut, u64::MAX));
        let what = format!("{} cut to {cut}", seg.display());
        check(&img, &what, &exp, &mut t);
    }

    for (snap, _) in &l.snapshots {
        let len = fs.read_file(snap).expect("snapshot").len();
        for at in (0..48).chain([60, len / 2, len - 32, len - 1]) {
            let img = damaged(&fs, snap, |buf| buf[at] ^= 0x08);
            let exp = salvage_expectation(&writes, &l, std::slice::from_ref(snap), &|_| false);
            let what = format!("{} byte {at}", snap.display());
            check(&img, &what, &exp, &mut t);
        }
        let img = deleted(&fs, snap);
        let exp = salvage_expectation(&writes, &l, std::slice::from_ref(snap), &|_| false);
        let what = format!("{} deleted", snap.display());
        check(&img, &what, &exp, &mut t);
    }
    println!(
        "damage across {} segments and {} snapshots of a 3-generation store: {t:?}",
        l.segments.len(),
        l.snapshots.len()
    );
    assert!(t.corruption > 0 && t.intact > 0);
}

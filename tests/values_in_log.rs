//! Values left in the WAL segments (value separation): reads, restarts
//! through key-directory checkpoints, the memory budget, retention,
//! reclaim, snapshots pinning segments, and damage (a flipped byte inside
//! a separated value, a missing kept segment).

use keyval::{Db, Durability, Error, Options, RecoveryMode};
use std::path::Path;

fn opts() -> Options {
    Options {
        segment_size: 256 << 10,
        max_wal_size: 0,
        memory_budget: 64 << 10,
        ..Options::default()
    }
}

/// A value of `len` bytes that names its key and version.
fn value(key: u32, version: u32, len: usize) -> Vec<u8> {
    let mut v = format!("k{key}-v{version}-").into_bytes();
    while v.len() < len {
        v.push(b'a' + ((v.len() as u32 + key + version) % 26) as u8);
    }
    v.truncate(len);
    v
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

fn checkpoint_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "kvs"))
        .collect();
    v.sort();
    v
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

/// Several times the cache budget of 4 KiB values (and some small ones),
/// across a named keyspace too, read back before and after restarts.
#[test]
fn large_values_survive_restarts_and_stay_out_of_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 600u32; // 2.4 MB of large values, 37 times the budget
    {
        let db = Db::open(dir.path(), opts()).expect("open");
        let ks = db.keyspace("docs").expect("ks");
        for i in 0..n {
            let len = if i % 5 == 0 { 100 } else { 4096 };
            db.set(key(i), value(i, 0, len)).expect("set");
            ks.set(key(i), value(i, 1, len)).expect("set in");
        }
        let st = db.stats().expect("stats");
        assert_eq!(st.separated_values, 2 * (n as u64 - n as u64 / 5));
        assert!(st.memory_bytes < st.value_bytes / 4, "{st:?}");
        for i in (0..n).rev() {
            let len = if i % 5 == 0 { 100 } else { 4096 };
            assert_eq!(db.get(key(i)).expect("get"), Some(value(i, 0, len)));
            assert_eq!(ks.get(key(i)).expect("get"), Some(value(i, 1, len)));
        }
        let st = db.stats().expect("stats");
        assert!(st.value_cache_bytes <= 64 << 10, "{st:?}");
        assert!(st.value_reads > 0, "{st:?}");
        db.checkpoint().expect("checkpoint");
    }
    // The checkpoint is a key directory: far smaller than the values.
    let ck = checkpoint_files(dir.path());
    let bytes = std::fs::metadata(ck.last().expect("a checkpoint"))
        .expect("meta")
        .len();
    let small: u64 = 2 * (n as u64 / 5) * 100;
    let keys = 2 * n as u64;
    assert!(
        bytes < small + keys * (10 + 4 + 8 + 24) + 4096,
        "checkpoint of {bytes} bytes"
    );
    for round in 0..3 {
        let db = Db::open(dir.path(), opts()).expect("reopen");
        let ks = db.keyspace("docs").expect("ks");
        for i in 0..n {
            let len = if i % 5 == 0 { 100 } else { 4096 };
            assert_eq!(
                db.get(key(i)).expect("get"),
                Some(value(i, round * 2, len)),
                "round {round} key {i}"
            );
            assert_eq!(
                ks.get(key(i)).expect("get"),
                Some(value(i, round * 2 + 1, len))
            );
        }
        // Scans, iterators, snapshots and get_many read separated values.
        let all: Vec<_> = db.iter().map(|r| r.expect("iter")).collect();
        assert_eq!(all.len(), n as usize);
        assert_eq!(all[7].1.len(), 4096);
        let snap = ks.snapshot().expect("snapshot");
        let mut seen = 0;
        snap.scan::<[u8], _>(.., |_, v| {
            seen += v.len();
            true
        })
        .expect("scan");
        assert_eq!(seen as u64, ks.stats().expect("stats").value_bytes);
        let many = db.get_many(&[key(3), key(5), key(2)]).expect("get_many");
        assert_eq!(many[0], Some(value(3, round * 2, 4096)));
        assert_eq!(many[1], Some(value(5, round * 2, 100)));
        assert_eq!(many[2], Some(value(2, round * 2, 4096)));
        // The next version, then close (and a final checkpoint).
        for i in 0..n {
            let len = if i % 5 == 0 { 100 } else { 4096 };
            db.set(key(i), value(i, round * 2 + 2, len)).expect("set");
            ks.set(key(i), value(i, round * 2 + 3, len)).expect("set");
        }
        db.close().expect("close");
    }
}

/// Under `Buffered` a value is read back from the write buffer before it
/// reaches the file.
#[test]
fn buffered_values_are_read_before_they_reach_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        Options {
            durability: Durability::Buffered,
            memory_budget: 0,
            ..opts()
        },
    )
    .expect("open");
    for i in 0..50 {
        db.set(key(i), value(i, 0, 2000)).expect("set");
        assert_eq!(db.get(key(i)).expect("get"), Some(value(i, 0, 2000)));
    }
    let snap = db.snapshot().expect("snapshot");
    assert_eq!(snap.get(key(3)).expect("get"), Some(value(3, 0, 2000)));
    db.sync().expect("sync");
    assert_eq!(db.get(key(4)).expect("get"), Some(value(4, 0, 2000)));
}

/// Overwrites leave garbage; reclaim moves the live values out of
/// mostly-dead segments and checkpoint retention deletes them, while a
/// snapshot taken before keeps reading its values until it is dropped.
#[test]
fn reclaim_bounds_disk_and_snapshots_pin_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), opts()).expect("open");
    let n = 200u32;
    for i in 0..n {
        db.set(key(i), value(i, 0, 4096)).expect("set");
    }
    let early = db.snapshot().expect("snapshot");
    for version in 1..6 {
        for i in 0..n {
            // Most keys are overwritten; every tenth keeps version 0.
            if i % 10 != 0 {
                db.set(key(i), value(i, version, 4096)).expect("set");
            }
        }
    }
    db.checkpoint().expect("checkpoint");
    let live = db.stats().expect("stats").separated_bytes;
    let before: u64 = db.stats().expect("stats").wal_bytes;
    assert!(before > 3 * live, "{before} vs {live}");
    let r = db.reclaim().expect("reclaim");
    assert!(r.segments > 0 && r.values > 0, "{r:?}");
    // The early snapshot still sees version 0 everywhere.
    for i in (0..n).step_by(7) {
        assert_eq!(early.get(key(i)).expect("early"), Some(value(i, 0, 4096)));
    }
    drop(early);
    db.checkpoint().expect("checkpoint");
    db.set(b"x", b"y").expect("set");
    db.checkpoint().expect("checkpoint");
    let st = db.stats().expect("stats");
    assert!(
        st.wal_bytes < before / 2,
        "disk {} before {before}, live {}: {st:?}",
        st.wal_bytes,
        st.separated_bytes
    );
    for i in 0..n {
        let v = if i % 10 == 0 { 0 } else { 5 };
        assert_eq!(db.get(key(i)).expect("get"), Some(value(i, v, 4096)));
    }
    db.close().expect("close");
    let db = Db::open(dir.path(), opts()).expect("reopen");
    for i in 0..n {
        let v = if i % 10 == 0 { 0 } else { 5 };
        assert_eq!(
            db.get(key(i)).expect("get"),
            Some(value(i, v, 4096)),
            "key {i}"
        );
    }
}

/// A flipped byte inside a separated value is a `Corruption` naming the
/// segment and offset, from reads and from `verify`; nothing else is lost.
#[test]
fn a_flipped_byte_in_a_separated_value_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Db::open(dir.path(), opts()).expect("open");
        for i in 0..20 {
            db.set(key(i), value(i, 0, 3000)).expect("set");
        }
        db.close().expect("close");
    }
    // Find key 7's value in the segment files and flip one byte of it.
    let want = value(7, 0, 3000);
    let mut hit = None;
    for seg in segments(dir.path()) {
        let bytes = std::fs::read(&seg).expect("read");
        if let Some(at) = bytes.windows(want.len()).position(|w| w == want.as_slice()) {
            hit = Some((seg, at + 1500));
        }
    }
    let (seg, at) = hit.expect("value found in a segment");
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[at] ^= 0x20;
    std::fs::write(&seg, &bytes).expect("write");
    let db = Db::open(dir.path(), opts()).expect("open: values are not read at open");
    match db.get(key(7)) {
        Err(Error::Corruption {
            file,
            offset,
            detail,
        }) => {
            assert_eq!(file, seg);
            assert!(offset.is_some(), "{detail}");
            assert!(detail.contains("CRC"), "{detail}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert_eq!(db.get(key(8)).expect("get"), Some(value(8, 0, 3000)));
    assert!(db.iter().any(|r| r.is_err()), "the iterator reports it too");
    db.close().expect("close");
    let rep =
        keyval::internals::verify::verify_dir(&keyval::fs::RealFs, dir.path()).expect("verify");
    assert!(rep.has_corruption(), "{rep:?}");
    assert_eq!(rep.separated_values, 20);
}

/// A deleted segment that a checkpoint keeps values in fails the open
/// (naming it); salvage drops exactly the keys whose values were there.
#[test]
fn a_missing_kept_segment_fails_open_and_salvage_drops_its_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Db::open(dir.path(), opts()).expect("open");
        for i in 0..300 {
            db.set(key(i), value(i, 0, 4096)).expect("set");
        }
        db.set(b"small", b"value").expect("set");
        db.close().expect("close");
    }
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "{segs:?}");
    std::fs::remove_file(&segs[0]).expect("rm");
    match Db::open(dir.path(), opts()) {
        Err(Error::Corruption { file, detail, .. }) => {
            assert_eq!(file, segs[0]);
            assert!(detail.contains("missing"), "{detail}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    let db = Db::open(
        dir.path(),
        Options {
            recovery_mode: RecoveryMode::TolerateAnyCorruption,
            ..opts()
        },
    )
    .expect("salvage");
    let st = db.stats().expect("stats");
    assert!(st.recovery.values_dropped > 0, "{st:?}");
    assert_eq!(st.keys + st.recovery.values_dropped, 301);
    assert_eq!(db.get(b"small").expect("get"), Some(b"value".to_vec()));
    let mut present = 0;
    for i in 0..300 {
        if let Some(v) = db.get(key(i)).expect("get") {
            assert_eq!(v, value(i, 0, 4096));
            present += 1;
        }
    }
    assert_eq!(present, st.keys - 1);
    db.close().expect("close");
    // The salvaged baseline opens in the default mode.
    let db = Db::open(dir.path(), opts()).expect("reopen after salvage");
    assert_eq!(db.stats().expect("stats").keys, st.keys);
}

/// The threshold off keeps every value in memory, as before; a store
/// written that way opens with separation on, and the other way round.
#[test]
fn separation_can_be_turned_off_and_on_across_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let off = Options {
        value_separation_threshold: None,
        ..opts()
    };
    {
        let db = Db::open(dir.path(), off.clone()).expect("open");
        for i in 0..50 {
            db.set(key(i), value(i, 0, 2048)).expect("set");
        }
        assert_eq!(db.stats().expect("stats").separated_values, 0);
        db.close().expect("close");
    }
    {
        let db = Db::open(dir.path(), opts()).expect("open on");
        for i in 50..100 {
            db.set(key(i), value(i, 0, 2048)).expect("set");
        }
        assert_eq!(db.stats().expect("stats").separated_values, 50);
        db.close().expect("close");
    }
    let db = Db::open(dir.path(), off).expect("open off");
    for i in 0..100 {
        assert_eq!(db.get(key(i)).expect("get"), Some(value(i, 0, 2048)));
    }
    assert!(Db::open(
        tempfile::tempdir().expect("t").path(),
        Options {
            value_separation_threshold: Some(10),
            ..opts()
        }
    )
    .is_err());
}

/// Iterators read separated values ahead in file order; mixing both
/// ends, seeks and rewinds still yields exactly a model's pairs.
#[test]
fn iterators_over_separated_values_match_a_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), opts()).expect("open");
    let mut model = std::collections::BTreeMap::new();
    // Written out of key order, so file order differs from key order.
    for j in 0..120u32 {
        let i = (j * 37) % 120;
        let len = if i % 3 == 0 { 50 } else { 1500 + i as usize };
        db.set(key(i), value(i, 0, len)).expect("set");
        model.insert(key(i), value(i, 0, len));
    }
    let mut rng = 12345u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..40 {
        let mut it = db.iter();
        let mut front: Vec<Vec<u8>> = model.keys().cloned().collect();
        let mut got_front = Vec::new();
        let mut got_back = Vec::new();
        for _ in 0..60 {
            match next() % 10 {
                0..=5 => {
                    if let Some(r) = it.next() {
                        got_front.push(r.expect("next"));
                    }
                }
                6..=7 => {
                    if let Some(r) = it.next_back() {
                        got_back.push(r.expect("next_back"));
                    }
                }
                8 => {
                    let k = key((next() % 120) as u32);
                    it.seek(&k);
                    // The model: the front moves to the first key >= k
                    // that is not yet taken from the back.
                    let taken_back: std::collections::HashSet<_> =
                        got_back.iter().map(|(k, _)| k.clone()).collect();
                    front = model
                        .keys()
                        .filter(|x| **x >= k && !taken_back.contains(*x))
                        .cloned()
                        .collect();
                    got_front.clear();
                }
                _ => {
                    it.rewind();
                    front = model.keys().cloned().collect();
                    got_front.clear();
                    got_back.clear();
                }
            }
            // What the front yielded since the last seek is a prefix of
            // the model's remaining keys, values included.
            for (i, (k, v)) in got_front.iter().enumerate() {
                assert_eq!(Some(k), front.get(i), "round {round}");
                assert_eq!(Some(v), model.get(k), "round {round}");
            }
            for (k, v) in &got_back {
                assert_eq!(Some(v), model.get(k), "round {round}");
            }
        }
    }
    let all: Vec<_> = db.iter().map(|r| r.expect("iter")).collect();
    let want: Vec<_> = model.into_iter().collect();
    assert_eq!(all, want);
    let rev: Vec<_> = db.iter().rev().map(|r| r.expect("iter")).collect();
    assert_eq!(rev, want.into_iter().rev().collect::<Vec<_>>());
}

/// Reclaim that falls behind paces writers: with automatic checkpoints
/// (and so the reclaim after them) practically never due, 30 overwrites
/// of every key would leave 30 times the live bytes on disk; the space cap
/// runs reclaim in the writers' path instead, so the WAL never grows past
/// the cap (plus the batch in flight).
#[test]
fn writers_are_paced_when_garbage_passes_the_space_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seg = 128u64 << 10;
    let db = Db::open(
        dir.path(),
        Options {
            segment_size: seg,
            max_wal_size: 1 << 40,
            ..opts()
        },
    )
    .expect("open");
    let n = 100u32;
    for version in 0..30 {
        for i in 0..n {
            db.set(key(i), value(i, version, 4096)).expect("set");
            if i % 5 != 0 {
                continue;
            }
            let st = db.stats().expect("stats");
            // The first segment is 1 MiB, later ones `seg`.
            let cap = keyval::SPACE_CAP * st.separated_bytes + 4 * (1 << 20) + 2 * seg;
            assert!(
                st.wal_bytes <= cap,
                "version {version} key {i}: {} WAL bytes for {} live (cap {cap})",
                st.wal_bytes,
                st.separated_bytes
            );
        }
    }
    let st = db.stats().expect("stats");
    assert!(st.space_stalls > 0 && st.reclaimed_segments > 0, "{st:?}");
    for i in 0..n {
        assert_eq!(db.get(key(i)).expect("get"), Some(value(i, 29, 4096)));
    }
}

/// A read-only handle beside a writer keeps reading its view's separated
/// values after the writer reclaims and deletes their segments.
#[test]
fn a_read_only_view_survives_the_writers_reclaim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), opts()).expect("open");
    for i in 0..200 {
        db.set(key(i), value(i, 0, 4096)).expect("set");
    }
    db.checkpoint().expect("checkpoint");
    let ro = Db::open(
        dir.path(),
        Options {
            read_only: true,
            ..opts()
        },
    )
    .expect("read-only open");
    for version in 1..4 {
        for i in 0..200 {
            db.set(key(i), value(i, version, 4096)).expect("set");
        }
    }
    db.checkpoint().expect("checkpoint");
    let r = db.reclaim().expect("reclaim");
    db.checkpoint().expect("checkpoint");
    assert!(r.segments > 0, "{r:?}");
    for i in 0..200 {
        assert_eq!(
            ro.get(key(i)).expect("read-only get"),
            Some(value(i, 0, 4096)),
            "key {i}"
        );
    }
}

//! Small stores stay small: segments start at 1 MiB and double at each
//! rotation up to `segment_size`, and every size reopens with all data.
use keyval::{Db, Options};
use std::path::Path;

/// Sizes of the WAL segment files in `dir`, in id order.
fn segment_sizes(dir: &Path) -> Vec<u64> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_name().to_string_lossy().ends_with(".wal"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().expect("metadata").len(),
            )
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, s)| s).collect()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum()
}

#[test]
fn a_store_with_a_few_keys_takes_about_one_mebibyte() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    let db = Db::open(&dir, Options::default()).expect("open");
    db.set("a", "1").expect("set");
    db.set("b", "2").expect("set");
    db.close().expect("close");
    let db = Db::open(&dir, Options::default()).expect("reopen");
    assert_eq!(db.len().expect("len"), 2);
    db.close().expect("close");
    assert_eq!(segment_sizes(&dir), vec![1 << 20]);
    let bytes = dir_bytes(&dir);
    assert!(bytes < 5 << 20, "{bytes} bytes for two keys");
}

#[test]
fn segments_double_up_to_segment_size_and_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    // 3 MiB: not a power of two, so the last step is clamped.
    let opts = Options {
        segment_size: 3 << 20,
        max_wal_size: 0,
        ..Options::default()
    };
    let db = Db::open(&dir, opts.clone()).expect("open");
    let value = vec![7u8; 60 << 10];
    for i in 0..150u32 {
        db.set(format!("k{i:04}"), &value).expect("set");
    }
    // A record larger than segment_size gets a segment sized to fit, and
    // the one after it is again at most segment_size.
    db.set("huge", vec![1u8; 4 << 20]).expect("huge");
    for i in 150..200u32 {
        db.set(format!("k{i:04}"), &value).expect("set");
    }
    let sizes = segment_sizes(&dir);
    db.close().expect("close");
    let mib = 1u64 << 20;
    assert_eq!(&sizes[..4], &[mib, 2 * mib, 3 * mib, 3 * mib], "{sizes:?}");
    assert!(sizes.iter().any(|&s| s > 4 * mib), "{sizes:?}");
    assert!(
        sizes.iter().rev().take(1).all(|&s| s <= 3 * mib),
        "{sizes:?}"
    );
    let db = Db::open(&dir, opts).expect("reopen");
    assert_eq!(db.len().expect("len"), 201);
    assert_eq!(db.get("k0199").expect("get"), Some(value));
    assert_eq!(db.get("huge").expect("get").map(|v| v.len()), Some(4 << 20));
}

#[test]
fn small_segment_sizes_are_used_as_they_are() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    let opts = Options {
        segment_size: 64 << 10,
        max_wal_size: 0,
        ..Options::default()
    };
    let db = Db::open(&dir, opts).expect("open");
    for i in 0..100u32 {
        db.set(format!("k{i:04}"), vec![0u8; 2000]).expect("set");
    }
    let sizes = segment_sizes(&dir);
    db.close().expect("close");
    assert!(
        sizes.len() > 2 && sizes.iter().all(|&s| s == 64 << 10),
        "{sizes:?}"
    );
}

/// Growing segments in a store that lives: six generations on the
/// simulated file system, each written by two threads with background
/// checkpoints running (so segments of several sizes are created and
/// deleted), then cut off by a power failure of every kind. Every
/// acknowledged value must survive each cut, and the log must have used
/// segments of 1, 2 and 4 MiB along the way.
#[test]
fn growing_segments_across_power_cut_generations() {
    use keyval::fs::{CrashMode, FileSystem, OpenMode, SimFs};
    use parking_lot::Mutex;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;
    let d = Path::new("/grow");
    let mut fs = SimFs::new();
    fs.create_dir_all(d).expect("mkdir");
    let opts = Options {
        segment_size: 4 << 20,
        max_wal_size: 3 << 20,
        ..Options::default()
    };
    let acked: Mutex<BTreeMap<String, Vec<u8>>> = Mutex::new(BTreeMap::new());
    let sizes: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());
    let mut checkpoints = 0;
    for generation in 0..6u64 {
        let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
        let db = Db::open_with_fs(d, opts.clone(), fsa).expect("open");
        for (k, v) in acked.lock().iter() {
            assert_eq!(
                db.get(k).expect("get").as_ref(),
                Some(v),
                "generation {generation}: {k} lost or stale"
            );
        }
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            // Watch the segment sizes while checkpoints delete old ones.
            s.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    for name in fs.list_dir(d).expect("list") {
                        if name.ends_with(".wal") {
                            if let Ok(f) = fs.open(&d.join(&name), OpenMode::Read) {
                                sizes.lock().insert(f.len().expect("len"));
                            }
                        }
                    }
                    std::thread::yield_now();
                }
            });
            let writers: Vec<_> = (0..2)
                .map(|t| {
                    let (db, acked) = (&db, &acked);
                    s.spawn(move || {
                        for i in 0..400u64 {
                            let k = format!("t{t}-{:03}", i % 300);
                            let mut v = format!("{generation}-{i}").into_bytes();
                            v.resize(4096, b'.');
                            db.set(&k, &v).expect("set");
                            acked.lock().insert(k, v);
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().expect("writer");
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        checkpoints += db.stats().expect("stats").checkpoints;
        // The cut happens while a background checkpoint may still run.
        fs = fs.crash_image(CrashMode::ALL[generation as usize % 5], generation);
        db.crash_for_testing();
    }
    let mib = 1u64 << 20;
    let sizes = sizes.into_inner();
    for want in [mib, 2 * mib, 4 * mib] {
        assert!(
            sizes.contains(&want),
            "no {want}-byte segment among {sizes:?}"
        );
    }
    assert!(checkpoints > 0, "no background checkpoint ran");
    let fsa: Arc<dyn FileSystem> = Arc::new(fs);
    let db = Db::open_with_fs(d, opts, fsa).expect("last open");
    assert_eq!(db.len().expect("len"), acked.lock().len() as u64);
}

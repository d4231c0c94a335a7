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

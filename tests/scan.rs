//! `Db::scan` and `Db::scan_prefix` (borrowing visitors) return exactly
//! what the copying iterators return: same pairs, same order, same bounds,
//! across the 256-pair lock chunks, with early stop, during a checkpoint's
//! delta, and `Closed` after close.
mod common;
use keyval::{Db, Error};
use std::ops::Bound::{self, Excluded, Included, Unbounded};

type Range<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

fn key(i: u32) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

fn collect_scan(db: &Db, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let n = db
        .scan::<[u8], _>((lo, hi), |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            true
        })
        .expect("scan");
    assert_eq!(n as usize, out.len(), "scan's count");
    out
}

fn collect_iter(db: &Db, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.range::<&[u8], _>((lo, hi))
        .map(|p| p.expect("iter"))
        .collect()
}

fn filled(dir: &std::path::Path) -> Db {
    let db = Db::open(dir, common::small_opts()).expect("open");
    let mut b = keyval::WriteBatch::new();
    for i in (0..1000).step_by(2) {
        b.put(key(i), format!("v{i}"));
    }
    db.write(b).expect("fill");
    db
}

#[test]
fn scan_matches_the_iterator_on_every_kind_of_bound() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = filled(tmp.path());
    let (a, b, c) = (key(10), key(11), key(700));
    let cases: Vec<Range> = vec![
        (Unbounded, Unbounded),
        (Included(&a), Unbounded),
        (Excluded(&a), Unbounded),
        (Included(&b), Included(&c)),
        (Included(&a), Excluded(&c)),
        (Unbounded, Included(&a)),
        (Included(&c), Included(&a)), // inverted: empty, no panic
        (Excluded(&a), Excluded(&a)), // empty
        (Included(&a), Included(&a)), // one key
    ];
    for (lo, hi) in cases {
        let got = collect_scan(&db, lo, hi);
        assert_eq!(got, collect_iter(&db, lo, hi), "bounds {lo:?}..{hi:?}");
    }
    assert_eq!(collect_scan(&db, Unbounded, Unbounded).len(), 500);
    assert_eq!(collect_scan(&db, Included(&a), Included(&a)).len(), 1);
    assert!(collect_scan(&db, Included(&c), Included(&a)).is_empty());
}

#[test]
fn scan_stops_when_told_and_prefix_scan_stays_inside_the_prefix() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = filled(tmp.path());
    let mut seen = Vec::new();
    let n = db
        .scan(key(300).as_slice().., |k, _| {
            seen.push(k.to_vec());
            seen.len() < 10
        })
        .expect("scan");
    assert_eq!(n, 10);
    let want: Vec<Vec<u8>> = (300..320).step_by(2).map(key).collect();
    assert_eq!(seen, want);

    // Stopping exactly at a chunk boundary (256) still stops.
    let mut calls = 0;
    db.scan::<&[u8], _>(.., |_, _| {
        calls += 1;
        calls < 256
    })
    .expect("scan");
    assert_eq!(calls, 256);

    let mut got = Vec::new();
    db.scan_prefix(b"k001", |k, v| {
        got.push((k.to_vec(), v.to_vec()));
        true
    })
    .expect("prefix");
    let want: Vec<_> = db.prefix(b"k001").map(|p| p.expect("iter")).collect();
    assert_eq!(got.len(), 50);
    assert_eq!(got, want);
    let mut none = 0;
    db.scan_prefix(b"zz", |_, _| {
        none += 1;
        true
    })
    .expect("prefix");
    assert_eq!(none, 0);
}

#[test]
fn scan_sees_writes_made_during_a_checkpoint_and_reports_closed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = std::sync::Arc::new(filled(tmp.path()));
    // Writes racing a checkpoint land in the delta map, which the visitor
    // merges with the base.
    std::thread::scope(|s| {
        let db2 = std::sync::Arc::clone(&db);
        s.spawn(move || db2.checkpoint().expect("checkpoint"));
        for i in (1..1000).step_by(2) {
            db.set(key(i), format!("odd{i}")).expect("set");
        }
        db.delete(key(0)).expect("delete");
    });
    let all = collect_scan(&db, Unbounded, Unbounded);
    assert_eq!(all, collect_iter(&db, Unbounded, Unbounded));
    assert_eq!(all.len(), 999);
    assert_eq!(all[0], (key(1), b"odd1".to_vec()));
    db.close().expect("close");
    assert_eq!(db.scan::<&[u8], _>(.., |_, _| true), Err(Error::Closed));
    assert_eq!(db.scan_prefix(b"k", |_, _| true), Err(Error::Closed));
}

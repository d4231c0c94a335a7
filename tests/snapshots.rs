//! Read snapshots: consistency under concurrent transfers, a snapshot held
//! across many commits, memory returned when it drops, the age limit,
//! reverse iteration and seek, and iterators that read one snapshot.

mod common;

use common::small_opts;
use keyval::{Db, Error, Options};
use std::sync::atomic::{AtomicBool, Ordering};

const ACCOUNTS: u64 = 50;
const START: u64 = 1000;

fn acct(i: u64) -> String {
    format!("acct/{i:04}")
}

fn num(v: &[u8]) -> u64 {
    std::str::from_utf8(v)
        .expect("utf8")
        .parse()
        .expect("number")
}

/// Writers move units between accounts in transactions (some accounts in
/// a second keyspace) while readers sum every account from one snapshot:
/// every sum is exact, and every snapshot sees each keyspace at the same
/// moment.
#[test]
fn every_snapshot_sum_is_exact_while_transfers_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        Options {
            durability: keyval::Durability::Buffered,
            max_wal_size: 256 << 10,
            ..small_opts()
        },
    )
    .expect("open");
    let other = db.keyspace("other").expect("ks");
    for i in 0..ACCOUNTS {
        db.set(acct(i), START.to_string()).expect("set");
        other.set(acct(i), START.to_string()).expect("set");
    }
    let total = 2 * ACCOUNTS * START;
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for w in 0..3u64 {
            let (db, other, stop) = (db.clone(), other.clone(), &stop);
            s.spawn(move || {
                let mut n = w;
                while !stop.load(Ordering::Relaxed) {
                    n = n
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let (a, b) = ((n >> 33) % ACCOUNTS, (n >> 13) % ACCOUNTS);
                    let cross = n & 1 == 0;
                    db.update(|tx| {
                        let va = num(&tx.get(acct(a))?.expect("a"));
                        let vb = if cross {
                            num(&tx.get_in(&other, acct(b))?.expect("b"))
                        } else {
                            num(&tx.get(acct(b))?.expect("b"))
                        };
                        if a == b && !cross || va == 0 {
                            return Ok(());
                        }
                        tx.set(acct(a), (va - 1).to_string())?;
                        if cross {
                            tx.set_in(&other, acct(b), (vb + 1).to_string())
                        } else {
                            tx.set(acct(b), (vb + 1).to_string())
                        }
                    })
                    .expect("transfer");
                }
            });
        }
        for _ in 0..300 {
            let snap = db.snapshot().expect("snapshot");
            let snap_other = snap.keyspace(&other).expect("same moment");
            let mut sum = 0;
            for r in snap.prefix("acct/") {
                sum += num(&r.expect("pair").1);
            }
            snap_other
                .scan_prefix("acct/", |_, v| {
                    sum += num(v);
                    true
                })
                .expect("scan");
            assert_eq!(
                sum,
                total,
                "snapshot at LSN {} is not consistent",
                snap.lsn()
            );
            // A plain iterator is a snapshot too.
            let plain: u64 = db.prefix("acct/").map(|r| num(&r.expect("pair").1)).sum();
            assert!(plain <= total);
        }
        // A checkpoint and a backup run from a snapshot beside the writers.
        db.checkpoint().expect("checkpoint");
        let dest = dir.path().join("backup");
        let info = db.backup(&dest).expect("backup");
        stop.store(true, Ordering::Relaxed);
        let b = Db::open(&dest, small_opts()).expect("open backup");
        let bo = b.open_keyspace("other").expect("ks");
        let sum: u64 = b
            .prefix("acct/")
            .map(|r| num(&r.expect("p").1))
            .sum::<u64>()
            + bo.prefix("acct/")
                .map(|r| num(&r.expect("p").1))
                .sum::<u64>();
        assert_eq!(sum, total, "backup at LSN {} is not consistent", info.lsn);
    });
}

/// A snapshot held across 10,000 commits still reads what it saw; its
/// pinned memory is reported while it lives and released when it drops.
#[test]
fn a_snapshot_held_across_many_commits_reads_its_values_and_frees_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        Options {
            durability: keyval::Durability::Buffered,
            ..small_opts()
        },
    )
    .expect("open");
    for i in 0..2000u64 {
        db.set(format!("k{i:05}"), vec![b'a'; 100]).expect("set");
    }
    let snap = db.snapshot().expect("snapshot");
    let lsn = snap.lsn();
    assert_eq!(db.stats().expect("stats").open_snapshots, 1);
    for n in 0..10_000u64 {
        let i = n % 2000;
        if n % 3 == 0 {
            db.delete(format!("k{i:05}")).expect("delete");
        } else {
            db.set(format!("k{i:05}"), vec![b'b'; 100]).expect("set");
        }
    }
    assert_eq!(snap.lsn(), lsn);
    assert_eq!(snap.len().expect("len"), 2000);
    assert_eq!(snap.iter().count(), 2000);
    for i in (0..2000u64).step_by(97) {
        assert_eq!(
            snap.get(format!("k{i:05}")).expect("get"),
            Some(vec![b'a'; 100])
        );
    }
    let stats = db.stats().expect("stats");
    // Every old pair (2000 x (100 + key + header)) is pinned, and the
    // copied nodes on top.
    assert!(
        stats.snapshot_pinned_bytes > 2000 * 100,
        "pinned {} bytes",
        stats.snapshot_pinned_bytes
    );
    assert!(stats.oldest_snapshot_age_micros > 0);
    drop(snap);
    let stats = db.stats().expect("stats");
    assert_eq!(stats.open_snapshots, 0);
    assert_eq!(stats.snapshot_pinned_bytes, 0);
}

#[test]
fn snapshots_past_the_age_limit_fail_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        Options {
            max_snapshot_age: Some(std::time::Duration::from_millis(50)),
            ..small_opts()
        },
    )
    .expect("open");
    db.set("k", "v").expect("set");
    let snap = db.snapshot().expect("snapshot");
    let mut it = db.iter();
    let mut tx = db.transaction().expect("begin");
    assert_eq!(snap.get("k").expect("young"), Some(b"v".to_vec()));
    std::thread::sleep(std::time::Duration::from_millis(120));
    assert!(matches!(snap.get("k"), Err(Error::SnapshotExpired(_))));
    assert!(matches!(it.next(), Some(Err(Error::SnapshotExpired(_)))));
    assert!(it.next().is_none());
    assert!(matches!(tx.get("k"), Err(Error::SnapshotExpired(_))));
    // A new one works.
    assert_eq!(
        db.snapshot().expect("snapshot").get("k").expect("get"),
        Some(b"v".to_vec())
    );
    assert!(matches!(
        Db::open(
            tempfile::tempdir().expect("tempdir").path(),
            Options {
                max_snapshot_age: Some(std::time::Duration::ZERO),
                ..small_opts()
            }
        ),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn reverse_iteration_and_seek() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let ks = db.keyspace("ks").expect("ks");
    for i in 0..1000u32 {
        db.set(format!("k{i:04}"), i.to_string()).expect("set");
        ks.set(format!("k{i:04}"), i.to_string()).expect("set");
    }
    for space in [&*db, &ks] {
        let keys = |it: keyval::Iter, rev: bool| -> Vec<String> {
            let v: Vec<_> = if rev {
                it.rev().map(|r| r.expect("pair").0).collect()
            } else {
                it.map(|r| r.expect("pair").0).collect()
            };
            v.into_iter()
                .map(|k| String::from_utf8(k).expect("utf8"))
                .collect()
        };
        let rev = keys(space.range(b"k0100".as_slice()..b"k0110".as_slice()), true);
        assert_eq!(rev.first().map(String::as_str), Some("k0109"));
        assert_eq!(rev.last().map(String::as_str), Some("k0100"));
        assert_eq!(rev.len(), 10);
        let mut it = space.iter();
        it.seek("k0500");
        assert_eq!(it.next().expect("some").expect("ok").0, b"k0500");
        it.seek("k0499x");
        assert_eq!(it.next().expect("some").expect("ok").0, b"k0500");
        it.seek_back("k0700");
        assert_eq!(it.next_back().expect("some").expect("ok").0, b"k0700");
        assert_eq!(it.next_back().expect("some").expect("ok").0, b"k0699");
        // Seeks stay inside the range.
        let mut it = space.range(b"k0200".as_slice()..b"k0300".as_slice());
        it.seek("k0000");
        assert_eq!(it.next().expect("some").expect("ok").0, b"k0200");
        it.seek("k0900");
        assert!(it.next().is_none());
        // Both ends meet exactly once.
        let mut it = space.range(b"k0010".as_slice()..=b"k0013".as_slice());
        let order: Vec<_> = [
            it.next(),
            it.next_back(),
            it.next_back(),
            it.next(),
            it.next(),
            it.next_back(),
        ]
        .into_iter()
        .map(|r| r.map(|r| String::from_utf8(r.expect("ok").0).expect("utf8")))
        .collect();
        assert_eq!(
            order,
            [
                Some("k0010"),
                Some("k0013"),
                Some("k0012"),
                Some("k0011"),
                None,
                None
            ]
            .map(|s| s.map(String::from))
        );
    }
    // A prefix iterator of a named keyspace never leaks into the next id.
    let later = db.keyspace("later").expect("ks");
    later.set("k0000", "x").expect("set");
    assert_eq!(ks.iter().rev().count(), 1000);
    assert_eq!(later.iter().rev().count(), 1);
}

/// An iterator sees the store as it was when it started, a keyspace drop
/// included, and writes made while it runs never appear.
#[test]
fn iterators_read_the_snapshot_taken_when_they_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let ks = db.keyspace("ks").expect("ks");
    for i in 0..600u32 {
        db.set(format!("k{i:04}"), "old").expect("set");
        ks.set(format!("k{i:04}"), "old").expect("set");
    }
    let mut it = db.iter();
    let mut kit = ks.iter();
    assert_eq!(it.next().expect("first").expect("ok").1, b"old");
    for i in 0..600u32 {
        db.set(format!("k{i:04}"), "new").expect("set");
        db.set(format!("k{i:04}+"), "inserted").expect("set");
    }
    db.drop_keyspace("ks").expect("drop");
    let rest: Vec<_> = it.map(|r| r.expect("ok")).collect();
    assert_eq!(rest.len(), 599);
    assert!(rest.iter().all(|(_, v)| v == b"old"));
    assert_eq!(kit.by_ref().count(), 600);
    assert!(matches!(ks.snapshot(), Err(Error::NotFound(_))));
    db.close().expect("close");
    let mut after = db.iter();
    assert!(matches!(after.next(), Some(Err(Error::Closed))));
    assert!(after.next().is_none());
}

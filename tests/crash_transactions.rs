//! Transactions across real process kills, on a store that lives through
//! many generations: a child (a re-exec of this test binary) runs
//! transfers between accounts spread over the default keyspace and a named
//! one, with four threads, under `Sync`, with a WAL small enough that
//! background checkpoints run all the time; each transaction also writes a
//! ledger key, and the child prints `ACK run writer seq` only after the
//! commit returned. The parent SIGKILLs it at a random moment, reopens and
//! checks: the sum over both keyspaces is exact (no transaction is partly
//! present), every acknowledged ledger key is present, and the store keeps
//! accepting transactions. `KEYVAL_KILLS` sets the number of kills
//! (default 10).
mod common;
use common::*;
use keyval::{Db, Error, Options};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

const ACCOUNTS: u64 = 40;
const START: u64 = 1000;

fn opts() -> Options {
    Options {
        max_wal_size: 48 << 10,
        checkpoint_interval: Some(Duration::from_millis(20)),
        ..small_opts()
    }
}

fn acct(i: u64) -> String {
    format!("acct/{i:03}")
}

fn num(v: &[u8]) -> u64 {
    std::str::from_utf8(v)
        .expect("utf8")
        .parse()
        .expect("number")
}

/// Create the accounts once (one transaction), if they are not there.
fn setup(db: &Db) {
    let other = db.keyspace("other").expect("keyspace");
    db.update(|tx| {
        if tx.get(acct(0))?.is_some() {
            return Ok(());
        }
        for i in 0..ACCOUNTS {
            tx.set(acct(i), START.to_string())?;
            tx.set_in(&other, acct(i), START.to_string())?;
        }
        Ok(())
    })
    .expect("setup");
}

/// Child-process entry point, run by the parent with `--ignored`.
#[test]
#[ignore = "child process entry point"]
fn txn_crash_child() {
    let Ok(dir) = std::env::var("KEYVAL_TXN_CHILD") else {
        return;
    };
    let run: u64 = std::env::var("KEYVAL_TXN_RUN")
        .expect("run")
        .parse()
        .expect("run");
    let db = Db::open(&dir, opts()).expect("child open");
    setup(&db);
    let other = db.open_keyspace("other").expect("keyspace");
    println!("READY");
    std::thread::scope(|s| {
        for w in 0..4u64 {
            let (db, other) = (&db, &other);
            s.spawn(move || {
                let mut x = (run + 1) * 0x9E37_79B9 + w * 7919 + 1;
                for seq in 0u64.. {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (a, b) = (x % ACCOUNTS, (x >> 20) % ACCOUNTS);
                    let from_default = x & (1 << 40) != 0;
                    db.update(|tx| {
                        let (src, dst) = if from_default {
                            (None, Some(other))
                        } else {
                            (Some(other), None)
                        };
                        let get =
                            |tx: &mut keyval::Transaction, ks: Option<&keyval::Keyspace>, k| {
                                match ks {
                                    Some(ks) => tx.get_in(ks, k),
                                    None => tx.get(k),
                                }
                            };
                        let va = num(&get(tx, src, acct(a))?.expect("account"));
                        let vb = num(&get(tx, dst, acct(b))?.expect("account"));
                        if va == 0 {
                            return Ok(());
                        }
                        match src {
                            Some(ks) => tx.set_in(ks, acct(a), (va - 1).to_string())?,
                            None => tx.set(acct(a), (va - 1).to_string())?,
                        }
                        match dst {
                            Some(ks) => tx.set_in(ks, acct(b), (vb + 1).to_string())?,
                            None => tx.set(acct(b), (vb + 1).to_string())?,
                        }
                        tx.set(format!("ledger/{run}/{w}/{seq:08}"), format!("{a}>{b}"))
                    })
                    .expect("transfer");
                    let out = std::io::stdout();
                    let mut l = out.lock();
                    writeln!(l, "ACK {run} {w} {seq}").expect("ack");
                    l.flush().expect("flush");
                }
            });
        }
    });
}

#[test]
fn transactions_are_atomic_across_kills_with_checkpoints_running() {
    let kills: u64 = std::env::var("KEYVAL_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x7A_0031);
    let mut acked: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    let mut total_acks = 0usize;
    for run in 0..kills {
        let delay = Duration::from_millis(60 + rng.below(300));
        let acks = run_and_kill_child(
            "txn_crash_child",
            &[
                ("KEYVAL_TXN_CHILD", dir.path().display().to_string()),
                ("KEYVAL_TXN_RUN", run.to_string()),
            ],
            delay,
        );
        for (w, seq) in acks {
            total_acks += 1;
            let e = acked.entry((run, w)).or_insert(seq);
            *e = (*e).max(seq);
        }
        // Verify the generation.
        let db = match Db::open(dir.path(), opts()) {
            Ok(db) => db,
            Err(e) => panic!("run {run}: reopen failed: {e}"),
        };
        let snap = db.snapshot().expect("snapshot");
        if let Ok(other) = db.open_keyspace("other") {
            let so = snap.keyspace(&other).expect("same moment");
            let mut sum = 0u64;
            let mut n = 0;
            for r in snap.prefix("acct/").chain(so.prefix("acct/")) {
                sum += num(&r.expect("pair").1);
                n += 1;
            }
            if n > 0 {
                assert_eq!(n, 2 * ACCOUNTS, "run {run}: accounts missing");
                assert_eq!(
                    sum,
                    2 * ACCOUNTS * START,
                    "run {run}: a transfer is partly present"
                );
            }
        }
        for (&(r, w), &seq) in &acked {
            let k = format!("ledger/{r}/{w}/{seq:08}");
            assert!(
                snap.contains(&k).expect("contains"),
                "run {run}: acknowledged transaction {k} is missing"
            );
        }
        drop(snap);
        // The recovered store takes transactions again.
        assert!(matches!(db.update(|tx| tx.set("probe", "1")), Ok(())));
        assert!(!matches!(db.transaction(), Err(Error::Poisoned(_))));
        db.close().expect("close");
    }
    assert!(total_acks > 0, "the child never acknowledged a transaction");
    let db = Db::open(dir.path(), opts()).expect("open");
    let stats = db.stats().expect("stats");
    eprintln!(
        "{total_acks} acknowledged transactions over {kills} kills; {} checkpoint files, {} segments",
        stats.snapshots, stats.wal_segments
    );
}

//! Real process kills: a child (a re-exec of this test binary) writes
//! 3-key batches under `Sync` and prints `ACK run writer seq` only after
//! each write returned. The parent SIGKILLs it at a random moment, reopens,
//! and checks: every acknowledged batch is present, every batch present is
//! whole, values are exactly what was written, and each writer's batches
//! survive as a prefix (order kept). `KEYVAL_KILLS` sets the number of
//! kills per scenario (default 12; `make soak` uses more).
mod common;
use common::*;
use keyval::Db;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

fn value(run: u32, w: u32, seq: u32, part: &str) -> Vec<u8> {
    format!("{run}:{w}:{seq}:{part}:{}", "p".repeat((seq % 50) as usize)).into_bytes()
}

/// Child-process entry point, run by the parent with `--ignored`.
#[test]
#[ignore = "child process entry point"]
fn crash_child() {
    let Ok(dir) = std::env::var("KEYVAL_CRASH_CHILD") else {
        return;
    };
    let run: u32 = std::env::var("KEYVAL_CRASH_RUN")
        .expect("run")
        .parse()
        .expect("run");
    let writers: u32 = std::env::var("KEYVAL_CRASH_WRITERS")
        .expect("writers")
        .parse()
        .expect("writers");
    let db = Db::open(&dir, small_opts()).expect("child open");
    println!("READY");
    std::thread::scope(|s| {
        for w in 0..writers {
            let db = &db;
            s.spawn(move || {
                for seq in 0.. {
                    let mut b = keyval::WriteBatch::new();
                    for part in ["a", "b", "c"] {
                        b.put(
                            format!("r{run}-w{w}-{seq:06}-{part}"),
                            value(run, w, seq, part),
                        );
                    }
                    if seq % 7 == 3 {
                        b.delete(format!("r{run}-w{w}-{:06}-c", seq - 3));
                    }
                    db.write(b).expect("write");
                    let out = std::io::stdout();
                    let mut l = out.lock();
                    writeln!(l, "ACK {run} {w} {seq}").expect("ack");
                    l.flush().expect("flush");
                }
            });
        }
    });
}

fn scenario(writers: u32, seed: u64) {
    let kills: u32 = std::env::var("KEYVAL_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(seed);
    let mut acked: BTreeMap<(u32, u32), u32> = BTreeMap::new(); // (run, writer) -> highest acked seq
    for run in 0..kills {
        let delay = Duration::from_millis(30 + rng.below(250));
        let acks = run_and_kill_child(
            "crash_child",
            &[
                ("KEYVAL_CRASH_CHILD", dir.path().display().to_string()),
                ("KEYVAL_CRASH_RUN", run.to_string()),
                ("KEYVAL_CRASH_WRITERS", writers.to_string()),
            ],
            delay,
        );
        for (w, seq) in acks {
            let (w, seq) = (w as u32, seq as u32);
            let e = acked.entry((run, w)).or_insert(seq);
            *e = (*e).max(seq);
        }
        verify(dir.path(), run, writers, &acked, seed);
    }
    assert!(
        acked.values().count() > 0,
        "the child never acknowledged anything"
    );
}

fn verify(
    dir: &std::path::Path,
    upto_run: u32,
    writers: u32,
    acked: &BTreeMap<(u32, u32), u32>,
    seed: u64,
) {
    let db =
        Db::open(dir, small_opts()).unwrap_or_else(|e| panic!("seed {seed}: reopen failed: {e}"));
    let mut present: BTreeMap<(u32, u32), BTreeSet<u32>> = BTreeMap::new();
    for pair in db.iter() {
        let (k, v) = pair.expect("iter");
        let ks = String::from_utf8(k).expect("utf8");
        let p: Vec<&str> = ks.split('-').collect();
        let (run, w, seq, part) = (
            p[0][1..].parse::<u32>().expect("run"),
            p[1][1..].parse::<u32>().expect("w"),
            p[2].parse::<u32>().expect("seq"),
            p[3],
        );
        assert_eq!(
            v,
            value(run, w, seq, part),
            "seed {seed}: wrong value for {ks}"
        );
        present.entry((run, w)).or_default().insert(seq);
    }
    for run in 0..=upto_run {
        for w in 0..writers {
            let seqs = present.get(&(run, w)).cloned().unwrap_or_default();
            let max_present = seqs.iter().next_back().copied();
            if let Some(&a) = acked.get(&(run, w)) {
                assert!(
                    max_present.is_some_and(|m| m >= a),
                    "seed {seed}: run {run} writer {w}: acked {a}, present up to {max_present:?}"
                );
            }
            // Whole batches, in order: every seq up to the max is present
            // (the a and b keys of a batch are never deleted).
            if let Some(m) = max_present {
                for seq in 0..=m {
                    for part in ["a", "b"] {
                        let k = format!("r{run}-w{w}-{seq:06}-{part}");
                        assert!(
                            db.contains(&k).expect("contains"),
                            "seed {seed}: {k} missing below {m}: batch torn or order broken"
                        );
                    }
                    let deleted = (seq + 3) % 7 == 3 && seq + 3 <= m;
                    let c = format!("r{run}-w{w}-{seq:06}-c");
                    assert_eq!(
                        db.contains(&c).expect("contains"),
                        !deleted,
                        "seed {seed}: {c}"
                    );
                }
            }
        }
    }
    db.close().expect("close");
}

#[test]
fn sigkill_single_writer() {
    scenario(1, 0x5EED_0001);
}

#[test]
fn sigkill_four_group_committed_writers() {
    scenario(4, 0x5EED_0004);
}

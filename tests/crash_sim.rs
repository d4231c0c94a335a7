//! Simulated power loss at every I/O step (issue: prove crash safety).
//!
//! A deterministic workload of sets, deletes, batches, checkpoints (with WAL
//! segment deletion) and segment rotations runs on `SimFs`. At a chosen
//! mutating step the simulated machine loses power; the disk a reboot would
//! find is built in each `CrashMode`, and recovery runs on it - sometimes
//! crashing again during recovery. The oracle: the recovered contents equal
//! the model after some prefix of the operations that is at least as long
//! as what was acknowledged durable. That proves every acknowledged write is
//! present, every value was really written, batches are all-or-nothing and
//! order is kept.
//!
//! A failure prints its seed, step and mode; replay one with
//! `KEYVAL_SIM_SEED=<seed> cargo test --test crash_sim replay -- --ignored --nocapture`.
//! `KEYVAL_SIM_SEEDS` sets the number of random seeds (default 150; `make
//! soak` runs thousands).
mod common;
use common::Rng;
use keyval::fs::{CrashMode, FileSystem, SimFs};
use keyval::{Db, Durability, Options, WriteBatch};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    Set(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Checkpoint,
    Sync,
    Reclaim,
}

const DIR: &str = "/sim/db";

fn opts(d: Durability) -> Options {
    Options {
        durability: d,
        segment_size: 64 << 10,
        max_wal_size: 0,
        keep_snapshots: 2,
        ..Options::default()
    }
}

fn workload(seed: u64, len: usize) -> Vec<Op> {
    let mut r = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1);
    let key = |r: &mut Rng| format!("key{:02}", r.below(24)).into_bytes();
    let val = |r: &mut Rng, tag: usize| {
        let n = 200 + r.below(1800) as usize;
        let mut v = format!("v{tag}:").into_bytes();
        v.resize(n, b'a' + (tag % 26) as u8);
        v
    };
    (0..len)
        .map(|i| match r.below(21) {
            0..=9 => Op::Set(key(&mut r), val(&mut r, i)),
            10..=12 => Op::Delete(key(&mut r)),
            13..=16 => Op::Batch(
                (0..1 + r.below(5))
                    .map(|_| {
                        (
                            key(&mut r),
                            if r.below(4) == 0 {
                                None
                            } else {
                                Some(val(&mut r, i))
                            },
                        )
                    })
                    .collect(),
            ),
            17 | 18 => Op::Checkpoint,
            20 => Op::Reclaim,
            _ => Op::Sync,
        })
        .collect()
}

/// Model state after each prefix of `ops`: states[k] = after k ops.
fn states(ops: &[Op]) -> Vec<Model> {
    let mut m = Model::new();
    let mut out = vec![m.clone()];
    for op in ops {
        match op {
            Op::Set(k, v) => {
                m.insert(k.clone(), v.clone());
            }
            Op::Delete(k) => {
                m.remove(k);
            }
            Op::Batch(items) => {
                for (k, v) in items {
                    match v {
                        Some(v) => {
                            m.insert(k.clone(), v.clone());
                        }
                        None => {
                            m.remove(k);
                        }
                    }
                }
            }
            Op::Checkpoint | Op::Sync | Op::Reclaim => {}
        }
        out.push(m.clone());
    }
    out
}

/// Run `ops` until the simulated crash. Returns (durable, attempted): every
/// op below `durable` was acknowledged durable; ops from `attempted` on
/// never started.
fn run(fs: &SimFs, ops: &[Op], d: Durability) -> (usize, usize) {
    let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let db = match Db::open_with_fs(DIR, opts(d), fsa) {
        Ok(db) => db,
        Err(_) => return (0, 0),
    };
    let mut durable = 0;
    for (i, op) in ops.iter().enumerate() {
        let r = match op {
            Op::Set(k, v) => db.set(k, v),
            Op::Delete(k) => db.delete(k),
            Op::Batch(items) => {
                let mut b = WriteBatch::new();
                for (k, v) in items {
                    match v {
                        Some(v) => b.put(k, v),
                        None => b.delete(k),
                    };
                }
                db.write(b)
            }
            Op::Checkpoint => db.checkpoint(),
            Op::Sync => db.sync(),
            Op::Reclaim => db.reclaim().map(|_| ()),
        };
        match r {
            Ok(()) => {
                // (A reclaim with nothing to move writes no checkpoint:
                // it promises no durability.)
                if d == Durability::Sync || matches!(op, Op::Checkpoint | Op::Sync) {
                    durable = i + 1;
                }
            }
            Err(_) => {
                db.crash_for_testing();
                return (durable, i + 1);
            }
        }
    }
    db.crash_for_testing();
    (durable, ops.len())
}

fn contents(fs: &SimFs, d: Durability) -> Result<Model, keyval::Error> {
    let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let db = Db::open_with_fs(DIR, opts(d), fsa)?;
    let m = db.iter().map(|r| r.expect("iter")).collect();
    db.crash_for_testing();
    Ok(m)
}

fn check(img: &SimFs, st: &[Model], durable: usize, attempted: usize, d: Durability, ctx: &str) {
    let got = contents(img, d).unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
    let ok = (durable..=attempted).any(|k| st[k] == got);
    if !ok {
        let nearest = (0..st.len()).find(|&k| st[k] == got);
        panic!("{ctx}: recovered state matches no allowed prefix [{durable}, {attempted}] (matches prefix {nearest:?}; {} keys)", got.len());
    }
}

/// One crash at `step` in `mode`, then recovery, then (optionally) a second
/// crash at `recovery_step` during recovery and a final recovery.
fn one(
    seed: u64,
    len: usize,
    d: Durability,
    step: u64,
    mode: CrashMode,
    recovery_step: Option<u64>,
) -> bool {
    let ops = workload(seed, len);
    let st = states(&ops);
    let fs = SimFs::deterministic();
    fs.create_dir_all(Path::new(DIR)).expect("mkdir");
    fs.crash_at(step);
    let (durable, attempted) = run(&fs, &ops, d);
    let ctx = format!("seed {seed} len {len} {d:?} step {step} mode {mode:?}");
    let img = fs.crash_image(mode, seed ^ step);
    if let Some(rs) = recovery_step {
        let base = img.steps();
        img.crash_at(base + rs);
        let _ = contents(&img, d); // crashes part-way through recovery
        let img2 = img.crash_image(mode, seed ^ step ^ rs);
        check(
            &img2,
            &st,
            durable,
            attempted,
            d,
            &format!("{ctx}, crash {rs} steps into recovery"),
        );
    } else {
        check(&img, &st, durable, attempted, d, &ctx);
    }
    fs.crashed()
}

fn total_steps(seed: u64, len: usize, d: Durability) -> u64 {
    let fs = SimFs::deterministic();
    fs.create_dir_all(Path::new(DIR)).expect("mkdir");
    let ops = workload(seed, len);
    run(&fs, &ops, d);
    fs.steps()
}

#[test]
fn every_step_of_a_short_workload_in_every_mode() {
    let (seed, len) = (1, 70);
    let n = total_steps(seed, len, Durability::Sync);
    assert!(n > 100, "workload too small: {n} steps");
    for step in 1..=n {
        for mode in CrashMode::ALL {
            assert!(
                one(seed, len, Durability::Sync, step, mode, None),
                "step {step} never crashed"
            );
        }
    }
    eprintln!("swept {n} steps x {} modes", CrashMode::ALL.len());
}

/// A reclaim cycle (relocations, the checkpoint, segment deletion) with a
/// power cut at every one of its I/O steps, in every mode: the recovered
/// store holds exactly what was there before the reclaim (it changes no
/// value), and a second reclaim and a reopen after it still do.
#[test]
fn every_step_of_a_reclaim_cycle() {
    // A store with garbage: 24 keys of 1.5 KiB overwritten many times.
    let mut ops = Vec::new();
    for round in 0..12u32 {
        for k in 0..24u32 {
            let mut v = format!("r{round}k{k}:").into_bytes();
            v.resize(1500, b'a' + (k % 26) as u8);
            ops.push(Op::Set(format!("key{k:02}").into_bytes(), v));
        }
        if round % 4 == 3 {
            ops.push(Op::Checkpoint);
        }
    }
    let model = states(&ops).pop().expect("final state");
    let build = || {
        let fs = SimFs::deterministic();
        fs.create_dir_all(Path::new(DIR)).expect("mkdir");
        let (durable, _) = run(&fs, &ops, Durability::Sync);
        assert_eq!(durable, ops.len());
        fs
    };
    let reclaim = |fs: &SimFs| -> Result<keyval::ReclaimInfo, keyval::Error> {
        let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
        let db = Db::open_with_fs(DIR, opts(Durability::Sync), fsa)?;
        let r = db.reclaim();
        db.crash_for_testing();
        r
    };
    // How many steps a whole reclaim takes.
    let fs = build();
    let base = fs.steps();
    let info = reclaim(&fs).expect("reclaim");
    assert!(
        info.segments > 0 && info.values > 0,
        "nothing to reclaim: {info:?}"
    );
    let n = fs.steps() - base;
    assert!(n > 10, "reclaim took {n} steps");
    for step in 1..=n {
        for mode in CrashMode::ALL {
            let fs = build();
            fs.crash_at(fs.steps() + step);
            let _ = reclaim(&fs);
            let img = fs.crash_image(mode, step);
            let ctx = format!("reclaim step {step} of {n}, mode {mode:?}");
            let got = contents(&img, Durability::Sync)
                .unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
            assert!(got == model, "{ctx}: contents changed ({} keys)", got.len());
            reclaim(&img).unwrap_or_else(|e| panic!("{ctx}: reclaim after recovery: {e}"));
            let again = contents(&img, Durability::Sync)
                .unwrap_or_else(|e| panic!("{ctx}: second recovery failed: {e}"));
            assert!(
                again == model,
                "{ctx}: contents changed after a second reclaim"
            );
        }
    }
    eprintln!("swept {n} reclaim steps x {} modes", CrashMode::ALL.len());
}

#[test]
fn every_step_with_os_durability() {
    let (seed, len) = (2, 50);
    let n = total_steps(seed, len, Durability::Os);
    for step in 1..=n {
        for mode in [
            CrashMode::DropAll,
            CrashMode::RandomSectors,
            CrashMode::GarbageTail,
        ] {
            one(seed, len, Durability::Os, step, mode, None);
        }
    }
}

#[test]
fn crashes_during_recovery() {
    let (seed, len) = (3, 60);
    let n = total_steps(seed, len, Durability::Sync);
    // Crash the workload at a spread of steps, then crash recovery at each
    // of its first steps (tail truncation, segment creation, fsyncs).
    for step in (5..=n).step_by(7) {
        for rs in 1..=6 {
            one(
                seed,
                len,
                Durability::Sync,
                step,
                CrashMode::RandomSectors,
                Some(rs),
            );
            one(
                seed,
                len,
                Durability::Sync,
                step,
                CrashMode::TornLast,
                Some(rs),
            );
        }
    }
}

#[test]
fn random_seeds_longer_workloads() {
    let seeds: u64 = std::env::var("KEYVAL_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    for seed in 100..100 + seeds {
        let len = 150;
        let d = if seed % 4 == 0 {
            Durability::Os
        } else {
            Durability::Sync
        };
        let n = total_steps(seed, len, d);
        let mut r = Rng(seed);
        let step = 1 + r.below(n);
        let mode = CrashMode::ALL[r.below(5) as usize];
        let rs = (r.below(3) == 0).then(|| 1 + r.below(5));
        one(seed, len, d, step, mode, rs);
    }
}

/// The sweep is replayable: the same seed makes the same file-system
/// calls, so a crash at the same step leaves the same disk.
#[test]
fn the_same_seed_replays_the_same_steps_and_images() {
    for d in [Durability::Sync, Durability::Os] {
        let a = total_steps(9, 150, d);
        let b = total_steps(9, 150, d);
        assert_eq!(a, b, "{d:?}: step counts differ between two runs");
        for step in [a / 3, a / 2, a - 1] {
            let image = |_: ()| {
                let fs = SimFs::deterministic();
                fs.create_dir_all(Path::new(DIR)).expect("mkdir");
                fs.crash_at(step);
                run(&fs, &workload(9, 150), d);
                let img = fs.crash_image(CrashMode::RandomSectors, step);
                // Bytes differ (each run draws a new random database id,
                // which seeds every checksum); names, sizes and the
                // recovered contents must not.
                let mut files: Vec<(String, usize)> = img
                    .list_dir(Path::new(DIR))
                    .expect("list")
                    .into_iter()
                    .map(|n| {
                        let len = img
                            .read_file(&Path::new(DIR).join(&n))
                            .map_or(0, |b| b.len());
                        (n, len)
                    })
                    .collect();
                files.sort();
                (files, contents(&img, d).expect("recover"))
            };
            assert!(image(()) == image(()), "{d:?} step {step}: images differ");
        }
    }
}

/// Replays one seed (and optionally one step) by hand; see the module docs.
#[test]
#[ignore = "run by hand with KEYVAL_SIM_SEED"]
fn replay() {
    let Ok(seed) = std::env::var("KEYVAL_SIM_SEED") else {
        return;
    };
    let seed: u64 = seed.parse().expect("seed");
    let step: Option<u64> = std::env::var("KEYVAL_SIM_STEP")
        .ok()
        .and_then(|s| s.parse().ok());
    let len = 150;
    let n = total_steps(seed, len, Durability::Sync);
    for s in step.map_or(1..=n, |s| s..=s) {
        for mode in CrashMode::ALL {
            one(seed, len, Durability::Sync, s, mode, None);
        }
    }
}

//! Multi-generation simulation: one simulated disk lives through many
//! generations of recover, write, crash (or close), each generation with
//! its own durability level, segment size, `max_wal_size` (so automatic
//! checkpoints run and reclaim segments) and `keep_snapshots`. Now and
//! then the crash hits recovery itself. Every generation checks the
//! recovered state against a model kept outside the store.
//!
//! **Oracle.** After each crash, the store must equal the model after some
//! prefix of the generation's operations that is at least as long as what
//! was acknowledged durable: every operation under `Sync`; under `Os` and
//! `Buffered` (a power cut loses the page cache), everything before the
//! last `sync()` or `checkpoint()` that returned. The verified state is
//! the starting model of the next generation.
//!
//! `single_writer_generations` runs on [`SimFs::deterministic`]: automatic
//! checkpoints and segment preparation happen in the writer's thread, so a
//! seed replays exactly (`KEYVAL_SIM_GEN_SEED=N`). The concurrent variant
//! runs three writer threads and the engine's real background threads;
//! it replays the same workloads and crash points, while the OS scheduler
//! picks the interleaving.
//!
//! `KEYVAL_SIM_GEN_SEEDS` sets how many seeds (default 40).
mod common;
use common::Rng;
use keyval::fs::{CrashMode, FileSystem, SimFs};
use keyval::{Db, Durability, Options, WriteBatch};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const DIR: &str = "/sim/db";
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Sync,
    Checkpoint,
}

fn draw_op(r: &mut Rng, prefix: &str, g: u64, i: u64) -> Op {
    let key = |r: &mut Rng| format!("{prefix}{:02}", r.below(30)).into_bytes();
    let val = |r: &mut Rng| {
        let mut v = format!("{g}:{i}:").into_bytes();
        v.resize(
            v.len() + (100 + r.below(2500)) as usize,
            b'a' + (i % 26) as u8,
        );
        v
    };
    match r.below(24) {
        0..=11 => Op::Put(key(r), val(r)),
        12..=14 => Op::Delete(key(r)),
        15..=19 => Op::Batch(
            (0..2 + r.below(4))
                .map(|_| (key(r), (r.below(4) != 0).then(|| val(r))))
                .collect(),
        ),
        20..=21 => Op::Sync,
        _ => Op::Checkpoint,
    }
}

fn apply(m: &mut Model, op: &Op) {
    let mut one = |k: &Vec<u8>, v: &Option<Vec<u8>>| match v {
        Some(v) => {
            m.insert(k.clone(), v.clone());
        }
        None => {
            m.remove(k);
        }
    };
    match op {
        Op::Put(k, v) => one(k, &Some(v.clone())),
        Op::Delete(k) => one(k, &None),
        Op::Batch(items) => items.iter().for_each(|(k, v)| one(k, v)),
        Op::Sync | Op::Checkpoint => {}
    }
}

fn exec(db: &Db, op: &Op) -> keyval::Result<()> {
    match op {
        Op::Put(k, v) => db.set(k, v),
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
        Op::Sync => db.sync(),
        Op::Checkpoint => db.checkpoint(),
    }
}

#[derive(Debug, Clone)]
struct Gen {
    durability: Durability,
    opts: Options,
    ops: usize,
    mode: CrashMode,
    /// Crash this many steps after the generation's open (None: close).
    crash_after: Option<u64>,
    /// Crash recovery this many steps in, first.
    recovery_crash: Option<u64>,
}

fn draw_gen(r: &mut Rng) -> Gen {
    let durability = [Durability::Sync, Durability::Os, Durability::Buffered][r.below(3) as usize];
    Gen {
        durability,
        opts: Options {
            durability,
            segment_size: [64 << 10, 128 << 10][r.below(2) as usize],
            max_wal_size: [0, 96 << 10, 256 << 10][r.below(3) as usize],
            keep_snapshots: 1 + r.below(2) as u32,
            ..Options::default()
        },
        ops: 40 + r.below(120) as usize,
        mode: CrashMode::ALL[r.below(5) as usize],
        crash_after: (r.below(5) != 0).then(|| 3 + r.below(160)),
        recovery_crash: (r.below(4) == 0).then(|| 1 + r.below(8)),
    }
}

fn open(fs: &SimFs, opts: &Options) -> keyval::Result<Db> {
    let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
    Db::open_with_fs(DIR, opts.clone(), fsa)
}

/// The recovered contents, read through the ordered index (a scan). Point
/// reads go through the hash index beside it, which recovery rebuilds
/// too: every key of the workloads' key space (`k`, `w0-` to `w2-`, then
/// 00 to 29) must read the same through `get`, present or absent.
fn contents(db: &Db) -> Model {
    let got: Model = db.iter().map(|r| r.expect("iter")).collect();
    for prefix in ["k", "w0-", "w1-", "w2-"] {
        for i in 0..30 {
            let k = format!("{prefix}{i:02}").into_bytes();
            assert_eq!(
                db.get(&k).expect("get"),
                got.get(&k).cloned(),
                "point read of {} disagrees with the scan after recovery",
                String::from_utf8_lossy(&k)
            );
        }
    }
    got
}

/// The keys of `got` that start with `prefix` (one writer's key group).
fn writer_keys(got: &Model, prefix: &str) -> Model {
    got.iter()
        .filter(|(k, _)| k.starts_with(prefix.as_bytes()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// End a generation: as a crash if the simulated power cut happened, else
/// with a clean close (no cut was planned, or it lay beyond the workload),
/// which makes everything durable. Returns whether it crashed.
fn end_generation(fs: &SimFs, db: Db, ctx: &str, t: &mut Totals) -> bool {
    if fs.crashed() {
        db.crash_for_testing();
        t.crashes += 1;
        return true;
    }
    fs.crash_at(u64::MAX);
    db.close()
        .unwrap_or_else(|e| panic!("{ctx}: close failed: {e}"));
    t.closes += 1;
    false
}

/// Totals across seeds, for the report.
#[derive(Debug, Default)]
struct Totals {
    generations: u64,
    crashes: u64,
    recovery_crashes: u64,
    closes: u64,
    acked: u64,
    checkpoints: u64,
}

fn single_writer_seed(seed: u64, gens: u64, t: &mut Totals) {
    let mut r = Rng(seed | 1);
    let mut fs = SimFs::deterministic();
    fs.create_dir_all(Path::new(DIR)).expect("mkdir");
    let mut model = Model::new();
    for g in 0..gens {
        let gen = draw_gen(&mut r);
        let ctx = format!("KEYVAL_SIM_GEN_SEED={seed} generation {g} {gen:?}");
        if let Some(rs) = gen.recovery_crash {
            fs.crash_at(fs.steps() + rs);
            if let Ok(db) = open(&fs, &gen.opts) {
                db.crash_for_testing();
            }
            fs = fs.crash_image(gen.mode, seed ^ g ^ rs);
            t.recovery_crashes += 1;
        }
        let db = open(&fs, &gen.opts).unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
        let got = contents(&db);
        assert!(
            got == model,
            "{ctx}: recovered state differs from the verified model ({} vs {} keys)",
            got.len(),
            model.len()
        );
        if let Some(after) = gen.crash_after {
            fs.crash_at(fs.steps() + after);
        }
        // Run; remember the model after each prefix from the last durable
        // point on.
        let mut states = vec![model.clone()];
        let mut durable = 0;
        let mut attempted = 0;
        for i in 0..gen.ops {
            let op = draw_op(&mut r, "k", g, i as u64);
            attempted = i + 1;
            let mut next = states.last().expect("state").clone();
            apply(&mut next, &op);
            states.push(next);
            match exec(&db, &op) {
                Ok(()) => {
                    t.acked += 1;
                    if matches!(op, Op::Checkpoint) {
                        t.checkpoints += 1;
                    }
                    if gen.durability == Durability::Sync || matches!(op, Op::Sync | Op::Checkpoint)
                    {
                        durable = i + 1;
                    }
                }
                Err(_) => break,
            }
        }
        if !end_generation(&fs, db, &ctx, t) {
            durable = attempted;
        }
        fs = fs.crash_image(gen.mode, seed ^ (g << 8));
        let db = open(&fs, &gen.opts).unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
        let got = contents(&db);
        let k = (durable..=attempted)
            .find(|&k| states[k] == got)
            .unwrap_or_else(|| {
                panic!(
                    "{ctx}: recovered state matches no prefix in [{durable}, {attempted}] \
                     (prefixes that match: {:?})",
                    (0..states.len())
                        .filter(|&k| states[k] == got)
                        .collect::<Vec<_>>()
                )
            });
        model = states.swap_remove(k);
        db.crash_for_testing();
        fs = fs.crash_image(CrashMode::DropAll, 0);
        t.generations += 1;
    }
}

#[test]
fn single_writer_generations() {
    let seeds: u64 = std::env::var("KEYVAL_SIM_GEN_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut t = Totals::default();
    if let Some(seed) = std::env::var("KEYVAL_SIM_GEN_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        single_writer_seed(seed, 12, &mut t);
    } else {
        for seed in 1..=seeds {
            single_writer_seed(seed, 12, &mut t);
        }
    }
    println!("sim generations (single writer): {t:?}");
    assert!(t.crashes > 0 && t.closes > 0 && t.recovery_crashes > 0 && t.checkpoints > 0);
}

/// Three writer threads on their own key groups, the engine's own
/// background threads (spare segments, automatic checkpoints), every
/// durability level, many generations. Per writer, the recovered keys must
/// equal its model after a prefix between its durable and attempted
/// operation counts.
fn concurrent_seed(seed: u64, gens: u64, t: &mut Totals) {
    const W: usize = 3;
    let mut r = Rng(seed | 1);
    let mut fs = SimFs::new();
    fs.create_dir_all(Path::new(DIR)).expect("mkdir");
    let mut models: Vec<Model> = vec![Model::new(); W];
    for g in 0..gens {
        let gen = draw_gen(&mut r);
        let ctx = format!("concurrent seed {seed} generation {g} {gen:?}");
        let db = open(&fs, &gen.opts).unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
        let got = contents(&db);
        for (w, m) in models.iter().enumerate() {
            let prefix = format!("w{w}-");
            let mine = writer_keys(&got, &prefix);
            assert!(&mine == m, "{ctx}: writer {w}'s keys differ from the model");
        }
        if let Some(after) = gen.crash_after {
            fs.crash_at(fs.steps() + after);
        }
        let seeds: Vec<u64> = (0..W).map(|_| r.next()).collect();
        let durable: Vec<AtomicU64> = (0..W).map(|_| AtomicU64::new(0)).collect();
        let acked: Vec<AtomicU64> = (0..W).map(|_| AtomicU64::new(0)).collect();
        let attempted: Vec<AtomicU64> = (0..W).map(|_| AtomicU64::new(0)).collect();
        std::thread::scope(|s| {
            for w in 0..W {
                let (db, seeds, durable, acked, attempted, gen) =
                    (&db, &seeds, &durable, &acked, &attempted, &gen);
                s.spawn(move || {
                    let mut wr = Rng(seeds[w] | 1);
                    let prefix = format!("w{w}-");
                    for i in 0..gen.ops / 2 {
                        let op = draw_op(&mut wr, &prefix, g, i as u64);
                        let is_sync = matches!(op, Op::Sync | Op::Checkpoint);
                        // What a sync covers: every writer's operations
                        // acknowledged before it started.
                        let covered: Vec<u64> = if is_sync {
                            acked.iter().map(|a| a.load(Ordering::SeqCst)).collect()
                        } else {
                            Vec::new()
                        };
                        attempted[w].store(i as u64 + 1, Ordering::SeqCst);
                        if exec(db, &op).is_err() {
                            return;
                        }
                        acked[w].store(i as u64 + 1, Ordering::SeqCst);
                        if gen.durability == Durability::Sync || is_sync {
                            durable[w].fetch_max(i as u64 + 1, Ordering::SeqCst);
                        }
                        for (x, c) in covered.iter().enumerate() {
                            durable[x].fetch_max(*c, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        if !end_generation(&fs, db, &ctx, t) {
            for w in 0..W {
                durable[w].store(attempted[w].load(Ordering::SeqCst), Ordering::SeqCst);
            }
        }
        fs = fs.crash_image(gen.mode, seed ^ (g << 8));
        let db = open(&fs, &gen.opts).unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
        let got = contents(&db);
        for w in 0..W {
            let prefix = format!("w{w}-");
            let mine = writer_keys(&got, &prefix);
            let (lo, hi) = (
                durable[w].load(Ordering::SeqCst) as usize,
                attempted[w].load(Ordering::SeqCst) as usize,
            );
            let mut wr = Rng(seeds[w] | 1);
            let mut m = models[w].clone();
            let mut found = (lo == 0 && m == mine).then(|| m.clone());
            for i in 0..hi {
                apply(&mut m, &draw_op(&mut wr, &prefix, g, i as u64));
                if i + 1 >= lo && m == mine {
                    found = Some(m.clone());
                    break;
                }
            }
            models[w] = found.unwrap_or_else(|| {
                panic!("{ctx}: writer {w}: no prefix in [{lo}, {hi}] matches the recovered keys")
            });
            t.acked += lo as u64;
        }
        db.crash_for_testing();
        fs = fs.crash_image(CrashMode::DropAll, 0);
        t.generations += 1;
    }
}

#[test]
fn concurrent_writers_generations() {
    let mut t = Totals::default();
    for seed in 1..=12 {
        concurrent_seed(seed, 8, &mut t);
    }
    println!("sim generations (3 concurrent writers): {t:?}");
    assert!(t.crashes > 0 && t.closes > 0);
}

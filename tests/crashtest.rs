//! A crash test that lives as long as a real store does, in the spirit of
//! RocksDB's `db_crashtest.py`: one directory across many generations.
//!
//! Each generation a child process (a re-exec of this test binary) opens
//! the store with random options (segment size, `max_wal_size`,
//! `keep_snapshots`, durability level) and runs several writer threads, a
//! sync thread and a checkpoint thread; the parent SIGKILLs it at a random
//! moment (or lets it close cleanly now and then), reopens the directory,
//! checks it against an expected state kept outside the store, and starts
//! the next generation on the same directory.
//!
//! **The oracle.** Writer `w` owns the key group `w` and runs a
//! deterministic stream of operations (puts, deletes, batches) drawn from
//! a seed, printing `A w seq` only after operation `seq` returned. The
//! parent regenerates the same stream, so for each writer it knows the
//! acknowledged operations and the one that may have been in flight. After
//! a reopen, each writer's keys must equal the expected state after a
//! prefix `k` of its stream, with `durable <= k <= acked + 1`:
//!
//! - under `Sync` and `Os` (a killed process loses nothing the OS has),
//!   `durable` is the last acknowledged operation;
//! - under `Buffered`, `durable` is the last operation acknowledged before
//!   a `sync` (or checkpoint) that returned: newer data may be lost, but
//!   only as a clean suffix of each writer's stream.
//!
//! In about half the generations each operation also asks for its own
//! level (`WriteOptions`: `Buffered`, `Os`, `Sync` or the store's), at
//! random. Then `durable` is the writer's last acknowledged operation
//! whose own level was `Os` or `Sync` (the WAL is one ordered log, so it
//! carries the writer's earlier operations), or the last one covered by a
//! sync, whichever is later.
//!
//! Every key must hold its expected value or the in-flight one, nothing
//! else; key groups not written in a generation must be unchanged.
//!
//! The Raft log gets the same treatment: appends, conflict truncation with
//! new terms, compaction with segment reclaim, hard state and snapshots;
//! after each reopen the log equals the model after the acknowledged
//! operations (or one more).
//!
//! `KEYVAL_CRASHTEST_SECS` sets how long each test runs (default 25; `make
//! crashtest` runs 300 each), `KEYVAL_CRASHTEST_SEED` the seed. A failure
//! prints the seed and generation.
mod common;
use common::Rng;
use keyval::raft::{Entry, HardState, RaftLog, SnapshotMeta};
use keyval::{Db, Durability, Options, WriteBatch, WriteOptions};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const GROUPS: u64 = 4;
const KEYS_PER_GROUP: u64 = 48;

fn secs() -> u64 {
    std::env::var("KEYVAL_CRASHTEST_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25)
}

fn base_seed(default: u64) -> u64 {
    std::env::var("KEYVAL_CRASHTEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mix(a: u64, b: u64) -> u64 {
    (a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1
}

/// The options of one generation, chosen by the parent and passed to the
/// child in the environment.
#[derive(Debug, Clone)]
struct GenConfig {
    generation: u64,
    seed: u64,
    writers: u64,
    durability: Durability,
    segment_size: u64,
    max_wal_size: u64,
    keep_snapshots: u32,
    /// Close cleanly after this many operations per writer instead of
    /// waiting to be killed.
    clean_after: Option<u64>,
    /// Each operation asks for its own durability level (`op_level`).
    per_write: bool,
}

impl GenConfig {
    fn draw(generation: u64, rng: &mut Rng) -> GenConfig {
        GenConfig {
            generation,
            seed: rng.next() | 1,
            writers: 2 + rng.below(3),
            durability: [Durability::Sync, Durability::Os, Durability::Buffered]
                [rng.below(3) as usize],
            segment_size: [64 << 10, 128 << 10, 1 << 20][rng.below(3) as usize],
            max_wal_size: [0, 192 << 10, 512 << 10, 2 << 20][rng.below(4) as usize],
            keep_snapshots: 1 + rng.below(2) as u32,
            clean_after: (rng.below(6) == 0).then(|| 20 + rng.below(200)),
            per_write: rng.below(2) == 0,
        }
    }

    fn options(&self) -> Options {
        Options {
            durability: self.durability,
            segment_size: self.segment_size,
            max_wal_size: self.max_wal_size,
            keep_snapshots: self.keep_snapshots,
            ..Options::default()
        }
    }

    fn to_env(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {} {}",
            self.generation,
            self.seed,
            self.writers,
            self.durability as u32,
            self.segment_size,
            self.max_wal_size,
            self.keep_snapshots,
            self.clean_after.unwrap_or(0),
            self.per_write as u8
        )
    }

    fn from_env(s: &str) -> GenConfig {
        let f: Vec<u64> = s
            .split_whitespace()
            .map(|x| x.parse().expect("number"))
            .collect();
        GenConfig {
            generation: f[0],
            seed: f[1],
            writers: f[2],
            durability: match f[3] {
                0 => Durability::Buffered,
                1 => Durability::Os,
                _ => Durability::Sync,
            },
            segment_size: f[4],
            max_wal_size: f[5],
            keep_snapshots: f[6] as u32,
            clean_after: (f[7] > 0).then_some(f[7]),
            per_write: f[8] != 0,
        }
    }
}

fn key(group: u64, i: u64) -> Vec<u8> {
    format!("g{group}-k{i:03}").into_bytes()
}

/// One operation of a writer's stream: (key index in its group, new value
/// or `None` for a delete), applied atomically.
type KvOp = Vec<(u64, Option<Vec<u8>>)>;

/// Operation `seq` (1-based) of writer `w` in generation `g`; `rng` is the
/// writer's stream, advanced by exactly one operation.
fn next_op(rng: &mut Rng, g: u64, w: u64, seq: u64) -> KvOp {
    let value = |rng: &mut Rng, part: u64| {
        let len = match rng.below(10) {
            0 => 2000 + rng.below(6000),
            1..=3 => rng.below(8),
            _ => 20 + rng.below(300),
        };
        let mut v = format!("{g}:{w}:{seq}:{part}:").into_bytes();
        v.resize(v.len() + len as usize, b'a' + (seq % 26) as u8);
        v
    };
    match rng.below(20) {
        0..=10 => vec![(rng.below(KEYS_PER_GROUP), Some(value(rng, 0)))],
        11..=13 => vec![(rng.below(KEYS_PER_GROUP), None)],
        _ => (0..2 + rng.below(5))
            .map(|part| {
                let k = rng.below(KEYS_PER_GROUP);
                if rng.below(4) == 0 {
                    (k, None)
                } else {
                    (k, Some(value(rng, part)))
                }
            })
            .collect(),
    }
}

/// The level operation `seq` of writer `w` asks for, if it asks (`None`:
/// the store's level). Drawn from its own hash, so the operations' stream
/// is the same with and without per-write levels.
fn op_level(cfg: &GenConfig, w: u64, seq: u64) -> Option<Durability> {
    if !cfg.per_write {
        return None;
    }
    match mix(mix(cfg.seed, 1000 + w), seq) % 4 {
        0 => Some(Durability::Buffered),
        1 => Some(Durability::Os),
        2 => Some(Durability::Sync),
        _ => None,
    }
}

fn writer_rng(cfg: &GenConfig, w: u64) -> Rng {
    Rng(mix(cfg.seed, w + 1))
}

fn print_line(line: &str) {
    let out = std::io::stdout();
    let mut l = out.lock();
    writeln!(l, "{line}").expect("stdout");
    l.flush().expect("flush");
}

/// The directory and configuration a parent passed to a child, or `None`
/// when the entry point runs as an ordinary (ignored) test.
fn child_env() -> Option<(String, String)> {
    Some((
        std::env::var("KEYVAL_CT_DIR").ok()?,
        std::env::var("KEYVAL_CT_CFG").ok()?,
    ))
}

/// Child-process entry point for the key-value store.
#[test]
#[ignore = "child process entry point"]
fn kv_child() {
    let Some((dir, cfg)) = child_env() else {
        return;
    };
    let cfg = GenConfig::from_env(&cfg);
    let db = Db::open(&dir, cfg.options()).expect("child open");
    print_line("READY");
    let stop = AtomicBool::new(false);
    let done_writers = AtomicU64::new(0);
    std::thread::scope(|s| {
        for w in 0..cfg.writers {
            let (db, cfg, done) = (&db, &cfg, &done_writers);
            s.spawn(move || {
                let mut rng = writer_rng(cfg, w);
                for seq in 1.. {
                    if cfg.clean_after.is_some_and(|n| seq > n) {
                        break;
                    }
                    let op = next_op(&mut rng, cfg.generation, w, seq);
                    // No level: the store's, as the plain set/delete/write.
                    let wo = op_level(cfg, w, seq)
                        .map_or_else(WriteOptions::default, WriteOptions::with_durability);
                    let r = match &op[..] {
                        [(k, Some(v))] => db.set_opt(key(w, *k), v, &wo),
                        [(k, None)] => db.delete_opt(key(w, *k), &wo),
                        _ => {
                            let mut b = WriteBatch::new();
                            for (k, v) in &op {
                                match v {
                                    Some(v) => b.put(key(w, *k), v),
                                    None => b.delete(key(w, *k)),
                                };
                            }
                            db.write_opt(b, &wo)
                        }
                    };
                    r.expect("write");
                    print_line(&format!("A {w} {seq}"));
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        // Sync and checkpoint threads: `SB n` before a sync starts, `SE n`
        // after it returned, so the parent knows which acknowledgements it
        // covers.
        let (db, stop_ref, cfg_ref) = (&db, &stop, &cfg);
        s.spawn(move || {
            let mut rng = Rng(mix(cfg_ref.seed, 100));
            for n in 0.. {
                std::thread::sleep(Duration::from_millis(2 + rng.below(40)));
                if stop_ref.load(Ordering::SeqCst) {
                    break;
                }
                print_line(&format!("SB {n}"));
                let checkpoint = rng.below(5) == 0;
                let r = if checkpoint {
                    db.checkpoint()
                } else {
                    db.sync()
                };
                r.expect("sync or checkpoint");
                print_line(&format!("SE {n}"));
            }
        });
        if cfg.clean_after.is_some() {
            while done_writers.load(Ordering::SeqCst) < cfg.writers {
                std::thread::sleep(Duration::from_millis(2));
            }
            stop.store(true, Ordering::SeqCst);
        }
    });
    db.close().expect("close");
    print_line("CLOSED");
}

/// What the parent read from one child.
#[derive(Debug, Default)]
struct ChildLog {
    acked: BTreeMap<u64, u64>,
    /// Per writer: highest seq acknowledged before a sync that returned.
    synced: BTreeMap<u64, u64>,
    closed: bool,
    lines: u64,
}

/// The words of one line of the child's output. libtest prints
/// `test NAME ... ` without a newline before the child's first line.
fn fields(line: &str) -> Vec<&str> {
    let line = line.rsplit(" ... ").next().unwrap_or(line);
    line.split_whitespace().collect()
}

fn spawn_child(test: &str, env: &[(&str, String)]) -> Child {
    let mut c = Command::new(std::env::current_exe().expect("exe"));
    c.args([
        "--exact",
        test,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawn child")
}

/// Run the child until `deadline` after READY (or until it exits), kill it,
/// and collect what it acknowledged.
fn run_kv_child(dir: &Path, cfg: &GenConfig, kill_after: Duration) -> ChildLog {
    let mut child = spawn_child(
        "kv_child",
        &[
            ("KEYVAL_CT_DIR", dir.display().to_string()),
            ("KEYVAL_CT_CFG", cfg.to_env()),
        ],
    );
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let mut log = ChildLog::default();
        let mut open_syncs: BTreeMap<u64, BTreeMap<u64, u64>> = BTreeMap::new();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            log.lines += 1;
            let f = fields(&line);
            match f.as_slice() {
                ["READY"] => {
                    let _ = tx.send(());
                }
                ["A", w, seq] => {
                    let (w, seq) = (w.parse().expect("w"), seq.parse().expect("seq"));
                    log.acked.insert(w, seq);
                }
                ["SB", n] => {
                    open_syncs.insert(n.parse().expect("n"), log.acked.clone());
                }
                ["SE", n] => {
                    if let Some(covered) = open_syncs.remove(&n.parse().expect("n")) {
                        for (w, seq) in covered {
                            let e = log.synced.entry(w).or_insert(0);
                            *e = (*e).max(seq);
                        }
                    }
                }
                ["CLOSED"] => log.closed = true,
                _ => {}
            }
        }
        log
    });
    // Wait for READY (recovery may take a moment), then for the deadline.
    let ready = rx.recv_timeout(Duration::from_secs(120)).is_ok();
    let t0 = Instant::now();
    while ready && t0.elapsed() < kill_after {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let status = child.wait().expect("wait");
    let log = reader.join().expect("reader");
    assert!(
        ready,
        "generation {}: the child never opened the store ({status:?})",
        cfg.generation
    );
    log
}

/// The expected contents of one key group.
type Group = BTreeMap<u64, Vec<u8>>;

fn apply_op(g: &mut Group, op: &KvOp) {
    for (k, v) in op {
        match v {
            Some(v) => {
                g.insert(*k, v.clone());
            }
            None => {
                g.remove(k);
            }
        }
    }
}

/// Find the prefix `k` of writer `w`'s stream, `lo <= k <= hi`, after which
/// `expected` (the group before the generation) equals `found`. Keeps a
/// running count of differing keys, so each step costs one operation.
fn find_prefix(
    cfg: &GenConfig,
    w: u64,
    mut expected: Group,
    found: &Group,
    lo: u64,
    hi: u64,
) -> Option<(u64, Group)> {
    let differs = |e: &Group, k: u64| e.get(&k) != found.get(&k);
    let mut diff: u64 = (0..KEYS_PER_GROUP)
        .filter(|&k| differs(&expected, k))
        .count() as u64;
    let mut rng = writer_rng(cfg, w);
    for seq in 0..=hi {
        if seq > 0 {
            let op = next_op(&mut rng, cfg.generation, w, seq);
            let touched: Vec<u64> = {
                let mut t: Vec<u64> = op.iter().map(|(k, _)| *k).collect();
                t.sort_unstable();
                t.dedup();
                t
            };
            let before: u64 = touched.iter().filter(|&&k| differs(&expected, k)).count() as u64;
            apply_op(&mut expected, &op);
            let after: u64 = touched.iter().filter(|&&k| differs(&expected, k)).count() as u64;
            diff = diff + after - before;
        }
        if seq >= lo && diff == 0 {
            return Some((seq, expected));
        }
    }
    None
}

#[derive(Debug, Default)]
struct Totals {
    generations: u64,
    kills: u64,
    clean_closes: u64,
    acked_ops: u64,
    keys_checked: u64,
    lost_suffix_ops: u64,
    per_write_generations: u64,
}

fn check_kv(
    dir: &Path,
    cfg: &GenConfig,
    log: &ChildLog,
    model: &mut [Group],
    totals: &mut Totals,
    rng: &mut Rng,
) {
    let seed_note = format!(
        "KEYVAL_CRASHTEST_SEED={} generation {} ({cfg:?})",
        base_seed(0xC7A5_4001),
        cfg.generation
    );
    let db = Db::open(dir, Options::default())
        .unwrap_or_else(|e| panic!("{seed_note}: the store does not reopen: {e}"));
    let mut found: Vec<Group> = vec![Group::new(); GROUPS as usize];
    for pair in db.iter() {
        let (k, v) = pair.expect("iter");
        let ks = String::from_utf8(k.clone()).expect("utf8 key");
        let (g, i) = ks
            .strip_prefix('g')
            .and_then(|r| r.split_once("-k"))
            .and_then(|(g, i)| Some((g.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
            .unwrap_or_else(|| panic!("{seed_note}: a key nobody wrote: {ks:?}"));
        found[g as usize].insert(i, v);
        totals.keys_checked += 1;
    }
    for w in 0..GROUPS {
        let before = std::mem::take(&mut model[w as usize]);
        let got = &found[w as usize];
        if w >= cfg.writers {
            assert!(
                &before == got,
                "{seed_note}: group {w} was not written, yet it changed"
            );
            model[w as usize] = before;
            continue;
        }
        let acked = log.acked.get(&w).copied().unwrap_or(0);
        // The writer's last acknowledged operation that was at least at
        // `Os` (its own level, or the store's) survives a killed process,
        // and so does everything a returned sync covered.
        let own = (1..=acked)
            .rev()
            .find(|&seq| op_level(cfg, w, seq).unwrap_or(cfg.durability) >= Durability::Os)
            .unwrap_or(0);
        let durable = own.max(log.synced.get(&w).copied().unwrap_or(0));
        let hi = if log.closed { acked } else { acked + 1 };
        let lo = if log.closed { acked } else { durable };
        match find_prefix(cfg, w, before, got, lo, hi) {
            Some((k, state)) => {
                totals.lost_suffix_ops += acked.saturating_sub(k);
                model[w as usize] = state;
            }
            None => panic!(
                "{seed_note}: writer {w}: the store matches no prefix of its operations \
                 between {lo} (durable) and {hi} (acknowledged {acked}, plus one in flight)"
            ),
        }
        totals.acked_ops += acked;
    }
    let st = db.stats().expect("stats");
    assert_eq!(
        st.recovery.records_skipped + st.recovery.segments_missing,
        0,
        "{seed_note}: {:?}",
        st.recovery
    );
    // Leave the store as a clean close or as a crash, at random.
    if rng.below(2) == 0 {
        db.close().expect("close");
    } else {
        db.crash_for_testing();
    }
}

#[test]
fn long_lived_kv_store_survives_kills() {
    let seed = base_seed(0xC7A5_4001);
    let budget = Duration::from_secs(secs());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(seed);
    let mut model: Vec<Group> = vec![Group::new(); GROUPS as usize];
    let mut totals = Totals::default();
    let t0 = Instant::now();
    let mut generation = 0;
    while t0.elapsed() < budget || generation < 4 {
        let cfg = GenConfig::draw(generation, &mut rng);
        let kill_after = Duration::from_millis(40 + rng.below(700));
        let log = run_kv_child(dir.path(), &cfg, kill_after);
        if log.closed {
            totals.clean_closes += 1;
        } else {
            totals.kills += 1;
        }
        check_kv(dir.path(), &cfg, &log, &mut model, &mut totals, &mut rng);
        totals.generations += 1;
        totals.per_write_generations += cfg.per_write as u64;
        generation += 1;
    }
    let files = std::fs::read_dir(dir.path()).expect("dir").count();
    println!(
        "crashtest kv: seed {seed}: {} generations ({} with per-write levels), {} kills, {} clean \
         closes, {} acknowledged operations, {} keys checked, {} acknowledged-but-unsynced \
         operations lost under Buffered (allowed), 0 acknowledged writes lost, 0 wrong values, 0 \
         failed reopens; {files} files",
        totals.generations,
        totals.per_write_generations,
        totals.kills,
        totals.clean_closes,
        totals.acked_ops,
        totals.keys_checked,
        totals.lost_suffix_ops
    );
    assert!(totals.acked_ops > 0, "nothing was ever acknowledged");
}

// ---------------------------------------------------------------- Raft log

/// The Raft log as the parent expects it.
#[derive(Debug, Clone, Default, PartialEq)]
struct RaftModel {
    first: u64,
    entries: Vec<Entry>,
    hard: Option<HardState>,
    purged: Option<u64>,
    snapshot: Option<(u64, u64)>,
}

impl RaftModel {
    fn next(&self) -> u64 {
        self.first + self.entries.len() as u64
    }
    fn term(&self) -> u64 {
        self.hard.as_ref().map_or(1, |h| h.term)
    }
}

#[derive(Debug, Clone)]
enum RaftOp {
    Append(Vec<Entry>),
    TruncateSuffix(u64),
    TruncatePrefix(u64),
    Hard(HardState),
    Snapshot(SnapshotMeta, Vec<u8>),
}

/// The next operation, drawn from `rng` and the current model (the child
/// and the parent keep identical models, so they draw identical ops).
fn next_raft_op(rng: &mut Rng, m: &RaftModel, g: u64, seq: u64) -> RaftOp {
    let next = m.next();
    match rng.below(20) {
        0..=11 => {
            let n = 1 + rng.below(8);
            let term = m.term();
            RaftOp::Append(
                (next..next + n)
                    .map(|index| {
                        let len = if rng.below(8) == 0 { 3000 } else { 60 };
                        let mut data = format!("{g}:{seq}:{index}:{term}:").into_bytes();
                        data.resize(data.len() + len, (index % 251) as u8);
                        Entry { index, term, data }
                    })
                    .collect(),
            )
        }
        12..=13 if !m.entries.is_empty() => {
            // Conflict: drop a few entries and move to a newer term.
            let k = 1 + rng.below(4.min(m.entries.len() as u64));
            RaftOp::TruncateSuffix(next - k)
        }
        14..=15 if m.entries.len() > 20 => {
            RaftOp::TruncatePrefix(m.first + rng.below(m.entries.len() as u64 - 10))
        }
        16 if !m.entries.is_empty() => {
            let last = next - 1;
            let term = m.entries.last().map_or(0, |e| e.term);
            RaftOp::Snapshot(
                SnapshotMeta {
                    last_index: last,
                    last_term: term,
                    config: format!("cfg-{g}-{seq}").into_bytes(),
                },
                format!("state-{g}-{seq}-{last}").into_bytes(),
            )
        }
        _ => {
            let term = m.term() + rng.below(2);
            RaftOp::Hard(HardState {
                term,
                vote: format!("node-{}", rng.below(3)).into_bytes(),
                commit: next
                    .saturating_sub(1 + rng.below(3))
                    .max(m.first.saturating_sub(1)),
            })
        }
    }
}

fn apply_raft(m: &mut RaftModel, op: &RaftOp) {
    match op {
        RaftOp::Append(es) => m.entries.extend(es.iter().cloned()),
        RaftOp::TruncateSuffix(from) => {
            m.entries.truncate((from - m.first) as usize);
            // A conflict comes with a newer term.
            let mut h = m.hard.clone().unwrap_or_default();
            h.term += 1;
            m.hard = Some(h);
        }
        RaftOp::TruncatePrefix(upto) => {
            let drop = ((upto + 1 - m.first) as usize).min(m.entries.len());
            m.entries.drain(..drop);
            m.first = upto + 1;
            m.purged = Some(*upto);
        }
        RaftOp::Hard(h) => m.hard = Some(h.clone()),
        RaftOp::Snapshot(meta, _) => m.snapshot = Some((meta.last_index, meta.last_term)),
    }
}

fn exec_raft(log: &RaftLog, m: &RaftModel, op: &RaftOp) -> keyval::Result<()> {
    match op {
        RaftOp::Append(es) => log.append(es),
        RaftOp::TruncateSuffix(from) => {
            log.truncate_suffix(*from)?;
            let mut h = m.hard.clone().unwrap_or_default();
            h.term += 1;
            log.save_hard_state(&h)
        }
        RaftOp::TruncatePrefix(upto) => log.truncate_prefix(*upto),
        RaftOp::Hard(h) => log.save_hard_state(h),
        RaftOp::Snapshot(meta, data) => log.save_snapshot(meta, &mut &data[..]),
    }
}

fn raft_opts(seg: u64) -> Options {
    Options {
        segment_size: seg,
        ..Options::default()
    }
}

fn observe_raft(log: &RaftLog) -> RaftModel {
    let first = log.first_index().expect("first");
    let entries = match log.last_index().expect("last") {
        Some(l) => log.entries(first, l + 1, u64::MAX).expect("entries"),
        None => Vec::new(),
    };
    RaftModel {
        first,
        entries,
        hard: log.hard_state().expect("hard state"),
        purged: log.last_purged().expect("purged").map(|p| p.0),
        snapshot: log
            .snapshot()
            .expect("snapshot")
            .map(|(m, _)| (m.last_index, m.last_term)),
    }
}

/// Child-process entry point for the Raft log. The child rebuilds the
/// parent's model by reading the log it opens, so both draw the same ops.
#[test]
#[ignore = "child process entry point"]
fn raft_child() {
    let Some((dir, cfg)) = child_env() else {
        return;
    };
    let f: Vec<u64> = cfg
        .split_whitespace()
        .map(|x| x.parse().expect("n"))
        .collect();
    let (g, seed, seg, clean_after) = (f[0], f[1], f[2], f[3]);
    let log = RaftLog::open(&dir, raft_opts(seg)).expect("child open");
    let mut m = observe_raft(&log);
    print_line("READY");
    let mut rng = Rng(seed);
    for seq in 1.. {
        if clean_after > 0 && seq > clean_after {
            break;
        }
        let op = next_raft_op(&mut rng, &m, g, seq);
        exec_raft(&log, &m, &op).expect("raft op");
        apply_raft(&mut m, &op);
        print_line(&format!("A 0 {seq}"));
    }
    log.close().expect("close");
    print_line("CLOSED");
}

#[test]
fn long_lived_raft_log_survives_kills() {
    let seed = base_seed(0xC7A5_4002);
    let budget = Duration::from_secs(secs());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(seed);
    let mut model = RaftModel {
        first: 1,
        ..RaftModel::default()
    };
    let mut totals = Totals::default();
    let t0 = Instant::now();
    let mut generation = 0u64;
    while t0.elapsed() < budget || generation < 4 {
        let gseed = rng.next() | 1;
        let seg = [64u64 << 10, 128 << 10][rng.below(2) as usize];
        let clean_after = if rng.below(6) == 0 {
            20 + rng.below(100)
        } else {
            0
        };
        let mut child = spawn_child(
            "raft_child",
            &[
                ("KEYVAL_CT_DIR", dir.path().display().to_string()),
                (
                    "KEYVAL_CT_CFG",
                    format!("{generation} {gseed} {seg} {clean_after}"),
                ),
            ],
        );
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let (mut acked, mut closed) = (0u64, false);
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let f = fields(&line);
                match f.as_slice() {
                    ["READY"] => {
                        let _ = tx.send(());
                    }
                    ["A", _, seq] => acked = seq.parse().expect("seq"),
                    ["CLOSED"] => closed = true,
                    _ => {}
                }
            }
            (acked, closed)
        });
        let ready = rx.recv_timeout(Duration::from_secs(120)).is_ok();
        let kill_after = Duration::from_millis(40 + rng.below(600));
        let t = Instant::now();
        while ready && t.elapsed() < kill_after {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        child.wait().expect("wait");
        let (acked, closed) = reader.join().expect("reader");
        assert!(
            ready,
            "raft generation {generation}: the child never opened"
        );
        if closed {
            totals.clean_closes += 1;
        } else {
            totals.kills += 1;
        }
        // Expected: the model after `acked` operations, or one more.
        let mut expect = model.clone();
        let mut orng = Rng(gseed);
        for seq in 1..=acked {
            let op = next_raft_op(&mut orng, &expect, generation, seq);
            apply_raft(&mut expect, &op);
        }
        let log = RaftLog::open(dir.path(), raft_opts(64 << 10)).unwrap_or_else(|e| {
            panic!("KEYVAL_CRASHTEST_SEED={seed} raft generation {generation}: reopen failed: {e}")
        });
        let got = observe_raft(&log);
        let matches = |want: &RaftModel| {
            want.first == got.first
                && want.entries == got.entries
                && want.hard == got.hard
                && want.purged == got.purged
                && want.snapshot == got.snapshot
        };
        let mut ok = matches(&expect);
        if !ok && !closed {
            let op = next_raft_op(&mut orng, &expect, generation, acked + 1);
            let mut one_more = expect.clone();
            apply_raft(&mut one_more, &op);
            // A conflict truncation is two durable steps (truncate, then
            // the newer term); either may be the one the kill interrupted.
            let mut partial = expect.clone();
            if let RaftOp::TruncateSuffix(from) = op {
                partial.entries.truncate((from - partial.first) as usize);
            }
            ok = matches(&one_more) || matches(&partial);
            if ok && matches(&partial) && !matches(&one_more) {
                expect = partial;
            } else if ok {
                expect = one_more;
            }
        }
        assert!(
            ok,
            "KEYVAL_CRASHTEST_SEED={seed} raft generation {generation}: after {acked} acknowledged \
             operations the log is first={} last={:?} hard={:?} purged={:?} snapshot={:?}; \
             expected first={} last={:?} hard={:?} purged={:?} snapshot={:?}",
            got.first,
            got.entries.last().map(|e| e.index),
            got.hard,
            got.purged,
            got.snapshot,
            expect.first,
            expect.entries.last().map(|e| e.index),
            expect.hard,
            expect.purged,
            expect.snapshot
        );
        totals.acked_ops += acked;
        totals.keys_checked += got.entries.len() as u64;
        model = got;
        if rng.below(2) == 0 {
            log.close().expect("close");
        } else {
            log.crash_for_testing();
        }
        totals.generations += 1;
        generation += 1;
    }
    let segs = common::segments(dir.path()).len();
    println!(
        "crashtest raft: seed {seed}: {} generations, {} kills, {} clean closes, {} acknowledged \
         operations, {} entries checked after reopens, 0 acknowledged entries lost, 0 truncated \
         entries returned, 0 failed reopens; {segs} live segments",
        totals.generations,
        totals.kills,
        totals.clean_closes,
        totals.acked_ops,
        totals.keys_checked
    );
    assert!(totals.acked_ops > 0, "nothing was ever acknowledged");
}

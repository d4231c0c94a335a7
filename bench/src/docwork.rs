//! The document workload shared by `docbench` (KeyVal, SQLite JSON1) and
//! `docbench-polodb` (PoloDB, built as its own package so that its
//! dependencies' features, such as serde_json's `preserve_order` that bson
//! turns on, do not change how the other engines run): the documents, the
//! phases, and the engine interface. Included by both with `#[path]`.

use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Distinct `address.zip` values: N / ZIPS documents share each one.
pub const ZIPS: i64 = 10_000;
pub const BASE_TIME: i64 = 1_700_000_000;

pub const WORDS: [&str; 16] = [
    "storage", "engine", "durable", "write", "ahead", "log", "segment", "record", "index", "query",
    "cursor", "page", "snapshot", "recovery", "commit", "batch",
];

/// Document `i`: `_id` is its decimal number; `created` is unique and
/// increasing; `score` is a float in [0, 1); `age` an integer; `address`
/// nested two levels; `tags` an array; `bio` pads it to about 1 KiB.
pub fn document(rng: &mut SmallRng, i: usize) -> Value {
    let word = |rng: &mut SmallRng| WORDS[rng.gen_range(0..WORDS.len())];
    let bio: Vec<&str> = (0..90).map(|_| word(rng)).collect();
    json!({
        "_id": i.to_string(),
        "name": format!("user-{i:07}"),
        "email": format!("user{i}@example.org"),
        "age": rng.gen_range(18..90),
        "active": rng.gen_bool(0.5),
        "score": rng.gen::<f64>(),
        "created": BASE_TIME + i as i64,
        "address": {
            "street": format!("{} {} street", rng.gen_range(1..999), word(rng)),
            "city": format!("city-{}", rng.gen_range(0..200)),
            "zip": rng.gen_range(0..ZIPS),
            "geo": {"lat": rng.gen_range(-90.0..90.0), "lon": rng.gen_range(-180.0..180.0)},
        },
        "tags": (0..rng.gen_range(1..6)).map(|_| word(rng)).collect::<Vec<_>>(),
        "bio": bio.join(" "),
    })
}

/// What each engine does in each phase. Reads return the documents in the
/// engine's own document type (KeyVal and SQLite: `serde_json::Value`,
/// PoloDB: `bson::Document`); the phases count them.
pub trait DocEngine {
    fn create_indexes(&mut self);
    /// One durable transaction.
    fn insert_batch(&mut self, docs: &[Value]);
    /// One durable transaction per document.
    fn insert_one(&mut self, doc: &Value);
    fn get(&mut self, id: &str) -> bool;
    /// Documents with `address.zip == zip`.
    fn find_zip(&mut self, zip: i64) -> usize;
    /// Documents with `lo <= created < lo + 10`, sorted by `created`,
    /// at most 10.
    fn find_created10(&mut self, lo: i64) -> usize;
    /// Documents with `score > 0.99 and active == true` (no index).
    fn scan_filter(&mut self) -> usize;
    /// Set `score` of document `id`, durably.
    fn update_score(&mut self, id: &str, score: f64);
}

pub struct Sizes {
    pub individual: usize,
    pub gets: usize,
    pub finds: usize,
    pub scans: usize,
    pub updates: usize,
    /// The longest any engine spends on one phase: an engine that reads
    /// every document for a query runs fewer operations, and its rate is
    /// what it did in that time.
    pub cap: Duration,
}

pub fn bar(len: u64, msg: String) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{msg:36} [{bar:30}] {pos}/{len} {per_sec}")
            .expect("template")
            .progress_chars("=> "),
    );
    b.set_message(msg);
    b
}

/// Runs `f(i)` for i in 0..n, or until `cap` has passed; returns the rate
/// in operations per second and the sum of what `f` returned.
pub fn timed(
    phase: &str,
    engine: &str,
    n: usize,
    cap: Duration,
    mut f: impl FnMut(usize) -> usize,
) -> (f64, usize, usize) {
    let b = bar(n as u64, format!("{engine}: {phase}"));
    let t = Instant::now();
    let (mut done, mut sum) = (0, 0);
    while done < n {
        sum += f(done);
        done += 1;
        if done % 16 == 0 {
            b.set_position(done as u64);
            if t.elapsed() > cap {
                break;
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    b.finish_and_clear();
    (done as f64 / secs, done, sum)
}

pub const PHASES: [&str; 7] = [
    "batch insert (docs)",
    "individual durable inserts",
    "get by id",
    "indexed equality find",
    "indexed range find of 10",
    "unindexed filtered scan",
    "update by id (durable)",
];

pub type Results = BTreeMap<String, BTreeMap<String, f64>>;

/// Rounds of every phase after the loads: the engines take turns, one
/// round each, and each engine's rate is its median round, so that a
/// machine whose speed drifts during the run (shared disks and CPUs do)
/// favours no engine.
pub const ROUNDS: usize = 5;

/// The engines through every phase: the batch loads one engine after
/// another (each after sync(2)), then the other phases in [`ROUNDS`]
/// alternating rounds. `checks` collects (phase, engine, operations,
/// documents returned) so the engines can be compared.
pub fn run(
    engines: &mut [(&str, Box<dyn DocEngine>)],
    docs: &[Value],
    extra: &[Value],
    s: &Sizes,
    checks: &mut Checks,
) -> Results {
    let mut res: Results = BTreeMap::new();
    for (name, e) in engines.iter_mut() {
        e.create_indexes();
        let _ = std::process::Command::new("sync").status();
        let b = bar(docs.len() as u64, format!("{name}: batch insert"));
        let t = Instant::now();
        for c in docs.chunks(1000) {
            e.insert_batch(c);
            b.inc(c.len() as u64);
        }
        b.finish_and_clear();
        res.entry(name.to_string()).or_default().insert(
            PHASES[0].into(),
            docs.len() as f64 / t.elapsed().as_secs_f64(),
        );
    }
    let n = docs.len();
    let mut rng = SmallRng::seed_from_u64(12);
    let zips: Vec<i64> = (0..s.finds).map(|_| rng.gen_range(0..ZIPS)).collect();
    let los: Vec<i64> = (0..s.finds)
        .map(|_| BASE_TIME + rng.gen_range(0..n as i64 - 10))
        .collect();
    let mut rounds: BTreeMap<(String, &str), Vec<f64>> = BTreeMap::new();
    let mut totals: BTreeMap<(String, &str), (usize, usize)> = BTreeMap::new();
    let cap = s.cap / ROUNDS as u32;
    for round in 0..ROUNDS {
        let _ = std::process::Command::new("sync").status();
        for (name, e) in engines.iter_mut() {
            let name: &str = name;
            let mut record = |phase: &'static str, (rate, ops, found): (f64, usize, usize)| {
                rounds
                    .entry((name.to_string(), phase))
                    .or_default()
                    .push(rate);
                let t = totals.entry((name.to_string(), phase)).or_default();
                t.0 += ops;
                t.1 += found;
            };
            let per = s.individual / ROUNDS;
            let off = round * per;
            record(
                PHASES[1],
                timed(PHASES[1], name, per, cap, |i| {
                    e.insert_one(&extra[off + i]);
                    1
                }),
            );
            let mut rng = SmallRng::seed_from_u64(11 + round as u64);
            let r = timed(PHASES[2], name, s.gets / ROUNDS, cap, |_| {
                e.get(&rng.gen_range(0..n).to_string()) as usize
            });
            assert_eq!(r.1, r.2, "{name}: every get finds its document");
            record(PHASES[2], r);
            let per = s.finds / ROUNDS;
            let off = round * per;
            record(
                PHASES[3],
                timed(PHASES[3], name, per, cap, |i| e.find_zip(zips[off + i])),
            );
            let r = timed(PHASES[4], name, per, cap, |i| {
                e.find_created10(los[off + i])
            });
            assert_eq!(r.2, r.1 * 10, "{name}: every range find returns 10");
            record(PHASES[4], r);
            record(
                PHASES[5],
                timed(PHASES[5], name, s.scans.div_ceil(ROUNDS), cap, |_| {
                    e.scan_filter()
                }),
            );
            let mut rng = SmallRng::seed_from_u64(13 + round as u64);
            record(
                PHASES[6],
                timed(PHASES[6], name, s.updates / ROUNDS, cap, |_| {
                    e.update_score(&rng.gen_range(0..n).to_string(), rng.gen());
                    1
                }),
            );
        }
        eprintln!("round {} of {ROUNDS} done", round + 1);
    }
    for ((name, phase), mut rates) in rounds {
        rates.sort_by(f64::total_cmp);
        res.entry(name)
            .or_default()
            .insert(phase.to_string(), rates[rates.len() / 2]);
    }
    for ((name, phase), (ops, found)) in totals {
        if phase == PHASES[3] || phase == PHASES[5] {
            checks.push((phase.to_string(), name, ops, found));
        }
    }
    res
}

/// Phase sizes: the full run, or `quick` (about a minute).
pub fn sizes(quick: bool) -> Sizes {
    if quick {
        Sizes {
            individual: 200,
            gets: 20_000,
            finds: 2_000,
            scans: 5,
            updates: 200,
            cap: Duration::from_secs(5),
        }
    } else {
        Sizes {
            individual: 1000,
            gets: 100_000,
            finds: 10_000,
            scans: 20,
            updates: 1000,
            cap: Duration::from_secs(20),
        }
    }
}

/// The documents of the batch insert and of the individual inserts, the
/// same in every process (seeded).
pub fn documents(n: usize, s: &Sizes) -> (Vec<Value>, Vec<Value>) {
    let mut rng = SmallRng::seed_from_u64(42);
    let docs: Vec<Value> = (0..n).map(|i| document(&mut rng, i)).collect();
    let extra: Vec<Value> = (n..n + s.individual)
        .map(|i| document(&mut rng, i))
        .collect();
    (docs, extra)
}

/// (phase, engine, operations, documents returned), to compare engines.
pub type Checks = Vec<(String, String, usize, usize)>;

/// The number of items, each of which must be `Ok` (documents a query
/// returned, each decoded).
pub fn count_ok<T, E: std::fmt::Debug>(it: impl Iterator<Item = Result<T, E>>) -> usize {
    it.map(|d| d.map(|_| 1).expect("document")).sum()
}

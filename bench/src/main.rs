//! `keyval-bench`: KeyVal against redb, LMDB (heed), fjall and SQLite, side
//! by side in one run, on redb's comparison workload (24-byte keys, 150-byte
//! values, seeded RNG), plus group commit, recovery and checkpoint phases
//! and the disk's fdatasync ceiling. Writes `docs/bench/results.md` and
//! `docs/bench/results.json`; `bench/chart.py` (matplotlib, run by `make
//! bench`) draws `docs/bench/results.png` from the JSON.
//!
//! `make bench` runs N = 1M; `make bench-quick` N = 100k with fewer
//! operations per phase.

mod engines;

use clap::Parser;
use engines::{pairs, Engine, Fjall, KeyVal, Lmdb, Redb, Sqlite};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    /// Pairs in the bulk load.
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// Fewer operations per phase (about a minute in all).
    #[arg(long)]
    quick: bool,
    /// Directory for the engines' files (default: a temporary directory
    /// under target/).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Where the results go.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
}

struct Sizes {
    individual: usize,
    batches: usize,
    gets: usize,
    ranges: usize,
    nosync: usize,
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = match e.metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            if m.is_dir() {
                total += dir_size(&e.path());
            } else {
                // Allocated bytes, so preallocated-but-sparse files count as used.
                total += std::os::unix::fs::MetadataExt::blocks(&m) * 512;
            }
        }
    }
    total
}

/// Results: engine -> phase -> value (ops/s unless the phase says otherwise).
type Results = BTreeMap<String, BTreeMap<String, f64>>;

fn bar(len: u64, msg: String) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{msg:32} [{bar:30}] {pos}/{len} {per_sec}")
            .expect("template")
            .progress_chars("=> "),
    );
    b.set_message(msg);
    b
}

fn timed(name: &str, engine: &str, n: usize, mut f: impl FnMut(usize)) -> f64 {
    let b = bar(n as u64, format!("{engine}: {name}"));
    let t = Instant::now();
    for i in 0..n {
        f(i);
        if i % 256 == 0 {
            b.set_position(i as u64);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    b.finish_and_clear();
    n as f64 / secs
}

/// The common workload for one engine.
fn run_engine(
    name: &str,
    e: &mut dyn Engine,
    dir: &Path,
    data: &[(Vec<u8>, Vec<u8>)],
    extra: &[(Vec<u8>, Vec<u8>)],
    s: &Sizes,
) -> BTreeMap<String, f64> {
    let mut r = BTreeMap::new();
    let t = Instant::now();
    e.bulk_load(data);
    r.insert(
        "bulk load".into(),
        data.len() as f64 / t.elapsed().as_secs_f64(),
    );
    let mut i_extra = 0;
    // Every engine starts its durable phase with the page cache's earlier
    // dirty data written back, so none pays for another's writeback.
    quiesce();
    let ind = timed("individual durable", name, s.individual, |i| {
        let (k, v) = &extra[i];
        e.put_durable(k, v);
    });
    i_extra += s.individual;
    r.insert("individual durable writes".into(), ind);
    let b = bar(s.batches as u64, format!("{name}: batches of 1000"));
    let t = Instant::now();
    for j in 0..s.batches {
        let lo = i_extra + j * 1000;
        e.put_batch_durable(&extra[lo..lo + 1000]);
        b.inc(1);
    }
    b.finish_and_clear();
    r.insert(
        "durable batch writes (keys)".into(),
        (s.batches * 1000) as f64 / t.elapsed().as_secs_f64(),
    );
    let t = Instant::now();
    let len = e.len();
    r.insert("len() ms".into(), t.elapsed().as_secs_f64() * 1e3);
    assert!(len as usize >= data.len(), "{name}: len {len}");
    let mut rng = SmallRng::seed_from_u64(7);
    let mut sum = 0u64;
    let g = timed("random gets", name, s.gets, |_| {
        let k = &data[rng.gen_range(0..data.len())].0;
        sum += e.get_first_byte(k).expect("key present") as u64;
    });
    r.insert("random gets".into(), g);
    let rr = timed("range reads of 10", name, s.ranges, |_| {
        let k = &data[rng.gen_range(0..data.len())].0;
        sum += e.range10(k) as u64;
    });
    r.insert("range reads (of 10)".into(), rr);
    let before = dir_size(dir);
    let keys: Vec<Vec<u8>> = data.iter().step_by(2).map(|(k, _)| k.clone()).collect();
    let t = Instant::now();
    for c in keys.chunks(10_000) {
        e.remove_batch(c);
    }
    r.insert(
        "removals (keys)".into(),
        keys.len() as f64 / t.elapsed().as_secs_f64(),
    );
    e.compact();
    let after = dir_size(dir);
    r.insert(
        "disk MiB before compaction".into(),
        before as f64 / 1048576.0,
    );
    r.insert("disk MiB after compaction".into(), after as f64 / 1048576.0);
    std::hint::black_box(sum);
    r
}

/// 4 KiB writes + fdatasync on a preallocated, zero-filled file: what the
/// disk allows for durable commits.
fn ceiling(dir: &Path, n: usize) -> f64 {
    let p = dir.join("ceiling");
    let mut f = std::fs::File::create(&p).expect("create");
    f.write_all(&vec![0u8; 4096 * n]).expect("fill");
    f.sync_all().expect("sync");
    use std::os::unix::fs::FileExt;
    let buf = [7u8; 4096];
    let t = Instant::now();
    for i in 0..n {
        f.write_all_at(&buf, (i * 4096) as u64).expect("write");
        f.sync_data().expect("fdatasync");
    }
    let r = n as f64 / t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&p);
    r
}

/// Write back every dirty page on the machine (coreutils `sync`, i.e.
/// sync(2)), so the next timed phase starts on a quiet disk.
fn quiesce() {
    let _ = std::process::Command::new("sync").status();
}

/// KeyVal's single durable writer against the fdatasync ceiling, measured
/// in alternating rounds (ceiling, KeyVal, ceiling, KeyVal, ...), each
/// after `quiesce`, because this disk's fdatasync rate drifts by tens of
/// percent within a minute. Returns the median ceiling, the median KeyVal
/// rate and the median of the per-round ratios.
fn ceiling_vs_keyval(dir: &Path, data: &[(Vec<u8>, Vec<u8>)], quick: bool) -> (f64, f64, f64) {
    let (rounds, per) = if quick { (3, 300) } else { (5, 1000) };
    let (mut ceilings, mut rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        quiesce();
        let c = ceiling(dir, per);
        quiesce();
        let d = dir.join(format!("kv-vs-ceiling-{round}"));
        let db = keyval::Db::open(&d, keyval::Options::default()).expect("open");
        let t = Instant::now();
        for (k, v) in data.iter().take(per) {
            db.set(k, v).expect("set");
        }
        let k = per as f64 / t.elapsed().as_secs_f64();
        db.close().expect("close");
        let _ = std::fs::remove_dir_all(&d);
        ceilings.push(c);
        rates.push(k);
        ratios.push(k / c);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (
        median(&mut ceilings),
        median(&mut rates),
        median(&mut ratios),
    )
}

/// KeyVal-only phases: concurrent durable writers, recovery replay,
/// checkpoint pause, memory per entry.
fn keyval_extras(dir: &Path, data: &[(Vec<u8>, Vec<u8>)], quick: bool) -> BTreeMap<String, f64> {
    let mut r = BTreeMap::new();
    let (ceil, one, ratio) = ceiling_vs_keyval(dir, data, quick);
    r.insert("fdatasync ceiling, interleaved (commits/s)".into(), ceil);
    r.insert("single durable writer, interleaved (commits/s)".into(), one);
    r.insert(
        "single durable writer ÷ ceiling, median of rounds".into(),
        ratio,
    );
    // Group commit: durable writes with 1, 2, 4, 8 writers.
    for writers in [1usize, 2, 4, 8] {
        quiesce();
        let d = dir.join(format!("kv-writers-{writers}"));
        let db = keyval::Db::open(&d, keyval::Options::default()).expect("open");
        let per = if quick { 300 } else { 1000 };
        let t = Instant::now();
        std::thread::scope(|s| {
            for w in 0..writers {
                let db = &db;
                s.spawn(move || {
                    for i in 0..per {
                        let (k, v) = &data[(w * per + i) % data.len()];
                        db.set(k, v).expect("set");
                    }
                });
            }
        });
        let rate = (writers * per) as f64 / t.elapsed().as_secs_f64();
        r.insert(format!("durable writes, {writers} writer(s)"), rate);
        db.close().expect("close");
        let _ = std::fs::remove_dir_all(&d);
    }
    // Recovery: a WAL of about 256 MiB (64 MiB in quick mode), no snapshot.
    let d = dir.join("kv-recovery");
    let wal_target: u64 = if quick { 64 << 20 } else { 256 << 20 };
    let opts = keyval::Options {
        max_wal_size: 0,
        durability: keyval::Durability::Buffered,
        ..keyval::Options::default()
    };
    let db = keyval::Db::open(&d, opts.clone()).expect("open");
    let mut written = 0u64;
    let mut i = 0usize;
    while written < wal_target {
        let mut b = keyval::WriteBatch::new();
        for _ in 0..1000 {
            let (k, v) = &data[i % data.len()];
            let mut k = k.clone();
            k[..8].copy_from_slice(&(i as u64).to_be_bytes());
            b.put(&k, v);
            i += 1;
        }
        written += b.encoded_len() as u64;
        db.write(b).expect("write");
    }
    db.sync().expect("sync");
    db.crash_for_testing();
    let t = Instant::now();
    let db = keyval::Db::open(&d, opts).expect("recover");
    let secs = t.elapsed().as_secs_f64();
    let st = db.stats().expect("stats");
    r.insert(
        "recovery replay MB/s".into(),
        st.recovery.bytes_replayed as f64 / 1e6 / secs,
    );
    r.insert("recovery seconds".into(), secs);
    drop(db);
    let _ = std::fs::remove_dir_all(&d);
    // Checkpoint pause and memory per entry with the N-key data set.
    let d = dir.join("kv-checkpoint");
    let db = keyval::Db::open(&d, keyval::Options::default()).expect("open");
    for c in data.chunks(100_000) {
        let mut b = keyval::WriteBatch::new();
        for (k, v) in c {
            b.put(k, v);
        }
        db.write(b).expect("write");
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // A writer keeps running during the checkpoint.
        s.spawn(|| {
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (k, v) = &data[i % data.len()];
                let _ = db.set(k, v);
                i += 1;
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        db.checkpoint().expect("checkpoint");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let st = db.stats().expect("stats");
    r.insert(
        "checkpoint pause ms".into(),
        st.checkpoint_pause_micros as f64 / 1e3,
    );
    r.insert(
        "memory per entry beyond key+value (bytes)".into(),
        (st.memory_bytes - st.key_bytes - st.value_bytes) as f64 / st.keys as f64,
    );
    r.insert(
        "snapshot size / raw bytes".into(),
        st.snapshot_bytes as f64 / (st.key_bytes + st.value_bytes) as f64,
    );
    db.close().expect("close");
    let _ = std::fs::remove_dir_all(&d);
    r
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("")
        .trim()
        .to_string();
    format!("{cpus} CPUs ({cpu}), Linux {}", kernel.trim())
}

fn fs_type(p: &Path) -> String {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(p)
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() {
    let cli = Cli::parse();
    let base = cli
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/bench-data"));
    std::fs::create_dir_all(&base).expect("bench dir");
    let tmp = tempfile::tempdir_in(&base).expect("temp dir");
    let n = if cli.quick { cli.n.min(100_000) } else { cli.n };
    let s = if cli.quick {
        Sizes {
            individual: 200,
            batches: 10,
            gets: 100_000,
            ranges: 50_000,
            nosync: 5_000,
        }
    } else {
        Sizes {
            individual: 1000,
            batches: 100,
            gets: 1_000_000,
            ranges: 500_000,
            nosync: 50_000,
        }
    };
    let mut rng = SmallRng::seed_from_u64(42);
    let data = pairs(&mut rng, n);
    let extra = pairs(&mut rng, s.individual + s.batches * 1000 + s.nosync);
    let mut results: Results = BTreeMap::new();
    let env = format!(
        "{}; file system {} at {}; N = {n}",
        machine(),
        fs_type(tmp.path()),
        base.display()
    );
    println!("machine: {env}");

    let ceil = ceiling(tmp.path(), if cli.quick { 500 } else { 2000 });
    println!("fdatasync ceiling: {ceil:.0} commits/s");

    // Each maker opens an engine in a directory; `nosync` asks for the
    // engine's no-sync configuration where that is a property of the open
    // handle (KeyVal `Buffered`, LMDB `NO_SYNC`), not of each write.
    type Maker = fn(&Path, bool) -> Box<dyn Engine>;
    let engines: [(&str, Maker); 6] = [
        ("KeyVal", |d, nosync| {
            Box::new(KeyVal::open(&d.join("kv"), nosync))
        }),
        ("redb", |d, _| Box::new(Redb::open(d))),
        ("LMDB (heed)", |d, nosync| Box::new(Lmdb::open(d, nosync))),
        ("fjall", |d, _| Box::new(Fjall::open(d))),
        ("SQLite WAL", |d, _| Box::new(Sqlite::open(d, true))),
        ("SQLite rollback", |d, _| Box::new(Sqlite::open(d, false))),
    ];
    for (name, make) in engines {
        let d = tmp.path().join(name.replace([' ', '(', ')'], "_"));
        std::fs::create_dir_all(&d).expect("dir");
        let mut e = make(&d, false);
        let mut r = run_engine(name, e.as_mut(), &d, &data, &extra, &s);
        drop(e);
        // No-sync single writes, on a fresh instance.
        let nd = d.join("nosync");
        std::fs::create_dir_all(&nd).expect("dir");
        let off = s.individual + s.batches * 1000;
        let mut e = make(&nd, true);
        let rate = timed("no-sync writes", name, s.nosync, |i| {
            let (k, v) = &extra[off + i];
            e.put_nosync(k, v);
        });
        drop(e);
        r.insert("no-sync writes".into(), rate);
        println!("{name}: done");
        results.insert(name.to_string(), r);
        let _ = std::fs::remove_dir_all(&d);
    }
    let extras = keyval_extras(tmp.path(), &data, cli.quick);
    report(&cli.out, &env, ceil, &results, &extras);
}

/// Phases where higher is better, in table order.
const RATES: [&str; 7] = [
    "bulk load",
    "individual durable writes",
    "durable batch writes (keys)",
    "random gets",
    "range reads (of 10)",
    "removals (keys)",
    "no-sync writes",
];

fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn report(out: &Path, env: &str, ceil: f64, res: &Results, extras: &BTreeMap<String, f64>) {
    std::fs::create_dir_all(out).expect("out dir");
    let names: Vec<&String> = std::iter::once(res.keys().find(|k| *k == "KeyVal").expect("KeyVal"))
        .chain(res.keys().filter(|k| *k != "KeyVal"))
        .collect();
    let mut md = String::new();
    md.push_str("# KeyVal vs peers\n\n");
    md.push_str(&format!("Machine: {env}.\n\nOne run, all engines in the same process one after another, each at its durable setting (redb `Durability::Immediate`, LMDB sync, fjall `PersistMode::SyncAll`, SQLite `synchronous=FULL`). Rates in operations (or keys) per second; higher is better. The ratio column is KeyVal ÷ the best peer.\n\n"));
    md.push_str("| phase | ");
    for n in &names {
        md.push_str(&format!("{n} | "));
    }
    md.push_str("KeyVal ÷ best peer |\n|---|");
    for _ in &names {
        md.push_str("---:|");
    }
    md.push_str("---:|\n");
    for phase in RATES {
        md.push_str(&format!("| {phase} | "));
        for n in &names {
            md.push_str(&format!("{} | ", fmt_rate(res[*n][phase])));
        }
        let kv = res["KeyVal"][phase];
        let (best_name, best) = res
            .iter()
            .filter(|(k, _)| *k != "KeyVal")
            .map(|(k, v)| (k.as_str(), v[phase]))
            .fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
        md.push_str(&format!("{:.2}× ({best_name}) |\n", kv / best));
    }
    for phase in [
        "len() ms",
        "disk MiB before compaction",
        "disk MiB after compaction",
    ] {
        md.push_str(&format!("| {phase} | "));
        for n in &names {
            md.push_str(&format!("{:.1} | ", res[*n][phase]));
        }
        md.push_str(" |\n");
    }
    md.push_str(&format!(
        "\nfdatasync ceiling (4 KiB write + fdatasync, preallocated file), measured first on an idle disk: {} commits/s; KeyVal's individual durable writes in the table above (right after its bulk load, with the automatic checkpoint of that load running in the background) are {:.2}× of it. Measured fairly, in alternating rounds after sync(2) (see `ceiling_vs_keyval`): ceiling {} commits/s, KeyVal single writer {} commits/s, median ratio **{:.2}×**.\n\n",
        fmt_rate(ceil),
        res["KeyVal"]["individual durable writes"] / ceil,
        fmt_rate(extras["fdatasync ceiling, interleaved (commits/s)"]),
        fmt_rate(extras["single durable writer, interleaved (commits/s)"]),
        extras["single durable writer ÷ ceiling, median of rounds"],
    ));
    md.push_str("## KeyVal only\n\n| figure | value |\n|---|---:|\n");
    for (k, v) in extras {
        md.push_str(&format!("| {k} | {v:.2} |\n"));
    }
    let one = extras
        .get("durable writes, 1 writer(s)")
        .copied()
        .unwrap_or(1.0);
    let eight = extras
        .get("durable writes, 8 writer(s)")
        .copied()
        .unwrap_or(0.0);
    md.push_str(&format!("\n8 writers ÷ 1 writer: {:.2}×\n", eight / one));
    std::fs::write(out.join("results.md"), &md).expect("write md");
    let json = serde_json::json!({"machine": env, "ceiling": ceil, "phases": RATES, "engines": res, "keyval": extras});
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&json).expect("json"),
    )
    .expect("write json");
    println!("{md}");
}

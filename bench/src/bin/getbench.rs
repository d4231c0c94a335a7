//! `getbench`: random point gets and range reads of 10, KeyVal against LMDB
//! (heed), side by side in one process, at several store sizes, with
//! KeyVal's memory per entry at each size (issue 16).
//!
//! Workload: redb's comparison pairs (random 24-byte keys, 150-byte
//! values). For each size both stores are loaded in durable batches of
//! 100,000; then the get and range phases run in alternating rounds
//! (KeyVal, LMDB, KeyVal, LMDB, ...) on the same random key sequence, and
//! the medians are reported. The load rates (durable batches of 100,000
//! random keys, keys per second) are reported too, for the write path. An LMDB get is one read transaction and one
//! lookup, as in `keyval-bench`; a KeyVal get is one `Db::get_with`.
//!
//! Memory per entry is the growth of the heap's live bytes from before
//! KeyVal's open to after its load and a checkpoint, divided by the entry
//! count, minus the 174 key and value bytes. A counting allocator measures
//! it, charging each allocation the size of the chunk glibc's malloc
//! gives it (request plus 8 bytes, rounded up to 16, at least 32). It
//! includes the store's fixed buffers, which matter at 10k keys only. (The
//! resident set is not used: glibc keeps the freed batch buffers of the
//! load, tens of MB, in the process.) LMDB's column is its file's size per
//! entry, which is what it needs in the page cache to be read at memory
//! speed.
//!
//! Writes `docs/bench/gets.md` (or `--out`).

#[allow(dead_code)]
#[path = "../engines.rs"]
mod engines;

use clap::Parser;
use engines::Engine;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Instant;

#[derive(Parser)]
struct Cli {
    /// Store sizes in keys.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000usize, 100_000, 1_000_000, 10_000_000])]
    sizes: Vec<usize>,
    /// Gets per round (range reads: a quarter of it).
    #[arg(long, default_value_t = 1_000_000)]
    gets: usize,
    /// Rounds per engine (alternating).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Where the data directories go.
    #[arg(long, default_value = "target/bench-data/gets")]
    dir: PathBuf,
    /// The Markdown table.
    #[arg(long, default_value = "docs/bench/gets.md")]
    out: PathBuf,
}

/// The system allocator, counting the live bytes of every allocation as
/// glibc's malloc chunk size.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

fn chunk(size: usize) -> i64 {
    ((size + 8 + 15) & !15).max(32) as i64
}

// Safety: every call is forwarded unchanged to the system allocator; the
// counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(chunk(l.size()), Relaxed);
        // Safety: same contract as this method's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(chunk(l.size()), Relaxed);
        // Safety: same contract as this method's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(chunk(l.size()), Relaxed);
        // Safety: same contract as this method's.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(chunk(n) - chunk(l.size()), Relaxed);
        // Safety: same contract as this method's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn file_bytes(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

struct Row {
    n: usize,
    kv_get: f64,
    lmdb_get: f64,
    kv_range: f64,
    lmdb_range: f64,
    kv_mem: f64,
    lmdb_file: f64,
    kv_load: f64,
    lmdb_load: f64,
    /// `snapshot_pinned_bytes` ÷ the heap freed when that snapshot dropped.
    pinned_ratio: f64,
}

fn rate(n: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    n as f64 / t.elapsed().as_secs_f64()
}

fn run(cli: &Cli, n: usize) -> Row {
    let dir = cli.dir.join(n.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut rng = SmallRng::seed_from_u64(7);
    let data = engines::pairs(&mut rng, n);
    let order: Vec<u32> = (0..cli.gets).map(|_| rng.gen_range(0..n) as u32).collect();

    let before = LIVE.load(Relaxed);
    let mut kv = engines::KeyVal::open(&dir.join("keyval"), false);
    let kv_load = rate(n, || kv.bulk_load(&data));
    kv.db.checkpoint().expect("checkpoint");
    let kv_mem = (LIVE.load(Relaxed) - before) as f64 / n as f64 - 174.0;

    let mut lmdb = engines::Lmdb::open(&dir, false);
    let lmdb_load = rate(n, || {
        for c in data.chunks(100_000) {
            lmdb.put_batch_durable(c);
        }
    });
    let lmdb_file = file_bytes(&dir.join("lmdb")) as f64 / n as f64;

    let (mut kg, mut lg, mut kr, mut lr) = (vec![], vec![], vec![], vec![]);
    let mut sum = 0u64;
    let ranges = cli.gets / 4;
    for _ in 0..cli.rounds {
        kg.push(rate(cli.gets, || {
            for &i in &order {
                sum += kv.get_first_byte(&data[i as usize].0).expect("present") as u64;
            }
        }));
        lg.push(rate(cli.gets, || {
            for &i in &order {
                sum += lmdb.get_first_byte(&data[i as usize].0).expect("present") as u64;
            }
        }));
        kr.push(rate(ranges, || {
            for &i in &order[..ranges] {
                sum += kv.range10(&data[i as usize].0) as u64;
            }
        }));
        lr.push(rate(ranges, || {
            for &i in &order[..ranges] {
                sum += lmdb.range10(&data[i as usize].0) as u64;
            }
        }));
    }
    std::hint::black_box(sum);
    // How close `Stats::snapshot_pinned_bytes` is to the heap a snapshot
    // really holds: overwrite a quarter of the keys while one is open,
    // read the metric, then count what its drop frees.
    let snap = kv.db.snapshot().expect("snapshot");
    for c in data.iter().step_by(4).collect::<Vec<_>>().chunks(10_000) {
        let mut b = keyval::WriteBatch::new();
        for (k, v) in c {
            b.put(k, &v[..v.len() - 1]);
        }
        kv.db.write(b).expect("overwrite");
    }
    let pinned = kv.db.stats().expect("stats").snapshot_pinned_bytes as f64;
    let held = LIVE.load(Relaxed);
    drop(snap);
    let freed = (held - LIVE.load(Relaxed)) as f64;
    drop(kv);
    // (The LMDB environment is leaked by `engines::Lmdb`: it is unmapped at exit.)
    let _ = std::fs::remove_dir_all(&dir);
    Row {
        n,
        kv_get: median(kg),
        lmdb_get: median(lg),
        kv_range: median(kr),
        lmdb_range: median(lr),
        kv_mem,
        lmdb_file,
        kv_load,
        lmdb_load,
        pinned_ratio: pinned / freed,
    }
}

fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else {
        format!("{:.0}k", v / 1e3)
    }
}

fn main() {
    let cli = Cli::parse();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Point gets and range reads: KeyVal vs LMDB by store size\n\n\
         `cargo run --release -p keyval-bench --bin getbench` (part of `make bench`). \
         Random 24-byte keys, 150-byte values; {} gets and {} range reads of 10 per round, \
         {} alternating rounds per engine, medians. Rates per second.\n\n\
         | keys | KeyVal get | LMDB get | get ratio | KeyVal range of 10 | LMDB range of 10 | range ratio | KeyVal memory per entry beyond key+value (B) | LMDB file per entry (B) | KeyVal load | LMDB load | pinned-bytes metric ÷ heap freed at snapshot drop |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        cli.gets,
        cli.gets / 4,
        cli.rounds
    );
    for &n in &cli.sizes {
        eprintln!("getbench: {n} keys");
        let r = run(&cli, n);
        let line = format!(
            "| {} | {} | {} | {:.2}× | {} | {} | {:.2}× | {:.0} | {:.0} | {} | {} | {:.2} |",
            r.n,
            fmt_rate(r.kv_get),
            fmt_rate(r.lmdb_get),
            r.kv_get / r.lmdb_get,
            fmt_rate(r.kv_range),
            fmt_rate(r.lmdb_range),
            r.kv_range / r.lmdb_range,
            r.kv_mem,
            r.lmdb_file,
            fmt_rate(r.kv_load),
            fmt_rate(r.lmdb_load),
            r.pinned_ratio
        );
        println!("{line}");
        let _ = writeln!(md, "{line}");
    }
    std::fs::write(&cli.out, md).expect("write table");
    println!("wrote {}", cli.out.display());
}

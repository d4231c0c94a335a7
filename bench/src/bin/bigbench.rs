//! `bigbench`: data larger than memory. Each engine runs in its own child
//! process inside its own memory cgroup (v1 `memory.limit_in_bytes`, page
//! cache included), smaller than the data, with its cache sized to the
//! limit as its users would size it. Phases: durable load (batches of
//! 1000), reopen, random gets (uniform and Zipfian), ranges of 100, an
//! overwrite of half the keys, the same gets again. Reported per phase:
//! throughput, latency p50/p99, reads from the device per get
//! (`/proc/self/io` `read_bytes` / 4096), space amplification (allocated
//! bytes on disk / live key and value bytes), write amplification (bytes
//! written to the device / bytes of keys and values written), peak RSS and
//! the cgroup's peak usage. An engine killed for memory is reported as
//! such.
//!
//! `make bigbench` runs a bounded size (1M keys of 4 KiB under 512 MiB by
//! default, several minutes); `--keys 4000000 --value-size 4096 --budget
//! 1610612736` is the first dataset.

use clap::Parser;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use redb::ReadableDatabase;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser, Debug, Clone)]
struct Cli {
    /// Keys to load.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 4096)]
    value_size: usize,
    /// Memory limit of each engine's cgroup, in bytes.
    #[arg(long, default_value_t = 512 << 20)]
    budget: u64,
    /// Engines to run, comma-separated.
    #[arg(long, default_value = "keyval,lmdb,redb,fjall")]
    engines: String,
    /// Point reads per get phase.
    #[arg(long, default_value_t = 100_000)]
    gets: u64,
    /// Ranges of 100 in the range phase.
    #[arg(long, default_value_t = 2_000)]
    ranges: u64,
    /// Directory for the stores (one at a time; removed after each).
    #[arg(long, default_value = "target/bigbench")]
    dir: PathBuf,
    /// Markdown report to write.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Internal: run one engine's phases (in the cgroup) and print results.
    #[arg(long, hide = true)]
    child: Option<String>,
}

/// A key: 16 bytes, the big-endian image of a bijective scramble of `i`,
/// so that load order is random in key order.
fn key(i: u64) -> [u8; 16] {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555_5555_5555_5555;
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&x.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// A value of `len` incompressible bytes starting with `i` and `version`.
fn value(rng: &mut SmallRng, i: u64, version: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v[..8].copy_from_slice(&i.to_le_bytes());
    v[8..16].copy_from_slice(&version.to_le_bytes());
    v
}

trait Big {
    fn put_batch(&mut self, pairs: &[([u8; 16], Vec<u8>)]);
    /// The first 16 bytes of the value of `k`.
    fn get16(&mut self, k: &[u8]) -> Option<[u8; 16]>;
    /// Up to 100 pairs from `k` on: their count and value bytes.
    fn range100(&mut self, k: &[u8]) -> (usize, usize);
    /// Reads of the store's files the engine itself counts, if it does.
    fn file_reads(&self) -> Option<u64> {
        None
    }
}

struct KeyVal(keyval::Db);
impl Big for KeyVal {
    fn put_batch(&mut self, pairs: &[([u8; 16], Vec<u8>)]) {
        let mut b = keyval::WriteBatch::new();
        for (k, v) in pairs {
            b.put(k, v);
        }
        self.0.write(b).expect("write");
    }
    fn get16(&mut self, k: &[u8]) -> Option<[u8; 16]> {
        self.0
            .get_with(k, |v| v.map(|v| v[..16].try_into().expect("16")))
            .expect("get")
    }
    fn file_reads(&self) -> Option<u64> {
        self.0.stats().ok().map(|s| s.value_reads)
    }
    fn range100(&mut self, k: &[u8]) -> (usize, usize) {
        let mut n = (0, 0);
        for r in self.0.range(k..).take(100) {
            n.0 += 1;
            n.1 += r.expect("range").1.len();
        }
        n
    }
}

struct Lmdb {
    env: &'static heed::Env,
    db: heed::Database<'static, heed::types::Bytes, heed::types::Bytes>,
}
impl Big for Lmdb {
    fn put_batch(&mut self, pairs: &[([u8; 16], Vec<u8>)]) {
        let mut w = self.env.write_txn().expect("txn");
        for (k, v) in pairs {
            self.db.put(&mut w, k, v).expect("put");
        }
        w.commit().expect("commit");
    }
    fn get16(&mut self, k: &[u8]) -> Option<[u8; 16]> {
        let r = self.env.read_txn().expect("txn");
        // A copy of the whole value, as the other engines hand out: a
        // borrowed mmap slice would leave its pages unread.
        self.db.get(&r, k).expect("get").map(|v| {
            std::hint::black_box(v.to_vec())[..16]
                .try_into()
                .expect("16")
        })
    }
    fn range100(&mut self, k: &[u8]) -> (usize, usize) {
        let r = self.env.read_txn().expect("txn");
        let mut n = (0, 0);
        let it = self
            .db
            .range(
                &r,
                &(std::ops::Bound::Included(k), std::ops::Bound::Unbounded),
            )
            .expect("range");
        for p in it.take(100) {
            n.0 += 1;
            n.1 += std::hint::black_box(p.expect("pair").1.to_vec()).len();
        }
        n
    }
}

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("data");
struct Redb(redb::Database);
impl Big for Redb {
    fn put_batch(&mut self, pairs: &[([u8; 16], Vec<u8>)]) {
        let tx = self.0.begin_write().expect("begin");
        {
            let mut t = tx.open_table(REDB_TABLE).expect("table");
            for (k, v) in pairs {
                t.insert(&k[..], v.as_slice()).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    fn get16(&mut self, k: &[u8]) -> Option<[u8; 16]> {
        let tx = self.0.begin_read().expect("read");
        let t = tx.open_table(REDB_TABLE).expect("table");
        let v = t.get(k).expect("get");
        v.map(|v| {
            std::hint::black_box(v.value().to_vec())[..16]
                .try_into()
                .expect("16")
        })
    }
    fn range100(&mut self, k: &[u8]) -> (usize, usize) {
        let tx = self.0.begin_read().expect("read");
        let t = tx.open_table(REDB_TABLE).expect("table");
        let mut n = (0, 0);
        for p in t.range(k..).expect("range").take(100) {
            n.0 += 1;
            n.1 += std::hint::black_box(p.expect("pair").1.value().to_vec()).len();
        }
        n
    }
}

struct Fjall {
    db: fjall::Database,
    ks: fjall::Keyspace,
}
impl Big for Fjall {
    fn put_batch(&mut self, pairs: &[([u8; 16], Vec<u8>)]) {
        let mut b = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncAll));
        for (k, v) in pairs {
            b.insert(&self.ks, &k[..], v.as_slice());
        }
        b.commit().expect("commit");
    }
    fn get16(&mut self, k: &[u8]) -> Option<[u8; 16]> {
        self.ks.get(k).expect("get").map(|v| {
            std::hint::black_box(v.to_vec())[..16]
                .try_into()
                .expect("16")
        })
    }
    fn range100(&mut self, k: &[u8]) -> (usize, usize) {
        let mut n = (0, 0);
        for g in self.ks.range(k..).take(100) {
            n.0 += 1;
            n.1 += std::hint::black_box(g.value().expect("value").to_vec()).len();
        }
        n
    }
}

/// Open engine `name` in `dir` with its cache sized for a cgroup of
/// `budget` bytes: a quarter of it for KeyVal's value cache and redb's and
/// fjall's caches (the rest is for the index, write buffers and the page
/// cache; fjall with half was killed for memory), nothing for LMDB (it
/// reads through the page cache).
fn open(name: &str, dir: &Path, budget: u64) -> Box<dyn Big> {
    std::fs::create_dir_all(dir).expect("mkdir");
    match name {
        "keyval" => Box::new(KeyVal(
            keyval::Db::open(
                dir,
                keyval::Options {
                    memory_budget: budget / 4,
                    ..keyval::Options::default()
                },
            )
            .expect("open keyval"),
        )),
        "lmdb" => {
            // heed refuses a second open of one environment in a process:
            // the reopen takes the one already open (LMDB's open is an
            // mmap; its time is not comparable).
            static ENVS: std::sync::Mutex<Vec<(PathBuf, &'static heed::Env)>> =
                std::sync::Mutex::new(Vec::new());
            let mut envs = ENVS.lock().expect("envs");
            let env: &'static heed::Env = match envs.iter().find(|(p, _)| p == dir) {
                Some((_, e)) => e,
                None => {
                    let mut o = heed::EnvOpenOptions::new();
                    o.map_size(1 << 40);
                    // As LMDB's documentation advises for data larger than
                    // RAM: no read-ahead around each page fault.
                    // Safety: heed marks flags unsafe; NO_READ_AHEAD only
                    // changes how pages are read.
                    unsafe {
                        o.flags(heed::EnvFlags::NO_READ_AHEAD);
                    }
                    // Safety: no other environment maps this fresh directory.
                    let e: &'static heed::Env =
                        Box::leak(Box::new(unsafe { o.open(dir) }.expect("open lmdb")));
                    envs.push((dir.to_path_buf(), e));
                    e
                }
            };
            let w = env.write_txn().expect("txn");
            let db = env
                .create_databases_and_commit(w, |opener, wtxn| -> Result<_, heed::Error> {
                    let db = opener
                        .create_database::<heed::types::Bytes, heed::types::Bytes>(wtxn, None)?;
                    Ok(heed::CommitOrAbort::<_, ()>::Commit(db))
                })
                .expect("create database")
                .unwrap_commit();
            Box::new(Lmdb { env, db })
        }
        "redb" => Box::new(Redb(
            redb::Builder::new()
                .set_cache_size((budget / 4) as usize)
                .create(dir.join("redb"))
                .expect("open redb"),
        )),
        "fjall" => {
            let db = fjall::Database::builder(dir)
                .cache_size(budget / 4)
                .open()
                .expect("open fjall");
            let ks = db
                .keyspace("data", || {
                    fjall::KeyspaceCreateOptions::default()
                        .with_kv_separation(Some(fjall::KvSeparationOptions::default()))
                })
                .expect("keyspace");
            Box::new(Fjall { db, ks })
        }
        other => panic!("unknown engine {other}"),
    }
}

/// `/proc/self/io` fields `read_bytes` and `write_bytes` (device I/O).
fn io() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("read_bytes:"), field("write_bytes:"))
}

fn rss_peak() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb << 10)
}

fn allocated(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                n += if m.is_dir() {
                    allocated(&e.path())
                } else {
                    m.blocks() * 512
                };
            }
        }
    }
    n
}

/// Drop the page cache (as root), so reads after it come from the device.
fn drop_caches() {
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "1");
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Zipfian (theta 0.99) ranks over `n` items, YCSB's generator.
struct Zipf {
    n: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    theta: f64,
}
impl Zipf {
    fn new(n: u64) -> Zipf {
        let theta = 0.99;
        let zeta = |m: u64| (1..=m).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zetan = zeta(n);
        let zeta2 = zeta(2);
        let nf = n as f64;
        Zipf {
            n: nf,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta: (1.0 - (2.0 / nf).powf(1.0 - theta)) / (1.0 - zeta2 / zetan),
            theta,
        }
    }
    fn next(&self, rng: &mut SmallRng) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        ((self.n * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64).min(self.n as u64 - 1)
    }
}

/// One engine's phases, printed as `R phase field=value ...` lines.
fn child(cli: &Cli, name: &str) {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).expect("go");
    let dir = cli.dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let n = cli.keys;
    let vs = cli.value_size;
    let logical = n * (16 + vs as u64);
    let say = |s: String| {
        let out = std::io::stdout();
        let mut l = out.lock();
        writeln!(l, "R {s}").expect("stdout");
        l.flush().expect("flush");
    };
    let mut rng = SmallRng::seed_from_u64(32);
    let mut db = open(name, &dir, cli.budget);
    // Durable load, batches of 1000.
    let (_, w0) = io();
    let t = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        batch.push((key(i), value(&mut rng, i, 0, vs)));
        if batch.len() == 1000 || i + 1 == n {
            db.put_batch(&batch);
            batch.clear();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let (_, w1) = io();
    say(format!(
        "load secs={secs:.2} keys_per_s={:.0} mb_per_s={:.1} write_amp={:.2} rss={}",
        n as f64 / secs,
        logical as f64 / secs / 1e6,
        (w1 - w0) as f64 / logical as f64,
        rss_peak()
    ));
    drop(db);
    drop_caches();
    let t = Instant::now();
    let mut db = open(name, &dir, cli.budget);
    say(format!("open secs={:.3}", t.elapsed().as_secs_f64()));
    let zipf = Zipf::new(n);
    let gets = |db: &mut Box<dyn Big>,
                phase: &str,
                zipfian: bool,
                version_of: &dyn Fn(u64) -> u64| {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut lat = Vec::with_capacity(cli.gets as usize);
        let (r0, _) = io();
        let f0 = db.file_reads();
        let t = Instant::now();
        for _ in 0..cli.gets {
            let i = if zipfian {
                zipf.next(&mut rng)
            } else {
                rng.gen_range(0..n)
            };
            let t1 = Instant::now();
            let v = db.get16(&key(i)).expect("a loaded key is missing");
            lat.push(t1.elapsed().as_secs_f64() * 1e6);
            assert_eq!(u64::from_le_bytes(v[..8].try_into().expect("8")), i);
            assert_eq!(
                u64::from_le_bytes(v[8..].try_into().expect("8")),
                version_of(i)
            );
        }
        let secs = t.elapsed().as_secs_f64();
        let (r1, _) = io();
        let counted = match (f0, db.file_reads()) {
            (Some(a), Some(b)) => format!(
                " file_reads_per_get={:.3}",
                (b - a) as f64 / cli.gets as f64
            ),
            _ => String::new(),
        };
        lat.sort_by(f64::total_cmp);
        say(format!(
            "{phase} gets_per_s={:.0} p50_us={:.1} p99_us={:.1} device_reads_per_get={:.2} rss={}{counted}",
            cli.gets as f64 / secs,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            (r1 - r0) as f64 / 4096.0 / cli.gets as f64,
            rss_peak()
        ));
    };
    gets(&mut db, "get_uniform", false, &|_| 0);
    gets(&mut db, "get_zipf", true, &|_| 0);
    // Ranges of 100.
    let mut lat = Vec::new();
    let t = Instant::now();
    let mut rr = SmallRng::seed_from_u64(9);
    for _ in 0..cli.ranges {
        let i = rr.gen_range(0..n);
        let t1 = Instant::now();
        let (c, b) = db.range100(&key(i));
        assert!(c > 0 && b >= c * vs);
        lat.push(t1.elapsed().as_secs_f64() * 1e6);
    }
    let secs = t.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    say(format!(
        "range100 ranges_per_s={:.0} p50_us={:.1} p99_us={:.1}",
        cli.ranges as f64 / secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    ));
    // Overwrite half of the keys (even i), durably in batches of 1000.
    let (_, w0) = io();
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        batch.push((key(i), value(&mut rng, i, 1, vs)));
        i += 2;
        if batch.len() == 1000 || i >= n {
            db.put_batch(&batch);
            batch.clear();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let (_, w1) = io();
    let over = (n / 2) * (16 + vs as u64);
    say(format!(
        "overwrite secs={secs:.2} keys_per_s={:.0} write_amp={:.2} space_amp={:.2} rss={}",
        (n / 2) as f64 / secs,
        (w1 - w0) as f64 / over as f64,
        allocated(&dir) as f64 / logical as f64,
        rss_peak()
    ));
    let v = |i: u64| u64::from(i % 2 == 0);
    gets(&mut db, "get_uniform_after", false, &v);
    gets(&mut db, "get_zipf_after", true, &v);
    drop(db);
    say(format!(
        "end space_amp={:.2} rss={}",
        allocated(&dir) as f64 / logical as f64,
        rss_peak()
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A memory cgroup (v1) limited to `budget` bytes, or why not.
fn cgroup(name: &str, budget: u64) -> Result<PathBuf, String> {
    let root = Path::new("/sys/fs/cgroup/memory");
    if !root.join("memory.limit_in_bytes").exists() {
        return Err("no cgroup v1 memory controller at /sys/fs/cgroup/memory".into());
    }
    let p = root.join(format!("keyval-bigbench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    std::fs::write(p.join("memory.limit_in_bytes"), budget.to_string())
        .map_err(|e| format!("cannot set the limit: {e}"))?;
    let _ = std::fs::write(p.join("memory.swappiness"), "0");
    Ok(p)
}

fn read_u64(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let cli = Cli::parse();
    if let Some(name) = &cli.child {
        child(&cli, name);
        return;
    }
    let data = cli.keys * (16 + cli.value_size as u64);
    let mut report = format!(
        "# Data larger than memory (`make bigbench`)\n\n{} keys of {} bytes ({:.1} GB of keys and values) per engine, each engine in its own memory cgroup of {} MiB (page cache included), run one after another on this machine ({}). Caches: KeyVal `memory_budget`, redb's and fjall's cache = 1/4 of the limit, LMDB none (page cache, `MDB_NORDAHEAD` as its documentation advises for data larger than RAM); fjall with key-value separation on. Every engine hands out a copy of each value it reads (LMDB's and redb's borrowed slices are copied, so their pages are read). Gets are {} random reads per phase (uniform, then Zipfian 0.99), with the page cache dropped before the reopen; device reads per get = `/proc/self/io` read_bytes / 4096 / gets. Space amplification = allocated bytes of the store directory / bytes of live keys and values; write amplification = device bytes written / key and value bytes written.\n\n",
        cli.keys,
        cli.value_size,
        data as f64 / 1e9,
        cli.budget >> 20,
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
            .unwrap_or_default(),
        cli.gets,
    );
    let mut rows: Vec<(String, Vec<(String, String)>, String)> = Vec::new();
    for name in cli.engines.split(',') {
        eprintln!("bigbench: {name}...");
        let cg = cgroup(name, cli.budget);
        let started = Instant::now();
        let mut c = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args(std::env::args().skip(1))
            .args(["--child", name])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let note = match &cg {
            Ok(p) => {
                std::fs::write(p.join("cgroup.procs"), c.id().to_string()).expect("join cgroup");
                String::new()
            }
            Err(why) => format!("not limited: {why}"),
        };
        c.stdin
            .take()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("go");
        let out = std::io::BufReader::new(c.stdout.take().expect("stdout"));
        let mut fields = Vec::new();
        for l in out.lines().map_while(Result::ok) {
            if let Some(r) = l.strip_prefix("R ") {
                eprintln!("  {r}");
                let mut it = r.split_whitespace();
                let phase = it.next().unwrap_or("").to_string();
                for kv in it {
                    if let Some((k, v)) = kv.split_once('=') {
                        fields.push((format!("{phase}.{k}"), v.to_string()));
                    }
                }
            }
        }
        let status = c.wait().expect("wait");
        let mut outcome = if status.success() {
            format!("completed in {:.0} s", started.elapsed().as_secs_f64())
        } else {
            use std::os::unix::process::ExitStatusExt;
            match status.signal() {
                Some(9) => "**killed (out of memory)**".to_string(),
                s => format!("**failed** ({status:?}, signal {s:?})"),
            }
        };
        if let Ok(p) = &cg {
            let peak = read_u64(&p.join("memory.max_usage_in_bytes"));
            outcome += &format!("; cgroup peak {} MiB", peak >> 20);
            let _ = std::fs::remove_dir(p);
        }
        if !note.is_empty() {
            outcome += &format!("; {note}");
        }
        rows.push((name.to_string(), fields, outcome));
        let _ = std::fs::remove_dir_all(cli.dir.join(name));
    }
    let cols: &[(&str, &str)] = &[
        ("load.mb_per_s", "load MB/s"),
        ("load.write_amp", "load write amp"),
        ("open.secs", "open s"),
        ("get_uniform.gets_per_s", "uniform gets/s"),
        ("get_uniform.p50_us", "p50 µs"),
        ("get_uniform.p99_us", "p99 µs"),
        (
            "get_uniform.device_reads_per_get",
            "device reads/get (4 KiB)",
        ),
        ("get_uniform.file_reads_per_get", "file reads/get (counted)"),
        ("get_zipf.gets_per_s", "Zipf gets/s"),
        ("get_zipf.p99_us", "Zipf p99 µs"),
        ("range100.ranges_per_s", "ranges of 100/s"),
        ("range100.p50_us", "range p50 µs"),
        ("overwrite.keys_per_s", "overwrite keys/s"),
        ("overwrite.write_amp", "overwrite write amp"),
        ("overwrite.space_amp", "space amp after overwrite"),
        ("get_uniform_after.gets_per_s", "uniform gets/s after"),
        ("get_zipf_after.gets_per_s", "Zipf gets/s after"),
        ("end.rss", "peak RSS MiB"),
    ];
    report += "| metric |";
    for (n, _, _) in &rows {
        report += &format!(" {n} |");
    }
    report += "\n|---|";
    for _ in &rows {
        report += "---|";
    }
    report += "\n";
    for (key, label) in cols {
        report += &format!("| {label} |");
        for (_, f, _) in &rows {
            let v = f.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            let v = match (v, *key == "end.rss") {
                (Some(v), true) => format!("{}", v.parse::<u64>().unwrap_or(0) >> 20),
                (Some(v), false) => v,
                (None, _) => "—".into(),
            };
            report += &format!(" {v} |");
        }
        report += "\n";
    }
    report += "| outcome |";
    for (_, _, o) in &rows {
        report += &format!(" {o} |");
    }
    report += "\n";
    print!("{report}");
    if let Some(out) = &cli.out {
        std::fs::write(out, report).expect("write report");
    }
}

//! Transactions and snapshots, KeyVal against redb, LMDB (heed) and fjall
//! (optimistic transactional keyspace), side by side in one run
//! (`make bench`; `--quick` for a short run). Writes docs/bench/transactions.md.
//!
//! Phases:
//! - durable read-modify-write transactions (read one key, write it + 1) at
//!   1, 4 and 16 threads, on 1k hot keys and on N keys; KeyVal's plain
//!   durable `set` at the same thread counts for the ratio;
//! - `snapshot()` cost at 10k to N keys;
//! - transaction overhead under `Buffered` (begin, get, set, commit) over a
//!   plain `set`;
//! - durable batches and durable set latency during back-to-back
//!   checkpoints, against idle.

use clap::Parser;
use fjall::Readable;
use redb::ReadableTable;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    /// Keys of the large key set (and the largest snapshot size).
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// A short run: N = 100k, 1 s per cell.
    #[arg(long)]
    quick: bool,
    /// Where the table goes.
    #[arg(long, default_value = "docs/bench/transactions.md")]
    out: std::path::PathBuf,
}

fn key(i: u64) -> [u8; 16] {
    let mut k = *b"key-000000000000";
    let s = format!("{i:012}");
    k[4..].copy_from_slice(s.as_bytes());
    k
}

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Run `op(thread, rng)` on `threads` threads for `secs`; operations/s.
fn run(threads: usize, secs: f64, op: impl Fn(usize, &mut dyn FnMut() -> u64) + Sync) -> f64 {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (stop, done, op) = (&stop, &done, &op);
            s.spawn(move || {
                let mut r = rng(t as u64 + 1);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    op(t, &mut r);
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64()
}

fn incr(v: Option<&[u8]>) -> [u8; 8] {
    let n = v.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap_or([0; 8])));
    (n + 1).to_le_bytes()
}

trait Rmw: Sync {
    fn load(&self, keys: u64);
    fn rmw(&self, k: &[u8]);
}

struct KeyVal(keyval::Db);
impl Rmw for KeyVal {
    fn load(&self, keys: u64) {
        for c in (0..keys).collect::<Vec<_>>().chunks(1000) {
            let mut b = keyval::WriteBatch::new();
            for &i in c {
                b.put(key(i), 0u64.to_le_bytes());
            }
            self.0.write(b).expect("load");
        }
    }
    fn rmw(&self, k: &[u8]) {
        self.0
            .update(|tx| {
                let v = tx.get(k)?;
                tx.set(k, incr(v.as_deref()))
            })
            .expect("update");
    }
}

struct Redb(redb::Database);
const T: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("t");
impl Rmw for Redb {
    fn load(&self, keys: u64) {
        let tx = self.0.begin_write().expect("begin");
        {
            let mut t = tx.open_table(T).expect("table");
            for i in 0..keys {
                t.insert(&key(i)[..], &0u64.to_le_bytes()[..])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    fn rmw(&self, k: &[u8]) {
        let tx = self.0.begin_write().expect("begin");
        {
            let mut t = tx.open_table(T).expect("table");
            let v = t.get(k).expect("get").map(|v| incr(Some(v.value())));
            t.insert(k, &v.unwrap_or(incr(None))[..]).expect("insert");
        }
        tx.commit().expect("commit");
    }
}

struct Lmdb {
    env: &'static heed::Env,
    db: heed::Database<'static, heed::types::Bytes, heed::types::Bytes>,
}
impl Rmw for Lmdb {
    fn load(&self, keys: u64) {
        let mut w = self.env.write_txn().expect("txn");
        for i in 0..keys {
            self.db
                .put(&mut w, &key(i), &0u64.to_le_bytes())
                .expect("put");
        }
        w.commit().expect("commit");
    }
    fn rmw(&self, k: &[u8]) {
        let mut w = self.env.write_txn().expect("txn");
        let v = incr(self.db.get(&w, k).expect("get"));
        self.db.put(&mut w, k, &v).expect("put");
        w.commit().expect("commit");
    }
}

struct Fjall {
    db: fjall::OptimisticTxDatabase,
    ks: fjall::OptimisticTxKeyspace,
}
impl Rmw for Fjall {
    fn load(&self, keys: u64) {
        let mut tx = self.db.write_tx().expect("tx");
        for i in 0..keys {
            tx.insert(&self.ks, key(i), 0u64.to_le_bytes());
        }
        tx.commit().expect("commit").expect("no conflict");
    }
    fn rmw(&self, k: &[u8]) {
        loop {
            let mut tx = self
                .db
                .write_tx()
                .expect("tx")
                .durability(Some(fjall::PersistMode::SyncData));
            let v = tx.get(&self.ks, k).expect("get");
            tx.insert(&self.ks, k, incr(v.as_deref()));
            if tx.commit().expect("commit").is_ok() {
                return;
            }
        }
    }
}

fn open(name: &str, dir: &Path) -> Box<dyn Rmw> {
    std::fs::create_dir_all(dir).expect("dir");
    match name {
        "KeyVal" => Box::new(KeyVal(
            keyval::Db::open(dir, keyval::Options::default()).expect("open"),
        )),
        "redb" => Box::new(Redb(
            redb::Database::create(dir.join("redb")).expect("redb"),
        )),
        "LMDB (heed)" => {
            std::fs::create_dir_all(dir).expect("dir");
            let mut o = heed::EnvOpenOptions::new();
            o.map_size(8 << 30);
            // Safety: heed requires that no other environment maps this directory; it is fresh.
            let env: &'static heed::Env =
                Box::leak(Box::new(unsafe { o.open(dir) }.expect("lmdb")));
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
        _ => {
            let db = fjall::OptimisticTxDatabase::builder(dir.join("fjall"))
                .open()
                .expect("fjall");
            let ks = db
                .keyspace("t", fjall::KeyspaceCreateOptions::default)
                .expect("ks");
            Box::new(Fjall { db, ks })
        }
    }
}

fn fmt(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn percentile(mut v: Vec<u64>, p: f64) -> u64 {
    v.sort_unstable();
    v.get(((v.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(0)
}

fn main() {
    let cli = Cli::parse();
    let n = if cli.quick { cli.n.min(100_000) } else { cli.n } as u64;
    let secs = if cli.quick { 1.0 } else { 3.0 };
    let base = Path::new("target/bench-data");
    std::fs::create_dir_all(base).expect("dir");
    let tmp = tempfile::tempdir_in(base).expect("tmp");
    let mut md = String::new();
    md.push_str(&format!(
        "# Transactions and snapshots\n\n`cargo run --release -p keyval-bench --bin txnbench{}`, one run, side by side on this machine; N = {n}; {secs} s per cell. Durable = fdatasync before the commit returns (redb `Immediate`, LMDB default, fjall `SyncData`, KeyVal `Sync`).\n\n",
        if cli.quick { " -- --quick" } else { "" }
    ));

    // 1. Read-modify-write transactions.
    let engines = ["KeyVal", "redb", "LMDB (heed)", "fjall (optimistic)"];
    let threads = [1usize, 4, 16];
    md.push_str("## Durable read-modify-write transactions (read one key, write it), per second\n\n| engine | keys |");
    for t in threads {
        md.push_str(&format!(" {t} thread{} |", if t == 1 { "" } else { "s" }));
    }
    md.push_str("\n|---|---:|");
    md.push_str(&"---:|".repeat(threads.len()));
    md.push('\n');
    let mut kv_rmw = Vec::new();
    for keys in [1000u64, n] {
        for name in engines {
            let d = tmp
                .path()
                .join(format!("{}-{keys}", name.replace([' ', '(', ')'], "_")));
            let e = open(name, &d);
            e.load(keys);
            md.push_str(&format!("| {name} | {keys} |"));
            for t in threads {
                let r = run(t, secs, |_, rnd| e.rmw(&key(rnd() % keys)));
                println!("rmw {name} keys={keys} threads={t}: {r:.0}/s");
                md.push_str(&format!(" {} |", fmt(r)));
                if name == "KeyVal" {
                    kv_rmw.push((keys, t, r));
                }
            }
            md.push('\n');
            drop(e);
            let _ = std::fs::remove_dir_all(&d);
        }
    }
    // KeyVal's plain durable set at the same thread counts.
    let d = tmp.path().join("kv-set");
    let db = keyval::Db::open(&d, keyval::Options::default()).expect("open");
    md.push_str("| KeyVal plain durable `set` | 1000 |");
    let mut set_rates = Vec::new();
    for t in threads {
        let r = run(t, secs, |_, rnd| {
            db.set(key(rnd() % 1000), 1u64.to_le_bytes()).expect("set")
        });
        println!("set threads={t}: {r:.0}/s");
        set_rates.push(r);
        md.push_str(&format!(" {} |", fmt(r)));
    }
    md.push_str("\n\nKeyVal transaction ÷ KeyVal plain set (same thread count, 1k keys):");
    for (i, t) in threads.iter().enumerate() {
        if let Some((_, _, r)) = kv_rmw.iter().find(|(k, th, _)| *k == 1000 && th == t) {
            md.push_str(&format!(" {t}: {:.2};", r / set_rates[i]));
        }
    }
    md.push_str("\n\n");
    drop(db);

    // 2. snapshot() cost.
    md.push_str(
        "## `snapshot()` (take and drop), nanoseconds each\n\n| keys | ns |\n|---:|---:|\n",
    );
    let d = tmp.path().join("kv-snap");
    let db = keyval::Db::open(
        &d,
        keyval::Options {
            durability: keyval::Durability::Buffered,
            ..keyval::Options::default()
        },
    )
    .expect("open");
    let mut loaded = 0u64;
    let mut size = 10_000u64;
    while size <= n {
        let mut b = keyval::WriteBatch::new();
        for i in loaded..size {
            b.put(key(i), [0u8; 100]);
            if b.len() == 10_000 {
                db.write(std::mem::take(&mut b)).expect("load");
            }
        }
        db.write(b).expect("load");
        loaded = size;
        let iters = 1_000_000;
        let t0 = Instant::now();
        for _ in 0..iters {
            drop(db.snapshot().expect("snapshot"));
        }
        let ns = t0.elapsed().as_nanos() as f64 / iters as f64;
        println!("snapshot at {size} keys: {ns:.0} ns");
        md.push_str(&format!("| {size} | {ns:.0} |\n"));
        size *= 10;
    }

    // 3. Transaction overhead under Buffered.
    let ops = 200_000u64;
    let t0 = Instant::now();
    for i in 0..ops {
        db.set(key(i % 10_000), [1u8; 100]).expect("set");
    }
    let set_ns = t0.elapsed().as_nanos() as f64 / ops as f64;
    let t0 = Instant::now();
    for i in 0..ops {
        let k = key(i % 10_000);
        let mut tx = db.transaction().expect("begin");
        let _ = tx.get(k).expect("get");
        tx.set(k, [2u8; 100]).expect("set");
        tx.commit().expect("commit");
    }
    let tx_ns = t0.elapsed().as_nanos() as f64 / ops as f64;
    println!("buffered set {set_ns:.0} ns, transaction {tx_ns:.0} ns");
    md.push_str(&format!(
        "\n## Transaction overhead (`Buffered`, one thread)\n\nplain `set`: {set_ns:.0} ns; begin + get + set + commit: {tx_ns:.0} ns; overhead {:.2} µs.\n\n",
        (tx_ns - set_ns) / 1000.0
    ));
    drop(db);

    // 4. Durable batches and set latency during back-to-back checkpoints.
    let d = tmp.path().join("kv-ckpt");
    let db = Arc::new(keyval::Db::open(&d, keyval::Options::default()).expect("open"));
    KeyVal((*db).clone()).load(n);
    let batch = |i: u64| {
        let mut b = keyval::WriteBatch::new();
        for j in 0..1000 {
            b.put(key((i * 1000 + j) % n), [3u8; 8]);
        }
        db.write(b).expect("batch");
    };
    let measure = |label: &str| {
        let t0 = Instant::now();
        let mut i = 0;
        while t0.elapsed().as_secs_f64() < secs {
            batch(i);
            i += 1;
        }
        let rate = i as f64 * 1000.0 / t0.elapsed().as_secs_f64();
        let mut lat = Vec::new();
        let t1 = Instant::now();
        let mut r = rng(7);
        while t1.elapsed().as_secs_f64() < secs {
            let s = Instant::now();
            db.set(key(r() % n), [4u8; 8]).expect("set");
            lat.push(s.elapsed().as_micros() as u64);
        }
        let p99 = percentile(lat, 0.99);
        println!("{label}: batch keys/s {rate:.0}, set p99 {p99} µs");
        (rate, p99)
    };
    let (idle_rate, idle_p99) = measure("idle");
    let stop = Arc::new(AtomicBool::new(false));
    let ck = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                db.checkpoint().expect("checkpoint");
                n += 1;
            }
            n
        })
    };
    let (busy_rate, busy_p99) = measure("checkpoints running");
    stop.store(true, Ordering::Relaxed);
    let checkpoints = ck.join().expect("join");
    let pause = db.stats().expect("stats").checkpoint_pause_micros;
    md.push_str(&format!(
        "## Writers during back-to-back checkpoints ({n} keys)\n\n| | idle | {checkpoints} checkpoints running | ratio |\n|---|---:|---:|---:|\n| durable batch keys/s | {} | {} | {:.2} |\n| durable set p99 (µs) | {idle_p99} | {busy_p99} | {:.2} |\n\nLongest index-lock hold of the last checkpoint: {pause} µs.\n",
        fmt(idle_rate),
        fmt(busy_rate),
        busy_rate / idle_rate,
        busy_p99 as f64 / idle_p99.max(1) as f64
    ));
    std::fs::create_dir_all(cli.out.parent().unwrap_or(Path::new("."))).expect("out dir");
    std::fs::write(&cli.out, &md).expect("write table");
    println!("{md}");
}

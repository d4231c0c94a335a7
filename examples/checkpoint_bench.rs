//! Foreground writes with and without a checkpoint running, side by side in
//! one run (`make bench`; not a test, no assertions).
//!
//! Loads `KEYVAL_BENCH_N` keys (default 1M; 24-byte random keys, 150-byte
//! values), then measures, for `KEYVAL_BENCH_SECS` seconds each (default 3):
//! - individual durable writes (`Durability::Sync`, one `set` per call)
//!   from one thread: p50, p99 and max latency;
//! - durable batches of 1000 keys from one thread: keys per second;
//!
//! first with the store idle, then while checkpoints of the whole store run
//! back to back in another thread (each writes a snapshot of every key),
//! and prints the ratios. Each phase is run twice, alternating, so drift in
//! the machine's speed favours neither.

use keyval::{Db, Durability, Options, WriteBatch};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod workload;
use workload::{pair, Rng};

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Run `work` for `secs` while, if `checkpoints`, checkpoints run back to
/// back; returns what `work` returns and the number of checkpoints.
fn phase<R: Send>(
    db: &Db,
    secs: f64,
    checkpoints: bool,
    work: impl FnOnce(Instant) -> R + Send,
) -> (R, u64) {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    std::thread::scope(|s| {
        if checkpoints {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    db.checkpoint().expect("checkpoint");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
            std::thread::sleep(Duration::from_millis(50));
        }
        let r = work(Instant::now() + Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        (r, done.load(Ordering::Relaxed))
    })
}

fn singles(db: &Db, rng: &mut Rng, until: Instant) -> Vec<u64> {
    let mut lat = Vec::new();
    while Instant::now() < until {
        let (k, v) = pair(rng);
        let t = Instant::now();
        db.set(k, v).expect("set");
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat.sort_unstable();
    lat
}

fn batches(db: &Db, rng: &mut Rng, until: Instant) -> f64 {
    let start = Instant::now();
    let mut keys = 0u64;
    while Instant::now() < until {
        let mut b = WriteBatch::new();
        for _ in 0..1000 {
            let (k, v) = pair(rng);
            b.put(k, v);
        }
        db.write(b).expect("batch");
        keys += 1000;
    }
    keys as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n = workload::bench_n();
    let secs: f64 = std::env::var("KEYVAL_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let tmp = tempfile::tempdir_in(std::env::var("TMPDIR").unwrap_or_else(|_| "target".into()))
        .expect("tempdir");
    let db = Db::open(
        tmp.path().join("db"),
        Options {
            max_wal_size: 0,
            durability: Durability::Sync,
            ..Options::default()
        },
    )
    .expect("open");
    workload::load(&db, &mut Rng(42), n);
    let t = Instant::now();
    db.checkpoint().expect("first checkpoint");
    let alone = t.elapsed().as_secs_f64();
    let st = db.stats().expect("stats");
    println!(
        "checkpoint bench: {n} keys, {secs} s per phase; a checkpoint alone takes {alone:.2} s ({:.0} MB snapshot)",
        st.snapshot_bytes as f64 / 1e6 / st.snapshots.max(1) as f64
    );
    let mut idle_lat = Vec::new();
    let mut busy_lat = Vec::new();
    let (mut idle_b, mut busy_b, mut cks) = (0.0, 0.0, 0);
    for _ in 0..2 {
        idle_lat.extend(phase(&db, secs, false, |u| singles(&db, &mut Rng(1), u)).0);
        let (l, c) = phase(&db, secs, true, |u| singles(&db, &mut Rng(2), u));
        busy_lat.extend(l);
        cks += c;
        idle_b += phase(&db, secs, false, |u| batches(&db, &mut Rng(3), u)).0 / 2.0;
        let (b, c) = phase(&db, secs, true, |u| batches(&db, &mut Rng(4), u));
        busy_b += b / 2.0;
        cks += c;
    }
    idle_lat.sort_unstable();
    busy_lat.sort_unstable();
    let (i50, i99, b50, b99) = (
        pct(&idle_lat, 0.5),
        pct(&idle_lat, 0.99),
        pct(&busy_lat, 0.5),
        pct(&busy_lat, 0.99),
    );
    println!(
        "  durable set, idle: p50 {i50} us, p99 {i99} us, max {} us ({} writes)",
        idle_lat.last().copied().unwrap_or(0),
        idle_lat.len()
    );
    println!(
        "  durable set, during checkpoints: p50 {b50} us, p99 {b99} us, max {} us ({} writes, {cks} checkpoints)",
        busy_lat.last().copied().unwrap_or(0),
        busy_lat.len()
    );
    println!(
        "  p99 during / idle = {:.2}x",
        b99 as f64 / i99.max(1) as f64
    );
    println!(
        "  durable batches of 1000: idle {idle_b:.0} keys/s, during checkpoints {busy_b:.0} keys/s = {:.2}x",
        busy_b / idle_b
    );
}

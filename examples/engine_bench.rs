//! Engine figures for the closing notes (`make bench`): not a test, no
//! assertions. Workload: 24-byte random keys, 150-byte random values from a
//! seeded RNG, in a temporary directory on the current file system (set
//! TMPDIR to choose). `KEYVAL_BENCH_N` sets the key count (default 1M).
//!
//! Prints: the raw fdatasync ceiling (4 KiB overwrite of a preallocated,
//! zero-filled file), single-writer and multi-writer Sync commit rates,
//! per-write durability (`WriteOptions`) on a `Sync` store, bulk load,
//! random gets, replay speed, checkpoint pause, memory per entry.

use keyval::{Db, Durability, Options, WriteOptions};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod workload;
use workload::{pair, Rng};

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace()
        .nth(1)
        .and_then(|x| x.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn fdatasync_ceiling(dir: &std::path::Path, secs: f64) -> f64 {
    let p = dir.join("ceiling");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&p)
        .expect("file");
    let zeros = vec![0u8; 1 << 20];
    for i in 0..64u64 {
        f.write_all_at(&zeros, i << 20).expect("zero");
    }
    f.sync_all().expect("sync");
    let block = vec![7u8; 4096];
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed().as_secs_f64() < secs {
        f.write_all_at(&block, (n % 16384) * 4096).expect("write");
        f.sync_data().expect("fdatasync");
        n += 1;
    }
    let _ = std::fs::remove_file(&p);
    n as f64 / start.elapsed().as_secs_f64()
}

fn writers(dir: &std::path::Path, threads: u64, per: u64) -> f64 {
    let db = Db::open(dir, Options::default()).expect("open");
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let db = &db;
            s.spawn(move || {
                let mut rng = Rng(0xC0FFEE + t);
                for _ in 0..per {
                    let (k, v) = pair(&mut rng);
                    db.set(k, v).expect("set");
                }
            });
        }
    });
    let rate = (threads * per) as f64 / start.elapsed().as_secs_f64();
    let st = db.stats().expect("stats");
    println!(
        "  {threads} writer(s): {rate:>10.0} commits/s  (avg group {:.1}, {} fsyncs)",
        st.writes as f64 / st.commit_groups.max(1) as f64,
        st.fsyncs
    );
    drop(db);
    rate
}

/// Per-write durability on a store opened at `Sync`: `per` single-pair
/// writes by one writer asking for `level` on every `every`-th write and
/// `Buffered` on the others. Returns writes per second.
fn per_write(dir: &std::path::Path, per: u64, every: u64, level: Durability) -> f64 {
    let db = Db::open(dir, Options::default()).expect("open");
    let (fast, slow) = (
        WriteOptions::with_durability(Durability::Buffered),
        WriteOptions::with_durability(level),
    );
    let mut rng = Rng(0xD0);
    let start = Instant::now();
    for i in 0..per {
        let (k, v) = pair(&mut rng);
        let o = if i % every == every - 1 { &slow } else { &fast };
        db.set_opt(k, v, o).expect("set");
    }
    let rate = per as f64 / start.elapsed().as_secs_f64();
    let what = if level == Durability::Buffered {
        "every write Buffered".to_string()
    } else {
        format!("{level:?} every {every}, Buffered otherwise")
    };
    println!(
        "  1 writer, {what}: {rate:>10.0} writes/s ({} fsyncs)",
        db.stats().expect("stats").fsyncs
    );
    rate
}

/// Two `Sync`-level writers and two that ask for `Buffered`, together on a
/// `Sync` store: each group is brought to the strongest level in it, so the
/// `Buffered` writers pay for the fsyncs of the groups they share.
fn mixed_writers(dir: &std::path::Path, per: u64) {
    let db = Db::open(dir, Options::default()).expect("open");
    let rates: Vec<(Durability, f64)> = std::thread::scope(|s| {
        let hs: Vec<_> = [
            Durability::Sync,
            Durability::Sync,
            Durability::Buffered,
            Durability::Buffered,
        ]
        .into_iter()
        .enumerate()
        .map(|(t, d)| {
            let db = &db;
            s.spawn(move || {
                let o = WriteOptions::with_durability(d);
                let mut rng = Rng(0xE0 + t as u64);
                let start = Instant::now();
                for _ in 0..per {
                    let (k, v) = pair(&mut rng);
                    db.set_opt(k, v, &o).expect("set");
                }
                (d, per as f64 / start.elapsed().as_secs_f64())
            })
        })
        .collect();
        hs.into_iter().map(|h| h.join().expect("writer")).collect()
    });
    let st = db.stats().expect("stats");
    for (d, r) in rates {
        println!("  4 writers (2 Sync, 2 Buffered), a {d:?} writer: {r:>10.0} writes/s");
    }
    println!(
        "    avg group {:.1}, {} fsyncs for {} writes",
        st.writes as f64 / st.commit_groups.max(1) as f64,
        st.fsyncs,
        st.writes
    );
}

/// Child mode for the memory figure: open DIR in a fresh process and print
/// how much the resident set grew, the key count and the key+value bytes.
fn memory_child(dir: &str) {
    let before = rss_bytes();
    let db = Db::open(
        dir,
        Options {
            max_wal_size: 0,
            ..Options::default()
        },
    )
    .expect("open");
    let grown = rss_bytes().saturating_sub(before);
    let st = db.stats().expect("stats");
    println!("{grown} {} {}", st.keys, st.key_bytes + st.value_bytes);
    db.crash_for_testing();
}

fn main() {
    if let Ok(dir) = std::env::var("KEYVAL_BENCH_MEMORY_CHILD") {
        return memory_child(&dir);
    }
    let n = workload::bench_n();
    let tmp = tempfile::tempdir().expect("tempdir");
    println!("KeyVal engine bench: N = {n}, dir {}", tmp.path().display());
    println!(
        "  cpus {}, kernel {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );

    let ceiling = fdatasync_ceiling(tmp.path(), 3.0);
    println!("fdatasync ceiling (4 KiB overwrite, preallocated): {ceiling:.0}/s");

    println!("durable (Sync) single-pair commits:");
    let one = writers(&tmp.path().join("w1"), 1, 3000);
    println!("    = {:.2} x the fdatasync ceiling", one / ceiling);
    for t in [2u64, 4, 8] {
        let r = writers(&tmp.path().join(format!("w{t}")), t, 3000);
        println!("    = {:.2} x single writer", r / one);
    }

    println!("per-write durability (WriteOptions) on a Sync store:");
    let buffered = per_write(
        &tmp.path().join("pw1"),
        30_000,
        30_000,
        Durability::Buffered,
    );
    println!("    = {:.1} x Sync single writer", buffered / one);
    for every in [100u64, 10] {
        let r = per_write(
            &tmp.path().join(format!("pw{every}")),
            10_000,
            every,
            Durability::Sync,
        );
        println!("    = {:.1} x Sync single writer", r / one);
    }
    mixed_writers(&tmp.path().join("pwmix"), 2000);

    // Bulk load in durable batches of 1000 with automatic checkpoints off,
    // so the whole load stays in the WAL for the replay measurement.
    let dir = tmp.path().join("bulk");
    let opts = Options {
        max_wal_size: 0,
        durability: Durability::Sync,
        ..Options::default()
    };
    let db = Db::open(&dir, opts.clone()).expect("open");
    let start = Instant::now();
    workload::load(&db, &mut Rng(42), n);
    let bulk = n as f64 / start.elapsed().as_secs_f64();
    println!("bulk load, durable batches of 1000: {bulk:.0} keys/s");

    db.crash_for_testing();

    // Replay the whole bulk load from the WAL (no snapshot exists yet).
    let start = Instant::now();
    let db = Db::open(&dir, opts).expect("reopen");
    let took = start.elapsed().as_secs_f64();
    let st = db.stats().expect("stats");
    let r = &st.recovery;
    println!(
        "replay: {} records, {:.1} MB in {:.2} s = {:.0} MB/s ({} keys)",
        r.records_replayed,
        r.bytes_replayed as f64 / 1e6,
        took,
        r.bytes_replayed as f64 / 1e6 / took,
        st.keys
    );
    // Memory: a fresh process opens the same data, so freed heap of this
    // process cannot hide the growth.
    db.crash_for_testing();
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .env("KEYVAL_BENCH_MEMORY_CHILD", &dir)
        .output()
        .expect("memory child");
    let f: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if let [grown, keys, kv] = f[..] {
        println!(
            "memory: RSS grew {:.1} MB for {:.1} MB of keys+values = {:.0} bytes per entry beyond key and value",
            grown as f64 / 1e6,
            kv as f64 / 1e6,
            grown.saturating_sub(kv) as f64 / keys.max(1) as f64
        );
    }
    let db = Db::open(
        &dir,
        Options {
            max_wal_size: 0,
            ..Options::default()
        },
    )
    .expect("reopen");

    let mut rng = Rng(42);
    let keys: Vec<[u8; 24]> = (0..n).map(|_| pair(&mut rng).0).collect();
    let mut pick = Rng(7);
    let start = Instant::now();
    let mut sum = 0u64;
    let gets = n.min(1_000_000);
    for _ in 0..gets {
        let k = &keys[(pick.next() % n) as usize];
        sum += db
            .get_with(k, |v| v.map_or(0, |v| v[0] as u64))
            .expect("get");
    }
    let get_rate = gets as f64 / start.elapsed().as_secs_f64();
    println!("random get, 1 thread: {get_rate:.0} gets/s (checksum {sum})");

    // Checkpoint pause: a reader and a writer record their worst latency
    // while a checkpoint of N keys runs.
    let stop = AtomicBool::new(false);
    let (worst_get, worst_set) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut ck = Duration::ZERO;
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut r = Rng(9);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let _ = db.get_with(keys[(r.next() % n) as usize], |v| v.is_some());
                worst_get.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
        });
        s.spawn(|| {
            let mut r = Rng(10);
            while !stop.load(Ordering::Relaxed) {
                let (k, v) = pair(&mut r);
                let t = Instant::now();
                db.set(k, v).expect("set");
                worst_set.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        worst_get.store(0, Ordering::Relaxed);
        worst_set.store(0, Ordering::Relaxed);
        let t = Instant::now();
        db.checkpoint().expect("checkpoint");
        ck = t.elapsed();
        stop.store(true, Ordering::Relaxed);
    });
    println!(
        "checkpoint of {n} keys: {:.0} ms; lock held at most {} us; worst get seen {} us, worst durable set {} us (includes fsync behind the snapshot's)",
        ck.as_secs_f64() * 1e3,
        db.stats().expect("stats").checkpoint_pause_micros,
        worst_get.load(Ordering::Relaxed),
        worst_set.load(Ordering::Relaxed)
    );
    let st = db.stats().expect("stats");
    println!(
        "on disk after checkpoint: snapshot {} bytes for {} key+value bytes ({:.3}x)",
        st.snapshot_bytes,
        st.key_bytes + st.value_bytes,
        st.snapshot_bytes as f64 / (st.key_bytes + st.value_bytes) as f64
    );
}

//! `warmbench`: a warm point read of a separated value (a value-cache
//! hit) against the same read of a value held in the index, side by side
//! in one run: 100k keys of 2 KiB values, once with
//! `value_separation_threshold` 1024 (every value separated, a cache large
//! enough to hold them all, warmed by one read of each) and once with
//! separation off. Prints gets per second of each and their ratio.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn run(separate: bool, n: u32, gets: u32) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = keyval::Db::open(
        dir.path(),
        keyval::Options {
            durability: keyval::Durability::Buffered,
            value_separation_threshold: separate.then_some(1024),
            memory_budget: 1 << 30,
            ..keyval::Options::default()
        },
    )
    .expect("open");
    let v = vec![7u8; 2048];
    for c in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut b = keyval::WriteBatch::new();
        for i in c {
            b.put(format!("key{i:08}"), &v);
        }
        db.write(b).expect("write");
    }
    db.sync().expect("sync");
    for i in 0..n {
        db.get(format!("key{i:08}"))
            .expect("warm")
            .expect("present");
    }
    let mut rng = SmallRng::seed_from_u64(1);
    let keys: Vec<String> = (0..gets)
        .map(|_| format!("key{:08}", rng.gen_range(0..n)))
        .collect();
    let t = Instant::now();
    let mut sum = 0usize;
    for k in &keys {
        sum += db.get(k).expect("get").expect("present").len();
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(sum, gets as usize * 2048);
    if separate {
        let st = db.stats().expect("stats");
        assert!(st.separated_values == u64::from(n), "{st:?}");
    }
    f64::from(gets) / secs
}

fn main() {
    let (n, gets) = (100_000, 2_000_000);
    let mut inline = Vec::new();
    let mut cached = Vec::new();
    for _ in 0..3 {
        inline.push(run(false, n, gets));
        cached.push(run(true, n, gets));
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (med(&mut inline), med(&mut cached));
    println!(
        "warm get of a 2 KiB value, 100k keys, medians of 3 alternating runs: in the index {a:.0}/s, separated (value-cache hit) {b:.0}/s, ratio {:.2}",
        b / a
    );
}

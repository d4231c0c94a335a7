//! The benchmark workload shared by the engine examples (`engine_bench`,
//! `recovery_bench`, `checkpoint_bench`): 24-byte random keys and 150-byte
//! random values from a seeded xorshift generator, loaded in durable
//! batches of 1000. A directory module, so that cargo does not take it for
//! an example of its own.

use keyval::{Db, WriteBatch};

/// The seeded xorshift64* generator of the crash simulator (the
/// `testing` feature, which the crate's dev-dependency on itself turns on
/// for examples too): the same seed gives the same stream.
pub use keyval::fs::Rng;

/// The key count: `KEYVAL_BENCH_N`, 1M when unset or not a number.
pub fn bench_n() -> u64 {
    std::env::var("KEYVAL_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// One pair of the workload: a 24-byte key and a 150-byte value.
pub fn pair(rng: &mut Rng) -> ([u8; 24], [u8; 150]) {
    let mut k = [0u8; 24];
    let mut v = [0u8; 150];
    rng.fill(&mut k);
    rng.fill(&mut v);
    (k, v)
}

/// Write `n` pairs drawn from `rng` into `db` in batches of 1000, each
/// committed at the store's durability level.
pub fn load(db: &Db, rng: &mut Rng, n: u64) {
    let mut b = WriteBatch::new();
    for i in 0..n {
        let (k, v) = pair(rng);
        b.put(k, v);
        if (i + 1) % 1000 == 0 {
            db.write(std::mem::take(&mut b)).expect("batch");
        }
    }
    db.write(b).expect("batch");
}

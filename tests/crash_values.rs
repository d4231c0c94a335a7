//! Separated values across real process kills, on a store that lives
//! through many generations and is several times its memory budget: a
//! child (a re-exec of this test binary) overwrites 2–6 KiB values from
//! three threads under `Sync`, runs read-modify-write transactions on a
//! separated counter, and reclaims every few milliseconds, with a WAL small
//! enough that background checkpoints (key directories) and their reclaim
//! passes run all the time. It prints `ACK run writer seq` only after a
//! write returned. The parent SIGKILLs it at a random moment, reopens and
//! checks every slot against what was acknowledged: the value is whole
//! (its CRC is checked on read), belongs to its slot, and is no older than
//! the last acknowledged write to that slot; the counter is the value the
//! last acknowledged increment made it, or one more; reclaim keeps the disk bounded.
//! `KEYVAL_KILLS` sets the number of kills (default 8).
mod common;
use common::*;
use keyval::{Db, Options};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

const SLOTS: u64 = 40;
const WRITERS: u64 = 3;
/// The writer id of the counter's acknowledgements (their seq is the value an
/// increment committed).
const COUNTER: u64 = 9;

fn opts() -> Options {
    Options {
        segment_size: 128 << 10,
        max_wal_size: 256 << 10,
        memory_budget: 16 << 10,
        checkpoint_interval: Some(Duration::from_millis(30)),
        ..Options::default()
    }
}

fn slot_key(w: u64, slot: u64) -> String {
    format!("w{w}/slot{slot:03}")
}

/// A value naming its writer, slot and sequence number, 2–6 KiB long.
fn value(w: u64, seq: u64) -> Vec<u8> {
    let len = 2048 + ((seq * 977 + w * 131) % 4096) as usize;
    let mut v = format!("{w} {} {seq} ", seq % SLOTS).into_bytes();
    while v.len() < len {
        v.push(b'a' + ((v.len() as u64 + seq) % 26) as u8);
    }
    v
}

/// (writer, slot, seq) from a value, checking that its filler is right.
fn parse(v: &[u8]) -> (u64, u64, u64) {
    let s = std::str::from_utf8(v).expect("utf8");
    let mut f = s.splitn(4, ' ');
    let w: u64 = f.next().expect("w").parse().expect("w");
    let slot: u64 = f.next().expect("slot").parse().expect("slot");
    let seq: u64 = f.next().expect("seq").parse().expect("seq");
    assert_eq!(
        v,
        value(w, seq).as_slice(),
        "a value is not what was written"
    );
    (w, slot, seq)
}

/// The counter: a separated value whose first bytes are the count.
fn counter_value(n: u64) -> Vec<u8> {
    let mut v = format!("{n:012}").into_bytes();
    v.resize(1500, b'c');
    v
}

fn counter_of(v: &[u8]) -> u64 {
    std::str::from_utf8(&v[..12])
        .expect("utf8")
        .parse()
        .expect("count")
}

/// The next sequence number of writer `w`: one past the highest found.
fn resume(db: &Db, w: u64) -> u64 {
    (0..SLOTS)
        .filter_map(|s| db.get(slot_key(w, s)).expect("get"))
        .map(|v| parse(&v).2 + 1)
        .max()
        .unwrap_or(0)
}

/// Child-process entry point, run by the parent with `--ignored`.
#[test]
#[ignore = "child process entry point"]
fn values_crash_child() {
    let Ok(dir) = std::env::var("KEYVAL_VALUES_CHILD") else {
        return;
    };
    let run: u64 = std::env::var("KEYVAL_VALUES_RUN")
        .expect("run")
        .parse()
        .expect("run");
    let db = Db::open(&dir, opts()).expect("child open");
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let db = &db;
            s.spawn(move || {
                for seq in resume(db, w).. {
                    db.set(slot_key(w, seq % SLOTS), value(w, seq))
                        .expect("set");
                    let out = std::io::stdout();
                    let mut l = out.lock();
                    writeln!(l, "ACK {run} {w} {seq}").expect("ack");
                    l.flush().expect("flush");
                }
            });
        }
        let db2 = &db;
        s.spawn(move || loop {
            let now = db2
                .update(|tx| {
                    let n = tx.get("counter")?.map_or(0, |v| counter_of(&v));
                    tx.set("counter", counter_value(n + 1))?;
                    Ok(n + 1)
                })
                .expect("increment");
            let out = std::io::stdout();
            let mut l = out.lock();
            writeln!(l, "ACK {run} {COUNTER} {now}").expect("ack");
            l.flush().expect("flush");
        });
        let db3 = &db;
        s.spawn(move || loop {
            std::thread::sleep(Duration::from_millis(15));
            db3.reclaim().expect("reclaim");
        });
    });
}

#[test]
fn separated_values_survive_kills_with_reclaim_checkpoints_and_transactions() {
    let kills: u64 = std::env::var("KEYVAL_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x32_0032);
    // Highest acknowledged seq per writer over all runs.
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new();
    // The highest counter value a committed increment acknowledged.
    let mut counted = 0u64;
    let mut total = 0usize;
    for run in 0..kills {
        let delay = Duration::from_millis(150 + rng.below(400));
        let acks = run_and_kill_child(
            "values_crash_child",
            &[
                ("KEYVAL_VALUES_CHILD", dir.path().display().to_string()),
                ("KEYVAL_VALUES_RUN", run.to_string()),
            ],
            delay,
        );
        total += acks.len();
        for (w, seq) in acks {
            if w == COUNTER {
                counted = counted.max(seq);
            } else {
                let e = acked.entry(w).or_insert(seq);
                *e = (*e).max(seq);
            }
        }
        let db = Db::open(dir.path(), opts())
            .unwrap_or_else(|e| panic!("run {run}: reopen failed: {e}"));
        for (&w, &last) in &acked {
            // Every slot holds the newest acknowledged write to it (or a
            // newer one that was durable but not yet acknowledged).
            for seq in last.saturating_sub(SLOTS - 1)..=last {
                let v = db
                    .get(slot_key(w, seq % SLOTS))
                    .unwrap_or_else(|e| panic!("run {run}: read of writer {w} failed: {e}"))
                    .unwrap_or_else(|| panic!("run {run}: writer {w} seq {seq} lost"));
                let (vw, slot, got) = parse(&v);
                assert_eq!((vw, slot), (w, seq % SLOTS), "run {run}");
                assert!(
                    got >= seq,
                    "run {run}: writer {w} slot went back from {seq} to {got}"
                );
            }
        }
        let n = db
            .get("counter")
            .expect("counter")
            .map_or(0, |v| counter_of(&v));
        assert!(
            n == counted || n == counted + 1,
            "run {run}: counter {n}, but the last acknowledged increment made it {counted}"
        );
        db.reclaim().expect("reclaim after recovery");
        db.close().expect("close");
        let rep =
            keyval::internals::verify::verify_dir(&keyval::fs::RealFs, dir.path()).expect("verify");
        assert!(!rep.has_corruption(), "run {run}: {rep:?}");
    }
    assert!(total > 0, "the child never acknowledged a write");
    let db = Db::open(dir.path(), opts()).expect("open");
    let st = db.stats().expect("stats");
    // Disk stays bounded (tens of MB were written): the WAL is at most a
    // few times the live values plus the WAL not yet covered (two
    // max_wal_size) and a segment. Without reclaim nearly every segment
    // keeps a live value and the WAL grows with what was written.
    assert!(
        st.wal_bytes < 3 * st.separated_bytes + 3 * (256 << 10) + (128 << 10),
        "{} WAL bytes for {} live separated bytes",
        st.wal_bytes,
        st.separated_bytes
    );
    eprintln!(
        "{total} acknowledged writes over {kills} kills; {} separated values ({} bytes) in {} WAL bytes, {} segments",
        st.separated_values, st.separated_bytes, st.wal_bytes, st.wal_segments
    );
}

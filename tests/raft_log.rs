//! The Raft log store: appends, reads, hard state, suffix and prefix
//! truncation, snapshots, reopen, and simulated power loss at every I/O
//! step of a workload with truncations.
mod common;
use common::Rng;
use keyval::fs::{CrashMode, FileSystem, SimFs};
use keyval::raft::{Entry, HardState, RaftLog, SnapshotMeta};
use keyval::{Error, Options};
use std::path::Path;
use std::sync::Arc;

fn opts() -> Options {
    Options {
        segment_size: 64 << 10,
        ..Options::default()
    }
}

fn ent(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!(
            "entry-{index}-term-{term}-{}",
            "x".repeat((index % 40) as usize)
        )
        .into_bytes(),
    }
}

fn run(first: u64, last: u64, term: u64) -> Vec<Entry> {
    (first..=last).map(|i| ent(i, term)).collect()
}

#[test]
fn append_read_and_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = RaftLog::open(dir.path(), opts()).expect("open");
    assert_eq!(log.last_index().expect("last"), None);
    log.append(&run(1, 100, 1)).expect("append");
    assert_eq!(
        (
            log.first_index().expect("first"),
            log.last_index().expect("last")
        ),
        (1, Some(100))
    );
    assert_eq!(log.entry(42).expect("entry"), ent(42, 1));
    assert_eq!(log.term(100).expect("term"), 1);
    assert!(matches!(
        log.entry(101),
        Err(Error::OutOfRange {
            index: 101,
            last: 100
        })
    ));
    assert!(
        matches!(
            log.append(&run(102, 103, 1)),
            Err(Error::InvalidArgument(_))
        ),
        "a gap"
    );
    assert!(
        matches!(log.append(&run(50, 51, 1)), Err(Error::InvalidArgument(_))),
        "an overlap"
    );
    assert!(matches!(
        log.append(&[ent(101, 1), ent(103, 1)]),
        Err(Error::InvalidArgument(_))
    ));
    let some = log.entries(10, 90, 200).expect("entries");
    assert!(
        !some.is_empty() && some.len() < 80 && some[0].index == 10,
        "max_bytes stops early"
    );
    assert_eq!(
        log.entries(10, 20, u64::MAX).expect("entries"),
        run(10, 19, 1)
    );
    let hs = HardState {
        term: 3,
        vote: b"node-2".to_vec(),
        commit: 77,
    };
    log.save_hard_state(&hs).expect("hard state");
    log.close().expect("close");
    assert!(matches!(log.entry(1), Err(Error::Closed)));

    let log = RaftLog::open(dir.path(), opts()).expect("reopen");
    assert_eq!(log.hard_state().expect("hs"), Some(hs.clone()));
    assert_eq!(log.entries(1, 101, u64::MAX).expect("all"), run(1, 100, 1));
    log.append(&run(101, 110, 2)).expect("continue");
    log.crash_for_testing();
    let log = RaftLog::open(dir.path(), opts()).expect("recover");
    assert_eq!(log.last_index().expect("last"), Some(110));
    assert_eq!(log.term(110).expect("term"), 2);
    assert!(matches!(
        RaftLog::open(dir.path(), opts()),
        Err(Error::Locked(_))
    ));
}

#[test]
fn truncated_suffix_never_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = RaftLog::open(dir.path(), opts()).expect("open");
    log.append(&run(1, 100, 1)).expect("append");
    log.truncate_suffix(50).expect("truncate");
    assert_eq!(log.last_index().expect("last"), Some(49));
    assert!(matches!(log.entry(50), Err(Error::OutOfRange { .. })));
    log.append(&run(50, 60, 2)).expect("append after conflict");
    log.crash_for_testing();
    let log = RaftLog::open(dir.path(), opts()).expect("recover");
    assert_eq!(log.last_index().expect("last"), Some(60));
    assert_eq!(log.entry(55).expect("entry").term, 2);
    assert_eq!(log.entry(49).expect("entry").term, 1);
}

#[test]
fn truncated_prefix_reclaims_segments_and_keeps_the_hard_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = RaftLog::open(dir.path(), opts()).expect("open");
    log.save_hard_state(&HardState {
        term: 1,
        vote: vec![7],
        commit: 0,
    })
    .expect("hs");
    let big = |i: u64| Entry {
        index: i,
        term: 1,
        data: vec![(i % 251) as u8; 2000],
    };
    for i in 1..=300 {
        log.append(&[big(i)]).expect("append");
    }
    let segs = || {
        std::fs::read_dir(dir.path())
            .expect("dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "wal"))
            })
            .count()
    };
    let before = segs();
    assert!(before >= 8, "{before} segments");
    log.truncate_prefix(250).expect("compact");
    assert!(
        segs() < before / 2,
        "segments reclaimed: {before} -> {}",
        segs()
    );
    assert_eq!(log.first_index().expect("first"), 251);
    assert!(matches!(
        log.entry(250),
        Err(Error::Compacted {
            index: 250,
            first: 251
        })
    ));
    assert_eq!(log.last_purged().expect("purged"), Some((250, 1)));
    log.crash_for_testing();
    let log = RaftLog::open(dir.path(), opts()).expect("recover");
    assert_eq!(
        log.hard_state().expect("hs"),
        Some(HardState {
            term: 1,
            vote: vec![7],
            commit: 0
        })
    );
    assert_eq!(log.first_index().expect("first"), 251);
    assert_eq!(log.entry(300).expect("entry"), big(300));
    // Compaction past the end leaves an empty log that continues after it.
    log.truncate_prefix(1000).expect("past the end");
    assert_eq!(log.last_index().expect("last"), None);
    log.append(&run(1001, 1002, 5)).expect("append after");
    assert!(matches!(
        log.append(&run(1004, 1004, 5)),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn snapshots_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = RaftLog::open(dir.path(), opts()).expect("open");
    assert_eq!(log.snapshot().expect("none"), None);
    let meta = SnapshotMeta {
        last_index: 10,
        last_term: 2,
        config: b"{1,2,3}".to_vec(),
    };
    let data = vec![42u8; 3 << 20];
    log.save_snapshot(&meta, &mut &data[..]).expect("save");
    assert_eq!(
        log.snapshot().expect("load"),
        Some((meta.clone(), data.clone()))
    );
    let meta2 = SnapshotMeta {
        last_index: 20,
        ..meta
    };
    log.save_snapshot(&meta2, &mut &b"small"[..])
        .expect("replace");
    assert_eq!(
        log.snapshot()
            .expect("load")
            .map(|(m, d)| (m.last_index, d)),
        Some((20, b"small".to_vec()))
    );
    let p = dir.path().join("raft.snap");
    let mut b = std::fs::read(&p).expect("read");
    b[40] ^= 1;
    std::fs::write(&p, &b).expect("write");
    assert!(matches!(log.snapshot(), Err(Error::Corruption { .. })));
}

// ---- simulated power loss with truncations ----

#[derive(Clone, Debug, PartialEq)]
struct Model {
    first: u64,
    entries: Vec<Entry>,
    hard: Option<HardState>,
}

#[derive(Clone, Debug)]
enum Op {
    Append(u64),
    Suffix(u64),
    Prefix(u64),
    Hard(u64),
}

fn apply(m: &Model, op: &Op) -> Model {
    let mut m = m.clone();
    let next = m.first + m.entries.len() as u64;
    match op {
        Op::Append(n) => {
            let term = m.hard.as_ref().map_or(1, |h| h.term);
            m.entries.extend((next..next + n).map(|i| Entry {
                index: i,
                term,
                data: vec![(i % 200) as u8; 2500],
            }));
        }
        Op::Suffix(k) => {
            let from = next.saturating_sub(*k).max(m.first);
            m.entries.truncate((from - m.first) as usize);
        }
        Op::Prefix(k) => {
            let upto = m.first + k;
            let drop = ((upto + 1 - m.first) as usize).min(m.entries.len());
            m.entries.drain(..drop);
            m.first = if m.entries.is_empty() {
                upto + 1
            } else {
                m.first + drop as u64
            };
        }
        Op::Hard(t) => {
            m.hard = Some(HardState {
                term: *t,
                vote: t.to_le_bytes().to_vec(),
                commit: next.saturating_sub(1),
            })
        }
    }
    m
}

fn workload(seed: u64) -> Vec<Op> {
    let mut r = Rng(seed | 1);
    (0..40)
        .map(|i| match r.below(10) {
            0..=4 => Op::Append(1 + r.below(10)),
            5 => Op::Suffix(1 + r.below(4)),
            6 => Op::Prefix(r.below(30)),
            _ => Op::Hard(i + 1),
        })
        .collect()
}

fn exec(log: &RaftLog, m: &Model, op: &Op) -> keyval::Result<()> {
    let next = m.first + m.entries.len() as u64;
    match op {
        Op::Append(_) => {
            let after = apply(m, op);
            log.append(&after.entries[(next - after.first) as usize..])
        }
        Op::Suffix(k) => log.truncate_suffix(next.saturating_sub(*k).max(m.first)),
        Op::Prefix(k) => log.truncate_prefix(m.first + k),
        Op::Hard(_) => log.save_hard_state(apply(m, op).hard.as_ref().expect("hs")),
    }
}

fn observe(fs: &SimFs) -> Model {
    let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let log =
        RaftLog::open_with_fs("/r", opts(), fsa).unwrap_or_else(|e| panic!("recovery failed: {e}"));
    let first = log.first_index().expect("first");
    let entries = match log.last_index().expect("last") {
        Some(l) => log.entries(first, l + 1, u64::MAX).expect("entries"),
        None => Vec::new(),
    };
    let m = Model {
        first,
        entries,
        hard: log.hard_state().expect("hs"),
    };
    log.crash_for_testing();
    m
}

#[test]
fn power_loss_at_every_step_with_truncations() {
    let (mut swept, mut reclaimed) = (0, 0);

    for seed in 1..=3u64 {
        let ops = workload(seed);
        let mut states = vec![Model {
            first: 1,
            entries: Vec::new(),
            hard: None,
        }];
        for op in &ops {
            let next = apply(states.last().expect("state"), op);
            states.push(next);
        }
        // Count the steps of a full run.
        let steps = {
            let fs = SimFs::new();
            fs.create_dir_all(Path::new("/r")).expect("mkdir");
            let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
            let log = RaftLog::open_with_fs("/r", opts(), fsa).expect("open");
            for (i, op) in ops.iter().enumerate() {
                exec(&log, &states[i], op).expect("op");
            }
            log.crash_for_testing();
            assert_eq!(
                observe(&fs),
                *states.last().expect("last"),
                "seed {seed}: a clean run differs from the model"
            );
            let names = fs.list_dir(Path::new("/r")).expect("list");
            reclaimed += !names.iter().any(|n| n == "00000000000000000001.wal") as u32;
            fs.steps()
        };
        for step in 1..=steps {
            for mode in CrashMode::ALL {
                let fs = SimFs::new();
                fs.create_dir_all(Path::new("/r")).expect("mkdir");
                fs.crash_at(step);
                let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
                let (mut acked, mut attempted) = (0, 0);
                if let Ok(log) = RaftLog::open_with_fs("/r", opts(), fsa) {
                    for (i, op) in ops.iter().enumerate() {
                        attempted = i + 1;
                        if exec(&log, &states[i], op).is_err() {
                            break;
                        }
                        acked = i + 1;
                    }
                    log.crash_for_testing();
                }
                let got = observe(&fs.crash_image(mode, seed ^ step));
                assert!(
                    (acked..=attempted).any(|k| states[k] == got),
                    "seed {seed} step {step} {mode:?}: recovered log matches no allowed prefix [{acked}, {attempted}]: first {} len {} hard {:?}",
                    got.first,
                    got.entries.len(),
                    got.hard
                );
                swept += 1;
            }
        }
    }
    assert!(reclaimed > 0, "no workload reclaimed a segment");
    eprintln!("raft log: {swept} crash cases, {reclaimed} workloads reclaimed segments");
}

/// A read-only open is for key-value stores: a Raft log refuses it and
/// creates nothing.
#[test]
fn read_only_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ro = Options {
        read_only: true,
        ..opts()
    };
    let path = dir.path().join("log");
    assert!(matches!(
        RaftLog::open(&path, ro),
        Err(Error::InvalidArgument(_))
    ));
    assert!(!path.exists());
}

/// RaftOptions holds what a Raft log uses; an Options converts, keeping
/// those four fields, and both open the same log.
#[test]
fn raft_options_open_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = keyval::RaftOptions {
        segment_size: 1 << 20,
        ..keyval::RaftOptions::default()
    };
    let log = keyval::raft::RaftLog::open(dir.path(), opts.clone()).expect("open");
    log.append(&[keyval::raft::Entry {
        index: 1,
        term: 1,
        data: b"a".to_vec(),
    }])
    .expect("append");
    log.close().expect("close");
    let log = keyval::raft::RaftLog::open(dir.path(), keyval::Options::default()).expect("reopen");
    assert_eq!(log.entry(1).expect("entry").data, b"a");
    log.close().expect("close");
    let buffered = keyval::RaftOptions {
        durability: keyval::Durability::Buffered,
        ..opts
    };
    assert!(matches!(
        keyval::raft::RaftLog::open(dir.path(), buffered),
        Err(keyval::Error::InvalidArgument(_))
    ));
}

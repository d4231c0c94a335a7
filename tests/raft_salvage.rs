//! Salvage of a Raft log (`TolerateAnyCorruption`): it failed outright on a
//! damaged middle segment ("entries start at 170, the log continues at
//! 169"). Now it keeps the contiguous log before the damage (entries after
//! a hole are useless to Raft: the leader sends them again), keeps the
//! hard state and the purge point, reports what it dropped, and rewrites
//! the result as the whole log: the next default open works and shows the
//! same log. The rewrite is atomic: a power cut at any step of it loses
//! nothing salvage had kept.
mod common;
use common::*;
use keyval::fs::{CrashMode, FileSystem, SimFs};
use keyval::raft::{Entry, HardState, RaftLog};
use keyval::{Options, RecoveryMode};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

fn opts(mode: RecoveryMode) -> Options {
    Options {
        segment_size: 64 << 10,
        recovery_mode: mode,
        ..Options::default()
    }
}

fn data(i: u64) -> Vec<u8> {
    vec![i as u8; 700]
}

type View = (
    u64,
    Option<u64>,
    Vec<Vec<u8>>,
    Option<HardState>,
    Option<(u64, u64)>,
);

fn view(log: &RaftLog) -> View {
    let (f, l) = (log.first_index().expect("f"), log.last_index().expect("l"));
    let entries = l
        .map(|l| (f..=l).map(|i| log.entry(i).expect("entry").data).collect())
        .unwrap_or_default();
    (
        f,
        l,
        entries,
        log.hard_state().expect("hs"),
        log.last_purged().expect("p"),
    )
}

/// 300 entries over several segments, a purge, a hard state.
fn fill(log: &RaftLog) -> HardState {
    for i in 1..=300u64 {
        log.append(&[Entry {
            index: i,
            term: 1 + i / 100,
            data: data(i),
        }])
        .expect("append");
        if i == 20 {
            log.truncate_prefix(10).expect("purge");
        }
    }
    let hs = HardState {
        term: 4,
        commit: 250,
        vote: b"node-2".to_vec(),
    };
    log.save_hard_state(&hs).expect("hard state");
    hs
}

#[test]
fn salvaged_raft_log_is_contiguous_and_the_baseline() {
    let t = tempfile::tempdir().expect("tempdir");
    let log = RaftLog::open(t.path(), opts(RecoveryMode::TolerateTailCorruption)).expect("open");
    let hs = fill(&log);
    drop(log);
    let segs = segments(t.path());
    assert!(segs.len() >= 3, "{segs:?}");
    // Damage a record in the middle of a middle segment.
    let victim = segs[segs.len() / 2].clone();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .expect("open");
    f.write_all_at(&[0xFF; 16], 4096 + 8 * 1024)
        .expect("damage");
    f.sync_all().expect("sync");
    drop(f);
    assert!(RaftLog::open(t.path(), opts(RecoveryMode::TolerateTailCorruption)).is_err());

    let log = RaftLog::open(t.path(), opts(RecoveryMode::TolerateAnyCorruption)).expect("salvage");
    let got = view(&log);
    let (first, last) = (got.0, got.1.expect("entries kept"));
    assert_eq!(first, 11);
    assert!(last < 300, "salvage kept entries past a hole");
    assert!(last > 20, "salvage dropped the entries before the damage");
    for (k, d) in got.2.iter().enumerate() {
        assert_eq!(*d, data(first + k as u64), "entry {}", first + k as u64);
    }
    assert_eq!(got.3, Some(hs.clone()));
    assert_eq!(got.4, Some((10, 1)));
    let rec = log.recovery_stats().clone();
    assert!(rec.records_skipped > 0, "salvage reported no loss: {rec:?}");
    assert!(!victim.exists(), "the damaged segment is still there");
    // Writing continues right after the kept prefix.
    log.append(&[Entry {
        index: last + 1,
        term: 9,
        data: vec![1],
    }])
    .expect("append after salvage");
    drop(log);

    let log = RaftLog::open(t.path(), opts(RecoveryMode::TolerateTailCorruption))
        .expect("default open after salvage");
    let after = view(&log);
    assert_eq!((after.0, after.1), (first, Some(last + 1)));
    assert_eq!(after.2[..after.2.len() - 1], got.2[..]);
    assert_eq!((after.3, after.4), (got.3, got.4));
}

/// A power cut at every file-system step of the salvage (every crash mode):
/// salvaging again gives the same log, and a default open after a salvage
/// that finished works.
#[test]
fn salvage_rewrite_survives_a_crash_at_every_step() {
    let dir = Path::new("/r");
    let open = |fs: &SimFs, mode| {
        let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
        RaftLog::open_with_fs(dir, opts(mode), fsa)
    };
    let fs = SimFs::new();
    fs.create_dir_all(dir).expect("mkdir");
    let log = open(&fs, RecoveryMode::TolerateTailCorruption).expect("open");
    fill(&log);
    log.crash_for_testing();
    let mut segs: Vec<String> = fs
        .list_dir(dir)
        .expect("ls")
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "{segs:?}");
    let victim = dir.join(&segs[segs.len() / 2]);
    let mut b = fs.read_file(&victim).expect("segment");
    b[4096 + 8 * 1024..4096 + 8 * 1024 + 16].fill(0xFF);
    fs.write_file(&victim, b);
    let damaged = fs.crash_image(CrashMode::DropAll, 1);

    let clean = damaged.crash_image(CrashMode::DropAll, 1);
    let want = view(&open(&clean, RecoveryMode::TolerateAnyCorruption).expect("salvage"));
    assert!(want.1.is_some_and(|l| l < 300));
    let steps = clean.steps();
    let mut cases = 0;
    for step in 1..=steps {
        for mode in CrashMode::ALL {
            let img = damaged.crash_image(CrashMode::DropAll, 1);
            img.crash_at(step);
            if let Ok(log) = open(&img, RecoveryMode::TolerateAnyCorruption) {
                log.crash_for_testing();
            }
            let after = img.crash_image(mode, step);
            let log = open(&after, RecoveryMode::TolerateAnyCorruption)
                .unwrap_or_else(|e| panic!("step {step} {mode:?}: salvage again: {e}"));
            let got = view(&log);
            assert!(
                got == want,
                "step {step} {mode:?}: salvage again gave {:?}..{:?}",
                got.0,
                got.1
            );
            log.crash_for_testing();
            let log = open(
                &after.crash_image(CrashMode::DropAll, 1),
                RecoveryMode::TolerateTailCorruption,
            )
            .unwrap_or_else(|e| panic!("step {step} {mode:?}: default open after salvage: {e}"));
            assert!(
                view(&log) == want,
                "step {step} {mode:?}: default open differs"
            );
            cases += 1;
        }
    }
    assert!(cases > 10, "{cases} crash points");
}

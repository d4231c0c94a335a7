//! What openraft's suite never checks: state across a reopen, and across a
//! SIGKILL in the middle of appends, votes and truncations.

#![allow(clippy::result_large_err)] // openraft's StorageError

use keyval::Options;
use keyval_openraft::{open, LogStore, Request, TypeConfig};
use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn opts() -> Options {
    Options {
        segment_size: 64 << 10,
        ..Options::default()
    }
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request::Set {
            key: format!("k{index}"),
            value: format!("t{term}"),
        }),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn all_entries(log: &mut LogStore<TypeConfig>) -> Vec<Entry<TypeConfig>> {
    log.try_get_log_entries(0..).await.expect("read entries")
}

#[test]
fn vote_entries_truncation_and_purge_survive_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    rt().block_on(async {
        let (mut log, sm) = open(dir.path(), opts()).expect("open");
        log.append_entries((0..100).map(|i| entry(1, i)))
            .await
            .expect("append");
        log.save_vote(&Vote::new_committed(3, 2))
            .await
            .expect("vote");
        log.save_committed(Some(log_id(1, 60)))
            .await
            .expect("committed");
        // Conflict: entries from 80 are replaced by term 3 entries.
        log.truncate(log_id(1, 80)).await.expect("truncate");
        log.append_entries((80..90).map(|i| entry(3, i)))
            .await
            .expect("re-append");
        log.purge(log_id(1, 30)).await.expect("purge");
        log.close().expect("close log");
        sm.close().expect("close sm");

        let (mut log, _sm) = open(dir.path(), opts()).expect("reopen");
        let st = log.get_log_state().await.expect("state");
        assert_eq!(st.last_purged_log_id, Some(log_id(1, 30)));
        assert_eq!(st.last_log_id, Some(log_id(3, 89)));
        assert_eq!(
            log.read_vote().await.expect("vote"),
            Some(Vote::new_committed(3, 2))
        );
        assert_eq!(
            log.read_committed().await.expect("committed"),
            Some(log_id(1, 60))
        );
        let es = all_entries(&mut log).await;
        let ids: Vec<_> = es.iter().map(|e| e.log_id).collect();
        let want: Vec<_> = (31..80)
            .map(|i| log_id(1, i))
            .chain((80..90).map(|i| log_id(3, i)))
            .collect();
        assert_eq!(ids, want, "entries after reopen");
        assert!(log.raft_log().first_index().expect("first") >= 31);
    });
}

/// Child mode: append, vote and truncate until killed, printing each
/// acknowledged step. Run by `acknowledged_state_survives_sigkill`.
#[test]
#[ignore = "child process of acknowledged_state_survives_sigkill"]
fn child_writer() {
    let Ok(dir) = std::env::var("KEYVAL_OPENRAFT_CHILD") else {
        return;
    };
    rt().block_on(async {
        let (mut log, _sm) = open(&dir, opts()).expect("child open");
        let st = log.get_log_state().await.expect("state");
        let mut next = st.last_log_id.map_or(0, |l| l.index + 1);
        let mut term = log
            .read_vote()
            .await
            .expect("vote")
            .map_or(1, |v| v.leader_id().term);
        for step in 0u64.. {
            let n = 1 + next % 7;
            log.append_entries((next..next + n).map(|i| entry(term, i)))
                .await
                .expect("append");
            next += n;
            println!("ACK {} {} {term}", next - n, next - 1);
            if step % 4 == 3 {
                term += 1;
                log.save_vote(&Vote::new_committed(term, 1))
                    .await
                    .expect("vote");
                println!("VOTE {term}");
                // A new leader overwrites the last two entries.
                let from = next - 2;
                println!("TRUNCATING {from}");
                log.truncate(log_id(term - 1, from))
                    .await
                    .expect("truncate");
                next = from;
            }
        }
    });
}

#[test]
fn acknowledged_state_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("test binary");
    // index -> term of every acknowledged entry not since truncated.
    let mut acked: std::collections::BTreeMap<u64, u64> = Default::default();
    let mut vote = 0;
    for round in 0..3 {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KEYVAL_OPENRAFT_CHILD", dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let deadline = Instant::now() + Duration::from_millis(300 + 200 * round);
        let mut steps = 0;
        let mut killed = false;
        // Read until the deadline, SIGKILL, then drain what the child
        // printed before it died: a step is printed before a truncation
        // and after an append, so the model sees every truncation that may
        // have happened and only appends that did.
        for line in lines {
            let line = line.expect("read child");
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["ACK", lo, hi, term] => {
                    let (lo, hi, term): (u64, u64, u64) = (
                        lo.parse().unwrap(),
                        hi.parse().unwrap(),
                        term.parse().unwrap(),
                    );
                    for i in lo..=hi {
                        acked.insert(i, term);
                    }
                    steps += 1;
                }
                ["VOTE", t] => vote = t.parse().unwrap(),
                ["TRUNCATING", from] => {
                    let from: u64 = from.parse().unwrap();
                    acked.retain(|&i, _| i < from);
                }
                _ => {}
            }
            if !killed && Instant::now() > deadline && steps > 10 {
                child.kill().expect("SIGKILL");
                killed = true;
            }
        }
        if !killed {
            child.kill().expect("SIGKILL");
        }
        child.wait().expect("wait");

        rt().block_on(async {
            let (mut log, _sm) = open(dir.path(), opts()).expect("reopen after kill");
            let v = log.read_vote().await.expect("vote");
            assert!(
                v.map_or(0, |v| v.leader_id().term) >= vote,
                "round {round}: vote {v:?} older than acknowledged term {vote}"
            );
            let es = all_entries(&mut log).await;
            let got: std::collections::BTreeMap<u64, u64> = es
                .iter()
                .map(|e| (e.log_id.index, e.log_id.leader_id.term))
                .collect();
            for (i, t) in &acked {
                assert_eq!(
                    got.get(i),
                    Some(t),
                    "round {round}: acknowledged entry {i} (term {t}) lost or stale"
                );
            }
            // Anything beyond the acknowledged prefix may only be an
            // unacknowledged append in flight, never a truncated entry of
            // an older term.
            let newest = acked.values().max().copied().unwrap_or(0);
            for (i, t) in got.range(acked.keys().max().map_or(0, |m| m + 1)..) {
                assert!(
                    *t >= newest,
                    "round {round}: truncated entry {i} of term {t} came back"
                );
            }
            println!(
                "round {round}: {} entries acknowledged, {} recovered, vote term {vote}",
                acked.len(),
                got.len()
            );
            log.close().expect("close");
        });
        // The child continues from what is on disk: keep the model in sync.
        rt().block_on(async {
            let (mut log, _sm) = open(dir.path(), opts()).expect("reopen");
            let es = all_entries(&mut log).await;
            acked = es
                .iter()
                .map(|e| (e.log_id.index, e.log_id.leader_id.term))
                .collect();
            log.close().expect("close");
        });
    }
}

/// Compare-and-set applies only when the key holds the expected value
/// (or is absent, for `None`), within one apply batch and across batches,
/// and reports the value the comparison saw; the counters count purges
/// and suffix truncations.
#[test]
fn compare_and_set_and_counters() {
    use openraft::storage::RaftStateMachine;
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().expect("temp dir");
    rt().block_on(async {
        let (mut log, mut sm) = open(dir.path(), opts()).expect("open");
        let normal = |index: u64, req: Request| Entry::<TypeConfig> {
            log_id: log_id(1, index),
            payload: EntryPayload::Normal(req),
        };
        let cas = |expected: Option<&str>, value: &str| Request::CompareAndSet {
            key: "k".into(),
            expected: expected.map(str::to_string),
            value: value.into(),
        };
        let out = sm
            .apply(vec![
                normal(1, cas(Some("a"), "x")), // absent: no swap
                normal(2, cas(None, "a")),      // absent: swap
                normal(3, cas(None, "b")),      // present: no swap
                normal(4, cas(Some("a"), "c")), // swap, seen within the batch
            ])
            .await
            .expect("apply");
        let prev: Vec<_> = out.into_iter().map(|r| r.previous).collect();
        assert_eq!(prev, [None, None, Some("a".into()), Some("a".into())]);
        assert_eq!(sm.get("k").expect("get"), Some("c".into()));
        let out = sm
            .apply(vec![
                normal(5, cas(Some("a"), "d")),
                normal(6, cas(Some("c"), "e")),
            ])
            .await
            .expect("apply");
        assert_eq!(out[0].previous.as_deref(), Some("c"));
        assert_eq!(out[1].previous.as_deref(), Some("c"));
        assert_eq!(sm.get("k").expect("get"), Some("e".into()));

        log.append_entries((1..50).map(|i| entry(1, i)))
            .await
            .expect("append");
        log.truncate(log_id(1, 40)).await.expect("truncate");
        log.purge(log_id(1, 10)).await.expect("purge");
        log.purge(log_id(1, 20)).await.expect("purge");
        assert_eq!(log.counters().truncations.load(Ordering::Relaxed), 1);
        assert_eq!(log.counters().purges.load(Ordering::Relaxed), 2);
        assert_eq!(sm.counters().installed.load(Ordering::Relaxed), 0);
    });
}

//! Db::metrics: counters, latency summaries, errors, reset, Prometheus text.

mod common;

use keyval::{Db, WriteBatch};

#[test]
fn counters_latencies_errors_and_reset() {
    let dir = tempfile::tempdir().expect("step");
    let db = Db::open(dir.path(), common::small_opts()).expect("step");
    for i in 0..100u32 {
        db.set(format!("k{i:03}"), [7u8; 10]).expect("step");
    }
    db.delete("k000").expect("step");
    let mut b = WriteBatch::new();
    b.put("x", "1").delete("k001");
    db.write(b).expect("step");
    assert!(db.set("", "v").is_err()); // empty key: invalid argument
    for i in 0..50u32 {
        db.get(format!("k{i:03}")).expect("step");
    }
    db.get("missing").expect("step");
    let n = db.prefix("k").count();
    db.sync().expect("step");
    db.checkpoint().expect("step");

    let m = db.metrics().expect("step");
    assert_eq!(m.puts, 101);
    assert_eq!(m.deletes, 2);
    assert_eq!(m.writes, 103, "102 successful writes and one refused");
    assert_eq!(m.gets, 51);
    assert_eq!(
        m.get_hits, 48,
        "k000 and k001 were deleted, 'missing' is absent"
    );
    assert_eq!(m.bytes_read, 48 * 10 + n as u64 * (4 + 10));
    assert_eq!(m.scanned_pairs, n as u64);
    assert_eq!(
        m.errors.get(keyval::ErrorKind::InvalidArgument),
        1,
        "one invalid-argument error"
    );
    assert_eq!(m.errors.total(), 1);
    assert!(m.bytes_written > 101 * 14);
    assert!(
        m.fsyncs >= 102,
        "Sync durability: one fdatasync per group at least"
    );
    assert_eq!(m.checkpoints, 1);
    assert_eq!(m.write_latency.count, 103);
    // Gets are timed one in GET_SAMPLE_EVERY, the first included: gets
    // number 0 and 32 of these 51.
    assert_eq!(
        m.get_latency.count,
        51u64.div_ceil(keyval::metrics::GET_SAMPLE_EVERY)
    );
    assert_eq!(m.sync_latency.count, 1);
    assert_eq!(m.checkpoint_latency.count, 1);
    assert!(m.scan_latency.count >= 1);
    assert_eq!(m.group_size.count, m.commit_groups);
    for s in [&m.write_latency, &m.get_latency, &m.checkpoint_latency] {
        assert!(s.p50 <= s.p95 && s.p95 <= s.p99 && s.p99 <= s.max, "{s:?}");
        assert!(s.max > 0.0);
    }
    assert_eq!(m.stats.keys, 99);
    assert!(m.stats.memory_bytes > 0 && m.stats.wal_bytes > 0 && m.stats.snapshot_bytes > 0);

    db.reset_metrics().expect("step");
    let r = db.metrics().expect("step");
    assert_eq!(
        (r.puts, r.gets, r.writes, r.fsyncs, r.checkpoints),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(r.write_latency.count, 0);
    assert_eq!(r.errors.total(), 0);
    assert_eq!(r.stats.keys, 99, "gauges are not reset");
    db.set("after", "reset").expect("step");
    assert_eq!(db.metrics().expect("step").puts, 1);

    db.close().expect("step");
    assert!(db.metrics().is_err(), "closed");
}

#[test]
fn prometheus_text_is_well_formed() {
    let dir = tempfile::tempdir().expect("step");
    let db = Db::open(dir.path(), common::small_opts()).expect("step");
    db.set("a", "b").expect("step");
    db.get("a").expect("step");
    let text = db.metrics().expect("step").to_prometheus("my \"db\"");
    let mut samples = 0;
    for line in text.lines() {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP keyval_") || line.starts_with("# TYPE keyval_"),
                "{line}"
            );
            continue;
        }
        let (name, value) = line.rsplit_once(' ').expect(line);
        assert!(
            name.starts_with("keyval_") && name.contains("db=\"my \\\"db\\\"\""),
            "{line}"
        );
        value.parse::<f64>().expect(line);
        samples += 1;
    }
    assert!(samples > 30);
    assert!(text.contains("keyval_puts_total{db=\"my \\\"db\\\"\"} 1\n"));
    assert!(text
        .contains("keyval_operation_duration_seconds_count{db=\"my \\\"db\\\"\",op=\"get\"} 1\n"));
}

/// Check the exposition the way a Prometheus server would read it: every
/// family typed counter, gauge or histogram (no summaries); names in base
/// units; each histogram's buckets cumulative with increasing `le`, ending
/// in `+Inf` equal to `_count`. Returns the value of each unlabelled-by-op
/// gauge sample by name.
fn check_exposition(text: &str) -> std::collections::BTreeMap<String, f64> {
    use std::collections::BTreeMap;
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut values = BTreeMap::new();
    // (family, labels without le) -> [(le, count)], and _count values.
    let mut buckets: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<(String, String), f64> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, t) = rest.split_once(' ').expect(line);
            assert!(
                matches!(t, "counter" | "gauge" | "histogram"),
                "{name} is a {t}"
            );
            assert!(
                !name.contains("micro") && !name.contains("milli"),
                "{name}: not in base units"
            );
            if t == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
            assert!(
                types.insert(name.into(), t.into()).is_none(),
                "{name} twice"
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let value: f64 = value.parse().expect(line);
        let (name, labels) = series.split_once('{').expect(line);
        let labels = labels.strip_suffix('}').expect(line);
        if let Some(fam) = name.strip_suffix("_bucket") {
            assert_eq!(
                types.get(fam).map(String::as_str),
                Some("histogram"),
                "{line}"
            );
            let (rest, le) = labels.rsplit_once(",le=").expect(line);
            let le = le.trim_matches('"');
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect(line)
            };
            buckets
                .entry((fam.into(), rest.into()))
                .or_default()
                .push((le, value));
        } else if let Some(fam) = name
            .strip_suffix("_count")
            .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
        {
            counts.insert((fam.into(), labels.into()), value);
        } else if name.ends_with("_sum")
            && types
                .get(name.trim_end_matches("_sum"))
                .is_some_and(|t| t == "histogram")
        {
            assert!(value >= 0.0, "{line}");
        } else {
            assert!(types.contains_key(name), "{name} has no TYPE line");
            values.insert(name.to_string(), value);
        }
    }
    assert!(!buckets.is_empty());
    for (key, bs) in &buckets {
        for w in bs.windows(2) {
            assert!(w[0].0 < w[1].0, "{key:?}: le not increasing");
            assert!(w[0].1 <= w[1].1, "{key:?}: buckets not cumulative");
        }
        let last = bs.last().expect("buckets");
        assert!(last.0.is_infinite(), "{key:?}: no +Inf bucket");
        assert_eq!(Some(&last.1), counts.get(key), "{key:?}: +Inf != _count");
    }
    // A second reader: the prometheus-parse crate.
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("prometheus-parse reads it");
    assert!(parsed
        .samples
        .iter()
        .any(|s| matches!(s.value, prometheus_parse::Value::Histogram(_))));
    values
}

#[test]
fn prometheus_histograms_and_health_gauges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ffs = common::FaultyFs::new(common::Fault::Sync, i64::MAX, true);
    let db = Db::open_with_fs(
        dir.path(),
        common::small_opts(),
        std::sync::Arc::new(common::FaultyFsHandle(ffs.clone())),
    )
    .expect("open");
    for i in 0..200u32 {
        db.set(format!("k{i}"), "v").expect("set");
        db.get(format!("k{i}")).expect("get");
    }
    let text = db.metrics().expect("metrics").to_prometheus("db");
    let v = check_exposition(&text);
    assert_eq!(v["keyval_poisoned"], 0.0);
    assert_eq!(v["keyval_up"], 1.0);
    assert!(v.contains_key("keyval_recovery_duration_seconds"));
    assert!(text.contains("keyval_operation_duration_seconds_count{db=\"db\",op=\"write\"} 200\n"));
    assert!(text.contains(
        "keyval_operation_duration_seconds_bucket{db=\"db\",op=\"get\",le=\"+Inf\"} 7\n"
    ));
    // Gets are timed one in GET_SAMPLE_EVERY: 200 gets, 7 samples.
    assert_eq!(200u64.div_ceil(keyval::metrics::GET_SAMPLE_EVERY), 7);
    // An fsync fails: the store is poisoned, and the metrics say so.
    ffs.countdown.store(0, std::sync::atomic::Ordering::SeqCst);
    assert!(db.set("x", "y").is_err());
    let v = check_exposition(&db.metrics().expect("metrics").to_prometheus("db"));
    assert_eq!(v["keyval_poisoned"], 1.0);
}

/// A Raft log that lived (rotations, compaction deleting segments, suffix
/// truncation, hard states, a snapshot) counts each of those, and its
/// exposition reads like the key-value store's.
#[test]
fn raft_log_metrics() {
    use keyval::raft::{Entry, HardState, RaftLog, SnapshotMeta};
    let dir = tempfile::tempdir().expect("tempdir");
    let log = RaftLog::open(dir.path(), common::small_opts()).expect("open");
    for i in 1..=300u64 {
        log.append(&[Entry {
            index: i,
            term: 1,
            data: vec![1; 500],
        }])
        .expect("append");
    }
    log.append(&[Entry {
        index: 302,
        term: 1,
        data: vec![],
    }])
    .expect_err("a gap is refused");
    for c in [10, 20] {
        log.save_hard_state(&HardState {
            term: 1,
            vote: vec![1],
            commit: c,
        })
        .expect("hard state");
    }
    log.truncate_suffix(291).expect("suffix");
    let meta = SnapshotMeta {
        last_index: 250,
        last_term: 1,
        config: vec![],
    };
    log.save_snapshot(&meta, &mut &b"sm"[..]).expect("snapshot");
    log.truncate_prefix(250).expect("prefix");
    let m = log.metrics().expect("metrics");
    assert_eq!(m.appends, 301);
    assert_eq!(m.entries_appended, 300);
    assert_eq!(m.bytes_appended, 300 * 500);
    assert_eq!(m.errors, 1);
    assert!(m.hard_state_saves >= 2, "{m:?}");
    assert_eq!((m.truncations_suffix, m.truncations_prefix), (1, 1));
    assert_eq!(m.snapshots_saved, 1);
    assert!(m.segment_rotations >= 2, "{m:?}");
    assert!(m.segments_reclaimed >= 1, "{m:?}");
    assert!(m.fsyncs >= 300 && m.commit_groups >= 300, "{m:?}");
    assert_eq!((m.first_index, m.last_index), (251, 290));
    assert_eq!(m.append_latency.count, 301);
    assert!(!m.poisoned);
    let text = m.to_prometheus("node \"1\"");
    let v = check_exposition(&text);
    assert_eq!(v["keyval_raft_first_index"], 251.0);
    assert_eq!(v["keyval_raft_last_index"], 290.0);
    assert_eq!(v["keyval_raft_up"], 1.0);
    assert_eq!(v["keyval_raft_poisoned"], 0.0);
    assert!(
        text.contains("keyval_raft_truncations_total{log=\"node \\\"1\\\"\",side=\"prefix\"} 1\n")
    );
    assert!(text.contains(
        "keyval_raft_operation_duration_seconds_count{log=\"node \\\"1\\\"\",op=\"append\"} 301\n"
    ));
    log.close().expect("close");
    assert!(matches!(log.metrics(), Err(keyval::Error::Closed)));
}

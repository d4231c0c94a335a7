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
    assert_eq!(m.errors[3], 1, "one invalid-argument error");
    assert_eq!(m.errors.iter().sum::<u64>(), 1);
    assert!(m.bytes_written > 101 * 14);
    assert!(
        m.fsyncs >= 102,
        "Sync durability: one fdatasync per group at least"
    );
    assert_eq!(m.checkpoints, 1);
    assert_eq!(m.write_latency.count, 103);
    assert_eq!(m.get_latency.count, 51);
    assert_eq!(m.sync_latency.count, 1);
    assert_eq!(m.checkpoint_latency.count, 1);
    assert!(m.scan_latency.count >= 1);
    assert_eq!(m.group_size.count, m.commit_groups);
    for s in [&m.write_latency, &m.get_latency, &m.checkpoint_latency] {
        assert!(s.p50 <= s.p95 && s.p95 <= s.p99 && s.p99 <= s.max, "{s:?}");
        assert!(s.max > 0.0);
    }
    assert_eq!(m.keys, 99);
    assert!(m.memory_bytes > 0 && m.wal_disk_bytes > 0 && m.snapshot_disk_bytes > 0);

    db.reset_metrics().expect("step");
    let r = db.metrics().expect("step");
    assert_eq!(
        (r.puts, r.gets, r.writes, r.fsyncs, r.checkpoints),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(r.write_latency.count, 0);
    assert_eq!(r.errors, [0; 13]);
    assert_eq!(r.keys, 99, "gauges are not reset");
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

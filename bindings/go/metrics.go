package keyval

/*
#include "keyval.h"
*/
import "C"

import "unsafe"

// Summary is one distribution: latencies in microseconds, group sizes in
// writes. Percentiles are upper bounds of log-linear buckets (at most 25%
// above the true value).
type Summary struct {
	Count                    uint64
	P50, P95, P99, Max, Mean float64
}

// Metrics are a DB's operation counters and latency summaries since Open
// or the last ResetMetrics, plus current gauges. Errors is indexed by
// Status.
// GetLatency is sampled: one Get in 32 is timed (Gets counts every get).
type Metrics struct {
	Seconds                                         float64
	Puts, Deletes, Writes, Gets, GetHits, Scanned   uint64
	BytesWritten, BytesRead                         uint64
	Fsyncs, CommitGroups, Checkpoints               uint64
	GroupSize                                       Summary
	WriteLatency, GetLatency, ScanLatency           Summary
	SyncLatency, CheckpointLatency                  Summary
	Errors                                          [13]uint64
	Keys, MemoryBytes, WALDiskBytes, SnapshotBytes  uint64
	RecoveryRecordsReplayed, RecoveryTruncatedBytes uint64
	// Values kept in the WAL segments (Options.ValueSeparationThreshold):
	// how many the index points at and their bytes (gauges), the value
	// cache's bytes (gauge, at most Options.MemoryBudget), its hits and
	// misses, positioned segment reads, and bytes moved by reclaim (since
	// open).
	SeparatedValues, SeparatedBytes, ValueCacheBytes uint64
	ValueCacheHits, ValueCacheMisses, ValueReads     uint64
	ReclaimedBytes                                   uint64
}

func summary(s C.kv_summary) Summary {
	return Summary{Count: uint64(s.count), P50: float64(s.p50), P95: float64(s.p95), P99: float64(s.p99),
		Max: float64(s.max), Mean: float64(s.mean)}
}

// Metrics returns the DB's metrics. Errors: ErrClosed.
func (db *DB) Metrics() (Metrics, error) {
	var m C.kv_metrics
	m.struct_size = C.size_t(unsafe.Sizeof(m))
	if err := db.with(func(h *C.kv_db) C.kv_status { return C.kv_metrics_get(h, &m) }); err != nil {
		return Metrics{}, err
	}
	out := Metrics{
		Seconds: float64(m.seconds), Puts: uint64(m.puts), Deletes: uint64(m.deletes), Writes: uint64(m.writes),
		Gets: uint64(m.gets), GetHits: uint64(m.get_hits), Scanned: uint64(m.scanned_pairs),
		BytesWritten: uint64(m.bytes_written), BytesRead: uint64(m.bytes_read), Fsyncs: uint64(m.fsyncs),
		CommitGroups: uint64(m.commit_groups), Checkpoints: uint64(m.checkpoints),
		GroupSize: summary(m.group_size), WriteLatency: summary(m.write_latency), GetLatency: summary(m.get_latency),
		ScanLatency: summary(m.scan_latency), SyncLatency: summary(m.sync_latency),
		CheckpointLatency: summary(m.checkpoint_latency), Keys: uint64(m.keys), MemoryBytes: uint64(m.memory_bytes),
		WALDiskBytes: uint64(m.wal_disk_bytes), SnapshotBytes: uint64(m.snapshot_disk_bytes),
		RecoveryRecordsReplayed: uint64(m.recovery_records_replayed),
		RecoveryTruncatedBytes:  uint64(m.recovery_truncated_bytes),
		SeparatedValues:         uint64(m.separated_values),
		SeparatedBytes:          uint64(m.separated_bytes),
		ValueCacheBytes:         uint64(m.value_cache_bytes),
		ValueCacheHits:          uint64(m.value_cache_hits),
		ValueCacheMisses:        uint64(m.value_cache_misses),
		ValueReads:              uint64(m.value_reads),
		ReclaimedBytes:          uint64(m.reclaimed_bytes),
	}
	for i := range out.Errors {
		out.Errors[i] = uint64(m.errors[i])
	}
	return out, nil
}

// ResetMetrics zeroes the counters and summaries (gauges are kept).
// Errors: ErrClosed.
func (db *DB) ResetMetrics() error {
	return db.with(func(h *C.kv_db) C.kv_status { return C.kv_metrics_reset(h) })
}

// PrometheusMetrics returns the metrics in Prometheus text exposition
// format, labelled db="<directory>". Errors: ErrClosed.
func (db *DB) PrometheusMetrics() (string, error) {
	var text *C.char
	var n C.size_t
	var out string
	err := db.with(func(h *C.kv_db) C.kv_status {
		st := C.kv_metrics_prometheus(h, &text, &n)
		if st == C.KV_OK {
			out = C.GoStringN(text, C.int(n))
			C.kv_free(unsafe.Pointer(text))
		}
		return st
	})
	return out, err
}

package keyval

/*
#include <stdlib.h>
#include "keyval.h"
*/
import "C"

import (
	"encoding/json"
	"unsafe"
)

// RaftLatency is the latency of one Raft log operation since open, in
// microseconds (percentiles within 25%, never below the true value).
type RaftLatency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// RaftMetrics are a Raft log's counters since open (appends, truncations,
// compaction, fsyncs), its gauges (bounds, WAL files) and its operation
// latencies. See RaftLog.Metrics.
type RaftMetrics struct {
	Seconds                 float64     `json:"seconds"`
	Appends                 uint64      `json:"appends"`
	EntriesAppended         uint64      `json:"entries_appended"`
	BytesAppended           uint64      `json:"bytes_appended"`
	HardStateSaves          uint64      `json:"hard_state_saves"`
	TruncationsSuffix       uint64      `json:"truncations_suffix"`
	TruncationsPrefix       uint64      `json:"truncations_prefix"`
	SegmentRotations        uint64      `json:"segment_rotations"`
	SegmentsReclaimed       uint64      `json:"segments_reclaimed"`
	SnapshotsSaved          uint64      `json:"snapshots_saved"`
	Fsyncs                  uint64      `json:"fsyncs"`
	CommitGroups            uint64      `json:"commit_groups"`
	Errors                  uint64      `json:"errors"`
	FirstIndex              uint64      `json:"first_index"`
	LastIndex               uint64      `json:"last_index"` // 0: no entry
	WALSegments             uint64      `json:"wal_segments"`
	WALDiskBytes            uint64      `json:"wal_disk_bytes"`
	RecoveryMicros          uint64      `json:"recovery_micros"`
	RecoveryRecordsReplayed uint64      `json:"recovery_records_replayed"`
	Poisoned                bool        `json:"poisoned"`
	AppendLatency           RaftLatency `json:"append_latency"`
	HardStateLatency        RaftLatency `json:"hard_state_latency"`
	TruncateLatency         RaftLatency `json:"truncate_latency"`
	SnapshotLatency         RaftLatency `json:"snapshot_latency"`
}

// Metrics returns the log's metrics (kv_raft_metrics_json). Errors:
// ErrClosed.
func (l *RaftLog) Metrics() (RaftMetrics, error) {
	var m RaftMetrics
	var raw []byte
	err := l.with(func(h *C.kv_raft) C.kv_status {
		var text *C.char
		var n C.size_t
		st := C.kv_raft_metrics_json(h, &text, &n)
		if st == C.KV_OK {
			raw = C.GoBytes(unsafe.Pointer(text), C.int(n))
			C.kv_free(unsafe.Pointer(text))
		}
		return st
	})
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(raw, &m)
}

// PrometheusMetrics returns the log's metrics in Prometheus text
// exposition format, names starting keyval_raft_, every sample labelled
// log="<label>" (the directory path if label is empty). Errors: ErrClosed.
func (l *RaftLog) PrometheusMetrics(label string) (string, error) {
	var out string
	err := l.with(func(h *C.kv_raft) C.kv_status {
		var cl *C.char
		if label != "" {
			cl = C.CString(label)
			defer C.free(unsafe.Pointer(cl))
		}
		var text *C.char
		var n C.size_t
		st := C.kv_raft_metrics_prometheus(h, cl, &text, &n)
		if st == C.KV_OK {
			out = C.GoStringN(text, C.int(n))
			C.kv_free(unsafe.Pointer(text))
		}
		return st
	})
	return out, err
}

package keyval

/*
#include "keyval.h"
*/
import "C"

import "unsafe"

// Stats is a point-in-time summary of a DB. Sizes are in bytes.
type Stats struct {
	Keys, KeyBytes, ValueBytes, MemoryBytes        uint64
	WALSegments, WALBytes, WALBytesSinceCheckpoint uint64
	Snapshots, SnapshotBytes, DiskBytes            uint64
	LastLSN, SyncedLSN, SnapshotLSN                uint64
	Writes, CommitGroups, Fsyncs, Checkpoints      uint64
	Keyspaces, Collections                         uint64 // collections' keyspaces counted in Keyspaces
	Poisoned                                       bool
	Recovery                                       RecoveryStats
}

// RecoveryStats are the facts of the last recovery (at Open).
type RecoveryStats struct {
	SnapshotLSN, SnapshotsRejected  uint64
	RecordsReplayed, BytesReplayed  uint64
	Truncated                       bool
	TruncatedBytes, TruncatedOffset uint64
	RecordsSkipped, Micros          uint64
	// Salvage (RecoveryTolerateAnyCorruption): damaged bytes skipped and WAL segments the
	// log names but that were missing; then what was read.
	BytesSkipped, SegmentsMissing    uint64
	SegmentsScanned, SegmentsSkipped uint64
	SnapshotEntries, LastLSN         uint64
}

// Stats returns the DB's statistics. Errors: ErrClosed.
func (db *DB) Stats() (Stats, error) {
	var s C.kv_stats
	s.struct_size = C.size_t(unsafe.Sizeof(s))
	err := db.with(func(h *C.kv_db) C.kv_status { return C.kv_stats_get(h, &s) })
	if err != nil {
		return Stats{}, err
	}
	return Stats{
		Keys: uint64(s.keys), KeyBytes: uint64(s.key_bytes), ValueBytes: uint64(s.value_bytes),
		MemoryBytes: uint64(s.memory_bytes), WALSegments: uint64(s.wal_segments), WALBytes: uint64(s.wal_bytes),
		WALBytesSinceCheckpoint: uint64(s.wal_bytes_since_checkpoint), Snapshots: uint64(s.snapshots),
		SnapshotBytes: uint64(s.snapshot_bytes), DiskBytes: uint64(s.disk_bytes), LastLSN: uint64(s.last_lsn),
		SyncedLSN: uint64(s.synced_lsn), SnapshotLSN: uint64(s.snapshot_lsn), Writes: uint64(s.writes),
		CommitGroups: uint64(s.commit_groups), Fsyncs: uint64(s.fsyncs), Checkpoints: uint64(s.checkpoints),
		Keyspaces: uint64(s.keyspaces), Collections: uint64(s.collections),
		Poisoned: s.poisoned != 0,
		Recovery: RecoveryStats{
			SnapshotLSN: uint64(s.recovery_snapshot_lsn), SnapshotsRejected: uint64(s.recovery_snapshots_rejected),
			RecordsReplayed: uint64(s.recovery_records_replayed), BytesReplayed: uint64(s.recovery_bytes_replayed),
			Truncated: s.recovery_truncated != 0, TruncatedBytes: uint64(s.recovery_truncated_bytes),
			TruncatedOffset: uint64(s.recovery_truncated_offset), RecordsSkipped: uint64(s.recovery_records_skipped),
			Micros:       uint64(s.recovery_micros),
			BytesSkipped: uint64(s.recovery_bytes_skipped), SegmentsMissing: uint64(s.recovery_segments_missing),
			SegmentsScanned: uint64(s.recovery_segments_scanned), SegmentsSkipped: uint64(s.recovery_segments_skipped),
			SnapshotEntries: uint64(s.recovery_snapshot_entries), LastLSN: uint64(s.recovery_last_lsn),
		},
	}, nil
}

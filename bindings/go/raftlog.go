package keyval

/*
#include <stdlib.h>
#include "keyval.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// Entry is one Raft log entry.
type Entry struct {
	Index uint64 // log index
	Term  uint64 // term in which the entry was created
	Data  []byte // opaque payload
}

// HardState is Raft's durable hard state. Vote is opaque bytes (empty: no
// vote), so any Raft implementation can store its own vote type.
type HardState struct {
	Term   uint64
	Vote   []byte
	Commit uint64
}

// SnapshotMeta describes a Raft snapshot: the index and term of the last
// entry it covers and opaque configuration (membership) bytes.
type SnapshotMeta struct {
	LastIndex uint64
	LastTerm  uint64
	Config    []byte
}

// RaftLog is a durable Raft log store (kv_raft in the C ABI): entries,
// hard state, prefix and suffix truncation and snapshots, in a directory
// of its own. Safe for concurrent use; concurrent appenders share fsyncs.
// Methods called after Close return ErrClosed.
type RaftLog struct {
	mu      sync.RWMutex
	h       *C.kv_raft
	cleanup runtime.Cleanup
}

// OpenRaftLog opens (creating if allowed, then recovering) the Raft log in
// dir. The durability must be DurabilitySync (the default) or
// DurabilityOS. Errors: ErrLocked, ErrCorruption, ErrInvalidArgument
// (including DurabilityBuffered), ErrIO.
func OpenRaftLog(dir string, opts ...Option) (*RaftLog, error) {
	o := buildOptions(opts)
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	var h *C.kv_raft
	if err := call(func() C.kv_status { return C.kv_raft_open(cdir, &o, &h) }); err != nil {
		return nil, err
	}
	l := &RaftLog{h: h}
	l.cleanup = runtime.AddCleanup(l, func(h *C.kv_raft) { C.kv_raft_close(h) }, h)
	return l, nil
}

// Close syncs and releases the directory. Closing twice is a no-op.
// Errors: ErrPoisoned, ErrIO (resources are released all the same).
func (l *RaftLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h == nil {
		return nil
	}
	l.cleanup.Stop()
	h := l.h
	l.h = nil
	return call(func() C.kv_status { return C.kv_raft_close(h) })
}

func (l *RaftLog) with(f func(h *C.kv_raft) C.kv_status) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.h == nil {
		return ErrClosed
	}
	h := l.h
	return call(func() C.kv_status { return f(h) })
}

// Append appends entries, whose indexes must be consecutive and continue
// the log (any index, 0 included, for a new log). Durable on return. Errors:
// ErrInvalidArgument (not contiguous, payload too large), ErrClosed,
// ErrPoisoned, ErrIO.
func (l *RaftLog) Append(entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	for i := range entries {
		if entries[i].Index != entries[0].Index+uint64(i) {
			return newError(StatusInvalidArgument, "entry indexes are not consecutive")
		}
	}
	terms := make([]uint64, len(entries))
	lens := make([]C.size_t, len(entries))
	total := 0
	for i := range entries {
		total += len(entries[i].Data)
	}
	data := make([]byte, 0, total)
	for i, e := range entries {
		terms[i] = e.Term
		lens[i] = C.size_t(len(e.Data))
		data = append(data, e.Data...)
	}
	return l.with(func(h *C.kv_raft) C.kv_status {
		dp, dl := bytesPtr(data)
		return C.kv_raft_append_packed(h, C.uint64_t(entries[0].Index), C.size_t(len(entries)),
			(*C.uint64_t)(unsafe.Pointer(&terms[0])), &lens[0], dp, dl)
	})
}

// Entry returns the entry at index. Errors: ErrCompacted (below the first
// index), ErrOutOfRange (beyond the last), ErrCorruption, ErrIO, ErrClosed.
func (l *RaftLog) Entry(index uint64) (Entry, error) {
	e := Entry{Index: index}
	err := l.with(func(h *C.kv_raft) C.kv_status {
		var term C.uint64_t
		var p *C.uint8_t
		var n C.size_t
		st := C.kv_raft_entry_get(h, C.uint64_t(index), &term, &p, &n)
		if st == C.KV_OK {
			e.Term = uint64(term)
			e.Data = C.GoBytes(unsafe.Pointer(p), C.int(n))
			C.kv_free(unsafe.Pointer(p))
		}
		return st
	})
	return e, err
}

// Entries returns the entries with lo <= index < hi, stopping after the
// entry that brings the payload total to maxBytes (at least one entry when
// lo < hi). Errors: as Entry.
func (l *RaftLog) Entries(lo, hi, maxBytes uint64) ([]Entry, error) {
	var out []Entry
	err := l.with(func(h *C.kv_raft) C.kv_status {
		var arr *C.kv_raft_entry
		var n C.size_t
		st := C.kv_raft_entries(h, C.uint64_t(lo), C.uint64_t(hi), C.uint64_t(maxBytes), &arr, &n)
		if st != C.KV_OK || n == 0 {
			return st
		}
		es := unsafe.Slice(arr, int(n))
		out = make([]Entry, len(es))
		for i, e := range es {
			out[i] = Entry{Index: uint64(e.index), Term: uint64(e.term),
				Data: C.GoBytes(unsafe.Pointer(e.data), C.int(e.data_len))}
		}
		C.kv_free(unsafe.Pointer(arr))
		return st
	})
	return out, err
}

// Term returns the term of the entry at index (no disk access). Errors:
// ErrCompacted, ErrOutOfRange, ErrClosed.
func (l *RaftLog) Term(index uint64) (uint64, error) {
	var t C.uint64_t
	err := l.with(func(h *C.kv_raft) C.kv_status { return C.kv_raft_term(h, C.uint64_t(index), &t) })
	return uint64(t), err
}

// Bounds returns the first index held (1 for a new log; after compaction
// the index after the last purged one) and the last index. An empty log
// has last == first-1. Errors: ErrClosed.
func (l *RaftLog) Bounds() (first, last uint64, err error) {
	var f, la C.uint64_t
	err = l.with(func(h *C.kv_raft) C.kv_status { return C.kv_raft_bounds(h, &f, &la) })
	return uint64(f), uint64(la), err
}

// LastPurged returns the index and term of the last entry removed by
// TruncatePrefix (term 0 if it was not in the log). Errors: ErrNotFound
// (nothing purged yet), ErrClosed.
func (l *RaftLog) LastPurged() (index, term uint64, err error) {
	var i, t C.uint64_t
	err = l.with(func(h *C.kv_raft) C.kv_status { return C.kv_raft_last_purged(h, &i, &t) })
	return uint64(i), uint64(t), err
}

// TruncateSuffix removes every entry with index >= from, durably (Raft
// conflict resolution). Errors: ErrClosed, ErrPoisoned, ErrIO.
func (l *RaftLog) TruncateSuffix(from uint64) error {
	return l.with(func(h *C.kv_raft) C.kv_status { return C.kv_raft_truncate_suffix(h, C.uint64_t(from)) })
}

// TruncatePrefix removes every entry with index <= upto (compaction after a
// snapshot), durably, and deletes WAL segments no longer needed. The first
// index becomes upto+1, even beyond the end. Errors: as TruncateSuffix.
func (l *RaftLog) TruncatePrefix(upto uint64) error {
	return l.with(func(h *C.kv_raft) C.kv_status { return C.kv_raft_truncate_prefix(h, C.uint64_t(upto)) })
}

// Backup copies the log (entries, hard state, truncations, snapshot) into
// the new directory dest while appends go on, and returns the last
// sequence number copied; dest opens with OpenRaftLog. Same staging and
// crash rules as DB.Backup. Errors: ErrInvalidArgument (dest exists, its
// parent is missing), ErrCorruption (the snapshot fails its checksum),
// ErrClosed, ErrPoisoned, ErrIO.
func (l *RaftLog) Backup(dest string) (uint64, error) {
	cdest := C.CString(dest)
	defer C.free(unsafe.Pointer(cdest))
	var lsn C.uint64_t
	err := l.with(func(h *C.kv_raft) C.kv_status { return C.kv_raft_backup(h, cdest, &lsn) })
	return uint64(lsn), err
}

// SaveHardState saves the hard state durably. Errors: ErrClosed,
// ErrPoisoned, ErrIO.
func (l *RaftLog) SaveHardState(hs HardState) error {
	return l.with(func(h *C.kv_raft) C.kv_status {
		vp, vl := bytesPtr(hs.Vote)
		return C.kv_raft_save_hard_state(h, C.uint64_t(hs.Term), vp, vl, C.uint64_t(hs.Commit))
	})
}

// HardState returns the last saved hard state. Errors: ErrNotFound (never
// saved), ErrClosed.
func (l *RaftLog) HardState() (HardState, error) {
	var hs HardState
	err := l.with(func(h *C.kv_raft) C.kv_status {
		var term, commit C.uint64_t
		var p *C.uint8_t
		var n C.size_t
		st := C.kv_raft_hard_state(h, &term, &p, &n, &commit)
		if st == C.KV_OK {
			hs = HardState{Term: uint64(term), Commit: uint64(commit),
				Vote: C.GoBytes(unsafe.Pointer(p), C.int(n))}
			C.kv_free(unsafe.Pointer(p))
		}
		return st
	})
	return hs, err
}

// SaveSnapshot saves a snapshot atomically (temporary file with a SHA-256
// trailer, fsync, rename, directory fsync). It does not truncate the log.
// Errors: ErrClosed, ErrPoisoned, ErrIO (the previous snapshot stays).
func (l *RaftLog) SaveSnapshot(meta SnapshotMeta, data []byte) error {
	return l.with(func(h *C.kv_raft) C.kv_status {
		cp, cl := bytesPtr(meta.Config)
		dp, dl := bytesPtr(data)
		return C.kv_raft_save_snapshot(h, C.uint64_t(meta.LastIndex), C.uint64_t(meta.LastTerm), cp, cl, dp, dl)
	})
}

// Snapshot returns the latest snapshot, verified against its SHA-256.
// Errors: ErrNotFound (none saved), ErrCorruption, ErrIO, ErrClosed.
func (l *RaftLog) Snapshot() (SnapshotMeta, []byte, error) {
	var meta SnapshotMeta
	var data []byte
	err := l.with(func(h *C.kv_raft) C.kv_status {
		var li, lt C.uint64_t
		var cp, dp *C.uint8_t
		var cl, dl C.size_t
		st := C.kv_raft_snapshot(h, &li, &lt, &cp, &cl, &dp, &dl)
		if st == C.KV_OK {
			meta = SnapshotMeta{LastIndex: uint64(li), LastTerm: uint64(lt),
				Config: C.GoBytes(unsafe.Pointer(cp), C.int(cl))}
			data = C.GoBytes(unsafe.Pointer(dp), C.int(dl))
			C.kv_free(unsafe.Pointer(cp))
			C.kv_free(unsafe.Pointer(dp))
		}
		return st
	})
	return meta, data, err
}

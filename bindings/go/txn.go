package keyval

/*
#include "keyval.h"
*/
import "C"

import (
	"math/rand/v2"
	"runtime"
	"time"
	"unsafe"
)

// Snapshot is a read view of the DB fixed at one moment: its reads see
// exactly the writes applied before it was taken, in every keyspace,
// however long it is kept (bbolt's read-only transaction, without a lock:
// writers never wait for it). Taking one is O(1); while it lives, values
// it can see that are overwritten or deleted stay in memory, so Close it
// when done (DB.View does). Safe for concurrent use.
type Snapshot struct {
	h       *C.kv_snapshot
	cleanup runtime.Cleanup
}

func newSnapshot(h *C.kv_snapshot) *Snapshot {
	s := &Snapshot{h: h}
	s.cleanup = runtime.AddCleanup(s, func(h *C.kv_snapshot) { C.kv_snapshot_free(h) }, h)
	return s
}

// Snapshot takes a snapshot whose reads address the default keyspace.
// Errors: ErrClosed.
func (db *DB) Snapshot() (*Snapshot, error) {
	var h *C.kv_snapshot
	if err := db.with(func(d *C.kv_db) C.kv_status { return C.kv_snapshot_open(d, &h) }); err != nil {
		return nil, err
	}
	return newSnapshot(h), nil
}

// View runs fn on a snapshot and closes it, as bbolt's DB.View; it returns
// fn's error.
func (db *DB) View(fn func(s *Snapshot) error) error {
	s, err := db.Snapshot()
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

func (s *Snapshot) call(f func(h *C.kv_snapshot) C.kv_status) error {
	defer runtime.KeepAlive(s)
	if s.h == nil {
		return ErrClosed
	}
	return call(func() C.kv_status { return f(s.h) })
}

// Keyspace returns a view of keyspace k at the same moment (Close it
// too). Errors: ErrNotFound (k did not exist then), ErrInvalidArgument (k
// of another DB), ErrClosed, ErrSnapshotExpired.
func (s *Snapshot) Keyspace(k *Keyspace) (*Snapshot, error) {
	defer runtime.KeepAlive(k)
	var h *C.kv_snapshot
	if err := s.call(func(sh *C.kv_snapshot) C.kv_status { return C.kv_snapshot_keyspace(sh, k.h, &h) }); err != nil {
		return nil, err
	}
	return newSnapshot(h), nil
}

// LSN is the sequence number of the last write the snapshot sees.
func (s *Snapshot) LSN() uint64 {
	var n C.uint64_t
	_ = s.call(func(h *C.kv_snapshot) C.kv_status { return C.kv_snapshot_lsn(h, &n) })
	return uint64(n)
}

// Get returns a copy of key's value at the snapshot. Errors: ErrNotFound,
// ErrInvalidArgument, ErrClosed, ErrSnapshotExpired.
func (s *Snapshot) Get(key []byte) ([]byte, error) {
	var out []byte
	err := s.call(func(h *C.kv_snapshot) C.kv_status {
		kp, kl := keyPtr(key)
		var v *C.uint8_t
		var n C.size_t
		st := C.kv_snapshot_get(h, kp, kl, &v, &n)
		if st == C.KV_OK {
			out = C.GoBytes(unsafe.Pointer(v), C.int(n))
			C.kv_free(unsafe.Pointer(v))
		}
		return st
	})
	return out, err
}

// GetMany returns the values of keys at the snapshot in one cgo call (nil
// for an absent key), as Keyspace.GetMany.
func (s *Snapshot) GetMany(keys [][]byte) ([][]byte, error) {
	if len(keys) == 0 {
		return [][]byte{}, s.call(func(*C.kv_snapshot) C.kv_status { return C.KV_OK })
	}
	packed, lens := packKeys(keys)
	var out [][]byte
	err := s.call(func(h *C.kv_snapshot) C.kv_status {
		var arr *C.kv_value
		kp, _ := bytesPtr(packed)
		st := C.kv_snapshot_get_many(h, kp, &lens[0], C.size_t(len(keys)), &arr)
		if st == C.KV_OK {
			out = unpackValues(arr, len(keys))
		}
		return st
	})
	return out, err
}

// Has reports whether key is present at the snapshot.
func (s *Snapshot) Has(key []byte) (bool, error) {
	var has C.int32_t
	err := s.call(func(h *C.kv_snapshot) C.kv_status {
		kp, kl := keyPtr(key)
		return C.kv_snapshot_contains(h, kp, kl, &has)
	})
	return has != 0, err
}

// Len is the number of keys at the snapshot (O(1)).
func (s *Snapshot) Len() (uint64, error) {
	var n C.uint64_t
	err := s.call(func(h *C.kv_snapshot) C.kv_status { return C.kv_snapshot_len(h, &n) })
	return uint64(n), err
}

// NewIterator iterates over the snapshot (opts as for DB.NewIterator; nil
// for every key). The iterator holds the snapshot: it stays valid after
// Close.
func (s *Snapshot) NewIterator(opts *IterOptions) (*Iterator, error) {
	if opts == nil {
		opts = &IterOptions{}
	}
	start, end := opts.Start, opts.End
	if opts.Prefix != nil {
		start, end = opts.Prefix, prefixEnd(opts.Prefix)
	}
	var ih *C.kv_iter
	err := s.call(func(h *C.kv_snapshot) C.kv_status {
		sp, sl := bytesPtr(start)
		if start != nil {
			sp, sl = keyPtr(start)
		}
		ep, el := bytesPtr(end)
		if end != nil {
			ep, el = keyPtr(end)
		}
		return C.kv_snapshot_iter_range(h, sp, sl, ep, el, &ih)
	})
	if err != nil {
		return nil, err
	}
	return wrapIterator(ih), nil
}

// prefixEnd is the smallest key after every key starting with p, or nil
// (unbounded) when there is none.
func prefixEnd(p []byte) []byte {
	e := append([]byte(nil), p...)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] != 0xFF {
			e[i]++
			return e[:i+1]
		}
	}
	return nil
}

// Close releases the snapshot (what only it held is freed); safe to call
// twice.
func (s *Snapshot) Close() {
	if s.h != nil {
		s.cleanup.Stop()
		C.kv_snapshot_free(s.h)
		s.h = nil
	}
}

// Tx is a serializable read-write transaction (optimistic): it reads one
// snapshot plus its own writes and buffers its writes; Commit applies them
// all or none, in one WAL record across keyspaces, if and only if no other
// commit since its snapshot wrote a key it read or a key inside a range it
// read (else ErrConflict, nothing written). Concurrent transactions never
// wait for each other and share fsyncs. Use DB.Update, which retries on
// conflict, as in bbolt. Not safe for concurrent use.
type Tx struct {
	h       *C.kv_txn
	cleanup runtime.Cleanup
}

// Begin starts a transaction committed at the store's durability.
// Errors: ErrClosed, ErrPoisoned, ErrInvalidArgument (read-only store).
func (db *DB) Begin() (*Tx, error) { return db.begin(-1) }

// BeginWith starts a transaction committed at durability d.
func (db *DB) BeginWith(d Durability) (*Tx, error) { return db.begin(int(d)) }

func (db *DB) begin(d int) (*Tx, error) {
	var h *C.kv_txn
	err := db.with(func(dh *C.kv_db) C.kv_status {
		if d < 0 {
			return C.kv_txn_begin(dh, &h)
		}
		return C.kv_txn_begin_with(dh, C.uint32_t(d), &h)
	})
	if err != nil {
		return nil, err
	}
	tx := &Tx{h: h}
	tx.cleanup = runtime.AddCleanup(tx, func(h *C.kv_txn) { C.kv_txn_abort(h) }, h)
	return tx, nil
}

// UpdateMaxAttempts is how many times DB.Update runs fn before it returns
// ErrConflict.
const UpdateMaxAttempts = 100

// Update runs fn in a transaction and commits it, as bbolt's DB.Update:
// if fn returns an error nothing is written and the error is returned; if
// the commit conflicts, fn runs again in a new transaction after a short
// random pause (at most UpdateMaxAttempts times). fn must do nothing
// outside the transaction that cannot be repeated.
func (db *DB) Update(fn func(tx *Tx) error) error {
	var err error
	for attempt := 1; attempt <= UpdateMaxAttempts; attempt++ {
		var tx *Tx
		if tx, err = db.Begin(); err != nil {
			return err
		}
		if err = fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		if err = tx.Commit(); err == nil || !isConflict(err) {
			return err
		}
		time.Sleep(time.Duration(rand.Int64N(int64(1)<<min(attempt, 10))+1) * time.Microsecond)
	}
	return err
}

func isConflict(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Code == StatusConflict
}

func (tx *Tx) call(k *Keyspace, f func(h *C.kv_txn, ks *C.kv_keyspace) C.kv_status) error {
	defer runtime.KeepAlive(tx)
	defer runtime.KeepAlive(k)
	if tx.h == nil {
		return newError(StatusInvalidArgument, "the transaction is finished")
	}
	var ks *C.kv_keyspace
	if k != nil {
		ks = k.h
	}
	return call(func() C.kv_status { return f(tx.h, ks) })
}

// Get returns key's value in the default keyspace: the transaction's own
// write, or its snapshot's. Errors: ErrNotFound, ErrInvalidArgument,
// ErrClosed, ErrSnapshotExpired.
func (tx *Tx) Get(key []byte) ([]byte, error) { return tx.GetIn(nil, key) }

// GetIn is Get in keyspace k (nil: the default keyspace).
func (tx *Tx) GetIn(k *Keyspace, key []byte) ([]byte, error) {
	var out []byte
	err := tx.call(k, func(h *C.kv_txn, ks *C.kv_keyspace) C.kv_status {
		kp, kl := keyPtr(key)
		var v *C.uint8_t
		var n C.size_t
		st := C.kv_txn_get(h, ks, kp, kl, &v, &n)
		if st == C.KV_OK {
			out = C.GoBytes(unsafe.Pointer(v), C.int(n))
			C.kv_free(unsafe.Pointer(v))
		}
		return st
	})
	return out, err
}

// GetMany returns the values of keys in the default keyspace in one cgo
// call (nil for an absent key); every key is recorded as read.
func (tx *Tx) GetMany(keys [][]byte) ([][]byte, error) { return tx.GetManyIn(nil, keys) }

// GetManyIn is GetMany in keyspace k (nil: default).
func (tx *Tx) GetManyIn(k *Keyspace, keys [][]byte) ([][]byte, error) {
	if len(keys) == 0 {
		return [][]byte{}, nil
	}
	packed, lens := packKeys(keys)
	var out [][]byte
	err := tx.call(k, func(h *C.kv_txn, ks *C.kv_keyspace) C.kv_status {
		var arr *C.kv_value
		kp, _ := bytesPtr(packed)
		st := C.kv_txn_get_many(h, ks, kp, &lens[0], C.size_t(len(keys)), &arr)
		if st == C.KV_OK {
			out = unpackValues(arr, len(keys))
		}
		return st
	})
	return out, err
}

// Set sets key to value in the default keyspace when the transaction
// commits. Errors: ErrInvalidArgument, ErrClosed.
func (tx *Tx) Set(key, value []byte) error { return tx.SetIn(nil, key, value) }

// SetIn is Set in keyspace k (nil: default).
func (tx *Tx) SetIn(k *Keyspace, key, value []byte) error {
	return tx.call(k, func(h *C.kv_txn, ks *C.kv_keyspace) C.kv_status {
		kp, kl := keyPtr(key)
		vp, vl := bytesPtr(value)
		return C.kv_txn_put(h, ks, kp, kl, vp, vl)
	})
}

// Delete deletes key in the default keyspace when the transaction commits.
func (tx *Tx) Delete(key []byte) error { return tx.DeleteIn(nil, key) }

// DeleteIn is Delete in keyspace k (nil: default).
func (tx *Tx) DeleteIn(k *Keyspace, key []byte) error {
	return tx.call(k, func(h *C.kv_txn, ks *C.kv_keyspace) C.kv_status {
		kp, kl := keyPtr(key)
		return C.kv_txn_delete(h, ks, kp, kl)
	})
}

// Range returns an iterator over the pairs of keyspace k (nil: default)
// selected by opts (as DB.NewIterator), own writes included, in key order
// or descending if reverse, at most limit pairs (0: all). The range is
// recorded as read: a commit conflicts if another commit since the
// snapshot added, changed or removed a key in it (up to the last pair
// returned when limit cut it short). The iterator moves forward only.
func (tx *Tx) Range(k *Keyspace, opts *IterOptions, reverse bool, limit int) (*Iterator, error) {
	if opts == nil {
		opts = &IterOptions{}
	}
	start, end := opts.Start, opts.End
	if opts.Prefix != nil {
		start, end = opts.Prefix, prefixEnd(opts.Prefix)
	}
	rev := C.int32_t(0)
	if reverse {
		rev = 1
	}
	var ih *C.kv_iter
	err := tx.call(k, func(h *C.kv_txn, ks *C.kv_keyspace) C.kv_status {
		sp, sl := bytesPtr(start)
		if start != nil {
			sp, sl = keyPtr(start)
		}
		ep, el := bytesPtr(end)
		if end != nil {
			ep, el = keyPtr(end)
		}
		return C.kv_txn_iter_range(h, ks, sp, sl, ep, el, rev, C.size_t(limit), &ih)
	})
	if err != nil {
		return nil, err
	}
	return wrapIterator(ih), nil
}

// Commit applies the transaction's writes atomically and frees it.
// Errors: ErrConflict (nothing written; run it again), ErrNotFound (a
// keyspace it writes was dropped), ErrClosed, ErrPoisoned, ErrIO.
func (tx *Tx) Commit() error {
	if tx.h == nil {
		return newError(StatusInvalidArgument, "the transaction is finished")
	}
	tx.cleanup.Stop()
	h := tx.h
	tx.h = nil
	return call(func() C.kv_status { return C.kv_txn_commit(h) })
}

// Rollback discards the transaction's writes; safe after Commit and twice.
func (tx *Tx) Rollback() {
	if tx.h != nil {
		tx.cleanup.Stop()
		C.kv_txn_abort(tx.h)
		tx.h = nil
	}
}

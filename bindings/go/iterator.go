package keyval

/*
#include "keyval.h"
*/
import "C"

import (
	"iter"
	"runtime"
	"unsafe"
)

// IterOptions selects the keys an Iterator visits: those starting with
// Prefix if it is non-nil, else those k with Start <= k < End (nil Start:
// from the first key; nil End: to the last).
type IterOptions struct {
	Prefix []byte
	Start  []byte
	End    []byte
}

// Iterator visits keys in increasing order. It holds no lock: writes made
// while it runs may or may not be seen, each key comes at most once. Not
// safe for concurrent use; Close it when done.
//
//	it, err := db.NewIterator(&keyval.IterOptions{Prefix: []byte("user:")})
//	for it.Next() { use(it.Key(), it.Value()) }
//	err = it.Err(); it.Close()
type Iterator struct {
	db         *DB
	h          *C.kv_iter
	cleanup    runtime.Cleanup
	started    bool
	key, value []byte
	err        error
}

// NewIterator creates an iterator (opts may be nil for every key). Errors:
// ErrClosed.
func (db *DB) NewIterator(opts *IterOptions) (*Iterator, error) { return db.def.NewIterator(opts) }

// newIterator creates an iterator with open, given the prefix (prefix
// true, in sp/sl) or the range bounds of opts as C arguments.
func newIterator(db *DB, opts *IterOptions, open func(h *C.kv_db, prefix bool, sp *C.uint8_t, sl C.size_t, ep *C.uint8_t, el C.size_t, out **C.kv_iter) C.kv_status) (*Iterator, error) {
	if opts == nil {
		opts = &IterOptions{}
	}
	it := &Iterator{db: db}
	// A local, not &it.h: cgo checks the whole allocation behind a pointer
	// it cannot see is a field, and *it holds Go pointers.
	var ih *C.kv_iter
	err := db.with(func(h *C.kv_db) C.kv_status {
		if opts.Prefix != nil {
			pp, pl := bytesPtr(opts.Prefix)
			return open(h, true, pp, pl, nil, 0, &ih)
		}
		// A nil bound is NULL (unbounded); an empty, non-nil one is not.
		sp, sl := bytesPtr(opts.Start)
		if opts.Start != nil {
			sp, sl = keyPtr(opts.Start)
		}
		ep, el := bytesPtr(opts.End)
		if opts.End != nil {
			ep, el = keyPtr(opts.End)
		}
		return open(h, false, sp, sl, ep, el, &ih)
	})
	if err != nil {
		return nil, err
	}
	it.h = ih
	// Safety net only: an iterator dropped without Close is freed when
	// collected.
	it.cleanup = runtime.AddCleanup(it, func(h *C.kv_iter) { C.kv_iter_free(h) }, it.h)
	return it, nil
}

// Next moves to the next pair (the first on the first call) and reports
// whether there is one. After false, check Err.
func (it *Iterator) Next() bool {
	if it.h == nil || it.err != nil {
		return false
	}
	if it.started {
		if err := call(func() C.kv_status { return C.kv_iter_next(it.h) }); err != nil {
			it.err = err
			return false
		}
	}
	it.started = true
	if C.kv_iter_valid(it.h) == 0 {
		return false
	}
	var p *C.uint8_t
	var n C.size_t
	C.kv_iter_key(it.h, &p, &n)
	it.key = C.GoBytes(unsafe.Pointer(p), C.int(n))
	C.kv_iter_value(it.h, &p, &n)
	it.value = C.GoBytes(unsafe.Pointer(p), C.int(n))
	return true
}

// Key returns the current key (a copy the caller owns).
func (it *Iterator) Key() []byte { return it.key }

// Value returns the current value (a copy the caller owns).
func (it *Iterator) Value() []byte { return it.value }

// Err returns the error that stopped iteration, if any (ErrClosed when the
// DB was closed meanwhile).
func (it *Iterator) Err() error { return it.err }

// Close releases the iterator; safe to call twice. It returns the error
// that stopped iteration, if any (as Err), so that `defer it.Close()` and
// `return it.Close()` both work.
func (it *Iterator) Close() error {
	if it.h != nil {
		it.cleanup.Stop()
		C.kv_iter_free(it.h)
		it.h = nil
	}
	return it.err
}

// All returns the remaining pairs as a Go 1.23 range-over-func sequence:
//
//	it, err := db.NewIterator(nil)
//	if err != nil { return err }
//	defer it.Close()
//	for k, v := range it.All() { use(k, v) }
//	return it.Err()
//
// Keys and values are copies the caller owns. Iteration stops at the end
// or at an error, which Err then reports.
func (it *Iterator) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for it.Next() {
			if !yield(it.Key(), it.Value()) {
				return
			}
		}
	}
}

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

// Iterator visits keys in increasing order (Next), or backwards (Prev,
// Last, SeekForPrev). It reads one snapshot, taken when it was created: it
// sees exactly the pairs present then and none of the writes made while it
// runs, and holds no lock. Not safe for concurrent use; Close it when
// done.
//
//	it, err := db.NewIterator(&keyval.IterOptions{Prefix: []byte("user:")})
//	for it.Next() { use(it.Key(), it.Value()) }
//	err = it.Err(); it.Close()
type Iterator struct {
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
	return wrapIterator(ih), nil
}

// wrapIterator owns the C iterator h.
func wrapIterator(h *C.kv_iter) *Iterator {
	it := &Iterator{h: h}
	// Safety net only: an iterator dropped without Close is freed when
	// collected.
	it.cleanup = runtime.AddCleanup(it, func(h *C.kv_iter) { C.kv_iter_free(h) }, it.h)
	return it
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
	return it.load()
}

// load copies the current pair out; false at the end.
func (it *Iterator) load() bool {
	if C.kv_iter_valid(it.h) == 0 {
		it.key, it.value = nil, nil
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

// move runs one positioning call and loads the pair it lands on.
func (it *Iterator) move(f func(h *C.kv_iter) C.kv_status) bool {
	if it.h == nil || it.err != nil {
		return false
	}
	it.started = true
	if err := call(func() C.kv_status { return f(it.h) }); err != nil {
		it.err = err
		return false
	}
	return it.load()
}

// Prev moves to the pair before the current one and reports whether
// there is one (a transaction's iterator cannot: Err is then
// ErrInvalidArgument).
func (it *Iterator) Prev() bool {
	return it.move(func(h *C.kv_iter) C.kv_status { return C.kv_iter_prev(h) })
}

// Seek moves to the first pair whose key is >= key (within the
// iterator's range) and reports whether there is one; Next goes on after
// it.
func (it *Iterator) Seek(key []byte) bool {
	defer runtime.KeepAlive(key)
	return it.move(func(h *C.kv_iter) C.kv_status {
		kp, kl := bytesPtr(key)
		return C.kv_iter_seek(h, kp, kl)
	})
}

// SeekForPrev moves to the last pair whose key is <= key and reports
// whether there is one; Prev goes on before it.
func (it *Iterator) SeekForPrev(key []byte) bool {
	return it.move(func(h *C.kv_iter) C.kv_status {
		kp, kl := bytesPtr(key)
		return C.kv_iter_seek_for_prev(h, kp, kl)
	})
}

// First moves to the range's first pair.
func (it *Iterator) First() bool {
	return it.move(func(h *C.kv_iter) C.kv_status { return C.kv_iter_seek_first(h) })
}

// Last moves to the range's last pair (for a descending scan with Prev).
func (it *Iterator) Last() bool {
	return it.move(func(h *C.kv_iter) C.kv_status { return C.kv_iter_seek_last(h) })
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

package keyval

/*
#include "keyval.h"
*/
import "C"

type op struct {
	del        bool
	key, value []byte
}

// Batch collects sets and deletes that Commit applies atomically: after a
// crash either all are present or none. Not safe for concurrent use.
type Batch struct {
	db  *DB
	ops []op
}

// NewBatch returns an empty batch for db.
func (db *DB) NewBatch() *Batch { return &Batch{db: db} }

// Set adds "set key to value" (both copied).
func (b *Batch) Set(key, value []byte) {
	b.ops = append(b.ops, op{key: append([]byte(nil), key...), value: append([]byte(nil), value...)})
}

// Delete adds "remove key".
func (b *Batch) Delete(key []byte) {
	b.ops = append(b.ops, op{del: true, key: append([]byte(nil), key...)})
}

// Len returns the number of operations.
func (b *Batch) Len() int { return len(b.ops) }

// Reset removes every operation.
func (b *Batch) Reset() { b.ops = b.ops[:0] }

// Commit applies the batch atomically; durable on return under
// DurabilitySync. If any key or value is invalid, nothing is applied and
// ErrInvalidArgument is returned. The batch is left unchanged. Errors also:
// ErrClosed, ErrPoisoned, ErrIO.
func (b *Batch) Commit() error {
	return b.db.with(func(h *C.kv_db) C.kv_status {
		cb := C.kv_batch_new()
		if cb == nil {
			return C.KV_IO
		}
		defer C.kv_batch_free(cb)
		for _, o := range b.ops {
			kp, kl := keyPtr(o.key)
			var st C.kv_status
			if o.del {
				st = C.kv_batch_delete(cb, kp, kl)
			} else {
				vp, vl := bytesPtr(o.value)
				st = C.kv_batch_put(cb, kp, kl, vp, vl)
			}
			if st != C.KV_OK {
				return st
			}
		}
		return C.kv_batch_commit(h, cb)
	})
}

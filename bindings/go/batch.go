package keyval

/*
#include "keyval.h"
*/
import "C"

import "encoding/binary"

// Batch collects sets and deletes that Commit applies atomically: after a
// crash either all are present or none. Not safe for concurrent use.
//
// The operations are encoded as they are added, in the layout of the WAL's
// key-value batch payload (docs/format.md), so Commit is one cgo call
// (kv_write_packed) that copies one buffer.
type Batch struct {
	db    *DB
	buf   []byte // u32 count, then the operations
	count uint32
}

// Operation kinds of the packed layout.
const (
	opPut      = 1
	opDelete   = 2
	opPutIn    = 3
	opDeleteIn = 4
)

// NewBatch returns an empty batch for db.
func (db *DB) NewBatch() *Batch { return &Batch{db: db, buf: make([]byte, 4, 256)} }

// Set adds "set key to value" (both copied).
func (b *Batch) Set(key, value []byte) {
	b.buf = append(b.buf, opPut)
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(key)))
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(value)))
	b.buf = append(append(b.buf, key...), value...)
	b.count++
}

// Delete adds "remove key".
func (b *Batch) Delete(key []byte) {
	b.buf = append(b.buf, opDelete)
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(key)))
	b.buf = append(b.buf, key...)
	b.count++
}

// SetIn adds "set key to value in keyspace ks" (both copied): one batch
// may write the default keyspace and several named ones, atomically.
// Commit fails with ErrNotFound, applying nothing, if ks was dropped.
func (b *Batch) SetIn(ks *Keyspace, key, value []byte) {
	if ks.id == 0 { // the default keyspace (DB.Default)
		b.Set(key, value)
		return
	}
	b.buf = append(b.buf, opPutIn)
	b.buf = binary.LittleEndian.AppendUint32(b.buf, ks.id)
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(key)))
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(value)))
	b.buf = append(append(b.buf, key...), value...)
	b.count++
}

// DeleteIn adds "remove key from keyspace ks".
func (b *Batch) DeleteIn(ks *Keyspace, key []byte) {
	if ks.id == 0 {
		b.Delete(key)
		return
	}
	b.buf = append(b.buf, opDeleteIn)
	b.buf = binary.LittleEndian.AppendUint32(b.buf, ks.id)
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(key)))
	b.buf = append(b.buf, key...)
	b.count++
}

// Len returns the number of operations.
func (b *Batch) Len() int { return int(b.count) }

// Reset removes every operation.
func (b *Batch) Reset() {
	b.buf = b.buf[:4]
	b.count = 0
}

// Commit applies the batch atomically; durable on return under
// DurabilitySync. If any key or value is invalid, nothing is applied and
// ErrInvalidArgument is returned. The batch is left unchanged. Errors also:
// ErrNotFound (a keyspace of SetIn/DeleteIn was dropped; nothing applied),
// ErrClosed, ErrPoisoned, ErrIO.
func (b *Batch) Commit() error {
	binary.LittleEndian.PutUint32(b.buf[:4], b.count)
	return b.db.with(func(h *C.kv_db) C.kv_status {
		p, n := bytesPtr(b.buf)
		return C.kv_write_packed(h, p, n)
	})
}

// CommitWith is Commit acknowledged at durability d instead of the store's
// level (see DB.SetWith for how levels combine under group commit).
// Errors as Commit, plus ErrInvalidArgument for an unknown level (nothing
// is applied).
func (b *Batch) CommitWith(d Durability) error {
	binary.LittleEndian.PutUint32(b.buf[:4], b.count)
	return b.db.with(func(h *C.kv_db) C.kv_status {
		p, n := bytesPtr(b.buf)
		return C.kv_write_packed_with(h, p, n, C.uint32_t(d))
	})
}

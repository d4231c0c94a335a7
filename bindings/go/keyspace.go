package keyval

/*
#include "keyval.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Keyspace is a keyspace of a DB: an independent ordered key space (like
// a Bolt bucket) with every key operation (Get, GetMany, Has, Set,
// SetWith, Delete, DeleteWith, Len, Stats, NewIterator). Get a named one
// with DB.Keyspace, the default one with DB.Default. After DropKeyspace its methods return ErrNotFound; after
// DB.Close, ErrClosed. Safe for concurrent use.
type Keyspace struct {
	db   *DB
	h    *C.kv_keyspace
	name string
	id   uint32 // names it in a packed batch (Batch.SetIn)
}

// Keyspace opens keyspace name (1-255 bytes of UTF-8), creating it durably
// if it does not exist. Errors: ErrInvalidArgument (bad name), ErrClosed,
// ErrPoisoned, ErrIO.
func (db *DB) Keyspace(name string) (*Keyspace, error) {
	ks := &Keyspace{db: db, name: name}
	err := db.with(func(h *C.kv_db) C.kv_status {
		np, nl := bytesPtr([]byte(name))
		if st := C.kv_keyspace_open(h, np, nl, 1, &ks.h); st != C.KV_OK {
			return st
		}
		var id C.uint32_t
		st := C.kv_keyspace_id(ks.h, &id)
		ks.id = uint32(id)
		return st
	})
	if ks.h != nil {
		runtime.AddCleanup(ks, func(h *C.kv_keyspace) { C.kv_keyspace_free(h) }, ks.h)
	}
	if err != nil {
		return nil, err
	}
	return ks, nil
}

// Keyspaces lists the named keyspaces, sorted. Errors: ErrClosed.
func (db *DB) Keyspaces() ([]string, error) {
	var names []string
	err := db.jsonOut(func(h *C.kv_db, out **C.uint8_t, n *C.size_t) C.kv_status {
		return C.kv_keyspace_list(h, out, n)
	}, &names)
	return names, err
}

// DropKeyspace drops keyspace name and every key in it, atomically and
// durably, and reports whether it existed.
func (db *DB) DropKeyspace(name string) (bool, error) {
	var existed C.int32_t
	err := db.with(func(h *C.kv_db) C.kv_status {
		np, nl := bytesPtr([]byte(name))
		return C.kv_keyspace_drop(h, np, nl, &existed)
	})
	return existed != 0, err
}

// Name is the keyspace's name ("" for the default keyspace).
func (k *Keyspace) Name() string { return k.name }

func (k *Keyspace) with(f func(h *C.kv_keyspace) C.kv_status) error {
	defer runtime.KeepAlive(k)
	return k.db.with(func(*C.kv_db) C.kv_status { return f(k.h) })
}

// Set sets key to value in the keyspace. Errors as DB.Set, plus
// ErrNotFound after a drop.
func (k *Keyspace) Set(key, value []byte) error {
	return k.with(func(h *C.kv_keyspace) C.kv_status {
		kp, kl := keyPtr(key)
		vp, vl := bytesPtr(value)
		return C.kv_keyspace_set(h, kp, kl, vp, vl)
	})
}

// Get returns a copy of the value of key. Errors: ErrNotFound (no such key,
// or the keyspace was dropped), ErrInvalidArgument, ErrClosed.
func (k *Keyspace) Get(key []byte) ([]byte, error) {
	var out []byte
	err := k.with(func(h *C.kv_keyspace) C.kv_status {
		kp, kl := keyPtr(key)
		var v *C.uint8_t
		var n C.size_t
		st := C.kv_keyspace_get(h, kp, kl, &v, &n)
		if st == C.KV_OK {
			out = C.GoBytes(unsafe.Pointer(v), C.int(n))
			C.kv_free(unsafe.Pointer(v))
		}
		return st
	})
	return out, err
}

// SetWith is Set acknowledged at durability d instead of the store's
// level. Concurrent writes share a commit group that is brought to the
// strongest level any of them asked for, so a write is never made less
// durable than it asked, and one at DurabilitySync also makes every
// earlier write durable (the WAL is one ordered log). Errors as Set, plus
// ErrInvalidArgument for an unknown level (nothing is written).
func (k *Keyspace) SetWith(key, value []byte, d Durability) error {
	return k.with(func(h *C.kv_keyspace) C.kv_status {
		kp, kl := keyPtr(key)
		vp, vl := bytesPtr(value)
		return C.kv_keyspace_set_with(h, kp, kl, vp, vl, C.uint32_t(d))
	})
}

// GetMany returns the values of keys in one cgo call: out[i] is the value
// of keys[i], or nil if that key is absent (a present empty value is a
// non-nil empty slice). All keys are read at one point in the write
// order, so the values are consistent with each other. The values share
// one allocation; each is capped at its length, so appending to one never
// changes another. Errors: ErrInvalidArgument (any empty or oversized
// key: nothing is returned), ErrNotFound (dropped), ErrClosed.
func (k *Keyspace) GetMany(keys [][]byte) ([][]byte, error) {
	if len(keys) == 0 {
		return [][]byte{}, k.with(func(*C.kv_keyspace) C.kv_status { return C.KV_OK })
	}
	packed, lens := packKeys(keys)
	var out [][]byte
	err := k.with(func(h *C.kv_keyspace) C.kv_status {
		var arr *C.kv_value
		kp, _ := bytesPtr(packed)
		st := C.kv_keyspace_get_many(h, kp, &lens[0], C.size_t(len(keys)), &arr)
		if st == C.KV_OK {
			out = unpackValues(arr, len(keys))
		}
		return st
	})
	return out, err
}

// packKeys lays keys end to end for a get_many call, with their lengths.
func packKeys(keys [][]byte) ([]byte, []C.size_t) {
	total := 0
	for _, key := range keys {
		total += len(key)
	}
	packed := make([]byte, 0, total)
	lens := make([]C.size_t, len(keys))
	for i, key := range keys {
		packed = append(packed, key...)
		lens[i] = C.size_t(len(key))
	}
	return packed, lens
}

// unpackValues copies the n values of a get_many result block into one Go
// allocation (each value capped at its length; nil for an absent key) and
// frees the block.
func unpackValues(arr *C.kv_value, n int) [][]byte {
	defer C.kv_free(unsafe.Pointer(arr))
	vals := unsafe.Slice(arr, n)
	size := 0
	for _, v := range vals {
		size += int(v.value_len)
	}
	buf := make([]byte, size)
	out := make([][]byte, n)
	at := 0
	for i, v := range vals {
		if v.value == nil {
			continue
		}
		l := int(v.value_len)
		copy(buf[at:at+l], unsafe.Slice((*byte)(unsafe.Pointer(v.value)), l))
		out[i] = buf[at : at+l : at+l]
		at += l
	}
	return out
}

// Has reports whether key is present in the keyspace. Errors:
// ErrInvalidArgument, ErrNotFound (dropped), ErrClosed.
func (k *Keyspace) Has(key []byte) (bool, error) {
	var has C.int32_t
	err := k.with(func(h *C.kv_keyspace) C.kv_status {
		kp, kl := keyPtr(key)
		return C.kv_keyspace_contains(h, kp, kl, &has)
	})
	return has != 0, err
}

// Delete removes key from the keyspace (nil whether or not it existed).
// Errors as Set.
func (k *Keyspace) Delete(key []byte) error {
	return k.with(func(h *C.kv_keyspace) C.kv_status {
		kp, kl := keyPtr(key)
		return C.kv_keyspace_delete(h, kp, kl)
	})
}

// DeleteWith is Delete acknowledged at durability d; see SetWith. Errors
// as SetWith.
func (k *Keyspace) DeleteWith(key []byte, d Durability) error {
	return k.with(func(h *C.kv_keyspace) C.kv_status {
		kp, kl := keyPtr(key)
		return C.kv_keyspace_delete_with(h, kp, kl, C.uint32_t(d))
	})
}

// Len is the number of keys in the keyspace. Errors: ErrNotFound (dropped),
// ErrClosed.
func (k *Keyspace) Len() (uint64, error) {
	var n C.uint64_t
	err := k.with(func(h *C.kv_keyspace) C.kv_status { return C.kv_keyspace_len(h, &n) })
	return uint64(n), err
}

// KeyspaceStats counts a keyspace's live keys and the bytes of their keys
// and values.
type KeyspaceStats struct {
	Keys       uint64 `json:"keys"`
	KeyBytes   uint64 `json:"key_bytes"`
	ValueBytes uint64 `json:"value_bytes"`
}

// Stats returns the keyspace's counters. Errors: ErrNotFound (dropped),
// ErrClosed.
func (k *Keyspace) Stats() (KeyspaceStats, error) {
	defer runtime.KeepAlive(k)
	var s KeyspaceStats
	err := k.db.jsonOut(func(_ *C.kv_db, out **C.uint8_t, n *C.size_t) C.kv_status {
		return C.kv_keyspace_stats(k.h, out, n)
	}, &s)
	return s, err
}

// NewIterator creates an iterator over the keyspace's keys (opts may be nil
// for every key), used like DB.NewIterator; if the keyspace is dropped
// meanwhile, the iteration ends. Errors: ErrNotFound (dropped), ErrClosed.
func (k *Keyspace) NewIterator(opts *IterOptions) (*Iterator, error) {
	defer runtime.KeepAlive(k)
	return newIterator(k.db, opts, func(_ *C.kv_db, prefix bool, sp *C.uint8_t, sl C.size_t, ep *C.uint8_t, el C.size_t, out **C.kv_iter) C.kv_status {
		if prefix {
			return C.kv_keyspace_iter_prefix(k.h, sp, sl, out)
		}
		return C.kv_keyspace_iter_range(k.h, sp, sl, ep, el, out)
	})
}

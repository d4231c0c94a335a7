// Package keyval is the Go binding of KeyVal, a durable embedded key-value
// store on a checksummed write-ahead log, through cgo over the static
// library (target/release/libkeyval.a, built by `make build` in the
// repository root).
//
// A DB is safe for concurrent use by many goroutines; concurrent writers
// share fsyncs (group commit). Under the default DurabilitySync a write has
// been fdatasync'ed when Set, Delete or Batch.Commit return nil.
//
//	db, err := keyval.Open("my-db")
//	if err != nil { ... }
//	defer db.Close()
//	err = db.Set([]byte("k"), []byte("v"))
//	v, err := db.Get([]byte("k"))          // errors.Is(err, keyval.ErrNotFound) when absent
package keyval

/*
#include <stdlib.h>
#include "keyval.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Durability says when a write is acknowledged.
type Durability uint32

const (
	// DurabilityBuffered acknowledges from an in-process buffer; lost on a
	// process crash until Sync, Checkpoint or Close.
	DurabilityBuffered Durability = 0
	// DurabilityOS acknowledges once handed to the OS; survives a process
	// crash.
	DurabilityOS Durability = 1
	// DurabilitySync acknowledges after fdatasync; survives power loss.
	// The default.
	DurabilitySync Durability = 2
)

// RecoveryMode says how damage found on open is treated.
type RecoveryMode uint32

const (
	// RecoveryAbsoluteConsistency: any damage, even a torn tail, fails Open.
	RecoveryAbsoluteConsistency RecoveryMode = 0
	// RecoveryTolerateTailCorruption: a torn tail is truncated (reported in
	// Stats); other damage fails Open with ErrCorruption. The default.
	RecoveryTolerateTailCorruption RecoveryMode = 1
	// RecoveryTolerateAnyCorruption: salvage every valid record.
	RecoveryTolerateAnyCorruption RecoveryMode = 2
)

// Options are the settings of Open (and OpenRaftLog). The zero value is
// not meaningful: start from DefaultOptions.
type Options struct {
	// Durability: when a write is acknowledged (default DurabilitySync).
	Durability Durability
	// RecoveryMode: what open does about damage (default
	// RecoveryTolerateTailCorruption).
	RecoveryMode RecoveryMode
	// SegmentSize: largest WAL segment size in bytes (default 64 MiB, at
	// least 64 KiB); segments start at 1 MiB and double up to it.
	SegmentSize uint64
	// MaxWALSize: WAL bytes after which a checkpoint runs in the background
	// (default 256 MiB; 0 disables).
	MaxWALSize uint64
	// KeepSnapshots: snapshots kept (default 2, at least 1).
	KeepSnapshots uint32
	// MaxKeySize: largest key in bytes (default 64 KiB).
	MaxKeySize uint32
	// MaxValueSize: largest value in bytes (default 64 MiB).
	MaxValueSize uint32
	// CreateIfMissing: create a missing directory (default true).
	CreateIfMissing bool
	// CheckpointInterval: also checkpoint in the background this long
	// after the last checkpoint if anything was written since (default 0:
	// off; otherwise at least 10 ms, whole milliseconds). Ignored by
	// OpenRaftLog.
	CheckpointInterval time.Duration
	// ReadOnly: open without the directory lock, beside a writer, changing
	// nothing on disk; writes return ErrInvalidArgument, and an open that
	// keeps racing the writer's rotations returns ErrIO (retry it). Shows
	// what was durable at open. OpenRaftLog refuses it (ErrInvalidArgument).
	// Default false.
	ReadOnly bool
	// MaxSnapshotAge: reads of a Snapshot, Tx or Iterator older than this
	// return ErrSnapshotExpired, so that a forgotten one cannot pin old
	// versions in memory forever (default 0: no limit; otherwise at least
	// 1 ms, whole milliseconds).
	MaxSnapshotAge time.Duration
	// ValueSeparationThreshold: values of at least this many bytes stay in
	// the WAL segments where they were written; memory holds the key and a
	// 24-byte pointer, and a read is one positioned read of the segment
	// (or a value-cache hit). Default 1024; at least 64; 0 means the
	// default; math.MaxUint32 keeps every value in memory.
	ValueSeparationThreshold uint32
	// MemoryBudget: bytes of separated values the value cache keeps in
	// memory (the index of keys is not part of it; see Stats.MemoryBytes).
	// Default 256 MiB; 0 means the default; 1 effectively disables it.
	MemoryBudget uint64
}

// DefaultOptions returns the library's defaults (kv_options_init).
func DefaultOptions() Options {
	o := defaultCOptions()
	return Options{
		Durability:      Durability(o.durability),
		RecoveryMode:    RecoveryMode(o.recovery_mode),
		SegmentSize:     uint64(o.segment_size),
		MaxWALSize:      uint64(o.max_wal_size),
		KeepSnapshots:   uint32(o.keep_snapshots),
		MaxKeySize:      uint32(o.max_key_size),
		MaxValueSize:    uint32(o.max_value_size),
		CreateIfMissing: o.create_if_missing != 0,

		CheckpointInterval: time.Duration(o.checkpoint_interval_ms) * time.Millisecond,
		ReadOnly:           o.read_only != 0,
		MaxSnapshotAge:     time.Duration(o.max_snapshot_age_ms) * time.Millisecond,

		ValueSeparationThreshold: uint32(o.value_separation_threshold),
		MemoryBudget:             uint64(o.memory_budget),
	}
}

// defaultCOptions is kv_options_init on a struct of the size this package
// was compiled with (the header's convention 10).
func defaultCOptions() C.kv_options {
	var c C.kv_options
	c.struct_size = C.size_t(unsafe.Sizeof(c))
	if st := C.kv_options_init(&c); st != C.KV_OK {
		panic("keyval: kv_options_init failed: the linked library is older than its header")
	}
	return c
}

// c converts o to the C struct.
func (o Options) c() C.kv_options {
	c := defaultCOptions()
	c.durability = C.uint32_t(o.Durability)
	c.recovery_mode = C.uint32_t(o.RecoveryMode)
	c.segment_size = C.uint64_t(o.SegmentSize)
	c.max_wal_size = C.uint64_t(o.MaxWALSize)
	c.keep_snapshots = C.uint32_t(o.KeepSnapshots)
	c.max_key_size = C.uint32_t(o.MaxKeySize)
	c.max_value_size = C.uint32_t(o.MaxValueSize)
	c.create_if_missing = 0
	if o.CreateIfMissing {
		c.create_if_missing = 1
	}
	c.checkpoint_interval_ms = C.uint64_t(o.CheckpointInterval.Milliseconds())
	c.read_only = 0
	if o.ReadOnly {
		c.read_only = 1
	}
	if o.CheckpointInterval > 0 && c.checkpoint_interval_ms == 0 {
		c.checkpoint_interval_ms = 1 // refused by the library: under 10 ms
	}
	c.max_snapshot_age_ms = C.uint64_t(o.MaxSnapshotAge.Milliseconds())
	if o.MaxSnapshotAge > 0 && c.max_snapshot_age_ms == 0 {
		c.max_snapshot_age_ms = 1
	}
	c.value_separation_threshold = C.uint32_t(o.ValueSeparationThreshold)
	c.memory_budget = C.uint64_t(o.MemoryBudget)
	return c
}

// Option changes one setting of the Options that Open starts from.
type Option func(*Options)

// WithOptions replaces every setting with o.
func WithOptions(o Options) Option { return func(t *Options) { *t = o } }

// WithDurability sets the durability level (default DurabilitySync).
func WithDurability(d Durability) Option { return func(o *Options) { o.Durability = d } }

// WithRecoveryMode sets the recovery mode.
func WithRecoveryMode(m RecoveryMode) Option { return func(o *Options) { o.RecoveryMode = m } }

// WithSegmentSize sets the largest WAL segment size in bytes (default 64 MiB).
func WithSegmentSize(n uint64) Option { return func(o *Options) { o.SegmentSize = n } }

// WithMaxWALSize sets the WAL bytes after which a checkpoint runs in the
// background (default 256 MiB; 0 disables).
func WithMaxWALSize(n uint64) Option { return func(o *Options) { o.MaxWALSize = n } }

// WithKeepSnapshots sets how many snapshots are kept (default 2).
func WithKeepSnapshots(n uint32) Option { return func(o *Options) { o.KeepSnapshots = n } }

// WithMaxKeySize sets the largest key in bytes (default 64 KiB).
func WithMaxKeySize(n uint32) Option { return func(o *Options) { o.MaxKeySize = n } }

// WithMaxValueSize sets the largest value in bytes (default 64 MiB).
func WithMaxValueSize(n uint32) Option { return func(o *Options) { o.MaxValueSize = n } }

// WithCheckpointInterval sets the time after the last checkpoint at which
// a background checkpoint runs if anything was written since (0: off).
func WithCheckpointInterval(d time.Duration) Option {
	return func(o *Options) { o.CheckpointInterval = d }
}

// WithMemoryBudget sets Options.MemoryBudget (bytes of the value cache).
func WithMemoryBudget(n uint64) Option { return func(o *Options) { o.MemoryBudget = n } }

// WithValueSeparationThreshold sets Options.ValueSeparationThreshold
// (bytes; math.MaxUint32 keeps every value in memory).
func WithValueSeparationThreshold(n uint32) Option {
	return func(o *Options) { o.ValueSeparationThreshold = n }
}

// WithReadOnly opens the store read-only (see Options.ReadOnly).
func WithReadOnly() Option { return func(o *Options) { o.ReadOnly = true } }

// WithCreateIfMissing sets whether Open creates a missing directory
// (default true).
func WithCreateIfMissing(b bool) Option { return func(o *Options) { o.CreateIfMissing = b } }

// buildOptions applies opts to the defaults.
func buildOptions(opts []Option) C.kv_options {
	o := DefaultOptions()
	for _, f := range opts {
		f(&o)
	}
	return o.c()
}

// DB is an open KeyVal store. Safe for concurrent use. Methods called after
// Close return ErrClosed.
type DB struct {
	mu      sync.RWMutex // guards h; Close takes it exclusively
	h       *C.kv_db
	def     *Keyspace // the default keyspace (kv_keyspace_default)
	cleanup runtime.Cleanup
}

// Open opens (creating if allowed, then recovering) the store in dir.
// Errors: ErrLocked (open elsewhere), ErrCorruption, ErrInvalidArgument,
// ErrIO.
func Open(dir string, opts ...Option) (*DB, error) {
	o := buildOptions(opts)
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	var h *C.kv_db
	if err := call(func() C.kv_status { return C.kv_open(cdir, &o, &h) }); err != nil {
		return nil, err
	}
	db := &DB{h: h}
	def := &Keyspace{db: db}
	if err := call(func() C.kv_status { return C.kv_keyspace_default(h, &def.h) }); err != nil {
		C.kv_close(h)
		return nil, err
	}
	runtime.AddCleanup(def, func(h *C.kv_keyspace) { C.kv_keyspace_free(h) }, def.h)
	db.def = def
	// A safety net only: a DB dropped without Close still releases its
	// lock and writes its final checkpoint when collected.
	db.cleanup = runtime.AddCleanup(db, func(h *C.kv_db) { C.kv_close(h) }, h)
	return db, nil
}

// Close makes every write durable, writes a final checkpoint and releases
// the directory. Closing twice is a no-op returning nil. Errors:
// ErrPoisoned, ErrIO (resources are released all the same).
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.h == nil {
		return nil
	}
	db.cleanup.Stop()
	h := db.h
	db.h = nil
	return call(func() C.kv_status { return C.kv_close(h) })
}

// with runs f with the live handle under the read lock, or returns
// ErrClosed.
func (db *DB) with(f func(h *C.kv_db) C.kv_status) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.h == nil {
		return ErrClosed
	}
	h := db.h
	return call(func() C.kv_status { return f(h) })
}

// The key operations of a DB address its default keyspace (DB.Default):
// each is written once, on Keyspace, and the DB forwards to it.

// Default returns the DB's default keyspace: the one DB.Get, DB.Set and
// the other key methods address, as a Keyspace, so that code written
// against a Keyspace serves it too. Its Name is "".
func (db *DB) Default() *Keyspace { return db.def }

// Set sets key to value; durable on return under DurabilitySync. Errors:
// ErrInvalidArgument (empty or oversized key, oversized value), ErrClosed,
// ErrPoisoned, ErrIO.
func (db *DB) Set(key, value []byte) error { return db.def.Set(key, value) }

// SetWith is Set acknowledged at durability d instead of the store's
// level; see Keyspace.SetWith.
func (db *DB) SetWith(key, value []byte, d Durability) error {
	return db.def.SetWith(key, value, d)
}

// Get returns a copy of the value of key that the caller owns. Errors:
// ErrNotFound, ErrInvalidArgument, ErrClosed.
func (db *DB) Get(key []byte) ([]byte, error) { return db.def.Get(key) }

// GetMany returns the values of keys in one cgo call; see
// Keyspace.GetMany.
func (db *DB) GetMany(keys [][]byte) ([][]byte, error) { return db.def.GetMany(keys) }

// Delete removes key (nil whether or not it existed). Errors as Set.
func (db *DB) Delete(key []byte) error { return db.def.Delete(key) }

// DeleteWith is Delete acknowledged at durability d; see SetWith. Errors
// as SetWith.
func (db *DB) DeleteWith(key []byte, d Durability) error { return db.def.DeleteWith(key, d) }

// Has reports whether key is present. Errors: ErrInvalidArgument,
// ErrClosed.
func (db *DB) Has(key []byte) (bool, error) { return db.def.Has(key) }

// Len returns the number of keys. Errors: ErrClosed.
func (db *DB) Len() (uint64, error) { return db.def.Len() }

// Sync makes every acknowledged write durable (needed only under
// DurabilityBuffered or DurabilityOS). Errors: ErrClosed, ErrPoisoned,
// ErrIO.
func (db *DB) Sync() error {
	return db.with(func(h *C.kv_db) C.kv_status { return C.kv_sync(h) })
}

// Backup writes a consistent copy of the store into the new directory
// dest while other goroutines keep writing, and returns the LSN it
// reached. The copy opens with Open and holds every write acknowledged
// before the call and no part of a later one. It is built in
// ".<name>.backup-tmp.<unique>" next to dest and renamed into place when complete:
// after a crash or kill dest is missing, or Open on it fails with
// ErrCorruption ("unfinished backup"). A DB opened WithReadOnly backs up
// its view, which is how another process backs up a live store.
// Errors: ErrInvalidArgument (dest exists, its parent is missing),
// ErrClosed, ErrIO (the store is unaffected).
func (db *DB) Backup(dest string) (uint64, error) {
	cdest := C.CString(dest)
	defer C.free(unsafe.Pointer(cdest))
	var lsn C.uint64_t
	err := db.with(func(h *C.kv_db) C.kv_status { return C.kv_backup(h, cdest, &lsn) })
	return uint64(lsn), err
}

// Checkpoint writes a snapshot and drops the WAL it covers; readers and
// writers keep running meanwhile. Errors as Sync.
func (db *DB) Checkpoint() error {
	return db.with(func(h *C.kv_db) C.kv_status { return C.kv_checkpoint(h) })
}

// Reclaim moves the live separated values out of every closed WAL
// segment that is less than 67% live, then checkpoints, so that those
// segments are deleted (kv_reclaim); it also runs by itself after
// automatic checkpoints. Returns the segments reclaimed and the value
// bytes moved. Errors: ErrClosed, ErrPoisoned, ErrInvalidArgument
// (read-only), ErrIO, ErrCorruption (a value to move fails its CRC).
func (db *DB) Reclaim() (segments, bytes uint64, err error) {
	var s, b C.uint64_t
	err = db.with(func(h *C.kv_db) C.kv_status { return C.kv_reclaim(h, &s, &b) })
	return uint64(s), uint64(b), err
}

// Version returns the linked C library's version, e.g. "0.1.0"
// (kv_version). It can differ from the header this package was compiled
// with only if the shared library was replaced after the build.
func Version() string { return C.GoString(C.kv_version()) }

package keyval

/*
#include "keyval.h"
*/
import "C"

// Status is a kv_status code from the C library. Values never change.
type Status int

// The status codes, taken from include/keyval.h (one table for C, Go and
// Python: the Rust enum that cbindgen exports).
const (
	StatusOK              Status = C.KV_OK
	StatusIO              Status = C.KV_IO
	StatusCorruption      Status = C.KV_CORRUPTION
	StatusInvalidArgument Status = C.KV_INVALID_ARGUMENT
	StatusLocked          Status = C.KV_LOCKED
	StatusPoisoned        Status = C.KV_POISONED
	StatusClosed          Status = C.KV_CLOSED
	StatusNotFound        Status = C.KV_NOT_FOUND
	StatusBufferTooSmall  Status = C.KV_BUFFER_TOO_SMALL
	StatusPanic           Status = C.KV_PANIC
	StatusCompacted       Status = C.KV_COMPACTED
	StatusOutOfRange      Status = C.KV_OUT_OF_RANGE
	StatusDuplicateKey    Status = C.KV_DUPLICATE_KEY
	StatusConflict        Status = C.KV_CONFLICT
	StatusSnapshotExpired Status = C.KV_SNAPSHOT_EXPIRED
)

// String is the library's own description of the code (kv_strerror);
// "unknown status" for a value that is not a code.
func (s Status) String() string {
	return C.GoString(C.kv_strerror(C.int32_t(s)))
}

// Error is every error this package returns: the library's status code and
// its message (file, offset and OS error where known). Compare with
// errors.Is against the Err* values; errors.As gives the *Error.
type Error struct {
	Code    Status
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "keyval: " + e.Code.String()
	}
	return "keyval: " + e.Message
}

// Is reports whether target is an *Error with the same status code, so
// errors.Is(err, keyval.ErrNotFound) works for any not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func newError(code Status, msg string) error { return &Error{Code: code, Message: msg} }

// Sentinel errors for errors.Is.
var (
	// ErrNotFound: the key, Raft log entry, keyspace, collection or
	// document is absent.
	ErrNotFound = &Error{Code: StatusNotFound, Message: "not found"}
	// ErrDuplicateKey: a document _id that exists, or a value already in a
	// unique index. Nothing was written.
	ErrDuplicateKey = &Error{Code: StatusDuplicateKey, Message: "duplicate key"}
	// ErrClosed: the DB (or iterator) was closed.
	ErrClosed = &Error{Code: StatusClosed, Message: "database is closed"}
	// ErrLocked: the directory is open in another handle or process.
	ErrLocked = &Error{Code: StatusLocked, Message: "database directory is locked"}
	// ErrCorruption: stored data failed verification; the message names
	// file and offset.
	ErrCorruption = &Error{Code: StatusCorruption, Message: "corruption"}
	// ErrPoisoned: an earlier write or fsync failed; reopen the DB.
	ErrPoisoned = &Error{Code: StatusPoisoned, Message: "store poisoned by an earlier write failure"}
	// ErrInvalidArgument: an empty or oversized key, oversized value, bad
	// option, path that is not a directory.
	ErrInvalidArgument = &Error{Code: StatusInvalidArgument, Message: "invalid argument"}
	// ErrIO: an operating-system call failed.
	ErrIO = &Error{Code: StatusIO, Message: "I/O error"}
	// ErrCompacted: a Raft log index below the first index (purged by
	// TruncatePrefix).
	ErrCompacted = &Error{Code: StatusCompacted, Message: "log index compacted"}
	// ErrOutOfRange: a Raft log index beyond the last entry.
	ErrOutOfRange = &Error{Code: StatusOutOfRange, Message: "log index out of range"}
	// ErrConflict: a transaction's commit found that a key or range it
	// read was written by another commit since its snapshot. Nothing was
	// written; run it again (DB.Update does).
	ErrConflict = &Error{Code: StatusConflict, Message: "transaction conflict"}
	// ErrSnapshotExpired: a read of a snapshot, transaction or iterator
	// older than Options.MaxSnapshotAge.
	ErrSnapshotExpired = &Error{Code: StatusSnapshotExpired, Message: "snapshot expired"}
)

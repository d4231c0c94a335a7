package keyval

import "fmt"

// Status is a kv_status code from the C library. Values never change.
type Status int

// The status codes (see include/keyval.h).
const (
	StatusOK              Status = 0
	StatusIO              Status = 1
	StatusCorruption      Status = 2
	StatusInvalidArgument Status = 3
	StatusLocked          Status = 4
	StatusPoisoned        Status = 5
	StatusClosed          Status = 6
	StatusNotFound        Status = 7
	StatusBufferTooSmall  Status = 8
	StatusPanic           Status = 9
	StatusCompacted       Status = 10
	StatusOutOfRange      Status = 11
)

var statusNames = map[Status]string{
	StatusOK: "ok", StatusIO: "I/O error", StatusCorruption: "corruption",
	StatusInvalidArgument: "invalid argument", StatusLocked: "locked",
	StatusPoisoned: "poisoned", StatusClosed: "closed", StatusNotFound: "not found",
	StatusBufferTooSmall: "buffer too small", StatusPanic: "internal error (panic)",
	StatusCompacted: "compacted", StatusOutOfRange: "out of range",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status %d", int(s))
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
	// ErrNotFound: the key (or Raft log entry) is absent.
	ErrNotFound = &Error{Code: StatusNotFound, Message: "key not found"}
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
)

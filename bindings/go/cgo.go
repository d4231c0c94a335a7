package keyval

// Linking: cgo asks pkg-config for the flags of the installed C library
// (`make install` writes keyval.pc). For a library in a non-standard
// prefix, set PKG_CONFIG_PATH=<prefix>/lib/pkgconfig and, at run time,
// LD_LIBRARY_PATH=<prefix>/lib (or link with CGO_LDFLAGS=-Wl,-rpath,<prefix>/lib).
// Without pkg-config, set PKG_CONFIG=true and give the flags yourself:
// CGO_CFLAGS=-I<prefix>/include CGO_LDFLAGS="-L<prefix>/lib -lkeyval".
// Inside the KeyVal repository, `make go-test` points PKG_CONFIG_PATH at
// target/pkgconfig, which links the freshly built static library.

/*
#cgo pkg-config: keyval
#include <stdlib.h>
#include "keyval.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// bytesPtr returns a C view of b without copying. Go byte slices hold no Go
// pointers, so cgo allows passing them for the duration of a call; the
// library copies what it keeps. An empty slice becomes NULL with length 0.
func bytesPtr(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))), C.size_t(len(b))
}

// keyPtr is bytesPtr for a key: never NULL, even for an empty key, so that
// the library reports the empty key itself ("empty key"), not a NULL
// pointer.
func keyPtr(b []byte) (*C.uint8_t, C.size_t) {
	p, n := bytesPtr(b)
	if p == nil {
		p = (*C.uint8_t)(unsafe.Pointer(&emptyKey))
	}
	return p, n
}

var emptyKey byte

// call runs one C function on a locked OS thread, so that on failure the
// thread-local message read by kv_last_error_message belongs to this call.
// The lock is needed: without it the goroutine may move to another OS
// thread between the two cgo calls and read another call's message. It is
// cheap: LockOSThread plus UnlockOSThread measured 2.7 ns per pair here,
// against tens of nanoseconds for the cgo call itself.
func call(f func() C.kv_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := f()
	if st == C.KV_OK {
		return nil
	}
	return newError(Status(st), C.GoString(C.kv_last_error_message()))
}

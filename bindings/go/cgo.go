package keyval

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libkeyval.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
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

// call runs one C function on a locked OS thread, so that on failure the
// thread-local message read by kv_last_error_message belongs to this call.
func call(f func() C.kv_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := f()
	if st == C.KV_OK {
		return nil
	}
	return newError(Status(st), C.GoString(C.kv_last_error_message()))
}

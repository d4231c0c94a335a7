package keyval

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func small() []Option { return []Option{WithSegmentSize(64 << 10)} }

func openT(t *testing.T, dir string, opts ...Option) *DB {
	t.Helper()
	db, err := Open(dir, append(small(), opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

func TestCRUD(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	defer db.Close()
	if err := db.Set([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	v, err := db.Get([]byte("a"))
	if err != nil || string(v) != "1" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	v, err = db.Get([]byte("empty"))
	if err != nil || len(v) != 0 {
		t.Fatalf("Get(empty) = %q, %v", v, err)
	}
	if _, err := db.Get([]byte("missing")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if has, err := db.Has([]byte("a")); err != nil || !has {
		t.Fatalf("Has = %v, %v", has, err)
	}
	if has, err := db.Has([]byte("zz")); err != nil || has {
		t.Fatalf("Has(zz) = %v, %v", has, err)
	}
	if n, err := db.Len(); err != nil || n != 2 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	if err := db.Delete([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete([]byte("a")); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := db.Get([]byte("a")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	st, err := db.Stats()
	if err != nil || st.Keys != 1 || st.Checkpoints != 1 || st.Snapshots == 0 || st.Poisoned {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
}

func TestInvalidArguments(t *testing.T) {
	db := openT(t, t.TempDir(), WithMaxKeySize(8), WithMaxValueSize(16))
	defer db.Close()
	db.Set([]byte("keep"), []byte("me"))
	cases := []error{
		db.Set(nil, []byte("v")),
		db.Set([]byte{}, []byte("v")),
		db.Set([]byte("123456789"), []byte("v")),
		db.Set([]byte("k"), bytes.Repeat([]byte("x"), 17)),
		db.Delete(nil),
	}
	for i, err := range cases {
		var e *Error
		if !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &e) || e.Message == "" {
			t.Errorf("case %d: %v", i, err)
		}
	}
	if _, err := db.Get(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Get(nil): %v", err)
	}
	if _, err := db.Has(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Has(nil): %v", err)
	}
	b := db.NewBatch()
	b.Set([]byte("good"), []byte("1"))
	b.Set([]byte("waytoolongkey"), []byte("1"))
	if err := b.Commit(); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad batch: %v", err)
	}
	if has, _ := db.Has([]byte("good")); has {
		t.Error("an invalid batch applied part of itself")
	}
	if n, _ := db.Len(); n != 1 {
		t.Errorf("Len = %d after rejected writes", n)
	}
}

// Every error carries its own message: a not-found after a failed call must
// not repeat the earlier failure's text (the C layer once left the thread's
// last message untouched on KV_NOT_FOUND).
func TestNotFoundCarriesItsOwnMessage(t *testing.T) {
	db := openT(t, t.TempDir())
	defer db.Close()
	if err := db.Set(nil, []byte("v")); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Set(nil): %v", err)
	}
	_, err := db.Get([]byte("missing"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing): %v", err)
	}
	if strings.Contains(err.Error(), "empty key") || !strings.Contains(err.Error(), "not found") {
		t.Errorf("not-found error says %q", err.Error())
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if _, err := Open(file); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("file: %v", err)
	}
	if _, err := Open(filepath.Join(file, "sub")); !errors.Is(err, ErrIO) {
		t.Errorf("under a file: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing"), WithCreateIfMissing(false)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("missing: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "x"), WithSegmentSize(1)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad option: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "x"), WithDurability(9)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad durability: %v", err)
	}
	if _, err := Open(""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty path: %v", err)
	}
}

func TestLockedAndClosed(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	if _, err := Open(dir, small()...); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	db.Set([]byte("k"), []byte("v"))
	it, err := db.NewIterator(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for name, err := range map[string]error{
		"Set":    db.Set([]byte("k"), []byte("v")),
		"Delete": db.Delete([]byte("k")),
		"Sync":   db.Sync(),
		"Ckpt":   db.Checkpoint(),
		"Commit": db.NewBatch().Commit(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	if _, err := db.Get([]byte("k")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if _, err := db.Len(); !errors.Is(err, ErrClosed) {
		t.Errorf("Len after Close: %v", err)
	}
	if _, err := db.Stats(); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats after Close: %v", err)
	}
	if _, err := db.NewIterator(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("NewIterator after Close: %v", err)
	}
	// An iterator created before Close reports ErrClosed, never crashes.
	for it.Next() {
	}
	if !errors.Is(it.Err(), ErrClosed) {
		t.Errorf("iterator after Close: %v", it.Err())
	}
	it.Close()
	it.Close()
	// Reopen after close.
	db = openT(t, dir)
	defer db.Close()
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("after reopen: %q %v", v, err)
	}
	if st, _ := db.Stats(); st.Recovery.RecordsReplayed != 0 {
		t.Errorf("clean close should replay no WAL: %+v", st.Recovery)
	}
}

func TestIterators(t *testing.T) {
	db := openT(t, t.TempDir())
	defer db.Close()
	b := db.NewBatch()
	for i := 0; i < 700; i++ {
		b.Set([]byte(fmt.Sprintf("user:%04d", i)), []byte(fmt.Sprint(i)))
		b.Set([]byte(fmt.Sprintf("item:%04d", i)), []byte(fmt.Sprint(i)))
	}
	if b.Len() != 1400 {
		t.Fatal(b.Len())
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	count := func(o *IterOptions) (n int) {
		it, err := db.NewIterator(o)
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		var prev []byte
		for it.Next() {
			if prev != nil && bytes.Compare(prev, it.Key()) >= 0 {
				t.Fatalf("out of order: %q then %q", prev, it.Key())
			}
			prev = it.Key()
			n++
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
		return n
	}
	if n := count(&IterOptions{Prefix: []byte("user:")}); n != 700 {
		t.Errorf("prefix: %d", n)
	}
	if n := count(&IterOptions{Start: []byte("item:0100"), End: []byte("item:0110")}); n != 10 {
		t.Errorf("range: %d", n)
	}
	if n := count(nil); n != 1400 {
		t.Errorf("all: %d", n)
	}
	if n := count(&IterOptions{Start: []byte("user:0690")}); n != 10 {
		t.Errorf("open end: %d", n)
	}
	b.Reset()
	b.Delete([]byte("user:0000"))
	b.Commit()
	if n := count(&IterOptions{Prefix: []byte("user:")}); n != 699 {
		t.Errorf("after delete: %d", n)
	}
}

func TestDurabilityLevels(t *testing.T) {
	for _, d := range []Durability{DurabilityBuffered, DurabilityOS, DurabilitySync} {
		dir := t.TempDir()
		db := openT(t, dir, WithDurability(d))
		for i := 0; i < 100; i++ {
			db.Set([]byte(fmt.Sprint(i)), []byte("v"))
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = openT(t, dir, WithDurability(d))
		if n, _ := db.Len(); n != 100 {
			t.Errorf("durability %d: Len %d", d, n)
		}
		db.Close()
	}
}

// TestFullDisk: ENOSPC on a 1 MiB tmpfs (needs root to mount).
func TestFullDisk(t *testing.T) {
	small := filepath.Join(t.TempDir(), "small")
	os.Mkdir(small, 0o700)
	if os.Geteuid() != 0 || exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small).Run() != nil {
		t.Skip("needs root to mount a tmpfs")
	}
	defer exec.Command("umount", small).Run()
	dir := filepath.Join(small, "db")
	db := openT(t, dir, WithMaxWALSize(0))
	acked := 0
	var err error
	for ; acked < 100000; acked++ {
		if err = db.Set([]byte(fmt.Sprintf("k%06d", acked)), bytes.Repeat([]byte("v"), 400)); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), "os error 28") {
		t.Fatalf("first failure: %v", err)
	}
	if err := db.Set([]byte("after"), []byte("x")); !errors.Is(err, ErrPoisoned) {
		t.Fatalf("after failure: %v", err)
	}
	if _, err := db.Get([]byte("k000000")); err != nil {
		t.Fatalf("reads must go on: %v", err)
	}
	if err := db.Close(); !errors.Is(err, ErrPoisoned) {
		t.Fatalf("close: %v", err)
	}
	db = openT(t, dir, WithMaxWALSize(0))
	for i := 0; i < acked; i++ {
		if has, _ := db.Has([]byte(fmt.Sprintf("k%06d", i))); !has {
			t.Fatalf("acknowledged k%06d lost", i)
		}
	}
	if err := db.Close(); err != nil && !errors.Is(err, ErrIO) {
		t.Fatalf("close after reopen: %v", err)
	}
}

// One status table: the Go names come from the C library's kv_strerror, so
// every code has a description and a value outside the enum says so.
func TestStatusNamesComeFromTheLibrary(t *testing.T) {
	for s := StatusOK; s <= StatusDuplicateKey; s++ {
		if n := s.String(); n == "" || n == "unknown status" {
			t.Errorf("status %d: %q", int(s), n)
		}
	}
	if StatusNotFound.String() != "not found" {
		t.Errorf("StatusNotFound = %q", StatusNotFound.String())
	}
	if n := Status(99).String(); n != "unknown status" {
		t.Errorf("Status(99) = %q", n)
	}
}

// Options are a Go struct: the defaults come from the library, functional
// options change a copy, and WithOptions takes a whole struct.
func TestOptionsStructAndRangeOverFunc(t *testing.T) {
	d := DefaultOptions()
	if d.Durability != DurabilitySync || d.KeepSnapshots != 2 || !d.CreateIfMissing || d.SegmentSize != 64<<20 {
		t.Fatalf("defaults: %+v", d)
	}
	o := d
	o.SegmentSize = 64 << 10
	o.MaxKeySize = 8
	db := openT(t, t.TempDir(), WithOptions(o))
	defer db.Close()
	if err := db.Set([]byte("123456789"), []byte("v")); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("MaxKeySize from the struct not applied: %v", err)
	}
	for i := 0; i < 50; i++ {
		if err := db.Set([]byte(fmt.Sprintf("k%02d", i)), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	it, err := db.NewIterator(&IterOptions{Start: []byte("k10"), End: []byte("k20")})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k, v := range it.All() {
		if want := fmt.Sprintf("k%02d", 10+n); string(k) != want || v[0] != byte(10+n) {
			t.Errorf("pair %d: %q %v", n, k, v)
		}
		n++
	}
	if n != 10 || it.Err() != nil {
		t.Errorf("range-over-func gave %d pairs, err %v", n, it.Err())
	}
	if err := it.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	db.Close()
	if _, err := db.NewIterator(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// WithCheckpointInterval: an idle store that was written to is
// checkpointed by time alone (the WAL-size trigger is off).
func TestCheckpointInterval(t *testing.T) {
	if DefaultOptions().CheckpointInterval != 0 {
		t.Fatal("the time-based checkpoint is off by default")
	}
	db := openT(t, t.TempDir(), WithMaxWALSize(0), WithCheckpointInterval(20*time.Millisecond))
	defer db.Close()
	if err := db.Set([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := db.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Checkpoints > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no time-based checkpoint in 60 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := Open(t.TempDir(), WithCheckpointInterval(time.Millisecond)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("1 ms interval: %v", err)
	}
}

// WithReadOnly: a second handle without the lock, beside the writer; it
// refuses writes, and a second writer is still refused.
func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir)
	defer w.Close()
	if err := w.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir, WithReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if v, err := r.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("read-only get: %q %v", v, err)
	}
	if err := r.Set([]byte("k"), []byte("w")); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("read-only set: %v", err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v", err)
	}
	if DefaultOptions().ReadOnly {
		t.Fatal("read-write by default")
	}
}

// Backup beside a writing goroutine: the copy opens, holds every write
// acknowledged before the call as a prefix, and sits at the LSN returned.
func TestBackup(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	defer db.Close()
	var acked atomic.Int64
	acked.Store(-1)
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := db.Set([]byte(fmt.Sprintf("k%06d", i)), []byte("value")); err != nil {
				done <- err
				return
			}
			acked.Store(int64(i))
		}
	}()
	for acked.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	before := acked.Load()
	dest := filepath.Join(t.TempDir(), "copy")
	lsn, err := db.Backup(dest)
	close(stop)
	if werr := <-done; werr != nil {
		t.Fatal(werr)
	}
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if _, err := db.Backup(dest); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Backup onto an existing directory: %v", err)
	}
	b := openT(t, dest)
	defer b.Close()
	n, err := b.Len()
	if err != nil || int64(n) <= before {
		t.Fatalf("backup holds %d keys (%v), %d were acknowledged before it", n, err, before+1)
	}
	for i := uint64(0); i < n; i++ {
		if v, err := b.Get([]byte(fmt.Sprintf("k%06d", i))); err != nil || string(v) != "value" {
			t.Fatalf("key %d of the backup: %q %v", i, v, err)
		}
	}
	if st, err := b.Stats(); err != nil || st.LastLSN != lsn {
		t.Fatalf("backup LSN %d, stats %+v %v", lsn, st, err)
	}
}

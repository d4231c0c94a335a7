package raftstore

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	keyval "github.com/keyval/keyval/bindings/go"
)

func small() []keyval.Option { return []keyval.Option{keyval.WithSegmentSize(64 << 10)} }

func openT(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, small()...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func testLog(idx, term uint64, data string) *raft.Log {
	return &raft.Log{Index: idx, Term: term, Type: raft.LogCommand, Data: []byte(data)}
}

func mustStore(t *testing.T, s *Store, logs ...*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs: %v", err)
	}
}

// mustStoreRange stores entries lo..hi (inclusive) of one term in one
// StoreLogs call.
func mustStoreRange(t *testing.T, s *Store, lo, hi, term uint64) {
	t.Helper()
	var logs []*raft.Log
	for i := lo; i <= hi; i++ {
		logs = append(logs, testLog(i, term, "x"))
	}
	mustStore(t, s, logs...)
}

func bounds(t *testing.T, s *Store) (uint64, uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	return f, l
}

func TestFirstAndLastIndex(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	if f, l := bounds(t, s); f != 0 || l != 0 {
		t.Fatalf("empty store: first %d last %d, want 0 0", f, l)
	}
	mustStore(t, s, testLog(1, 1, "a"), testLog(2, 1, "b"), testLog(3, 2, "c"))
	if f, l := bounds(t, s); f != 1 || l != 3 {
		t.Fatalf("first %d last %d, want 1 3", f, l)
	}
}

func TestGetLogRoundTripsEveryField(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	at := time.Unix(1700000000, 123456789)
	in := &raft.Log{Index: 1, Term: 7, Type: raft.LogConfiguration, Data: []byte("data\x00more"),
		Extensions: []byte("ext"), AppendedAt: at}
	mustStore(t, s, in, &raft.Log{Index: 2, Term: 7, Type: raft.LogNoop})
	var out raft.Log
	if err := s.GetLog(1, &out); err != nil {
		t.Fatal(err)
	}
	if out.Index != 1 || out.Term != 7 || out.Type != raft.LogConfiguration || !bytes.Equal(out.Data, in.Data) ||
		!bytes.Equal(out.Extensions, in.Extensions) || !out.AppendedAt.Equal(at) {
		t.Fatalf("GetLog = %+v, want %+v", out, in)
	}
	if err := s.GetLog(2, &out); err != nil || out.Type != raft.LogNoop || len(out.Data) != 0 ||
		len(out.Extensions) != 0 || !out.AppendedAt.IsZero() {
		t.Fatalf("GetLog(2) = %+v, %v", out, err)
	}
}

func TestMissingLogIsErrLogNotFound(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	var out raft.Log
	if err := s.GetLog(1, &out); err != raft.ErrLogNotFound {
		t.Fatalf("empty store: %v, want exactly raft.ErrLogNotFound", err)
	}
	mustStore(t, s, testLog(1, 1, "a"), testLog(2, 1, "b"), testLog(3, 1, "c"))
	for _, idx := range []uint64{0, 4, 1 << 40} {
		if err := s.GetLog(idx, &out); err != raft.ErrLogNotFound {
			t.Fatalf("GetLog(%d) = %v, want exactly raft.ErrLogNotFound", idx, err)
		}
	}
	if err := s.DeleteRange(1, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.GetLog(2, &out); err != raft.ErrLogNotFound {
		t.Fatalf("compacted: %v, want exactly raft.ErrLogNotFound", err)
	}
}

func TestStoreLogAndStoreLogs(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	if err := s.StoreLog(testLog(1, 1, "one")); err != nil {
		t.Fatal(err)
	}
	mustStore(t, s, testLog(2, 1, "two"), testLog(3, 1, "three"))
	if err := s.StoreLogs(nil); err != nil {
		t.Fatalf("no logs: %v", err)
	}
	for i, want := range []string{"one", "two", "three"} {
		var out raft.Log
		if err := s.GetLog(uint64(i+1), &out); err != nil || string(out.Data) != want {
			t.Fatalf("GetLog(%d) = %q, %v", i+1, out.Data, err)
		}
	}
	if err := s.StoreLogs([]*raft.Log{testLog(4, 1, ""), testLog(6, 1, "")}); err == nil {
		t.Fatal("a gap inside StoreLogs was accepted")
	}
	if err := s.StoreLog(testLog(5, 1, "")); err == nil {
		t.Fatal("a gap after the last entry was accepted")
	}
	if f, l := bounds(t, s); f != 1 || l != 3 {
		t.Fatalf("a refused StoreLogs changed the log: %d..%d", f, l)
	}
}

func TestDeleteRangeIsInclusive(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	mustStoreRange(t, s, 1, 10, 1)
	// Compaction: a prefix.
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	if f, l := bounds(t, s); f != 4 || l != 10 {
		t.Fatalf("after DeleteRange(1,3): %d..%d, want 4..10", f, l)
	}
	// Conflict resolution: a suffix.
	if err := s.DeleteRange(8, 10); err != nil {
		t.Fatal(err)
	}
	if f, l := bounds(t, s); f != 4 || l != 7 {
		t.Fatalf("after DeleteRange(8,10): %d..%d, want 4..7", f, l)
	}
	var out raft.Log
	for _, idx := range []uint64{3, 8} {
		if err := s.GetLog(idx, &out); err != raft.ErrLogNotFound {
			t.Fatalf("GetLog(%d) after delete: %v", idx, err)
		}
	}
	for _, idx := range []uint64{4, 7} {
		if err := s.GetLog(idx, &out); err != nil {
			t.Fatalf("GetLog(%d) kept: %v", idx, err)
		}
	}
	mustStore(t, s, testLog(8, 2, "new"))
	if err := s.GetLog(8, &out); err != nil || out.Term != 2 {
		t.Fatalf("rewritten entry 8: %+v %v", out, err)
	}
	if err := s.DeleteRange(5, 6); err == nil {
		t.Fatal("a hole in the middle was accepted")
	}
	// Nothing held in the range: no-ops.
	if err := s.DeleteRange(100, 200); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 2); err != nil {
		t.Fatal(err)
	}
	if f, l := bounds(t, s); f != 4 || l != 8 {
		t.Fatalf("no-op ranges changed the log: %d..%d", f, l)
	}
}

// After a snapshot restore, raft removes every entry of a monotonic store
// and continues after the snapshot.
func TestRemoveAllThenContinueAfterSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	mustStore(t, s, testLog(1, 1, "a"), testLog(2, 1, "b"), testLog(3, 1, "c"))
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	mustStore(t, s, testLog(501, 4, "after snapshot"))
	if f, l := bounds(t, s); f != 501 || l != 501 {
		t.Fatalf("after the append past the snapshot: %d..%d, want 501..501", f, l)
	}
	s.Close()
	s = openT(t, dir)
	defer s.Close()
	if f, l := bounds(t, s); f != 501 || l != 501 {
		t.Fatalf("after reopen: %d..%d, want 501..501", f, l)
	}
	var out raft.Log
	if err := s.GetLog(3, &out); err != raft.ErrLogNotFound {
		t.Fatalf("removed entry came back: %v", err)
	}
	// A conflict at the very first entry: remove all, append at the same index.
	if err := s.DeleteRange(501, 501); err != nil {
		t.Fatal(err)
	}
	mustStore(t, s, testLog(501, 5, "replaced"))
	if err := s.GetLog(501, &out); err != nil || out.Term != 5 || string(out.Data) != "replaced" {
		t.Fatalf("replaced first entry: %+v %v", out, err)
	}
	if f, l := bounds(t, s); f != 501 || l != 501 {
		t.Fatalf("after the replacement: %d..%d, want 501..501", f, l)
	}
}

// The call sequence of hashicorp/raft 1.7.3 that crash-looped a node of
// the fault test (seed 1796419114555229331; upstream issue 697), taken
// from that node's WAL: the log held 165..396 (term 2), the leader sent
// a snapshot at 330, installSnapshot's removeOldLogs removed every entry,
// raft kept 396 as its last index, matched the leader's entry 396 and
// appended 397, then applied from 331, which was gone: "panic: log not
// found", and the same panic in NewRaft on every restart.
func TestRemoveAllThenContinueTheHeldEntries(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	mustStoreRange(t, s, 165, 396, 2)
	// removeOldLogs: compactLogsWithTrailing(last, last, 0).
	if err := s.DeleteRange(165, 396); err != nil {
		t.Fatal(err)
	}
	// raft's last index is still 396: it reads the entries it believes in.
	var out raft.Log
	if err := s.GetLog(396, &out); err != nil || out.Term != 2 {
		t.Fatalf("GetLog(396) while the removal waits: %+v %v", out, err)
	}
	mustStore(t, s, testLog(397, 2, "after the stale last index"))
	check := func(when string) {
		t.Helper()
		if f, l := bounds(t, s); f != 165 || l != 397 {
			t.Fatalf("%s: %d..%d, want 165..397", when, f, l)
		}
		// processLogs after the snapshot at 330, and NewRaft's scan.
		for i := uint64(331); i <= 397; i++ {
			if err := s.GetLog(i, &out); err != nil {
				t.Fatalf("%s: GetLog(%d): %v", when, i, err)
			}
		}
	}
	check("after the append")
	s.Close()
	s = openT(t, dir)
	defer s.Close()
	check("after reopen")
}

// A removal of every entry that no write follows is carried out by Close
// (raft's RecoverCluster removes the log and returns).
func TestRemoveAllIsCarriedOutByClose(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	mustStore(t, s, testLog(1, 1, "a"), testLog(2, 1, "b"))
	if err := s.DeleteRange(1, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	defer s.Close()
	if f, l := bounds(t, s); f != 0 || l != 0 {
		t.Fatalf("after Close and reopen: %d..%d, want 0 0", f, l)
	}
}

// While a removal of every entry waits, compaction and conflict resolution
// act on the held entries, and an append that continues them keeps them.
func TestTruncationsWhileRemoveAllWaits(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	mustStoreRange(t, s, 1, 20, 1)
	if err := s.DeleteRange(1, 20); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 5); err != nil { // compaction after a snapshot
		t.Fatal(err)
	}
	if err := s.DeleteRange(15, 20); err != nil { // a conflict at 15
		t.Fatal(err)
	}
	if f, l := bounds(t, s); f != 6 || l != 14 {
		t.Fatalf("held entries: %d..%d, want 6..14", f, l)
	}
	mustStore(t, s, testLog(15, 3, "leader's"))
	if f, l := bounds(t, s); f != 6 || l != 15 {
		t.Fatalf("after continuing: %d..%d, want 6..15", f, l)
	}
	// The removal was settled by that append: the next append past a gap
	// is refused, as in any non-empty log.
	if err := s.StoreLogs([]*raft.Log{testLog(40, 3, "gap")}); err == nil {
		t.Fatal("a gap after a settled removal was accepted")
	}
}

func TestStableStore(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	v, err := s.Get([]byte("missing"))
	if err == nil || err.Error() != "not found" || v != nil {
		t.Fatalf("Get(missing) = %q, %v; want nil and exactly \"not found\"", v, err)
	}
	n, err := s.GetUint64([]byte("missing"))
	if err == nil || err.Error() != "not found" || n != 0 {
		t.Fatalf("GetUint64(missing) = %d, %v", n, err)
	}
	if err := s.Set([]byte("hello"), []byte("world")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 1<<40+7); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openT(t, dir)
	defer s.Close()
	if v, err := s.Get([]byte("hello")); err != nil || string(v) != "world" {
		t.Fatalf("Get after reopen = %q, %v", v, err)
	}
	if n, err := s.GetUint64([]byte("CurrentTerm")); err != nil || n != 1<<40+7 {
		t.Fatalf("GetUint64 after reopen = %d, %v", n, err)
	}
	if _, err := s.GetUint64([]byte("hello")); err == nil {
		t.Fatal("a 5-byte value decoded as a uint64")
	}
}

func TestOpenTwiceIsLockedAndClosedStoreFails(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if _, err := Open(dir, small()...); !errors.Is(err, keyval.ErrLocked) {
		t.Fatalf("second Open: %v", err)
	}
	s.Close()
	if err := s.StoreLog(testLog(1, 1, "")); !errors.Is(err, keyval.ErrClosed) {
		t.Fatalf("StoreLog after Close: %v", err)
	}
	if _, err := s.Get([]byte("k")); !errors.Is(err, keyval.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

package keyval

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func openLogT(t *testing.T, dir string) *RaftLog {
	t.Helper()
	l, err := OpenRaftLog(dir, small()...)
	if err != nil {
		t.Fatalf("OpenRaftLog: %v", err)
	}
	return l
}

func payload(i uint64) []byte { return []byte(fmt.Sprintf("entry-%d", i)) }

func appendRange(t *testing.T, l *RaftLog, lo, hi, term uint64) {
	t.Helper()
	var es []Entry
	for i := lo; i <= hi; i++ {
		es = append(es, Entry{Index: i, Term: term, Data: payload(i)})
	}
	if err := l.Append(es); err != nil {
		t.Fatalf("Append %d..%d: %v", lo, hi, err)
	}
}

func TestRaftLogEntriesAndErrors(t *testing.T) {
	dir := t.TempDir()
	l := openLogT(t, dir)
	defer l.Close()
	if _, err := OpenRaftLog(dir, small()...); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if _, err := OpenRaftLog(t.TempDir(), WithDurability(DurabilityBuffered)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("buffered: %v", err)
	}
	if f, la, err := l.Bounds(); err != nil || f != 1 || la != 0 {
		t.Fatalf("empty bounds = %d %d %v", f, la, err)
	}
	if _, err := l.HardState(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("hard state of a new log: %v", err)
	}
	if _, _, err := l.Snapshot(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("snapshot of a new log: %v", err)
	}
	if _, _, err := l.LastPurged(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("last purged of a new log: %v", err)
	}
	appendRange(t, l, 1, 100, 1)
	appendRange(t, l, 101, 200, 2)
	if err := l.Append([]Entry{{Index: 202, Term: 2}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("gap: %v", err)
	}
	if err := l.Append([]Entry{{Index: 201, Term: 2}, {Index: 203, Term: 2}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("not consecutive: %v", err)
	}
	if err := l.Append([]Entry{{Index: 201, Term: 2, Data: nil}}); err != nil {
		t.Fatalf("empty payload: %v", err)
	}
	e, err := l.Entry(150)
	if err != nil || e.Term != 2 || !bytes.Equal(e.Data, payload(150)) {
		t.Fatalf("Entry(150) = %+v, %v", e, err)
	}
	if e, err := l.Entry(201); err != nil || len(e.Data) != 0 {
		t.Fatalf("Entry(201) = %+v, %v", e, err)
	}
	if _, err := l.Entry(202); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("Entry(202): %v", err)
	}
	if term, err := l.Term(100); err != nil || term != 1 {
		t.Fatalf("Term(100) = %d, %v", term, err)
	}
	es, err := l.Entries(95, 105, 1<<30)
	if err != nil || len(es) != 10 {
		t.Fatalf("Entries = %d, %v", len(es), err)
	}
	for i, e := range es {
		idx := uint64(95 + i)
		if e.Index != idx || !bytes.Equal(e.Data, payload(idx)) {
			t.Fatalf("Entries[%d] = %+v", i, e)
		}
	}
	if es, err := l.Entries(1, 200, 1); err != nil || len(es) != 1 {
		t.Fatalf("Entries with max_bytes 1 = %d, %v", len(es), err)
	}
	if err := l.SaveHardState(HardState{Term: 2, Vote: []byte("node-2"), Commit: 150}); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateSuffix(180); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Entry(180); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("truncated entry: %v", err)
	}
	appendRange(t, l, 180, 190, 3)
	if err := l.SaveSnapshot(SnapshotMeta{LastIndex: 120, LastTerm: 2, Config: []byte("a,b,c")}, bytes.Repeat([]byte("S"), 70000)); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncatePrefix(120); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Entry(120); !errors.Is(err, ErrCompacted) {
		t.Fatalf("compacted entry: %v", err)
	}
	if i, term, err := l.LastPurged(); err != nil || i != 120 || term != 2 {
		t.Fatalf("LastPurged = %d %d %v", i, term, err)
	}
	l.Close()
	if _, err := l.Entry(150); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	l = openLogT(t, dir)
	defer l.Close()
	if f, la, err := l.Bounds(); err != nil || f != 121 || la != 190 {
		t.Fatalf("bounds after reopen = %d %d %v", f, la, err)
	}
	if e, err := l.Entry(185); err != nil || e.Term != 3 || !bytes.Equal(e.Data, payload(185)) {
		t.Fatalf("Entry(185) after reopen = %+v, %v", e, err)
	}
	hs, err := l.HardState()
	if err != nil || hs.Term != 2 || string(hs.Vote) != "node-2" || hs.Commit != 150 {
		t.Fatalf("HardState = %+v, %v", hs, err)
	}
	meta, data, err := l.Snapshot()
	if err != nil || meta.LastIndex != 120 || string(meta.Config) != "a,b,c" || len(data) != 70000 {
		t.Fatalf("Snapshot = %+v %d %v", meta, len(data), err)
	}
}

func TestRaftLogConcurrentAppendersAndReaders(t *testing.T) {
	l := openLogT(t, t.TempDir())
	defer l.Close()
	var mu sync.Mutex // appends must be ordered; the mutex is Raft's
	next := uint64(1)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				mu.Lock()
				err := l.Append([]Entry{{Index: next, Term: 1, Data: payload(next)}})
				next++
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				_, last, _ := l.Bounds()
				if e, err := l.Entry(last); err != nil || !bytes.Equal(e.Data, payload(last)) {
					t.Errorf("read %d: %v", last, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if _, last, err := l.Bounds(); err != nil || last != 400 {
		t.Fatalf("last = %d, %v", last, err)
	}
}

// raftChild appends entries and prints each acknowledged index until it is
// killed (see TestMain).
func raftChild(dir string) {
	l, err := OpenRaftLog(dir, small()...)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	_, last, _ := l.Bounds()
	for i := last + 1; ; i++ {
		if err := l.Append([]Entry{{Index: i, Term: 1, Data: payload(i)}}); err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		fmt.Printf("ACK %d\n", i)
	}
}

func TestRaftLogSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	acked := uint64(0)
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "KEYVAL_GO_RAFT_CHILD="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		deadline := time.Now().Add(150 * time.Millisecond)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && f[0] == "ACK" {
				acked, _ = strconv.ParseUint(f[1], 10, 64)
			} else if len(f) > 0 && f[0] == "ERR" {
				t.Fatalf("child: %s", sc.Text())
			}
			if time.Now().After(deadline) && acked > 0 {
				break
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		l := openLogT(t, dir)
		_, last, err := l.Bounds()
		if err != nil || last < acked {
			t.Fatalf("round %d: last %d < acknowledged %d (%v)", round, last, acked, err)
		}
		for i := uint64(1); i <= acked; i++ {
			if e, err := l.Entry(i); err != nil || !bytes.Equal(e.Data, payload(i)) {
				t.Fatalf("round %d: acknowledged entry %d: %v", round, i, err)
			}
		}
		t.Logf("round %d: %d entries acknowledged, %d recovered", round, acked, last)
		l.Close()
	}
}

func TestRaftLogBackup(t *testing.T) {
	l := openLogT(t, t.TempDir())
	defer l.Close()
	appendRange(t, l, 1, 10, 1)
	hs := HardState{Term: 1, Vote: []byte("n1"), Commit: 10}
	if err := l.SaveHardState(hs); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "copy")
	if _, err := l.Backup(dest); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if _, err := l.Backup(dest); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Backup onto an existing directory: %v", err)
	}
	b := openLogT(t, dest)
	defer b.Close()
	if first, last, err := b.Bounds(); err != nil || first != 1 || last != 10 {
		t.Fatalf("bounds %d..%d %v", first, last, err)
	}
	if e, err := b.Entry(10); err != nil || !bytes.Equal(e.Data, payload(10)) {
		t.Fatalf("entry 10: %v %v", e, err)
	}
	if got, err := b.HardState(); err != nil || got.Commit != 10 || string(got.Vote) != "n1" {
		t.Fatalf("hard state %+v %v", got, err)
	}
}

func TestRaftLogMetrics(t *testing.T) {
	l := openLogT(t, t.TempDir())
	defer l.Close()
	appendRange(t, l, 1, 101, 1)
	if err := l.SaveHardState(HardState{Term: 1, Commit: 90}); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateSuffix(96); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncatePrefix(50); err != nil {
		t.Fatal(err)
	}
	m, err := l.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if m.EntriesAppended != 101 || m.TruncationsSuffix != 1 || m.TruncationsPrefix != 1 ||
		m.FirstIndex != 51 || m.LastIndex != 95 || m.HardStateSaves < 1 || m.Fsyncs == 0 ||
		m.AppendLatency.Count != m.Appends || m.Poisoned {
		t.Fatalf("metrics %+v", m)
	}
	text, err := l.PrometheusMetrics("node-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`keyval_raft_last_index{log="node-1"} 95`,
		`keyval_raft_truncations_total{log="node-1",side="suffix"} 1`,
		"# TYPE keyval_raft_operation_duration_seconds histogram",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q:\n%s", want, text)
		}
	}
	l.Close()
	if _, err := l.Metrics(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
}

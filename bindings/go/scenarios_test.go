package keyval

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The usual key-value-store scenarios.

func TestFiftySettersFiftyReaders(t *testing.T) {
	db := openT(t, t.TempDir())
	defer db.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 50; g++ {
		wg.Add(2)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := db.Set([]byte(fmt.Sprintf("g%d-%d", g, i)), []byte(fmt.Sprintf("v%d-%d", g, i))); err != nil {
					errs <- err
					return
				}
			}
		}(g)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				v, err := db.Get([]byte(fmt.Sprintf("g%d-%d", g, i)))
				if err == nil && string(v) != fmt.Sprintf("v%d-%d", g, i) {
					errs <- fmt.Errorf("wrong value %q", v)
					return
				}
				if err != nil && !errors.Is(err, ErrNotFound) {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, _ := db.Len(); n != 1000 {
		t.Fatalf("Len = %d", n)
	}
	if st, _ := db.Stats(); st.CommitGroups >= st.Writes {
		t.Errorf("no group commit across goroutines: %+v", st)
	}
}

func TestHundredWritersOneKey(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	var wg sync.WaitGroup
	for g := 0; g < 100; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			if err := db.Set([]byte("the-key"), []byte(strconv.Itoa(g))); err != nil {
				t.Error(err)
			}
		}(g)
	}
	wg.Wait()
	v, err := db.Get([]byte("the-key"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := strconv.Atoi(string(v))
	if err != nil || g < 0 || g >= 100 {
		t.Fatalf("value %q is not one of the writes", v)
	}
	db.Close()
	db = openT(t, dir)
	defer db.Close()
	v2, _ := db.Get([]byte("the-key"))
	if !bytes.Equal(v, v2) {
		t.Fatalf("last write %q, after reopen %q: order not kept", v, v2)
	}
}

func TestDeleteThenResetThenReopen(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	db.Set([]byte("k"), []byte("one"))
	db.Delete([]byte("k"))
	db.Set([]byte("k"), []byte("two"))
	db.Delete([]byte("gone"))
	db.Set([]byte("gone"), []byte("x"))
	db.Delete([]byte("gone"))
	db.Close()
	db = openT(t, dir)
	defer db.Close()
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "two" {
		t.Fatalf("k = %q, %v", v, err)
	}
	if _, err := db.Get([]byte("gone")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("gone: %v", err)
	}
}

// TestMain doubles as the crash child: with KEYVAL_GO_CHILD set, the test
// binary writes under DurabilitySync and prints "ACK n" after each durable
// write until it is killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("KEYVAL_GO_HOLD"); dir != "" {
		db, err := Open(dir, small()...)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		fmt.Println("OPEN")
		io.ReadAll(os.Stdin)
		db.Close()
		os.Exit(0)
	}
	if dir := os.Getenv("KEYVAL_GO_DURABILITY_CHILD"); dir != "" {
		durabilityChild(dir)
	}
	if dir := os.Getenv("KEYVAL_GO_RAFT_CHILD"); dir != "" {
		raftChild(dir)
	}
	if dir := os.Getenv("KEYVAL_GO_CHILD"); dir != "" {
		db, err := Open(dir, small()...)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		for i := 0; ; i++ {
			b := db.NewBatch()
			b.Set([]byte(fmt.Sprintf("k%06d", i)), []byte(fmt.Sprintf("v%06d", i)))
			b.Set([]byte(fmt.Sprintf("mirror%06d", i)), []byte(fmt.Sprintf("v%06d", i)))
			if err := b.Commit(); err != nil {
				fmt.Println("ERR", err)
				os.Exit(3)
			}
			fmt.Printf("ACK %d\n", i)
		}
	}
	os.Exit(m.Run())
}

func TestRecoveryAfterSIGKILL(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "KEYVAL_GO_CHILD="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := -1
		sc := bufio.NewScanner(out)
		deadline := time.Now().Add(time.Duration(100+round*80) * time.Millisecond)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && f[0] == "ACK" {
				acked, _ = strconv.Atoi(f[1])
			} else if len(f) > 0 && f[0] == "ERR" {
				t.Fatalf("child: %s", sc.Text())
			}
			if time.Now().After(deadline) && acked >= 0 {
				break
			}
		}
		cmd.Process.Kill() // SIGKILL
		cmd.Wait()
		if acked < 0 {
			t.Fatal("child acknowledged nothing")
		}
		db := openT(t, dir)
		n, _ := db.Len()
		for i := 0; i <= acked; i++ {
			for _, p := range []string{"k", "mirror"} {
				v, err := db.Get([]byte(fmt.Sprintf("%s%06d", p, i)))
				if err != nil || string(v) != fmt.Sprintf("v%06d", i) {
					t.Fatalf("round %d: acknowledged %s%06d: %q, %v", round, p, i, v, err)
				}
			}
		}
		if n%2 != 0 {
			t.Fatalf("round %d: %d keys: a batch was torn", round, n)
		}
		st, _ := db.Stats()
		t.Logf("round %d: acked %d batches, %d keys recovered, %d records replayed", round, acked+1, n, st.Recovery.RecordsReplayed)
		db.Close()
		os.RemoveAll(dir)
		os.MkdirAll(dir, 0o755)
	}
}

func TestLockedByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KEYVAL_GO_HOLD="+dir)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "OPEN" {
		t.Fatalf("child did not open: %q", sc.Text())
	}
	if _, err := Open(dir, small()...); !errors.Is(err, ErrLocked) {
		t.Fatalf("open while another process holds it: %v", err)
	}
	in.Close()
	cmd.Wait()
	db := openT(t, dir)
	db.Close()
}

func TestGarbageFilesAndOddPaths(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "odd-\xff\xfe-name") // not UTF-8: just bytes to the library
	db := openT(t, dir)
	db.Set([]byte("k"), []byte("v"))
	db.Close()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	junk := filepath.Join(dir, "00000000000000000042.wal")
	os.WriteFile(junk, bytes.Repeat([]byte{0x5A}, 8192), 0o644)
	if _, err := Open(dir, small()...); !errors.Is(err, ErrCorruption) || !strings.Contains(err.Error(), "00000000000000000042.wal") {
		t.Fatalf("garbage segment: %v", err)
	}
	os.Remove(junk)
	db = openT(t, dir)
	defer db.Close()
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("after removing the junk: %q %v", v, err)
	}
}

// durabilityChild writes on a DurabilityBuffered store: "a" at the store's
// level, "b" with SetWith(DurabilityOS), "c" at the store's level again,
// then kills itself with SIGKILL (see TestPerWriteDurabilityAcrossSIGKILL).
func durabilityChild(dir string) {
	db, err := Open(dir, append(small(), WithDurability(DurabilityBuffered))...)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	for _, step := range []func() error{
		func() error { return db.Set([]byte("a"), []byte("buffered")) },
		func() error { return db.SetWith([]byte("b"), []byte("os"), DurabilityOS) },
		func() error { return db.Set([]byte("c"), []byte("buffered")) },
	} {
		if err := step(); err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// A write at DurabilityOS on a Buffered store survives the process being
// killed and carries the buffered write before it; the buffered write
// after it is lost (so the test can tell the levels apart).
func TestPerWriteDurabilityAcrossSIGKILL(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KEYVAL_GO_DURABILITY_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child was not killed: %v, %s", err, out)
	}
	db := openT(t, dir)
	defer db.Close()
	for k, want := range map[string]bool{"a": true, "b": true, "c": false} {
		if has, err := db.Has([]byte(k)); err != nil || has != want {
			t.Errorf("after SIGKILL, Has(%q) = %v, %v; want %v", k, has, err, want)
		}
	}
}

func TestPerWriteDurabilityInProcess(t *testing.T) {
	db := openT(t, t.TempDir(), WithDurability(DurabilityBuffered))
	defer db.Close()
	fsyncs := func() uint64 {
		st, err := db.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.Fsyncs
	}
	if err := db.Set([]byte("a"), []byte("1")); err != nil || fsyncs() != 0 {
		t.Fatalf("buffered Set: %v, fsyncs %d", err, fsyncs())
	}
	if err := db.SetWith([]byte("b"), []byte("2"), DurabilitySync); err != nil || fsyncs() != 1 {
		t.Fatalf("SetWith(Sync): %v, fsyncs %d", err, fsyncs())
	}
	if err := db.DeleteWith([]byte("a"), DurabilitySync); err != nil || fsyncs() != 2 {
		t.Fatalf("DeleteWith(Sync): %v, fsyncs %d", err, fsyncs())
	}
	b := db.NewBatch()
	b.Set([]byte("c"), []byte("3"))
	if err := b.CommitWith(DurabilitySync); err != nil || fsyncs() != 3 {
		t.Fatalf("CommitWith(Sync): %v, fsyncs %d", err, fsyncs())
	}
	if err := db.SetWith([]byte("d"), []byte("4"), Durability(9)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown level: %v", err)
	}
	if err := b.CommitWith(Durability(9)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown level: %v", err)
	}
	if n, _ := db.Len(); n != 2 {
		t.Fatalf("Len %d, want 2 (b, c)", n)
	}
}

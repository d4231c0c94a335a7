package keyval

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.TempDir(), WithDurability(DurabilityBuffered))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// P4, lost update: two read-modify-writes of one key; the second commit
// conflicts and writes nothing.
func TestLostUpdateConflicts(t *testing.T) {
	db := openTest(t)
	if err := db.Set([]byte("x"), []byte("10")); err != nil {
		t.Fatal(err)
	}
	t1, _ := db.Begin()
	t2, _ := db.Begin()
	for _, tx := range []*Tx{t1, t2} {
		if v, err := tx.Get([]byte("x")); err != nil || string(v) != "10" {
			t.Fatalf("get: %q %v", v, err)
		}
		if err := tx.Set([]byte("x"), []byte("11")); err != nil {
			t.Fatal(err)
		}
	}
	if err := t2.Set([]byte("y"), []byte("from t2")); err != nil {
		t.Fatal(err)
	}
	if err := t1.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := t2.Commit(); !errors.Is(err, ErrConflict) {
		t.Fatalf("second commit: %v, want ErrConflict", err)
	}
	if _, err := db.Get([]byte("y")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the conflicted transaction wrote y: %v", err)
	}
}

// G2-item, write skew, and G2 through a range (a phantom): the second
// commit conflicts.
func TestWriteSkewAndPhantomsConflict(t *testing.T) {
	db := openTest(t)
	t1, _ := db.Begin()
	t2, _ := db.Begin()
	for _, tx := range []*Tx{t1, t2} {
		it, err := tx.Range(nil, &IterOptions{Prefix: []byte("oncall/")}, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			t.Fatalf("unexpected %q", it.Key())
		}
		it.Close()
	}
	t1.Set([]byte("oncall/alice"), []byte("1"))
	t2.Set([]byte("oncall/bob"), []byte("1"))
	if err := t1.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := t2.Commit(); !errors.Is(err, ErrConflict) {
		t.Fatalf("phantom: %v, want ErrConflict", err)
	}
}

// Update retries until every increment lands; a snapshot taken meanwhile
// keeps its own view; transfers keep the sum in every View.
func TestUpdateViewAndSnapshots(t *testing.T) {
	db := openTest(t)
	ks, err := db.Keyspace("accounts")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		ks.Set([]byte(fmt.Sprintf("a%d", i)), []byte("100"))
	}
	snap, err := db.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				err := db.Update(func(tx *Tx) error {
					a, b := fmt.Sprintf("a%d", (w+i)%10), fmt.Sprintf("a%d", (w*3+i+1)%10)
					vals, err := tx.GetManyIn(ks, [][]byte{[]byte(a), []byte(b)})
					if err != nil {
						return err
					}
					va, _ := strconv.Atoi(string(vals[0]))
					vb, _ := strconv.Atoi(string(vals[1]))
					if a == b {
						return nil
					}
					tx.SetIn(ks, []byte(a), []byte(strconv.Itoa(va-1)))
					return tx.SetIn(ks, []byte(b), []byte(strconv.Itoa(vb+1)))
				})
				if err != nil {
					t.Error(err)
					return
				}
				db.View(func(s *Snapshot) error {
					sk, err := s.Keyspace(ks)
					if err != nil {
						return err
					}
					defer sk.Close()
					it, err := sk.NewIterator(nil)
					if err != nil {
						return err
					}
					defer it.Close()
					sum := 0
					for it.Next() {
						n, _ := strconv.Atoi(string(it.Value()))
						sum += n
					}
					if sum != 1000 {
						t.Errorf("snapshot sum %d", sum)
					}
					return it.Err()
				})
			}
		}(w)
	}
	wg.Wait()
	sk, err := snap.Keyspace(ks)
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	if v, err := sk.Get([]byte("a0")); err != nil || string(v) != "100" {
		t.Fatalf("old snapshot reads %q %v", v, err)
	}
	if n, _ := sk.Len(); n != 10 {
		t.Fatalf("len %d", n)
	}
	// An error from fn writes nothing.
	boom := errors.New("boom")
	if err := db.Update(func(tx *Tx) error { tx.Set([]byte("k"), []byte("v")); return boom }); err != boom {
		t.Fatal(err)
	}
	if _, err := db.Get([]byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatal("rolled-back write is visible")
	}
}

func TestIteratorBothWaysAndSeek(t *testing.T) {
	db := openTest(t)
	for i := 0; i < 100; i++ {
		db.Set([]byte(fmt.Sprintf("k%03d", i)), []byte("v"))
	}
	it, err := db.NewIterator(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if !it.Seek([]byte("k050")) || string(it.Key()) != "k050" {
		t.Fatalf("seek: %q", it.Key())
	}
	if !it.Prev() || string(it.Key()) != "k049" {
		t.Fatalf("prev: %q", it.Key())
	}
	if !it.Next() || string(it.Key()) != "k050" {
		t.Fatalf("next after prev: %q", it.Key())
	}
	n := 0
	for ok := it.Last(); ok; ok = it.Prev() {
		n++
	}
	if n != 100 || it.Err() != nil {
		t.Fatalf("reverse scan: %d %v", n, it.Err())
	}
	if !it.SeekForPrev([]byte("k0505")) || string(it.Key()) != "k050" {
		t.Fatalf("seek for prev: %q", it.Key())
	}
	// A write after the iterator started is not seen.
	db.Set([]byte("k0505"), []byte("new"))
	if !it.Next() || string(it.Key()) != "k051" {
		t.Fatalf("snapshot iterator saw a later write: %q", it.Key())
	}
}

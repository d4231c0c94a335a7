package keyval

import (
	"bytes"
	"fmt"
	"math"
	"testing"
)

func bigValue(i, version int) []byte {
	v := []byte(fmt.Sprintf("k%d-v%d-", i, version))
	for len(v) < 4096 {
		v = append(v, byte('a'+(len(v)+i+version)%26))
	}
	return v
}

// A store many times its memory budget: values stay in the segments, are
// read back before and after a reopen, and reclaim returns the space of
// overwritten ones.
func TestValuesLargerThanTheBudget(t *testing.T) {
	dir := t.TempDir()
	opts := []Option{WithMemoryBudget(64 << 10), WithSegmentSize(256 << 10), WithMaxWALSize(0)}
	db, err := Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for version := 0; version < 4; version++ {
		for i := 0; i < n; i++ {
			if err := db.Set([]byte(fmt.Sprint("key", i)), bigValue(i, version)); err != nil {
				t.Fatal(err)
			}
		}
	}
	m, err := db.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if m.SeparatedValues != n || m.SeparatedBytes != n*4096 {
		t.Fatalf("separated %d values, %d bytes", m.SeparatedValues, m.SeparatedBytes)
	}
	if m.MemoryBytes > m.SeparatedBytes/4 {
		t.Fatalf("index memory %d for %d value bytes", m.MemoryBytes, m.SeparatedBytes)
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	segs, moved, err := db.Reclaim()
	if err != nil || segs == 0 || moved == 0 {
		t.Fatalf("reclaim: %d segments, %d bytes, %v", segs, moved, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < n; i++ {
		v, err := db.Get([]byte(fmt.Sprint("key", i)))
		if err != nil || !bytes.Equal(v, bigValue(i, 3)) {
			t.Fatalf("key %d: %d bytes, %v", i, len(v), err)
		}
	}
	m, _ = db.Metrics()
	if m.ValueReads == 0 || m.ValueCacheBytes > 64<<10 {
		t.Fatalf("reads %d, cache %d bytes", m.ValueReads, m.ValueCacheBytes)
	}
}

// The threshold at its maximum keeps every value in memory.
func TestSeparationOff(t *testing.T) {
	db, err := Open(t.TempDir(), WithValueSeparationThreshold(math.MaxUint32))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Set([]byte("k"), bigValue(1, 1)); err != nil {
		t.Fatal(err)
	}
	if m, _ := db.Metrics(); m.SeparatedValues != 0 {
		t.Fatalf("%d separated", m.SeparatedValues)
	}
	if o := DefaultOptions(); o.ValueSeparationThreshold != 1024 || o.MemoryBudget != 256<<20 {
		t.Fatalf("defaults %d %d", o.ValueSeparationThreshold, o.MemoryBudget)
	}
	if _, err := Open(t.TempDir(), WithValueSeparationThreshold(10)); err == nil {
		t.Fatal("a threshold under 64 bytes opened")
	}
}
